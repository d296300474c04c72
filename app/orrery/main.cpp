// `orrery`: the terminal side of Orrery. Starts, stops and describes local clusters; the
// control plane itself runs as the hidden `orrery serve` command in a background process.

#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/cluster/daemon.h"
#include "engine/cluster/layout.h"
#include "engine/cluster/lifecycle.h"
#include "engine/cluster/serve.h"

#ifndef ORRERY_VERSION
#define ORRERY_VERSION "0.0.0"
#endif

namespace {

using namespace orrery::cluster;

int failWith(const orrery::api::Status& s) {
  std::cerr << "orrery: " << s.message() << "\n";
  return 1;
}

std::string flagsFor(const ClusterRef& ref, const std::string& name) {
  std::string out;
  if (name != kDefaultClusterName) out += " --name " + name;
  if (!ref.dataDir.empty()) out += " --data-dir " + ref.dataDir;
  return out;
}

int runUp(const ClusterRef& ref, uint16_t port, const std::string& kubeconfig, UpOptions options) {
  options.cluster = ref;
  options.apiPort = port;
  options.kubeconfig = kubeconfig;
  options.executable = selfExecutable();
  if (options.executable.empty()) {
    return failWith(orrery::api::Status::internal(
        "cannot find the orrery executable (/proc/self/exe); is /proc mounted?"));
  }
  auto result = up(options, std::cout);
  if (!result.ok()) return failWith(result.status());
  std::string kc = kubeconfig.empty() ? "" : " --kubeconfig " + result->kubeconfigPath;
  if (!result->alreadyRunning) {
    std::cout << "You can now use your cluster with:\n\n"
              << "kubectl cluster-info --context " << result->context << kc << "\n\n"
              << "Stop it with `orrery down" << flagsFor(ref, result->name) << "`.\n";
  }
  return 0;
}

int runDown(const ClusterRef& ref, const std::string& kubeconfig, bool purge) {
  DownOptions options;
  options.cluster = ref;
  options.kubeconfig = kubeconfig;
  options.purge = purge;
  auto result = down(options, std::cout);
  if (!result.ok()) return failWith(result.status());
  return 0;
}

int runStatus(const ClusterRef& ref) {
  auto st = clusterStatus(ref);
  if (!st.ok()) return failWith(st.status());
  if (!st->exists && !st->running) {
    return failWith(orrery::api::Status(
        404, "NotFound",
        "no cluster \"" + st->name + "\" in " + st->dataDir + "; create it with `orrery up" +
            flagsFor(ref, st->name) + "`"));
  }
  std::printf("Cluster:         %s\n", st->name.c_str());
  if (st->running) {
    std::printf("Status:          running (pid %d)\n", static_cast<int>(st->pid));
  } else {
    std::printf("Status:          stopped\n");
  }
  std::printf("API server:      %s%s\n", apiUrl(st->port).c_str(),
              st->running ? (st->ready ? " (ready)" : " (not answering /readyz)") : "");
  if (st->storeRevision) {
    std::printf("Store revision:  %lld\n", static_cast<long long>(*st->storeRevision));
  }
  std::printf("Store:           %s\n", st->store.c_str());
  if (st->simulatedNodes) std::printf("Simulated nodes: %d\n", st->simulatedNodes);
  std::printf("Context:         %s\n", st->context.c_str());
  std::printf("Data directory:  %s\n", st->dataDir.c_str());
  if (!st->created.empty()) std::printf("Created:         %s\n", st->created.c_str());
  // As `systemctl status`: 3 when it is not running, so scripts can test it.
  return st->running ? 0 : 3;
}

int runKubeconfig(const ClusterRef& ref) {
  auto text = clusterKubeconfig(ref);
  if (!text.ok()) return failWith(text.status());
  std::cout << *text;
  return 0;
}

int runList() {
  auto clusters = listClusters();
  if (!clusters.ok()) return failWith(clusters.status());
  if (clusters->empty()) {
    std::cout << "No clusters. Create one with `orrery up`.\n";
    return 0;
  }
  std::printf("%-20s %-10s %-8s %-28s %s\n", "NAME", "STATUS", "PID", "API SERVER", "DATA DIRECTORY");
  for (const auto& c : *clusters) {
    std::string pid = c.running ? std::to_string(c.pid) : "-";
    std::printf("%-20s %-10s %-8s %-28s %s\n", c.name.c_str(), c.running ? "running" : "stopped",
                pid.c_str(), apiUrl(c.port).c_str(), c.dataDir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Orrery: a local Kubernetes-compatible cluster you can see through.", "orrery"};
  app.set_version_flag("--version", ORRERY_VERSION);
  app.require_subcommand(1);

  ClusterRef ref;
  uint16_t apiPort = 0;
  std::string kubeconfig;
  bool purge = false;
  UpOptions upSettings;
  std::string storeFlag, nodeTemplateFlag, schedulerConfigFlag;
  int simulatedNodesFlag = 0;
  int readyFd = -1;
  int apiThreads = 2;

  auto addRef = [&](CLI::App* cmd) {
    cmd->add_option("--name", ref.name, "Cluster name (default \"orrery\")");
    cmd->add_option("--data-dir", ref.dataDir,
                    "Cluster data directory (default $XDG_DATA_HOME/orrery/NAME)");
  };

  auto* upCmd = app.add_subcommand(
      "up", "Start a local cluster in the background and make it kubectl's current context");
  addRef(upCmd);
  upCmd->add_option("--api-port", apiPort,
                    "API server port on 127.0.0.1 (default: the cluster's previous port, else a "
                    "free one)")
      ->check(CLI::Range(1, 65535));
  upCmd->add_option("--kubeconfig", kubeconfig,
                    "Kubeconfig file to merge the context into (default $KUBECONFIG or "
                    "~/.kube/config)");
  auto* storeOpt = upCmd->add_option(
      "--store", storeFlag,
      "Where objects live, chosen when the cluster is created: sqlite (default), etcd (a local "
      "etcd Orrery starts and stops), or etcd://HOST:PORT[,HOST:PORT...]");
  auto* nodesOpt = upCmd->add_option("--simulated-nodes", simulatedNodesFlag,
                                     "Simulated nodes (no containers) to run, kept for later `up`s")
                       ->check(CLI::Range(0, 100000));
  auto* templateOpt = upCmd->add_option("--node-template", nodeTemplateFlag,
                                        "Node manifest whose capacity, labels and taints the simulated nodes get");
  auto* schedulerOpt = upCmd->add_option("--scheduler-config", schedulerConfigFlag,
                                         "KubeSchedulerConfiguration file for the scheduler");

  auto* downCmd = app.add_subcommand(
      "down", "Stop a local cluster and remove its context from the kubeconfig");
  addRef(downCmd);
  downCmd->add_option("--kubeconfig", kubeconfig,
                      "Kubeconfig file to clean (default: the files `up` wrote, and $KUBECONFIG)");
  downCmd->add_flag("--purge", purge, "Also delete the cluster's data (every object, the certificates)");

  auto* statusCmd = app.add_subcommand("status", "Show whether a local cluster runs, and where");
  addRef(statusCmd);

  auto* kubeconfigCmd =
      app.add_subcommand("kubeconfig", "Print a kubeconfig for a local cluster alone");
  addRef(kubeconfigCmd);

  auto* listCmd = app.add_subcommand("list", "List the local clusters under the data directory");

  // The control-plane process itself; `up` starts it. Hidden from --help.
  auto* serveCmd = app.add_subcommand("serve", "Run the control plane in the foreground");
  serveCmd->group("");
  addRef(serveCmd);
  serveCmd->add_option("--api-port", apiPort, "API server port on 127.0.0.1");
  serveCmd->add_option("--ready-fd", readyFd, "Pipe to report readiness on")->group("");
  serveCmd->add_option("--api-threads", apiThreads, "API server threads")->group("");

  CLI11_PARSE(app, argc, argv);

  if (*upCmd) {
    if (*storeOpt) upSettings.store = storeFlag;
    if (*nodesOpt) upSettings.simulatedNodes = simulatedNodesFlag;
    if (*templateOpt) upSettings.nodeTemplateFile = nodeTemplateFlag;
    if (*schedulerOpt) upSettings.schedulerConfigFile = schedulerConfigFlag;
    return runUp(ref, apiPort, kubeconfig, upSettings);
  }
  if (*downCmd) return runDown(ref, kubeconfig, purge);
  if (*statusCmd) return runStatus(ref);
  if (*kubeconfigCmd) return runKubeconfig(ref);
  if (*listCmd) return runList();
  if (*serveCmd) {
    auto resolved = resolveCluster(ref);
    if (!resolved.ok()) {
      writeReadyLine(readyFd, "error: 400 " + resolved.status().message());
      return failWith(resolved.status());
    }
    ServeOptions options;
    options.name = resolved->name;
    options.dataDir = resolved->layout.dir;
    options.apiPort = apiPort;
    options.readyFd = readyFd;
    options.apiThreads = apiThreads;
    if (resolved->config) {
      options.store = resolved->config->store;
      options.simulatedNodes = resolved->config->simulatedNodes;
      options.nodeTemplateFile = resolved->config->nodeTemplateFile;
      options.schedulerConfigFile = resolved->config->schedulerConfigFile;
    }
    return runControlPlane(options);
  }
  return 0;
}
