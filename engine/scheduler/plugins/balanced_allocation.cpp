// NodeResourcesBalancedAllocation: favours nodes whose resource fractions (requested with the
// pod / allocatable) are close to each other: (1 - standard deviation) * 100.

#include "engine/scheduler/plugins/balanced_allocation.h"

#include <cmath>

#include "engine/scheduler/plugins/helpers.h"
#include "engine/scheduler/plugins/node_resources_fit.h"

namespace orrery::scheduler {

namespace {

class BalancedAllocation final : public PreScorePlugin, public ScorePlugin {
 public:
  std::string name() const override { return "NodeResourcesBalancedAllocation"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signResources(signature, pod.requests);
    signResources(signature, pod.nonZeroRequests);
    return true;
  }
  std::vector<ResourceSpec> resources{{"cpu", 1}, {"memory", 1}};
  std::vector<ResourceKind> kinds{ResourceKind::kCpu, ResourceKind::kMemory};

  PluginStatus preScore(CycleState&, const PodInfo&, const Snapshot&,
                        const std::vector<const NodeInfo*>&) override {
    return PluginStatus::success();
  }

  int64_t score(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    double fractions[8];
    size_t n = 0;
    std::vector<double> more;
    double total = 0;
    for (size_t r = 0; r < resources.size(); ++r) {
      int64_t alloc = 0, req = 0;
      // kube scores balance on the real requests (useRequested), not the non-zero defaults.
      allocatableAndRequested(node, pod, kinds[r], resources[r].name, /*useRequested=*/true, &alloc, &req);
      if (alloc == 0) continue;
      double f = std::min(1.0, static_cast<double>(req) / static_cast<double>(alloc));
      total += f;
      if (n < 8) fractions[n] = f; else more.push_back(f);
      ++n;
    }
    double stddev = 0;
    if (n == 2) {
      stddev = std::fabs((fractions[0] - fractions[1]) / 2);
    } else if (n > 2) {
      double mean = total / static_cast<double>(n), sum = 0;
      for (size_t i = 0; i < n; ++i) {
        double f = i < 8 ? fractions[i] : more[i - 8];
        sum += (f - mean) * (f - mean);
      }
      stddev = std::sqrt(sum / static_cast<double>(n));
    }
    return static_cast<int64_t>((1 - stddev) * static_cast<double>(kMaxNodeScore));
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newBalancedAllocation(const nlohmann::json& args) {
  auto plugin = std::make_shared<BalancedAllocation>();
  if (args.is_object() && args.contains("resources")) {
    auto specs = parseResourceSpecs(args["resources"], "resources");
    if (!specs) return specs.status();
    plugin->resources = std::move(*specs);
    plugin->kinds.clear();
    for (const auto& r : plugin->resources) plugin->kinds.push_back(resourceKind(r.name));
  }
  return std::shared_ptr<Plugin>(plugin);
}

}  // namespace orrery::scheduler
