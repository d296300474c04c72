#pragma once
// The in-tree plugin registry (pluginRegistry() in framework.h) and which extension points
// each plugin implements, for expanding a profile's multiPoint list (config.cpp).

#include <cstdint>
#include <string>

namespace orrery::scheduler {

enum ExtensionPoint : uint32_t {
  kPointPreFilter = 1,
  kPointFilter = 2,
  kPointPostFilter = 4,
  kPointPreScore = 8,
  kPointScore = 16,
  kPointOther = 32,  // queueSort, bind, preEnqueue, reserve, ...: not run by the framework
};

/// The extension points the named in-tree plugin implements (kube's), 0 if unknown.
uint32_t pluginExtensionPoints(const std::string& name);

}  // namespace orrery::scheduler
