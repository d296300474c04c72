#pragma once
// kube-scheduler's BalancedAllocation plugin (see balanced_allocation.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newBalancedAllocation(const nlohmann::json& args);

}  // namespace orrery::scheduler
