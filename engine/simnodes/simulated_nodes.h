#pragma once
// Simulated nodes, as kwok serves them: Nodes with no containers whose "kubelet" lives in the
// control-plane process. It registers each Node (status as a kubelet writes it), renews a Lease
// per node in kube-node-lease, and plays the kubelet's part for the pods bound to its nodes:
// marks them Running after a delay (podIP from the node's pod CIDR, conditions, container
// statuses), lets annotated pods finish (Succeeded/Failed, respecting restartPolicy), and
// removes pods being deleted, all through the API like any other client.
//
// Cheap by design: the working set is a compact struct per node and per pod (no JSON copy of
// any object is kept), one list+watch for pods and one for nodes, and all periodic writes
// (lease renewals, status reports, pod transitions) go through one timer heap drained by a
// small pool of writer threads.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"
#include "engine/client/client.h"

namespace orrery::simnodes {

using api::Result;
using api::Status;

/// Marks a Node as simulated (label, value "true"); the component only manages Nodes with it.
inline constexpr const char* kSimulatedLabel = "orrery.dev/simulated";
/// Pod annotations that make a simulated container exit: after `kRunSecondsAnnotation`
/// seconds Running, every container exits with `kExitCodeAnnotation` ("0" = success).
inline constexpr const char* kExitCodeAnnotation = "orrery.dev/simulated-exit-code";
inline constexpr const char* kRunSecondsAnnotation = "orrery.dev/simulated-run-seconds";

struct SimulatedNodesOptions {
  /// Nodes registered at start ("<namePrefix><index>", index from 0).
  int count = 0;
  std::string namePrefix = "orrery-sim-";
  /// A Node manifest whose metadata.labels/annotations, spec.taints and status.capacity /
  /// status.allocatable are applied to every simulated node (null: defaultNodeTemplate()).
  /// Missing capacity or allocatable keys come from the default.
  nlohmann::json nodeTemplate;
  /// From seeing a pod bound to a node to writing it Running.
  std::chrono::milliseconds runningDelay{100};
  /// Lease renewal (kubelet: 10 s) and the lease's leaseDurationSeconds (kubelet: 40).
  std::chrono::milliseconds leaseRenewInterval{10000};
  int leaseDurationSeconds = 40;
  /// Node status is re-posted this often even if nothing changed (kubelet's
  /// nodeStatusReportFrequency, 5 min), and at once when the Ready condition is seen not True
  /// on a node whose heartbeat runs.
  std::chrono::milliseconds statusReportInterval{std::chrono::minutes(5)};
  /// false (default): a simulated container stops at once on SIGTERM, so a pod being deleted is
  /// removed immediately (as kwok does); true: it is removed when its grace period has run out.
  bool honorGracePeriod = false;
  /// Threads that perform the API writes. Each write waits for the store to make it durable,
  /// so throughput comes from several in flight (the store commits them together), as a real
  /// cluster has one kubelet writing per node.
  int writers = 16;
  /// The kubelet version the nodes report (nodeInfo.kubeletVersion, `kubectl get nodes` VERSION).
  std::string kubeletVersion = "v1.32.0-orrery";
  /// Injected clock for timestamps written into objects.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

/// The Node template used when none is given: 32 CPU, 256Gi memory, 110 pods, linux/amd64,
/// instance type "orrery-simulated", the simulated label.
nlohmann::json defaultNodeTemplate();

/// Per-node counters for tests and `orrery` views.
struct SimulatedNodeInfo {
  std::string name;
  std::string podCidr;
  std::string internalIp;
  bool heartbeat = true;
  size_t pods = 0;
};

class SimulatedNodes {
 public:
  /// Starts the watches and writers, then registers `options.count` nodes. Returns once the
  /// nodes are created (their status and leases follow asynchronously) and the pod watch has
  /// synced. Nodes that already exist (a restarted control plane) are adopted.
  static Result<std::unique_ptr<SimulatedNodes>> start(std::shared_ptr<client::Client> client,
                                                       SimulatedNodesOptions options);
  ~SimulatedNodes();
  SimulatedNodes(const SimulatedNodes&) = delete;
  SimulatedNodes& operator=(const SimulatedNodes&) = delete;

  /// Registers `n` more nodes (lowest free indexes); returns their names.
  Result<std::vector<std::string>> add(int n);
  /// Deletes the Node and its Lease, and the pods bound to it (as the pod GC controller does
  /// for pods of a deleted node). 404 if the name is not a simulated node of this component.
  Status remove(const std::string& name);
  /// As remove(), for many nodes at once: their API calls run side by side (each waits for
  /// the store, which commits those in flight together). Every name is tried; the first API
  /// error is returned, else 404 if a name was not a simulated node.
  Status remove(const std::vector<std::string>& names);
  /// Stops renewing the node's Lease and posting its status: a dead kubelet, for tests and
  /// lessons. Pods on it keep their last status.
  Status stopHeartbeat(const std::string& name);
  /// Resumes heartbeats (and re-posts Ready status at once).
  Status resumeHeartbeat(const std::string& name);

  std::vector<SimulatedNodeInfo> nodes() const;
  /// Pods this component currently tracks on its nodes.
  size_t podCount() const;
  /// Waits until no write is running or due now (timers set for later do not count), e.g.
  /// after add() until every node's status and Lease are written (tests, benchmarks).
  bool waitIdle(std::chrono::milliseconds timeout);

  /// Stops the watches and writers; no API call is made after it returns. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit SimulatedNodes(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::simnodes
