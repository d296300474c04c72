#include "engine/apiserver/apiserver.h"

#include <condition_variable>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/api/kinds.h"
#include "engine/api/object.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/http_server.h"
#include "engine/apiserver/request_info.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Status;
using nlohmann::json;

namespace {

// What every cluster starts with, as kube-apiserver's bootstrap controllers create it.
std::vector<std::pair<api::GroupVersionResource, json>> bootstrapObjects(uint16_t port) {
  std::vector<std::pair<api::GroupVersionResource, json>> objects;
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    objects.push_back({{"", "v1", "namespaces"},
                       {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}});
  }
  objects.push_back({{"", "v1", "services"},
                     {{"apiVersion", "v1"},
                      {"kind", "Service"},
                      {"metadata",
                       {{"name", "kubernetes"},
                        {"namespace", "default"},
                        {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
                      {"spec",
                       {{"type", "ClusterIP"},
                        {"clusterIP", "10.96.0.1"},
                        {"clusterIPs", {"10.96.0.1"}},
                        {"ports", {{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}, {"targetPort", port}}}},
                        {"sessionAffinity", "None"}}}}});
  // The two system priority classes kube-apiserver creates at start-up.
  for (auto [name, value, description] :
       {std::tuple{"system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."},
        std::tuple{"system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."}}) {
    objects.push_back({{"scheduling.k8s.io", "v1", "priorityclasses"},
                       {{"apiVersion", "scheduling.k8s.io/v1"},
                        {"kind", "PriorityClass"},
                        {"metadata", {{"name", name}}},
                        {"value", value},
                        {"globalDefault", false},
                        {"preemptionPolicy", "PreemptLowerPriority"},
                        {"description", description}}});
  }
  // TODO(rbac): kube's admin, edit and view are aggregated ClusterRoles (aggregationRule over
  // the system:aggregate-to-* roles, filled by the clusterrole-aggregation controller) with
  // longer rule lists; these are flat approximations of them.
  auto clusterRole = [](const std::string& name, json rules) {
    return json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                {"kind", "ClusterRole"},
                {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
                              {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
                {"rules", std::move(rules)}};
  };
  const json readVerbs = {"get", "list", "watch"};
  const json writeVerbs = {"create", "delete", "deletecollection", "patch", "update"};
  json allVerbs = readVerbs;
  for (const auto& v : writeVerbs) allVerbs.push_back(v);
  const json workloads = {"pods", "pods/log", "pods/status", "services", "endpoints", "configmaps",
                          "secrets", "serviceaccounts", "persistentvolumeclaims", "events"};
  const json apps = {"deployments", "deployments/scale", "replicasets", "replicasets/scale",
                     "statefulsets", "statefulsets/scale", "daemonsets"};
  const json batch = {"jobs", "cronjobs"};
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("cluster-admin",
                                 {{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"*"}}},
                                  {{"nonResourceURLs", {"*"}}, {"verbs", {"*"}}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("admin", {{{"apiGroups", {""}}, {"resources", workloads}, {"verbs", allVerbs}},
                                           {{"apiGroups", {"apps"}}, {"resources", apps}, {"verbs", allVerbs}},
                                           {{"apiGroups", {"batch"}}, {"resources", batch}, {"verbs", allVerbs}},
                                           {{"apiGroups", {"rbac.authorization.k8s.io"}},
                                            {"resources", {"roles", "rolebindings"}}, {"verbs", allVerbs}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("edit", {{{"apiGroups", {""}}, {"resources", workloads}, {"verbs", allVerbs}},
                                          {{"apiGroups", {"apps"}}, {"resources", apps}, {"verbs", allVerbs}},
                                          {{"apiGroups", {"batch"}}, {"resources", batch}, {"verbs", allVerbs}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("view", {{{"apiGroups", {""}}, {"resources", {"pods", "pods/log", "services", "endpoints", "configmaps", "serviceaccounts", "persistentvolumeclaims", "events"}}, {"verbs", readVerbs}},
                                          {{"apiGroups", {"apps"}}, {"resources", apps}, {"verbs", readVerbs}},
                                          {{"apiGroups", {"batch"}}, {"resources", batch}, {"verbs", readVerbs}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("system:discovery",
                                 {{{"nonResourceURLs", {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                        "/openapi", "/openapi/*", "/readyz", "/version", "/version/"}},
                                   {"verbs", {"get"}}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("system:basic-user",
                                 {{{"apiGroups", {"authorization.k8s.io"}},
                                   {"resources", {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
                                   {"verbs", {"create"}}},
                                  {{"apiGroups", {"authentication.k8s.io"}},
                                   {"resources", {"selfsubjectreviews"}},
                                   {"verbs", {"create"}}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterroles"},
                     clusterRole("system:public-info-viewer",
                                 {{{"nonResourceURLs", {"/healthz", "/livez", "/readyz", "/version", "/version/"}},
                                   {"verbs", {"get"}}}})});
  auto binding = [](const std::string& name, const std::string& role, json subjects) {
    return json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                {"kind", "ClusterRoleBinding"},
                {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
                              {"annotations", {{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
                {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", role}}},
                {"subjects", subjects}};
  };
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterrolebindings"},
                     binding("cluster-admin", "cluster-admin",
                             {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "system:masters"}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterrolebindings"},
                     binding("system:discovery", "system:discovery",
                             {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "system:authenticated"}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterrolebindings"},
                     binding("system:basic-user", "system:basic-user",
                             {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "system:authenticated"}}})});
  objects.push_back({{"rbac.authorization.k8s.io", "v1", "clusterrolebindings"},
                     binding("system:public-info-viewer", "system:public-info-viewer",
                             {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "system:authenticated"}},
                              {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Group"}, {"name", "system:unauthenticated"}}})});
  return objects;
}

class ApiServerImpl : public ApiServer {
 public:
  ApiServerImpl(std::shared_ptr<ApiHandler> handler, std::unique_ptr<HttpServer> http)
      : handler_(std::move(handler)), http_(std::move(http)) {
    ticker_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stopping_) {
        cv_.wait_for(lock, std::chrono::seconds(1));
        if (stopping_) break;
        lock.unlock();
        handler_->tick();
        lock.lock();
      }
    });
  }
  ~ApiServerImpl() override { stop(); }

  uint16_t port() const override { return http_->port(); }

  void handle(HttpRequest& request, std::shared_ptr<Responder> responder) override {
    handler_->handle(request, std::move(responder));
  }

  api::Status registerProvider(api::ResourceInfo info, std::shared_ptr<ObjectProvider> provider) override {
    return handler_->registerProvider(std::move(info), std::move(provider));
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    ticker_.join();
    // Connections first (their close callbacks reach the watch caches), then the caches.
    http_->stop();
    handler_->shutdown();
  }

 private:
  std::shared_ptr<ApiHandler> handler_;
  std::unique_ptr<HttpServer> http_;
  std::thread ticker_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace

Status ApiHandler::bootstrap(uint16_t port) {
  for (auto& [gvr, object] : bootstrapObjects(port)) {
    auto info = resources_->find(gvr);
    if (!info) continue;
    auto& meta = metadataOf(object);
    std::string key = storageKey(*info, meta.value("namespace", ""), meta.value("name", ""));
    auto existing = store_->get(key);
    if (!existing.ok()) return existing.status();
    if (*existing) continue;
    api::applyKindDefaults(*info, object);
    meta["uid"] = api::newUid();
    meta["creationTimestamp"] = api::formatTime(std::chrono::system_clock::now());
    api::prepareForCreate(*info, object);
    auto created = store_->create(key, storedForm(object));
    if (!created.ok() && created.status().code() != 409) return created.status();
    if (created.ok()) noteWrite(*created, key);
  }
  return {};
}

api::Result<std::unique_ptr<ApiServer>> startApiServer(const ApiServerOptions& options,
                                                       std::shared_ptr<store::Store> store) {
  auto schemas = api::SchemaRegistry::builtin();
  if (!schemas.ok()) return schemas.status();
  auto resources = api::ResourceRegistry::builtin();
  auto handler = std::make_shared<ApiHandler>(store, resources, *schemas, options.clusterName);
  if (!options.serviceAccountKeyFile.empty()) {
    auto signer = TokenSigner::load(options.serviceAccountKeyFile);
    if (!signer.ok()) return signer.status();
    handler->setTokenSigner(std::move(*signer));
  }

  // Start from the store's current revision: reads must see everything already written.
  store::RangeRequest probe;
  probe.key = "/registry/";
  probe.prefix = true;
  probe.countOnly = true;
  auto head = store->range(probe);
  if (!head.ok()) return head.status();
  handler->noteStartRevision(head->revision);
  if (auto st = handler->loadCustomResourcesAtStart(); !st.isOk()) return st;
  if (auto st = handler->warmCaches(); !st.isOk()) return st;

  HttpServerOptions http;
  http.bindAddress = options.bindAddress;
  http.port = options.port;
  http.certFile = options.certFile;
  http.keyFile = options.keyFile;
  http.clientCaFile = options.clientCaFile;
  http.ioThreads = std::max(1, options.threads);
  // Reads of one object, watches and discovery are answered on the I/O thread; lists go to a
  // worker so a large one streams out while it is being assembled, and so do watches of
  // uncached resources (Events): their initial events are a read of the store.
  http.runInline = [](const HttpRequest& request) {
    if (request.method != "GET" && request.method != "HEAD") return false;
    auto info = parseRequestInfo(request);
    if (!info.isResourceRequest) return true;
    if (info.verb == "watch" && servedUncached(info.group, info.resource)) return false;
    return info.verb != "list";
  };
  auto server = startHttpServer(http, [handler](HttpRequest& request, std::shared_ptr<Responder> responder) {
    handler->handle(request, std::move(responder));
  });
  if (!server.ok()) return server.status();
  if (auto st = handler->bootstrap((*server)->port()); !st.isOk()) {
    (*server)->stop();
    return st;
  }
  spdlog::info("apiserver: serving on https://{}:{}", options.bindAddress, (*server)->port());
  return std::unique_ptr<ApiServer>(std::make_unique<ApiServerImpl>(handler, std::move(*server)));
}

}  // namespace orrery::apiserver
