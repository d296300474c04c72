// api::TimeZone: zones read from the system's tz database, judged against glibc's reading of
// the same files (an independent implementation), and Go's time.Date for wall times that a
// daylight-saving change skips or repeats.
#include <QtTest>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/api/time_zone.h"

using namespace orrery::api;

namespace {

int64_t utcSeconds(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  using namespace std::chrono;
  return (sys_days(year(y) / month(mo) / day(d)).time_since_epoch().count()) * 86400 + h * 3600 + mi * 60 + s;
}

// Wall-clock seconds since 1970-01-01T00:00 on the zone's clock.
int64_t localSeconds(int y, unsigned mo, unsigned d, int h, int mi) { return utcSeconds(y, mo, d, h, mi); }

TimeZonePtr zone(const char* name) {
  auto z = TimeZone::load(name);
  if (!z.ok()) qFatal("%s: %s", name, z.status().message().c_str());
  return *z;
}

}  // namespace

class TimeZoneTest : public QObject {
  Q_OBJECT

 private slots:
  // Before any other zone is loaded: "Local" follows $TZ as Go's time.Local does.
  void localFollowsTz() {
    qputenv("TZ", "Asia/Tokyo");  // (under Qt's lock: QtTest's watchdog thread reads the environment)
    auto local = TimeZone::load("Local");
    QVERIFY(local.ok());
    QCOMPARE((*local)->lookup(utcSeconds(2024, 7, 1, 0, 0)).offset, 9 * 3600);
    qunsetenv("TZ");
  }

  void namesAndErrors() {
    QCOMPARE(TimeZone::load("UTC").value()->lookup(0).offset, 0);
    QCOMPARE(TimeZone::load("").value()->name(), std::string("UTC"));
    auto mars = TimeZone::load("Mars/Olympus");
    QVERIFY(!mars.ok());
    QCOMPARE(mars.status().message(), std::string("unknown time zone Mars/Olympus"));
    for (const char* sneaky : {"../../etc/passwd", "/etc/localtime", "Europe/../../etc/passwd"}) {
      auto z = TimeZone::load(sneaky);
      QVERIFY(!z.ok());
      QCOMPARE(z.status().message(), std::string("time: invalid location name"));
    }
    QCOMPARE(zone("Europe/Berlin")->name(), std::string("Europe/Berlin"));
    QVERIFY(zone("Europe/Berlin") == zone("Europe/Berlin"));  // loaded once
  }

  // Offsets, DST flags and abbreviations against glibc's localtime_r over three centuries:
  // the file's transitions up to 2037, its POSIX footer rule after (southern hemisphere,
  // half-hour, 45-minute and negative-DST zones among them).
  void lookupAgreesWithGlibc_data() {
    QTest::addColumn<QString>("name");
    for (const char* z : {"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham",
                          "America/Santiago", "Europe/Dublin", "Africa/Casablanca", "Pacific/Apia", "America/St_Johns",
                          "Australia/Lord_Howe", "Etc/GMT+5"})
      QTest::newRow(z) << QString(z);
  }
  void lookupAgreesWithGlibc() {
    QFETCH(QString, name);
    const std::string n = name.toStdString();
    auto z = zone(n.c_str());
    qputenv("TZ", QByteArray::fromStdString(n));
    tzset();
    std::mt19937_64 random(42);
    auto check = [&](int64_t t) {
      std::time_t tt = t;
      std::tm tm{};
      QVERIFY(localtime_r(&tt, &tm));
      auto p = z->lookup(t);
      if (p.offset != tm.tm_gmtoff || p.dst != (tm.tm_isdst > 0) || p.abbreviation != tm.tm_zone) {
        QFAIL(qPrintable(QString("%1 at %2: ours %3 %4 %5, glibc %6 %7 %8")
                             .arg(name).arg(t).arg(p.offset).arg(p.dst).arg(p.abbreviation.c_str())
                             .arg(tm.tm_gmtoff).arg(tm.tm_isdst).arg(tm.tm_zone)));
      }
      if (!(p.start <= t && t < p.end)) QFAIL(qPrintable(QString("%1 at %2: outside [%3, %4)").arg(name).arg(t).arg(p.start).arg(p.end)));
    };
    // Every 20 minutes through two years each side of the files' last transitions, then
    // random instants from 1900 to 2200.
    for (int64_t t = utcSeconds(2036, 1, 1, 0, 0); t < utcSeconds(2040, 1, 1, 0, 0) && !QTest::currentTestFailed(); t += 1200) check(t);
    for (int64_t t = utcSeconds(2024, 1, 1, 0, 0); t < utcSeconds(2025, 1, 1, 0, 0) && !QTest::currentTestFailed(); t += 1200) check(t);
    std::uniform_int_distribution<int64_t> any(utcSeconds(1900, 1, 1, 0, 0), utcSeconds(2200, 1, 1, 0, 0));
    for (int i = 0; i < 20000 && !QTest::currentTestFailed(); ++i) check(any(random));
    qunsetenv("TZ");
    tzset();
  }

  // Go's time.Date: a wall time that a change skips or repeats resolves by the offset found
  // at that wall time read as UTC, corrected once, so the side it lands on depends on the
  // zone's side of UTC.
  void fromLocalResolvesAsGo() {
    auto berlin = zone("Europe/Berlin");
    QCOMPARE(berlin->fromLocal(localSeconds(2024, 7, 1, 12, 0)), utcSeconds(2024, 7, 1, 10, 0));
    QCOMPARE(berlin->fromLocal(localSeconds(2024, 3, 31, 2, 30)), utcSeconds(2024, 3, 31, 1, 30));   // reads 03:30 CEST
    QCOMPARE(berlin->fromLocal(localSeconds(2024, 10, 27, 2, 30)), utcSeconds(2024, 10, 27, 1, 30));  // 02:30 CET
    auto newYork = zone("America/New_York");
    QCOMPARE(newYork->fromLocal(localSeconds(2024, 3, 10, 2, 30)), utcSeconds(2024, 3, 10, 6, 30));   // reads 01:30 EST
    QCOMPARE(newYork->fromLocal(localSeconds(2024, 11, 3, 1, 30)), utcSeconds(2024, 11, 3, 5, 30));   // 01:30 EDT
    auto sydney = zone("Australia/Sydney");
    QCOMPARE(sydney->fromLocal(localSeconds(2024, 10, 6, 2, 30)), utcSeconds(2024, 10, 5, 16, 30));  // reads 03:30 AEDT
    // Far past the files' transitions: the footer rule (2100-03-28 is the last Sunday of March).
    QCOMPARE(berlin->fromLocal(localSeconds(2100, 3, 28, 12, 0)), utcSeconds(2100, 3, 28, 10, 0));
    QCOMPARE(berlin->fromLocal(localSeconds(2100, 3, 27, 12, 0)), utcSeconds(2100, 3, 27, 11, 0));
  }

  // The wall clock, Go's time.Date and RFC 3339 in a zone (the CronJob's scheduled-timestamp
  // annotation).
  void wallClockDateAndRfc3339() {
    auto newYork = zone("America/New_York");
    const int64_t t = utcSeconds(2024, 7, 4, 16, 5, 9);
    auto w = newYork->wallClock(t);
    QCOMPARE(w.year, 2024);
    QCOMPARE(w.month, 7u);
    QCOMPARE(w.day, 4u);
    QCOMPARE(w.weekday, 4u);  // a Thursday
    QCOMPARE(w.hour, 12);
    QCOMPARE(w.minute, 5);
    QCOMPARE(w.second, 9);
    QCOMPARE(w.offset, -4 * 3600);
    QCOMPARE(newYork->rfc3339(t), std::string("2024-07-04T12:05:09-04:00"));
    QCOMPARE(zone("Asia/Kolkata")->rfc3339(t), std::string("2024-07-04T21:35:09+05:30"));
    QCOMPARE(TimeZone::utc()->rfc3339(t), std::string("2024-07-04T16:05:09Z"));
    // Before 1970, the day an instant falls in.
    QCOMPARE(TimeZone::utc()->rfc3339(-1), std::string("1969-12-31T23:59:59Z"));
    // time.Date carries months and days over.
    QCOMPARE(newYork->date(2024, 13, 1, 0, 0, 0), newYork->date(2025, 1, 1, 0, 0, 0));
    QCOMPARE(newYork->date(2024, 1, 32, 9, 0, 0), utcSeconds(2024, 2, 1, 14, 0));
  }

  // A damaged zoneinfo file is an error, never a crash or a read past its end.
  void malformedFilesFail() {
    std::ifstream in("/usr/share/zoneinfo/Europe/Berlin", std::ios::binary);
    std::stringstream whole;
    whole << in.rdbuf();
    const std::string data = whole.str();
    QVERIFY(TimeZone::fromTzif("Europe/Berlin", data).ok());
    // Cut anywhere before the footer: the data block is incomplete.
    const size_t footer = data.rfind('\n', data.size() - 2);
    for (size_t n = 0; n < footer; n += 3) QVERIFY2(!TimeZone::fromTzif("cut", data.substr(0, n)).ok(), qPrintable(QString::number(n)));
    QVERIFY(!TimeZone::fromTzif("x", "not a zone file at all, but long enough to have a header").ok());
    std::string bent = data;
    bent[bent.size() - 10] = '!';  // the footer rule
    auto z = TimeZone::fromTzif("bent", bent);
    QVERIFY(!z.ok());
    QVERIFY(z.status().message().find("malformed") != std::string::npos);
  }
};

QTEST_APPLESS_MAIN(TimeZoneTest)
#include "time_zone_test.moc"
