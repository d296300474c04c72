// The ReplicaSet controller, as pkg/controller/replicaset in kube-controller-manager 1.32.

#include "engine/controllers/replicaset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/client/parallel.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets"};

// kube's burstReplicas: at most this many creations or deletions per sync.
constexpr int kBurstReplicas = 500;
// How many API calls of one batch run at once (kube runs a goroutine each).
constexpr int kParallelCalls = 16;

int32_t specReplicas(const json& rs) {
  return static_cast<int32_t>(intField(rs, "spec", "replicas", 1));
}

std::string podKey(const json& pod) {
  return client::objectKey(strField(pod, "metadata", "namespace"), strField(pod, "metadata", "name"));
}

// ---- deletion order (ActivePodsWithRanks) ---------------------------------------------------

int phaseOrdinal(const json& pod) {
  std::string phase = strField(pod, "status", "phase");
  if (phase == "Pending") return 0;
  if (phase == "Unknown") return 1;
  if (phase == "Running") return 2;
  return 0;  // kube's map lookup of any other phase yields 0
}

int32_t deletionCost(const json& pod) {
  const json& v = field(field(pod, "metadata", "annotations"), "controller.kubernetes.io/pod-deletion-cost");
  if (!v.is_string()) return 0;
  try {
    size_t used = 0;
    long long n = std::stoll(v.get<std::string>(), &used);
    if (used != v.get_ref<const std::string&>().size() || n < INT32_MIN || n > INT32_MAX) return 0;
    return static_cast<int32_t>(n);
  } catch (...) {
    return 0;
  }
}

Clock::time_point readyTime(const json& pod) {
  if (!isPodReady(pod)) return {};
  return timeField(field(*podCondition(pod, "Ready"), "lastTransitionTime"));
}

int maxRestarts(const json& pod) {
  int m = 0;
  const json& statuses = field(pod, "status", "containerStatuses");
  if (statuses.is_array())
    for (const auto& c : statuses)
      if (c.is_object()) m = std::max(m, c.value("restartCount", 0));
  return m;
}

// afterOrZero: zero times first, then later before earlier.
bool afterOrZero(Clock::time_point a, Clock::time_point b) {
  if (a == Clock::time_point{} || b == Clock::time_point{}) return a == Clock::time_point{};
  return a > b;
}

int64_t logRank(Clock::time_point t, Clock::time_point now) {
  auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t).count();
  return d > 0 ? static_cast<int64_t>(std::log2(static_cast<double>(d))) : -1;
}

struct RankedPod {
  const json* pod;
  int rank = 0;
};

bool preferForDeletion(const RankedPod& a, const RankedPod& b, Clock::time_point now) {
  const json& pi = *a.pod;
  const json& pj = *b.pod;
  std::string ni = strField(pi, "spec", "nodeName"), nj = strField(pj, "spec", "nodeName");
  if (ni != nj && (ni.empty() || nj.empty())) return ni.empty();
  if (phaseOrdinal(pi) != phaseOrdinal(pj)) return phaseOrdinal(pi) < phaseOrdinal(pj);
  bool ri = isPodReady(pi), rj = isPodReady(pj);
  if (ri != rj) return !ri;
  if (deletionCost(pi) != deletionCost(pj)) return deletionCost(pi) < deletionCost(pj);
  if (a.rank != b.rank) return a.rank > b.rank;
  auto byLogTime = [&](Clock::time_point ti, Clock::time_point tj) {
    if (ti == Clock::time_point{} || tj == Clock::time_point{}) return afterOrZero(ti, tj);
    int64_t diff = logRank(ti, now) - logRank(tj, now);
    if (diff == 0) return strField(pi, "metadata", "uid") < strField(pj, "metadata", "uid");
    return diff < 0;
  };
  if (ri && rj) {
    Clock::time_point ti = readyTime(pi), tj = readyTime(pj);
    if (ti != tj) return byLogTime(ti, tj);
  }
  if (maxRestarts(pi) != maxRestarts(pj)) return maxRestarts(pi) > maxRestarts(pj);
  Clock::time_point ci = timeField(field(pi, "metadata", "creationTimestamp"));
  Clock::time_point cj = timeField(field(pj, "metadata", "creationTimestamp"));
  if (ci != cj) return byLogTime(ci, cj);
  return false;
}

// The `diff` pods to delete first, in kube's order.
std::vector<const json*> rankForDeletion(const std::vector<const json*>& pods, const std::vector<const json*>& related,
                                         int diff, Clock::time_point now) {
  if (diff <= 0) return {};
  if (diff >= static_cast<int>(pods.size())) return pods;
  std::map<std::string, int> onNode;
  for (const json* p : related)
    if (isPodActive(*p)) onNode[strField(*p, "spec", "nodeName")]++;
  std::vector<RankedPod> ranked;
  ranked.reserve(pods.size());
  for (const json* p : pods) ranked.push_back({p, onNode[strField(*p, "spec", "nodeName")]});
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](const RankedPod& a, const RankedPod& b) { return preferForDeletion(a, b, now); });
  std::vector<const json*> out;
  for (int i = 0; i < diff; ++i) out.push_back(ranked[i].pod);
  return out;
}

// ---- what a sync reads of each pod ---------------------------------------------------------

// A sync reads every pod its ReplicaSet owns (kube's does too, over typed objects): its owner,
// phase, labels and Ready condition. Read from JSON objects that cost about 3 us a pod, which
// made a 10,000-replica ReplicaSet's syncs (one per pod event while it scales) 30 ms each and
// the control plane's largest consumer. Informer objects are immutable and replaced on change,
// so the facts of a pod version are worked out once and found again by its address.
struct PodFacts {
  /// The version described. While it lives no other object has its address; once it is gone
  /// the address may hold another pod, and the facts are worked out again.
  std::weak_ptr<const json> version;
  uint64_t lastSync = 0;  // the sync that last read them
  bool hasController = false;
  bool controlledHere = false;  // that controller is this ReplicaSet (its uid)
  bool active = false;          // isPodActive
  bool deleting = false;        // deletionTimestamp set
  bool selected = false;        // the ReplicaSet's selector matches the pod's labels
  bool fullyLabeled = false;    // the pod carries every label of the ReplicaSet's pod template
  bool ready = false;           // condition Ready is True
  std::optional<Clock::time_point> readySince;  // that condition's lastTransitionTime, if readable

  /// isPodAvailable, from the facts.
  bool available(int64_t minReadySeconds, Clock::time_point now) const {
    return ready && readyLongEnough(readySince, minReadySeconds, now);
  }
};

/// The facts of the pods one ReplicaSet reads. `selected` and `fullyLabeled` depend on its spec,
/// so a ReplicaSet with a new uid or generation starts over. Only the worker syncing that
/// ReplicaSet uses it (a work queue never hands one key to two workers at once).
class PodFactsMemo {
 public:
  void startSync(const json& rs) {
    const std::string uid = strField(rs, "metadata", "uid");
    const int64_t generation = intField(rs, "metadata", "generation");
    if (uid != uid_ || generation != generation_) {
      facts_.clear();
      uid_ = uid;
      generation_ = generation;
    }
    ++sync_;
  }

  /// The facts of `pod` (references stay valid until finishSync).
  const PodFacts& of(const client::ObjectPtr& pod, const api::LabelSelector& selector, const json& templateLabels) {
    auto [it, added] = facts_.try_emplace(pod.get());
    PodFacts& facts = it->second;
    if (added || facts.version.expired()) facts = workOut(pod, selector, templateLabels, uid_);
    facts.lastSync = sync_;
    return facts;
  }

  /// Forgets the pods this sync did not read: gone, released, or replaced by a newer version.
  void finishSync() {
    std::erase_if(facts_, [&](const auto& entry) { return entry.second.lastSync != sync_; });
  }

 private:
  static PodFacts workOut(const client::ObjectPtr& podPtr, const api::LabelSelector& selector,
                          const json& templateLabels, const std::string& rsUid) {
    const json& pod = *podPtr;
    PodFacts facts;
    facts.version = podPtr;
    if (const json* ref = controllerRefOf(pod)) {
      facts.hasController = true;
      const json& uid = field(*ref, "uid");
      facts.controlledHere = uid.is_string() && uid.get_ref<const std::string&>() == rsUid;
    }
    facts.active = isPodActive(pod);
    facts.deleting = isBeingDeleted(pod);
    const json& labels = field(pod, "metadata", "labels");
    facts.selected = selector.matches(labels);
    facts.fullyLabeled = true;
    if (templateLabels.is_object()) {
      for (const auto& [k, v] : templateLabels.items()) {
        const json& have = field(labels, k.c_str());
        if (have.is_null() || have != v) facts.fullyLabeled = false;
      }
    }
    if (const json* ready = podCondition(pod, "Ready"); ready && field(*ready, "status") == "True") {
      facts.ready = true;
      Clock::time_point since;
      if (const json& text = field(*ready, "lastTransitionTime");
          text.is_string() && api::parseTime(text.get_ref<const std::string&>(), &since))
        facts.readySince = since;
    }
    return facts;
  }

  std::string uid_;
  int64_t generation_ = -1;
  uint64_t sync_ = 0;
  std::unordered_map<const json*, PodFacts> facts_;
};

/// A pod a sync considers, with its facts.
struct PodSeen {
  client::ObjectPtr pod;
  const PodFacts* facts;
};

// ---- the controller ------------------------------------------------------------------------

class ReplicaSetController : public Controller {
 public:
  std::string name() const override { return "replicaset"; }
  int workers() const override { return 5; }  // --concurrent-replicaset-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    rsInformer_ = &context.informers->informer(kReplicaSets);
    podInformer_ = &context.informers->informer(kPods);
    addPodControllerUidIndex(*podInformer_);
    rsInformer_->addHandler({
        [this](const client::ObjectPtr& rs) { enqueue(*rs); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& rs) { enqueue(*rs); },
        [this](const client::ObjectPtr& rs) {
          std::string key = client::objectKey(*rs);
          expectations_.remove(key);
          queue().add(key);
        },
    });
    podInformer_->addHandler({
        [this](const client::ObjectPtr& pod) { addPod(*pod); },
        [this](const client::ObjectPtr& o, const client::ObjectPtr& n) { updatePod(*o, *n); },
        [this](const client::ObjectPtr& pod) { deletePod(*pod); },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    return syncReplicaSet(key);
  }

 private:
  Clock::time_point now() const { return context_->now(); }

  void enqueue(const json& rs) { queue().add(client::objectKey(rs)); }

  // The ReplicaSet a controllerRef names, if it is still the same object (same uid).
  client::ObjectPtr resolveControllerRef(const std::string& ns, const json* ref) {
    if (!ref || ref->value("kind", "") != "ReplicaSet") return nullptr;
    std::string apiVersion = ref->value("apiVersion", "");
    if (apiVersion.rfind("apps/", 0) != 0) return nullptr;
    auto rs = rsInformer_->get(client::objectKey(ns, ref->value("name", "")));
    if (!rs || strField(*rs, "metadata", "uid") != ref->value("uid", "")) return nullptr;
    return rs;
  }

  // ReplicaSets in the pod's namespace whose selector matches it (GetPodReplicaSets).
  std::vector<client::ObjectPtr> podReplicaSets(const json& pod) {
    std::vector<client::ObjectPtr> out;
    const json& labels = field(pod, "metadata", "labels");
    if (!labels.is_object() || labels.empty()) return out;
    for (const auto& rs : rsInformer_->byIndex("namespace", strField(pod, "metadata", "namespace"))) {
      auto sel = api::LabelSelector::fromJson(field(*rs, "spec", "selector"));
      if (!sel.ok() || sel->empty() || sel->matchesNothing()) continue;
      if (sel->matches(labels)) out.push_back(rs);
    }
    return out;
  }

  void addPod(const json& pod) {
    if (isBeingDeleted(pod)) {
      // A pod already being deleted when it first shows up (e.g. after a restart).
      deletePod(pod);
      return;
    }
    std::string ns = strField(pod, "metadata", "namespace");
    if (const json* ref = controllerRefOf(pod)) {
      auto rs = resolveControllerRef(ns, ref);
      if (!rs) return;
      std::string key = client::objectKey(*rs);
      expectations_.creationObserved(key);
      queue().add(key);
      return;
    }
    // An orphan: every matching ReplicaSet gets a chance to adopt it.
    for (const auto& rs : podReplicaSets(pod)) enqueue(*rs);
  }

  void updatePod(const json& oldPod, const json& curPod) {
    if (strField(oldPod, "metadata", "resourceVersion") == strField(curPod, "metadata", "resourceVersion"))
      return;
    bool labelChanged = field(oldPod, "metadata", "labels") != field(curPod, "metadata", "labels");
    if (isBeingDeleted(curPod)) {
      // Graceful deletion: count the deletion now rather than when the kubelet finishes.
      deletePod(curPod);
      if (labelChanged) deletePod(oldPod);
      return;
    }
    std::string ns = strField(curPod, "metadata", "namespace");
    const json* curRef = controllerRefOf(curPod);
    const json* oldRef = controllerRefOf(oldPod);
    bool refChanged = (curRef == nullptr) != (oldRef == nullptr) || (curRef && *curRef != *oldRef);
    if (refChanged && oldRef)
      if (auto rs = resolveControllerRef(ns, oldRef)) enqueue(*rs);
    if (curRef) {
      auto rs = resolveControllerRef(ns, curRef);
      if (!rs) return;
      enqueue(*rs);
      // A pod that just became ready is available minReadySeconds later: look again then.
      int64_t minReady = intField(*rs, "spec", "minReadySeconds");
      if (!isPodReady(oldPod) && isPodReady(curPod) && minReady > 0)
        queue().addAfter(client::objectKey(*rs), std::chrono::seconds(minReady) + std::chrono::seconds(1));
      return;
    }
    if (labelChanged || refChanged)
      for (const auto& rs : podReplicaSets(curPod)) enqueue(*rs);
  }

  void deletePod(const json& pod) {
    const json* ref = controllerRefOf(pod);
    if (!ref) return;
    auto rs = resolveControllerRef(strField(pod, "metadata", "namespace"), ref);
    if (!rs) return;
    std::string key = client::objectKey(*rs);
    expectations_.deletionObserved(key, podKey(pod));
    queue().add(key);
  }

  json controllerRefFor(const json& rs) const {
    return {{"apiVersion", "apps/v1"},
            {"kind", "ReplicaSet"},
            {"name", strField(rs, "metadata", "name")},
            {"uid", strField(rs, "metadata", "uid")},
            {"controller", true},
            {"blockOwnerDeletion", true}};
  }

  // RecheckDeletionTimestamp: adoption needs the live object, not the cache.
  Status canAdopt(const json& rs) {
    auto fresh = client_->get(kReplicaSets, strField(rs, "metadata", "namespace"),
                              strField(rs, "metadata", "name"));
    if (!fresh.ok()) return fresh.status();
    if (strField(*fresh, "metadata", "uid") != strField(rs, "metadata", "uid"))
      return Status::internal("original ReplicaSet " + client::objectKey(rs) +
                              " is gone: got uid " + strField(*fresh, "metadata", "uid") +
                              ", wanted " + strField(rs, "metadata", "uid"));
    if (isBeingDeleted(*fresh))
      return Status::internal(client::objectKey(rs) + " has just been deleted at " +
                              strField(*fresh, "metadata", "deletionTimestamp"));
    return {};
  }

  // ClaimPods (ControllerRefManager): the pods this ReplicaSet owns after adopting matching
  // orphans and releasing owned pods that no longer match.
  api::Result<std::vector<PodSeen>> claimPods(const json& rs, const std::vector<PodSeen>& pods, PodFactsMemo& memo,
                                              const api::LabelSelector& selector, const json& templateLabels) {
    std::vector<PodSeen> claimed;
    std::string uid = strField(rs, "metadata", "uid");
    std::string ns = strField(rs, "metadata", "namespace");
    bool rsDeleting = isBeingDeleted(rs);
    std::optional<Status> adoptable;
    std::optional<Status> firstError;
    for (const PodSeen& seen : pods) {
      const PodFacts& facts = *seen.facts;
      if (facts.hasController && !facts.controlledHere) continue;  // someone else's
      if (facts.hasController) {
        if (facts.selected) {
          claimed.push_back(seen);
          continue;
        }
        if (rsDeleting) continue;
        const json& pod = *seen.pod;
        json patch = {{"metadata",
                       {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", uid}}})},
                        {"uid", strField(pod, "metadata", "uid")}}}};
        auto r = client_->patch(kPods, ns, strField(pod, "metadata", "name"), client::PatchType::kStrategicMerge, patch.dump());
        // Gone, or no longer ours: nothing to release.
        if (!r.ok() && r.status().code() != 404 && r.status().code() != 422 && !firstError)
          firstError = r.status();
        continue;
      }
      if (rsDeleting || !facts.selected || facts.deleting) continue;
      const json& pod = *seen.pod;
      if (strField(pod, "metadata", "namespace") != ns) continue;
      if (!adoptable) adoptable = canAdopt(rs);
      if (!adoptable->isOk()) {
        if (!firstError) firstError = *adoptable;
        continue;
      }
      json patch = {{"metadata", {{"ownerReferences", json::array({controllerRefFor(rs)})},
                                  {"uid", strField(pod, "metadata", "uid")}}}};
      auto r = client_->patch(kPods, ns, strField(pod, "metadata", "name"), client::PatchType::kStrategicMerge, patch.dump());
      if (r.ok()) {
        auto adopted = std::make_shared<const json>(std::move(*r));
        claimed.push_back({adopted, &memo.of(adopted, selector, templateLabels)});
      } else if (r.status().code() != 404 && !firstError) {
        firstError = r.status();
      }
    }
    if (firstError) return *firstError;
    return claimed;
  }

  json podFromTemplate(const json& rs) const {
    const json& tmpl = field(rs, "spec", "template");
    json meta = json::object();
    meta["generateName"] = strField(rs, "metadata", "name") + "-";
    meta["namespace"] = strField(rs, "metadata", "namespace");
    const json& tmeta = field(tmpl, "metadata");
    for (const char* f : {"labels", "annotations", "finalizers"})
      if (const json& v = field(tmeta, f); !v.is_null() && !v.empty()) meta[f] = v;
    meta["ownerReferences"] = json::array({controllerRefFor(rs)});
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}};
    pod["spec"] = field(tmpl, "spec").is_object() ? field(tmpl, "spec") : json::object();
    return pod;
  }

  void record(const json& obj, const char* type, const char* reason, const std::string& message) {
    if (events) events->record(obj, type, reason, message);
  }

  Status createPod(const json& rs) {
    const json& labels = field(field(field(rs, "spec", "template"), "metadata"), "labels");
    if (!labels.is_object() || labels.empty())
      return Status::internal("unable to create pods, no labels");
    auto created = client_->create(kPods, strField(rs, "metadata", "namespace"), podFromTemplate(rs));
    if (!created.ok()) {
      record(rs, "Warning", "FailedCreate", "Error creating: " + created.status().message());
      // A terminating namespace refuses creations; that is not this ReplicaSet's failure.
      for (const auto& c : created.status().causes)
        if (c.type == "NamespaceTerminating") return {};
      return created.status();
    }
    record(rs, "Normal", "SuccessfulCreate", "Created pod: " + strField(*created, "metadata", "name"));
    return {};
  }

  // slowStartBatch: 1, 2, 4, ... calls at a time, stopping at the first batch with a failure,
  // so that a quota or admission error costs one call rather than hundreds.
  std::pair<int, Status> slowStartBatch(int count, const std::function<Status()>& fn) {
    int remaining = count;
    int successes = 0;
    for (int batch = std::min(remaining, 1); batch > 0; batch = std::min(2 * batch, remaining)) {
      std::vector<Status> results(batch);
      client::parallelize(batch, kParallelCalls, [&](int i) { results[i] = fn(); });
      Status firstError;
      for (const auto& r : results) {
        if (r.isOk()) successes++;
        else if (firstError.isOk()) firstError = r;
      }
      if (!firstError.isOk()) return {successes, firstError};
      remaining -= batch;
    }
    return {successes, {}};
  }

  // Pods of every ReplicaSet that shares this one's controller (a Deployment's other RSs), so
  // that scale-down prefers nodes the deployment doubles up on.
  std::vector<client::ObjectPtr> indirectlyRelatedPods(const json& rs) {
    std::vector<client::ObjectPtr> related;
    const json* ref = controllerRefOf(rs);
    if (!ref) return related;
    std::string ownerUid = ref->value("uid", "");
    std::string ns = strField(rs, "metadata", "namespace");
    std::set<std::string> seen;
    auto pods = podInformer_->byIndex("namespace", ns);
    for (const auto& other : rsInformer_->byIndex("namespace", ns)) {
      const json* oref = controllerRefOf(*other);
      if (!oref || oref->value("uid", "") != ownerUid) continue;
      auto sel = api::LabelSelector::fromJson(field(*other, "spec", "selector"));
      if (!sel.ok()) continue;
      for (const auto& pod : pods) {
        if (!sel->matches(field(*pod, "metadata", "labels"))) continue;
        if (!seen.insert(strField(*pod, "metadata", "uid")).second) continue;
        related.push_back(pod);
      }
    }
    return related;
  }

  Status manageReplicas(const std::vector<client::ObjectPtr>& pods, const json& rs, const std::string& key) {
    int diff = static_cast<int>(pods.size()) - specReplicas(rs);
    if (diff < 0) {
      diff = std::min(-diff, kBurstReplicas);
      expectations_.expectCreations(key, diff);
      auto [successes, err] = slowStartBatch(diff, [&] { return createPod(rs); });
      // The informer will never show the pods that were not created.
      for (int i = successes; i < diff; ++i) expectations_.creationObserved(key);
      return err;
    }
    if (diff > 0) {
      diff = std::min(diff, kBurstReplicas);
      auto related = indirectlyRelatedPods(rs);
      std::vector<const json*> podRefs, relatedRefs;
      for (const auto& p : pods) podRefs.push_back(p.get());
      for (const auto& p : related) relatedRefs.push_back(p.get());
      auto victims = rankForDeletion(podRefs, relatedRefs, diff, now());
      std::vector<std::string> keys;
      for (const json* p : victims) keys.push_back(podKey(*p));
      expectations_.expectDeletions(key, keys);
      std::vector<Status> results(victims.size());
      client::parallelize(static_cast<int>(victims.size()), kParallelCalls, [&](int i) {
        const json& pod = *victims[i];
        auto r = client_->remove(kPods, strField(pod, "metadata", "namespace"), strField(pod, "metadata", "name"));
        if (r.ok()) {
          record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + strField(pod, "metadata", "name"));
          return;
        }
        // The informer won't observe a deletion that did not happen.
        expectations_.deletionObserved(key, keys[i]);
        if (r.status().code() != 404) {
          record(rs, "Warning", "FailedDelete", "Error deleting: " + r.status().message());
          results[i] = r.status();
        }
      });
      for (const auto& r : results)
        if (!r.isOk()) return r;
    }
    return {};
  }

  // The status as kube serializes it: zero counts omitted.
  json calculateStatus(const json& rs, const std::vector<PodSeen>& pods, const Status& manageErr, bool createFailure) {
    json status = field(rs, "status").is_object() ? field(rs, "status") : json::object();
    int64_t minReady = intField(rs, "spec", "minReadySeconds");
    int fullyLabeled = 0, ready = 0, available = 0;
    Clock::time_point t = now();
    for (const PodSeen& seen : pods) {
      if (seen.facts->fullyLabeled) fullyLabeled++;
      if (seen.facts->ready) {
        ready++;
        if (seen.facts->available(minReady, t)) available++;
      }
    }
    json conds = status.contains("conditions") && status["conditions"].is_array() ? status["conditions"] : json::array();
    auto findCond = [&]() -> json* {
      for (auto& c : conds)
        if (c.is_object() && c.value("type", "") == "ReplicaFailure") return &c;
      return nullptr;
    };
    if (!manageErr.isOk() && !findCond()) {
      conds.push_back({{"type", "ReplicaFailure"},
                       {"status", "True"},
                       {"lastTransitionTime", api::formatTime(t)},
                       {"reason", createFailure ? "FailedCreate" : "FailedDelete"},
                       {"message", manageErr.message()}});
    } else if (manageErr.isOk() && findCond()) {
      json kept = json::array();
      for (auto& c : conds)
        if (!(c.is_object() && c.value("type", "") == "ReplicaFailure")) kept.push_back(c);
      conds = std::move(kept);
    }
    auto setCount = [&](const char* f, int64_t v) {
      if (v == 0) status.erase(f);
      else status[f] = v;
    };
    status["replicas"] = static_cast<int64_t>(pods.size());
    setCount("fullyLabeledReplicas", fullyLabeled);
    setCount("readyReplicas", ready);
    setCount("availableReplicas", available);
    if (conds.empty()) status.erase("conditions");
    else status["conditions"] = conds;
    return status;
  }

  // updateReplicaSetStatus: writes only when something changed; one retry on a fresh copy.
  api::Result<json> updateStatus(json rs, json status) {
    const json& old = field(rs, "status");
    auto same = [&](const char* f) { return intField(rs, "status", f) == (status.contains(f) ? status[f].get<int64_t>() : 0); };
    int64_t generation = intField(rs, "metadata", "generation");
    if (same("replicas") && same("fullyLabeledReplicas") && same("readyReplicas") && same("availableReplicas") &&
        generation == intField(rs, "status", "observedGeneration") &&
        field(old, "conditions") == field(status, "conditions"))
      return rs;
    Status last;
    for (int attempt = 0; attempt < 2; ++attempt) {
      status["observedGeneration"] = intField(rs, "metadata", "generation");
      if (status["observedGeneration"] == 0) status.erase("observedGeneration");
      rs["status"] = status;
      auto r = client_->update(kReplicaSets, strField(rs, "metadata", "namespace"), rs, "status");
      if (r.ok()) return r;
      last = r.status();
      if (r.status().code() == 404) return last;
      auto fresh = client_->get(kReplicaSets, strField(rs, "metadata", "namespace"), strField(rs, "metadata", "name"));
      if (!fresh.ok()) return fresh.status();
      rs = *fresh;
    }
    return last;
  }

  PodFactsMemo& memoFor(const std::string& key) {
    std::lock_guard lock(memosMu_);
    auto& memo = memos_[key];
    if (!memo) memo = std::make_unique<PodFactsMemo>();
    return *memo;
  }

  Status syncReplicaSet(const std::string& key) {
    auto cached = rsInformer_->get(key);
    if (!cached) {
      expectations_.remove(key);
      std::lock_guard lock(memosMu_);
      memos_.erase(key);
      return {};
    }
    json rs = *cached;
    bool needsSync = expectations_.satisfied(key);
    auto selector = api::LabelSelector::fromJson(field(rs, "spec", "selector"));
    if (!selector.ok()) {
      spdlog::warn("replicaset {}: invalid selector: {}", key, selector.status().message());
      return {};
    }
    PodFactsMemo& memo = memoFor(key);
    memo.startSync(rs);
    const json& templateLabels = field(field(field(rs, "spec", "template"), "metadata"), "labels");
    // Its own pods and the namespace's orphans (getRSPods), not every pod of the namespace.
    std::vector<PodSeen> active;
    for (const std::string& indexKey : {strField(rs, "metadata", "uid"), orphanPodIndexKey(strField(rs, "metadata", "namespace"))}) {
      for (const auto& pod : podInformer_->byIndex(kPodControllerUidIndex, indexKey)) {
        const PodFacts& facts = memo.of(pod, *selector, templateLabels);
        if (facts.active) active.push_back({pod, &facts});
      }
    }
    auto claimed = claimPods(rs, active, memo, *selector, templateLabels);
    if (!claimed.ok()) return claimed.status();

    Status manageErr;
    bool createFailure = static_cast<int>(claimed->size()) < specReplicas(rs);
    if (needsSync && !isBeingDeleted(rs)) {
      std::vector<client::ObjectPtr> pods;
      pods.reserve(claimed->size());
      for (const PodSeen& seen : *claimed) pods.push_back(seen.pod);
      manageErr = manageReplicas(pods, rs, key);
    }

    json status = calculateStatus(rs, *claimed, manageErr, createFailure);
    memo.finishSync();
    auto updated = updateStatus(rs, status);
    if (!updated.ok()) return updated.status();

    int64_t minReady = intField(*updated, "spec", "minReadySeconds");
    if (manageErr.isOk() && minReady > 0 && intField(*updated, "status", "readyReplicas") == specReplicas(*updated) &&
        intField(*updated, "status", "availableReplicas") != specReplicas(*updated))
      queue().addAfter(key, std::chrono::seconds(minReady));
    return manageErr;
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* rsInformer_ = nullptr;
  client::Informer* podInformer_ = nullptr;
  Expectations expectations_;
  std::mutex memosMu_;  // guards memos_ itself; each memo belongs to the worker syncing its key
  std::unordered_map<std::string, std::unique_ptr<PodFactsMemo>> memos_;  // by ReplicaSet key
};

}  // namespace

namespace replicaset {

std::vector<json> podsToDelete(std::vector<json> pods, const std::vector<json>& related, int diff,
                               Clock::time_point now) {
  std::vector<const json*> podRefs, relatedRefs;
  for (const auto& p : pods) podRefs.push_back(&p);
  for (const auto& p : related) relatedRefs.push_back(&p);
  std::vector<json> out;
  for (const json* p : rankForDeletion(podRefs, relatedRefs, diff, now)) out.push_back(*p);
  return out;
}

}  // namespace replicaset

std::unique_ptr<Controller> newReplicaSetController() { return std::make_unique<ReplicaSetController>(); }

}  // namespace orrery::controllers
