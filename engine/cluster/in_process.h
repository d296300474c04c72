#pragma once
// The in-process transport: engine/client requests served by ApiServer::handle in the same
// process, with the same authentication, authorization, admission, store and watch path as
// HTTPS and no socket or TLS. The control plane's own components (scheduler, controllers,
// simulated nodes) use it; so do tests and benchmarks, through LocalApiServer.

#include <memory>
#include <string>
#include <vector>

#include "engine/api/status.h"
#include "engine/apiserver/apiserver.h"
#include "engine/client/client.h"
#include "engine/store/store.h"

namespace orrery::cluster {

struct ServerGate;

/// A Transport whose requests are served by `server` as user `user` in `groups` (as a client
/// certificate with CN=user, O=groups would be). `server` must outlive the transport.
std::shared_ptr<client::Transport> inProcessTransport(apiserver::ApiServer& server, std::string user,
                                                      std::vector<std::string> groups);

/// An API server over a store of its own, with fresh certificates in `dir`, for tests,
/// benchmarks and tools. Stops the server before it closes the store.
class LocalApiServer {
 public:
  struct Options {
    std::string dir;       // certificates and (default) store.db live here
    std::string storeUrl;  // empty: SQLite at dir/store.db
  };
  static api::Result<std::unique_ptr<LocalApiServer>> start(const Options& options);
  ~LocalApiServer();

  apiserver::ApiServer& server() { return *server_; }
  std::shared_ptr<store::Store> store() { return store_; }
  /// A client over the in-process transport as a cluster admin (system:masters).
  std::shared_ptr<client::Client> adminClient(const std::string& userAgent = "orrery-test");
  /// An in-process transport as `user` in `groups` (RBAC applies as for a certificate with
  /// CN=user, O=groups). Like adminClient's, it answers 503 once this server is destroyed.
  std::shared_ptr<client::Transport> transport(std::string user, std::vector<std::string> groups);
  /// HTTPS port on loopback (kubectl or libcurl can reach it), and the admin kubeconfig path.
  uint16_t port() const;
  std::string kubeconfigPath() const;

 private:
  LocalApiServer() = default;
  std::string dir_;
  std::shared_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::shared_ptr<ServerGate> gate_;
};

}  // namespace orrery::cluster
