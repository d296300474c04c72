#pragma once
// The three patch kinds of `kubectl patch` / PATCH requests, applied to an object's JSON.

#include <string>

#include <nlohmann/json.hpp>

#include "engine/api/schema.h"
#include "engine/api/status.h"

namespace orrery::api {

/// RFC 6902 JSON patch (`application/json-patch+json`). Fails with kube-apiserver's errors:
/// 400 for a malformed patch document, 422 ("the server rejected our request due to an error
/// in our request") for a failing op such as `test` or a missing path.
Result<nlohmann::json> applyJsonPatch(const nlohmann::json& original, const nlohmann::json& patch);

/// RFC 7386 JSON merge patch (`application/merge-patch+json`): null deletes, objects merge,
/// everything else replaces.
Result<nlohmann::json> applyMergePatch(const nlohmann::json& original, const nlohmann::json& patch);

/// Strategic merge patch (`application/strategic-merge-patch+json`) with the merge rules of
/// `schema` (x-kubernetes-patch-strategy / patch-merge-key): lists with a merge key merge by
/// key, `$patch: delete|replace|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
/// `$setElementOrder/<field>`. Where the schema says nothing, behaves as a merge patch.
/// kube-apiserver refuses strategic merge patch for custom resources (415); callers decide.
Result<nlohmann::json> applyStrategicMergePatch(const nlohmann::json& original,
                                                const nlohmann::json& patch, const Schema& schema);

}  // namespace orrery::api
