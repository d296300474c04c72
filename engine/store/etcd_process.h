#pragma once
// A local etcd: one or more `etcd` processes on loopback, for `orrery up --store etcd` and for
// tests. Everything it creates carries the "orrery" name: member names ("orrery-etcd-0"),
// data directories (<dataDir>/orrery-etcd-0) and the log files next to them.
//
//   auto etcd = store::EtcdProcess::start({.dataDir = dir});   // waits until /health is true
//   if (!etcd.ok()) return etcd.status();
//   auto store = store::openStore((*etcd)->storeUrl());         // "etcd://127.0.0.1:PORT"
//   ...
//   (*etcd)->stop();                                            // or let the destructor do it
//
// The processes never outlive their owner: stop() (and the destructor) sends SIGTERM, then
// SIGKILL after a grace period; each child also gets PR_SET_PDEATHSIG(SIGKILL), so a crashed
// owner takes its etcd with it (Linux ties this to the *thread* that called start(): call it
// from a thread that lives as long as the cluster, e.g. main()).
//
// A data directory remembers its members' names, ports and cluster token
// (<dataDir>/orrery-etcd.json): starting again on the same directory brings the same cluster
// back with its data, on the same ports.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::store {

struct EtcdProcessOptions {
  /// Parent directory of the members' data directories (created if missing). Required.
  std::string dataDir;
  /// 1 for a single member; 3 (or 5) for a local cluster of that many processes.
  int members = 1;
  /// The etcd binary; empty: /usr/bin/etcd, else `etcd` on PATH.
  std::string binary;
  /// Raft timing in milliseconds; 0 keeps etcd's defaults (100 / 1000). Tests of failover use
  /// shorter ones so that a new leader is elected quickly.
  int heartbeatMs = 0;
  int electionMs = 0;
  /// How long start() and startMember() wait for /health to say "true".
  std::chrono::milliseconds startTimeout{30000};
  /// etcd has no "no quota" setting: 0 would mean its 2 GiB default. 8 GiB is the largest
  /// size etcd supports without warning.
  int64_t quotaBackendBytes = int64_t{8} << 30;
  /// TLS on the client port (peers stay on plain loopback http). With serverCertFile and
  /// serverKeyFile the client URLs are https; with caFile etcd also requires client
  /// certificates signed by it (--client-cert-auth), and clientCertFile/clientKeyFile are
  /// what this object's own health checks and storeUrl() present.
  struct Tls {
    std::string serverCertFile;
    std::string serverKeyFile;
    std::string caFile;
    std::string clientCertFile;
    std::string clientKeyFile;
  } tls;
  /// Arguments appended to every member's command line.
  std::vector<std::string> extraArgs;
};

/// A running local etcd cluster (one or more members). Not copyable; stops on destruction.
class EtcdProcess {
 public:
  /// Starts every member and waits until each reports healthy. Fails with a Status that
  /// names the member and quotes the end of its log if one exits or stays unhealthy.
  static api::Result<std::unique_ptr<EtcdProcess>> start(const EtcdProcessOptions& options);

  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  /// Every member's client URL ("http://127.0.0.1:PORT", https with TLS), in member order.
  std::vector<std::string> clientUrls() const;
  /// The store URL of the whole cluster for openStore(): "etcd://127.0.0.1:P1,127.0.0.1:P2"
  /// (with TLS: "...?cacert=CA&cert=CLIENT&key=CLIENTKEY").
  std::string storeUrl() const;

  /// Stops every member: SIGTERM, then SIGKILL after 10 s. Idempotent; data is kept.
  api::Status stop();

  // ---- Per member (for fault tests and the store browser).
  size_t memberCount() const;
  std::string memberName(size_t member) const;
  std::string memberDataDir(size_t member) const;
  std::string memberLogFile(size_t member) const;
  /// The member's process id, or 0 when it is not running.
  pid_t memberPid(size_t member) const;
  bool memberRunning(size_t member);
  /// Sends `signal` (SIGKILL by default) to the member and reaps it.
  api::Status killMember(size_t member, int signal = 9);
  /// Starts a stopped member again on its data directory and ports. With `waitHealthy`, waits
  /// until it reports healthy (which needs a quorum of members running).
  api::Status startMember(size_t member, bool waitHealthy = true);
  /// Waits until the member's /health says "true".
  api::Status waitHealthy(size_t member, std::chrono::milliseconds timeout);

 private:
  struct Member;
  explicit EtcdProcess(EtcdProcessOptions options);
  api::Status launch(size_t member);
  void reap(size_t member, bool block);
  std::string logTail(size_t member) const;

  EtcdProcessOptions options_;
  std::string token_;
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace orrery::store
