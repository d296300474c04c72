#pragma once
// The API server: HTTPS, REST over the store, list/watch from a watch cache, discovery,
// OpenAPI, patches, server-side apply, tables, authentication and authorization.

#include <cstdint>
#include <memory>
#include <string>

#include "engine/api/status.h"
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

class ApiServer {
 public:
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
