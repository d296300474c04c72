#pragma once
// kube-controller-manager's CronJob controller (pkg/controller/cronjob, 1.32): creates Jobs
// named "<cronjob>-<scheduled minutes since the epoch>" on a cron schedule read on the
// injected clock, honouring startingDeadlineSeconds, concurrencyPolicy, suspend and the
// successful/failed history limits, and keeps status.active, lastScheduleTime and
// lastSuccessfulTime.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/api/status.h"
#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "cronjob" controller (events as "cronjob-controller").
std::unique_ptr<Controller> newCronJobController();

namespace cronjob {

/// A parsed standard cron schedule (robfig/cron ParseStandard): five fields (minute hour
/// day-of-month month day-of-week) with *, ?, lists, ranges, steps, month and weekday names,
/// or @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly. When both day fields are
/// restricted a day matches either (cron's OR rule).
struct Schedule {
  uint64_t minuteBits = 0, hourBits = 0, domBits = 0, monthBits = 0, dowBits = 0;  // bit per value
  bool domStar = false, dowStar = false;
  /// The first activation strictly after `after`, in a zone `utcOffset` east of UTC; none
  /// within five years.
  std::optional<std::chrono::system_clock::time_point> next(std::chrono::system_clock::time_point after,
                                                            std::chrono::seconds utcOffset) const;
};

/// Parses a schedule; the error reads like robfig/cron's.
api::Result<Schedule> parseSchedule(const std::string& spec);

/// The fixed UTC offset of a spec.timeZone: "" (the controller's local zone), UTC, Etc/UTC,
/// GMT, Etc/GMT, Etc/GMT+N / Etc/GMT-N (POSIX sign: Etc/GMT+5 is five hours west of UTC).
/// Other names (zones with DST rules) are an error: the tz database is not read yet.
api::Result<std::chrono::seconds> zoneOffset(const std::string& timeZone, std::chrono::system_clock::time_point at);

}  // namespace cronjob
}  // namespace orrery::controllers
