// Nodes with the pods on them, the snapshot a cycle reads, and the cycle state copies.

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

bool hasAffinityTerms(const PodInfo& p) {
  return !p.requiredAffinity.empty() || !p.requiredAntiAffinity.empty() || !p.preferredAffinity.empty() ||
         !p.preferredAntiAffinity.empty();
}

template <typename Vec>
bool eraseUid(Vec& v, const std::string& uid) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    if ((*it)->uid == uid) {
      // Order of pods on a node does not matter to any plugin: swap-and-pop.
      *it = std::move(v.back());
      v.pop_back();
      return true;
    }
  }
  return false;
}

struct NodeNameTable {
  std::shared_mutex mu;
  std::unordered_map<std::string, uint32_t> ids;
  std::deque<std::string> names{""};  // index = id; a deque keeps references stable
};
NodeNameTable& nodeNames() {
  // Leaked on purpose: decision records may be read while statics are destroyed at exit.
  static NodeNameTable* table = new NodeNameTable();
  return *table;
}

}  // namespace

uint32_t internNodeName(const std::string& name) {
  if (name.empty()) return 0;
  NodeNameTable& t = nodeNames();
  {
    std::shared_lock lock(t.mu);
    if (auto it = t.ids.find(name); it != t.ids.end()) return it->second;
  }
  std::unique_lock lock(t.mu);
  auto [it, added] = t.ids.emplace(name, static_cast<uint32_t>(t.names.size()));
  if (added) t.names.push_back(name);
  return it->second;
}

int64_t nextNodeGeneration() {
  static std::atomic<int64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::string nodeNameOf(uint32_t id) {
  NodeNameTable& t = nodeNames();
  std::shared_lock lock(t.mu);
  return id < t.names.size() ? t.names[id] : std::string();
}

Result<std::shared_ptr<NodeInfo>> parseNode(const nlohmann::json& node) {
  return parseNode(std::make_shared<const nlohmann::json>(node));
}

const std::string* NodeInfo::label(const std::string& key) const {
  if (key == kHostnameLabelKey) return hostnameLabel ? &*hostnameLabel : nullptr;
  if (key == kZoneLabelKey) return zoneLabel ? &*zoneLabel : nullptr;
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

void NodeInfo::indexTopologyLabels() {
  auto valueOf = [&](std::string_view key) -> std::optional<std::string> {
    auto it = labels.find(std::string(key));
    if (it == labels.end()) return std::nullopt;
    return it->second;
  };
  hostnameLabel = valueOf(kHostnameLabelKey);
  zoneLabel = valueOf(kZoneLabelKey);
}

Result<std::shared_ptr<NodeInfo>> parseNode(std::shared_ptr<const nlohmann::json> shared) {
  if (!shared) return Status::badRequest("node: must be an object");
  const nlohmann::json& node = *shared;
  try {
    if (!node.is_object()) return Status::badRequest("node: must be an object");
    auto info = std::make_shared<NodeInfo>();
    const nlohmann::json& meta = memberOrEmpty(node, "metadata");
    const nlohmann::json& spec = memberOrEmpty(node, "spec");
    const nlohmann::json& status = memberOrEmpty(node, "status");
    info->name = stringMember(meta, "name");
    if (info->name.empty()) return Status::badRequest("metadata.name: Required value: name is required");
    info->nameId = internNodeName(info->name);
    if (auto l = meta.find("labels"); l != meta.end() && l->is_object())
      for (auto it = l->begin(); it != l->end(); ++it)
        if (it->is_string()) info->labels[it.key()] = it->get<std::string>();
    info->indexTopologyLabels();
    info->unschedulable = spec.value("unschedulable", false);
    if (auto t = spec.find("taints"); t != spec.end() && t->is_array()) {
      for (const auto& tj : *t) {
        if (!tj.is_object()) continue;
        info->taints.push_back({stringMember(tj, "key"), stringMember(tj, "value"), stringMember(tj, "effect")});
      }
    }
    // kube-apiserver defaults status.allocatable to status.capacity.
    nlohmann::json allocatable = status.value("allocatable", nlohmann::json());
    if (allocatable.is_null() || allocatable.empty()) allocatable = status.value("capacity", nlohmann::json());
    if (auto s = addResourceList(allocatable, "status.allocatable", info->allocatable, nullptr, nullptr); !s) return s;
    if (auto imgs = status.find("images"); imgs != status.end() && imgs->is_array()) {
      for (const auto& img : *imgs) {
        int64_t size = img.value("sizeBytes", int64_t{0});
        if (auto names = img.find("names"); names != img.end() && names->is_array())
          for (const auto& n : *names)
            if (n.is_string()) info->imageSizes[normalizeImageName(n.get<std::string>())] = size;
      }
    }
    info->object = std::move(shared);
    return info;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("node: ") + e.what());
  }
}

void NodeInfo::addPod(const PodInfoPtr& pod) {
  pods.push_back(pod);
  if (hasAffinityTerms(*pod)) podsWithAffinity.push_back(pod);
  if (!pod->requiredAntiAffinity.empty()) podsWithRequiredAntiAffinity.push_back(pod);
  requested.add(pod->requests);
  nonZeroRequested.add(pod->nonZeroRequests);
  for (const auto& p : pod->hostPorts) ++usedPorts[p];
  generation = nextNodeGeneration();
}

bool NodeInfo::removePod(const std::string& uid) {
  PodInfoPtr pod;
  for (const auto& p : pods)
    if (p->uid == uid) {
      pod = p;
      break;
    }
  if (!pod) return false;
  eraseUid(pods, uid);
  eraseUid(podsWithAffinity, uid);
  eraseUid(podsWithRequiredAntiAffinity, uid);
  requested.subtract(pod->requests);
  nonZeroRequested.subtract(pod->nonZeroRequests);
  for (const auto& p : pod->hostPorts) {
    auto it = usedPorts.find(p);
    if (it != usedPorts.end() && --it->second <= 0) usedPorts.erase(it);
  }
  generation = nextNodeGeneration();
  return true;
}

const NodeInfo* Snapshot::find(const std::string& name) const {
  auto it = indexByName.find(name);
  return it == indexByName.end() ? nullptr : nodes[it->second].get();
}

void Snapshot::reindex() {
  indexByName.clear();
  nodesWithAffinityPods.clear();
  nodesWithRequiredAntiAffinityPods.clear();
  imageNodeCount.clear();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    indexByName[n->name] = i;
    if (!n->podsWithAffinity.empty()) nodesWithAffinityPods.push_back(n);
    if (!n->podsWithRequiredAntiAffinity.empty()) nodesWithRequiredAntiAffinityPods.push_back(n);
    for (const auto& [image, size] : n->imageSizes) ++imageNodeCount[image];
  }
}

CycleState CycleState::clone() const {
  CycleState out;
  for (const auto& [k, v] : data_) {
    auto copy = v ? v->clone() : nullptr;
    out.data_[k] = copy ? copy : v;
  }
  return out;
}

}  // namespace orrery::scheduler
