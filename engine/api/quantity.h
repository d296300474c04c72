#pragma once
// resource.Quantity as k8s.io/apimachinery parses, compares and prints it: "100m", "1Gi",
// "1e3", "0.5" → "500m". The canonical form is what kube-apiserver stores and returns.

#include <cstdint>
#include <string>

#include "engine/api/status.h"

namespace orrery::api {

class Quantity {
 public:
  /// How a quantity is printed: chosen by the suffix it was written with.
  enum class Format { kDecimalExponent, kBinarySI, kDecimalSI };

  Quantity() = default;  // 0, DecimalSI

  /// resource.ParseQuantity. Errors carry kube's messages, e.g. "quantities must match the
  /// regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".
  static Result<Quantity> parse(const std::string& text);
  /// An integer quantity (e.g. bytes) in the given format.
  static Quantity fromInt(int64_t value, Format format = Format::kDecimalSI);
  /// A quantity of thousandths (e.g. millicores).
  static Quantity fromMilli(int64_t milli, Format format = Format::kDecimalSI);

  /// Quantity.String(): the canonical form ("1500m", "1Gi", "1k", "1e3", "0").
  std::string toString() const;
  /// -1, 0, 1 as Quantity.Cmp.
  int compare(const Quantity& other) const;
  bool operator==(const Quantity& o) const { return compare(o) == 0; }
  bool operator<(const Quantity& o) const { return compare(o) < 0; }
  bool operator<=(const Quantity& o) const { return compare(o) <= 0; }

  bool isZero() const { return mantissa_ == 0; }
  int sign() const { return mantissa_ > 0 ? 1 : (mantissa_ < 0 ? -1 : 0); }
  Format format() const { return format_; }

  /// Quantity.Value(): rounded up (away from zero) to an integer.
  int64_t value() const;
  /// Quantity.MilliValue(): rounded up to thousandths.
  int64_t milliValue() const;
  double asDouble() const;

  /// Quantity.RoundUp(scale): rounds away from zero to 10^scale (e.g. -3: milli).
  /// Returns true when no rounding was needed.
  bool roundUp(int32_t scale);

  /// Sum and difference keep this quantity's format (as Quantity.Add/Sub).
  Quantity& add(const Quantity& other);
  Quantity& sub(const Quantity& other);

 private:
  static int cmpAligned(__int128 a, int32_t sa, __int128 b, int32_t sb);

  __int128 mantissa_ = 0;  // value = mantissa_ * 10^scale_
  int32_t scale_ = 0;
  Format format_ = Format::kDecimalSI;
  std::string cached_;  // the input, when kube would keep it (already canonical)
};

}  // namespace orrery::api
