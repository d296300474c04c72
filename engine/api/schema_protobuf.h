#pragma once
// Decoding of Kubernetes protobuf bodies (`Content-Type: application/vnd.kubernetes.protobuf`),
// which typed clients such as kubectl 1.32 send for creates and updates of built-in kinds.
// The decoding is driven by the schemas: each field's number comes from the `pb=N` attribute
// in engine/api/types/*.schema (Schema::protoFields), so no generated code is needed.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/api/schema.h"
#include "engine/api/status.h"

namespace orrery::api {

/// The 4-byte prefix of every Kubernetes protobuf document: "k8s\0".
inline constexpr std::string_view kKubernetesProtobufMagic{"k8s\0", 4};

/// The media type of Kubernetes protobuf bodies.
inline constexpr const char* kKubernetesProtobufMediaType = "application/vnd.kubernetes.protobuf";

/// True when `body` starts with the Kubernetes protobuf magic prefix.
bool looksLikeKubernetesProtobuf(std::string_view body);

/// Decodes a Kubernetes protobuf body (magic "k8s\0" + runtime.Unknown envelope) into the
/// JSON object kube-apiserver would have read from the equivalent JSON body: `apiVersion`
/// and `kind` from the envelope's TypeMeta, the rest from the raw object bytes, decoded with
/// the named definition `schemaName` (e.g. "io.k8s.api.core.v1.ConfigMap"). When
/// `schemaName` is empty, the definition whose x-kubernetes-group-version-kind matches the
/// envelope's apiVersion/kind is used.
///
/// Zero values follow kube's JSON: empty strings of optional fields, and zero numbers and
/// false of Go value (non-pointer) `omitempty` fields, are dropped; pointer fields keep them
/// (`replicas: 0`, `automountServiceAccountToken: false`). Unknown field numbers are skipped
/// (like kube's decoder). Errors are 400 BadRequest naming the field path.
Result<nlohmann::json> decodeKubernetesProtobuf(std::string_view body,
                                                const SchemaRegistry& schemas,
                                                const std::string& schemaName);

/// Decodes one protobuf message (no magic, no envelope) with `schema`. Exposed for tests and
/// for nested payloads.
Result<nlohmann::json> decodeProtobufMessage(std::string_view bytes, const Schema& schema);

}  // namespace orrery::api
