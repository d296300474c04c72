// The DaemonSet controller, as pkg/controller/daemon (daemon_controller.go, update.go) in
// kube-controller-manager 1.32.

#include "engine/controllers/daemonset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using Clock = std::chrono::system_clock;
using namespace daemonset;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kDaemonSets{"apps", "v1", "daemonsets"};
const api::GroupVersionResource kRevisions{"apps", "v1", "controllerrevisions"};

constexpr int kBurstReplicas = 250;

std::string nameOf(const json& o) { return strField(o, "metadata", "name"); }

// ---- scheduling predicates -----------------------------------------------------------------

bool requirementMatches(const json& req, const json& labels, const std::string& nodeName, bool isFieldRequirement) {
  std::string key = req.value("key", "");
  std::string op = req.value("operator", "");
  const json& values = field(req, "values");
  bool present;
  std::string value;
  if (isFieldRequirement) {
    if (key != "metadata.name") return false;
    present = true;
    value = nodeName;
  } else {
    present = labels.is_object() && labels.contains(key) && labels[key].is_string();
    if (present) value = labels[key].get<std::string>();
  }
  auto in = [&] {
    if (!values.is_array()) return false;
    for (const auto& v : values)
      if (v.is_string() && v.get<std::string>() == value) return true;
    return false;
  };
  if (op == "In") return present && in();
  if (op == "NotIn") return !present || !in();
  if (op == "Exists") return present;
  if (op == "DoesNotExist") return !present;
  if (op == "Gt" || op == "Lt") {
    if (!present || !values.is_array() || values.size() != 1 || !values[0].is_string()) return false;
    try {
      long long have = std::stoll(value), want = std::stoll(values[0].get<std::string>());
      return op == "Gt" ? have > want : have < want;
    } catch (...) {
      return false;
    }
  }
  return false;
}

bool termMatches(const json& term, const json& node) {
  const json& exprs = field(term, "matchExpressions");
  const json& fields = field(term, "matchFields");
  bool any = false;
  const json& labels = field(node, "metadata", "labels");
  std::string name = nameOf(node);
  if (exprs.is_array())
    for (const auto& r : exprs) {
      any = true;
      if (!requirementMatches(r, labels, name, false)) return false;
    }
  if (fields.is_array())
    for (const auto& r : fields) {
      any = true;
      if (!requirementMatches(r, labels, name, true)) return false;
    }
  return any;  // an empty term selects no node
}

// nodeaffinity.GetRequiredNodeAffinity(pod).Match(node).
bool requiredAffinityMatches(const json& podSpec, const json& node) {
  const json& selector = field(podSpec, "nodeSelector");
  const json& labels = field(node, "metadata", "labels");
  if (selector.is_object())
    for (const auto& [k, v] : selector.items())
      if (!labels.is_object() || !labels.contains(k) || labels[k] != v) return false;
  const json& required = field(field(field(podSpec, "affinity"), "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution");
  if (!required.is_object()) return true;
  const json& terms = field(required, "nodeSelectorTerms");
  if (!terms.is_array()) return false;
  for (const auto& t : terms)
    if (termMatches(t, node)) return true;
  return false;
}

bool tolerates(const json& toleration, const json& taint) {
  std::string effect = toleration.value("effect", "");
  if (!effect.empty() && effect != taint.value("effect", "")) return false;
  std::string key = toleration.value("key", "");
  std::string op = toleration.value("operator", "Equal");
  if (!key.empty() && key != taint.value("key", "")) return false;
  if (op == "Exists") return true;
  if (op.empty() || op == "Equal") return toleration.value("value", "") == taint.value("value", "");
  return false;
}

// v1helper.FindMatchingUntoleratedTaint over the taints whose effect is in `effects`.
bool hasUntoleratedTaint(const json& taints, const json& tolerations, const std::set<std::string>& effects) {
  if (!taints.is_array()) return false;
  for (const auto& taint : taints) {
    if (!effects.count(taint.value("effect", ""))) continue;
    bool ok = false;
    if (tolerations.is_array())
      for (const auto& t : tolerations)
        if (tolerates(t, taint)) {
          ok = true;
          break;
        }
    if (!ok) return true;
  }
  return false;
}

// ---- revisions -----------------------------------------------------------------------------


// controller.ComputeHash: FNV-32a over the template, then the collision count.
std::string computeHash(const json& tmpl, int64_t collisionCount) {
  uint32_t h = 2166136261u;
  auto feed = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  feed(tmpl.dump());
  if (collisionCount != 0) feed(std::to_string(collisionCount));
  return safeEncode(std::to_string(h));
}

// getPatch: what a ControllerRevision stores, a strategic merge patch replacing the template
// (`kubectl rollout undo` applies it as such).
json revisionData(const json& ds) {
  json tmpl = field(field(ds, "spec"), "template");
  if (!tmpl.is_object()) tmpl = json::object();
  tmpl["$patch"] = "replace";
  return {{"spec", {{"template", tmpl}}}};
}

std::optional<int64_t> templateGeneration(const json& ds) {
  const json& annotations = field(ds, "metadata", "annotations");
  if (annotations.is_object() && annotations.contains(kTemplateGenerationAnnotation)) {
    try {
      return std::stoll(annotations[kTemplateGenerationAnnotation].get<std::string>());
    } catch (...) {
      return std::nullopt;
    }
  }
  // TODO(ctrlnet): kube-apiserver keeps the template generation in the annotation above; ours
  // does not set it yet, so metadata.generation (bumped by any spec change) stands in.
  if (int64_t g = intField(ds, "metadata", "generation")) return g;
  return std::nullopt;
}

bool isPodUpdated(const json& pod, const std::string& hash, const std::optional<int64_t>& generation) {
  const json& labels = field(pod, "metadata", "labels");
  if (!labels.is_object()) return false;
  bool templateMatches = generation && labels.value(kTemplateGenerationLabel, "") == std::to_string(*generation);
  bool hashMatches = !hash.empty() && labels.value(kRevisionHashLabel, "") == hash;
  return hashMatches || templateMatches;
}

// GetScaledValueFromIntOrPercent, rounding up.
int scaled(const json& v, int total) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      try {
        int pct = std::stoi(s.substr(0, s.size() - 1));
        return static_cast<int>(std::ceil(pct * static_cast<double>(total) / 100.0));
      } catch (...) {
        return 0;
      }
    }
    try {
      return std::stoi(s);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// podByCreationTimestampAndPhase: scheduled first, then oldest, then by name.
bool olderPod(const client::ObjectPtr& a, const client::ObjectPtr& b) {
  bool sa = !strField(*a, "spec", "nodeName").empty(), sb = !strField(*b, "spec", "nodeName").empty();
  if (sa != sb) return sa;
  auto ta = timeField(field(*a, "metadata", "creationTimestamp")), tb = timeField(field(*b, "metadata", "creationTimestamp"));
  if (ta == tb) return nameOf(*a) < nameOf(*b);
  return ta < tb;
}

class DaemonSetController : public Controller {
 public:
  std::string name() const override { return "daemonset"; }
  int workers() const override { return 2; }  // --concurrent-daemonset-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    sets_ = &context.informers->informer(kDaemonSets);
    pods_ = &context.informers->informer(kPods);
    nodes_ = &context.informers->informer(kNodes);
    revisions_ = &context.informers->informer(kRevisions);
    sets_->addHandler({
        [this](const client::ObjectPtr& ds) { queue().add(client::objectKey(*ds)); },
        [this](const client::ObjectPtr&, const client::ObjectPtr& ds) { queue().add(client::objectKey(*ds)); },
        [this](const client::ObjectPtr& ds) {
          std::string key = client::objectKey(*ds);
          expectations_.remove(key);
          queue().add(key);
        },
    });
    pods_->addHandler({
        [this](const client::ObjectPtr& p) {
          if (auto key = ownerKey(*p)) {
            expectations_.creationObserved(*key);
            queue().add(*key);
          } else if (!isBeingDeleted(*p)) {
            enqueueMatching(*p);
          }
        },
        [this](const client::ObjectPtr& o, const client::ObjectPtr& n) {
          if (strField(*o, "metadata", "resourceVersion") == strField(*n, "metadata", "resourceVersion")) return;
          auto oldKey = ownerKey(*o), newKey = ownerKey(*n);
          if (oldKey && oldKey != newKey) queue().add(*oldKey);
          if (newKey) queue().add(*newKey);
          else if (field(*o, "metadata", "labels") != field(*n, "metadata", "labels") || !oldKey) enqueueMatching(*n);
        },
        [this](const client::ObjectPtr& p) {
          if (auto key = ownerKey(*p)) {
            expectations_.deletionObserved(*key);
            queue().add(*key);
          }
        },
    });
    auto allSets = [this] {
      for (const auto& ds : sets_->list()) queue().add(client::objectKey(*ds));
    };
    nodes_->addHandler({
        [allSets](const client::ObjectPtr&) { allSets(); },
        [allSets](const client::ObjectPtr& o, const client::ObjectPtr& n) {
          // Only what the predicates look at.
          if (field(*o, "metadata", "labels") != field(*n, "metadata", "labels") ||
              field(*o, "spec", "taints") != field(*n, "spec", "taints"))
            allSets();
        },
        [allSets](const client::ObjectPtr&) { allSets(); },
    });
    revisions_->addHandler({
        [this](const client::ObjectPtr& r) {
          if (auto key = ownerKey(*r)) queue().add(*key);
        },
        nullptr,
        [this](const client::ObjectPtr& r) {
          if (auto key = ownerKey(*r)) queue().add(*key);
        },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    return syncDaemonSet(key);
  }

 private:
  // The key of the DaemonSet an object's controllerRef names, if that DaemonSet exists.
  std::optional<std::string> ownerKey(const json& o) {
    auto ref = controllerRef(o);
    if (!ref || ref->kind != "DaemonSet") return std::nullopt;
    std::string key = client::objectKey(strField(o, "metadata", "namespace"), ref->name);
    auto ds = sets_->get(key);
    if (!ds || strField(*ds, "metadata", "uid") != ref->uid) return std::nullopt;
    return key;
  }

  void enqueueMatching(const json& pod) {
    const json& labels = field(pod, "metadata", "labels");
    if (!labels.is_object() || labels.empty()) return;
    for (const auto& ds : sets_->byIndex("namespace", strField(pod, "metadata", "namespace"))) {
      auto sel = api::LabelSelector::fromJson(field(field(*ds, "spec"), "selector"));
      if (sel.ok() && !sel->empty() && sel->matches(labels)) queue().add(client::objectKey(*ds));
    }
  }

  json controllerRefTo(const json& ds) const {
    return {{"apiVersion", "apps/v1"},
            {"kind", "DaemonSet"},
            {"name", nameOf(ds)},
            {"uid", strField(ds, "metadata", "uid")},
            {"controller", true},
            {"blockOwnerDeletion", true}};
  }

  void record(const json& ds, const char* type, const char* reason, const std::string& message) {
    if (events) events->record(ds, type, reason, message);
  }

  // ---- pods per node ------------------------------------------------------------------------

  // getDaemonPods + ClaimPods: the DaemonSet's pods after adopting matching orphans and
  // releasing owned pods that no longer match.
  api::Result<std::vector<client::ObjectPtr>> claimPods(const json& ds, const api::LabelSelector& selector) {
    std::vector<client::ObjectPtr> out;
    std::string uid = strField(ds, "metadata", "uid");
    std::string ns = strField(ds, "metadata", "namespace");
    for (const auto& p : pods_->byIndex("namespace", ns)) {
      bool matches = selector.matches(field(*p, "metadata", "labels"));
      auto ref = controllerRef(*p);
      if (ref) {
        if (ref->uid != uid) continue;
        if (matches) {
          out.push_back(p);
        } else if (!isBeingDeleted(ds)) {
          json patch = {{"metadata", {{"ownerReferences", json::array({{{"$patch", "delete"}, {"uid", uid}}})},
                                      {"uid", strField(*p, "metadata", "uid")}}}};
          auto r = client_->patch(kPods, ns, nameOf(*p), client::PatchType::kStrategicMerge, patch.dump());
          if (!r.ok() && r.status().code() != 404 && r.status().code() != 422) return r.status();
        }
        continue;
      }
      if (!matches || isBeingDeleted(ds) || isBeingDeleted(*p)) continue;
      json patch = {{"metadata", {{"ownerReferences", json::array({controllerRefTo(ds)})},
                                  {"uid", strField(*p, "metadata", "uid")}}}};
      auto r = client_->patch(kPods, ns, nameOf(*p), client::PatchType::kStrategicMerge, patch.dump());
      if (r.ok()) out.push_back(std::make_shared<const json>(std::move(*r)));
      else if (r.status().code() != 404) return r.status();
    }
    return out;
  }

  api::Result<std::map<std::string, std::vector<client::ObjectPtr>>> nodesToDaemonPods(
      const json& ds, const api::LabelSelector& selector) {
    auto claimed = claimPods(ds, selector);
    if (!claimed.ok()) return claimed.status();
    std::map<std::string, std::vector<client::ObjectPtr>> out;
    for (const auto& p : *claimed) {
      std::string phase = strField(*p, "status", "phase");
      // Terminal pods already being deleted are no longer the node's daemon pod.
      if ((phase == "Succeeded" || phase == "Failed") && isBeingDeleted(*p)) continue;
      std::string node = targetNodeName(*p);
      if (node.empty()) continue;
      out[node].push_back(p);
    }
    return out;
  }

  // ---- revisions ----------------------------------------------------------------------------

  struct History {
    json current;
    std::vector<json> old;
    std::string hash;
  };

  api::Result<History> constructHistory(const json& ds) {
    std::string uid = strField(ds, "metadata", "uid");
    std::string ns = strField(ds, "metadata", "namespace");
    json data = revisionData(ds);
    std::vector<json> current;
    History h;
    // TODO(ctrlnet): adopt orphaned ControllerRevisions matching the selector, as kube does.
    for (const auto& r : revisions_->byIndex("namespace", ns)) {
      auto ref = controllerRef(*r);
      if (!ref || ref->uid != uid) continue;
      if (field(*r, "data") == data) current.push_back(*r);
      else h.old.push_back(*r);
    }
    int64_t maxOld = 0;
    for (const auto& o : h.old) maxOld = std::max(maxOld, o.value("revision", int64_t{0}));
    int64_t wanted = maxOld + 1;
    if (current.empty()) {
      auto snap = snapshot(ds, wanted);
      if (!snap.ok()) return snap.status();
      h.current = *snap;
    } else {
      // dedupCurHistories: keep the highest revision.
      std::sort(current.begin(), current.end(), [](const json& a, const json& b) {
        return a.value("revision", int64_t{0}) > b.value("revision", int64_t{0});
      });
      h.current = current.front();
      for (size_t i = 1; i < current.size(); ++i) (void)client_->remove(kRevisions, ns, nameOf(current[i]));
      if (h.current.value("revision", int64_t{0}) < wanted) {
        json bumped = h.current;
        bumped["revision"] = wanted;
        auto r = client_->update(kRevisions, ns, bumped);
        if (!r.ok()) return r.status();
        h.current = *r;
      }
    }
    const json& revLabels = field(h.current, "metadata", "labels");
    if (revLabels.is_object()) h.hash = revLabels.value(kRevisionHashLabel, "");
    if (h.hash.empty()) h.hash = computeHash(field(field(ds, "spec"), "template"), intField(ds, "status", "collisionCount"));
    return h;
  }

  api::Result<json> snapshot(const json& ds, int64_t revision) {
    std::string ns = strField(ds, "metadata", "namespace");
    int64_t collisions = intField(ds, "status", "collisionCount");
    std::string hash = computeHash(field(field(ds, "spec"), "template"), collisions);
    json labels = field(field(field(ds, "spec"), "template"), "metadata").value("labels", json::object());
    labels[kRevisionHashLabel] = hash;
    json meta = {{"name", nameOf(ds) + "-" + hash},
                 {"namespace", ns},
                 {"labels", labels},
                 {"ownerReferences", json::array({controllerRefTo(ds)})}};
    const json& annotations = field(ds, "metadata", "annotations");
    if (annotations.is_object() && !annotations.empty()) meta["annotations"] = annotations;
    json rev = {{"apiVersion", "apps/v1"},
                {"kind", "ControllerRevision"},
                {"metadata", meta},
                {"data", revisionData(ds)},
                {"revision", revision}};
    auto created = client_->create(kRevisions, ns, rev);
    if (created.ok() || created.status().code() != 409) return created;
    auto existing = client_->get(kRevisions, ns, nameOf(rev));
    if (!existing.ok()) return existing.status();
    auto ref = controllerRef(*existing);
    if (field(*existing, "data") == rev["data"] && ref && ref->uid == strField(ds, "metadata", "uid")) return existing;
    // A hash collision with another template: bump status.collisionCount and retry.
    auto fresh = client_->get(kDaemonSets, ns, nameOf(ds));
    if (!fresh.ok()) return fresh.status();
    if (intField(*fresh, "status", "collisionCount") != collisions)
      return Status::conflict("apps", "daemonsets", nameOf(ds), "found a stale collision count, will retry");
    json bumped = *fresh;
    bumped["status"]["collisionCount"] = collisions + 1;
    auto r = client_->update(kDaemonSets, ns, bumped, "status");
    if (!r.ok()) return r.status();
    return created.status();
  }

  Status cleanupHistory(const json& ds, const std::vector<json>& old,
                        const std::map<std::string, std::vector<client::ObjectPtr>>& nodeToPods) {
    int64_t limit = intField(ds, "spec", "revisionHistoryLimit", 10);
    int64_t toKill = static_cast<int64_t>(old.size()) - limit;
    if (toKill <= 0) return {};
    std::set<std::string> live;
    for (const auto& [node, pods] : nodeToPods)
      for (const auto& p : pods) {
        const json& labels = field(*p, "metadata", "labels");
        if (labels.is_object() && labels.contains(kRevisionHashLabel)) live.insert(labels[kRevisionHashLabel].get<std::string>());
      }
    std::vector<json> sorted = old;
    std::sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) {
      return a.value("revision", int64_t{0}) < b.value("revision", int64_t{0});
    });
    for (const auto& r : sorted) {
      if (toKill <= 0) break;
      const json& labels = field(r, "metadata", "labels");
      if (labels.is_object() && live.count(labels.value(kRevisionHashLabel, ""))) continue;
      auto res = client_->remove(kRevisions, strField(ds, "metadata", "namespace"), nameOf(r));
      if (!res.ok() && res.status().code() != 404) return res.status();
      toKill--;
    }
    return {};
  }

  // ---- manage -------------------------------------------------------------------------------

  std::vector<client::ObjectPtr> nodeList() { return nodes_->list(); }

  bool inFailedBackoff(const std::string& key) {
    std::lock_guard lock(backoffMu_);
    auto it = backoff_.find(key);
    return it != backoff_.end() && std::chrono::steady_clock::now() < it->second.until;
  }
  std::chrono::milliseconds failedBackoffNext(const std::string& key) {
    std::lock_guard lock(backoffMu_);
    auto& e = backoff_[key];
    e.delay = e.delay.count() == 0 ? std::chrono::seconds(1) : std::min<std::chrono::milliseconds>(e.delay * 2, std::chrono::minutes(15));
    e.until = std::chrono::steady_clock::now() + e.delay;
    return e.delay;
  }

  void podsShouldBeOnNode(const json& node, const std::map<std::string, std::vector<client::ObjectPtr>>& nodeToPods,
                          const json& ds, const std::string& hash, std::vector<std::string>& needing,
                          std::vector<std::string>& toDelete) {
    auto [shouldRun, shouldContinue] = nodeShouldRunDaemonPod(node, ds);
    std::string nodeName = nameOf(node);
    auto it = nodeToPods.find(nodeName);
    bool exists = it != nodeToPods.end() && !it->second.empty();
    if (shouldRun && !exists) {
      needing.push_back(nodeName);
      return;
    }
    if (shouldContinue) {
      if (!exists) return;
      std::vector<client::ObjectPtr> running;
      for (const auto& p : it->second) {
        if (isBeingDeleted(*p)) continue;
        std::string phase = strField(*p, "status", "phase");
        if (phase == "Failed") {
          // Often a fight with a kubelet rejecting the pod: back off per node.
          std::string bk = client::objectKey(ds) + "/" + nodeName;
          if (inFailedBackoff(bk)) {
            queue().addAfter(client::objectKey(ds), std::chrono::seconds(1));
            continue;
          }
          failedBackoffNext(bk);
          record(ds, "Warning", "FailedDaemonPod",
                 "Found failed daemon pod " + client::objectKey(*p) + " on node " + nodeName + ", will try to kill it");
          toDelete.push_back(nameOf(*p));
        } else if (phase == "Succeeded") {
          toDelete.push_back(nameOf(*p));
        } else {
          running.push_back(p);
        }
      }
      std::sort(running.begin(), running.end(), olderPod);
      if (!allowsSurge(ds)) {
        // Without surge, one pod per node: the oldest stays.
        for (size_t i = 1; i < running.size(); ++i) toDelete.push_back(nameOf(*running[i]));
        return;
      }
      if (running.size() <= 1) {
        if (running.empty() && shouldRun) needing.push_back(nodeName);
        return;
      }
      client::ObjectPtr oldestNew, oldestOld;
      for (const auto& p : running) {
        bool isNew = field(field(*p, "metadata", "labels"), kRevisionHashLabel) == hash;
        client::ObjectPtr& slot = isNew ? oldestNew : oldestOld;
        if (!slot) {
          slot = p;
          continue;
        }
        toDelete.push_back(nameOf(*p));
      }
      if (oldestNew && oldestOld) {
        if (!isPodReady(*oldestOld)) toDelete.push_back(nameOf(*oldestOld));
        else if (isPodAvailable(*oldestNew, minReady(ds), context_->now())) toDelete.push_back(nameOf(*oldestOld));
      }
      return;
    }
    if (exists)
      for (const auto& p : it->second)
        if (!isBeingDeleted(*p)) toDelete.push_back(nameOf(*p));
  }

  static bool allowsSurge(const json& ds) {
    const json& us = field(field(ds, "spec"), "updateStrategy");
    if (us.value("type", "RollingUpdate") != "RollingUpdate") return false;
    const json& s = field(field(us, "rollingUpdate"), "maxSurge");
    // A surge of 0 or 0% allows none.
    return scaled(s, 100) != 0;
  }
  static int minReady(const json& ds) { return static_cast<int>(intField(ds, "spec", "minReadySeconds")); }

  json podTemplate(const json& ds, const std::string& hash) const {
    json tmpl = field(field(ds, "spec"), "template");
    if (!tmpl.is_object()) tmpl = json::object();
    if (!tmpl["spec"].is_object()) tmpl["spec"] = json::object();
    addDaemonTolerations(tmpl["spec"]);
    json& meta = tmpl["metadata"];
    if (!meta.is_object()) meta = json::object();
    if (!meta["labels"].is_object()) meta["labels"] = json::object();
    if (auto g = templateGeneration(ds)) meta["labels"][kTemplateGenerationLabel] = std::to_string(*g);
    if (!hash.empty()) meta["labels"][kRevisionHashLabel] = hash;
    return tmpl;
  }

  // ReplaceDaemonSetPodNodeNameNodeAffinity: the scheduler places the pod on this node only.
  static void pinToNode(json& spec, const std::string& node) {
    json term = {{"matchFields", json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", json::array({node})}}})}};
    json& affinity = spec["affinity"];
    if (!affinity.is_object()) affinity = json::object();
    json& na = affinity["nodeAffinity"];
    if (!na.is_object()) na = json::object();
    json& required = na["requiredDuringSchedulingIgnoredDuringExecution"];
    if (!required.is_object()) required = json::object();
    required["nodeSelectorTerms"] = json::array({term});
  }

  Status createPod(const json& ds, const json& tmpl, const std::string& node) {
    json meta = json::object();
    meta["generateName"] = nameOf(ds) + "-";
    meta["namespace"] = strField(ds, "metadata", "namespace");
    const json& tmeta = field(tmpl, "metadata");
    for (const char* f : {"labels", "annotations", "finalizers"})
      if (const json& v = field(tmeta, f); !v.is_null() && !v.empty()) meta[f] = v;
    meta["ownerReferences"] = json::array({controllerRefTo(ds)});
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", field(tmpl, "spec")}};
    pinToNode(pod["spec"], node);
    auto r = client_->create(kPods, meta["namespace"].get<std::string>(), pod);
    if (!r.ok()) {
      for (const auto& c : r.status().causes)
        if (c.type == "NamespaceTerminating") return Status(200, "NamespaceTerminating", "");
      record(ds, "Warning", "FailedCreate", "Error creating: " + r.status().message());
      return r.status();
    }
    record(ds, "Normal", "SuccessfulCreate", "Created pod: " + nameOf(*r));
    return {};
  }

  // syncNodes: creations in slow-start batches, then deletions, with expectations set first.
  Status syncNodes(const json& ds, std::vector<std::string> toDelete, const std::vector<std::string>& needing,
                   const std::string& hash) {
    std::string key = client::objectKey(ds);
    std::string ns = strField(ds, "metadata", "namespace");
    int createDiff = std::min<int>(static_cast<int>(needing.size()), kBurstReplicas);
    int deleteDiff = std::min<int>(static_cast<int>(toDelete.size()), kBurstReplicas);
    expectations_.expect(key, createDiff, deleteDiff);
    json tmpl = podTemplate(ds, hash);
    Status firstError;
    int pos = 0;
    for (int batch = std::min(createDiff, 1); pos < createDiff; batch = std::min(2 * batch, createDiff - pos)) {
      bool failed = false;
      for (int i = pos; i < pos + batch; ++i) {
        Status st = createPod(ds, tmpl, needing[i]);
        if (st.code() == 200) {  // namespace terminating: no event will come
          expectations_.creationObserved(key);
          continue;
        }
        if (!st.isOk()) {
          expectations_.creationObserved(key);
          if (firstError.isOk()) firstError = st;
          failed = true;
        }
      }
      pos += batch;
      if (failed) {
        // The pods never attempted are not expected either.
        if (createDiff > pos) expectations_.lower(key, createDiff - pos, 0);
        break;
      }
    }
    for (int i = 0; i < deleteDiff; ++i) {
      auto r = client_->remove(kPods, ns, toDelete[i]);
      if (r.ok()) {
        record(ds, "Normal", "SuccessfulDelete", "Deleted pod: " + toDelete[i]);
        continue;
      }
      expectations_.deletionObserved(key);
      if (r.status().code() != 404) {
        record(ds, "Warning", "FailedDelete", "Error deleting: " + r.status().message());
        if (firstError.isOk()) firstError = r.status();
      }
    }
    return firstError;
  }

  Status manage(const json& ds, const api::LabelSelector& selector, const std::vector<client::ObjectPtr>& nodes,
                const std::string& hash) {
    auto nodeToPods = nodesToDaemonPods(ds, selector);
    if (!nodeToPods.ok()) return nodeToPods.status();
    std::vector<std::string> needing, toDelete;
    std::set<std::string> known;
    for (const auto& n : nodes) {
      known.insert(nameOf(*n));
      podsShouldBeOnNode(*n, *nodeToPods, ds, hash, needing, toDelete);
    }
    // getUnscheduledPodsWithoutNode: pods for nodes that no longer exist can never be bound.
    for (const auto& [node, pods] : *nodeToPods) {
      if (known.count(node)) continue;
      for (const auto& p : pods)
        if (strField(*p, "spec", "nodeName").empty() && !isBeingDeleted(*p)) toDelete.push_back(nameOf(*p));
    }
    return syncNodes(ds, toDelete, needing, hash);
  }

  // ---- rolling update (update.go) -----------------------------------------------------------

  Status rollingUpdate(const json& ds, const api::LabelSelector& selector, const std::vector<client::ObjectPtr>& nodes,
                       const std::string& hash) {
    auto mapped = nodesToDaemonPods(ds, selector);
    if (!mapped.ok()) return mapped.status();
    auto& nodeToPods = *mapped;
    int desired = 0;
    std::map<std::string, client::ObjectPtr> nodeByName;
    for (const auto& n : nodes) {
      nodeByName[nameOf(*n)] = n;
      if (!nodeShouldRunDaemonPod(*n, ds).first) continue;
      desired++;
      nodeToPods[nameOf(*n)];  // a node that should run one counts even without a pod
    }
    const json& ru = field(field(field(ds, "spec"), "updateStrategy"), "rollingUpdate");
    int maxUnavailable = scaled(field(ru, "maxUnavailable"), desired);
    int maxSurge = scaled(field(ru, "maxSurge"), desired);
    if (desired > 0 && maxUnavailable == 0 && maxSurge == 0) maxUnavailable = 1;
    auto now = context_->now();
    int minReadySec = minReady(ds);
    auto generation = templateGeneration(ds);

    // findUpdatedPodsOnNode: at most one new and one old live pod, else the manage loop cleans up.
    auto split = [&](const std::vector<client::ObjectPtr>& pods, client::ObjectPtr& newPod, client::ObjectPtr& oldPod) {
      for (const auto& p : pods) {
        if (isBeingDeleted(*p)) continue;
        client::ObjectPtr& slot = isPodUpdated(*p, hash, generation) ? newPod : oldPod;
        if (slot) return false;
        slot = p;
      }
      return true;
    };

    if (maxSurge == 0) {
      int numUnavailable = 0;
      std::vector<std::string> allowed, candidates;
      for (const auto& [node, pods] : nodeToPods) {
        client::ObjectPtr newPod, oldPod;
        if (!split(pods, newPod, oldPod)) {
          numUnavailable++;
          continue;
        }
        if ((!oldPod && !newPod) || (oldPod && newPod)) {
          numUnavailable++;
        } else if (newPod) {
          if (!isPodAvailable(*newPod, minReadySec, now)) numUnavailable++;
        } else if (!isPodAvailable(*oldPod, minReadySec, now)) {
          allowed.push_back(nameOf(*oldPod));  // not available anyway: replace it now
        } else if (numUnavailable < maxUnavailable) {
          candidates.push_back(nameOf(*oldPod));
        }
      }
      int remaining = std::clamp(maxUnavailable - numUnavailable, 0, static_cast<int>(candidates.size()));
      allowed.insert(allowed.end(), candidates.begin(), candidates.begin() + remaining);
      return syncNodes(ds, allowed, {}, hash);
    }

    std::vector<std::string> oldToDelete, shouldNotRun, candidateNodes, allowedNodes;
    int numSurge = 0, numAvailable = 0;
    for (const auto& [node, pods] : nodeToPods) {
      client::ObjectPtr newPod, oldPod;
      if (!split(pods, newPod, oldPod)) {
        numSurge++;
        continue;
      }
      if (oldPod) {
        if (isPodAvailable(*oldPod, minReadySec, now)) numAvailable++;
      } else if (newPod && isPodAvailable(*newPod, minReadySec, now)) {
        numAvailable++;
      }
      if (!oldPod) continue;
      if (!newPod) {
        auto n = nodeByName.find(node);
        if (n == nodeByName.end()) return Status::internal("couldn't get node for nodeName \"" + node + "\"");
        bool shouldRun = nodeShouldRunDaemonPod(*n->second, ds).first;
        if (!isPodAvailable(*oldPod, minReadySec, now)) {
          if (!shouldRun) oldToDelete.push_back(nameOf(*oldPod));
          else allowedNodes.push_back(node);
          continue;
        }
        if (!shouldRun) {
          shouldNotRun.push_back(nameOf(*oldPod));
          continue;
        }
        if (numSurge >= maxSurge) continue;
        candidateNodes.push_back(node);
        continue;
      }
      if (!isPodAvailable(*newPod, minReadySec, now)) {
        numSurge++;
        continue;
      }
      oldToDelete.push_back(nameOf(*oldPod));  // the new one is available: the old one goes
    }
    // With surge, availability stays at 100%: pods on nodes that should no longer run one go
    // only as others become available.
    int deletable = std::min<int>(numAvailable - desired, static_cast<int>(shouldNotRun.size()));
    for (int i = 0; i < deletable; ++i) oldToDelete.push_back(shouldNotRun[i]);
    int remaining = std::clamp(maxSurge - numSurge, 0, static_cast<int>(candidateNodes.size()));
    allowedNodes.insert(allowedNodes.end(), candidateNodes.begin(), candidateNodes.begin() + remaining);
    return syncNodes(ds, oldToDelete, allowedNodes, hash);
  }

  // ---- status -------------------------------------------------------------------------------

  Status updateStatus(const json& ds, const api::LabelSelector& selector, const std::vector<client::ObjectPtr>& nodes,
                      const std::string& hash, bool updateObservedGeneration) {
    auto mapped = nodesToDaemonPods(ds, selector);
    if (!mapped.ok()) return mapped.status();
    int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, updated = 0, available = 0;
    auto now = context_->now();
    auto generation = templateGeneration(ds);
    for (const auto& n : nodes) {
      bool shouldRun = nodeShouldRunDaemonPod(*n, ds).first;
      auto it = mapped->find(nameOf(*n));
      bool scheduled = it != mapped->end() && !it->second.empty();
      if (!shouldRun) {
        if (scheduled) misscheduled++;
        continue;
      }
      desired++;
      if (!scheduled) continue;
      current++;
      auto pods = it->second;
      std::sort(pods.begin(), pods.end(), olderPod);
      const json& pod = *pods.front();
      if (isPodReady(pod)) {
        ready++;
        if (isPodAvailable(pod, minReady(ds), now)) available++;
      }
      if (isPodUpdated(pod, hash, generation)) updated++;
    }
    int64_t unavailable = desired - available;
    json status = field(ds, "status").is_object() ? field(ds, "status") : json::object();
    auto same = [&](const char* f, int64_t v) { return intField(ds, "status", f) == v; };
    int64_t gen = intField(ds, "metadata", "generation");
    bool unchanged = same("desiredNumberScheduled", desired) && same("currentNumberScheduled", current) &&
                     same("numberMisscheduled", misscheduled) && same("numberReady", ready) &&
                     same("updatedNumberScheduled", updated) && same("numberAvailable", available) &&
                     same("numberUnavailable", unavailable) && intField(ds, "status", "observedGeneration") >= gen;
    if (!unchanged) {
      json obj = ds;
      for (int attempt = 0; attempt < 2; ++attempt) {
        json& s = obj["status"];
        if (!s.is_object()) s = json::object();
        s["desiredNumberScheduled"] = desired;
        s["currentNumberScheduled"] = current;
        s["numberMisscheduled"] = misscheduled;
        s["numberReady"] = ready;
        auto setOpt = [&](const char* f, int64_t v) {
          if (v == 0) s.erase(f);
          else s[f] = v;
        };
        setOpt("updatedNumberScheduled", updated);
        setOpt("numberAvailable", available);
        setOpt("numberUnavailable", unavailable);
        if (updateObservedGeneration) setOpt("observedGeneration", intField(obj, "metadata", "generation"));
        auto r = client_->update(kDaemonSets, strField(ds, "metadata", "namespace"), obj, "status");
        if (r.ok()) break;
        if (attempt == 1 || r.status().code() == 404) return r.status();
        auto fresh = client_->get(kDaemonSets, strField(ds, "metadata", "namespace"), nameOf(ds));
        if (!fresh.ok()) return fresh.status();
        obj = *fresh;
      }
    }
    // Re-check once pods have been ready for minReadySeconds.
    if (minReady(ds) > 0 && ready != available)
      queue().addAfter(client::objectKey(ds), std::chrono::seconds(minReady(ds)));
    return {};
  }

  Status syncDaemonSet(const std::string& key) {
    auto cached = sets_->get(key);
    if (!cached) {
      expectations_.remove(key);
      return {};
    }
    const json& ds = *cached;
    const json& selJson = field(field(ds, "spec"), "selector");
    auto selector = api::LabelSelector::fromJson(selJson);
    if (!selector.ok()) {
      spdlog::warn("daemonset {}: invalid selector: {}", key, selector.status().message());
      return {};
    }
    if (selector->empty()) {
      record(ds, "Warning", "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.");
      return {};
    }
    if (isBeingDeleted(ds)) return {};
    auto nodes = nodeList();
    auto history = constructHistory(ds);
    if (!history.ok()) return history.status();
    const std::string& hash = history->hash;
    if (!expectations_.satisfied(key)) return updateStatus(ds, *selector, nodes, hash, false);

    Status st = manage(ds, *selector, nodes, hash);
    if (!st.isOk()) return st;
    if (expectations_.satisfied(key)) {
      const json& us = field(field(ds, "spec"), "updateStrategy");
      if (us.value("type", "RollingUpdate") == "RollingUpdate") {
        st = rollingUpdate(ds, *selector, nodes, hash);
        if (!st.isOk()) return st;
      }
    }
    auto mapped = nodesToDaemonPods(ds, *selector);
    if (mapped.ok()) {
      st = cleanupHistory(ds, history->old, *mapped);
      if (!st.isOk()) return st;
    }
    return updateStatus(ds, *selector, nodes, hash, true);
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* sets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  client::Informer* revisions_ = nullptr;
  Expectations expectations_;
  struct Backoff {
    std::chrono::milliseconds delay{0};
    std::chrono::steady_clock::time_point until;
  };
  std::mutex backoffMu_;
  std::map<std::string, Backoff> backoff_;
};

}  // namespace

namespace daemonset {

void addDaemonTolerations(json& spec) {
  if (!spec.is_object()) spec = json::object();
  json& tolerations = spec["tolerations"];
  if (!tolerations.is_array()) tolerations = json::array();
  auto add = [&](const char* key, const char* effect) {
    json t = {{"key", key}, {"operator", "Exists"}, {"effect", effect}};
    for (auto& existing : tolerations) {
      // AddOrUpdateTolerationInPodSpec: one with the same key and effect is replaced.
      if (existing.value("key", "") == key && existing.value("effect", "") == effect) {
        existing = t;
        return;
      }
    }
    tolerations.push_back(std::move(t));
  };
  add("node.kubernetes.io/not-ready", "NoExecute");
  add("node.kubernetes.io/unreachable", "NoExecute");
  add("node.kubernetes.io/disk-pressure", "NoSchedule");
  add("node.kubernetes.io/memory-pressure", "NoSchedule");
  add("node.kubernetes.io/pid-pressure", "NoSchedule");
  add("node.kubernetes.io/unschedulable", "NoSchedule");
  if (spec.value("hostNetwork", false)) add("node.kubernetes.io/network-unavailable", "NoSchedule");
}

std::pair<bool, bool> nodeShouldRunDaemonPod(const json& node, const json& ds) {
  json spec = field(field(field(ds, "spec"), "template"), "spec");
  if (!spec.is_object()) spec = json::object();
  std::string wanted = spec.value("nodeName", "");
  if (!wanted.empty() && wanted != nameOf(node)) return {false, false};
  addDaemonTolerations(spec);
  if (!requiredAffinityMatches(spec, node)) return {false, false};
  const json& taints = field(field(node, "spec"), "taints");
  const json& tolerations = spec["tolerations"];
  if (hasUntoleratedTaint(taints, tolerations, {"NoSchedule", "NoExecute"})) {
    // A pod already there may stay if it tolerates the NoExecute taints.
    return {false, !hasUntoleratedTaint(taints, tolerations, {"NoExecute"})};
  }
  return {true, true};
}

std::string targetNodeName(const json& pod) {
  std::string node = strField(pod, "spec", "nodeName");
  if (!node.empty()) return node;
  const json& terms = field(field(field(field(pod, "spec"), "affinity"), "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution");
  const json& list = field(terms, "nodeSelectorTerms");
  if (!list.is_array()) return "";
  for (const auto& t : list) {
    const json& fields = field(t, "matchFields");
    if (!fields.is_array()) continue;
    for (const auto& f : fields)
      if (f.value("key", "") == "metadata.name" && f.value("operator", "") == "In" && f.contains("values") &&
          f["values"].is_array() && f["values"].size() == 1 && f["values"][0].is_string())
        return f["values"][0].get<std::string>();
  }
  return "";
}

}  // namespace daemonset

std::unique_ptr<Controller> newDaemonSetController() { return std::make_unique<DaemonSetController>(); }

}  // namespace orrery::controllers
