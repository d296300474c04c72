#pragma once
// kube-controller-manager's Job controller (pkg/controller/job, 1.32) and its
// ttl-after-finished controller: pods from the template up to parallelism/completions,
// NonIndexed and Indexed completion, pod failures counted through the
// batch.kubernetes.io/job-tracking finalizer and status.uncountedTerminatedPods,
// backoffLimit and activeDeadlineSeconds, suspend, and the 1.32 condition sequence
// (SuccessCriteriaMet/FailureTarget first, Complete/Failed once no pod is left running).

#include <chrono>
#include <memory>
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

}  // namespace job
}  // namespace orrery::controllers
