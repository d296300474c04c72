// Workload benchmarks of issue 4, against the real product: `orrery up --simulated-nodes N`
// in a temporary folder, driven over HTTPS with the admin certificate (engine/client).
//
//   - Deployment of 1,000 replicas on 100 simulated nodes: from the create (what
//     `kubectl apply` sends) until a watch has seen all 1,000 pods Running. Aim ≤ 2 s.
//   - Control-plane RSS with 1,000 simulated nodes and then 10,000 pods Running (a Deployment
//     of 10,000 replicas). Aim ≤ 300 MB. Also the RSS per simulated node (1,000 nodes vs none),
//     and then how long `orrery up --simulated-nodes 0` takes to remove those nodes and pods.
//
//   workload_bench [rounds] [--no-memory]    (default 3; medians are printed; --no-memory
//   skips the 10,000-pod memory run, for profiling the Deployment alone)
// Needs ORRERY_BINARY_DIR (set by CTest) or ORRERY_BINARY pointing at the orrery executable.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/client/client.h"

namespace fs = std::filesystem;
using nlohmann::json;
using orrery::client::Client;
using Clock = std::chrono::steady_clock;

namespace {

const orrery::api::GroupVersionResource kPods{"", "v1", "pods"};
const orrery::api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};

std::string orreryBinary() {
  if (const char* b = std::getenv("ORRERY_BINARY")) return b;
  if (const char* d = std::getenv("ORRERY_BINARY_DIR")) return std::string(d) + "/app/orrery/orrery";
  return "build/app/orrery/orrery";
}

class Cluster;

/// Clusters alive now, so that an interrupted bench (Ctrl-C, CTest's timeout) still stops
/// them: a watchdog thread reads a self-pipe the signal handler writes to.
std::mutex gClustersMu;
std::set<Cluster*> gClusters;
int gSignalPipe[2] = {-1, -1};
extern "C" void onStopSignal(int sig) {
  char c = static_cast<char>(sig);
  [[maybe_unused]] auto n = write(gSignalPipe[1], &c, 1);
}

/// A cluster of our own in a temporary folder, removed (`down --purge`) on destruction.
class Cluster {
 public:
  explicit Cluster(int simulatedNodes) {
    static int instance = 0;
    std::string id = std::to_string(getpid()) + "-" + std::to_string(instance++);
    dir_ = fs::temp_directory_path() / ("orrery-workload-bench-" + id);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    name_ = "wlbench-" + id;
    {
      std::lock_guard lock(gClustersMu);
      gClusters.insert(this);
    }
    std::string cmd = command("up") + " --simulated-nodes " + std::to_string(simulatedNodes) + " > '" +
                      (dir_ / "up.log").string() + "' 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
    if (!ok_) {
      // The folder goes with the cluster: show what `up` said before it does.
      std::ifstream log(dir_ / "up.log");
      std::stringstream text;
      text << log.rdbuf();
      std::fprintf(stderr, "workload_bench: `orrery up` failed:\n%s\n", text.str().c_str());
    }
  }
  ~Cluster() {
    {
      std::lock_guard lock(gClustersMu);
      gClusters.erase(this);
    }
    stop();
  }
  void stop() {
    std::string cmd = command("down") + " --purge > /dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 && pid() > 0) kill(pid(), SIGKILL);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  /// `orrery up --simulated-nodes n` on the running cluster (adds or removes nodes in place);
  /// the seconds it took, or -1 if it failed.
  double resize(int n) const {
    auto start = Clock::now();
    std::string cmd = command("up") + " --simulated-nodes " + std::to_string(n) + " > /dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return -1;
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::string kubeconfig() const { return (dir_ / "kubeconfig").string(); }
  pid_t pid() const {
    std::ifstream in(dir_ / "data" / "control-plane.pid");
    long p = 0;
    in >> p;
    return static_cast<pid_t>(p);
  }
  /// VmRSS of the control plane (or another /proc/PID/status line: RssAnon, RssFile), in MiB.
  double rssMiB(const std::string& field = "VmRSS") const {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0) return std::atof(line.c_str() + field.size() + 1) / 1024.0;
    }
    return 0;
  }

 private:
  std::string command(const std::string& verb) const {
    return "'" + orreryBinary() + "' " + verb + " --name " + name_ + " --data-dir '" + (dir_ / "data").string() +
           "' --kubeconfig '" + kubeconfig() + "'";
  }
  fs::path dir_;
  std::string name_;
  bool ok_ = false;
};

/// Counts the pods of a namespace a watch has seen Running.
class RunningPods {
 public:
  bool start(Client& client, const std::string& ns) {
    auto list = client.list(kPods, ns);
    if (!list.ok()) return false;
    orrery::client::ListOptions options;
    options.resourceVersion = (*list)["metadata"].value("resourceVersion", "");
    auto stream = client.watch(
        kPods, ns, options,
        [this](orrery::client::WatchEvent&& event) {
          if (event.type != "ADDED" && event.type != "MODIFIED") return;
          if (event.object.value("status", json::object()).value("phase", "") != "Running") return;
          std::lock_guard lock(mu_);
          running_.insert(event.object["metadata"].value("name", ""));
          cv_.notify_all();
        },
        [](const orrery::api::Status&) {});
    if (!stream.ok()) return false;
    stream_ = std::move(*stream);
    return true;
  }
  bool waitFor(size_t count, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return running_.size() >= count; });
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return running_.size();
  }
  void stop() {
    if (stream_) stream_->cancel();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> running_;
  std::unique_ptr<orrery::client::Stream> stream_;
};

json deployment(const std::string& name, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec",
               {{"containers",
                 {{{"name", "app"}, {"image", "nginx"},
                   {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}}}}}}}}}};
}

std::shared_ptr<Client> connect(const Cluster& cluster) {
  auto config = orrery::client::loadKubeconfig(cluster.kubeconfig());
  if (!config.ok()) {
    std::fprintf(stderr, "kubeconfig: %s\n", config.status().message().c_str());
    return nullptr;
  }
  auto transport = orrery::client::httpsTransport(*config);
  if (!transport.ok()) return nullptr;
  return std::make_shared<Client>(*transport, "workload-bench");
}

/// Seconds from creating a Deployment of `replicas` until all its pods are Running.
double deploymentToRunning(Cluster& cluster, int replicas, double* rssAfter) {
  auto client = connect(cluster);
  if (!client) return -1;
  RunningPods running;
  if (!running.start(*client, "default")) return -1;
  auto t0 = Clock::now();
  auto created = client->create(kDeployments, "default", deployment("web", replicas));
  if (!created.ok()) {
    std::fprintf(stderr, "create: %s\n", created.status().message().c_str());
    return -1;
  }
  bool done = running.waitFor(static_cast<size_t>(replicas), std::chrono::seconds(600));
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  running.stop();
  if (!done) {
    std::fprintf(stderr, "only %zu of %d pods Running after 600 s\n", running.count(), replicas);
    return -1;
  }
  if (rssAfter) *rssAfter = cluster.rssMiB();
  return seconds;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  // Rounds of the 1,000-replica Deployment; 0 measures only memory.
  int rounds = argc > 1 ? std::max(0, std::atoi(argv[1])) : 3;
  const bool memory = !(argc > 2 && std::string(argv[2]) == "--no-memory");
  if (pipe(gSignalPipe) == 0) {
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    std::thread([] {
      char c;
      if (read(gSignalPipe[0], &c, 1) != 1) return;
      std::lock_guard lock(gClustersMu);
      for (Cluster* cluster : gClusters) cluster->stop();
      _exit(1);
    }).detach();
  }
  bool failed = false;

  std::vector<double> times;
  for (int r = 0; r < rounds; ++r) {
    Cluster cluster(100);
    if (!cluster.ok()) return 1;
    double s = deploymentToRunning(cluster, 1000, nullptr);
    if (s < 0) {
      failed = true;
      break;
    }
    std::printf("Deployment 1000 replicas on 100 simulated nodes: round %d: %.2f s to all Running\n", r + 1, s);
    std::fflush(stdout);
    times.push_back(s);
  }
  if (!times.empty()) {
    std::printf("Deployment 1000 replicas on 100 simulated nodes: median %.2f s over %zu round(s) (aim <= 2 s)\n",
                median(times), times.size());
  }

  if (memory) {
    Cluster empty(0);
    if (!empty.ok()) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double base = empty.rssMiB();
    Cluster big(1000);
    if (!big.ok()) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    double withNodes = big.rssMiB();
    std::printf("control-plane RSS: %.1f MiB with no nodes, %.1f MiB with 1000 simulated nodes (%.1f KiB per node)\n",
                base, withNodes, (withNodes - base) * 1024.0 / 1000.0);
    double after = 0;
    double s = deploymentToRunning(big, 10000, &after);
    if (s < 0) {
      failed = true;
    } else {
      std::printf("control-plane RSS with 1000 simulated nodes and 10000 pods Running: %.1f MiB (aim <= 300 MB); "
                  "10000 pods Running %.1f s after the create\n",
                  after, s);
      // The idle control plane returns freed heap every 10 s; what stays is what it holds.
      std::this_thread::sleep_for(std::chrono::seconds(12));
      std::printf("  12 s later: VmRSS %.1f MiB (anonymous %.1f, file-backed %.1f: the program and its libraries), peak %.1f MiB\n",
                  big.rssMiB(), big.rssMiB("RssAnon"), big.rssMiB("RssFile"), big.rssMiB("VmHWM"));
      // Taking the nodes away again: 1,000 Nodes and Leases and their 10,000 pods deleted
      // (their Deployment's replacements then wait, Pending, for nodes).
      double shrink = big.resize(0);
      if (shrink < 0) failed = true;
      else std::printf("shrinking 1000 -> 0 simulated nodes with 10000 pods on them: %.2f s\n", shrink);
    }
  }
  return failed ? 1 : 0;
}
