// SQLite and etcd side by side, one run, the same store-level workload on each:
//   - durable creates/s from 32 concurrent writers (pod-sized values), with latency;
//   - compare-and-swap updates/s from 32 writers, each updating its own key with the
//     modRevision it last saw (what the apiserver's optimistic concurrency does);
//   - watch latency: a write's start until a prefix watch delivers its event (p50, p99).
// etcd is a local single member started here on loopback (its data in the same temp
// directory as the SQLite file, so both fsync to the same disk).
//
//   etcd_store_bench [seconds-per-phase]   (default 3)

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/etcd_process.h"
#include "engine/store/store.h"

using namespace orrery::store;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWriters = 32;

std::string podJson(int i) {
  std::string name = "web-7d4b9c8f6d-" + std::to_string(i);
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","namespace":"default","uid":"6b1f7c3e-2a4d-4f8e-9c1b-)" + std::to_string(100000000 + i) +
         R"(","labels":{"app":"web","pod-template-hash":"7d4b9c8f6d"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c8f6d","uid":"0c2d5a8e-1b3f-4e6a-8d7c-9f0e1a2b3c4d","controller":true,"blockOwnerDeletion":true}]},)"
         R"("spec":{"containers":[{"name":"web","image":"registry.local/web:1.4.2","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","schedulerName":"default-scheduler","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},)"
         R"("status":{"phase":"Pending","qosClass":"Burstable"}})";
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double processCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds used so far by another process (etcd), from /proc/<pid>/stat.
double pidCpuSeconds(pid_t pid) {
  if (pid <= 0) return 0;
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return 0;
  char buf[1024] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string stat(buf, n);
  auto rest = stat.substr(stat.rfind(')') + 2);
  unsigned long long utime = 0, stime = 0;
  std::sscanf(rest.c_str(), "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Figures {
  double createsPerSecond = 0, createP50 = 0, createP99 = 0;
  double clientCpuPerCreateUs = 0, serverCpuPerCreateUs = 0;
  double casPerSecond = 0, casP50 = 0, casP99 = 0;
  double watchP50 = 0, watchP99 = 0;
  int failures = 0;
};

Figures run(Store& store, const std::string& name, double seconds, pid_t server = 0) {
  Figures f;
  std::atomic<int> failures{0};

  // ---- Durable creates.
  {
    std::atomic<bool> stop{false};
    std::vector<std::vector<double>> lat(kWriters);
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    const double cpu0 = processCpuSeconds(), server0 = pidCpuSeconds(server);
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          int id = t * 1000000 + i;
          auto t0 = Clock::now();
          auto r = store.create("/registry/pods/default/web-" + std::to_string(id), podJson(id));
          lat[t].push_back(ms(Clock::now() - t0));
          if (!r.ok()) ++failures;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    f.createsPerSecond = static_cast<double>(all.size()) / elapsed;
    const double n = std::max<double>(1, static_cast<double>(all.size()));
    f.clientCpuPerCreateUs = (processCpuSeconds() - cpu0) / n * 1e6;
    f.serverCpuPerCreateUs = (pidCpuSeconds(server) - server0) / n * 1e6;
    f.createP50 = percentile(all, 0.5);
    f.createP99 = percentile(all, 0.99);
  }

  // ---- Compare-and-swap updates, one key per writer.
  {
    std::atomic<bool> stop{false};
    std::vector<std::vector<double>> lat(kWriters);
    std::vector<std::thread> threads;
    std::vector<int64_t> revs(kWriters, 0);
    for (int t = 0; t < kWriters; ++t) {
      auto r = store.create("/registry/pods/cas/p" + std::to_string(t), podJson(t));
      if (r.ok()) revs[t] = *r;
      else ++failures;
    }
    const auto start = Clock::now();
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        const std::string key = "/registry/pods/cas/p" + std::to_string(t);
        for (int i = 0; !stop; ++i) {
          auto t0 = Clock::now();
          auto r = store.compareAndSwap(key, revs[t], podJson(i));
          lat[t].push_back(ms(Clock::now() - t0));
          if (!r.ok() || !r->succeeded) {
            ++failures;
            if (r.ok() && r->current) revs[t] = r->current->modRevision;
            continue;
          }
          revs[t] = r->revision;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    f.casPerSecond = static_cast<double>(all.size()) / elapsed;
    f.casP50 = percentile(all, 0.5);
    f.casP99 = percentile(all, 0.99);
  }

  // ---- Watch latency: one write at a time, start of the write to the event's delivery.
  {
    std::mutex mu;
    std::condition_variable cv;
    int delivered = 0;
    Clock::time_point lastDelivery;
    WatchRequest w;
    w.key = "/registry/watched/";
    w.prevKv = true;
    auto handle = store.watch(w, [&](const WatchResponse& r) {
      auto now = Clock::now();
      std::lock_guard lock(mu);
      delivered += static_cast<int>(r.events.size());
      lastDelivery = now;
      cv.notify_all();
    });
    if (!handle.ok()) {
      std::fprintf(stderr, "%s: watch: %s\n", name.c_str(), handle.status().message().c_str());
      ++failures;
    } else {
      std::vector<double> lat;
      const int writes = std::max(50, static_cast<int>(seconds * 100));
      for (int i = 0; i < writes; ++i) {
        auto t0 = Clock::now();
        auto r = store.create("/registry/watched/p" + std::to_string(i), podJson(i));
        if (!r.ok()) {
          ++failures;
          continue;
        }
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return delivered > i; })) {
          ++failures;
          break;
        }
        lat.push_back(ms(lastDelivery - t0));
      }
      f.watchP50 = percentile(lat, 0.5);
      f.watchP99 = percentile(lat, 0.99);
    }
  }
  f.failures = failures.load();
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  char tmpl[] = "/tmp/orrery-etcd-bench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  int rc = 0;
  Figures sqlite, etcd;
  {
    SqliteOptions options;
    options.path = dir + "/orrery.db";
    auto opened = openSqliteStore(options);
    if (!opened.ok()) {
      std::fprintf(stderr, "sqlite: %s\n", opened.status().message().c_str());
      rc = 1;
    } else {
      sqlite = run(**opened, "sqlite", seconds);
    }
  }
  {
    EtcdProcessOptions options;
    options.dataDir = dir + "/etcd";
    auto process = EtcdProcess::start(options);
    if (!process.ok()) {
      std::fprintf(stderr, "etcd: %s\n", process.status().message().c_str());
      rc = 1;
    } else {
      auto opened = openStore((*process)->storeUrl());
      if (!opened.ok()) {
        std::fprintf(stderr, "etcd: %s\n", opened.status().message().c_str());
        rc = 1;
      } else {
        etcd = run(**opened, "etcd", seconds, (*process)->memberPid(0));
      }
    }
  }
  std::filesystem::remove_all(dir);

  std::printf("etcd_store_bench: %d writers, %.1f s per phase, %u cores\n", kWriters, seconds,
              std::thread::hardware_concurrency());
  std::printf("%-34s %12s %12s %8s\n", "", "sqlite", "etcd 3.4", "ratio");
  auto row = [](const char* what, double a, double b, bool higherIsBetter) {
    double ratio = higherIsBetter ? (b > 0 ? a / b : 0) : (a > 0 ? b / a : 0);
    std::printf("%-34s %12.2f %12.2f %7.2fx\n", what, a, b, ratio);
  };
  row("durable creates/s", sqlite.createsPerSecond, etcd.createsPerSecond, true);
  row("  create latency p50 ms", sqlite.createP50, etcd.createP50, false);
  row("  create latency p99 ms", sqlite.createP99, etcd.createP99, false);
  row("  cpu per create, this process us", sqlite.clientCpuPerCreateUs, etcd.clientCpuPerCreateUs, false);
  row("  cpu per create, etcd process us", 0, etcd.serverCpuPerCreateUs, false);
  row("CAS updates/s", sqlite.casPerSecond, etcd.casPerSecond, true);
  row("  CAS latency p50 ms", sqlite.casP50, etcd.casP50, false);
  row("  CAS latency p99 ms", sqlite.casP99, etcd.casP99, false);
  row("watch latency p50 ms", sqlite.watchP50, etcd.watchP50, false);
  row("watch latency p99 ms", sqlite.watchP99, etcd.watchP99, false);
  std::printf("(ratio: how many times better SQLite is; failures sqlite %d, etcd %d)\n",
              sqlite.failures, etcd.failures);
  if (sqlite.failures || etcd.failures) rc = 1;
  return rc;
}
