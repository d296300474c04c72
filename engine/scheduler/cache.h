#pragma once
// The scheduler's cache (kube's internal/cache/cache.go): a NodeInfo per node with the pods
// bound or assumed to it, fed by the node and pod informers, plus namespace labels and
// PodDisruptionBudgets. Each scheduling cycle takes a Snapshot; only nodes that changed since
// the last one are replaced in it. NodeInfos handed to a snapshot are immutable, so the cache
// copies a node before changing it if a snapshot holds it (copy-on-write).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

class SchedulerCache {
 public:
  SchedulerCache() = default;

  // ---- nodes
  /// Adds or replaces a node from its v1 Node object. Returns whether anything the plugins
  /// look at changed (labels, taints, unschedulable, allocatable, images): a cluster event.
  Result<bool> upsertNode(const nlohmann::json& node);
  Result<bool> upsertNode(std::shared_ptr<const nlohmann::json> node);
  void removeNode(const std::string& name);

  // ---- pods bound to a node (spec.nodeName set)
  /// Adds a bound pod, or confirms an assumed one (the watch saw the binding).
  void addPod(const PodInfoPtr& pod);
  /// A bound pod changed (labels, status, or deletionTimestamp).
  void updatePod(const PodInfoPtr& oldPod, const PodInfoPtr& newPod);
  void removePod(const PodInfoPtr& pod);

  // ---- assumed pods (binding in flight)
  /// Counts `pod` (spec.nodeName filled by the scheduler) on its node before the binding is
  /// persisted, so the next cycles see its resources taken.
  Status assumePod(const PodInfoPtr& pod);
  /// The binding failed: takes the assumed pod off its node.
  void forgetPod(const PodInfoPtr& pod);
  /// Whether the pod (by uid) is assumed and not yet confirmed, or confirmed bound.
  bool isAssumed(const std::string& uid) const;
  bool hasPod(const std::string& uid) const;

  // ---- namespaces and PDBs
  void upsertNamespace(const std::string& name, std::map<std::string, std::string> labels);
  void removeNamespace(const std::string& name);
  void upsertPdb(DisruptionBudget pdb);
  void removePdb(const std::string& ns, const std::string& name);

  /// Brings `snapshot` up to date with the cache, replacing only the nodes that changed since
  /// the snapshot's last update (the first call fills it). One snapshot per cache: the
  /// scheduling loop's.
  void updateSnapshot(Snapshot& snapshot);

  size_t nodeCount() const;
  size_t podCount() const;
  /// The node as the cache holds it now (tests, debugging); null if absent.
  NodeInfoPtr node(const std::string& name) const;

 private:
  struct NodeEntry {
    std::shared_ptr<NodeInfo> info;
    bool shared = false;   // a snapshot holds `info`: copy before changing
    bool hasNode = false;  // pods can arrive before their Node; such entries are not scheduled on
  };
  struct PodState {
    PodInfoPtr pod;
    bool assumed = false;
  };

  // All below with mu_ held.
  NodeInfo& mutableNode(const std::string& name);
  void addPodLocked(const PodInfoPtr& pod);
  void removePodLocked(const PodInfoPtr& pod);
  void dropIfEmpty(const std::string& name);

  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, NodeEntry> nodes_;  // mutable: node() marks shared
  std::unordered_map<std::string, PodState> pods_;  // by uid
  std::set<std::string> dirty_;     // nodes changed since the last snapshot
  bool structureChanged_ = true;    // node set or node properties changed: rebuild the snapshot
  std::map<std::string, std::map<std::string, std::string>> namespaceLabels_;
  std::map<std::pair<std::string, std::string>, DisruptionBudget> pdbs_;
  int64_t namespacesVersion_ = 1, pdbsVersion_ = 1;
  int64_t snapshotNamespacesVersion_ = 0, snapshotPdbsVersion_ = 0;
};

}  // namespace orrery::scheduler
