#include "engine/api/quantity.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace orrery::api {
namespace {

using i128 = __int128;

const char* kErrFormatWrong =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const char* kErrNumeric = "unable to parse numeric part of quantity";
const char* kErrSuffix = "unable to parse quantity's suffix";

constexpr int kMaxDigits = 37;  // what fits an __int128 with room for one more digit

bool isDigit(char c) { return c >= '0' && c <= '9'; }

i128 pow10(int n) {
  i128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

std::string toDecimal(i128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  std::string s;
  while (v != 0) {
    int d = static_cast<int>(v % 10);
    s += static_cast<char>('0' + (d < 0 ? -d : d));
    v /= 10;
  }
  if (neg) s += '-';
  std::reverse(s.begin(), s.end());
  return s;
}

int digitCount(i128 v) {
  if (v < 0) v = -v;
  int n = 0;
  while (v != 0) {
    v /= 10;
    ++n;
  }
  return n;
}

struct Parsed {
  bool positive = true;
  std::string num, denom, suffix;
};

// resource.parseQuantityString.
bool parseQuantityString(const std::string& str, Parsed& p) {
  size_t pos = 0, end = str.size();
  if (pos < end && (str[0] == '-' || str[0] == '+')) {
    p.positive = str[0] != '-';
    ++pos;
  }
  while (pos < end && str[pos] == '0') ++pos;
  if (pos >= end) {
    p.num = "0";
    return true;
  }
  size_t start = pos;
  while (pos < end && isDigit(str[pos])) ++pos;
  p.num = str.substr(start, pos - start);
  if (pos >= end) return true;
  if (p.num.empty()) p.num = "0";
  if (str[pos] == '.') {
    ++pos;
    start = pos;
    while (pos < end && isDigit(str[pos])) ++pos;
    p.denom = str.substr(start, pos - start);
    if (pos >= end) return true;
  }
  size_t suffixStart = pos;
  const std::string suffixChars = "eEinumkKMGTP";
  while (pos < end && suffixChars.find(str[pos]) != std::string::npos) ++pos;
  if (pos >= end) {
    p.suffix = str.substr(suffixStart);
    return true;
  }
  if (str[pos] == '-' || str[pos] == '+') ++pos;
  while (pos < end && isDigit(str[pos])) ++pos;
  if (pos < end) return false;
  p.suffix = str.substr(suffixStart);
  return true;
}

// suffixer.interpret: base, exponent, format.
bool interpretSuffix(const std::string& s, int& base, int& exponent, Quantity::Format& format) {
  static const std::pair<const char*, int> dec[] = {{"n", -9}, {"u", -6}, {"m", -3}, {"", 0},
                                                    {"k", 3},  {"M", 6},  {"G", 9},  {"T", 12},
                                                    {"P", 15}, {"E", 18}};
  static const std::pair<const char*, int> bin[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                    {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  for (const auto& [k, e] : dec) {
    if (s == k) {
      base = 10, exponent = e, format = Quantity::Format::kDecimalSI;
      return true;
    }
  }
  for (const auto& [k, e] : bin) {
    if (s == k) {
      base = 2, exponent = e, format = Quantity::Format::kBinarySI;
      return true;
    }
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::string rest = s.substr(1);
    size_t i = (rest[0] == '+' || rest[0] == '-') ? 1 : 0;
    if (i == rest.size() || rest.size() > 10) return false;
    for (size_t j = i; j < rest.size(); ++j)
      if (!isDigit(rest[j])) return false;
    base = 10, exponent = std::stoi(rest), format = Quantity::Format::kDecimalExponent;
    return true;
  }
  return false;
}

// Divides by 10^n, rounding away from zero. `exact` tells whether nothing was lost.
i128 divRoundUp(i128 v, int n, bool& exact) {
  exact = true;
  if (n <= 0) return v;
  if (n > 38) {
    exact = v == 0;
    return v == 0 ? 0 : (v > 0 ? 1 : -1);
  }
  i128 d = pow10(n);
  i128 q = v / d, r = v % d;
  if (r != 0) {
    exact = false;
    q += v > 0 ? 1 : -1;
  }
  return q;
}

int64_t saturate(i128 v) {
  if (v > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (v < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

}  // namespace

Result<Quantity> Quantity::parse(const std::string& rawText) {
  // UnmarshalJSON trims surrounding whitespace before parsing.
  size_t b = rawText.find_first_not_of(" \t\r\n"), e = rawText.find_last_not_of(" \t\r\n");
  std::string text = b == std::string::npos ? "" : rawText.substr(b, e - b + 1);
  if (text.empty()) return Status::badRequest(kErrFormatWrong);
  Quantity q;
  if (text == "0") {
    q.cached_ = "0";
    return q;
  }
  Parsed p;
  if (!parseQuantityString(text, p)) return Status::badRequest(kErrFormatWrong);
  int base = 10, exponent = 0;
  Format format = Format::kDecimalSI;
  if (!interpretSuffix(p.suffix, base, exponent, format)) return Status::badRequest(kErrSuffix);

  // Whether kube's int64 fast path applies, and whether it keeps the input as the string form.
  int precision = 0, fastScale = 0;
  bool binFast = false;
  if (format == Format::kBinarySI) {
    if (exponent >= 0 && p.denom.empty()) {
      binFast = true;
      precision = 15 - static_cast<int>(p.num.size()) -
                  static_cast<int>(static_cast<float>(exponent) * 3 / 10) - 1;
    } else {
      precision = -1;
    }
  } else {
    fastScale = exponent;
    precision = 18 - static_cast<int>(p.num.size() + p.denom.size());
  }
  std::string shifted = p.num + p.denom;
  if (precision >= 0) {
    fastScale -= static_cast<int>(p.denom.size());
    if (fastScale >= -9 && shifted.size() <= 19) {
      if (format == Format::kBinarySI) {
        i128 value = std::stoll(shifted);
        if (binFast && exponent % 10 == 0 && (value & 0x07) != 0) q.cached_ = text;
      } else if (fastScale % 3 == 0 && !(shifted.size() >= 3 &&
                                         shifted.compare(shifted.size() - 3, 3, "000") == 0) &&
                 shifted[0] != '0') {
        q.cached_ = text;
      }
    }
  }

  // The exact value: digits × 10^scale (× 2^exponent for binary suffixes).
  std::string digits = shifted;
  int scale = -static_cast<int>(p.denom.size());
  size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  while (digits.size() > 1 && digits.back() == '0') {
    digits.pop_back();
    ++scale;
  }
  if (static_cast<int>(digits.size()) > kMaxDigits) return Status::badRequest(kErrNumeric);
  i128 m = 0;
  for (char c : digits) m = m * 10 + (c - '0');
  if (base == 10) {
    scale += exponent;
  } else {
    for (int i = 0; i < exponent; ++i) {
      if (m > (std::numeric_limits<i128>::max() >> 2)) return Status::badRequest(kErrNumeric);
      m *= 2;
    }
  }
  if (!p.positive) m = -m;
  // Values finer than a nano are rounded up to one (ParseQuantity).
  if (scale < -9) {
    bool exact = true;
    m = divRoundUp(m, -9 - scale, exact);
    scale = -9;
    if (!exact) q.cached_.clear();
  }
  // Keep the mantissa small: move factors of ten into the scale.
  while (m != 0 && m % 10 == 0 && scale < 1000) {
    m /= 10;
    ++scale;
  }
  if (m == 0) scale = 0;
  if (format == Format::kBinarySI && m != 0) {
    // 0 < |value| < 1 prints as DecimalSI.
    if (scale < 0 && digitCount(m) <= -scale) format = Format::kDecimalSI;
  }
  q.mantissa_ = m;
  q.scale_ = scale;
  q.format_ = format;
  return q;
}

Quantity Quantity::fromInt(int64_t value, Format format) {
  Quantity q;
  q.mantissa_ = value;
  q.format_ = format;
  return q;
}

Quantity Quantity::fromMilli(int64_t milli, Format format) {
  Quantity q;
  q.mantissa_ = milli;
  q.scale_ = milli == 0 ? 0 : -3;
  q.format_ = format;
  return q;
}

std::string Quantity::toString() const {
  if (!cached_.empty()) return cached_;
  if (mantissa_ == 0) return "0";
  Format fmt = format_;
  if (fmt == Format::kBinarySI) {
    // Small or fractional binary values print as DecimalSI so that nothing is rounded.
    bool small = compare(fromInt(-1024)) > 0 && compare(fromInt(1024)) < 0;
    if (small || scale_ < 0) fmt = Format::kDecimalSI;
  }
  if (fmt == Format::kBinarySI) {
    i128 v = mantissa_;
    for (int i = 0; i < scale_; ++i) v *= 10;
    int e = 0;
    while (e < 6 && v % 1024 == 0) {
      v /= 1024;
      ++e;
    }
    static const char* bin[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return toDecimal(v) + bin[e];
  }
  i128 m = mantissa_;
  int e = scale_;
  while (m % 10 == 0) {
    m /= 10;
    ++e;
  }
  while (e % 3 != 0) {
    m *= 10;
    --e;
  }
  std::string number = toDecimal(m);
  if (fmt == Format::kDecimalExponent) return e == 0 ? number : number + "e" + std::to_string(e);
  switch (e) {
    case -9: return number + "n";
    case -6: return number + "u";
    case -3: return number + "m";
    case 0: return number;
    case 3: return number + "k";
    case 6: return number + "M";
    case 9: return number + "G";
    case 12: return number + "T";
    case 15: return number + "P";
    case 18: return number + "E";
    default: return number + "e" + std::to_string(e);
  }
}

int Quantity::cmpAligned(i128 a, int32_t sa, i128 b, int32_t sb) {
  int signA = a > 0 ? 1 : (a < 0 ? -1 : 0), signB = b > 0 ? 1 : (b < 0 ? -1 : 0);
  if (signA != signB) return signA < signB ? -1 : 1;
  if (signA == 0) return 0;
  // Same sign: compare magnitudes by order first, so that aligning cannot overflow.
  int magA = digitCount(a) + sa, magB = digitCount(b) + sb;
  if (magA != magB) return (magA < magB ? -1 : 1) * signA;
  if (sa > sb) {
    a *= pow10(sa - sb);
  } else if (sb > sa) {
    b *= pow10(sb - sa);
  }
  return a < b ? -1 : (a > b ? 1 : 0);
}

int Quantity::compare(const Quantity& other) const {
  return cmpAligned(mantissa_, scale_, other.mantissa_, other.scale_);
}

int64_t Quantity::value() const {
  if (scale_ >= 0) {
    if (scale_ > 20) return saturate(mantissa_ > 0 ? std::numeric_limits<i128>::max() : -std::numeric_limits<i128>::max());
    return saturate(mantissa_ * pow10(scale_));
  }
  bool exact;
  return saturate(divRoundUp(mantissa_, -scale_, exact));
}

int64_t Quantity::milliValue() const {
  Quantity q = *this;
  q.scale_ += 3;
  return q.value();
}

double Quantity::asDouble() const {
  return static_cast<double>(mantissa_) * std::pow(10.0, scale_);
}

bool Quantity::roundUp(int32_t scale) {
  if (scale_ >= scale) return true;
  cached_.clear();
  bool exact = true;
  mantissa_ = divRoundUp(mantissa_, scale - scale_, exact);
  scale_ = mantissa_ == 0 ? 0 : scale;
  return exact;
}

Quantity& Quantity::add(const Quantity& other) {
  cached_.clear();
  if (mantissa_ == 0) format_ = other.format_;
  int32_t s = std::min(scale_, other.scale_);
  mantissa_ = mantissa_ * pow10(scale_ - s) + other.mantissa_ * pow10(other.scale_ - s);
  scale_ = mantissa_ == 0 ? 0 : s;
  return *this;
}

Quantity& Quantity::sub(const Quantity& other) {
  Quantity neg = other;
  neg.mantissa_ = -neg.mantissa_;
  neg.cached_.clear();
  Format keep = format_;
  bool wasZero = mantissa_ == 0;
  add(neg);
  if (wasZero) format_ = other.format_;
  else format_ = keep;
  return *this;
}

}  // namespace orrery::api
