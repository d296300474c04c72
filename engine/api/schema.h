#pragma once
// The structural schema of every API type: one model that validates objects, drives the
// strategic-merge-patch and server-side-apply merge rules, and is served as OpenAPI v2/v3
// (so `kubectl explain` and client-side validation read the same truth the server enforces).
//
// Built-in types are written in the schema language under engine/api/types/*.schema and
// compiled into the binary; CustomResourceDefinitions add schemas at run time from their
// openAPIV3Schema.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::api {

struct Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

/// One node of a structural schema (an OpenAPI v3 schema restricted the way Kubernetes
/// restricts CRD schemas: every node has a type, or is int-or-string / preserve-unknown).
struct Schema {
  enum class Type {
    kObject,   // fixed `properties`
    kMap,      // object with `additionalProperties` (map[string]T); `items` holds T
    kArray,    // `items` holds the element schema
    kString,
    kInteger,
    kNumber,
    kBoolean,
    kIntOrString,  // x-kubernetes-int-or-string
    kAny,          // x-kubernetes-preserve-unknown-fields with no type (RawExtension, JSON)
  };
  Type type = Type::kObject;
  std::string description;
  std::string format;  // "int32", "int64", "date-time", "byte", "quantity"...
  std::string refName;  // for named types: "io.k8s.api.core.v1.Pod" (OpenAPI definition name)

  // kObject
  std::map<std::string, SchemaPtr> properties;
  std::vector<std::string> required;
  bool preserveUnknownFields = false;  // x-kubernetes-preserve-unknown-fields: true
  bool embeddedResource = false;       // x-kubernetes-embedded-resource

  // kArray / kMap: the element / value schema
  SchemaPtr items;

  // Merge rules (strategic merge patch and server-side apply).
  std::string patchStrategy;            // "merge", "replace", "retainKeys", "merge,retainKeys"
  std::string patchMergeKey;            // e.g. "name" for containers
  std::string listType;                 // "atomic", "set", "map" (arrays); SSA semantics
  std::vector<std::string> listMapKeys; // for listType "map"
  std::string mapType;                  // "granular" (default) or "atomic" (objects/maps)

  // Value constraints (CRD schemas use these; built-ins use them for enums).
  std::vector<std::string> enumValues;
  std::optional<nlohmann::json> defaultValue;
  std::optional<double> minimum, maximum;
  std::optional<int64_t> minLength, maxLength, minItems, maxItems;
  std::string pattern;
  bool nullable = false;

  /// The schema of property `name` of an object, the value schema of a map, or null.
  const Schema* child(const std::string& name) const {
    if (type == Type::kMap) return items.get();
    auto it = properties.find(name);
    return it == properties.end() ? nullptr : it->second.get();
  }
};

/// Every named schema the server knows: built-ins and CRD-provided ones.
class SchemaRegistry {
 public:
  /// The built-in types, parsed once from the compiled-in schema files.
  static Result<std::shared_ptr<SchemaRegistry>> builtin();

  /// Named definition ("io.k8s.api.core.v1.Pod"), or null.
  SchemaPtr find(const std::string& name) const;
  void add(const std::string& name, SchemaPtr schema);
  void remove(const std::string& name);
  std::vector<std::string> names() const;

  /// OpenAPI v2 document (`/openapi/v2`) of every definition, with x-kubernetes-group-version-kind.
  nlohmann::json openApiV2() const;
  /// OpenAPI v3 document for one group-version (`/openapi/v3/apis/apps/v1`).
  nlohmann::json openApiV3(const std::string& groupVersion) const;

 private:
  std::map<std::string, SchemaPtr> defs_;
};

/// Parses a CRD's `openAPIV3Schema` into a structural schema. Fails with causes naming the
/// field under `spec.versions[i].schema.openAPIV3Schema` when it is not structural.
Result<SchemaPtr> schemaFromOpenApiV3(const nlohmann::json& openApiV3Schema,
                                      const std::string& fieldPath);

/// How unknown and duplicate fields are treated (the `fieldValidation` query parameter).
enum class FieldValidation { kIgnore, kWarn, kStrict };

/// What validating an object against its schema found.
struct SchemaCheck {
  std::vector<StatusCause> errors;   // wrong types, missing required fields, bad enums: 422
  std::vector<std::string> unknownFields;  // field paths ("spec.containers[0].imagee")
};

/// Checks `object` against `schema`: types, required fields, enums and CRD value constraints,
/// and collects unknown fields. Field paths are kube-style ("spec.containers[0].image").
SchemaCheck checkAgainstSchema(const nlohmann::json& object, const Schema& schema);

/// Applies the schema's `default` values to absent fields (CRD structural defaulting).
void applySchemaDefaults(nlohmann::json& object, const Schema& schema);

/// Removes fields the schema does not declare (what kube-apiserver does to unknown fields
/// with fieldValidation Ignore/Warn, and to CRD objects without preserve-unknown-fields).
void pruneUnknownFields(nlohmann::json& object, const Schema& schema);

}  // namespace orrery::api
