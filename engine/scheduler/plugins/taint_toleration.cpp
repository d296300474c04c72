// TaintToleration: Filter rejects nodes with an untolerated NoSchedule/NoExecute taint; Score
// counts untolerated PreferNoSchedule taints, normalized so that fewer is better.

#include "engine/scheduler/plugins/taint_toleration.h"

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

class TaintToleration final : public FilterPlugin, public PreScorePlugin, public ScorePlugin {
 public:
  std::string name() const override { return "TaintToleration"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signTolerations(signature, pod.tolerations);
    return true;
  }
  // The raw score (untolerated PreferNoSchedule taints) is the node's own, so placing a pod
  // does not change it, but normalizing scales it by the worst node's.
  bool normalizesAcrossNodes() const override { return true; }

  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    if (node.taints.empty()) return PluginStatus::success();
    const Taint* t = findUntoleratedNoScheduleTaint(node.taints, pod.tolerations);
    if (!t) return PluginStatus::success();
    return PluginStatus::unresolvable({"node(s) had untolerated taint {" + t->key + ": " + t->value + "}"});
  }

  PluginStatus preScore(CycleState&, const PodInfo&, const Snapshot&,
                        const std::vector<const NodeInfo*>&) override {
    return PluginStatus::success();
  }

  int64_t score(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    int64_t count = 0;
    for (const auto& taint : node.taints) {
      if (taint.effect != "PreferNoSchedule") continue;
      bool tolerated = false;
      // Only tolerations that apply to PreferNoSchedule (or to every effect) count.
      for (const auto& t : pod.tolerations) {
        if (!t.effect.empty() && t.effect != "PreferNoSchedule") continue;
        if (t.tolerates(taint)) {
          tolerated = true;
          break;
        }
      }
      if (!tolerated) ++count;
    }
    return count;
  }

  void normalize(const CycleState&, const PodInfo&, std::vector<int64_t>& scores) const override {
    defaultNormalizeScore(scores, /*reverse=*/true);
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newTaintToleration(const nlohmann::json&) {
  return std::shared_ptr<Plugin>(std::make_shared<TaintToleration>());
}

}  // namespace orrery::scheduler
