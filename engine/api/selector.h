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
  bool matches(const nlohmann::json& labels) const;  // labels: object of string->string
  bool empty() const { return requirements_.empty(); }
  std::string toString() const;

  struct Requirement {
    std::string key;
    enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist } op;
    std::vector<std::string> values;
  };
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
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

  struct Term {
    std::string field;
    bool equals = true;
    std::string value;
  };
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
};

}  // namespace orrery::api
