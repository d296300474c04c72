#pragma once
// What an object counts against a ResourceQuota, as kube's quota evaluators compute it.
// Shared by the ResourceQuota admission plugin (engine/apiserver) and the ResourceQuota
// controller (engine/controllers), so a charge and a recount always agree.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/quantity.h"
#include "engine/api/resource.h"

namespace orrery::api {

using Quantities = std::map<std::string, Quantity>;

/// The quantities of a ResourceList object ({"cpu": "500m", ...}); bad entries are skipped.
Quantities quantitiesOf(const nlohmann::json& resourceList);
void addQuantity(Quantities& sum, const std::string& name, const Quantity& q);

/// The containers of a pod (spec.containers, then spec.initContainers when `withInit`).
std::vector<const nlohmann::json*> podContainers(const nlohmann::json& pod, bool withInit);

/// A pod's effective requests or limits (`kind` "requests" or "limits"): the sum of its
/// containers, at least each init container's, plus spec.overhead.
Quantities effectivePodResources(const nlohmann::json& pod, const char* kind);

/// Everything `object` (of resource `info`) counts against a quota, under every name a
/// quota may use: "pods", "count/pods", "requests.cpu", "cpu", "limits.memory", "services",
/// "services.nodeports", "count/deployments.apps", ... Terminal pods count nothing.
Quantities quotaUsage(const ResourceInfo& info, const nlohmann::json& object);

/// The quota's tracked compute resources a pod leaves unset, in kube's words:
/// "cpu for: app; limits.memory for: app,sidecar" (empty if none).
std::string missingQuotaResources(const nlohmann::json& pod, const Quantities& hard);

/// "pods=1,requests.cpu=500m" for `names` (kube's quota.PrettyPrint order: as given).
std::string prettyQuantities(const Quantities& q, const std::vector<std::string>& names);

}  // namespace orrery::api
