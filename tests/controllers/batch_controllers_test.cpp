// The Job, ttl-after-finished and CronJob controllers against a real API server, judged as a
// user of `kubectl get jobs,pods` and `kubectl wait --for=condition=complete` would. There is
// no kubelet: a fake one in this file runs pods (Running and Ready), finishes those labelled
// outcome=Succeeded|Failed and completes deletions; tests finish other pods themselves.

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "engine/api/object.h"
#include "engine/cluster/in_process.h"
#include "engine/controllers/controller.h"
#include "engine/controllers/cronjob.h"
#include "engine/controllers/job.h"
#include "tests/controllers/controller_test_util.h"

using namespace orrery;
using nlohmann::json;
using orrery::testing::eventually;
using orrery::testing::getOrNull;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kEvents{"", "v1", "events"};
const api::GroupVersionResource kJobs{"batch", "v1", "jobs"};
const api::GroupVersionResource kCronJobs{"batch", "v1", "cronjobs"};

json podTemplate(const std::string& outcome = "") {
  json labels = {{"app", "batch"}};
  if (!outcome.empty()) labels["outcome"] = outcome;
  return {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"restartPolicy", "Never"}, {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
}

json jobObject(const std::string& name, const json& spec) {
  return {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", {{"name", name}}}, {"spec", spec}};
}

const json* condition(const json& obj, const std::string& type) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].contains("conditions")) return nullptr;
  for (const auto& c : obj["status"]["conditions"])
    if (c.value("type", "") == type) return &c;
  return nullptr;
}

bool hasCondition(const json& obj, const std::string& type, const std::string& reason = "") {
  const json* c = condition(obj, type);
  return c && c->value("status", "") == "True" && (reason.empty() || c->value("reason", "") == reason);
}

int64_t statusInt(const json& obj, const char* f) {
  if (!obj.is_object() || !obj.contains("status") || !obj["status"].is_object()) return 0;
  return obj["status"].value(f, int64_t{0});
}

bool isActive(const json& pod) {
  std::string phase = pod["status"].value("phase", "");
  return phase != "Succeeded" && phase != "Failed" && !pod["metadata"].contains("deletionTimestamp");
}

bool hasTrackingFinalizer(const json& pod) {
  for (const auto& f : pod["metadata"].value("finalizers", json::array()))
    if (f == controllers::job::kTrackingFinalizer) return true;
  return false;
}

}  // namespace

class BatchControllersTest : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> server_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::InformerFactory> informers_;
  std::unique_ptr<controllers::ControllerManager> manager_;
  std::atomic<int64_t> clockSkewSeconds_{0};
  std::mutex kubeletMu_;
  std::set<std::string> kubeletNamespaces_;
  std::atomic<bool> stop_{false};
  std::thread kubelet_;

  // Sets a pod's phase as a kubelet would report it, with the container's state to match
  // (retrying on a fresh copy when the fake kubelet wrote it meanwhile).
  bool setPhase(const json& podIn, const std::string& phase) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      json pod = attempt == 0 ? podIn : get(kPods, podIn["metadata"].value("namespace", ""), podIn["metadata"].value("name", ""));
      if (pod.is_null()) return false;
      if (writePhase(pod, phase)) return true;
    }
    return false;
  }

  bool writePhase(const json& podIn, const std::string& phase) {
    json pod = podIn;
    std::string now = api::formatTime(std::chrono::system_clock::now());
    pod["status"]["phase"] = phase;
    bool ready = phase == "Running";
    pod["status"]["conditions"] = json::array({
        {{"type", "Ready"}, {"status", ready ? "True" : "False"}, {"lastTransitionTime", now}},
        {{"type", "PodScheduled"}, {"status", "True"}, {"lastTransitionTime", now}},
    });
    // A failing pod's exit code and an extra condition come from its labels (exit-code,
    // condition), so that a test can aim at a podFailurePolicy rule.
    const json& labels = pod["metadata"].value("labels", json::object());
    int exitCode = phase == "Succeeded" ? 0 : 1;
    if (phase == "Failed" && labels.contains("exit-code")) exitCode = std::stoi(labels["exit-code"].get<std::string>());
    if (phase == "Failed" && labels.contains("condition"))
      pod["status"]["conditions"].push_back({{"type", labels["condition"]}, {"status", "True"}, {"lastTransitionTime", now}});
    json state = ready ? json{{"running", {{"startedAt", now}}}}
                       : json{{"terminated",
                               {{"exitCode", exitCode},
                                {"reason", phase == "Succeeded" ? "Completed" : "Error"},
                                {"startedAt", now},
                                {"finishedAt", now}}}};
    pod["status"]["containerStatuses"] = json::array(
        {{{"name", "c"}, {"image", "busybox"}, {"imageID", ""}, {"ready", ready}, {"restartCount", 0}, {"state", state}}});
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
          std::string phase = pod["status"].value("phase", "");
          if (pod["metadata"].contains("deletionTimestamp")) {
            if (phase != "Succeeded" && phase != "Failed") (void)writePhase(pod, "Failed");
            client::DeleteOptions opts;
            opts.gracePeriodSeconds = 0;
            (void)client_->remove(kPods, ns, name, opts);
            continue;
          }
          if (phase == "Succeeded" || phase == "Failed") continue;
          std::string outcome = pod["metadata"]["labels"].value("outcome", "");
          // Indexed pods may finish by index: fail-index fails that index, succeed-index
          // completes that one; other indexes then run on.
          const json& podLabels = pod["metadata"]["labels"];
          const std::string index = podLabels.value(controllers::job::kCompletionIndex, "");
          if (!index.empty() && podLabels.value("fail-index", "") == index) outcome = "Failed";
          else if (!index.empty() && podLabels.contains("fail-index") && !podLabels.contains("succeed-index")) outcome = "Succeeded";
          if (!index.empty() && podLabels.value("succeed-index", "") == index) outcome = "Succeeded";
          if (!outcome.empty()) (void)writePhase(pod, outcome);
          else if (phase != "Running") (void)writePhase(pod, "Running");
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

  std::vector<json> podsOf(const std::string& ns, const std::string& job) {
    std::vector<json> out;
    for (auto& p : list(kPods, ns))
      if (p["metadata"]["labels"].value("batch.kubernetes.io/job-name", "") == job) out.push_back(p);
    return out;
  }

  // An Indexed Job's pods of one completion index.
  std::vector<json> podsOfIndex(const std::string& ns, const std::string& job, const std::string& index) {
    std::vector<json> out;
    for (auto& p : podsOf(ns, job))
      if (p["metadata"]["labels"].value(controllers::job::kCompletionIndex, "") == index) out.push_back(p);
    return out;
  }

  // kubectl delete job NAME: the Job, and its pods by the garbage collector's rules.
  void deleteJob(const std::string& ns, const std::string& name) {
    client::DeleteOptions opts;
    opts.propagationPolicy = "Background";
    QVERIFY(client_->remove(kJobs, ns, name, opts).ok());
  }

  std::vector<json> activePodsOf(const std::string& ns, const std::string& job) {
    std::vector<json> out;
    for (auto& p : podsOf(ns, job))
      if (isActive(p)) out.push_back(p);
    return out;
  }

  bool hasEvent(const std::string& ns, const std::string& reason, const std::string& messagePrefix,
                const std::string& object = "") {
    for (const auto& e : list(kEvents, ns))
      if (e.value("reason", "") == reason && e.value("message", "").rfind(messagePrefix, 0) == 0 &&
          (object.empty() || e["involvedObject"].value("name", "") == object))
        return true;
    return false;
  }

  std::chrono::system_clock::time_point controllerNow() {
    return std::chrono::system_clock::now() + std::chrono::seconds(clockSkewSeconds_.load());
  }

  // Sets the controllers' clock to 5 s past the current real minute (never after a CronJob
  // created next, which the server stamps with real time), so that a test has ~55 s before
  // the next activation comes on its own, and each +60 s brings exactly one.
  void alignClock() {
    clockSkewSeconds_ = 0;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(controllerNow().time_since_epoch()).count();
    clockSkewSeconds_ = 5 - secs % 60;
  }

  void createCronJob(const std::string& ns, const std::string& name, const std::string& policy, const json& pod,
                     int successfulHistory) {
    json cj = {{"apiVersion", "batch/v1"},
               {"kind", "CronJob"},
               {"metadata", {{"name", name}}},
               {"spec",
                {{"schedule", "* * * * *"},
                 {"concurrencyPolicy", policy},
                 {"successfulJobsHistoryLimit", successfulHistory},
                 {"jobTemplate", {{"spec", {{"template", pod}}}}}}}};
    auto r = client_->create(kCronJobs, ns, cj);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

  void suspend(const std::string& ns, const std::string& name) {
    auto r = client_->patch(kCronJobs, ns, name, client::PatchType::kMerge, R"({"spec":{"suspend":true}})");
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

  std::vector<json> jobsOf(const std::string& ns) { return list(kJobs, ns); }

  void createJob(const std::string& ns, const json& job) {
    auto r = client_->create(kJobs, ns, job);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto server = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(server.ok(), server.ok() ? "" : server.status().message().c_str());
    server_ = std::move(*server);
    client_ = server_->adminClient("batch-controllers-test");
    informers_ = std::make_unique<client::InformerFactory>(server_->adminClient("kube-controller-manager"));
    controllers::ControllerContext context;
    context.client = informers_->client();
    context.informers = informers_.get();
    context.now = [this] { return std::chrono::system_clock::now() + std::chrono::seconds(clockSkewSeconds_.load()); };
    manager_ = std::make_unique<controllers::ControllerManager>(context);
    controllers::JobControllerOptions jobOptions;
    jobOptions.podFailureBackoff = std::chrono::milliseconds(200);
    manager_->add(controllers::newJobController(jobOptions));
    manager_->add(controllers::newTtlAfterFinishedController());
    manager_->add(controllers::newCronJobController());
    auto st = manager_->start(std::chrono::seconds(20));
    QVERIFY2(st.isOk(), st.message().c_str());
    QVERIFY(manager_->find("job") != nullptr);
    QVERIFY(manager_->find("ttl-after-finished") != nullptr);
    QVERIFY(manager_->find("cronjob") != nullptr);
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

  void indexFormatting() {
    using controllers::job::formatIndexes;
    using controllers::job::parseIndexes;
    QCOMPARE(formatIndexes({}), std::string());
    QCOMPARE(formatIndexes({1, 3, 4, 5, 7}), std::string("1,3-5,7"));
    QCOMPARE(formatIndexes({0, 1}), std::string("0-1"));
    QCOMPARE(parseIndexes("1,3-5,7"), (std::set<int>{1, 3, 4, 5, 7}));
  }

  // completions 3, parallelism 2: never more than two running, three succeed, then Complete.
  void jobCompletesWithParallelism() {
    const std::string ns = "job-par";
    createNamespace(ns);
    createJob(ns, jobObject("work", {{"completions", 3}, {"parallelism", 2}, {"template", podTemplate()}}));
    QVERIFY(eventually([&] { return activePodsOf(ns, "work").size() == 2; }));
    QVERIFY(eventually([&] {
      json j = get(kJobs, ns, "work");
      return statusInt(j, "active") == 2 && statusInt(j, "ready") == 2 && j["status"].contains("startTime");
    }));
    // Each pod carries the Job's labels, a controller reference and the tracking finalizer.
    json job = get(kJobs, ns, "work");
    std::string uid = job["metadata"]["uid"];
    for (const auto& p : podsOf(ns, "work")) {
      QCOMPARE(p["metadata"]["labels"].value("batch.kubernetes.io/controller-uid", ""), uid);
      QCOMPARE(p["metadata"]["labels"].value("controller-uid", ""), uid);
      QCOMPARE(p["metadata"]["labels"].value("job-name", ""), std::string("work"));
      QVERIFY(hasTrackingFinalizer(p));
      QCOMPARE(p["metadata"]["ownerReferences"][0].value("kind", ""), std::string("Job"));
      QVERIFY(p["metadata"]["name"].get<std::string>().rfind("work-", 0) == 0);
    }
    // One succeeds: a third pod replaces it, still two running.
    auto running = activePodsOf(ns, "work");
    QVERIFY(setPhase(running[0], "Succeeded"));
    QVERIFY(eventually([&] { return podsOf(ns, "work").size() == 3 && activePodsOf(ns, "work").size() == 2; }));
    QVERIFY(eventually([&] { return statusInt(get(kJobs, ns, "work"), "succeeded") == 1; }));
    QVERIFY(!hasCondition(get(kJobs, ns, "work"), "Complete"));
    for (const auto& p : activePodsOf(ns, "work")) QVERIFY(setPhase(p, "Succeeded"));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "work"), "Complete", "CompletionsReached"); }));
    job = get(kJobs, ns, "work");
    QCOMPARE(statusInt(job, "succeeded"), int64_t{3});
    QCOMPARE(statusInt(job, "active"), int64_t{0});
    QCOMPARE(statusInt(job, "failed"), int64_t{0});
    QVERIFY(hasCondition(job, "SuccessCriteriaMet", "CompletionsReached"));
    QVERIFY(job["status"].contains("completionTime"));
    QCOMPARE(job["status"]["uncountedTerminatedPods"], json::object());
    QCOMPARE(podsOf(ns, "work").size(), size_t{3});  // no pod beyond the completions
    for (const auto& p : podsOf(ns, "work")) QVERIFY(!hasTrackingFinalizer(p));
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulCreate", "Created pod: work-"); }));
    QVERIFY(eventually([&] { return hasEvent(ns, "Completed", "Job completed", "work"); }));
  }

  // A work queue (parallelism 3, no completions): after the first success no pod is started,
  // and the Job completes when the last running one has succeeded.
  void workQueueJobStopsStartingAfterSuccess() {
    const std::string ns = "job-queue";
    createNamespace(ns);
    createJob(ns, jobObject("queue", {{"parallelism", 3}, {"template", podTemplate()}}));
    QVERIFY(eventually([&] { return activePodsOf(ns, "queue").size() == 3; }));
    QVERIFY(!get(kJobs, ns, "queue")["spec"].contains("completions"));
    auto running = activePodsOf(ns, "queue");
    QVERIFY(setPhase(running[0], "Succeeded"));
    QVERIFY(eventually([&] { return statusInt(get(kJobs, ns, "queue"), "succeeded") == 1; }));
    // Give the controller time to (wrongly) replace the finished pod.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    QCOMPARE(podsOf(ns, "queue").size(), size_t{3});
    QCOMPARE(activePodsOf(ns, "queue").size(), size_t{2});
    QVERIFY(!hasCondition(get(kJobs, ns, "queue"), "Complete"));
    for (const auto& p : activePodsOf(ns, "queue")) QVERIFY(setPhase(p, "Succeeded"));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "queue"), "Complete", "CompletionsReached"); }));
    QCOMPARE(statusInt(get(kJobs, ns, "queue"), "succeeded"), int64_t{3});
    QCOMPARE(podsOf(ns, "queue").size(), size_t{3});
  }

  // `kubectl wait --for=condition=complete` reads the same condition, through kubectl itself.
  void kubectlWaitComplete() {
    QString kubectl = QStandardPaths::findExecutable("kubectl");
    if (kubectl.isEmpty()) kubectl = QStandardPaths::findExecutable("kubectl", {"/usr/lib/google-cloud-sdk/bin"});
    if (kubectl.isEmpty()) QSKIP("kubectl is not installed");
    const std::string ns = "job-wait";
    createNamespace(ns);
    createJob(ns, jobObject("quick", {{"template", podTemplate("Succeeded")}}));
    QProcess p;
    p.start(kubectl, {"--kubeconfig", QString::fromStdString(server_->kubeconfigPath()), "-n",
                      QString::fromStdString(ns), "wait", "--for=condition=complete", "job/quick", "--timeout=30s"});
    QVERIFY(p.waitForFinished(40000));
    QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
    QVERIFY(QString(p.readAllStandardOutput()).contains("job.batch/quick condition met"));
  }

  // backoffLimit 1: the second failed pod fails the Job, FailureTarget first, then Failed.
  void jobBackoffLimitExceeded() {
    const std::string ns = "job-fail";
    createNamespace(ns);
    createJob(ns, jobObject("doomed", {{"backoffLimit", 1}, {"template", podTemplate("Failed")}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "doomed"), "Failed", "BackoffLimitExceeded"); }));
    json job = get(kJobs, ns, "doomed");
    QCOMPARE(statusInt(job, "failed"), int64_t{2});
    QCOMPARE(statusInt(job, "active"), int64_t{0});
    QVERIFY(hasCondition(job, "FailureTarget", "BackoffLimitExceeded"));
    QCOMPARE((*condition(job, "Failed"))["message"].get<std::string>(),
             std::string("Job has reached the specified backoff limit"));
    QVERIFY(!job["status"].contains("completionTime"));
    QVERIFY(!hasCondition(job, "Complete"));
    QCOMPARE(podsOf(ns, "doomed").size(), size_t{2});
    for (const auto& p : podsOf(ns, "doomed")) QVERIFY(!hasTrackingFinalizer(p));
    QVERIFY(eventually([&] { return hasEvent(ns, "BackoffLimitExceeded", "Job has reached the specified backoff limit"); }));
  }

  // podFailurePolicy FailJob: the first failed pod whose container exit code a FailJob rule
  // names fails the Job at once (backoffLimit notwithstanding), in kube's words.
  void podFailurePolicyFailJob() {
    const std::string ns = "job-pfp-failjob";
    createNamespace(ns);
    json pod = podTemplate("Failed");
    pod["metadata"]["labels"]["exit-code"] = "42";
    json policy = {{"rules", json::array({{{"action", "Ignore"}, {"onExitCodes", {{"operator", "In"}, {"values", {1}}}}},
                                          {{"action", "FailJob"},
                                           {"onExitCodes", {{"containerName", "c"}, {"operator", "In"}, {"values", {40, 42}}}}}})}};
    createJob(ns, jobObject("fatal", {{"backoffLimit", 6}, {"podFailurePolicy", policy}, {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "fatal"), "Failed", "PodFailurePolicy"); }));
    json job = get(kJobs, ns, "fatal");
    QCOMPARE(job["spec"].value("podReplacementPolicy", ""), std::string("Failed"));  // the default with a policy
    auto pods = podsOf(ns, "fatal");
    QCOMPARE(pods.size(), size_t{1});
    const std::string expected = "Container c for pod " + ns + "/" + pods[0]["metadata"].value("name", "") +
                                 " failed with exit code 42 matching FailJob rule at index 1";
    QCOMPARE((*condition(job, "Failed"))["message"].get<std::string>(), expected);
    QVERIFY(hasCondition(job, "FailureTarget", "PodFailurePolicy"));
    QCOMPARE(statusInt(job, "failed"), int64_t{1});
    QVERIFY(eventually([&] { return hasEvent(ns, "PodFailurePolicy", expected); }));
  }

  // podFailurePolicy Ignore: failures a rule ignores (here: pods with a DisruptionTarget
  // condition) are replaced but never counted, so even backoffLimit 0 does not fail the Job.
  void podFailurePolicyIgnore() {
    const std::string ns = "job-pfp-ignore";
    createNamespace(ns);
    json pod = podTemplate("Failed");
    pod["metadata"]["labels"]["condition"] = "DisruptionTarget";
    json policy = {{"rules", json::array({{{"action", "Ignore"}, {"onPodConditions", {{{"type", "DisruptionTarget"}}}}}})}};
    createJob(ns, jobObject("disrupted", {{"backoffLimit", 0}, {"podFailurePolicy", policy}, {"template", pod}}));
    QVERIFY(eventually([&] { return podsOf(ns, "disrupted").size() >= 3; }));
    json job = get(kJobs, ns, "disrupted");
    QVERIFY(!hasCondition(job, "Failed"));
    QVERIFY(!hasCondition(job, "FailureTarget"));
    QCOMPARE(statusInt(job, "failed"), int64_t{0});
    // The policy's status default, as kube's defaulting writes it.
    QCOMPARE(job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0].value("status", ""), std::string("True"));
    deleteJob(ns, "disrupted");
  }

  // An exit code a rule does not match (NotIn lists it) counts as usual.
  void podFailurePolicyNoMatchCounts() {
    const std::string ns = "job-pfp-count";
    createNamespace(ns);
    json pod = podTemplate("Failed");
    pod["metadata"]["labels"]["exit-code"] = "3";
    json policy = {{"rules", json::array({{{"action", "FailJob"}, {"onExitCodes", {{"operator", "NotIn"}, {"values", {3}}}}}})}};
    createJob(ns, jobObject("counted", {{"backoffLimit", 0}, {"podFailurePolicy", policy}, {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "counted"), "Failed", "BackoffLimitExceeded"); }));
    QCOMPARE(statusInt(get(kJobs, ns, "counted"), "failed"), int64_t{1});
  }

  // kube-apiserver's podFailurePolicy validation: field paths and words; nothing is created.
  void podFailurePolicyValidation() {
    const std::string ns = "job-pfp-invalid";
    createNamespace(ns);
    auto attempt = [&](const json& policy, const std::string& restartPolicy = "Never") {
      json pod = podTemplate();
      pod["spec"]["restartPolicy"] = restartPolicy;
      return client_->create(kJobs, ns, jobObject("bad", {{"podFailurePolicy", policy}, {"template", pod}}));
    };
    auto expectError = [&](const api::Result<json>& r, const std::string& text) {
      QVERIFY(!r.ok());
      QCOMPARE(r.status().code(), 422);
      QVERIFY2(r.status().message().find(text) != std::string::npos, r.status().message().c_str());
    };
    json exitRule = {{"action", "FailJob"}, {"onExitCodes", {{"operator", "In"}, {"values", {1}}}}};
    expectError(attempt({{"rules", {exitRule}}}, "OnFailure"),
                "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified");
    json unordered = exitRule;
    unordered["onExitCodes"]["values"] = {5, 0, 5};
    expectError(attempt({{"rules", {unordered}}}), "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator");
    expectError(attempt({{"rules", {unordered}}}), "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 5");
    expectError(attempt({{"rules", {unordered}}}), "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: []int32{5, 0, 5}: must be ordered");
    json both = exitRule;
    both["onPodConditions"] = {{{"type", "DisruptionTarget"}}};
    expectError(attempt({{"rules", {both}}}), "spec.podFailurePolicy.rules[0]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported");
    json failIndex = exitRule;
    failIndex["action"] = "FailIndex";
    expectError(attempt({{"rules", {failIndex}}}), "spec.podFailurePolicy.rules[0].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set");
    json stranger = exitRule;
    stranger["onExitCodes"]["containerName"] = "sidecar";
    expectError(attempt({{"rules", {stranger}}}),
                "spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: \"sidecar\": must be one of the container or initContainer names in the pod template");
    QVERIFY(list(kJobs, ns).empty());
    // The policy cannot change once the Job exists.
    auto created = attempt({{"rules", {exitRule}}});
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    auto patched = client_->patch(kJobs, ns, "bad", client::PatchType::kMerge,
                                  R"({"spec":{"podFailurePolicy":{"rules":[{"action":"Ignore","onExitCodes":{"operator":"In","values":[2]}}]}}})");
    expectError(patched, "spec.podFailurePolicy: Invalid value: batch.PodFailurePolicy{...}: field is immutable");
  }

  // backoffLimitPerIndex: index 1 fails on every try; it is retried once (its replacement
  // carries the index's failure count), then fails alone while 0 and 2 complete; the Job
  // then fails with FailedIndexes.
  void backoffLimitPerIndex() {
    const std::string ns = "job-per-index";
    createNamespace(ns);
    json pod = podTemplate();
    pod["metadata"]["labels"]["fail-index"] = "1";
    createJob(ns, jobObject("per-index", {{"completions", 3}, {"parallelism", 3}, {"completionMode", "Indexed"},
                                          {"backoffLimitPerIndex", 1}, {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "per-index"), "Failed", "FailedIndexes"); }));
    json job = get(kJobs, ns, "per-index");
    QCOMPARE(job["spec"].value("backoffLimit", 0), 2147483647);  // the default with backoffLimitPerIndex
    QCOMPARE(job["status"].value("failedIndexes", ""), std::string("1"));
    QCOMPARE(job["status"].value("completedIndexes", ""), std::string("0,2"));
    QCOMPARE((*condition(job, "Failed"))["message"].get<std::string>(), std::string("Job has failed indexes"));
    QCOMPARE(statusInt(job, "failed"), int64_t{2});
    std::multiset<std::string> counts;
    for (const auto& p : podsOfIndex(ns, "per-index", "1"))
      counts.insert(p["metadata"]["annotations"].value("batch.kubernetes.io/job-index-failure-count", "?"));
    QCOMPARE(counts, (std::multiset<std::string>{"0", "1"}));
  }

  // A FailIndex rule fails the pod's index at its first failure, retries left or not.
  void podFailurePolicyFailIndex() {
    const std::string ns = "job-pfp-failindex";
    createNamespace(ns);
    json pod = podTemplate();
    pod["metadata"]["labels"]["fail-index"] = "1";
    pod["metadata"]["labels"]["exit-code"] = "42";
    json policy = {{"rules", json::array({{{"action", "FailIndex"}, {"onExitCodes", {{"operator", "In"}, {"values", {42}}}}}})}};
    createJob(ns, jobObject("quick", {{"completions", 2}, {"parallelism", 2}, {"completionMode", "Indexed"},
                                      {"backoffLimitPerIndex", 3}, {"podFailurePolicy", policy}, {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "quick"), "Failed", "FailedIndexes"); }));
    QCOMPARE(get(kJobs, ns, "quick")["status"].value("failedIndexes", ""), std::string("1"));
    QCOMPARE(podsOfIndex(ns, "quick", "1").size(), size_t{1});
  }

  // With backoffLimitPerIndex, an index's replacement waits out that index's backoff, counted
  // on the controller's clock from when its failed pod finished. The clock here runs an hour
  // behind the pods' (the fake kubelet's) clock, so the wait is an hour: index 1 gets no
  // second pod, while index 0, which has not failed, completes meanwhile.
  void perIndexBackoffFromTheFailedPodsFinish() {
    const std::string ns = "job-index-backoff";
    createNamespace(ns);
    clockSkewSeconds_ = -3600;
    struct ResetClock {
      std::atomic<int64_t>& skew;
      ~ResetClock() { skew = 0; }
    } resetClock{clockSkewSeconds_};  // also when a check below fails
    json pod = podTemplate();
    pod["metadata"]["labels"]["fail-index"] = "1";
    createJob(ns, jobObject("patient", {{"completions", 2}, {"parallelism", 2}, {"completionMode", "Indexed"},
                                        {"backoffLimitPerIndex", 3}, {"template", pod}}));
    QVERIFY(eventually([&] { return get(kJobs, ns, "patient")["status"].value("completedIndexes", "") == "0"; }));
    QVERIFY(eventually([&] {
      for (const auto& p : podsOf(ns, "patient"))
        if (p["status"].value("phase", "") == "Failed") return true;
      return false;
    }));
    QTest::qWait(1500);  // the Job's own backoff in this fixture is 200 ms
    QCOMPARE(podsOfIndex(ns, "patient", "1").size(), size_t{1});
    deleteJob(ns, "patient");
  }

  // maxFailedIndexes 0: the first failed index fails the Job at once.
  void maxFailedIndexesExceeded() {
    const std::string ns = "job-max-failed";
    createNamespace(ns);
    json pod = podTemplate();
    pod["metadata"]["labels"]["fail-index"] = "0";
    pod["metadata"]["labels"]["succeed-index"] = "2";  // index 1 runs on until the Job fails
    createJob(ns, jobObject("strict", {{"completions", 3}, {"parallelism", 3}, {"completionMode", "Indexed"},
                                       {"backoffLimitPerIndex", 0}, {"maxFailedIndexes", 0}, {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "strict"), "Failed", "MaxFailedIndexesExceeded"); }));
    json job = get(kJobs, ns, "strict");
    QCOMPARE((*condition(job, "Failed"))["message"].get<std::string>(),
             std::string("Job has exceeded the specified maximum number of failed indexes"));
    QCOMPARE(job["status"].value("failedIndexes", ""), std::string("0"));
    QVERIFY(eventually([&] { return activePodsOf(ns, "strict").empty(); }));
  }

  // successPolicy: index 0 succeeding is enough; the other indexes' pods are stopped and the
  // Job completes with SuccessPolicy.
  void successPolicyCompletesEarly() {
    const std::string ns = "job-success-policy";
    createNamespace(ns);
    json pod = podTemplate();
    pod["metadata"]["labels"]["succeed-index"] = "0";
    createJob(ns, jobObject("leader", {{"completions", 3}, {"parallelism", 3}, {"completionMode", "Indexed"},
                                       {"successPolicy", {{"rules", {{{"succeededIndexes", "0"}}}}}},
                                       {"template", pod}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "leader"), "Complete", "SuccessPolicy"); }));
    json job = get(kJobs, ns, "leader");
    QVERIFY(hasCondition(job, "SuccessCriteriaMet", "SuccessPolicy"));
    QCOMPARE((*condition(job, "Complete"))["message"].get<std::string>(), std::string("Matched rules at index 0"));
    QCOMPARE(job["status"].value("completedIndexes", ""), std::string("0"));
    QVERIFY(activePodsOf(ns, "leader").empty());
    // Validation: kube-apiserver's words for a rule beyond the Job's completions.
    json bad = jobObject("bad", {{"completions", 3}, {"completionMode", "Indexed"},
                                 {"successPolicy", {{"rules", {{{"succeededIndexes", "1-4"}, {"succeededCount", 5}}}}}},
                                 {"template", podTemplate()}});
    auto refused = client_->create(kJobs, ns, bad);
    QVERIFY(!refused.ok());
    const std::string message = refused.status().message();
    QVERIFY2(message.find("spec.successPolicy.rules[0].succeededIndexes: Invalid value: \"1-4\": error parsing succeededIndexes: too large index: \"4\"") !=
                 std::string::npos, message.c_str());
    QVERIFY2(message.find("spec.successPolicy.rules[0].succeededCount: Invalid value: 5: must be less than or equal to 3 (the number of specified completions)") !=
                 std::string::npos, message.c_str());
  }

  // activeDeadlineSeconds: running pods are deleted and the Job fails with DeadlineExceeded.
  void jobDeadlineExceeded() {
    const std::string ns = "job-deadline";
    createNamespace(ns);
    createJob(ns, jobObject("slow", {{"activeDeadlineSeconds", 1}, {"parallelism", 2}, {"completions", 4},
                                     {"template", podTemplate()}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "slow"), "Failed", "DeadlineExceeded"); }));
    json job = get(kJobs, ns, "slow");
    QCOMPARE(statusInt(job, "active"), int64_t{0});
    QCOMPARE(statusInt(job, "failed"), int64_t{2});
    QCOMPARE((*condition(job, "Failed"))["message"].get<std::string>(),
             std::string("Job was active longer than specified deadline"));
    QVERIFY(eventually([&] { return activePodsOf(ns, "slow").empty(); }));
  }

  // Indexed: one pod per index with its annotation, label and hostname; completedIndexes.
  void indexedJob() {
    const std::string ns = "job-indexed";
    createNamespace(ns);
    createJob(ns, jobObject("idx", {{"completions", 3}, {"parallelism", 3}, {"completionMode", "Indexed"},
                                    {"template", podTemplate()}}));
    QVERIFY(eventually([&] { return activePodsOf(ns, "idx").size() == 3; }));
    std::map<std::string, json> byIndex;
    for (const auto& p : activePodsOf(ns, "idx")) {
      std::string i = p["metadata"]["annotations"].value(controllers::job::kCompletionIndex, "");
      QCOMPARE(p["metadata"]["labels"].value(controllers::job::kCompletionIndex, ""), i);
      QCOMPARE(p["spec"].value("hostname", ""), "idx-" + i);
      QVERIFY(p["metadata"]["name"].get<std::string>().rfind("idx-" + i + "-", 0) == 0);
      byIndex[i] = p;
    }
    QCOMPARE(byIndex.size(), size_t{3});
    QVERIFY(setPhase(byIndex["0"], "Succeeded"));
    QVERIFY(setPhase(byIndex["2"], "Succeeded"));
    QVERIFY(eventually([&] {
      json j = get(kJobs, ns, "idx");
      return j["status"].value("completedIndexes", "") == "0,2" && statusInt(j, "succeeded") == 2;
    }));
    // A failed index is retried by a new pod of the same index.
    QVERIFY(setPhase(byIndex["1"], "Failed"));
    json replacement;
    QVERIFY2(eventually([&] {
      for (const auto& p : activePodsOf(ns, "idx"))
        if (p["metadata"]["annotations"].value(controllers::job::kCompletionIndex, "") == "1") replacement = p;
      return !replacement.is_null();
    }), get(kJobs, ns, "idx")["status"].dump().c_str());
    QVERIFY(setPhase(replacement, "Succeeded"));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "idx"), "Complete"); }));
    json job = get(kJobs, ns, "idx");
    QCOMPARE(job["status"].value("completedIndexes", ""), std::string("0-2"));
    QCOMPARE(statusInt(job, "succeeded"), int64_t{3});
    QCOMPARE(statusInt(job, "failed"), int64_t{1});
  }

  // suspend: pods go, the Suspended condition says so; resume brings them back.
  void suspendAndResume() {
    const std::string ns = "job-suspend";
    createNamespace(ns);
    createJob(ns, jobObject("later", {{"suspend", true}, {"parallelism", 2}, {"completions", 2}, {"template", podTemplate()}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "later"), "Suspended", "JobSuspended"); }));
    QVERIFY(podsOf(ns, "later").empty());
    QVERIFY2(!get(kJobs, ns, "later")["status"].contains("startTime"), get(kJobs, ns, "later")["status"].dump().c_str());
    auto r = client_->patch(kJobs, ns, "later", client::PatchType::kMerge, R"({"spec":{"suspend":false}})");
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    QVERIFY(eventually([&] { return activePodsOf(ns, "later").size() == 2; }));
    QVERIFY(eventually([&] {
      json j = get(kJobs, ns, "later");
      const json* c = condition(j, "Suspended");
      return c && (*c)["status"] == "False" && (*c)["reason"] == "JobResumed";
    }));
  }

  // ttlSecondsAfterFinished: the finished Job is deleted once the (injected) clock passes it.
  void ttlAfterFinished() {
    const std::string ns = "job-ttl";
    createNamespace(ns);
    createJob(ns, jobObject("brief", {{"ttlSecondsAfterFinished", 3600}, {"template", podTemplate("Succeeded")}}));
    QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, "brief"), "Complete"); }));
    QTest::qWait(300);
    QVERIFY(!get(kJobs, ns, "brief").is_null());
    clockSkewSeconds_ += 7200;
    // Deleted in the foreground: with no garbage collector in this test, the Job stays with
    // its deletionTimestamp and the foregroundDeletion finalizer.
    QVERIFY(eventually([&] {
      json j = get(kJobs, ns, "brief");
      return j.is_null() || j["metadata"].contains("deletionTimestamp");
    }));
    clockSkewSeconds_ = 0;
  }

  // Every minute of the injected clock a Job named after the scheduled minute; history pruned.
  void cronJobCreatesJobsAndPrunesHistory() {
    const std::string ns = "cron-basic";
    createNamespace(ns);
    alignClock();
    createCronJob(ns, "tick", "Allow", podTemplate("Succeeded"), 1);
    QTest::qWait(700);
    QVERIFY(jobsOf(ns).empty());  // no minute has passed on the controller's clock
    std::set<std::string> seen;
    for (int round = 1; round <= 3; ++round) {
      clockSkewSeconds_ += 60;
      auto minute = std::chrono::duration_cast<std::chrono::minutes>(controllerNow().time_since_epoch()).count();
      std::string name = "tick-" + std::to_string(minute);
      QVERIFY2(eventually([&] { return !get(kJobs, ns, name).is_null(); }), name.c_str());
      seen.insert(name);
      json job = get(kJobs, ns, name);
      QCOMPARE(job["metadata"]["ownerReferences"][0].value("kind", ""), std::string("CronJob"));
      QVERIFY(job["metadata"]["annotations"].contains("batch.kubernetes.io/cronjob-scheduled-timestamp"));
      QVERIFY(eventually([&] { return hasCondition(get(kJobs, ns, name), "Complete"); }));
    }
    // successfulJobsHistoryLimit 1: only the newest finished Job stays.
    QVERIFY(eventually([&] { return jobsOf(ns).size() == 1; }));
    QCOMPARE(jobsOf(ns)[0]["metadata"]["name"].get<std::string>(), *seen.rbegin());
    QVERIFY(eventually([&] {
      json cj = get(kCronJobs, ns, "tick");
      return cj["status"].contains("lastSuccessfulTime") && cj["status"].contains("lastScheduleTime") &&
             !cj["status"].contains("active");
    }));
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulCreate", "Created job tick-"); }));
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulDelete", "Deleted job tick-"); }));
    QVERIFY(eventually([&] { return hasEvent(ns, "SawCompletedJob", "Saw completed job: tick-"); }));
    suspend(ns, "tick");
  }

  // spec.timeZone: the schedule reads on that zone's wall clock (Asia/Kolkata, UTC+05:30, so
  // the same fields in UTC would be 5.5 hours away), and the Job's scheduled-timestamp
  // annotation is written in the zone, as kube's getJobFromTemplate2.
  void cronJobRunsInItsTimeZone() {
    const std::string ns = "cron-zone";
    createNamespace(ns);
    alignClock();
    using namespace std::chrono;
    const auto due = floor<minutes>(controllerNow()) + minutes(1);
    const auto dueInKolkata = due + hours(5) + minutes(30);
    const auto dayStart = floor<days>(dueInKolkata);
    const hh_mm_ss clock(dueInKolkata - dayStart);
    json cj = {{"apiVersion", "batch/v1"},
               {"kind", "CronJob"},
               {"metadata", {{"name", "chai"}}},
               {"spec",
                {{"schedule", std::to_string(clock.minutes().count()) + " " + std::to_string(clock.hours().count()) + " * * *"},
                 {"timeZone", "Asia/Kolkata"},
                 {"concurrencyPolicy", "Allow"},
                 {"jobTemplate", {{"spec", {{"template", podTemplate("Succeeded")}}}}}}}};
    auto r = client_->create(kCronJobs, ns, cj);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    QTest::qWait(700);
    QVERIFY(jobsOf(ns).empty());
    clockSkewSeconds_ += 60;
    const std::string name = "chai-" + std::to_string(duration_cast<minutes>(due.time_since_epoch()).count());
    QVERIFY2(eventually([&] { return !get(kJobs, ns, name).is_null(); }), name.c_str());
    std::string stamp = get(kJobs, ns, name)["metadata"]["annotations"].value("batch.kubernetes.io/cronjob-scheduled-timestamp", "");
    char expected[32];
    const year_month_day ymd(dayStart);
    std::snprintf(expected, sizeof expected, "%04d-%02u-%02uT%02lld:%02lld:00+05:30", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long long>(clock.hours().count()), static_cast<long long>(clock.minutes().count()));
    QCOMPARE(stamp, std::string(expected));
    suspend(ns, "chai");
  }

  // A zone the tz database does not have is refused by the API with kube-apiserver's words;
  // so is a TZ= prefix in a new schedule, and "Local".
  void cronJobZoneValidation() {
    const std::string ns = "cron-zone-invalid";
    createNamespace(ns);
    auto attempt = [&](const json& specPatch) {
      json cj = {{"apiVersion", "batch/v1"},
                 {"kind", "CronJob"},
                 {"metadata", {{"name", "bad"}}},
                 {"spec",
                  {{"schedule", "0 9 * * *"},
                   {"jobTemplate", {{"spec", {{"template", podTemplate("Succeeded")}}}}}}}};
      cj["spec"].update(specPatch);
      return client_->create(kCronJobs, ns, cj);
    };
    auto unknown = attempt({{"timeZone", "Mars/Olympus"}});
    QVERIFY(!unknown.ok());
    QCOMPARE(unknown.status().code(), 422);
    QVERIFY2(unknown.status().message().find("spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus") !=
                 std::string::npos, unknown.status().message().c_str());
    auto local = attempt({{"timeZone", "Local"}});
    QVERIFY(!local.ok());
    QVERIFY2(local.status().message().find("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones") !=
                 std::string::npos, local.status().message().c_str());
    auto prefixed = attempt({{"schedule", "CRON_TZ=Europe/Berlin 0 9 * * *"}});
    QVERIFY(!prefixed.ok());
    QVERIFY2(prefixed.status().message().find("cannot use TZ or CRON_TZ in schedule, use timeZone field instead") !=
                 std::string::npos, prefixed.status().message().c_str());
    QVERIFY(list(kCronJobs, ns).empty());  // nothing half-created
    auto berlin = attempt({{"timeZone", "Europe/Berlin"}});
    QVERIFY2(berlin.ok(), berlin.ok() ? "" : berlin.status().message().c_str());
  }

  // Forbid: while a Job runs, the next schedule is skipped with JobAlreadyActive.
  void cronJobForbid() {
    const std::string ns = "cron-forbid";
    createNamespace(ns);
    alignClock();
    createCronJob(ns, "solo", "Forbid", podTemplate(), 3);
    clockSkewSeconds_ += 60;
    QVERIFY(eventually([&] { return jobsOf(ns).size() == 1; }));
    std::string first = jobsOf(ns)[0]["metadata"]["name"];
    QVERIFY(eventually([&] { return get(kCronJobs, ns, "solo")["status"].value("active", json::array()).size() == 1; }));
    clockSkewSeconds_ += 60;
    QVERIFY(eventually([&] { return hasEvent(ns, "JobAlreadyActive", "Not starting job because prior execution is running"); }));
    QTest::qWait(700);
    QCOMPARE(jobsOf(ns).size(), size_t{1});
    QCOMPARE(get(kCronJobs, ns, "solo")["status"]["active"][0].value("name", ""), first);
    suspend(ns, "solo");
  }

  // Replace: the running Job is deleted and the new one takes its place in status.active.
  void cronJobReplace() {
    const std::string ns = "cron-replace";
    createNamespace(ns);
    alignClock();
    createCronJob(ns, "swap", "Replace", podTemplate(), 3);
    clockSkewSeconds_ += 60;
    QVERIFY(eventually([&] { return jobsOf(ns).size() == 1; }));
    std::string first = jobsOf(ns)[0]["metadata"]["name"];
    clockSkewSeconds_ += 60;
    auto minute = std::chrono::duration_cast<std::chrono::minutes>(controllerNow().time_since_epoch()).count();
    std::string second = "swap-" + std::to_string(minute);
    QVERIFY(second != first);
    QVERIFY(eventually([&] {
      auto jobs = jobsOf(ns);
      return jobs.size() == 1 && jobs[0]["metadata"]["name"] == second;
    }));
    QVERIFY(eventually([&] {
      auto active = get(kCronJobs, ns, "swap")["status"].value("active", json::array());
      return active.size() == 1 && active[0].value("name", "") == second;
    }));
    QVERIFY(eventually([&] { return hasEvent(ns, "SuccessfulDelete", "Deleted job " + first); }));
    suspend(ns, "swap");
  }
};

QTEST_APPLESS_MAIN(BatchControllersTest)
#include "batch_controllers_test.moc"
