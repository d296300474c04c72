#pragma once
// kube-controller-manager's CronJob controller (pkg/controller/cronjob, 1.32): creates Jobs
// named "<cronjob>-<scheduled minutes since the epoch>" on a cron schedule read on the
// injected clock, on the wall clock of spec.timeZone (else the controller's own zone; see
// engine/api/cron_schedule.h), honouring startingDeadlineSeconds, concurrencyPolicy, suspend
// and the successful/failed history limits, and keeps status.active, lastScheduleTime and
// lastSuccessfulTime.

#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "cronjob" controller (events as "cronjob-controller").
std::unique_ptr<Controller> newCronJobController();

}  // namespace orrery::controllers
