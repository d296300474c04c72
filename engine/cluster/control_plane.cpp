#include "engine/cluster/control_plane.h"

#include <algorithm>
#include <atomic>
#include <mutex>

#include <spdlog/spdlog.h>

#include "engine/api/yaml.h"
#include "engine/client/informer.h"
#include "engine/cluster/attempts_provider.h"
#include "engine/cluster/in_process.h"
#include "engine/cluster/layout.h"
#include "engine/controllers/controller.h"
#include "engine/scheduler/scheduler.h"
#include "engine/simnodes/simulated_nodes.h"

namespace orrery::cluster {

using api::Status;

struct ControlPlaneComponents::Impl {
  std::shared_ptr<client::Client> controllerClient, schedulerClient, nodesClient;
  std::unique_ptr<client::InformerFactory> informers;
  std::unique_ptr<controllers::ControllerManager> controllers;
  std::unique_ptr<scheduler::Scheduler> scheduler;
  std::unique_ptr<simnodes::SimulatedNodes> nodes;
  nlohmann::json nodeTemplate;  // null: simnodes' default
  std::mutex nodesMu;           // resizes come from the serve loop, one at a time
  std::atomic<bool> stopped{false};

  // Starts the simulated kubelet with `count` nodes.
  Status startNodes(int count) {
    simnodes::SimulatedNodesOptions nodeOptions;
    nodeOptions.count = count;
    if (!nodeTemplate.is_null()) nodeOptions.nodeTemplate = nodeTemplate;
    auto started = simnodes::SimulatedNodes::start(nodesClient, std::move(nodeOptions));
    if (!started.ok()) return started.status();
    nodes = std::move(*started);
    return {};
  }

  void stop() {
    if (stopped.exchange(true)) return;
    // Nodes first (they write pod status the others react to), informers last.
    if (nodes) nodes->stop();
    if (scheduler) scheduler->stop();
    if (controllers) controllers->stop();
    if (informers) informers->stop();
  }
};

ControlPlaneComponents::ControlPlaneComponents(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlPlaneComponents::~ControlPlaneComponents() { stop(); }
void ControlPlaneComponents::stop() {
  if (impl_) impl_->stop();
}

api::Status ControlPlaneComponents::setSimulatedNodes(int count) {
  if (count < 0) return Status::badRequest("the number of simulated nodes must be 0 or more");
  std::lock_guard lock(impl_->nodesMu);
  if (impl_->stopped) return Status::serviceUnavailable("the control plane is stopping");
  if (!impl_->nodes) return count == 0 ? Status::ok() : impl_->startNodes(count);
  // Highest indexes go first, so the nodes left are orrery-sim-0 .. count-1 as after `up`.
  auto indexOf = [](const std::string& name) {
    auto digits = name.find_last_not_of("0123456789");
    return digits + 1 < name.size() ? std::stol(name.substr(digits + 1)) : -1L;
  };
  auto running = impl_->nodes->nodes();
  std::sort(running.begin(), running.end(),
            [&](const auto& a, const auto& b) { return indexOf(a.name) < indexOf(b.name); });
  const int have = static_cast<int>(running.size());
  if (count > have) {
    auto added = impl_->nodes->add(count - have);
    return added.ok() ? Status::ok() : added.status();
  }
  std::vector<std::string> going;
  for (int i = have - 1; i >= count; --i) going.push_back(running[i].name);
  if (Status st = impl_->nodes->remove(going); !st.isOk() && st.code() != 404) return st;
  return {};
}

api::Result<std::unique_ptr<ControlPlaneComponents>> ControlPlaneComponents::start(apiserver::ApiServer& server,
                                                                                  const ComponentsOptions& options) {
  auto impl = std::make_unique<Impl>();
  auto log = spdlog::default_logger();
  // Each component speaks as its own user, in system:masters (Orrery's bootstrap roles do not
  // yet carry kube's per-component ClusterRoles).
  auto clientFor = [&](const std::string& user, const std::string& agent) {
    return std::make_shared<client::Client>(inProcessTransport(server, user, {"system:masters", "system:authenticated"}),
                                            agent);
  };
  impl->controllerClient = clientFor("system:kube-controller-manager", "kube-controller-manager");
  impl->schedulerClient = clientFor("system:kube-scheduler", "default-scheduler");
  impl->informers = std::make_unique<client::InformerFactory>(impl->controllerClient);
  // As kube-controller-manager and kube-scheduler: no component reads managedFields.
  impl->informers->setTransform(client::stripManagedFields);

  if (options.controllers) {
    controllers::ControllerContext context;
    context.client = impl->controllerClient;
    context.informers = impl->informers.get();
    context.rootCaPem = options.caPem;
    impl->controllers = std::make_unique<controllers::ControllerManager>(context);
    for (auto& c : controllers::defaultControllers()) impl->controllers->add(std::move(c));
    if (Status st = impl->controllers->start(); !st.isOk()) {
      impl->stop();
      return Status(st.code(), st.reason(), "cannot start the controllers: " + st.message());
    }
    log->info("controllers started");
  }

  if (options.scheduler) {
    scheduler::SchedulerOptions schedulerOptions;
    if (!options.schedulerConfigFile.empty()) {
      auto text = readFile(options.schedulerConfigFile);
      if (!text.ok()) {
        impl->stop();
        return text.status();
      }
      auto config = scheduler::parseSchedulerConfig(*text);
      if (!config.ok()) {
        impl->stop();
        Status st = config.status();
        return Status(st.code() ? st.code() : 400, st.reason(), options.schedulerConfigFile + ": " + st.message());
      }
      schedulerOptions.config = std::move(*config);
    }
    schedulerOptions.client = impl->schedulerClient;
    schedulerOptions.informers = impl->informers.get();
    auto started = scheduler::Scheduler::start(std::move(schedulerOptions));
    if (!started.ok()) {
      impl->stop();
      return started.status();
    }
    impl->scheduler = std::move(*started);
    if (Status st = server.registerProvider(scheduler::schedulingAttemptResource(),
                                            std::make_shared<AttemptsProvider>(impl->scheduler->history()));
        !st.isOk()) {
      impl->stop();
      return st;
    }
    log->info("scheduler started");
  }

  // The simulated kubelet's client always exists (no threads), so nodes can be added later.
  impl->nodesClient = clientFor("system:node:orrery-simulated", "orrery-simulated-kubelet");
  if (!options.nodeTemplateFile.empty()) {
    auto text = readFile(options.nodeTemplateFile);
    if (!text.ok()) {
      impl->stop();
      return text.status();
    }
    auto manifest = api::yamlToJson(*text);
    if (!manifest.ok()) {
      impl->stop();
      return Status::badRequest(options.nodeTemplateFile + ": " + manifest.status().message());
    }
    impl->nodeTemplate = std::move(*manifest);
  }
  if (options.simulatedNodes > 0 || !options.nodeTemplateFile.empty()) {
    if (Status st = impl->startNodes(options.simulatedNodes); !st.isOk()) {
      impl->stop();
      return st;
    }
    log->info("{} simulated node(s) registered", options.simulatedNodes);
  }
  return std::unique_ptr<ControlPlaneComponents>(new ControlPlaneComponents(std::move(impl)));
}

}  // namespace orrery::cluster
