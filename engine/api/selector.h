#pragma once
// Label and field selectors, parsed as kube-apiserver parses them (labels.Parse,
// fields.ParseSelector) and matched against objects.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::api {

class LabelSelector {
 public:
  /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`. Errors read like kube-apiserver's
  /// (400 BadRequest: `unable to parse requirement: ...`).
  static Result<LabelSelector> parse(const std::string& text);
  /// From a metav1.LabelSelector object (matchLabels + matchExpressions).
  static Result<LabelSelector> fromJson(const nlohmann::json& selector);
  /// A null selector object: matches no object (labels.Nothing()), as kube treats a nil
  /// metav1.LabelSelector.
  static LabelSelector nothing();
  bool matches(const nlohmann::json& labels) const;  // labels: object of string->string
  bool empty() const { return requirements_.empty() && !nothing_; }
  bool matchesNothing() const { return nothing_; }
  std::string toString() const;

  struct Requirement {
    std::string key;
    // kDoubleEquals, kGreaterThan and kLessThan come from `k==v`, `k>N`, `k<N` (labels.Parse
    // keeps them apart so that toString() gives back what was written).
    enum class Op {
      kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist,
      kDoubleEquals, kGreaterThan, kLessThan
    } op;
    std::vector<std::string> values;
  };
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
  bool nothing_ = false;
};

class FieldSelector {
 public:
  /// Parses `metadata.name=x,status.phase!=Running`. Which fields are supported depends on the
  /// kind (`metadata.name`, `metadata.namespace` for all; pods add `spec.nodeName`,
  /// `status.phase`, ...); an unsupported one fails as kube-apiserver does:
  /// 400 `field label not supported: spec.foo`.
  static Result<FieldSelector> parse(const std::string& text, const std::string& group,
                                     const std::string& kind);
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return terms_.empty(); }
  /// `a=b,c!=d` with `\\`, `\,` and `\=` escaped in values (fields.Selector.String()).
  std::string toString() const;
  /// The value of a selectable field of an object of this selector's kind, as kube-apiserver's
  /// GetAttrs computes it (e.g. pods' `spec.hostNetwork` is "false" when unset).
  std::string fieldValue(const nlohmann::json& object, const std::string& field) const;
  /// The field labels a kind supports (metadata.name first).
  static std::vector<std::string> supportedFields(const std::string& group,
                                                  const std::string& kind);

  struct Term {
    std::string field;
    bool equals = true;
    std::string value;
  };
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
  std::string group_, kind_;
};

}  // namespace orrery::api
