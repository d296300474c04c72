#pragma once
// Writing a cluster's credentials into kubeconfig files the way kind does: one cluster, user
// and context of the same name, certificates embedded as base64 data, merged into an existing
// file without disturbing anything else in it.
//
// Which file: `--kubeconfig PATH` alone when given; else the files of $KUBECONFIG (merge into
// the first one that exists, or the last one when none exists, as kubectl creates new
// entries); else `~/.kube/config`. Removal cleans every one of those files.
//
// Files are locked while changed with kubectl's own protocol (create `FILE.lock` exclusively,
// delete it after), so a concurrent `kubectl config` never interleaves with us.

#include "engine/api/base64.h"
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::cluster {

/// One cluster's kubeconfig entries. `name` is the cluster, user and context name.
struct KubeconfigEntry {
  std::string name;
  std::string server;         // "https://127.0.0.1:PORT"
  std::string caPem;          // embedded as certificate-authority-data
  std::string clientCertPem;  // client-certificate-data
  std::string clientKeyPem;   // client-key-data
};

/// The kubeconfig files considered, in order (see above). `explicitPath` is --kubeconfig.
std::vector<std::string> kubeconfigPaths(const std::string& explicitPath);

/// The file new entries are merged into (see above).
std::string kubeconfigPathForMerge(const std::string& explicitPath);

/// Adds or replaces the entry's cluster, user and context in `path` (created 0600 with its
/// directory when missing) and, with `makeCurrent`, sets current-context. Every other entry
/// and field of the file is kept; a context that already had our name keeps its namespace.
api::Status mergeKubeconfig(const std::string& path, const KubeconfigEntry& entry,
                            bool makeCurrent = true);

/// Removes the cluster, user and context called `name` from `path`, and current-context if it
/// named it. Returns whether the file changed (a missing file changes nothing).
api::Result<bool> removeFromKubeconfig(const std::string& path, const std::string& name);

/// The API server URL of context `name` in `path` (its cluster's `server`), or nullopt when
/// the file, the context or its cluster is missing.
std::optional<std::string> contextServer(const std::string& path, const std::string& name);

/// True when `server` (https://127.0.0.1:PORT, https://localhost:PORT or https://[::1]:PORT)
/// accepts a TCP connection within `timeout`. Any other address is never contacted: false.
bool loopbackServerAnswers(const std::string& server,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

/// A complete kubeconfig holding only this entry, current-context set (`orrery kubeconfig`).
std::string renderKubeconfig(const KubeconfigEntry& entry);

/// Base64 (standard alphabet, padded), as kubeconfig's *-data fields.
using api::base64Encode;  // the engine's one base64 (engine/api/base64.h)

}  // namespace orrery::cluster
