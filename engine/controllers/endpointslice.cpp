// The EndpointSlice controller, as pkg/controller/endpointslice and its reconciler
// (k8s.io/endpointslice) in kube-controller-manager 1.32. Topology hints are not computed.

#include "engine/controllers/endpointslice.h"

#include <set>

#include <spdlog/spdlog.h>

#include "engine/controllers/endpoints.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;
using namespace endpointslice;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kServices{"", "v1", "services"};
const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kSlices{"discovery.k8s.io", "v1", "endpointslices"};

int64_t resourceVersionOf(const json& o) {
  try {
    return std::stoll(strField(o, "metadata", "resourceVersion"));
  } catch (...) {
    return 0;
  }
}

// endpointSliceTracker: the resourceVersion of every slice this controller last wrote, per
// service (-1: deleted), so a sync never works from a cache older than its own writes.
class SliceTracker {
 public:
  void wrote(const std::string& svc, const json& slice) {
    std::lock_guard lock(mu_);
    map_[svc][strField(slice, "metadata", "name")] = resourceVersionOf(slice);
  }
  void deleted(const std::string& svc, const std::string& name) {
    std::lock_guard lock(mu_);
    map_[svc][name] = -1;
  }
  // Observed deletion: nothing more to wait for on that slice.
  void observedDeletion(const std::string& svc, const std::string& name) {
    std::lock_guard lock(mu_);
    if (auto it = map_.find(svc); it != map_.end()) it->second.erase(name);
  }
  // True when this update is what we wrote ourselves (no resync needed).
  bool isOwnWrite(const std::string& svc, const json& slice) {
    std::lock_guard lock(mu_);
    auto it = map_.find(svc);
    if (it == map_.end()) return false;
    auto s = it->second.find(strField(slice, "metadata", "name"));
    return s != it->second.end() && s->second == resourceVersionOf(slice);
  }
  bool stale(const std::string& svc, const std::vector<client::ObjectPtr>& cached) {
    std::lock_guard lock(mu_);
    auto it = map_.find(svc);
    if (it == map_.end()) return false;
    std::map<std::string, int64_t> seen;
    for (const auto& s : cached) seen[strField(*s, "metadata", "name")] = resourceVersionOf(*s);
    for (auto e = it->second.begin(); e != it->second.end();) {
      auto c = seen.find(e->first);
      bool isStale = e->second < 0 ? c != seen.end() : (c == seen.end() || c->second < e->second);
      if (isStale) return true;
      e = it->second.erase(e);  // caught up: stop tracking
    }
    return false;
  }
  void forget(const std::string& svc) {
    std::lock_guard lock(mu_);
    map_.erase(svc);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, int64_t>> map_;
};

// The identity of an endpoint in a slice (endpointHash: addresses, hostname, pod).
std::string endpointKey(const json& ep) {
  std::vector<std::string> addrs;
  if (ep.contains("addresses") && ep["addresses"].is_array())
    for (const auto& a : ep["addresses"]) addrs.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  std::sort(addrs.begin(), addrs.end());
  std::string key;
  for (const auto& a : addrs) key += a + ",";
  const json& ref = field(ep, "targetRef");
  key += "|" + ep.value("hostname", "") + "|" + ref.value("namespace", "") + "/" + ref.value("name", "");
  return key;
}

std::string portMapKey(const json& ports) {
  std::vector<std::string> ks;
  if (ports.is_array())
    for (const auto& p : ports) ks.push_back(p.dump());
  std::sort(ks.begin(), ks.end());
  std::string key;
  for (const auto& k : ks) key += k + ";";
  return key;
}

bool ownedBy(const json& slice, const json& svc) {
  const json& refs = field(field(slice, "metadata"), "ownerReferences");
  if (!refs.is_array()) return false;
  std::string uid = strField(svc, "metadata", "uid");
  for (const auto& r : refs)
    if (r.value("uid", "") == uid && r.value("kind", "") == "Service" && r.value("apiVersion", "") == "v1") return true;
  return false;
}

// setEndpointSliceLabels: the service's labels, the headless marker and the reserved ones.
json sliceLabels(const json& svc) {
  json labels = json::object();
  const json& svcLabels = field(field(svc, "metadata"), "labels");
  if (svcLabels.is_object())
    for (const auto& [k, v] : svcLabels.items())
      if (k != kLabelServiceName && k != kLabelManagedBy && k != endpoints::kHeadlessLabel) labels[k] = v;
  if (!endpoints::isServiceIpSet(svc)) labels[endpoints::kHeadlessLabel] = "";
  labels[kLabelServiceName] = strField(svc, "metadata", "name");
  labels[kLabelManagedBy] = kControllerName;
  return labels;
}

class EndpointSliceController : public Controller {
 public:
  explicit EndpointSliceController(int maxPerSlice) : maxPerSlice_(maxPerSlice) {}
  std::string name() const override { return "endpointslice"; }
  std::string component() const override { return "endpoint-slice-controller"; }
  int workers() const override { return 5; }  // --concurrent-service-endpoint-syncs

  Status setup(ControllerContext& context) override {
    client_ = context.client;
    services_ = &context.informers->informer(kServices);
    pods_ = &context.informers->informer(kPods);
    nodes_ = &context.informers->informer(kNodes);
    slices_ = &context.informers->informer(kSlices);
    endpoints::enqueueServicesOnChange(*services_, *pods_, queue());
    auto sliceChanged = [this](const json& slice, bool deleted) {
      const json& labels = field(field(slice, "metadata"), "labels");
      if (!labels.is_object() || labels.value(kLabelManagedBy, "") != kControllerName) return;
      std::string svc = labels.value(kLabelServiceName, "");
      if (svc.empty()) return;
      std::string key = client::objectKey(strField(slice, "metadata", "namespace"), svc);
      if (deleted) {
        tracker_.observedDeletion(key, strField(slice, "metadata", "name"));
      } else if (tracker_.isOwnWrite(key, slice)) {
        return;
      }
      queue().add(key);
    };
    slices_->addHandler({
        [sliceChanged](const client::ObjectPtr& s) { sliceChanged(*s, false); },
        [sliceChanged](const client::ObjectPtr&, const client::ObjectPtr& s) { sliceChanged(*s, false); },
        [sliceChanged](const client::ObjectPtr& s) { sliceChanged(*s, true); },
    });
    return {};
  }

  Status sync(const std::string& key) override {
    return syncService(key);
  }

 private:
  struct Meta {
    std::string addressType;
    json ports;
  };

  Status syncService(const std::string& key) {
    auto [ns, name] = client::splitKey(key);
    auto svcPtr = services_->get(key);
    if (!svcPtr) {
      // The garbage collector removes the slices through their owner reference.
      triggers_.forget(key);
      tracker_.forget(key);
      return {};
    }
    const json& svc = *svcPtr;
    if (strField(svc, "spec", "type") == "ExternalName") return {};
    json selector = endpoints::serviceSelector(svc);
    if (selector.empty()) return {};
    if (isBeingDeleted(svc)) return {};

    std::vector<client::ObjectPtr> pods;
    for (const auto& p : pods_->byIndex("namespace", ns))
      if (endpoints::selectorMatches(selector, field(field(*p, "metadata"), "labels"))) pods.push_back(p);

    std::vector<client::ObjectPtr> slices;
    for (const auto& s : slices_->byIndex("namespace", ns)) {
      const json& labels = field(field(*s, "metadata"), "labels");
      if (!labels.is_object() || labels.value(kLabelServiceName, "") != name ||
          labels.value(kLabelManagedBy, "") != kControllerName)
        continue;
      if (isBeingDeleted(*s)) continue;
      slices.push_back(s);
    }
    if (tracker_.stale(key, slices)) return requeue("EndpointSlice informer cache is out of date");

    auto triggerTime = triggers_.compute(svc, pods);

    std::vector<std::string> families = endpoints::serviceIpFamilies(svc);
    std::set<std::string> supported(families.begin(), families.end());
    std::map<std::string, std::vector<json>> byType;
    std::vector<json> toDelete;
    for (const auto& s : slices) {
      std::string type = (*s).value("addressType", "");
      if (!supported.count(type)) toDelete.push_back(*s);
      else byType[type].push_back(*s);
    }
    std::vector<std::string> errors;
    for (const auto& family : families) {
      Status st = reconcileByAddressType(svc, pods, byType[family], triggerTime, family);
      if (!st.isOk()) errors.push_back(st.message());
    }
    for (const auto& s : toDelete) {
      auto r = client_->remove(kSlices, ns, strField(s, "metadata", "name"));
      if (!r.ok() && r.status().code() != 404) errors.push_back(r.status().message());
      else tracker_.deleted(key, strField(s, "metadata", "name"));
    }
    if (errors.empty()) {
      triggers_.commit(key);
      return {};
    }
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e;
    if (events)
      events->record(svc, "Warning", "FailedToUpdateEndpointSlices",
                     "Error updating Endpoint Slices for Service " + key + ": " + message);
    return Status::internal(message);
  }

  json newSlice(const json& svc, const Meta& meta) const {
    json ref = {{"apiVersion", "v1"},
                {"kind", "Service"},
                {"name", strField(svc, "metadata", "name")},
                {"uid", strField(svc, "metadata", "uid")},
                {"controller", true},
                {"blockOwnerDeletion", true}};
    return {{"apiVersion", "discovery.k8s.io/v1"},
            {"kind", "EndpointSlice"},
            {"metadata",
             {{"generateName", strField(svc, "metadata", "name") + "-"},
              {"namespace", strField(svc, "metadata", "namespace")},
              {"labels", sliceLabels(svc)},
              {"ownerReferences", json::array({ref})}}},
            {"addressType", meta.addressType},
            {"endpoints", json::array()},
            {"ports", meta.ports}};
  }

  json endpointFor(const json& pod, const json* node, const json& svc, const std::string& family) const {
    bool serving = isPodReady(pod);
    bool terminating = isBeingDeleted(pod);
    // A terminating pod is never "ready" unless the service publishes not-ready addresses.
    bool ready = field(field(svc, "spec"), "publishNotReadyAddresses") == true || (serving && !terminating);
    json ep = {{"addresses", json::array()},
               {"conditions", {{"ready", ready}, {"serving", serving}, {"terminating", terminating}}},
               {"targetRef",
                {{"kind", "Pod"},
                 {"namespace", strField(pod, "metadata", "namespace")},
                 {"name", strField(pod, "metadata", "name")},
                 {"uid", strField(pod, "metadata", "uid")}}}};
    std::string ip = endpoints::podIpOfFamily(pod, family);
    if (!ip.empty()) ep["addresses"].push_back(ip);
    std::string nodeName = strField(pod, "spec", "nodeName");
    if (!nodeName.empty()) ep["nodeName"] = nodeName;
    if (node) {
      const json& labels = field(field(*node, "metadata"), "labels");
      if (labels.is_object() && !labels.value("topology.kubernetes.io/zone", "").empty())
        ep["zone"] = labels["topology.kubernetes.io/zone"];
    }
    if (endpoints::shouldSetHostname(pod, svc)) ep["hostname"] = strField(pod, "spec", "hostname");
    return ep;
  }

  json endpointPorts(const json& svc, const json& pod) const {
    json out = json::array();
    const json& ports = field(field(svc, "spec"), "ports");
    if (!ports.is_array()) return out;
    for (const auto& sp : ports) {
      auto n = endpoints::findPort(pod, sp);
      if (!n.ok()) continue;
      json p = {{"name", sp.value("name", "")}, {"port", *n}, {"protocol", sp.value("protocol", "TCP")}};
      if (sp.contains("appProtocol") && sp["appProtocol"].is_string()) p["appProtocol"] = sp["appProtocol"];
      out.push_back(std::move(p));
    }
    return out;
  }

  Status reconcileByAddressType(const json& svc, const std::vector<client::ObjectPtr>& pods,
                                const std::vector<json>& existing,
                                const std::optional<endpoints::TriggerTimeTracker::Time>& triggerTime,
                                const std::string& addressType) {
    std::vector<json> toCreate, toUpdate, toDelete;
    std::map<std::string, std::vector<json>> existingByPorts;
    for (const auto& s : existing) {
      if (ownedBy(s, svc)) existingByPorts[portMapKey(field(s, "ports"))].push_back(s);
      else toDelete.push_back(s);
    }
    std::map<std::string, Meta> desiredMeta;
    std::map<std::string, std::map<std::string, json>> desired;  // ports -> endpointKey -> endpoint
    std::vector<std::string> errors;
    bool publishNotReady = field(field(svc, "spec"), "publishNotReadyAddresses") == true;
    for (const auto& podPtr : pods) {
      const json& pod = *podPtr;
      if (!endpoints::shouldPodBeInEndpoints(pod, true)) continue;
      json ports = endpointPorts(svc, pod);
      std::string pk = portMapKey(ports);
      desired[pk];
      if (!desiredMeta.count(pk)) desiredMeta[pk] = Meta{addressType, ports};
      std::string nodeName = strField(pod, "spec", "nodeName");
      auto node = nodes_->get(nodeName);
      if (!node && !publishNotReady) {
        // The pod names a node that does not exist: left out, and the service retried.
        errors.push_back("skipping Pod " + strField(pod, "metadata", "name") + " for Service " + client::objectKey(svc) +
                         ": Node " + nodeName + " Not Found");
        continue;
      }
      json ep = endpointFor(pod, node.get(), svc, addressType);
      if (ep["addresses"].empty()) continue;
      std::string epKey = endpointKey(ep);  // before the move: json's operator= takes its argument by value
      desired[pk][epKey] = std::move(ep);
    }

    for (auto& [pk, set] : desired) {
      auto [c, u, d] = reconcileByPortMapping(svc, existingByPorts[pk], set, desiredMeta[pk]);
      toCreate.insert(toCreate.end(), c.begin(), c.end());
      toUpdate.insert(toUpdate.end(), u.begin(), u.end());
      toDelete.insert(toDelete.end(), d.begin(), d.end());
    }
    for (auto& [pk, slices] : existingByPorts)
      if (!desired.count(pk)) toDelete.insert(toDelete.end(), slices.begin(), slices.end());

    // No endpoints at all: one empty placeholder slice stands for the service.
    if (existing.size() == toDelete.size() && toCreate.empty()) {
      json placeholder = newSlice(svc, Meta{addressType, json::array()});
      auto isPlaceholder = [&](const json& s) {
        const json& eps = field(s, "endpoints");
        const json& ports = field(s, "ports");
        return (eps.is_null() || eps.empty()) && (ports.is_null() || ports.empty()) &&
               s.value("addressType", "") == addressType && field(field(s, "metadata"), "labels") == sliceLabels(svc) &&
               ownedBy(s, svc);
      };
      if (toDelete.size() == 1 && isPlaceholder(toDelete[0])) toDelete.clear();
      else toCreate.push_back(placeholder);
    }
    Status st = finalize(svc, toCreate, toUpdate, toDelete, triggerTime);
    if (!st.isOk()) errors.push_back(st.message());
    if (errors.empty()) return {};
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e;
    return Status::internal(message);
  }

  // reconcileByPortMapping: keeps endpoints where they are, drops the ones no longer wanted,
  // fills slices being updated anyway, then the fullest unchanged slice that fits what is left,
  // and only then creates new slices.
  std::tuple<std::vector<json>, std::vector<json>, std::vector<json>> reconcileByPortMapping(
      const json& svc, const std::vector<json>& existing, std::map<std::string, json>& desiredSet, const Meta& meta) {
    std::map<std::string, json> byName;
    std::set<std::string> unchanged, toUpdateNames, toDeleteNames;
    json labels = sliceLabels(svc);
    for (const auto& s : existing) {
      std::string sname = strField(s, "metadata", "name");
      byName[sname] = s;
      json kept = json::array();
      bool updated = false;
      const json& eps = field(s, "endpoints");
      size_t had = eps.is_array() ? eps.size() : 0;
      if (eps.is_array())
        for (const auto& ep : eps) {
          auto it = desiredSet.find(endpointKey(ep));
          if (it == desiredSet.end()) continue;
          if (it->second != ep) updated = true;
          kept.push_back(it->second);
          desiredSet.erase(it);
        }
      bool labelsChanged = field(field(s, "metadata"), "labels") != labels;
      if (updated || had != kept.size()) {
        if (kept.empty()) {
          toDeleteNames.insert(sname);
        } else {
          json copy = s;
          copy["endpoints"] = kept;
          copy["metadata"]["labels"] = labels;
          byName[sname] = copy;
          toUpdateNames.insert(sname);
        }
      } else if (labelsChanged) {
        json copy = s;
        copy["metadata"]["labels"] = labels;
        byName[sname] = copy;
        toUpdateNames.insert(sname);
      } else {
        unchanged.insert(sname);
      }
    }
    auto popInto = [&](json& slice) {
      if (!slice["endpoints"].is_array()) slice["endpoints"] = json::array();
      while (!desiredSet.empty() && static_cast<int>(slice["endpoints"].size()) < maxPerSlice_) {
        slice["endpoints"].push_back(desiredSet.begin()->second);
        desiredSet.erase(desiredSet.begin());
      }
    };
    if (!desiredSet.empty() && !toUpdateNames.empty()) {
      std::vector<json*> updating;
      for (const auto& n : toUpdateNames) updating.push_back(&byName[n]);
      // Fullest first.
      std::stable_sort(updating.begin(), updating.end(), [](json* a, json* b) {
        return (*a)["endpoints"].size() > (*b)["endpoints"].size();
      });
      for (json* s : updating) popInto(*s);
    }
    std::vector<json> toCreate;
    while (!desiredSet.empty()) {
      json* fill = nullptr;
      if (static_cast<int>(desiredSet.size()) < maxPerSlice_ && !unchanged.empty()) {
        // getSliceToFill: the fullest unchanged slice that still fits every remaining one.
        for (const auto& n : unchanged) {
          json& s = byName[n];
          size_t len = field(s, "endpoints").is_array() ? s["endpoints"].size() : 0;
          if (static_cast<int>(len + desiredSet.size()) > maxPerSlice_) continue;
          if (!fill || len > (*fill)["endpoints"].size()) fill = &s;
        }
      }
      if (!fill) {
        json created = newSlice(svc, meta);
        popInto(created);
        toCreate.push_back(std::move(created));
        continue;
      }
      popInto(*fill);
      std::string n = strField(*fill, "metadata", "name");
      toUpdateNames.insert(n);
      unchanged.erase(n);
    }
    std::vector<json> toUpdate, toDelete;
    for (const auto& n : toUpdateNames) toUpdate.push_back(byName[n]);
    for (const auto& n : toDeleteNames) toDelete.push_back(byName[n]);
    return {std::move(toCreate), std::move(toUpdate), std::move(toDelete)};
  }

  Status finalize(const json& svc, std::vector<json> toCreate, std::vector<json> toUpdate, std::vector<json> toDelete,
                  const std::optional<endpoints::TriggerTimeTracker::Time>& triggerTime) {
    std::string key = client::objectKey(svc);
    std::string ns = strField(svc, "metadata", "namespace");
    // A slice to delete is recycled for a slice to create (same address type, same owner).
    for (size_t i = 0; i < toDelete.size() && !toCreate.empty();) {
      json& victim = toDelete[i];
      json& slice = toCreate.back();
      if (victim.value("addressType", "") == slice.value("addressType", "") && ownedBy(victim, svc)) {
        slice["metadata"].erase("generateName");
        slice["metadata"]["name"] = strField(victim, "metadata", "name");
        slice["metadata"]["resourceVersion"] = strField(victim, "metadata", "resourceVersion");
        const json& annotations = field(field(victim, "metadata"), "annotations");
        if (annotations.is_object()) slice["metadata"]["annotations"] = annotations;
        toUpdate.push_back(std::move(slice));
        toCreate.pop_back();
        toDelete.erase(toDelete.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
    auto stamp = [&](json& slice) {
      json& meta = slice["metadata"];
      json annotations = meta.contains("annotations") && meta["annotations"].is_object() ? meta["annotations"] : json::object();
      if (triggerTime) annotations[endpoints::kLastChangeTriggerTime] = api::formatTime(*triggerTime);
      else annotations.erase(endpoints::kLastChangeTriggerTime);
      if (annotations.empty()) meta.erase("annotations");
      else meta["annotations"] = annotations;
    };
    std::vector<std::string> errors;
    if (!isBeingDeleted(svc)) {
      for (auto& slice : toCreate) {
        stamp(slice);
        auto r = client_->create(kSlices, ns, slice);
        if (!r.ok()) {
          for (const auto& c : r.status().causes)
            if (c.type == "NamespaceTerminating") return {};
          errors.push_back("failed to create EndpointSlice for Service " + key + ": " + r.status().message());
        } else {
          tracker_.wrote(key, *r);
        }
      }
    }
    for (auto& slice : toUpdate) {
      stamp(slice);
      auto r = client_->update(kSlices, ns, slice);
      if (!r.ok())
        errors.push_back("failed to update " + strField(slice, "metadata", "name") + " EndpointSlice for Service " + key +
                         ": " + r.status().message());
      else
        tracker_.wrote(key, *r);
    }
    for (const auto& slice : toDelete) {
      auto r = client_->remove(kSlices, ns, strField(slice, "metadata", "name"));
      if (!r.ok() && r.status().code() != 404)
        errors.push_back("failed to delete " + strField(slice, "metadata", "name") + " EndpointSlice for Service " + key +
                         ": " + r.status().message());
      else if (r.ok())
        tracker_.deleted(key, strField(slice, "metadata", "name"));
    }
    if (errors.empty()) return {};
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e;
    return Status::internal(message);
  }

  int maxPerSlice_;
  std::shared_ptr<client::Client> client_;
  client::Informer* services_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  client::Informer* slices_ = nullptr;
  endpoints::TriggerTimeTracker triggers_;
  SliceTracker tracker_;
};

}  // namespace

std::unique_ptr<Controller> newEndpointSliceController(int maxEndpointsPerSlice) {
  return std::make_unique<EndpointSliceController>(maxEndpointsPerSlice);
}

}  // namespace orrery::controllers
