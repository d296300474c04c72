#include "engine/cluster/lifecycle.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <thread>
#include <tuple>

#include "engine/cluster/daemon.h"
#include "engine/cluster/kubeconfig.h"
#include "engine/cluster/pki.h"
#include "engine/cluster/probe.h"
#include "engine/simnodes/simulated_nodes.h"

namespace orrery::cluster {

namespace fs = std::filesystem;
using api::Result;
using api::Status;

namespace {

constexpr auto kLockWait = std::chrono::seconds(60);

std::string absolutePath(const std::string& p) {
  if (p.empty()) return p;
  std::error_code ec;
  auto abs = fs::absolute(p, ec);
  return ec ? p : abs.lexically_normal().string();
}

Result<KubeconfigEntry> entryFor(const ResolvedCluster& rc) {
  if (!rc.config || rc.config->apiPort == 0) {
    return Status(404, api::reason::kNotFound,
                  "cluster \"" + rc.name + "\" has not been created (no " +
                      rc.layout.clusterJson() + "); create it with `orrery up" +
                      (rc.name == kDefaultClusterName ? "" : " --name " + rc.name) + "`");
  }
  PkiPaths pki{rc.layout.pkiDir()};
  KubeconfigEntry e;
  e.name = contextName(rc.name);
  e.server = apiUrl(rc.config->apiPort);
  auto ca = readFile(pki.caCert());
  auto cert = readFile(pki.adminCert());
  auto key = readFile(pki.adminKey());
  for (const auto* r : {&ca, &cert, &key}) {
    if (!r->ok()) {
      return Status::internal("cluster \"" + rc.name + "\" is missing its certificates (" +
                              r->status().message() + "); run `orrery up` to re-create them");
    }
  }
  e.caPem = *ca;
  e.clientCertPem = *cert;
  e.clientKeyPem = *key;
  return e;
}

std::string nameFlag(const std::string& name) {
  return name == kDefaultClusterName ? "" : " --name " + name;
}

// Waits until the API lists `count` simulated Nodes (after a resize of a running cluster).
Status waitForSimulatedNodes(uint16_t port, const PkiPaths& pki, int count, std::chrono::milliseconds timeout) {
  const std::string url = apiUrl(port) + "/api/v1/nodes?labelSelector=" + simnodes::kSimulatedLabel + "%3Dtrue";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto reply = httpsGet(url, pki); reply.ok() && reply->code == 200) {
      auto list = nlohmann::json::parse(reply->body, nullptr, false);
      if (list.is_object() && list.contains("items") && list["items"].is_array()) {
        seen = list["items"].size();
        if (seen == static_cast<size_t>(count)) return {};
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status(504, api::reason::kTimeout,
                "the control plane did not reach " + std::to_string(count) + " simulated node(s) in " +
                    std::to_string(timeout.count()) + " ms (it lists " + std::to_string(seen) +
                    "); see its log for why");
}

void remember(std::vector<std::string>& list, const std::string& path) {
  if (std::find(list.begin(), list.end(), path) == list.end()) list.push_back(path);
}

}  // namespace

Result<ResolvedCluster> resolveCluster(const ClusterRef& ref) {
  ResolvedCluster rc;
  rc.name = ref.name;
  if (!rc.name.empty()) {
    if (Status s = validateClusterName(rc.name); !s) return s;
  }
  if (rc.name.empty() && ref.dataDir.empty()) rc.name = kDefaultClusterName;
  // With only --data-dir, the directory says which cluster it holds.
  auto dir = resolveDataDir(rc.name.empty() ? kDefaultClusterName : rc.name, ref.dataDir);
  if (!dir.ok()) return dir.status();
  rc.layout.dir = *dir;
  auto config = loadClusterConfig(rc.layout);
  if (!config.ok()) return config.status();
  rc.config = *config;
  if (rc.name.empty()) rc.name = (rc.config && !rc.config->name.empty()) ? rc.config->name : kDefaultClusterName;
  if (rc.config && !rc.config->name.empty() && rc.config->name != rc.name) {
    return Status::badRequest("data directory " + rc.layout.dir + " holds cluster \"" +
                              rc.config->name + "\", not \"" + rc.name + "\"; use --name " +
                              rc.config->name + " or another --data-dir");
  }
  return rc;
}

Result<UpResult> up(const UpOptions& options, std::ostream& progress) {
  auto resolved = resolveCluster(options.cluster);
  if (!resolved.ok()) return resolved.status();
  ResolvedCluster rc = std::move(*resolved);
  const ClusterLayout& layout = rc.layout;

  std::error_code ec;
  fs::create_directories(layout.dir, ec);
  if (ec) {
    return Status::internal("cannot create data directory " + layout.dir + ": " + ec.message() +
                            "; choose another with --data-dir");
  }
  ::chmod(layout.dir.c_str(), 0700);
  auto lock = DirLock::acquire(layout.lockFile(), kLockWait);
  if (!lock.ok()) return lock.status();
  // Re-read under the lock: another `up` may just have written it.
  auto fresh = loadClusterConfig(layout);
  if (!fresh.ok()) return fresh.status();
  rc.config = *fresh;

  UpResult result;
  result.name = rc.name;
  result.context = contextName(rc.name);
  result.dataDir = layout.dir;
  result.kubeconfigPath = absolutePath(kubeconfigPathForMerge(options.kubeconfig));
  result.created = !rc.config.has_value();

  ClusterConfig config = rc.config.value_or(ClusterConfig{});
  config.name = rc.name;
  if (options.store) {
    std::string wanted = *options.store;
    if (wanted.empty()) wanted = "sqlite";
    if (wanted != "sqlite" && wanted != "etcd" && wanted.rfind("etcd://", 0) != 0) {
      return Status::badRequest("--store: unsupported value \"" + wanted +
                                "\": use sqlite, etcd (a local etcd Orrery runs) or etcd://HOST:PORT[,HOST:PORT...]");
    }
    if (rc.config && rc.config->store != wanted) {
      return Status(409, api::reason::kConflict,
                    "cluster \"" + rc.name + "\" keeps its objects in " + rc.config->store + ", not " + wanted +
                        "; create another cluster with --name, or remove this one with `orrery down" +
                        nameFlag(rc.name) + " --purge` first");
    }
    config.store = wanted;
  }
  const int simulatedBefore = config.simulatedNodes;
  if (options.simulatedNodes) {
    if (*options.simulatedNodes < 0) return Status::badRequest("--simulated-nodes must be 0 or more");
    config.simulatedNodes = *options.simulatedNodes;
  }
  for (auto [given, kept, flag] : {std::tuple{&options.nodeTemplateFile, &config.nodeTemplateFile, "--node-template"},
                                   std::tuple{&options.schedulerConfigFile, &config.schedulerConfigFile, "--scheduler-config"}}) {
    if (!*given) continue;
    if ((*given)->empty()) {
      kept->clear();
      continue;
    }
    std::string path = absolutePath(**given);
    auto text = readFile(path);
    if (!text.ok()) return Status::badRequest(std::string(flag) + ": cannot read " + path + ": " + text.status().message());
    *kept = path;
  }
  if (config.created.empty()) config.created = nowRfc3339();

  DaemonProbe probe = probePidFile(layout.pidFile());
  if (probe.running) {
    result.alreadyRunning = true;
    result.pid = probe.pid;
    result.port = config.apiPort;
    progress << "Cluster \"" << rc.name << "\" is already running (pid " << probe.pid << ", "
             << apiUrl(config.apiPort) << ").\n";
    if (options.apiPort != 0 && options.apiPort != config.apiPort) {
      progress << "Note: it serves on port " << config.apiPort << ", not " << options.apiPort
               << "; run `orrery down" << nameFlag(rc.name)
               << "` first to move it to another port.\n";
    }
  } else {
    // The port: as asked, else as before (so kubeconfigs stay valid), else any free one.
    uint16_t port = options.apiPort ? options.apiPort : config.apiPort;
    if (port == 0) {
      auto picked = pickFreePort();
      if (!picked.ok()) return picked.status();
      port = *picked;
    }
    if (!portAvailable(port)) {
      std::string why = "port " + std::to_string(port) + " is in use by another process";
      if (!options.apiPort) {
        why += " (it is the port cluster \"" + rc.name + "\" used before, saved in " +
               layout.clusterJson() + ")";
      }
      return Status(409, api::reason::kConflict, why + "; choose another with --api-port");
    }
    config.apiPort = port;
    result.port = port;

    progress << (result.created ? "Creating" : "Starting") << " cluster \"" << rc.name
             << "\" ...\n";
    auto pki = ensurePki(layout.pkiDir());
    if (!pki.ok()) return pki.status();
    if (!pki->issued.empty()) {
      progress << " ✓ " << (pki->createdCa ? "Generating certificates" : "Renewing certificates")
               << " 🔐\n";
    }
    remember(config.kubeconfigs, result.kubeconfigPath);
    if (Status s = saveClusterConfig(layout, config); !s) return s;

    SpawnOptions spawn;
    spawn.executable = options.executable;
    spawn.args = {"serve", "--name", rc.name, "--data-dir", layout.dir, "--api-port",
                  std::to_string(port)};
    spawn.logFile = layout.logFile();
    spawn.readyTimeout = options.readyTimeout;
    auto started = spawnDaemon(spawn);
    if (!started.ok()) return started.status();
    result.pid = started->pid;
    progress << " ✓ Starting control plane (pid " << result.pid << ", " << apiUrl(port)
             << ") 🕹️\n";
  }

  rc.config = config;
  auto entry = entryFor(rc);
  if (!entry.ok()) return entry.status();
  if (Status s = mergeKubeconfig(result.kubeconfigPath, *entry, true); !s) return s;
  if (result.alreadyRunning) {
    remember(config.kubeconfigs, result.kubeconfigPath);
    if (Status s = saveClusterConfig(layout, config); !s) return s;
    if (options.simulatedNodes) {
      // The running control plane re-reads cluster.json on SIGHUP and adds or removes nodes.
      // Signalled even when the saved count is unchanged: a resize that failed or timed out
      // before saved it too, and asking again is how to retry it.
      if (::kill(result.pid, SIGHUP) != 0) {
        return Status::internal("cannot signal the control plane (pid " + std::to_string(result.pid) +
                                ") to change its simulated nodes: " + std::strerror(errno));
      }
      if (Status s = waitForSimulatedNodes(config.apiPort, PkiPaths{layout.pkiDir()}, config.simulatedNodes,
                                           options.readyTimeout);
          !s) {
        return s;
      }
      progress << " ✓ Simulated nodes: " << simulatedBefore << " → " << config.simulatedNodes << "\n";
    }
  }
  progress << "Set kubectl context to \"" << result.context << "\" in " << result.kubeconfigPath
           << "\n";
  return result;
}

Result<DownResult> down(const DownOptions& options, std::ostream& progress) {
  auto resolved = resolveCluster(options.cluster);
  if (!resolved.ok()) return resolved.status();
  ResolvedCluster rc = std::move(*resolved);
  const ClusterLayout& layout = rc.layout;

  progress << "Stopping cluster \"" << rc.name << "\" ...\n";
  DownResult result;
  result.name = rc.name;
  result.dataDir = layout.dir;
  std::error_code ec;
  bool dirExists = fs::is_directory(layout.dir, ec);
  result.existed = rc.config.has_value();

  std::optional<DirLock> lock;
  if (dirExists) {
    auto l = DirLock::acquire(layout.lockFile(), kLockWait);
    if (!l.ok()) return l.status();
    lock.emplace(std::move(*l));
    auto stopped = stopDaemon(layout.pidFile(), options.gracePeriod);
    if (!stopped.ok()) return stopped.status();
    result.wasRunning = stopped->wasRunning;
    result.killed = stopped->killed;
    result.pid = stopped->pid;
  }
  if (result.wasRunning) {
    progress << " ✓ Stopped control plane (pid " << result.pid
             << (result.killed ? ", killed after it ignored SIGTERM" : "") << ")\n";
  } else if (result.existed) {
    progress << "Cluster \"" << rc.name << "\" was not running.\n";
  } else {
    progress << "No cluster \"" << rc.name << "\" in " << layout.dir << ".\n";
  }

  // The kubeconfig files: the one asked for, else every file `up` wrote and kubectl reads.
  std::vector<std::string> files;
  if (!options.kubeconfig.empty()) {
    files.push_back(absolutePath(options.kubeconfig));
  } else {
    if (rc.config) files = rc.config->kubeconfigs;
    for (const auto& p : kubeconfigPaths("")) remember(files, absolutePath(p));
  }
  std::string context = contextName(rc.name);
  std::vector<std::string> failures;
  for (const auto& f : files) {
    if (!result.existed && !result.wasRunning) {
      // No cluster here, but the context may belong to one started with --data-dir elsewhere:
      // a context whose API server still answers is not stale, so it stays (kind removes
      // only what no longer runs).
      if (auto server = contextServer(f, context); server && loopbackServerAnswers(*server)) {
        result.kubeconfigsKept.push_back(f);
        progress << " ! Kept context \"" << context << "\" in " << f << ": its API server " << *server
                 << " still answers. It was started with another --data-dir; stop it with `orrery down"
                 << nameFlag(rc.name) << " --data-dir DIR` naming that directory.\n";
        continue;
      }
    }
    auto removed = removeFromKubeconfig(f, context);
    if (!removed.ok()) {
      failures.push_back(removed.status().message());
      continue;
    }
    if (*removed) {
      result.kubeconfigsCleaned.push_back(f);
      progress << " ✓ Removed context \"" << context << "\" from " << f << "\n";
    }
  }

  if (options.purge && dirExists) {
    // Only ever delete what is recognisably a cluster's data directory.
    if (!rc.config && !fs::exists(layout.pkiDir(), ec) && !fs::exists(layout.storePath(), ec)) {
      return Status::badRequest(layout.dir +
                                " does not look like an orrery data directory (no cluster.json, "
                                "pki or store.db); not deleting it");
    }
    lock.reset();
    fs::remove_all(layout.dir, ec);
    if (ec) {
      return Status::internal("cannot delete " + layout.dir + ": " + ec.message() +
                              "; delete it by hand");
    }
    result.purged = true;
    progress << " ✓ Deleted " << layout.dir << "\n";
  } else if (rc.config && !result.kubeconfigsCleaned.empty()) {
    ClusterConfig config = *rc.config;
    std::erase_if(config.kubeconfigs, [&](const std::string& p) {
      return std::find(result.kubeconfigsCleaned.begin(), result.kubeconfigsCleaned.end(), p) !=
             result.kubeconfigsCleaned.end();
    });
    if (Status s = saveClusterConfig(layout, config); !s) return s;
  }

  if (!failures.empty()) {
    std::string all;
    for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
    return Status::internal("the cluster is stopped, but its context could not be removed: " + all);
  }
  return result;
}

Result<ClusterStatus> clusterStatus(const ClusterRef& ref, bool probeApi) {
  auto resolved = resolveCluster(ref);
  if (!resolved.ok()) return resolved.status();
  const ResolvedCluster& rc = *resolved;
  ClusterStatus st;
  st.name = rc.name;
  st.context = contextName(rc.name);
  st.dataDir = rc.layout.dir;
  st.exists = rc.config.has_value();
  if (rc.config) {
    st.port = rc.config->apiPort;
    st.created = rc.config->created;
    st.store = rc.config->store;
    st.simulatedNodes = rc.config->simulatedNodes;
  }
  DaemonProbe probe = probePidFile(rc.layout.pidFile());
  st.running = probe.running;
  st.pid = probe.pid;
  if (st.running && probeApi && st.port) {
    PkiPaths pki{rc.layout.pkiDir()};
    st.ready = apiReady(st.port, pki);
    if (st.ready) st.storeRevision = readStoreRevision(st.port, pki);
  }
  return st;
}

Result<std::vector<ClusterStatus>> listClusters() {
  auto root = dataRoot();
  if (!root.ok()) return root.status();
  std::vector<ClusterStatus> out;
  std::error_code ec;
  if (!fs::is_directory(*root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(*root, ec)) {
    if (!entry.is_directory(ec)) continue;
    ClusterLayout layout{entry.path().string()};
    auto config = loadClusterConfig(layout);
    if (!config.ok() || !*config) continue;
    auto st = clusterStatus({(*config)->name, layout.dir}, false);
    if (st.ok()) out.push_back(std::move(*st));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<std::string> clusterKubeconfig(const ClusterRef& ref) {
  auto resolved = resolveCluster(ref);
  if (!resolved.ok()) return resolved.status();
  auto entry = entryFor(*resolved);
  if (!entry.ok()) return entry.status();
  return renderKubeconfig(*entry);
}

}  // namespace orrery::cluster
