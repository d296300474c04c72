// Access reviews (`kubectl auth can-i`, `kubectl auth whoami`): create-only resources that
// are answered, never stored.

#include <algorithm>

#include "engine/apiserver/handler.h"

namespace orrery::apiserver {

using api::Status;
using nlohmann::json;

bool ApiHandler::isReviewResource(const api::ResourceInfo& info) {
  if (info.group == "authorization.k8s.io") {
    return info.resource == "selfsubjectaccessreviews" || info.resource == "selfsubjectrulesreviews" ||
           info.resource == "subjectaccessreviews" || info.resource == "localsubjectaccessreviews";
  }
  if (info.group == "authentication.k8s.io") {
    return info.resource == "selfsubjectreviews" || info.resource == "tokenreviews";
  }
  return false;
}

void ApiHandler::createReview(Call& call) {
  const auto& info = *call.resource;
  auto decoded = decodeBody(call, call.http.body, call.http.header("content-type"));
  if (!decoded.ok()) return sendStatus(call, decoded.status());
  const json body = std::move(*decoded);
  json response = body;
  response["apiVersion"] = info.apiVersion();
  response["kind"] = info.kind;
  if (!response.contains("metadata") || !response["metadata"].is_object()) response["metadata"] = json::object();
  response["metadata"]["creationTimestamp"] = nullptr;
  const json spec = body.value("spec", json::object());

  if (info.resource == "selfsubjectreviews") {
    json groups = json::array();
    for (const auto& g : call.user.groups) groups.push_back(g);
    response["status"] = {{"userInfo", {{"username", call.user.name}, {"groups", groups}}}};
    return sendJson(call, 201, response);
  }
  if (info.resource == "tokenreviews") {
    auto user = authenticateToken(spec.value("token", ""));
    if (!user.ok()) {
      response["status"] = {{"authenticated", false}, {"user", json::object()}, {"error", user.status().message()}};
    } else {
      json groups = json::array();
      for (const auto& g : user->groups) groups.push_back(g);
      response["status"] = {{"authenticated", true}, {"user", {{"username", user->name}, {"groups", groups}}},
                            {"audiences", json::array({kTokenIssuer})}};
    }
    return sendJson(call, 201, response);
  }
  if (info.resource == "selfsubjectrulesreviews") {
    if (spec.value("namespace", "").empty()) {
      return sendStatus(call, Status::invalid(info.group, info.kind, "",
                                              {{"FieldValueRequired", "Required value: no namespace on request", "spec.namespace"}}));
    }
    Attributes all;
    all.verb = "*";
    all.group = "*";
    all.resource = "*";
    all.ns = spec.value("namespace", "");
    bool admin = allowed(call.user, all);
    json resourceRules = json::array();
    json nonResourceRules = json::array();
    if (admin) {
      resourceRules.push_back({{"verbs", {"*"}}, {"apiGroups", {"*"}}, {"resources", {"*"}}});
      nonResourceRules.push_back({{"verbs", {"*"}}, {"nonResourceURLs", {"*"}}});
    }
    // TODO(rbac): list the rules of non-admin users' roles; until then say it is incomplete.
    response["status"] = {{"resourceRules", resourceRules}, {"nonResourceRules", nonResourceRules},
                          {"incomplete", !admin}};
    return sendJson(call, 201, response);
  }

  // SubjectAccessReview kinds.
  UserInfo subject = call.user;
  if (info.resource == "subjectaccessreviews" || info.resource == "localsubjectaccessreviews") {
    subject.name = spec.value("user", "");
    subject.groups.clear();
    for (const auto& g : spec.value("groups", json::array())) {
      if (g.is_string()) subject.groups.push_back(g.get<std::string>());
    }
  }
  bool ok = false;
  if (spec.contains("resourceAttributes")) {
    const auto& ra = spec["resourceAttributes"];
    Attributes a;
    a.verb = ra.value("verb", "");
    a.group = ra.value("group", "");
    a.resource = ra.value("resource", "");
    a.subresource = ra.value("subresource", "");
    a.name = ra.value("name", "");
    a.ns = info.resource == "localsubjectaccessreviews" ? call.info.ns : ra.value("namespace", "");
    ok = allowed(subject, a);
  } else if (spec.contains("nonResourceAttributes")) {
    Attributes a;
    a.resourceRequest = false;
    a.verb = spec["nonResourceAttributes"].value("verb", "");
    a.path = spec["nonResourceAttributes"].value("path", "");
    ok = allowed(subject, a);
  } else {
    return sendStatus(call, Status::invalid(info.group, info.kind, "",
                                            {{"FieldValueRequired",
                                              "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                                              "spec.resourceAttributes"}}));
  }
  response["status"] = {{"allowed", ok}};
  sendJson(call, 201, response);
}

}  // namespace orrery::apiserver
