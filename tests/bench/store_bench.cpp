// Store benchmark: durable creates/s from 64 concurrent writers (group commit, WAL fsync per
// batch), commit latency percentiles, GET of one key from 64 threads, and a range of 10,000
// pod-sized objects. Bounded to a few seconds; prints plain lines for docs/performance.md.
//
//   store_bench [seconds-per-phase]   (default 3)

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/store.h"

using namespace orrery::store;
using Clock = std::chrono::steady_clock;

namespace {

std::string podJson(int i) {
  // About 900 bytes, like a small Deployment-made pod.
  std::string name = "web-7d4b9c8f6d-" + std::to_string(i);
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","namespace":"default","uid":"6b1f7c3e-2a4d-4f8e-9c1b-)" + std::to_string(100000000 + i) +
         R"(","labels":{"app":"web","pod-template-hash":"7d4b9c8f6d"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c8f6d","uid":"0c2d5a8e-1b3f-4e6a-8d7c-9f0e1a2b3c4d","controller":true,"blockOwnerDeletion":true}]},)"
         R"("spec":{"containers":[{"name":"web","image":"registry.local/web:1.4.2","ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","schedulerName":"default-scheduler","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},)"
         R"("status":{"phase":"Pending","qosClass":"Burstable"}})";
}

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of the store's writer thread (named "store-writer"), from /proc.
double writerCpuSeconds() {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::FILE* f = std::fopen((task.path() / "comm").c_str(), "r");
    if (!f) continue;
    char comm[64] = {};
    bool isWriter = std::fgets(comm, sizeof comm, f) && std::string(comm).rfind("store-writer", 0) == 0;
    std::fclose(f);
    if (!isWriter) continue;
    f = std::fopen((task.path() / "stat").c_str(), "r");
    if (!f) return 0;
    char buf[1024] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string stat(buf, n);
    // Fields after the ")" of comm: state is field 3; utime, stime are fields 14 and 15.
    auto rest = stat.substr(stat.rfind(')') + 2);
    unsigned long long utime = 0, stime = 0;
    std::sscanf(rest.c_str(), "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime);
    if (std::getenv("STORE_BENCH_VERBOSE")) std::fprintf(stderr, "writer utime %llu stime %llu ticks\n", utime, stime);
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  char tmpl[] = "/tmp/orrery-store-bench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  int rc = 0;
  {
    SqliteOptions options;
    options.path = dir + "/orrery.db";
    auto opened = openSqliteStore(options);
    if (!opened.ok()) {
      std::fprintf(stderr, "open: %s\n", opened.status().message().c_str());
      std::filesystem::remove_all(dir);
      return 1;
    }
    Store& store = **opened;

    // ---- Durable creates from 64 writers.
    constexpr int kWriters = 64;
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::vector<std::vector<double>> latencies(kWriters);
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    const double cpuStart = cpuSeconds();
    const double writerStart = writerCpuSeconds();
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          int id = t * 1000000 + i;
          auto t0 = Clock::now();
          auto r = store.create("/registry/pods/default/web-" + std::to_string(id), podJson(id));
          auto t1 = Clock::now();
          if (!r.ok()) ++failures;
          latencies[t].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        }
      });
    }
    // One reader alongside the writers: reads are served by WAL readers, not the writer queue.
    std::vector<double> readsDuringWrites;
    std::thread reader([&] {
      while (!stop) {
        auto t0 = Clock::now();
        (void)store.get("/registry/pods/default/web-0");
        readsDuringWrites.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    reader.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = cpuSeconds() - cpuStart;
    const double writerCpu = writerCpuSeconds() - writerStart;
    std::vector<double> all;
    for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
    const double creates = static_cast<double>(all.size());
    std::printf("store_bench: sqlite, %d writer threads, %.1f s, %u cores\n", kWriters, elapsed,
                std::thread::hardware_concurrency());
    std::printf("durable creates/s: %.0f  (target >= 5000)%s\n", creates / elapsed,
                creates / elapsed >= 5000 ? "" : "  BELOW TARGET");
    std::printf("commit latency ms: p50 %.2f  p99 %.2f  max %.2f  (failures %d)\n",
                percentile(all, 0.50), percentile(all, 0.99), percentile(all, 1.0),
                failures.load());
    std::printf("get while writing ms: p50 %.3f  p99 %.3f  (%zu reads)\n",
                percentile(readsDuringWrites, 0.5), percentile(readsDuringWrites, 0.99),
                readsDuringWrites.size());
    // On a shared machine wall-clock rates depend on the neighbours; CPU per create does not.
    std::printf("cpu per create: %.0f us (process user+sys; 2 idle cores => ~%.0f creates/s)\n",
                cpu / creates * 1e6, 2.0 * creates / cpu);
    std::printf("writer thread cpu per create: %.0f us (its ceiling: ~%.0f creates/s)\n",
                writerCpu / creates * 1e6, writerCpu > 0 ? creates / writerCpu : 0.0);
    if (failures) rc = 1;

    // ---- GET of one key from 64 threads (reader pool, no writer involved).
    stop = false;
    std::vector<std::vector<double>> getLat(kWriters);
    threads.clear();
    const auto gstart = Clock::now();
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        while (!stop) {
          auto t0 = Clock::now();
          auto r = store.get("/registry/pods/default/web-0");
          auto t1 = Clock::now();
          if (!r.ok() || !r->has_value()) ++failures;
          getLat[t].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(seconds, 1.0)));
    stop = true;
    for (auto& th : threads) th.join();
    const double gelapsed = std::chrono::duration<double>(Clock::now() - gstart).count();
    std::vector<double> gets;
    for (auto& v : getLat) gets.insert(gets.end(), v.begin(), v.end());
    std::printf("store get/s (64 threads): %.0f  p50 %.3f ms  p99 %.3f ms\n",
                static_cast<double>(gets.size()) / gelapsed, percentile(gets, 0.5),
                percentile(gets, 0.99));

    // ---- Range of 10,000 pods (what the apiserver's watch cache reads at start-up).
    RangeRequest count;
    count.key = "/registry/pods/";
    count.prefix = true;
    count.countOnly = true;
    auto have = store.range(count);
    int64_t n = have.ok() ? have->count : 0;
    for (int i = 0; n < 10000; ++i, ++n) {
      (void)store.create("/registry/pods/fill/p" + std::to_string(i), podJson(i));
    }
    RangeRequest page;
    page.key = "/registry/pods/";
    page.prefix = true;
    page.limit = 10000;
    double best = 1e9, total = 0;
    size_t got = 0;
    for (int i = 0; i < 5; ++i) {
      auto t0 = Clock::now();
      auto r = store.range(page);
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!r.ok()) {
        ++failures;
        continue;
      }
      got = r->kvs.size();
      best = std::min(best, ms);
      total += ms;
    }
    std::printf("range of %zu pods: best %.1f ms, mean %.1f ms\n", got, best, total / 5);

    // ---- 10,000 pods in pages of 500 at a past revision, as a LIST's `continue` reads them
    // once the pods changed since its first page (each pod updated once since).
    auto writeAll = [&](int version) {
      threads.clear();
      for (int t = 0; t < kWriters; ++t) {
        threads.emplace_back([&, t] {
          for (int i = t; i < 10000; i += kWriters) {
            TxnRequest write;
            write.success.push_back(Operation::put("/registry/pods/paged/p" + std::to_string(i), podJson(i + version)));
            if (!store.txn(write).ok()) ++failures;
          }
        });
      }
      for (auto& th : threads) th.join();
    };
    writeAll(0);
    auto atSnapshot = store.range(count);
    const int64_t snapshot = atSnapshot.ok() ? atSnapshot->revision : 0;
    writeAll(1);
    RangeRequest past;
    past.key = "/registry/pods/paged/";
    past.prefix = true;
    past.limit = 500;
    past.revision = snapshot;
    std::vector<double> pageMs;
    size_t pastItems = 0;
    auto pagesStart = Clock::now();
    for (;;) {
      auto t0 = Clock::now();
      auto r = store.range(past);
      pageMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r.ok()) {
        ++failures;
        break;
      }
      pastItems += r->kvs.size();
      if (!r->more || r->kvs.empty()) break;
      past.key = r->kvs.back().key + std::string(1, '\0');
      past.prefix = false;
      past.rangeEnd = "/registry/pods/paged0";  // '/' + 1: the end of the prefix
    }
    std::printf("range of %zu pods at a past revision in pages of 500: %.1f ms in all, page p50 %.1f ms, max %.1f ms\n",
                pastItems, std::chrono::duration<double, std::milli>(Clock::now() - pagesStart).count(),
                percentile(pageMs, 0.5), percentile(pageMs, 1.0));
    if (pastItems != 10000) {
      std::printf("expected 10000 pods at revision %lld, read %zu\n", static_cast<long long>(snapshot), pastItems);
      rc = 1;
    }
    // ---- Compaction of all that history while 8 writers keep updating: how long do they stall?
    auto before = store.stats();
    stop = false;
    std::vector<std::vector<double>> during(8);
    threads.clear();
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string key = "/registry/pods/fill/p" + std::to_string(t * 100 + i % 100);
          TxnRequest req;
          req.success.push_back(Operation::put(key, podJson(i)));
          auto t0 = Clock::now();
          if (!store.txn(req).ok()) ++failures;
          during[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto c0 = Clock::now();
    auto compacted = before.ok() ? store.compact(before->revision) : before.status();
    const double compactMs = std::chrono::duration<double, std::milli>(Clock::now() - c0).count();
    stop = true;
    for (auto& th : threads) th.join();
    std::vector<double> lat;
    for (auto& v : during) lat.insert(lat.end(), v.begin(), v.end());
    std::printf("compaction of %lld revisions: %.0f ms (%s); concurrent writes p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                before.ok() ? static_cast<long long>(before->revision) : 0LL, compactMs,
                compacted.isOk() ? "ok" : compacted.message().c_str(), percentile(lat, 0.5),
                percentile(lat, 0.99), percentile(lat, 1.0));

    auto stats = store.stats();
    if (stats.ok()) {
      std::printf("revision %lld, keys %lld, db %.1f MiB\n", static_cast<long long>(stats->revision),
                  static_cast<long long>(stats->keys),
                  static_cast<double>(stats->dbSizeBytes) / (1024.0 * 1024.0));
    }
    if (failures) rc = 1;
  }
  std::filesystem::remove_all(dir);
  return rc;
}
