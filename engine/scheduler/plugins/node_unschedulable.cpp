// NodeUnschedulable: spec.unschedulable nodes (kubectl cordon) take only pods that tolerate
// the node.kubernetes.io/unschedulable:NoSchedule taint.

#include "engine/scheduler/plugins/node_unschedulable.h"

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

class NodeUnschedulable final : public FilterPlugin {
 public:
  std::string name() const override { return "NodeUnschedulable"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signTolerations(signature, pod.tolerations);
    return true;
  }
  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    if (!node.unschedulable) return PluginStatus::success();
    static const Taint kUnschedulable{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
    if (tolerationsTolerate(pod.tolerations, kUnschedulable)) return PluginStatus::success();
    return PluginStatus::unresolvable({"node(s) were unschedulable"});
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newNodeUnschedulable(const nlohmann::json&) {
  return std::shared_ptr<Plugin>(std::make_shared<NodeUnschedulable>());
}

}  // namespace orrery::scheduler
