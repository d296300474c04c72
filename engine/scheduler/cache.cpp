#include "engine/scheduler/cache.h"

#include <algorithm>

namespace orrery::scheduler {

namespace {

bool sameResources(const Resources& a, const Resources& b) {
  return a.milliCpu == b.milliCpu && a.memory == b.memory && a.ephemeralStorage == b.ephemeralStorage &&
         a.allowedPodNumber == b.allowedPodNumber && a.scalar == b.scalar;
}

bool sameTaints(const std::vector<Taint>& a, const std::vector<Taint>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].value != b[i].value || a[i].effect != b[i].effect) return false;
  }
  return true;
}

// What the plugins read of a Node, beyond its pods.
bool sameNodeProperties(const NodeInfo& a, const NodeInfo& b) {
  return a.labels == b.labels && sameTaints(a.taints, b.taints) && a.unschedulable == b.unschedulable &&
         sameResources(a.allocatable, b.allocatable) && a.imageSizes == b.imageSizes;
}

// Replaces `from` by `to` in a derived list (erasing when `to` is null, appending when `from`
// is absent).
void replaceIn(std::vector<NodeInfoPtr>& list, const NodeInfo* from, const NodeInfoPtr& to) {
  auto it = std::find_if(list.begin(), list.end(), [&](const NodeInfoPtr& p) { return p.get() == from; });
  if (it == list.end()) {
    if (to) list.push_back(to);
  } else if (to) {
    *it = to;
  } else {
    list.erase(it);
  }
}

}  // namespace

NodeInfo& SchedulerCache::mutableNode(const std::string& name) {
  NodeEntry& e = nodes_[name];
  if (!e.info) {
    e.info = std::make_shared<NodeInfo>();
    e.info->name = name;
  } else if (e.shared) {
    e.info = std::make_shared<NodeInfo>(*e.info);
  }
  e.shared = false;
  e.info->generation = nextNodeGeneration();
  dirty_.insert(name);
  return *e.info;
}

void SchedulerCache::dropIfEmpty(const std::string& name) {
  auto it = nodes_.find(name);
  if (it != nodes_.end() && !it->second.hasNode && it->second.info->pods.empty()) {
    nodes_.erase(it);
    dirty_.erase(name);
  }
}

Result<bool> SchedulerCache::upsertNode(const nlohmann::json& node) {
  return upsertNode(std::make_shared<const nlohmann::json>(node));
}

Result<bool> SchedulerCache::upsertNode(std::shared_ptr<const nlohmann::json> node) {
  auto parsed = parseNode(std::move(node));
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<NodeInfo> fresh = std::move(parsed).value();
  std::lock_guard lock(mu_);
  auto it = nodes_.find(fresh->name);
  if (it != nodes_.end() && it->second.hasNode && sameNodeProperties(*it->second.info, *fresh)) {
    // A heartbeat or a status-only change: nothing the scheduler looks at.
    return false;
  }
  if (it != nodes_.end()) {
    // Keep the pods (bound or assumed) the old entry had.
    for (const auto& pod : it->second.info->pods) fresh->addPod(pod);
  }
  fresh->generation = nextNodeGeneration();
  NodeEntry& e = nodes_[fresh->name];
  e.info = std::move(fresh);
  e.shared = false;
  e.hasNode = true;
  structureChanged_ = true;
  return true;
}

void SchedulerCache::removeNode(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  // Pods still bound to it keep a ghost entry until they go, as kube's cache does.
  if (it->second.info->pods.empty()) {
    nodes_.erase(it);
  } else {
    mutableNode(name);
    nodes_[name].hasNode = false;
  }
  dirty_.erase(name);
  structureChanged_ = true;
}

void SchedulerCache::addPodLocked(const PodInfoPtr& pod) {
  mutableNode(pod->nodeName).addPod(pod);
}

void SchedulerCache::removePodLocked(const PodInfoPtr& pod) {
  auto it = nodes_.find(pod->nodeName);
  if (it == nodes_.end()) return;
  mutableNode(pod->nodeName).removePod(pod->uid);
  dropIfEmpty(pod->nodeName);
}

void SchedulerCache::addPod(const PodInfoPtr& pod) {
  if (!pod || pod->nodeName.empty()) return;
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod->uid);
  if (it != pods_.end()) {
    // Confirms an assumed pod (or a repeated add): count the API's version of it.
    removePodLocked(it->second.pod);
    addPodLocked(pod);
    it->second = {pod, false};
    return;
  }
  addPodLocked(pod);
  pods_[pod->uid] = {pod, false};
}

void SchedulerCache::updatePod(const PodInfoPtr& oldPod, const PodInfoPtr& newPod) {
  if (!newPod || newPod->nodeName.empty()) return;
  std::lock_guard lock(mu_);
  auto it = pods_.find(newPod->uid);
  if (it != pods_.end()) removePodLocked(it->second.pod);
  else if (oldPod && !oldPod->nodeName.empty()) removePodLocked(oldPod);
  addPodLocked(newPod);
  pods_[newPod->uid] = {newPod, false};
}

void SchedulerCache::removePod(const PodInfoPtr& pod) {
  if (!pod) return;
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod->uid);
  if (it == pods_.end()) return;
  removePodLocked(it->second.pod);
  pods_.erase(it);
}

Status SchedulerCache::assumePod(const PodInfoPtr& pod) {
  if (!pod || pod->nodeName.empty()) return Status::badRequest("assumePod: the pod has no node");
  std::lock_guard lock(mu_);
  if (pods_.count(pod->uid)) {
    return Status::conflict("", "pods", pod->name, "pod " + pod->ns + "/" + pod->name + " is already in the cache");
  }
  addPodLocked(pod);
  pods_[pod->uid] = {pod, true};
  return {};
}

void SchedulerCache::forgetPod(const PodInfoPtr& pod) {
  if (!pod) return;
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod->uid);
  if (it == pods_.end() || !it->second.assumed) return;
  removePodLocked(it->second.pod);
  pods_.erase(it);
}

bool SchedulerCache::isAssumed(const std::string& uid) const {
  std::lock_guard lock(mu_);
  auto it = pods_.find(uid);
  return it != pods_.end() && it->second.assumed;
}

bool SchedulerCache::hasPod(const std::string& uid) const {
  std::lock_guard lock(mu_);
  return pods_.count(uid) > 0;
}

void SchedulerCache::upsertNamespace(const std::string& name, std::map<std::string, std::string> labels) {
  std::lock_guard lock(mu_);
  auto it = namespaceLabels_.find(name);
  if (it != namespaceLabels_.end() && it->second == labels) return;
  namespaceLabels_[name] = std::move(labels);
  ++namespacesVersion_;
}

void SchedulerCache::removeNamespace(const std::string& name) {
  std::lock_guard lock(mu_);
  if (namespaceLabels_.erase(name)) ++namespacesVersion_;
}

void SchedulerCache::upsertPdb(DisruptionBudget pdb) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(pdb.ns, pdb.name);
  pdbs_[key] = std::move(pdb);
  ++pdbsVersion_;
}

void SchedulerCache::removePdb(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  if (pdbs_.erase({ns, name})) ++pdbsVersion_;
}

void SchedulerCache::updateSnapshot(Snapshot& snapshot) {
  std::lock_guard lock(mu_);
  if (structureChanged_) {
    // Nodes came, went or changed what plugins read: rebuild the node list (name order, so
    // it is stable) and its indexes.
    std::vector<std::pair<std::string, NodeEntry*>> live;
    live.reserve(nodes_.size());
    for (auto& [name, e] : nodes_) {
      if (e.hasNode) live.emplace_back(name, &e);
    }
    std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    snapshot.nodes.clear();
    snapshot.nodes.reserve(live.size());
    for (auto& [name, e] : live) {
      e->shared = true;
      snapshot.nodes.push_back(e->info);
    }
    snapshot.reindex();
    structureChanged_ = false;
    dirty_.clear();
  } else {
    for (const auto& name : dirty_) {
      auto e = nodes_.find(name);
      auto idx = snapshot.indexByName.find(name);
      if (e == nodes_.end() || !e->second.hasNode || idx == snapshot.indexByName.end()) continue;
      NodeInfoPtr old = snapshot.nodes[idx->second];
      NodeInfoPtr fresh = e->second.info;
      e->second.shared = true;
      if (old == fresh) continue;
      snapshot.nodes[idx->second] = fresh;
      // Keep the derived lists pointing at the current NodeInfos.
      if (!old->podsWithAffinity.empty() || !fresh->podsWithAffinity.empty()) {
        replaceIn(snapshot.nodesWithAffinityPods, old.get(), fresh->podsWithAffinity.empty() ? nullptr : fresh);
      }
      if (!old->podsWithRequiredAntiAffinity.empty() || !fresh->podsWithRequiredAntiAffinity.empty()) {
        replaceIn(snapshot.nodesWithRequiredAntiAffinityPods, old.get(),
                  fresh->podsWithRequiredAntiAffinity.empty() ? nullptr : fresh);
      }
    }
    dirty_.clear();
  }
  if (snapshotNamespacesVersion_ != namespacesVersion_) {
    snapshot.namespaceLabels = namespaceLabels_;
    snapshotNamespacesVersion_ = namespacesVersion_;
  }
  if (snapshotPdbsVersion_ != pdbsVersion_) {
    snapshot.disruptionBudgets.clear();
    for (const auto& [key, pdb] : pdbs_) snapshot.disruptionBudgets.push_back(pdb);
    snapshotPdbsVersion_ = pdbsVersion_;
  }
}

size_t SchedulerCache::nodeCount() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [name, e] : nodes_) n += e.hasNode ? 1 : 0;
  return n;
}

size_t SchedulerCache::podCount() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

NodeInfoPtr SchedulerCache::node(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return nullptr;
  it->second.shared = true;  // the caller may keep it: never change it in place again
  return it->second.info;
}

}  // namespace orrery::scheduler
