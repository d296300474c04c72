#pragma once
// Where a local cluster keeps its state, and what it is called.
//
// A cluster NAME lives in one data directory (default `$XDG_DATA_HOME/orrery/NAME`, else
// `~/.local/share/orrery/NAME`, unless `--data-dir`):
//
//   store.db               the SQLite store
//   pki/                   ca.crt ca.key apiserver.crt apiserver.key admin.crt admin.key sa.key sa.pub
//   cluster.json           name, API port, creation time, kubeconfig files written
//   control-plane.log      stdout/stderr of the control-plane process
//   control-plane.pid      its pid; locked (flock) by the process for as long as it runs

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::cluster {

using api::Result;
using api::Status;

/// The cluster name used when none is given.
inline constexpr const char* kDefaultClusterName = "orrery";

/// Cluster names: 1-63 characters of [a-z0-9-], starting and ending with a letter or digit
/// (they become kubeconfig entry names and directory names).
Status validateClusterName(const std::string& name);

/// The kubeconfig context/cluster/user name of a cluster: "orrery" for the default cluster,
/// "orrery-NAME" otherwise.
std::string contextName(const std::string& clusterName);

/// `$XDG_DATA_HOME/orrery`, else `$HOME/.local/share/orrery` (home from the passwd entry when
/// HOME is unset). Fails only when no home directory can be found.
Result<std::string> dataRoot();

/// The data directory of cluster `name`: `explicitDir` made absolute when given, else
/// dataRoot()/name.
Result<std::string> resolveDataDir(const std::string& name, const std::string& explicitDir);

/// The file paths inside one cluster's data directory.
struct ClusterLayout {
  std::string dir;  // absolute

  std::string storePath() const { return dir + "/store.db"; }
  std::string pkiDir() const { return dir + "/pki"; }
  std::string clusterJson() const { return dir + "/cluster.json"; }
  std::string logFile() const { return dir + "/control-plane.log"; }
  std::string pidFile() const { return dir + "/control-plane.pid"; }
  std::string lockFile() const { return dir + "/.orrery.lock"; }
};

/// What cluster.json holds.
struct ClusterConfig {
  std::string name;
  uint16_t apiPort = 0;
  std::string created;                  // RFC 3339, UTC
  std::vector<std::string> kubeconfigs;  // files `up` merged its context into (for `down`)
  /// Where the objects live, fixed when the cluster is created: "sqlite" (DIR/store.db),
  /// "etcd" (a local etcd under DIR/etcd) or "etcd://HOST:PORT[,...]".
  std::string store = "sqlite";
  int simulatedNodes = 0;
  std::string nodeTemplateFile;     // absolute; empty: the default template
  std::string schedulerConfigFile;  // absolute; empty: kube-scheduler's defaults
};

/// Reads DIR/cluster.json; nullopt when the file does not exist.
Result<std::optional<ClusterConfig>> loadClusterConfig(const ClusterLayout& layout);
/// Writes DIR/cluster.json atomically.
Status saveClusterConfig(const ClusterLayout& layout, const ClusterConfig& config);

/// The current time as RFC 3339 in UTC ("2024-05-01T12:00:00Z").
std::string nowRfc3339();

/// "https://127.0.0.1:PORT".
std::string apiUrl(uint16_t port);

// ---- Small file helpers shared by the cluster code.

/// Reads a whole file. 404-style NotFound Status when it does not exist.
Result<std::string> readFile(const std::string& path);
/// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename) with
/// permission bits `mode`.
Status writeFileAtomic(const std::string& path, const std::string& data, unsigned mode = 0644);

}  // namespace orrery::cluster
