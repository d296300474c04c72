// Discovery (/api, /apis, group and group-version resource lists, aggregated discovery) and
// OpenAPI, as kube-apiserver serves them. Documents are built once and cached as bytes.

#include <functional>
#include <set>

#include "engine/apiserver/handler.h"

namespace orrery::apiserver {

using api::Status;

namespace {

struct SubresourceMeta {
  std::string group, version, kind;
  std::vector<std::string> verbs;
};

// What discovery says about each subresource (kind it takes and verbs), as kube-apiserver.
SubresourceMeta subresourceMeta(const api::ResourceInfo& parent, const std::string& name) {
  if (name == "status") return {parent.group, parent.version, parent.kind, {"get", "patch", "update"}};
  if (name == "scale") return {"autoscaling", "v1", "Scale", {"get", "patch", "update"}};
  if (name == "binding") return {"", "v1", "Binding", {"create"}};
  if (name == "eviction") return {"policy", "v1", "Eviction", {"create"}};
  if (name == "log") return {"", "v1", "Pod", {"get"}};
  if (name == "exec") return {"", "v1", "PodExecOptions", {"create", "get"}};
  if (name == "attach") return {"", "v1", "PodAttachOptions", {"create", "get"}};
  if (name == "portforward") return {"", "v1", "PodPortForwardOptions", {"create", "get"}};
  if (name == "proxy") {
    std::string kind = parent.kind == "Pod" ? "PodProxyOptions"
                       : parent.kind == "Node" ? "NodeProxyOptions"
                                               : "ServiceProxyOptions";
    return {"", "v1", kind, {"create", "delete", "get", "patch", "update"}};
  }
  if (name == "token") return {"authentication.k8s.io", "v1", "TokenRequest", {"create"}};
  if (name == "finalize") return {"", "v1", "Namespace", {"update"}};
  if (name == "ephemeralcontainers" || name == "resize") {
    return {"", "v1", "Pod", {"get", "patch", "update"}};
  }
  return {parent.group, parent.version, parent.kind, {"get"}};
}

nlohmann::json stringArray(const std::vector<std::string>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& s : v) a.push_back(s);
  return a;
}

// kube-apiserver's order of API groups in discovery (its priority list), then the rest
// (custom resource groups) alphabetically.
int groupPriority(const std::string& group) {
  static const std::vector<std::string> order = {
      "",
      "apiregistration.k8s.io",
      "apps",
      "events.k8s.io",
      "authentication.k8s.io",
      "authorization.k8s.io",
      "autoscaling",
      "batch",
      "certificates.k8s.io",
      "networking.k8s.io",
      "policy",
      "rbac.authorization.k8s.io",
      "storage.k8s.io",
      "admissionregistration.k8s.io",
      "apiextensions.k8s.io",
      "scheduling.k8s.io",
      "coordination.k8s.io",
      "node.k8s.io",
      "discovery.k8s.io",
      "flowcontrol.apiserver.k8s.io",
  };
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] == group) return static_cast<int>(i);
  }
  return 1000;
}

std::vector<std::string> orderedGroups(const std::vector<api::ResourceInfo>& all) {
  std::set<std::string> groups;
  for (const auto& r : all) groups.insert(r.group);
  std::vector<std::string> out(groups.begin(), groups.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    int pa = groupPriority(a), pb = groupPriority(b);
    return pa != pb ? pa < pb : a < b;
  });
  return out;
}

std::vector<std::string> versionsOf(const std::vector<api::ResourceInfo>& all, const std::string& group) {
  std::vector<std::string> versions;
  for (const auto& r : all) {
    if (r.group == group && std::find(versions.begin(), versions.end(), r.version) == versions.end()) {
      versions.push_back(r.version);
    }
  }
  return versions;
}

nlohmann::json groupJson(const std::string& group, const std::vector<std::string>& versions) {
  nlohmann::json vs = nlohmann::json::array();
  for (const auto& v : versions) vs.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
  nlohmann::json g = {{"name", group}, {"versions", vs}};
  if (!vs.empty()) g["preferredVersion"] = vs[0];
  return g;
}

// The aggregated discovery version an Accept header asks for: "v2" when listed (kubectl
// 1.30+), else "v2beta1" (kubectl 1.27-1.29); "" when the client wants legacy discovery.
std::string aggregatedDiscoveryVersion(const std::string& accept) {
  std::string best;
  size_t start = 0;
  while (start < accept.size()) {
    auto end = accept.find(',', start);
    std::string clause = accept.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? accept.size() : end + 1;
    if (clause.find("as=APIGroupDiscoveryList") == std::string::npos) continue;
    if (clause.find("g=apidiscovery.k8s.io") == std::string::npos) continue;
    if (clause.find("v=v2;") != std::string::npos || clause.rfind("v=v2") == clause.size() - 4) return "v2";
    if (clause.find("v=v2beta1") != std::string::npos) best = "v2beta1";
  }
  return best;
}

}  // namespace

nlohmann::json ApiHandler::apiResourceJson(const api::ResourceInfo& r,
                                           const std::vector<api::ResourceInfo>&) const {
  nlohmann::json j = {{"name", r.resource},
                      {"singularName", r.singular},
                      {"namespaced", r.namespaced},
                      {"kind", r.kind},
                      {"verbs", stringArray(r.verbs)}};
  if (!r.shortNames.empty()) j["shortNames"] = stringArray(r.shortNames);
  if (!r.categories.empty()) j["categories"] = stringArray(r.categories);
  return j;
}

void ApiHandler::serveApiVersions(Call& call) {
  if (auto v = aggregatedDiscoveryVersion(call.http.header("accept")); !v.empty()) {
    return serveAggregatedDiscovery(call, true, v);
  }
  std::string host = call.http.header("host");
  sendJson(call, 200,
           {{"kind", "APIVersions"},
            {"versions", {"v1"}},
            {"serverAddressByClientCIDRs",
             {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", host.empty() ? "127.0.0.1" : host}}}}});
}

void ApiHandler::serveApiGroupList(Call& call) {
  if (auto v = aggregatedDiscoveryVersion(call.http.header("accept")); !v.empty()) {
    return serveAggregatedDiscovery(call, false, v);
  }
  auto all = resources_->all();
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : orderedGroups(all)) {
    if (g.empty()) continue;
    groups.push_back(groupJson(g, versionsOf(all, g)));
  }
  sendJson(call, 200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
}

void ApiHandler::serveApiGroup(Call& call, const std::string& group) {
  auto all = resources_->all();
  auto versions = versionsOf(all, group);
  if (versions.empty() || group.empty()) {
    return sendStatus(call, api::Status(404, api::reason::kNotFound,
                                        "the server could not find the requested resource"));
  }
  auto g = groupJson(group, versions);
  g["kind"] = "APIGroup";
  g["apiVersion"] = "v1";
  sendJson(call, 200, g);
}

void ApiHandler::serveResourceList(Call& call, const std::string& group, const std::string& version) {
  auto all = resources_->all();
  nlohmann::json list = nlohmann::json::array();
  bool any = false;
  for (const auto& r : all) {
    if (r.group != group || r.version != version) continue;
    any = true;
    list.push_back(apiResourceJson(r, all));
    for (const auto& sub : r.subresources) {
      auto meta = subresourceMeta(r, sub);
      nlohmann::json s = {{"name", r.resource + "/" + sub},
                          {"singularName", ""},
                          {"namespaced", r.namespaced},
                          {"kind", meta.kind},
                          {"verbs", stringArray(meta.verbs)}};
      if (meta.group != r.group || meta.version != r.version) {
        s["group"] = meta.group;
        s["version"] = meta.version;
      }
      list.push_back(std::move(s));
    }
  }
  if (!any) {
    return sendStatus(call, api::Status(404, api::reason::kNotFound,
                                        "the server could not find the requested resource"));
  }
  std::string gv = group.empty() ? version : group + "/" + version;
  sendJson(call, 200,
           {{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", gv}, {"resources", list}});
}

void ApiHandler::serveAggregatedDiscovery(Call& call, bool legacy, const std::string& version) {
  auto all = resources_->all();
  nlohmann::json items = nlohmann::json::array();
  for (const auto& g : orderedGroups(all)) {
    if (legacy != g.empty()) continue;
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& v : versionsOf(all, g)) {
      nlohmann::json resources = nlohmann::json::array();
      for (const auto& r : all) {
        if (r.group != g || r.version != v) continue;
        nlohmann::json res = {
            {"resource", r.resource},
            {"responseKind", {{"group", r.group}, {"version", r.version}, {"kind", r.kind}}},
            {"scope", r.namespaced ? "Namespaced" : "Cluster"},
            {"singularResource", r.singular},
            {"verbs", stringArray(r.verbs)}};
        if (!r.shortNames.empty()) res["shortNames"] = stringArray(r.shortNames);
        if (!r.categories.empty()) res["categories"] = stringArray(r.categories);
        if (!r.subresources.empty()) {
          nlohmann::json subs = nlohmann::json::array();
          for (const auto& sub : r.subresources) {
            auto meta = subresourceMeta(r, sub);
            subs.push_back({{"subresource", sub},
                            {"responseKind", {{"group", meta.group}, {"version", meta.version}, {"kind", meta.kind}}},
                            {"verbs", stringArray(meta.verbs)}});
          }
          res["subresources"] = std::move(subs);
        }
        resources.push_back(std::move(res));
      }
      versions.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    nlohmann::json meta = {{"creationTimestamp", nullptr}};
    if (!g.empty()) meta["name"] = g;
    items.push_back({{"metadata", meta}, {"versions", versions}});
  }
  nlohmann::json doc = {{"kind", "APIGroupDiscoveryList"},
                        {"apiVersion", "apidiscovery.k8s.io/" + version},
                        {"metadata", nlohmann::json::object()},
                        {"items", items}};
  sendRaw(call, 200,
          "application/json;g=apidiscovery.k8s.io;v=" + version + ";as=APIGroupDiscoveryList",
          doc.dump());
}

void ApiHandler::serveOpenApi(Call& call) {
  const std::string& path = call.http.path;
  const std::string& accept = call.http.header("accept");
  std::string docKey;
  std::string contentType = "application/json";
  std::function<std::string()> build;
  if (path == "/openapi/v2") {
    // client-go asks for the gnostic protobuf form; browsers and curl get JSON.
    if (accept.find("protobuf") != std::string::npos) {
      docKey = "v2.pb";
      contentType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
      build = [this] { return schemas_->openApiV2Protobuf(*resources_); };
    } else {
      docKey = "v2.json";
      build = [this] { return schemas_->openApiV2(*resources_).dump(); };
    }
  } else if (path == "/openapi/v3" || path == "/openapi/v3/") {
    docKey = "v3";
    build = [this] {
      // The index names each group-version document with the hash of its cached bytes.
      std::map<std::string, std::string> hashes;
      for (const auto& gv : resources_->groupVersions()) {
        std::string key = "v3:" + gv;
        std::string doc;
        {
          std::lock_guard lock(docsMu_);
          auto it = docs_.find(key);
          if (it != docs_.end()) doc = it->second;
        }
        if (doc.empty()) {
          doc = schemas_->openApiV3(gv, *resources_).dump();
          std::lock_guard lock(docsMu_);
          docs_[key] = doc;
        }
        hashes[gv] = api::SchemaRegistry::openApiHash(doc);
      }
      return schemas_->openApiV3Index(*resources_, hashes).dump();
    };
  } else if (path.rfind("/openapi/v3/", 0) == 0) {
    std::string rest = path.substr(std::string("/openapi/v3/").size());
    std::string gv;
    if (rest.rfind("api/", 0) == 0) gv = rest.substr(4);
    else if (rest.rfind("apis/", 0) == 0) gv = rest.substr(5);
    auto known = resources_->groupVersions();
    if (gv.empty() || std::find(known.begin(), known.end(), gv) == known.end()) {
      return sendStatus(call, Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
    }
    docKey = "v3:" + gv;
    build = [this, gv] { return schemas_->openApiV3(gv, *resources_).dump(); };
  } else {
    return sendStatus(call, Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
  }
  std::string doc;
  {
    std::lock_guard lock(docsMu_);
    auto it = docs_.find(docKey);
    if (it != docs_.end()) doc = it->second;
  }
  if (doc.empty()) {
    doc = build();
    std::lock_guard lock(docsMu_);
    docs_[docKey] = doc;
  }
  sendRaw(call, 200, contentType, std::move(doc));
}

}  // namespace orrery::apiserver
