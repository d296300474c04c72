#pragma once
// Server-side apply and managedFields, as kube-apiserver's fieldmanager does them: every write
// records which manager owns which fields (metadata.managedFields, FieldsV1), and an apply
// (`application/apply-patch+yaml`) merges the applied configuration into the live object,
// failing with 409 Conflict and one cause per conflicting field unless forced.

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/schema.h"
#include "engine/api/status.h"

namespace orrery::api {

struct ManagerInfo {
  std::string manager;      // fieldManager query parameter or derived from the User-Agent
  std::string apiVersion;   // the apiVersion the request was made in
  std::string time;         // RFC 3339 timestamp of the request (injected for tests)
  std::string subresource;  // "" or "status", "scale"
  /// Field paths the endpoint's strategy resets, dotted ("status" for main-resource writes of
  /// kinds with a status subresource; "spec", "metadata.labels"... for /status). Nobody gains
  /// ownership of them through this endpoint, and an apply leaves their live values alone.
  std::vector<std::string> resetFields;
};

/// Longest field manager name kube-apiserver accepts (validation.FieldManagerMaxLength).
inline constexpr std::size_t kFieldManagerMaxLength = 128;

/// The manager name kube-apiserver derives when a request names none: the User-Agent up to
/// its first '/', without unprintable characters, cut to 128 bytes ("kubectl/v1.32.0 ..." ->
/// "kubectl").
std::string fieldManagerFromUserAgent(const std::string& userAgent);

/// After a create/update/patch by `who` (operation "Update"): recompute `updated`'s
/// metadata.managedFields from `live` (null for a create) so that `who` owns the fields it
/// changed and others lose them. Leaves `updated` otherwise untouched. As kube-apiserver:
/// managedFields sent in `updated` are taken as given (`[]` resets them); an existing object
/// without managedFields stays untracked; bookkeeping errors drop managedFields, never the
/// write (always returns ok). Call it after defaulting, so defaults belong to the writer.
Status updateManagedFields(const nlohmann::json& live, nlohmann::json& updated,
                           const ManagerInfo& who, const Schema& schema);

/// Server-side apply of `applied` (the patch body as JSON) over `live` (null if the object
/// does not exist yet: then it is created from `applied`). Returns the new object, with
/// managedFields updated (operation "Apply"). On conflicts without `force`, returns a 409
/// Status with reason Conflict, the message kube-apiserver gives
/// ("Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas")
/// and one cause per field (type "FieldManagerConflict"). An apply that changes nothing returns
/// the live object unchanged apart from the applier's field set (same time): callers compare
/// and skip the write, so the resourceVersion stays. 400 for managedFields in the body or an
/// apiVersion other than `who.apiVersion`.
Result<nlohmann::json> serverSideApply(const nlohmann::json& live, const nlohmann::json& applied,
                                       const ManagerInfo& who, bool force, const Schema& schema);

}  // namespace orrery::api
