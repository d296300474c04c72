#pragma once
// kube-controller-manager's DaemonSet controller (pkg/controller/daemon): one pod per eligible
// node (nodeSelector and required node affinity match, taints tolerated, with the tolerations
// kube adds to every daemon pod), created with a required node affinity on the node's name for
// the scheduler to bind; RollingUpdate (maxUnavailable or maxSurge) and OnDelete updates over
// ControllerRevisions; status as `kubectl rollout status daemonset/NAME` reads it.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "daemonset" controller (events as "daemonset-controller").
std::unique_ptr<Controller> newDaemonSetController();

namespace daemonset {

/// Labels kube puts on daemon pods and revisions.
inline constexpr const char* kRevisionHashLabel = "controller-revision-hash";
inline constexpr const char* kTemplateGenerationLabel = "pod-template-generation";
/// The annotation kube-apiserver keeps the template generation in (used when present).
inline constexpr const char* kTemplateGenerationAnnotation = "deprecated.daemonset.template.generation";

/// util.AddOrUpdateDaemonPodTolerations: adds kube's daemon tolerations to a pod spec
/// (not-ready/unreachable NoExecute; disk-, memory-, pid-pressure and unschedulable NoSchedule;
/// network-unavailable NoSchedule for hostNetwork pods).
void addDaemonTolerations(nlohmann::json& podSpec);

/// NodeShouldRunDaemonPod: {shouldRun, shouldContinueRunning} of the DaemonSet on `node`.
std::pair<bool, bool> nodeShouldRunDaemonPod(const nlohmann::json& node, const nlohmann::json& ds);

/// The node a daemon pod targets: spec.nodeName, else its matchFields metadata.name affinity.
std::string targetNodeName(const nlohmann::json& pod);

}  // namespace daemonset
}  // namespace orrery::controllers
