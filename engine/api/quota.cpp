// Quota usage arithmetic (see quota.h).

#include "engine/api/quota.h"

#include <cmath>
#include <optional>
#include <set>

#include "engine/api/object.h"

namespace orrery::api {

using nlohmann::json;

void addQuantity(Quantities& sum, const std::string& key, const Quantity& q) {
  auto it = sum.find(key);
  if (it == sum.end()) sum.emplace(key, q);
  else it->second.add(q);
}

static std::optional<Quantity> quantityOf(const json& v) {
  if (v.is_string()) {
    auto q = Quantity::parse(v.get<std::string>());
    if (q.ok()) return *q;
    return std::nullopt;
  }
  if (v.is_number_integer()) return Quantity::fromInt(v.get<int64_t>());
  if (v.is_number()) return Quantity::fromMilli(static_cast<int64_t>(std::llround(v.get<double>() * 1000)));
  return std::nullopt;
}

Quantities quantitiesOf(const json& list) {
  Quantities out;
  if (!list.is_object()) return out;
  for (const auto& [k, v] : list.items()) {
    if (auto q = quantityOf(v)) out.emplace(k, *q);
  }
  return out;
}

std::vector<const json*> podContainers(const json& pod, bool withInit) {
  // Pointers into `pod` itself (a copy of its spec would leave them dangling).
  std::vector<const json*> out;
  const json& spec = memberOrEmpty(pod, "spec");
  for (const char* field : {"containers", "initContainers"}) {
    if (!withInit && std::string(field) == "initContainers") continue;
    const json& list = memberOrEmpty(spec, field);
    if (!list.is_array()) continue;
    for (const auto& c : list) out.push_back(&c);
  }
  return out;
}

/// A pod's requests or limits as the quota and the scheduler count them: the sum of its
/// containers, at least each init container's, plus the pod overhead.
Quantities effectivePodResources(const json& pod, const char* kind) {
  Quantities sum;
  const json& spec = memberOrEmpty(pod, "spec");
  if (auto it = spec.find("containers"); it != spec.end() && it->is_array()) {
    for (const auto& c : *it) {
      for (auto& [k, q] : quantitiesOf(memberOrEmpty(memberOrEmpty(c, "resources"), kind))) addQuantity(sum, k, q);
    }
  }
  if (auto it = spec.find("initContainers"); it != spec.end() && it->is_array()) {
    for (const auto& c : *it) {
      for (auto& [k, q] : quantitiesOf(memberOrEmpty(memberOrEmpty(c, "resources"), kind))) {
        auto cur = sum.find(k);
        if (cur == sum.end() || cur->second < q) sum[k] = q;
      }
    }
  }
  for (auto& [k, q] : quantitiesOf(memberOrEmpty(spec, "overhead"))) addQuantity(sum, k, q);
  return sum;
}

static bool isStandardComputeResource(const std::string& name) {
  return name == "cpu" || name == "memory" || name == "ephemeral-storage" || name.rfind("hugepages-", 0) == 0;
}

/// What a pod counts against a quota (kube's pod evaluator), for every resource name a
/// quota may list. Terminal pods count nothing.
static Quantities podUsage(const json& pod) {
  Quantities usage;
  std::string phase = pod.value("status", json::object()).value("phase", "");
  if (phase == "Succeeded" || phase == "Failed") return usage;
  usage.emplace("pods", Quantity::fromInt(1));
  usage.emplace("count/pods", Quantity::fromInt(1));
  for (auto& [k, q] : effectivePodResources(pod, "requests")) {
    usage["requests." + k] = q;
    if (k == "cpu" || k == "memory" || k == "ephemeral-storage") usage[k] = q;
  }
  for (auto& [k, q] : effectivePodResources(pod, "limits")) {
    if (isStandardComputeResource(k)) usage["limits." + k] = q;
  }
  return usage;
}

/// Object-count usage of one new object: "count/<resource>[.<group>]", and the legacy
/// names kube keeps for some core resources.
Quantities quotaUsage(const ResourceInfo& info, const json& object) {
  Quantities usage;
  if (info.group.empty() && info.resource == "pods") return podUsage(object);
  usage.emplace("count/" + info.qualifiedResource(), Quantity::fromInt(1));
  if (info.group.empty()) {
    static const std::set<std::string> legacy = {"services", "configmaps", "secrets", "persistentvolumeclaims",
                                                 "replicationcontrollers", "resourcequotas"};
    if (legacy.count(info.resource)) usage.emplace(info.resource, Quantity::fromInt(1));
    if (info.resource == "services") {
      const json& spec = memberOrEmpty(object, "spec");
      std::string type = spec.value("type", "ClusterIP");
      int64_t nodePorts = 0;
      if (type == "NodePort" || type == "LoadBalancer") {
        for (const auto& p : spec.value("ports", json::array())) {
          if (p.contains("nodePort")) ++nodePorts;
        }
      }
      if (type == "LoadBalancer") usage.emplace("services.loadbalancers", Quantity::fromInt(1));
      if (nodePorts) usage.emplace("services.nodeports", Quantity::fromInt(nodePorts));
    }
    if (info.resource == "persistentvolumeclaims") {
      auto requests = quantitiesOf(memberOrEmpty(memberOrEmpty(memberOrEmpty(object, "spec"), "resources"), "requests"));
      if (auto it = requests.find("storage"); it != requests.end()) usage.emplace("requests.storage", it->second);
    }
  }
  return usage;
}

/// "pods=1,requests.cpu=500m", sorted by name (kube's quota.PrettyPrint).
std::string prettyQuantities(const Quantities& q, const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) {
    auto it = q.find(k);
    if (!out.empty()) out += ",";
    out += k + "=" + (it == q.end() ? Quantity().toString() : it->second.toString());
  }
  return out;
}

/// The quota resources a pod must state for each container ("must specify cpu for: app").
std::string missingQuotaResources(const json& pod, const Quantities& hard) {
  std::vector<std::string> parts;
  for (const std::string& res : {std::string("cpu"), std::string("memory"), std::string("ephemeral-storage")}) {
    for (const char* kind : {"requests", "limits"}) {
      std::string quotaKey = std::string(kind) + "." + res;
      bool tracked = hard.count(quotaKey) || (std::string(kind) == "requests" && hard.count(res));
      if (!tracked) continue;
      std::vector<std::string> lacking;
      for (const json* c : podContainers(pod, true)) {
        const json& list = memberOrEmpty(memberOrEmpty(*c, "resources"), kind);
        if (!list.is_object() || !list.contains(res)) lacking.push_back(c->value("name", ""));
      }
      if (lacking.empty()) continue;
      std::string names;
      for (size_t i = 0; i < lacking.size(); ++i) names += (i ? "," : "") + lacking[i];
      std::string shown = hard.count(quotaKey) ? quotaKey : res;
      parts.push_back(shown + " for: " + names);
    }
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

}  // namespace orrery::api
