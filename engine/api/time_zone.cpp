#include "engine/api/time_zone.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace orrery::api {

namespace {

constexpr int64_t kSecondsPerDay = 86400;

// Big-endian integers of a TZif file.
int64_t readBigEndian(const std::string& data, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(data[at + i]);
  if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

bool readFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

// Where Go's time package looks for zoneinfo on Linux (platformZoneSources), after $ZONEINFO.
std::vector<std::string> zoneSources() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("ZONEINFO"); env && *env) dirs.emplace_back(env);
  for (const char* d : {"/usr/share/zoneinfo", "/usr/share/lib/zoneinfo", "/usr/lib/locale/TZ"}) dirs.emplace_back(d);
  return dirs;
}

// Division rounding toward minus infinity (instants before 1970 belong to the day they fall in).
int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// The days from 1970-01-01 to the first of a month.
int64_t daysToMonth(int year, unsigned month) {
  using namespace std::chrono;
  return sys_days(std::chrono::year(year) / std::chrono::month(month) / 1).time_since_epoch().count();
}

bool isLeap(int year) { return std::chrono::year(year).is_leap(); }

unsigned daysInMonth(int year, unsigned month) {
  using namespace std::chrono;
  return static_cast<unsigned>((std::chrono::year(year) / std::chrono::month(month) / last).day());
}

// ---- POSIX TZ strings (the TZif footer), parsed as Go's tzset does.

struct Cursor {
  const std::string& s;
  size_t i = 0;
  bool atEnd() const { return i >= s.size(); }
  char peek() const { return atEnd() ? '\0' : s[i]; }
};

bool parseNumber(Cursor& c, int min, int max, int* out) {
  if (c.atEnd() || !std::isdigit(static_cast<unsigned char>(c.peek()))) return false;
  int n = 0;
  while (!c.atEnd() && std::isdigit(static_cast<unsigned char>(c.peek()))) {
    n = n * 10 + (c.s[c.i++] - '0');
    if (n > max) return false;
  }
  if (n < min) return false;
  *out = n;
  return true;
}

bool parseName(Cursor& c, std::string* out) {
  if (c.peek() == '<') {
    size_t close = c.s.find('>', c.i);
    if (close == std::string::npos) return false;
    *out = c.s.substr(c.i + 1, close - c.i - 1);
    c.i = close + 1;
    return true;
  }
  size_t start = c.i;
  while (!c.atEnd() && std::string_view("0123456789,-+").find(c.peek()) == std::string_view::npos) ++c.i;
  if (c.i - start < 3) return false;
  *out = c.s.substr(start, c.i - start);
  return true;
}

// [+-]hh[:mm[:ss]], in POSIX's sign (positive: west of UTC). Hours run to 167, as TZif v3.
bool parseClock(Cursor& c, int32_t* out) {
  int sign = 1;
  if (c.peek() == '+' || c.peek() == '-') sign = c.s[c.i++] == '-' ? -1 : 1;
  int h = 0, m = 0, sec = 0;
  if (!parseNumber(c, 0, 24 * 7 - 1, &h)) return false;
  if (c.peek() == ':') {
    ++c.i;
    if (!parseNumber(c, 0, 59, &m)) return false;
    if (c.peek() == ':') {
      ++c.i;
      if (!parseNumber(c, 0, 59, &sec)) return false;
    }
  }
  *out = sign * (h * 3600 + m * 60 + sec);
  return true;
}

}  // namespace

Result<TimeZone::Extension> TimeZone::parseExtension(const std::string& text) {
  Extension e;
  if (text.empty()) return e;
  auto bad = [&] { return Status::badRequest("malformed time zone rule \"" + text + "\""); };
  Cursor c{text};
  int32_t west = 0;
  if (!parseName(c, &e.standard.abbreviation) || !parseClock(c, &west)) return bad();
  e.standard.offset = -west;  // POSIX counts west of UTC; offsets here count east
  e.present = true;
  if (c.atEnd() || c.peek() == ',') return e;  // no daylight saving time
  if (!parseName(c, &e.daylight.abbreviation)) return bad();
  e.daylight.dst = true;
  e.hasDaylight = true;
  if (c.atEnd() || c.peek() == ',') {
    e.daylight.offset = e.standard.offset + 3600;
  } else {
    if (!parseClock(c, &west)) return bad();
    e.daylight.offset = -west;
  }
  std::string rules = c.atEnd() ? ",M3.2.0,M11.1.0" : text.substr(c.i);  // tzcode's default rules
  Cursor r{rules};
  auto parseRule = [&](Rule* rule) {
    if (r.peek() == 'J') {
      ++r.i;
      rule->kind = Rule::kJulian;
      if (!parseNumber(r, 1, 365, &rule->day)) return false;
    } else if (r.peek() == 'M') {
      ++r.i;
      rule->kind = Rule::kMonthWeekDay;
      if (!parseNumber(r, 1, 12, &rule->month) || r.peek() != '.') return false;
      ++r.i;
      if (!parseNumber(r, 1, 5, &rule->week) || r.peek() != '.') return false;
      ++r.i;
      if (!parseNumber(r, 0, 6, &rule->day)) return false;
    } else {
      rule->kind = Rule::kDayOfYear;
      if (!parseNumber(r, 0, 365, &rule->day)) return false;
    }
    rule->time = 2 * 3600;
    if (r.peek() == '/') {
      ++r.i;
      if (!parseClock(r, &rule->time)) return false;
    }
    return true;
  };
  if (r.peek() != ',' && r.peek() != ';') return bad();
  ++r.i;
  if (!parseRule(&e.start) || r.peek() != ',') return bad();
  ++r.i;
  if (!parseRule(&e.end) || !r.atEnd()) return bad();
  return e;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::fromTzif(const std::string& name, const std::string& data) {
  auto bad = [&](const std::string& why) {
    return Status::badRequest("time zone " + name + ": malformed zoneinfo (" + why + ")");
  };
  constexpr size_t kHeader = 44;
  if (data.size() < kHeader || data.compare(0, 4, "TZif") != 0) return bad("no TZif header");
  const char version = data[4];
  struct Counts {
    int64_t isut, isstd, leap, time, type, chars;
  };
  auto countsAt = [&](size_t at) {
    return Counts{readBigEndian(data, at + 20, 4), readBigEndian(data, at + 24, 4), readBigEndian(data, at + 28, 4),
                  readBigEndian(data, at + 32, 4), readBigEndian(data, at + 36, 4), readBigEndian(data, at + 40, 4)};
  };
  auto blockSize = [](const Counts& n, int timeBytes) {
    return n.time * timeBytes + n.time + n.type * 6 + n.chars + n.leap * (timeBytes + 4) + n.isstd + n.isut;
  };
  Counts n = countsAt(0);
  for (int64_t v : {n.isut, n.isstd, n.leap, n.time, n.type, n.chars})
    if (v < 0 || v > 1 << 20) return bad("impossible counts");
  size_t at = kHeader;
  int timeBytes = 4;
  if (version >= '2') {
    // Version 2 and later repeat the data with 64-bit times, then a POSIX TZ footer.
    at += static_cast<size_t>(blockSize(n, 4));
    if (data.size() < at + kHeader || data.compare(at, 4, "TZif") != 0) return bad("no second header");
    n = countsAt(at);
    for (int64_t v : {n.isut, n.isstd, n.leap, n.time, n.type, n.chars})
      if (v < 0 || v > 1 << 20) return bad("impossible counts");
    at += kHeader;
    timeBytes = 8;
  }
  if (data.size() < at + static_cast<size_t>(blockSize(n, timeBytes))) return bad("truncated");
  if (n.type < 1) return bad("no local time types");

  auto zone = std::make_shared<TimeZone>();
  zone->name_ = name;
  for (int64_t i = 0; i < n.time; ++i) zone->transitions_.push_back(readBigEndian(data, at + i * timeBytes, timeBytes));
  at += static_cast<size_t>(n.time * timeBytes);
  for (int64_t i = 0; i < n.time; ++i) {
    auto type = static_cast<uint8_t>(data[at + i]);
    if (type >= n.type) return bad("transition to an unknown type");
    zone->transitionTypes_.push_back(type);
  }
  at += static_cast<size_t>(n.time);
  const size_t charsAt = at + static_cast<size_t>(n.type * 6);
  for (int64_t i = 0; i < n.type; ++i) {
    Type t;
    t.offset = static_cast<int32_t>(readBigEndian(data, at + i * 6, 4));
    t.dst = data[at + i * 6 + 4] != 0;
    auto abbrevAt = static_cast<unsigned char>(data[at + i * 6 + 5]);
    if (abbrevAt >= n.chars) return bad("abbreviation out of range");
    t.abbreviation = std::string(data.c_str() + charsAt + abbrevAt);
    if (t.abbreviation.size() > static_cast<size_t>(n.chars - abbrevAt)) t.abbreviation.resize(n.chars - abbrevAt);
    zone->types_.push_back(std::move(t));
  }
  at += static_cast<size_t>(blockSize(n, timeBytes) - n.time * timeBytes - n.time);
  if (timeBytes == 8 && at < data.size() && data[at] == '\n') {
    size_t end = data.find('\n', at + 1);
    if (end != std::string::npos) {
      auto ext = parseExtension(data.substr(at + 1, end - at - 1));
      if (!ext.ok()) return bad(ext.status().message());
      zone->extension_ = *ext;
    }
  }
  for (size_t i = 1; i < zone->transitions_.size(); ++i)
    if (zone->transitions_[i] <= zone->transitions_[i - 1]) return bad("transitions out of order");
  if (zone->transitions_.empty()) {
    // As Go: one transition at the beginning of time, so that the footer rule (if any)
    // covers every instant.
    zone->transitions_.push_back(INT64_MIN);
    zone->transitionTypes_.push_back(0);
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const auto kUtc = [] {
    auto z = std::make_shared<TimeZone>();
    z->name_ = "UTC";
    return std::shared_ptr<const TimeZone>(std::move(z));
  }();
  return kUtc;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::load(const std::string& name) {
  if (name.empty() || name == "UTC") return utc();
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TimeZone>> loaded;
  {
    std::lock_guard lock(mu);
    if (auto it = loaded.find(name); it != loaded.end()) return it->second;
  }
  auto remember = [&](std::shared_ptr<const TimeZone> zone) {
    std::lock_guard lock(mu);
    return loaded.emplace(name, std::move(zone)).first->second;
  };

  if (name == "Local") {
    // Go's initLocal: $TZ names the zone (":" prefix allowed; empty: UTC), else
    // /etc/localtime; anything unreadable falls back to UTC.
    std::string path;
    const char* tz = std::getenv("TZ");
    std::string zoneName = "Local";
    if (!tz) {
      path = "/etc/localtime";
    } else {
      std::string t = tz;
      if (!t.empty() && t[0] == ':') t.erase(0, 1);
      if (!t.empty() && t[0] == '/') path = t;
      else if (!t.empty() && t != "UTC") {
        auto named = load(t);
        if (named.ok()) return remember(*named);
      }
    }
    std::string data;
    if (!path.empty() && readFile(path, &data)) {
      if (auto z = fromTzif(zoneName, data); z.ok()) return remember(*z);
    }
    return remember(utc());
  }

  if (name.find("..") != std::string::npos || name[0] == '/' || name[0] == '\\')
    return Status::badRequest("time: invalid location name");
  for (const auto& dir : zoneSources()) {
    std::string data;
    if (!readFile(dir + "/" + name, &data)) continue;
    auto zone = fromTzif(name, data);
    if (!zone.ok()) return zone.status();
    return remember(*zone);
  }
  return Status::badRequest("unknown time zone " + name);
}

TimeZone::Period TimeZone::lookup(int64_t unixSeconds) const {
  Period p;
  if (types_.empty()) {
    p.abbreviation = "UTC";
    return p;
  }
  auto fromType = [&](const Type& t) {
    p.offset = t.offset;
    p.dst = t.dst;
    p.abbreviation = t.abbreviation;
  };
  if (unixSeconds < transitions_.front()) {
    // Before the first transition: Go's lookupFirstZone.
    size_t first = 0;
    bool firstUsed = false;
    for (uint8_t t : transitionTypes_) firstUsed = firstUsed || t == 0;
    if (firstUsed) {
      bool found = false;
      if (types_[transitionTypes_.front()].dst) {
        for (int zi = transitionTypes_.front() - 1; zi >= 0 && !found; --zi)
          if (!types_[zi].dst) first = static_cast<size_t>(zi), found = true;
      }
      for (size_t zi = 0; zi < types_.size() && !found; ++zi)
        if (!types_[zi].dst) first = zi, found = true;
    }
    fromType(types_[first]);
    p.end = transitions_.front();
    return p;
  }
  // The last transition at or before the instant.
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unixSeconds);
  size_t i = static_cast<size_t>(it - transitions_.begin()) - 1;
  if (i + 1 == transitions_.size() && extension_.present) return fromExtension(unixSeconds, transitions_[i]);
  fromType(types_[transitionTypes_[i]]);
  p.start = transitions_[i];
  if (i + 1 < transitions_.size()) p.end = transitions_[i + 1];
  return p;
}

TimeZone::Period TimeZone::fromExtension(int64_t unixSeconds, int64_t lastTransition) const {
  Period p;
  auto take = [&](const Type& t) {
    p.offset = t.offset;
    p.dst = t.dst;
    p.abbreviation = t.abbreviation;
  };
  if (!extension_.hasDaylight) {
    take(extension_.standard);
    p.start = lastTransition;
    return p;
  }
  // The year of the instant (in UTC, as Go's tzset) and where each change falls in it.
  using namespace std::chrono;
  const int y = static_cast<int>(year_month_day(sys_days(days(floorDiv(unixSeconds, kSecondsPerDay)))).year());
  const int64_t yearStart = daysToMonth(y, 1) * kSecondsPerDay;
  const int64_t sinceYearStart = unixSeconds - yearStart;
  auto ruleTime = [&](const Rule& r, int32_t offset) -> int64_t {
    int64_t d = 0;
    switch (r.kind) {
      case Rule::kJulian:  // 1..365, February 29 never counted
        d = r.day - 1;
        if (isLeap(y) && r.day >= 60) ++d;
        break;
      case Rule::kDayOfYear:  // 0..365
        d = r.day;
        break;
      case Rule::kMonthWeekDay: {
        // Day `day` (0 Sunday) of week `week` of the month; week 5 is the last such day.
        const auto first = sys_days(std::chrono::year(y) / std::chrono::month(static_cast<unsigned>(r.month)) / 1);
        int dayOfMonth = r.day - static_cast<int>(weekday(first).c_encoding());
        if (dayOfMonth < 0) dayOfMonth += 7;
        const auto length = static_cast<int>(daysInMonth(y, static_cast<unsigned>(r.month)));
        for (int w = 1; w < r.week && dayOfMonth + 7 < length; ++w) dayOfMonth += 7;
        d = daysToMonth(y, static_cast<unsigned>(r.month)) - daysToMonth(y, 1) + dayOfMonth;
        break;
      }
    }
    return d * kSecondsPerDay + r.time - offset;
  };
  Type standard = extension_.standard, daylight = extension_.daylight;
  int64_t start = ruleTime(extension_.start, standard.offset);
  int64_t end = ruleTime(extension_.end, daylight.offset);
  if (end < start) {
    // Southern hemisphere: daylight time spans the new year. Go swaps the two periods.
    std::swap(start, end);
    std::swap(standard, daylight);
  }
  if (sinceYearStart < start) {
    take(standard);
    p.start = yearStart;
    p.end = yearStart + start;
  } else if (sinceYearStart >= end) {
    take(standard);
    p.start = yearStart + end;
    // Go ends this period 365 days after the year began, a day short in leap years; the
    // offset is the same either way, and this end is the true one.
    p.end = daysToMonth(y + 1, 1) * kSecondsPerDay;
  } else {
    take(daylight);
    p.start = yearStart + start;
    p.end = yearStart + end;
  }
  return p;
}

TimeZone::WallClock TimeZone::wallClock(int64_t unixSeconds) const {
  using namespace std::chrono;
  WallClock w;
  w.offset = lookup(unixSeconds).offset;
  const int64_t local = unixSeconds + w.offset;
  const int64_t dayNumber = floorDiv(local, kSecondsPerDay);
  const int64_t secondOfDay = local - dayNumber * kSecondsPerDay;
  const sys_days day{days(dayNumber)};
  const year_month_day ymd(day);
  w.year = static_cast<int>(ymd.year());
  w.month = static_cast<unsigned>(ymd.month());
  w.day = static_cast<unsigned>(ymd.day());
  w.weekday = weekday(day).c_encoding();
  w.hour = static_cast<int>(secondOfDay / 3600);
  w.minute = static_cast<int>(secondOfDay / 60 % 60);
  w.second = static_cast<int>(secondOfDay % 60);
  return w;
}

int64_t TimeZone::date(int year, int month, int day, int hour, int minute, int second) const {
  const int64_t monthIndex = static_cast<int64_t>(year) * 12 + (month - 1);
  const int y = static_cast<int>(floorDiv(monthIndex, 12));
  const auto m = static_cast<unsigned>(monthIndex - static_cast<int64_t>(y) * 12 + 1);
  const int64_t local = (daysToMonth(y, m) + day - 1) * kSecondsPerDay + static_cast<int64_t>(hour) * 3600 +
                        static_cast<int64_t>(minute) * 60 + second;
  return fromLocal(local);
}

std::string TimeZone::rfc3339(int64_t unixSeconds) const {
  const WallClock w = wallClock(unixSeconds);
  char text[48];
  int n = std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d", w.year, w.month, w.day, w.hour, w.minute,
                        w.second);
  if (w.offset == 0) return std::string(text, static_cast<size_t>(n)) + "Z";
  const int32_t east = w.offset < 0 ? -w.offset : w.offset;
  std::snprintf(text + n, sizeof text - static_cast<size_t>(n), "%c%02d:%02d", w.offset < 0 ? '-' : '+', east / 3600,
                east % 3600 / 60);
  return text;
}

int64_t TimeZone::fromLocal(int64_t localSeconds) const {
  // Go's time.Date: guess with the offset at the wall time read as UTC, then correct once.
  int64_t unix = localSeconds;
  Period guess = lookup(unix);
  int32_t offset = guess.offset;
  if (offset != 0) {
    const int64_t utc = unix - offset;
    if (utc < guess.start || utc >= guess.end) offset = lookup(utc).offset;
    unix -= offset;
  }
  return unix;
}

}  // namespace orrery::api
