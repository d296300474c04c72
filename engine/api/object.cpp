#include "engine/api/object.h"

#include <cstdio>
#include <ctime>
#include <memory>
#include <random>

namespace orrery::api {

std::mt19937_64& threadRandom() {
  // A pointer in TLS, the engine (2.5 KB) on the heap: static TLS is set up in the stack of
  // every thread the process starts, so an engine held there by value cost each of the
  // control plane's ~100 threads its pages whether it ever drew a number or not.
  thread_local std::unique_ptr<std::mt19937_64> engine;
  if (!engine) engine = std::make_unique<std::mt19937_64>(std::random_device{}());
  return *engine;
}

std::string newUid() {
  auto& rng = threadRandom();
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  // 8-4-4-4-12 lowercase hex digits, written directly: snprintf was half of a uid's cost,
  // and every create makes one.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string uid(36, '-');
  int pos = 0;
  auto digits = [&](uint64_t bits, int count) {
    for (int i = count - 1; i >= 0; --i) uid[pos++] = kHex[(bits >> (4 * i)) & 0xf];
  };
  digits(hi >> 32, 8);
  ++pos;
  digits(hi >> 16, 4);
  ++pos;
  digits(hi, 4);
  ++pos;
  digits(lo >> 48, 4);
  ++pos;
  digits(lo, 12);
  return uid;
}

std::string formatTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "YYYY-MM-DDTHH:MM:SSZ", what formatTime writes and nearly every timestamp the API holds:
// read without strptime and timegm, which parse through the locale and normalize a struct tm.
bool parseTimeFast(const std::string& text, std::chrono::system_clock::time_point* out) {
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return false;
  }
  auto number = [&](size_t at, size_t digits, int* value) {
    *value = 0;
    for (size_t i = at; i < at + digits; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      *value = *value * 10 + (text[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!number(0, 4, &year) || !number(5, 2, &month) || !number(8, 2, &day) || !number(11, 2, &hour) ||
      !number(14, 2, &minute) || !number(17, 2, &second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return false;
  const int64_t seconds = daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                          hour * 3600 + minute * 60 + second;
  *out = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
  return true;
}

}  // namespace

bool parseTime(const std::string& text, std::chrono::system_clock::time_point* out) {
  if (parseTimeFast(text, out)) return true;
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return false;
  // Fractional seconds (metav1.MicroTime's six digits, or any number of them), to the
  // nanosecond.
  std::chrono::nanoseconds fraction{0};
  if (*rest == '.') {
    ++rest;
    int64_t scale = 100000000;
    for (; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) fraction += std::chrono::nanoseconds((*rest - '0') * scale);
  }
  long offset = 0;
  if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(rest + 1, "%d:%d", &hh, &mm) != 2) return false;
    offset = (hh * 3600L + mm * 60L) * (*rest == '+' ? 1 : -1);
    rest += 6;
  } else {
    return false;
  }
  if (*rest != '\0') return false;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm) - offset) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(fraction);
  return true;
}

std::string generateNameSuffix(const std::string& prefix) {
  static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string name = prefix;
  std::uniform_int_distribution<int> pick(0, sizeof(alphabet) - 2);
  for (int i = 0; i < 5; ++i) name.push_back(alphabet[pick(threadRandom())]);
  return name;
}

std::string metaString(const nlohmann::json& object, const char* field) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return "";
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return "";
  return f->get<std::string>();
}

const nlohmann::json& memberOrEmpty(const nlohmann::json& object, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!object.is_object()) return kEmpty;
  auto it = object.find(key);
  return it == object.end() ? kEmpty : *it;
}

std::string goQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\x%02x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}


}  // namespace orrery::api
