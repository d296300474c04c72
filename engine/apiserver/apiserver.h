#pragma once
// The API server: HTTPS, REST over the store, list/watch from a watch cache, discovery,
// OpenAPI, patches, server-side apply, tables, authentication and authorization.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"
#include "engine/api/status.h"
#include "engine/apiserver/http_server.h"
#include "engine/store/store.h"

namespace orrery::apiserver {

struct ApiServerOptions {
  std::string bindAddress = "127.0.0.1";
  uint16_t port = 0;  // 0 = pick a free port; see ApiServer::port()
  std::string certFile;      // serving certificate (PEM)
  std::string keyFile;       // its key
  std::string clientCaFile;  // CA that signs client certificates (admin, nodes)
  /// EC P-256 private key (PEM) that signs and verifies service-account tokens (ES256 JWTs);
  /// empty: no service-account tokens.
  std::string serviceAccountKeyFile;
  int threads = 2;
  std::string clusterName = "orrery";
};

/// A read-only resource whose objects live in the memory of an in-process component rather
/// than in the store (the scheduler's decision records), served through the same routing,
/// RBAC, discovery, table and list paths as stored resources. get/list only (405 otherwise).
class ObjectProvider {
 public:
  virtual ~ObjectProvider() = default;
  /// The object, or nullopt (404).
  virtual std::optional<nlohmann::json> get(const std::string& ns, const std::string& name) = 0;
  /// Every object of a namespace ("" = all), with metadata.resourceVersion set.
  virtual std::vector<nlohmann::json> list(const std::string& ns) = 0;

  // Watches (optional): a provider that can tell its changes since a revision is watchable.
  struct Change {
    std::string type;  // ADDED, MODIFIED, DELETED
    int64_t revision = 0;
    nlohmann::json object;
  };
  virtual bool watchable() const { return false; }
  /// The provider's current revision (a list's resourceVersion).
  virtual int64_t revision() { return 0; }
  /// list() and the revision it shows, read together: a watch that starts from there misses
  /// no change and sees none twice. The default reads the revision first (a change in
  /// between then comes twice, never not at all).
  virtual std::vector<nlohmann::json> listAt(const std::string& ns, int64_t* revision) {
    *revision = this->revision();
    return list(ns);
  }
  /// The changes after `revision`, oldest first, and the current revision; false when those
  /// changes are no longer known (the watch ends with 410 Expired).
  virtual bool changesSince(int64_t revision, std::vector<Change>* out, int64_t* current) { return false; }
  /// Waits until the revision passes `revision`, or until `deadline`.
  virtual void waitForChange(int64_t revision, std::chrono::steady_clock::time_point deadline) {}
};

class ApiServer {
 public:
  /// Serves one request in-process: the same authentication, authorization, admission, store
  /// and watch path as HTTPS, without a socket. Who asks is `request.peer` (as if it were a
  /// client certificate). The responder may be called on this thread or, for streams, later
  /// from another.
  virtual void handle(HttpRequest& request, std::shared_ptr<Responder> responder) = 0;
  /// Serves `info` (its columns may use jsonPath cells) from `provider`. Replaces an earlier
  /// provider of the same resource.
  virtual api::Status registerProvider(api::ResourceInfo info, std::shared_ptr<ObjectProvider> provider) = 0;

  virtual ~ApiServer() = default;
  /// The port actually bound.
  virtual uint16_t port() const = 0;
  /// Stops accepting, ends watches and open requests, joins threads. Idempotent.
  virtual void stop() = 0;
};

/// Starts serving over `store` (which must outlive the server). Returns once listening.
api::Result<std::unique_ptr<ApiServer>> startApiServer(const ApiServerOptions& options,
                                                       std::shared_ptr<store::Store> store);

}  // namespace orrery::apiserver
