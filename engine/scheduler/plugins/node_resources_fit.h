#pragma once
// kube-scheduler's NodeResourcesFit plugin (see node_resources_fit.cpp).

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// Builds the plugin from its pluginConfig args (null: kube's defaults).
Result<std::shared_ptr<Plugin>> newNodeResourcesFit(const nlohmann::json& args);

}  // namespace orrery::scheduler

namespace orrery::scheduler {

/// config.ResourceSpec: a resource and its weight in a resource-allocation score.
struct ResourceSpec {
  std::string name;
  int64_t weight = 1;
};

/// The resource a spec names, resolved once (scoring runs per node).
enum class ResourceKind { kCpu, kMemory, kEphemeralStorage, kOther };
ResourceKind resourceKind(const std::string& name);

/// Parses `resources: [{name, weight}]` of NodeResourcesFitArgs.scoringStrategy or
/// NodeResourcesBalancedAllocationArgs (weights 1..100; kube's defaults cpu:1, memory:1).
Result<std::vector<ResourceSpec>> parseResourceSpecs(const nlohmann::json& list, const std::string& path);

/// resourceAllocationScorer.calculateResourceAllocatableRequest: the node's allocatable and
/// what would be requested on it with the pod, for one resource. `useRequested` false uses
/// the non-zero requests for cpu and memory (kube's scoring defaults). A scalar resource the
/// pod does not request, or the node does not have, gives (0, 0): not scored.
void allocatableAndRequested(const NodeInfo& node, const PodInfo& pod, const std::string& resource,
                             bool useRequested, int64_t* allocatable, int64_t* requested);
void allocatableAndRequested(const NodeInfo& node, const PodInfo& pod, ResourceKind kind,
                             const std::string& resource, bool useRequested, int64_t* allocatable,
                             int64_t* requested);

}  // namespace orrery::scheduler
