#include "engine/scheduler/plugins/registry.h"

#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/balanced_allocation.h"
#include "engine/scheduler/plugins/helpers.h"
#include "engine/scheduler/plugins/image_locality.h"
#include "engine/scheduler/plugins/inter_pod_affinity.h"
#include "engine/scheduler/plugins/node_affinity.h"
#include "engine/scheduler/plugins/node_name.h"
#include "engine/scheduler/plugins/node_ports.h"
#include "engine/scheduler/plugins/node_resources_fit.h"
#include "engine/scheduler/plugins/node_unschedulable.h"
#include "engine/scheduler/plugins/pod_topology_spread.h"
#include "engine/scheduler/plugins/taint_toleration.h"

namespace orrery::scheduler {

const std::map<std::string, PluginFactory>& pluginRegistry() {
  static const std::map<std::string, PluginFactory> registry = {
      {"NodeName", newNodeName},
      {"NodeUnschedulable", newNodeUnschedulable},
      {"TaintToleration", newTaintToleration},
      {"NodeAffinity", newNodeAffinity},
      {"NodePorts", newNodePorts},
      {"NodeResourcesFit", newNodeResourcesFit},
      {"PodTopologySpread", newPodTopologySpread},
      {"InterPodAffinity", newInterPodAffinity},
      {"ImageLocality", newImageLocality},
      {"NodeResourcesBalancedAllocation", newBalancedAllocation},
      {"DefaultPreemption", newDefaultPreemption},
  };
  return registry;
}

bool isAcceptedNoopPlugin(const std::string& name) {
  return name == "SchedulingGates" || name == "PrioritySort" || name == "DefaultBinder" ||
         name == "VolumeRestrictions" || name == "NodeVolumeLimits" || name == "VolumeBinding" ||
         name == "VolumeZone" || name == "DynamicResources";
}

uint32_t pluginExtensionPoints(const std::string& name) {
  static const std::map<std::string, uint32_t> points = {
      {"NodeName", kPointFilter},
      {"NodeUnschedulable", kPointFilter},
      {"TaintToleration", kPointFilter | kPointPreScore | kPointScore},
      {"NodeAffinity", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"NodePorts", kPointPreFilter | kPointFilter},
      {"NodeResourcesFit", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"PodTopologySpread", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"InterPodAffinity", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"ImageLocality", kPointScore},
      {"NodeResourcesBalancedAllocation", kPointPreScore | kPointScore},
      {"DefaultPreemption", kPointPostFilter},
      {"SchedulingGates", kPointOther},
      {"PrioritySort", kPointOther},
      {"DefaultBinder", kPointOther},
      {"VolumeRestrictions", kPointPreFilter | kPointFilter},
      {"NodeVolumeLimits", kPointPreFilter | kPointFilter},
      {"VolumeBinding", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"VolumeZone", kPointPreFilter | kPointFilter | kPointPreScore | kPointScore},
      {"DynamicResources", kPointPreFilter | kPointFilter | kPointPostFilter},
  };
  auto it = points.find(name);
  return it == points.end() ? 0 : it->second;
}

}  // namespace orrery::scheduler
