// The node lifecycle controller and its taint-based eviction (see node_lifecycle.h).

#include "engine/controllers/node_lifecycle.h"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "engine/api/object.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

namespace {

using nlohmann::json;
using SysClock = std::chrono::system_clock;

const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases"};

constexpr const char* kNotReadyTaint = "node.kubernetes.io/not-ready";
constexpr const char* kUnreachableTaint = "node.kubernetes.io/unreachable";
constexpr const char* kUnschedulableTaint = "node.kubernetes.io/unschedulable";
constexpr const char* kExcludeDisruption = "node.kubernetes.io/exclude-disruption";

// nodeConditionToTaintKeyStatusMap.
struct ConditionTaint {
  const char* condition;
  const char* status;
  const char* taint;
};
constexpr ConditionTaint kConditionTaints[] = {
    {"Ready", "False", "node.kubernetes.io/not-ready"},
    {"Ready", "Unknown", "node.kubernetes.io/unreachable"},
    {"MemoryPressure", "True", "node.kubernetes.io/memory-pressure"},
    {"DiskPressure", "True", "node.kubernetes.io/disk-pressure"},
    {"NetworkUnavailable", "True", "node.kubernetes.io/network-unavailable"},
    {"PIDPressure", "True", "node.kubernetes.io/pid-pressure"},
};

bool isConditionTaintKey(const std::string& key) {
  for (const auto& ct : kConditionTaints)
    if (key == ct.taint) return true;
  return false;
}

struct Taint {
  std::string key;
  std::string value;
  std::string effect;
};

std::vector<Taint> taintsOf(const json& node) {
  std::vector<Taint> out;
  auto spec = node.find("spec");
  if (spec == node.end() || !spec->is_object()) return out;
  auto it = spec->find("taints");
  if (it == spec->end() || !it->is_array()) return out;
  for (const auto& t : *it) {
    if (!t.is_object()) continue;
    out.push_back({t.value("key", ""), t.value("value", ""), t.value("effect", "")});
  }
  return out;
}

bool hasTaint(const json& node, const std::string& key, const std::string& effect) {
  for (const auto& t : taintsOf(node))
    if (t.key == key && t.effect == effect) return true;
  return false;
}

const json* condition(const json& node, const std::string& type) {
  auto status = node.find("status");
  if (status == node.end() || !status->is_object()) return nullptr;
  auto it = status->find("conditions");
  if (it == status->end() || !it->is_array()) return nullptr;
  for (const auto& c : *it)
    if (c.is_object() && c.value("type", "") == type) return &c;
  return nullptr;
}

std::string readyStatus(const json& node) {
  const json* c = condition(node, "Ready");
  return c ? c->value("status", "Unknown") : "";
}

// nodetopology.GetZoneKey.
std::string zoneKey(const json& node) {
  const json& meta = api::memberOrEmpty(node, "metadata");
  json labels = meta.value("labels", json::object());
  std::string region = labels.value("topology.kubernetes.io/region", labels.value("failure-domain.beta.kubernetes.io/region", ""));
  std::string zone = labels.value("topology.kubernetes.io/zone", labels.value("failure-domain.beta.kubernetes.io/zone", ""));
  if (region.empty() && zone.empty()) return "";
  return region + std::string(":\0:", 3) + zone;
}

// v1helper.Toleration.ToleratesTaint.
bool tolerates(const json& toleration, const Taint& taint) {
  std::string effect = toleration.value("effect", "");
  if (!effect.empty() && effect != taint.effect) return false;
  std::string key = toleration.value("key", "");
  std::string op = toleration.value("operator", "");
  if (!key.empty() && key != taint.key) return false;
  if (op == "Exists") return true;
  if (op.empty() || op == "Equal") return key.empty() ? false : toleration.value("value", "") == taint.value;
  return false;
}

enum class ZoneState { kInitial, kNormal, kFullDisruption, kPartialDisruption };

// A token bucket with burst 1, as flowcontrol.NewTokenBucketRateLimiter(qps, 1); qps 0 never
// accepts.
struct Limiter {
  double qps = 0;
  double tokens = 1;
  SysClock::time_point last{};
  bool tryAccept(SysClock::time_point now) {
    if (qps <= 0) return false;
    if (last.time_since_epoch().count() != 0) {
      double elapsed = std::chrono::duration<double>(now - last).count();
      tokens = std::min(1.0, tokens + std::max(0.0, elapsed) * qps);
    }
    last = now;
    if (tokens < 1.0) return false;
    tokens -= 1.0;
    return true;
  }
  void swap(double newQps) {
    if (newQps == qps) return;
    qps = newQps;
  }
};

// scheduler.RateLimitedTimedQueue: a unique queue of node names (a name stays in the set after
// it was processed, until it is removed, so that a tainted node is not queued again).
struct ZoneTainter {
  std::deque<std::string> queue;
  std::set<std::string> members;
  Limiter limiter;
  bool add(const std::string& name) {
    if (!members.insert(name).second) return false;
    queue.push_back(name);
    return true;
  }
  void remove(const std::string& name) {
    members.erase(name);
    queue.erase(std::remove(queue.begin(), queue.end(), name), queue.end());
  }
};

struct NodeHealth {
  SysClock::time_point probeTimestamp{};
  SysClock::time_point readyTransitionTimestamp{};
  bool hasReady = false;  // the saved status had a Ready condition
  std::string readyHeartbeat;
  std::string readyTransition;
  std::string leaseRenewTime;  // the saved lease's spec.renewTime
  bool hasLease = false;
};

// A scheduled taint eviction of one pod (tainteviction's TimedWorker).
struct Eviction {
  SysClock::time_point createdAt;
  SysClock::time_point fireAt;
};

class NodeLifecycleController : public Controller {
 public:
  explicit NodeLifecycleController(NodeLifecycleOptions options) : options_(options) {}

  std::string name() const override { return "nodelifecycle"; }
  std::string component() const override { return "node-controller"; }
  int workers() const override { return 2; }
  std::chrono::milliseconds tickInterval() const override {
    return std::min(options_.evictionPeriod, options_.nodeMonitorPeriod);
  }

  Status setup(ControllerContext& context) override {
    client_ = context.client;
    now_ = context.now;
    nodes_ = &context.informers->informer(kNodes);
    leases_ = &context.informers->informer(kLeases);
    pods_ = &context.informers->informer(kPods);
    nodes_->addHandler({[this](const client::ObjectPtr& n) { queue().add("node/" + api::metaString(*n, "name")); },
                        [this](const client::ObjectPtr& o, const client::ObjectPtr& n) {
                          (void)o;
                          queue().add("node/" + api::metaString(*n, "name"));
                        },
                        [this](const client::ObjectPtr& n) { queue().add("node/" + api::metaString(*n, "name")); }});
    pods_->addHandler({[this](const client::ObjectPtr& p) { podChanged(nullptr, p); },
                       [this](const client::ObjectPtr& o, const client::ObjectPtr& p) { podChanged(o, p); },
                       [this](const client::ObjectPtr& p) { podDeleted(p); }});
    return Status::ok();
  }

  Status sync(const std::string& key) override {
    if (key.rfind("node/", 0) == 0) return syncNode(key.substr(5));
    if (key.rfind("pod/", 0) == 0) return syncPod(key.substr(4));
    if (key.rfind("evict/", 0) == 0) return syncEviction(key.substr(6));
    return Status::ok();
  }

  void tick() override {
    auto now = now_();
    if (lastMonitor_.time_since_epoch().count() == 0 || now - lastMonitor_ >= options_.nodeMonitorPeriod) {
      lastMonitor_ = now;
      monitorNodeHealth();
    }
    doNoExecuteTaintingPass();
  }

 private:
  // ---- pods by node -------------------------------------------------------------------

  static std::string nodeNameOf(const json& pod) {
    const json& spec = api::memberOrEmpty(pod, "spec");
    return spec.value("nodeName", "");
  }

  void podChanged(const client::ObjectPtr& oldPod, const client::ObjectPtr& pod) {
    std::string node = nodeNameOf(*pod);
    std::string key = client::objectKey(*pod);
    {
      std::lock_guard lock(mu_);
      if (oldPod) {
        std::string oldNode = nodeNameOf(*oldPod);
        if (!oldNode.empty() && oldNode != node) podsByNode_[oldNode].erase(key);
      }
      if (!node.empty()) podsByNode_[node].insert(key);
    }
    // tainteviction's handlePodUpdate: only a (new) binding matters.
    if (!node.empty() && (!oldPod || nodeNameOf(*oldPod) != node)) queue().add("pod/" + key);
  }

  void podDeleted(const client::ObjectPtr& pod) {
    std::string key = client::objectKey(*pod);
    std::lock_guard lock(mu_);
    std::string node = nodeNameOf(*pod);
    auto it = podsByNode_.find(node);
    if (it != podsByNode_.end()) {
      it->second.erase(key);
      if (it->second.empty()) podsByNode_.erase(it);
    }
    evictions_.erase(key);
  }

  std::vector<client::ObjectPtr> podsOnNode(const std::string& node) {
    std::vector<std::string> keys;
    {
      std::lock_guard lock(mu_);
      auto it = podsByNode_.find(node);
      if (it != podsByNode_.end()) keys.assign(it->second.begin(), it->second.end());
    }
    std::vector<client::ObjectPtr> out;
    for (const auto& k : keys)
      if (auto p = pods_->get(k); p && nodeNameOf(*p) == node) out.push_back(p);
    return out;
  }

  // ---- API writes ---------------------------------------------------------------------

  json nodeRef(const json& node) const {
    return {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", api::metaString(node, "name")}, {"uid", api::metaString(node, "uid")}}}};
  }

  void record(const json& object, const std::string& type, const std::string& reason, const std::string& message) {
    if (events) events->record(object, type, reason, message);
  }

  // controllerutil.SwapNodeControllerTaint: adds `add` (with timeAdded now) and removes
  // `remove` (by key and effect), on a fresh copy of the node, retrying conflicts.
  bool swapTaints(const std::string& name, const std::vector<Taint>& add, const std::vector<Taint>& remove) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto node = client_->get(kNodes, "", name);
      if (!node.ok()) return node.status().code() == 404;
      json taints = json::array();
      const json& spec = api::memberOrEmpty((*node), "spec");
      if (spec.contains("taints") && spec["taints"].is_array()) taints = spec["taints"];
      bool changed = false;
      json kept = json::array();
      for (const auto& t : taints) {
        bool drop = false;
        for (const auto& r : remove)
          if (t.value("key", "") == r.key && t.value("effect", "") == r.effect) drop = true;
        for (const auto& a : add)  // an existing one with another value is replaced
          if (t.value("key", "") == a.key && t.value("effect", "") == a.effect && t.value("value", "") != a.value)
            drop = true;
        if (drop) changed = true;
        else kept.push_back(t);
      }
      for (const auto& a : add) {
        bool exists = false;
        for (const auto& t : kept)
          if (t.value("key", "") == a.key && t.value("effect", "") == a.effect) exists = true;
        if (exists) continue;
        json t = {{"key", a.key}, {"effect", a.effect}, {"timeAdded", api::formatTime(now_())}};
        if (!a.value.empty()) t["value"] = a.value;
        kept.push_back(t);
        changed = true;
      }
      if (!changed) return true;
      json patch = {{"metadata", {{"resourceVersion", api::metaString(*node, "resourceVersion")}}},
                    {"spec", {{"taints", kept}}}};
      auto result = client_->patch(kNodes, "", name, client::PatchType::kMerge, patch.dump());
      if (result.ok()) return true;
      if (result.status().code() == 404) return true;
      if (!isConflict(result.status())) {
        logger()->warn("nodelifecycle: updating taints of node {}: {}", name, result.status().message());
        return false;
      }
    }
    return false;
  }

  // markNodeAsReachable: removes both NoExecute taints and forgets the node in its tainter.
  bool markNodeAsReachable(const json& node) {
    std::string name = api::metaString(node, "name");
    {
      std::lock_guard lock(mu_);
      auto it = tainters_.find(zoneKey(node));
      if (it != tainters_.end()) it->second.remove(name);
    }
    if (!hasTaint(node, kUnreachableTaint, "NoExecute") && !hasTaint(node, kNotReadyTaint, "NoExecute")) return true;
    return swapTaints(name, {}, {{kUnreachableTaint, "", "NoExecute"}, {kNotReadyTaint, "", "NoExecute"}});
  }

  void markNodeForTainting(const json& node, const std::string& status) {
    std::string name = api::metaString(node, "name");
    std::lock_guard lock(mu_);
    auto& tainter = tainterFor(zoneKey(node));
    if (status == "False" && !hasTaint(node, kNotReadyTaint, "NoExecute")) tainter.remove(name);
    if (status == "Unknown" && !hasTaint(node, kUnreachableTaint, "NoExecute")) tainter.remove(name);
    tainter.add(name);
  }

  // Locked.
  ZoneTainter& tainterFor(const std::string& zone) {
    auto it = tainters_.find(zone);
    if (it != tainters_.end()) return it->second;
    ZoneTainter& t = tainters_[zone];
    t.limiter.qps = options_.evictionRate;
    zoneStates_.emplace(zone, ZoneState::kInitial);
    return t;
  }

  // ---- node health --------------------------------------------------------------------

  // tryUpdateNodeHealth: returns the observed and the current Ready status ("" = none).
  bool tryUpdateNodeHealth(const json& cached, std::string* observed, std::string* current) {
    const json& node = cached;
    const std::string name = api::metaString(node, "name");
    auto now = now_();
    SysClock::time_point created{};
    api::parseTime(api::metaString(node, "creationTimestamp"), &created);
    std::lock_guard healthLock(healthMu_);
    auto found = health_.find(name);
    NodeHealth* h = found == health_.end() ? nullptr : &found->second;
    const json* ready = condition(node, "Ready");
    std::chrono::milliseconds grace;
    if (!ready) {
      *observed = "Unknown";
      grace = options_.nodeStartupGracePeriod;
      if (!h) {
        h = &health_[name];
        h->probeTimestamp = created;
        h->readyTransitionTimestamp = created;
      }
      h->hasReady = false;
    } else {
      *observed = ready->value("status", "Unknown");
      grace = options_.nodeMonitorGracePeriod;
      std::string heartbeat = ready->contains("lastHeartbeatTime") && (*ready)["lastHeartbeatTime"].is_string()
                                  ? (*ready)["lastHeartbeatTime"].get<std::string>()
                                  : "";
      std::string transition = ready->contains("lastTransitionTime") && (*ready)["lastTransitionTime"].is_string()
                                   ? (*ready)["lastTransitionTime"].get<std::string>()
                                   : "";
      if (!h || !h->hasReady) {
        NodeHealth fresh;
        fresh.probeTimestamp = now;
        fresh.readyTransitionTimestamp = now;
        if (h) {
          fresh.leaseRenewTime = h->leaseRenewTime;
          fresh.hasLease = h->hasLease;
        }
        h = &(health_[name] = fresh);
      } else if (h->readyHeartbeat != heartbeat) {
        if (h->readyTransition != transition) h->readyTransitionTimestamp = now;
        h->probeTimestamp = now;
      }
      h->hasReady = true;
      h->readyHeartbeat = heartbeat;
      h->readyTransition = transition;
    }
    // A renewed lease is a heartbeat too.
    if (auto lease = leases_->get(client::objectKey("kube-node-lease", name))) {
      std::string renew = (*lease).value("spec", json::object()).value("renewTime", "");
      if (!renew.empty() && (!h->hasLease || renew != h->leaseRenewTime)) {
        h->leaseRenewTime = renew;
        h->hasLease = true;
        h->probeTimestamp = now;
      }
    }
    *current = ready ? *observed : "";
    if (now <= h->probeTimestamp + grace) return true;

    // Silent for longer than the grace period: every kubelet-owned condition goes Unknown (on a
    // copy: the informer's object is shared).
    json copy = cached;
    json& status = copy["status"];
    if (!status.is_object()) status = json::object();
    json& conditions = status["conditions"];
    if (!conditions.is_array()) conditions = json::array();
    std::string nowText = api::formatTime(now);
    for (const char* type : {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}) {
      json* c = nullptr;
      for (auto& x : conditions)
        if (x.is_object() && x.value("type", "") == type) c = &x;
      if (!c) {
        conditions.push_back({{"type", type},
                              {"status", "Unknown"},
                              {"reason", "NodeStatusNeverUpdated"},
                              {"message", "Kubelet never posted node status."},
                              {"lastHeartbeatTime", api::metaString(node, "creationTimestamp")},
                              {"lastTransitionTime", nowText}});
      } else if (c->value("status", "") != "Unknown") {
        (*c)["status"] = "Unknown";
        (*c)["reason"] = "NodeStatusUnknown";
        (*c)["message"] = "Kubelet stopped posting node status.";
        (*c)["lastTransitionTime"] = nowText;
      }
    }
    *current = "Unknown";
    if (*observed == "Unknown" && ready) {
      // Already Unknown (and only the Ready condition decides whether to write).
      const json* after = condition(copy, "Ready");
      if (after && *after == *ready) return true;
    }
    auto updated = client_->update(kNodes, "", copy, "status");
    if (!updated.ok()) {
      logger()->warn("nodelifecycle: marking node {} Unknown: {}", name, updated.status().message());
      *current = ready ? *observed : "";
      return false;
    }
    h->readyTransitionTimestamp = now;
    if (const json* c = condition(*updated, "Ready")) {
      h->readyHeartbeat = c->value("lastHeartbeatTime", "");
      h->readyTransition = c->value("lastTransitionTime", "");
      h->hasReady = true;
    }
    return true;
  }

  // MarkPodsNotReady: the Ready condition of every pod on the node goes False.
  bool markPodsNotReady(const std::string& nodeName) {
    bool ok = true;
    for (const auto& p : podsOnNode(nodeName)) {
      json pod = *p;
      json& conditions = pod["status"]["conditions"];
      if (!conditions.is_array()) continue;
      bool changed = false;
      for (auto& c : conditions) {
        if (!c.is_object() || c.value("type", "") != "Ready") continue;
        if (c.value("status", "") == "False") break;
        c["status"] = "False";
        c["lastTransitionTime"] = api::formatTime(now_());
        changed = true;
        break;
      }
      if (!changed) continue;
      auto updated = client_->update(kPods, api::metaString(pod, "namespace"), pod, "status");
      if (!updated.ok()) {
        if (updated.status().code() == 404) continue;
        logger()->warn("nodelifecycle: marking pod {} not ready: {}", client::objectKey(pod), updated.status().message());
        ok = false;
        continue;
      }
      record(pod, "Warning", "NodeNotReady", "Node is not ready");
    }
    return ok;
  }

  void processTaintBaseEviction(const json& node, const std::string& observed) {
    std::string name = api::metaString(node, "name");
    if (observed == "False") {
      if (hasTaint(node, kUnreachableTaint, "NoExecute")) {
        swapTaints(name, {{kNotReadyTaint, "", "NoExecute"}}, {{kUnreachableTaint, "", "NoExecute"}});
      } else {
        markNodeForTainting(node, "False");
      }
    } else if (observed == "Unknown") {
      if (hasTaint(node, kNotReadyTaint, "NoExecute")) {
        swapTaints(name, {{kUnreachableTaint, "", "NoExecute"}}, {{kNotReadyTaint, "", "NoExecute"}});
      } else {
        markNodeForTainting(node, "Unknown");
      }
    } else if (observed == "True") {
      markNodeAsReachable(node);
    }
  }

  void monitorNodeHealth() {
    auto nodes = nodes_->list();
    std::set<std::string> present;
    for (const auto& n : nodes) {
      std::string name = api::metaString(*n, "name");
      present.insert(name);
      bool added;
      {
        std::lock_guard lock(mu_);
        added = known_.insert(name).second;
        if (added) tainterFor(zoneKey(*n));
      }
      if (added) {
        record(nodeRef(*n), "Normal", "RegisteredNode", "Registered Node " + name + " in Controller");
        markNodeAsReachable(*n);
      }
    }
    std::vector<std::string> gone;
    {
      std::lock_guard lock(mu_);
      for (const auto& name : known_)
        if (!present.count(name)) gone.push_back(name);
      for (const auto& name : gone) known_.erase(name);
    }
    for (const auto& name : gone) {
      record(json{{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}}, "Normal", "RemovingNode",
             "Removing Node " + name + " from Controller");
      std::lock_guard healthLock(healthMu_);
      health_.erase(name);
    }

    std::map<std::string, std::vector<std::string>> zoneConditions;
    for (const auto& n : nodes) {
      const json& node = *n;
      std::string name = api::metaString(node, "name");
      std::string observed, current;
      if (!tryUpdateNodeHealth(node, &observed, &current)) {
        // Retried on the next pass; no pod is evicted meanwhile.
        continue;
      }
      const json& labels = api::memberOrEmpty(api::memberOrEmpty(node, "metadata"), "labels");
      if (!labels.contains(kExcludeDisruption)) zoneConditions[zoneKey(node)].push_back(current);
      if (current.empty()) continue;
      processTaintBaseEviction(node, observed);
      bool needsRetry;
      {
        std::lock_guard lock(mu_);
        needsRetry = nodesToRetry_.count(name) > 0;
      }
      bool transition = current != "True" && observed == "True";
      if (transition) {
        record(nodeRef(node), "Normal", "NodeNotReady", "Node " + name + " status is now: NodeNotReady");
      }
      if (transition || (needsRetry && observed != "True")) {
        if (!markPodsNotReady(name)) {
          std::lock_guard lock(mu_);
          nodesToRetry_.insert(name);
          continue;
        }
      }
      std::lock_guard lock(mu_);
      nodesToRetry_.erase(name);
    }
    handleDisruption(zoneConditions, nodes);
  }

  std::pair<int, ZoneState> computeZoneState(const std::vector<std::string>& conditions) const {
    int ready = 0, notReady = 0;
    for (const auto& c : conditions) {
      if (c == "True") ++ready;
      else ++notReady;
    }
    if (ready == 0 && notReady > 0) return {notReady, ZoneState::kFullDisruption};
    if (notReady > 2 && static_cast<double>(notReady) / (notReady + ready) >= options_.unhealthyZoneThreshold)
      return {notReady, ZoneState::kPartialDisruption};
    return {notReady, ZoneState::kNormal};
  }

  // Locked.
  void setLimiterInZone(const std::string& zone, size_t zoneSize, ZoneState state) {
    auto& limiter = tainterFor(zone).limiter;
    switch (state) {
      case ZoneState::kNormal:
      case ZoneState::kFullDisruption:
        limiter.swap(options_.evictionRate);
        break;
      case ZoneState::kPartialDisruption:
        limiter.swap(static_cast<int>(zoneSize) > options_.largeClusterThreshold ? options_.secondaryEvictionRate : 0);
        break;
      case ZoneState::kInitial:
        break;
    }
  }

  void handleDisruption(const std::map<std::string, std::vector<std::string>>& zoneConditions,
                        const std::vector<client::ObjectPtr>& nodes) {
    std::map<std::string, ZoneState> newStates;
    bool allAreFullyDisrupted = true;
    bool allWasFullyDisrupted = true;
    {
      std::lock_guard lock(mu_);
      for (const auto& [zone, conds] : zoneConditions) {
        auto state = computeZoneState(conds).second;
        if (state != ZoneState::kFullDisruption) allAreFullyDisrupted = false;
        newStates[zone] = state;
        tainterFor(zone);  // a zone not seen before starts in kInitial
      }
      for (auto it = zoneStates_.begin(); it != zoneStates_.end();) {
        if (!zoneConditions.count(it->first)) {
          it = zoneStates_.erase(it);
          continue;
        }
        if (it->second != ZoneState::kFullDisruption) allWasFullyDisrupted = false;
        ++it;
      }
    }
    if (allAreFullyDisrupted && allWasFullyDisrupted) return;
    if (allAreFullyDisrupted) {
      // Every node of every zone is down: more likely the control plane's view than the nodes.
      // Stop evicting and untaint everything (master disruption mode).
      if (!zoneConditions.empty()) {
        logger()->info("nodelifecycle: all nodes are not ready; entering master disruption mode");
        for (const auto& n : nodes) markNodeAsReachable(*n);
        std::lock_guard lock(mu_);
        for (auto& [zone, state] : zoneStates_) {
          tainterFor(zone).limiter.swap(0);
          state = ZoneState::kFullDisruption;
        }
      }
      return;
    }
    if (allWasFullyDisrupted) {
      logger()->info("nodelifecycle: some nodes are ready; exiting master disruption mode");
      auto now = now_();
      {
        std::lock_guard healthLock(healthMu_);
        for (auto& [name, h] : health_) {
          h.probeTimestamp = now;
          h.readyTransitionTimestamp = now;
        }
      }
      std::lock_guard lock(mu_);
      for (auto& [zone, state] : zoneStates_) {
        auto it = zoneConditions.find(zone);
        setLimiterInZone(zone, it == zoneConditions.end() ? 0 : it->second.size(), newStates[zone]);
        state = newStates[zone];
      }
      return;
    }
    std::lock_guard lock(mu_);
    for (auto& [zone, state] : zoneStates_) {
      ZoneState next = newStates[zone];
      if (state == next) continue;
      auto it = zoneConditions.find(zone);
      setLimiterInZone(zone, it == zoneConditions.end() ? 0 : it->second.size(), next);
      state = next;
    }
  }

  void doNoExecuteTaintingPass() {
    auto now = now_();
    std::vector<std::string> zones;
    {
      std::lock_guard lock(mu_);
      for (const auto& [zone, t] : tainters_) zones.push_back(zone);
    }
    for (const auto& zone : zones) {
      for (;;) {
        std::string name;
        {
          std::lock_guard lock(mu_);
          auto& t = tainters_[zone];
          if (t.queue.empty() || !t.limiter.tryAccept(now)) break;
          name = t.queue.front();
          t.queue.pop_front();  // stays in `members`
        }
        auto node = nodes_->get(name);
        if (!node) {
          std::lock_guard lock(mu_);
          tainters_[zone].members.erase(name);
          continue;
        }
        std::string status = readyStatus(*node);
        bool ok = true;
        if (status == "False") {
          ok = swapTaints(name, {{kNotReadyTaint, "", "NoExecute"}}, {{kUnreachableTaint, "", "NoExecute"}});
        } else if (status == "Unknown") {
          ok = swapTaints(name, {{kUnreachableTaint, "", "NoExecute"}}, {{kNotReadyTaint, "", "NoExecute"}});
        }
        if (!ok) {
          std::lock_guard lock(mu_);
          tainters_[zone].queue.push_back(name);
        }
      }
    }
  }

  // ---- per node: NoSchedule taints, and the taint manager's pass over its pods ----------

  Status syncNode(const std::string& name) {
    auto node = nodes_->get(name);
    if (!node) {
      // Pods of a deleted node are the pod GC's; cancel their scheduled evictions.
      for (const auto& p : podsOnNode(name)) cancelEviction(*p);
      return Status::ok();
    }
    // doNoScheduleTaintingPass.
    std::vector<Taint> want;
    for (const auto& ct : kConditionTaints) {
      const json* c = condition(*node, ct.condition);
      if (c && c->value("status", "") == ct.status) want.push_back({ct.taint, "", "NoSchedule"});
    }
    if ((*node).value("spec", json::object()).value("unschedulable", false))
      want.push_back({kUnschedulableTaint, "", "NoSchedule"});
    std::vector<Taint> have;
    for (const auto& t : taintsOf(*node))
      if (t.effect == "NoSchedule" && (t.key == kUnschedulableTaint || isConditionTaintKey(t.key))) have.push_back(t);
    std::vector<Taint> add, remove;
    for (const auto& w : want)
      if (std::none_of(have.begin(), have.end(), [&](const Taint& h) { return h.key == w.key; })) add.push_back(w);
    for (const auto& h : have)
      if (std::none_of(want.begin(), want.end(), [&](const Taint& w) { return h.key == w.key; })) remove.push_back(h);
    if ((!add.empty() || !remove.empty()) && !swapTaints(name, add, remove)) {
      return Status::internal("failed to swap taints of node " + name);
    }
    // The taint manager: every pod on the node against its NoExecute taints.
    for (const auto& p : podsOnNode(name)) processPod(*p, *node);
    return Status::ok();
  }

  Status syncPod(const std::string& key) {
    auto pod = pods_->get(key);
    if (!pod) return Status::ok();
    auto node = nodes_->get(nodeNameOf(*pod));
    if (!node) return Status::ok();
    processPod(*pod, *node);
    return Status::ok();
  }

  void cancelEviction(const json& pod) {
    std::string key = client::objectKey(pod);
    bool had;
    {
      std::lock_guard lock(mu_);
      had = evictions_.erase(key) > 0;
    }
    if (had) record(pod, "Normal", "TaintManagerEviction", "Cancelling deletion of Pod " + key);
  }

  // tainteviction's processPodOnNode.
  void processPod(const json& pod, const json& node) {
    std::vector<Taint> taints;
    for (const auto& t : taintsOf(node))
      if (t.effect == "NoExecute") taints.push_back(t);
    if (taints.empty()) return cancelEviction(pod);
    json tolerations = pod.value("spec", json::object()).value("tolerations", json::array());
    bool allTolerated = true;
    std::vector<const json*> used;
    for (const auto& t : taints) {
      const json* match = nullptr;
      for (const auto& tol : tolerations)
        if (tol.is_object() && tolerates(tol, t)) {
          match = &tol;
          break;
        }
      if (!match) {
        allTolerated = false;
        break;
      }
      used.push_back(match);
    }
    std::string key = client::objectKey(pod);
    auto now = now_();
    if (!allTolerated) {
      cancelEviction(pod);
      schedule(key, now, now);
      return;
    }
    // The shortest tolerationSeconds of the tolerations in use (none: tolerated forever).
    int64_t minSeconds = -1;
    for (const json* tol : used) {
      auto it = tol->find("tolerationSeconds");
      if (it == tol->end() || !it->is_number_integer()) continue;
      int64_t s = std::max<int64_t>(0, it->get<int64_t>());
      if (minSeconds < 0 || s < minSeconds) minSeconds = s;
    }
    if (minSeconds < 0) return cancelEviction(pod);
    {
      // An eviction already scheduled (from an earlier moment) stands, as in kube.
      std::lock_guard lock(mu_);
      if (evictions_.count(key)) return;
    }
    schedule(key, now, now + std::chrono::seconds(minSeconds));
  }

  void schedule(const std::string& key, SysClock::time_point createdAt, SysClock::time_point fireAt) {
    {
      std::lock_guard lock(mu_);
      evictions_[key] = {createdAt, fireAt};
    }
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(fireAt - now_());
    if (delay.count() <= 0) queue().add("evict/" + key);
    else queue().addAfter("evict/" + key, delay);
  }

  Status syncEviction(const std::string& key) {
    Eviction e;
    {
      std::lock_guard lock(mu_);
      auto it = evictions_.find(key);
      if (it == evictions_.end()) return Status::ok();  // cancelled
      e = it->second;
    }
    auto now = now_();
    if (e.fireAt > now) {
      queue().addAfter("evict/" + key, std::chrono::duration_cast<std::chrono::milliseconds>(e.fireAt - now) +
                                           std::chrono::milliseconds(1));
      return Status::ok();
    }
    auto pod = pods_->get(key);
    if (!pod) {
      std::lock_guard lock(mu_);
      evictions_.erase(key);
      return Status::ok();
    }
    record(*pod, "Normal", "TaintManagerEviction", "Marking for deletion Pod " + key);
    auto [ns, name] = client::splitKey(key);
    // addConditionAndDeletePod: say why (DisruptionTarget), then delete with the pod's grace.
    json patch = {{"metadata", {{"uid", api::metaString(*pod, "uid")}}},
                  {"status",
                   {{"conditions", json::array({{{"type", "DisruptionTarget"},
                                                 {"status", "True"},
                                                 {"reason", "DeletionByTaintManager"},
                                                 {"message", "Taint manager: deleting due to NoExecute taint"},
                                                 {"lastTransitionTime", api::formatTime(now)}}})}}}};
    auto patched = client_->patch(kPods, ns, name, client::PatchType::kStrategicMerge, patch.dump(), "status");
    if (!patched.ok() && patched.status().code() != 404 && patched.status().code() != 409)
      return patched.status();
    auto deleted = client_->remove(kPods, ns, name);
    if (!deleted.ok() && deleted.status().code() != 404) return deleted.status();
    std::lock_guard lock(mu_);
    evictions_.erase(key);
    return Status::ok();
  }

  NodeLifecycleOptions options_;
  std::shared_ptr<client::Client> client_;
  std::function<SysClock::time_point()> now_;
  client::Informer* nodes_ = nullptr;
  client::Informer* leases_ = nullptr;
  client::Informer* pods_ = nullptr;

  std::mutex mu_;  // everything below but health_
  std::unordered_map<std::string, std::set<std::string>> podsByNode_;
  std::set<std::string> known_;
  std::set<std::string> nodesToRetry_;
  std::map<std::string, ZoneTainter> tainters_;
  std::map<std::string, ZoneState> zoneStates_;
  std::unordered_map<std::string, Eviction> evictions_;
  SysClock::time_point lastMonitor_{};

  std::mutex healthMu_;
  std::map<std::string, NodeHealth> health_;
};

}  // namespace

std::unique_ptr<Controller> newNodeLifecycleController(NodeLifecycleOptions options) {
  return std::make_unique<NodeLifecycleController>(options);
}

}  // namespace orrery::controllers
