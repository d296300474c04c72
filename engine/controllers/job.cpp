// The Job controller and the ttl-after-finished controller, as pkg/controller/job and
// pkg/controller/ttlafterfinished in kube-controller-manager 1.32.

#include "engine/controllers/job.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kJobs{"batch", "v1", "jobs"};

constexpr int kBurst = 500;                 // kube's MaxPodCreateDeletePerSync
constexpr auto kMaxBackoff = std::chrono::minutes(6);  // DefaultJobPodFailureBackOff cap
const char* kOrphanPrefix = "pod:";         // queue keys of pods whose finalizer to drop
// A pod's failures within its index, counted and ignored (by podFailurePolicy), as kube keeps
// them on each replacement pod.
const char* kIndexFailureCount = "batch.kubernetes.io/job-index-failure-count";
const char* kIndexIgnoredFailureCount = "batch.kubernetes.io/job-index-ignored-failure-count";

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : std::string(); }
std::optional<int64_t> optInt(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}



std::string phase(const json& pod) { return strField(pod, "status", "phase"); }

const json* findCondition(const json& obj, const std::string& type) {
  const json& conds = field(obj, "status", "conditions");
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds)
    if (c.is_object() && c.value("type", "") == type) return &c;
  return nullptr;
}

bool conditionTrue(const json& obj, const std::string& type) {
  const json* c = findCondition(obj, type);
  return c && c->value("status", "") == "True";
}

// The same over a status object rather than the whole Job.
bool statusConditionTrue(const json& status, const std::string& type) {
  json wrapped = {{"status", status}};
  return conditionTrue(wrapped, type);
}

/// Complete or Failed is True (util.IsJobFinished).
bool jobFinished(const json& job) { return conditionTrue(job, "Complete") || conditionTrue(job, "Failed"); }

/// Sets (or updates) a condition in status.conditions; true if anything changed.
bool setCondition(json& status, const std::string& type, const std::string& condStatus, const std::string& reason,
                  const std::string& message, const std::string& now) {
  json& conds = status["conditions"];
  if (!conds.is_array()) conds = json::array();
  for (auto& c : conds) {
    if (c.value("type", "") != type) continue;
    if (c.value("status", "") == condStatus && c.value("reason", "") == reason && c.value("message", "") == message)
      return false;
    if (c.value("status", "") != condStatus) c["lastTransitionTime"] = now;
    c["status"] = condStatus;
    c["reason"] = reason;
    c["message"] = message;
    c["lastProbeTime"] = now;
    return true;
  }
  conds.push_back({{"type", type},
                   {"status", condStatus},
                   {"lastProbeTime", now},
                   {"lastTransitionTime", now},
                   {"reason", reason},
                   {"message", message}});
  return true;
}

bool hasTrackingFinalizer(const json& pod) { return hasFinalizer(pod, job::kTrackingFinalizer); }

// A decimal int32 of zero or more, as kube reads its Job annotations (strconv.Atoi, range
// checked); nullopt when absent or malformed.
std::optional<int> nonNegativeInt32(const std::string& v) {
  if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int64_t n = std::stoll(v);
  if (n > INT32_MAX) return std::nullopt;
  return static_cast<int>(n);
}

std::optional<int> podIndex(const json& pod) {
  std::string v = str(field(field(pod, "metadata", "annotations"), job::kCompletionIndex));
  if (v.empty()) v = str(field(field(pod, "metadata", "labels"), job::kCompletionIndex));
  return nonNegativeInt32(v);
}

// When a pod finished (kube's getFinishedTime): its last container's exit, else when it stopped
// being Ready, else its deletion, else its creation.
Clock::time_point finishedTime(const json& pod) {
  Clock::time_point latest{};
  for (const char* list : {"containerStatuses", "initContainerStatuses"}) {
    const json& statuses = field(pod, "status", list);
    if (!statuses.is_array()) continue;
    for (const auto& cs : statuses) {
      const json& at = field(field(field(cs, "state"), "terminated"), "finishedAt");
      if (at.is_string()) latest = std::max(latest, timeField(at));
    }
  }
  if (latest != Clock::time_point{}) return latest;
  const json& conditions = field(pod, "status", "conditions");
  if (conditions.is_array())
    for (const auto& c : conditions)
      if (c.is_object() && c.value("type", "") == "Ready" && c.value("status", "") == "False")
        return timeField(field(c, "lastTransitionTime"));
  if (isBeingDeleted(pod)) return timeField(field(pod, "metadata", "deletionTimestamp"));
  return timeField(field(pod, "metadata", "creationTimestamp"));
}

// A failure-count annotation; 0 when absent or malformed (kube's parseInt32).
int64_t annotationCount(const json& pod, const char* key) {
  return nonNegativeInt32(str(field(field(pod, "metadata", "annotations"), key))).value_or(0);
}

std::string ownerUid(const json& obj) {
  auto ref = controllerRef(obj);
  return ref && ref->kind == "Job" ? ref->uid : std::string();
}

}  // namespace

namespace job {

// kube's matchOnExitCodes: the first container (then init container) that terminated with a
// non-zero exit code the requirement accepts.
const json* matchOnExitCodes(const json& pod, const json& requirement) {
  const std::string op = str(field(requirement, "operator"));
  const json& values = field(requirement, "values");
  const json& only = field(requirement, "containerName");
  for (const char* list : {"containerStatuses", "initContainerStatuses"}) {
    const json& statuses = field(pod, "status", list);
    if (!statuses.is_array()) continue;
    for (const auto& cs : statuses) {
      const json& terminated = field(field(cs, "state"), "terminated");
      if (!terminated.is_object()) continue;  // still running or terminating: no exit code yet
      if (only.is_string() && only != field(cs, "name")) continue;
      const int64_t code = optInt(field(terminated, "exitCode")).value_or(0);
      if (code == 0) continue;
      bool listed = false;
      if (values.is_array())
        for (const auto& v : values) listed = listed || (v.is_number_integer() && v.get<int64_t>() == code);
      if ((op == "In" && listed) || (op == "NotIn" && !listed)) return &cs;
    }
  }
  return nullptr;
}

FailureVerdict matchPodFailurePolicy(const json& policy, const json& pod) {
  FailureVerdict verdict;
  const json& rules = field(policy, "rules");
  if (!rules.is_array()) return verdict;
  const std::string who = strField(pod, "metadata", "namespace") + "/" + strField(pod, "metadata", "name");
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& rule = rules[i];
    const std::string action = str(field(rule, "action"));
    std::string matched;  // what matched, in the words of kube's FailJob message
    if (field(rule, "onExitCodes").is_object()) {
      if (const json* cs = matchOnExitCodes(pod, rule["onExitCodes"]))
        matched = "Container " + str(field(*cs, "name")) + " for pod " + who + " failed with exit code " +
                  std::to_string(optInt(field(field(field(*cs, "state"), "terminated"), "exitCode")).value_or(0));
    } else if (field(rule, "onPodConditions").is_array()) {
      const json& conditions = field(pod, "status", "conditions");
      if (conditions.is_array())
        for (const auto& c : conditions) {
          for (const auto& pattern : rule["onPodConditions"]) {
            const std::string status = pattern.is_object() ? pattern.value("status", "True") : "";
            if (c.is_object() && pattern.is_object() && c.value("type", "") == pattern.value("type", "") &&
                c.value("status", "") == status) {
              matched = "Pod " + who + " has condition " + c.value("type", "");
              break;
            }
          }
          if (!matched.empty()) break;
        }
    }
    if (matched.empty()) continue;
    verdict.action = action;
    if (action == "Ignore") verdict.counts = false;
    if (action == "FailJob") verdict.failJobMessage = matched + " matching FailJob rule at index " + std::to_string(i);
    return verdict;
  }
  return verdict;
}

std::optional<size_t> matchSuccessPolicy(const json& successPolicy, int64_t completions,
                                         const std::set<int>& succeededIndexes) {
  const json& rules = field(successPolicy, "rules");
  if (!rules.is_array() || succeededIndexes.empty()) return std::nullopt;
  const int64_t total = static_cast<int64_t>(succeededIndexes.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& rule = rules[i];
    const std::optional<int64_t> count = optInt(field(rule, "succeededCount"));
    if (field(rule, "succeededIndexes").is_string()) {
      std::set<int> required;
      for (int idx : parseIndexes(str(rule["succeededIndexes"])))
        if (idx < completions) required.insert(idx);
      if (required.empty()) continue;  // unparseable: kube skips the rule
      int64_t contained = 0;
      for (int idx : required) contained += succeededIndexes.count(idx);
      if (contained == static_cast<int64_t>(required.size()) || (count && contained >= *count)) return i;
    } else if (count && total >= *count) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace job

namespace {

// ---- the Job controller -------------------------------------------------------------------

class JobController : public Controller {
 public:
  explicit JobController(JobControllerOptions options) : options_(options) {}
  std::string name() const override { return "job"; }
  int workers() const override { return 5; }  // --concurrent-job-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    jobs_ = &context.informers->informer(kJobs);
    pods_ = &context.informers->informer(kPods);
    jobs_->addHandler({
        [this](const client::ObjectPtr& j) { queue().add(client::objectKey(*j)); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& j) { queue().add(client::objectKey(*j)); },
        [this](const client::ObjectPtr& j) { jobDeleted(*j); },
    });
    pods_->addHandler({
        [this](const client::ObjectPtr& p) { podChanged(*p, true); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& p) { podChanged(*p, false); },
        [this](const client::ObjectPtr& p) { podDeleted(*p); },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    if (key.rfind(kOrphanPrefix, 0) == 0) return syncOrphanPod(key.substr(std::strlen(kOrphanPrefix)));
    return syncJob(key);
  }

 private:
  // ---- event handlers

  client::ObjectPtr jobOf(const json& pod) {
    auto ref = controllerRef(pod);
    if (!ref || ref->kind != "Job") return nullptr;
    auto job = jobs_->get(client::objectKey(strField(pod, "metadata", "namespace"), ref->name));
    if (!job || strField(*job, "metadata", "uid") != ref->uid) return nullptr;
    return job;
  }

  void podChanged(const json& pod, bool added) {
    std::string uid = strField(pod, "metadata", "uid");
    if (!hasTrackingFinalizer(pod)) {
      std::lock_guard lock(mu_);
      finalizersRemoved_.erase(uid);
    }
    auto job = jobOf(pod);
    if (!job) {
      // A pod the controller tracked whose Job is gone: drop the finalizer so it can go.
      if (hasTrackingFinalizer(pod) && !ownerUid(pod).empty())
        queue().add(kOrphanPrefix + client::objectKey(pod));
      return;
    }
    if (hasTrackingFinalizer(pod) && jobFinished(*job)) queue().add(kOrphanPrefix + client::objectKey(pod));
    std::string key = client::objectKey(*job);
    if (added) creations_.creationObserved(key);
    queue().add(key);
  }

  void podDeleted(const json& pod) {
    {
      std::lock_guard lock(mu_);
      finalizersRemoved_.erase(strField(pod, "metadata", "uid"));
    }
    if (auto job = jobOf(pod)) queue().add(client::objectKey(*job));
  }

  void jobDeleted(const json& job) {
    std::string key = client::objectKey(job);
    creations_.remove(key);
    {
      std::lock_guard lock(mu_);
      backoff_.erase(key);
    }
    std::string uid = strField(job, "metadata", "uid");
    for (const auto& pod : pods_->byIndex("namespace", strField(job, "metadata", "namespace")))
      if (ownerUid(*pod) == uid && hasTrackingFinalizer(*pod)) queue().add(kOrphanPrefix + client::objectKey(*pod));
  }

  // ---- API helpers

  void record(const json& obj, const char* type, const char* reason, const std::string& message) {
    if (events) events->record(obj, type, reason, message);
  }

  Status removeFinalizer(const json& pod) {
    json patch = {{"metadata", {{"$deleteFromPrimitiveList/finalizers", json::array({job::kTrackingFinalizer})}}}};
    auto r = client_->patch(kPods, strField(pod, "metadata", "namespace"), strField(pod, "metadata", "name"),
                            client::PatchType::kStrategicMerge, patch.dump());
    if (!r.ok() && r.status().code() != 404) return r.status();
    std::lock_guard lock(mu_);
    finalizersRemoved_.insert(strField(pod, "metadata", "uid"));
    return {};
  }

  Status syncOrphanPod(const std::string& podKey) {
    auto pod = pods_->get(podKey);
    if (!pod || !hasTrackingFinalizer(*pod)) return {};
    auto job = jobOf(*pod);
    if (job && !jobFinished(*job) && !isBeingDeleted(*job)) return {};  // its Job will count it
    return removeFinalizer(*pod);
  }

  // `replaced`: with backoffLimitPerIndex, the index's last failed pod, whose failure counts
  // the new pod carries on (kube's addIndexFailureCountAnnotation).
  json newPod(const json& job, std::optional<int> index, const json* replaced = nullptr) {
    const json& tmpl = field(job, "spec", "template");
    std::string name = strField(job, "metadata", "name");
    json meta = json::object();
    meta["generateName"] = index ? name + "-" + std::to_string(*index) + "-" : name + "-";
    const json& tmeta = field(tmpl, "metadata");
    for (const char* f : {"labels", "annotations"})
      if (field(tmeta, f).is_object()) meta[f] = field(tmeta, f);
    json finalizers = field(tmeta, "finalizers").is_array() ? field(tmeta, "finalizers") : json::array();
    finalizers.push_back(job::kTrackingFinalizer);
    meta["finalizers"] = finalizers;
    meta["ownerReferences"] = json::array({newControllerRef(job)});
    json spec = field(tmpl, "spec").is_object() ? field(tmpl, "spec") : json::object();
    if (index) {
      std::string i = std::to_string(*index);
      meta["annotations"][job::kCompletionIndex] = i;
      meta["labels"][job::kCompletionIndex] = i;
      if (field(job, "spec", "backoffLimitPerIndex").is_number_integer()) {
        int64_t counted = 0, ignored = 0;
        if (replaced) {
          counted = annotationCount(*replaced, kIndexFailureCount);
          ignored = annotationCount(*replaced, kIndexIgnoredFailureCount);
          const json& policy = field(job, "spec", "podFailurePolicy");
          if (!policy.is_object() || job::matchPodFailurePolicy(policy, *replaced).counts) ++counted;
          else ++ignored;
        }
        meta["annotations"][kIndexFailureCount] = std::to_string(counted);
        if (ignored > 0) meta["annotations"][kIndexIgnoredFailureCount] = std::to_string(ignored);
      }
      // Indexed pods get a stable hostname and $JOB_COMPLETION_INDEX (addCompletionIndexEnvVariables).
      if (!spec.contains("hostname")) spec["hostname"] = name + "-" + i;
      for (const char* list : {"containers", "initContainers"}) {
        if (!spec.contains(list) || !spec[list].is_array()) continue;
        for (auto& c : spec[list]) {
          json& env = c["env"];
          if (!env.is_array()) env = json::array();
          bool has = false;
          for (const auto& e : env) has = has || e.value("name", "") == "JOB_COMPLETION_INDEX";
          if (!has)
            env.push_back({{"name", "JOB_COMPLETION_INDEX"},
                           {"valueFrom",
                            {{"fieldRef",
                              {{"apiVersion", "v1"},
                               {"fieldPath", std::string("metadata.annotations['") + job::kCompletionIndex + "']"}}}}}});
        }
      }
    }
    return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec}};
  }

  // ---- backoff between failed pods (kube's backoffRecord, per Job)

  struct Backoff {
    int failuresAfterSuccess = 0;
    std::chrono::steady_clock::time_point lastFailure{};
  };

  std::chrono::milliseconds remainingBackoff(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = backoff_.find(key);
    if (it == backoff_.end() || it->second.failuresAfterSuccess == 0) return std::chrono::milliseconds(0);
    auto delay = options_.podFailureBackoff;
    for (int i = 1; i < it->second.failuresAfterSuccess && delay < kMaxBackoff; ++i) delay *= 2;
    delay = std::min<std::chrono::milliseconds>(delay, kMaxBackoff);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(it->second.lastFailure + delay -
                                                                      std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }

  // How long a replacement for an index must still wait after that index's latest failed pod
  // (kube's getRemainingTimePerIndex): the backoff doubles with the index's failures, counted
  // and ignored, from when that pod finished.
  std::chrono::milliseconds indexBackoffLeft(const json& lastFailed) {
    const int64_t failures = annotationCount(lastFailed, kIndexFailureCount) +
                             annotationCount(lastFailed, kIndexIgnoredFailureCount) + 1;
    auto delay = options_.podFailureBackoff;
    for (int64_t i = 1; i < failures && delay < kMaxBackoff; ++i) delay *= 2;
    delay = std::min<std::chrono::milliseconds>(delay, kMaxBackoff);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(finishedTime(lastFailed) + delay - context_->now());
    return std::max(left, std::chrono::milliseconds(0));
  }

  void noteTerminations(const std::string& key, int succeeded, int failed) {
    if (succeeded == 0 && failed == 0) return;
    std::lock_guard lock(mu_);
    Backoff& b = backoff_[key];
    if (succeeded > 0) b.failuresAfterSuccess = 0;
    if (failed > 0) {
      b.failuresAfterSuccess += failed;
      b.lastFailure = std::chrono::steady_clock::now();
    }
  }

  // ---- the sync

  api::Result<json> writeStatus(const json& job, const json& status) {
    json updated = job;
    updated["status"] = status;
    auto r = client_->update(kJobs, strField(job, "metadata", "namespace"), updated, "status");
    // The cache had not caught up with our previous write: sync again from the newer copy.
    if (!r.ok() && isConflict(r.status())) return requeue("job status changed meanwhile");
    return r;
  }

  Status syncJob(const std::string& key) {
    auto cached = jobs_->get(key);
    if (!cached) return {};
    json job = *cached;
    if (jobFinished(job)) {
      std::lock_guard lock(mu_);
      backoff_.erase(key);
      return {};
    }
    const std::string ns = strField(job, "metadata", "namespace");
    const std::string jobName = strField(job, "metadata", "name");
    const std::string uid = strField(job, "metadata", "uid");
    // A copy: `job` is replaced by the status writes below, and a reference into it would dangle.
    const json spec = field(job, "spec");
    const bool indexed = str(field(spec, "completionMode")) == "Indexed";
    const std::optional<int64_t> completions = optInt(field(spec, "completions"));
    const int64_t parallelism = optInt(field(spec, "parallelism")).value_or(1);
    const int64_t backoffLimit = optInt(field(spec, "backoffLimit")).value_or(6);
    const bool suspended = field(spec, "suspend") == true;
    const bool deleting = isBeingDeleted(job);
    const json& failurePolicy = field(spec, "podFailurePolicy");
    const bool hasFailurePolicy = failurePolicy.is_object();
    // kube's onlyReplaceFailedPods: a pod counts as failed (and is replaced) only once its
    // phase is Failed, not while it terminates (podReplacementPolicy Failed, the default and
    // the only choice with a podFailurePolicy).
    const bool onlyReplaceFailed = hasFailurePolicy || str(field(spec, "podReplacementPolicy")) == "Failed";
    // kube's isPodFailed: Failed, or (unless only failed pods are replaced) deleted before it
    // succeeded, as an orphan that never reaches a phase would be.
    auto podFailed = [&](const json& pod) {
      const std::string ph = phase(pod);
      return ph == "Failed" || (!onlyReplaceFailed && isBeingDeleted(pod) && ph != "Succeeded");
    };
    // backoffLimitPerIndex (Indexed only): each index has its own retries; an index that uses
    // them up fails alone, in status.failedIndexes.
    const std::optional<int64_t> backoffLimitPerIndex = indexed ? optInt(field(spec, "backoffLimitPerIndex")) : std::nullopt;
    const bool creationsSatisfied = creations_.satisfied(key);
    const Clock::time_point now = context_->now();
    const std::string nowText = api::formatTime(now);

    json status = field(job, "status").is_object() ? field(job, "status") : json::object();
    const json oldStatus = status;

    std::vector<client::ObjectPtr> pods;
    for (const auto& p : pods_->byIndex("namespace", ns))
      if (ownerUid(*p) == uid) pods.push_back(p);

    // ---- count terminated pods through the finalizer (trackJobStatusAndRemoveFinalizers)
    json& uncounted = status["uncountedTerminatedPods"];
    if (!uncounted.is_object()) uncounted = json::object();
    std::set<std::string> uncSucceeded, uncFailed;
    for (const auto& u : field(uncounted, "succeeded")) uncSucceeded.insert(str(u));
    for (const auto& u : field(uncounted, "failed")) uncFailed.insert(str(u));
    std::set<int> completedIndexes = job::parseIndexes(str(field(status, "completedIndexes")));
    std::set<int> failedIndexes = job::parseIndexes(str(field(status, "failedIndexes")));
    // Indexes with a pod still running: their failed pods' counts live on in that pod.
    std::set<int> activeIndexes;
    for (const auto& p : pods)
      if (isPodActive(*p))
        if (auto idx = podIndex(*p)) activeIndexes.insert(*idx);
    const bool finishing = conditionTrue(job, "FailureTarget");
    const bool successMet = conditionTrue(job, "SuccessCriteriaMet");

    std::vector<client::ObjectPtr> toUnfinalize;
    int newSucceeded = 0, newFailed = 0;
    {
      std::lock_guard lock(mu_);
      for (const auto& p : pods) {
        const json& pod = *p;
        if (!hasTrackingFinalizer(pod)) continue;
        std::string podUid = strField(pod, "metadata", "uid");
        if (finalizersRemoved_.count(podUid)) continue;  // counted; the cache has not caught up
        std::string ph = phase(pod);
        bool terminal = ph == "Succeeded" || ph == "Failed";
        bool consideredFailed = podFailed(pod);
        if (!(terminal || consideredFailed || deleting)) continue;
        auto idx = podIndex(pod);
        // What podFailurePolicy makes of the pod, matched once.
        const job::FailureVerdict verdict =
            hasFailurePolicy && ph != "Succeeded" ? job::matchPodFailurePolicy(failurePolicy, pod) : job::FailureVerdict{};
        // kube's isIndexFailed: a failed pod whose FailIndex rule matched, or a counted failure
        // that used up the index's retries.
        const bool failsItsIndex =
            backoffLimitPerIndex && consideredFailed &&
            (verdict.action == "FailIndex" || (verdict.counts && annotationCount(pod, kIndexFailureCount) >= *backoffLimitPerIndex));
        // backoffLimitPerIndex: a failed pod whose index waits for its replacement keeps its
        // finalizer (and so its object) until the replacement, which copies its failure count
        // from it, exists (kube's getPodsWithDelayedDeletionPerIndex).
        const bool awaitsReplacement = backoffLimitPerIndex && consideredFailed && !deleting && idx &&
                                       !completedIndexes.count(*idx) && !failedIndexes.count(*idx) &&
                                       !activeIndexes.count(*idx) && !failsItsIndex && !finishing && !successMet;
        if (!awaitsReplacement) toUnfinalize.push_back(p);
        // Once the Job is finishing, indexes stop failing: its remaining pods are being stopped
        // (kube computes failed indexes only while no terminal condition is pending).
        if (failsItsIndex && !finishing && !successMet && idx && completions && *idx < *completions &&
            !completedIndexes.count(*idx))
          failedIndexes.insert(*idx);
        if (uncSucceeded.count(podUid) || uncFailed.count(podUid)) continue;
        if (ph == "Succeeded") {
          if (indexed && (!idx || (completions && *idx >= *completions) || completedIndexes.count(*idx)))
            continue;  // a duplicate or out-of-range index does not count
          if (indexed) completedIndexes.insert(*idx);
          uncSucceeded.insert(podUid);
          newSucceeded++;
        } else if (consideredFailed || successMet || finishing) {
          // A failure an Ignore rule matches does not count toward the backoff limit.
          if (!verdict.counts) continue;
          uncFailed.insert(podUid);
          newFailed++;
        }
      }
    }
    auto setUncounted = [&] {
      uncounted = json::object();
      if (!uncSucceeded.empty()) uncounted["succeeded"] = json(std::vector<std::string>(uncSucceeded.begin(), uncSucceeded.end()));
      if (!uncFailed.empty()) uncounted["failed"] = json(std::vector<std::string>(uncFailed.begin(), uncFailed.end()));
      if (indexed) {
        std::string text = job::formatIndexes(completedIndexes);
        if (text.empty()) status.erase("completedIndexes");
        else status["completedIndexes"] = text;
      }
      // Present (if empty) whenever backoffLimitPerIndex is set, as kube writes it.
      if (backoffLimitPerIndex) status["failedIndexes"] = job::formatIndexes(failedIndexes);
    };
    if (newSucceeded + newFailed > 0) {
      // First record the uids, so that a crash between the steps cannot lose or double count.
      setUncounted();
      auto w = writeStatus(job, status);
      if (!w.ok()) return w.status().code() == 404 ? Status() : w.status();  // the Job is gone
      job = *w;
      noteTerminations(key, newSucceeded, newFailed);
    }
    for (const auto& p : toUnfinalize) {
      Status s = removeFinalizer(*p);
      if (!s.isOk()) return s;
    }
    // Every recorded uid whose pod no longer holds the finalizer moves into the counters.
    {
      std::map<std::string, const json*> byUid;
      for (const auto& p : pods) byUid[strField(*p, "metadata", "uid")] = p.get();
      std::lock_guard lock(mu_);
      auto released = [&](const std::string& u) {
        auto it = byUid.find(u);
        return it == byUid.end() || !hasTrackingFinalizer(*it->second) || finalizersRemoved_.count(u);
      };
      int64_t succeeded = optInt(field(status, "succeeded")).value_or(0);
      int64_t failed = optInt(field(status, "failed")).value_or(0);
      for (auto it = uncSucceeded.begin(); it != uncSucceeded.end();)
        if (released(*it)) { succeeded++; it = uncSucceeded.erase(it); } else ++it;
      for (auto it = uncFailed.begin(); it != uncFailed.end();)
        if (released(*it)) { failed++; it = uncFailed.erase(it); } else ++it;
      if (indexed) succeeded = static_cast<int64_t>(completedIndexes.size());
      status["succeeded"] = succeeded;
      status["failed"] = failed;
    }
    setUncounted();
    // Indexed: completedIndexes already holds the uncounted successes.
    const int64_t succeeded = indexed ? static_cast<int64_t>(completedIndexes.size())
                                      : status["succeeded"].get<int64_t>() + static_cast<int64_t>(uncSucceeded.size());
    const int64_t failed = status["failed"].get<int64_t>() + static_cast<int64_t>(uncFailed.size());

    // ---- pods still running
    std::vector<client::ObjectPtr> active, terminatingPods;
    int64_t ready = 0, terminating = 0;
    for (const auto& p : pods) {
      if (isPodActive(*p)) {
        active.push_back(p);
        if (isPodReady(*p)) ready++;
      } else if (isBeingDeleted(*p) && phase(*p) != "Succeeded" && phase(*p) != "Failed") {
        terminating++;
        terminatingPods.push_back(p);
      }
    }

    // ---- start time, suspension
    if (!suspended && !status.contains("startTime")) status["startTime"] = nowText;
    if (suspended) {
      if (setCondition(status, "Suspended", "True", "JobSuspended", "Job suspended", nowText))
        record(job, "Normal", "Suspended", "Job suspended");
    } else if (conditionTrue(job, "Suspended")) {
      setCondition(status, "Suspended", "False", "JobResumed", "Job resumed", nowText);
      status["startTime"] = nowText;  // the deadline counts from the resume
      record(job, "Normal", "Resumed", "Job resumed");
    }

    // ---- failure and success criteria (1.32: the *Target / *Met condition comes first)
    bool failureTarget = statusConditionTrue(status, "FailureTarget");
    bool successCriteria = statusConditionTrue(status, "SuccessCriteriaMet");
    std::string failReason, failMessage;
    if (const json* c = findCondition(job, "FailureTarget"); c && failureTarget) {
      failReason = c->value("reason", "");
      failMessage = c->value("message", "");
    }
    if (!failureTarget && !successCriteria && !deleting) {
      std::optional<int64_t> deadline = optInt(field(spec, "activeDeadlineSeconds"));
      Clock::time_point start = timeField(field(status, "startTime"));
      std::optional<std::string> failJob;  // kube's getFailJobMessage: a failed pod a FailJob rule matches
      if (hasFailurePolicy)
        for (const auto& p : pods) {
          if (!podFailed(*p)) continue;
          failJob = job::matchPodFailurePolicy(failurePolicy, *p).failJobMessage;
          if (failJob) break;
        }
      const int64_t failedIndexCount = static_cast<int64_t>(failedIndexes.size());
      const std::optional<int64_t> maxFailedIndexes = optInt(field(spec, "maxFailedIndexes"));
      if (failJob) {
        failReason = "PodFailurePolicy";
        failMessage = *failJob;
      } else if (backoffLimitPerIndex && maxFailedIndexes && failedIndexCount > *maxFailedIndexes) {
        failReason = "MaxFailedIndexesExceeded";
        failMessage = "Job has exceeded the specified maximum number of failed indexes";
      } else if (backoffLimitPerIndex && failedIndexCount > 0 && completions &&
                 failedIndexCount + static_cast<int64_t>(completedIndexes.size()) >= *completions) {
        failReason = "FailedIndexes";
        failMessage = "Job has failed indexes";
      } else if (failed > backoffLimit) {
        failReason = "BackoffLimitExceeded";
        failMessage = "Job has reached the specified backoff limit";
      } else if (!suspended && deadline && start != Clock::time_point{} &&
                 now - start >= std::chrono::seconds(*deadline)) {
        failReason = "DeadlineExceeded";
        failMessage = "Job was active longer than specified deadline";
      }
      if (!failReason.empty()) {
        failureTarget = true;
        setCondition(status, "FailureTarget", "True", failReason, failMessage, nowText);
      } else if (auto rule = indexed && completions ? job::matchSuccessPolicy(field(spec, "successPolicy"), *completions,
                                                                              completedIndexes)
                                                     : std::nullopt) {
        successCriteria = true;
        setCondition(status, "SuccessCriteriaMet", "True", "SuccessPolicy", "Matched rules at index " + std::to_string(*rule),
                     nowText);
      } else {
        bool done = completions ? succeeded >= *completions : (succeeded > 0 && active.empty());
        if (done) {
          successCriteria = true;
          setCondition(status, "SuccessCriteriaMet", "True", "CompletionsReached",
                       "Reached expected number of succeeded pods", nowText);
        }
      }
    }

    // ---- manage pods
    Status manageErr;
    if (failureTarget || successCriteria || suspended || deleting) {
      // Everything left running goes (a completed Job's surplus, a failed or suspended Job's pods).
      for (const auto& p : active) {
        auto r = client_->remove(kPods, ns, strField(*p, "metadata", "name"));
        if (!r.ok() && r.status().code() != 404) {
          record(job, "Warning", "FailedDelete", "Error deleting: " + r.status().message());
          manageErr = r.status();
          continue;
        }
        record(job, "Normal", "SuccessfulDelete", "Deleted pod: " + strField(*p, "metadata", "name"));
        terminating++;
      }
      active.clear();
      ready = 0;
    } else if (creationsSatisfied) {
      manageErr = managePods(job, key, active, onlyReplaceFailed ? terminatingPods : std::vector<client::ObjectPtr>{},
                             completedIndexes, failedIndexes, pods, succeeded, completions, parallelism, indexed);
    }

    // ---- terminal conditions once nothing is left running (or being counted)
    bool settled = active.empty() && terminating == 0 && uncSucceeded.empty() && uncFailed.empty();
    if (settled && failureTarget) {
      setCondition(status, "Failed", "True", failReason, failMessage, nowText);
      record(job, "Warning", failReason.c_str(), failMessage);
    } else if (settled && successCriteria) {
      // Complete repeats why success was declared (CompletionsReached or SuccessPolicy).
      std::string reason = "CompletionsReached", message = "Reached expected number of succeeded pods";
      for (const auto& c : status["conditions"]) {
        if (c.value("type", "") != "SuccessCriteriaMet") continue;
        reason = c.value("reason", reason);
        message = c.value("message", message);
      }
      setCondition(status, "Complete", "True", reason, message, nowText);
      status["completionTime"] = nowText;
      record(job, "Normal", "Completed", "Job completed");
    }

    // ---- status as kube serializes it
    auto setOrErase = [&](const char* f, int64_t v) {
      if (v == 0) status.erase(f);
      else status[f] = v;
    };
    setOrErase("active", static_cast<int64_t>(active.size()));
    setOrErase("succeeded", status["succeeded"].get<int64_t>());
    setOrErase("failed", status["failed"].get<int64_t>());
    status["ready"] = ready;
    status["terminating"] = terminating;
    if (status.contains("conditions") && status["conditions"].empty()) status.erase("conditions");
    if (status != oldStatus || newSucceeded + newFailed > 0) {
      auto w = writeStatus(job, status);
      if (!w.ok()) return w.status().code() == 404 ? Status() : w.status();  // the Job is gone
      job = *w;
    }

    // Come back when the deadline or the backoff passes.
    if (!jobFinished(job) && !failureTarget && !successCriteria && !suspended) {
      if (auto d = optInt(field(spec, "activeDeadlineSeconds"))) {
        auto left = timeField(field(job, "status", "startTime")) + std::chrono::seconds(*d) - now;
        queue().addAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(left) + std::chrono::milliseconds(50));
      }
    }
    return manageErr;
  }

  // `terminating`: pods still terminating that hold their place (podReplacementPolicy Failed):
  // no replacement starts, nor one for their index, until they have failed.
  // `failedIndexes` (backoffLimitPerIndex): indexes that get no more pods, and lose those they
  // have. `all`: every pod of the Job, where a replacement finds its index's last failure.
  Status managePods(const json& job, const std::string& key, const std::vector<client::ObjectPtr>& active,
                    const std::vector<client::ObjectPtr>& terminating, const std::set<int>& completedIndexes,
                    const std::set<int>& failedIndexes, const std::vector<client::ObjectPtr>& all, int64_t succeeded,
                    std::optional<int64_t> completions, int64_t parallelism, bool indexed) {
    const std::string ns = strField(job, "metadata", "namespace");
    std::vector<client::ObjectPtr> surplus;
    std::vector<std::optional<int>> toCreate;
    if (indexed) {
      // One active pod per index; pods of completed or out-of-range indexes and duplicates go.
      std::map<int, client::ObjectPtr> held;
      for (const auto& p : active) {
        auto idx = podIndex(*p);
        if (!idx || (completions && *idx >= *completions) || completedIndexes.count(*idx) || failedIndexes.count(*idx) ||
            held.count(*idx))
          surplus.push_back(p);
        else
          held[*idx] = p;
      }
      std::set<int> terminatingIndexes;
      for (const auto& p : terminating)
        if (auto idx = podIndex(*p)) terminatingIndexes.insert(*idx);
      int64_t wantActive = std::min<int64_t>(
          parallelism, completions.value_or(0) - static_cast<int64_t>(completedIndexes.size() + failedIndexes.size()));
      int64_t room = wantActive - static_cast<int64_t>(held.size()) - static_cast<int64_t>(terminating.size());
      for (int i = 0; room > 0 && completions && i < *completions; ++i) {
        if (completedIndexes.count(i) || failedIndexes.count(i) || held.count(i) || terminatingIndexes.count(i)) continue;
        toCreate.push_back(i);
        room--;
      }
      if (room < 0) {
        // Too many running for the parallelism: the highest indexes go first.
        for (auto it = held.rbegin(); it != held.rend() && room < 0; ++it, ++room) surplus.push_back(it->second);
      }
    } else {
      int64_t wantActive = parallelism;
      if (completions) {
        wantActive = std::min(parallelism, std::max<int64_t>(0, *completions - succeeded));
      } else if (succeeded > 0) {
        // A work queue (no completions): once one pod succeeded, let the running ones finish
        // and start no more, as kube's manageJob does.
        wantActive = static_cast<int64_t>(active.size());
      }
      int64_t diff = wantActive - static_cast<int64_t>(active.size());
      for (int64_t i = 0; i < diff - static_cast<int64_t>(terminating.size()); ++i) toCreate.push_back(std::nullopt);
      if (diff < 0) {
        // Not-ready and newer pods first (a simplified ActivePods order).
        std::vector<client::ObjectPtr> order = active;
        std::stable_sort(order.begin(), order.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
          bool ra = isPodReady(*a), rb = isPodReady(*b);
          if (ra != rb) return !ra;
          return timeField(field(*a, "metadata", "creationTimestamp")) > timeField(field(*b, "metadata", "creationTimestamp"));
        });
        for (int64_t i = 0; i < -diff; ++i) surplus.push_back(order[i]);
      }
    }
    Status firstErr;
    for (const auto& p : surplus) {
      auto r = client_->remove(kPods, ns, strField(*p, "metadata", "name"));
      if (r.ok()) record(job, "Normal", "SuccessfulDelete", "Deleted pod: " + strField(*p, "metadata", "name"));
      else if (r.status().code() != 404 && firstErr.isOk()) firstErr = r.status();
    }
    if (toCreate.empty()) return firstErr;
    // The pod each new one replaces (backoffLimitPerIndex: its index's latest failure, the
    // one with the highest counts), and so how long it must wait.
    std::vector<const json*> replacing(toCreate.size(), nullptr);
    if (field(job, "spec", "backoffLimitPerIndex").is_number_integer()) {
      // Each index waits out its own failures (kube's getRemainingTimePerIndex); one index's
      // failures do not hold the others back.
      std::chrono::milliseconds soonest = std::chrono::milliseconds::max();
      std::vector<std::optional<int>> ready;
      std::vector<const json*> readyReplacing;
      for (size_t k = 0; k < toCreate.size(); ++k) {
        const json* last = nullptr;
        int64_t most = -1;
        for (const auto& p : all) {
          if (podIndex(*p) != toCreate[k] || phase(*p) != "Failed") continue;
          int64_t n = annotationCount(*p, kIndexFailureCount) + annotationCount(*p, kIndexIgnoredFailureCount);
          if (n > most) {
            most = n;
            last = p.get();
          }
        }
        auto wait = last ? indexBackoffLeft(*last) : std::chrono::milliseconds(0);
        if (wait.count() > 0) {
          soonest = std::min(soonest, wait);
          continue;
        }
        ready.push_back(toCreate[k]);
        readyReplacing.push_back(last);
      }
      if (soonest != std::chrono::milliseconds::max()) queue().addAfter(key, soonest);
      toCreate = std::move(ready);
      replacing = std::move(readyReplacing);
      if (toCreate.empty()) return firstErr;
    } else if (auto wait = remainingBackoff(key); wait.count() > 0) {
      queue().addAfter(key, wait);
      return firstErr;
    }
    if (toCreate.size() > static_cast<size_t>(kBurst)) {
      toCreate.resize(kBurst);
      replacing.resize(kBurst);
    }
    creations_.expectCreations(key, static_cast<int>(toCreate.size()));
    // slowStartBatch: 1, 2, 4, ... creations, stopping at the first failing batch.
    size_t next = 0;
    for (size_t batch = 1; next < toCreate.size(); batch *= 2) {
      size_t end = std::min(toCreate.size(), next + batch);
      bool failedBatch = false;
      for (; next < end; ++next) {
        const json* replaced = replacing[next];
        auto created = client_->create(kPods, ns, newPod(job, toCreate[next], replaced));
        if (created.ok()) {
          record(job, "Normal", "SuccessfulCreate", "Created pod: " + strField(*created, "metadata", "name"));
          continue;
        }
        creations_.creationObserved(key);
        bool terminatingNs = false;
        for (const auto& c : created.status().causes) terminatingNs = terminatingNs || c.type == "NamespaceTerminating";
        if (terminatingNs) continue;
        record(job, "Warning", "FailedCreate", "Error creating: " + created.status().message());
        if (firstErr.isOk()) firstErr = created.status();
        failedBatch = true;
      }
      if (failedBatch) {
        for (; next < toCreate.size(); ++next) creations_.creationObserved(key);
        break;
      }
    }
    return firstErr;
  }

  JobControllerOptions options_;
  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* jobs_ = nullptr;
  client::Informer* pods_ = nullptr;
  Expectations creations_;
  std::mutex mu_;
  std::set<std::string> finalizersRemoved_;  // pod uids (kube's finalizerExpectations)
  std::map<std::string, Backoff> backoff_;
};

// ---- ttl-after-finished ------------------------------------------------------------------

class TtlAfterFinishedController : public Controller {
 public:
  std::string name() const override { return "ttl-after-finished"; }
  int workers() const override { return 2; }
  std::string component() const override { return "ttl-after-finished-controller"; }
  // The injected clock can jump: look at every finished Job now and then.
  std::chrono::milliseconds tickInterval() const override { return std::chrono::seconds(1); }

  Status setup(ControllerContext& context) override {
    context_ = &context;
    jobs_ = &context.informers->informer(kJobs);
    auto enqueue = [this](const json& j) {
      if (field(j, "spec", "ttlSecondsAfterFinished").is_number_integer() && jobFinished(j))
        queue().add(client::objectKey(j));
    };
    jobs_->addHandler({
        [enqueue](const client::ObjectPtr& j) { enqueue(*j); },
        [enqueue](const client::ObjectPtr&, const client::ObjectPtr& j) { enqueue(*j); },
        nullptr,
    });
    return {};
  }

  void tick() override {
    for (const auto& j : jobs_->list())
      if (field(*j, "spec", "ttlSecondsAfterFinished").is_number_integer() && jobFinished(*j) && !isBeingDeleted(*j))
        queue().add(client::objectKey(*j));
  }

  Status sync(const std::string& key) override {
    auto cached = jobs_->get(key);
    if (!cached || isBeingDeleted(*cached) || !jobFinished(*cached)) return {};
    auto [ns, name] = client::splitKey(key);
    // Decide on the live object: the TTL may just have been changed.
    auto fresh = context_->client->get(kJobs, ns, name);
    if (!fresh.ok()) return fresh.status().code() == 404 ? Status() : fresh.status();
    auto ttl = optInt(field(*fresh, "spec", "ttlSecondsAfterFinished"));
    if (!ttl || isBeingDeleted(*fresh) || !jobFinished(*fresh)) return {};
    Clock::time_point finished = timeField(field(*fresh, "status", "completionTime"));
    if (finished == Clock::time_point{})
      for (const char* type : {"Complete", "Failed"})
        if (const json* c = findCondition(*fresh, type); c && c->value("status", "") == "True")
          finished = timeField(field(*c, "lastTransitionTime"));
    if (finished == Clock::time_point{}) return {};
    auto expire = finished + std::chrono::seconds(*ttl);
    auto now = context_->now();
    if (now < expire) {
      queue().addAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(expire - now) +
                                std::chrono::milliseconds(50));
      return {};
    }
    client::DeleteOptions opts;
    opts.propagationPolicy = "Foreground";
    opts.preconditionUid = strField(*fresh, "metadata", "uid");
    auto r = context_->client->remove(kJobs, ns, name, opts);
    if (!r.ok() && r.status().code() != 404 && r.status().code() != 409) return r.status();
    logger()->info("ttl-after-finished: deleted job {} ({}s after it finished)", key, *ttl);
    return {};
  }

 private:
  ControllerContext* context_ = nullptr;
  client::Informer* jobs_ = nullptr;
};

}  // namespace

namespace job {

std::set<int> parseIndexes(const std::string& text) {
  std::set<int> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t comma = text.find(',', i);
    std::string part = text.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    i = comma == std::string::npos ? text.size() : comma + 1;
    try {
      size_t dash = part.find('-');
      int a = std::stoi(part.substr(0, dash));
      int b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
      for (int k = a; k <= b && b - a < 1000000; ++k) out.insert(k);
    } catch (...) {
    }
  }
  return out;
}

std::string formatIndexes(const std::set<int>& indexes) {
  std::string out;
  for (auto it = indexes.begin(); it != indexes.end();) {
    int first = *it, last = *it;
    for (++it; it != indexes.end() && *it == last + 1; ++it) last = *it;
    if (!out.empty()) out += ",";
    out += std::to_string(first);
    if (last > first) out += "-" + std::to_string(last);
  }
  return out;
}

}  // namespace job

std::unique_ptr<Controller> newJobController(JobControllerOptions options) {
  return std::make_unique<JobController>(options);
}

std::unique_ptr<Controller> newTtlAfterFinishedController() { return std::make_unique<TtlAfterFinishedController>(); }

}  // namespace orrery::controllers
