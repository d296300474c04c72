#pragma once
// Cron schedules as Kubernetes reads a CronJob's spec.schedule: robfig/cron v3's standard
// parser (what kube-apiserver validates with and kube-controller-manager runs), and its
// SpecSchedule.Next, step for step, so that activations across daylight-saving changes fall
// where they fall on a real cluster.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/api/status.h"
#include "engine/api/time_zone.h"

namespace orrery::api::cron {

/// A parsed standard schedule: five fields (minute hour day-of-month month day-of-week) with
/// *, ?, lists, ranges, steps, month and weekday names, or @yearly/@annually/@monthly/
/// @weekly/@daily/@midnight/@hourly/@every <duration>, optionally after "TZ=<zone> " or "CRON_TZ=<zone> ".
/// When both day fields are restricted a day matches either (cron's OR rule).
struct Schedule {
  uint64_t minuteBits = 0, hourBits = 0, domBits = 0, monthBits = 0, dowBits = 0;  // bit per value
  bool domStar = false, dowStar = false;
  /// The zone of a TZ= or CRON_TZ= prefix; null: the caller's (kube: spec.timeZone, else the
  /// controller's local zone).
  TimeZonePtr zone;
  /// "@every <duration>": activations this far apart (whole seconds), whatever the fields say.
  std::optional<std::chrono::seconds> every;

  /// The first activation strictly after `after`, on the wall clock of `zone` (this
  /// schedule's own zone, when it has one); none within five years. A time a spring-forward
  /// skips does not happen that day; a time a fall-back repeats happens twice, as robfig's.
  std::optional<std::chrono::system_clock::time_point> next(std::chrono::system_clock::time_point after,
                                                            const TimeZone& zone) const;
};

/// Parses a schedule (robfig's ParseStandard); the error reads like robfig's.
Result<Schedule> parseSchedule(const std::string& spec);

}  // namespace orrery::api::cron
