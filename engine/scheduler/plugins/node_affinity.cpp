// NodeAffinity: spec.nodeSelector and required node affinity filter; preferred terms score
// (sum of matching weights, normalized to the best node).

#include "engine/scheduler/plugins/node_affinity.h"

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

class NodeAffinity final : public PreFilterPlugin, public FilterPlugin, public PreScorePlugin, public ScorePlugin {
 public:
  std::string name() const override { return "NodeAffinity"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signNumber(signature, static_cast<int64_t>(pod.nodeSelector.size()));
    for (const auto& [k, v] : pod.nodeSelector) {
      signValue(signature, k);
      signValue(signature, v);
    }
    signNumber(signature, static_cast<int64_t>(pod.requiredNodeAffinity.size()));
    for (const auto& term : pod.requiredNodeAffinity) signNodeSelectorTerm(signature, term);
    signNumber(signature, static_cast<int64_t>(pod.preferredNodeAffinity.size()));
    for (const auto& term : pod.preferredNodeAffinity) {
      signNumber(signature, term.weight);
      signNodeSelectorTerm(signature, term.preference);
    }
    return true;
  }
  bool normalizesAcrossNodes() const override { return true; }

  PluginStatus preFilter(CycleState&, const PodInfo& pod, const Snapshot&) override {
    if (pod.nodeSelector.empty() && pod.requiredNodeAffinity.empty()) return PluginStatus::skip();
    return PluginStatus::success();
  }

  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    if (podMatchesNodeSelectorAndAffinity(pod, node)) return PluginStatus::success();
    return PluginStatus::unresolvable({"node(s) didn't match Pod's node affinity/selector"});
  }

  PluginStatus preScore(CycleState&, const PodInfo& pod, const Snapshot&,
                        const std::vector<const NodeInfo*>&) override {
    if (pod.preferredNodeAffinity.empty()) return PluginStatus::skip();
    return PluginStatus::success();
  }

  int64_t score(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    int64_t sum = 0;
    for (const auto& t : pod.preferredNodeAffinity) {
      if (t.weight == 0) continue;
      if (nodeSelectorTermMatches(t.preference, node)) sum += t.weight;
    }
    return sum;
  }

  void normalize(const CycleState&, const PodInfo&, std::vector<int64_t>& scores) const override {
    defaultNormalizeScore(scores, /*reverse=*/false);
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newNodeAffinity(const nlohmann::json& args) {
  if (args.is_object() && args.contains("addedAffinity") && !args["addedAffinity"].is_null()) {
    // TODO(schedplugins): NodeAffinityArgs.addedAffinity (scheduler-enforced affinity).
    return Status::badRequest("addedAffinity: Invalid value: not supported by Orrery's scheduler yet");
  }
  return std::shared_ptr<Plugin>(std::make_shared<NodeAffinity>());
}

}  // namespace orrery::scheduler
