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
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::api {

struct Schema;
using SchemaPtr = std::shared_ptr<const Schema>;
class ResourceRegistry;

/// One x-kubernetes-group-version-kind entry of a kind's schema.
struct SchemaGvk {
  std::string group, version, kind;
  bool operator==(const SchemaGvk&) const = default;
};

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
  /// Field numbers of kube's generated.proto (`pb=N` in the schema language): number ->
  /// property name. Drives decoding of `application/vnd.kubernetes.protobuf` bodies.
  std::map<int32_t, std::string> protoFields;
  /// Fields of a Go struct embedded inline (`pb=A.B`: field B of the message in field A),
  /// e.g. Volume's VolumeSource or Probe's ProbeHandler: A -> (B -> property name).
  std::map<int32_t, std::map<int32_t, std::string>> protoEmbedded;

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
  std::optional<double> multipleOf;
  bool exclusiveMinimum = false, exclusiveMaximum = false;
  std::optional<int64_t> minProperties, maxProperties;

  /// x-kubernetes-group-version-kind of a kind's definition (built-ins: `gvk=` attribute).
  std::vector<SchemaGvk> gvks;

  /// True when `refName` names this very node's definition (the named type itself), false
  /// for a field that refers to a named type and adds its own description/merge rules; the
  /// OpenAPI writer emits a $ref for the latter.
  bool isDefinition = false;

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
  /// The built-in types, parsed once from the compiled-in schema files. Each call returns a
  /// new registry (sharing the parsed nodes), so CRD schemas added to one stay there.
  static Result<std::shared_ptr<SchemaRegistry>> builtin();

  /// Parses schema-language sources ({file name, text}); the error lists every problem as
  /// "file:line: what is wrong", one per line and one StatusCause each (field = "file:line").
  static Result<std::shared_ptr<SchemaRegistry>> parse(
      const std::vector<std::pair<std::string, std::string>>& sources);

  SchemaRegistry() = default;
  SchemaRegistry(const SchemaRegistry& other);

  /// Named definition ("io.k8s.api.core.v1.Pod"), or null.
  SchemaPtr find(const std::string& name) const;
  void add(const std::string& name, SchemaPtr schema);
  void remove(const std::string& name);
  std::vector<std::string> names() const;

  /// OpenAPI v2 document (`/openapi/v2`) of every definition, with x-kubernetes-group-version-kind.
  /// Without a resource registry the document has definitions and no paths.
  nlohmann::json openApiV2() const;
  nlohmann::json openApiV2(const ResourceRegistry& resources) const;
  /// The same document as gnostic's openapi_v2.Document protobuf: what client-go asks for
  /// (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).
  std::string openApiV2Protobuf(const ResourceRegistry& resources) const;
  /// OpenAPI v3 document for one group-version (`/openapi/v3/apis/apps/v1`, groupVersion
  /// "apps/v1"; "v1" for the core group): components.schemas holds every definition reachable
  /// from the group-version's kinds; paths come from `resources`.
  nlohmann::json openApiV3(const std::string& groupVersion) const;
  nlohmann::json openApiV3(const std::string& groupVersion,
                           const ResourceRegistry& resources) const;
  /// The `/openapi/v3` root: {"paths": {"api/v1": {"serverRelativeURL":
  /// "/openapi/v3/api/v1?hash=H"}, "apis/apps/v1": ...}}. `hashes` maps a group-version to
  /// its document's hash (the apiserver hashes the bytes it caches); missing ones are
  /// computed by generating the document.
  nlohmann::json openApiV3Index(const ResourceRegistry& resources,
                                const std::map<std::string, std::string>& hashes = {}) const;
  /// The hash kube-apiserver puts in serverRelativeURL for a serialized document.
  static std::string openApiHash(std::string_view serialized);

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, SchemaPtr> defs_;
};

/// Parses a CRD's `openAPIV3Schema` into a structural schema. Fails with causes naming the
/// field under `spec.versions[i].schema.openAPIV3Schema` when it is not structural.
/// The causes are kube's (sorted like kube sorts them); the Status is 422 Invalid with a
/// message of the joined causes: the CRD handler re-wraps them with Status::invalid naming the
/// CustomResourceDefinition. The root (and every x-kubernetes-embedded-resource object) always
/// accepts `apiVersion`, `kind` and `metadata`.
Result<SchemaPtr> schemaFromOpenApiV3(const nlohmann::json& openApiV3Schema,
                                      const std::string& fieldPath);
/// As above; `objectMeta` (the registry's io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta)
/// becomes the schema of `metadata`, so unknown metadata fields are found and pruned.
Result<SchemaPtr> schemaFromOpenApiV3(const nlohmann::json& openApiV3Schema,
                                      const std::string& fieldPath, SchemaPtr objectMeta);

/// How unknown and duplicate fields are treated (the `fieldValidation` query parameter).
enum class FieldValidation { kIgnore, kWarn, kStrict };

/// What validating an object against its schema found.
struct SchemaCheck {
  std::vector<StatusCause> errors;   // wrong types, missing required fields, bad enums: 422
  std::vector<std::string> unknownFields;  // field paths ("spec.containers[0].imagee")
};

/// Checks `object` against `schema`: types, required fields, enums and CRD value constraints,
/// and collects unknown fields (sorted by path, as kube's pruning reports them for custom
/// resources). Field paths are kube-style ("spec.containers[0].image"; map values
/// "metadata.labels.app"). Causes read like the CRD validator's, e.g. field "spec.replicas",
/// message `Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
/// A named (built-in) root schema treats explicit null as absent, like Go's decoder; an
/// anonymous (CRD) schema rejects null unless the node is nullable.
/// `stored`: the object as last written under this same schema, when `object` updates it. A
/// member or list item equal to its counterpart there passed this check when it was written
/// and is not checked again (an update's unchanged spec is one comparison, not a walk).
SchemaCheck checkAgainstSchema(const nlohmann::json& object, const Schema& schema,
                               const nlohmann::json* stored = nullptr);

/// Applies the schema's `default` values to absent fields (CRD structural defaulting).
void applySchemaDefaults(nlohmann::json& object, const Schema& schema);

/// Removes fields the schema does not declare (what kube-apiserver does to unknown fields
/// with fieldValidation Ignore/Warn, and to CRD objects without preserve-unknown-fields).
void pruneUnknownFields(nlohmann::json& object, const Schema& schema);

/// The 400 BadRequest message kube-apiserver gives when a built-in object does not decode
/// (the first type mismatch), e.g. `Pod in version "v1" cannot be handled as a Pod: json:
/// cannot unmarshal number into Go struct field Container.spec.containers.image of type
/// string`. Empty when every value has a decodable type. `kind`/`version` name the object.
/// `stored`: as for checkAgainstSchema.
std::string builtinDecodeError(const nlohmann::json& object, const Schema& schema,
                               const std::string& kind, const std::string& version,
                               const nlohmann::json* stored = nullptr);

/// Fields that appear twice in the same JSON object of `json`, as kube's strict decoder names
/// them: `duplicate field "replicas"` (nested: `duplicate field "spec.replicas"`). Empty when
/// none, or when `json` is not valid JSON (the caller reports that).
std::vector<std::string> findDuplicateFields(std::string_view json);

/// What kube's strict decoder reports for a built-in object's raw JSON, in document order:
/// `unknown field "spec.foo"` and `duplicate field "spec.paused"` (a field both unknown and
/// repeated is reported once, as unknown). The apiserver joins them as
/// `strict decoding error: <m1>, <m2>` (Strict) or sends each as a warning (Warn).
/// For custom resources use findDuplicateFields + checkAgainstSchema's unknownFields.
std::vector<std::string> strictDecodingErrors(std::string_view json, const Schema& schema);

/// The strict-decoding message of one unknown field: `unknown field "spec.foo"`.
std::string unknownFieldMessage(const std::string& fieldPath);

}  // namespace orrery::api
