#include "engine/api/cron_schedule.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

namespace orrery::api::cron {

using Clock = std::chrono::system_clock;

namespace {

struct Bounds {
  int min, max;
  const char* const* names;  // lower-case, indexed from min
};
const char* const kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const kDowNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"};  // 7 is Sunday too

Result<int> parseValue(const std::string& s, const Bounds& b) {
  if (b.names) {
    std::string lower;
    for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (int i = 0; i <= b.max - b.min; ++i)
      if (lower == b.names[i]) return b.min + i;
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 6)
    return Status::badRequest("failed to parse int from " + s + ": strconv.Atoi: parsing \"" + s + "\": invalid syntax");
  return std::stoi(s);
}

// One comma-separated part: "*", "?", "a", "a-b", with an optional "/step".
Status parseRange(const std::string& expr, const Bounds& b, uint64_t* bits, bool* star) {
  std::string rangePart = expr, stepPart;
  if (auto slash = expr.find('/'); slash != std::string::npos) {
    rangePart = expr.substr(0, slash);
    stepPart = expr.substr(slash + 1);
  }
  int start, end, step = 1;
  bool isStar = rangePart == "*" || rangePart == "?";
  if (isStar) {
    start = b.min;
    end = b.max;
  } else {
    auto dash = rangePart.find('-');
    auto lo = parseValue(rangePart.substr(0, dash), b);
    if (!lo.ok()) return lo.status();
    start = end = *lo;
    if (dash != std::string::npos) {
      auto hi = parseValue(rangePart.substr(dash + 1), b);
      if (!hi.ok()) return hi.status();
      end = *hi;
    }
  }
  if (!stepPart.empty() || expr.find('/') != std::string::npos) {
    auto st = parseValue(stepPart, {0, 0, nullptr});
    if (!st.ok()) return st.status();
    step = *st;
    if (rangePart.find('-') == std::string::npos && !isStar) end = b.max;  // "N/step" is "N-max/step"
  }
  if (start < b.min) return Status::badRequest("beginning of range (" + std::to_string(start) + ") below minimum (" + std::to_string(b.min) + "): " + expr);
  if (end > b.max) return Status::badRequest("end of range (" + std::to_string(end) + ") above maximum (" + std::to_string(b.max) + "): " + expr);
  if (start > end) return Status::badRequest("beginning of range (" + std::to_string(start) + ") beyond end of range (" + std::to_string(end) + "): " + expr);
  if (step == 0) return Status::badRequest("step of range should be a positive number: " + expr);
  for (int v = start; v <= end; v += step) *bits |= uint64_t{1} << v;
  if (isStar && step == 1) *star = true;
  return {};
}

Status parseField(const std::string& field, const Bounds& b, uint64_t* bits, bool* star) {
  size_t i = 0;
  while (i <= field.size()) {
    size_t comma = field.find(',', i);
    std::string part = field.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    Status s = parseRange(part, b, bits, star);
    if (!s.isOk()) return s;
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return {};
}

// Go's time.ParseDuration: a sequence of decimal numbers, each with an optional fraction
// and a unit ("1h30m", "1.5h", "300ms"), optionally signed; "0" alone needs no unit.
Result<std::chrono::nanoseconds> parseGoDuration(const std::string& text) {
  auto invalid = [&] { return Status::badRequest("time: invalid duration \"" + text + "\""); };
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  if (text.substr(i) == "0") return std::chrono::nanoseconds(0);
  if (i == text.size()) return invalid();
  static const std::map<std::string, double> kUnits = {{"ns", 1},         {"us", 1e3},         {"\u00b5s", 1e3},
                                                       {"\u03bcs", 1e3},  {"ms", 1e6},         {"s", 1e9},
                                                       {"m", 60e9},       {"h", 3600e9}};
  double total = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    bool whole = i > start;
    double value = whole ? std::stod(text.substr(start, i - start)) : 0;
    if (i < text.size() && text[i] == '.') {
      size_t f = ++i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      if (i > f) value += std::stod("0." + text.substr(f, i - f));
      else if (!whole) return invalid();
    } else if (!whole) {
      return invalid();
    }
    size_t unitStart = i;
    while (i < text.size() && text[i] != '.' && !std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == unitStart) return Status::badRequest("time: missing unit in duration \"" + text + "\"");
    auto unit = kUnits.find(text.substr(unitStart, i - unitStart));
    if (unit == kUnits.end())
      return Status::badRequest("time: unknown unit \"" + text.substr(unitStart, i - unitStart) + "\" in duration \"" + text + "\"");
    total += value * unit->second;
  }
  if (total > 9.2e18) return invalid();
  return std::chrono::nanoseconds(static_cast<int64_t>(negative ? -total : total));
}

}  // namespace

Result<Schedule> parseSchedule(const std::string& specIn) {
  std::string spec = specIn;
  TimeZonePtr zone;
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    // robfig's parser: the zone named up to the first space, the schedule after it.
    auto sp = spec.find(' ');
    std::string name = spec.substr(spec.find('=') + 1, sp == std::string::npos ? std::string::npos : sp - spec.find('=') - 1);
    auto loaded = TimeZone::load(name);
    if (!loaded.ok()) return Status::badRequest("provided bad location " + name + ": " + loaded.status().message());
    zone = *loaded;
    spec = sp == std::string::npos ? "" : spec.substr(sp + 1);
  }
  // robfig trims the spec and reads a descriptor from all of it.
  const size_t first = spec.find_first_not_of(" \t\n\r\f\v");
  spec = first == std::string::npos ? "" : spec.substr(first, spec.find_last_not_of(" \t\n\r\f\v") - first + 1);
  if (spec.empty()) return Status::badRequest("empty spec string");
  if (spec[0] == '@') {
    static const std::map<std::string, std::string> descriptors = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    if (spec.rfind("@every ", 0) == 0) {
      auto delay = parseGoDuration(spec.substr(7));
      if (!delay.ok()) return Status::badRequest("failed to parse duration " + spec + ": " + delay.status().message());
      // robfig's Every: at least a second, in whole seconds.
      Schedule s;
      s.every = std::max(std::chrono::seconds(1), std::chrono::floor<std::chrono::seconds>(*delay));
      return s;
    }
    auto it = descriptors.find(spec);
    if (it == descriptors.end()) return Status::badRequest("unrecognized descriptor: " + spec);
    auto parsed = parseSchedule(it->second);
    if (parsed.ok()) parsed->zone = zone;
    return parsed;
  }
  std::vector<std::string> fields;
  for (size_t i = 0; i < spec.size();) {
    while (i < spec.size() && std::isspace(static_cast<unsigned char>(spec[i]))) ++i;
    size_t j = i;
    while (j < spec.size() && !std::isspace(static_cast<unsigned char>(spec[j]))) ++j;
    if (j > i) fields.push_back(spec.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    std::string list;  // as Go prints a []string
    for (size_t k = 0; k < fields.size(); ++k) list += (k ? " " : "") + fields[k];
    return Status::badRequest("expected exactly 5 fields, found " + std::to_string(fields.size()) + ": [" + list + "]");
  }
  Schedule s;
  s.zone = zone;
  bool ignored = false;
  Status st;
  if (!(st = parseField(fields[0], {0, 59, nullptr}, &s.minuteBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[1], {0, 23, nullptr}, &s.hourBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[2], {1, 31, nullptr}, &s.domBits, &s.domStar)).isOk()) return st;
  if (!(st = parseField(fields[3], {1, 12, kMonthNames}, &s.monthBits, &ignored)).isOk()) return st;
  if (!(st = parseField(fields[4], {0, 7, kDowNames}, &s.dowBits, &s.dowStar)).isOk()) return st;
  if (s.dowBits & (uint64_t{1} << 7)) s.dowBits = (s.dowBits | 1) & ~(uint64_t{1} << 7);  // 7 is Sunday too
  return s;
}

namespace {

bool has(uint64_t set, unsigned value) { return (set >> value) & 1; }

}  // namespace

std::optional<Clock::time_point> Schedule::next(Clock::time_point after, const TimeZone& callerZone) const {
  using namespace std::chrono;
  if (every) return floor<seconds>(after) + *every;  // @every: a constant delay, zone or not
  const TimeZone& tz = zone ? *zone : callerZone;
  // robfig/cron v3 SpecSchedule.Next. Each field is advanced until it matches; a field that
  // wraps sends the search back to the month, since the fields before it may no longer
  // match. Days advance by the calendar, hours and minutes by elapsed time: that order is
  // what decides which activations a daylight-saving change skips or repeats.
  int64_t t = floor<seconds>(after).time_since_epoch().count() + 1;  // the upcoming second
  bool added = false;  // whether a field has moved (then the smaller ones restart at zero)
  TimeZone::WallClock c = tz.wallClock(t);
  const int yearLimit = c.year + 5;
  auto set = [&](int64_t instant) {
    t = instant;
    c = tz.wallClock(t);
  };
  auto dayMatches = [&] {
    const bool domMatch = has(domBits, c.day), dowMatch = has(dowBits, c.weekday);
    return (domStar || dowStar) ? (domMatch && dowMatch) : (domMatch || dowMatch);
  };
  for (;;) {  // robfig's WRAP label
    if (c.year > yearLimit) return std::nullopt;
    bool wrapped = false;
    while (!wrapped && !has(monthBits, c.month)) {
      if (!added) {
        added = true;
        set(tz.date(c.year, static_cast<int>(c.month), 1, 0, 0, 0));
      }
      set(tz.date(c.year, static_cast<int>(c.month) + 1, static_cast<int>(c.day), c.hour, c.minute, c.second));
      wrapped = c.month == 1;
    }
    while (!wrapped && !dayMatches()) {
      if (!added) {
        added = true;
        set(tz.date(c.year, static_cast<int>(c.month), static_cast<int>(c.day), 0, 0, 0));
      }
      set(tz.date(c.year, static_cast<int>(c.month), static_cast<int>(c.day) + 1, c.hour, c.minute, c.second));
      // A DST change can leave the next day's midnight an hour off: back to midnight.
      if (c.hour != 0) set(c.hour > 12 ? t + (24 - c.hour) * 3600 : t - c.hour * 3600);
      wrapped = c.day == 1;
    }
    while (!wrapped && !has(hourBits, static_cast<unsigned>(c.hour))) {
      if (!added) {
        added = true;
        set(tz.date(c.year, static_cast<int>(c.month), static_cast<int>(c.day), c.hour, 0, 0));
      }
      set(t + 3600);
      wrapped = c.hour == 0;
    }
    while (!wrapped && !has(minuteBits, static_cast<unsigned>(c.minute))) {
      if (!added) {
        added = true;
        set(t - (t % 60 + 60) % 60);  // Truncate(time.Minute)
      }
      set(t + 60);
      wrapped = c.minute == 0;
    }
    // Standard schedules fire at second 0.
    while (!wrapped && c.second != 0) {
      added = true;
      set(t + 1);
      wrapped = c.second == 0;
    }
    if (!wrapped) return Clock::time_point(seconds(t));
  }
}

}  // namespace orrery::api::cron
