// NodeResourcesFit: the pod's effective requests must fit what the node has left
// (allocatable minus requested), and "Too many pods" past allocatable pods. Score by the
// configured strategy: LeastAllocated (default), MostAllocated or RequestedToCapacityRatio.

#include "engine/scheduler/plugins/node_resources_fit.h"

#include <cmath>
#include <set>

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

constexpr int64_t kMaxUtilization = 100;
constexpr int64_t kMaxCustomPriorityScore = 10;

struct ShapePoint {
  int64_t utilization = 0, score = 0;
};

enum class Strategy { kLeastAllocated, kMostAllocated, kRequestedToCapacityRatio };

int64_t brokenLinear(const std::vector<ShapePoint>& shape, int64_t p) {
  for (size_t i = 0; i < shape.size(); ++i) {
    if (p <= shape[i].utilization) {
      if (i == 0) return shape[0].score;
      return shape[i - 1].score + (shape[i].score - shape[i - 1].score) * (p - shape[i - 1].utilization) /
                                      (shape[i].utilization - shape[i - 1].utilization);
    }
  }
  return shape.back().score;
}

class NodeResourcesFit final : public PreFilterPlugin, public FilterPlugin, public PreScorePlugin, public ScorePlugin {
 public:
  std::string name() const override { return "NodeResourcesFit"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signResources(signature, pod.requests);
    signResources(signature, pod.nonZeroRequests);
    return true;
  }

  Strategy strategy = Strategy::kLeastAllocated;
  std::vector<ResourceSpec> resources{{"cpu", 1}, {"memory", 1}};
  std::vector<ResourceKind> kinds{ResourceKind::kCpu, ResourceKind::kMemory};
  std::vector<ShapePoint> shape;
  std::set<std::string> ignoredResources, ignoredGroups;

  PluginStatus preFilter(CycleState&, const PodInfo&, const Snapshot&) override {
    return PluginStatus::success();  // the effective requests are in PodInfo already
  }

  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    std::vector<std::string> reasons;
    if (static_cast<int64_t>(node.pods.size()) + 1 > node.allocatable.allowedPodNumber) reasons.push_back("Too many pods");
    const Resources& r = pod.requests;
    if (r.milliCpu == 0 && r.memory == 0 && r.ephemeralStorage == 0 && r.scalar.empty())
      return reasons.empty() ? PluginStatus::success() : PluginStatus::unschedulable(std::move(reasons));
    if (r.milliCpu > 0 && r.milliCpu > node.allocatable.milliCpu - node.requested.milliCpu)
      reasons.push_back("Insufficient cpu");
    if (r.memory > 0 && r.memory > node.allocatable.memory - node.requested.memory)
      reasons.push_back("Insufficient memory");
    if (r.ephemeralStorage > 0 && r.ephemeralStorage > node.allocatable.ephemeralStorage - node.requested.ephemeralStorage)
      reasons.push_back("Insufficient ephemeral-storage");
    for (const auto& [name, quantity] : r.scalar) {
      if (quantity == 0) continue;
      if (isIgnored(name)) continue;
      auto a = node.allocatable.scalar.find(name);
      auto q = node.requested.scalar.find(name);
      int64_t free = (a == node.allocatable.scalar.end() ? 0 : a->second) -
                     (q == node.requested.scalar.end() ? 0 : q->second);
      if (quantity > free) reasons.push_back("Insufficient " + name);
    }
    return reasons.empty() ? PluginStatus::success() : PluginStatus::unschedulable(std::move(reasons));
  }

  PluginStatus preScore(CycleState&, const PodInfo&, const Snapshot&,
                        const std::vector<const NodeInfo*>&) override {
    return PluginStatus::success();
  }

  int64_t score(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    int64_t nodeScore = 0, weightSum = 0;
    for (size_t r = 0; r < resources.size(); ++r) {
      const auto& res = resources[r];
      int64_t alloc = 0, req = 0;
      allocatableAndRequested(node, pod, kinds[r], res.name, /*useRequested=*/false, &alloc, &req);
      if (alloc == 0) continue;
      int64_t s = 0;
      switch (strategy) {
        case Strategy::kLeastAllocated:
          s = req > alloc ? 0 : (alloc - req) * kMaxNodeScore / alloc;
          break;
        case Strategy::kMostAllocated:
          s = std::min(req, alloc) * kMaxNodeScore / alloc;
          break;
        case Strategy::kRequestedToCapacityRatio:
          s = req > alloc ? brokenLinear(shape, kMaxUtilization) : brokenLinear(shape, req * kMaxUtilization / alloc);
          // kube's RequestedToCapacityRatio only averages resources with a positive score.
          if (s <= 0) continue;
          break;
      }
      nodeScore += s * res.weight;
      weightSum += res.weight;
    }
    if (weightSum == 0) return 0;
    if (strategy == Strategy::kRequestedToCapacityRatio)
      return static_cast<int64_t>(std::llround(static_cast<double>(nodeScore) / static_cast<double>(weightSum)));
    return nodeScore / weightSum;
  }

 private:
  bool isIgnored(const std::string& name) const {
    if (ignoredResources.count(name)) return true;
    auto slash = name.find('/');
    return slash != std::string::npos && ignoredGroups.count(name.substr(0, slash));
  }
};

}  // namespace

Result<std::vector<ResourceSpec>> parseResourceSpecs(const nlohmann::json& list, const std::string& path) {
  std::vector<ResourceSpec> out;
  if (list.is_null()) return std::vector<ResourceSpec>{{"cpu", 1}, {"memory", 1}};
  if (!list.is_array()) return Status::badRequest(path + ": Invalid value: must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& r = list[i];
    std::string p = path + "[" + std::to_string(i) + "]";
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string())
      return Status::badRequest(p + ".name: Required value");
    ResourceSpec spec;
    spec.name = r["name"].get<std::string>();
    spec.weight = r.value("weight", int64_t{1});
    if (spec.weight <= 0 || spec.weight > 100)
      return Status::badRequest(p + ".weight: Invalid value: " + std::to_string(spec.weight) +
                                ": resource weight of " + spec.name + " not in valid range [1, 100]");
    out.push_back(std::move(spec));
  }
  return out;
}

ResourceKind resourceKind(const std::string& name) {
  if (name == "cpu") return ResourceKind::kCpu;
  if (name == "memory") return ResourceKind::kMemory;
  if (name == "ephemeral-storage") return ResourceKind::kEphemeralStorage;
  return ResourceKind::kOther;
}

void allocatableAndRequested(const NodeInfo& node, const PodInfo& pod, const std::string& resource,
                             bool useRequested, int64_t* allocatable, int64_t* requested) {
  allocatableAndRequested(node, pod, resourceKind(resource), resource, useRequested, allocatable, requested);
}

void allocatableAndRequested(const NodeInfo& node, const PodInfo& pod, ResourceKind kind,
                             const std::string& resource, bool useRequested, int64_t* allocatable,
                             int64_t* requested) {
  const Resources& nodeReq = useRequested ? node.requested : node.nonZeroRequested;
  const Resources& podReq = useRequested ? pod.requests : pod.nonZeroRequests;
  *allocatable = 0;
  *requested = 0;
  if (kind == ResourceKind::kCpu) {
    *allocatable = node.allocatable.milliCpu;
    *requested = nodeReq.milliCpu + podReq.milliCpu;
  } else if (kind == ResourceKind::kMemory) {
    *allocatable = node.allocatable.memory;
    *requested = nodeReq.memory + podReq.memory;
  } else if (kind == ResourceKind::kEphemeralStorage) {
    *allocatable = node.allocatable.ephemeralStorage;
    *requested = node.requested.ephemeralStorage + pod.requests.ephemeralStorage;
  } else {
    auto p = pod.requests.scalar.find(resource);
    int64_t podRequest = p == pod.requests.scalar.end() ? 0 : p->second;
    if (podRequest == 0 && isScalarResourceName(resource)) return;
    auto a = node.allocatable.scalar.find(resource);
    if (a == node.allocatable.scalar.end()) return;
    auto q = node.requested.scalar.find(resource);
    *allocatable = a->second;
    *requested = (q == node.requested.scalar.end() ? 0 : q->second) + podRequest;
  }
}

Result<std::shared_ptr<Plugin>> newNodeResourcesFit(const nlohmann::json& args) {
  auto plugin = std::make_shared<NodeResourcesFit>();
  if (args.is_object()) {
    for (const char* key : {"ignoredResources", "ignoredResourceGroups"}) {
      auto it = args.find(key);
      if (it == args.end() || it->is_null()) continue;
      if (!it->is_array()) return Status::badRequest(std::string(key) + ": Invalid value: must be a list");
      for (const auto& v : *it)
        if (v.is_string())
          (std::string(key) == "ignoredResources" ? plugin->ignoredResources : plugin->ignoredGroups)
              .insert(v.get<std::string>());
    }
    auto ss = args.find("scoringStrategy");
    if (ss != args.end() && ss->is_object()) {
      std::string type = ss->value("type", std::string("LeastAllocated"));
      if (type == "LeastAllocated") {
        plugin->strategy = Strategy::kLeastAllocated;
      } else if (type == "MostAllocated") {
        plugin->strategy = Strategy::kMostAllocated;
      } else if (type == "RequestedToCapacityRatio") {
        plugin->strategy = Strategy::kRequestedToCapacityRatio;
      } else {
        return Status::badRequest("scoringStrategy.type: Unsupported value: \"" + type +
                                  "\": supported values: \"LeastAllocated\", \"MostAllocated\", "
                                  "\"RequestedToCapacityRatio\"");
      }
      auto specs = parseResourceSpecs(ss->value("resources", nlohmann::json()), "scoringStrategy.resources");
      if (!specs) return specs.status();
      plugin->resources = std::move(*specs);
      plugin->kinds.clear();
      for (const auto& r : plugin->resources) plugin->kinds.push_back(resourceKind(r.name));
      if (plugin->strategy == Strategy::kRequestedToCapacityRatio) {
        const auto& shape = ss->value("requestedToCapacityRatio", nlohmann::json::object()).value("shape", nlohmann::json());
        if (!shape.is_array() || shape.empty())
          return Status::badRequest("scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified");
        int64_t last = -1;
        for (size_t i = 0; i < shape.size(); ++i) {
          std::string p = "scoringStrategy.requestedToCapacityRatio.shape[" + std::to_string(i) + "]";
          int64_t u = shape[i].value("utilization", int64_t{0}), s = shape[i].value("score", int64_t{0});
          if (u < 0 || u > 100)
            return Status::badRequest(p + ".utilization: Invalid value: " + std::to_string(u) + ": not in valid range [0-100]");
          if (u <= last)
            return Status::badRequest(p + ".utilization: Invalid value: " + std::to_string(u) + ": utilization values must be sorted in increasing order");
          if (s < 0 || s > kMaxCustomPriorityScore)
            return Status::badRequest(p + ".score: Invalid value: " + std::to_string(s) + ": not in valid range [0-10]");
          last = u;
          plugin->shape.push_back({u, s * (kMaxNodeScore / kMaxCustomPriorityScore)});
        }
      }
    }
  }
  return std::shared_ptr<Plugin>(plugin);
}

}  // namespace orrery::scheduler
