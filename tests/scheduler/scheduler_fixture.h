#pragma once
// A cluster for scheduler scenario tests: a LocalApiServer over a temp SQLite store, the
// Scheduler over an admin client on the in-process transport, nodes created through the API
// (no kubelet: their status, with Ready=True, is written by the test), and helpers to create
// pods and wait for what a user would watch for.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/apiserver/apiserver.h"
#include "engine/cluster/attempts_provider.h"
#include "engine/cluster/in_process.h"
#include "engine/scheduler/scheduler.h"

namespace orrery::scheduler::testing {

using nlohmann::json;

inline const api::GroupVersionResource kPodsGvr{"", "v1", "pods"};
inline const api::GroupVersionResource kNodesGvr{"", "v1", "nodes"};
inline const api::GroupVersionResource kEventsGvr{"", "v1", "events"};
inline const api::GroupVersionResource kPriorityClassesGvr{"scheduling.k8s.io", "v1", "priorityclasses"};
inline const api::GroupVersionResource kAttemptsGvr{"scheduling.orrery.dev", "v1alpha1", "schedulingattempts"};

struct NodeSpec {
  std::string name;
  std::string cpu = "4";
  std::string memory = "16Gi";
  std::string pods = "110";
  json labels = json::object();
  json taints = json::array();
};

class SchedulerCluster {
 public:
  ~SchedulerCluster() { stop(); }

  /// Starts the API server and (unless `withScheduler` is false) the scheduler.
  api::Status start(SchedulerConfig config = defaultSchedulerConfig(), bool withScheduler = true) {
    char tmpl[] = "/tmp/orrery-sched-XXXXXX";
    if (!mkdtemp(tmpl)) return api::Status::internal("mkdtemp failed");
    dir_ = tmpl;
    auto server = cluster::LocalApiServer::start({dir_, ""});
    if (!server.ok()) return server.status();
    api_ = std::move(server).value();
    client_ = api_->adminClient("scheduler-test");
    if (withScheduler) return startScheduler(std::move(config));
    return {};
  }

  api::Status startScheduler(SchedulerConfig config = defaultSchedulerConfig(), int32_t bindWorkers = 32) {
    SchedulerOptions options;
    options.config = std::move(config);
    options.client = api_->adminClient("orrery-scheduler");
    options.bindWorkers = bindWorkers;
    auto s = Scheduler::start(options);
    if (!s.ok()) return s.status();
    scheduler_ = std::move(s).value();
    return api_->server().registerProvider(schedulingAttemptResource(),
                                           std::make_shared<cluster::AttemptsProvider>(scheduler_->history()));
  }

  void stop() {
    if (scheduler_) scheduler_->stop();
    scheduler_.reset();
    client_.reset();
    api_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  client::Client& client() { return *client_; }
  std::shared_ptr<client::Client> clientPtr() { return client_; }
  Scheduler& scheduler() { return *scheduler_; }
  cluster::LocalApiServer& api() { return *api_; }

  /// Creates a Node and writes its status (capacity = allocatable, Ready=True).
  api::Status createNode(const NodeSpec& spec) {
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata", {{"name", spec.name}, {"labels", spec.labels}}},
                 {"spec", json::object()}};
    node["metadata"]["labels"]["kubernetes.io/hostname"] = spec.name;
    if (!spec.taints.empty()) node["spec"]["taints"] = spec.taints;
    auto created = client_->create(kNodesGvr, "", node);
    if (!created.ok()) return created.status();
    json resources = {{"cpu", spec.cpu}, {"memory", spec.memory}, {"pods", spec.pods}};
    json status = {{"status",
                    {{"capacity", resources},
                     {"allocatable", resources},
                     {"conditions", json::array({{{"type", "Ready"},
                                                  {"status", "True"},
                                                  {"reason", "KubeletReady"},
                                                  {"message", "kubelet is posting ready status"}}})}}}};
    auto patched = client_->patch(kNodesGvr, "", spec.name, client::PatchType::kMerge, status.dump(), "status");
    if (!patched.ok()) return patched.status();
    // The scheduler learns of nodes through its own watch: a pod created right after could be
    // scheduled before it knows this one. Scenarios mean "with these nodes", so wait for it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto known = scheduler_ ? scheduler_->cache().node(spec.name) : nullptr;
      if (!scheduler_ || (known && known->allocatable.allowedPodNumber > 0)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return api::Status::serviceUnavailable("the scheduler did not see node " + spec.name + " within 10 s");
  }

  /// A pause pod with one container requesting `cpu`/`memory` (empty: none).
  static json podManifest(const std::string& name, const std::string& cpu = "100m",
                          const std::string& memory = "64Mi") {
    json container = {{"name", "pause"}, {"image", "registry.k8s.io/pause:3.10"}};
    json requests = json::object();
    if (!cpu.empty()) requests["cpu"] = cpu;
    if (!memory.empty()) requests["memory"] = memory;
    if (!requests.empty()) container["resources"] = {{"requests", requests}};
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"namespace", "default"}}},
            {"spec", {{"containers", json::array({container})}}}};
  }

  api::Result<json> createPod(const json& pod, const std::string& ns = "default") {
    return client_->create(kPodsGvr, ns, pod);
  }

  api::Result<json> getPod(const std::string& name, const std::string& ns = "default") {
    return client_->get(kPodsGvr, ns, name);
  }

  /// Polls the pod until `done(pod)` or the timeout; returns the last version seen.
  json waitForPod(const std::string& name, const std::function<bool(const json&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20), const std::string& ns = "default") {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    for (;;) {
      auto pod = client_->get(kPodsGvr, ns, name);
      if (pod.ok()) {
        last = *pod;
        if (done(last)) return last;
      }
      if (std::chrono::steady_clock::now() > deadline) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  static std::string nodeName(const json& pod) {
    return pod.contains("spec") ? pod["spec"].value("nodeName", "") : "";
  }

  /// The PodScheduled condition (empty object if none).
  static json podScheduled(const json& pod) {
    if (!pod.contains("status")) return json::object();
    for (const auto& c : pod["status"].value("conditions", json::array())) {
      if (c.value("type", "") == "PodScheduled") return c;
    }
    return json::object();
  }

  /// Events about a pod, as `kubectl describe pod` lists them.
  std::vector<json> podEvents(const std::string& name, const std::string& ns = "default") {
    client::ListOptions options;
    options.fieldSelector = "involvedObject.name=" + name;
    auto list = client_->list(kEventsGvr, ns, options);
    std::vector<json> out;
    if (!list.ok()) return out;
    for (const auto& e : (*list)["items"]) out.push_back(e);
    return out;
  }

  /// Waits until an event with `reason` about the pod exists; returns it (or null).
  json waitForEvent(const std::string& pod, const std::string& reason,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (const auto& e : podEvents(pod)) {
        if (e.value("reason", "") == reason) return e;
      }
      if (std::chrono::steady_clock::now() > deadline) return nullptr;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  std::string dir_;
  std::unique_ptr<cluster::LocalApiServer> api_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace orrery::scheduler::testing
