// The built-in types of the API groups (apps, batch, coordination, discovery, events, policy,
// scheduling, rbac, apiextensions, autoscaling, authorization, authentication): manifests a
// user writes against kube 1.32/1.33 pass strict field validation, merge rules are kube's,
// and every served resource has its schema.

#include <QtTest>

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "engine/api/resource.h"
#include "engine/api/schema.h"

using namespace orrery::api;
using nlohmann::json;

namespace {

std::shared_ptr<SchemaRegistry> schemas() {
  auto reg = SchemaRegistry::builtin();
  if (!reg.ok()) {
    std::cout << reg.status().message() << "\n";
    return nullptr;
  }
  return reg.value();
}

// Walks a dotted path of properties ("spec.strategy"); array/map steps use "[]".
const Schema* at(const Schema* s, const std::string& path) {
  size_t start = 0;
  while (s && start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part == "[]") s = s->items.get();
    else s = s->child(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return s;
}

// Checks `manifest` against its kind's schema: no errors, no unknown fields.
QString problems(const SchemaRegistry& reg, const std::string& def, const json& manifest) {
  auto s = reg.find(def);
  if (!s) return QString::fromStdString("no definition " + def);
  auto check = checkAgainstSchema(manifest, *s);
  std::string out;
  for (const auto& e : check.errors) out += "error " + e.field + ": " + e.message + "\n";
  for (const auto& f : check.unknownFields) out += "unknown field " + f + "\n";
  return QString::fromStdString(out);
}

json podTemplate() {
  return {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:1.27"},
                                     {"ports", {{{"containerPort", 80}, {"name", "http"}}}}}}}}}};
}

// A JSON file next to this test (ORRERY_SOURCE_DIR is set by CTest).
json readJson(const std::string& name) {
  const char* src = std::getenv("ORRERY_SOURCE_DIR");
  std::ifstream in(std::string(src ? src : ".") + "/tests/api/resource/" + name);
  if (!in) return nullptr;
  return json::parse(in, nullptr, false);
}

}  // namespace

class BuiltinTypesTest : public QObject {
  Q_OBJECT

 private slots:
  void everyServedResourceHasItsKindAndList() {
    auto reg = schemas();
    QVERIFY2(reg, "built-in schemas do not parse (run schema_parse_test)");
    for (const auto& info : ResourceRegistry::builtin()->all()) {
      auto s = reg->find(info.schemaName);
      QVERIFY2(s, ("no schema " + info.schemaName + " for " + info.qualifiedResource()).c_str());
      bool tagged = false;
      for (const auto& g : s->gvks) tagged |= g.group == info.group && g.version == info.version &&
                                              g.kind == info.kind;
      QVERIFY2(tagged, (info.schemaName + " lacks gvk " + info.apiVersion() + "/" + info.kind).c_str());
      if (info.listKind.empty()) continue;
      auto pkg = info.schemaName.substr(0, info.schemaName.rfind('.'));
      auto list = reg->find(pkg + "." + info.listKind);
      QVERIFY2(list, ("no list schema " + pkg + "." + info.listKind).c_str());
      QVERIFY2(list->child("items") && list->child("items")->type == Schema::Type::kArray,
               info.listKind.c_str());
      // And every subresource kind too (Scale, Eviction, TokenRequest, Binding...).
      for (const auto& sub : info.subresources) {
        auto si = subresourceInfo(info, sub);
        QVERIFY(si.has_value());
        if (si->kind.find("Options") != std::string::npos) continue;  // core's connect options
        bool found = false;
        for (const auto& name : reg->names()) {
          auto d = reg->find(name);
          for (const auto& g : d->gvks)
            found |= g.group == si->group && g.version == si->version && g.kind == si->kind;
          if (found) break;
        }
        QVERIFY2(found, (info.resource + "/" + sub + " kind " + si->kind + " has no schema").c_str());
      }
    }
  }

  void appsManifestsPassStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    json tpl = podTemplate();
    json deploy = {
        {"apiVersion", "apps/v1"}, {"kind", "Deployment"},
        {"metadata", {{"name", "web"}, {"namespace", "default"}}},
        {"spec", {{"replicas", 3}, {"selector", {{"matchLabels", {{"app", "web"}}}}},
                  {"template", tpl}, {"minReadySeconds", 5}, {"revisionHistoryLimit", 4},
                  {"paused", false}, {"progressDeadlineSeconds", 600},
                  {"strategy", {{"type", "RollingUpdate"},
                                {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", 1}}}}}}},
        {"status", {{"observedGeneration", 2}, {"replicas", 3}, {"updatedReplicas", 3},
                    {"readyReplicas", 3}, {"availableReplicas", 3}, {"unavailableReplicas", 0},
                    {"terminatingReplicas", 0}, {"collisionCount", 0},
                    {"conditions", {{{"type", "Available"}, {"status", "True"},
                                     {"lastUpdateTime", "2025-01-02T03:04:05Z"},
                                     {"lastTransitionTime", "2025-01-02T03:04:05Z"},
                                     {"reason", "MinimumReplicasAvailable"},
                                     {"message", "Deployment has minimum availability."}}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.apps.v1.Deployment", deploy), QString());

    json sts = {
        {"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"metadata", {{"name", "db"}}},
        {"spec", {{"serviceName", "db"}, {"replicas", 2}, {"podManagementPolicy", "Parallel"},
                  {"selector", {{"matchLabels", {{"app", "web"}}}}}, {"template", tpl},
                  {"updateStrategy", {{"type", "RollingUpdate"},
                                      {"rollingUpdate", {{"partition", 1}, {"maxUnavailable", "50%"}}}}},
                  {"persistentVolumeClaimRetentionPolicy", {{"whenDeleted", "Delete"}, {"whenScaled", "Retain"}}},
                  {"ordinals", {{"start", 5}}}, {"minReadySeconds", 0}, {"revisionHistoryLimit", 10},
                  {"volumeClaimTemplates", {{{"metadata", {{"name", "data"}}},
                                             {"spec", {{"accessModes", {"ReadWriteOnce"}},
                                                       {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}}}}}},
        {"status", {{"replicas", 2}, {"readyReplicas", 2}, {"currentReplicas", 2},
                    {"updatedReplicas", 2}, {"availableReplicas", 2}, {"currentRevision", "db-1"},
                    {"updateRevision", "db-1"}, {"observedGeneration", 1}, {"collisionCount", 0}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.apps.v1.StatefulSet", sts), QString());

    json ds = {{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"}, {"metadata", {{"name", "agent"}}},
               {"spec", {{"selector", {{"matchLabels", {{"app", "web"}}}}}, {"template", tpl},
                         {"updateStrategy", {{"type", "RollingUpdate"},
                                             {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 0}}}}}}},
               {"status", {{"currentNumberScheduled", 1}, {"numberMisscheduled", 0},
                           {"desiredNumberScheduled", 1}, {"numberReady", 1},
                           {"updatedNumberScheduled", 1}, {"numberAvailable", 1}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.apps.v1.DaemonSet", ds), QString());

    json rs = {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"metadata", {{"name", "web-1"}}},
               {"spec", {{"replicas", 1}, {"selector", {{"matchLabels", {{"app", "web"}}}}}, {"template", tpl}}},
               {"status", {{"replicas", 1}, {"fullyLabeledReplicas", 1}, {"readyReplicas", 1},
                           {"availableReplicas", 1}, {"observedGeneration", 1}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.apps.v1.ReplicaSet", rs), QString());

    json cr = {{"apiVersion", "apps/v1"}, {"kind", "ControllerRevision"}, {"metadata", {{"name", "db-1"}}},
               {"data", {{"spec", {{"template", tpl}}}}}, {"revision", 1}};
    QCOMPARE(problems(*reg, "io.k8s.api.apps.v1.ControllerRevision", cr), QString());

    // A typo is reported with its path (what fieldValidation=Strict turns into an error).
    deploy["spec"]["replicass"] = 2;
    QVERIFY(problems(*reg, "io.k8s.api.apps.v1.Deployment", deploy).contains("spec.replicass"));
    deploy["spec"].erase("replicass");
    deploy["spec"]["strategy"]["type"] = "BlueGreen";
    QVERIFY(problems(*reg, "io.k8s.api.apps.v1.Deployment", deploy).contains("spec.strategy.type"));
  }

  void batchManifestsPassStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    json tpl = podTemplate();
    tpl["spec"]["restartPolicy"] = "Never";
    json jobSpec = {
        {"parallelism", 2}, {"completions", 4}, {"completionMode", "Indexed"},
        {"backoffLimitPerIndex", 1}, {"maxFailedIndexes", 2}, {"activeDeadlineSeconds", 600},
        {"ttlSecondsAfterFinished", 100}, {"suspend", false}, {"manualSelector", false},
        {"podReplacementPolicy", "Failed"}, {"managedBy", "kubernetes.io/job-controller"},
        {"podFailurePolicy", {{"rules", {{{"action", "FailJob"},
                                          {"onExitCodes", {{"containerName", "web"}, {"operator", "In"}, {"values", {42}}}}},
                                         {{"action", "Ignore"},
                                          {"onPodConditions", {{{"type", "DisruptionTarget"}, {"status", "True"}}}}}}}}},
        {"successPolicy", {{"rules", {{{"succeededIndexes", "0-2"}, {"succeededCount", 2}}}}}},
        {"template", tpl}};
    json job = {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", {{"name", "pi"}}},
                {"spec", jobSpec},
                {"status", {{"active", 1}, {"succeeded", 2}, {"failed", 0}, {"ready", 1},
                            {"terminating", 0}, {"completedIndexes", "0-1"}, {"failedIndexes", ""},
                            {"startTime", "2025-01-02T03:04:05Z"},
                            {"uncountedTerminatedPods", {{"succeeded", {"uid-1"}}, {"failed", json::array()}}},
                            {"conditions", {{{"type", "Complete"}, {"status", "True"},
                                             {"lastProbeTime", "2025-01-02T03:04:05Z"},
                                             {"lastTransitionTime", "2025-01-02T03:04:05Z"}}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.batch.v1.Job", job), QString());

    json cj = {{"apiVersion", "batch/v1"}, {"kind", "CronJob"}, {"metadata", {{"name", "nightly"}}},
               {"spec", {{"schedule", "0 3 * * *"}, {"timeZone", "Europe/Paris"},
                         {"concurrencyPolicy", "Forbid"}, {"startingDeadlineSeconds", 200},
                         {"successfulJobsHistoryLimit", 3}, {"failedJobsHistoryLimit", 1},
                         {"suspend", false},
                         {"jobTemplate", {{"metadata", {{"labels", {{"a", "b"}}}}}, {"spec", jobSpec}}}}},
               {"status", {{"active", {{{"kind", "Job"}, {"name", "nightly-1"}, {"namespace", "default"}}}},
                           {"lastScheduleTime", "2025-01-02T03:00:00Z"},
                           {"lastSuccessfulTime", "2025-01-02T03:01:00Z"}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.batch.v1.CronJob", cj), QString());

    // Missing required fields are errors.
    json bad = {{"apiVersion", "batch/v1"}, {"kind", "CronJob"}, {"metadata", {{"name", "x"}}},
                {"spec", {{"jobTemplate", {{"spec", jobSpec}}}}}};
    QVERIFY(problems(*reg, "io.k8s.api.batch.v1.CronJob", bad).contains("spec.schedule"));
    json badRule = job;
    badRule["spec"]["podFailurePolicy"]["rules"][0]["action"] = "Retry";
    QVERIFY(problems(*reg, "io.k8s.api.batch.v1.Job", badRule)
                .contains("spec.podFailurePolicy.rules[0].action"));
  }

  void smallGroupsPassStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    json lease = {{"apiVersion", "coordination.k8s.io/v1"}, {"kind", "Lease"},
                  {"metadata", {{"name", "node-1"}, {"namespace", "kube-node-lease"}}},
                  {"spec", {{"holderIdentity", "node-1"}, {"leaseDurationSeconds", 40},
                            {"acquireTime", "2025-01-02T03:04:05.123456Z"},
                            {"renewTime", "2025-01-02T03:04:45.123456Z"}, {"leaseTransitions", 0}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.coordination.v1.Lease", lease), QString());

    json slice = {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"},
                  {"metadata", {{"name", "web-abc"}, {"labels", {{"kubernetes.io/service-name", "web"}}}}},
                  {"addressType", "IPv4"},
                  {"endpoints", {{{"addresses", {"10.244.1.5"}},
                                  {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                                  {"nodeName", "node-1"}, {"zone", "a"}, {"hostname", "web-0"},
                                  {"targetRef", {{"kind", "Pod"}, {"name", "web-0"}, {"namespace", "default"}, {"uid", "u"}}},
                                  {"hints", {{"forZones", {{{"name", "a"}}}}, {"forNodes", {{{"name", "node-1"}}}}}}}}},
                  {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}, {"appProtocol", "http"}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.discovery.v1.EndpointSlice", slice), QString());

    json ev = {{"apiVersion", "events.k8s.io/v1"}, {"kind", "Event"},
               {"metadata", {{"name", "web.1"}, {"namespace", "default"}}},
               {"eventTime", "2025-01-02T03:04:05.000001Z"}, {"reportingController", "orrery/scheduler"},
               {"reportingInstance", "orrery-1"}, {"action", "Binding"}, {"reason", "Scheduled"},
               {"regarding", {{"kind", "Pod"}, {"name", "web"}, {"namespace", "default"}}},
               {"note", "Successfully assigned default/web to node-1"}, {"type", "Normal"},
               {"series", {{"count", 2}, {"lastObservedTime", "2025-01-02T03:04:06.000001Z"}}},
               {"deprecatedCount", 1}, {"deprecatedSource", {{"component", "scheduler"}}},
               {"deprecatedFirstTimestamp", "2025-01-02T03:04:05Z"}};
    QCOMPARE(problems(*reg, "io.k8s.api.events.v1.Event", ev), QString());

    json pdb = {{"apiVersion", "policy/v1"}, {"kind", "PodDisruptionBudget"}, {"metadata", {{"name", "web"}}},
                {"spec", {{"minAvailable", "50%"}, {"selector", {{"matchLabels", {{"app", "web"}}}}},
                          {"unhealthyPodEvictionPolicy", "AlwaysAllow"}}},
                {"status", {{"disruptionsAllowed", 1}, {"currentHealthy", 3}, {"desiredHealthy", 2},
                            {"expectedPods", 3}, {"observedGeneration", 1},
                            {"disruptedPods", {{"web-1", "2025-01-02T03:04:05Z"}}},
                            {"conditions", {{{"type", "DisruptionAllowed"}, {"status", "True"},
                                             {"reason", "SufficientPods"}, {"message", ""},
                                             {"lastTransitionTime", "2025-01-02T03:04:05Z"},
                                             {"observedGeneration", 1}}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.policy.v1.PodDisruptionBudget", pdb), QString());
    json eviction = {{"apiVersion", "policy/v1"}, {"kind", "Eviction"},
                     {"metadata", {{"name", "web-1"}, {"namespace", "default"}}},
                     {"deleteOptions", {{"gracePeriodSeconds", 0}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.policy.v1.Eviction", eviction), QString());

    json pc = {{"apiVersion", "scheduling.k8s.io/v1"}, {"kind", "PriorityClass"},
               {"metadata", {{"name", "high"}}}, {"value", 1000000}, {"globalDefault", false},
               {"description", "important"}, {"preemptionPolicy", "Never"}};
    QCOMPARE(problems(*reg, "io.k8s.api.scheduling.v1.PriorityClass", pc), QString());
    pc.erase("value");
    QVERIFY(problems(*reg, "io.k8s.api.scheduling.v1.PriorityClass", pc).contains("value"));

    json scale = {{"apiVersion", "autoscaling/v1"}, {"kind", "Scale"}, {"metadata", {{"name", "web"}}},
                  {"spec", {{"replicas", 5}}}, {"status", {{"replicas", 3}, {"selector", "app=web"}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.autoscaling.v1.Scale", scale), QString());
  }

  void rbacManifestsPassStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    json rule = {{"apiGroups", {"", "apps"}}, {"resources", {"pods", "deployments/scale"}},
                 {"verbs", {"get", "list", "watch"}}, {"resourceNames", {"web"}}};
    json role = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "Role"},
                 {"metadata", {{"name", "reader"}, {"namespace", "default"}}}, {"rules", {rule}}};
    QCOMPARE(problems(*reg, "io.k8s.api.rbac.v1.Role", role), QString());
    json cr = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "ClusterRole"},
               {"metadata", {{"name", "monitoring"}}},
               {"aggregationRule", {{"clusterRoleSelectors", {{{"matchLabels", {{"rbac.example.com/aggregate", "true"}}}}}}}},
               {"rules", {{{"nonResourceURLs", {"/metrics", "/healthz/*"}}, {"verbs", {"get"}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.rbac.v1.ClusterRole", cr), QString());
    json rb = {{"apiVersion", "rbac.authorization.k8s.io/v1"}, {"kind", "RoleBinding"},
               {"metadata", {{"name", "read"}, {"namespace", "default"}}},
               {"subjects", {{{"kind", "ServiceAccount"}, {"name", "default"}, {"namespace", "default"}},
                             {{"kind", "User"}, {"name", "jane"}, {"apiGroup", "rbac.authorization.k8s.io"}}}},
               {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", "reader"}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.rbac.v1.RoleBinding", rb), QString());
    json crb = rb;
    crb["kind"] = "ClusterRoleBinding";
    crb["metadata"].erase("namespace");
    crb["roleRef"]["kind"] = "ClusterRole";
    QCOMPARE(problems(*reg, "io.k8s.api.rbac.v1.ClusterRoleBinding", crb), QString());
    crb.erase("roleRef");
    QVERIFY(problems(*reg, "io.k8s.api.rbac.v1.ClusterRoleBinding", crb).contains("roleRef"));
    json noVerbs = role;
    noVerbs["rules"][0].erase("verbs");
    QVERIFY(problems(*reg, "io.k8s.api.rbac.v1.Role", noVerbs).contains("rules[0].verbs"));
  }

  void reviewsPassStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    // What `kubectl auth can-i create pods` and `kubectl auth can-i --list` send.
    json ssar = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SelfSubjectAccessReview"},
                 {"metadata", {{"creationTimestamp", nullptr}}},
                 {"spec", {{"resourceAttributes", {{"namespace", "default"}, {"verb", "create"},
                                                   {"resource", "pods"}, {"group", ""}, {"version", "*"},
                                                   {"subresource", ""}, {"name", ""},
                                                   {"fieldSelector", {{"rawSelector", "spec.nodeName=a"}}},
                                                   {"labelSelector", {{"requirements", {{{"key", "app"}, {"operator", "In"}, {"values", {"web"}}}}}}}}}}},
                 {"status", {{"allowed", false}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authorization.v1.SelfSubjectAccessReview", ssar), QString());
    json ssrr = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SelfSubjectRulesReview"},
                 {"metadata", json::object()}, {"spec", {{"namespace", "default"}}},
                 {"status", {{"resourceRules", {{{"verbs", {"*"}}, {"apiGroups", {"*"}}, {"resources", {"*"}}}}},
                             {"nonResourceRules", {{{"verbs", {"*"}}, {"nonResourceURLs", {"*"}}}}},
                             {"incomplete", false}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authorization.v1.SelfSubjectRulesReview", ssrr), QString());
    json sar = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"},
                {"metadata", json::object()},
                {"spec", {{"user", "jane"}, {"uid", "1"}, {"groups", {"dev"}},
                          {"extra", {{"scopes", {"a", "b"}}}},
                          {"nonResourceAttributes", {{"path", "/healthz"}, {"verb", "get"}}}}},
                {"status", {{"allowed", true}, {"denied", false}, {"reason", "ok"}, {"evaluationError", ""}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authorization.v1.SubjectAccessReview", sar), QString());
    json lsar = sar;
    lsar["kind"] = "LocalSubjectAccessReview";
    QCOMPARE(problems(*reg, "io.k8s.api.authorization.v1.LocalSubjectAccessReview", lsar), QString());

    json tr = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"},
               {"metadata", json::object()},
               {"spec", {{"token", "abc"}, {"audiences", {"https://kubernetes.default.svc"}}}},
               {"status", {{"authenticated", true}, {"audiences", {"https://kubernetes.default.svc"}},
                           {"user", {{"username", "system:serviceaccount:default:default"},
                                     {"uid", "u"}, {"groups", {"system:serviceaccounts"}},
                                     {"extra", {{"authentication.kubernetes.io/pod-name", {"web"}}}}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authentication.v1.TokenReview", tr), QString());
    json ssr = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"},
                {"metadata", json::object()},
                {"status", {{"userInfo", {{"username", "kubernetes-admin"}, {"groups", {"system:masters"}}}}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authentication.v1.SelfSubjectReview", ssr), QString());
    json treq = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"},
                 {"metadata", {{"name", "default"}}},
                 {"spec", {{"audiences", {"api"}}, {"expirationSeconds", 3600},
                           {"boundObjectRef", {{"kind", "Pod"}, {"apiVersion", "v1"}, {"name", "web"}, {"uid", "u"}}}}},
                 {"status", {{"token", "t"}, {"expirationTimestamp", "2025-01-02T03:04:05Z"}}}};
    QCOMPARE(problems(*reg, "io.k8s.api.authentication.v1.TokenRequest", treq), QString());
  }

  void crdManifestPassesStrictValidation() {
    auto reg = schemas();
    QVERIFY(reg);
    // A CRD using most of what CRD authors write (kubebuilder output included).
    json props = readJson("crontab_schema.json");
    QVERIFY(!props.is_null());
    json crd = {
        {"apiVersion", "apiextensions.k8s.io/v1"}, {"kind", "CustomResourceDefinition"},
        {"metadata", {{"name", "crontabs.stable.example.com"},
                      {"annotations", {{"controller-gen.kubebuilder.io/version", "v0.16.0"}}}}},
        {"spec", {{"group", "stable.example.com"}, {"scope", "Namespaced"},
                  {"names", {{"plural", "crontabs"}, {"singular", "crontab"}, {"kind", "CronTab"},
                             {"listKind", "CronTabList"}, {"shortNames", {"ct"}}, {"categories", {"all"}}}},
                  {"conversion", {{"strategy", "Webhook"},
                                  {"webhook", {{"conversionReviewVersions", {"v1"}},
                                               {"clientConfig", {{"caBundle", "Cg=="},
                                                                 {"service", {{"namespace", "system"}, {"name", "conv"},
                                                                              {"path", "/convert"}, {"port", 443}}}}}}}}},
                  {"versions", {{{"name", "v1"}, {"served", true}, {"storage", true},
                                 {"deprecated", false},
                                 {"schema", {{"openAPIV3Schema", props}}},
                                 {"subresources", {{"status", json::object()},
                                                   {"scale", {{"specReplicasPath", ".spec.replicas"},
                                                              {"statusReplicasPath", ".status.replicas"},
                                                              {"labelSelectorPath", ".status.selector"}}}}},
                                 {"selectableFields", {{{"jsonPath", ".spec.cronSpec"}}}},
                                 {"additionalPrinterColumns", {{{"name", "Spec"}, {"type", "string"},
                                                                {"jsonPath", ".spec.cronSpec"}, {"priority", 0},
                                                                {"description", "the schedule"}, {"format", ""}}}}},
                                {{"name", "v1beta1"}, {"served", true}, {"storage", false},
                                 {"deprecated", true}, {"deprecationWarning", "use v1"},
                                 {"schema", {{"openAPIV3Schema", {{"type", "object"},
                                                                  {"x-kubernetes-preserve-unknown-fields", true}}}}}}}}}},
        {"status", {{"acceptedNames", {{"plural", "crontabs"}, {"kind", "CronTab"}}},
                    {"storedVersions", {"v1"}},
                    {"conditions", {{{"type", "Established"}, {"status", "True"},
                                     {"lastTransitionTime", "2025-01-02T03:04:05Z"},
                                     {"reason", "InitialNamesAccepted"}, {"message", "the initial names have been accepted"}}}}}}};
    const char* def = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
    QCOMPARE(problems(*reg, def, crd), QString());

    // Unknown keys deep in the recursive schema are found.
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"]["minimun"] = 1;
    auto p = problems(*reg, def, crd);
    QVERIFY2(p.contains("spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.replicas.minimun"),
             qPrintable(p));
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"].erase("minimun");
    crd["spec"]["scope"] = "Global";
    QVERIFY(problems(*reg, def, crd).contains("spec.scope"));
  }

  void mergeRulesAreKubes() {
    auto reg = schemas();
    QVERIFY(reg);
    auto deploy = reg->find("io.k8s.api.apps.v1.Deployment");
    QVERIFY(deploy);
    const Schema* strategy = at(deploy.get(), "spec.strategy");
    QVERIFY(strategy);
    QCOMPARE(strategy->patchStrategy, std::string("retainKeys"));
    const Schema* conds = at(deploy.get(), "status.conditions");
    QVERIFY(conds);
    QCOMPARE(conds->patchStrategy, std::string("merge"));
    QCOMPARE(conds->patchMergeKey, std::string("type"));
    QCOMPARE(conds->listType, std::string("map"));
    QCOMPARE(conds->listMapKeys, std::vector<std::string>{"type"});
    const Schema* containers = at(deploy.get(), "spec.template.spec.containers");
    QVERIFY2(containers, "Deployment reaches core's PodSpec");
    QCOMPARE(containers->patchMergeKey, std::string("name"));

    auto job = reg->find("io.k8s.api.batch.v1.Job");
    QCOMPARE(at(job.get(), "status.conditions")->listType, std::string("atomic"));
    QCOMPARE(at(job.get(), "status.uncountedTerminatedPods.succeeded")->listType, std::string("set"));
    auto pdb = reg->find("io.k8s.api.policy.v1.PodDisruptionBudget");
    QCOMPARE(at(pdb.get(), "spec.selector")->patchStrategy, std::string("replace"));
    auto rb = reg->find("io.k8s.api.rbac.v1.RoleBinding");
    QCOMPARE(at(rb.get(), "roleRef")->mapType, std::string("atomic"));
    QCOMPARE(at(rb.get(), "subjects")->listType, std::string("atomic"));
    auto slice = reg->find("io.k8s.api.discovery.v1.EndpointSlice");
    QCOMPARE(at(slice.get(), "endpoints.[].addresses")->listType, std::string("set"));
    QCOMPARE(at(slice.get(), "ports.[]")->mapType, std::string("atomic"));
    QCOMPARE(at(slice.get(), "addressType")->enumValues,
             (std::vector<std::string>{"FQDN", "IPv4", "IPv6"}));

    // JSONSchemaProps is recursive: properties of properties of items resolve.
    auto crd = reg->find("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition");
    const Schema* root = at(crd.get(), "spec.versions.[].schema.openAPIV3Schema");
    QVERIFY(root);
    const Schema* deep = at(root, "properties.[].properties.[].not.allOf.[].x-kubernetes-validations");
    QVERIFY(deep);
    QCOMPARE(deep->listType, std::string("map"));
    QCOMPARE(deep->listMapKeys, std::vector<std::string>{"rule"});
    QVERIFY(at(root, "$ref") && at(root, "$schema") && at(root, "x-kubernetes-preserve-unknown-fields"));
    QCOMPARE(at(root, "default")->type, Schema::Type::kAny);
    QCOMPARE(at(crd.get(), "status.conditions")->listType, std::string("map"));
  }
};

QTEST_APPLESS_MAIN(BuiltinTypesTest)
#include "builtin_types_test.moc"
