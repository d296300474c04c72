// The garbage collector, namespace and serviceaccount controllers against a real API server:
// what a user sees through the API after a delete or a new namespace.

#include <fstream>
#include <sstream>

#include <QTemporaryDir>
#include <QtTest>

#include "engine/api/object.h"
#include "engine/cluster/in_process.h"
#include "engine/controllers/controller.h"
#include "engine/controllers/garbage_collector.h"
#include "engine/controllers/namespace_controller.h"
#include "engine/controllers/serviceaccount.h"
#include "tests/controllers/controller_test_util.h"

using namespace orrery;
using nlohmann::json;
using orrery::testing::eventually;
using orrery::testing::getOrNull;
using orrery::testing::gone;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const api::GroupVersionResource kSecrets{"", "v1", "secrets"};
const api::GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const api::GroupVersionResource kReplicaSets{"apps", "v1", "replicasets"};
const api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};
const api::GroupVersionResource kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
const api::GroupVersionResource kWidgets{"example.com", "v1", "widgets"};

json podTemplate(const std::string& app) {
  return {{"metadata", {{"labels", {{"app", app}}}}},
          {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
}

json replicaSet(const std::string& name, const json& ownerRefs = json::array()) {
  json rs = {{"apiVersion", "apps/v1"},
             {"kind", "ReplicaSet"},
             {"metadata", {{"name", name}}},
             {"spec", {{"replicas", 0}, {"selector", {{"matchLabels", {{"app", name}}}}}, {"template", podTemplate(name)}}}};
  if (!ownerRefs.empty()) rs["metadata"]["ownerReferences"] = ownerRefs;
  return rs;
}

json ownerRef(const json& owner, bool block = true) {
  return {{"apiVersion", owner.value("apiVersion", "")},
          {"kind", owner.value("kind", "")},
          {"name", api::metaString(owner, "name")},
          {"uid", api::metaString(owner, "uid")},
          {"controller", true},
          {"blockOwnerDeletion", block}};
}

json pod(const std::string& name, const json& ownerRefs, const json& finalizers = json::array()) {
  json p = {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}, {"ownerReferences", ownerRefs}}},
            {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
  if (!finalizers.empty()) p["metadata"]["finalizers"] = finalizers;
  return p;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

class ControllerCoreTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> server_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<controllers::ControllerManager> manager_;
  std::string caPem_;

  void createNamespace(const std::string& name) {
    auto r = client_->create(kNamespaces, "", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

  json create(const api::GroupVersionResource& gvr, const std::string& ns, const json& object) {
    auto r = client_->create(gvr, ns, object);
    if (!r.ok()) qWarning("create failed: %s", r.status().message().c_str());
    return r.ok() ? *r : json(nullptr);
  }

  void releaseFinalizers(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name) {
    auto r = client_->patch(gvr, ns, name, client::PatchType::kMerge, R"({"metadata":{"finalizers":null}})");
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto server = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(server.ok(), server.ok() ? "" : server.status().message().c_str());
    server_ = std::move(*server);
    client_ = server_->adminClient("controller-core-test");
    caPem_ = readFile(dir_.path().toStdString() + "/pki/ca.crt");
    QVERIFY(caPem_.find("BEGIN CERTIFICATE") != std::string::npos);

    informers_ = std::make_unique<client::InformerFactory>(server_->adminClient("kube-controller-manager"));
    controllers::ControllerContext context;
    context.client = informers_->client();
    context.informers = informers_.get();
    context.rootCaPem = caPem_;
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    manager_->add(std::make_unique<controllers::GarbageCollector>());
    manager_->add(std::make_unique<controllers::NamespaceController>());
    manager_->add(std::make_unique<controllers::ServiceAccountController>());
    manager_->add(std::make_unique<controllers::RootCaCertPublisher>());
    auto st = manager_->start(std::chrono::seconds(20));
    QVERIFY2(st.isOk(), st.message().c_str());
    QVERIFY(manager_->find("garbagecollector") != nullptr);
  }

  void cleanupTestCase() {
    if (manager_) manager_->stop();
    if (informers_) informers_->stop();
    manager_.reset();
    informers_.reset();
    server_.reset();
  }

  void newNamespaceGetsDefaultServiceAccountAndRootCa() {
    createNamespace("sa-test");
    QVERIFY(eventually([&] { return !getOrNull(*client_, kServiceAccounts, "sa-test", "default").is_null(); }));
    QVERIFY(eventually([&] { return !getOrNull(*client_, kConfigMaps, "sa-test", "kube-root-ca.crt").is_null(); }));
    json cm = getOrNull(*client_, kConfigMaps, "sa-test", "kube-root-ca.crt");
    QCOMPARE(QString::fromStdString(cm["data"].value("ca.crt", "")), QString::fromStdString(caPem_));
    QVERIFY(cm["metadata"]["annotations"].value("kubernetes.io/description", "").find("kube-apiserver") != std::string::npos);
    // Namespaces that existed before the controllers started have theirs too.
    QVERIFY(eventually([&] { return !getOrNull(*client_, kServiceAccounts, "default", "default").is_null(); }));

    // A deleted default ServiceAccount comes back (a new one).
    json sa = getOrNull(*client_, kServiceAccounts, "sa-test", "default");
    std::string oldUid = api::metaString(sa, "uid");
    QVERIFY(client_->remove(kServiceAccounts, "sa-test", "default").ok());
    QVERIFY(eventually([&] {
      json again = getOrNull(*client_, kServiceAccounts, "sa-test", "default");
      return !again.is_null() && api::metaString(again, "uid") != oldUid;
    }));
    // An edited kube-root-ca.crt is put back.
    cm["data"]["ca.crt"] = "tampered";
    QVERIFY(client_->update(kConfigMaps, "sa-test", cm).ok());
    QVERIFY(eventually([&] {
      return getOrNull(*client_, kConfigMaps, "sa-test", "kube-root-ca.crt")["data"].value("ca.crt", "") == caPem_;
    }));
  }

  void backgroundCascadeDeletesReplicaSetPods() {
    createNamespace("gc-bg");
    json rs = create(kReplicaSets, "gc-bg", replicaSet("web"));
    QVERIFY(!rs.is_null());
    for (const char* name : {"web-a", "web-b", "web-c"}) {
      QVERIFY(!create(kPods, "gc-bg", pod(name, json::array({ownerRef(rs)}))).is_null());
    }
    // An unrelated pod stays.
    QVERIFY(!create(kPods, "gc-bg", pod("bystander", json::array())).is_null());
    QVERIFY(client_->remove(kReplicaSets, "gc-bg", "web").ok());
    QVERIFY(eventually([&] {
      return gone(*client_, kPods, "gc-bg", "web-a") && gone(*client_, kPods, "gc-bg", "web-b") &&
             gone(*client_, kPods, "gc-bg", "web-c");
    }));
    QVERIFY(!getOrNull(*client_, kPods, "gc-bg", "bystander").is_null());
  }

  void foregroundWaitsForDependents() {
    createNamespace("gc-fg");
    json rs = create(kReplicaSets, "gc-fg", replicaSet("web"));
    QVERIFY(!rs.is_null());
    // The pod is held by a finalizer of its own, so the owner has to wait for it.
    QVERIFY(!create(kPods, "gc-fg", pod("web-held", json::array({ownerRef(rs)}), json::array({"example.com/hold"}))).is_null());
    QVERIFY(!create(kPods, "gc-fg", pod("web-free", json::array({ownerRef(rs)}))).is_null());
    client::DeleteOptions foreground;
    foreground.propagationPolicy = "Foreground";
    QVERIFY(client_->remove(kReplicaSets, "gc-fg", "web", foreground).ok());

    // The dependents are being deleted...
    QVERIFY(eventually([&] {
      json held = getOrNull(*client_, kPods, "gc-fg", "web-held");
      return !held.is_null() && held["metadata"].contains("deletionTimestamp");
    }));
    QVERIFY(eventually([&] { return gone(*client_, kPods, "gc-fg", "web-free"); }));
    // ...while the owner stays, visibly deleting, with the foregroundDeletion finalizer.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    json owner = getOrNull(*client_, kReplicaSets, "gc-fg", "web");
    QVERIFY(!owner.is_null());
    QVERIFY(owner["metadata"].contains("deletionTimestamp"));
    QCOMPARE(owner["metadata"]["finalizers"], json::array({"foregroundDeletion"}));

    releaseFinalizers(kPods, "gc-fg", "web-held");
    QVERIFY(eventually([&] { return gone(*client_, kPods, "gc-fg", "web-held"); }));
    QVERIFY(eventually([&] { return gone(*client_, kReplicaSets, "gc-fg", "web"); }));
  }

  void foregroundPropagatesThroughOwnersThatAreDependents() {
    createNamespace("gc-chain");
    json deploy = create(kDeployments, "gc-chain",
                         {{"apiVersion", "apps/v1"},
                          {"kind", "Deployment"},
                          {"metadata", {{"name", "app"}}},
                          {"spec", {{"replicas", 0}, {"selector", {{"matchLabels", {{"app", "app"}}}}}, {"template", podTemplate("app")}}}});
    QVERIFY(!deploy.is_null());
    json rs = create(kReplicaSets, "gc-chain", replicaSet("app-1", json::array({ownerRef(deploy)})));
    QVERIFY(!rs.is_null());
    QVERIFY(!create(kPods, "gc-chain", pod("app-1-x", json::array({ownerRef(rs)}), json::array({"example.com/hold"}))).is_null());

    client::DeleteOptions foreground;
    foreground.propagationPolicy = "Foreground";
    QVERIFY(client_->remove(kDeployments, "gc-chain", "app", foreground).ok());
    // The ReplicaSet, itself an owner, is deleted in the foreground too: it waits for its pod.
    QVERIFY(eventually([&] {
      json r = getOrNull(*client_, kReplicaSets, "gc-chain", "app-1");
      return !r.is_null() && r["metadata"].contains("deletionTimestamp") &&
             r["metadata"].value("finalizers", json::array()) == json::array({"foregroundDeletion"});
    }));
    QVERIFY(eventually([&] {
      json p = getOrNull(*client_, kPods, "gc-chain", "app-1-x");
      return !p.is_null() && p["metadata"].contains("deletionTimestamp");
    }));
    QVERIFY(!getOrNull(*client_, kDeployments, "gc-chain", "app").is_null());

    releaseFinalizers(kPods, "gc-chain", "app-1-x");
    QVERIFY(eventually([&] {
      return gone(*client_, kPods, "gc-chain", "app-1-x") && gone(*client_, kReplicaSets, "gc-chain", "app-1") &&
             gone(*client_, kDeployments, "gc-chain", "app");
    }));
  }

  void orphanLeavesPodsWithoutOwnerReferences() {
    createNamespace("gc-orphan");
    json rs = create(kReplicaSets, "gc-orphan", replicaSet("web"));
    QVERIFY(!rs.is_null());
    json other = create(kConfigMaps, "gc-orphan", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "other-owner"}}}});
    QVERIFY(!other.is_null());
    json otherRef = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "other-owner"}, {"uid", api::metaString(other, "uid")}};
    json a = create(kPods, "gc-orphan", pod("web-a", json::array({ownerRef(rs)})));
    json b = create(kPods, "gc-orphan", pod("web-b", json::array({ownerRef(rs), otherRef})));
    QVERIFY(!a.is_null());
    QVERIFY(!b.is_null());
    // Orphaning acts on the dependents the collector has seen (as kube's does).
    auto* gc = dynamic_cast<controllers::GarbageCollector*>(manager_->find("garbagecollector"));
    QVERIFY(gc);
    QVERIFY(eventually([&] { return gc->observed(api::metaString(a, "uid")) && gc->observed(api::metaString(b, "uid")); }));
    client::DeleteOptions orphan;
    orphan.propagationPolicy = "Orphan";
    QVERIFY(client_->remove(kReplicaSets, "gc-orphan", "web", orphan).ok());
    QVERIFY(eventually([&] { return gone(*client_, kReplicaSets, "gc-orphan", "web"); }));
    a = getOrNull(*client_, kPods, "gc-orphan", "web-a");
    b = getOrNull(*client_, kPods, "gc-orphan", "web-b");
    QVERIFY(!a.is_null());
    QVERIFY(!b.is_null());
    QVERIFY(a["metadata"].value("ownerReferences", json::array()).empty());
    // Only the reference to the deleted owner goes.
    QCOMPARE(b["metadata"]["ownerReferences"].size(), size_t(1));
    QCOMPARE(b["metadata"]["ownerReferences"][0].value("name", ""), std::string("other-owner"));
    // And they stay: nothing collects them later.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    QVERIFY(!getOrNull(*client_, kPods, "gc-orphan", "web-a").is_null());
  }

  void dependentOfMissingOwnerIsCollected() {
    createNamespace("gc-dangling");
    json owner = create(kConfigMaps, "gc-dangling", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "owner"}}}});
    QVERIFY(!owner.is_null());
    auto secret = [](const std::string& name, const json& refs) {
      return json{{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", name}, {"ownerReferences", refs}}},
                  {"stringData", {{"k", "v"}}}};
    };
    // Named owner exists, but with another uid: the owner it meant is gone.
    json wrongUid = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "owner"}, {"uid", api::newUid()}};
    json noSuchOwner = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "never-was"}, {"uid", api::newUid()}};
    json realOwner = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "owner"}, {"uid", api::metaString(owner, "uid")}};
    QVERIFY(!create(kSecrets, "gc-dangling", secret("stale-uid", json::array({wrongUid}))).is_null());
    QVERIFY(!create(kSecrets, "gc-dangling", secret("no-owner", json::array({noSuchOwner}))).is_null());
    QVERIFY(!create(kSecrets, "gc-dangling", secret("owned", json::array({realOwner}))).is_null());
    // One live owner keeps it; the reference to the missing one is dropped.
    QVERIFY(!create(kSecrets, "gc-dangling", secret("half", json::array({realOwner, noSuchOwner}))).is_null());

    QVERIFY(eventually([&] {
      return gone(*client_, kSecrets, "gc-dangling", "stale-uid") && gone(*client_, kSecrets, "gc-dangling", "no-owner");
    }));
    QVERIFY(eventually([&] {
      json half = getOrNull(*client_, kSecrets, "gc-dangling", "half");
      return !half.is_null() && half["metadata"].value("ownerReferences", json::array()).size() == 1;
    }));
    QVERIFY(!getOrNull(*client_, kSecrets, "gc-dangling", "owned").is_null());
  }

  void removedNodeTakesItsLease() {
    const api::GroupVersionResource nodes{"", "v1", "nodes"};
    const api::GroupVersionResource leases{"coordination.k8s.io", "v1", "leases"};
    json node = create(nodes, "", {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "sim-1"}}}});
    QVERIFY(!node.is_null());
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", "sim-1"}, {"ownerReferences", {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "sim-1"}, {"uid", api::metaString(node, "uid")}}}}}},
                  {"spec", {{"holderIdentity", "sim-1"}, {"leaseDurationSeconds", 40}}}};
    QVERIFY(!create(leases, "kube-node-lease", lease).is_null());
    // A cluster-scoped owner of a namespaced dependent.
    QVERIFY(client_->remove(nodes, "", "sim-1").ok());
    QVERIFY(eventually([&] { return gone(*client_, leases, "kube-node-lease", "sim-1"); }));
  }

  void deletedNamespaceTakesAllItsObjects() {
    // A custom resource type, served live.
    json crd = {{"apiVersion", "apiextensions.k8s.io/v1"},
                {"kind", "CustomResourceDefinition"},
                {"metadata", {{"name", "widgets.example.com"}}},
                {"spec",
                 {{"group", "example.com"},
                  {"scope", "Namespaced"},
                  {"names", {{"plural", "widgets"}, {"singular", "widget"}, {"kind", "Widget"}}},
                  {"versions", json::array({{{"name", "v1"}, {"served", true}, {"storage", true},
                                             {"schema", {{"openAPIV3Schema", {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}}}})}}}};
    QVERIFY(!create(kCrds, "", crd).is_null());

    createNamespace("doomed");
    QVERIFY(eventually([&] {
      return client_->create(kWidgets, "doomed",
                             {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "gizmo"}}}, {"spec", {{"size", 3}}}})
          .ok();
    }));
    QVERIFY(!create(kConfigMaps, "doomed", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "settings"}}}, {"data", {{"a", "b"}}}}).is_null());
    QVERIFY(!create(kSecrets, "doomed", {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "token"}}}, {"stringData", {{"a", "b"}}}}).is_null());
    QVERIFY(!create(kPods, "doomed", pod("lonely", json::array())).is_null());
    QVERIFY(!create(kDeployments, "doomed",
                    {{"apiVersion", "apps/v1"},
                     {"kind", "Deployment"},
                     {"metadata", {{"name", "web"}}},
                     {"spec", {{"replicas", 1}, {"selector", {{"matchLabels", {{"app", "web"}}}}}, {"template", podTemplate("web")}}}})
                 .is_null());
    // One object held by a finalizer keeps the namespace Terminating until it is released.
    QVERIFY(!create(kConfigMaps, "doomed",
                    {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "held"}, {"finalizers", {"example.com/hold"}}}}})
                 .is_null());

    QVERIFY(client_->remove(kNamespaces, "", "doomed").ok());
    json ns = getOrNull(*client_, kNamespaces, "", "doomed");
    QVERIFY(!ns.is_null());
    QCOMPARE(ns["status"].value("phase", ""), std::string("Terminating"));

    // Everything without a finalizer goes; the controller says what remains and why.
    QVERIFY(eventually([&] {
      return gone(*client_, kConfigMaps, "doomed", "settings") && gone(*client_, kSecrets, "doomed", "token") &&
             gone(*client_, kPods, "doomed", "lonely") && gone(*client_, kDeployments, "doomed", "web") &&
             gone(*client_, kWidgets, "doomed", "gizmo");
    }));
    auto condition = [&](const json& n, const std::string& type) {
      for (const auto& c : n["status"].value("conditions", json::array())) {
        if (c.value("type", "") == type) return c;
      }
      return json(nullptr);
    };
    QVERIFY(eventually([&] {
      json n = getOrNull(*client_, kNamespaces, "", "doomed");
      json remaining = condition(n, "NamespaceContentRemaining");
      return !remaining.is_null() && remaining.value("status", "") == "True";
    }));
    ns = getOrNull(*client_, kNamespaces, "", "doomed");
    QCOMPARE(ns["status"].value("phase", ""), std::string("Terminating"));
    json remaining = condition(ns, "NamespaceContentRemaining");
    QCOMPARE(remaining.value("reason", ""), std::string("SomeResourcesRemain"));
    QCOMPARE(remaining.value("message", ""), std::string("Some resources are remaining: configmaps. has 1 resource instances"));
    json finalizers = condition(ns, "NamespaceFinalizersRemaining");
    QCOMPARE(finalizers.value("status", ""), std::string("True"));
    QCOMPARE(finalizers.value("reason", ""), std::string("SomeFinalizerRemain"));
    QCOMPARE(finalizers.value("message", ""), std::string("Some finalizers are remaining: example.com/hold in 1 resource instances"));
    QCOMPARE(condition(ns, "NamespaceDeletionDiscoveryFailure").value("status", ""), std::string("False"));
    QCOMPARE(condition(ns, "NamespaceDeletionContentFailure").value("reason", ""), std::string("ContentDeleted"));
    // Nothing new may be created in it meanwhile.
    auto refused = client_->create(kConfigMaps, "doomed", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "late"}}}});
    QVERIFY(!refused.ok());
    QCOMPARE(refused.status().code(), 403);

    releaseFinalizers(kConfigMaps, "doomed", "held");
    // kube re-checks after half its 15 s finalizer estimate.
    QVERIFY(eventually([&] { return gone(*client_, kNamespaces, "", "doomed"); }, std::chrono::seconds(30)));
  }

  // Runs after deletedNamespaceTakesAllItsObjects, which created the Widget CRD.
  void customResourcesOwnAndAreOwned() {
    createNamespace("gc-cr");
    json root = create(kConfigMaps, "gc-cr", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "root"}}}});
    QVERIFY(!root.is_null());
    json rootRef = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "root"}, {"uid", api::metaString(root, "uid")}};
    json parent = create(kWidgets, "gc-cr", {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "parent"}}}});
    QVERIFY(!parent.is_null());
    json child = create(kWidgets, "gc-cr",
                        {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "child"}, {"ownerReferences", {rootRef}}}}});
    QVERIFY(!child.is_null());
    json parentRef = {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"name", "parent"}, {"uid", api::metaString(parent, "uid")}};
    QVERIFY(!create(kConfigMaps, "gc-cr", {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "of-parent"}, {"ownerReferences", {parentRef}}}}}).is_null());

    // A custom resource as owner: its dependents go with it.
    QVERIFY(client_->remove(kWidgets, "gc-cr", "parent").ok());
    QVERIFY(eventually([&] { return gone(*client_, kConfigMaps, "gc-cr", "of-parent"); }, std::chrono::seconds(30)));
    // A custom resource as dependent: the collector watches custom resources it discovers.
    QVERIFY(client_->remove(kConfigMaps, "gc-cr", "root").ok());
    QVERIFY(eventually([&] { return gone(*client_, kWidgets, "gc-cr", "child"); }, std::chrono::seconds(30)));
  }
};

QTEST_APPLESS_MAIN(ControllerCoreTest)
#include "controller_core_test.moc"
