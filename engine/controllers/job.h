#pragma once
// kube-controller-manager's Job controller (pkg/controller/job, 1.32) and its
// ttl-after-finished controller: pods from the template up to parallelism/completions,
// NonIndexed and Indexed completion, pod failures counted through the
// batch.kubernetes.io/job-tracking finalizer and status.uncountedTerminatedPods,
// backoffLimit and activeDeadlineSeconds, suspend, and the 1.32 condition sequence
// (SuccessCriteriaMet/FailureTarget first, Complete/Failed once no pod is left running).

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// Tuning of the Job controller.
struct JobControllerOptions {
  /// Delay before a failed pod is replaced, doubled per consecutive failure and capped at six
  /// minutes (kube's DefaultJobPodFailureBackOff, 10 s). Tests shorten it.
  std::chrono::milliseconds podFailureBackoff{10000};
};

/// The "job" controller (events as "job-controller").
std::unique_ptr<Controller> newJobController(JobControllerOptions options = {});

/// The "ttl-after-finished" controller: deletes finished Jobs (foreground propagation) once
/// spec.ttlSecondsAfterFinished has passed since completion, on ControllerContext::now.
std::unique_ptr<Controller> newTtlAfterFinishedController();

namespace job {

/// The finalizer the Job controller puts on its pods until it has counted them.
inline constexpr const char* kTrackingFinalizer = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's completion index.
inline constexpr const char* kCompletionIndex = "batch.kubernetes.io/job-completion-index";

/// Parses status.completedIndexes ("1,3-5"); invalid parts are ignored.
std::set<int> parseIndexes(const std::string& text);
/// Formats indexes as kube does: ascending, consecutive runs (of any length >= 2) as "a-b".
std::string formatIndexes(const std::set<int>& indexes);

/// What spec.podFailurePolicy makes of a failed pod (kube's matchPodFailurePolicy): the first
/// rule whose onExitCodes (a container, else an init container, that terminated with a
/// non-zero code In/NotIn the values) or onPodConditions (a condition of that type and
/// status) matches decides.
struct FailureVerdict {
  std::string action;  // the matching rule's action; "" when none matched (the failure counts)
  bool counts = true;  // false under Ignore: not toward backoffLimit, not in status.failed
  /// Under FailJob: the Job's failure message ("Container main for pod ns/p failed with exit
  /// code 42 matching FailJob rule at index 0").
  std::optional<std::string> failJobMessage;
};
FailureVerdict matchPodFailurePolicy(const nlohmann::json& podFailurePolicy, const nlohmann::json& pod);

/// spec.successPolicy of an Indexed Job (kube's matchSuccessPolicy): the index of the first
/// rule the succeeded indexes meet (all of its succeededIndexes, or succeededCount of them, or
/// succeededCount indexes at all), if any. The Job then succeeds early ("Matched rules at
/// index N").
std::optional<size_t> matchSuccessPolicy(const nlohmann::json& successPolicy, int64_t completions,
                                         const std::set<int>& succeededIndexes);

}  // namespace job
}  // namespace orrery::controllers
