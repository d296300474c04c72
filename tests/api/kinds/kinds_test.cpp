// Per-kind behaviour of the API: what a created object looks like (`kubectl get -o yaml` on a
// real cluster), which objects are refused and with which causes, what an update may change,
// and how metadata.generation moves.
#include <QtTest>

#include "engine/api/kinds.h"
#include "engine/api/quota.h"

using namespace orrery::api;
using json = nlohmann::json;

namespace {

ResourceInfo info(const std::string& group, const std::string& kind, std::vector<std::string> subresources = {"status"},
                  bool namespaced = true) {
  ResourceInfo i;
  i.group = group;
  i.version = "v1";
  i.kind = kind;
  i.resource = kind;  // not used by the functions under test
  i.subresources = std::move(subresources);
  i.namespaced = namespaced;
  return i;
}

json created(const ResourceInfo& i, json object) {
  applyKindDefaults(i, object);
  prepareForCreate(i, object);
  return object;
}

// "field: message" for each cause, the way kubectl lists them.
std::vector<std::string> causes(const ResourceInfo& i, const json& object, const json* old = nullptr) {
  std::vector<std::string> out;
  for (const auto& c : validateKind(i, object, old)) out.push_back(c.field + ": " + c.message);
  return out;
}

bool hasCause(const std::vector<std::string>& all, const std::string& want) {
  for (const auto& c : all)
    if (c == want) return true;
  qWarning("missing cause: %s\n  got:", want.c_str());
  for (const auto& c : all) qWarning("    %s", c.c_str());
  return false;
}

json deploymentManifest() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
      "selector": {"matchLabels": {"app": "web"}},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
      }
    }
  })");
}

const std::string kLabelMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

}  // namespace

class KindsTest : public QObject {
  Q_OBJECT

 private slots:
  void deploymentDefaultedAsOnARealCluster() {
    auto d = info("apps", "Deployment", {"scale", "status"});
    json obj = created(d, deploymentManifest());
    // What `kubectl get deploy web -o yaml` shows right after creation on kube 1.32.
    json wantSpec = json::parse(R"({
      "progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
      "selector": {"matchLabels": {"app": "web"}},
      "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
      "template": {
        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
          "containers": [{"image": "nginx:1.25", "imagePullPolicy": "IfNotPresent", "name": "nginx",
                          "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
                          "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
          "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
          "securityContext": {}, "terminationGracePeriodSeconds": 30
        }
      }
    })");
    QCOMPARE(obj["spec"].dump(2), wantSpec.dump(2));
    QCOMPARE(obj["status"], json::object());
    QCOMPARE(obj["metadata"]["generation"], json(1));
    QVERIFY(validateKind(d, obj, nullptr).empty());
    // Defaulting twice changes nothing.
    json again = obj;
    applyKindDefaults(d, again);
    QCOMPARE(again, obj);
  }

  void podDefaultsAdmissionAndStatus() {
    auto p = info("", "Pod");
    json pod = created(p, json::parse(R"({
      "metadata": {"name": "p", "namespace": "default"},
      "spec": {"containers": [{"name": "c", "image": "busybox",
                               "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
                               "livenessProbe": {"httpGet": {"port": 8080}},
                               "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
               "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch"}]}
    })"));
    const json& spec = pod["spec"];
    const json& c = spec["containers"][0];
    QCOMPARE(c["imagePullPolicy"], json("Always"));  // no tag means :latest
    QCOMPARE(c["resources"]["limits"]["cpu"], json("500m"));
    QCOMPARE(c["resources"]["requests"], json({{"cpu", "500m"}, {"memory", "128Mi"}}));
    QCOMPARE(c["livenessProbe"], json::parse(R"({"failureThreshold":3,"httpGet":{"path":"/","port":8080,"scheme":"HTTP"},
                                                 "periodSeconds":10,"successThreshold":1,"timeoutSeconds":1})"));
    QCOMPARE(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], json("v1"));
    QCOMPARE(spec["volumes"][0]["configMap"]["defaultMode"], json(420));
    QCOMPARE(spec["volumes"][1]["emptyDir"], json::object());
    QCOMPARE(spec["enableServiceLinks"], json(true));
    QCOMPARE(spec["serviceAccountName"], json("default"));
    QCOMPARE(spec["serviceAccount"], json("default"));
    // Priority comes from the Priority admission plugin, which needs the cluster's classes.
    QVERIFY(!spec.contains("priority"));
    QCOMPARE(spec["tolerations"], json::parse(R"([
      {"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300},
      {"effect":"NoExecute","key":"node.kubernetes.io/unreachable","operator":"Exists","tolerationSeconds":300}])"));
    QCOMPARE(pod["status"], json({{"phase", "Pending"}, {"qosClass", "Guaranteed"}}));
    QVERIFY(validateKind(p, pod, nullptr).empty());

    json burstable = created(p, json::parse(R"({"metadata":{"name":"b"},
      "spec":{"containers":[{"name":"c","image":"nginx:1","resources":{"requests":{"cpu":"100m"}}}]}})"));
    QCOMPARE(burstable["status"]["qosClass"], json("Burstable"));
    QCOMPARE(burstable["spec"]["containers"][0]["imagePullPolicy"], json("IfNotPresent"));
    json best = created(p, json::parse(R"({"metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"nginx"}]}})"));
    QCOMPARE(best["status"]["qosClass"], json("BestEffort"));
  }

  // Quota and LimitRange admission read a pod's containers through these pointers after
  // podContainers returns: they must point into the pod, not into a copy of its spec.
  void podContainersPointIntoThePod() {
    json pod = json::parse(R"({"spec":{"initContainers":[{"name":"i"}],"containers":[{"name":"a"},{"name":"b"}]}})");
    auto all = podContainers(pod, true);
    QCOMPARE(all.size(), size_t(3));
    QCOMPARE(all[0], &pod["spec"]["containers"][0]);
    QCOMPARE(all[1], &pod["spec"]["containers"][1]);
    QCOMPARE(all[2], &pod["spec"]["initContainers"][0]);
    QCOMPARE(podContainers(pod, false).size(), size_t(2));
    QVERIFY(podContainers(json::object(), true).empty());
  }

  void serviceSecretNamespaceDefaults() {
    auto s = info("", "Service");
    json svc = created(s, json::parse(R"({"metadata":{"name":"web"},
      "spec":{"selector":{"app":"web"},"ports":[{"port":80},{"name":"b","port":443,"targetPort":"https"}]}})"));
    QCOMPARE(svc["spec"]["type"], json("ClusterIP"));
    QCOMPARE(svc["spec"]["sessionAffinity"], json("None"));
    QCOMPARE(svc["spec"]["ports"][0], json({{"port", 80}, {"protocol", "TCP"}, {"targetPort", 80}}));
    QCOMPARE(svc["spec"]["ports"][1]["targetPort"], json("https"));
    QCOMPARE(svc["spec"]["internalTrafficPolicy"], json("Cluster"));
    QCOMPARE(svc["spec"]["ipFamilyPolicy"], json("SingleStack"));
    QCOMPARE(svc["spec"]["ipFamilies"], json({"IPv4"}));
    QCOMPARE(svc["status"], json({{"loadBalancer", json::object()}}));
    QVERIFY(!svc["metadata"].contains("generation"));

    auto sec = info("", "Secret", {});
    json secret = created(sec, json::parse(R"({"metadata":{"name":"s"},"data":{"a":"eA=="},"stringData":{"user":"admin"}})"));
    QCOMPARE(secret["type"], json("Opaque"));
    QCOMPARE(secret["data"], json({{"a", "eA=="}, {"user", "YWRtaW4="}}));
    QVERIFY(!secret.contains("stringData"));

    auto ns = info("", "Namespace", {"finalize", "status"}, false);
    json n = created(ns, json::parse(R"({"metadata":{"name":"team-a"}})"));
    QCOMPARE(n["metadata"]["labels"], json({{"kubernetes.io/metadata.name", "team-a"}}));
    QCOMPARE(n["spec"]["finalizers"], json({"kubernetes"}));
    QCOMPARE(n["status"], json({{"phase", "Active"}}));
  }

  void jobSelectorGeneratedAndRestartPolicyChecked() {
    auto j = info("batch", "Job");
    json job = json::parse(R"({"metadata":{"name":"pi","uid":"1234-abcd"},
      "spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"pi","image":"perl:5.34"}]}}}})");
    job = created(j, job);
    QCOMPARE(job["spec"]["completions"], json(1));
    QCOMPARE(job["spec"]["parallelism"], json(1));
    QCOMPARE(job["spec"]["backoffLimit"], json(6));
    QCOMPARE(job["spec"]["completionMode"], json("NonIndexed"));
    QCOMPARE(job["spec"]["suspend"], json(false));
    QCOMPARE(job["spec"]["podReplacementPolicy"], json("TerminatingOrFailed"));
    QCOMPARE(job["spec"]["selector"], json({{"matchLabels", {{"batch.kubernetes.io/controller-uid", "1234-abcd"}}}}));
    json wantLabels = {{"batch.kubernetes.io/controller-uid", "1234-abcd"}, {"batch.kubernetes.io/job-name", "pi"},
                       {"controller-uid", "1234-abcd"}, {"job-name", "pi"}};
    QCOMPARE(job["spec"]["template"]["metadata"]["labels"], wantLabels);
    QCOMPARE(job["metadata"]["labels"], wantLabels);
    QCOMPARE(job["metadata"]["generation"], json(1));
    QVERIFY(validateKind(j, job, nullptr).empty());

    // Without restartPolicy the pod default (Always) is refused for a job.
    json bad = created(j, json::parse(R"({"metadata":{"name":"x","uid":"u"},
      "spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox"}]}}}})"));
    QVERIFY(hasCause(causes(j, bad), "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported "
                                     "values: \"OnFailure\", \"Never\""));
    // The template cannot change.
    json changed = job;
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.36";
    QVERIFY(hasCause(causes(j, changed, &job), "spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"));
  }

  void otherWorkloadDefaults() {
    json sts = created(info("apps", "StatefulSet"), json::parse(R"({"metadata":{"name":"db"},
      "spec":{"selector":{"matchLabels":{"a":"b"}},"serviceName":"db",
              "template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})"));
    QCOMPARE(sts["spec"]["podManagementPolicy"], json("OrderedReady"));
    QCOMPARE(sts["spec"]["updateStrategy"], json::parse(R"({"rollingUpdate":{"partition":0},"type":"RollingUpdate"})"));
    QCOMPARE(sts["spec"]["persistentVolumeClaimRetentionPolicy"], json::parse(R"({"whenDeleted":"Retain","whenScaled":"Retain"})"));
    QCOMPARE(sts["status"], json::parse(R"({"availableReplicas":0,"replicas":0})"));

    json ds = created(info("apps", "DaemonSet"), json::parse(R"({"metadata":{"name":"agent"},
      "spec":{"selector":{"matchLabels":{"a":"b"}},
              "template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}})"));
    QCOMPARE(ds["spec"]["updateStrategy"], json::parse(R"({"rollingUpdate":{"maxSurge":0,"maxUnavailable":1},"type":"RollingUpdate"})"));
    QCOMPARE(ds["spec"]["revisionHistoryLimit"], json(10));

    json cj = created(info("batch", "CronJob"), json::parse(R"({"metadata":{"name":"tick"},
      "spec":{"schedule":"*/5 * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure",
              "containers":[{"name":"c","image":"busybox:1.36"}]}}}}}})"));
    QCOMPARE(cj["spec"]["concurrencyPolicy"], json("Allow"));
    QCOMPARE(cj["spec"]["successfulJobsHistoryLimit"], json(3));
    QCOMPARE(cj["spec"]["failedJobsHistoryLimit"], json(1));
    QCOMPARE(cj["spec"]["suspend"], json(false));
    QCOMPARE(cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"], json("ClusterFirst"));
    QVERIFY(!cj["spec"]["jobTemplate"]["spec"].contains("backoffLimit"));  // not SetDefaults_Job
    QVERIFY(validateKind(info("batch", "CronJob"), cj, nullptr).empty());
    json badCron = cj;
    badCron["spec"]["schedule"] = "every minute";
    QVERIFY(hasCause(causes(info("batch", "CronJob"), badCron),
                     "spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]"));
  }

  void podValidationCauses() {
    auto p = info("", "Pod");
    json pod = created(p, json::parse(R"({"metadata":{"name":"Bad_Name","labels":{"app":"-x"}},
      "spec":{"restartPolicy":"Sometimes","volumes":[{"name":"data"}],
              "containers":[{"name":"web","image":"nginx","ports":[{"containerPort":70000}],
                             "resources":{"requests":{"cpu":"2"},"limits":{"cpu":"1"}},
                             "volumeMounts":[{"name":"missing","mountPath":"/m"}]},
                            {"name":"web"}]}})"));
    auto all = causes(p, pod);
    QVERIFY(hasCause(all, "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of "
                          "lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                          "character (e.g. 'example.com', regex used for validation is "
                          "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
    QVERIFY(hasCause(all, "metadata.labels: Invalid value: \"-x\": " + kLabelMsg));
    QVERIFY(hasCause(all, "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", "
                          "\"OnFailure\", \"Never\""));
    QVERIFY(hasCause(all, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
                          "65535, inclusive"));
    QVERIFY(hasCause(all, "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal "
                          "to cpu limit of 1"));
    QVERIFY(hasCause(all, "spec.containers[0].volumeMounts[0].name: Not found: \"missing\""));
    QVERIFY(hasCause(all, "spec.containers[1].name: Duplicate value: \"web\""));
    QVERIFY(hasCause(all, "spec.containers[1].image: Required value"));

    auto types = validateKind(p, pod, nullptr);
    bool sawDuplicateType = false;
    for (const auto& c : types)
      if (c.field == "spec.containers[1].name") sawDuplicateType = c.type == "FieldValueDuplicate";
    QVERIFY(sawDuplicateType);

    json empty = created(p, json::parse(R"({"metadata":{"name":"e"},"spec":{}})"));
    QVERIFY(hasCause(causes(p, empty), "spec.containers: Required value"));
  }

  void workloadAndCoreValidation() {
    auto d = info("apps", "Deployment", {"scale", "status"});
    json dep = deploymentManifest();
    dep["spec"]["template"]["metadata"]["labels"] = {{"app", "other"}};
    dep["spec"]["replicas"] = -1;
    dep = created(d, dep);
    auto all = causes(d, dep);
    QVERIFY(hasCause(all, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: "
                          "`selector` does not match template `labels`"));
    QVERIFY(hasCause(all, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"));
    json noSel = deploymentManifest();
    noSel["spec"].erase("selector");
    QVERIFY(hasCause(causes(d, created(d, noSel)), "spec.selector: Required value"));

    auto s = info("", "Service");
    json svc = created(s, json::parse(R"({"metadata":{"name":"1web"},"spec":{"ports":[{"port":80},{"port":0}]}})"));
    all = causes(s, svc);
    QVERIFY(hasCause(all, "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case "
                          "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                          "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                          "'[a-z]([-a-z0-9]*[a-z0-9])?')"));
    QVERIFY(hasCause(all, "spec.ports[0].name: Required value"));
    QVERIFY(hasCause(all, "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive"));
    json noPorts = created(s, json::parse(R"({"metadata":{"name":"web"},"spec":{}})"));
    QVERIFY(hasCause(causes(s, noPorts), "spec.ports: Required value"));

    auto cm = info("", "ConfigMap", {});
    QVERIFY(hasCause(causes(cm, json::parse(R"({"metadata":{"name":"c"},"data":{"a b":"x"}})")),
                     "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, "
                     "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                     "is '[-._a-zA-Z0-9]+')"));
    json big = json::parse(R"({"metadata":{"name":"c","annotations":{}}})");
    big["metadata"]["annotations"]["a"] = std::string(256 * 1024, 'x');
    QVERIFY(hasCause(causes(cm, big), "metadata.annotations: Too long: may not be more than 262144 bytes"));
    QVERIFY(hasCause(causes(cm, json::parse(R"({"metadata":{}})")),
                     "metadata.name: Required value: name or generateName is required"));

    auto ns = info("", "Namespace", {"finalize", "status"}, false);
    QVERIFY(hasCause(causes(ns, json::parse(R"({"metadata":{"name":"a.b"}})")),
                     "metadata.name: Invalid value: \"a.b\": must not contain dots"));

    auto rb = info("rbac.authorization.k8s.io", "RoleBinding", {});
    json binding = created(rb, json::parse(R"({"metadata":{"name":"rb"},"roleRef":{"kind":"Secret","name":"x"},
      "subjects":[{"kind":"User","name":"alice"}]})"));
    QCOMPARE(binding["subjects"][0]["apiGroup"], json("rbac.authorization.k8s.io"));
    QVERIFY(hasCause(causes(rb, binding), "roleRef.kind: Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\""));
  }

  void immutableFieldsOnUpdate() {
    auto d = info("apps", "Deployment", {"scale", "status"});
    json old = created(d, deploymentManifest());
    json upd = old;
    upd["spec"]["selector"]["matchLabels"]["app"] = "web2";
    upd["spec"]["template"]["metadata"]["labels"]["app"] = "web2";
    QVERIFY(hasCause(causes(d, upd, &old),
                     "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, "
                     "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"));

    auto p = info("", "Pod");
    json pod = created(p, json::parse(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1"}]}})"));
    json image = pod;
    image["spec"]["containers"][0]["image"] = "nginx:2";
    image["spec"]["activeDeadlineSeconds"] = 60;
    QVERIFY(causes(p, image, &pod).empty());
    json port = pod;
    port["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 80}, {"protocol", "TCP"}}});
    auto all = causes(p, port, &pod);
    QCOMPARE(all.size(), size_t(1));
    QVERIFY(all[0].rfind("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`", 0) == 0);

    auto cm = info("", "ConfigMap", {});
    json c = json::parse(R"({"metadata":{"name":"c"},"immutable":true,"data":{"a":"1"}})");
    json c2 = c;
    c2["data"]["a"] = "2";
    c2["immutable"] = false;
    all = causes(cm, c2, &c);
    QVERIFY(hasCause(all, "immutable: Forbidden: field is immutable when `immutable` is set"));
    QVERIFY(hasCause(all, "data: Forbidden: field is immutable when `immutable` is set"));

    auto s = info("", "Service");
    json svc = created(s, json::parse(R"({"metadata":{"name":"web"},"spec":{"clusterIP":"10.96.0.10","ports":[{"port":80}]}})"));
    json svc2 = svc;
    svc2["spec"]["clusterIP"] = "10.96.0.11";
    QVERIFY(hasCause(causes(s, svc2, &svc), "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set"));
    // An update without clusterIP keeps the allocated one.
    json svc3 = svc;
    svc3["spec"].erase("clusterIP");
    prepareForUpdate(s, "", svc3, svc);
    QCOMPARE(svc3["spec"]["clusterIP"], json("10.96.0.10"));

    auto sec = info("", "Secret", {});
    json a = json::parse(R"({"metadata":{"name":"s"},"type":"Opaque"})");
    json b = a;
    b["type"] = "kubernetes.io/basic-auth";
    b["data"] = {{"username", "YQ=="}};
    QVERIFY(hasCause(causes(sec, b, &a), "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"));
  }

  // A status write that would bring back a container the pod does not restart is refused,
  // as kube-apiserver refuses a kubelet's stale "Running" after "Terminated".
  void containerStateTransitionsOnStatusUpdate() {
    auto p = info("", "Pod");
    auto podWith = [&](const std::string& policy, int exitCode) {
      json pod = created(p, json::parse(R"({"metadata":{"name":"p"},"spec":{
        "initContainers":[{"name":"setup","image":"busybox"},{"name":"proxy","image":"envoy","restartPolicy":"Always"}],
        "containers":[{"name":"main","image":"busybox"},{"name":"side","image":"busybox"}]}})"));
      if (!policy.empty()) pod["spec"]["restartPolicy"] = policy;
      json terminated = {{"terminated", {{"exitCode", exitCode}, {"reason", exitCode ? "Error" : "Completed"}}}};
      pod["status"]["containerStatuses"] = json::array(
          {{{"name", "side"}, {"state", {{"running", json::object()}}}}, {{"name", "main"}, {"state", terminated}}});
      pod["status"]["initContainerStatuses"] = json::array(
          {{{"name", "setup"}, {"state", terminated}}, {{"name", "proxy"}, {"state", terminated}}});
      return pod;
    };
    auto restarted = [](json pod) {
      for (const char* list : {"containerStatuses", "initContainerStatuses"})
        for (auto& c : pod["status"][list]) c["state"] = {{"running", json::object()}};
      return pod;
    };
    const std::string kMain = "status.containerStatuses[1].state: Forbidden: may not be transitioned to non-terminated state";
    const std::string kSetup =
        "status.initContainerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state";

    json never = podWith("Never", 0);
    auto all = causes(p, restarted(never), &never);
    QCOMPARE(all.size(), size_t(2));  // the sidecar 'proxy' restarts under any policy
    QVERIFY(hasCause(all, kMain));
    QVERIFY(hasCause(all, kSetup));
    // An empty state is not terminated either.
    json emptied = never;
    emptied["status"]["containerStatuses"][1]["state"] = json::object();
    QCOMPARE(causes(p, emptied, &never), std::vector<std::string>{kMain});
    // Staying terminated (a new exit code, say) is a status the kubelet may write.
    json stillTerminated = never;
    stillTerminated["status"]["containerStatuses"][1]["state"]["terminated"]["exitCode"] = 2;
    QVERIFY(causes(p, stillTerminated, &never).empty());

    json succeeded = podWith("OnFailure", 0);
    all = causes(p, restarted(succeeded), &succeeded);
    QCOMPARE(all.size(), size_t(2));
    QVERIFY(hasCause(all, kMain));
    json failed = podWith("OnFailure", 1);
    QVERIFY(causes(p, restarted(failed), &failed).empty());
    json always = podWith("", 0);  // defaulted to Always
    QCOMPARE(always["spec"]["restartPolicy"], json("Always"));
    QVERIFY(causes(p, restarted(always), &always).empty());

    // The kubelet never restarts an ephemeral container, whatever the pod's policy.
    json debug = podWith("Always", 1);
    debug["status"]["ephemeralContainerStatuses"] =
        json::array({{{"name", "debugger"}, {"state", {{"terminated", {{"exitCode", 1}}}}}}});
    json debugAgain = debug;
    debugAgain["status"]["ephemeralContainerStatuses"][0]["state"] = {{"running", json::object()}};
    QCOMPARE(causes(p, debugAgain, &debug),
             std::vector<std::string>{
                 "status.ephemeralContainerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"});
  }

  void generationAndStatusOnUpdate() {
    auto d = info("apps", "Deployment", {"scale", "status"});
    json old = created(d, deploymentManifest());
    old["status"] = {{"replicas", 1}, {"readyReplicas", 1}};

    // A label change is not a spec change; a client cannot set generation or status.
    json labels = old;
    labels["metadata"]["labels"] = {{"team", "a"}};
    labels["metadata"]["generation"] = 7;
    labels["status"] = {{"replicas", 9}};
    prepareForUpdate(d, "", labels, old);
    QCOMPARE(labels["metadata"]["generation"], json(1));
    QCOMPARE(labels["status"], old["status"]);

    json scaled = old;
    scaled["spec"]["replicas"] = 3;
    prepareForUpdate(d, "", scaled, old);
    QCOMPARE(scaled["metadata"]["generation"], json(2));

    // Deployments also count annotation changes (they are copied to replica sets).
    json annotated = old;
    annotated["metadata"]["annotations"] = {{"note", "x"}};
    prepareForUpdate(d, "", annotated, old);
    QCOMPARE(annotated["metadata"]["generation"], json(2));

    // Through /status only the status changes.
    json status = old;
    status["spec"]["replicas"] = 5;
    status["status"] = {{"replicas", 2}};
    prepareForUpdate(d, "status", status, old);
    QCOMPARE(status["spec"], old["spec"]);
    QCOMPARE(status["status"], json({{"replicas", 2}}));
    QCOMPARE(status["metadata"]["generation"], json(1));

    // Pods do not track generation here; their spec changes are validated instead.
    auto p = info("", "Pod");
    json pod = created(p, json::parse(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1"}]}})"));
    QVERIFY(!pod["metadata"].contains("generation"));
    json podStatus = pod;
    podStatus["status"]["phase"] = "Running";
    podStatus["spec"]["nodeName"] = "sneaky";
    prepareForUpdate(p, "status", podStatus, pod);
    QCOMPARE(podStatus["status"]["phase"], json("Running"));
    QVERIFY(!podStatus["spec"].contains("nodeName"));

    // Namespaces: /finalize writes spec.finalizers, never the status.
    auto ns = info("", "Namespace", {"finalize", "status"}, false);
    json n = created(ns, json::parse(R"({"metadata":{"name":"team"}})"));
    json fin = n;
    fin["spec"]["finalizers"] = json::array();
    fin["status"]["phase"] = "Gone";
    prepareForUpdate(ns, "finalize", fin, n);
    QCOMPARE(fin["spec"]["finalizers"], json::array());
    QCOMPARE(fin["status"]["phase"], json("Active"));

    // Custom resources: any change outside metadata and status bumps the generation.
    auto cr = info("example.com", "Widget");
    cr.custom = true;
    json w = created(cr, json::parse(R"({"metadata":{"name":"w"},"spec":{"size":1}})"));
    QCOMPARE(w["metadata"]["generation"], json(1));
    json w2 = w;
    w2["spec"]["size"] = 2;
    prepareForUpdate(cr, "", w2, w);
    QCOMPARE(w2["metadata"]["generation"], json(2));
  }

  void storageAndSecretRules() {
    auto pvc = info("", "PersistentVolumeClaim");
    json claim = created(pvc, json::parse(R"({"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"1.5Gi"}}}})"));
    QCOMPARE(claim["spec"]["volumeMode"], json("Filesystem"));
    QCOMPARE(claim["spec"]["resources"]["requests"]["storage"], json("1536Mi"));
    QCOMPARE(claim["status"], json({{"phase", "Pending"}}));
    QVERIFY(hasCause(causes(pvc, claim), "spec.accessModes: Required value: at least 1 access mode is required"));
    json noStorage = claim;
    noStorage["spec"]["accessModes"] = {"ReadWriteOnce"};
    noStorage["spec"]["resources"]["requests"].erase("storage");
    QVERIFY(hasCause(causes(pvc, noStorage), "spec.resources[storage]: Required value"));

    auto sec = info("", "Secret", {});
    json tls = created(sec, json::parse(R"({"metadata":{"name":"t"},"type":"kubernetes.io/tls","data":{"tls.crt":"eA=="}})"));
    QVERIFY(hasCause(causes(sec, tls), "data[tls.key]: Required value"));
  }

  void customResourceWithoutStatusSubresource() {
    auto cr = info("example.com", "Gadget", {});
    cr.custom = true;
    json g = created(cr, json::parse(R"({"metadata":{"name":"Not_A_Name"},"spec":{"a":1},"status":{"s":1}})"));
    QVERIFY(hasCause(causes(cr, g), "metadata.name: Invalid value: \"Not_A_Name\": a lowercase RFC 1123 subdomain must "
                                    "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
                                    "with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
    // No /status: the main resource writes the status, and that is a change the generation counts.
    json g2 = g;
    g2["status"]["s"] = 2;
    prepareForUpdate(cr, "", g2, g);
    QCOMPARE(g2["status"]["s"], json(2));
    QCOMPARE(g2["metadata"]["generation"], json(2));
  }

  void decodeErrorsBeforeValidation() {
    auto p = info("", "Pod");
    json pod = json::parse(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x",
      "resources":{"limits":{"cpu":"lots"}}}]}})");
    Status st = checkDecodable(p, pod);
    QCOMPARE(st.code(), 400);
    QCOMPARE(st.message(), std::string("Pod in version \"v1\" cannot be handled as a Pod: quantities must match the "
                                       "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
    auto d = info("apps", "Deployment");
    QVERIFY(checkDecodable(d, created(d, deploymentManifest())).isOk());

    auto sec = info("", "Secret", {});
    QVERIFY(checkDecodable(sec, json::parse(R"({"data":{"a":"YWRtaW4=","b":"eA=="}})")).isOk());
    QCOMPARE(checkDecodable(sec, json::parse(R"({"data":{"a":"not base64!"}})")).message(),
             std::string("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"));
    QCOMPARE(checkDecodable(sec, json::parse(R"({"data":{"a":"YWJ"}})")).message(),
             std::string("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0"));
  }

  void gatedPodSaysWhy() {
    auto p = info("", "Pod");
    json pod = created(p, json::parse(R"({"metadata":{"name":"g"},"spec":{"schedulingGates":[{"name":"wait"}],
      "containers":[{"name":"c","image":"nginx:1"}]}})"));
    QCOMPARE(pod["status"]["conditions"][0]["reason"], json("SchedulingGated"));
    QCOMPARE(pod["status"]["conditions"][0]["status"], json("False"));
  }

  void nameRules() {
    QVERIFY(isDns1123Label("web-1").empty());
    QCOMPARE(isDns1123Label(std::string(64, 'a')).front(), std::string("must be no more than 63 characters"));
    QVERIFY(isDns1123Subdomain("a.b-c.d").empty());
    QVERIFY(!isDns1123Subdomain("A").empty());
    QVERIFY(isDns1035Label("abc-123").empty());
    QVERIFY(!isDns1035Label("1abc").empty());
  }
};

QTEST_APPLESS_MAIN(KindsTest)
#include "kinds_test.moc"
