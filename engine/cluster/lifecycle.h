#pragma once
// Local cluster lifecycle: what `orrery up`, `down`, `status`, `kubeconfig` and `list` do.
// The control plane itself runs in a separate process (`orrery serve`, see serve.h) that
// `up` starts detached and `down` stops; everything else here is files (data dir, pki,
// cluster.json, kubeconfig).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/api/status.h"
#include "engine/cluster/layout.h"

namespace orrery::cluster {

/// Which cluster a command means. `name` empty: the name recorded in `dataDir`'s
/// cluster.json when `dataDir` is given and has one, else "orrery".
struct ClusterRef {
  std::string name;
  std::string dataDir;
};

/// A resolved cluster: its name, data directory, and cluster.json if it exists.
struct ResolvedCluster {
  std::string name;
  ClusterLayout layout;
  std::optional<ClusterConfig> config;
};

api::Result<ResolvedCluster> resolveCluster(const ClusterRef& ref);

struct UpOptions {
  ClusterRef cluster;
  uint16_t apiPort = 0;    // 0: the port in cluster.json, else a free one (then persisted)
  std::string kubeconfig;  // --kubeconfig; empty: $KUBECONFIG / ~/.kube/config
  std::string executable;  // the orrery binary that has the hidden `serve` command
  std::chrono::milliseconds readyTimeout{30000};
  /// Settings kept in cluster.json; unset: as before (or the defaults for a new cluster).
  std::optional<std::string> store;  // "sqlite", "etcd", "etcd://HOST:PORT[,...]"; fixed at creation
  std::optional<int> simulatedNodes;
  std::optional<std::string> nodeTemplateFile;
  std::optional<std::string> schedulerConfigFile;
};

struct UpResult {
  std::string name;
  std::string context;
  std::string dataDir;
  std::string kubeconfigPath;
  uint16_t port = 0;
  pid_t pid = 0;
  bool alreadyRunning = false;
  bool created = false;  // first start of this cluster (new data dir / certificates)
};

/// Starts the cluster's control plane unless it runs, then merges its context into the
/// kubeconfig and makes it current. Progress lines go to `progress`.
api::Result<UpResult> up(const UpOptions& options, std::ostream& progress);

struct DownOptions {
  ClusterRef cluster;
  std::string kubeconfig;  // --kubeconfig; empty: the files `up` wrote plus $KUBECONFIG's
  bool purge = false;
  std::chrono::milliseconds gracePeriod{10000};  // SIGTERM → SIGKILL
};

struct DownResult {
  std::string name;
  std::string dataDir;
  bool existed = false;
  bool wasRunning = false;
  bool killed = false;
  pid_t pid = 0;
  std::vector<std::string> kubeconfigsCleaned;
  /// Files whose context was kept: no cluster in this data directory, yet the context's API
  /// server answers (a cluster of that name started with another --data-dir).
  std::vector<std::string> kubeconfigsKept;
  bool purged = false;
};

/// Stops the control plane (if running), removes the context from the kubeconfig files, and
/// with `purge` deletes the data directory. Stopping a stopped cluster is not an error.
api::Result<DownResult> down(const DownOptions& options, std::ostream& progress);

struct ClusterStatus {
  std::string name;
  std::string context;
  std::string dataDir;
  bool exists = false;   // the data dir holds a cluster.json
  bool running = false;
  pid_t pid = 0;
  uint16_t port = 0;
  std::string created;
  std::string store = "sqlite";  // as cluster.json says
  int simulatedNodes = 0;
  bool ready = false;                   // /readyz answered 200 (only probed when running)
  std::optional<int64_t> storeRevision;  // via the API (only when running)
};

/// What `orrery status` shows. `probeApi`: also ask the API for /readyz and the revision.
api::Result<ClusterStatus> clusterStatus(const ClusterRef& ref, bool probeApi = true);

/// Every cluster under dataRoot() (directories with a cluster.json), by name.
api::Result<std::vector<ClusterStatus>> listClusters();

/// A standalone kubeconfig for the cluster (its own cluster, user and context).
api::Result<std::string> clusterKubeconfig(const ClusterRef& ref);

}  // namespace orrery::cluster
