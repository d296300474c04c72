// kubectl get tables: the columns and cells kube-apiserver 1.32 prints for each kind.
#include <QtTest>

#include "engine/api/table.h"

using namespace orrery::api;
using json = nlohmann::json;
using namespace std::chrono;

namespace {

ResourceInfo res(std::string group, std::string resource, std::string kind) {
  ResourceInfo info;
  info.group = std::move(group);
  info.version = "v1";
  info.resource = std::move(resource);
  info.kind = std::move(kind);
  return info;
}

// Now is 2024-05-01T12:00:00Z; ts(n) is n seconds earlier, as RFC 3339.
const system_clock::time_point kNow = system_clock::from_time_t(1714564800);
std::string ts(long secondsAgo) {
  time_t t = system_clock::to_time_t(kNow) - secondsAgo;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<std::string> columnNames(const ResourceInfo& info, int priority = -1) {
  std::vector<std::string> out;
  for (const auto& c : tableColumns(info))
    if (priority < 0 || c.priority == priority) out.push_back(c.name);
  return out;
}

json pod(const std::string& phase) {
  return {{"metadata", {{"name", "p"}, {"creationTimestamp", ts(300)}}},
          {"spec", {{"containers", json::array({{{"name", "a"}, {"image", "nginx"}}})}}},
          {"status", {{"phase", phase}}}};
}

// cells of a pod: [name, ready, status, restarts, age, ip, node, nominated, gates]
json podRow(const json& p) { return tableCells(res("", "pods", "Pod"), p, kNow); }

}  // namespace

class TableTest : public QObject {
  Q_OBJECT
 private slots:
  void humanDurationBoundaries() {
    struct {
      long s;
      const char* want;
    } cases[] = {{-2, "<invalid>"}, {-1, "0s"},        {0, "0s"},          {59, "59s"},
                 {119, "119s"},     {120, "2m"},        {125, "2m5s"},      {599, "9m59s"},
                 {600, "10m"},      {3 * 3600 - 1, "179m"}, {3 * 3600, "3h"}, {3 * 3600 + 1800, "3h30m"},
                 {8 * 3600, "8h"},  {47 * 3600, "47h"}, {48 * 3600, "2d"},  {53 * 3600, "2d5h"},
                 {8 * 86400, "8d"}, {729 * 86400, "729d"}, {730 * 86400, "2y"}, {740 * 86400, "2y10d"},
                 {8 * 365 * 86400L, "8y"}};
    for (const auto& c : cases) QCOMPARE(humanDuration(seconds(c.s)), std::string(c.want));
  }

  void podColumns() {
    auto info = res("", "pods", "Pod");
    QCOMPARE(columnNames(info, 0), (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age"}));
    QCOMPARE(columnNames(info, 1), (std::vector<std::string>{"IP", "Node", "Nominated Node", "Readiness Gates"}));
    auto cols = tableColumns(info);
    QCOMPARE(cols[0].format, std::string("name"));
    QCOMPARE(cols[0].type, std::string("string"));
    QVERIFY(!cols[0].description.empty());
  }

  void podRunning() {
    json p = pod("Running");
    p["spec"]["nodeName"] = "node-1";
    p["status"]["podIPs"] = json::array({{{"ip", "10.244.0.5"}}});
    p["status"]["containerStatuses"] = json::array(
        {{{"name", "a"}, {"ready", true}, {"restartCount", 0}, {"state", {{"running", {{"startedAt", ts(200)}}}}}}});
    QCOMPARE(podRow(p), json::parse(R"(["p","1/1","Running","0","5m","10.244.0.5","node-1","<none>","<none>"])"));
  }

  void podCrashLoopWithRestartAge() {
    json p = pod("Running");
    p["status"]["containerStatuses"] = json::array(
        {{{"name", "a"}, {"ready", false}, {"restartCount", 3},
          {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
          {"lastState", {{"terminated", {{"exitCode", 1}, {"reason", "Error"}, {"finishedAt", ts(65)}}}}}}});
    json row = podRow(p);
    QCOMPARE(row[1], json("0/1"));
    QCOMPARE(row[2], json("CrashLoopBackOff"));
    QCOMPARE(row[3], json("3 (65s ago)"));
  }

  void podInitializing() {
    json p = pod("Pending");
    p["spec"]["initContainers"] = json::array({{{"name", "i1"}}, {{"name", "i2"}}});
    p["status"]["initContainerStatuses"] = json::array(
        {{{"name", "i1"}, {"restartCount", 0}, {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}},
         {{"name", "i2"}, {"restartCount", 0}, {"state", {{"running", json::object()}}}}});
    QCOMPARE(podRow(p)[2], json("Init:1/2"));
    p["status"]["initContainerStatuses"][1]["state"] = {{"waiting", {{"reason", "CrashLoopBackOff"}}}};
    QCOMPARE(podRow(p)[2], json("Init:CrashLoopBackOff"));
    p["status"]["initContainerStatuses"][1]["state"] = {{"terminated", {{"exitCode", 2}}}};
    QCOMPARE(podRow(p)[2], json("Init:ExitCode:2"));
  }

  void podCompletedTerminatingAndWaiting() {
    json done = pod("Succeeded");
    done["status"]["containerStatuses"] = json::array(
        {{{"name", "a"}, {"ready", false}, {"restartCount", 0},
          {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}}});
    QCOMPARE(podRow(done)[2], json("Completed"));
    json table = buildTable(res("", "pods", "Pod"), {done}, "None", "7", "", kNow);
    QCOMPARE(table["rows"][0]["conditions"][0]["reason"], json("Succeeded"));

    json deleting = pod("Running");
    deleting["metadata"]["deletionTimestamp"] = ts(1);
    QCOMPARE(podRow(deleting)[2], json("Terminating"));

    json creating = pod("Pending");
    creating["status"]["containerStatuses"] = json::array(
        {{{"name", "a"}, {"ready", false}, {"restartCount", 0},
          {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}}});
    QCOMPARE(podRow(creating)[2], json("ContainerCreating"));

    json evicted = pod("Failed");
    evicted["status"]["reason"] = "Evicted";
    QCOMPARE(podRow(evicted)[2], json("Evicted"));
  }

  void serviceCells() {
    auto info = res("", "services", "Service");
    QCOMPARE(columnNames(info),
             (std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"}));
    json svc = {{"metadata", {{"name", "web"}, {"creationTimestamp", ts(7200)}}},
                {"spec", {{"type", "ClusterIP"}, {"clusterIP", "10.96.0.10"}, {"clusterIPs", {"10.96.0.10"}},
                          {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}, {{"port", 53}, {"protocol", "UDP"}}})},
                          {"selector", {{"app", "web"}, {"tier", "front"}}}}}};
    QCOMPARE(tableCells(info, svc, kNow),
             json::parse(R"(["web","ClusterIP","10.96.0.10","<none>","80/TCP,53/UDP","120m","app=web,tier=front"])"));

    svc["spec"]["type"] = "NodePort";
    svc["spec"]["ports"] = json::array({{{"port", 80}, {"nodePort", 30080}, {"protocol", "TCP"}}});
    QCOMPARE(tableCells(info, svc, kNow)[4], json("80:30080/TCP"));

    svc["spec"]["type"] = "LoadBalancer";
    QCOMPARE(tableCells(info, svc, kNow)[3], json("<pending>"));
    svc["status"]["loadBalancer"]["ingress"] = json::array({{{"ip", "192.0.2.9"}}, {{"hostname", "lb.example"}}});
    QCOMPARE(tableCells(info, svc, kNow)[3], json("192.0.2.9,lb.example"));

    json headless = {{"metadata", {{"name", "h"}}}, {"spec", {{"type", "ClusterIP"}, {"clusterIPs", {"None"}}}}};
    json row = tableCells(info, headless, kNow);
    QCOMPARE(row[2], json("None"));
    QCOMPARE(row[4], json("<none>"));
    QCOMPARE(row[5], json("<unknown>"));
    QCOMPARE(row[6], json("<none>"));

    json ext = {{"metadata", {{"name", "e"}}}, {"spec", {{"type", "ExternalName"}, {"externalName", "example.com"}}}};
    QCOMPARE(tableCells(info, ext, kNow)[3], json("example.com"));
  }

  void deploymentCells() {
    auto info = res("apps", "deployments", "Deployment");
    QCOMPARE(columnNames(info, 0), (std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age"}));
    QCOMPARE(columnNames(info, 1), (std::vector<std::string>{"Containers", "Images", "Selector"}));
    json d = {{"metadata", {{"name", "web"}, {"creationTimestamp", ts(90)}}},
              {"spec", {{"replicas", 3},
                        {"selector", {{"matchLabels", {{"app", "web"}}},
                                      {"matchExpressions", json::array({{{"key", "env"}, {"operator", "In"},
                                                                         {"values", {"prod", "dev"}}}})}}},
                        {"template", {{"spec", {{"containers", json::array({{{"name", "web"}, {"image", "nginx:1.25"}},
                                                                             {{"name", "log"}, {"image", "fluentd"}}})}}}}}}},
              {"status", {{"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}}}};
    QCOMPARE(tableCells(info, d, kNow),
             json::parse(R"x(["web","2/3",3,2,"90s","web,log","nginx:1.25,fluentd","app=web,env in (dev,prod)"])x"));
    json fresh = {{"metadata", {{"name", "new"}}}, {"spec", {{"replicas", 1}}}};
    QCOMPARE(tableCells(info, fresh, kNow)[1], json("0/1"));
  }

  void workloadColumns() {
    QCOMPARE(columnNames(res("apps", "statefulsets", "StatefulSet")),
             (std::vector<std::string>{"Name", "Ready", "Age", "Containers", "Images"}));
    QCOMPARE(columnNames(res("apps", "replicasets", "ReplicaSet"), 0),
             (std::vector<std::string>{"Name", "Desired", "Current", "Ready", "Age"}));
    QCOMPARE(columnNames(res("apps", "daemonsets", "DaemonSet"), 0),
             (std::vector<std::string>{"Name", "Desired", "Current", "Ready", "Up-to-date", "Available",
                                       "Node Selector", "Age"}));
    QCOMPARE(columnNames(res("batch", "jobs", "Job"), 0),
             (std::vector<std::string>{"Name", "Status", "Completions", "Duration", "Age"}));
    QCOMPARE(columnNames(res("batch", "cronjobs", "CronJob"), 0),
             (std::vector<std::string>{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"}));
    QCOMPARE(columnNames(res("apps", "controllerrevisions", "ControllerRevision")),
             (std::vector<std::string>{"Name", "Controller", "Revision", "Age"}));
  }

  void jobCells() {
    auto info = res("batch", "jobs", "Job");
    json j = {{"metadata", {{"name", "pi"}, {"creationTimestamp", ts(600)}}},
              {"spec", {{"completions", 3}, {"parallelism", 1}, {"selector", {{"matchLabels", {{"job", "pi"}}}}},
                        {"template", {{"spec", {{"containers", json::array({{{"name", "pi"}, {"image", "perl"}}})}}}}}}},
              {"status", {{"succeeded", 3}, {"startTime", ts(590)}, {"completionTime", ts(545)},
                          {"conditions", json::array({{{"type", "Complete"}, {"status", "True"}}})}}}};
    QCOMPARE(tableCells(info, j, kNow), json::parse(R"(["pi","Complete","3/3","45s","10m","pi","perl","job=pi"])"));
    json running = {{"metadata", {{"name", "r"}}}, {"spec", {{"parallelism", 2}}}, {"status", {{"startTime", ts(30)}}}};
    json row = tableCells(info, running, kNow);
    QCOMPARE(row[1], json("Running"));
    QCOMPARE(row[2], json("0/1 of 2"));
    QCOMPARE(row[3], json("30s"));
  }

  void nodeCells() {
    auto info = res("", "nodes", "Node");
    json n = {{"metadata", {{"name", "orrery-1"}, {"creationTimestamp", ts(3 * 86400)},
                            {"labels", {{"node-role.kubernetes.io/control-plane", ""}, {"kubernetes.io/role", "edge"}}}}},
              {"spec", {{"unschedulable", true}}},
              {"status", {{"conditions", json::array({{{"type", "MemoryPressure"}, {"status", "False"}},
                                                       {{"type", "Ready"}, {"status", "True"}}})},
                          {"addresses", json::array({{{"type", "InternalIP"}, {"address", "10.0.0.2"}}})},
                          {"nodeInfo", {{"kubeletVersion", "v1.32.0"}, {"osImage", "Debian GNU/Linux 12"}}}}}};
    QCOMPARE(tableCells(info, n, kNow),
             json::parse(R"(["orrery-1","Ready,SchedulingDisabled","control-plane,edge","3d","v1.32.0","10.0.0.2","<none>",
                             "Debian GNU/Linux 12","<unknown>","<unknown>"])"));
  }

  void eventCells() {
    auto info = res("", "events", "Event");
    QCOMPARE(columnNames(info, 0), (std::vector<std::string>{"Last Seen", "Type", "Reason", "Object", "Message"}));
    json e = {{"metadata", {{"name", "web.17"}}},
              {"involvedObject", {{"kind", "Pod"}, {"name", "web-1"}, {"fieldPath", "spec.containers{web}"}}},
              {"type", "Normal"}, {"reason", "Pulled"}, {"message", " Image pulled \n"},
              {"source", {{"component", "kubelet"}, {"host", "node-1"}}},
              {"firstTimestamp", ts(600)}, {"lastTimestamp", ts(60)}, {"count", 4}};
    QCOMPARE(tableCells(info, e, kNow),
             json::parse(R"(["60s","Normal","Pulled","pod/web-1","spec.containers{web}","kubelet, node-1",
                             "Image pulled","10m",4,"web.17"])"));
    // events.k8s.io/v1 prints through the same printer.
    json e2 = {{"metadata", {{"name", "x"}}}, {"regarding", {{"kind", "Deployment"}, {"name", "web"}}},
               {"type", "Normal"}, {"reason", "ScalingReplicaSet"}, {"note", "Scaled up"},
               {"eventTime", "2024-05-01T11:59:00.000000Z"}, {"reportingController", "deployment-controller"}};
    json row = tableCells(res("events.k8s.io", "events", "Event"), e2, kNow);
    QCOMPARE(row[0], json("60s"));
    QCOMPARE(row[3], json("deployment/web"));
    QCOMPARE(row[5], json("deployment-controller"));
    QCOMPARE(row[6], json("Scaled up"));
    QCOMPARE(row[8], json(1));
  }

  void coreSmallKinds() {
    json cm = {{"metadata", {{"name", "c"}, {"creationTimestamp", ts(5)}}}, {"data", {{"a", "1"}, {"b", "2"}}},
               {"binaryData", {{"c", "AA=="}}}};
    QCOMPARE(tableCells(res("", "configmaps", "ConfigMap"), cm, kNow), json::parse(R"(["c",3,"5s"])"));
    json sec = {{"metadata", {{"name", "s"}, {"creationTimestamp", ts(5)}}}, {"type", "Opaque"}, {"data", {{"k", "dg=="}}}};
    QCOMPARE(tableCells(res("", "secrets", "Secret"), sec, kNow), json::parse(R"(["s","Opaque",1,"5s"])"));
    json ns = {{"metadata", {{"name", "default"}, {"creationTimestamp", ts(86400)}}}, {"status", {{"phase", "Active"}}}};
    QCOMPARE(tableCells(res("", "namespaces", "Namespace"), ns, kNow), json::parse(R"(["default","Active","24h"])"));
    json ep = {{"metadata", {{"name", "web"}}},
               {"subsets", json::array({{{"addresses", json::array({{{"ip", "10.0.0.1"}}, {{"ip", "10.0.0.2"}},
                                                                    {{"ip", "10.0.0.3"}}, {{"ip", "10.0.0.4"}}})},
                                         {"ports", json::array({{{"port", 80}}})}}})}};
    QCOMPARE(tableCells(res("", "endpoints", "Endpoints"), ep, kNow)[1],
             json("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."));
    json pvc = {{"metadata", {{"name", "data"}}},
                {"spec", {{"volumeName", "pv-1"}, {"storageClassName", "standard"}}},
                {"status", {{"phase", "Bound"}, {"capacity", {{"storage", "1Gi"}}},
                            {"accessModes", {"ReadWriteOnce", "ReadWriteMany"}}}}};
    QCOMPARE(tableCells(res("", "persistentvolumeclaims", "PersistentVolumeClaim"), pvc, kNow),
             json::parse(R"(["data","Bound","pv-1","1Gi","RWO,RWX","standard","<unset>","<unknown>","<unset>"])"));
    json rq = {{"metadata", {{"name", "q"}}},
               {"status", {{"hard", {{"limits.cpu", "2"}, {"pods", "10"}, {"requests.cpu", "1"}}},
                           {"used", {{"pods", "3"}}}}}};
    QCOMPARE(tableCells(res("", "resourcequotas", "ResourceQuota"), rq, kNow),
             json::parse(R"(["q","pods: 3/10, requests.cpu: 0/1","limits.cpu: 0/2","<unknown>"])"));
    json slice = {{"metadata", {{"name", "web-abc"}}}, {"addressType", "IPv4"},
                  {"ports", json::array({{{"port", 80}, {"name", "http"}}})},
                  {"endpoints", json::array({{{"addresses", {"10.1.0.1"}}}})}};
    QCOMPARE(tableCells(res("discovery.k8s.io", "endpointslices", "EndpointSlice"), slice, kNow),
             json::parse(R"(["web-abc","IPv4","80","10.1.0.1","<unknown>"])"));
    json pdb = {{"metadata", {{"name", "p"}}}, {"spec", {{"minAvailable", "50%"}}}, {"status", {{"disruptionsAllowed", 1}}}};
    QCOMPARE(tableCells(res("policy", "poddisruptionbudgets", "PodDisruptionBudget"), pdb, kNow),
             json::parse(R"(["p","50%","N/A",1,"<unknown>"])"));
    json rb = {{"metadata", {{"name", "rb"}}}, {"roleRef", {{"kind", "ClusterRole"}, {"name", "view"}}},
               {"subjects", json::array({{{"kind", "User"}, {"name", "alice"}},
                                         {{"kind", "ServiceAccount"}, {"name", "sa"}, {"namespace", "ns"}},
                                         {{"kind", "Group"}, {"name", "devs"}}})}};
    QCOMPARE(tableCells(res("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"), rb, kNow),
             json::parse(R"(["rb","ClusterRole/view","<unknown>","alice","devs","ns/sa"])"));
  }

  void kindsWithoutPrinterGetTheDefaultTable() {
    for (auto info : {res("rbac.authorization.k8s.io", "roles", "Role"),
                      res("rbac.authorization.k8s.io", "clusterroles", "ClusterRole"),
                      res("", "limitranges", "LimitRange"),
                      res("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition")}) {
      auto cols = tableColumns(info);
      QCOMPARE(cols.size(), size_t(2));
      QCOMPARE(cols[1].name, std::string("Created At"));
      QCOMPARE(cols[1].type, std::string("date"));
    }
    json role = {{"metadata", {{"name", "r"}, {"creationTimestamp", "2024-05-01T14:00:00+02:00"}}}};
    QCOMPARE(tableCells(res("rbac.authorization.k8s.io", "roles", "Role"), role, kNow),
             json::parse(R"(["r","2024-05-01T12:00:00Z"])"));
  }

  void customResourceColumns() {
    ResourceInfo info = res("example.com", "widgets", "Widget");
    info.custom = true;
    TableColumn replicas;
    replicas.name = "Replicas";
    replicas.type = "integer";
    replicas.jsonPath = ".spec.replicas";
    TableColumn ready;
    ready.name = "Ready";
    ready.type = "string";
    ready.jsonPath = ".status.conditions[?(@.type==\"Ready\")].status";
    TableColumn created;
    created.name = "Age";
    created.type = "date";
    created.jsonPath = ".metadata.creationTimestamp";
    TableColumn size;
    size.name = "Size";
    size.type = "string";
    size.priority = 1;
    size.jsonPath = ".spec.size";
    info.columns = {replicas, ready, created, size};
    QCOMPARE(columnNames(info), (std::vector<std::string>{"Name", "Replicas", "Ready", "Age", "Size"}));
    QCOMPARE(tableColumns(info)[4].priority, 1);
    json w = {{"metadata", {{"name", "w1"}, {"creationTimestamp", ts(4000)}}},
              {"spec", {{"replicas", 3}}},
              {"status", {{"conditions", json::array({{{"type", "Synced"}, {"status", "False"}},
                                                       {{"type", "Ready"}, {"status", "True"}}})}}}};
    QCOMPARE(tableCells(info, w, kNow), json::parse(R"(["w1",3,"True","66m",null])"));

    ResourceInfo bare = res("example.com", "gadgets", "Gadget");
    bare.custom = true;
    QCOMPARE(columnNames(bare), (std::vector<std::string>{"Name", "Age"}));
    QCOMPARE(tableCells(bare, w, kNow), json::parse(R"(["w1","66m"])"));
  }

  void tableDocument() {
    auto info = res("", "configmaps", "ConfigMap");
    json cm = {{"metadata", {{"name", "c"}, {"namespace", "default"}, {"resourceVersion", "12"}}}, {"data", {{"a", "1"}}}};
    json t = buildTable(info, {cm}, "Metadata", "15", "tok", kNow);
    QCOMPARE(t["kind"], json("Table"));
    QCOMPARE(t["apiVersion"], json("meta.k8s.io/v1"));
    QCOMPARE(t["metadata"], json({{"resourceVersion", "15"}, {"continue", "tok"}}));
    QCOMPARE(t["columnDefinitions"][0],
             json({{"name", "Name"}, {"type", "string"}, {"format", "name"},
                   {"description", tableColumns(info)[0].description}, {"priority", 0}}));
    QCOMPARE(t["rows"][0]["cells"], json::parse(R"(["c",1,"<unknown>"])"));
    QCOMPARE(t["rows"][0]["object"],
             json({{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", cm["metadata"]}}));
    QVERIFY(!t["rows"][0].contains("conditions"));
    json none = buildTable(info, {cm}, "None", "", "", kNow);
    QVERIFY(!none["rows"][0].contains("object"));
    QCOMPARE(none["metadata"], json::object());
    QCOMPARE(buildTable(info, {cm}, "Object", "", "", kNow)["rows"][0]["object"], cm);
    QCOMPARE(buildTable(info, {}, "Metadata", "1", "", kNow)["rows"], json::array());
  }

  void everyPrintedKindStartsWithName() {
    const char* kinds[][2] = {{"", "pods"},          {"", "namespaces"},           {"", "services"},
                              {"", "endpoints"},     {"", "configmaps"},           {"", "secrets"},
                              {"", "nodes"},         {"", "serviceaccounts"},      {"", "persistentvolumes"},
                              {"", "persistentvolumeclaims"}, {"", "resourcequotas"}, {"apps", "deployments"},
                              {"apps", "replicasets"}, {"apps", "statefulsets"},   {"apps", "daemonsets"},
                              {"apps", "controllerrevisions"}, {"batch", "jobs"},  {"batch", "cronjobs"},
                              {"coordination.k8s.io", "leases"}, {"discovery.k8s.io", "endpointslices"},
                              {"policy", "poddisruptionbudgets"}, {"scheduling.k8s.io", "priorityclasses"},
                              {"rbac.authorization.k8s.io", "rolebindings"},
                              {"rbac.authorization.k8s.io", "clusterrolebindings"}};
    for (const auto& k : kinds) {
      auto info = res(k[0], k[1], "X");
      auto cols = tableColumns(info);
      QVERIFY2(cols.size() > 2, k[1]);
      QCOMPARE(cols[0].name, std::string("Name"));
      // Every row has one cell per column, even for an empty object.
      json cells = tableCells(info, json{{"metadata", {{"name", "x"}}}}, kNow);
      QVERIFY2(cells.size() == cols.size(), k[1]);
    }
  }
};

QTEST_APPLESS_MAIN(TableTest)
#include "table_test.moc"
