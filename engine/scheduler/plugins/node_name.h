#pragma once
// kube-scheduler's NodeName plugin (see node_name.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newNodeName(const nlohmann::json& args);

}  // namespace orrery::scheduler
