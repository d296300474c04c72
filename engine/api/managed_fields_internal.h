#pragma once
// Private machinery of managed_fields.cpp: field sets (the FieldsV1 trie) and the schema-aware
// walks over objects that structured-merge-diff performs (to-field-set, compare, merge, remove).
// Not part of the engine's interface; only the apply library and its tests include it.

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/schema.h"

namespace orrery::api::fieldmanager {

/// A failure inside the walks (bad managedFields, list items without their key). Thrown only
/// within the apply library and turned into a Status at its boundary.
class FieldError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One step of a path, spelled as in FieldsV1: `f:name` (struct field or map key),
/// `k:{"name":"web"}` (associative list item, keys sorted, compact JSON), `v:"x"` (set item),
/// `i:3` (list index).
using PathElement = std::string;
using Path = std::vector<PathElement>;

/// A set of field paths, stored as the trie FieldsV1 encodes. A node is a path; `member` says
/// the path itself is in the set. Empty non-member nodes are never kept.
class FieldSet {
 public:
  bool empty() const { return children_.empty(); }
  bool member() const { return member_; }
  const std::map<PathElement, FieldSet>& children() const { return children_; }

  void insert(const Path& path);
  bool has(const Path& path) const;
  /// The node for `pe` below this one, created if missing (callers keep it non-empty).
  FieldSet& child(const PathElement& pe) { return children_[pe]; }
  void setMember(bool member) { member_ = member; }

  FieldSet unite(const FieldSet& other) const;
  FieldSet minus(const FieldSet& other) const;
  FieldSet intersect(const FieldSet& other) const;
  /// Removes every member of `other` together with everything below it.
  FieldSet minusRecursive(const FieldSet& other) const;

  /// Member paths in structured-merge-diff's iteration order: at each level the members first,
  /// then the children, each sorted.
  std::vector<Path> paths() const;

  bool operator==(const FieldSet& o) const = default;

  /// The FieldsV1 JSON (`{"f:spec":{"f:replicas":{}}}`, `"."` for a member with children).
  nlohmann::json toFieldsV1() const;
  /// Parses FieldsV1; throws FieldError on malformed input. k:/v: keys are re-serialized so
  /// sets written by other clients compare equal to ours.
  static FieldSet fromFieldsV1(const nlohmann::json& fields);

 private:
  bool nonEmpty() const { return member_ || !children_.empty(); }
  void collect(Path& prefix, std::vector<Path>& out) const;

  bool member_ = false;
  std::map<PathElement, FieldSet> children_;
};

/// kube's rendering of a path in conflict messages: `.spec.containers[name="web"].image`,
/// `.metadata.finalizers[="x"]`, `.spec.args[0]`.
std::string pathToString(const Path& path);

/// Canonical compact JSON the way kube writes it inside keys (sorted keys, no spaces).
std::string canonicalJson(const nlohmann::json& value);

/// What structured-merge-diff refuses in an applied configuration: list items without their
/// key (`.spec.containers: element 0: associative list with keys has an element that omits key
/// field "name" (and doesn't have default value)`) and duplicate items (`.spec.ports: duplicate
/// entries for key [containerPort=80,protocol="TCP"]`).
std::vector<std::string> validateApplied(const nlohmann::json& object, const Schema* schema);

/// The fields an object sets (structured-merge-diff's ToFieldSet).
FieldSet toFieldSet(const nlohmann::json& object, const Schema* schema);

struct Comparison {
  FieldSet added, modified, removed;
  FieldSet changed() const { return added.unite(modified); }
};

/// What changed from `lhs` to `rhs` (either may be null = absent). With `lhsIsEmptyObject`,
/// `lhs` stands for the empty object of the type as the Go API server builds it on create:
/// required fields and nested structs reached through struct fields already exist there, so
/// they are not counted as added themselves (only what they hold is). metadata.managedFields
/// is not compared on either side.
Comparison compare(const nlohmann::json* lhs, const nlohmann::json* rhs, const Schema* schema,
                   bool lhsIsEmptyObject = false);

/// Merges `rhs` (an applied configuration) into `lhs` with the schema's list/map semantics.
nlohmann::json merge(const nlohmann::json& lhs, const nlohmann::json& rhs, const Schema* schema);

/// Removes every member of `set` (and what is below it) from `object`.
void removeItems(nlohmann::json& object, const FieldSet& set, const Schema* schema);

/// Adds, as members, the named struct fields on the way to members (structured-merge-diff's
/// EnsureNamedFieldsAreMembers).
FieldSet ensureNamedFieldsAreMembers(const FieldSet& set, const Schema* schema);

/// Empties the memo of field sets that creates of built-in kinds share by shape (for tests
/// that compare a remembered set with one computed afresh).
void forgetCreateShapes();

}  // namespace orrery::api::fieldmanager
