#include "engine/controllers/disruption.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;

namespace disruption {

api::Result<int64_t> scaledValue(const json& value, int64_t total, bool roundUp) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    if (!text.empty() && text.back() == '%') {
      try {
        double percent = std::stod(text.substr(0, text.size() - 1));
        double scaled = percent * static_cast<double>(total) / 100.0;
        return static_cast<int64_t>(roundUp ? std::ceil(scaled) : std::floor(scaled));
      } catch (...) {
      }
    }
    try {
      size_t used = 0;
      int64_t n = std::stoll(text, &used);
      if (used == text.size()) return n;
    } catch (...) {
    }
  }
  return api::Status::badRequest("invalid value for IntOrString: invalid value \"" + value.dump() + "\"");
}

}  // namespace disruption

namespace {

const api::GroupVersionResource kPdbs{"policy", "v1", "poddisruptionbudgets"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets"};
const api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const api::GroupVersionResource kStatefulSets{"apps", "v1", "statefulsets"};
const api::GroupVersionResource kReplicationControllers{"", "v1", "replicationcontrollers"};

// How long an eviction's entry in disruptedPods waits for the pod to go (kube's DeletionTimeout).
constexpr auto kDeletionTimeout = std::chrono::minutes(2);

class DisruptionController : public Controller {
 public:
  std::string name() const override { return "disruption"; }
  std::string component() const override { return "controllermanager"; }
  std::chrono::milliseconds tickInterval() const override { return std::chrono::seconds(30); }

  Status setup(ControllerContext& context) override {
    client_ = context.client;
    now_ = context.now;
    pdbs_ = &context.informers->informer(kPdbs);
    pods_ = &context.informers->informer(kPods);
    for (const auto& gvr : {kReplicaSets, kDeployments, kStatefulSets, kReplicationControllers}) {
      scales_[gvr.resource] = &context.informers->informer(gvr);
    }
    auto enqueue = [this](const client::ObjectPtr& pdb) { queue().add(client::objectKey(*pdb)); };
    pdbs_->addHandler({enqueue, [enqueue](const client::ObjectPtr&, const client::ObjectPtr& p) { enqueue(p); }, nullptr});
    auto podChanged = [this](const client::ObjectPtr& pod) {
      const json labels = pod->value("metadata", json::object()).value("labels", json::object());
      for (const auto& pdb : pdbs_->byIndex("namespace", api::metaString(*pod, "namespace"))) {
        auto selector = api::LabelSelector::fromJson(pdb->value("spec", json::object()).value("selector", json()));
        if (selector.ok() && selector->matches(labels)) queue().add(client::objectKey(*pdb));
      }
    };
    pods_->addHandler({podChanged, [podChanged](const client::ObjectPtr& o, const client::ObjectPtr& n) {
                         podChanged(o);
                         podChanged(n);
                       },
                       podChanged});
    // A scale change of a controller changes expectedPods of budgets over its pods.
    auto scaleChanged = [this](const client::ObjectPtr& owner) {
      for (const auto& pdb : pdbs_->byIndex("namespace", api::metaString(*owner, "namespace"))) {
        queue().add(client::objectKey(*pdb));
      }
    };
    for (auto& [resource, informer] : scales_) {
      informer->addHandler({nullptr, [scaleChanged](const client::ObjectPtr&, const client::ObjectPtr& n) { scaleChanged(n); },
                            nullptr});
    }
    return {};
  }

  void tick() override {
    // Expired disruptedPods entries are dropped on a later sync.
    for (const auto& pdb : pdbs_->list()) {
      if (!pdb->value("status", json::object()).value("disruptedPods", json::object()).empty()) {
        queue().add(client::objectKey(*pdb));
      }
    }
  }

  Status sync(const std::string& key) override {
    auto pdb = pdbs_->get(key);
    if (!pdb || isBeingDeleted(*pdb)) return {};
    const std::string ns = api::metaString(*pdb, "namespace");
    const json& spec = pdb->value("spec", json::object());
    auto selector = api::LabelSelector::fromJson(spec.value("selector", json()));

    std::vector<client::ObjectPtr> pods;
    if (selector.ok()) {
      for (const auto& pod : pods_->byIndex("namespace", ns)) {
        if (selector->matches(pod->value("metadata", json::object()).value("labels", json::object()))) pods.push_back(pod);
      }
    }
    auto now = now_();

    int64_t expected = 0, desired = 0;
    std::string failure;
    if (spec.contains("maxUnavailable") && !spec["maxUnavailable"].is_null()) {
      auto scale = expectedScale(pods, &failure);
      if (failure.empty()) {
        expected = scale;
        auto maxUnavailable = disruption::scaledValue(spec["maxUnavailable"], expected, true);
        if (!maxUnavailable.ok()) failure = maxUnavailable.status().message();
        else desired = std::max<int64_t>(0, expected - *maxUnavailable);
      }
    } else if (spec.contains("minAvailable") && spec["minAvailable"].is_string()) {
      auto scale = expectedScale(pods, &failure);
      if (failure.empty()) {
        expected = scale;
        auto minAvailable = disruption::scaledValue(spec["minAvailable"], expected, true);
        if (!minAvailable.ok()) failure = minAvailable.status().message();
        else desired = *minAvailable;
      }
    } else {
      // An integer minAvailable needs no controller: every selected pod is expected.
      expected = static_cast<int64_t>(pods.size());
      desired = spec.value("minAvailable", int64_t{0});
    }

    // disruptedPods: evictions not yet seen to take effect; dropped once the pod is going or
    // gone, or after the deletion timeout.
    json disrupted = json::object();
    const json& oldDisrupted = pdb->value("status", json::object()).value("disruptedPods", json::object());
    std::set<std::string> pending;
    for (const auto& [podName, at] : oldDisrupted.items()) {
      auto pod = pods_->get(client::objectKey(ns, podName));
      if (!pod || isBeingDeleted(*pod)) continue;
      std::chrono::system_clock::time_point when;
      if (!at.is_string() || !api::parseTime(at.get<std::string>(), &when) || when + kDeletionTimeout < now) continue;
      disrupted[podName] = at;
      pending.insert(podName);
    }
    int64_t healthy = 0;
    for (const auto& pod : pods) {
      if (isBeingDeleted(*pod) || pending.count(api::metaString(*pod, "name"))) continue;
      if (isPodReady(*pod)) ++healthy;
    }

    int64_t allowed = failure.empty() ? std::max<int64_t>(0, healthy - desired) : 0;
    json status = pdb->value("status", json::object());
    status["observedGeneration"] = pdb->value("metadata", json::object()).value("generation", int64_t{1});
    status["expectedPods"] = expected;
    status["desiredHealthy"] = desired;
    status["currentHealthy"] = healthy;
    status["disruptionsAllowed"] = allowed;
    if (disrupted.empty()) status.erase("disruptedPods");
    else status["disruptedPods"] = disrupted;

    json condition;
    if (!failure.empty()) {
      condition = {{"type", "DisruptionAllowed"}, {"status", "False"}, {"reason", "SyncFailed"}, {"message", failure}};
    } else if (allowed > 0) {
      condition = {{"type", "DisruptionAllowed"}, {"status", "True"}, {"reason", "SufficientPods"}, {"message", ""}};
    } else {
      condition = {{"type", "DisruptionAllowed"}, {"status", "False"}, {"reason", "InsufficientPods"}, {"message", ""}};
    }
    condition["observedGeneration"] = status["observedGeneration"];
    json conditions = json::array();
    bool replaced = false;
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") != "DisruptionAllowed") {
        conditions.push_back(c);
        continue;
      }
      replaced = true;
      json next = condition;
      bool same = c.value("status", "") == condition["status"] && c.value("reason", "") == condition["reason"];
      next["lastTransitionTime"] = same && c.contains("lastTransitionTime") ? c["lastTransitionTime"] : json(api::formatTime(now));
      conditions.push_back(next);
    }
    if (!replaced) {
      condition["lastTransitionTime"] = api::formatTime(now);
      conditions.push_back(condition);
    }
    status["conditions"] = conditions;

    if (pdb->value("status", json::object()) == status) return {};
    json updated = *pdb;
    updated["status"] = status;
    auto result = client_->update(kPdbs, ns, updated, "status");
    if (!result.ok() && result.status().code() != 404) return result.status();
    if (!failure.empty() && events) events->record(*pdb, "Warning", "CalculateExpectedPodCountFailed", failure);
    return {};
  }

 private:
  /// The sum of spec.replicas of the controllers of `pods` (each counted once), as kube's
  /// getExpectedScale: a pod without a controller fails the budget.
  int64_t expectedScale(const std::vector<client::ObjectPtr>& pods, std::string* failure) {
    std::map<std::string, int64_t> controllers;  // uid -> replicas
    for (const auto& pod : pods) {
      auto ref = controllerRef(*pod);
      if (!ref) {
        *failure = "found no controller ref for pod \"" + api::metaString(*pod, "name") + "\"";
        return 0;
      }
      if (controllers.count(ref->uid)) continue;
      const std::string ns = api::metaString(*pod, "namespace");
      auto scaleOf = [&](const std::string& resource, const std::string& name, const std::string& uid) -> std::optional<int64_t> {
        auto it = scales_.find(resource);
        if (it == scales_.end()) return std::nullopt;
        auto owner = it->second->get(client::objectKey(ns, name));
        if (!owner || api::metaString(*owner, "uid") != uid) return std::nullopt;
        return owner->value("spec", json::object()).value("replicas", int64_t{1});
      };
      std::optional<int64_t> replicas;
      if (ref->kind == "ReplicaSet") {
        auto rs = scales_["replicasets"]->get(client::objectKey(ns, ref->name));
        if (rs && api::metaString(*rs, "uid") == ref->uid) {
          // A ReplicaSet of a Deployment is scaled by the Deployment.
          if (auto owner = controllerRef(*rs); owner && owner->kind == "Deployment") {
            replicas = scaleOf("deployments", owner->name, owner->uid);
          } else {
            replicas = rs->value("spec", json::object()).value("replicas", int64_t{1});
          }
        }
      } else if (ref->kind == "StatefulSet") {
        replicas = scaleOf("statefulsets", ref->name, ref->uid);
      } else if (ref->kind == "ReplicationController") {
        replicas = scaleOf("replicationcontrollers", ref->name, ref->uid);
      }
      if (!replicas) {
        *failure = "found no controllers for pod \"" + api::metaString(*pod, "name") + "\"";
        return 0;
      }
      controllers[ref->uid] = *replicas;
    }
    int64_t total = 0;
    for (const auto& [uid, n] : controllers) total += n;
    return total;
  }

  std::shared_ptr<client::Client> client_;
  std::function<std::chrono::system_clock::time_point()> now_;
  client::Informer* pdbs_ = nullptr;
  client::Informer* pods_ = nullptr;
  std::map<std::string, client::Informer*> scales_;
};

}  // namespace

std::unique_ptr<Controller> newDisruptionController() { return std::make_unique<DisruptionController>(); }

}  // namespace orrery::controllers
