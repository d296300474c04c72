// ImageLocality: favours nodes that already have the pod's images, weighted by image size
// and by how many nodes have them (so one node with every image does not attract all pods).

#include "engine/scheduler/plugins/image_locality.h"

#include <algorithm>

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

constexpr int64_t kMb = 1024 * 1024;
constexpr int64_t kMinThreshold = 23 * kMb;
constexpr int64_t kMaxContainerThreshold = 1000 * kMb;

class ImageLocality final : public ScorePlugin {
 public:
  std::string name() const override { return "ImageLocality"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signNumber(signature, static_cast<int64_t>(pod.images.size()));
    for (const auto& image : pod.images) signValue(signature, image);
    return true;
  }

  int64_t score(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override {
    int64_t sum = 0;
    // The snapshot lookup is a CycleState read: only nodes with images pay for it.
    const Snapshot* snap = node.imageSizes.empty() ? nullptr : cycleSnapshot(state);
    if (snap && !snap->nodes.empty()) {
      double total = static_cast<double>(snap->nodes.size());
      for (const auto& image : pod.images) {
        auto it = node.imageSizes.find(image);
        if (it == node.imageSizes.end()) continue;
        auto count = snap->imageNodeCount.find(image);
        double spread = count == snap->imageNodeCount.end() ? 0.0 : count->second / total;
        sum += static_cast<int64_t>(static_cast<double>(it->second) * spread);
      }
    }
    int64_t numContainers = static_cast<int64_t>(pod.images.size());
    int64_t maxThreshold = kMaxContainerThreshold * std::max<int64_t>(numContainers, 1);
    sum = std::clamp(sum, kMinThreshold, maxThreshold);
    return kMaxNodeScore * (sum - kMinThreshold) / (maxThreshold - kMinThreshold);
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newImageLocality(const nlohmann::json&) {
  return std::shared_ptr<Plugin>(std::make_shared<ImageLocality>());
}

}  // namespace orrery::scheduler
