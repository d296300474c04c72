#pragma once
// kube-controller-manager's ResourceQuota controller: keeps status.hard equal to spec.hard and
// recounts status.used from the live objects of the namespace whenever a quota or an object it
// counts changes (and every 30 s, as a resync). The admission plugin charges new objects
// against status.used; this controller gives back what deleted objects used.

#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "resourcequota" controller (events as "resourcequota-controller").
std::unique_ptr<Controller> newResourceQuotaController();

}  // namespace orrery::controllers
