// The framework around the plugins: typed pods and nodes, kube's cycle order and node
// sampling, the FailedScheduling wording, the decision record, preemption, and the
// KubeSchedulerConfiguration parser.

#include <QtTest>

#include <set>

#include "engine/scheduler/plugins/helpers.h"
#include "tests/scheduler/plugin_fixture.h"

using namespace fixture;

namespace {

json priorityPod(const std::string& name, int priority, const std::string& cpu, json labels = json::object(),
                 const std::string& created = "2024-01-01T00:00:00Z") {
  auto p = pod(name, cpu, "", std::move(labels));
  p["spec"]["priority"] = priority;
  p["metadata"]["creationTimestamp"] = created;
  return p;
}

}  // namespace

class SchedulerFrameworkTest : public QObject {
  Q_OBJECT

 private:
  // What the scheduler fills in before a cycle.
  static DecisionRecord recordFor(const PodInfo& pod) {
    DecisionRecord r;
    r.podNamespace = pod.ns;
    r.podName = pod.name;
    r.podUid = pod.uid;
    r.attempt = 1;
    return r;
  }
  // Assumes `pod` on `nodeName` in the snapshot, as the scheduler's cache does after a cycle.
  static void place(Snapshot& s, const PodInfo& pod, const std::string& nodeName) {
    for (auto& n : s.nodes) {
      if (n->name != nodeName) continue;
      auto changed = std::make_shared<NodeInfo>(*n);
      auto bound = std::make_shared<PodInfo>(pod);
      bound->nodeName = nodeName;
      changed->addPod(bound);
      n = changed;
    }
    s.reindex();
  }

 private slots:
  void parsePodEffectiveRequests() {
    auto p = pod("p", "1", "1Gi");
    p["spec"]["containers"].push_back({{"name", "b"}, {"image", "registry.local:5000/app:v1"}, {"resources", {{"requests", {{"cpu", "500m"}}}}}});
    p["spec"]["initContainers"] = json::array(
        {{{"name", "init"}, {"image", "busybox"}, {"resources", {{"requests", {{"cpu", "3"}, {"memory", "512Mi"}}}}}},
         {{"name", "sidecar"}, {"image", "quay.io/x/y@sha256:abc"}, {"restartPolicy", "Always"},
          {"resources", {{"requests", {{"cpu", "250m"}}}}}}});
    p["spec"]["overhead"] = {{"cpu", "100m"}, {"memory", "10Mi"}};
    auto info = parse(p);
    // Containers 1.5 + sidecar 0.25 = 1.75 < the init container's 3: 3 + 0.1 overhead.
    QCOMPARE(info->requests.milliCpu, int64_t{3100});
    QCOMPARE(info->requests.memory, int64_t{1024 + 10} * 1024 * 1024);
    // The second container and the sidecar have no memory request: scoring counts 200Mi each.
    QCOMPARE(info->nonZeroRequests.memory, int64_t{1024 + 200 + 200 + 10} * 1024 * 1024);
    QCOMPARE(info->images, (std::vector<std::string>{"docker.io/library/busybox:latest", "quay.io/x/y@sha256:abc",
                                                     "docker.io/library/nginx:latest", "registry.local:5000/app:v1"}));
    auto bad = pod("bad", "lots");
    auto r = parsePod(bad);
    QVERIFY(!r);
    QVERIFY(r.status().message().rfind("spec.containers[0].resources.requests[cpu]: ", 0) == 0);
  }

  void nodeInfoAccounting() {
    auto n = parseNode(node("n1", "4", "8Gi", 10));
    QVERIFY(n.ok());
    QCOMPARE((*n)->allocatable.milliCpu, int64_t{4000});
    QCOMPARE((*n)->allocatable.allowedPodNumber, int64_t{10});
    auto a = parse(pod("a", "1"));
    auto b = parse(pod("b"));
    (*n)->addPod(a);
    (*n)->addPod(b);
    QCOMPARE((*n)->requested.milliCpu, int64_t{1000});
    QCOMPARE((*n)->nonZeroRequested.milliCpu, int64_t{1100});
    QVERIFY((*n)->removePod("uid-a"));
    QVERIFY(!(*n)->removePod("uid-a"));
    QCOMPARE((*n)->requested.milliCpu, int64_t{0});
    QCOMPARE((*n)->pods.size(), size_t{1});
  }

  // label() answers the two topology keys from their copies and every other key from labels,
  // in copies of a NodeInfo too (the cache copies one on every pod it adds).
  void nodeLabelsByKey() {
    nlohmann::json n = node("n1", "4", "8Gi", 10);
    n["metadata"]["labels"] = {{"kubernetes.io/hostname", "n1"}, {"topology.kubernetes.io/zone", "zone-a"}, {"disk", "ssd"}};
    auto parsed = parseNode(n);
    QVERIFY(parsed.ok());
    NodeInfo copy = **parsed;
    for (const NodeInfo* info : {parsed->get(), &copy}) {
      QVERIFY(info->label("kubernetes.io/hostname") && *info->label("kubernetes.io/hostname") == "n1");
      QVERIFY(info->label("topology.kubernetes.io/zone") && *info->label("topology.kubernetes.io/zone") == "zone-a");
      QVERIFY(info->label("disk") && *info->label("disk") == "ssd");
      QVERIFY(info->label("topology.kubernetes.io/region") == nullptr);
    }
    // A zone label with an empty value is there; a node without labels has none.
    n["metadata"]["labels"] = {{"topology.kubernetes.io/zone", ""}};
    parsed = parseNode(n);
    QVERIFY(parsed.ok());
    QVERIFY((*parsed)->label("topology.kubernetes.io/zone") && (*parsed)->label("topology.kubernetes.io/zone")->empty());
    QVERIFY((*parsed)->label("kubernetes.io/hostname") == nullptr);
    n["metadata"].erase("labels");
    parsed = parseNode(n);
    QVERIFY(parsed.ok());
    QVERIFY((*parsed)->label("topology.kubernetes.io/zone") == nullptr);
    // Relabelled in place: indexTopologyLabels() brings the copies along.
    (*parsed)->labels["kubernetes.io/hostname"] = "renamed";
    (*parsed)->indexTopologyLabels();
    QVERIFY((*parsed)->label("kubernetes.io/hostname") && *(*parsed)->label("kubernetes.io/hostname") == "renamed");
  }

  void numFeasibleNodes() {
    QCOMPARE(numFeasibleNodesToFind(0, 50), 50);
    QCOMPARE(numFeasibleNodesToFind(0, 100), 100);
    QCOMPARE(numFeasibleNodesToFind(0, 1000), 420);   // 50 - 1000/125 = 42%
    QCOMPARE(numFeasibleNodesToFind(0, 5000), 500);   // 10%
    QCOMPARE(numFeasibleNodesToFind(0, 50000), 2500);  // floor of 5%
    QCOMPARE(numFeasibleNodesToFind(1, 1000), 100);    // at least 100
    QCOMPARE(numFeasibleNodesToFind(100, 1000), 1000);
  }

  void fitErrorMessageSortsLikeKube() {
    std::vector<NodeDecision> ds;
    auto rejected = [&](const std::string& name, const std::string& reason) {
      NodeDecision d;
      d.node = name;
      d.rejectedBy = "X";
      d.reasons = {reason};
      ds.push_back(d);
    };
    for (int i = 0; i < 10; ++i) rejected("a" + std::to_string(i), "Insufficient cpu");
    for (int i = 0; i < 2; ++i) rejected("b" + std::to_string(i), "node(s) were unschedulable");
    // kube sorts the "<count> <reason>" strings: "10 ..." before "2 ...".
    QCOMPARE(fitErrorMessage(12, ds, ""),
             std::string("0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."));
    QCOMPARE(fitErrorMessage(3, {}, "pod affinity terms conflict"),
             std::string("0/3 nodes are available: pod affinity terms conflict."));
  }

  void filtersRunInKubeOrderAndStopAtFirstRejection() {
    auto both = withTaint(node("n1", "1"), "k", "v", "NoSchedule");
    both["spec"]["unschedulable"] = true;
    auto r = schedule(pod("p", "2"), snapshot({{both, {}}}));
    const auto& d = r.record.nodes.at(0);
    QCOMPARE(d.rejectedBy, std::string("NodeUnschedulable"));
    QCOMPARE(d.reasons.size(), size_t{1});
    const auto& p = defaultProfile();
    std::vector<std::string> filters;
    for (const auto& f : p.filter) filters.push_back(f.name);
    QCOMPARE(filters, (std::vector<std::string>{"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                                                "NodePorts", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity"}));
    std::vector<std::pair<std::string, int>> scores;
    for (const auto& s : p.score) scores.push_back({s.name, s.weight});
    QCOMPARE(scores, (std::vector<std::pair<std::string, int>>{{"TaintToleration", 3},
                                                               {"NodeAffinity", 2},
                                                               {"NodeResourcesFit", 1},
                                                               {"PodTopologySpread", 2},
                                                               {"InterPodAffinity", 2},
                                                               {"NodeResourcesBalancedAllocation", 1},
                                                               {"ImageLocality", 1}}));
    QCOMPARE(p.postFilter.at(0).name, std::string("DefaultPreemption"));
  }

  void recordIsComplete() {
    auto s = snapshot({{node("n1"), {}}, {node("n2"), {}}, {withTaint(node("n3"), "a", "b", "NoSchedule"), {}}});
    auto r = schedule(pod("p", "100m"), s);
    QCOMPARE(r.record.result, std::string("Scheduled"));
    QCOMPARE(r.record.nodesTotal, 3);
    QCOMPARE(r.record.nodesEvaluated, 3);
    QCOMPARE(r.record.nodesFeasible, 2);
    QCOMPARE(r.record.nodes.size(), size_t{3});
    QVERIFY(r.record.message.rfind("Successfully assigned default/p to n", 0) == 0);
    for (const auto& d : r.record.nodes) {
      if (d.node == "n3") continue;
      QVERIFY(r.record.scored(d));
      int64_t total = 0;
      for (size_t i = 0; i < r.record.scorePlugins.size(); ++i) {
        QVERIFY(r.record.normalized(d, i) >= 0 && r.record.normalized(d, i) <= 100);
        QCOMPARE(r.record.weighted(d, i), r.record.normalized(d, i) * r.record.scorePlugins[i].weight);
        total += r.record.weighted(d, i);
      }
      QVERIFY(total > 0);
      QCOMPARE(d.total, total);
    }
    std::set<std::string> points;
    for (const auto& t : r.record.timings) points.insert(t.extensionPoint);
    QVERIFY(points.count("PreFilter") && points.count("Filter") && points.count("PreScore") && points.count("Score") &&
            points.count("NormalizeScore"));

    auto j = r.record.toJson();
    QCOMPARE(j["result"].get<std::string>(), std::string("Scheduled"));
    QCOMPARE(j["nodes"].size(), size_t{3});
    bool sawRejected = false, sawScores = false;
    for (const auto& n : j["nodes"]) {
      if (n.contains("rejectedBy")) {
        sawRejected = true;
        QCOMPARE(n["reasons"][0].get<std::string>(), std::string("node(s) had untolerated taint {a: b}"));
      } else {
        sawScores = true;
        QCOMPARE(n["scores"][0]["plugin"].get<std::string>(), r.record.scorePlugins[0].name);
        QVERIFY(n["scores"][0].contains("weighted") && n.contains("total"));
      }
    }
    QVERIFY(sawRejected && sawScores);
    QVERIFY(j["timings"].size() > 0);
    QVERIFY(r.record.approximateBytes() > sizeof(DecisionRecord));
  }

  void onlyOneFeasibleNodeSkipsScoring() {
    auto s = snapshot({{node("n1", "1"), {}}, {node("n2"), {}}});
    auto r = schedule(pod("p", "2"), s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    QVERIFY(r.record.scorePlugins.empty());
  }

  void samplesNodesFromTheStartIndexDeterministically() {
    std::vector<NodeSpec> specs;
    for (int i = 0; i < 1000; ++i) specs.push_back({node("n" + std::to_string(i)), {}});
    auto s = snapshot(specs);
    auto seq = schedule(pod("p", "100m"), s, defaultProfile(), 990);
    setParallelThreshold(64);  // the same cycle on the worker pool gives the same record
    auto a = schedule(pod("p", "100m"), s, defaultProfile(), 990);
    QCOMPARE(seq.record.nodesEvaluated, a.record.nodesEvaluated);
    for (size_t i = 0; i < a.record.nodes.size(); ++i) {
      QCOMPARE(seq.record.nodes[i].node, a.record.nodes[i].node);
      QCOMPARE(seq.record.nodes[i].total, a.record.nodes[i].total);
    }
    QCOMPARE(a.record.nodesEvaluated, 420);
    QCOMPARE(a.record.nodesFeasible, 420);
    QCOMPARE(a.record.nodes.front().node, std::string("n990"));
    QCOMPARE(a.record.nodes.back().node, std::string("n409"));  // wrapped around
    // Half the nodes full: the scan goes on until 420 fit.
    std::vector<NodeSpec> half;
    for (int i = 0; i < 1000; ++i) half.push_back({node("m" + std::to_string(i), i % 2 ? "4" : "100m"), {}});
    auto b = schedule(pod("p", "1"), snapshot(half));
    QCOMPARE(b.record.nodesFeasible, 420);
    QCOMPARE(b.record.nodesEvaluated, 840);
    setParallelThreshold(2048);
  }

  void tiesAreBrokenAtRandom() {
    auto s = snapshot({{node("n1"), {}}, {node("n2"), {}}, {node("n3"), {}}});
    auto fw = Framework::create(defaultProfile());
    QVERIFY(fw.ok());
    auto p = parse(pod("p"));
    std::set<std::string> chosen;
    for (int i = 0; i < 60; ++i) {
      DecisionRecord r;
      chosen.insert((*fw)->schedule(*p, s, 0, 0, r).node);
    }
    QCOMPARE(chosen.size(), size_t{3});
  }

  // Opportunistic batching (KEP-5598). A pod like the last one takes the best node of the
  // last full cycle's ranking, the node chosen last rescored with its new pod. With every
  // node in view and only this scheduler placing pods, it must choose a node a full cycle
  // would choose (ties aside).
  void batchedCyclesChooseWhatAFullCycleWould() {
    std::vector<NodeSpec> specs;
    const char* cpus[] = {"2", "3", "4", "6", "8", "12"};  // scores differ and move as pods land
    for (int i = 0; i < 6; ++i) specs.push_back({node("n" + std::to_string(i), cpus[i], "16Gi"), {}});
    auto s = snapshot(specs);
    auto batched = Framework::create(defaultProfile(), 0, /*opportunisticBatching=*/true);
    auto full = Framework::create(defaultProfile(), 0, /*opportunisticBatching=*/false);
    QVERIFY(batched.ok() && full.ok());
    int fromRanking = 0;
    std::set<std::string> rescored;
    for (int cycle = 1; cycle <= 60; ++cycle) {
      auto p = parse(pod("p" + std::to_string(cycle), "500m", "1Gi"));
      DecisionRecord got = recordFor(*p), want = recordFor(*p);
      auto chosen = (*batched)->schedule(*p, s, 0, cycle, got);
      auto best = (*full)->schedule(*p, s, 0, cycle, want);
      QVERIFY2(!chosen.node.empty(), got.message.c_str());
      const NodeDecision* asFullCycleSawIt = decisionFor(want, chosen.node);
      QVERIFY(asFullCycleSawIt && asFullCycleSawIt->rejectedBy.empty());
      QCOMPARE(asFullCycleSawIt->total, decisionFor(want, best.node)->total);
      if (got.batch) {
        ++fromRanking;
        QVERIFY(got.nodesEvaluated <= 2);
        // The chosen node carries the total the ranking gave it, which a full cycle agrees with.
        QCOMPARE(decisionFor(got, chosen.node)->total, asFullCycleSawIt->total);
        if (!got.batch->rescoredNode.empty()) rescored.insert(got.batch->rescoredNode);
      }
      place(s, *p, chosen.node);
    }
    // 35 CPUs hold 70 such pods: every cycle after the first reuses the ranking, and every
    // node chosen was rescored on the next cycle.
    QCOMPARE(fromRanking, 59);
    QCOMPARE((*batched)->batchedCycles(), int64_t{59});
    QCOMPARE(rescored.size(), size_t{6});
  }

  void batchedRecordsShowWhatWasReused() {
    // One pod per node: the node chosen last no longer fits and leaves the ranking.
    auto s = snapshot({{node("n1", "4", "32Gi", 1), {}}, {node("n2", "4", "32Gi", 1), {}}, {node("n3", "4", "32Gi", 1), {}}});
    auto fw = Framework::create(defaultProfile());
    QVERIFY(fw.ok());
    std::vector<DecisionRecord> records;
    for (int cycle = 1; cycle <= 4; ++cycle) {
      auto p = parse(pod("p" + std::to_string(cycle), "100m"));
      DecisionRecord r = recordFor(*p);
      auto o = (*fw)->schedule(*p, s, 0, cycle, r);
      if (!o.node.empty()) place(s, *p, o.node);
      records.push_back(std::move(r));
    }
    QVERIFY(!records[0].batch);
    QCOMPARE(records[0].nodesEvaluated, 3);
    const DecisionRecord& second = records[1];
    QVERIFY(second.batch);
    QCOMPARE(second.batch->fromPod, std::string("default/p1"));
    QCOMPARE(second.batch->fromAttempt, 1);
    QCOMPARE(second.batch->candidates, 2);
    QVERIFY(second.batch->rescoredNode.empty());
    QCOMPARE(second.nodesEvaluated, 2);
    QCOMPARE(second.nodesFeasible, 1);
    QCOMPARE(second.nodes.size(), size_t{2});
    QCOMPARE(second.nodes[0].node, records[0].node);
    QCOMPARE(second.nodes[0].rejectedBy, std::string("NodeResourcesFit"));
    QCOMPARE(second.nodes[0].reasons, std::vector<std::string>{"Too many pods"});
    QCOMPARE(second.nodes[1].node, second.node);
    QVERIFY(second.scored(second.nodes[1]));
    auto j = second.toJson();
    QCOMPARE(j["batch"]["fromAttempt"]["pod"], json("default/p1"));
    QCOMPARE(j["batch"]["fromAttempt"]["attempt"], json(1));
    QCOMPARE(j["batch"]["candidates"], json(2));
    QVERIFY(!j["batch"].contains("rescoredNode"));
    QCOMPARE(j["nodes"].size(), size_t{2});
    QCOMPARE(records[2].batch->candidates, 1);
    // Nothing left in the ranking: a full cycle, which finds every node full.
    QVERIFY(!records[3].batch);
    QCOMPARE(records[3].result, std::string("Unschedulable"));
    QVERIFY2(records[3].message.rfind("0/3 nodes are available: 3 Too many pods.", 0) == 0, records[3].message.c_str());

    // Room for more than one pod: the node chosen last is rescored, its total lower now.
    auto roomy = snapshot({{node("a"), {}}, {node("b"), {}}});
    auto p1 = parse(pod("q1", "1")), p2 = parse(pod("q2", "1"));
    DecisionRecord r1 = recordFor(*p1), r2 = recordFor(*p2);
    auto o1 = (*fw)->schedule(*p1, roomy, 0, 10, r1);
    place(roomy, *p1, o1.node);
    auto o2 = (*fw)->schedule(*p2, roomy, 0, 11, r2);
    QVERIFY(r2.batch);
    QCOMPARE(r2.batch->rescoredNode, o1.node);
    QCOMPARE(r2.nodes.front().node, o1.node);
    QVERIFY(r2.nodes.front().total < decisionFor(r1, o1.node)->total);
    QVERIFY(o2.node != o1.node);  // the other node now scores higher
  }

  void unsignableOrDifferentPodsGetFullCycles() {
    auto s = snapshot({{node("a"), {}}, {node("b"), {}}, {node("c"), {}}});
    auto fw = Framework::create(defaultProfile());
    QVERIFY(fw.ok());
    auto run = [&](const json& p, int64_t cycle) {
      auto info = parse(p);
      DecisionRecord r = recordFor(*info);
      auto o = (*fw)->schedule(*info, s, 0, cycle, r);
      if (!o.node.empty()) place(s, *info, o.node);
      return r;
    };
    QVERIFY(!run(pod("x1", "100m"), 1).batch);
    QVERIFY(run(pod("x2", "100m"), 2).batch);
    QVERIFY(!run(pod("x3", "200m"), 3).batch);  // another signature
    // The same but for priority: nominated pods hold room against lower priorities only.
    QVERIFY(!run(priorityPod("x3p", 1000, "200m"), 4).batch);
    QVERIFY(run(priorityPod("x3q", 1000, "200m"), 5).batch);
    QVERIFY(!run(priorityPod("x4", 1000, "200m"), 7).batch);  // not the very next cycle
    QVERIFY(!run(priorityPod("x5", 1000, "200m"), 0).batch);  // cycle 0: never
    json affine = pod("y1", "100m", "", {{"app", "y"}});
    affine["spec"]["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = json::array(
        {{{"weight", 10},
          {"podAffinityTerm",
           {{"labelSelector", {{"matchLabels", {{"app", "y"}}}}}, {"topologyKey", "kubernetes.io/hostname"}}}}});
    QVERIFY(!run(affine, 6).batch);
    affine["metadata"]["name"] = "y2";
    affine["metadata"]["uid"] = "uid-y2";
    QVERIFY(!run(affine, 7).batch);  // placed relative to other pods: unsignable
    json spread = pod("z1", "100m", "", {{"app", "z"}});
    spread["spec"]["topologySpreadConstraints"] = json::array(
        {{{"maxSkew", 1}, {"topologyKey", "kubernetes.io/hostname"}, {"whenUnsatisfiable", "DoNotSchedule"},
          {"labelSelector", {{"matchLabels", {{"app", "z"}}}}}}});
    QVERIFY(!run(spread, 8).batch);
    spread["metadata"]["name"] = "z2";
    spread["metadata"]["uid"] = "uid-z2";
    QVERIFY(!run(spread, 9).batch);

    auto off = Framework::create(defaultProfile(), 0, /*opportunisticBatching=*/false);
    QVERIFY(off.ok());
    for (int cycle = 1; cycle <= 3; ++cycle) {
      auto p = parse(pod("w" + std::to_string(cycle), "100m"));
      DecisionRecord r = recordFor(*p);
      (*off)->schedule(*p, s, 0, cycle, r);
      QVERIFY(!r.batch);
      QCOMPARE(r.nodesEvaluated, 3);
    }
    QCOMPARE((*off)->batchedCycles(), int64_t{0});
  }

  // Other pods' affinity terms select a pod by its labels: only then do labels split pods
  // into signatures.
  void labelsMatterOnlyWhenPodsHaveAffinity() {
    auto fw = Framework::create(defaultProfile());
    QVERIFY(fw.ok());
    auto run = [&](const Snapshot& s, const json& p, int64_t cycle) {
      auto info = parse(p);
      DecisionRecord r = recordFor(*info);
      (*fw)->schedule(*info, s, 0, cycle, r);
      return r;
    };
    auto plain = snapshot({{node("a"), {}}, {node("b"), {}}});
    QVERIFY(!run(plain, pod("l1", "100m", "", {{"app", "one"}}), 1).batch);
    QVERIFY(run(plain, pod("l2", "100m", "", {{"app", "two"}}), 2).batch);  // nobody selects by labels

    json repels = pod("repels", "100m");
    repels["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json::array(
        {{{"labelSelector", {{"matchLabels", {{"app", "two"}}}}}, {"topologyKey", "kubernetes.io/hostname"}}});
    auto guarded = snapshot({{node("a"), {repels}}, {node("b"), {}}});
    QVERIFY(!run(guarded, pod("l3", "100m", "", {{"app", "one"}}), 3).batch);
    auto two = run(guarded, pod("l4", "100m", "", {{"app", "two"}}), 4);
    QVERIFY(!two.batch);  // its labels now make it another pod
    QCOMPARE(two.node, std::string("b"));
  }

  void nominatedPodsOfHigherPriorityHoldTheirRoom() {
    auto s = snapshot({{node("n1", "2"), {}}, {node("n2", "2"), {}}});
    auto big = parse(priorityPod("big", 100, "1500m"));
    s.nominatedPods["n1"].push_back(big);
    auto r = schedule(priorityPod("p", 10, "1"), s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    QCOMPARE(decisionFor(r.record, "n1")->reasons.at(0), std::string("Insufficient cpu"));
    // A lower-priority nominated pod does not hold the room against us.
    auto r2 = schedule(priorityPod("q", 1000, "1"), s);
    QVERIFY(decisionFor(r2.record, "n1")->rejectedBy.empty());
  }

  void preemptionPicksTheLeastHarmfulNode() {
    // n1: two priority-1 pods; n2: two priority-5 pods. The pod (priority 10) needs 1 cpu.
    auto s = snapshot({{node("n1", "2"), {priorityPod("low1", 1, "1"), priorityPod("low2", 1, "1")}},
                       {node("n2", "2"), {priorityPod("mid1", 5, "1"), priorityPod("mid2", 5, "1")}}});
    auto r = schedule(priorityPod("p", 10, "1"), s);
    QVERIFY(r.outcome.node.empty());
    QVERIFY(r.record.preemption.attempted);
    QCOMPARE(r.record.preemption.nominatedNode, std::string("n1"));
    QCOMPARE(r.record.preemption.victims.size(), size_t{1});  // one of the two is reprieved
    QCOMPARE(r.record.preemption.victims[0]->priority, 1);
    QCOMPARE(r.record.victimNames.size(), size_t{1});
    QCOMPARE(r.record.message, std::string("0/2 nodes are available: 2 Insufficient cpu."));
    auto j = r.record.toJson();
    QCOMPARE(j["preemption"]["nominatedNode"].get<std::string>(), std::string("n1"));
  }

  void preemptionAvoidsPdbViolations() {
    json a = {{"app", "a"}};
    json b = {{"app", "b"}};
    // Same priorities on both nodes; n1's pods are protected by a budget with no room.
    auto s = snapshot({{node("n1", "1"), {priorityPod("a1", 1, "1", a)}}, {node("n2", "1"), {priorityPod("b1", 1, "1", b)}}});
    DisruptionBudget pdb;
    pdb.ns = "default";
    pdb.name = "a";
    pdb.selector = *orrery::api::LabelSelector::fromJson({{"matchLabels", a}});
    pdb.disruptionsAllowed = 0;
    s.disruptionBudgets.push_back(pdb);
    for (int i = 0; i < 5; ++i) {  // the candidate scan starts at a random node
      auto r = schedule(priorityPod("p", 10, "1"), s);
      QCOMPARE(r.record.preemption.nominatedNode, std::string("n2"));
      QCOMPARE(r.record.preemption.victims.at(0)->name, std::string("b1"));
    }
    // With the budget on both, the lower-priority victim decides.
    auto s2 = snapshot({{node("n1", "1"), {priorityPod("a1", 3, "1", a)}}, {node("n2", "1"), {priorityPod("a2", 2, "1", a)}}});
    s2.disruptionBudgets.push_back(pdb);
    QCOMPARE(schedule(priorityPod("p", 10, "1"), s2).record.preemption.nominatedNode, std::string("n2"));
  }

  void preemptionNeverAndNoVictims() {
    auto s = snapshot({{node("n1", "1"), {priorityPod("low", 1, "1")}}});
    auto p = priorityPod("p", 10, "1");
    p["spec"]["preemptionPolicy"] = "Never";
    auto r = schedule(p, s);
    QCOMPARE(r.record.message,
             std::string("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
                         "preemptionPolicy=Never.."));
    QVERIFY(r.record.preemption.nominatedNode.empty());
    // Equal priority: nothing to preempt.
    auto r2 = schedule(priorityPod("q", 1, "1"), s);
    QCOMPARE(r2.record.message,
             std::string("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No "
                         "preemption victims found for incoming pod.."));
  }

  void configDefaultsAndOverrides() {
    auto c = parseSchedulerConfig(R"(apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    multiPoint:
      disabled:
      - name: ImageLocality
    score:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
)");
    QVERIFY2(c.ok(), c.ok() ? "" : c.status().message().c_str());
    QCOMPARE(c->percentageOfNodesToScore, 30);
    QCOMPARE(c->podInitialBackoffSeconds, int64_t{2});
    QCOMPARE(c->podMaxBackoffSeconds, int64_t{20});
    QCOMPARE(c->profiles.size(), size_t{2});
    QCOMPARE(c->profiles[0].score.size(), defaultProfile().score.size());
    const auto& packer = c->profiles[1];
    QCOMPARE(packer.schedulerName, std::string("packer"));
    std::vector<std::pair<std::string, int>> scores;
    for (const auto& s : packer.score) scores.push_back({s.name, s.weight});
    // The explicitly configured plugin comes first (kube's override order), then the rest.
    QCOMPARE(scores, (std::vector<std::pair<std::string, int>>{{"NodeResourcesFit", 5},
                                                               {"TaintToleration", 3},
                                                               {"NodeAffinity", 2},
                                                               {"PodTopologySpread", 2},
                                                               {"InterPodAffinity", 2}}));
    QVERIFY(packer.pluginArgs.count("NodeResourcesFit"));
    QVERIFY(Framework::create(packer).ok());
  }

  void configErrorsNameTheField() {
    auto bad = parseSchedulerConfig(R"(apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      enabled:
      - name: ImageLocality
      - name: Foo
)");
    QVERIFY(!bad.ok());
    QCOMPARE(bad.status().code(), 400);
    QCOMPARE(bad.status().message(),
             std::string("profiles[0].plugins.score.enabled[1].name: Invalid value: \"Foo\": plugin not found"));

    auto args = parseSchedulerConfig(R"(apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: Busiest
)");
    QVERIFY(!args.ok());
    QVERIFY(args.status().message().rfind(
                "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: \"Busiest\"", 0) == 0);

    auto dup = parseSchedulerConfig(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n"
        "- schedulerName: a\n- schedulerName: a\n");
    QVERIFY(!dup.ok());
    QCOMPARE(dup.status().message(), std::string("profiles[1].schedulerName: Duplicate value: \"a\""));

    auto wrongPoint = parseSchedulerConfig(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n"
        "- plugins:\n    score:\n      enabled:\n      - name: NodeName\n");
    QVERIFY(!wrongPoint.ok());
    QCOMPARE(wrongPoint.status().message(),
             std::string("profiles[0].plugins.score.enabled[0].name: Invalid value: \"NodeName\": plugin does not "
                         "extend ScorePlugin"));

    auto backoff = parseSchedulerConfig(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npodInitialBackoffSeconds: 5\n"
        "podMaxBackoffSeconds: 1\n");
    QVERIFY(!backoff.ok());
    QVERIFY(backoff.status().message().rfind("podMaxBackoffSeconds: Invalid value: 1", 0) == 0);

    auto gate = parseSchedulerConfig(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nopportunisticBatching: sometimes\n");
    QVERIFY(!gate.ok());
    QCOMPARE(gate.status().message(),
             std::string("opportunisticBatching: Invalid value: \"sometimes\": must be a boolean"));
    auto gateOff = parseSchedulerConfig(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nopportunisticBatching: false\n");
    QVERIFY(gateOff.ok());
    QVERIFY(!gateOff->opportunisticBatching);
    QVERIFY(defaultSchedulerConfig().opportunisticBatching);

    ProfileConfig unknown = defaultProfile();
    unknown.filter.push_back({"Bar", 0});
    auto fw = Framework::create(unknown);
    QVERIFY(!fw.ok());
    QCOMPARE(fw.status().message(), std::string("FilterPlugin \"Bar\" does not exist"));
  }
};

QTEST_APPLESS_MAIN(SchedulerFrameworkTest)
#include "scheduler_framework_test.moc"
