#pragma once
// Small HTTPS reads against a local cluster's API with its admin credentials (libcurl), for
// `orrery status` and readiness checks. Not a client library: engine/client is that.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/api/status.h"
#include "engine/cluster/pki.h"

namespace orrery::cluster {

struct HttpReply {
  long code = 0;
  std::string body;
};

/// GET `url` trusting only the cluster CA, authenticating with the admin certificate.
/// A transport failure (refused, TLS, timeout) is a 503 Status naming the cause.
api::Result<HttpReply> httpsGet(const std::string& url, const PkiPaths& pki,
                                std::chrono::milliseconds timeout = std::chrono::seconds(2));

/// The store revision as the API reports it (resourceVersion of a one-item namespace list);
/// nullopt when the API does not answer or the list carries none.
std::optional<int64_t> readStoreRevision(uint16_t port, const PkiPaths& pki);

/// True if GET /readyz answers 200.
bool apiReady(uint16_t port, const PkiPaths& pki);

}  // namespace orrery::cluster
