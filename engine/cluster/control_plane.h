#pragma once
// The control plane's own API clients, run inside the `orrery serve` process next to the API
// server: the controllers, the scheduler and the simulated nodes. Each talks to the API server
// over the in-process transport under its own user name (as kube-controller-manager and
// kube-scheduler do with their certificates), and they share one set of informers. The
// scheduler's decision history is served by the API server as SchedulingAttempts.

#include <memory>
#include <string>

#include "engine/api/status.h"
#include "engine/apiserver/apiserver.h"

namespace orrery::cluster {

struct ComponentsOptions {
  bool controllers = true;
  bool scheduler = true;
  /// KubeSchedulerConfiguration file; empty: kube-scheduler's defaults.
  std::string schedulerConfigFile;
  /// Simulated nodes registered at start (more can be added through the API: a Node labelled
  /// orrery.dev/simulated=true is taken over by the simulated kubelet).
  int simulatedNodes = 0;
  /// A Node manifest (YAML or JSON) used as the simulated nodes' template; empty: default.
  std::string nodeTemplateFile;
  /// Cluster CA (PEM), published in every namespace's kube-root-ca.crt ConfigMap.
  std::string caPem;
};

class ControlPlaneComponents {
 public:
  /// Starts controllers, scheduler and simulated nodes against `server`, which must outlive
  /// them. Fails with the component's Status (a bad scheduler configuration is a 400 naming
  /// the file and field).
  static api::Result<std::unique_ptr<ControlPlaneComponents>> start(apiserver::ApiServer& server,
                                                                   const ComponentsOptions& options);
  ~ControlPlaneComponents();
  /// Stops every component (simulated nodes, scheduler, controllers, informers). Idempotent.
  void stop();
  /// Adds or removes simulated nodes until `count` run (`orrery up --simulated-nodes N` on a
  /// running cluster). Removal takes the highest indexes first and, as the pod GC controller
  /// does for a deleted node, deletes the pods bound to them; their controllers replace them.
  api::Status setSimulatedNodes(int count);

  struct Impl;

 private:
  explicit ControlPlaneComponents(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::cluster
