// RBAC authorization (rbac.authorization.k8s.io/v1), as kube-apiserver's RBAC authorizer
// decides: a request is allowed when a rule of a role bound to the user, one of its groups or
// its service account covers the verb, API group, resource[/subresource] and name.

#include <algorithm>

#include "engine/apiserver/handler.h"

namespace orrery::apiserver {

using nlohmann::json;

namespace {

bool contains(const json& list, const std::string& value) {
  if (!list.is_array()) return false;
  for (const auto& v : list) {
    if (v.is_string() && v.get<std::string>() == value) return true;
  }
  return false;
}

bool verbMatches(const json& rule, const std::string& verb) {
  return contains(rule.value("verbs", json::array()), "*") || contains(rule.value("verbs", json::array()), verb);
}

bool resourceRuleMatches(const json& rule, const std::string& verb, const std::string& group,
                         const std::string& resource, const std::string& subresource,
                         const std::string& name) {
  if (!verbMatches(rule, verb)) return false;
  const json groups = rule.value("apiGroups", json::array());
  if (!contains(groups, "*") && !contains(groups, group)) return false;
  const json resources = rule.value("resources", json::array());
  std::string combined = subresource.empty() ? resource : resource + "/" + subresource;
  bool resourceOk = contains(resources, "*") || contains(resources, combined) ||
                    (!subresource.empty() && (contains(resources, "*/" + subresource) ||
                                              contains(resources, resource + "/*")));
  if (!resourceOk) return false;
  const json names = rule.value("resourceNames", json::array());
  return names.empty() || (!name.empty() && contains(names, name));
}

bool nonResourceRuleMatches(const json& rule, const std::string& verb, const std::string& path) {
  if (!verbMatches(rule, verb)) return false;
  for (const auto& url : rule.value("nonResourceURLs", json::array())) {
    if (!url.is_string()) continue;
    std::string u = url.get<std::string>();
    if (u == "*" || u == path) return true;
    if (!u.empty() && u.back() == '*' && path.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0) return true;
  }
  return false;
}

bool subjectMatches(const json& subject, const UserInfo& user) {
  std::string kind = subject.value("kind", "");
  std::string name = subject.value("name", "");
  if (kind == "User") return name == user.name;
  if (kind == "Group") return std::find(user.groups.begin(), user.groups.end(), name) != user.groups.end();
  if (kind == "ServiceAccount") {
    return user.name == "system:serviceaccount:" + subject.value("namespace", "") + ":" + name;
  }
  return false;
}

}  // namespace

std::vector<json> ApiHandler::storedObjects(const api::GroupVersionResource& gvr, const std::string& ns,
                                            Freshness freshness) {
  std::vector<json> out;
  for (const auto& item : cachedObjects(gvr, ns, "", freshness)) out.push_back(item->parse());
  return out;
}

WatchCache* ApiHandler::currentCache(const api::GroupVersionResource& gvr, Freshness freshness) {
  auto info = resources_->find(gvr);
  if (!info) return nullptr;
  api::Status error;
  auto* cache = cacheFor(*info, &error);
  if (!cache) return nullptr;
  const int64_t revision = freshness == Freshness::kConsistent ? freshRevisionFor(*cache) : cache->lastLocalWrite();
  (void)cache->waitUntilFresh(revision, std::chrono::seconds(1));
  return cache;
}

std::vector<CachedPtr> ApiHandler::cachedObjects(const api::GroupVersionResource& gvr, const std::string& ns,
                                                 const std::string& name, Freshness freshness) {
  auto* cache = currentCache(gvr, freshness);
  if (!cache) return {};
  Filter filter;
  filter.ns = ns;
  filter.name = name;
  return cache->list(filter, "", 0).items;
}

bool ApiHandler::allowed(const UserInfo& user, const Attributes& a) {
  if (std::find(user.groups.begin(), user.groups.end(), "system:masters") != user.groups.end()) return true;
  const std::string rbac = "rbac.authorization.k8s.io";
  auto rulesOf = [&](const json& roleRef, const std::string& bindingNamespace) {
    std::string kind = roleRef.value("kind", "");
    std::string name = roleRef.value("name", "");
    for (const auto& role : kind == "ClusterRole" ? storedObjects({rbac, "v1", "clusterroles"}, "")
                                                  : storedObjects({rbac, "v1", "roles"}, bindingNamespace)) {
      if (role["metadata"].value("name", "") == name) return role.value("rules", json::array());
    }
    return json::array();
  };
  auto ruleAllows = [&](const json& rule) {
    return a.resourceRequest
               ? resourceRuleMatches(rule, a.verb, a.group, a.resource, a.subresource, a.name)
               : nonResourceRuleMatches(rule, a.verb, a.path);
  };
  auto boundTo = [&](const json& binding) {
    for (const auto& s : binding.value("subjects", json::array())) {
      if (subjectMatches(s, user)) return true;
    }
    return false;
  };
  for (const auto& binding : storedObjects({rbac, "v1", "clusterrolebindings"}, "")) {
    if (!boundTo(binding)) continue;
    for (const auto& rule : rulesOf(binding.value("roleRef", json::object()), "")) {
      if (ruleAllows(rule)) return true;
    }
  }
  // RoleBindings grant only inside their namespace, and only to resource requests.
  if (!a.resourceRequest || a.ns.empty()) return false;
  for (const auto& binding : storedObjects({rbac, "v1", "rolebindings"}, a.ns)) {
    if (!boundTo(binding)) continue;
    for (const auto& rule : rulesOf(binding.value("roleRef", json::object()), a.ns)) {
      if (ruleAllows(rule)) return true;
    }
  }
  return false;
}

}  // namespace orrery::apiserver
