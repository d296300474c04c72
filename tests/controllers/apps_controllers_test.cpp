// The ReplicaSet and Deployment controllers against a real API server, as a user watching
// `kubectl get pods,rs,deploy -w` would judge them. There is no kubelet here: a fake one in
// this file marks pods Running and Ready (PUT pods/NAME/status) and finishes deletions, like
// a node would.

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
#include "engine/controllers/deployment.h"
#include "engine/controllers/replicaset.h"
#include "engine/controllers/statefulset.h"
#include "tests/controllers/controller_test_util.h"

using namespace orrery;
using nlohmann::json;
using orrery::testing::eventually;
using orrery::testing::getOrNull;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kEvents{"", "v1", "events"};
const api::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets"};
const api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const api::GroupVersionResource kStatefulSets{"apps", "v1", "statefulsets"};
const api::GroupVersionResource kRevisions{"apps", "v1", "controllerrevisions"};
const api::GroupVersionResource kClaims{"", "v1", "persistentvolumeclaims"};


json podTemplate(const std::string& app, const std::string& image, bool neverReady = false) {
  json labels = {{"app", app}};
  if (neverReady) labels["ready"] = "never";
  return {{"metadata", {{"labels", labels}}},
          {"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}};
}

// A ReplicaSet `name` of nginx pods labelled app=`name`, selected by that label.
json replicaSetManifest(const std::string& name, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", name}}},
          {"spec", {{"replicas", replicas}, {"selector", {{"matchLabels", {{"app", name}}}}}, {"template", podTemplate(name, "nginx")}}}};
}

json deploymentObject(const std::string& name, int replicas, const json& strategy, const std::string& image = "nginx:1") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"strategy", strategy},
            {"template", podTemplate(name, image)}}}};
}

json statefulSetObject(const std::string& name, int replicas, const json& updateStrategy, const std::string& policy = "OrderedReady") {
  return {{"apiVersion", "apps/v1"},
          {"kind", "StatefulSet"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"replicas", replicas},
            {"serviceName", name + "-svc"},
            {"podManagementPolicy", policy},
            {"updateStrategy", updateStrategy},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template", podTemplate(name, "img:1")}}}};
}

const json kRolling = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}};

bool hasCondition(const json& obj, const std::string& type, const std::string& status, const std::string& reason) {
  const json& conds = obj.is_object() && obj.contains("status") ? obj["status"].value("conditions", json::array()) : json::array();
  for (const auto& c : conds)
    if (c.value("type", "") == type && c.value("status", "") == status && (reason.empty() || c.value("reason", "") == reason))
      return true;
  return false;
}

int64_t statusInt(const json& obj, const char* f) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return 0;
  return obj["status"].value(f, int64_t{0});
}

bool isReady(const json& pod) {
  for (const auto& c : pod["status"].value("conditions", json::array()))
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  return false;
}

bool isActive(const json& pod) {
  std::string phase = pod["status"].value("phase", "");
  return phase != "Succeeded" && phase != "Failed" && !pod["metadata"].contains("deletionTimestamp");
}

std::string controllerUid(const json& obj) {
  for (const auto& r : obj["metadata"].value("ownerReferences", json::array()))
    if (r.value("controller", false)) return r.value("uid", "");
  return "";
}

// Watches the pods of a namespace, keeping the live set in order of events, and calls a
// check after each event (the check sees every intermediate state).
class PodWatch {
 public:
  PodWatch(client::Client& c, const std::string& ns, std::function<void(const std::map<std::string, json>&)> check)
      : check_(std::move(check)) {
    auto list = c.list(kPods, ns);
    if (!list.ok()) return;
    for (const auto& p : (*list)["items"]) pods_[p["metadata"]["name"]] = p;
    client::ListOptions opts;
    opts.resourceVersion = (*list)["metadata"].value("resourceVersion", "");
    auto s = c.watch(kPods, ns, opts, [this](client::WatchEvent&& e) {
      std::lock_guard lock(mu_);
      if (e.type == "BOOKMARK" || e.type == "ERROR") return;
      std::string name = e.object["metadata"].value("name", "");
      if (e.type == "DELETED") pods_.erase(name);
      else pods_[name] = e.object;
      events_++;
      check_(pods_);
    }, [](const api::Status&) {});
    if (s.ok()) stream_ = std::move(*s);
  }
  ~PodWatch() {
    if (stream_) stream_->cancel();
  }
  bool started() const { return stream_ != nullptr; }
  int events() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, json> pods_;
  std::function<void(const std::map<std::string, json>&)> check_;
  std::unique_ptr<client::Stream> stream_;
  int events_ = 0;
};

}  // namespace

class AppsControllersTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> server_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<controllers::ControllerManager> manager_;
  std::atomic<int64_t> clockSkewSeconds_{0};

  // The fake kubelet: namespaces it serves, and its thread.
  std::mutex kubeletMu_;
  std::set<std::string> kubeletNamespaces_;
  std::atomic<bool> stop_{false};
  std::thread kubelet_;

  void serveNamespace(const std::string& ns) {
    std::lock_guard lock(kubeletMu_);
    kubeletNamespaces_.insert(ns);
  }

  // Marks a pod Running and Ready, as a kubelet whose probes pass would.
  bool markReady(const json& podIn) {
    json pod = podIn;
    std::string now = api::formatTime(std::chrono::system_clock::now());
    pod["status"]["phase"] = "Running";
    pod["status"]["conditions"] = json::array({
        {{"type", "Initialized"}, {"status", "True"}, {"lastTransitionTime", now}},
        {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now}},
        {{"type", "ContainersReady"}, {"status", "True"}, {"lastTransitionTime", now}},
        {{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", now}},
    });
    return client_->update(kPods, pod["metadata"].value("namespace", ""), pod, "status").ok();
  }

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
        for (const auto& pod : (*list)["items"]) {
          std::string name = pod["metadata"].value("name", "");
          if (pod["metadata"].contains("deletionTimestamp")) {
            client::DeleteOptions opts;
            opts.gracePeriodSeconds = 0;
            (void)client_->remove(kPods, ns, name, opts);
            continue;
          }
          if (isReady(pod) || pod["metadata"]["labels"].value("ready", "") == "never") continue;
          (void)markReady(pod);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  }

  void createNamespace(const std::string& name, bool kubelet = true) {
    auto r = client_->create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    if (kubelet) serveNamespace(name);
  }

  json get(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    return getOrNull(*client_, gvr, ns, name);
  }

  std::vector<json> list(const api::GroupVersionResource& gvr, const std::string& ns) {
    auto r = client_->list(gvr, ns);
    std::vector<json> out;
    if (r.ok())
      for (const auto& i : (*r)["items"]) out.push_back(i);
    return out;
  }

  std::vector<json> activePods(const std::string& ns) {
    std::vector<json> out;
    for (auto& p : list(kPods, ns))
      if (isActive(p)) out.push_back(p);
    return out;
  }

  std::vector<std::string> eventMessages(const std::string& ns, const std::string& reason) {
    std::vector<std::string> out;
    for (const auto& e : list(kEvents, ns))
      if (e.value("reason", "") == reason) out.push_back(e.value("message", ""));
    return out;
  }

  bool hasEvent(const std::string& ns, const std::string& reason, const std::string& message) {
    auto msgs = eventMessages(ns, reason);
    return std::find(msgs.begin(), msgs.end(), message) != msgs.end();
  }

  // The deployment has rolled out as `kubectl rollout status` judges it.
  bool rolledOut(const std::string& ns, const std::string& name) {
    json d = get(kDeployments, ns, name);
    if (d.is_null()) return false;
    int64_t want = d["spec"].value("replicas", 1);
    return statusInt(d, "observedGeneration") >= d["metadata"].value("generation", int64_t{0}) &&
           statusInt(d, "updatedReplicas") == want && statusInt(d, "replicas") == want &&
           statusInt(d, "availableReplicas") == want && hasCondition(d, "Available", "True", "") &&
           hasCondition(d, "Progressing", "True", "NewReplicaSetAvailable");
  }

  std::vector<json> replicaSetsOf(const std::string& ns, const json& d) {
    std::vector<json> out;
    for (auto& rs : list(kReplicaSets, ns))
      if (controllerUid(rs) == d["metadata"].value("uid", "")) out.push_back(rs);
    return out;
  }

  void setImage(const std::string& ns, const std::string& name, const std::string& image) {
    json patch = {{"spec", {{"template", {{"spec", {{"containers", json::array({{{"name", "c"}, {"image", image}}})}}}}}}}};
    auto r = client_->patch(kDeployments, ns, name, client::PatchType::kStrategicMerge, patch.dump());
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto server = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(server.ok(), server.ok() ? "" : server.status().message().c_str());
    server_ = std::move(*server);
    client_ = server_->adminClient("apps-controllers-test");
    informers_ = std::make_unique<client::InformerFactory>(server_->adminClient("kube-controller-manager"));
    controllers::ControllerContext context;
    context.client = informers_->client();
    context.informers = informers_.get();
    context.now = [this] { return std::chrono::system_clock::now() + std::chrono::seconds(clockSkewSeconds_.load()); };
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    manager_->add(controllers::newReplicaSetController());
    manager_->add(controllers::newDeploymentController());
    manager_->add(controllers::newStatefulSetController());
    auto st = manager_->start(std::chrono::seconds(20));
    QVERIFY2(st.isOk(), st.message().c_str());
    QVERIFY(manager_->find("replicaset") != nullptr);
    QVERIFY(manager_->find("deployment") != nullptr);
    kubelet_ = std::thread([this] { kubeletLoop(); });
  }

  void cleanupTestCase() {
    stop_ = true;
    if (kubelet_.joinable()) kubelet_.join();
    if (manager_) manager_->stop();
    if (informers_) informers_->stop();
    manager_.reset();
    informers_.reset();
    server_.reset();
  }

  void fenceposts() {
    using controllers::deployment::resolveFenceposts;
    auto check = [](json surge, json unavailable, int desired, int wantSurge, int wantUnavailable) {
      auto r = resolveFenceposts(surge, unavailable, desired);
      QVERIFY(r.ok());
      QCOMPARE(r->first, wantSurge);
      QCOMPARE(r->second, wantUnavailable);
    };
    check("25%", "25%", 3, 1, 0);   // surge rounds up, unavailable down
    check("25%", "25%", 10, 3, 2);
    check(0, 0, 5, 0, 1);           // both zero: one may be unavailable
    check("0%", "0%", 5, 0, 1);
    check(2, "50%", 3, 2, 1);
    QVERIFY(!resolveFenceposts("10", 0, 3).ok());  // a string must be a percentage
    // The hash ignores nothing but changes with the template and the collision count.
    json t = podTemplate("x", "a");
    std::string h = controllers::deployment::podTemplateHash(t, std::nullopt);
    QVERIFY(!h.empty() && h.size() <= 10);
    QVERIFY(h.find_first_not_of("bcdfghjklmnpqrstvwxz2456789") == std::string::npos);
    QCOMPARE(controllers::deployment::podTemplateHash(t, std::nullopt), h);
    QVERIFY(controllers::deployment::podTemplateHash(t, 1) != h);
    QVERIFY(controllers::deployment::podTemplateHash(podTemplate("x", "b"), std::nullopt) != h);
    json withHash = t;
    withHash["metadata"]["labels"]["pod-template-hash"] = h;
    QVERIFY(controllers::deployment::equalIgnoreHash(t, withHash));
    QVERIFY(!controllers::deployment::equalIgnoreHash(t, podTemplate("x", "b")));
  }

  void deletionOrder() {
    auto now = std::chrono::system_clock::now();
    auto at = [&](int secondsAgo) { return api::formatTime(now - std::chrono::seconds(secondsAgo)); };
    auto pod = [&](const std::string& name, const std::string& node, const std::string& phase, int readyAgo, int createdAgo) {
      json p = {{"metadata", {{"name", name}, {"uid", name}, {"creationTimestamp", at(createdAgo)}}},
                {"spec", {{"nodeName", node}}},
                {"status", {{"phase", phase}}}};
      if (readyAgo >= 0)
        p["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", at(readyAgo)}}});
      return p;
    };
    std::vector<json> pods = {
        pod("old-ready", "n1", "Running", 3600, 7200),
        pod("unassigned", "", "Pending", -1, 7200),
        pod("not-ready", "n2", "Running", -1, 7200),
        pod("new-ready", "n3", "Running", 10, 20),
        pod("cheap", "n4", "Running", 3600, 7200),
    };
    pods[4]["metadata"]["annotations"] = {{"controller.kubernetes.io/pod-deletion-cost", "-10"}};
    auto victims = controllers::replicaset::podsToDelete(pods, pods, 4, now);
    QStringList names;
    for (const auto& v : victims) names << QString::fromStdString(v["metadata"]["name"]);
    QCOMPARE(names, (QStringList{"unassigned", "not-ready", "cheap", "new-ready"}));
    // Colocated pods go before lone ones.
    std::vector<json> spread = {pod("alone", "n1", "Running", 3600, 7200), pod("crowded", "n2", "Running", 3600, 7200)};
    std::vector<json> related = spread;
    related.push_back(pod("other-rs", "n2", "Running", 3600, 7200));
    victims = controllers::replicaset::podsToDelete(spread, related, 1, now);
    QCOMPARE(QString::fromStdString(victims[0]["metadata"]["name"]), QString("crowded"));
  }

  void replicaSetCreatesDeletesAndAdopts() {
    const std::string ns = "rs-test";
    createNamespace(ns, /*kubelet=*/false);
    // An orphan that the ReplicaSet's selector matches, there before it.
    json orphan = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "orphan"}, {"labels", {{"app", "frontend"}}}}},
                   {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
    QVERIFY(client_->create(kPods, ns, orphan).ok());
    json rs = replicaSetManifest("frontend", 3);
    auto created = client_->create(kReplicaSets, ns, rs);
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    std::string uid = (*created)["metadata"]["uid"];

    QVERIFY(eventually([&] { return activePods(ns).size() == 3; }));
    QVERIFY(eventually([&] { return controllerUid(get(kPods, ns, "orphan")) == uid; }));
    json adopted = get(kPods, ns, "orphan");
    QCOMPARE(adopted["metadata"]["ownerReferences"][0].value("blockOwnerDeletion", false), true);
    QCOMPARE(QString::fromStdString(adopted["metadata"]["ownerReferences"][0].value("kind", "")), QString("ReplicaSet"));
    int generated = 0;
    for (const auto& p : activePods(ns)) {
      QCOMPARE(QString::fromStdString(controllerUid(p)), QString::fromStdString(uid));
      std::string name = p["metadata"]["name"];
      if (name == "orphan") continue;
      generated++;
      QVERIFY2(name.rfind("frontend-", 0) == 0 && name.size() == std::string("frontend-").size() + 5, name.c_str());
    }
    QCOMPARE(generated, 2);
    // Nothing extra is created while the informer catches up (expectations).
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    QCOMPARE(activePods(ns).size(), size_t(3));
    QVERIFY(eventually([&] {
      json r = get(kReplicaSets, ns, "frontend");
      return statusInt(r, "replicas") == 3 && statusInt(r, "fullyLabeledReplicas") == 3 &&
             statusInt(r, "observedGeneration") == 1 && statusInt(r, "readyReplicas") == 0;
    }));
    QVERIFY(eventually([&] { return eventMessages(ns, "SuccessfulCreate").size() == 2; }));
    for (const auto& m : eventMessages(ns, "SuccessfulCreate")) QVERIFY2(m.rfind("Created pod: frontend-", 0) == 0, m.c_str());

    // Two pods become ready; scaling to 2 deletes the one that is not (kube's order).
    auto pods = activePods(ns);
    std::string notReady;
    for (size_t i = 0; i < pods.size(); ++i) {
      if (i < 2) QVERIFY(markReady(pods[i]));
      else notReady = pods[i]["metadata"]["name"];
    }
    QVERIFY(eventually([&] {
      json r = get(kReplicaSets, ns, "frontend");
      return statusInt(r, "readyReplicas") == 2 && statusInt(r, "availableReplicas") == 2;
    }));
    QVERIFY(client_->patch(kReplicaSets, ns, "frontend", client::PatchType::kMerge, R"({"spec":{"replicas":2}})").ok());
    QVERIFY(eventually([&] { return activePods(ns).size() == 2; }));
    for (const auto& p : activePods(ns)) QVERIFY(p["metadata"]["name"] != notReady);
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulDelete", "Deleted pod: " + notReady); }));
    QVERIFY(eventually([&] {
      json r = get(kReplicaSets, ns, "frontend");
      return statusInt(r, "replicas") == 2 && statusInt(r, "observedGeneration") == 2;
    }));

    // A pod relabelled out of the selector is released and replaced.
    std::string leaving = activePods(ns)[0]["metadata"]["name"];
    QVERIFY(client_->patch(kPods, ns, leaving, client::PatchType::kMerge, R"({"metadata":{"labels":{"app":"other"}}})").ok());
    QVERIFY(eventually([&] { return controllerUid(get(kPods, ns, leaving)).empty(); }));
    QVERIFY(eventually([&] {
      int owned = 0;
      for (const auto& p : activePods(ns))
        if (controllerUid(p) == uid) owned++;
      return owned == 2;
    }));
  }

  // The counts a sync writes follow every change they read: the template (a new generation),
  // a pod's labels and its readiness (new pod versions). The controller remembers what it read
  // of each pod version; none of these may be answered from an older reading.
  void replicaSetCountsFollowTemplateAndPodChanges() {
    const std::string ns = "rs-counts";
    createNamespace(ns, /*kubelet=*/false);
    json rs = replicaSetManifest("counted", 2);
    QVERIFY(client_->create(kReplicaSets, ns, rs).ok());
    auto status = [&](const char* f) { return statusInt(get(kReplicaSets, ns, "counted"), f); };
    QVERIFY(eventually([&] { return activePods(ns).size() == 2 && status("fullyLabeledReplicas") == 2; }));

    // A label only the template has: no pod carries every template label any more.
    QVERIFY(client_->patch(kReplicaSets, ns, "counted", client::PatchType::kMerge,
                           R"({"spec":{"template":{"metadata":{"labels":{"tier":"web"}}}}})").ok());
    QVERIFY(eventually([&] { return status("observedGeneration") == 2 && status("fullyLabeledReplicas") == 0; }));
    QCOMPARE(status("replicas"), int64_t(2));

    // One pod gains it.
    std::string first = activePods(ns)[0]["metadata"]["name"];
    QVERIFY(client_->patch(kPods, ns, first, client::PatchType::kMerge, R"({"metadata":{"labels":{"tier":"web"}}})").ok());
    QVERIFY(eventually([&] { return status("fullyLabeledReplicas") == 1; }));

    // Readiness: both ready, then the first one is not.
    for (const auto& p : activePods(ns)) QVERIFY(markReady(p));
    QVERIFY(eventually([&] { return status("readyReplicas") == 2 && status("availableReplicas") == 2; }));
    json pod = get(kPods, ns, first);
    for (auto& c : pod["status"]["conditions"])
      if (c["type"] == "Ready") c["status"] = "False";
    QVERIFY(client_->update(kPods, ns, pod, "status").ok());
    QVERIFY(eventually([&] { return status("readyReplicas") == 1 && status("availableReplicas") == 1; }));
    QCOMPARE(status("fullyLabeledReplicas"), int64_t(1));
  }

  void deploymentBecomesAvailable() {
    const std::string ns = "deploy-available";
    createNamespace(ns);
    auto created = client_->create(kDeployments, ns, deploymentObject("web", 3, kRolling));
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    QVERIFY(eventually([&] { return rolledOut(ns, "web"); }));
    json d = get(kDeployments, ns, "web");
    QVERIFY(hasCondition(d, "Available", "True", "MinimumReplicasAvailable"));
    QCOMPARE(statusInt(d, "readyReplicas"), int64_t(3));
    QCOMPARE(statusInt(d, "unavailableReplicas"), int64_t(0));
    QCOMPARE(QString::fromStdString(d["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "")), QString("1"));

    auto rss = replicaSetsOf(ns, d);
    QCOMPARE(rss.size(), size_t(1));
    json rs = rss[0];
    std::string hash = rs["metadata"]["labels"].value("pod-template-hash", "");
    QVERIFY(!hash.empty());
    QCOMPARE(QString::fromStdString(rs["metadata"]["name"]), QString::fromStdString("web-" + hash));
    QCOMPARE(QString::fromStdString(rs["spec"]["selector"]["matchLabels"].value("pod-template-hash", "")), QString::fromStdString(hash));
    json ann = rs["metadata"]["annotations"];
    QCOMPARE(QString::fromStdString(ann.value("deployment.kubernetes.io/revision", "")), QString("1"));
    QCOMPARE(QString::fromStdString(ann.value("deployment.kubernetes.io/desired-replicas", "")), QString("3"));
    QCOMPARE(QString::fromStdString(ann.value("deployment.kubernetes.io/max-replicas", "")), QString("4"));
    for (const auto& p : activePods(ns)) QCOMPARE(QString::fromStdString(p["metadata"]["labels"].value("pod-template-hash", "")), QString::fromStdString(hash));
    QVERIFY(eventually([&] {
      return hasEvent(ns, "ScalingReplicaSet", "Scaled up replica set web-" + hash + " from 0 to 3");
    }));
    const json* progressing = nullptr;
    for (const auto& c : d["status"]["conditions"])
      if (c["type"] == "Progressing") progressing = &c;
    QVERIFY(progressing);
    QCOMPARE(QString::fromStdString(progressing->value("message", "")),
             QString::fromStdString("ReplicaSet \"web-" + hash + "\" has successfully progressed."));

    // kubectl scale: the one active ReplicaSet takes the new size.
    QVERIFY(client_->patch(kDeployments, ns, "web", client::PatchType::kMerge, R"({"spec":{"replicas":5}})").ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "web") && activePods(ns).size() == 5; }));
    QVERIFY(eventually([&] {
      return hasEvent(ns, "ScalingReplicaSet", "Scaled up replica set web-" + hash + " to 5 from 3");
    }));
    QCOMPARE(replicaSetsOf(ns, get(kDeployments, ns, "web")).size(), size_t(1));
  }

  void rollingUpdateWithMaxUnavailableZeroKeepsDesiredReady() {
    const std::string ns = "deploy-rolling";
    createNamespace(ns);
    json strategy = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}};
    QVERIFY(client_->create(kDeployments, ns, deploymentObject("api", 4, strategy)).ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "api"); }));

    std::mutex mu;
    int minReady = INT_MAX;
    int maxPods = 0;
    PodWatch watch(*client_, ns, [&](const std::map<std::string, json>& pods) {
      int ready = 0, active = 0;
      for (const auto& [name, p] : pods) {
        if (!isActive(p)) continue;
        active++;
        if (isReady(p)) ready++;
      }
      std::lock_guard lock(mu);
      minReady = std::min(minReady, ready);
      maxPods = std::max(maxPods, active);
    });
    QVERIFY(watch.started());
    setImage(ns, "api", "nginx:2");
    QVERIFY(eventually([&] {
      if (!rolledOut(ns, "api")) return false;
      for (const auto& p : activePods(ns))
        if (p["spec"]["containers"][0]["image"] != "nginx:2") return false;
      return activePods(ns).size() == 4;
    }, std::chrono::seconds(30)));
    QVERIFY(watch.events() > 8);  // the watch saw the rollout happen
    {
      std::lock_guard lock(mu);
      QVERIFY2(minReady >= 4, ("ready pods dropped to " + std::to_string(minReady)).c_str());
      QVERIFY2(maxPods <= 5, ("more than replicas+maxSurge pods: " + std::to_string(maxPods)).c_str());
    }
    json d = get(kDeployments, ns, "api");
    auto rss = replicaSetsOf(ns, d);
    QCOMPARE(rss.size(), size_t(2));
    for (const auto& rs : rss) {
      bool isNew = rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2";
      QCOMPARE(rs["spec"].value("replicas", -1), isNew ? 4 : 0);
      QCOMPARE(QString::fromStdString(rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "")),
               QString(isNew ? "2" : "1"));
    }
    QCOMPARE(QString::fromStdString(d["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "")), QString("2"));
  }

  void recreateScalesOldToZeroFirst() {
    const std::string ns = "deploy-recreate";
    createNamespace(ns);
    QVERIFY(client_->create(kDeployments, ns, deploymentObject("db", 2, {{"type", "Recreate"}})).ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "db"); }));
    std::string oldRS = replicaSetsOf(ns, get(kDeployments, ns, "db"))[0]["metadata"]["uid"];

    std::mutex mu;
    bool overlap = false;
    PodWatch watch(*client_, ns, [&](const std::map<std::string, json>& pods) {
      bool oldSeen = false, newSeen = false;
      for (const auto& [name, p] : pods) {
        if (controllerUid(p) == oldRS) oldSeen = true;
        else newSeen = true;
      }
      std::lock_guard lock(mu);
      if (oldSeen && newSeen) overlap = true;
    });
    QVERIFY(watch.started());
    setImage(ns, "db", "postgres:2");
    QVERIFY(eventually([&] {
      if (!rolledOut(ns, "db")) return false;
      auto pods = activePods(ns);
      return pods.size() == 2 && pods[0]["spec"]["containers"][0]["image"] == "postgres:2" &&
             pods[1]["spec"]["containers"][0]["image"] == "postgres:2";
    }, std::chrono::seconds(30)));
    {
      std::lock_guard lock(mu);
      QVERIFY2(!overlap, "a new pod existed while an old one did");
    }
    json d = get(kDeployments, ns, "db");
    std::string oldName, newName;
    for (const auto& rs : replicaSetsOf(ns, d))
      (rs["metadata"]["uid"] == oldRS ? oldName : newName) = rs["metadata"]["name"];
    QVERIFY(hasEvent(ns, "ScalingReplicaSet", "Scaled down replica set " + oldName + " to 0 from 2"));
    QVERIFY(hasEvent(ns, "ScalingReplicaSet", "Scaled up replica set " + newName + " from 0 to 2"));
  }

  void rollbackReusesOldReplicaSet() {
    const std::string ns = "deploy-rollback";
    createNamespace(ns);
    QVERIFY(client_->create(kDeployments, ns, deploymentObject("app", 2, kRolling, "app:1")).ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "app"); }));
    json first = replicaSetsOf(ns, get(kDeployments, ns, "app"))[0];
    setImage(ns, "app", "app:2");
    QVERIFY(eventually([&] {
      return rolledOut(ns, "app") && replicaSetsOf(ns, get(kDeployments, ns, "app")).size() == 2;
    }, std::chrono::seconds(30)));
    // kubectl rollout undo: the template of revision 1 goes back into the deployment.
    setImage(ns, "app", "app:1");
    QVERIFY(eventually([&] {
      json d = get(kDeployments, ns, "app");
      if (!rolledOut(ns, "app")) return false;
      json rs = get(kReplicaSets, ns, first["metadata"]["name"]);
      return rs["spec"].value("replicas", 0) == 2 &&
             d["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "") == "3";
    }, std::chrono::seconds(30)));
    json d = get(kDeployments, ns, "app");
    auto rss = replicaSetsOf(ns, d);
    QCOMPARE(rss.size(), size_t(2));  // no third ReplicaSet
    json rs = get(kReplicaSets, ns, first["metadata"]["name"]);
    QCOMPARE(rs["metadata"]["uid"], first["metadata"]["uid"]);
    QCOMPARE(QString::fromStdString(rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "")), QString("3"));
    QCOMPARE(QString::fromStdString(rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision-history", "")), QString("1"));
  }

  void pauseStopsRollout() {
    const std::string ns = "deploy-pause";
    createNamespace(ns);
    QVERIFY(client_->create(kDeployments, ns, deploymentObject("svc", 2, kRolling, "svc:1")).ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "svc"); }));
    QVERIFY(client_->patch(kDeployments, ns, "svc", client::PatchType::kMerge, R"({"spec":{"paused":true}})").ok());
    QVERIFY(eventually([&] { return hasCondition(get(kDeployments, ns, "svc"), "Progressing", "Unknown", "DeploymentPaused"); }));
    setImage(ns, "svc", "svc:2");
    QVERIFY(eventually([&] {
      json d = get(kDeployments, ns, "svc");
      return statusInt(d, "observedGeneration") == d["metadata"].value("generation", int64_t{0});
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    QCOMPARE(replicaSetsOf(ns, get(kDeployments, ns, "svc")).size(), size_t(1));
    for (const auto& p : activePods(ns)) QVERIFY(p["spec"]["containers"][0]["image"] == "svc:1");
    // Scaling still works while paused.
    QVERIFY(client_->patch(kDeployments, ns, "svc", client::PatchType::kMerge, R"({"spec":{"replicas":3}})").ok());
    QVERIFY(eventually([&] { return activePods(ns).size() == 3; }));
    QCOMPARE(replicaSetsOf(ns, get(kDeployments, ns, "svc")).size(), size_t(1));

    QVERIFY(client_->patch(kDeployments, ns, "svc", client::PatchType::kMerge, R"({"spec":{"paused":null}})").ok());
    QVERIFY(eventually([&] {
      if (!rolledOut(ns, "svc")) return false;
      auto pods = activePods(ns);
      if (pods.size() != 3) return false;
      for (const auto& p : pods)
        if (p["spec"]["containers"][0]["image"] != "svc:2") return false;
      return true;
    }, std::chrono::seconds(30)));
  }

  void progressDeadlineExceeded() {
    const std::string ns = "deploy-deadline";
    createNamespace(ns);
    json d = deploymentObject("stuck", 2, kRolling);
    d["spec"]["progressDeadlineSeconds"] = 1;
    d["spec"]["template"] = podTemplate("stuck", "broken", /*neverReady=*/true);
    QVERIFY(client_->create(kDeployments, ns, d).ok());
    QVERIFY(eventually([&] {
      return hasCondition(get(kDeployments, ns, "stuck"), "Progressing", "False", "ProgressDeadlineExceeded");
    }, std::chrono::seconds(20)));
    json got = get(kDeployments, ns, "stuck");
    QVERIFY(hasCondition(got, "Available", "False", "MinimumReplicasUnavailable"));
    QCOMPARE(statusInt(got, "unavailableReplicas"), int64_t(2));
    std::string rsName = replicaSetsOf(ns, got)[0]["metadata"]["name"];
    for (const auto& c : got["status"]["conditions"])
      if (c["type"] == "Progressing")
        QCOMPARE(QString::fromStdString(c.value("message", "")),
                 QString::fromStdString("ReplicaSet \"" + rsName + "\" has timed out progressing."));
  }

  void progressDeadlineFollowsInjectedClock() {
    const std::string ns = "deploy-clock";
    createNamespace(ns);
    json d = deploymentObject("slow", 1, kRolling);
    d["spec"]["progressDeadlineSeconds"] = 600;
    d["spec"]["template"] = podTemplate("slow", "broken", /*neverReady=*/true);
    QVERIFY(client_->create(kDeployments, ns, d).ok());
    QVERIFY(eventually([&] { return statusInt(get(kDeployments, ns, "slow"), "replicas") == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    QVERIFY(hasCondition(get(kDeployments, ns, "slow"), "Progressing", "True", ""));
    // Ten minutes later (on the controllers' clock), any resync sees the deadline passed.
    clockSkewSeconds_ = 700;
    QVERIFY(client_->patch(kDeployments, ns, "slow", client::PatchType::kMerge,
                           R"({"metadata":{"annotations":{"poke":"1"}}})").ok());
    bool timedOut = eventually([&] {
      return hasCondition(get(kDeployments, ns, "slow"), "Progressing", "False", "ProgressDeadlineExceeded");
    });
    clockSkewSeconds_ = 0;
    QVERIFY(timedOut);
  }

  void statefulSetOrderedCreationAndScaleDown() {
    const std::string ns = "sts-ordered";
    createNamespace(ns);
    std::mutex mu;
    std::vector<std::string> violations;
    std::set<std::string> seen;
    PodWatch watch(*client_, ns, [&](const std::map<std::string, json>& pods) {
      std::lock_guard lock(mu);
      for (const auto& [name, p] : pods) {
        if (seen.count(name)) continue;
        seen.insert(name);
        int ord = std::stoi(name.substr(name.rfind('-') + 1));
        if (ord == 0) continue;
        auto prev = pods.find("web-" + std::to_string(ord - 1));
        if (prev == pods.end() || !isReady(prev->second)) violations.push_back(name + " created before its predecessor was ready");
      }
      // Scale-down goes from the highest ordinal.
      for (int ord = 0; ord < 2; ++ord)
        if (!pods.count("web-" + std::to_string(ord)) && pods.count("web-" + std::to_string(ord + 1)) && seen.count("web-" + std::to_string(ord)))
          violations.push_back("web-" + std::to_string(ord) + " gone while a higher ordinal exists");
    });
    QVERIFY(watch.started());
    json set = statefulSetObject("web", 3, {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}});
    set["spec"]["volumeClaimTemplates"] = json::array({{{"metadata", {{"name", "data"}}},
                                                        {"spec", {{"accessModes", json::array({"ReadWriteOnce"})},
                                                                  {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}});
    auto created = client_->create(kStatefulSets, ns, set);
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    QVERIFY(eventually([&] {
      json s = get(kStatefulSets, ns, "web");
      return statusInt(s, "readyReplicas") == 3 && statusInt(s, "replicas") == 3 &&
             s["status"].value("currentRevision", "") == s["status"].value("updateRevision", "x");
    }, std::chrono::seconds(30)));
    json s = get(kStatefulSets, ns, "web");
    std::string revision = s["status"]["currentRevision"];
    QVERIFY(revision.rfind("web-", 0) == 0);
    for (int i = 0; i < 3; ++i) {
      std::string podName = "web-" + std::to_string(i);
      json p = get(kPods, ns, podName);
      QVERIFY(!p.is_null());
      QCOMPARE(QString::fromStdString(p["spec"].value("hostname", "")), QString::fromStdString(podName));
      QCOMPARE(QString::fromStdString(p["spec"].value("subdomain", "")), QString("web-svc"));
      QCOMPARE(QString::fromStdString(p["metadata"]["labels"].value("statefulset.kubernetes.io/pod-name", "")), QString::fromStdString(podName));
      QCOMPARE(QString::fromStdString(p["metadata"]["labels"].value("apps.kubernetes.io/pod-index", "")), QString::number(i));
      QCOMPARE(QString::fromStdString(p["metadata"]["labels"].value("controller-revision-hash", "")), QString::fromStdString(revision));
      QVERIFY(!get(kClaims, ns, "data-" + podName).is_null());
      bool mounted = false;
      for (const auto& v : p["spec"].value("volumes", json::array()))
        if (v.value("name", "") == "data" && v["persistentVolumeClaim"].value("claimName", "") == "data-" + podName) mounted = true;
      QVERIFY(mounted);
    }
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful"); }));
    QVERIFY(hasEvent(ns, "SuccessfulCreate", "create Claim data-web-0 Pod web-0 in StatefulSet web success"));

    QVERIFY(client_->patch(kStatefulSets, ns, "web", client::PatchType::kMerge, R"({"spec":{"replicas":1}})").ok());
    QVERIFY(eventually([&] { return list(kPods, ns).size() == 1 && statusInt(get(kStatefulSets, ns, "web"), "replicas") == 1; }));
    QVERIFY(!get(kPods, ns, "web-0").is_null());
    QVERIFY(!get(kClaims, ns, "data-web-2").is_null());  // whenScaled: Retain
    std::lock_guard lock(mu);
    QVERIFY2(violations.empty(), violations.empty() ? "" : violations[0].c_str());
  }

  void statefulSetParallelDoesNotWait() {
    const std::string ns = "sts-parallel";
    createNamespace(ns, /*kubelet=*/false);
    QVERIFY(client_->create(kStatefulSets, ns, statefulSetObject("par", 3, {{"type", "RollingUpdate"}}, "Parallel")).ok());
    QVERIFY(eventually([&] { return list(kPods, ns).size() == 3; }));
    QVERIFY(eventually([&] { return statusInt(get(kStatefulSets, ns, "par"), "replicas") == 3; }));
    QCOMPARE(statusInt(get(kStatefulSets, ns, "par"), "readyReplicas"), int64_t(0));
  }

  void statefulSetPartitionedRollingUpdate() {
    const std::string ns = "sts-rolling";
    createNamespace(ns);
    QVERIFY(client_->create(kStatefulSets, ns, statefulSetObject("db", 3, {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 2}}}})).ok());
    QVERIFY(eventually([&] { return statusInt(get(kStatefulSets, ns, "db"), "readyReplicas") == 3; }, std::chrono::seconds(30)));
    std::string firstRevision = get(kStatefulSets, ns, "db")["status"]["currentRevision"];
    auto image = [&](int i) {
      json p = get(kPods, ns, "db-" + std::to_string(i));
      return p.is_null() ? std::string() : p["spec"]["containers"][0].value("image", "");
    };
    QVERIFY(client_->patch(kStatefulSets, ns, "db", client::PatchType::kStrategicMerge,
                           R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"img:2"}]}}}})").ok());
    QVERIFY(eventually([&] {
      json s = get(kStatefulSets, ns, "db");
      return image(2) == "img:2" && statusInt(s, "readyReplicas") == 3 && statusInt(s, "updatedReplicas") == 1;
    }, std::chrono::seconds(30)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    QCOMPARE(QString::fromStdString(image(0)), QString("img:1"));  // below the partition
    QCOMPARE(QString::fromStdString(image(1)), QString("img:1"));
    json s = get(kStatefulSets, ns, "db");
    QCOMPARE(QString::fromStdString(s["status"].value("currentRevision", "")), QString::fromStdString(firstRevision));
    QVERIFY(s["status"].value("updateRevision", "") != firstRevision);

    QVERIFY(client_->patch(kStatefulSets, ns, "db", client::PatchType::kMerge,
                           R"({"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}})").ok());
    QVERIFY(eventually([&] {
      json st = get(kStatefulSets, ns, "db");
      return image(0) == "img:2" && image(1) == "img:2" && statusInt(st, "readyReplicas") == 3 &&
             st["status"].value("currentRevision", "") == st["status"].value("updateRevision", "x");
    }, std::chrono::seconds(30)));
    std::vector<int64_t> numbers;
    for (const auto& r : list(kRevisions, ns)) numbers.push_back(r.value("revision", int64_t{0}));
    std::sort(numbers.begin(), numbers.end());
    QCOMPARE(numbers, (std::vector<int64_t>{1, 2}));
    // Rolled from the top down.
    auto deletes = eventMessages(ns, "SuccessfulDelete");
    QVERIFY(deletes.size() >= 3);
  }

  // kubectl's rollout commands read what these controllers write.
  void kubectlRollout() {
    QString kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    if (!QFileInfo::exists(kubectl)) QSKIP("kubectl 1.32 is not installed");
    const std::string ns = "kubectl-rollout";
    createNamespace(ns);
    auto run = [&](QStringList args, QString* out = nullptr) {
      QProcess p;
      args << "--kubeconfig" << QString::fromStdString(server_->kubeconfigPath()) << "-n" << QString::fromStdString(ns);
      p.start(kubectl, args);
      p.waitForFinished(60000);
      QString text = QString::fromUtf8(p.readAllStandardOutput()) + QString::fromUtf8(p.readAllStandardError());
      if (out) *out = text;
      if (p.exitCode() != 0) qWarning("kubectl %s: %s", qPrintable(args.join(' ')), qPrintable(text));
      return p.exitCode();
    };
    QVERIFY(client_->create(kDeployments, ns, deploymentObject("kc", 2, kRolling, "img:1")).ok());
    QString out;
    QCOMPARE(run({"rollout", "status", "deployment/kc", "--timeout=30s"}, &out), 0);
    QVERIFY2(out.contains("deployment \"kc\" successfully rolled out"), qPrintable(out));
    QCOMPARE(run({"wait", "--for=condition=Available", "deployment/kc", "--timeout=30s"}), 0);

    QCOMPARE(run({"set", "image", "deployment/kc", "c=img:2"}), 0);
    QCOMPARE(run({"rollout", "status", "deployment/kc", "--timeout=30s"}), 0);
    QCOMPARE(run({"rollout", "history", "deployment/kc"}, &out), 0);
    QVERIFY2(out.contains(QRegularExpression("\\n1 ")) && out.contains(QRegularExpression("\\n2 ")), qPrintable(out));

    QCOMPARE(run({"rollout", "undo", "deployment/kc"}, &out), 0);
    QVERIFY2(out.contains("rolled back"), qPrintable(out));
    QCOMPARE(run({"rollout", "status", "deployment/kc", "--timeout=30s"}), 0);
    QVERIFY(eventually([&] {
      json d = get(kDeployments, ns, "kc");
      return d["spec"]["template"]["spec"]["containers"][0].value("image", "") == "img:1" &&
             d["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "") == "3" && rolledOut(ns, "kc");
    }));
    QCOMPARE(replicaSetsOf(ns, get(kDeployments, ns, "kc")).size(), size_t(2));

    QCOMPARE(run({"rollout", "restart", "deployment/kc"}), 0);
    QCOMPARE(run({"rollout", "status", "deployment/kc", "--timeout=30s"}), 0);
    QCOMPARE(replicaSetsOf(ns, get(kDeployments, ns, "kc")).size(), size_t(3));

    QCOMPARE(run({"rollout", "pause", "deployment/kc"}), 0);
    QCOMPARE(run({"scale", "deployment/kc", "--replicas=4"}), 0);
    QVERIFY(eventually([&] { return activePods(ns).size() == 4; }));
    QCOMPARE(run({"rollout", "resume", "deployment/kc"}), 0);
    QCOMPARE(run({"rollout", "status", "deployment/kc", "--timeout=30s"}), 0);

    json set = statefulSetObject("kcs", 2, {{"type", "RollingUpdate"}});
    QVERIFY(client_->create(kStatefulSets, ns, set).ok());
    QCOMPARE(run({"rollout", "status", "statefulset/kcs", "--timeout=30s"}, &out), 0);
    QVERIFY2(out.contains("partitioned roll out complete") || out.contains("rolling update complete"), qPrintable(out));
  }

  // Not a benchmark (tests/bench is), but a guard: a thousand pods are created in batches
  // without waiting on anything but the API.
  void thousandReplicas() {
    const std::string ns = "rs-thousand";
    createNamespace(ns, /*kubelet=*/false);
    json rs = replicaSetManifest("many", 1000);
    auto start = std::chrono::steady_clock::now();
    QVERIFY(client_->create(kReplicaSets, ns, rs).ok());
    QVERIFY(eventually([&] { return statusInt(get(kReplicaSets, ns, "many"), "replicas") == 1000; }, std::chrono::seconds(60)));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    qInfo("1000 pods created and counted in %lld ms", static_cast<long long>(ms));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    QCOMPARE(list(kPods, ns).size(), size_t(1000));  // no double creation
  }

  void revisionHistoryLimitCleansUp() {
    const std::string ns = "deploy-history";
    createNamespace(ns);
    json d = deploymentObject("hist", 1, kRolling, "v:1");
    d["spec"]["revisionHistoryLimit"] = 1;
    QVERIFY(client_->create(kDeployments, ns, d).ok());
    QVERIFY(eventually([&] { return rolledOut(ns, "hist"); }));
    for (int v = 2; v <= 4; ++v) {
      setImage(ns, "hist", "v:" + std::to_string(v));
      QVERIFY(eventually([&] {
        json cur = get(kDeployments, ns, "hist");
        return rolledOut(ns, "hist") &&
               cur["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "") == std::to_string(v);
      }, std::chrono::seconds(30)));
    }
    // The new one and one old one (the latest before it) remain.
    QVERIFY(eventually([&] { return replicaSetsOf(ns, get(kDeployments, ns, "hist")).size() == 2; }));
    std::set<std::string> revisions;
    for (const auto& rs : replicaSetsOf(ns, get(kDeployments, ns, "hist")))
      revisions.insert(rs["metadata"]["annotations"].value("deployment.kubernetes.io/revision", ""));
    QCOMPARE(revisions, (std::set<std::string>{"3", "4"}));
  }
};

QTEST_APPLESS_MAIN(AppsControllersTest)
#include "apps_controllers_test.moc"
