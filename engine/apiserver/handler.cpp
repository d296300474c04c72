#include "engine/apiserver/handler.h"

#include "engine/api/json_dump.h"
#include "engine/api/object.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace orrery::apiserver {

namespace {

constexpr const char* kJson = "application/json";

}  // namespace

ApiHandler::ApiHandler(std::shared_ptr<store::Store> store,
                       std::shared_ptr<api::ResourceRegistry> resources,
                       std::shared_ptr<api::SchemaRegistry> schemas, std::string clusterName)
    : store_(std::move(store)),
      resources_(std::move(resources)),
      schemas_(std::move(schemas)),
      clusterName_(std::move(clusterName)) {
  auto stats = store_->stats();
  storeIsShared_ = stats.ok() && stats->backend != "sqlite";
}

ApiHandler::~ApiHandler() { shutdown(); }

void ApiHandler::shutdown() {
  if (shuttingDown_.exchange(true)) return;
  stopProvidedWatches();
  std::lock_guard lock(cachesMu_);
  caches_.clear();  // each cache ends its watchers
}

void ApiHandler::tick() {
  // Called every second: ends watches whose time is up; bookmarks go out every 10 s.
  static thread_local int ticks = 0;
  bool bookmarks = ++ticks % 10 == 0;
  std::vector<WatchCache*> caches;
  {
    std::lock_guard lock(cachesMu_);
    for (auto& [_, c] : caches_) caches.push_back(c.get());
  }
  auto now = std::chrono::steady_clock::now();
  for (auto* c : caches) c->sweep(now, bookmarks);
}

void ApiHandler::sendRaw(Call& call, int code, const std::string& contentType, std::string body) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& w : call.warnings) {
    std::string escaped;
    for (char c : w) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    headers.emplace_back("Warning", "299 - \"" + escaped + "\"");
  }
  headers.emplace_back("Audit-Id", call.http.header("audit-id"));
  call.responder->send(code, contentType, std::move(body), headers);
}

void ApiHandler::sendJson(Call& call, int code, const nlohmann::json& body) {
  sendRaw(call, code, kJson, api::dumpJson(body));
}

void ApiHandler::sendJson(Call& call, int code, nlohmann::json&& body) {
  // An in-process client would parse the text straight back: serializing and parsing each
  // answer cost a pod create about a tenth of its CPU.
  if (call.responder->sendParsed(code, std::move(body))) return;
  sendRaw(call, code, kJson, api::dumpJson(body));
}

void ApiHandler::sendStatus(Call& call, const api::Status& status) {
  if (status.code() >= 500) {
    spdlog::warn("apiserver: {} {} -> {} {}", call.http.method, call.http.path, status.code(),
                 status.message());
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (status.retryAfterSeconds) headers.emplace_back("Retry-After", std::to_string(*status.retryAfterSeconds));
  call.responder->send(status.code(), kJson, status.toJson().dump(), headers);
}

UserInfo ApiHandler::authenticate(const HttpRequest& request) {
  UserInfo user;
  if (request.peer.present && !request.peer.commonName.empty()) {
    user.name = request.peer.commonName;
    user.groups = request.peer.organizations;
    user.groups.push_back("system:authenticated");
    user.authenticated = true;
    return user;
  }
  const std::string& auth = request.header("authorization");
  if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) {
    auto fromToken = authenticateToken(auth.substr(7));
    if (fromToken.ok()) return *fromToken;
  }
  return user;
}

api::Result<UserInfo> ApiHandler::authenticateToken(const std::string& token) {
  if (!tokens_) return api::Status::unauthorized();
  auto claims = tokens_->verify(token, std::chrono::system_clock::now());
  if (!claims.ok()) return claims.status();
  const auto k8s = claims->value("kubernetes.io", nlohmann::json::object());
  const std::string ns = k8s.value("namespace", "");
  const auto sa = k8s.value("serviceaccount", nlohmann::json::object());
  const std::string name = sa.value("name", "");
  const std::string uid = sa.value("uid", "");
  // The token dies with its service account, as kube's bound tokens do.
  auto info = resources_->find({"", "v1", "serviceaccounts"});
  if (!info || ns.empty() || name.empty()) return api::Status::unauthorized();
  api::Status error;
  auto* cache = cacheFor(*info, &error);
  if (!cache) return error;
  auto object = cache->get(storageKey(*info, ns, name));
  if (!object || api::metaString(object->parse(), "uid") != uid) return api::Status::unauthorized();
  UserInfo user;
  user.name = "system:serviceaccount:" + ns + ":" + name;
  user.groups = {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"};
  user.authenticated = true;
  return user;
}

api::Status ApiHandler::authorize(const Call& call) {
  const auto& i = call.info;
  Attributes a;
  a.resourceRequest = i.isResourceRequest;
  a.verb = i.verb;
  a.group = i.group;
  a.resource = i.resource;
  a.subresource = i.subresource;
  a.name = i.name;
  a.ns = i.ns;
  a.path = i.path;
  if (allowed(call.user, a)) return {};
  // kube-apiserver's wording: `pods is forbidden: User "alice" cannot list resource "pods"
  // in API group "" in the namespace "default"`.
  std::string msg;
  if (i.isResourceRequest) {
    std::string resource = i.resource + (i.subresource.empty() ? "" : "/" + i.subresource);
    msg = i.resource + (i.group.empty() ? "" : "." + i.group);
    if (!i.name.empty()) msg += " \"" + i.name + "\"";
    msg += " is forbidden: User \"" + call.user.name + "\" cannot " + i.verb + " resource \"" +
           resource + "\" in API group \"" + i.group + "\"";
    msg += i.ns.empty() ? " at the cluster scope" : " in the namespace \"" + i.ns + "\"";
  } else {
    msg = "forbidden: User \"" + call.user.name + "\" cannot " + i.verb + " path \"" + i.path + "\"";
  }
  api::Status st = api::Status::forbidden(msg);
  st.withDetails(i.group, i.resource, i.name);
  return st;
}

void ApiHandler::handle(HttpRequest& request, std::shared_ptr<Responder> responder) {
  Call call{request, std::move(responder), parseRequestInfo(request), {}, nullptr, {},
            std::chrono::system_clock::now()};
  call.user = authenticate(request);
  if (!call.user.authenticated) {
    sendStatus(call, api::Status::unauthorized());
    return;
  }
  route(call);
}

void ApiHandler::route(Call& call) {
  if (serveNonResource(call)) return;
  if (!call.info.isResourceRequest) {
    sendStatus(call, api::Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
    return;
  }
  if (auto st = authorize(call); !st.isOk()) return sendStatus(call, st);
  serveResource(call);
}

bool ApiHandler::serveNonResource(Call& call) {
  const std::string& path = call.http.path;
  const auto& info = call.info;
  if (path == "/version" || path == "/version/") {
    sendJson(call, 200,
             {{"major", "1"},
              {"minor", "32"},
              {"gitVersion", "v1.32.0-orrery"},
              {"gitCommit", "orrery"},
              {"gitTreeState", "clean"},
              {"buildDate", "2026-11-24T00:00:00Z"},
              {"goVersion", "c++20"},
              {"compiler", "gcc"},
              {"platform", "linux/amd64"}});
    return true;
  }
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    if (call.http.hasParam("verbose")) {
      sendRaw(call, 200, "text/plain; charset=utf-8",
              "[+]ping ok\n[+]etcd ok\n[+]poststarthook/orrery-bootstrap ok\n" + path.substr(1) +
                  " check passed\n");
    } else {
      sendRaw(call, 200, "text/plain; charset=utf-8", "ok");
    }
    return true;
  }
  if (path.rfind("/openapi/", 0) == 0) {
    serveOpenApi(call);
    return true;
  }
  if (call.info.isResourceRequest) return false;
  if (path == "/api" || path == "/api/") {
    serveApiVersions(call);
    return true;
  }
  if (path == "/apis" || path == "/apis/") {
    serveApiGroupList(call);
    return true;
  }
  if (info.apiPrefix == "api" && !info.version.empty()) {
    serveResourceList(call, "", info.version);
    return true;
  }
  if (info.apiPrefix == "apis" && !info.group.empty() && !info.version.empty()) {
    serveResourceList(call, info.group, info.version);
    return true;
  }
  if (info.apiPrefix == "apis") {
    // /apis/{group}
    auto group = path.substr(std::string("/apis/").size());
    if (!group.empty() && group.back() == '/') group.pop_back();
    serveApiGroup(call, group);
    return true;
  }
  return false;
}

}  // namespace orrery::apiserver
