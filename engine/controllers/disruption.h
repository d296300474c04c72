#pragma once
// kube-controller-manager's disruption controller: keeps each PodDisruptionBudget's status
// (expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed, disruptedPods, the
// DisruptionAllowed condition) in step with its pods, so that the eviction subresource (and
// so `kubectl drain`) and the scheduler's preemption can honour it.

#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "disruption" controller (events as "controllermanager", as kube records them).
std::unique_ptr<Controller> newDisruptionController();

namespace disruption {

/// "25%" of `total`, rounded up (intstr.GetScaledValueFromIntOrPercent with roundUp), or the
/// integer itself. Fails (400) on anything else.
api::Result<int64_t> scaledValue(const nlohmann::json& intOrPercent, int64_t total, bool roundUp);

}  // namespace disruption
}  // namespace orrery::controllers
