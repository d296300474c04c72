// The StatefulSet controller, as pkg/controller/statefulset in kube-controller-manager 1.32
// (stateful_set_control.go without the alpha MaxUnavailableStatefulSet, stateful_pod_control.go,
// pkg/controller/history).

#include "engine/controllers/statefulset.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kClaims{"", "v1", "persistentvolumeclaims"};
const api::GroupVersionResource kStatefulSets{"apps", "v1", "statefulsets"};
const api::GroupVersionResource kRevisions{"apps", "v1", "controllerrevisions"};

constexpr const char* kRevisionLabel = "controller-revision-hash";
constexpr const char* kPodNameLabel = "statefulset.kubernetes.io/pod-name";
constexpr const char* kPodIndexLabel = "apps.kubernetes.io/pod-index";

std::string nameOf(const json& o) { return strField(o, "metadata", "name"); }
std::string phase(const json& pod) { return strField(pod, "status", "phase"); }

bool runningAndReady(const json& pod) { return phase(pod) == "Running" && isPodReady(pod); }
bool runningAndAvailable(const json& pod, int64_t minReadySeconds, Clock::time_point now) {
  if (!runningAndReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  Clock::time_point t{};
  api::parseTime(podCondition(pod, "Ready")->value("lastTransitionTime", ""), &t);
  return t != Clock::time_point{} && t + std::chrono::seconds(minReadySeconds) < now;
}
bool healthy(const json& pod) { return runningAndReady(pod) && !isBeingDeleted(pod); }
bool created(const json& pod) { return !phase(pod).empty(); }
bool failedOrSucceeded(const json& pod) { return phase(pod) == "Failed" || phase(pod) == "Succeeded"; }

// "<parent>-<ordinal>": the ordinal, or -1 when the name is not a member's.
int ordinalOf(const json& pod, const std::string& parent) {
  std::string n = nameOf(pod);
  if (n.size() <= parent.size() + 1 || n.compare(0, parent.size() + 1, parent + "-") != 0) return -1;
  std::string digits = n.substr(parent.size() + 1);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoi(digits);
}


// history.HashControllerRevision: FNV-32a over the data, then the collision count's digits.
std::string hashRevision(const json& data, int32_t collisionCount) {
  uint32_t h = 2166136261u;
  auto feed = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  feed(data.dump());
  if (collisionCount != 0) feed(std::to_string(collisionCount));
  return safeEncode(std::to_string(h));
}

class StatefulSetController : public Controller {
 public:
  std::string name() const override { return "statefulset"; }
  int workers() const override { return 5; }  // --concurrent-statefulset-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    setInformer_ = &context.informers->informer(kStatefulSets);
    podInformer_ = &context.informers->informer(kPods);
    revInformer_ = &context.informers->informer(kRevisions);
    auto enqueue = [this](const client::ObjectPtr& s) { queue().add(client::objectKey(*s)); };
    setInformer_->addHandler({enqueue, [enqueue](const client::ObjectPtr&, const client::ObjectPtr& s) { enqueue(s); }, enqueue});
    podInformer_->addHandler({
        [this](const client::ObjectPtr& p) { podChanged(*p); },
        [this](const client::ObjectPtr& o, const client::ObjectPtr& p) {
          if (controllerRefOf(*o) && (!controllerRefOf(*p) || *controllerRefOf(*o) != *controllerRefOf(*p))) podChanged(*o);
          podChanged(*p);
        },
        [this](const client::ObjectPtr& p) { podChanged(*p); },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    return syncSet(key);
  }

 private:
  Clock::time_point now() const { return context_->now(); }

  void podChanged(const json& pod) {
    std::string ns = strField(pod, "metadata", "namespace");
    if (const json* ref = controllerRefOf(pod)) {
      if (ref->value("kind", "") != "StatefulSet") return;
      auto set = setInformer_->get(client::objectKey(ns, ref->value("name", "")));
      if (set && strField(*set, "metadata", "uid") == ref->value("uid", "")) queue().add(client::objectKey(*set));
      return;
    }
    // An orphan: a matching set may adopt it.
    const json& labels = field(pod, "metadata", "labels");
    if (!labels.is_object() || labels.empty()) return;
    for (const auto& set : setInformer_->byIndex("namespace", ns)) {
      auto sel = api::LabelSelector::fromJson(field(*set, "spec", "selector"));
      if (sel.ok() && !sel->empty() && sel->matches(labels)) queue().add(client::objectKey(*set));
    }
  }

  void record(const json& set, const char* type, const char* reason, const std::string& message) {
    if (events) events->record(set, type, reason, message);
  }

  json controllerRef(const json& set) const {
    return {{"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"name", nameOf(set)},
            {"uid", strField(set, "metadata", "uid")}, {"controller", true}, {"blockOwnerDeletion", true}};
  }

  // The pods this set owns: adopt matching members, release owned ones that stopped matching.
  api::Result<std::vector<json>> claimPods(const json& set, const api::LabelSelector& selector) {
    std::vector<json> out;
    std::string uid = strField(set, "metadata", "uid");
    std::string ns = strField(set, "metadata", "namespace");
    for (const auto& ptr : podInformer_->byIndex("namespace", ns)) {
      const json& pod = *ptr;
      bool matches = selector.matches(field(pod, "metadata", "labels")) && ordinalOf(pod, nameOf(set)) >= 0;
      if (const json* ref = controllerRefOf(pod)) {
        if (ref->value("uid", "") != uid) continue;
        if (matches) {
          out.push_back(pod);
          continue;
        }
        if (isBeingDeleted(set)) continue;
        json patch = {{"metadata", {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", uid}}})},
                                    {"uid", strField(pod, "metadata", "uid")}}}};
        auto r = client_->patch(kPods, ns, nameOf(pod), client::PatchType::kStrategicMerge, patch.dump());
        if (!r.ok() && r.status().code() != 404 && r.status().code() != 422) return r.status();
        continue;
      }
      if (!matches || isBeingDeleted(set) || isBeingDeleted(pod)) continue;
      json patch = {{"metadata", {{"ownerReferences", json::array({controllerRef(set)})}, {"uid", strField(pod, "metadata", "uid")}}}};
      auto r = client_->patch(kPods, ns, nameOf(pod), client::PatchType::kStrategicMerge, patch.dump());
      if (r.ok()) out.push_back(*r);
      else if (r.status().code() != 404) return r.status();
    }
    return out;
  }

  // The revision's data: the template as a strategic-merge patch that replaces it.
  static json revisionData(const json& set) {
    json tmpl = field(set, "spec", "template");
    if (!tmpl.is_object()) tmpl = json::object();
    tmpl["$patch"] = "replace";
    return {{"spec", {{"template", tmpl}}}};
  }
  static json templateOf(const json& revision) {
    json tmpl = field(field(revision, "data"), "spec").is_object() ? revision["data"]["spec"].value("template", json::object())
                                                                    : json::object();
    tmpl.erase("$patch");
    return tmpl;
  }

  struct Revisions {
    json current, update;
    int32_t collisionCount = 0;
  };

  api::Result<Revisions> syncRevisions(const json& set, std::vector<json>& revisions) {
    std::sort(revisions.begin(), revisions.end(), [](const json& a, const json& b) {
      if (a.value("revision", int64_t{0}) != b.value("revision", int64_t{0}))
        return a.value("revision", int64_t{0}) < b.value("revision", int64_t{0});
      return nameOf(a) < nameOf(b);
    });
    Revisions out;
    out.collisionCount = static_cast<int32_t>(intField(set, "status", "collisionCount"));
    int64_t next = revisions.empty() ? 1 : revisions.back().value("revision", int64_t{0}) + 1;
    json data = revisionData(set);
    const json* equal = nullptr;
    for (const auto& r : revisions)
      if (field(r, "data") == data) equal = &r;
    std::string ns = strField(set, "metadata", "namespace");
    if (equal && equal == &revisions.back()) {
      out.update = *equal;
    } else if (equal) {
      // Back to an earlier template (rollback): that revision becomes the newest.
      json bumped = *equal;
      bumped["revision"] = next;
      auto r = client_->update(kRevisions, ns, bumped);
      if (!r.ok()) return r.status();
      out.update = *r;
    } else {
      json labels = field(field(field(set, "spec", "template"), "metadata"), "labels");
      for (;;) {
        std::string hash = hashRevision(data, out.collisionCount);
        json rev = {{"apiVersion", "apps/v1"},
                    {"kind", "ControllerRevision"},
                    {"metadata", {{"name", nameOf(set) + "-" + hash}, {"namespace", ns},
                                  {"ownerReferences", json::array({controllerRef(set)})}}},
                    {"data", data},
                    {"revision", next}};
        if (labels.is_object() && !labels.empty()) rev["metadata"]["labels"] = labels;
        rev["metadata"]["labels"][kRevisionLabel] = hash;
        auto r = client_->create(kRevisions, ns, rev);
        if (r.ok()) {
          out.update = *r;
          break;
        }
        if (r.status().code() != 409) return r.status();
        auto existing = client_->get(kRevisions, ns, nameOf(rev));
        if (!existing.ok()) return existing.status();
        if (field(*existing, "data") == data) {
          out.update = *existing;
          break;
        }
        out.collisionCount++;
      }
    }
    std::string currentName = strField(set, "status", "currentRevision");
    for (const auto& r : revisions)
      if (nameOf(r) == currentName) out.current = r;
    if (out.current.is_null()) out.current = out.update;
    return out;
  }

  json newPod(const json& set, const json& tmpl, const std::string& revisionName, int ordinal) {
    std::string podName = nameOf(set) + "-" + std::to_string(ordinal);
    json meta = {{"name", podName}, {"namespace", strField(set, "metadata", "namespace")},
                 {"ownerReferences", json::array({controllerRef(set)})}};
    const json& tmeta = field(tmpl, "metadata");
    for (const char* f : {"labels", "annotations", "finalizers"})
      if (const json& v = field(tmeta, f); v.is_object() || (v.is_array() && !v.empty())) meta[f] = v;
    meta["labels"][kPodNameLabel] = podName;
    meta["labels"][kPodIndexLabel] = std::to_string(ordinal);
    meta["labels"][kRevisionLabel] = revisionName;
    json spec = field(tmpl, "spec").is_object() ? tmpl["spec"] : json::object();
    spec["hostname"] = podName;
    if (std::string svc = strField(set, "spec", "serviceName"); !svc.empty()) spec["subdomain"] = svc;
    // Each claim template becomes this pod's own claim.
    const json& claims = field(set, "spec", "volumeClaimTemplates");
    if (claims.is_array() && !claims.empty()) {
      json volumes = json::array();
      std::set<std::string> claimNames;
      for (const auto& c : claims) {
        std::string claimName = strField(c, "metadata", "name");
        claimNames.insert(claimName);
        volumes.push_back({{"name", claimName},
                           {"persistentVolumeClaim", {{"claimName", claimName + "-" + podName}}}});
      }
      if (spec.contains("volumes") && spec["volumes"].is_array())
        for (const auto& v : spec["volumes"])
          if (!claimNames.count(v.value("name", ""))) volumes.push_back(v);
      spec["volumes"] = volumes;
    }
    return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec}};
  }

  Status createClaims(const json& set, const json& pod) {
    const json& claims = field(set, "spec", "volumeClaimTemplates");
    if (!claims.is_array()) return {};
    std::string ns = strField(set, "metadata", "namespace");
    for (const auto& c : claims) {
      std::string claimName = strField(c, "metadata", "name") + "-" + nameOf(pod);
      auto existing = client_->get(kClaims, ns, claimName);
      if (existing.ok()) continue;
      if (existing.status().code() != 404) return existing.status();
      json labels = field(c, "metadata", "labels").is_object() ? c["metadata"]["labels"] : json::object();
      const json& ml = field(field(set, "spec", "selector"), "matchLabels");
      if (ml.is_object())
        for (const auto& [k, v] : ml.items()) labels[k] = v;
      json claim = {{"apiVersion", "v1"}, {"kind", "PersistentVolumeClaim"},
                    {"metadata", {{"name", claimName}, {"namespace", ns}}}, {"spec", field(c, "spec")}};
      if (!labels.empty()) claim["metadata"]["labels"] = labels;
      auto r = client_->create(kClaims, ns, claim);
      if (!r.ok() && r.status().code() != 409) {
        record(set, "Warning", "FailedCreate", "create Claim " + claimName + " for Pod " + nameOf(pod) +
                                                   " in StatefulSet " + nameOf(set) + " failed error: " + r.status().message());
        return r.status();
      }
      if (r.ok())
        record(set, "Normal", "SuccessfulCreate",
               "create Claim " + claimName + " Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " success");
    }
    return {};
  }

  Status createPod(const json& set, const json& pod) {
    if (Status s = createClaims(set, pod); !s.isOk()) return s;
    auto r = client_->create(kPods, strField(set, "metadata", "namespace"), pod);
    if (!r.ok() && r.status().code() != 409) {
      record(set, "Warning", "FailedCreate",
             "create Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " failed error: " + r.status().message());
      return r.status();
    }
    if (r.ok()) record(set, "Normal", "SuccessfulCreate", "create Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " successful");
    return {};
  }

  Status deletePod(const json& set, const json& pod) {
    auto r = client_->remove(kPods, strField(set, "metadata", "namespace"), nameOf(pod));
    if (!r.ok() && r.status().code() != 404) {
      record(set, "Warning", "FailedDelete",
             "delete Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " failed error: " + r.status().message());
      return r.status();
    }
    record(set, "Normal", "SuccessfulDelete", "delete Pod " + nameOf(pod) + " in StatefulSet " + nameOf(set) + " successful");
    return {};
  }

  // updateStatefulSet (the ordered, one-at-a-time version): returns the status to write.
  api::Result<json> updateSet(const json& set, const Revisions& revs, std::vector<json> pods) {
    const std::string currentName = nameOf(revs.current), updateName = nameOf(revs.update);
    json currentTmpl = templateOf(revs.current), updateTmpl = templateOf(revs.update);
    int replicaCount = static_cast<int>(intField(set, "spec", "replicas", 1));
    int start = 0;
    if (const json& o = field(field(set, "spec", "ordinals"), "start"); o.is_number_integer()) start = o.get<int>();
    int64_t minReady = intField(set, "spec", "minReadySeconds");
    bool monotonic = strField(set, "spec", "podManagementPolicy") != "Parallel";
    const json& strategy = field(set, "spec", "updateStrategy");
    bool rolling = !field(strategy, "type").is_string() || field(strategy, "type") == "RollingUpdate";
    int partition = static_cast<int>(intField(strategy, "rollingUpdate", "partition"));
    Clock::time_point t = now();

    int64_t replicas = 0, readyN = 0, availableN = 0, currentN = 0, updatedN = 0;
    std::vector<std::optional<json>> slots(replicaCount);
    std::vector<json> condemned;
    for (auto& pod : pods) {
      replicas++;
      if (runningAndReady(pod)) readyN++;
      if (runningAndAvailable(pod, minReady, t)) availableN++;
      const json& revLabel = field(field(pod, "metadata", "labels"), kRevisionLabel);
      std::string rev = revLabel.is_string() ? revLabel.get<std::string>() : "";
      if (created(pod) && !isBeingDeleted(pod)) {
        if (rev == currentName) currentN++;
        if (rev == updateName) updatedN++;
      }
      int ord = ordinalOf(pod, nameOf(set));
      if (ord >= start && ord < start + replicaCount) slots[ord - start] = pod;
      else if (ord >= 0) condemned.push_back(pod);
    }
    auto podRevision = [](const json& pod) {
      const json& v = field(field(pod, "metadata", "labels"), kRevisionLabel);
      return v.is_string() ? v.get<std::string>() : std::string();
    };
    // Missing ordinals get a pod at the current revision below the partition, else the update one.
    auto versioned = [&](int i) {
      int ord = i + start;
      bool useCurrent = rolling && ord < partition;
      return useCurrent ? newPod(set, currentTmpl, currentName, ord) : newPod(set, updateTmpl, updateName, ord);
    };
    for (int i = 0; i < replicaCount; ++i)
      if (!slots[i]) slots[i] = versioned(i);
    std::sort(condemned.begin(), condemned.end(),
              [&](const json& a, const json& b) { return ordinalOf(a, nameOf(set)) > ordinalOf(b, nameOf(set)); });

    json status = {{"observedGeneration", intField(set, "metadata", "generation")},
                   {"currentRevision", currentName},
                   {"updateRevision", updateName},
                   {"collisionCount", revs.collisionCount}};
    auto finish = [&]() {
      status["replicas"] = replicas;
      status["readyReplicas"] = readyN;
      status["availableReplicas"] = availableN;
      status["currentReplicas"] = currentN;
      status["updatedReplicas"] = updatedN;
      return status;
    };
    if (isBeingDeleted(set)) return finish();

    // The first unhealthy pod, lowest ordinal first, then the condemned.
    std::string firstUnhealthy;
    for (const auto& s : slots)
      if (firstUnhealthy.empty() && created(*s) && !healthy(*s)) firstUnhealthy = nameOf(*s);
    for (const auto& c : condemned)
      if (firstUnhealthy.empty() && !healthy(c)) firstUnhealthy = nameOf(c);

    for (int i = 0; i < replicaCount; ++i) {
      json& pod = *slots[i];
      if (created(pod) && failedOrSucceeded(pod)) {
        // A failed member is replaced under the same name.
        if (Status s = deletePod(set, pod); !s.isOk()) return s;
        std::string rev = podRevision(pod);
        if (rev == currentName) currentN--;
        if (rev == updateName) updatedN--;
        replicas--;
        pod = versioned(i);
      }
      if (!created(pod)) {
        if (Status s = createPod(set, pod); !s.isOk()) return s;
        replicas++;
        if (podRevision(pod) == currentName) currentN++;
        if (podRevision(pod) == updateName) updatedN++;
        if (monotonic) return finish();
        continue;
      }
      if (isBeingDeleted(pod) && monotonic) return finish();
      if (!runningAndReady(pod) && monotonic) return finish();
      if (!runningAndAvailable(pod, minReady, t) && monotonic) return finish();
      // TODO(ctrlapps): identity/storage repair of existing pods (kube updates mismatched labels).
    }
    for (auto& c : condemned) {
      if (isBeingDeleted(c)) {
        if (monotonic) return finish();
        continue;
      }
      if (!runningAndReady(c) && monotonic && nameOf(c) != firstUnhealthy) return finish();
      if (Status s = deletePod(set, c); !s.isOk()) return s;
      if (monotonic) return finish();
    }
    if (!rolling) return finish();  // OnDelete: the user deletes, we recreate at the update revision
    for (int target = replicaCount - 1; target >= std::max(partition, 0); --target) {
      json& pod = *slots[target];
      if (podRevision(pod) != updateName && !isBeingDeleted(pod)) {
        if (Status s = deletePod(set, pod); !s.isOk()) return s;
        if (podRevision(pod) == currentName) currentN--;
        return finish();
      }
      if (!healthy(pod)) return finish();
    }
    return finish();
  }

  Status syncSet(const std::string& key) {
    auto cached = setInformer_->get(key);
    if (!cached) return {};
    json set = *cached;
    std::string ns = strField(set, "metadata", "namespace");
    auto selector = api::LabelSelector::fromJson(field(set, "spec", "selector"));
    if (!selector.ok() || selector->empty()) return {};
    auto pods = claimPods(set, *selector);
    if (!pods.ok()) return pods.status();
    std::vector<json> revisions;
    std::string uid = strField(set, "metadata", "uid");
    for (const auto& r : revInformer_->byIndex("namespace", ns)) {
      const json* ref = controllerRefOf(*r);
      if (ref && ref->value("uid", "") == uid) revisions.push_back(*r);
    }
    // TODO(ctrlapps): adopt orphaned ControllerRevisions matching the selector, as kube does.
    auto revs = syncRevisions(set, revisions);
    if (!revs.ok()) return revs.status();
    auto status = updateSet(set, *revs, *pods);
    if (!status.ok()) return status.status();
    json s = *status;
    // completeRollingUpdate: a finished rollout makes the update revision the current one.
    if (field(field(set, "spec", "updateStrategy"), "type") == "RollingUpdate" && s["updatedReplicas"] == s["replicas"] &&
        s["readyReplicas"] == s["replicas"]) {
      s["currentReplicas"] = s["updatedReplicas"];
      s["currentRevision"] = s["updateRevision"];
    }
    // Serialized as kube does: zero counts omitted but replicas and availableReplicas.
    for (const char* f : {"readyReplicas", "currentReplicas", "updatedReplicas", "observedGeneration"})
      if (s[f] == 0) s.erase(f);
    if (s["currentRevision"] == "") s.erase("currentRevision");
    if (s["updateRevision"] == "") s.erase("updateRevision");
    if (field(set, "status") != s) {
      // UpdateStatefulSetStatus retries a conflict once on a fresh copy (the cache may lag
      // behind this controller's own last write).
      for (int attempt = 0;; ++attempt) {
        set["status"] = s;
        auto r = client_->update(kStatefulSets, ns, set, "status");
        if (r.ok()) break;
        if (r.status().code() != 409 || attempt > 0) return r.status();
        auto fresh = client_->get(kStatefulSets, ns, nameOf(set));
        if (!fresh.ok()) return fresh.status();
        set = std::move(*fresh);
      }
    }
    if (int64_t mr = intField(set, "spec", "minReadySeconds"); mr > 0 && s.value("availableReplicas", 0) != s.value("readyReplicas", 0))
      queue().addAfter(key, std::chrono::seconds(mr));
    return truncateHistory(set, *pods, revisions, *revs);
  }

  // Keeps revisionHistoryLimit revisions beyond those in use (pods', current, update).
  Status truncateHistory(const json& set, const std::vector<json>& pods, std::vector<json> revisions, const Revisions& revs) {
    std::set<std::string> live = {nameOf(revs.current), nameOf(revs.update)};
    for (const auto& p : pods) {
      const json& v = field(field(p, "metadata", "labels"), kRevisionLabel);
      if (v.is_string()) live.insert(v.get<std::string>());
    }
    std::vector<json> history;
    for (const auto& r : revisions)
      if (!live.count(nameOf(r))) history.push_back(r);
    int64_t limit = intField(set, "spec", "revisionHistoryLimit", 10);
    int64_t excess = static_cast<int64_t>(history.size()) - limit;
    for (int64_t i = 0; i < excess; ++i) {
      auto r = client_->remove(kRevisions, strField(set, "metadata", "namespace"), nameOf(history[i]));
      if (!r.ok() && r.status().code() != 404) return r.status();
    }
    return {};
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* setInformer_ = nullptr;
  client::Informer* podInformer_ = nullptr;
  client::Informer* revInformer_ = nullptr;
};

}  // namespace

std::unique_ptr<Controller> newStatefulSetController() { return std::make_unique<StatefulSetController>(); }

}  // namespace orrery::controllers
