#pragma once
// Time zones of the IANA tz database, as Go's time.LoadLocation reads them: kube-apiserver
// validates a CronJob's spec.timeZone with it, and the CronJob controller evaluates the
// schedule in that zone, across daylight-saving changes. Zones come from the system's
// zoneinfo files (TZif, RFC 8536; Debian's tzdata package), the one read-only input of
// engine/api that is not a request.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::api {

class TimeZone {
 public:
  /// A stretch of time with one offset from UTC, [start, end) in seconds since the epoch.
  struct Period {
    int32_t offset = 0;  // seconds east of UTC
    bool dst = false;
    std::string abbreviation;  // "CEST"
    int64_t start = INT64_MIN, end = INT64_MAX;
  };

  /// As time.LoadLocation: "" and "UTC" are UTC; "Local" is the process's zone ($TZ, else
  /// /etc/localtime, else UTC); any other name is read from $ZONEINFO (a directory) or
  /// /usr/share/zoneinfo. A name that is absolute or climbs with ".." fails with "time:
  /// invalid location name"; one without a file with "unknown time zone <name>". Loaded
  /// zones are kept for the life of the process.
  static Result<std::shared_ptr<const TimeZone>> load(const std::string& name);
  /// UTC, which needs no file.
  static std::shared_ptr<const TimeZone> utc();
  /// Parses TZif data (tests; load() reads files with it). `name` is what name() returns.
  static Result<std::shared_ptr<const TimeZone>> fromTzif(const std::string& name, const std::string& data);

  const std::string& name() const { return name_; }
  /// The offset in force at a UTC instant, and the period it holds for.
  Period lookup(int64_t unixSeconds) const;
  /// The instant whose wall clock in this zone reads `localSeconds` (seconds since
  /// 1970-01-01T00:00:00 on that clock), resolved as Go's time.Date does: with the offset in
  /// force at that wall time read as UTC, corrected once if that lands outside its period.
  /// A wall time that a change skips or repeats so lands on a side that depends on the
  /// zone's side of UTC (Berlin's skipped 02:30 reads 03:30 CEST, New York's 01:30 EST).
  int64_t fromLocal(int64_t localSeconds) const;

  /// A UTC instant read on this zone's wall clock (Go's t.In(zone) with Date, Clock, Weekday).
  struct WallClock {
    int year = 0;
    unsigned month = 0, day = 0, weekday = 0;  // weekday: 0 is Sunday
    int hour = 0, minute = 0, second = 0;
    int32_t offset = 0;  // seconds east of UTC, in force then
  };
  WallClock wallClock(int64_t unixSeconds) const;
  /// Go's time.Date(year, month, day, hour, minute, second, 0, zone): months and days out of
  /// range carry over (month 13 is January of the next year, January 32 is February 1), and
  /// the wall time resolves as fromLocal() does.
  int64_t date(int year, int month, int day, int hour, int minute, int second) const;
  /// RFC 3339 on this zone's wall clock, as Go's t.In(zone).Format(time.RFC3339):
  /// "2024-05-01T08:30:00+05:30", or "...Z" at offset 0.
  std::string rfc3339(int64_t unixSeconds) const;

 private:
  struct Type {
    int32_t offset = 0;
    bool dst = false;
    std::string abbreviation;
  };
  // One change of a POSIX TZ rule: a day of the year and a local time of day.
  struct Rule {
    enum Kind { kJulian, kDayOfYear, kMonthWeekDay } kind = kMonthWeekDay;
    int day = 0, week = 0, month = 0;
    int32_t time = 2 * 3600;  // seconds after local midnight, may be negative or past 24h
  };
  // The TZif footer: the rule for instants after the last transition ("CET-1CEST,M3.5.0,M10.5.0/3").
  struct Extension {
    bool present = false;
    Type standard, daylight;
    bool hasDaylight = false;
    Rule start, end;
  };

  static Result<Extension> parseExtension(const std::string& text);
  Period fromExtension(int64_t unixSeconds, int64_t lastTransition) const;

  std::string name_;
  std::vector<int64_t> transitions_;   // ascending, seconds since the epoch
  std::vector<uint8_t> transitionTypes_;  // index into types_ for each transition
  std::vector<Type> types_;               // empty: UTC
  Extension extension_;
};

using TimeZonePtr = std::shared_ptr<const TimeZone>;

}  // namespace orrery::api
