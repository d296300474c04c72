// applyKindDefaults: what kube-apiserver's generated defaulters (SetDefaults_* in
// pkg/apis/*/v1/defaults.go) and the typed round trip add to an object, plus the defaults
// that admission plugins fill for every pod (ServiceAccount, Priority,
// DefaultTolerationSeconds), so that `kubectl get -o yaml` reads as on a real cluster.

#include <cctype>
#include <string>

#include "engine/api/defaults.h"

#include "engine/api/base64.h"
#include "engine/api/kinds.h"
#include "engine/api/quantity.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;

json& obj(json& parent, const char* key) {
  json& v = parent[key];
  if (!v.is_object()) v = json::object();
  return v;
}

void setDefault(json& parent, const char* key, json value) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) parent[key] = std::move(value);
}

bool isEmptyString(const json& parent, const char* key) {
  auto it = parent.find(key);
  return it == parent.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty());
}

void setDefaultString(json& parent, const char* key, const char* value) {
  if (isEmptyString(parent, key)) parent[key] = value;
}

// docker/distribution's reference parsing, reduced to what ParseImageName needs: the tag is
// after the last ':' that follows the last '/', and a digest ('@') means "no tag needed".
std::string imageTag(const std::string& image) {
  std::string ref = image;
  if (auto at = ref.find('@'); at != std::string::npos) return "@";
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return ref.substr(colon + 1);
  return "latest";
}

void defaultProbe(json& probe) {
  if (!probe.is_object()) return;
  setDefault(probe, "timeoutSeconds", 1);
  setDefault(probe, "periodSeconds", 10);
  setDefault(probe, "successThreshold", 1);
  setDefault(probe, "failureThreshold", 3);
  if (auto it = probe.find("httpGet"); it != probe.end() && it->is_object()) {
    setDefaultString(*it, "path", "/");
    setDefaultString(*it, "scheme", "HTTP");
  }
  if (auto it = probe.find("grpc"); it != probe.end() && it->is_object()) setDefault(*it, "service", "");
}

void defaultLifecycleHandler(json& h) {
  if (!h.is_object()) return;
  if (auto it = h.find("httpGet"); it != h.end() && it->is_object()) {
    setDefaultString(*it, "path", "/");
    setDefaultString(*it, "scheme", "HTTP");
  }
}

void defaultEnv(json& container) {
  auto defaultSources = [](json& valueFrom) {
    if (!valueFrom.is_object()) return;
    if (auto f = valueFrom.find("fieldRef"); f != valueFrom.end() && f->is_object())
      setDefaultString(*f, "apiVersion", "v1");
    if (auto r = valueFrom.find("resourceFieldRef"); r != valueFrom.end() && r->is_object())
      setDefault(*r, "divisor", "0");
  };
  if (auto env = container.find("env"); env != container.end() && env->is_array()) {
    for (auto& e : *env) {
      if (e.is_object() && e.contains("valueFrom")) defaultSources(e["valueFrom"]);
    }
  }
}

void defaultContainer(json& c, bool hostNetwork) {
  if (!c.is_object()) return;
  if (isEmptyString(c, "imagePullPolicy")) {
    std::string image = c.value("image", "");
    c["imagePullPolicy"] = imageTag(image) == "latest" ? "Always" : "IfNotPresent";
  }
  setDefaultString(c, "terminationMessagePath", "/dev/termination-log");
  setDefaultString(c, "terminationMessagePolicy", "File");
  // Container.Resources is a struct: the typed round trip always shows it.
  json& res = obj(c, "resources");
  for (const char* list : {"limits", "requests"}) {
    if (auto it = res.find(list); it != res.end() && it->is_object()) canonicalizeResourceList(*it, true);
  }
  if (auto ports = c.find("ports"); ports != c.end() && ports->is_array()) {
    for (auto& p : *ports) {
      if (!p.is_object()) continue;
      setDefaultString(p, "protocol", "TCP");
      // defaultHostNetworkPorts: with the host's network the host port is the container port.
      if (hostNetwork && (!p.contains("hostPort") || p["hostPort"] == 0) && p.contains("containerPort"))
        p["hostPort"] = p["containerPort"];
    }
  }
  for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
    if (auto it = c.find(probe); it != c.end()) defaultProbe(*it);
  }
  if (auto lc = c.find("lifecycle"); lc != c.end() && lc->is_object()) {
    for (const char* h : {"postStart", "preStop"})
      if (auto it = lc->find(h); it != lc->end()) defaultLifecycleHandler(*it);
  }
  defaultEnv(c);
}

void defaultVolume(json& v) {
  if (!v.is_object()) return;
  static const char* sources[] = {
      "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
      "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
      "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
      "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
      "storageos", "csi", "ephemeral", "image"};
  bool hasSource = false;
  for (const char* s : sources) hasSource = hasSource || v.contains(s);
  if (!hasSource) v["emptyDir"] = json::object();  // SetDefaults_Volume
  for (const char* s : {"secret", "configMap", "downwardAPI", "projected"}) {
    if (auto it = v.find(s); it != v.end() && it->is_object()) setDefault(*it, "defaultMode", 420);
  }
  if (auto it = v.find("hostPath"); it != v.end() && it->is_object()) setDefault(*it, "type", "");
  if (auto it = v.find("downwardAPI"); it != v.end() && it->is_object()) {
    if (auto items = it->find("items"); items != it->end() && items->is_array())
      for (auto& i : *items)
        if (i.is_object() && i.contains("fieldRef") && i["fieldRef"].is_object())
          setDefaultString(i["fieldRef"], "apiVersion", "v1");
  }
  if (auto it = v.find("projected"); it != v.end() && it->is_object()) {
    if (auto srcs = it->find("sources"); srcs != it->end() && srcs->is_array())
      for (auto& s : *srcs) {
        if (!s.is_object()) continue;
        if (auto sat = s.find("serviceAccountToken"); sat != s.end() && sat->is_object())
          setDefault(*sat, "expirationSeconds", 3600);
        if (auto d = s.find("downwardAPI"); d != s.end() && d->is_object())
          if (auto items = d->find("items"); items != d->end() && items->is_array())
            for (auto& i : *items)
              if (i.is_object() && i.contains("fieldRef") && i["fieldRef"].is_object())
                setDefaultString(i["fieldRef"], "apiVersion", "v1");
      }
  }
  if (auto it = v.find("iscsi"); it != v.end() && it->is_object()) setDefaultString(*it, "iscsiInterface", "default");
  if (auto it = v.find("rbd"); it != v.end() && it->is_object()) {
    setDefaultString(*it, "pool", "rbd");
    setDefaultString(*it, "user", "admin");
    setDefaultString(*it, "keyring", "/etc/ceph/keyring");
  }
}

// SetDefaults_PodSpec plus the per-element defaulters reached from it.
void defaultPodSpec(json& spec) {
  if (!spec.is_object()) spec = json::object();
  setDefaultString(spec, "dnsPolicy", "ClusterFirst");
  setDefaultString(spec, "restartPolicy", "Always");
  setDefault(spec, "securityContext", json::object());
  setDefault(spec, "terminationGracePeriodSeconds", 30);
  setDefaultString(spec, "schedulerName", "default-scheduler");
  bool hostNetwork = spec.value("hostNetwork", false) == true;
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (auto it = spec.find(list); it != spec.end() && it->is_array())
      for (auto& c : *it) defaultContainer(c, hostNetwork);
  }
  if (auto vols = spec.find("volumes"); vols != spec.end() && vols->is_array())
    for (auto& v : *vols) defaultVolume(v);
  if (auto ov = spec.find("overhead"); ov != spec.end() && ov->is_object()) canonicalizeResourceList(*ov, true);
}

// A PodTemplateSpec: metadata's zero creationTimestamp shows as null in kube's output.
void defaultPodTemplate(json& tmpl) {
  if (!tmpl.is_object()) tmpl = json::object();
  json& meta = obj(tmpl, "metadata");
  if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = nullptr;
  defaultPodSpec(obj(tmpl, "spec"));
}

// SetDefaults_Pod (requests from limits, enableServiceLinks) and the admission plugins every
// cluster runs (ServiceAccount, Priority, DefaultTolerationSeconds).
void defaultPod(json& pod) {
  json& spec = obj(pod, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (auto& c : *it) {
      if (!c.is_object()) continue;
      json& res = obj(c, "resources");
      auto limits = res.find("limits");
      if (limits == res.end() || !limits->is_object()) continue;
      json& requests = obj(res, "requests");
      for (const auto& [k, v] : limits->items())
        if (!requests.contains(k)) requests[k] = v;
    }
  }
  setDefault(spec, "enableServiceLinks", true);
  defaultPodSpec(spec);
  // ServiceAccount admission.
  if (isEmptyString(spec, "serviceAccountName")) {
    std::string legacy = spec.value("serviceAccount", "");
    spec["serviceAccountName"] = legacy.empty() ? "default" : legacy;
  }
  setDefaultString(spec, "serviceAccount", spec["serviceAccountName"].get<std::string>().c_str());
  // spec.priority and spec.preemptionPolicy come from the Priority admission plugin
  // (engine/apiserver/admission.cpp), which needs the cluster's PriorityClasses.
  // DefaultTolerationSeconds admission.
  json& tols = spec["tolerations"];
  if (!tols.is_array()) tols = json::array();
  auto hasToleration = [&](const std::string& key) {
    for (const auto& t : tols) {
      if (!t.is_object()) continue;
      std::string effect = t.value("effect", "");
      std::string k = t.value("key", "");
      if ((effect.empty() || effect == "NoExecute") && (k.empty() || k == key)) return true;
    }
    return false;
  };
  // Built once: an initializer list builds each of its values through a temporary.
  static const json kDefaultTolerations[] = {
      {{"effect", "NoExecute"}, {"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"}, {"tolerationSeconds", 300}},
      {{"effect", "NoExecute"}, {"key", "node.kubernetes.io/unreachable"}, {"operator", "Exists"}, {"tolerationSeconds", 300}}};
  for (const json& toleration : kDefaultTolerations) {
    if (!hasToleration(toleration["key"].get_ref<const std::string&>())) tols.push_back(toleration);
  }
}

void defaultPorts(json& ports, bool service) {
  if (!ports.is_array()) return;
  for (auto& p : ports) {
    if (!p.is_object()) continue;
    setDefaultString(p, "protocol", "TCP");
    if (service) {
      auto tp = p.find("targetPort");
      bool unset = tp == p.end() || tp->is_null() || (tp->is_number() && *tp == 0) ||
                   (tp->is_string() && tp->get_ref<const std::string&>().empty());
      if (unset && p.contains("port")) p["targetPort"] = p["port"];
    }
  }
}

void defaultService(json& svc) {
  json& spec = obj(svc, "spec");
  setDefaultString(spec, "sessionAffinity", "None");
  if (spec["sessionAffinity"] == "None") spec.erase("sessionAffinityConfig");
  if (spec["sessionAffinity"] == "ClientIP") {
    json& cfg = obj(spec, "sessionAffinityConfig");
    json& cip = obj(cfg, "clientIP");
    setDefault(cip, "timeoutSeconds", 10800);
  }
  setDefaultString(spec, "type", "ClusterIP");
  if (auto ports = spec.find("ports"); ports != spec.end()) defaultPorts(*ports, true);
  std::string type = spec["type"].get<std::string>();
  bool externalIPs = spec.contains("externalIPs") && spec["externalIPs"].is_array() && !spec["externalIPs"].empty();
  bool externallyAccessible = type == "LoadBalancer" || type == "NodePort" || (type == "ClusterIP" && externalIPs);
  if (externallyAccessible) setDefaultString(spec, "externalTrafficPolicy", "Cluster");
  if (type == "ClusterIP" || type == "NodePort" || type == "LoadBalancer")
    setDefault(spec, "internalTrafficPolicy", "Cluster");
  if (type == "LoadBalancer") setDefault(spec, "allocateLoadBalancerNodePorts", true);
  // IP families are the service REST's job in kube; a single-stack IPv4 cluster shows these.
  if (type != "ExternalName") {
    setDefaultString(spec, "ipFamilyPolicy", "SingleStack");
    if (!spec.contains("ipFamilies") || !spec["ipFamilies"].is_array() || spec["ipFamilies"].empty())
      spec["ipFamilies"] = json::array({"IPv4"});
  }
  json& status = obj(svc, "status");
  setDefault(status, "loadBalancer", json::object());
}

void defaultPvcSpec(json& spec) {
  if (!spec.is_object()) return;
  setDefaultString(spec, "volumeMode", "Filesystem");
  if (auto r = spec.find("resources"); r != spec.end() && r->is_object())
    for (const char* list : {"limits", "requests"})
      if (auto it = r->find(list); it != r->end() && it->is_object()) canonicalizeResourceList(*it, false);
}

void defaultDeployment(json& d) {
  json& spec = obj(d, "spec");
  setDefault(spec, "replicas", 1);
  json& strategy = obj(spec, "strategy");
  setDefaultString(strategy, "type", "RollingUpdate");
  if (strategy["type"] == "RollingUpdate") {
    json& ru = obj(strategy, "rollingUpdate");
    setDefault(ru, "maxUnavailable", "25%");
    setDefault(ru, "maxSurge", "25%");
  }
  setDefault(spec, "revisionHistoryLimit", 10);
  setDefault(spec, "progressDeadlineSeconds", 600);
  defaultPodTemplate(spec["template"]);
}

void defaultStatefulSet(json& s) {
  json& spec = obj(s, "spec");
  setDefaultString(spec, "podManagementPolicy", "OrderedReady");
  json& us = obj(spec, "updateStrategy");
  if (isEmptyString(us, "type")) {
    us["type"] = "RollingUpdate";
    setDefault(us, "rollingUpdate", json::object());
  }
  if (us["type"] == "RollingUpdate" && us.contains("rollingUpdate") && us["rollingUpdate"].is_object())
    setDefault(us["rollingUpdate"], "partition", 0);
  json& retention = obj(spec, "persistentVolumeClaimRetentionPolicy");
  setDefaultString(retention, "whenDeleted", "Retain");
  setDefaultString(retention, "whenScaled", "Retain");
  setDefault(spec, "replicas", 1);
  setDefault(spec, "revisionHistoryLimit", 10);
  defaultPodTemplate(spec["template"]);
  if (auto vcts = spec.find("volumeClaimTemplates"); vcts != spec.end() && vcts->is_array()) {
    for (auto& pvc : *vcts) {
      if (!pvc.is_object()) continue;
      json& meta = obj(pvc, "metadata");
      if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = nullptr;
      defaultPvcSpec(obj(pvc, "spec"));
      setDefaultString(obj(pvc, "status"), "phase", "Pending");
    }
  }
}

void defaultDaemonSet(json& d) {
  json& spec = obj(d, "spec");
  json& us = obj(spec, "updateStrategy");
  setDefaultString(us, "type", "RollingUpdate");
  if (us["type"] == "RollingUpdate") {
    json& ru = obj(us, "rollingUpdate");
    setDefault(ru, "maxUnavailable", 1);
    setDefault(ru, "maxSurge", 0);
  }
  setDefault(spec, "revisionHistoryLimit", 10);
  defaultPodTemplate(spec["template"]);
}

void defaultJobSpec(json& spec) {
  if (!spec.contains("completions") && !spec.contains("parallelism")) {
    spec["completions"] = 1;
    spec["parallelism"] = 1;
  }
  setDefault(spec, "parallelism", 1);
  if (!spec.contains("backoffLimit") || spec["backoffLimit"].is_null())
    spec["backoffLimit"] = spec.contains("backoffLimitPerIndex") && !spec["backoffLimitPerIndex"].is_null()
                               ? 2147483647 : 6;
  setDefaultString(spec, "completionMode", "NonIndexed");
  setDefault(spec, "suspend", false);
  if (auto pfp = spec.find("podFailurePolicy"); pfp != spec.end() && pfp->is_object()) {
    if (auto rules = pfp->find("rules"); rules != pfp->end() && rules->is_array())
      for (auto& r : *rules)
        if (r.is_object() && r.contains("onPodConditions") && r["onPodConditions"].is_array())
          for (auto& c : r["onPodConditions"])
            if (c.is_object()) setDefaultString(c, "status", "True");
  }
  bool hasPfp = spec.contains("podFailurePolicy") && !spec["podFailurePolicy"].is_null();
  setDefaultString(spec, "podReplacementPolicy", hasPfp ? "Failed" : "TerminatingOrFailed");
  defaultPodTemplate(spec["template"]);
}

void defaultJob(json& job) {
  json& spec = obj(job, "spec");
  defaultJobSpec(spec);
  // A job without labels takes its template's.
  json& meta = obj(job, "metadata");
  const json& tl = spec["template"]["metadata"].value("labels", json());
  if (tl.is_object() && !tl.empty() && (!meta.contains("labels") || !meta["labels"].is_object() || meta["labels"].empty()))
    meta["labels"] = tl;
}

void defaultCronJob(json& cj) {
  json& spec = obj(cj, "spec");
  setDefaultString(spec, "concurrencyPolicy", "Allow");
  setDefault(spec, "suspend", false);
  setDefault(spec, "successfulJobsHistoryLimit", 3);
  setDefault(spec, "failedJobsHistoryLimit", 1);
  json& jt = obj(spec, "jobTemplate");
  json& jtMeta = obj(jt, "metadata");
  if (!jtMeta.contains("creationTimestamp")) jtMeta["creationTimestamp"] = nullptr;
  // The job template's spec gets only the pod template's defaulters (not SetDefaults_Job).
  defaultPodTemplate(obj(jt, "spec")["template"]);
}

void defaultLimitRange(json& lr) {
  json& spec = obj(lr, "spec");
  auto limits = spec.find("limits");
  if (limits == spec.end() || !limits->is_array()) return;
  for (auto& item : *limits) {
    if (!item.is_object()) continue;
    for (const char* l : {"max", "min", "default", "defaultRequest", "maxLimitRequestRatio"})
      if (auto it = item.find(l); it != item.end() && it->is_object()) canonicalizeResourceList(*it, false);
    if (item.value("type", "") != "Container") continue;
    json& def = obj(item, "default");
    json& defReq = obj(item, "defaultRequest");
    if (auto mx = item.find("max"); mx != item.end() && mx->is_object())
      for (const auto& [k, v] : mx->items()) if (!def.contains(k)) def[k] = v;
    for (const auto& [k, v] : def.items()) if (!defReq.contains(k)) defReq[k] = v;
    if (auto mn = item.find("min"); mn != item.end() && mn->is_object())
      for (const auto& [k, v] : mn->items()) if (!defReq.contains(k)) defReq[k] = v;
  }
}

void defaultBinding(json& b) {
  json& ref = obj(b, "roleRef");
  setDefaultString(ref, "apiGroup", "rbac.authorization.k8s.io");
  if (auto subs = b.find("subjects"); subs != b.end() && subs->is_array()) {
    for (auto& s : *subs) {
      if (!s.is_object() || !isEmptyString(s, "apiGroup")) continue;
      std::string kind = s.value("kind", "");
      if (kind == "User" || kind == "Group") s["apiGroup"] = "rbac.authorization.k8s.io";
    }
  }
}

void defaultCrd(json& crd) {
  json& spec = obj(crd, "spec");
  json& names = obj(spec, "names");
  std::string kind = names.value("kind", "");
  if (isEmptyString(names, "singular")) {
    std::string lower = kind;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names["singular"] = lower;
  }
  if (isEmptyString(names, "listKind") && !kind.empty()) names["listKind"] = kind + "List";
  json& conv = obj(spec, "conversion");
  setDefaultString(conv, "strategy", "None");
  if (auto wh = conv.find("webhook"); wh != conv.end() && wh->is_object())
    if (auto cc = wh->find("clientConfig"); cc != wh->end() && cc->is_object())
      if (auto svc = cc->find("service"); svc != cc->end() && svc->is_object()) setDefault(*svc, "port", 443);
}

}  // namespace

void canonicalizeResourceList(nlohmann::json& list, bool roundToMilli) {
  if (!list.is_object()) return;
  for (auto& [k, v] : list.items()) {
    std::string text;
    if (v.is_string()) text = v.get<std::string>();
    else if (v.is_number()) text = v.dump();
    else continue;
    auto q = Quantity::parse(text);
    if (!q.ok()) continue;  // validation reports it
    if (roundToMilli) q->roundUp(-3);
    v = q->toString();
  }
}

std::string base64EncodeForSecret(const std::string& raw) { return api::base64Encode(raw); }

void applyKindDefaults(const ResourceInfo& info, nlohmann::json& object) {
  if (!object.is_object() || info.custom) return;
  const std::string& g = info.group;
  const std::string& k = info.kind;
  if (g.empty()) {
    if (k == "Pod") {
      defaultPod(object);
    } else if (k == "PodTemplate") {
      defaultPodTemplate(object["template"]);
    } else if (k == "ReplicationController") {
      json& spec = obj(object, "spec");
      setDefault(spec, "replicas", 1);
      if (spec.contains("template") && spec["template"].is_object()) {
        defaultPodTemplate(spec["template"]);
        // SetDefaults_ReplicationController: selector and labels from the template's labels.
        const json& tl = spec["template"]["metadata"].value("labels", json());
        if (tl.is_object() && !tl.empty()) {
          if (!spec.contains("selector") || !spec["selector"].is_object() || spec["selector"].empty())
            spec["selector"] = tl;
          json& meta = obj(object, "metadata");
          if (!meta.contains("labels") || !meta["labels"].is_object() || meta["labels"].empty())
            meta["labels"] = tl;
        }
      }
    } else if (k == "Service") {
      defaultService(object);
    } else if (k == "Namespace") {
      json& meta = obj(object, "metadata");
      std::string name = meta.value("name", "");
      if (!name.empty()) obj(meta, "labels")["kubernetes.io/metadata.name"] = name;
      setDefaultString(obj(object, "status"), "phase", "Active");
    } else if (k == "Secret") {
      setDefaultString(object, "type", "Opaque");
      // Convert_v1_Secret_To_core_Secret: stringData overwrites data, and is not stored.
      if (auto sd = object.find("stringData"); sd != object.end()) {
        if (sd->is_object() && !sd->empty()) {
          json& data = obj(object, "data");
          for (const auto& [key, val] : sd->items())
            data[key] = api::base64Encode(val.is_string() ? val.get<std::string>() : val.dump());
        }
        object.erase("stringData");
      }
    } else if (k == "Endpoints") {
      if (auto subsets = object.find("subsets"); subsets != object.end() && subsets->is_array())
        for (auto& s : *subsets)
          if (s.is_object() && s.contains("ports")) defaultPorts(s["ports"], false);
    } else if (k == "PersistentVolumeClaim") {
      defaultPvcSpec(obj(object, "spec"));
      setDefaultString(obj(object, "status"), "phase", "Pending");
    } else if (k == "PersistentVolume") {
      json& spec = obj(object, "spec");
      setDefaultString(spec, "persistentVolumeReclaimPolicy", "Retain");
      setDefaultString(spec, "volumeMode", "Filesystem");
      if (auto cap = spec.find("capacity"); cap != spec.end()) canonicalizeResourceList(*cap, false);
      setDefaultString(obj(object, "status"), "phase", "Pending");
    } else if (k == "Node") {
      json& status = obj(object, "status");
      if (auto cap = status.find("capacity"); cap != status.end() && cap->is_object()) {
        canonicalizeResourceList(*cap, false);
        if (!status.contains("allocatable") || status["allocatable"].is_null()) status["allocatable"] = *cap;
      }
      if (auto al = status.find("allocatable"); al != status.end()) canonicalizeResourceList(*al, false);
    } else if (k == "LimitRange") {
      defaultLimitRange(object);
    } else if (k == "ResourceQuota") {
      json& spec = obj(object, "spec");
      if (auto hard = spec.find("hard"); hard != spec.end()) canonicalizeResourceList(*hard, false);
    }
  } else if (g == "apps") {
    if (k == "Deployment") defaultDeployment(object);
    else if (k == "StatefulSet") defaultStatefulSet(object);
    else if (k == "DaemonSet") defaultDaemonSet(object);
    else if (k == "ReplicaSet") {
      json& spec = obj(object, "spec");
      setDefault(spec, "replicas", 1);
      defaultPodTemplate(spec["template"]);
    }
  } else if (g == "batch") {
    if (k == "Job") defaultJob(object);
    else if (k == "CronJob") defaultCronJob(object);
  } else if (g == "discovery.k8s.io" && k == "EndpointSlice") {
    if (auto ports = object.find("ports"); ports != object.end() && ports->is_array())
      for (auto& p : *ports) {
        if (!p.is_object()) continue;
        setDefault(p, "name", "");
        setDefault(p, "protocol", "TCP");
      }
  } else if (g == "scheduling.k8s.io" && k == "PriorityClass") {
    setDefaultString(object, "preemptionPolicy", "PreemptLowerPriority");
  } else if (g == "rbac.authorization.k8s.io" && (k == "RoleBinding" || k == "ClusterRoleBinding")) {
    defaultBinding(object);
  } else if (g == "apiextensions.k8s.io" && k == "CustomResourceDefinition") {
    defaultCrd(object);
  }
}

}  // namespace orrery::api
