// The built-in resource table (what kube-apiserver 1.32 serves in the groups Orrery
// implements) and the thread-safe registry that CRDs extend at run time.

#include "engine/api/resource.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

namespace orrery::api {

namespace {

using Verbs = std::vector<std::string>;

// Discovery lists verbs sorted; these are the sets kube-apiserver's REST storages offer.
const Verbs& fullVerbs() {
  static const Verbs v{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
  return v;
}
// Namespaces have no DeleteCollection (deleting a namespace is a multi-step process).
const Verbs& noCollectionVerbs() {
  static const Verbs v{"create", "delete", "get", "list", "patch", "update", "watch"};
  return v;
}
const Verbs& createOnly() {
  static const Verbs v{"create"};
  return v;
}
const Verbs& getList() {
  static const Verbs v{"get", "list"};
  return v;
}
const Verbs& getPatchUpdate() {
  static const Verbs v{"get", "patch", "update"};
  return v;
}
const Verbs& proxyVerbs() {
  static const Verbs v{"create", "delete", "get", "patch", "update"};
  return v;
}
const Verbs& streamVerbs() {  // exec, attach, portforward: WebSocket GET or SPDY POST
  static const Verbs v{"create", "get"};
  return v;
}

std::string toLower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Builder for one built-in resource; keeps the table below readable.
struct Def {
  ResourceInfo r;
  Def(std::string group, std::string version, std::string resource, std::string kind,
      std::string schemaPackage) {
    r.group = std::move(group);
    r.version = std::move(version);
    r.resource = std::move(resource);
    r.kind = std::move(kind);
    r.listKind = r.kind + "List";
    r.singular = toLower(r.kind);
    r.schemaName = schemaPackage + "." + r.kind;
    r.verbs = fullVerbs();
    r.storagePrefix = "/registry/" + r.resource + "/";
  }
  Def& cluster() { r.namespaced = false; return *this; }
  Def& shortNames(std::vector<std::string> v) { r.shortNames = std::move(v); return *this; }
  Def& categories(std::vector<std::string> v) { r.categories = std::move(v); return *this; }
  Def& verbs(const Verbs& v) { r.verbs = v; return *this; }
  Def& subresources(std::vector<std::string> v) { r.subresources = std::move(v); return *this; }
  Def& storage(std::string prefix) { r.storagePrefix = std::move(prefix); return *this; }
  Def& singular(std::string s) { r.singular = std::move(s); return *this; }
  // Resources with no object storage (reviews, bindings, component statuses).
  Def& virtualOnly() { r.storagePrefix.clear(); r.listKind.clear(); return *this; }
};

constexpr const char* kCore = "io.k8s.api.core.v1";
constexpr const char* kApps = "io.k8s.api.apps.v1";
constexpr const char* kBatch = "io.k8s.api.batch.v1";
constexpr const char* kCoordination = "io.k8s.api.coordination.v1";
constexpr const char* kDiscovery = "io.k8s.api.discovery.v1";
constexpr const char* kEvents = "io.k8s.api.events.v1";
constexpr const char* kPolicy = "io.k8s.api.policy.v1";
constexpr const char* kScheduling = "io.k8s.api.scheduling.v1";
constexpr const char* kRbac = "io.k8s.api.rbac.v1";
constexpr const char* kApiextensions = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1";
constexpr const char* kAuthorization = "io.k8s.api.authorization.v1";
constexpr const char* kAuthentication = "io.k8s.api.authentication.v1";

std::vector<ResourceInfo> builtinResources() {
  std::vector<Def> d;
  // ---- core/v1 (kube-apiserver's /api/v1 list)
  d.push_back(Def("", "v1", "bindings", "Binding", kCore).verbs(createOnly()).virtualOnly());
  d.push_back(Def("", "v1", "componentstatuses", "ComponentStatus", kCore)
                  .cluster().verbs(getList()).shortNames({"cs"}).virtualOnly());
  d.back().r.listKind = "ComponentStatusList";
  d.push_back(Def("", "v1", "configmaps", "ConfigMap", kCore).shortNames({"cm"}));
  d.push_back(Def("", "v1", "endpoints", "Endpoints", kCore).shortNames({"ep"})
                  .singular("endpoints").storage("/registry/services/endpoints/"));
  d.push_back(Def("", "v1", "events", "Event", kCore).shortNames({"ev"}));
  d.push_back(Def("", "v1", "limitranges", "LimitRange", kCore).shortNames({"limits"}));
  d.push_back(Def("", "v1", "namespaces", "Namespace", kCore).cluster().shortNames({"ns"})
                  .verbs(noCollectionVerbs()).subresources({"finalize", "status"}));
  d.push_back(Def("", "v1", "nodes", "Node", kCore).cluster().shortNames({"no"})
                  .subresources({"proxy", "status"}).storage("/registry/minions/"));
  d.push_back(Def("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", kCore)
                  .shortNames({"pvc"}).subresources({"status"}));
  d.push_back(Def("", "v1", "persistentvolumes", "PersistentVolume", kCore).cluster()
                  .shortNames({"pv"}).subresources({"status"}));
  d.push_back(Def("", "v1", "pods", "Pod", kCore).shortNames({"po"}).categories({"all"})
                  .subresources({"attach", "binding", "ephemeralcontainers", "eviction", "exec",
                                 "log", "portforward", "proxy", "status"}));
  d.push_back(Def("", "v1", "podtemplates", "PodTemplate", kCore));
  d.push_back(Def("", "v1", "replicationcontrollers", "ReplicationController", kCore)
                  .shortNames({"rc"}).categories({"all"}).subresources({"scale", "status"})
                  .storage("/registry/controllers/"));
  d.push_back(Def("", "v1", "resourcequotas", "ResourceQuota", kCore).shortNames({"quota"})
                  .subresources({"status"}));
  d.push_back(Def("", "v1", "secrets", "Secret", kCore));
  d.push_back(Def("", "v1", "serviceaccounts", "ServiceAccount", kCore).shortNames({"sa"})
                  .subresources({"token"}));
  d.push_back(Def("", "v1", "services", "Service", kCore).shortNames({"svc"})
                  .categories({"all"}).subresources({"proxy", "status"})
                  .storage("/registry/services/specs/"));

  // ---- apps/v1
  d.push_back(Def("apps", "v1", "controllerrevisions", "ControllerRevision", kApps));
  d.push_back(Def("apps", "v1", "daemonsets", "DaemonSet", kApps).shortNames({"ds"})
                  .categories({"all"}).subresources({"status"}));
  d.push_back(Def("apps", "v1", "deployments", "Deployment", kApps).shortNames({"deploy"})
                  .categories({"all"}).subresources({"scale", "status"}));
  d.push_back(Def("apps", "v1", "replicasets", "ReplicaSet", kApps).shortNames({"rs"})
                  .categories({"all"}).subresources({"scale", "status"}));
  d.push_back(Def("apps", "v1", "statefulsets", "StatefulSet", kApps).shortNames({"sts"})
                  .categories({"all"}).subresources({"scale", "status"}));

  // ---- events.k8s.io/v1: the same objects as core events, same storage.
  d.push_back(Def("events.k8s.io", "v1", "events", "Event", kEvents).shortNames({"ev"}));

  // ---- authentication.k8s.io/v1 and authorization.k8s.io/v1: create-only reviews.
  d.push_back(Def("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview",
                  kAuthentication).cluster().verbs(createOnly()).virtualOnly());
  d.push_back(Def("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", kAuthentication)
                  .cluster().verbs(createOnly()).virtualOnly());
  d.push_back(Def("authorization.k8s.io", "v1", "localsubjectaccessreviews",
                  "LocalSubjectAccessReview", kAuthorization).verbs(createOnly()).virtualOnly());
  d.push_back(Def("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                  "SelfSubjectAccessReview", kAuthorization)
                  .cluster().verbs(createOnly()).virtualOnly());
  d.push_back(Def("authorization.k8s.io", "v1", "selfsubjectrulesreviews",
                  "SelfSubjectRulesReview", kAuthorization)
                  .cluster().verbs(createOnly()).virtualOnly());
  d.push_back(Def("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
                  kAuthorization).cluster().verbs(createOnly()).virtualOnly());

  // ---- batch/v1
  d.push_back(Def("batch", "v1", "cronjobs", "CronJob", kBatch).shortNames({"cj"})
                  .categories({"all"}).subresources({"status"}));
  d.push_back(Def("batch", "v1", "jobs", "Job", kBatch).categories({"all"})
                  .subresources({"status"}));

  // ---- policy/v1
  d.push_back(Def("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", kPolicy)
                  .shortNames({"pdb"}).subresources({"status"}));

  // ---- rbac.authorization.k8s.io/v1
  d.push_back(Def("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                  "ClusterRoleBinding", kRbac).cluster());
  d.push_back(Def("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", kRbac)
                  .cluster());
  d.push_back(Def("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", kRbac));
  d.push_back(Def("rbac.authorization.k8s.io", "v1", "roles", "Role", kRbac));

  // ---- apiextensions.k8s.io/v1
  d.push_back(Def("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                  "CustomResourceDefinition", kApiextensions)
                  .cluster().shortNames({"crd", "crds"}).categories({"api-extensions"})
                  .subresources({"status"})
                  .storage("/registry/apiextensions.k8s.io/customresourcedefinitions/"));

  // ---- scheduling.k8s.io/v1
  d.push_back(Def("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", kScheduling)
                  .cluster().shortNames({"pc"}));

  // ---- coordination.k8s.io/v1
  d.push_back(Def("coordination.k8s.io", "v1", "leases", "Lease", kCoordination));

  // ---- discovery.k8s.io/v1
  d.push_back(Def("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", kDiscovery));

  std::vector<ResourceInfo> out;
  out.reserve(d.size());
  for (auto& def : d) out.push_back(std::move(def.r));
  return out;
}

// kube-apiserver's APIService group priorities (higher first). Groups not listed, i.e. CRD
// groups, get the aggregator's 1000 and sort by name after these.
int groupPriority(const std::string& group) {
  static const std::map<std::string, int> priorities = {
      {"", 18000},
      {"apps", 17800},
      {"events.k8s.io", 17750},
      {"authentication.k8s.io", 17700},
      {"authorization.k8s.io", 17600},
      {"autoscaling", 17500},
      {"batch", 17400},
      {"certificates.k8s.io", 17300},
      {"networking.k8s.io", 17200},
      {"policy", 17100},
      {"rbac.authorization.k8s.io", 17000},
      {"storage.k8s.io", 16800},
      {"admissionregistration.k8s.io", 16700},
      {"apiextensions.k8s.io", 16700},
      {"scheduling.k8s.io", 16600},
      {"coordination.k8s.io", 16500},
      {"node.k8s.io", 16300},
      {"discovery.k8s.io", 16200},
      {"flowcontrol.apiserver.k8s.io", 16100},
  };
  auto it = priorities.find(group);
  return it == priorities.end() ? 1000 : it->second;
}

// Parses ^v(\d+)((alpha|beta)(\d+))?$ as kube does; false when not kube-like.
bool parseKubeVersion(const std::string& v, long& major, int& level, long& minor) {
  if (v.size() < 2 || v[0] != 'v' || !std::isdigit(static_cast<unsigned char>(v[1]))) return false;
  size_t i = 1;
  major = 0;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
    major = major * 10 + (v[i] - '0');
    if (major > 1000000000L) return false;
    ++i;
  }
  if (i == v.size()) {
    level = 2;  // GA
    minor = 0;
    return true;
  }
  std::string rest = v.substr(i);
  size_t digits;
  if (rest.rfind("alpha", 0) == 0) {
    level = 0;
    digits = 5;
  } else if (rest.rfind("beta", 0) == 0) {
    level = 1;
    digits = 4;
  } else {
    return false;
  }
  if (digits >= rest.size()) return false;  // "v1beta" is not kube-like
  minor = 0;
  for (size_t j = digits; j < rest.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(rest[j]))) return false;
    minor = minor * 10 + (rest[j] - '0');
    if (minor > 1000000000L) return false;
  }
  return true;
}

}  // namespace

int compareKubeAwareVersions(const std::string& a, const std::string& b) {
  long amaj = 0, amin = 0, bmaj = 0, bmin = 0;
  int alev = 0, blev = 0;
  bool ak = parseKubeVersion(a, amaj, alev, amin);
  bool bk = parseKubeVersion(b, bmaj, blev, bmin);
  if (ak && !bk) return -1;
  if (!ak && bk) return 1;
  if (!ak && !bk) return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
  if (alev != blev) return alev > blev ? -1 : 1;   // GA, then beta, then alpha
  if (amaj != bmaj) return amaj > bmaj ? -1 : 1;   // higher major first
  if (amin != bmin) return amin > bmin ? -1 : 1;   // higher minor first
  return 0;
}

bool ResourceInfo::hasSubresource(const std::string& name) const {
  return std::find(subresources.begin(), subresources.end(), name) != subresources.end();
}

std::optional<SubresourceInfo> subresourceInfo(const ResourceInfo& info, const std::string& name) {
  if (!info.hasSubresource(name)) return std::nullopt;
  SubresourceInfo s;
  s.name = name;
  s.group = info.group;
  s.version = info.version;
  s.kind = info.kind;
  s.verbs = getPatchUpdate();
  if (name == "status") return s;
  if (name == "scale") {
    s.group = "autoscaling";
    s.version = "v1";
    s.kind = "Scale";
    return s;
  }
  if (!info.group.empty() || info.custom) return s;  // only core has the special ones
  const std::string& r = info.resource;
  if (r == "pods") {
    if (name == "attach") { s.kind = "PodAttachOptions"; s.verbs = streamVerbs(); }
    else if (name == "exec") { s.kind = "PodExecOptions"; s.verbs = streamVerbs(); }
    else if (name == "portforward") { s.kind = "PodPortForwardOptions"; s.verbs = streamVerbs(); }
    else if (name == "proxy") { s.kind = "PodProxyOptions"; s.verbs = proxyVerbs(); }
    else if (name == "binding") { s.kind = "Binding"; s.verbs = createOnly(); }
    else if (name == "eviction") {
      s.group = "policy";
      s.kind = "Eviction";
      s.verbs = createOnly();
    } else if (name == "log") { s.verbs = {"get"}; }
    // ephemeralcontainers: the Pod kind with get/patch/update.
  } else if (r == "namespaces" && name == "finalize") {
    s.verbs = {"update"};
  } else if (r == "nodes" && name == "proxy") {
    s.kind = "NodeProxyOptions";
    s.verbs = proxyVerbs();
  } else if (r == "services" && name == "proxy") {
    s.kind = "ServiceProxyOptions";
    s.verbs = proxyVerbs();
  } else if (r == "serviceaccounts" && name == "token") {
    s.group = "authentication.k8s.io";
    s.kind = "TokenRequest";
    s.verbs = createOnly();
  }
  return s;
}

std::shared_ptr<ResourceRegistry> ResourceRegistry::builtin() {
  auto reg = std::make_shared<ResourceRegistry>();
  for (auto& info : builtinResources()) reg->add(std::move(info));
  return reg;
}

std::shared_ptr<const ResourceInfo> ResourceRegistry::find(const GroupVersionResource& gvr) const {
  std::shared_lock lock(mu_);
  auto it = byResource_.find(gvr);
  return it == byResource_.end() ? nullptr : it->second;
}

std::shared_ptr<const ResourceInfo> ResourceRegistry::findKind(const GroupVersionKind& gvk) const {
  std::shared_lock lock(mu_);
  for (const auto& [gvr, info] : byResource_) {
    if (info->group == gvk.group && info->version == gvk.version && info->kind == gvk.kind) return info;
  }
  return nullptr;
}

std::vector<ResourceInfo> ResourceRegistry::all() const {
  std::shared_lock lock(mu_);
  std::vector<ResourceInfo> out;
  out.reserve(byResource_.size());
  for (const auto& [gvr, info] : byResource_) out.push_back(*info);
  return out;
}

std::vector<ResourceInfo> ResourceRegistry::resources(const std::string& group,
                                                      const std::string& version) const {
  std::shared_lock lock(mu_);
  std::vector<ResourceInfo> out;
  // The map is ordered by (group, version, resource): seek to the first of this GV.
  for (auto it = byResource_.lower_bound({group, version, ""});
       it != byResource_.end() && it->first.group == group && it->first.version == version; ++it) {
    out.push_back(*it->second);
  }
  return out;
}

std::vector<std::string> ResourceRegistry::groupVersions() const {
  std::vector<std::pair<std::string, std::string>> gvs;
  {
    std::shared_lock lock(mu_);
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [gvr, info] : byResource_) seen.insert({gvr.group, gvr.version});
    gvs.assign(seen.begin(), seen.end());
  }
  std::sort(gvs.begin(), gvs.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) {
      int pa = groupPriority(a.first), pb = groupPriority(b.first);
      if (pa != pb) return pa > pb;
      return a.first < b.first;
    }
    return compareKubeAwareVersions(a.second, b.second) < 0;
  });
  std::vector<std::string> out;
  out.reserve(gvs.size());
  for (const auto& [g, v] : gvs) out.push_back(g.empty() ? v : g + "/" + v);
  return out;
}

void ResourceRegistry::add(ResourceInfo info) {
  if (info.custom && info.storagePrefix.empty()) {
    // kube-apiserver keeps custom objects under /registry/<group>/<resource>/, for every
    // served version (they share one storage).
    info.storagePrefix = "/registry/" + info.group + "/" + info.resource + "/";
  }
  if (info.listKind.empty() && info.custom) info.listKind = info.kind + "List";
  std::unique_lock lock(mu_);
  GroupVersionResource key = info.gvr();
  byResource_[key] = std::make_shared<const ResourceInfo>(std::move(info));
}

void ResourceRegistry::remove(const GroupVersionResource& gvr) {
  std::unique_lock lock(mu_);
  byResource_.erase(gvr);
}

}  // namespace orrery::api
