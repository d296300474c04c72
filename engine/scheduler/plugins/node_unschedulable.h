#pragma once
// kube-scheduler's NodeUnschedulable plugin (see node_unschedulable.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newNodeUnschedulable(const nlohmann::json& args);

}  // namespace orrery::scheduler
