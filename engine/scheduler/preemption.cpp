// DefaultPreemption, the PostFilter plugin: when no node fits, find nodes where removing
// lower-priority pods makes the pod fit, keep as many of those pods as possible (PDB-protected
// ones first, highest priority first), and pick the node whose evictions hurt least, in
// kube-scheduler's order (PDB violations, highest victim priority, priority sum, victim
// count, latest start). The runtime evicts the victims and sets nominatedNodeName.

#include <algorithm>
#include <climits>
#include <random>

#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

constexpr const char* kNotHelpful = "Preemption is not helpful for scheduling";
constexpr const char* kNoVictims = "No preemption victims found for incoming pod";

struct Candidate {
  const NodeInfo* node = nullptr;
  std::vector<PodInfoPtr> victims;  // highest priority first
  int numPdbViolations = 0;
};

class DefaultPreemption final : public PostFilterPlugin {
 public:
  std::string name() const override { return "DefaultPreemption"; }
  int64_t minCandidateNodesPercentage = 10;
  int64_t minCandidateNodesAbsolute = 100;
  std::mt19937 rng{std::random_device{}()};

  PreemptionResult postFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                              const std::vector<NodeDecision>& decisions, FrameworkHandle& handle) override {
    PreemptionResult result;
    result.attempted = true;
    std::map<std::string, const NodeDecision*> byNode;
    for (const auto& d : decisions) byNode[d.node] = &d;

    // PodEligibleToPreemptOthers.
    if (pod.preemptionPolicy == "Never") {
      result.message = "preemption: not eligible due to preemptionPolicy=Never.";
      return result;
    }
    if (!pod.nominatedNodeName.empty()) {
      auto d = byNode.find(pod.nominatedNodeName);
      bool unresolvable = d != byNode.end() && d->second->unresolvable;
      const NodeInfo* nominated = snapshot.find(pod.nominatedNodeName);
      if (!unresolvable && nominated) {
        for (const auto& p : nominated->pods) {
          if (p->priority < pod.priority && p->terminating) {
            result.message = "preemption: not eligible due to a terminating pod on the nominated node.";
            return result;
          }
        }
      }
    }

    // nodesWherePreemptionMightHelp: not where a filter said no eviction can help.
    std::vector<NodeDecision> statuses;
    std::vector<const NodeInfo*> potential;
    for (const auto& node : snapshot.nodes) {
      auto d = byNode.find(node->name);
      if (d == byNode.end() || d->second->unresolvable) {
        NodeDecision s;
        s.node = node->name;
        s.reasons = {kNotHelpful};
        s.unresolvable = true;
        statuses.push_back(std::move(s));
        continue;
      }
      potential.push_back(node.get());
    }

    std::vector<Candidate> candidates;
    if (!potential.empty()) {
      size_t numCandidates = std::max<size_t>(potential.size() * minCandidateNodesPercentage / 100,
                                              static_cast<size_t>(minCandidateNodesAbsolute));
      numCandidates = std::min(numCandidates, potential.size());
      size_t offset = std::uniform_int_distribution<size_t>(0, potential.size() - 1)(rng);
      size_t nonViolating = 0;
      for (size_t i = 0; i < potential.size(); ++i) {
        const NodeInfo& original = *potential[(offset + i) % potential.size()];
        NodeInfo copy = original;
        CycleState stateCopy = state.clone();
        Candidate c;
        c.node = &original;
        PluginStatus s = selectVictimsOnNode(stateCopy, pod, copy, snapshot, handle, c);
        if (s.ok() && !c.victims.empty()) {
          if (c.numPdbViolations == 0) ++nonViolating;
          candidates.push_back(std::move(c));
          if (nonViolating > 0 && candidates.size() >= numCandidates) break;
          continue;
        }
        NodeDecision d;
        d.node = original.name;
        d.rejectedBy = s.plugin;
        d.reasons = s.ok() ? std::vector<std::string>{"expected at least one victim pod on node " + original.name}
                           : s.reasons;
        d.unresolvable = s.code == PluginStatus::Code::kUnschedulableAndUnresolvable;
        statuses.push_back(std::move(d));
      }
    }

    if (candidates.empty()) {
      result.message = "preemption: " + fitErrorMessage(static_cast<int32_t>(snapshot.nodes.size()), statuses, "");
      return result;
    }
    const Candidate& best = pickOne(candidates);
    result.nominatedNode = best.node->name;
    result.victims = best.victims;
    return result;
  }

 private:
  PluginStatus selectVictimsOnNode(CycleState& state, const PodInfo& pod, NodeInfo& node, const Snapshot& snapshot,
                                   FrameworkHandle& handle, Candidate& out) {
    std::vector<PodInfoPtr> potential;
    auto removePod = [&](const PodInfoPtr& p) {
      node.removePod(p->uid);
      return handle.runPreFilterExtensionRemovePod(state, pod, *p, node, snapshot);
    };
    auto addPod = [&](const PodInfoPtr& p) {
      node.addPod(p);
      return handle.runPreFilterExtensionAddPod(state, pod, *p, node, snapshot);
    };
    // Remove every lower-priority pod, then see whether the pod fits at all.
    std::vector<PodInfoPtr> pods = node.pods;
    for (const auto& p : pods) {
      if (p->priority < pod.priority) {
        potential.push_back(p);
        if (auto s = removePod(p); !s.ok()) return s;
      }
    }
    if (potential.empty()) return PluginStatus::unresolvable({kNoVictims});
    if (auto s = handle.runFilterPluginsWithNominatedPods(state, pod, node, snapshot); !s.ok()) return s;

    std::sort(potential.begin(), potential.end(),
              [](const PodInfoPtr& a, const PodInfoPtr& b) { return moreImportantPod(*a, *b); });
    std::vector<PodInfoPtr> violating, nonViolating;
    splitByPdb(potential, snapshot.disruptionBudgets, violating, nonViolating);

    // Reprieve as many as possible: PDB-protected pods first, each group from the highest
    // priority down. A pod that cannot come back becomes a victim.
    auto reprieve = [&](const PodInfoPtr& p) -> Result<bool> {
      if (auto s = addPod(p); !s.ok()) return Status::internal(s.reasons.empty() ? "AddPod failed" : s.reasons[0]);
      bool fits = handle.runFilterPluginsWithNominatedPods(state, pod, node, snapshot).ok();
      if (!fits) {
        if (auto s = removePod(p); !s.ok()) return Status::internal(s.reasons.empty() ? "RemovePod failed" : s.reasons[0]);
        out.victims.push_back(p);
      }
      return fits;
    };
    for (const auto& p : violating) {
      auto fits = reprieve(p);
      if (!fits) return PluginStatus::error(fits.status().message());
      if (!*fits) ++out.numPdbViolations;
    }
    for (const auto& p : nonViolating) {
      auto fits = reprieve(p);
      if (!fits) return PluginStatus::error(fits.status().message());
    }
    if (!violating.empty() && !nonViolating.empty())
      std::sort(out.victims.begin(), out.victims.end(),
                [](const PodInfoPtr& a, const PodInfoPtr& b) { return moreImportantPod(*a, *b); });
    return PluginStatus::success();
  }

  // filterPodsWithPDBViolation: each matching budget's allowance is spent pod by pod; a pod
  // that takes one below zero would violate it.
  static void splitByPdb(const std::vector<PodInfoPtr>& pods, const std::vector<DisruptionBudget>& pdbs,
                         std::vector<PodInfoPtr>& violating, std::vector<PodInfoPtr>& nonViolating) {
    std::vector<int32_t> allowed;
    allowed.reserve(pdbs.size());
    for (const auto& b : pdbs) allowed.push_back(b.disruptionsAllowed);
    for (const auto& p : pods) {
      bool violated = false;
      if (!p->labels.empty()) {
        for (size_t i = 0; i < pdbs.size(); ++i) {
          const auto& b = pdbs[i];
          if (b.ns != p->ns) continue;
          if (b.selector.empty() || b.selector.matchesNothing() || !selectorMatches(b.selector, p->labels)) continue;
          if (b.disruptedPods.count(p->name)) continue;
          if (--allowed[i] < 0) violated = true;
        }
      }
      (violated ? violating : nonViolating).push_back(p);
    }
  }

  static const Candidate& pickOne(const std::vector<Candidate>& cs) {
    std::vector<const Candidate*> pool;
    for (const auto& c : cs) pool.push_back(&c);
    auto keepMin = [&](auto key) {
      if (pool.size() <= 1) return;
      auto best = key(*pool[0]);
      for (const auto* c : pool) best = std::min(best, key(*c));
      std::vector<const Candidate*> next;
      for (const auto* c : pool)
        if (key(*c) == best) next.push_back(c);
      pool = std::move(next);
    };
    keepMin([](const Candidate& c) { return static_cast<int64_t>(c.numPdbViolations); });
    keepMin([](const Candidate& c) { return static_cast<int64_t>(c.victims.front()->priority); });
    keepMin([](const Candidate& c) {
      int64_t sum = 0;
      for (const auto& v : c.victims) sum += static_cast<int64_t>(v->priority) + static_cast<int64_t>(INT32_MAX) + 1;
      return sum;
    });
    keepMin([](const Candidate& c) { return static_cast<int64_t>(c.victims.size()); });
    // The latest "earliest start among the highest-priority victims" wins: negate to keep min.
    keepMin([](const Candidate& c) {
      int32_t top = c.victims.front()->priority;
      auto earliest = c.victims.front()->startTime;
      for (const auto& v : c.victims)
        if (v->priority == top && v->startTime < earliest) earliest = v->startTime;
      return -static_cast<int64_t>(earliest.time_since_epoch().count());
    });
    return *pool.front();
  }
};

}  // namespace

Result<std::shared_ptr<Plugin>> newDefaultPreemption(const nlohmann::json& args) {
  auto plugin = std::make_shared<DefaultPreemption>();
  auto pct = argInt(args, "minCandidateNodesPercentage", 10, 0, 100);
  if (!pct) return pct.status();
  auto abs = argInt(args, "minCandidateNodesAbsolute", 100, 0, INT32_MAX);
  if (!abs) return abs.status();
  if (*pct == 0 && *abs == 0)
    return Status::badRequest("minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute");
  plugin->minCandidateNodesPercentage = *pct;
  plugin->minCandidateNodesAbsolute = *abs;
  return std::shared_ptr<Plugin>(plugin);
}

}  // namespace orrery::scheduler
