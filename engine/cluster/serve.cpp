#include "engine/cluster/serve.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include "engine/apiserver/apiserver.h"
#include "engine/cluster/control_plane.h"
#include "engine/cluster/daemon.h"
#include "engine/cluster/layout.h"
#include "engine/cluster/pki.h"
#include "engine/store/etcd_process.h"
#include "engine/store/store.h"

namespace orrery::cluster {

using api::Status;

namespace {

// How often an idle control plane hands freed heap pages back to the kernel.
constexpr auto kTrimInterval = std::chrono::seconds(10);

// jemalloc's control interface, when the process runs on jemalloc (the `orrery` binary links
// it; tests and tools linking this library may not): looked up at run time so that this
// library builds and runs on either allocator.
using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
MallctlFn jemallocCtl() {
  static const MallctlFn fn = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

// glibc gives every thread that allocates under contention an arena of its own, up to eight
// per core, and keeps each arena's freed pages. The control plane's threads pass objects to
// one another (parsed on one, freed on another), so with the default a 2,000-pod cluster held
// twice its live heap. A few arenas, and freed pages returned regularly, keep RSS near what is
// live. A MALLOC_ARENA_MAX or GLIBC_TUNABLES set by the user wins. (jemalloc is configured
// in app/orrery/allocator.cpp.)
void limitMallocArenas() {
  if (jemallocCtl() || std::getenv("MALLOC_ARENA_MAX") || std::getenv("GLIBC_TUNABLES")) return;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  mallopt(M_ARENA_MAX, static_cast<int>(std::clamp(cores, 2u, 8u)));
}

// Hands the heap's free pages back to the kernel (while the control plane is idle).
void releaseFreeMemory() {
  if (MallctlFn ctl = jemallocCtl()) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    ctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    if (spdlog::should_log(spdlog::level::debug)) {
      // Live objects against what the heap holds: the gap is fragmentation.
      uint64_t epoch = 1;
      size_t len = sizeof epoch;
      ctl("epoch", &epoch, &len, &epoch, len);
      auto mib = [&](const char* name) {
        size_t value = 0, size = sizeof value;
        return ctl(name, &value, &size, nullptr, 0) == 0 ? value / 1048576.0 : -1.0;
      };
      spdlog::debug("heap: {:.1f} MiB allocated, {:.1f} MiB active, {:.1f} MiB resident, {:.1f} MiB metadata",
                    mib("stats.allocated"), mib("stats.active"), mib("stats.resident"), mib("stats.metadata"));
    }
    return;
  }
  malloc_trim(0);
}

}  // namespace

int runControlPlane(const ServeOptions& options) {
  auto started = std::chrono::steady_clock::now();
  limitMallocArenas();  // before any thread starts
  auto log = spdlog::stderr_logger_mt("control-plane");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_default_logger(log);
  spdlog::flush_on(spdlog::level::info);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, as every spdlog program

  int readyFd = options.readyFd;
  auto fail = [&](const Status& s) {
    log->error("{}", s.message());
    writeReadyLine(readyFd, "error: " + std::to_string(s.code() ? s.code() : 500) + " " + s.message());
    readyFd = -1;
    return 1;
  };

  // Block the stop signals before any thread exists, so every thread the store and the
  // server start inherits the mask and only our sigwait() sees them.
  // SIGHUP asks to re-read cluster.json (`orrery up --simulated-nodes N` on a running cluster).
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (Status s = validateClusterName(options.name); !s) return fail(s);
  if (options.dataDir.empty() || options.dataDir.front() != '/') {
    return fail(Status::badRequest("serve needs an absolute --data-dir"));
  }
  ClusterLayout layout{options.dataDir};
  auto pidFile = PidFile::acquire(layout.pidFile());
  if (!pidFile.ok()) return fail(pidFile.status());

  log->info("starting control plane of cluster \"{}\" (pid {}, data {})", options.name, getpid(),
            layout.dir);
  // `up` made them; when serve runs on its own this creates what is missing.
  auto pki = ensurePki(layout.pkiDir());
  if (!pki.ok()) return fail(pki.status());
  PkiPaths paths{layout.pkiDir()};

  // The store: SQLite in the data directory, a local etcd we run, or an etcd of the user's.
  std::unique_ptr<store::EtcdProcess> etcd;
  std::string storeUrl = layout.storePath();
  if (options.store == "etcd") {
    store::EtcdProcessOptions etcdOptions;
    etcdOptions.dataDir = layout.dir + "/etcd";
    auto startedEtcd = store::EtcdProcess::start(etcdOptions);
    if (!startedEtcd.ok()) {
      return fail(Status(startedEtcd.status().code() ? startedEtcd.status().code() : 500, startedEtcd.status().reason(),
                         "cannot start the local etcd: " + startedEtcd.status().message()));
    }
    etcd = std::move(*startedEtcd);
    storeUrl = etcd->storeUrl();
    log->info("local etcd serving on {}", storeUrl);
  } else if (!options.store.empty() && options.store != "sqlite") {
    storeUrl = options.store;
  }
  auto opened = store::openStore(storeUrl);
  if (!opened.ok()) {
    if (storeUrl != layout.storePath()) {
      return fail(Status(opened.status().code() ? opened.status().code() : 503, opened.status().reason(),
                         "cannot open the store " + storeUrl + ": " + opened.status().message()));
    }
    return fail(Status::internal("cannot open the store " + layout.storePath() + ": " +
                                 opened.status().message() +
                                 " (if the file is damaged, move it aside and `orrery up` starts "
                                 "an empty cluster)"));
  }
  std::shared_ptr<store::Store> store(std::move(*opened));
  auto storeMs = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);

  apiserver::ApiServerOptions serverOptions;
  serverOptions.bindAddress = "127.0.0.1";
  serverOptions.port = options.apiPort;
  serverOptions.certFile = paths.apiserverCert();
  serverOptions.keyFile = paths.apiserverKey();
  serverOptions.clientCaFile = paths.caCert();
  serverOptions.serviceAccountKeyFile = paths.saKey();
  serverOptions.threads = options.apiThreads;
  serverOptions.clusterName = options.name;
  auto server = apiserver::startApiServer(serverOptions, store);
  if (!server.ok()) {
    if (options.apiPort && !portAvailable(options.apiPort)) {
      return fail(Status(409, api::reason::kConflict,
                                   "port " + std::to_string(options.apiPort) +
                                       " is in use by another process; choose another with "
                                       "--api-port"));
    }
    return fail(Status::internal("cannot start the API server: " + server.status().message()));
  }
  uint16_t port = (*server)->port();

  std::unique_ptr<ControlPlaneComponents> components;
  if (options.components) {
    ComponentsOptions componentOptions;
    componentOptions.simulatedNodes = options.simulatedNodes;
    componentOptions.nodeTemplateFile = options.nodeTemplateFile;
    componentOptions.schedulerConfigFile = options.schedulerConfigFile;
    if (auto ca = readFile(paths.caCert()); ca.ok()) componentOptions.caPem = *ca;
    auto startedComponents = ControlPlaneComponents::start(**server, componentOptions);
    if (!startedComponents.ok()) {
      (*server)->stop();
      return fail(startedComponents.status());
    }
    components = std::move(*startedComponents);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started);
  log->info("serving https://127.0.0.1:{} (ready in {} ms; store open after {} ms)", port,
            ms.count(), storeMs.count());
  writeReadyLine(readyFd, "ready " + std::to_string(port));
  readyFd = -1;

  // Resizes of the simulated nodes (SIGHUP) run on a thread of their own: removing nodes
  // deletes their pods one by one, and the signal loop must stay free for SIGTERM. Only the
  // newest count asked for is applied.
  std::mutex resizeMu;
  std::condition_variable resizeCv;
  std::optional<int> wantedNodes;
  bool resizerStopping = false;
  std::thread resizer;  // started by the first SIGHUP: most clusters are never resized
  auto resizeLoop = [&] {
    std::unique_lock lock(resizeMu);
    for (;;) {
      resizeCv.wait(lock, [&] { return resizerStopping || wantedNodes.has_value(); });
      if (resizerStopping) return;
      int count = *wantedNodes;
      wantedNodes.reset();
      lock.unlock();
      if (Status st = components->setSimulatedNodes(count); !st.isOk()) {
        log->warn("SIGHUP: cannot run {} simulated node(s): {}", count, st.message());
      } else {
        log->info("SIGHUP: {} simulated node(s) now", count);
      }
      lock.lock();
    }
  };

  // Wait for a stop signal; meanwhile return freed heap pages to the kernel now and then.
  int sig = 0;
  const timespec trimEvery{std::chrono::duration_cast<std::chrono::seconds>(kTrimInterval).count(), 0};
  while ((sig = sigtimedwait(&stopSignals, nullptr, &trimEvery)) <= 0 || sig == SIGHUP) {
    if (sig < 0 && errno == EAGAIN) releaseFreeMemory();
    if (sig == SIGHUP && components) {
      auto config = loadClusterConfig(layout);
      if (!config.ok() || !*config) {
        log->warn("SIGHUP: cannot read {}: {}", layout.clusterJson(),
                  config.ok() ? "no such file" : config.status().message());
        continue;
      }
      {
        std::lock_guard lock(resizeMu);
        wantedNodes = (**config).simulatedNodes;
      }
      if (!resizer.joinable()) resizer = std::thread(resizeLoop);
      resizeCv.notify_one();
    }
  }
  log->info("received {}, shutting down", strsignal(sig));
  {
    std::lock_guard lock(resizeMu);
    resizerStopping = true;
  }
  resizeCv.notify_one();
  // A resize under way ends early once the components stop; the thread is joined before
  // they are destroyed.
  if (components) components->stop();
  if (resizer.joinable()) resizer.join();
  components.reset();
  (*server)->stop();
  server.value().reset();  // drop the server before the store it reads
  if (store.use_count() > 1) {
    log->warn("the store is still referenced by {} owners at shutdown", store.use_count() - 1);
  }
  store.reset();  // closes the database: every write is on disk
  if (etcd) {
    if (Status st = etcd->stop(); !st.isOk()) log->warn("stopping the local etcd: {}", st.message());
  }
  pidFile->release();
  log->info("control plane stopped");
  return 0;
}

}  // namespace orrery::cluster
