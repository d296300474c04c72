// The scheduler's own machinery without an API server: the queue (PrioritySort, backoff,
// unschedulable pods and the events that move them, nominations), the cache (assume, confirm,
// forget, copy-on-write snapshots that replace only what changed) and the decision history
// (per-pod and byte bounds, the SchedulingAttempt objects it serves).

#include <QtTest>

#include <atomic>
#include <thread>

#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/cache.h"
#include "engine/scheduler/decision_history.h"
#include "engine/scheduler/queue.h"
#include "engine/scheduler/scheduler.h"

using namespace orrery::scheduler;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
  std::shared_ptr<std::chrono::steady_clock::time_point> t =
      std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::time_point{} + 1000h);
  SteadyClock fn() const {
    auto p = t;
    return [p] { return *p; };
  }
  void advance(std::chrono::milliseconds d) { *t += d; }
};

PodInfoPtr queuedPod(const std::string& name, int32_t priority = 0) {
  auto p = std::make_shared<PodInfo>();
  p->ns = "default";
  p->name = name;
  p->uid = "uid-" + name;
  p->priority = priority;
  p->object = std::make_shared<json>(json{{"metadata", {{"name", name}, {"namespace", "default"}}},
                                          {"spec", {{"containers", json::array()}}}});
  return p;
}

json nodeJson(const std::string& name, const std::string& cpu = "4", const std::string& memory = "8Gi") {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"status",
           {{"capacity", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}},
            {"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}}}}}};
}

PodInfoPtr boundPod(const std::string& name, const std::string& node, const std::string& cpu = "1") {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}}},
              {"spec",
               {{"nodeName", node},
                {"containers",
                 json::array({{{"name", "c"}, {"image", "pause"}, {"resources", {{"requests", {{"cpu", cpu}}}}}}})}}}};
  auto parsed = parsePod(pod);
  if (!parsed.ok()) qFatal("parsePod: %s", parsed.status().message().c_str());
  return *parsed;
}

}  // namespace

class SchedulerRuntimeTest : public QObject {
  Q_OBJECT

 private slots:
  void prioritySortOrdersByPriorityThenArrival() {
    FakeClock clock;
    SchedulingQueue q({1000ms, 10000ms, 300000ms, clock.fn()});
    q.add(queuedPod("low-1", 0));
    clock.advance(1ms);
    q.add(queuedPod("high", 100));
    clock.advance(1ms);
    q.add(queuedPod("low-2", 0));
    QCOMPARE(q.tryPop()->pod->name, std::string("high"));
    QCOMPARE(q.tryPop()->pod->name, std::string("low-1"));
    QCOMPARE(q.tryPop()->pod->name, std::string("low-2"));
    QVERIFY(!q.tryPop());
  }

  void backoffDoublesAndIsCapped() {
    SchedulingQueue q({1000ms, 10000ms, 300000ms, {}});
    QCOMPARE(q.backoffDuration(1), 1000ms);
    QCOMPARE(q.backoffDuration(2), 2000ms);
    QCOMPARE(q.backoffDuration(4), 8000ms);
    QCOMPARE(q.backoffDuration(5), 10000ms);
    QCOMPARE(q.backoffDuration(40), 10000ms);
  }

  void errorsWaitOutTheirBackoff() {
    FakeClock clock;
    SchedulingQueue q({1000ms, 10000ms, 300000ms, clock.fn()});
    q.add(queuedPod("p"));
    auto first = q.tryPop();
    QCOMPARE(first->attempts, 1);
    first->error = true;
    q.addUnschedulable(*first);
    QCOMPARE(q.whereIs("default", "p"), std::string("backoff"));
    clock.advance(999ms);
    QVERIFY(!q.tryPop());
    clock.advance(1ms);
    auto second = q.tryPop();
    QVERIFY(second);
    QCOMPARE(second->attempts, 2);
    second->error = true;
    q.addUnschedulable(*second);
    clock.advance(1999ms);
    QVERIFY(!q.tryPop());  // second attempt: 2 s
    clock.advance(1ms);
    QVERIFY(q.tryPop());
  }

  void unschedulablePodsMoveOnlyOnHelpfulEvents() {
    FakeClock clock;
    SchedulingQueue q({1000ms, 10000ms, 300000ms, clock.fn()});
    q.add(queuedPod("needs-cpu"));
    auto popped = q.tryPop();
    popped->unschedulablePlugins = {"NodeResourcesFit"};
    q.addUnschedulable(*popped);
    QCOMPARE(q.whereIs("default", "needs-cpu"), std::string("unschedulable"));
    // A pod bound elsewhere frees nothing.
    q.moveOnEvent(ClusterEvent::kAssignedPodAdd);
    QCOMPARE(q.whereIs("default", "needs-cpu"), std::string("unschedulable"));
    // A deleted pod frees cpu; the pod's backoff (1 s) is over, so straight to activeQ.
    clock.advance(2000ms);
    q.moveOnEvent(ClusterEvent::kAssignedPodDelete);
    QCOMPARE(q.whereIs("default", "needs-cpu"), std::string("active"));

    // Still backing off when the event comes: backoffQ.
    auto again = q.tryPop();
    again->unschedulablePlugins = {"TaintToleration"};
    q.addUnschedulable(*again);
    q.moveOnEvent(ClusterEvent::kNodeAdd);
    QCOMPARE(q.whereIs("default", "needs-cpu"), std::string("backoff"));
  }

  void eventDuringTheAttemptSendsThePodToBackoff() {
    FakeClock clock;
    SchedulingQueue q({1000ms, 10000ms, 300000ms, clock.fn()});
    q.add(queuedPod("racy"));
    auto popped = q.tryPop();
    q.moveOnEvent(ClusterEvent::kNodeAdd);  // arrives while the cycle runs
    popped->unschedulablePlugins = {"NodeResourcesFit"};
    q.addUnschedulable(*popped);
    QCOMPARE(q.whereIs("default", "racy"), std::string("backoff"));
  }

  void leftoverUnschedulablePodsAreFlushedAfterFiveMinutes() {
    FakeClock clock;
    SchedulingQueue q({1000ms, 10000ms, 300000ms, clock.fn()});
    q.add(queuedPod("stuck"));
    auto popped = q.tryPop();
    popped->unschedulablePlugins = {"NodeAffinity"};
    q.addUnschedulable(*popped);
    clock.advance(299s);
    QCOMPARE(q.flushUnschedulableLeftover(), size_t(0));
    clock.advance(2s);
    QCOMPARE(q.flushUnschedulableLeftover(), size_t(1));
    QCOMPARE(q.whereIs("default", "stuck"), std::string("active"));
  }

  void deletedPodsLeaveTheQueueAndTheirNomination() {
    SchedulingQueue q({1000ms, 10000ms, 300000ms, {}});
    auto p = queuedPod("nominated", 10);
    q.add(p);
    q.nominate(p, "node-a");
    QCOMPARE(q.nominatedPodsForNode("node-a").size(), size_t(1));
    q.remove("default", "nominated");
    QVERIFY(q.nominatedPodsForNode("node-a").empty());
    QVERIFY(!q.tryPop());
    // A pod deleted while in flight is not re-queued.
    q.add(queuedPod("gone"));
    auto popped = q.tryPop();
    q.remove("default", "gone");
    q.addUnschedulable(*popped);
    QCOMPARE(q.whereIs("default", "gone"), std::string(""));
  }

  void popBlocksUntilAddOrClose() {
    SchedulingQueue q({1000ms, 10000ms, 300000ms, {}});
    std::thread adder([&] {
      std::this_thread::sleep_for(50ms);
      q.add(queuedPod("late"));
    });
    auto p = q.pop();
    adder.join();
    QVERIFY(p);
    QCOMPARE(p->pod->name, std::string("late"));
    std::thread closer([&] {
      std::this_thread::sleep_for(50ms);
      q.close();
    });
    QVERIFY(!q.pop());
    closer.join();
  }

  // ---- cache

  void assumedPodsCountUntilForgotten() {
    SchedulerCache cache;
    QVERIFY(cache.upsertNode(nodeJson("n1")).ok());
    auto pod = boundPod("web", "n1", "1500m");
    QVERIFY(cache.assumePod(pod).isOk());
    QVERIFY(cache.isAssumed(pod->uid));
    QCOMPARE(cache.node("n1")->requested.milliCpu, int64_t(1500));
    // Assuming twice is refused.
    QVERIFY(!cache.assumePod(pod).isOk());
    cache.forgetPod(pod);
    QVERIFY(!cache.hasPod(pod->uid));
    QCOMPARE(cache.node("n1")->requested.milliCpu, int64_t(0));
  }

  void theWatchConfirmsAnAssumedPod() {
    SchedulerCache cache;
    QVERIFY(cache.upsertNode(nodeJson("n1")).ok());
    auto pod = boundPod("web", "n1");
    QVERIFY(cache.assumePod(pod).isOk());
    cache.addPod(boundPod("web", "n1"));  // the informer's version
    QVERIFY(!cache.isAssumed(pod->uid));
    QVERIFY(cache.hasPod(pod->uid));
    QCOMPARE(cache.node("n1")->pods.size(), size_t(1));
    cache.forgetPod(pod);  // a confirmed pod is not forgotten
    QCOMPARE(cache.node("n1")->pods.size(), size_t(1));
    cache.removePod(pod);
    QCOMPARE(cache.node("n1")->pods.size(), size_t(0));
  }

  void snapshotsReplaceOnlyChangedNodesAndNeverChangeUnderneath() {
    SchedulerCache cache;
    for (int i = 0; i < 3; ++i) QVERIFY(cache.upsertNode(nodeJson("n" + std::to_string(i))).ok());
    Snapshot snap;
    cache.updateSnapshot(snap);
    QCOMPARE(snap.nodes.size(), size_t(3));
    NodeInfoPtr n0 = snap.nodes[snap.indexByName.at("n0")];
    NodeInfoPtr n1 = snap.nodes[snap.indexByName.at("n1")];
    QVERIFY(cache.assumePod(boundPod("a", "n1")).isOk());
    // The NodeInfo the snapshot holds did not change (copy-on-write).
    QCOMPARE(n1->pods.size(), size_t(0));
    cache.updateSnapshot(snap);
    QVERIFY(snap.nodes[snap.indexByName.at("n0")] == n0);  // untouched: same object
    QVERIFY(snap.nodes[snap.indexByName.at("n1")] != n1);
    QCOMPARE(snap.nodes[snap.indexByName.at("n1")]->pods.size(), size_t(1));
    QVERIFY(snap.nodes[snap.indexByName.at("n1")]->generation > n1->generation);

    // A node heartbeat (status only) is no event; a new label is.
    json beat = nodeJson("n2");
    beat["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}}});
    QCOMPARE(*cache.upsertNode(beat), false);
    json relabeled = nodeJson("n2");
    relabeled["metadata"]["labels"]["zone"] = "b";
    QCOMPARE(*cache.upsertNode(relabeled), true);
    cache.removeNode("n0");
    cache.updateSnapshot(snap);
    QCOMPARE(snap.nodes.size(), size_t(2));
    QVERIFY(!snap.find("n0"));
    QCOMPARE(snap.find("n2")->labels.at("zone"), std::string("b"));
    QCOMPARE(snap.find("n1")->pods.size(), size_t(1));
  }

  void podsSeenBeforeTheirNodeAreKept() {
    SchedulerCache cache;
    cache.addPod(boundPod("early", "late-node"));
    Snapshot snap;
    cache.updateSnapshot(snap);
    QVERIFY(snap.nodes.empty());  // no Node object yet: nothing to schedule on
    QVERIFY(cache.upsertNode(nodeJson("late-node")).ok());
    cache.updateSnapshot(snap);
    QCOMPARE(snap.nodes.size(), size_t(1));
    QCOMPARE(snap.nodes[0]->pods.size(), size_t(1));
  }

  // ---- decision history

  void historyKeepsTheLastAttemptsPerPod() {
    DecisionHistory h({3, 1 << 20});
    for (int i = 0; i < 5; ++i) {
      DecisionRecord r;
      r.podNamespace = "default";
      r.podName = "web";
      r.podUid = "u1";
      r.attempt = h.nextAttempt("default", "web", "u1");
      r.result = "Unschedulable";
      r.message = "attempt " + std::to_string(r.attempt);
      h.add(r);
    }
    auto records = h.records("default", "web");
    QCOMPARE(records.size(), size_t(3));
    QCOMPARE(records.front()->attempt, 3);
    QCOMPARE(records.back()->attempt, 5);
    QVERIFY(!h.get("default", "web-2"));
    auto obj = h.get("default", "web-5");
    QVERIFY(obj);
    QCOMPARE((*obj)["apiVersion"].get<std::string>(), std::string("scheduling.orrery.dev/v1alpha1"));
    QCOMPARE((*obj)["kind"].get<std::string>(), std::string("SchedulingAttempt"));
    QCOMPARE((*obj)["metadata"]["name"].get<std::string>(), std::string("web-5"));
    QCOMPARE((*obj)["metadata"]["labels"]["scheduling.orrery.dev/pod"].get<std::string>(), std::string("web"));
    QCOMPARE((*obj)["spec"]["pod"]["uid"].get<std::string>(), std::string("u1"));
    QCOMPARE((*obj)["spec"]["attempt"].get<int>(), 5);
    QVERIFY(!(*obj)["metadata"]["uid"].get<std::string>().empty());
    QVERIFY(!(*obj)["metadata"]["resourceVersion"].get<std::string>().empty());
    QVERIFY((*obj)["status"].is_object());
    QVERIFY(!h.get("default", "web"));
    QVERIFY(!h.get("default", "web-x"));
    QVERIFY(!h.get("other", "web-5"));
    QCOMPARE(h.list("default").size(), size_t(3));
    QCOMPARE(h.list("other").size(), size_t(0));
    QCOMPARE(h.list("").size(), size_t(3));

    // A new pod under the same name starts again at 1.
    QCOMPARE(h.nextAttempt("default", "web", "u2"), 1);
    QVERIFY(!h.get("default", "web-5"));
  }

  // What a watch of SchedulingAttempts reads: every change after a revision, in order, with
  // the attempt as it is now (or its identity once dropped), and 410 past what is remembered.
  void historyTellsItsChanges() {
    DecisionHistory h({2, 1 << 20});
    auto attempt = [&](const std::string& pod) {
      DecisionRecord r;
      r.podNamespace = "default";
      r.podName = pod;
      r.podUid = "uid-" + pod;
      r.attempt = h.nextAttempt("default", pod, r.podUid);
      r.result = "Unschedulable";
      h.add(r);
    };
    attempt("a");
    int64_t listed = 0;
    QCOMPARE(h.list("default", &listed).size(), size_t(1));
    QCOMPARE(listed, h.revision());  // the revision the list shows, read with it
    attempt("a");
    h.amend("default", "a", 2, "Error", "binding failed");
    attempt("a");  // a-1 is dropped: two per pod

    std::vector<DecisionHistory::Change> changes;
    int64_t current = 0;
    QVERIFY(h.changesSince(listed, &changes, &current));
    QCOMPARE(current, h.revision());
    std::vector<std::string> seen;
    for (const auto& c : changes) seen.push_back(c.type + " " + c.object["metadata"]["name"].get<std::string>());
    QCOMPARE(seen, (std::vector<std::string>{"ADDED a-2", "MODIFIED a-2", "ADDED a-3", "DELETED a-1"}));
    // ADDED and MODIFIED carry the attempt as it is now; DELETED its identity at the drop.
    QCOMPARE(changes[1].object["status"]["result"].get<std::string>(), std::string("Error"));
    QCOMPARE(changes[3].object["spec"]["attempt"].get<int>(), 1);
    QVERIFY(!changes[3].object.contains("status"));
    QCOMPARE(changes[3].object["metadata"]["resourceVersion"].get<std::string>(), std::to_string(changes[3].revision));
    for (size_t i = 1; i < changes.size(); ++i) QVERIFY(changes[i].revision > changes[i - 1].revision);

    // Nothing new: nothing, and no wait past the deadline.
    changes.clear();
    QVERIFY(h.changesSince(current, &changes, &current));
    QVERIFY(changes.empty());
    auto start = std::chrono::steady_clock::now();
    h.waitForChange(current, start + std::chrono::milliseconds(50));
    QVERIFY(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));

    // Past the log's length, a watch from the first revision must start over.
    for (size_t i = 0; i < DecisionHistory::kChangesKept; ++i) attempt("p" + std::to_string(i));
    QVERIFY(!h.changesSince(listed, &changes, &current));
    QVERIFY(h.changesSince(h.revision() - 10, &changes, &current));
  }

  // Readers (kubectl get, a watch) build their objects outside the history's lock, while
  // the scheduler goes on adding and amending: every object they get is whole and matches
  // what was added, and new plugin names and reasons seen meanwhile read back right.
  void historyServesReadersWhileItGrows() {
    DecisionHistory h({4, 4 << 20});
    auto reasonOf = [](int i) { return "node(s) had untolerated taint {k: v" + std::to_string(i % 97) + "}"; };
    auto pluginOf = [](int i) { return "Plugin" + std::to_string(i % 40); };
    std::atomic<bool> done{false};
    std::atomic<int> checked{0};
    std::atomic<bool> consistent{true};
    auto verify = [&](const nlohmann::json& object) {
      const std::string pod = object["spec"]["pod"].value("name", "");
      const int i = std::stoi(pod.substr(1));
      const auto& nodes = object["status"]["nodes"];
      bool ok = nodes.is_array() && nodes.size() == 3 && nodes[0].value("rejectedBy", "") == pluginOf(i) &&
                nodes[0]["reasons"] == nlohmann::json::array({reasonOf(i)}) && nodes[2].value("name", "") == "n" + std::to_string(i);
      const std::string result = object["status"].value("result", "");
      ok = ok && (result == "Scheduled" || result == "Error");
      if (!ok) consistent = false;
      ++checked;
    };
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r)
      readers.emplace_back([&] {
        int64_t seen = 0;
        while (!done) {
          for (const auto& o : h.list("")) verify(o);
          std::vector<DecisionHistory::Change> changes;
          int64_t current = 0;
          if (!h.changesSince(seen, &changes, &current)) seen = h.revision();
          else seen = current;
          for (const auto& c : changes)
            if (c.type != "DELETED") verify(c.object);
        }
      });
    for (int i = 0; i < 3000; ++i) {
      DecisionRecord r;
      r.podNamespace = "ns";
      r.podName = "p" + std::to_string(i);
      r.podUid = "u" + std::to_string(i);
      r.attempt = 1;
      r.result = "Scheduled";
      NodeDecision rejected, passed, other;
      rejected.node = "a";
      rejected.rejectedBy = pluginOf(i);
      rejected.reasons = {reasonOf(i)};
      passed.node = "b";
      other.node = "n" + std::to_string(i);
      r.nodes = {rejected, passed, other};
      h.add(r);
      if (i % 3 == 0) h.amend("ns", r.podName, 1, "Error", "binding failed");
    }
    done = true;
    for (auto& t : readers) t.join();
    QVERIFY(consistent);
    QVERIFY(checked > 0);
    auto last = h.get("ns", "p2999-1");
    QVERIFY(last);
    QCOMPARE((*last)["status"]["nodes"][0].value("rejectedBy", ""), pluginOf(2999));
  }

  void historyDropsTheOldestBeyondItsByteBound() {
    DecisionRecord sample;
    sample.podNamespace = "ns";
    sample.podName = "p0";
    sample.message = std::string(2000, 'x');
    int64_t one = static_cast<int64_t>(sample.approximateBytes());
    DecisionHistory h({8, one * 10});
    for (int i = 0; i < 40; ++i) {
      DecisionRecord r = sample;
      r.podName = "p" + std::to_string(i);
      r.podUid = "u" + std::to_string(i);
      r.attempt = h.nextAttempt("ns", r.podName, r.podUid);
      h.add(r);
    }
    QVERIFY(h.bytes() <= one * 10);
    QVERIFY(h.size() >= 5);
    QVERIFY(h.size() < 10);
    QVERIFY(h.get("ns", "p39-1"));  // newest kept
    QVERIFY(!h.get("ns", "p0-1"));  // oldest dropped
  }

  // The history stores records compactly (interned names, scores in 16 or 32 bits, totals
  // recomputed) and gives back exactly what was added, whatever width the scores need.
  void historyReadsBackWhatWasStored() {
    DecisionHistory h({8, 1 << 20});
    auto make = [](const std::string& pod, int64_t big, bool oddTotal) {
      DecisionRecord r;
      r.podNamespace = "ns";
      r.podName = pod;
      r.podUid = pod + "-uid";
      r.attempt = 1;
      r.result = "Scheduled";
      r.node = "node-b";
      r.scorePlugins = {{"NodeResourcesFit", 1}, {"InterPodAffinity", 2}};
      NodeDecision a;
      a.node = "node-a";
      a.rejectedBy = "TaintToleration";
      a.reasons = {"node(s) had untolerated taint {dedicated: gpu}"};
      a.unresolvable = true;
      NodeDecision b;
      b.node = "node-b";
      b.scoreRow = 0;
      NodeDecision c;
      c.node = "node-c";
      c.scoreRow = 1;
      // Rows: raw, normalized per plugin.
      r.scores = {90, 90, big, 100, 10, 10, 0, 0};
      b.total = 90 * 1 + 100 * 2;
      c.total = oddTotal ? 7 : 10 * 1 + 0 * 2;
      r.nodes = {a, b, c};
      return r;
    };
    const std::vector<std::pair<std::string, DecisionRecord>> cases = {
        {"small", make("small", 50, false)},             // every score fits 16 bits
        {"wide", make("wide", 1 << 20, false)},          // one needs 32
        {"huge", make("huge", int64_t{1} << 40, false)}, // one needs 64
        {"odd", make("odd", 50, true)},                  // a total that is not the weighted sum
    };
    for (const auto& [pod, record] : cases) {
      h.add(record);
      auto back = h.records("ns", pod);
      QCOMPARE(back.size(), size_t(1));
      const DecisionRecord& r = *back.front();
      QCOMPARE(r.scores, record.scores);
      QCOMPARE(r.nodes.size(), size_t(3));
      for (size_t i = 0; i < 3; ++i) {
        QCOMPARE(r.nodes[i].node, record.nodes[i].node);
        QCOMPARE(r.nodes[i].rejectedBy, record.nodes[i].rejectedBy);
        QCOMPARE(r.nodes[i].reasons, record.nodes[i].reasons);
        QCOMPARE(r.nodes[i].unresolvable, record.nodes[i].unresolvable);
        QCOMPARE(r.nodes[i].scoreRow, record.nodes[i].scoreRow);
        QCOMPARE(r.nodes[i].total, record.nodes[i].total);
      }
    }
  }

  void attemptResourcePrintsItsColumns() {
    auto info = schedulingAttemptResource();
    QCOMPARE(info.resource, std::string("schedulingattempts"));
    QCOMPARE(info.kind, std::string("SchedulingAttempt"));
    QVERIFY(info.namespaced);
    QCOMPARE(info.shortNames, std::vector<std::string>{"attempt"});
    std::vector<std::string> names;
    for (const auto& c : info.columns) names.push_back(c.name);
    QCOMPARE(names, (std::vector<std::string>{"Name", "Pod", "Attempt", "Result", "Node", "Feasible", "Ranked-By", "Message", "Age"}));
    QCOMPARE(info.columns[6].priority, 1);
  }
};

QTEST_APPLESS_MAIN(SchedulerRuntimeTest)
#include "scheduler_runtime_test.moc"
