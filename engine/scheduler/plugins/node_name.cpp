// NodeName: a pod with spec.nodeName fits only that node.

#include "engine/scheduler/plugins/node_name.h"

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

class NodeName final : public FilterPlugin {
 public:
  std::string name() const override { return "NodeName"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signValue(signature, pod.nodeName);
    return true;
  }
  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    if (!pod.nodeName.empty() && pod.nodeName != node.name)
      return PluginStatus::unresolvable({"node(s) didn't match the requested node name"});
    return PluginStatus::success();
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newNodeName(const nlohmann::json&) {
  return std::shared_ptr<Plugin>(std::make_shared<NodeName>());
}

}  // namespace orrery::scheduler
