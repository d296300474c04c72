#pragma once
// kube-scheduler's PodTopologySpread plugin (see pod_topology_spread.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newPodTopologySpread(const nlohmann::json& args);

}  // namespace orrery::scheduler
