// The Deployment controller, as pkg/controller/deployment in kube-controller-manager 1.32
// (deployment_controller.go, sync.go, rolling.go, recreate.go, progress.go, util/).

#include "engine/controllers/deployment.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets"};
const api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};

constexpr const char* kRevision = "deployment.kubernetes.io/revision";
constexpr const char* kRevisionHistory = "deployment.kubernetes.io/revision-history";
constexpr const char* kDesiredReplicas = "deployment.kubernetes.io/desired-replicas";
constexpr const char* kMaxReplicas = "deployment.kubernetes.io/max-replicas";
constexpr const char* kHashLabel = "pod-template-hash";
constexpr size_t kRevisionHistoryLimitChars = 2000;

// Condition types and reasons (pkg/controller/deployment/util).
constexpr const char* kProgressing = "Progressing";
constexpr const char* kAvailable = "Available";
constexpr const char* kReplicaFailure = "ReplicaFailure";
constexpr const char* kNewRSAvailable = "NewReplicaSetAvailable";
constexpr const char* kTimedOut = "ProgressDeadlineExceeded";
constexpr const char* kPaused = "DeploymentPaused";

// ---- small accessors ----------------------------------------------------------------------


std::optional<std::string> annotation(const json& o, const char* key) {
  const json& v = field(field(o, "metadata", "annotations"), key);
  if (!v.is_string()) return std::nullopt;
  return v.get<std::string>();
}
void setAnnotation(json& o, const std::string& key, const std::string& value) {
  json& meta = o["metadata"];
  if (!meta.contains("annotations") || !meta["annotations"].is_object()) meta["annotations"] = json::object();
  meta["annotations"][key] = value;
}
std::optional<int64_t> parseInt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used, 10);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// Removes null, {} and [] members recursively: apimachinery's semantic equality treats a nil
// map or slice and an empty one as equal, and JSON drops the difference anyway.
json normalized(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, x] : v.items()) {
      json n = normalized(x);
      if (n.is_null() || (n.is_object() && n.empty()) || (n.is_array() && n.empty())) continue;
      out[k] = std::move(n);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& x : v) out.push_back(normalized(x));
    return out;
  }
  return v;
}

// ---- conditions (util/deployment_util.go) --------------------------------------------------

json* findCondition(json& status, const std::string& type) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) return nullptr;
  for (auto& c : status["conditions"])
    if (c.is_object() && c.value("type", "") == type) return &c;
  return nullptr;
}
const json* findCondition(const json& status, const std::string& type) {
  const json& conds = field(status, "conditions");
  if (!conds.is_array()) return nullptr;
  for (const auto& c : conds)
    if (c.is_object() && c.value("type", "") == type) return &c;
  return nullptr;
}
void removeCondition(json& status, const std::string& type) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) return;
  json kept = json::array();
  for (auto& c : status["conditions"])
    if (!(c.is_object() && c.value("type", "") == type)) kept.push_back(std::move(c));
  status["conditions"] = std::move(kept);
}
// SetDeploymentCondition: same status and reason leaves the old one (times included); same
// status keeps its lastTransitionTime.
void setCondition(json& status, json cond) {
  std::string type = cond["type"];
  if (json* cur = findCondition(status, type)) {
    if ((*cur)["status"] == cond["status"] && (*cur)["reason"] == cond["reason"]) return;
    if ((*cur)["status"] == cond["status"]) cond["lastTransitionTime"] = (*cur)["lastTransitionTime"];
  }
  removeCondition(status, type);
  if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
  status["conditions"].push_back(std::move(cond));
}

// The status as kube serializes it: zero counts and empty conditions omitted.
json canonicalStatus(const json& s) {
  json out = json::object();
  if (!s.is_object()) return out;
  for (const char* f : {"observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                        "unavailableReplicas", "terminatingReplicas"}) {
    const json& v = field(s, f);
    if (v.is_number_integer() && v.get<int64_t>() != 0) out[f] = v;
  }
  if (const json& c = field(s, "conditions"); c.is_array() && !c.empty()) out["conditions"] = c;
  if (const json& c = field(s, "collisionCount"); c.is_number_integer()) out["collisionCount"] = c;
  return out;
}


int32_t roundToInt32(double a) { return a < 0 ? static_cast<int32_t>(a - 0.5) : static_cast<int32_t>(a + 0.5); }

// ---- the controller ------------------------------------------------------------------------

class DeploymentController;

// One sync of one Deployment: the deployment and its ReplicaSets as this sync sees and
// changes them (RSs by uid, so that every list of them sees each update).
class DeploymentSync {
 public:
  DeploymentSync(DeploymentController& c, std::string key) : c_(c), key_(std::move(key)) {}
  Status run();

 private:
  using Uids = std::vector<std::string>;

  // deployment accessors
  int32_t replicas() const { return static_cast<int32_t>(intField(d_, "spec", "replicas", 1)); }
  bool paused() const { return field(d_, "spec", "paused").is_boolean() && field(d_, "spec", "paused").get<bool>(); }
  bool isRollingUpdate() const {
    return field(field(d_, "spec", "strategy"), "type") == "RollingUpdate";
  }
  bool isRecreate() const { return field(field(d_, "spec", "strategy"), "type") == "Recreate"; }
  bool hasProgressDeadline() const {
    const json& v = field(d_, "spec", "progressDeadlineSeconds");
    return v.is_number_integer() && v.get<int64_t>() != INT32_MAX;
  }
  std::pair<int32_t, int32_t> fenceposts() const {
    const json& ru = field(field(d_, "spec", "strategy"), "rollingUpdate");
    auto r = deployment::resolveFenceposts(field(ru, "maxSurge"), field(ru, "maxUnavailable"), replicas());
    return r.ok() ? *r : std::pair<int32_t, int32_t>{0, 1};
  }
  int32_t maxSurge() const { return isRollingUpdate() ? fenceposts().first : 0; }
  int32_t maxUnavailable() const {
    if (!isRollingUpdate() || replicas() == 0) return 0;
    return std::min(fenceposts().second, replicas());
  }

  // replica set accessors
  json& rs(const std::string& uid) { return rs_.at(uid); }
  int32_t specReplicas(const std::string& uid) { return static_cast<int32_t>(intField(rs(uid), "spec", "replicas", 1)); }
  int32_t statusCount(const std::string& uid, const char* f) { return static_cast<int32_t>(intField(rs(uid), "status", f)); }
  std::string rsName(const std::string& uid) { return strField(rs(uid), "metadata", "name"); }
  int64_t revision(const std::string& uid) {
    auto a = annotation(rs(uid), kRevision);
    auto v = a ? parseInt(*a) : std::nullopt;
    return v.value_or(0);
  }
  Clock::time_point created(const std::string& uid) { return timeField(field(rs(uid), "metadata", "creationTimestamp")); }
  void sortByCreation(Uids& uids) {
    std::stable_sort(uids.begin(), uids.end(), [&](const std::string& a, const std::string& b) {
      if (created(a) != created(b)) return created(a) < created(b);
      return rsName(a) < rsName(b);
    });
  }
  Uids filterActive(const Uids& uids) {
    Uids out;
    for (const auto& u : uids)
      if (!u.empty() && specReplicas(u) > 0) out.push_back(u);
    return out;
  }
  int32_t sumSpec(const Uids& uids) {
    int32_t n = 0;
    for (const auto& u : uids)
      if (!u.empty()) n += specReplicas(u);
    return n;
  }
  int32_t sumStatus(const Uids& uids, const char* f) {
    int32_t n = 0;
    for (const auto& u : uids)
      if (!u.empty()) n += statusCount(u, f);
    return n;
  }
  static Uids with(Uids list, const std::string& uid) {
    if (!uid.empty()) list.push_back(uid);
    return list;
  }

  Clock::time_point now() const;
  void record(const char* type, const char* reason, const std::string& message);

  Status claimReplicaSets(const api::LabelSelector& selector);
  void buildPodMap(const api::LabelSelector& selector);
  Status updateDeploymentStatus();
  Status checkPausedConditions();
  Status syncStatusOnly();
  Status syncScaleOrPaused();
  Status scale(const std::string& newRS, Uids oldRSs);
  api::Result<bool> isScalingEvent();
  Status rolloutRolling();
  Status rolloutRecreate();
  api::Result<std::pair<std::string, Uids>> getAllReplicaSetsAndSyncRevision(bool create);
  api::Result<std::string> getNewReplicaSet(const Uids& oldRSs, bool create);
  bool setNewReplicaSetAnnotations(json& rs, const std::string& newRevision, bool exists);
  api::Result<bool> scaleAndRecordEvent(const std::string& uid, int32_t newScale);
  api::Result<bool> scaleReplicaSet(const std::string& uid, int32_t newScale, const std::string& op);
  int32_t newRSNewReplicas(const Uids& allRSs, int32_t newRSReplicas);
  api::Result<bool> reconcileNewReplicaSet(const Uids& allRSs, const std::string& newRS);
  api::Result<bool> reconcileOldReplicaSets(const Uids& allRSs, Uids oldRSs, const std::string& newRS);
  api::Result<int32_t> cleanupUnhealthyReplicas(Uids oldRSs, int32_t maxCleanup);
  api::Result<int32_t> scaleDownOldForRollingUpdate(const Uids& allRSs, Uids oldRSs);
  Status cleanupDeployment(const Uids& oldRSs);
  json calculateStatus(const Uids& allRSs, const std::string& newRS);
  Status syncDeploymentStatus(const Uids& allRSs, const std::string& newRS);
  Status syncRolloutStatus(const Uids& allRSs, const std::string& newRS);
  bool deploymentComplete(const json& status) const;
  bool deploymentProgressing(const json& status) const;
  bool deploymentTimedOut(const json& status) const;
  void requeueStuckDeployment(const json& newStatus);
  json newCondition(const char* type, const char* status, const char* reason, const std::string& message) const;
  json controllerRef() const {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"name", strField(d_, "metadata", "name")},
            {"uid", strField(d_, "metadata", "uid")},
            {"controller", true},
            {"blockOwnerDeletion", true}};
  }

  DeploymentController& c_;
  std::string key_;
  std::string ns_;
  json d_;
  std::map<std::string, json> rs_;  // by uid
  Uids rsList_;
  std::map<std::string, std::vector<client::ObjectPtr>> podMap_;  // rs uid -> pods (Recreate only)
};

class DeploymentController : public Controller {
 public:
  std::string name() const override { return "deployment"; }
  int workers() const override { return 5; }  // --concurrent-deployment-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    dInformer_ = &context.informers->informer(kDeployments);
    rsInformer_ = &context.informers->informer(kReplicaSets);
    podInformer_ = &context.informers->informer(kPods);
    dInformer_->addHandler({
        [this](const client::ObjectPtr& d) { queue().add(client::objectKey(*d)); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& d) { queue().add(client::objectKey(*d)); },
        [this](const client::ObjectPtr& d) { queue().add(client::objectKey(*d)); },
    });
    rsInformer_->addHandler({
        [this](const client::ObjectPtr& rs) { addReplicaSet(*rs); },
        [this](const client::ObjectPtr& o, const client::ObjectPtr& n) { updateReplicaSet(*o, *n); },
        [this](const client::ObjectPtr& rs) { deleteReplicaSet(*rs); },
    });
    podInformer_->addHandler({nullptr, nullptr, [this](const client::ObjectPtr& pod) { deletePod(*pod); }});
    return {};
  }

  Status sync(const std::string& key) override {
    DeploymentSync s(*this, key);
    return s.run();
  }

 private:
  friend class DeploymentSync;

  client::ObjectPtr resolveControllerRef(const std::string& ns, const json* ref) {
    if (!ref || ref->value("kind", "") != "Deployment") return nullptr;
    auto d = dInformer_->get(client::objectKey(ns, ref->value("name", "")));
    if (!d || strField(*d, "metadata", "uid") != ref->value("uid", "")) return nullptr;
    return d;
  }

  // Deployments whose selector matches an orphaned ReplicaSet (getDeploymentsForReplicaSet).
  void enqueueMatching(const json& rs) {
    const json& labels = field(rs, "metadata", "labels");
    if (!labels.is_object() || labels.empty()) return;
    for (const auto& d : dInformer_->byIndex("namespace", strField(rs, "metadata", "namespace"))) {
      auto sel = api::LabelSelector::fromJson(field(*d, "spec", "selector"));
      if (!sel.ok() || sel->empty() || sel->matchesNothing()) continue;
      if (sel->matches(labels)) queue().add(client::objectKey(*d));
    }
  }

  void addReplicaSet(const json& rs) {
    if (isBeingDeleted(rs)) {
      deleteReplicaSet(rs);
      return;
    }
    std::string ns = strField(rs, "metadata", "namespace");
    if (const json* ref = controllerRefOf(rs)) {
      if (auto d = resolveControllerRef(ns, ref)) queue().add(client::objectKey(*d));
      return;
    }
    enqueueMatching(rs);
  }

  void updateReplicaSet(const json& oldRS, const json& curRS) {
    if (strField(oldRS, "metadata", "resourceVersion") == strField(curRS, "metadata", "resourceVersion")) return;
    std::string ns = strField(curRS, "metadata", "namespace");
    const json* curRef = controllerRefOf(curRS);
    const json* oldRef = controllerRefOf(oldRS);
    bool refChanged = (curRef == nullptr) != (oldRef == nullptr) || (curRef && *curRef != *oldRef);
    if (refChanged && oldRef)
      if (auto d = resolveControllerRef(ns, oldRef)) queue().add(client::objectKey(*d));
    if (curRef) {
      if (auto d = resolveControllerRef(ns, curRef)) queue().add(client::objectKey(*d));
      return;
    }
    bool labelChanged = field(oldRS, "metadata", "labels") != field(curRS, "metadata", "labels");
    if (labelChanged || refChanged) enqueueMatching(curRS);
  }

  void deleteReplicaSet(const json& rs) {
    if (auto d = resolveControllerRef(strField(rs, "metadata", "namespace"), controllerRefOf(rs)))
      queue().add(client::objectKey(*d));
  }

  // A Recreate rollout waits for the old pods to be gone: their deletion is its cue.
  void deletePod(const json& pod) {
    const json* ref = controllerRefOf(pod);
    if (!ref || ref->value("kind", "") != "ReplicaSet") return;
    std::string ns = strField(pod, "metadata", "namespace");
    auto rs = rsInformer_->get(client::objectKey(ns, ref->value("name", "")));
    if (!rs || strField(*rs, "metadata", "uid") != ref->value("uid", "")) return;
    auto d = resolveControllerRef(ns, controllerRefOf(*rs));
    if (d && field(field(*d, "spec", "strategy"), "type") == "Recreate") queue().add(client::objectKey(*d));
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* dInformer_ = nullptr;
  client::Informer* rsInformer_ = nullptr;
  client::Informer* podInformer_ = nullptr;
};

// ---- DeploymentSync ------------------------------------------------------------------------

Clock::time_point DeploymentSync::now() const { return c_.context_->now(); }

void DeploymentSync::record(const char* type, const char* reason, const std::string& message) {
  if (c_.events) c_.events->record(d_, type, reason, message);
}

json DeploymentSync::newCondition(const char* type, const char* status, const char* reason,
                                  const std::string& message) const {
  std::string t = api::formatTime(now());
  return {{"type", type}, {"status", status}, {"lastUpdateTime", t}, {"lastTransitionTime", t},
          {"reason", reason}, {"message", message}};
}

Status DeploymentSync::run() {
  auto cached = c_.dInformer_->get(key_);
  if (!cached) return {};  // deleted: the garbage collector takes its ReplicaSets
  d_ = *cached;
  ns_ = strField(d_, "metadata", "namespace");

  auto selector = api::LabelSelector::fromJson(field(d_, "spec", "selector"));
  if (!selector.ok())
    return Status::internal("deployment " + key_ + " has invalid label selector: " + selector.status().message());
  if (selector->empty()) {
    record("Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.");
    if (intField(d_, "status", "observedGeneration") < intField(d_, "metadata", "generation")) {
      if (!d_["status"].is_object()) d_["status"] = json::object();
      d_["status"]["observedGeneration"] = intField(d_, "metadata", "generation");
      return updateDeploymentStatus();
    }
    return {};
  }

  if (Status s = claimReplicaSets(*selector); !s.isOk()) return s;
  // Only a Recreate rollout reads the pod map (as kube's rolloutRecreate); building it for
  // every sync walked every pod of the namespace each time a ReplicaSet's status moved.
  if (isRecreate() && !isBeingDeleted(d_)) buildPodMap(*selector);

  if (isBeingDeleted(d_)) return syncStatusOnly();
  if (Status s = checkPausedConditions(); !s.isOk()) return s;
  if (paused()) return syncScaleOrPaused();
  auto scaling = isScalingEvent();
  if (!scaling.ok()) return scaling.status();
  if (*scaling) return syncScaleOrPaused();
  if (isRecreate()) return rolloutRecreate();
  if (isRollingUpdate()) return rolloutRolling();
  return Status::internal("unexpected deployment strategy type: " + field(field(d_, "spec", "strategy"), "type").dump());
}

// ClaimReplicaSets: adopt matching orphans (after a live check that the deployment is not
// being deleted), release owned ones that stopped matching.
Status DeploymentSync::claimReplicaSets(const api::LabelSelector& selector) {
  std::string uid = strField(d_, "metadata", "uid");
  bool deleting = isBeingDeleted(d_);
  std::optional<Status> adoptable;
  auto canAdopt = [&]() -> Status {
    auto fresh = c_.client_->get(kDeployments, ns_, strField(d_, "metadata", "name"));
    if (!fresh.ok()) return fresh.status();
    if (strField(*fresh, "metadata", "uid") != uid)
      return Status::internal("original Deployment " + key_ + " is gone: got uid " +
                              strField(*fresh, "metadata", "uid") + ", wanted " + uid);
    if (isBeingDeleted(*fresh))
      return Status::internal(key_ + " has just been deleted at " + strField(*fresh, "metadata", "deletionTimestamp"));
    return {};
  };
  for (const auto& ptr : c_.rsInformer_->byIndex("namespace", ns_)) {
    const json& r = *ptr;
    bool matches = selector.matches(field(r, "metadata", "labels"));
    std::string name = strField(r, "metadata", "name");
    std::string rsUid = strField(r, "metadata", "uid");
    if (const json* ref = controllerRefOf(r)) {
      if (ref->value("uid", "") != uid) continue;
      if (matches) {
        rs_[rsUid] = r;
        rsList_.push_back(rsUid);
        continue;
      }
      if (deleting) continue;
      json patch = {{"metadata", {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", uid}}})}, {"uid", rsUid}}}};
      auto res = c_.client_->patch(kReplicaSets, ns_, name, client::PatchType::kStrategicMerge, patch.dump());
      if (!res.ok() && res.status().code() != 404 && res.status().code() != 422) return res.status();
      continue;
    }
    if (deleting || !matches || isBeingDeleted(r)) continue;
    if (!adoptable) adoptable = canAdopt();
    if (!adoptable->isOk()) return *adoptable;
    json patch = {{"metadata", {{"ownerReferences", json::array({controllerRef()})}, {"uid", rsUid}}}};
    auto res = c_.client_->patch(kReplicaSets, ns_, name, client::PatchType::kStrategicMerge, patch.dump());
    if (res.ok()) {
      rs_[rsUid] = *res;
      rsList_.push_back(rsUid);
    } else if (res.status().code() != 404) {
      return res.status();
    }
  }
  return {};
}

void DeploymentSync::buildPodMap(const api::LabelSelector& selector) {
  for (const auto& u : rsList_) podMap_[u];
  for (const auto& pod : c_.podInformer_->byIndex("namespace", ns_)) {
    if (!selector.matches(field(*pod, "metadata", "labels"))) continue;
    const json* ref = controllerRefOf(*pod);
    if (!ref) continue;
    auto it = podMap_.find(ref->value("uid", ""));
    if (it != podMap_.end()) it->second.push_back(pod);
  }
}

// Writes d_.status (and keeps the revision annotation, which kube writes along with it).
Status DeploymentSync::updateDeploymentStatus() {
  auto r = c_.client_->update(kDeployments, ns_, d_, "status");
  if (!r.ok()) return r.status();
  json updated = std::move(*r);
  auto want = annotation(d_, kRevision);
  if (want && annotation(updated, kRevision) != want) {
    // This server's status subresource may drop metadata changes; kube's keeps annotations.
    json patch = {{"metadata", {{"annotations", {{kRevision, *want}}}}}};
    auto p = c_.client_->patch(kDeployments, ns_, strField(d_, "metadata", "name"), client::PatchType::kMerge,
                               patch.dump());
    if (!p.ok()) return p.status();
    updated = std::move(*p);
  }
  d_ = std::move(updated);
  return {};
}

Status DeploymentSync::checkPausedConditions() {
  if (!hasProgressDeadline()) return {};
  if (!d_["status"].is_object()) d_["status"] = json::object();
  const json* cond = findCondition(d_["status"], kProgressing);
  bool pausedCondExists = cond && cond->value("reason", "") == kPaused;
  if (paused() && !pausedCondExists) {
    setCondition(d_["status"], newCondition(kProgressing, "Unknown", kPaused, "Deployment is paused"));
  } else if (!paused() && pausedCondExists) {
    setCondition(d_["status"], newCondition(kProgressing, "Unknown", "DeploymentResumed", "Deployment is resumed"));
  } else {
    return {};
  }
  return updateDeploymentStatus();
}

Status DeploymentSync::syncStatusOnly() {
  auto all = getAllReplicaSetsAndSyncRevision(false);
  if (!all.ok()) return all.status();
  auto& [newRS, oldRSs] = *all;
  return syncDeploymentStatus(with(oldRSs, newRS), newRS);
}

// sync(): scaling events and paused deployments.
Status DeploymentSync::syncScaleOrPaused() {
  auto all = getAllReplicaSetsAndSyncRevision(false);
  if (!all.ok()) return all.status();
  auto [newRS, oldRSs] = *all;
  if (Status s = scale(newRS, oldRSs); !s.isOk()) return s;
  if (paused())
    if (Status s = cleanupDeployment(oldRSs); !s.isOk()) return s;
  return syncDeploymentStatus(with(oldRSs, newRS), newRS);
}

api::Result<bool> DeploymentSync::isScalingEvent() {
  auto all = getAllReplicaSetsAndSyncRevision(false);
  if (!all.ok()) return all.status();
  auto& [newRS, oldRSs] = *all;
  for (const auto& u : filterActive(with(oldRSs, newRS))) {
    auto desired = annotation(rs(u), kDesiredReplicas);
    auto v = desired ? parseInt(*desired) : std::nullopt;
    if (!v) continue;
    if (*v != replicas()) return true;
  }
  return false;
}

// Proportional scaling (sync.go scale()).
Status DeploymentSync::scale(const std::string& newRS, Uids oldRSs) {
  // FindActiveOrLatest: with at most one active RS, that one (or the newest) takes the change.
  if (!newRS.empty() || !oldRSs.empty()) {
    Uids newestFirst = oldRSs;
    sortByCreation(newestFirst);
    std::reverse(newestFirst.begin(), newestFirst.end());
    Uids active = filterActive(with(newestFirst, newRS));
    std::string target;
    if (active.empty()) target = !newRS.empty() ? newRS : newestFirst.front();
    else if (active.size() == 1) target = active.front();
    if (!target.empty()) {
      if (specReplicas(target) == replicas()) return {};
      auto r = scaleAndRecordEvent(target, replicas());
      return r.ok() ? Status() : r.status();
    }
  }
  // IsSaturated: the new RS runs everything available; old ones go to zero.
  if (!newRS.empty()) {
    auto desired = annotation(rs(newRS), kDesiredReplicas);
    auto v = desired ? parseInt(*desired) : std::nullopt;
    if (v && specReplicas(newRS) == replicas() && *v == replicas() &&
        statusCount(newRS, "availableReplicas") == replicas()) {
      for (const auto& u : filterActive(oldRSs)) {
        auto r = scaleAndRecordEvent(u, 0);
        if (!r.ok()) return r.status();
      }
      return {};
    }
  }
  if (!isRollingUpdate()) return {};
  Uids allRSs = filterActive(with(oldRSs, newRS));
  int32_t allReplicas = sumSpec(allRSs);
  int32_t allowedSize = replicas() > 0 ? replicas() + maxSurge() : 0;
  int32_t toAdd = allowedSize - allReplicas;
  std::string op;
  if (toAdd > 0) {
    // ReplicaSetsBySizeNewer: larger first, then newer first.
    std::stable_sort(allRSs.begin(), allRSs.end(), [&](const std::string& a, const std::string& b) {
      if (specReplicas(a) == specReplicas(b)) return created(b) < created(a);
      return specReplicas(a) > specReplicas(b);
    });
    op = "up";
  } else if (toAdd < 0) {
    // ReplicaSetsBySizeOlder: larger first, then older first.
    std::stable_sort(allRSs.begin(), allRSs.end(), [&](const std::string& a, const std::string& b) {
      if (specReplicas(a) == specReplicas(b)) {
        if (created(a) != created(b)) return created(a) < created(b);
        return rsName(a) < rsName(b);
      }
      return specReplicas(a) > specReplicas(b);
    });
    op = "down";
  }
  int32_t added = 0;
  std::map<std::string, int32_t> sizes;
  for (const auto& u : allRSs) {
    if (toAdd == 0) {
      sizes[u] = specReplicas(u);
      continue;
    }
    // GetProportion with getReplicaSetFraction.
    int32_t proportion = 0;
    if (specReplicas(u) != 0 && toAdd != added) {
      int32_t fraction;
      if (replicas() == 0) {
        fraction = -specReplicas(u);
      } else {
        int32_t deploymentReplicas = replicas() + maxSurge();
        auto maxAnn = annotation(rs(u), kMaxReplicas);
        auto annotated = maxAnn ? parseInt(*maxAnn) : std::nullopt;
        int64_t base = annotated ? *annotated : intField(d_, "status", "replicas");
        double newSize = base == 0 ? 0.0 : static_cast<double>(specReplicas(u)) * deploymentReplicas / static_cast<double>(base);
        fraction = roundToInt32(newSize) - specReplicas(u);
      }
      int32_t allowed = toAdd - added;
      proportion = toAdd > 0 ? std::min(fraction, allowed) : std::max(fraction, allowed);
    }
    sizes[u] = specReplicas(u) + proportion;
    added += proportion;
  }
  for (size_t i = 0; i < allRSs.size(); ++i) {
    const std::string& u = allRSs[i];
    if (i == 0 && toAdd != 0) sizes[u] = std::max(0, sizes[u] + (toAdd - added));
    auto r = scaleReplicaSet(u, sizes[u], op);
    if (!r.ok()) return r.status();
  }
  return {};
}

api::Result<std::pair<std::string, DeploymentSync::Uids>> DeploymentSync::getAllReplicaSetsAndSyncRevision(bool create) {
  // FindOldReplicaSets: every RS but the new one (allOldRSs, including those at zero).
  Uids byAge = rsList_;
  sortByCreation(byAge);
  std::string existingNew;
  for (const auto& u : byAge)
    if (deployment::equalIgnoreHash(field(rs(u), "spec", "template"), field(d_, "spec", "template"))) {
      existingNew = u;
      break;
    }
  Uids oldRSs;
  for (const auto& u : rsList_)
    if (u != existingNew) oldRSs.push_back(u);
  auto newRS = getNewReplicaSet(oldRSs, create);
  if (!newRS.ok()) return newRS.status();
  return std::pair<std::string, Uids>{*newRS, oldRSs};
}

bool DeploymentSync::setNewReplicaSetAnnotations(json& r, const std::string& newRevision, bool exists) {
  static const std::set<std::string> kSkip = {"kubectl.kubernetes.io/last-applied-configuration", kRevision,
                                              kRevisionHistory, kDesiredReplicas, kMaxReplicas,
                                              "deprecated.deployment.rollback.to"};
  bool changed = false;
  const json& dAnn = field(d_, "metadata", "annotations");
  if (dAnn.is_object())
    for (const auto& [k, v] : dAnn.items()) {
      if (kSkip.count(k) || !v.is_string()) continue;
      if (annotation(r, k.c_str()) == v.get<std::string>()) continue;
      setAnnotation(r, k, v.get<std::string>());
      changed = true;
    }
  auto oldRevision = annotation(r, kRevision);
  int64_t oldInt = 0;
  if (oldRevision && !oldRevision->empty()) {
    auto v = parseInt(*oldRevision);
    if (!v) return false;
    oldInt = *v;
  }
  auto newInt = parseInt(newRevision);
  if (!newInt) return false;
  if (oldInt < *newInt) {
    setAnnotation(r, kRevision, newRevision);
    changed = true;
    // Rolling back to this RS: keep its earlier revisions for `kubectl rollout history`.
    if (oldRevision) {
      std::string history = annotation(r, kRevisionHistory).value_or("");
      if (history.empty()) {
        setAnnotation(r, kRevisionHistory, *oldRevision);
      } else {
        std::vector<std::string> parts;
        size_t start = 0;
        while (true) {
          size_t comma = history.find(',', start);
          parts.push_back(history.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        size_t total = history.size() + oldRevision->size() + 1;
        size_t first = 0;
        while (total > kRevisionHistoryLimitChars && first < parts.size()) total -= parts[first++].size() + 1;
        if (total <= kRevisionHistoryLimitChars) {
          std::string joined;
          for (size_t i = first; i < parts.size(); ++i) joined += parts[i] + ",";
          joined += *oldRevision;
          setAnnotation(r, kRevisionHistory, joined);
        }
      }
    }
  }
  if (!exists) {
    std::string desired = std::to_string(replicas());
    std::string max = std::to_string(replicas() + maxSurge());
    if (annotation(r, kDesiredReplicas) != desired) setAnnotation(r, kDesiredReplicas, desired), changed = true;
    if (annotation(r, kMaxReplicas) != max) setAnnotation(r, kMaxReplicas, max), changed = true;
  }
  return changed;
}

api::Result<std::string> DeploymentSync::getNewReplicaSet(const Uids& oldRSs, bool create) {
  std::string existing;
  {
    Uids byAge = rsList_;
    sortByCreation(byAge);
    for (const auto& u : byAge)
      if (deployment::equalIgnoreHash(field(rs(u), "spec", "template"), field(d_, "spec", "template"))) {
        existing = u;
        break;
      }
  }
  int64_t maxOld = 0;
  for (const auto& u : oldRSs) maxOld = std::max(maxOld, revision(u));
  std::string newRevision = std::to_string(maxOld + 1);
  if (!d_["status"].is_object()) d_["status"] = json::object();

  if (!existing.empty()) {
    json copy = rs(existing);
    bool annotationsUpdated = setNewReplicaSetAnnotations(copy, newRevision, true);
    int64_t minReady = intField(d_, "spec", "minReadySeconds");
    bool minReadyUpdate = intField(copy, "spec", "minReadySeconds") != minReady;
    if (annotationsUpdated || minReadyUpdate) {
      if (minReady == 0) copy["spec"].erase("minReadySeconds");
      else copy["spec"]["minReadySeconds"] = minReady;
      auto r = c_.client_->update(kReplicaSets, ns_, copy);
      if (!r.ok()) return r.status();
      rs(existing) = *r;
    }
    bool needsUpdate = false;
    std::string rev = annotation(rs(existing), kRevision).value_or("");
    if (annotation(d_, kRevision) != rev) {
      setAnnotation(d_, kRevision, rev);
      needsUpdate = true;
    }
    if (hasProgressDeadline() && !findCondition(d_["status"], kProgressing)) {
      setCondition(d_["status"], newCondition(kProgressing, "True", "FoundNewReplicaSet",
                                              "Found new replica set \"" + rsName(existing) + "\""));
      needsUpdate = true;
    }
    if (needsUpdate)
      if (Status s = updateDeploymentStatus(); !s.isOk()) return s;
    return existing;
  }
  if (!create) return std::string();

  // A new ReplicaSet: the template with its hash label, a selector that requires it.
  std::optional<int32_t> collision;
  if (const json& cc = field(d_, "status", "collisionCount"); cc.is_number_integer()) collision = cc.get<int32_t>();
  json tmpl = field(d_, "spec", "template");
  std::string hash = deployment::podTemplateHash(tmpl, collision);
  if (!tmpl["metadata"].is_object()) tmpl["metadata"] = json::object();
  if (!tmpl["metadata"]["labels"].is_object()) tmpl["metadata"]["labels"] = json::object();
  tmpl["metadata"]["labels"][kHashLabel] = hash;
  json selector = field(d_, "spec", "selector");
  if (!selector["matchLabels"].is_object()) selector["matchLabels"] = json::object();
  selector["matchLabels"][kHashLabel] = hash;
  std::string name = strField(d_, "metadata", "name") + "-" + hash;
  json newRS = {{"apiVersion", "apps/v1"},
                {"kind", "ReplicaSet"},
                {"metadata",
                 {{"name", name},
                  {"namespace", ns_},
                  {"labels", tmpl["metadata"]["labels"]},
                  {"ownerReferences", json::array({controllerRef()})}}},
                {"spec", {{"replicas", 0}, {"selector", selector}, {"template", tmpl}}}};
  if (int64_t mr = intField(d_, "spec", "minReadySeconds"); mr > 0) newRS["spec"]["minReadySeconds"] = mr;
  // NewRSNewReplicas counts the new RS (at 0) among all.
  int32_t newReplicas = newRSNewReplicas(oldRSs, 0);
  newRS["spec"]["replicas"] = newReplicas;
  setNewReplicaSetAnnotations(newRS, newRevision, false);

  auto created = c_.client_->create(kReplicaSets, ns_, newRS);
  bool alreadyExists = false;
  std::string createdUid;
  if (created.ok()) {
    createdUid = strField(*created, "metadata", "uid");
    rs_[createdUid] = *created;
    rsList_.push_back(createdUid);
  } else if (created.status().code() == 409 && created.status().reason() == api::reason::kAlreadyExists) {
    alreadyExists = true;
    auto existingRS = c_.client_->get(kReplicaSets, ns_, name);
    if (!existingRS.ok()) return existingRS.status();
    const json* ref = controllerRefOf(*existingRS);
    if (ref && ref->value("uid", "") == strField(d_, "metadata", "uid") &&
        deployment::equalIgnoreHash(field(d_, "spec", "template"), field(*existingRS, "spec", "template"))) {
      // Ours, only missing from the cache so far.
      createdUid = strField(*existingRS, "metadata", "uid");
      rs_[createdUid] = *existingRS;
      rsList_.push_back(createdUid);
    } else {
      // A hash collision: the next hash includes a bumped collisionCount.
      d_["status"]["collisionCount"] = collision.value_or(0) + 1;
      if (Status s = updateDeploymentStatus(); !s.isOk()) return s;
      return created.status();
    }
  } else {
    std::string msg = "Failed to create new replica set \"" + name + "\": " + created.status().message();
    if (hasProgressDeadline()) {
      setCondition(d_["status"], newCondition(kReplicaFailure, "True", "ReplicaSetCreateError", msg));
      (void)updateDeploymentStatus();
    }
    record("Warning", "FailedCreate", msg);
    return created.status();
  }
  if (!alreadyExists && newReplicas > 0)
    record("Normal", "ScalingReplicaSet",
           "Scaled up replica set " + name + " from 0 to " + std::to_string(newReplicas));
  bool needsUpdate = false;
  if (annotation(d_, kRevision) != newRevision) {
    setAnnotation(d_, kRevision, newRevision);
    needsUpdate = true;
  }
  if (!alreadyExists && hasProgressDeadline()) {
    setCondition(d_["status"], newCondition(kProgressing, "True", "NewReplicaSetCreated",
                                            "Created new replica set \"" + name + "\""));
    needsUpdate = true;
  }
  if (needsUpdate)
    if (Status s = updateDeploymentStatus(); !s.isOk()) return s;
  return createdUid;
}

// NewRSNewReplicas: how far the new RS may grow now.
int32_t DeploymentSync::newRSNewReplicas(const Uids& allRSs, int32_t newRSReplicas) {
  if (isRecreate()) return replicas();
  if (!isRollingUpdate()) return newRSReplicas;
  int32_t current = sumSpec(allRSs);
  int32_t maxTotal = replicas() + maxSurge();
  if (current >= maxTotal) return newRSReplicas;
  int32_t up = std::min(maxTotal - current, replicas() - newRSReplicas);
  return newRSReplicas + up;
}

api::Result<bool> DeploymentSync::scaleAndRecordEvent(const std::string& uid, int32_t newScale) {
  if (specReplicas(uid) == newScale) return false;
  return scaleReplicaSet(uid, newScale, specReplicas(uid) < newScale ? "up" : "down");
}

api::Result<bool> DeploymentSync::scaleReplicaSet(const std::string& uid, int32_t newScale, const std::string& op) {
  int32_t oldScale = specReplicas(uid);
  bool sizeNeedsUpdate = oldScale != newScale;
  std::string desired = std::to_string(replicas());
  std::string max = std::to_string(replicas() + maxSurge());
  bool annotationsNeedUpdate =
      annotation(rs(uid), kDesiredReplicas) != desired || annotation(rs(uid), kMaxReplicas) != max;
  if (!sizeNeedsUpdate && !annotationsNeedUpdate) return false;
  json copy = rs(uid);
  copy["spec"]["replicas"] = newScale;
  setAnnotation(copy, kDesiredReplicas, desired);
  setAnnotation(copy, kMaxReplicas, max);
  auto r = c_.client_->update(kReplicaSets, ns_, copy);
  if (!r.ok()) return r.status();
  rs(uid) = *r;
  if (sizeNeedsUpdate)
    record("Normal", "ScalingReplicaSet",
           "Scaled " + op + " replica set " + rsName(uid) + " to " + std::to_string(newScale) + " from " +
               std::to_string(oldScale));
  return sizeNeedsUpdate;
}

api::Result<bool> DeploymentSync::reconcileNewReplicaSet(const Uids& allRSs, const std::string& newRS) {
  if (specReplicas(newRS) == replicas()) return false;
  if (specReplicas(newRS) > replicas()) return scaleAndRecordEvent(newRS, replicas());
  return scaleAndRecordEvent(newRS, newRSNewReplicas(allRSs, specReplicas(newRS)));
}

api::Result<bool> DeploymentSync::reconcileOldReplicaSets(const Uids& allRSs, Uids oldRSs, const std::string& newRS) {
  int32_t oldPods = sumSpec(oldRSs);
  if (oldPods == 0) return false;
  int32_t allPods = sumSpec(allRSs);
  int32_t minAvailable = replicas() - maxUnavailable();
  int32_t newUnavailable = specReplicas(newRS) - statusCount(newRS, "availableReplicas");
  int32_t maxScaledDown = allPods - minAvailable - newUnavailable;
  if (maxScaledDown <= 0) return false;
  // Unhealthy old pods first: they do not count towards availability anyway.
  auto cleaned = cleanupUnhealthyReplicas(oldRSs, maxScaledDown);
  if (!cleaned.ok()) return cleaned.status();
  auto scaledDown = scaleDownOldForRollingUpdate(with(oldRSs, newRS), oldRSs);
  if (!scaledDown.ok()) return scaledDown.status();
  return *cleaned + *scaledDown > 0;
}

api::Result<int32_t> DeploymentSync::cleanupUnhealthyReplicas(Uids oldRSs, int32_t maxCleanup) {
  sortByCreation(oldRSs);
  int32_t total = 0;
  for (const auto& u : oldRSs) {
    if (total >= maxCleanup) break;
    int32_t spec = specReplicas(u);
    int32_t available = statusCount(u, "availableReplicas");
    if (spec == 0 || spec == available) continue;
    int32_t down = std::min(maxCleanup - total, spec - available);
    auto r = scaleAndRecordEvent(u, spec - down);
    if (!r.ok()) return r.status();
    total += down;
  }
  return total;
}

api::Result<int32_t> DeploymentSync::scaleDownOldForRollingUpdate(const Uids& allRSs, Uids oldRSs) {
  int32_t minAvailable = replicas() - maxUnavailable();
  int32_t available = sumStatus(allRSs, "availableReplicas");
  if (available <= minAvailable) return 0;
  sortByCreation(oldRSs);
  int32_t total = 0;
  int32_t target = available - minAvailable;
  for (const auto& u : oldRSs) {
    if (total >= target) break;
    if (specReplicas(u) == 0) continue;
    int32_t down = std::min(specReplicas(u), target - total);
    auto r = scaleAndRecordEvent(u, specReplicas(u) - down);
    if (!r.ok()) return r.status();
    total += down;
  }
  return total;
}

Status DeploymentSync::rolloutRolling() {
  auto all = getAllReplicaSetsAndSyncRevision(true);
  if (!all.ok()) return all.status();
  auto [newRS, oldRSs] = *all;
  Uids allRSs = with(oldRSs, newRS);
  auto up = reconcileNewReplicaSet(allRSs, newRS);
  if (!up.ok()) return up.status();
  if (*up) return syncRolloutStatus(allRSs, newRS);
  auto down = reconcileOldReplicaSets(allRSs, filterActive(oldRSs), newRS);
  if (!down.ok()) return down.status();
  if (*down) return syncRolloutStatus(allRSs, newRS);
  if (deploymentComplete(field(d_, "status")))
    if (Status s = cleanupDeployment(oldRSs); !s.isOk()) return s;
  return syncRolloutStatus(allRSs, newRS);
}

Status DeploymentSync::rolloutRecreate() {
  auto all = getAllReplicaSetsAndSyncRevision(false);
  if (!all.ok()) return all.status();
  auto [newRS, oldRSs] = *all;
  Uids allRSs = with(oldRSs, newRS);
  bool scaledDown = false;
  for (const auto& u : filterActive(oldRSs)) {
    auto r = scaleAndRecordEvent(u, 0);
    if (!r.ok()) return r.status();
    scaledDown = scaledDown || *r;
  }
  if (scaledDown) return syncRolloutStatus(allRSs, newRS);
  // oldPodsRunning: the new pods wait until no old pod is left (but failed/succeeded ones).
  bool oldRunning = sumStatus(oldRSs, "replicas") > 0;
  for (const auto& [uid, pods] : podMap_) {
    if (oldRunning) break;
    if (!newRS.empty() && uid == newRS) continue;
    for (const auto& pod : pods) {
      std::string phase = strField(*pod, "status", "phase");
      if (phase == "Failed" || phase == "Succeeded") continue;
      oldRunning = true;
      break;
    }
  }
  if (oldRunning) return syncRolloutStatus(allRSs, newRS);
  if (newRS.empty()) {
    auto again = getAllReplicaSetsAndSyncRevision(true);
    if (!again.ok()) return again.status();
    newRS = again->first;
    oldRSs = again->second;
    allRSs = with(oldRSs, newRS);
  }
  if (auto r = scaleAndRecordEvent(newRS, replicas()); !r.ok()) return r.status();
  if (deploymentComplete(field(d_, "status")))
    if (Status s = cleanupDeployment(oldRSs); !s.isOk()) return s;
  return syncRolloutStatus(allRSs, newRS);
}

// cleanupDeployment: keep revisionHistoryLimit old RSs, deleting the lowest revisions that
// are fully scaled down and observed.
Status DeploymentSync::cleanupDeployment(const Uids& oldRSs) {
  const json& limitV = field(d_, "spec", "revisionHistoryLimit");
  if (!limitV.is_number_integer()) return {};
  Uids cleanable;
  for (const auto& u : oldRSs)
    if (!isBeingDeleted(rs(u))) cleanable.push_back(u);
  int64_t diff = static_cast<int64_t>(cleanable.size()) - limitV.get<int64_t>();
  if (diff <= 0) return {};
  std::stable_sort(cleanable.begin(), cleanable.end(), [&](const std::string& a, const std::string& b) {
    if (revision(a) == revision(b)) {
      if (created(a) != created(b)) return created(a) < created(b);
      return rsName(a) < rsName(b);
    }
    return revision(a) < revision(b);
  });
  for (int64_t i = 0; i < diff; ++i) {
    const std::string& u = cleanable[i];
    if (statusCount(u, "replicas") != 0 || specReplicas(u) != 0 ||
        intField(rs(u), "metadata", "generation") > intField(rs(u), "status", "observedGeneration") ||
        isBeingDeleted(rs(u)))
      continue;
    auto r = c_.client_->remove(kReplicaSets, ns_, rsName(u));
    if (!r.ok() && r.status().code() != 404) return r.status();
  }
  return {};
}

json DeploymentSync::calculateStatus(const Uids& allRSs, const std::string& newRS) {
  int32_t available = sumStatus(allRSs, "availableReplicas");
  int32_t total = sumSpec(allRSs);
  int32_t unavailable = std::max(0, total - available);
  json s = json::object();
  s["observedGeneration"] = intField(d_, "metadata", "generation");
  s["replicas"] = sumStatus(allRSs, "replicas");
  s["updatedReplicas"] = newRS.empty() ? 0 : statusCount(newRS, "replicas");
  s["readyReplicas"] = sumStatus(allRSs, "readyReplicas");
  s["availableReplicas"] = available;
  s["unavailableReplicas"] = unavailable;
  if (const json& cc = field(d_, "status", "collisionCount"); cc.is_number_integer()) s["collisionCount"] = cc;
  s["conditions"] = field(d_, "status", "conditions").is_array() ? field(d_, "status", "conditions") : json::array();
  if (available >= replicas() - maxUnavailable())
    setCondition(s, newCondition(kAvailable, "True", "MinimumReplicasAvailable", "Deployment has minimum availability."));
  else
    setCondition(s, newCondition(kAvailable, "False", "MinimumReplicasUnavailable",
                                 "Deployment does not have minimum availability."));
  return canonicalStatus(s);
}

Status DeploymentSync::syncDeploymentStatus(const Uids& allRSs, const std::string& newRS) {
  json s = calculateStatus(allRSs, newRS);
  if (canonicalStatus(field(d_, "status")) == s) return {};
  d_["status"] = s;
  return updateDeploymentStatus();
}

bool DeploymentSync::deploymentComplete(const json& s) const {
  auto get = [&](const char* f) {
    const json& v = field(s, f);
    return v.is_number_integer() ? v.get<int64_t>() : 0;
  };
  return get("updatedReplicas") == replicas() && get("replicas") == replicas() &&
         get("availableReplicas") == replicas() &&
         get("observedGeneration") >= intField(d_, "metadata", "generation");
}

bool DeploymentSync::deploymentProgressing(const json& s) const {
  const json& old = field(d_, "status");
  auto get = [](const json& st, const char* f) {
    const json& v = field(st, f);
    return v.is_number_integer() ? v.get<int64_t>() : 0;
  };
  int64_t oldOld = get(old, "replicas") - get(old, "updatedReplicas");
  int64_t newOld = get(s, "replicas") - get(s, "updatedReplicas");
  return get(s, "updatedReplicas") > get(old, "updatedReplicas") || newOld < oldOld ||
         get(s, "readyReplicas") > get(old, "readyReplicas") || get(s, "availableReplicas") > get(old, "availableReplicas");
}

bool DeploymentSync::deploymentTimedOut(const json& s) const {
  if (!hasProgressDeadline()) return false;
  const json* cond = findCondition(s, kProgressing);
  if (!cond) return false;
  std::string reason = cond->value("reason", "");
  if (reason == kNewRSAvailable) return false;
  if (reason == kTimedOut) return true;
  Clock::time_point from = timeField(field(*cond, "lastUpdateTime"));
  return from + std::chrono::seconds(intField(d_, "spec", "progressDeadlineSeconds")) < now();
}

Status DeploymentSync::syncRolloutStatus(const Uids& allRSs, const std::string& newRS) {
  json s = calculateStatus(allRSs, newRS);
  if (!hasProgressDeadline()) removeCondition(s, kProgressing);
  const json* current = findCondition(field(d_, "status"), kProgressing);
  bool complete = field(s, "replicas") == field(s, "updatedReplicas") && current &&
                  current->value("reason", "") == kNewRSAvailable;
  if (hasProgressDeadline() && !complete) {
    std::string dname = strField(d_, "metadata", "name");
    if (deploymentComplete(s)) {
      std::string msg = newRS.empty() ? "Deployment \"" + dname + "\" has successfully progressed."
                                      : "ReplicaSet \"" + rsName(newRS) + "\" has successfully progressed.";
      setCondition(s, newCondition(kProgressing, "True", kNewRSAvailable, msg));
    } else if (deploymentProgressing(s)) {
      std::string msg = newRS.empty() ? "Deployment \"" + dname + "\" is progressing."
                                      : "ReplicaSet \"" + rsName(newRS) + "\" is progressing.";
      json cond = newCondition(kProgressing, "True", "ReplicaSetUpdated", msg);
      // Progress refreshes lastUpdateTime (the deadline's origin) but not the transition.
      if (current) {
        if (current->value("status", "") == "True") cond["lastTransitionTime"] = (*current)["lastTransitionTime"];
        removeCondition(s, kProgressing);
      }
      setCondition(s, cond);
    } else if (deploymentTimedOut(s)) {
      std::string msg = newRS.empty() ? "Deployment \"" + dname + "\" has timed out progressing."
                                      : "ReplicaSet \"" + rsName(newRS) + "\" has timed out progressing.";
      setCondition(s, newCondition(kProgressing, "False", kTimedOut, msg));
    }
  }
  // The new RS's ReplicaFailure (else an old one's) surfaces on the deployment.
  std::optional<json> failure;
  Uids order = with({}, newRS);
  for (const auto& u : allRSs)
    if (u != newRS) order.push_back(u);
  for (const auto& u : order) {
    if (failure || u.empty()) break;
    const json& conds = field(rs(u), "status", "conditions");
    if (!conds.is_array()) continue;
    for (const auto& c : conds)
      if (c.is_object() && c.value("type", "") == "ReplicaFailure") {
        failure = json{{"type", kReplicaFailure}, {"status", c.value("status", "")},
                       {"lastUpdateTime", c.value("lastTransitionTime", "")},
                       {"lastTransitionTime", c.value("lastTransitionTime", "")},
                       {"reason", c.value("reason", "")}, {"message", c.value("message", "")}};
        break;
      }
  }
  if (failure) setCondition(s, *failure);
  else removeCondition(s, kReplicaFailure);
  s = canonicalStatus(s);
  if (canonicalStatus(field(d_, "status")) == s) {
    requeueStuckDeployment(s);
    return {};
  }
  d_["status"] = s;
  return updateDeploymentStatus();
}

// A deployment waiting on its deadline gets looked at again when the deadline passes.
void DeploymentSync::requeueStuckDeployment(const json& newStatus) {
  const json* cond = findCondition(field(d_, "status"), kProgressing);
  if (!hasProgressDeadline() || !cond) return;
  if (deploymentComplete(newStatus) || cond->value("reason", "") == kTimedOut) return;
  Clock::time_point from = timeField(field(*cond, "lastUpdateTime"));
  auto after = from + std::chrono::seconds(intField(d_, "spec", "progressDeadlineSeconds")) - now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(after);
  // kube requeues rate-limited under a second; a short fixed delay avoids a hot loop when
  // the runner forgets the key's backoff after each successful sync.
  c_.queue().addAfter(key_, std::max(ms, std::chrono::milliseconds(100)) + std::chrono::milliseconds(50));
}

}  // namespace

namespace deployment {

api::Result<int32_t> scaledValue(const json& v, int32_t total, bool roundUp) {
  if (v.is_null()) return 0;
  if (v.is_number_integer()) return v.get<int32_t>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      auto n = parseInt(s.substr(0, s.size() - 1));
      if (!n) return Status::badRequest("invalid value for IntOrString: invalid value \"" + s + "\": " + s);
      double scaled = static_cast<double>(*n) * static_cast<double>(total) / 100.0;
      return static_cast<int32_t>(roundUp ? std::ceil(scaled) : std::floor(scaled));
    }
    return Status::badRequest("invalid value for IntOrString: invalid type: string is not a percentage");
  }
  return Status::badRequest("invalid value for IntOrString: invalid type: neither int nor percentage");
}

api::Result<std::pair<int32_t, int32_t>> resolveFenceposts(const json& maxSurge, const json& maxUnavailable,
                                                           int32_t desired) {
  auto surge = scaledValue(maxSurge, desired, true);
  if (!surge.ok()) return surge.status();
  auto unavailable = scaledValue(maxUnavailable, desired, false);
  if (!unavailable.ok()) return unavailable.status();
  if (*surge == 0 && *unavailable == 0) return std::pair<int32_t, int32_t>{0, 1};
  return std::pair<int32_t, int32_t>{*surge, *unavailable};
}

std::string podTemplateHash(const json& podTemplate, std::optional<int32_t> collisionCount) {
  uint32_t h = 2166136261u;
  auto feed = [&](const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 16777619u;
    }
  };
  std::string text = normalized(podTemplate).dump();
  feed(reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (collisionCount) {
    // Eight bytes, the low four the count little-endian, as kube writes it.
    unsigned char bytes[8] = {};
    uint32_t c = static_cast<uint32_t>(*collisionCount);
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>(c >> (8 * i));
    feed(bytes, sizeof bytes);
  }
  return safeEncode(std::to_string(h));
}

bool equalIgnoreHash(const json& a, const json& b) {
  json x = a, y = b;
  for (json* t : {&x, &y})
    if (t->is_object() && (*t)["metadata"].is_object() && (*t)["metadata"]["labels"].is_object())
      (*t)["metadata"]["labels"].erase(kHashLabel);
  return normalized(x) == normalized(y);
}

}  // namespace deployment

std::unique_ptr<Controller> newDeploymentController() { return std::make_unique<DeploymentController>(); }

}  // namespace orrery::controllers
