#pragma once
// kube-controller-manager's StatefulSet controller: pods with stable names ("<set>-<ordinal>"),
// hostnames and claims ("<claim>-<set>-<ordinal>"), created and deleted in order
// (OrderedReady) or all at once (Parallel), template history in ControllerRevisions
// ("<set>-<hash>", the pods' controller-revision-hash label), and RollingUpdate from the
// highest ordinal down to spec.updateStrategy.rollingUpdate.partition (or OnDelete).

#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "statefulset" controller (events as "statefulset-controller").
std::unique_ptr<Controller> newStatefulSetController();

}  // namespace orrery::controllers
