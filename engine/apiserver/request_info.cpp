#include "engine/apiserver/request_info.h"

#include <algorithm>

#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {
namespace {

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace

RequestInfo parseRequestInfo(const HttpRequest& request) {
  RequestInfo info;
  info.path = request.path;
  std::string method = request.method;
  std::transform(method.begin(), method.end(), method.begin(), ::tolower);
  info.verb = method;

  auto parts = splitPath(request.path);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.apiPrefix = parts[0];
  size_t i = 1;
  if (info.apiPrefix == "api") {
    if (parts.size() < 2) return info;  // /api
    info.version = parts[1];
    i = 2;
  } else {
    if (parts.size() < 3) return info;  // /apis, /apis/group
    info.group = parts[1];
    info.version = parts[2];
    i = 3;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  if (rest.empty()) return info;  // group-version discovery
  info.isResourceRequest = true;

  // Legacy `/watch/` prefix: GET /api/v1/watch/pods.
  bool watchPrefix = false;
  if (rest[0] == "watch") {
    watchPrefix = true;
    rest.erase(rest.begin());
    if (rest.empty()) {
      info.isResourceRequest = false;
      return info;
    }
  }

  // /namespaces/{ns}/{resource}/... is namespaced unless it names a namespace itself.
  if (rest[0] == "namespaces") {
    if (rest.size() > 1) {
      info.ns = rest[1];
      if (rest.size() > 2 && rest[2] != "status" && rest[2] != "finalize") {
        rest.erase(rest.begin(), rest.begin() + 2);
      } else {
        // /namespaces/{name}[/status|finalize]: the namespace object.
        info.resource = "namespaces";
        info.name = rest[1];
        if (rest.size() > 2) info.subresource = rest[2];
        info.ns.clear();
        rest.clear();
      }
    } else {
      info.resource = "namespaces";
      rest.clear();
    }
  }
  if (!rest.empty()) {
    info.resource = rest[0];
    if (rest.size() > 1) info.name = rest[1];
    if (rest.size() > 2) info.subresource = rest[2];
    info.parts.assign(rest.begin(), rest.end());
  }

  if (method == "get" || method == "head") {
    if (info.name.empty()) {
      info.verb = watchPrefix || truthyParam(request.param("watch")) ? "watch" : "list";
    } else {
      info.verb = watchPrefix ? "watch" : "get";
    }
  } else if (method == "post") {
    info.verb = "create";
  } else if (method == "put") {
    info.verb = "update";
  } else if (method == "patch") {
    info.verb = "patch";
  } else if (method == "delete") {
    info.verb = info.name.empty() ? "deletecollection" : "delete";
  }
  return info;
}

}  // namespace orrery::apiserver
