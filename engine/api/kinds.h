#pragma once
// What is particular to each built-in kind, as kube-apiserver's registry strategies and
// defaulters do it: defaults, semantic validation (beyond the schema), and how create/update
// treat spec, status and metadata.generation.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"
#include "engine/api/status.h"

namespace orrery::api {

/// Fills the defaults kube-apiserver's defaulters fill (pod restartPolicy/dnsPolicy/
/// terminationMessagePath/imagePullPolicy/schedulerName, deployment strategy and
/// revisionHistoryLimit, service type/sessionAffinity/port protocol/targetPort, ...), so
/// that `kubectl get -o yaml` shows what a real cluster would show.
void applyKindDefaults(const ResourceInfo& info, nlohmann::json& object);

/// Semantic validation beyond the schema: metadata (name format per kind: DNS-1123 subdomain,
/// DNS-1123 label, DNS-1035 label; labels, annotations, sizes), required-but-not-schema
/// rules (a pod needs containers, a deployment's selector must match its template labels),
/// and immutable fields on update (`old` non-null). Causes use kube's types and field paths,
/// e.g. {FieldValueRequired, "Required value", "spec.containers"}.
std::vector<StatusCause> validateKind(const ResourceInfo& info, const nlohmann::json& object,
                                      const nlohmann::json* old);

/// Create: sets what the strategy sets on create (generation 1; status reset for kinds whose
/// status is only written through /status, e.g. deployments; pod status.phase Pending and
/// qosClass).
void prepareForCreate(const ResourceInfo& info, nlohmann::json& object);

/// Update through the main resource (`subresource` "") keeps the old status; through
/// "status" keeps the old spec (and metadata except labels/annotations/finalizers...).
/// Bumps metadata.generation when the spec changed (for kinds that track generation).
void prepareForUpdate(const ResourceInfo& info, const std::string& subresource,
                      nlohmann::json& object, const nlohmann::json& old);

/// What kube-apiserver refuses while decoding a typed object, before any validation: a
/// quantity that does not parse, a Secret's data that is not base64. Returns ok(), or
/// 400 BadRequest `Pod in version "v1" cannot be handled as a Pod: quantities must match the
/// regular expression '...'` (call it before applyKindDefaults).
Status checkDecodable(const ResourceInfo& info, const nlohmann::json& object);

/// Name rules (kube's validation messages): return empty when valid.
std::vector<std::string> isDns1123Subdomain(const std::string& value);
std::vector<std::string> isDns1123Label(const std::string& value);
std::vector<std::string> isDns1035Label(const std::string& value);

}  // namespace orrery::api
