#pragma once
// The control-plane process (`orrery serve`, started by `orrery up`): takes the pid-file
// lock, opens the store, serves the API with the cluster's certificates, reports readiness,
// and on SIGTERM/SIGINT stops the server, closes (flushes) the store, removes the pid file and
// returns 0. Logs with spdlog to stderr, which `up` points at DIR/control-plane.log.
//
// Lives in its own library (orrery_cluster_serve) because it is the only part of
// engine/cluster that links the store and the API server.

#include <cstdint>
#include <string>

namespace orrery::cluster {

struct ServeOptions {
  std::string name = "orrery";
  std::string dataDir;  // absolute
  uint16_t apiPort = 0;
  int readyFd = -1;     // pipe from `up`: "ready PORT" or "error: CODE MESSAGE"
  int apiThreads = 2;
  /// Where objects live: "" or "sqlite" (DIR/store.db), "etcd" (a local etcd process under
  /// DIR/etcd, started and stopped with the control plane), or "etcd://HOST:PORT[,...]".
  std::string store;
  /// Run the controllers and the scheduler in this process (false: API server only).
  bool components = true;
  int simulatedNodes = 0;
  std::string nodeTemplateFile;
  std::string schedulerConfigFile;
};

/// Runs the control plane until SIGTERM or SIGINT. Returns the process exit code.
int runControlPlane(const ServeOptions& options);

}  // namespace orrery::cluster
