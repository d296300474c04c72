// api::parseTime reads RFC 3339 timestamps as kube does. Its fast path for the plain
// "YYYY-MM-DDTHH:MM:SSZ" form must agree with timegm on every such text, out-of-range days
// and leap seconds included (normalized the same way), and leave other forms to the general
// path, and keep fractional seconds (MicroTime). Beside it: api::newUid's form (what kube's uuid.NewUUID gives: a random version-4
// UUID in lowercase 8-4-4-4-12 hex).

#include <QtTest>

#include <cstdio>
#include <ctime>
#include <random>
#include <regex>
#include <set>

#include "engine/api/object.h"

using orrery::api::formatTime;
using orrery::api::newUid;
using orrery::api::parseTime;

namespace {

int64_t secondsOf(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

class ObjectTimeTest : public QObject {
  Q_OBJECT

 private slots:
  void plainTimestampsAgreeWithTimegm() {
    std::mt19937 rng(20261207);
    for (int i = 0; i < 20000; ++i) {
      // (A system_clock time point counts nanoseconds in 64 bits: it ends in 2262.)
      int year = std::uniform_int_distribution<int>(1900, 2250)(rng);
      int month = std::uniform_int_distribution<int>(1, 12)(rng);
      int day = std::uniform_int_distribution<int>(1, 31)(rng);  // Feb 31 too: normalized
      int hour = std::uniform_int_distribution<int>(0, 23)(rng);
      int minute = std::uniform_int_distribution<int>(0, 59)(rng);
      int second = std::uniform_int_distribution<int>(0, 60)(rng);
      char text[32];
      std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month, day, hour, minute, second);
      std::tm tm{};
      tm.tm_year = year - 1900;
      tm.tm_mon = month - 1;
      tm.tm_mday = day;
      tm.tm_hour = hour;
      tm.tm_min = minute;
      tm.tm_sec = second;
      std::chrono::system_clock::time_point got;
      QVERIFY2(parseTime(text, &got), text);
      QVERIFY2(secondsOf(got) == static_cast<int64_t>(timegm(&tm)), text);
    }
  }

  void roundTripsFormatTime() {
    auto now = std::chrono::system_clock::now();
    std::chrono::system_clock::time_point back;
    QVERIFY(parseTime(formatTime(now), &back));
    QCOMPARE(secondsOf(back), secondsOf(now));
  }

  void otherFormsAndBadTexts() {
    std::chrono::system_clock::time_point t;
    QVERIFY(parseTime("2026-12-07T13:00:00.123456Z", &t));
    QCOMPARE(secondsOf(t), int64_t{1796648400});
    // metav1.MicroTime's fraction is kept, to the microsecond and below.
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
    QCOMPARE(micros % 1000000, int64_t{123456});
    QVERIFY(parseTime("2026-12-07T13:00:00.5+01:00", &t));
    QCOMPARE(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(),
             int64_t{1796648400 - 3600} * 1000 + 500);
    QVERIFY(parseTime("2026-12-07T14:30:00+01:30", &t));
    QCOMPARE(secondsOf(t), int64_t{1796648400});
    for (const char* bad : {"", "2026-12-07", "2026-12-07T13:00:00", "2026-13-07T13:00:00Z", "2026-12-07T24:00:00Z",
                            "2026-12-07T13:00:00Zx", "2026-12-07 13:00:00Z", "2O26-12-07T13:00:00Z"}) {
      QVERIFY2(!parseTime(bad, &t), bad);
    }
  }

  void uidsAreRandomVersion4Uuids() {
    const std::regex form("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::set<std::string> seen;
    int digitCounts[16] = {};
    for (int i = 0; i < 10000; ++i) {
      std::string uid = newUid();
      QVERIFY2(std::regex_match(uid, form), uid.c_str());
      QVERIFY2(seen.insert(uid).second, uid.c_str());
      for (char c : uid.substr(0, 8)) ++digitCounts[c <= '9' ? c - '0' : c - 'a' + 10];
    }
    // The random digits use all sixteen values about evenly (80,000 digits: ~5,000 each).
    for (int n : digitCounts) QVERIFY2(n > 4000 && n < 6000, std::to_string(n).c_str());
  }
};

QTEST_APPLESS_MAIN(ObjectTimeTest)
#include "object_time_test.moc"
