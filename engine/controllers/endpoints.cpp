// The Endpoints controller, as pkg/controller/endpoint in kube-controller-manager 1.32.

#include "engine/controllers/endpoints.h"

#include <cmath>
#include <set>

#include <spdlog/spdlog.h>

#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;

namespace endpoints {
namespace {

std::string addressKey(const json& addr) {
  return addr.value("ip", "") + "|" + field(addr, "targetRef", "uid").dump();
}

bool lessAddress(const json& a, const json& b) {
  std::string ia = a.value("ip", ""), ib = b.value("ip", "");
  if (ia != ib) return ia < ib;
  return field(a, "targetRef", "uid").dump() < field(b, "targetRef", "uid").dump();
}

bool lessPort(const json& a, const json& b) {
  std::string na = a.value("name", ""), nb = b.value("name", "");
  if (na != nb) return na < nb;
  if (a.value("port", 0) != b.value("port", 0)) return a.value("port", 0) < b.value("port", 0);
  return a.dump() < b.dump();
}

}  // namespace

json repackSubsets(const json& subsets) {
  struct PortGroup {
    json port;  // null: the "no ports" sentinel
    std::map<std::string, std::pair<json, bool>> addrs;  // addressKey -> (address, ready)
  };
  std::map<std::string, PortGroup> byPort;
  auto add = [&](const json& port, const json& subset) {
    std::string key = port.is_null() ? std::string() : port.dump();
    PortGroup& g = byPort[key];
    g.port = port;
    for (const char* list : {"addresses", "notReadyAddresses"}) {
      bool ready = std::string(list) == "addresses";
      const json& addrs = field(subset, list);
      if (!addrs.is_array()) continue;
      for (const auto& a : addrs) {
        auto [it, inserted] = g.addrs.emplace(addressKey(a), std::make_pair(a, ready));
        // Ready wins over not ready for the same address.
        if (!inserted && ready) it->second = {a, true};
      }
    }
  };
  if (subsets.is_array())
    for (const auto& s : subsets) {
      const json& ports = field(s, "ports");
      if (!ports.is_array() || ports.empty()) add(json(), s);
      else
        for (const auto& p : ports) add(p, s);
    }

  // Ports offered by exactly the same set of (address, readiness) form one subset.
  struct Group {
    std::vector<json> ports;
    const PortGroup* members = nullptr;
  };
  std::map<std::string, Group> groups;
  for (const auto& [portKey, g] : byPort) {
    std::string setKey;
    for (const auto& [k, v] : g.addrs) setKey += k + (v.second ? "+" : "-") + ";";
    Group& grp = groups[setKey];
    grp.members = &g;
    if (!g.port.is_null()) grp.ports.push_back(g.port);
  }
  std::vector<json> out;
  for (auto& [setKey, grp] : groups) {
    std::vector<json> ready, notReady;
    for (const auto& [k, v] : grp.members->addrs) (v.second ? ready : notReady).push_back(v.first);
    std::sort(ready.begin(), ready.end(), lessAddress);
    std::sort(notReady.begin(), notReady.end(), lessAddress);
    std::sort(grp.ports.begin(), grp.ports.end(), lessPort);
    json subset = json::object();
    if (!ready.empty()) subset["addresses"] = ready;
    if (!notReady.empty()) subset["notReadyAddresses"] = notReady;
    if (!grp.ports.empty()) subset["ports"] = grp.ports;
    out.push_back(std::move(subset));
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    std::string pa = field(a, "ports").dump(), pb = field(b, "ports").dump();
    if (pa != pb) return pa < pb;
    return a.dump() < b.dump();
  });
  return json(out);
}

bool truncateSubsets(json& subsets) {
  if (!subsets.is_array()) return false;
  auto count = [](const json& s, const char* list) {
    const json& v = field(s, list);
    return v.is_array() ? static_cast<int>(v.size()) : 0;
  };
  int totalReady = 0, totalNotReady = 0;
  for (const auto& s : subsets) {
    totalReady += count(s, "addresses");
    totalNotReady += count(s, "notReadyAddresses");
  }
  if (totalReady + totalNotReady <= kMaxCapacity) return false;
  bool truncateReady = totalReady > kMaxCapacity;
  int max = truncateReady ? kMaxCapacity : kMaxCapacity - totalReady;
  int numTotal = truncateReady ? totalReady : totalNotReady;
  int canBeAdded = max;
  for (auto& s : subsets) {
    int inSubset = count(s, truncateReady ? "addresses" : "notReadyAddresses");
    // Each subset keeps its share; rounding up, so the last ones may get less.
    int toBeAdded = static_cast<int>(std::ceil(static_cast<double>(inSubset) / numTotal * max));
    toBeAdded = std::min(toBeAdded, canBeAdded);
    canBeAdded -= toBeAdded;
    auto keep = [&](const char* list, int n) {
      if (!s.contains(list)) return;
      json& arr = s[list];
      if (static_cast<int>(arr.size()) > n) arr.erase(arr.begin() + n, arr.end());
      if (arr.empty()) s.erase(list);
    };
    if (truncateReady) {
      keep("addresses", toBeAdded);
      s.erase("notReadyAddresses");
    } else {
      keep("notReadyAddresses", toBeAdded);
    }
  }
  return true;
}

}  // namespace endpoints

namespace {

using namespace endpoints;

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kServices{"", "v1", "services"};
const api::GroupVersionResource kEndpoints{"", "v1", "endpoints"};

// Subsets as stored, without what the comparison ignores (targetRef.resourceVersion).
json comparable(json subsets) {
  if (!subsets.is_array()) return json::array();
  for (auto& s : subsets)
    for (const char* list : {"addresses", "notReadyAddresses"})
      if (s.contains(list) && s[list].is_array())
        for (auto& a : s[list])
          if (a.contains("targetRef") && a["targetRef"].is_object()) a["targetRef"].erase("resourceVersion");
  return subsets;
}

class EndpointsController : public Controller {
 public:
  std::string name() const override { return "endpoint"; }
  int workers() const override { return 5; }  // --concurrent-endpoint-syncs

  Status setup(ControllerContext& context) override {
    context_ = &context;
    client_ = context.client;
    services_ = &context.informers->informer(kServices);
    pods_ = &context.informers->informer(kPods);
    endpoints_ = &context.informers->informer(kEndpoints);
    enqueueServicesOnChange(*services_, *pods_, queue());
    endpoints_->addHandler({
        // checkLeftoverEndpoints: what the first list shows is synced once, so that the
        // Endpoints of services deleted while the controller was down are removed.
        [this](const client::ObjectPtr& e) {
          if (!endpoints_->hasSynced()) queue().add(client::objectKey(*e));
        },
        nullptr,
        // Someone deleted an Endpoints we manage: put it back.
        [this](const client::ObjectPtr& e) {
          auto svc = services_->get(client::objectKey(*e));
          if (svc && !serviceSelector(*svc).empty()) queue().add(client::objectKey(*e));
        },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    return syncService(key);
  }

 private:
  Status syncService(const std::string& key) {
    auto [ns, name] = client::splitKey(key);
    auto svcPtr = services_->get(key);
    if (!svcPtr) {
      // The service is gone: its Endpoints go too. A leader-election lock is no endpoint.
      auto ep = endpoints_->get(key);
      if (ep && field(*ep, "metadata", "annotations")
                    .contains("control-plane.alpha.kubernetes.io/leader"))
        return {};
      auto r = client_->remove(kEndpoints, ns, name);
      if (!r.ok() && r.status().code() != 404) return r.status();
      triggers_.forget(key);
      return {};
    }
    const json& svc = *svcPtr;
    if (strField(svc, "spec", "type") == "ExternalName") return {};
    json selector = serviceSelector(svc);
    if (selector.empty()) return {};  // the user manages this service's Endpoints

    std::vector<client::ObjectPtr> pods;
    for (const auto& p : pods_->byIndex("namespace", ns))
      if (selectorMatches(selector, field(*p, "metadata", "labels"))) pods.push_back(p);
    auto triggerTime = triggers_.compute(svc, pods);

    bool publishNotReady = field(svc, "spec", "publishNotReadyAddresses") == true;
    std::string family = serviceIpFamilies(svc).front();
    const json& svcPorts = field(svc, "spec", "ports");
    json subsets = json::array();
    for (const auto& podPtr : pods) {
      const json& pod = *podPtr;
      if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
      std::string ip = podIpOfFamily(pod, family);
      if (ip.empty()) {
        spdlog::debug("endpoint: pod {} has no {} address for service {}", client::objectKey(pod), family, key);
        continue;
      }
      json addr = {{"ip", ip},
                   {"targetRef",
                    {{"kind", "Pod"},
                     {"namespace", strField(pod, "metadata", "namespace")},
                     {"name", strField(pod, "metadata", "name")},
                     {"uid", strField(pod, "metadata", "uid")}}}};
      std::string node = strField(pod, "spec", "nodeName");
      if (!node.empty()) addr["nodeName"] = node;
      if (shouldSetHostname(pod, svc)) addr["hostname"] = strField(pod, "spec", "hostname");
      bool ready = publishNotReady || isPodReady(pod);
      auto addSubset = [&](const json* port) {
        json s = {{ready ? "addresses" : "notReadyAddresses", json::array({addr})}};
        if (port) s["ports"] = json::array({*port});
        subsets.push_back(std::move(s));
      };
      if (!svcPorts.is_array() || svcPorts.empty()) {
        // A headless service without ports still lists its pods.
        if (strField(svc, "spec", "clusterIP") == "None") addSubset(nullptr);
        continue;
      }
      for (const auto& sp : svcPorts) {
        auto port = findPort(pod, sp);
        if (!port.ok()) {
          spdlog::debug("endpoint: service {}: {}", key, port.status().message());
          continue;
        }
        json epp = {{"port", *port}, {"protocol", sp.value("protocol", "TCP")}};
        if (!sp.value("name", "").empty()) epp["name"] = sp["name"];
        if (sp.contains("appProtocol") && sp["appProtocol"].is_string()) epp["appProtocol"] = sp["appProtocol"];
        addSubset(&epp);
      }
    }
    subsets = repackSubsets(subsets);
    bool truncated = truncateSubsets(subsets);

    json labels = field(svc, "metadata", "labels");
    if (!labels.is_object()) labels = json::object();
    labels.erase(kHeadlessLabel);

    // Whether `current` already holds what this sync computed: then nothing is written.
    auto upToDate = [&](const json& current) {
      json curLabels = field(current, "metadata", "labels");
      if (!curLabels.is_object()) curLabels = json::object();
      curLabels.erase(kHeadlessLabel);
      const json& annotations = field(current, "metadata", "annotations");
      bool capacityOk = (annotations.is_object() && annotations.value(kOverCapacity, "") == "truncated") == truncated;
      return comparable(field(current, "subsets")) == comparable(subsets) && curLabels == labels && capacityOk;
    };
    // The object to write, keeping what others set on `current` (its other annotations).
    auto desired = [&](const json* current) {
      json ep = current ? *current
                        : json{{"apiVersion", "v1"}, {"kind", "Endpoints"}, {"metadata", {{"name", name}, {"namespace", ns}}}};
      ep["apiVersion"] = "v1";
      ep["kind"] = "Endpoints";
      if (subsets.empty()) ep.erase("subsets");
      else ep["subsets"] = subsets;
      json& meta = ep["metadata"];
      json annotations = meta.contains("annotations") && meta["annotations"].is_object() ? meta["annotations"] : json::object();
      if (triggerTime) annotations[kLastChangeTriggerTime] = api::formatTime(*triggerTime);
      else annotations.erase(kLastChangeTriggerTime);
      if (truncated) annotations[kOverCapacity] = "truncated";
      else annotations.erase(kOverCapacity);
      if (annotations.empty()) meta.erase("annotations");
      else meta["annotations"] = annotations;
      json outLabels = labels;
      if (!isServiceIpSet(svc)) outLabels[kHeadlessLabel] = "";
      if (outLabels.empty()) meta.erase("labels");
      else meta["labels"] = outLabels;
      return ep;
    };

    auto current = endpoints_->get(key);
    bool create = !current;
    if (current && upToDate(*current)) {
      triggers_.commit(key);
      return {};
    }
    auto r = create ? client_->create(kEndpoints, ns, desired(nullptr)) : client_->update(kEndpoints, ns, desired(current.get()));
    if (!r.ok() && r.status().code() == 409) {
      // Conflict or AlreadyExists: the cache lags a newer write (often our own). Compare with
      // the stored object instead; writing our stale copy back would drop what the newer
      // write set, such as its last-change-trigger-time.
      auto fresh = client_->get(kEndpoints, ns, name);
      if (fresh.ok()) {
        if (upToDate(*fresh)) {
          triggers_.commit(key);
          return {};
        }
        r = client_->update(kEndpoints, ns, desired(&*fresh));
      }
    }
    if (r.ok()) triggers_.commit(key);
    if (!r.ok()) {
      // A terminating namespace refuses creations: nothing to retry.
      for (const auto& c : r.status().causes)
        if (c.type == "NamespaceTerminating") return {};
      if (create && r.status().code() == 403) return {};
      if (events) {
        if (create)
          events->record(svc, "Warning", "FailedToCreateEndpoint",
                         "Failed to create endpoint for service " + key + ": " + r.status().message());
        else
          events->record(svc, "Warning", "FailedToUpdateEndpoint",
                         "Failed to update endpoint " + key + ": " + r.status().message());
      }
      return r.status();
    }
    return {};
  }

  ControllerContext* context_ = nullptr;
  std::shared_ptr<client::Client> client_;
  client::Informer* services_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* endpoints_ = nullptr;
  TriggerTimeTracker triggers_;
};

}  // namespace

std::unique_ptr<Controller> newEndpointsController() { return std::make_unique<EndpointsController>(); }

}  // namespace orrery::controllers
