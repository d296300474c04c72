#pragma once
// kube-scheduler's ImageLocality plugin (see image_locality.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newImageLocality(const nlohmann::json& args);

}  // namespace orrery::scheduler
