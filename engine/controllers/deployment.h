#pragma once
// kube-controller-manager's Deployment controller: one ReplicaSet per pod template (named
// "<deployment>-<pod-template-hash>"), rolled out by RollingUpdate (maxSurge/maxUnavailable)
// or Recreate, with revision annotations, revision history cleanup, rollback by template,
// pause, proportional scaling, and the Progressing/Available/ReplicaFailure conditions that
// `kubectl rollout status` and `kubectl wait --for=condition=Available` read.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"
#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "deployment" controller (events as "deployment-controller").
std::unique_ptr<Controller> newDeploymentController();

namespace deployment {

/// intstr.GetScaledValueFromIntOrPercent: an int as is, "N%" of `total` rounded up or down.
api::Result<int32_t> scaledValue(const nlohmann::json& intOrPercent, int32_t total, bool roundUp);

/// ResolveFenceposts: {maxSurge (percent rounded up), maxUnavailable (percent rounded down)};
/// when both come out 0, maxUnavailable is 1 so that a rollout can make progress.
api::Result<std::pair<int32_t, int32_t>> resolveFenceposts(const nlohmann::json& maxSurge,
                                                           const nlohmann::json& maxUnavailable,
                                                           int32_t desired);

/// The pod-template-hash of a template (and the deployment's status.collisionCount): FNV-32a
/// over the template, encoded with kube's SafeEncodeString alphabet ("5d4f8b9c7"-like).
/// Deviation: kube hashes a Go dump of the typed struct; this hashes the canonical JSON, so
/// the value differs from a real cluster's for the same template (its form does not).
std::string podTemplateHash(const nlohmann::json& podTemplate, std::optional<int32_t> collisionCount);

/// EqualIgnoreHash: two pod templates are the same apart from the pod-template-hash label
/// (null, empty and absent compare equal, as apimachinery's semantic equality has it).
bool equalIgnoreHash(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace deployment
}  // namespace orrery::controllers
