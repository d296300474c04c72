#pragma once
// What a request path means, as kube-apiserver's RequestInfoFactory reads it:
// /api/v1/namespaces/ns/pods/name/status -> group "", version v1, namespace ns, resource
// pods, name, subresource status; the verb comes from the method and the query.

#include <string>
#include <vector>

#include "engine/apiserver/http_server.h"

namespace orrery::apiserver {

struct RequestInfo {
  bool isResourceRequest = false;
  std::string path;
  std::string verb;  // get list watch create update patch delete deletecollection (or lower-case method)
  std::string apiPrefix;  // "api" or "apis"
  std::string group, version, ns, resource, subresource, name;
  std::vector<std::string> parts;  // path segments after the group/version
};

RequestInfo parseRequestInfo(const HttpRequest& request);

}  // namespace orrery::apiserver
