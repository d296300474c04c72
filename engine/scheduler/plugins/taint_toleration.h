#pragma once
// kube-scheduler's TaintToleration plugin (see taint_toleration.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newTaintToleration(const nlohmann::json& args);

}  // namespace orrery::scheduler
