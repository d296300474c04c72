#pragma once
// kube-scheduler's NodeAffinity plugin (see node_affinity.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newNodeAffinity(const nlohmann::json& args);

}  // namespace orrery::scheduler
