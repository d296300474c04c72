// SchedulingBasic as kube-scheduler's scheduler_perf runs it, through Orrery's real API
// server (in-process transport, SQLite store): 5,000 nodes created through the API
// (scheduler_perf's node-default: 4 CPU, 32Gi, 110 pods), then initPods pods, then the
// measured pods (pod-default: a pause container requesting 100m CPU and 500Mi), and the
// throughput from the first measured pod's creation to the last persisted binding, as seen by
// a watch on spec.nodeName.
//
//   scheduler_bench [rounds] [nodes] [workload...]    workload: initPods:measurePods
//   default: 3 5000 1000:10000 5000:50000  (the 50,000-pod workload runs once)
//   TMPDIR: where the store lives (/dev/shm: no fsync, the scheduler's own limit shows);
//   SCHED_BENCH_BIND_WORKERS: SchedulerOptions::bindWorkers;
//   SCHED_BENCH_BATCHING=0: opportunistic batching off (kube's OpportunisticBatching gate);
//   SCHED_BENCH_CREATORS: threads creating pods (default 30, as scheduler_perf);
//   SCHED_BENCH_PERF_CTL=FIFO: writes "enable"/"disable" around the measured pods, for
//     `perf record -D -1 --control fifo:FIFO` (a profile of the measured window alone).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/cluster/in_process.h"
#include "engine/scheduler/scheduler.h"

using namespace orrery;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const api::GroupVersionResource kPods{"", "v1", "pods"};
// scheduler_perf's createPods creates with 30 workers (testutils.CreatePod's
// workqueue.ParallelizeUntil(ctx, 30, ...)); SCHED_BENCH_CREATORS changes it.
int creators() {
  const char* n = std::getenv("SCHED_BENCH_CREATORS");
  return n && std::atoi(n) > 0 ? std::atoi(n) : 30;
}
const api::GroupVersionResource kNodes{"", "v1", "nodes"};

// Runs fn(i) for i in [0, n) on `threads` threads.
template <typename Fn>
bool parallelFor(int n, int threads, Fn fn) {
  std::atomic<int> next{0};
  std::atomic<bool> ok{true};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n && ok; i = next++) {
        if (!fn(i)) ok = false;
      }
    });
  }
  for (auto& t : pool) t.join();
  return ok;
}

json nodeManifest(int i) {
  std::string name = "node-" + std::to_string(i);
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", json::object()}};
}

std::string nodeStatusPatch() {
  json resources = {{"cpu", "4"}, {"memory", "32Gi"}, {"pods", "110"}};
  return json{{"status",
               {{"capacity", resources},
                {"allocatable", resources},
                {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}})}}}}
      .dump();
}

// scheduler_perf's pod-default, copied for each pod with its name set (its createPods
// deep-copies one template per pod).
json podManifest(const std::string& name) {
  static const json kTemplate = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"namespace", "default"}}},
      {"spec",
       {{"containers",
         json::array({{{"name", "pause"},
                       {"image", "registry.k8s.io/pause:3.10"},
                       {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "500Mi"}}}}}}})}}}};
  json pod = kTemplate;
  pod["metadata"]["name"] = name;
  return pod;
}

// Counts pods whose spec.nodeName became set, by name prefix, from a watch.
class BindingCounter {
 public:
  BindingCounter(client::Client& c, const std::string& prefix) : prefix_(prefix) {
    auto list = c.list(kPods, "default", {.limit = 1});
    std::string rv = list.ok() ? (*list)["metadata"].value("resourceVersion", "") : "";
    client::ListOptions opts;
    opts.resourceVersion = rv;
    // Shared objects without managedFields, as the scheduler's pod informer, which
    // scheduler_perf's own count reads.
    auto w = c.watchShared(
        kPods, "default", opts,
        [this](client::SharedWatchEvent&& e) {
          if (e.type != "MODIFIED" && e.type != "ADDED") return;
          const json& o = *e.object;
          auto meta = o.find("metadata");
          auto spec = o.find("spec");
          if (meta == o.end() || !meta->is_object() || spec == o.end() || !spec->is_object()) return;
          std::string name = meta->value("name", "");
          if (name.rfind(prefix_, 0) != 0) return;
          if (!spec->value("nodeName", "").empty()) {
            bool reached = false;
            {
              std::lock_guard lock(mu_);
              if (seen_.insert(name).second) {
                last_ = Clock::now();
                reached = seen_.size() == awaited_;
              }
            }
            // Only the binding that completes the count wakes the waiter: waking it for each
            // one cost the measured process a context switch per pod (scheduler_perf's
            // collector reads its count once a second).
            if (reached) cv_.notify_all();
          }
        },
        [](const api::Status&) {}, client::SharedObjectForm::kWithoutManagedFields);
    if (w.ok()) stream_ = std::move(w).value();
  }
  ~BindingCounter() {
    if (stream_) stream_->cancel();
  }
  bool ok() const { return stream_ != nullptr; }
  /// Waits until `n` pods are bound; returns the time of the last binding seen.
  std::optional<Clock::time_point> waitFor(size_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    awaited_ = n;
    if (!cv_.wait_for(lock, timeout, [&] { return seen_.size() >= n; })) return std::nullopt;
    return last_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

 private:
  std::string prefix_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> seen_;
  size_t awaited_ = 0;  // the count waitFor() waits for
  Clock::time_point last_;
  std::unique_ptr<client::Stream> stream_;
};

// CPU time of the whole process (every thread: API server, store, scheduler, the bench's
// creators and watch), which a noisy host disturbs far less than wall time.
double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The whole process's resource usage so far (every thread: API server, store, scheduler, the
// bench's creators and watch). Of it the bench reports, per pod:
// - context switches (voluntary and not): each is a thread that slept until another woke it,
//   or was preempted; a few microseconds of CPU apiece;
// - minor page faults: each is a page the heap touched for the first time (or again after
//   handing it back), a microsecond or two in the kernel.
rusage processUsage() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage;
}
long contextSwitches(const rusage& usage) { return usage.ru_nvcsw + usage.ru_nivcsw; }

// Tells a waiting `perf record --control fifo:...` to start or stop sampling.
void perfControl(const char* command) {
  const char* fifo = std::getenv("SCHED_BENCH_PERF_CTL");
  if (!fifo || !*fifo) return;
  if (FILE* f = std::fopen(fifo, "w")) {
    std::fprintf(f, "%s\n", command);
    std::fclose(f);
  }
}

struct RoundResult {
  double cpuMicrosPerPod = 0;
  double switchesPerPod = 0;
  double faultsPerPod = 0;
  double kernelMicrosPerPod = 0;  // of cpuMicrosPerPod, in the kernel (system time)
  double podsPerSecond = 0;
  double createPerSecond = 0;
  double seconds = 0;
  bool ok = false;
};

RoundResult runRound(int nodes, int initPods, int measurePods) {
  RoundResult result;
  // $TMPDIR decides where the store lives: on a disk every write waits for a WAL fsync (the
  // API server's create path then bounds the figure); on tmpfs (/dev/shm) the scheduler does.
  const char* tmpBase = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpBase && *tmpBase ? tmpBase : "/tmp") + "/orrery-sched-bench-XXXXXX";
  if (!mkdtemp(tmpl.data())) return result;
  std::string dir = tmpl;
  // Removed however the round ends, after the server below has stopped (declared first,
  // destroyed last).
  struct RemoveDir {
    std::string path;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } removeDir{dir};
  {
    auto server = cluster::LocalApiServer::start({dir, ""});
    if (!server.ok()) {
      std::fprintf(stderr, "api server: %s\n", server.status().message().c_str());
      return result;
    }
    auto client = (*server)->adminClient("scheduler-bench");

    auto t0 = Clock::now();
    std::string statusPatch = nodeStatusPatch();
    bool nodesOk = parallelFor(nodes, 8, [&](int i) {
      json n = nodeManifest(i);
      if (!client->create(kNodes, "", n).ok()) return false;
      return client->patch(kNodes, "", n["metadata"]["name"], client::PatchType::kMerge, statusPatch, "status").ok();
    });
    if (!nodesOk) {
      std::fprintf(stderr, "creating nodes failed\n");
      return result;
    }
    std::printf("  %d nodes created in %.2f s\n", nodes, std::chrono::duration<double>(Clock::now() - t0).count());

    scheduler::SchedulerOptions options;
    options.client = (*server)->adminClient("orrery-scheduler");
    if (const char* w = std::getenv("SCHED_BENCH_BIND_WORKERS")) options.bindWorkers = std::max(1, std::atoi(w));
    if (const char* b = std::getenv("SCHED_BENCH_BATCHING")) options.config.opportunisticBatching = std::atoi(b) != 0;
    auto sched = scheduler::Scheduler::start(options);
    if (!sched.ok()) {
      std::fprintf(stderr, "scheduler: %s\n", sched.status().message().c_str());
      return result;
    }

    // initPods: scheduled, not measured.
    {
      BindingCounter init(*client, "init-");
      parallelFor(initPods, creators(), [&](int i) { return client->create(kPods, "default", podManifest("init-" + std::to_string(i))).ok(); });
      if (!init.waitFor(initPods, std::chrono::seconds(600))) {
        std::fprintf(stderr, "init pods not all bound (%zu/%d)\n", init.count(), initPods);
        return result;
      }
    }

    BindingCounter measured(*client, "measured-");
    if (!measured.ok()) return result;
    perfControl("enable");
    auto start = Clock::now();
    double cpuStart = processCpuSeconds();
    const rusage usageStart = processUsage();
    bool created = parallelFor(measurePods, creators(), [&](int i) {
      return client->create(kPods, "default", podManifest("measured-" + std::to_string(i))).ok();
    });
    auto createdAt = Clock::now();
    if (!created) {
      std::fprintf(stderr, "creating pods failed\n");
      return result;
    }
    auto last = measured.waitFor(measurePods, std::chrono::seconds(900));
    if (!last) {
      std::fprintf(stderr, "measured pods not all bound (%zu/%d)\n", measured.count(), measurePods);
      return result;
    }
    result.cpuMicrosPerPod = (processCpuSeconds() - cpuStart) * 1e6 / measurePods;
    const rusage usageEnd = processUsage();
    result.switchesPerPod = static_cast<double>(contextSwitches(usageEnd) - contextSwitches(usageStart)) / measurePods;
    result.faultsPerPod = static_cast<double>(usageEnd.ru_minflt - usageStart.ru_minflt) / measurePods;
    auto micros = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
    result.kernelMicrosPerPod = (micros(usageEnd.ru_stime) - micros(usageStart.ru_stime)) / measurePods;
    perfControl("disable");
    result.seconds = std::chrono::duration<double>(*last - start).count();
    result.podsPerSecond = measurePods / result.seconds;
    result.createPerSecond = measurePods / std::chrono::duration<double>(createdAt - start).count();
    // A bind worker counts its binding once the API call returns, which can be just after
    // the watch saw it persisted.
    auto stats = (*sched)->stats();
    for (int i = 0; i < 100 && stats.bound < static_cast<uint64_t>(initPods + measurePods); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      stats = (*sched)->stats();
    }
    double cycleUs = stats.attempts ? stats.cycleTime.count() / 1e3 / stats.attempts : 0;
    double cpuUs = stats.attempts ? stats.cycleCpuTime.count() / 1e3 / stats.attempts : 0;
    std::printf("  attempts %llu (%llu from a batch's ranking), bound %llu, bind failures %llu; scheduling cycle %.0f us "
                "on average, %.0f us of it on a CPU (the loop alone, given a core: %.0f pods/s)\n",
                (unsigned long long)stats.attempts, (unsigned long long)stats.batched, (unsigned long long)stats.bound,
                (unsigned long long)stats.bindFailures, cycleUs, cpuUs, cpuUs > 0 ? 1e6 / cpuUs : 0.0);
    // What the decision history keeps within its budget (kubectl get schedulingattempts).
    auto history = (*sched)->history();
    std::printf("  decision history: %zu attempts kept in %.1f MiB (%.1f KiB each)\n", history->size(),
                history->bytes() / 1048576.0, history->size() ? history->bytes() / 1024.0 / history->size() : 0.0);
    (*sched)->stop();
    result.ok = true;
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  int nodes = argc > 2 ? std::atoi(argv[2]) : 5000;
  std::vector<std::pair<int, int>> workloads;
  for (int i = 3; i < argc; ++i) {
    int a = 0, b = 0;
    if (std::sscanf(argv[i], "%d:%d", &a, &b) == 2) workloads.emplace_back(a, b);
  }
  if (workloads.empty()) workloads = {{1000, 10000}, {5000, 50000}};

  int failures = 0;
  for (auto [initPods, measurePods] : workloads) {
    // The 50,000-pod workload takes minutes: once.
    int n = measurePods > 20000 ? 1 : rounds;
    std::vector<double> rates, cpus;
    for (int r = 0; r < n; ++r) {
      std::printf("SchedulingBasic/%dNodes_%dPods round %d\n", nodes, measurePods, r + 1);
      RoundResult res = runRound(nodes, initPods, measurePods);
      if (!res.ok) {
        ++failures;
        continue;
      }
      std::printf("  %d pods bound in %.2f s: %.0f pods/s (creation alone: %.0f pods/s); %.0f us of CPU per pod "
                  "(%.0f us in the kernel), %.1f context switches per pod, %.1f page faults per pod\n",
                  measurePods, res.seconds, res.podsPerSecond, res.createPerSecond, res.cpuMicrosPerPod,
                  res.kernelMicrosPerPod, res.switchesPerPod, res.faultsPerPod);
      std::fflush(stdout);
      rates.push_back(res.podsPerSecond);
      cpus.push_back(res.cpuMicrosPerPod);
    }
    if (!rates.empty()) {
      std::sort(rates.begin(), rates.end());
      std::sort(cpus.begin(), cpus.end());
      std::printf("SchedulingBasic/%dNodes_%dPods: median %.0f pods/s, %.0f us of CPU per pod, over %zu round(s)\n",
                  nodes, measurePods, rates[rates.size() / 2], cpus[cpus.size() / 2], rates.size());
    }
  }
  return failures ? 1 : 0;
}
