// api::cron: robfig/cron's standard schedules (what kube-apiserver validates and
// kube-controller-manager runs), their errors, and their activations on a zone's wall clock,
// across daylight-saving changes as robfig's SpecSchedule.Next places them.
#include <QtTest>

#include <chrono>

#include "engine/api/cron_schedule.h"

using namespace orrery::api;
using namespace std::chrono;

namespace {

system_clock::time_point at(int y, unsigned mo, unsigned d, int h, int mi) {
  return system_clock::time_point(sys_days(year(y) / month(mo) / day(d)) + hours(h) + minutes(mi));
}

TimeZonePtr zone(const char* name) {
  auto z = TimeZone::load(name);
  if (!z.ok()) qFatal("%s: %s", name, z.status().message().c_str());
  return *z;
}

cron::Schedule schedule(const char* text) {
  auto s = cron::parseSchedule(text);
  if (!s.ok()) qFatal("%s: %s", text, s.status().message().c_str());
  return *s;
}

std::string errorOf(const char* text) {
  auto s = cron::parseSchedule(text);
  return s.ok() ? "" : s.status().message();
}

}  // namespace

class CronScheduleTest : public QObject {
  Q_OBJECT

 private slots:
  void errorsReadLikeRobfig() {
    QCOMPARE(errorOf("* * *"), std::string("expected exactly 5 fields, found 3: [* * *]"));
    QCOMPARE(errorOf("  "), std::string("empty spec string"));
    QCOMPARE(errorOf("@fortnightly"), std::string("unrecognized descriptor: @fortnightly"));
    QCOMPARE(errorOf("@daily extra"), std::string("unrecognized descriptor: @daily extra"));
    QCOMPARE(errorOf("61 * * * *"), std::string("end of range (61) above maximum (59): 61"));
    QCOMPARE(errorOf("TZ=Mars/Olympus 0 9 * * *"),
             std::string("provided bad location Mars/Olympus: unknown time zone Mars/Olympus"));
    QCOMPARE(errorOf("@every 5x"), std::string("failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\""));
    QCOMPARE(errorOf("@every 5"), std::string("failed to parse duration @every 5: time: missing unit in duration \"5\""));
    QCOMPARE(errorOf("@every h"), std::string("failed to parse duration @every h: time: invalid duration \"h\""));
  }

  void nextInUtc() {
    const auto& utc = *TimeZone::utc();
    auto weekdays = schedule("*/15 9-17 * * MON-FRI");
    QCOMPARE(*weekdays.next(at(2024, 3, 1, 17, 50), utc), at(2024, 3, 4, 9, 0));  // Friday → Monday
    QCOMPARE(*weekdays.next(at(2024, 3, 4, 9, 0), utc), at(2024, 3, 4, 9, 15));
    QCOMPARE(*schedule("@hourly").next(at(2024, 12, 31, 23, 0), utc), at(2025, 1, 1, 0, 0));
    // Day of month OR day of week when both are restricted.
    QCOMPARE(*schedule("0 0 13 * 5").next(at(2024, 9, 1, 0, 0), utc), at(2024, 9, 6, 0, 0));
    QCOMPARE(*schedule("0 0 29 2 *").next(at(2025, 3, 1, 0, 0), utc), at(2028, 2, 29, 0, 0));
    QVERIFY(!schedule("0 0 30 2 *").next(at(2025, 3, 1, 0, 0), utc));  // never: none within five years
    // Within a minute: the next whole minute, never the same instant again.
    QCOMPARE(*schedule("* * * * *").next(at(2024, 5, 1, 10, 0) + seconds(59), utc), at(2024, 5, 1, 10, 1));
    QCOMPARE(*schedule("@every 90s").next(at(2024, 5, 1, 10, 0) + milliseconds(500), utc),
             at(2024, 5, 1, 10, 1) + seconds(30));
  }

  void nextInAFixedZone() {
    // Etc/GMT-2 is two hours east (POSIX sign): 08:00 there is 06:00 UTC.
    QCOMPARE(*schedule("0 8 * * *").next(at(2024, 5, 1, 0, 0), *zone("Etc/GMT-2")), at(2024, 5, 1, 6, 0));
    QCOMPARE(*schedule("30 8 * * *").next(at(2024, 5, 1, 0, 0), *zone("Asia/Kolkata")), at(2024, 5, 1, 3, 0));
  }

  // Europe/Berlin springs forward at 01:00 UTC on 2024-03-31 (02:00 CET becomes 03:00 CEST):
  // 02:30 does not happen that day. It falls back at 01:00 UTC on 2024-10-27 (03:00 CEST
  // becomes 02:00 CET): 02:30 happens twice, and robfig runs it twice.
  void daylightSavingInBerlin() {
    auto berlin = zone("Europe/Berlin");
    auto s = schedule("30 2 * * *");
    QCOMPARE(*s.next(at(2024, 3, 30, 2, 0), *berlin), at(2024, 4, 1, 0, 30));  // March 31 skipped
    auto first = s.next(at(2024, 10, 26, 22, 0), *berlin);
    QCOMPARE(*first, at(2024, 10, 27, 0, 30));  // 02:30 CEST
    auto second = s.next(*first, *berlin);
    QCOMPARE(*second, at(2024, 10, 27, 1, 30));  // 02:30 CET
    QCOMPARE(*s.next(*second, *berlin), at(2024, 10, 28, 1, 30));
    // A daily 09:00 keeps to the wall clock across the change: 07:00 UTC, then 08:00 UTC.
    auto nine = schedule("0 9 * * *");
    QCOMPARE(*nine.next(at(2024, 3, 30, 12, 0), *berlin), at(2024, 3, 31, 7, 0));
    QCOMPARE(*nine.next(at(2024, 10, 26, 12, 0), *berlin), at(2024, 10, 27, 8, 0));
  }

  void daylightSavingElsewhere() {
    // New York, over its spring-forward weekend: Friday 09:00 EST, Monday 09:00 EDT.
    auto newYork = zone("America/New_York");
    auto weekdays = schedule("0 9 * * MON-FRI");
    QCOMPARE(*weekdays.next(at(2024, 3, 8, 0, 0), *newYork), at(2024, 3, 8, 14, 0));
    QCOMPARE(*weekdays.next(at(2024, 3, 8, 14, 0), *newYork), at(2024, 3, 11, 13, 0));
    // Sydney springs forward on 2024-10-06: 09:00 AEST, then 09:00 AEDT.
    auto sydney = zone("Australia/Sydney");
    auto nine = schedule("0 9 * * *");
    QCOMPARE(*nine.next(at(2024, 10, 4, 12, 0), *sydney), at(2024, 10, 4, 23, 0));
    QCOMPARE(*nine.next(at(2024, 10, 4, 23, 0), *sydney), at(2024, 10, 5, 22, 0));
    // Far past the zone file's transitions, its footer rule keeps the clock (2100: CEST
    // from March 28).
    QCOMPARE(*nine.next(at(2100, 3, 28, 0, 0), *zone("Europe/Berlin")), at(2100, 3, 28, 7, 0));
  }

  // A TZ= or CRON_TZ= prefix gives the schedule its own zone, whatever the caller's.
  void prefixedZoneWins() {
    auto s = schedule("CRON_TZ=Asia/Tokyo 0 9 * * *");
    QVERIFY(s.zone);
    QCOMPARE(s.zone->name(), std::string("Asia/Tokyo"));
    QCOMPARE(*s.next(at(2024, 5, 1, 1, 0), *TimeZone::utc()), at(2024, 5, 2, 0, 0));
    QCOMPARE(*schedule("TZ=UTC @daily").next(at(2024, 5, 1, 1, 0), *zone("Asia/Tokyo")), at(2024, 5, 2, 0, 0));
  }
};

QTEST_APPLESS_MAIN(CronScheduleTest)
#include "cron_schedule_test.moc"
