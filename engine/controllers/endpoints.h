#pragma once
// kube-controller-manager's Endpoints controller (pkg/controller/endpoint): one Endpoints object
// per Service with a selector, named like the Service, listing the addresses of the pods it
// selects (ready ones in `addresses`, the others in `notReadyAddresses`) grouped by port set.
//
// The helpers in namespace `endpoints` are shared with the EndpointSlice controller. They are
// inline (header-only) because each controller is its own library and only the runner (with
// util.h) is linked in common.

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/object.h"
#include "engine/api/status.h"
#include "engine/client/informer.h"
#include "engine/controllers/controller.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

/// The "endpoint" controller (events as "endpoint-controller").
std::unique_ptr<Controller> newEndpointsController();

namespace endpoints {

/// Annotation with the time of the change that triggered the last Endpoints(Slice) write.
inline constexpr const char* kLastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time";
/// Annotation set to "truncated" when an Endpoints object holds more than kMaxCapacity addresses.
inline constexpr const char* kOverCapacity = "endpoints.kubernetes.io/over-capacity";
/// Label on Endpoints and EndpointSlices of a headless Service (clusterIP None or unset).
inline constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";
inline constexpr int kMaxCapacity = 1000;


/// The service's selector as a label map; empty when it has none (an empty selector selects
/// nothing for endpoints, as a nil one).
inline nlohmann::json serviceSelector(const nlohmann::json& service) {
  const nlohmann::json& sel = field(service, "spec", "selector");
  return sel.is_object() ? sel : nlohmann::json::object();
}

/// The pod's labels carry every key=value of `selector` (labels.SelectorFromSet).
inline bool selectorMatches(const nlohmann::json& selector, const nlohmann::json& labels) {
  if (!selector.is_object() || selector.empty()) return false;
  if (!labels.is_object()) return false;
  for (const auto& [k, v] : selector.items()) {
    auto it = labels.find(k);
    if (it == labels.end() || *it != v) return false;
  }
  return true;
}

/// endpointsliceutil.ShouldPodBeInEndpoints: the pod has an IP, is not terminating (unless
/// `includeTerminating`), and has not terminated for good under its restart policy.
inline bool shouldPodBeInEndpoints(const nlohmann::json& pod, bool includeTerminating) {
  const nlohmann::json& status = field(pod, "status");
  const nlohmann::json& ips = field(status, "podIPs");
  bool hasIp = !strField(pod, "status", "podIP").empty() || (ips.is_array() && !ips.empty());
  if (!hasIp) return false;
  const nlohmann::json& dt = field(pod, "metadata", "deletionTimestamp");
  if (!includeTerminating && dt.is_string() && !dt.get_ref<const std::string&>().empty()) return false;
  std::string policy = strField(pod, "spec", "restartPolicy");
  std::string phase = strField(pod, "status", "phase");
  if (policy == "Never") return phase != "Failed" && phase != "Succeeded";
  if (policy == "OnFailure") return phase != "Succeeded";
  return true;
}

/// podutil.FindPort: the container port a service port targets. A named targetPort is looked
/// up among the containers' ports with the same protocol; a number is taken as is.
inline api::Result<int64_t> findPort(const nlohmann::json& pod, const nlohmann::json& servicePort) {
  nlohmann::json target = field(servicePort, "targetPort");
  if (target.is_null()) target = field(servicePort, "port");
  std::string protocol = servicePort.value("protocol", "TCP");
  if (target.is_string()) {
    const std::string& name = target.get_ref<const std::string&>();
    // A numeric string is an IntOrString holding a number only in JSON from sloppy clients.
    for (const char* list : {"containers", "initContainers"}) {
      const nlohmann::json& containers = field(field(pod, "spec"), list);
      if (!containers.is_array()) continue;
      for (const auto& c : containers) {
        // Only restartable init containers (sidecars) serve traffic.
        if (std::string(list) == "initContainers" && c.value("restartPolicy", "") != "Always") continue;
        const nlohmann::json& ports = field(c, "ports");
        if (!ports.is_array()) continue;
        for (const auto& p : ports)
          if (p.value("name", "") == name && p.value("protocol", "TCP") == protocol &&
              p.contains("containerPort") && p["containerPort"].is_number_integer())
            return p["containerPort"].get<int64_t>();
      }
    }
    return api::Status::badRequest("no suitable port for manifest: " + strField(pod, "metadata", "uid"));
  }
  if (target.is_number_integer()) return target.get<int64_t>();
  return api::Status::badRequest("no suitable port for manifest: " + strField(pod, "metadata", "uid"));
}

/// The pod's IP of the family a service uses ("IPv4" or "IPv6"), or "".
inline std::string podIpOfFamily(const nlohmann::json& pod, const std::string& family) {
  bool v6 = family == "IPv6";
  auto isV6 = [](const std::string& ip) { return ip.find(':') != std::string::npos; };
  const nlohmann::json& ips = field(pod, "status", "podIPs");
  if (ips.is_array())
    for (const auto& i : ips) {
      std::string ip = i.value("ip", "");
      if (!ip.empty() && isV6(ip) == v6) return ip;
    }
  std::string ip = strField(pod, "status", "podIP");
  if (!ip.empty() && isV6(ip) == v6) return ip;
  return "";
}

/// The IP families a service serves (spec.ipFamilies, else by its clusterIP; IPv4 by default).
inline std::vector<std::string> serviceIpFamilies(const nlohmann::json& service) {
  std::vector<std::string> out;
  const nlohmann::json& fams = field(service, "spec", "ipFamilies");
  if (fams.is_array())
    for (const auto& f : fams)
      if (f.is_string() && (f == "IPv4" || f == "IPv6")) out.push_back(f.get<std::string>());
  if (out.empty()) {
    std::string ip = strField(service, "spec", "clusterIP");
    out.push_back(ip.find(':') != std::string::npos ? "IPv6" : "IPv4");
  }
  return out;
}

/// helper.IsServiceIPSet: clusterIP is set and not "None".
inline bool isServiceIpSet(const nlohmann::json& service) {
  std::string ip = strField(service, "spec", "clusterIP");
  return !ip.empty() && ip != "None";
}

/// endpointsliceutil.ShouldSetHostname: the pod names this service as its subdomain.
inline bool shouldSetHostname(const nlohmann::json& pod, const nlohmann::json& service) {
  return !strField(pod, "spec", "hostname").empty() &&
         strField(pod, "spec", "subdomain") == strField(service, "metadata", "name") &&
         strField(pod, "metadata", "namespace") == strField(service, "metadata", "namespace");
}

/// The keys ("ns/name") of the services in the pod's namespace whose selector matches it.
inline std::vector<std::string> servicesSelecting(const client::Informer& services, const nlohmann::json& pod) {
  std::vector<std::string> out;
  const nlohmann::json& labels = field(pod, "metadata", "labels");
  for (const auto& svc : services.byIndex("namespace", strField(pod, "metadata", "namespace")))
    if (selectorMatches(serviceSelector(*svc), labels)) out.push_back(client::objectKey(*svc));
  return out;
}

/// Whether a pod change can change any Endpoints (endpointsliceutil.podEndpointsChanged and
/// the label check of GetServicesToUpdateOnPodChange).
inline bool podChangeMatters(const nlohmann::json& oldPod, const nlohmann::json& newPod) {
  if (field(oldPod, "metadata").value("resourceVersion", "") ==
      field(newPod, "metadata").value("resourceVersion", ""))
    return false;
  // Runs on every pod update: compare in place rather than build a view of each pod.
  auto sameJson = [&](const char* a, const char* b) { return field(oldPod, a, b) == field(newPod, a, b); };
  auto sameString = [&](const char* a, const char* b) { return strField(oldPod, a, b) == strField(newPod, a, b); };
  bool same = sameJson("metadata", "labels") && isBeingDeleted(oldPod) == isBeingDeleted(newPod) &&
              isPodReady(oldPod) == isPodReady(newPod) && sameString("status", "podIP") &&
              sameJson("status", "podIPs") && sameString("status", "phase") && sameString("spec", "nodeName") &&
              sameString("spec", "hostname") && sameString("spec", "subdomain") && sameJson("spec", "containers");
  return !same;
}

/// The handlers both controllers register: a Service change syncs that Service; a pod change
/// that can matter syncs every Service selecting the pod before and after it.
inline void enqueueServicesOnChange(client::Informer& services, client::Informer& pods, client::WorkQueue& queue) {
  auto serviceKey = [&queue](const client::ObjectPtr& s) { queue.add(client::objectKey(*s)); };
  services.addHandler({serviceKey, [serviceKey](const client::ObjectPtr&, const client::ObjectPtr& s) { serviceKey(s); },
                       serviceKey});
  auto forPod = [&services, &queue](const nlohmann::json& pod) {
    for (const auto& key : servicesSelecting(services, pod)) queue.add(key);
  };
  pods.addHandler({
      [forPod](const client::ObjectPtr& p) { forPod(*p); },
      [forPod](const client::ObjectPtr& o, const client::ObjectPtr& n) {
        if (!podChangeMatters(*o, *n)) return;
        forPod(*o);
        forPod(*n);
      },
      [forPod](const client::ObjectPtr& p) { forPod(*p); },
  });
}

/// endpointsutil.TriggerTimeTracker: computes the last-change-trigger-time of a service's
/// Endpoints(Slices): the earliest trigger (a pod's Ready transition, the service's creation)
/// that changed since the previous sync; the service's creation time on its first sync; none
/// (nullopt) when nothing changed. Thread-safe.
class TriggerTimeTracker {
 public:
  using Time = std::chrono::system_clock::time_point;

  std::optional<Time> compute(const nlohmann::json& service, const std::vector<client::ObjectPtr>& pods) {
    std::string key = client::objectKey(service);
    auto parse = [](const nlohmann::json& v) {
      Time t{};
      if (v.is_string()) api::parseTime(v.get<std::string>(), &t);
      return t;
    };
    Time created = parse(field(service, "metadata", "creationTimestamp"));
    std::lock_guard lock(mu_);
    auto it = states_.find(key);
    bool known = it != states_.end();
    State previous = known ? it->second : State{};
    State next;
    std::optional<Time> minChanged;
    auto consider = [&](Time t) {
      if (!minChanged || t < *minChanged) minChanged = t;
    };
    for (const auto& pod : pods) {
      const nlohmann::json* ready = podCondition(*pod, "Ready");
      if (!ready) continue;
      Time t = parse(field(*ready, "lastTransitionTime"));
      if (t == Time{}) continue;
      std::string name = strField(*pod, "metadata", "name");
      next.pods[name] = t;
      auto p = previous.pods.find(name);
      if (p == previous.pods.end() || t > p->second) consider(t);
    }
    next.service = created;
    if (created > previous.service) consider(created);
    // Committed only by commit(): a failed write must see the same changes on its retry.
    pending_[key] = std::move(next);
    if (!known) return created == Time{} ? std::nullopt : std::optional<Time>(created);
    return minChanged;
  }

  /// Records what the last compute() saw, once its write succeeded (or was not needed).
  void commit(const std::string& serviceKey) {
    std::lock_guard lock(mu_);
    auto it = pending_.find(serviceKey);
    if (it == pending_.end()) return;
    states_[serviceKey] = std::move(it->second);
    pending_.erase(it);
  }

  void forget(const std::string& serviceKey) {
    std::lock_guard lock(mu_);
    states_.erase(serviceKey);
    pending_.erase(serviceKey);
  }

 private:
  struct State {
    std::map<std::string, Time> pods;
    Time service{};
  };
  std::mutex mu_;
  std::map<std::string, State> states_;
  std::map<std::string, State> pending_;
};

/// RepackSubsets: groups (address, port) pairs into subsets of the same port set, an address
/// that is both ready and not ready counting as ready; sorted (ports by name then number,
/// addresses by IP then target uid).
nlohmann::json repackSubsets(const nlohmann::json& subsets);

/// Truncates to kMaxCapacity addresses, not-ready ones first, proportionally per subset.
/// True if it truncated.
bool truncateSubsets(nlohmann::json& subsets);

}  // namespace endpoints
}  // namespace orrery::controllers
