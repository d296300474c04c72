// The built-in resource registry: what discovery, routing and storage read from it must match
// what kube-apiserver 1.32 serves.

#include <QtTest>

#include <algorithm>
#include <set>
#include <thread>

#include "engine/api/resource.h"

using namespace orrery::api;

namespace {
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
const std::vector<std::string> kFull{"create", "delete", "deletecollection", "get",
                                     "list",   "patch",  "update",           "watch"};
}  // namespace

class ResourceRegistryTest : public QObject {
  Q_OBJECT

 private slots:
  void findsByGvr() {
    auto reg = ResourceRegistry::builtin();
    auto d = reg->find({"apps", "v1", "deployments"});
    QVERIFY(d != nullptr);
    QCOMPARE(d->kind, std::string("Deployment"));
    QCOMPARE(d->listKind, std::string("DeploymentList"));
    QCOMPARE(d->singular, std::string("deployment"));
    QCOMPARE(d->schemaName, std::string("io.k8s.api.apps.v1.Deployment"));
    QCOMPARE(d->storagePrefix, std::string("/registry/deployments/"));
    QCOMPARE(d->qualifiedResource(), std::string("deployments.apps"));
    QCOMPARE(d->apiVersion(), std::string("apps/v1"));
    QVERIFY(d->namespaced);
    QVERIFY(d->hasSubresource("scale"));
    QVERIFY(d->hasSubresource("status"));
    QVERIFY(!d->hasSubresource("eviction"));
    QCOMPARE(d->verbs, kFull);

    QVERIFY(reg->find({"apps", "v1", "pods"}) == nullptr);
    QVERIFY(reg->find({"", "v2", "pods"}) == nullptr);
    QVERIFY(reg->find({"extensions", "v1beta1", "deployments"}) == nullptr);
  }

  void findsByGvk() {
    auto reg = ResourceRegistry::builtin();
    auto pod = reg->findKind({"", "v1", "Pod"});
    QVERIFY(pod != nullptr);
    QCOMPARE(pod->resource, std::string("pods"));
    auto crd = reg->findKind({"apiextensions.k8s.io", "v1", "CustomResourceDefinition"});
    QVERIFY(crd != nullptr);
    QCOMPARE(crd->resource, std::string("customresourcedefinitions"));
    QVERIFY(!crd->namespaced);
    // Core and events.k8s.io Events are two resources sharing one storage.
    auto ev1 = reg->findKind({"", "v1", "Event"});
    auto ev2 = reg->findKind({"events.k8s.io", "v1", "Event"});
    QVERIFY(ev1 && ev2);
    QCOMPARE(ev1->schemaName, std::string("io.k8s.api.core.v1.Event"));
    QCOMPARE(ev2->schemaName, std::string("io.k8s.api.events.v1.Event"));
    QCOMPARE(ev1->storagePrefix, std::string("/registry/events/"));
    QCOMPARE(ev2->storagePrefix, ev1->storagePrefix);
    QVERIFY(reg->findKind({"apps", "v1", "Pod"}) == nullptr);
  }

  void storageLayoutIsKubeApiservers() {
    auto reg = ResourceRegistry::builtin();
    auto prefix = [&](const std::string& g, const std::string& r) {
      auto info = reg->find({g, "v1", r});
      return info ? info->storagePrefix : std::string("<missing>");
    };
    QCOMPARE(prefix("", "pods"), std::string("/registry/pods/"));
    QCOMPARE(prefix("", "services"), std::string("/registry/services/specs/"));
    QCOMPARE(prefix("", "endpoints"), std::string("/registry/services/endpoints/"));
    QCOMPARE(prefix("", "nodes"), std::string("/registry/minions/"));
    QCOMPARE(prefix("", "replicationcontrollers"), std::string("/registry/controllers/"));
    QCOMPARE(prefix("", "namespaces"), std::string("/registry/namespaces/"));
    QCOMPARE(prefix("apiextensions.k8s.io", "customresourcedefinitions"),
             std::string("/registry/apiextensions.k8s.io/customresourcedefinitions/"));
    QCOMPARE(prefix("coordination.k8s.io", "leases"), std::string("/registry/leases/"));
    QCOMPARE(prefix("discovery.k8s.io", "endpointslices"), std::string("/registry/endpointslices/"));
    QCOMPARE(prefix("rbac.authorization.k8s.io", "clusterrolebindings"),
             std::string("/registry/clusterrolebindings/"));
    QCOMPARE(prefix("scheduling.k8s.io", "priorityclasses"), std::string("/registry/priorityclasses/"));
    // Reviews are never stored.
    QCOMPARE(prefix("authorization.k8s.io", "selfsubjectaccessreviews"), std::string());
    // Two resources never share a prefix, except the two views of Event.
    std::map<std::string, std::string> owners;
    for (const auto& info : reg->all()) {
      if (info.storagePrefix.empty() || info.kind == "Event") continue;
      QVERIFY2(!owners.count(info.storagePrefix), info.storagePrefix.c_str());
      owners[info.storagePrefix] = info.resource;
    }
  }

  void shortNamesAndCategories() {
    auto reg = ResourceRegistry::builtin();
    std::map<std::string, std::string> byShort;
    for (const auto& info : reg->all())
      for (const auto& s : info.shortNames) byShort[s + "@" + info.group] = info.resource;
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"po@", "pods"},           {"svc@", "services"},
        {"cm@", "configmaps"},     {"ns@", "namespaces"},
        {"no@", "nodes"},          {"ep@", "endpoints"},
        {"ev@", "events"},         {"ev@events.k8s.io", "events"},
        {"sa@", "serviceaccounts"}, {"pv@", "persistentvolumes"},
        {"pvc@", "persistentvolumeclaims"}, {"quota@", "resourcequotas"},
        {"limits@", "limitranges"}, {"rc@", "replicationcontrollers"},
        {"cs@", "componentstatuses"}, {"deploy@apps", "deployments"},
        {"rs@apps", "replicasets"}, {"sts@apps", "statefulsets"},
        {"ds@apps", "daemonsets"}, {"cj@batch", "cronjobs"},
        {"pdb@policy", "poddisruptionbudgets"}, {"pc@scheduling.k8s.io", "priorityclasses"},
        {"crd@apiextensions.k8s.io", "customresourcedefinitions"},
        {"crds@apiextensions.k8s.io", "customresourcedefinitions"},
    };
    for (const auto& [s, r] : expected) {
      QVERIFY2(byShort.count(s), s.c_str());
      QCOMPARE(byShort[s], r);
    }
    QVERIFY(reg->find({"", "v1", "secrets"})->shortNames.empty());
    QVERIFY(reg->find({"batch", "v1", "jobs"})->shortNames.empty());

    // `kubectl get all` expands to exactly these.
    std::set<std::string> all;
    for (const auto& info : reg->all())
      if (contains(info.categories, "all")) all.insert(info.qualifiedResource());
    const std::set<std::string> expectedAll = {
        "pods", "services", "replicationcontrollers", "deployments.apps", "replicasets.apps",
        "statefulsets.apps", "daemonsets.apps", "jobs.batch", "cronjobs.batch"};
    QCOMPARE(all, expectedAll);
    QCOMPARE(reg->find({"apiextensions.k8s.io", "v1", "customresourcedefinitions"})->categories,
             std::vector<std::string>{"api-extensions"});
  }

  void verbsAsDiscoveryListsThem() {
    auto reg = ResourceRegistry::builtin();
    QCOMPARE(reg->find({"", "v1", "namespaces"})->verbs,
             (std::vector<std::string>{"create", "delete", "get", "list", "patch", "update", "watch"}));
    QCOMPARE(reg->find({"", "v1", "services"})->verbs, kFull);
    QCOMPARE(reg->find({"", "v1", "bindings"})->verbs, std::vector<std::string>{"create"});
    QCOMPARE(reg->find({"", "v1", "componentstatuses"})->verbs,
             (std::vector<std::string>{"get", "list"}));
    for (const char* r : {"selfsubjectaccessreviews", "selfsubjectrulesreviews",
                          "subjectaccessreviews", "localsubjectaccessreviews"}) {
      auto info = reg->find({"authorization.k8s.io", "v1", r});
      QVERIFY2(info != nullptr, r);
      QCOMPARE(info->verbs, std::vector<std::string>{"create"});
      QCOMPARE(info->namespaced, std::string(r) == "localsubjectaccessreviews");
    }
    for (const char* r : {"tokenreviews", "selfsubjectreviews"}) {
      auto info = reg->find({"authentication.k8s.io", "v1", r});
      QVERIFY2(info != nullptr, r);
      QCOMPARE(info->verbs, std::vector<std::string>{"create"});
      QVERIFY(!info->namespaced);
    }
    // Every verb list is sorted and has no duplicates, as discovery prints it.
    for (const auto& info : reg->all()) {
      QVERIFY2(!info.verbs.empty(), info.resource.c_str());
      QVERIFY2(std::is_sorted(info.verbs.begin(), info.verbs.end()), info.resource.c_str());
      QVERIFY(std::adjacent_find(info.verbs.begin(), info.verbs.end()) == info.verbs.end());
    }
    // Cluster-scoped ones.
    for (const char* r : {"namespaces", "nodes", "persistentvolumes", "componentstatuses"})
      QVERIFY2(!reg->find({"", "v1", r})->namespaced, r);
    QVERIFY(!reg->find({"rbac.authorization.k8s.io", "v1", "clusterroles"})->namespaced);
    QVERIFY(reg->find({"rbac.authorization.k8s.io", "v1", "roles"})->namespaced);
  }

  void subresources() {
    auto reg = ResourceRegistry::builtin();
    auto pods = *reg->find({"", "v1", "pods"});
    auto check = [&](const ResourceInfo& info, const std::string& sub, const std::string& group,
                     const std::string& kind, std::vector<std::string> verbs) {
      auto s = subresourceInfo(info, sub);
      QVERIFY2(s.has_value(), (info.resource + "/" + sub).c_str());
      QCOMPARE(s->group, group);
      QCOMPARE(s->version, std::string("v1"));
      QCOMPARE(s->kind, kind);
      QCOMPARE(s->verbs, verbs);
    };
    check(pods, "status", "", "Pod", {"get", "patch", "update"});
    check(pods, "binding", "", "Binding", {"create"});
    check(pods, "eviction", "policy", "Eviction", {"create"});
    check(pods, "log", "", "Pod", {"get"});
    check(pods, "exec", "", "PodExecOptions", {"create", "get"});
    check(pods, "attach", "", "PodAttachOptions", {"create", "get"});
    check(pods, "portforward", "", "PodPortForwardOptions", {"create", "get"});
    check(*reg->find({"", "v1", "serviceaccounts"}), "token", "authentication.k8s.io",
          "TokenRequest", {"create"});
    check(*reg->find({"", "v1", "namespaces"}), "finalize", "", "Namespace", {"update"});
    check(*reg->find({"apps", "v1", "statefulsets"}), "scale", "autoscaling", "Scale",
          {"get", "patch", "update"});
    check(*reg->find({"apps", "v1", "daemonsets"}), "status", "apps", "DaemonSet",
          {"get", "patch", "update"});
    QVERIFY(!subresourceInfo(*reg->find({"apps", "v1", "daemonsets"}), "scale").has_value());
    QVERIFY(!subresourceInfo(pods, "scale").has_value());
    QVERIFY(!reg->find({"", "v1", "configmaps"})->hasSubresource("status"));
  }

  void groupVersionsInDiscoveryOrder() {
    auto reg = ResourceRegistry::builtin();
    const std::vector<std::string> expected = {
        "v1",
        "apps/v1",
        "events.k8s.io/v1",
        "authentication.k8s.io/v1",
        "authorization.k8s.io/v1",
        "batch/v1",
        "policy/v1",
        "rbac.authorization.k8s.io/v1",
        "apiextensions.k8s.io/v1",
        "scheduling.k8s.io/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    };
    QCOMPARE(reg->groupVersions(), expected);
  }

  void kubeAwareVersionOrder() {
    std::vector<std::string> v = {"v1beta1", "foo1", "v2", "v1alpha1", "v10", "v1",
                                  "v11alpha2", "v12alpha1", "v3beta1", "foo10", "v1beta"};
    std::sort(v.begin(), v.end(),
              [](const auto& a, const auto& b) { return compareKubeAwareVersions(a, b) < 0; });
    const std::vector<std::string> expected = {"v10", "v2", "v1", "v3beta1", "v1beta1",
                                               "v12alpha1", "v11alpha2", "v1alpha1",
                                               "foo1", "foo10", "v1beta"};
    QCOMPARE(v, expected);
    QCOMPARE(compareKubeAwareVersions("v1", "v1"), 0);
  }

  void addAndRemoveCustomResources() {
    auto reg = ResourceRegistry::builtin();
    const size_t before = reg->all().size();
    auto makeCr = [](std::string version) {
      ResourceInfo cr;
      cr.group = "stable.example.com";
      cr.version = std::move(version);
      cr.resource = "crontabs";
      cr.kind = "CronTab";
      cr.singular = "crontab";
      cr.shortNames = {"ct"};
      cr.categories = {"all"};
      cr.verbs = kFull;
      cr.subresources = {"status", "scale"};
      cr.custom = true;
      return cr;
    };
    reg->add(makeCr("v1"));
    reg->add(makeCr("v1beta1"));
    reg->add(makeCr("v2alpha1"));
    ResourceInfo other = makeCr("v1");
    other.group = "a.example.org";
    other.resource = "widgets";
    other.kind = "Widget";
    reg->add(other);

    auto ct = reg->find({"stable.example.com", "v1", "crontabs"});
    QVERIFY(ct != nullptr);
    QVERIFY(ct->custom);
    QCOMPARE(ct->listKind, std::string("CronTabList"));
    QCOMPARE(ct->storagePrefix, std::string("/registry/stable.example.com/crontabs/"));
    QCOMPARE(ct->qualifiedResource(), std::string("crontabs.stable.example.com"));
    auto byKind = reg->findKind({"stable.example.com", "v1beta1", "CronTab"});
    QVERIFY(byKind != nullptr);
    QCOMPARE(byKind->version, std::string("v1beta1"));
    auto scale = subresourceInfo(*ct, "scale");
    QVERIFY(scale && scale->kind == "Scale" && scale->group == "autoscaling");
    auto status = subresourceInfo(*ct, "status");
    QVERIFY(status && status->kind == "CronTab" && status->group == "stable.example.com");
    QCOMPARE(reg->resources("stable.example.com", "v1").size(), size_t(1));

    // Custom groups follow every built-in group, by name; versions preferred-first.
    auto gvs = reg->groupVersions();
    const std::vector<std::string> tail(gvs.end() - 4, gvs.end());
    const std::vector<std::string> expectedTail = {"a.example.org/v1", "stable.example.com/v1",
                                                   "stable.example.com/v1beta1",
                                                   "stable.example.com/v2alpha1"};
    QCOMPARE(tail, expectedTail);
    QCOMPARE(reg->all().size(), before + 4);

    // Re-adding replaces rather than duplicates.
    auto changed = makeCr("v1");
    changed.shortNames = {"cts"};
    reg->add(changed);
    QCOMPARE(reg->all().size(), before + 4);
    QCOMPARE(reg->find({"stable.example.com", "v1", "crontabs"})->shortNames,
             std::vector<std::string>{"cts"});

    reg->remove({"stable.example.com", "v1", "crontabs"});
    reg->remove({"stable.example.com", "v1beta1", "crontabs"});
    reg->remove({"stable.example.com", "v2alpha1", "crontabs"});
    reg->remove({"stable.example.com", "v9", "crontabs"});  // absent: no effect
    QVERIFY(reg->find({"stable.example.com", "v1", "crontabs"}) == nullptr);
    QVERIFY(reg->findKind({"stable.example.com", "v1beta1", "CronTab"}) == nullptr);
    QVERIFY(!contains(reg->groupVersions(), "stable.example.com/v1"));
    QVERIFY(contains(reg->groupVersions(), "a.example.org/v1"));
    QCOMPARE(reg->all().size(), before + 1);
    // A fresh builtin() is not affected by another registry's CRDs.
    QVERIFY(ResourceRegistry::builtin()->find({"a.example.org", "v1", "widgets"}) == nullptr);
  }

  void resourcesOfAGroupVersion() {
    auto reg = ResourceRegistry::builtin();
    std::vector<std::string> names;
    for (const auto& r : reg->resources("apps", "v1")) names.push_back(r.resource);
    QCOMPARE(names, (std::vector<std::string>{"controllerrevisions", "daemonsets", "deployments",
                                              "replicasets", "statefulsets"}));
    QVERIFY(reg->resources("apps", "v2").empty());
    std::vector<std::string> rbac;
    for (const auto& r : reg->resources("rbac.authorization.k8s.io", "v1")) rbac.push_back(r.resource);
    QCOMPARE(rbac, (std::vector<std::string>{"clusterrolebindings", "clusterroles",
                                             "rolebindings", "roles"}));
  }

  void concurrentReadersAndWriters() {
    auto reg = ResourceRegistry::builtin();
    std::atomic<bool> stop{false};
    std::atomic<int> misses{0};
    std::thread reader([&] {
      while (!stop) {
        if (!reg->find({"", "v1", "pods"})) ++misses;
        (void)reg->groupVersions();
      }
    });
    for (int i = 0; i < 2000; ++i) {
      ResourceInfo cr;
      cr.group = "g" + std::to_string(i % 7) + ".example.com";
      cr.version = "v1";
      cr.resource = "things";
      cr.kind = "Thing";
      cr.custom = true;
      cr.verbs = kFull;
      reg->add(cr);
      if (i % 2) reg->remove(cr.gvr());
    }
    stop = true;
    reader.join();
    QCOMPARE(misses.load(), 0);
  }
};

QTEST_APPLESS_MAIN(ResourceRegistryTest)
#include "resource_registry_test.moc"
