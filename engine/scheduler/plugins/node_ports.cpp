// NodePorts: a pod's hostPorts must be free on the node (same protocol and port, with
// 0.0.0.0 conflicting with every address).

#include "engine/scheduler/plugins/node_ports.h"

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

class NodePorts final : public PreFilterPlugin, public FilterPlugin {
 public:
  std::string name() const override { return "NodePorts"; }
  bool sign(const PodInfo& pod, const Snapshot&, std::string& signature) const override {
    signNumber(signature, static_cast<int64_t>(pod.hostPorts.size()));
    for (const auto& p : pod.hostPorts) {
      signValue(signature, p.protocol);
      signValue(signature, p.hostIP);
      signNumber(signature, p.port);
    }
    return true;
  }

  PluginStatus preFilter(CycleState&, const PodInfo& pod, const Snapshot&) override {
    return pod.hostPorts.empty() ? PluginStatus::skip() : PluginStatus::success();
  }

  PluginStatus filter(const CycleState&, const PodInfo& pod, const NodeInfo& node) const override {
    for (const auto& p : pod.hostPorts)
      if (hostPortConflicts(node.usedPorts, p))
        return PluginStatus::unschedulable({"node(s) didn't have free ports for the requested pod ports"});
    return PluginStatus::success();
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newNodePorts(const nlohmann::json&) {
  return std::shared_ptr<Plugin>(std::make_shared<NodePorts>());
}

}  // namespace orrery::scheduler
