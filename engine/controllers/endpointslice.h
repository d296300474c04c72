#pragma once
// kube-controller-manager's EndpointSlice controller (pkg/controller/endpointslice and the
// reconciler of staging/src/k8s.io/endpointslice): for each Service with a selector, the
// EndpointSlices (discovery.k8s.io/v1) listing the pods it selects, at most 100 endpoints per
// slice, grouped by port set, with ready/serving/terminating conditions, node and zone. Updates
// reuse existing slices so that a change to one pod rewrites one slice, not all of them.

#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "endpointslice" controller (events as "endpoint-slice-controller").
std::unique_ptr<Controller> newEndpointSliceController(int maxEndpointsPerSlice = 100);

namespace endpointslice {
/// The managed-by label value of slices this controller owns.
inline constexpr const char* kControllerName = "endpointslice-controller.k8s.io";
inline constexpr const char* kLabelServiceName = "kubernetes.io/service-name";
inline constexpr const char* kLabelManagedBy = "endpointslice.kubernetes.io/managed-by";
}  // namespace endpointslice

}  // namespace orrery::controllers
