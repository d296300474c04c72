// Each in-tree plugin through the framework with kube-scheduler's default profile (or a
// profile that isolates it): the reasons a user reads in events, and the scores the decision
// record shows.

#include <QtTest>

#include "tests/scheduler/plugin_fixture.h"

using namespace fixture;

namespace {

// A pod its ReplicaSet "x-1" owns: kube's default spreading applies to it.
json ownedByReplicaSet(json p) {
  p["metadata"]["ownerReferences"] =
      json::array({{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "x-1"}, {"uid", "rs"}, {"controller", true}}});
  return p;
}

}  // namespace

class SchedulerPluginsTest : public QObject {
  Q_OBJECT

 private slots:
  void untoleratedTaintAndInsufficientCpuMessage() {
    auto s = snapshot({{withTaint(node("n1"), "key", "value", "NoSchedule"), {}},
                       {node("n2", "1"), {}},
                       {node("n3", "1"), {}}});
    auto r = schedule(pod("p", "2"), s);
    QVERIFY(r.outcome.node.empty());
    QCOMPARE(r.record.result, std::string("Unschedulable"));
    QCOMPARE(r.record.message,
             std::string("0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient "
                         "cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
                         "2 No preemption victims found for incoming pod.."));
    const NodeDecision* n1 = decisionFor(r.record, "n1");
    QVERIFY(n1);
    QCOMPARE(n1->rejectedBy, std::string("TaintToleration"));
    QVERIFY(n1->unresolvable);
    QCOMPARE(decisionFor(r.record, "n2")->rejectedBy, std::string("NodeResourcesFit"));
    QVERIFY(!decisionFor(r.record, "n2")->unresolvable);
  }

  void tolerationLetsThePodOnAndNoExecuteCounts() {
    auto s = snapshot({{withTaint(node("n1"), "dedicated", "gpu", "NoExecute"), {}}});
    auto plain = schedule(pod("p"), s);
    QVERIFY(plain.outcome.node.empty());
    QCOMPARE(plain.record.nodes.at(0).reasons.at(0), std::string("node(s) had untolerated taint {dedicated: gpu}"));

    auto p = pod("p");
    p["spec"]["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}}});
    QCOMPARE(schedule(p, s).outcome.node, std::string("n1"));
    p["spec"]["tolerations"] = json::array({{{"key", "dedicated"}, {"operator", "Equal"}, {"value", "cpu"}}});
    QVERIFY(schedule(p, s).outcome.node.empty());
    p["spec"]["tolerations"] = json::array({{{"operator", "Exists"}}});
    QCOMPARE(schedule(p, s).outcome.node, std::string("n1"));
  }

  void preferNoScheduleTaintScoresReversed() {
    auto s = snapshot({{withTaint(node("n1"), "spot", "true", "PreferNoSchedule"), {}}, {node("n2"), {}}});
    auto r = schedule(pod("p"), s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    int i = scoreIndex(r.record, "TaintToleration");
    QVERIFY(i >= 0);
    QCOMPARE(r.record.scorePlugins[i].weight, 3);
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n1"), i), int64_t{1});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n1"), i), int64_t{0});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n2"), i), int64_t{100});
    QCOMPARE(r.record.weighted(*decisionFor(r.record, "n2"), i), int64_t{300});
  }

  void preferredNodeAffinityChangesTheWinner() {
    auto s = snapshot({{node("n-a", "4", "32Gi", 110, {{"zone", "a"}}), {}},
                       {node("n-b", "4", "32Gi", 110, {{"zone", "b"}}), {}}});
    auto p = pod("p");
    p["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = json::array(
        {{{"weight", 80},
          {"preference", {{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "In"}, {"values", {"b"}}}})}}}}});
    for (size_t start = 0; start < 2; ++start) {
      auto r = schedule(p, s, defaultProfile(), start);
      QCOMPARE(r.outcome.node, std::string("n-b"));
      int i = scoreIndex(r.record, "NodeAffinity");
      QVERIFY(i >= 0);
      const NodeDecision* a = decisionFor(r.record, "n-a");
      const NodeDecision* b = decisionFor(r.record, "n-b");
      QCOMPARE(r.record.raw(*b, i), int64_t{80});
      QCOMPARE(r.record.normalized(*b, i), int64_t{100});
      QCOMPARE(r.record.weighted(*b, i), int64_t{200});
      QCOMPARE(r.record.weighted(*a, i), int64_t{0});
      QCOMPARE(b->total - a->total, int64_t{200});
    }
    // Without preferences NodeAffinity does not score at all (PreScore skips it).
    auto r = schedule(pod("q"), s);
    QCOMPARE(scoreIndex(r.record, "NodeAffinity"), -1);
  }

  void requiredNodeAffinityAndSelector() {
    auto s = snapshot({{node("n-a", "4", "32Gi", 110, {{"zone", "a"}, {"gen", "3"}}), {}},
                       {node("n-b", "4", "32Gi", 110, {{"zone", "b"}, {"gen", "5"}}), {}}});
    auto p = pod("p");
    p["spec"]["nodeSelector"] = {{"zone", "a"}};
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n-a"));
    QCOMPARE(decisionFor(r.record, "n-b")->reasons.at(0), std::string("node(s) didn't match Pod's node affinity/selector"));

    auto q = pod("q");
    q["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
        json::array({{{"matchExpressions", json::array({{{"key", "gen"}, {"operator", "Gt"}, {"values", {"4"}}}})}}});
    QCOMPARE(schedule(q, s).outcome.node, std::string("n-b"));
    q["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
        json::array({{{"matchFields", json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n-a"}}}})}}});
    QCOMPARE(schedule(q, s).outcome.node, std::string("n-a"));
  }

  void leastVersusMostAllocated() {
    auto s = snapshot({{node("A", "4", "8Gi"), {pod("a0", "1", "1Gi")}}, {node("B", "4", "8Gi"), {pod("b0", "3", "1Gi")}}});
    const std::string head = R"(apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: )";
    auto least = schedule(pod("p", "500m", "1Gi"), s, profileFromYaml(head + "LeastAllocated\n"));
    auto most = schedule(pod("p", "500m", "1Gi"), s, profileFromYaml(head + "MostAllocated\n"));
    QCOMPARE(least.outcome.node, std::string("A"));
    QCOMPARE(most.outcome.node, std::string("B"));
    int li = scoreIndex(least.record, "NodeResourcesFit"), mi = scoreIndex(most.record, "NodeResourcesFit");
    QCOMPARE(scoreIndex(least.record, "NodeResourcesBalancedAllocation"), -1);
    // cpu (4000-1500)*100/4000 = 62, memory 75 -> 68; B: 12 and 75 -> 43.
    QCOMPARE(least.record.raw(*decisionFor(least.record, "A"), li), int64_t{68});
    QCOMPARE(least.record.raw(*decisionFor(least.record, "B"), li), int64_t{43});
    QCOMPARE(most.record.raw(*decisionFor(most.record, "A"), mi), int64_t{31});
    QCOMPARE(most.record.raw(*decisionFor(most.record, "B"), mi), int64_t{56});

    auto ratio = schedule(pod("p", "500m", "1Gi"), s,
                          profileFromYaml(head + "RequestedToCapacityRatio\n        requestedToCapacityRatio:\n"
                                                 "          shape:\n          - {utilization: 0, score: 0}\n"
                                                 "          - {utilization: 100, score: 10}\n"));
    int ri = scoreIndex(ratio.record, "NodeResourcesFit");
    QCOMPARE(ratio.outcome.node, std::string("B"));
    QCOMPARE(ratio.record.raw(*decisionFor(ratio.record, "A"), ri), int64_t{31});
  }

  void fitReasons() {
    auto s = snapshot({{node("n1", "1", "1Gi", 1), {pod("x", "500m")}}});
    auto r = schedule(pod("p", "1", "2Gi"), s);
    const auto& reasons = r.record.nodes.at(0).reasons;
    QCOMPARE(reasons, (std::vector<std::string>{"Too many pods", "Insufficient cpu", "Insufficient memory"}));
    QCOMPARE(r.record.message.substr(0, r.record.message.find(". preemption")),
             std::string("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods"));
    // Extended resources are checked by name.
    auto p = pod("g");
    p["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1";
    auto g = schedule(p, snapshot({{node("n2"), {}}}));
    QCOMPARE(g.record.nodes.at(0).reasons.at(0), std::string("Insufficient nvidia.com/gpu"));
  }

  void balancedAllocation() {
    auto s = snapshot({{node("n1", "4", "8Gi"), {}}, {node("n2", "4", "8Gi"), {}}});
    auto r = schedule(pod("p", "1", "1Gi"), s);
    int i = scoreIndex(r.record, "NodeResourcesBalancedAllocation");
    QVERIFY(i >= 0);
    // fractions 0.25 and 0.125: std 0.0625 -> 93.
    QCOMPARE(r.record.raw(r.record.nodes.at(0), i), int64_t{93});
  }

  void nodePorts() {
    auto web = pod("web");
    web["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 80}, {"hostPort", 8080}}});
    auto s = snapshot({{node("n1"), {web}}, {node("n2"), {}}});
    auto p = pod("p");
    p["spec"]["containers"][0]["ports"] = json::array({{{"containerPort", 80}, {"hostPort", 8080}}});
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    QCOMPARE(decisionFor(r.record, "n1")->reasons.at(0),
             std::string("node(s) didn't have free ports for the requested pod ports"));
    // Another protocol on the same port does not conflict.
    p["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP";
    QVERIFY(decisionFor(schedule(p, s).record, "n1")->rejectedBy.empty());
  }

  void nodeNameAndUnschedulable() {
    auto cordoned = node("n1");
    cordoned["spec"]["unschedulable"] = true;
    auto s = snapshot({{cordoned, {}}, {node("n2"), {}}, {node("n3"), {}}});
    auto p = pod("p");
    p["spec"]["nodeName"] = "n2";
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    QCOMPARE(decisionFor(r.record, "n1")->rejectedBy, std::string("NodeUnschedulable"));
    QCOMPARE(decisionFor(r.record, "n1")->reasons.at(0), std::string("node(s) were unschedulable"));
    QCOMPARE(decisionFor(r.record, "n3")->reasons.at(0), std::string("node(s) didn't match the requested node name"));

    auto t = pod("t");
    t["spec"]["nodeName"] = "n1";
    QVERIFY(schedule(t, s).outcome.node.empty());
    t["spec"]["tolerations"] = json::array({{{"key", "node.kubernetes.io/unschedulable"}, {"operator", "Exists"}}});
    QCOMPARE(schedule(t, s).outcome.node, std::string("n1"));
  }

  void topologySpreadFilter() {
    auto zoned = [](const std::string& n, const std::string& z) { return node(n, "4", "32Gi", 110, {{"zone", z}}); };
    json web = {{"app", "web"}};
    auto s = snapshot({{zoned("n1", "a"), {pod("w1", "", "", web)}},
                       {zoned("n2", "a"), {pod("w2", "", "", web)}},
                       {zoned("n3", "b"), {}},
                       {node("n4"), {}}});
    auto p = pod("p", "", "", web);
    p["spec"]["topologySpreadConstraints"] = json::array({{{"maxSkew", 1},
                                                           {"topologyKey", "zone"},
                                                           {"whenUnsatisfiable", "DoNotSchedule"},
                                                           {"labelSelector", {{"matchLabels", web}}}}});
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n3"));
    QCOMPARE(decisionFor(r.record, "n1")->reasons.at(0), std::string("node(s) didn't match pod topology spread constraints"));
    QCOMPARE(decisionFor(r.record, "n4")->reasons.at(0),
             std::string("node(s) didn't match pod topology spread constraints (missing required label)"));
    QVERIFY(decisionFor(r.record, "n4")->unresolvable);
    // maxSkew 3 lets zone a take one more.
    p["spec"]["topologySpreadConstraints"][0]["maxSkew"] = 3;
    QVERIFY(decisionFor(schedule(p, s).record, "n1")->rejectedBy.empty());
  }

  void topologySpreadScore() {
    auto zoned = [](const std::string& n, const std::string& z) { return node(n, "4", "32Gi", 110, {{"zone", z}}); };
    json web = {{"app", "web"}};
    auto s = snapshot({{zoned("n1", "a"), {pod("w1", "", "", web)}},
                       {zoned("n2", "a"), {pod("w2", "", "", web)}},
                       {zoned("n3", "b"), {}}});
    auto p = pod("p", "", "", web);
    p["spec"]["topologySpreadConstraints"] = json::array({{{"maxSkew", 1},
                                                           {"topologyKey", "zone"},
                                                           {"whenUnsatisfiable", "ScheduleAnyway"},
                                                           {"labelSelector", {{"matchLabels", web}}}}});
    auto r = schedule(p, s);
    int i = scoreIndex(r.record, "PodTopologySpread");
    QVERIFY(i >= 0);
    QCOMPARE(r.record.scorePlugins[i].weight, 2);
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n1"), i), int64_t{3});  // 2 pods * ln(4)
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n1"), i), int64_t{0});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n3"), i), int64_t{100});
    QCOMPARE(r.outcome.node, std::string("n3"));
  }

  // One framework schedules pod after pod while nodes change between cycles (the plugin
  // remembers per-node match counts by node version): every cycle must score and filter as a
  // framework seeing the snapshot for the first time does.
  void topologySpreadCountsFollowEveryNodeChange() {
    auto zoned = [](const std::string& n, const std::string& z) { return node(n, "4", "32Gi", 110, {{"zone", z}}); };
    json web = {{"app", "web"}};
    auto s = snapshot({{zoned("n1", "a"), {pod("w1", "", "", web), pod("w2", "", "", web)}},
                       {zoned("n2", "a"), {pod("w3", "", "", web)}},
                       {zoned("n3", "b"), {}}});
    auto p = pod("p", "", "", web);
    p["spec"]["topologySpreadConstraints"] = json::array(
        {{{"maxSkew", 4}, {"topologyKey", "zone"}, {"whenUnsatisfiable", "DoNotSchedule"}, {"labelSelector", {{"matchLabels", web}}}},
         {{"maxSkew", 1},
          {"topologyKey", "kubernetes.io/hostname"},
          {"whenUnsatisfiable", "ScheduleAnyway"},
          {"labelSelector", {{"matchLabels", web}}}},
         {{"maxSkew", 1}, {"topologyKey", "zone"}, {"whenUnsatisfiable", "ScheduleAnyway"}, {"labelSelector", {{"matchLabels", web}}}}});
    auto profile = defaultProfile();
    auto kept = Framework::create(profile);
    QVERIFY(kept.ok());
    // Per node: the spread score, or who rejected it. (Not the chosen node: ties between
    // equal totals are broken at random, as kube-scheduler does.)
    auto view = [&](Framework& fw) {
      DecisionRecord record;
      fw.schedule(*parse(p), s, 0, 0, record);
      std::vector<std::string> out;
      int i = scoreIndex(record, "PodTopologySpread");
      for (const auto& d : record.nodes)
        out.push_back(d.node + ":" + d.rejectedBy + ":" + (i >= 0 && d.rejectedBy.empty() ? std::to_string(record.raw(d, i)) : ""));
      return out;
    };
    // Whether the kept framework sees what a new one does; `seen` gets the kept one's view.
    auto sameAsFresh = [&](std::vector<std::string>* seen) {
      auto a = view(**kept), b = view(**Framework::create(profile));
      if (a != b) {
        for (size_t k = 0; k < std::max(a.size(), b.size()); ++k)
          qWarning("kept %s | fresh %s", k < a.size() ? a[k].c_str() : "-", k < b.size() ? b[k].c_str() : "-");
      }
      if (seen) *seen = a;
      return a == b;
    };
    // A new version of node `n` (as the cache makes one): its pods changed by `change`.
    auto changeNode = [&](const std::string& n, const std::function<void(NodeInfo&)>& change) {
      size_t at = s.indexByName.at(n);
      auto copy = std::make_shared<NodeInfo>(*s.nodes[at]);
      change(*copy);
      s.nodes[at] = copy;
    };
    auto bound = [&](const std::string& name, const std::string& ns, const json& labels, const std::string& nodeName) {
      auto q = pod(name, "", "", labels);
      q["metadata"]["namespace"] = ns;
      q["spec"]["nodeName"] = nodeName;
      return parse(q);
    };

    std::vector<std::string> before, twoOnN3, changed;
    QVERIFY(sameAsFresh(&before));
    // Hostname counts 2, 1, 0, each times ln(3 feasible nodes + 2), plus the zones' 3, 3, 0
    // times ln(2 zones + 2).
    QCOMPARE(before, (std::vector<std::string>{"n1::7", "n2::6", "n3::0"}));
    // Zone b takes two web pods: n3's hostname count rises; zone b's filter now counts them.
    changeNode("n3", [&](NodeInfo& n) {
      n.addPod(bound("w4", "default", web, "n3"));
      n.addPod(bound("w5", "default", web, "n3"));
    });
    QVERIFY(sameAsFresh(&twoOnN3));
    QVERIFY(twoOnN3 != before);
    // A pod relabelled (no longer selected), one terminating, one of another namespace.
    changeNode("n1", [&](NodeInfo& n) {
      QVERIFY(n.removePod(n.pods[0]->uid));
      n.addPod(bound("w1", "default", {{"app", "db"}}, "n1"));
    });
    changeNode("n2", [&](NodeInfo& n) {
      auto dying = std::make_shared<PodInfo>(*n.pods[0]);
      dying->terminating = true;
      QVERIFY(n.removePod(dying->uid));
      n.addPod(dying);
      n.addPod(bound("other", "elsewhere", web, "n2"));
    });
    QVERIFY(sameAsFresh(&changed));
    QVERIFY(changed != twoOnN3);
    // The same pod, in another namespace, counts the pods of its own namespace.
    p["metadata"]["namespace"] = "elsewhere";
    QVERIFY(sameAsFresh(nullptr));
  }

  void topologySpreadSystemDefaultsForControlledPods() {
    json app = {{"app", "x"}};
    auto owned = [&](const std::string& name) { return ownedByReplicaSet(pod(name, "", "", app)); };
    auto s = snapshot({{node("n1"), {owned("x1"), owned("x2")}}, {node("n2"), {}}});
    auto r = schedule(owned("x3"), s);
    int i = scoreIndex(r.record, "PodTopologySpread");
    QVERIFY(i >= 0);
    // hostname (maxSkew 3): n1 2*ln(4)+2 = 5, n2 2; the zone constraint skips nodes without a zone.
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n1"), i), int64_t{5});
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n2"), i), int64_t{2});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n1"), i), int64_t{40});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n2"), i), int64_t{100});
    // A pod without an owner or a Service gets no default spreading.
    QCOMPARE(scoreIndex(schedule(pod("lone", "", "", app), s).record, "PodTopologySpread"), -1);
  }

  // kube's default spreading reads a node without the zone label as zone "": a node whose zone
  // label is "" then totals the pods of every unlabelled node too, while an unlabelled node
  // scores nothing for the zone.
  void topologySpreadDefaultsReadAMissingZoneAsEmpty() {
    json app = {{"app", "x"}};
    auto owned = [&](const std::string& name) { return ownedByReplicaSet(pod(name, "", "", app)); };
    const std::string zone = "topology.kubernetes.io/zone";
    auto s = snapshot({{node("n1", "4", "32Gi", 110, {{zone, "a"}}), {owned("x1")}},
                       {node("n2", "4", "32Gi", 110, {{zone, ""}}), {}},
                       {node("n3"), {owned("x2"), owned("x3")}}});
    auto r = schedule(owned("x4"), s);
    int i = scoreIndex(r.record, "PodTopologySpread");
    QVERIFY(i >= 0);
    // Zone (maxSkew 5, weight ln(2 domains + 2)): n1 1 pod, n2 "" holds n3's 2; n3 none.
    // Hostname (maxSkew 3, weight ln(3 + 2)): 1, 0, 2.
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n1"), i), int64_t{9});  // 1.39 + 4 + 1.61 + 2
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n2"), i), int64_t{9});  // 2.77 + 4 + 0 + 2
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n3"), i), int64_t{5});  // 3.22 + 2
  }

  void interPodAntiAffinity() {
    json web = {{"app", "web"}};
    auto s = snapshot({{node("n1"), {pod("w1", "", "", web)}}, {node("n2"), {}}});
    auto p = pod("p", "", "", web);
    p["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json::array({{{"labelSelector", {{"matchLabels", web}}}, {"topologyKey", "kubernetes.io/hostname"}}});
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    QCOMPARE(decisionFor(r.record, "n1")->rejectedBy, std::string("InterPodAffinity"));
    QCOMPARE(decisionFor(r.record, "n1")->reasons.at(0), std::string("node(s) didn't match pod anti-affinity rules"));

    // The existing pod's anti-affinity keeps matching pods away from it too.
    auto guard = pod("guard", "", "", {{"app", "guard"}});
    guard["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json::array({{{"labelSelector", {{"matchLabels", web}}}, {"topologyKey", "kubernetes.io/hostname"}}});
    auto s2 = snapshot({{node("n1"), {guard}}, {node("n2"), {}}});
    auto r2 = schedule(pod("q", "", "", web), s2);
    QCOMPARE(r2.outcome.node, std::string("n2"));
    QCOMPARE(decisionFor(r2.record, "n1")->reasons.at(0),
             std::string("node(s) didn't satisfy existing pods anti-affinity rules"));
  }

  void interPodAffinityRequired() {
    auto s = snapshot({{node("n1"), {}}, {node("n2"), {}}});
    auto p = pod("p", "", "", {{"app", "web"}});
    p["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json::array({{{"labelSelector", {{"matchLabels", {{"app", "db"}}}}}, {"topologyKey", "kubernetes.io/hostname"}}});
    auto r = schedule(p, s);
    QVERIFY(r.outcome.node.empty());
    QCOMPARE(r.record.message,
             std::string("0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 nodes "
                         "are available: 2 Preemption is not helpful for scheduling.."));
    // The first pod of a group with affinity to itself may go anywhere.
    auto db = pod("db", "", "", {{"app", "db"}});
    db["spec"]["affinity"] = p["spec"]["affinity"];
    QVERIFY(!schedule(db, s).outcome.node.empty());
    // With a db pod on n2, only n2 fits.
    auto s2 = snapshot({{node("n1"), {}}, {node("n2"), {pod("db0", "", "", {{"app", "db"}})}}});
    QCOMPARE(schedule(p, s2).outcome.node, std::string("n2"));
  }

  void interPodAffinityPreferred() {
    auto s = snapshot({{node("n1"), {}}, {node("n2"), {pod("cache", "", "", {{"app", "cache"}})}}});
    auto p = pod("p");
    p["spec"]["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = json::array(
        {{{"weight", 50},
          {"podAffinityTerm",
           {{"labelSelector", {{"matchLabels", {{"app", "cache"}}}}}, {"topologyKey", "kubernetes.io/hostname"}}}}});
    auto r = schedule(p, s);
    QCOMPARE(r.outcome.node, std::string("n2"));
    int i = scoreIndex(r.record, "InterPodAffinity");
    QVERIFY(i >= 0);
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n2"), i), int64_t{50});
    QCOMPARE(r.record.weighted(*decisionFor(r.record, "n2"), i), int64_t{200});
    QCOMPARE(r.record.normalized(*decisionFor(r.record, "n1"), i), int64_t{0});
  }

  void imageLocality() {
    auto withImage = node("n1");
    withImage["status"]["images"] = json::array({{{"names", {"nginx:latest"}}, {"sizeBytes", 500 * 1024 * 1024}}});
    auto s = snapshot({{withImage, {}}, {node("n2"), {}}});
    auto r = schedule(pod("p"), s);
    int i = scoreIndex(r.record, "ImageLocality");
    QVERIFY(i >= 0);
    // 500Mi spread over 1 of 2 nodes: (250Mi - 23Mi) * 100 / (1000Mi - 23Mi) = 23.
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n1"), i), int64_t{23});
    QCOMPARE(r.record.raw(*decisionFor(r.record, "n2"), i), int64_t{0});
    QCOMPARE(r.outcome.node, std::string("n1"));
  }
};

QTEST_APPLESS_MAIN(SchedulerPluginsTest)
#include "scheduler_plugins_test.moc"
