// Simulated nodes and the node lifecycle controller against a real in-process API server on a
// temp SQLite store: nodes register Ready with Leases, bound pods turn Running with an address
// from the node's pod CIDR and are removed when deleted, annotated pods finish as Jobs expect,
// a node whose heartbeat stops goes Unknown, is tainted unreachable and its pods are evicted,
// and what 1,000 simulated nodes cost in memory.

#include <QtTest>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>
#include <malloc.h>
#include <unistd.h>

#include "engine/cluster/in_process.h"
#include "engine/controllers/controller.h"
#include "engine/controllers/node_lifecycle.h"
#include "engine/simnodes/simulated_nodes.h"

using namespace orrery;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases"};
const api::GroupVersionResource kEvents{"", "v1", "events"};

// Polls `check` until it holds or `timeout` passes.
template <typename F>
bool eventually(F check, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (check()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(25ms);
  }
}

json condition(const json& object, const std::string& type) {
  for (const auto& c : object.value("status", json::object()).value("conditions", json::array()))
    if (c.value("type", "") == type) return c;
  return json::object();
}

bool hasTaint(const json& node, const std::string& key, const std::string& effect) {
  for (const auto& t : node.value("spec", json::object()).value("taints", json::array()))
    if (t.value("key", "") == key && t.value("effect", "") == effect) return true;
  return false;
}

json pod(const std::string& name, const std::string& node, json extraSpec = json::object(),
         json annotations = json::object()) {
  json p = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"namespace", "default"}, {"annotations", annotations}}},
            {"spec", {{"nodeName", node}, {"containers", json::array({{{"name", "app"}, {"image", "nginx"}}})}}}};
  p["spec"].update(extraSpec);
  return p;
}

// The HTTP code of an answer (200 when it succeeded).
template <typename R>
int codeOf(const R& result) {
  return result.ok() ? 200 : result.status().code();
}

// Heap bytes in use (malloc's own count: unaffected by memory freed earlier and reused).
size_t heapBytes() { return mallinfo2().uordblks; }

size_t rssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// A Transport that accepts every write and serves empty lists and silent watches: the
// simulated nodes' own memory, without an API server's.
class NullTransport : public client::Transport {
 public:
  api::Result<client::Response> roundTrip(const client::Request& request) override {
    client::Response r;
    r.contentType = "application/json";
    if (request.method == "GET") {
      r.code = 200;
      r.body = R"({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]})";
      return r;
    }
    json body = request.body.empty() ? json::object() : json::parse(request.body, nullptr, false);
    if (!body.is_object()) body = json::object();
    body["metadata"]["uid"] = "00000000-0000-0000-0000-" + std::to_string(1000000000000 + counter_++);
    body["metadata"]["resourceVersion"] = "2";
    r.code = request.method == "POST" ? 201 : 200;
    r.body = body.dump();
    return r;
  }
  class Silent : public client::Stream {
   public:
    void cancel() override {}
  };
  api::Result<std::unique_ptr<client::Stream>> stream(const client::Request&, client::LineHandler,
                                                      client::EndHandler) override {
    return std::unique_ptr<client::Stream>(new Silent());
  }

 private:
  std::atomic<int64_t> counter_{0};
};

}  // namespace

class SimNodesTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    auto local = cluster::LocalApiServer::start({dir_->path().toStdString(), ""});
    QVERIFY2(local.ok(), local.ok() ? "" : local.status().message().c_str());
    local_ = std::move(*local);
    client_ = local_->adminClient("simnodes-test");
  }

  void cleanup() {
    if (manager_) manager_->stop();
    manager_.reset();
    if (sim_) sim_->stop();
    sim_.reset();
    client_.reset();
    local_.reset();
    dir_.reset();
  }

  void nodesRegisterReadyWithLeases() {
    simnodes::SimulatedNodesOptions options;
    options.count = 3;
    options.leaseRenewInterval = 300ms;
    startSim(options);

    auto list = client_->list(kNodes, "");
    QVERIFY(list.ok());
    QCOMPARE((*list)["items"].size(), size_t(3));
    for (int i = 0; i < 3; ++i) {
      std::string name = "orrery-sim-" + std::to_string(i);
      json node;
      QVERIFY2(eventually([&] {
                 auto n = client_->get(kNodes, "", name);
                 if (!n.ok()) return false;
                 node = *n;
                 return condition(node, "Ready").value("status", "") == "True";
               }),
               name.c_str());
      const json& meta = node["metadata"];
      QCOMPARE(meta["labels"].value("kubernetes.io/hostname", ""), name);
      QCOMPARE(meta["labels"].value("kubernetes.io/os", ""), std::string("linux"));
      QCOMPARE(meta["labels"].value("node.kubernetes.io/instance-type", ""), std::string("orrery-simulated"));
      QCOMPARE(meta["labels"].value(simnodes::kSimulatedLabel, ""), std::string("true"));
      QCOMPARE(node["spec"].value("podCIDR", ""), "10.244." + std::to_string(i) + ".0/24");
      QCOMPARE(node["status"]["capacity"].value("cpu", ""), std::string("32"));
      QCOMPARE(node["status"]["allocatable"].value("pods", ""), std::string("110"));
      QCOMPARE(condition(node, "Ready").value("reason", ""), std::string("KubeletReady"));
      QCOMPARE(condition(node, "MemoryPressure").value("status", ""), std::string("False"));
      QCOMPARE(node["status"]["nodeInfo"].value("operatingSystem", ""), std::string("linux"));
      QCOMPARE(node["status"]["addresses"][0].value("type", ""), std::string("InternalIP"));

      json lease;
      QVERIFY(eventually([&] {
        auto l = client_->get(kLeases, "kube-node-lease", name);
        if (!l.ok()) return false;
        lease = *l;
        return true;
      }));
      QCOMPARE(lease["spec"].value("holderIdentity", ""), name);
      QCOMPARE(lease["spec"].value("leaseDurationSeconds", 0), 40);
      QCOMPARE(lease["metadata"]["ownerReferences"][0].value("uid", ""), meta.value("uid", ""));
      // The lease is renewed: renewTime moves on.
      std::string first = lease["spec"].value("renewTime", "");
      QVERIFY(!first.empty());
      QVERIFY(eventually([&] {
        auto l = client_->get(kLeases, "kube-node-lease", name);
        return l.ok() && (*l)["spec"].value("renewTime", "") != first;
      }, 3s));
    }

    // add() and remove() while running.
    auto added = sim_->add(2);
    QVERIFY(added.ok());
    QCOMPARE(added->size(), size_t(2));
    QCOMPARE((*added)[0], std::string("orrery-sim-3"));
    QVERIFY(client_->get(kNodes, "", "orrery-sim-4").ok());
    QVERIFY(sim_->remove("orrery-sim-1").isOk());
    QCOMPARE(codeOf(client_->get(kNodes, "", "orrery-sim-1")), 404);
    QCOMPARE(codeOf(client_->get(kLeases, "kube-node-lease", "orrery-sim-1")), 404);
    QCOMPARE(sim_->remove("orrery-sim-1").code(), 404);
    QCOMPARE(sim_->nodes().size(), size_t(4));
    // The freed index is reused.
    auto again = sim_->add(1);
    QVERIFY(again.ok());
    QCOMPARE((*again)[0], std::string("orrery-sim-1"));
  }

  void boundPodRunsAndIsRemovedWhenDeleted() {
    simnodes::SimulatedNodesOptions options;
    options.count = 2;
    options.runningDelay = 50ms;
    startSim(options);

    auto created = client_->create(kPods, "default", pod("web", "orrery-sim-1"));
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    json p;
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "web");
      if (!got.ok()) return false;
      p = *got;
      return p["status"].value("phase", "") == "Running";
    }));
    const json& st = p["status"];
    QVERIFY2(st.value("podIP", "").rfind("10.244.1.", 0) == 0, st.value("podIP", "").c_str());
    QVERIFY(!st.value("hostIP", "").empty());
    QCOMPARE(st["podIPs"][0].value("ip", ""), st.value("podIP", ""));
    QVERIFY(!st.value("startTime", "").empty());
    QCOMPARE(condition(p, "Ready").value("status", ""), std::string("True"));
    QCOMPARE(condition(p, "ContainersReady").value("status", ""), std::string("True"));
    QCOMPARE(condition(p, "Initialized").value("status", ""), std::string("True"));
    QCOMPARE(condition(p, "PodScheduled").value("status", ""), std::string("True"));
    const json& cs = st["containerStatuses"][0];
    QCOMPARE(cs.value("name", ""), std::string("app"));
    QCOMPARE(cs.value("ready", false), true);
    QCOMPARE(cs.value("started", false), true);
    QCOMPARE(cs.value("image", ""), std::string("docker.io/library/nginx:latest"));
    QVERIFY(cs.value("containerID", "").rfind("orrery-sim://", 0) == 0);
    QVERIFY(cs["state"]["running"].contains("startedAt"));
    // The node's hostIP is its InternalIP.
    auto node = client_->get(kNodes, "", "orrery-sim-1");
    QVERIFY(node.ok());
    QCOMPARE(st.value("hostIP", ""), (*node)["status"]["addresses"][0].value("address", ""));

    // A second pod gets another address.
    QVERIFY(client_->create(kPods, "default", pod("web2", "orrery-sim-1")).ok());
    std::string ip2;
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "web2");
      if (!got.ok()) return false;
      ip2 = (*got)["status"].value("podIP", "");
      return !ip2.empty();
    }));
    QVERIFY(ip2 != st.value("podIP", ""));

    // kubectl delete pod: graceful (30 s default) on the server; the simulated kubelet stops
    // the containers and removes the pod.
    auto deleted = client_->remove(kPods, "default", "web");
    QVERIFY(deleted.ok());
    QVERIFY((*deleted)["metadata"].contains("deletionTimestamp"));
    QVERIFY(eventually([&] { return codeOf(client_->get(kPods, "default", "web")) == 404; }, 5s));
    // A pod bound to some other node is not ours.
    QVERIFY(client_->create(kPods, "default", pod("elsewhere", "real-node-1")).ok());
    QTest::qWait(300);
    auto other = client_->get(kPods, "default", "elsewhere");
    QVERIFY(other.ok());
    QCOMPARE((*other)["status"].value("phase", ""), std::string("Pending"));
  }

  // A deleted pod that a finalizer holds (a Job's) is reported Failed, its container killed
  // (exit code 137), before the kubelet confirms the deletion, as a real kubelet does: the
  // finalizer's holder sees a terminal phase, and the object goes once it lets go.
  void deletedPodWithFinalizerTurnsFailed() {
    simnodes::SimulatedNodesOptions options;
    options.count = 1;
    options.runningDelay = 20ms;
    startSim(options);
    json held = pod("held", "orrery-sim-0", json{{"restartPolicy", "Never"}});
    held["metadata"]["finalizers"] = {"example.com/hold"};
    QVERIFY(client_->create(kPods, "default", held).ok());
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "held");
      return got.ok() && (*got)["status"].value("phase", "") == "Running";
    }));
    QVERIFY(client_->remove(kPods, "default", "held").ok());
    json p;
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "held");
      if (!got.ok()) return false;
      p = *got;
      return p["status"].value("phase", "") == "Failed";
    }, 5s));
    const json& term = p["status"]["containerStatuses"][0]["state"]["terminated"];
    QCOMPARE(term.value("exitCode", -1), 137);
    QCOMPARE(term.value("reason", ""), std::string("Error"));
    QCOMPARE(condition(p, "Ready").value("status", ""), std::string("False"));
    // Released: gone.
    QVERIFY(client_->patch(kPods, "default", "held", client::PatchType::kMerge, R"({"metadata":{"finalizers":null}})").ok());
    QVERIFY(eventually([&] { return codeOf(client_->get(kPods, "default", "held")) == 404; }, 5s));
  }

  // Many nodes removed at once (`orrery up --simulated-nodes N` shrinking): every Node, Lease
  // and pod on them goes; a name that is not a simulated node is a 404 after the rest went;
  // the nodes left keep their pods.
  void manyNodesRemovedAtOnce() {
    simnodes::SimulatedNodesOptions options;
    options.count = 12;
    options.runningDelay = 20ms;
    startSim(options);
    for (int i = 0; i < 12; ++i)
      QVERIFY(client_->create(kPods, "default", pod("p" + std::to_string(i), "orrery-sim-" + std::to_string(i))).ok());
    // A pod a finalizer holds (a Job's would) on a node that goes.
    json held = pod("held", "orrery-sim-5");
    held["metadata"]["finalizers"] = {"example.com/hold"};
    QVERIFY(client_->create(kPods, "default", held).ok());
    QVERIFY(eventually([&] {
      auto list = client_->list(kPods, "default");
      if (!list.ok()) return false;
      int running = 0;
      for (const auto& p : (*list)["items"]) running += p["status"].value("phase", "") == "Running";
      return running == 13;
    }));
    std::vector<std::string> going;
    for (int i = 2; i < 12; ++i) going.push_back("orrery-sim-" + std::to_string(i));
    going.push_back("no-such-node");
    QCOMPARE(sim_->remove(going).code(), 404);
    QCOMPARE(sim_->nodes().size(), size_t(2));
    for (int i = 0; i < 12; ++i) {
      const std::string node = "orrery-sim-" + std::to_string(i), podName = "p" + std::to_string(i);
      const int expected = i < 2 ? 200 : 404;
      QCOMPARE(codeOf(client_->get(kNodes, "", node)), expected);
      QCOMPARE(codeOf(client_->get(kLeases, "kube-node-lease", node)), expected);
      QCOMPARE(codeOf(client_->get(kPods, "default", podName)), expected);
    }
    // As the pod GC controller leaves it: Failed, DisruptionTarget, being deleted.
    auto kept = client_->get(kPods, "default", "held");
    QVERIFY(kept.ok());
    QCOMPARE((*kept)["status"].value("phase", ""), std::string("Failed"));
    QCOMPARE(condition(*kept, "DisruptionTarget").value("reason", ""), std::string("DeletionByPodGC"));
    QVERIFY((*kept)["metadata"].contains("deletionTimestamp"));
    QVERIFY(client_->patch(kPods, "default", "held", client::PatchType::kMerge, R"({"metadata":{"finalizers":null}})").ok());
  }

  void annotatedPodsFinishRespectingRestartPolicy() {
    simnodes::SimulatedNodesOptions options;
    options.count = 1;
    options.runningDelay = 20ms;
    startSim(options);
    json never = {{"restartPolicy", "Never"}};
    QVERIFY(client_->create(kPods, "default",
                            pod("ok", "orrery-sim-0", never,
                                {{simnodes::kExitCodeAnnotation, "0"}, {simnodes::kRunSecondsAnnotation, "1"}}))
                .ok());
    QVERIFY(client_->create(kPods, "default",
                            pod("bad", "orrery-sim-0", never,
                                {{simnodes::kExitCodeAnnotation, "3"}, {simnodes::kRunSecondsAnnotation, "1"}}))
                .ok());
    QVERIFY(client_->create(kPods, "default",
                            pod("again", "orrery-sim-0", json{{"restartPolicy", "OnFailure"}},
                                {{simnodes::kExitCodeAnnotation, "1"}, {simnodes::kRunSecondsAnnotation, "1"}}))
                .ok());
    auto phaseOf = [&](const char* name) {
      auto got = client_->get(kPods, "default", name);
      return got.ok() ? (*got)["status"].value("phase", "") : std::string();
    };
    QVERIFY(eventually([&] { return phaseOf("ok") == "Succeeded"; }, 6s));
    QVERIFY(eventually([&] { return phaseOf("bad") == "Failed"; }, 6s));
    auto bad = client_->get(kPods, "default", "bad");
    const json& term = (*bad)["status"]["containerStatuses"][0]["state"]["terminated"];
    QCOMPARE(term.value("exitCode", -1), 3);
    QCOMPARE(term.value("reason", ""), std::string("Error"));
    QCOMPARE(condition(*bad, "Ready").value("status", ""), std::string("False"));
    QCOMPARE(condition(*bad, "Ready").value("reason", ""), std::string("PodCompleted"));
    auto ok = client_->get(kPods, "default", "ok");
    QCOMPARE((*ok)["status"]["containerStatuses"][0]["state"]["terminated"].value("reason", ""),
             std::string("Completed"));
    // OnFailure with a failing exit: restarted, still Running.
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "again");
      return got.ok() && (*got)["status"]["containerStatuses"][0].value("restartCount", 0) >= 1;
    }, 6s));
    QCOMPARE(phaseOf("again"), std::string("Running"));
  }

  // An init container with restartPolicy Always is a sidecar: reported running and ready beside
  // the containers, where a plain init container has completed, and stopped when they finish.
  void sidecarsRunBesideTheContainers() {
    simnodes::SimulatedNodesOptions options;
    options.count = 1;
    options.runningDelay = 20ms;
    startSim(options);
    json spec = {{"restartPolicy", "Never"},
                 {"initContainers",
                  json::array({{{"name", "setup"}, {"image", "busybox"}},
                               {{"name", "proxy"}, {"image", "envoy"}, {"restartPolicy", "Always"}}})}};
    QVERIFY(client_->create(kPods, "default",
                            pod("meshed", "orrery-sim-0", spec,
                                {{simnodes::kExitCodeAnnotation, "0"}, {simnodes::kRunSecondsAnnotation, "2"}}))
                .ok());
    json p;
    auto phaseIs = [&](const char* phase) {
      auto got = client_->get(kPods, "default", "meshed");
      if (!got.ok()) return false;
      p = *got;
      return p["status"].value("phase", "") == phase;
    };
    QVERIFY(eventually([&] { return phaseIs("Running"); }));
    json inits = p["status"]["initContainerStatuses"];
    QCOMPARE(inits.size(), size_t(2));
    QCOMPARE(inits[0].value("name", ""), std::string("setup"));
    QCOMPARE(inits[0]["state"]["terminated"].value("reason", ""), std::string("Completed"));
    QCOMPARE(inits[1].value("name", ""), std::string("proxy"));
    QVERIFY2(inits[1]["state"].contains("running"), inits[1].dump().c_str());
    QCOMPARE(inits[1].value("ready", false), true);
    QCOMPARE(inits[1].value("started", false), true);
    QCOMPARE(condition(p, "Ready").value("status", ""), std::string("True"));

    QVERIFY(eventually([&] { return phaseIs("Succeeded"); }, 6s));
    inits = p["status"]["initContainerStatuses"];
    QCOMPARE(inits[1]["state"]["terminated"].value("exitCode", -1), 0);
    QCOMPARE(inits[1].value("ready", true), false);
    QCOMPARE(p["status"]["containerStatuses"][0]["state"]["terminated"].value("reason", ""), std::string("Completed"));
  }

  // A container that exits at once: its Running and its Failed statuses are written back to
  // back. They must land in that order; a Running that landed after the Failed took the pod
  // back from Failed for good (a Job then saw it active again and deleted it, or never failed).
  void statusWritesOfAPodLandInOrder() {
    simnodes::SimulatedNodesOptions options;
    options.count = 10;
    options.runningDelay = 0ms;
    startSim(options);
    constexpr int kPodsToRun = 300;
    json never = {{"restartPolicy", "Never"}};
    for (int i = 0; i < kPodsToRun; ++i) {
      QVERIFY(client_->create(kPods, "default",
                              pod("quick-" + std::to_string(i), "orrery-sim-" + std::to_string(i % 10), never,
                                  {{simnodes::kExitCodeAnnotation, "3"}, {simnodes::kRunSecondsAnnotation, "0"}}))
                  .ok());
    }
    client::ListOptions failed;
    failed.fieldSelector = "status.phase=Failed";
    auto failedCount = [&] {
      auto l = client_->list(kPods, "default", failed);
      return l.ok() ? (*l)["items"].size() : size_t{0};
    };
    QVERIFY2(eventually([&] { return failedCount() == kPodsToRun; }, 20s), std::to_string(failedCount()).c_str());
    QTest::qWait(300);  // a late Running would land by now
    QCOMPARE(failedCount(), size_t{kPodsToRun});
  }

  void deadNodeGoesUnknownTaintedAndEvicts() {
    simnodes::SimulatedNodesOptions options;
    options.count = 3;
    options.runningDelay = 20ms;
    options.leaseRenewInterval = 200ms;
    startSim(options);

    controllers::NodeLifecycleOptions lifecycle;
    lifecycle.nodeMonitorPeriod = 200ms;
    lifecycle.nodeMonitorGracePeriod = 1500ms;
    lifecycle.evictionPeriod = 50ms;
    controllers::ControllerContext context;
    context.client = local_->adminClient("node-controller-test");
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    manager_->add(controllers::newNodeLifecycleController(lifecycle));
    auto started = manager_->start(10s);
    QVERIFY2(started.isOk(), started.message().c_str());

    // One pod tolerates unreachable for 1 s; one tolerates it forever; one on a healthy node.
    json briefly = {{"tolerations", json::array({{{"key", "node.kubernetes.io/unreachable"},
                                                  {"operator", "Exists"},
                                                  {"effect", "NoExecute"},
                                                  {"tolerationSeconds", 1}}})}};
    json always = {{"tolerations", json::array({{{"key", "node.kubernetes.io/unreachable"},
                                                  {"operator", "Exists"},
                                                  {"effect", "NoExecute"}}})}};
    QVERIFY(client_->create(kPods, "default", pod("victim", "orrery-sim-2", briefly)).ok());
    QVERIFY(client_->create(kPods, "default", pod("stayer", "orrery-sim-2", always)).ok());
    QVERIFY(client_->create(kPods, "default", pod("bystander", "orrery-sim-0")).ok());
    auto running = [&](const char* name) {
      auto got = client_->get(kPods, "default", name);
      return got.ok() && (*got)["status"].value("phase", "") == "Running" &&
             condition(*got, "Ready").value("status", "") == "True";
    };
    QVERIFY(eventually([&] { return running("victim") && running("stayer") && running("bystander"); }));
    // Healthy nodes stay untainted through a few monitor passes.
    QTest::qWait(600);
    auto healthy = client_->get(kNodes, "", "orrery-sim-2");
    QVERIFY(!hasTaint(*healthy, "node.kubernetes.io/unreachable", "NoExecute"));

    auto stoppedAt = std::chrono::steady_clock::now();
    QVERIFY(sim_->stopHeartbeat("orrery-sim-2").isOk());
    json node;
    QVERIFY(eventually([&] {
      auto n = client_->get(kNodes, "", "orrery-sim-2");
      node = n.ok() ? *n : json();
      return n.ok() && condition(node, "Ready").value("status", "") == "Unknown";
    }));
    // Not before the grace period.
    QVERIFY(std::chrono::steady_clock::now() - stoppedAt >= 1400ms);
    QCOMPARE(condition(node, "Ready").value("reason", ""), std::string("NodeStatusUnknown"));
    QCOMPARE(condition(node, "Ready").value("message", ""), std::string("Kubelet stopped posting node status."));
    QCOMPARE(condition(node, "MemoryPressure").value("status", ""), std::string("Unknown"));
    QVERIFY(eventually([&] {
      auto n = client_->get(kNodes, "", "orrery-sim-2");
      return n.ok() && hasTaint(*n, "node.kubernetes.io/unreachable", "NoExecute") &&
             hasTaint(*n, "node.kubernetes.io/unreachable", "NoSchedule");
    }));
    // Pods on it are marked not ready.
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "stayer");
      return got.ok() && condition(*got, "Ready").value("status", "") == "False";
    }));
    // The 1 s toleration runs out: evicted (terminating; a dead kubelet cannot confirm it).
    json victim;
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "victim");
      if (!got.ok()) return false;
      victim = *got;
      return victim["metadata"].contains("deletionTimestamp");
    }));
    QCOMPARE(condition(victim, "DisruptionTarget").value("reason", ""), std::string("DeletionByTaintManager"));
    // The one that tolerates forever stays; the pod on a healthy node is untouched.
    auto stayer = client_->get(kPods, "default", "stayer");
    QVERIFY(stayer.ok() && !(*stayer)["metadata"].contains("deletionTimestamp"));
    QVERIFY(running("bystander"));
    auto other = client_->get(kNodes, "", "orrery-sim-0");
    QVERIFY(!hasTaint(*other, "node.kubernetes.io/unreachable", "NoExecute"));

    // What `kubectl get events` shows, with kube's reasons and wording.
    auto hasEvent = [&](const std::string& kind, const std::string& name, const std::string& reason,
                        const std::string& message) {
      auto events = client_->list(kEvents, "default");
      if (!events.ok()) return false;
      for (const auto& e : (*events)["items"]) {
        const json& io = e["involvedObject"];
        if (io.value("kind", "") == kind && io.value("name", "") == name && e.value("reason", "") == reason &&
            e.value("message", "") == message)
          return true;
      }
      return false;
    };
    QVERIFY(eventually([&] {
      return hasEvent("Node", "orrery-sim-2", "NodeNotReady", "Node orrery-sim-2 status is now: NodeNotReady");
    }));
    QVERIFY(eventually([&] {
      return hasEvent("Pod", "victim", "TaintManagerEviction", "Marking for deletion Pod default/victim");
    }));
    QVERIFY(eventually([&] { return hasEvent("Pod", "stayer", "NodeNotReady", "Node is not ready"); }));

    // The kubelet comes back: Ready again, taints gone, and the evicted pod is finally removed.
    QVERIFY(sim_->resumeHeartbeat("orrery-sim-2").isOk());
    QVERIFY(eventually([&] {
      auto n = client_->get(kNodes, "", "orrery-sim-2");
      return n.ok() && condition(*n, "Ready").value("status", "") == "True" &&
             !hasTaint(*n, "node.kubernetes.io/unreachable", "NoExecute") &&
             !hasTaint(*n, "node.kubernetes.io/unreachable", "NoSchedule");
    }));
    QVERIFY(eventually([&] { return codeOf(client_->get(kPods, "default", "victim")) == 404; }));
  }

  void allNodesDownStopsEvictions() {
    simnodes::SimulatedNodesOptions options;
    options.count = 2;
    options.runningDelay = 20ms;
    options.leaseRenewInterval = 200ms;
    startSim(options);
    controllers::NodeLifecycleOptions lifecycle;
    lifecycle.nodeMonitorPeriod = 200ms;
    lifecycle.nodeMonitorGracePeriod = 1000ms;
    lifecycle.evictionPeriod = 50ms;
    controllers::ControllerContext context;
    context.client = local_->adminClient("node-controller-test");
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    manager_->add(controllers::newNodeLifecycleController(lifecycle));
    QVERIFY(manager_->start(10s).isOk());
    json noWait = {{"tolerations", json::array({{{"key", "node.kubernetes.io/unreachable"},
                                                 {"operator", "Exists"},
                                                 {"effect", "NoExecute"},
                                                 {"tolerationSeconds", 0}}})}};
    QVERIFY(client_->create(kPods, "default", pod("kept", "orrery-sim-0", noWait)).ok());
    QVERIFY(eventually([&] {
      auto got = client_->get(kPods, "default", "kept");
      return got.ok() && (*got)["status"].value("phase", "") == "Running";
    }));
    QTest::qWait(400);  // the controller has seen both nodes healthy
    // Every node of the only zone goes silent: kube assumes the control plane lost them, not
    // that they all died, and evicts nothing ("master disruption mode").
    QVERIFY(sim_->stopHeartbeat("orrery-sim-0").isOk());
    QVERIFY(sim_->stopHeartbeat("orrery-sim-1").isOk());
    QVERIFY(eventually([&] {
      for (const char* n : {"orrery-sim-0", "orrery-sim-1"}) {
        auto node = client_->get(kNodes, "", n);
        if (!node.ok() || condition(*node, "Ready").value("status", "") != "Unknown") return false;
      }
      return true;
    }));
    QTest::qWait(1000);
    for (const char* n : {"orrery-sim-0", "orrery-sim-1"}) {
      auto node = client_->get(kNodes, "", n);
      QVERIFY2(!hasTaint(*node, "node.kubernetes.io/unreachable", "NoExecute"), n);
      QVERIFY2(hasTaint(*node, "node.kubernetes.io/unreachable", "NoSchedule"), n);
    }
    auto kept = client_->get(kPods, "default", "kept");
    QVERIFY(kept.ok() && !(*kept)["metadata"].contains("deletionTimestamp"));
  }

  void aThousandPodsRun() {
    simnodes::SimulatedNodesOptions options;
    options.count = 50;
    options.runningDelay = 0ms;
    startSim(options);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
      auto created = client_->create(kPods, "default",
                                     pod("p" + std::to_string(i), "orrery-sim-" + std::to_string(i % 50)));
      QVERIFY(created.ok());
    }
    auto createdAt = std::chrono::steady_clock::now();
    client::ListOptions running;
    running.fieldSelector = "status.phase=Running";
    QVERIFY(eventually([&] {
      auto l = client_->list(kPods, "default", running);
      return l.ok() && (*l)["items"].size() == 1000;
    }, 60s));
    auto end = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    qInfo("1,000 pods on 50 simulated nodes: created in %lld ms, all Running %lld ms after the first create",
          static_cast<long long>(ms(createdAt - start)), static_cast<long long>(ms(end - start)));
    QCOMPARE(sim_->podCount(), size_t(1000));
    // 20 pods per node: every address unique within its node's /24.
    size_t perNode = 0;
    for (const auto& n : sim_->nodes()) perNode += n.pods;
    QCOMPARE(perNode, size_t(1000));
    auto all = client_->list(kPods, "default");
    std::set<std::string> ips;
    for (const auto& p : (*all)["items"]) ips.insert(p["status"].value("podIP", ""));
    QCOMPARE(ips.size(), size_t(1000));
  }

  void memoryOfAThousandNodes() {
    // The component alone (writes accepted by a null transport): its compact per-node state.
    {
      auto null = std::make_shared<client::Client>(std::make_shared<NullTransport>(), "simnodes-memory");
      simnodes::SimulatedNodesOptions options;
      options.count = 0;
      auto sim = simnodes::SimulatedNodes::start(null, options);
      QVERIFY(sim.ok());
      QVERIFY((*sim)->waitIdle(10s));
      size_t before = heapBytes();
      auto added = (*sim)->add(1000);
      QVERIFY(added.ok());
      QVERIFY((*sim)->waitIdle(30s));
      size_t after = heapBytes();
      double perNode = (after > before ? after - before : 0) / 1000.0;
      qInfo("simulated nodes alone: heap +%.1f KiB for 1,000 nodes (%.2f KiB per node)",
            (after - before) / 1024.0, perNode / 1024.0);
      // A Node is a name, a uid, a 32-byte address bitmap, a name-index entry and two queued
      // timers (lease, status): a few hundred bytes; 2 KiB leaves room for allocator slack.
      QVERIFY2(perNode < 2048, std::to_string(perNode).c_str());
      (*sim)->stop();
    }
    // With the API server in the same process, as in `orrery up --simulated-nodes`.
    {
      size_t before = rssBytes();
      simnodes::SimulatedNodesOptions options;
      options.count = 1000;
      startSim(options);
      QVERIFY(sim_->waitIdle(60s));
      QVERIFY(eventually([&] {
        auto l = client_->list(kLeases, "kube-node-lease");
        return l.ok() && (*l)["items"].size() == 1000;
      }, 60s));
      size_t after = rssBytes();
      double perNode = (after > before ? after - before : 0) / 1000.0;
      qInfo("simulated nodes + API server: RSS +%.1f MiB for 1,000 nodes (%.1f KiB per node)",
            (after - before) / 1048576.0, perNode / 1024.0);
      // Dominated by the server: each Node (~2.5 KB of JSON) and Lease lives in the store, the
      // watch cache and its serialized form.
      QVERIFY2(perNode < 64 * 1024, std::to_string(perNode).c_str());
    }
  }

 private:
  void startSim(simnodes::SimulatedNodesOptions options) {
    auto sim = simnodes::SimulatedNodes::start(local_->adminClient("orrery-simulated-nodes"), std::move(options));
    QVERIFY2(sim.ok(), sim.ok() ? "" : sim.status().message().c_str());
    sim_ = std::move(*sim);
  }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<cluster::LocalApiServer> local_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<simnodes::SimulatedNodes> sim_;
  std::unique_ptr<controllers::ControllerManager> manager_;
};

QTEST_APPLESS_MAIN(SimNodesTest)
#include "simnodes_test.moc"
