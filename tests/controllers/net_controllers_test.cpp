// The Endpoints, EndpointSlice and DaemonSet controllers against a real API server, judged as
// a user would with `kubectl get endpoints,endpointslices,pods,ds`. No scheduler or kubelet
// runs here: a fake kubelet in this file binds daemon pods to the node their affinity names
// (pods/binding), marks each new pod Running and Ready with an IP once, and finishes deletions.

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "engine/api/object.h"
#include "engine/cluster/in_process.h"
#include "engine/controllers/controller.h"
#include "engine/controllers/daemonset.h"
#include "engine/controllers/endpoints.h"
#include "engine/controllers/endpointslice.h"
#include "tests/controllers/controller_test_util.h"

using namespace orrery;
using nlohmann::json;
using orrery::testing::eventually;
using orrery::testing::getOrNull;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kServices{"", "v1", "services"};
const api::GroupVersionResource kEndpoints{"", "v1", "endpoints"};
const api::GroupVersionResource kSlices{"discovery.k8s.io", "v1", "endpointslices"};
const api::GroupVersionResource kDaemonSets{"apps", "v1", "daemonsets"};
const api::GroupVersionResource kRevisions{"apps", "v1", "controllerrevisions"};

bool isReady(const json& pod) {
  for (const auto& c : pod["status"].value("conditions", json::array()))
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  return false;
}

bool terminating(const json& o) { return o["metadata"].contains("deletionTimestamp"); }

int64_t statusInt(const json& obj, const char* f) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return 0;
  return obj["status"].value(f, int64_t{0});
}

std::string affinityNode(const json& pod) { return controllers::daemonset::targetNodeName(pod); }

}  // namespace

class NetControllersTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> server_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<controllers::ControllerManager> manager_;

  std::mutex kubeletMu_;
  std::set<std::string> kubeletNamespaces_;
  std::atomic<bool> stop_{false};
  std::thread kubelet_;
  std::atomic<int> nextIp_{1};

  void kubeletLoop() {
    while (!stop_) {
      std::set<std::string> namespaces;
      {
        std::lock_guard lock(kubeletMu_);
        namespaces = kubeletNamespaces_;
      }
      for (const auto& ns : namespaces) {
        auto list = client_->list(kPods, ns);
        if (!list.ok()) continue;
        for (json pod : (*list)["items"]) {
          std::string name = pod["metadata"].value("name", "");
          if (terminating(pod)) {
            client::DeleteOptions opts;
            opts.gracePeriodSeconds = 0;
            (void)client_->remove(kPods, ns, name, opts);
            continue;
          }
          std::string node = pod["spec"].value("nodeName", "");
          if (node.empty()) {
            // The scheduler's part: bind to the node the daemon pod's affinity names.
            std::string target = affinityNode(pod);
            if (target.empty()) continue;
            json binding = {{"apiVersion", "v1"},
                            {"kind", "Binding"},
                            {"metadata", {{"name", name}}},
                            {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", target}}}};
            (void)client_->create(kPods, ns, binding, "binding");
            continue;
          }
          if (!pod["status"].value("podIP", "").empty()) continue;  // started once, then left alone
          int n = nextIp_++;
          std::string ip = "10.244." + std::to_string(n / 250) + "." + std::to_string(n % 250 + 1);
          std::string now = api::formatTime(std::chrono::system_clock::now());
          pod["status"]["phase"] = "Running";
          pod["status"]["podIP"] = ip;
          pod["status"]["podIPs"] = json::array({{{"ip", ip}}});
          pod["status"]["conditions"] = json::array({
              {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now}},
              {{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", now}},
          });
          (void)client_->update(kPods, ns, pod, "status");
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  }

  void createNamespace(const std::string& name) {
    auto r = client_->create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    std::lock_guard lock(kubeletMu_);
    kubeletNamespaces_.insert(name);
  }

  void createNode(const std::string& name, const json& labels = json::object(), const json& taints = json::array()) {
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata", {{"name", name}, {"labels", labels}}},
                 {"spec", {{"taints", taints}}},
                 {"status", {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}}};
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name;
    auto r = client_->create(kNodes, "", node);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

  json webPod(const std::string& name, const std::string& app, const std::string& node) {
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
            {"spec",
             {{"nodeName", node},
              {"containers",
               json::array({{{"name", "c"},
                             {"image", "nginx"},
                             {"ports", json::array({{{"name", "http"}, {"containerPort", 8080}}})}}})}}}};
  }

  json service(const std::string& name, const json& selector, const json& ports) {
    json svc = {{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", name}}}, {"spec", {{"ports", ports}}}};
    if (!selector.is_null()) svc["spec"]["selector"] = selector;
    return svc;
  }

  std::vector<json> list(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& labelSelector = "") {
    client::ListOptions opts;
    opts.labelSelector = labelSelector;
    auto r = client_->list(gvr, ns, opts);
    std::vector<json> out;
    if (r.ok())
      for (const auto& i : (*r)["items"]) out.push_back(i);
    return out;
  }

  std::vector<json> slicesOf(const std::string& ns, const std::string& svc) {
    return list(kSlices, ns, "kubernetes.io/service-name=" + svc);
  }

  int countAddresses(const json& ep, const char* list) {
    int n = 0;
    if (!ep.is_object()) return -1;
    for (const auto& s : ep.value("subsets", json::array())) n += static_cast<int>(s.value(list, json::array()).size());
    return n;
  }

  std::vector<json> daemonPods(const std::string& ns, const std::string& app) {
    std::vector<json> out;
    for (auto& p : list(kPods, ns, "app=" + app))
      if (!terminating(p)) out.push_back(p);
    return out;
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto server = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(server.ok(), server.ok() ? "" : server.status().message().c_str());
    server_ = std::move(*server);
    client_ = server_->adminClient("net-controllers-test");
    informers_ = std::make_unique<client::InformerFactory>(server_->adminClient("kube-controller-manager"));
    controllers::ControllerContext context;
    context.client = informers_->client();
    context.informers = informers_.get();
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    manager_->add(controllers::newEndpointsController());
    manager_->add(controllers::newEndpointSliceController());
    manager_->add(controllers::newDaemonSetController());
    auto st = manager_->start(std::chrono::seconds(20));
    QVERIFY2(st.isOk(), st.message().c_str());
    QVERIFY(manager_->find("endpoint") && manager_->find("endpointslice") && manager_->find("daemonset"));
    for (int i = 1; i <= 3; ++i) createNode("node-" + std::to_string(i), {{"topology.kubernetes.io/zone", "zone-a"}});
    kubelet_ = std::thread([this] { kubeletLoop(); });
  }

  void cleanupTestCase() {
    stop_ = true;
    if (kubelet_.joinable()) kubelet_.join();
    if (informers_) informers_->stop();
    if (manager_) manager_->stop();
    manager_.reset();
    informers_.reset();
    server_.reset();
  }

  // A Service over three ready pods: one Endpoints subset and one EndpointSlice with three
  // ready endpoints; the named targetPort resolves to the containers' port number.
  void serviceOverReadyPods() {
    const std::string ns = "svc-ready";
    createNamespace(ns);
    for (int i = 0; i < 3; ++i)
      QVERIFY(client_->create(kPods, ns, webPod("web-" + std::to_string(i), "web", "node-" + std::to_string(i + 1))).ok());
    json ports = json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}}});
    auto svc = client_->create(kServices, ns, service("web", {{"app", "web"}}, ports));
    QVERIFY2(svc.ok(), svc.ok() ? "" : svc.status().message().c_str());

    QVERIFY(eventually([&] { return countAddresses(getOrNull(*client_, kEndpoints, ns, "web"), "addresses") == 3; }));
    json ep = getOrNull(*client_, kEndpoints, ns, "web");
    QCOMPARE(ep["subsets"].size(), size_t(1));
    QCOMPARE(ep["subsets"][0]["ports"], json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}));
    QVERIFY(!ep["subsets"][0].contains("notReadyAddresses"));
    std::set<std::string> nodes;
    for (const auto& a : ep["subsets"][0]["addresses"]) {
      QCOMPARE(a["targetRef"]["kind"], json("Pod"));
      nodes.insert(a.value("nodeName", ""));
    }
    QCOMPARE(nodes, (std::set<std::string>{"node-1", "node-2", "node-3"}));
    QVERIFY(ep["metadata"]["annotations"].contains(controllers::endpoints::kLastChangeTriggerTime));

    QVERIFY(eventually([&] {
      auto slices = slicesOf(ns, "web");
      return slices.size() == 1 && slices[0].value("endpoints", json::array()).size() == 3;
    }));
    json slice = slicesOf(ns, "web")[0];
    QCOMPARE(slice["addressType"], json("IPv4"));
    QCOMPARE(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], json("endpointslice-controller.k8s.io"));
    QVERIFY(slice["metadata"].value("name", "").rfind("web-", 0) == 0);
    QCOMPARE(slice["metadata"]["ownerReferences"][0]["uid"], (*svc)["metadata"]["uid"]);
    QCOMPARE(slice["metadata"]["ownerReferences"][0]["kind"], json("Service"));
    QCOMPARE(slice["ports"], json::array({{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}));
    for (const auto& e : slice["endpoints"]) {
      QCOMPARE(e["conditions"], json({{"ready", true}, {"serving", true}, {"terminating", false}}));
      QCOMPARE(e["zone"], json("zone-a"));
      QVERIFY(e["nodeName"].get<std::string>().rfind("node-", 0) == 0);
      QCOMPARE(e["addresses"].size(), size_t(1));
    }
    std::string sliceName = slice["metadata"]["name"];

    // web-1 goes unready: it moves to notReadyAddresses and its endpoint to ready=false, in
    // the same slice.
    json pod = getOrNull(*client_, kPods, ns, "web-1");
    for (auto& c : pod["status"]["conditions"])
      if (c["type"] == "Ready") c["status"] = "False";
    QVERIFY(client_->update(kPods, ns, pod, "status").ok());
    std::string ip = pod["status"]["podIP"];
    QVERIFY(eventually([&] {
      json e = getOrNull(*client_, kEndpoints, ns, "web");
      return countAddresses(e, "addresses") == 2 && countAddresses(e, "notReadyAddresses") == 1;
    }));
    ep = getOrNull(*client_, kEndpoints, ns, "web");
    QCOMPARE(ep["subsets"][0]["notReadyAddresses"][0]["ip"], json(ip));
    QVERIFY(eventually([&] {
      auto slices = slicesOf(ns, "web");
      if (slices.size() != 1) return false;
      for (const auto& e : slices[0]["endpoints"])
        if (e["addresses"][0] == ip) return e["conditions"]["ready"] == false && e["conditions"]["serving"] == false;
      return false;
    }));
    QCOMPARE(slicesOf(ns, "web")[0]["metadata"]["name"], json(sliceName));

    // A numeric targetPort is taken as is; a port the pod does not name is left out.
    json ports2 = json::array({{{"name", "metrics"}, {"port", 9000}, {"targetPort", 9100}},
                               {{"name", "admin"}, {"port", 81}, {"targetPort", "admin"}}});
    QVERIFY(client_->create(kServices, ns, service("multi", {{"app", "web"}}, ports2)).ok());
    QVERIFY(eventually([&] { return countAddresses(getOrNull(*client_, kEndpoints, ns, "multi"), "addresses") == 2; }));
    ep = getOrNull(*client_, kEndpoints, ns, "multi");
    QCOMPARE(ep["subsets"][0]["ports"], json::array({{{"name", "metrics"}, {"port", 9100}, {"protocol", "TCP"}}}));

    // The service goes: so does its Endpoints.
    QVERIFY(client_->remove(kServices, ns, "multi").ok());
    QVERIFY(eventually([&] { return testing::gone(*client_, kEndpoints, ns, "multi"); }));
  }

  // A service without selector: its Endpoints are the user's and stay as written.
  void serviceWithoutSelectorUntouched() {
    const std::string ns = "svc-manual";
    createNamespace(ns);
    QVERIFY(client_->create(kServices, ns, service("ext", nullptr, json::array({{{"port", 80}}}))).ok());
    json ep = {{"apiVersion", "v1"},
               {"kind", "Endpoints"},
               {"metadata", {{"name", "ext"}}},
               {"subsets", json::array({{{"addresses", json::array({{{"ip", "192.0.2.10"}}})},
                                         {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}})}};
    QVERIFY(client_->create(kEndpoints, ns, ep).ok());
    QVERIFY(client_->create(kPods, ns, webPod("p", "web", "node-1")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    json got = getOrNull(*client_, kEndpoints, ns, "ext");
    QCOMPARE(got["subsets"][0]["addresses"][0]["ip"], json("192.0.2.10"));
    QVERIFY(slicesOf(ns, "ext").empty());
  }

  // More than 100 endpoints spread over slices of at most 100; removing one pod rewrites the
  // slice that held it and keeps every slice (no churn).
  void slicesOfAtMostHundred() {
    const std::string ns = "svc-big";
    createNamespace(ns);
    QVERIFY(client_->create(kServices, ns, service("big", {{"app", "big"}}, json::array({{{"port", 80}, {"targetPort", 8080}}}))).ok());
    for (int i = 0; i < 110; ++i)
      QVERIFY(client_->create(kPods, ns, webPod("big-" + std::to_string(i), "big", "node-" + std::to_string(i % 3 + 1))).ok());
    auto total = [&](const std::vector<json>& slices) {
      size_t n = 0;
      for (const auto& s : slices) n += s.value("endpoints", json::array()).size();
      return n;
    };
    QVERIFY(eventually([&] { return total(slicesOf(ns, "big")) == 110; }, std::chrono::seconds(30)));
    auto slices = slicesOf(ns, "big");
    QCOMPARE(slices.size(), size_t(2));
    std::set<std::string> names;
    for (const auto& s : slices) {
      QVERIFY(s["endpoints"].size() <= 100);
      names.insert(s["metadata"]["name"]);
    }
    client::DeleteOptions now;
    now.gracePeriodSeconds = 0;
    QVERIFY(client_->remove(kPods, ns, "big-7", now).ok());
    QVERIFY(eventually([&] { return total(slicesOf(ns, "big")) == 109; }));
    std::set<std::string> after;
    for (const auto& s : slicesOf(ns, "big")) after.insert(s["metadata"]["name"]);
    QCOMPARE(after, names);
  }

  // A DaemonSet on three nodes: one pod per node, pinned by node affinity (not nodeName), with
  // kube's daemon tolerations and revision labels; a tainted node is skipped unless tolerated;
  // a new node gets its pod.
  void daemonSetPlacement() {
    const std::string ns = "ds-place";
    createNamespace(ns);
    json ds = {{"apiVersion", "apps/v1"},
               {"kind", "DaemonSet"},
               {"metadata", {{"name", "agent"}}},
               {"spec",
                {{"selector", {{"matchLabels", {{"app", "agent"}}}}},
                 {"template",
                  {{"metadata", {{"labels", {{"app", "agent"}}}}},
                   {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "agent:1"}}})}}}}}}}};
    auto created = client_->create(kDaemonSets, ns, ds);
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    QVERIFY(eventually([&] { return daemonPods(ns, "agent").size() == 3; }));
    std::set<std::string> targets;
    for (const auto& p : daemonPods(ns, "agent")) {
      const json& terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
      QCOMPARE(terms.size(), size_t(1));
      QCOMPARE(terms[0]["matchFields"][0]["key"], json("metadata.name"));
      targets.insert(terms[0]["matchFields"][0]["values"][0]);
      QVERIFY(p["metadata"]["labels"].contains("controller-revision-hash"));
      QVERIFY(p["metadata"]["labels"].contains("pod-template-generation"));
      std::set<std::string> keys;
      for (const auto& t : p["spec"]["tolerations"]) keys.insert(t.value("key", "") + ":" + t.value("effect", ""));
      for (const char* k : {"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
                            "node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
                            "node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"})
        QVERIFY2(keys.count(k), k);
      QVERIFY(!keys.count("node.kubernetes.io/network-unavailable:NoSchedule"));
    }
    QCOMPARE(targets, (std::set<std::string>{"node-1", "node-2", "node-3"}));
    QCOMPARE(list(kRevisions, ns).size(), size_t(1));
    QVERIFY(eventually([&] {
      json d = getOrNull(*client_, kDaemonSets, ns, "agent");
      return statusInt(d, "desiredNumberScheduled") == 3 && statusInt(d, "numberReady") == 3 &&
             statusInt(d, "numberAvailable") == 3 && statusInt(d, "updatedNumberScheduled") == 3 &&
             statusInt(d, "currentNumberScheduled") == 3 &&
             statusInt(d, "observedGeneration") == d["metadata"].value("generation", int64_t{0});
    }));

    // A tainted node: no pod, and not counted as desired.
    createNode("node-tainted", json::object(),
               json::array({{{"key", "dedicated"}, {"value", "infra"}, {"effect", "NoSchedule"}}}));
    createNode("node-new");
    QVERIFY(eventually([&] {
      std::set<std::string> t;
      for (const auto& p : daemonPods(ns, "agent")) t.insert(affinityNode(p));
      return t.count("node-new") == 1;
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (const auto& p : daemonPods(ns, "agent")) QVERIFY(affinityNode(p) != "node-tainted");
    QVERIFY(eventually([&] {
      json d = getOrNull(*client_, kDaemonSets, ns, "agent");
      return statusInt(d, "desiredNumberScheduled") == 4 && statusInt(d, "numberReady") == 4;
    }));

    // A DaemonSet tolerating the taint runs there too.
    json tolerant = ds;
    tolerant["metadata"]["name"] = "tolerant";
    tolerant["spec"]["selector"]["matchLabels"]["app"] = "tolerant";
    tolerant["spec"]["template"]["metadata"]["labels"]["app"] = "tolerant";
    tolerant["spec"]["template"]["spec"]["tolerations"] =
        json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "infra"}, {"effect", "NoSchedule"}}});
    QVERIFY(client_->create(kDaemonSets, ns, tolerant).ok());
    QVERIFY(eventually([&] {
      std::set<std::string> t;
      for (const auto& p : daemonPods(ns, "tolerant")) t.insert(affinityNode(p));
      return t.size() == 5 && t.count("node-tainted") == 1;
    }));
    QVERIFY(client_->remove(kNodes, "", "node-tainted").ok());
  }

  // RollingUpdate with maxUnavailable 1: pods are replaced node by node, never two nodes
  // without an available pod at once; the status reads as rolled out; kubectl agrees.
  void daemonSetRollingUpdate() {
    const std::string ns = "ds-roll";
    createNamespace(ns);
    json ds = {{"apiVersion", "apps/v1"},
               {"kind", "DaemonSet"},
               {"metadata", {{"name", "roll"}}},
               {"spec",
                {{"selector", {{"matchLabels", {{"app", "roll"}}}}},
                 {"updateStrategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 1}}}}},
                 {"template",
                  {{"metadata", {{"labels", {{"app", "roll"}}}}},
                   {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "roll:1"}}})}}}}}}}};
    QVERIFY(client_->create(kDaemonSets, ns, ds).ok());
    auto nodeCount = [&] { return list(kNodes, "").size(); };
    size_t want = nodeCount();
    auto rolledOut = [&] {
      json d = getOrNull(*client_, kDaemonSets, ns, "roll");
      int64_t desired = statusInt(d, "desiredNumberScheduled");
      return desired == static_cast<int64_t>(want) && statusInt(d, "observedGeneration") >= d["metadata"].value("generation", int64_t{0}) &&
             statusInt(d, "updatedNumberScheduled") == desired && statusInt(d, "numberAvailable") == desired;
    };
    QVERIFY(eventually(rolledOut));
    std::map<std::string, std::string> oldPods;  // node -> pod
    for (const auto& p : daemonPods(ns, "roll")) oldPods[affinityNode(p)] = p["metadata"]["name"];
    QCOMPARE(oldPods.size(), want);

    // Watch every intermediate state: nodes without a ready, non-terminating pod.
    std::atomic<int> worst{0};
    std::mutex mu;
    std::map<std::string, json> live;
    auto initial = client_->list(kPods, ns);
    QVERIFY(initial.ok());
    for (const auto& p : (*initial)["items"]) live[p["metadata"]["name"]] = p;
    client::ListOptions opts;
    opts.resourceVersion = (*initial)["metadata"].value("resourceVersion", "");
    auto stream = client_->watch(kPods, ns, opts, [&](client::WatchEvent&& e) {
      if (e.type != "ADDED" && e.type != "MODIFIED" && e.type != "DELETED") return;
      std::lock_guard lock(mu);
      std::string name = e.object["metadata"]["name"];
      if (e.type == "DELETED") live.erase(name);
      else live[name] = e.object;
      std::set<std::string> served;
      for (const auto& [n, p] : live)
        if (!terminating(p) && isReady(p)) served.insert(p["spec"].value("nodeName", ""));
      int missing = static_cast<int>(want) - static_cast<int>(served.size());
      if (missing > worst) worst = missing;
    }, [](const api::Status&) {});
    QVERIFY(stream.ok());

    json patch = {{"spec", {{"template", {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", "roll:2"}}})}}}}}}}};
    QVERIFY(client_->patch(kDaemonSets, ns, "roll", client::PatchType::kStrategicMerge, patch.dump()).ok());
    QVERIFY(eventually([&] {
      auto pods = daemonPods(ns, "roll");
      if (pods.size() != want) return false;
      for (const auto& p : pods)
        if (p["spec"]["containers"][0]["image"] != "roll:2" || oldPods[affinityNode(p)] == p["metadata"]["name"]) return false;
      return rolledOut();
    }, std::chrono::seconds(30)));
    (*stream)->cancel();
    QVERIFY2(worst <= 1, qPrintable(QString("%1 nodes were without a pod at once").arg(worst.load())));
    QCOMPARE(list(kRevisions, ns).size(), size_t(2));

    QString kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    if (!QFileInfo::exists(kubectl)) QSKIP("kubectl 1.32 is not installed");
    QProcess p;
    p.start(kubectl, {"--kubeconfig", QString::fromStdString(server_->kubeconfigPath()), "-n", QString::fromStdString(ns),
                      "rollout", "status", "daemonset/roll", "--timeout=30s"});
    QVERIFY(p.waitForFinished(60000));
    QString out = QString::fromUtf8(p.readAllStandardOutput()) + QString::fromUtf8(p.readAllStandardError());
    QCOMPARE(p.exitCode(), 0);
    QVERIFY2(out.contains("daemon set \"roll\" successfully rolled out"), qPrintable(out));
  }
};

QTEST_APPLESS_MAIN(NetControllersTest)
#include "net_controllers_test.moc"
