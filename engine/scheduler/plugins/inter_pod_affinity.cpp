// InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, and the
// required anti-affinity of pods already running, filter; preferred terms of both sides
// (and existing pods' required affinity, times hardPodAffinityWeight) score, normalized
// between the lowest and highest node.

#include "engine/scheduler/plugins/inter_pod_affinity.h"

#include <climits>
#include <unordered_map>

#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

constexpr const char* kFilterKey = "PreFilterInterPodAffinity";
constexpr const char* kScoreKey = "PreScoreInterPodAffinity";

using PairCounts = std::map<std::pair<std::string, std::string>, int64_t>;

void bump(PairCounts& m, const NodeInfo& node, const std::string& key, int64_t value) {
  const std::string* label = node.label(key);
  if (!label) return;
  auto& slot = m[{key, *label}];
  slot += value;
  if (slot == 0) m.erase({key, *label});
}

const std::map<std::string, std::string>* nsLabelsOf(const Snapshot* snap, const std::string& ns) {
  if (!snap) return nullptr;
  auto it = snap->namespaceLabels.find(ns);
  return it == snap->namespaceLabels.end() ? nullptr : &it->second;
}

bool matchesAllTerms(const std::vector<PodAffinityTerm>& terms, const PodInfo& pod, const Snapshot* snap) {
  if (terms.empty()) return false;
  for (const auto& t : terms)
    if (!affinityTermMatches(t, pod, nsLabelsOf(snap, pod.ns))) return false;
  return true;
}

struct FilterState : CycleState::Data {
  PairCounts existingAntiAffinity, affinity, antiAffinity;
  const Snapshot* snapshot = nullptr;
  std::shared_ptr<Data> clone() const override { return std::make_shared<FilterState>(*this); }

  // updateWithPod: `p` added (multiplier 1) to or removed (-1) from `node`.
  void update(const PodInfo& incoming, const PodInfo& p, const NodeInfo& node, int64_t multiplier) {
    for (const auto& t : p.requiredAntiAffinity)
      if (affinityTermMatches(t, incoming, nsLabelsOf(snapshot, incoming.ns))) bump(existingAntiAffinity, node, t.topologyKey, multiplier);
    if (matchesAllTerms(incoming.requiredAffinity, p, snapshot))
      for (const auto& t : incoming.requiredAffinity) bump(affinity, node, t.topologyKey, multiplier);
    for (const auto& t : incoming.requiredAntiAffinity)
      if (affinityTermMatches(t, p, nsLabelsOf(snapshot, p.ns))) bump(antiAffinity, node, t.topologyKey, multiplier);
  }
};

struct ScoreState : CycleState::Data {
  std::map<std::string, std::unordered_map<std::string, int64_t>> topologyScore;
};

class InterPodAffinity final : public PreFilterPlugin, public FilterPlugin, public PreScorePlugin, public ScorePlugin {
 public:
  std::string name() const override { return "InterPodAffinity"; }
  // A pod with affinity terms of its own is placed relative to other pods: unsignable. Without
  // them, only other pods' terms matter, and those select it by namespace and labels; when no
  // pod has any (nor a nominated one might), pods differing in labels get the same results.
  bool sign(const PodInfo& pod, const Snapshot& snapshot, std::string& signature) const override {
    if (!pod.requiredAffinity.empty() || !pod.requiredAntiAffinity.empty() || !pod.preferredAffinity.empty() ||
        !pod.preferredAntiAffinity.empty())
      return false;
    if (snapshot.nodesWithAffinityPods.empty() && snapshot.nominatedPods.empty()) return true;
    signValue(signature, pod.ns);
    signNumber(signature, static_cast<int64_t>(pod.labels.size()));
    for (const auto& [k, v] : pod.labels) {
      signValue(signature, k);
      signValue(signature, v);
    }
    return true;
  }
  bool normalizesAcrossNodes() const override { return true; }
  int64_t hardPodAffinityWeight = 1;
  bool ignorePreferredTermsOfExistingPods = false;

  PluginStatus preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snap) override {
    bool own = !pod.requiredAffinity.empty() || !pod.requiredAntiAffinity.empty();
    if (!own && snap.nodesWithRequiredAntiAffinityPods.empty() && snap.nominatedPods.empty())
      return PluginStatus::skip();
    auto s = std::make_shared<FilterState>();
    s->snapshot = &snap;
    const auto* myNsLabels = nsLabelsOf(&snap, pod.ns);
    for (const auto& node : snap.nodesWithRequiredAntiAffinityPods)
      for (const auto& existing : node->podsWithRequiredAntiAffinity)
        for (const auto& t : existing->requiredAntiAffinity)
          if (affinityTermMatches(t, pod, myNsLabels)) bump(s->existingAntiAffinity, *node, t.topologyKey, 1);
    if (own) {
      for (const auto& node : snap.nodes) {
        for (const auto& existing : node->pods) {
          if (matchesAllTerms(pod.requiredAffinity, *existing, &snap))
            for (const auto& t : pod.requiredAffinity) bump(s->affinity, *node, t.topologyKey, 1);
          for (const auto& t : pod.requiredAntiAffinity)
            if (affinityTermMatches(t, *existing, nsLabelsOf(&snap, existing->ns)))
              bump(s->antiAffinity, *node, t.topologyKey, 1);
        }
      }
    }
    state.write(kFilterKey, s);
    return PluginStatus::success();
  }

  PluginStatus addPod(CycleState& state, const PodInfo& pod, const PodInfo& add, const NodeInfo& node,
                      const Snapshot&) const override {
    if (auto* s = state.read<FilterState>(kFilterKey)) s->update(pod, add, node, 1);
    return PluginStatus::success();
  }
  PluginStatus removePod(CycleState& state, const PodInfo& pod, const PodInfo& rm, const NodeInfo& node,
                         const Snapshot&) const override {
    if (auto* s = state.read<FilterState>(kFilterKey)) s->update(pod, rm, node, -1);
    return PluginStatus::success();
  }

  PluginStatus filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const override {
    auto* s = state.read<FilterState>(kFilterKey);
    if (!s) return PluginStatus::success();
    // Affinity: every term's topology must exist on the node and hold a matching pod...
    bool podsExist = true;
    for (const auto& t : pod.requiredAffinity) {
      const std::string* label = node.label(t.topologyKey);
      if (!label) return PluginStatus::unresolvable({"node(s) didn't match pod affinity rules"});
      auto c = s->affinity.find({t.topologyKey, *label});
      if (c == s->affinity.end() || c->second <= 0) podsExist = false;
    }
    // ...unless no pod anywhere matches and the pod matches its own terms (the first of a
    // group that wants to be together).
    if (!podsExist && !(s->affinity.empty() && matchesAllTerms(pod.requiredAffinity, pod, s->snapshot)))
      return PluginStatus::unresolvable({"node(s) didn't match pod affinity rules"});
    if (!s->antiAffinity.empty()) {
      for (const auto& t : pod.requiredAntiAffinity) {
        const std::string* label = node.label(t.topologyKey);
        if (!label) continue;
        auto c = s->antiAffinity.find({t.topologyKey, *label});
        if (c != s->antiAffinity.end() && c->second > 0)
          return PluginStatus::unschedulable({"node(s) didn't match pod anti-affinity rules"});
      }
    }
    if (!s->existingAntiAffinity.empty()) {
      for (const auto& [k, v] : node.labels) {
        auto c = s->existingAntiAffinity.find({k, v});
        if (c != s->existingAntiAffinity.end() && c->second > 0)
          return PluginStatus::unschedulable({"node(s) didn't satisfy existing pods anti-affinity rules"});
      }
    }
    return PluginStatus::success();
  }

  PluginStatus preScore(CycleState& state, const PodInfo& pod, const Snapshot& snap,
                        const std::vector<const NodeInfo*>& feasible) override {
    if (feasible.empty()) return PluginStatus::skip();
    bool hasConstraints = !pod.preferredAffinity.empty() || !pod.preferredAntiAffinity.empty();
    if (ignorePreferredTermsOfExistingPods && !hasConstraints) return PluginStatus::skip();
    auto s = std::make_shared<ScoreState>();
    const auto* incomingNsLabels = nsLabelsOf(&snap, pod.ns);
    auto processTerm = [&](const PodAffinityTerm& t, int64_t weight, const PodInfo& target,
                           const std::map<std::string, std::string>* nsLabels, const NodeInfo& node) {
      if (!affinityTermMatches(t, target, nsLabels)) return;
      const std::string* label = node.label(t.topologyKey);
      if (!label) return;
      s->topologyScore[t.topologyKey][*label] += weight;
    };
    auto processNode = [&](const NodeInfo& node) {
      if (node.labels.empty()) return;
      const auto& pods = hasConstraints ? node.pods : node.podsWithAffinity;
      for (const auto& existing : pods) {
        const auto* existingNs = nsLabelsOf(&snap, existing->ns);
        for (const auto& w : pod.preferredAffinity) processTerm(w.term, w.weight, *existing, existingNs, node);
        for (const auto& w : pod.preferredAntiAffinity) processTerm(w.term, -w.weight, *existing, existingNs, node);
        if (hardPodAffinityWeight > 0)
          for (const auto& t : existing->requiredAffinity) processTerm(t, hardPodAffinityWeight, pod, incomingNsLabels, node);
        for (const auto& w : existing->preferredAffinity) processTerm(w.term, w.weight, pod, incomingNsLabels, node);
        for (const auto& w : existing->preferredAntiAffinity) processTerm(w.term, -w.weight, pod, incomingNsLabels, node);
      }
    };
    if (hasConstraints) {
      for (const auto& n : snap.nodes) processNode(*n);
    } else {
      for (const auto& n : snap.nodesWithAffinityPods) processNode(*n);
    }
    if (s->topologyScore.empty()) return PluginStatus::skip();
    state.write(kScoreKey, s);
    return PluginStatus::success();
  }

  int64_t score(const CycleState& state, const PodInfo&, const NodeInfo& node) const override {
    auto* s = state.read<ScoreState>(kScoreKey);
    if (!s) return 0;
    int64_t score = 0;
    for (const auto& [key, values] : s->topologyScore) {
      const std::string* label = node.label(key);
      if (!label) continue;
      auto v = values.find(*label);
      if (v != values.end()) score += v->second;
    }
    return score;
  }

  void normalize(const CycleState& state, const PodInfo&, std::vector<int64_t>& scores) const override {
    auto* s = state.read<ScoreState>(kScoreKey);
    if (!s || s->topologyScore.empty()) return;
    int64_t minCount = INT64_MAX, maxCount = INT64_MIN;
    for (auto v : scores) {
      minCount = std::min(minCount, v);
      maxCount = std::max(maxCount, v);
    }
    int64_t diff = maxCount - minCount;
    for (auto& v : scores) {
      double f = 0;
      if (diff > 0) f = static_cast<double>(kMaxNodeScore) * (static_cast<double>(v - minCount) / static_cast<double>(diff));
      v = static_cast<int64_t>(f);
    }
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newInterPodAffinity(const nlohmann::json& args) {
  auto plugin = std::make_shared<InterPodAffinity>();
  auto w = argInt(args, "hardPodAffinityWeight", 1, 0, 100);
  if (!w) return w.status();
  plugin->hardPodAffinityWeight = *w;
  if (args.is_object()) plugin->ignorePreferredTermsOfExistingPods = args.value("ignorePreferredTermsOfExistingPods", false);
  return std::shared_ptr<Plugin>(plugin);
}

}  // namespace orrery::scheduler
