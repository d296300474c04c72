// One profile's plugins run in kube-scheduler's order (schedule_one.go): PreFilter, Filter
// over numFeasibleNodesToFind nodes from a rotating start (in parallel, nominated pods
// counted), PostFilter when none fits, then PreScore, Score, NormalizeScore, weights and
// selectHost. Every step lands in the DecisionRecord.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <pthread.h>

#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

using Clock = std::chrono::steady_clock;

// A small process-wide pool: the calling thread works too, so one extra thread per spare core
// is enough. Jobs are serialized (one cycle parallelizes at a time).
class WorkerPool {
 public:
  static WorkerPool& instance() {
    // Leaked on purpose: workers may still be parked when statics are destroyed at exit.
    static WorkerPool* pool = new WorkerPool();
    return *pool;
  }
  size_t workers() const { return threads_.size(); }

  /// Runs fn(i) for i in [0, chunks), on the pool and the caller; returns when all are done.
  void run(size_t chunks, const std::function<void(size_t)>& fn) {
    if (threads_.empty() || chunks <= 1) {
      for (size_t i = 0; i < chunks; ++i) fn(i);
      return;
    }
    std::lock_guard serialize(runMu_);
    {
      std::lock_guard lock(mu_);
      fn_ = &fn;
      chunks_ = chunks;
      next_.store(0);
      active_ = threads_.size();
      ++generation_;
    }
    cv_.notify_all();
    work();
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
  }

 private:
  WorkerPool() {
    unsigned n = std::thread::hardware_concurrency();
    size_t extra = n > 1 ? std::min<unsigned>(n - 1, 7) : 0;
    for (size_t i = 0; i < extra; ++i) threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "sched-filter");
      loop();
    });
  }
  void work() {
    for (;;) {
      size_t i = next_.fetch_add(1);
      if (i >= chunks_) return;
      (*fn_)(i);
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      work();
      std::lock_guard lock(mu_);
      if (--active_ == 0) done_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex runMu_, mu_;
  std::condition_variable cv_, done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t chunks_ = 0;
  std::atomic<size_t> next_{0};
  size_t active_ = 0;
  uint64_t generation_ = 0;
};

// Below this many nodes to filter (or score) a cycle stays on the calling thread. Measured
// on the 2-core reference machine under load: filtering 500 of 5,000 nodes took ~145 us of
// CPU on one thread and ~180-250 us spread over two (wake-ups, chunks past the cut, cold
// caches), so the pool only pays off for the largest clusters.
std::atomic<size_t> gParallelThreshold{2048};
constexpr size_t kChunk = 128;

// A cycle filters a window of nodes that moves on every cycle (kube's rotating start index),
// so each NodeInfo it reads is usually out of the cache: the filter loop was bound by those
// misses (the first plugin to touch a node took the largest share of the cycle). Asking for
// the hot fields a few nodes ahead lets the loads overlap.
constexpr size_t kPrefetchDistance = 6;
inline void prefetchNode(const Snapshot& snapshot, size_t index) {
  const NodeInfo* node = snapshot.nodes[index].get();
  // NodeInfo keeps what Filter and Score read in its first lines, up to imageSizes (framework.h).
  const char* end = reinterpret_cast<const char*>(&node->imageSizes + 1);
  for (const char* line = reinterpret_cast<const char*>(node); line < end; line += 64) __builtin_prefetch(line);
}

struct Timer {
  std::atomic<int64_t> ns{0};
};

template <typename T>
bool hasName(const std::vector<std::shared_ptr<T>>& v, const std::string& name) {
  for (const auto& p : v)
    if (p->name() == name) return true;
  return false;
}

const char* pointName(const std::string& key) { return key.c_str(); }

class FrameworkImpl final : public Framework, public FrameworkHandle {
 public:
  ProfileConfig profile_;
  int32_t percentage_ = 0;
  std::vector<std::shared_ptr<PreFilterPlugin>> preFilter_;
  std::vector<std::shared_ptr<FilterPlugin>> filter_;
  std::vector<std::shared_ptr<PostFilterPlugin>> postFilter_;
  std::vector<std::shared_ptr<PreScorePlugin>> preScore_;
  std::vector<std::shared_ptr<ScorePlugin>> score_;
  std::vector<int32_t> scoreWeights_;
  std::mt19937_64 rng_{std::random_device{}()};

  // Per cycle.
  std::vector<char> preFilterSkipped_;  // by preFilter_ index
  std::vector<char> filterSkipped_;     // by filter_ index
  std::unique_ptr<Timer[]> filterTimers_;
  size_t filterTimerCount_ = 0;
  std::vector<PluginStatus> statuses_;
  std::vector<int64_t> totals_, scoreBuffer_;  // Score's per-node buffers, reused across cycles
  bool sampleAll_ = true;

  // Opportunistic batching (KEP-5598). After a full cycle, the feasible nodes it scored stay
  // ranked by total; the next pod with the same signature, in the very next cycle, takes the
  // best of them once it is refiltered. The node chosen last is refiltered first: if the pod
  // no longer fits there it leaves the ranking, else it is rescored with its new pod (kube's
  // rescoring of the last chosen node) and moves to its new place. Every other node keeps
  // the score the full cycle gave it: within the batch's 500 ms only this scheduler's own
  // placements are assumed to change nodes, as in kube.
  struct BatchCandidate {
    uint32_t nodeId = 0;
    int64_t total = 0;
    size_t row = 0;  // of Batch::scores
  };
  struct Batch {
    std::string signature;
    std::string fromPod;  // "ns/name" of the full cycle's attempt
    int32_t fromAttempt = 0;
    Clock::time_point created;
    int64_t lastCycle = 0;
    uint32_t lastChosen = 0;
    std::vector<PluginRef> scorePlugins;  // as in the full cycle's record
    std::vector<char> scoreSkipped;       // by score_ index
    std::vector<int64_t> scores;          // the full cycle's record.scores: rows of raw, normalized
    std::vector<BatchCandidate> ranking;  // by total, best first
  };
  static constexpr std::chrono::milliseconds kMaxBatchAge{500};
  bool batching_ = true;
  std::vector<const Plugin*> signers_;  // every PreFilter, Filter, PreScore and Score plugin once
  std::optional<Batch> batch_;
  std::atomic<int64_t> batchedCycles_{0};  // read by Scheduler::stats() from any thread

  void dropBatch() override { batch_.reset(); }
  int64_t batchedCycles() const override { return batchedCycles_.load(std::memory_order_relaxed); }

  /// The pod's scheduling signature: every plugin's part, or nullopt when one cannot sign.
  std::optional<std::string> signPod(const PodInfo& pod, const Snapshot& snapshot) const {
    std::string signature;
    // Filter counts the pods nominated to a node only when they are of equal or higher
    // priority than the pod: two pods alike but for their priority may fit different nodes.
    signNumber(signature, pod.priority);
    for (const Plugin* p : signers_) {
      signValue(signature, p->name());
      if (!p->sign(pod, snapshot, signature)) return std::nullopt;
    }
    return signature;
  }
  const Snapshot* snapshot_ = nullptr;

  const ProfileConfig& profile() const override { return profile_; }

  // ---- FrameworkHandle

  PluginStatus runFilterPlugins(const CycleState& state, const PodInfo& pod, const NodeInfo& node, bool timed) {
    for (size_t i = 0; i < filter_.size(); ++i) {
      if (filterSkipped_[i]) continue;
      PluginStatus s;
      if (timed) {
        auto t0 = Clock::now();
        s = filter_[i]->filter(state, pod, node);
        filterTimers_[i].ns.fetch_add((Clock::now() - t0).count(), std::memory_order_relaxed);
      } else {
        s = filter_[i]->filter(state, pod, node);
      }
      if (!s.ok()) {
        s.plugin = filter_[i]->name();
        return s;
      }
    }
    return PluginStatus::success();
  }

  PluginStatus filterWithNominated(CycleState& state, const PodInfo& pod, const NodeInfo& node,
                                   const Snapshot& snapshot, bool timed) {
    if (!snapshot.nominatedPods.empty()) {
      auto it = snapshot.nominatedPods.find(node.name);
      if (it != snapshot.nominatedPods.end()) {
        std::vector<const PodInfoPtr*> add;
        for (const auto& p : it->second)
          if (p->priority >= pod.priority && p->uid != pod.uid) add.push_back(&p);
        if (!add.empty()) {
          // First pass with the nominated pods treated as running; the second without them
          // (affinity may need them absent): the pod must fit both ways.
          NodeInfo withNominated = node;
          CycleState stateWith = state.clone();
          for (const auto* p : add) {
            withNominated.addPod(*p);
            auto s = runPreFilterExtensionAddPod(stateWith, pod, **p, withNominated, snapshot);
            if (!s.ok()) return s;
          }
          auto s = runFilterPlugins(stateWith, pod, withNominated, timed);
          if (!s.ok()) return s;
        }
      }
    }
    return runFilterPlugins(state, pod, node, timed);
  }

  PluginStatus runFilterPluginsWithNominatedPods(CycleState& state, const PodInfo& pod, const NodeInfo& node,
                                                 const Snapshot& snapshot) override {
    return filterWithNominated(state, pod, node, snapshot, false);
  }

  PluginStatus runPreFilterExtensionAddPod(CycleState& state, const PodInfo& podToSchedule, const PodInfo& podToAdd,
                                           const NodeInfo& node, const Snapshot& snapshot) override {
    for (size_t i = 0; i < preFilter_.size(); ++i) {
      if (preFilterSkipped_[i]) continue;
      auto s = preFilter_[i]->addPod(state, podToSchedule, podToAdd, node, snapshot);
      if (!s.ok()) {
        s.plugin = preFilter_[i]->name();
        return s;
      }
    }
    return PluginStatus::success();
  }

  PluginStatus runPreFilterExtensionRemovePod(CycleState& state, const PodInfo& podToSchedule,
                                              const PodInfo& podToRemove, const NodeInfo& node,
                                              const Snapshot& snapshot) override {
    for (size_t i = 0; i < preFilter_.size(); ++i) {
      if (preFilterSkipped_[i]) continue;
      auto s = preFilter_[i]->removePod(state, podToSchedule, podToRemove, node, snapshot);
      if (!s.ok()) {
        s.plugin = preFilter_[i]->name();
        return s;
      }
    }
    return PluginStatus::success();
  }

  // ---- the cycle

  Outcome schedule(const PodInfo& pod, const Snapshot& snapshot, size_t startIndex, int64_t cycle,
                   DecisionRecord& record) override {
    auto cycleStart = Clock::now();
    snapshot_ = &snapshot;
    const size_t n = snapshot.nodes.size();
    record.profile = profile_.schedulerName;
    record.nodesTotal = static_cast<int32_t>(n);
    record.nodesEvaluated = record.nodesFeasible = 0;
    record.nodes.clear();
    record.timings.clear();
    record.scorePlugins.clear();
    record.scores.clear();
    record.preFilterRejection.clear();
    record.batch.reset();

    auto finishError = [&](const PluginStatus& s, const std::string& where) {
      record.result = "Error";
      std::string why = s.reasons.empty() ? std::string("error") : s.reasons.front();
      record.message = "running " + where + " plugin \"" + s.plugin + "\": " + why;
      record.duration = Clock::now() - cycleStart;
      Outcome o;
      o.status = PluginStatus::error(record.message);
      o.status.plugin = s.plugin;
      return o;
    };
    auto addTiming = [&](const std::string& plugin, const char* point, int64_t ns) {
      record.timings.push_back({plugin, point, std::chrono::nanoseconds(ns)});
    };

    if (n == 0) {
      record.result = "Unschedulable";
      record.message = "no nodes available to schedule pods";
      record.duration = Clock::now() - cycleStart;
      Outcome o;
      o.status = PluginStatus::unschedulable({record.message});
      return o;
    }

    CycleState state;
    {
      auto ref = std::make_shared<SnapshotRef>();
      ref->snapshot = &snapshot;
      state.write(kSnapshotStateKey, ref);
    }

    // PreFilter.
    preFilterSkipped_.assign(preFilter_.size(), 0);
    filterSkipped_.assign(filter_.size(), 0);
    for (size_t i = 0; i < preFilter_.size(); ++i) {
      auto t0 = Clock::now();
      PluginStatus s = preFilter_[i]->preFilter(state, pod, snapshot);
      addTiming(preFilter_[i]->name(), "PreFilter", (Clock::now() - t0).count());
      s.plugin = preFilter_[i]->name();
      if (s.code == PluginStatus::Code::kSkip) {
        preFilterSkipped_[i] = 1;
        for (size_t f = 0; f < filter_.size(); ++f)
          if (filter_[f]->name() == s.plugin) filterSkipped_[f] = 1;
        continue;
      }
      if (s.code == PluginStatus::Code::kError) return finishError(s, "PreFilter");
      if (!s.ok()) {
        // Every node gets the PreFilter's status; the message counts it once.
        std::string msg;
        for (const auto& r : s.reasons) msg += (msg.empty() ? "" : ", ") + r;
        record.preFilterRejection = msg;
        record.nodes.reserve(n);
        for (const auto& node : snapshot.nodes) {
          NodeDecision d;
          d.node = node->name;
          d.rejectedBy = s.plugin;
          d.reasons = s.reasons;
          d.unresolvable = s.code == PluginStatus::Code::kUnschedulableAndUnresolvable;
          record.nodes.push_back(std::move(d));
        }
        return finishUnschedulable(state, pod, snapshot, record, cycleStart);
      }
    }

    // Filter.
    if (!filterTimers_ || filterTimerCount_ != filter_.size()) {
      filterTimers_.reset(new Timer[filter_.size()]);
      filterTimerCount_ = filter_.size();
    }
    for (size_t i = 0; i < filter_.size(); ++i) filterTimers_[i].ns.store(0, std::memory_order_relaxed);

    // Opportunistic batching: a pod like the last one may take the next node of its ranking.
    std::optional<std::string> signature;
    if (batching_ && cycle > 0 && pod.nominatedNodeName.empty()) signature = signPod(pod, snapshot);
    if (batch_) {
      if (signature) {
        if (auto o = scheduleFromBatch(pod, snapshot, cycle, *signature, state, record, cycleStart)) return std::move(*o);
      }
      batch_.reset();
    }

    std::vector<const NodeInfo*> feasible;
    std::vector<size_t> feasibleRecordIndex;
    bool filterError = false;
    PluginStatus firstError;
    // Statuses are written for every node a cycle looks at before they are read, so the buffer
    // is reused across cycles instead of allocated per pod.
    if (statuses_.size() < n) statuses_.resize(n);
    auto& statuses = statuses_;

    if (!pod.nominatedNodeName.empty()) {
      // evaluateNominatedNode: a pod that preempted for a node tries that node first.
      if (const NodeInfo* nominated = snapshot.find(pod.nominatedNodeName)) {
        sampleAll_ = true;
        PluginStatus s = filterWithNominated(state, pod, *nominated, snapshot, true);
        if (s.code == PluginStatus::Code::kError) return finishError(s, "Filter");
        if (s.ok()) {
          feasible.push_back(nominated);
          feasibleRecordIndex.push_back(0);
          NodeDecision d;
          d.node = nominated->name;
          d.nodeId = nominated->nameId;
          record.nodes.push_back(std::move(d));
          record.nodesEvaluated = 1;
        }
      }
    }

    if (feasible.empty()) {
      int32_t toFind = numFeasibleNodesToFind(
          profile_.percentageOfNodesToScore > 0 ? profile_.percentageOfNodesToScore : percentage_,
          static_cast<int32_t>(n));
      sampleAll_ = n <= 128;
      if (static_cast<size_t>(toFind) < gParallelThreshold.load(std::memory_order_relaxed) ||
          WorkerPool::instance().workers() == 0) {
        size_t found = 0, i = 0;
        for (; i < n && found < static_cast<size_t>(toFind); ++i) {
          prefetchNode(snapshot, (startIndex + i + kPrefetchDistance) % n);
          const NodeInfo& node = *snapshot.nodes[(startIndex + i) % n];
          statuses[i] = filterWithNominated(state, pod, node, snapshot, sampleAll_ || i % 16 == 0);
          if (statuses[i].ok()) ++found;
        }
        record.nodesEvaluated = static_cast<int32_t>(i);
      } else {
        // Chunks in order; stop taking new chunks once enough nodes fit. The results are then
        // cut where the sequential scan would have stopped, so the outcome does not depend on
        // the threads' timing.
        std::atomic<size_t> found{0};
        size_t chunks = (n + kChunk - 1) / kChunk;
        std::vector<char> done(chunks, 0);
        WorkerPool::instance().run(chunks, [&](size_t c) {
          if (found.load(std::memory_order_relaxed) >= static_cast<size_t>(toFind)) return;
          size_t end = std::min(n, (c + 1) * kChunk);
          size_t local = 0;
          for (size_t i = c * kChunk; i < end; ++i) {
            prefetchNode(snapshot, (startIndex + i + kPrefetchDistance) % n);
            const NodeInfo& node = *snapshot.nodes[(startIndex + i) % n];
            statuses[i] = filterWithNominated(state, pod, node, snapshot, i % 16 == 0);
            if (statuses[i].ok()) ++local;
          }
          found += local;
          done[c] = 1;
        });
        size_t count = 0, i = 0;
        for (; i < n && count < static_cast<size_t>(toFind); ++i) {
          if (!done[i / kChunk]) break;
          if (statuses[i].ok()) ++count;
        }
        record.nodesEvaluated = static_cast<int32_t>(i);
      }
      // The record's per-node entries, in evaluation order.
      size_t evaluatedCount = static_cast<size_t>(record.nodesEvaluated);
      record.nodes.resize(evaluatedCount);
      for (size_t i = 0; i < evaluatedCount; ++i) {
        const NodeInfo* node = snapshot.nodes[(startIndex + i) % n].get();
        PluginStatus& status = statuses[i];
        NodeDecision& d = record.nodes[i];
        d.node = node->name;
        d.nodeId = node->nameId;
        if (status.ok()) {
          feasible.push_back(node);
          feasibleRecordIndex.push_back(i);
          continue;
        }
        if (status.code == PluginStatus::Code::kError && !filterError) {
          filterError = true;
          firstError = status;
        }
        d.rejectedBy = std::move(status.plugin);
        d.reasons = std::move(status.reasons);
        d.unresolvable = status.code == PluginStatus::Code::kUnschedulableAndUnresolvable;
      }
    }
    {
      // Every 16th node is timed when many are filtered; those stand for the rest (kube
      // samples its plugin metrics too).
      int64_t evaluatedNodes = std::max<int32_t>(record.nodesEvaluated, 1);
      int64_t timedNodes = sampleAll_ ? evaluatedNodes : (evaluatedNodes + 15) / 16;
      for (size_t i = 0; i < filter_.size(); ++i) {
        if (filterSkipped_[i]) continue;
        addTiming(filter_[i]->name(), "Filter", filterTimers_[i].ns.load() * evaluatedNodes / timedNodes);
      }
    }
    if (filterError) return finishError(firstError, "Filter");
    record.nodesFeasible = static_cast<int32_t>(feasible.size());

    if (feasible.empty()) return finishUnschedulable(state, pod, snapshot, record, cycleStart);

    Outcome outcome;
    if (feasible.size() == 1) {
      // kube skips scoring when only one node fits.
      outcome.node = feasible[0]->name;
      return finishScheduled(pod, record, outcome, cycleStart);
    }

    // PreScore.
    std::vector<char> scoreSkipped;
    if (PluginStatus s = runPreScore(state, pod, snapshot, feasible, record, scoreSkipped); !s.ok())
      return finishError(s, "PreScore");

    // Score, NormalizeScore, weights. The record's scorePlugins are the plugins that score
    // (not skipped by their PreScore), and each feasible node gets one row of raw and
    // normalized scores in record.scores.
    const size_t f = feasible.size();
    for (size_t i = 0; i < score_.size(); ++i) {
      if (!scoreSkipped[i]) record.scorePlugins.push_back({score_[i]->name(), scoreWeights_[i]});
    }
    const size_t stride = record.scorePlugins.size();
    record.scores.assign(f * stride * 2, 0);
    for (size_t k = 0; k < f; ++k) record.nodes[feasibleRecordIndex[k]].scoreRow = static_cast<int32_t>(k);
    totals_.assign(f, 0);
    auto& totals = totals_;
    auto& scores = scoreBuffer_;
    scores.resize(f);
    for (size_t i = 0, column = 0; i < score_.size(); ++i) {
      if (scoreSkipped[i]) continue;
      const ScorePlugin& plugin = *score_[i];
      auto t0 = Clock::now();
      if (f < gParallelThreshold.load(std::memory_order_relaxed) || WorkerPool::instance().workers() == 0) {
        for (size_t k = 0; k < f; ++k) scores[k] = plugin.score(state, pod, *feasible[k]);
      } else {
        WorkerPool::instance().run((f + kChunk - 1) / kChunk, [&](size_t c) {
          size_t end = std::min(f, (c + 1) * kChunk);
          for (size_t k = c * kChunk; k < end; ++k) scores[k] = plugin.score(state, pod, *feasible[k]);
        });
      }
      auto t1 = Clock::now();
      addTiming(plugin.name(), "Score", (t1 - t0).count());
      for (size_t k = 0; k < f; ++k) record.scores[(k * stride + column) * 2] = scores[k];
      plugin.normalize(state, pod, scores);
      addTiming(plugin.name(), "NormalizeScore", (Clock::now() - t1).count());
      int64_t weight = scoreWeights_[i];
      for (size_t k = 0; k < f; ++k) {
        if (scores[k] < 0 || scores[k] > kMaxNodeScore) {
          PluginStatus s = PluginStatus::error("plugin \"" + plugin.name() + "\" returns an invalid score " +
                                               std::to_string(scores[k]) + ", it should in the range of [0, 100] after normalizing");
          s.plugin = plugin.name();
          return finishError(s, "Score");
        }
        record.scores[(k * stride + column) * 2 + 1] = scores[k];
        totals[k] += scores[k] * weight;
      }
      ++column;
    }
    for (size_t k = 0; k < f; ++k) record.nodes[feasibleRecordIndex[k]].total = totals[k];

    // selectHost: the highest total; ties broken uniformly at random (reservoir sampling).
    size_t best = 0, ties = 1;
    for (size_t k = 1; k < f; ++k) {
      if (totals[k] > totals[best]) {
        best = k;
        ties = 1;
      } else if (totals[k] == totals[best]) {
        ++ties;
        if (std::uniform_int_distribution<size_t>(0, ties - 1)(rng_) == 0) best = k;
      }
    }
    outcome.node = feasible[best]->name;
    if (signature) {
      Batch b;
      b.signature = std::move(*signature);
      b.fromPod = record.podNamespace + "/" + record.podName;
      b.fromAttempt = record.attempt;
      b.created = Clock::now();
      b.lastCycle = cycle;
      b.lastChosen = feasible[best]->nameId;
      b.scorePlugins = record.scorePlugins;
      b.scoreSkipped = std::move(scoreSkipped);
      b.scores = record.scores;
      b.ranking.resize(f);
      for (size_t k = 0; k < f; ++k) b.ranking[k] = {feasible[k]->nameId, totals[k], k};
      std::stable_sort(b.ranking.begin(), b.ranking.end(),
                       [](const BatchCandidate& a, const BatchCandidate& c) { return a.total > c.total; });
      batch_ = std::move(b);
    }
    return finishScheduled(pod, record, outcome, cycleStart);
  }

  // PreScore over `feasible`, timed into the record. `skipped` gets, by score_ index, the
  // score plugins whose PreScore had nothing to do for the pod. Returns the first failure.
  PluginStatus runPreScore(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                           const std::vector<const NodeInfo*>& feasible, DecisionRecord& record,
                           std::vector<char>& skipped) {
    skipped.assign(score_.size(), 0);
    for (const auto& p : preScore_) {
      auto t0 = Clock::now();
      PluginStatus s = p->preScore(state, pod, snapshot, feasible);
      record.timings.push_back({p->name(), "PreScore", Clock::now() - t0});
      s.plugin = p->name();
      if (s.code == PluginStatus::Code::kSkip) {
        for (size_t i = 0; i < score_.size(); ++i)
          if (score_[i]->name() == s.plugin) skipped[i] = 1;
      } else if (!s.ok()) {
        return s;
      }
    }
    return PluginStatus::success();
  }

  // A cycle from the kept ranking (see Batch). nullopt: the ranking cannot serve this pod (the
  // caller drops it and runs a full cycle, which starts a new one); `record` is then as the
  // PreFilter left it.
  std::optional<Outcome> scheduleFromBatch(const PodInfo& pod, const Snapshot& snapshot, int64_t cycle,
                                           const std::string& signature, CycleState& state,
                                           DecisionRecord& record, Clock::time_point cycleStart) {
    Batch& b = *batch_;
    if (cycle != b.lastCycle + 1 || signature != b.signature || Clock::now() - b.created > kMaxBatchAge ||
        b.ranking.empty())
      return std::nullopt;
    const size_t timingsBefore = record.timings.size();
    auto giveUp = [&]() -> std::optional<Outcome> {
      record.nodes.clear();
      record.timings.resize(timingsBefore);
      for (size_t i = 0; i < filter_.size(); ++i) filterTimers_[i].ns.store(0, std::memory_order_relaxed);
      return std::nullopt;
    };
    auto addTiming = [&](const std::string& plugin, const char* point, Clock::duration spent) {
      record.timings.push_back({plugin, point, std::chrono::duration_cast<std::chrono::nanoseconds>(spent)});
    };
    const size_t width = b.scorePlugins.size() * 2;  // a row: raw and normalized per plugin
    auto rankOf = [&](uint32_t nodeId) {
      size_t i = 0;
      while (i < b.ranking.size() && b.ranking[i].nodeId != nodeId) ++i;
      return i;
    };

    // The node chosen last now holds the previous pod: refilter it, and rescore it if it fits.
    const NodeInfo* last = snapshot.find(nodeNameOf(b.lastChosen));
    size_t lastRank = rankOf(b.lastChosen);
    if (!last || lastRank == b.ranking.size()) return giveUp();
    int32_t filtered = 1, feasibleCount = 0;
    NodeDecision lastDecision;
    lastDecision.node = last->name;
    lastDecision.nodeId = last->nameId;
    const size_t lastRow = b.ranking[lastRank].row;
    PluginStatus lastStatus = filterWithNominated(state, pod, *last, snapshot, true);
    if (lastStatus.code == PluginStatus::Code::kError) return giveUp();
    const bool lastFits = lastStatus.ok();
    if (!lastFits) {
      lastDecision.rejectedBy = std::move(lastStatus.plugin);
      lastDecision.reasons = std::move(lastStatus.reasons);
      lastDecision.unresolvable = lastStatus.code == PluginStatus::Code::kUnschedulableAndUnresolvable;
      b.ranking.erase(b.ranking.begin() + static_cast<std::ptrdiff_t>(lastRank));
    } else {
      ++feasibleCount;
      // PreScore with this node as the only feasible one: the plugins that scored in the full
      // cycle must score now, and no other.
      std::vector<char> skipped;
      if (!runPreScore(state, pod, snapshot, {last}, record, skipped).ok() || skipped != b.scoreSkipped)
        return giveUp();
      int64_t* row = b.scores.data() + lastRow * width;
      int64_t total = 0;
      for (size_t i = 0, column = 0; i < score_.size(); ++i) {
        if (skipped[i]) continue;
        auto t0 = Clock::now();
        int64_t raw = score_[i]->score(state, pod, *last);
        addTiming(score_[i]->name(), "Score", Clock::now() - t0);
        int64_t normalized = raw;
        if (raw == row[column * 2]) {
          normalized = row[column * 2 + 1];
        } else if (score_[i]->normalizesAcrossNodes()) {
          return giveUp();  // its new score depends on every node's: only a full cycle can tell
        }
        if (normalized < 0 || normalized > kMaxNodeScore) return giveUp();
        row[column * 2] = raw;
        row[column * 2 + 1] = normalized;
        total += normalized * scoreWeights_[i];
        ++column;
      }
      lastDecision.total = total;
      BatchCandidate moved = b.ranking[lastRank];
      moved.total = total;
      b.ranking.erase(b.ranking.begin() + static_cast<std::ptrdiff_t>(lastRank));
      auto at = std::find_if(b.ranking.begin(), b.ranking.end(),
                             [&](const BatchCandidate& c) { return c.total < total; });
      b.ranking.insert(at, moved);
    }
    if (b.ranking.empty()) return giveUp();

    // The best node of the ranking, ties broken uniformly at random as selectHost breaks them.
    size_t ties = 1;
    while (ties < b.ranking.size() && b.ranking[ties].total == b.ranking[0].total) ++ties;
    const BatchCandidate best = b.ranking[ties > 1 ? std::uniform_int_distribution<size_t>(0, ties - 1)(rng_) : 0];
    const bool chosenIsLast = best.nodeId == b.lastChosen;
    const NodeInfo* chosen = chosenIsLast ? last : snapshot.find(nodeNameOf(best.nodeId));
    if (!chosen) return giveUp();
    if (!chosenIsLast) {
      // The ranking is as old as the batch: the node must still fit (kube's evaluation of the
      // hinted node). When it does not, a full cycle decides.
      ++filtered;
      PluginStatus s = filterWithNominated(state, pod, *chosen, snapshot, true);
      if (!s.ok()) return giveUp();
      ++feasibleCount;
    }

    record.scorePlugins = b.scorePlugins;
    record.scores.clear();
    auto withRow = [&](NodeDecision d, size_t row) {
      d.scoreRow = width ? static_cast<int32_t>(record.scores.size() / width) : 0;
      record.scores.insert(record.scores.end(), b.scores.begin() + static_cast<std::ptrdiff_t>(row * width),
                           b.scores.begin() + static_cast<std::ptrdiff_t>((row + 1) * width));
      return d;
    };
    record.nodes.clear();
    if (chosenIsLast) {
      record.nodes.push_back(withRow(std::move(lastDecision), lastRow));
    } else {
      record.nodes.push_back(lastFits ? withRow(std::move(lastDecision), lastRow) : std::move(lastDecision));
      NodeDecision d;
      d.node = chosen->name;
      d.nodeId = chosen->nameId;
      d.total = best.total;
      record.nodes.push_back(withRow(std::move(d), best.row));
    }
    record.nodesEvaluated = filtered;
    record.nodesFeasible = feasibleCount;
    for (size_t i = 0; i < filter_.size(); ++i) {
      if (filterSkipped_[i]) continue;
      record.timings.push_back({filter_[i]->name(), "Filter", std::chrono::nanoseconds(filterTimers_[i].ns.load())});
    }
    record.batch = DecisionRecord::BatchReuse{b.fromPod, b.fromAttempt, static_cast<int32_t>(b.ranking.size()),
                                              lastFits ? last->name : std::string()};
    b.lastCycle = cycle;
    b.lastChosen = chosen->nameId;
    batchedCycles_.fetch_add(1, std::memory_order_relaxed);
    Outcome outcome;
    outcome.node = chosen->name;
    return finishScheduled(pod, record, outcome, cycleStart);
  }

  Outcome finishScheduled(const PodInfo& pod, DecisionRecord& record, Outcome& outcome, Clock::time_point start) {
    record.result = "Scheduled";
    record.node = outcome.node;
    record.message = "Successfully assigned " + pod.ns + "/" + pod.name + " to " + outcome.node;
    record.duration = Clock::now() - start;
    outcome.status = PluginStatus::success();
    return outcome;
  }

  Outcome finishUnschedulable(CycleState& state, const PodInfo& pod, const Snapshot& snapshot, DecisionRecord& record,
                              Clock::time_point start) {
    record.result = "Unschedulable";
    record.node.clear();
    std::string message = fitErrorMessage(record.nodesTotal, record.nodes, record.preFilterRejection);
    for (const auto& p : postFilter_) {
      auto t0 = Clock::now();
      PreemptionResult r = p->postFilter(state, pod, snapshot, record.nodes, *this);
      record.timings.push_back({p->name(), "PostFilter", Clock::now() - t0});
      record.preemption = std::move(r);
      record.victimNames.clear();
      for (const auto& v : record.preemption.victims) record.victimNames.push_back(v->ns + "/" + v->name);
      // The first PostFilter that nominates a node ends the point, as in kube.
      if (!record.preemption.nominatedNode.empty()) break;
    }
    if (!record.preemption.message.empty()) message += " " + record.preemption.message + ".";
    record.message = message;
    record.duration = Clock::now() - start;
    Outcome o;
    o.status = PluginStatus::unschedulable({message});
    return o;
  }
};

struct PointSpec {
  const char* name;    // kube's interface name, for errors
  const char* point;   // extension point, for errors
};

}  // namespace

void setParallelThreshold(size_t nodes) { gParallelThreshold.store(std::max<size_t>(nodes, 1)); }

int32_t numFeasibleNodesToFind(int32_t percentageOfNodesToScore, int32_t nodes) {
  constexpr int32_t kMinFeasibleNodes = 100;
  constexpr int32_t kMinFeasibleNodesPercentage = 5;
  if (nodes < kMinFeasibleNodes) return nodes;
  int32_t percentage = percentageOfNodesToScore;
  if (percentage <= 0) {
    percentage = 50 - nodes / 125;
    if (percentage < kMinFeasibleNodesPercentage) percentage = kMinFeasibleNodesPercentage;
  }
  if (percentage > 100) percentage = 100;
  int32_t num = static_cast<int32_t>(static_cast<int64_t>(nodes) * percentage / 100);
  return num < kMinFeasibleNodes ? kMinFeasibleNodes : num;
}

std::string fitErrorMessage(int32_t nodes, const std::vector<NodeDecision>& decisions,
                            const std::string& preFilterRejection) {
  std::string msg = "0/" + std::to_string(nodes) + " nodes are available:";
  if (!preFilterRejection.empty()) return msg + " " + preFilterRejection + ".";
  std::map<std::string, int> histogram;
  for (const auto& d : decisions)
    for (const auto& r : d.reasons) ++histogram[r];
  std::vector<std::string> parts;
  parts.reserve(histogram.size());
  for (const auto& [reason, count] : histogram) parts.push_back(std::to_string(count) + " " + reason);
  // kube sorts the "<count> <reason>" strings themselves (so "10 x" sorts before "2 y").
  std::sort(parts.begin(), parts.end());
  if (parts.empty()) return msg;
  msg += " ";
  for (size_t i = 0; i < parts.size(); ++i) msg += (i ? ", " : "") + parts[i];
  return msg + ".";
}

Result<std::unique_ptr<Framework>> Framework::create(const ProfileConfig& profile, int32_t percentageOfNodesToScore,
                                                     bool opportunisticBatching) {
  auto fw = std::make_unique<FrameworkImpl>();
  fw->profile_ = profile;
  fw->percentage_ = percentageOfNodesToScore;
  fw->batching_ = opportunisticBatching;
  const auto& registry = pluginRegistry();
  std::map<std::string, std::shared_ptr<Plugin>> instances;

  auto instance = [&](const std::string& name, const char* iface) -> Result<std::shared_ptr<Plugin>> {
    if (auto it = instances.find(name); it != instances.end()) return it->second;
    auto r = registry.find(name);
    if (r == registry.end()) return Status::badRequest(std::string(iface) + " \"" + name + "\" does not exist");
    nlohmann::json args;
    if (auto a = profile.pluginArgs.find(name); a != profile.pluginArgs.end()) args = a->second;
    auto made = r->second(args);
    if (!made) return Status::badRequest("initializing plugin \"" + name + "\": " + made.status().message());
    instances[name] = *made;
    return *made;
  };

  auto build = [&](const std::vector<PluginRef>& refs, const char* iface, auto& out) -> Status {
    using Ptr = typename std::decay_t<decltype(out)>::value_type;
    using T = typename Ptr::element_type;
    for (const auto& ref : refs) {
      if (isAcceptedNoopPlugin(ref.name)) continue;
      auto p = instance(ref.name, iface);
      if (!p) return p.status();
      auto typed = std::dynamic_pointer_cast<T>(*p);
      if (!typed) return Status::badRequest("plugin \"" + ref.name + "\" does not extend " + iface + " plugin");
      if (hasName(out, ref.name))
        return Status::badRequest("plugin \"" + ref.name + "\" already registered as \"" + iface + "\"");
      out.push_back(typed);
    }
    return Status::ok();
  };
  if (auto s = build(profile.preFilter, "PreFilterPlugin", fw->preFilter_); !s) return s;
  if (auto s = build(profile.filter, "FilterPlugin", fw->filter_); !s) return s;
  if (auto s = build(profile.postFilter, "PostFilterPlugin", fw->postFilter_); !s) return s;
  if (auto s = build(profile.preScore, "PreScorePlugin", fw->preScore_); !s) return s;
  if (auto s = build(profile.score, "ScorePlugin", fw->score_); !s) return s;
  for (const auto& p : fw->score_) {
    int32_t w = 1;
    for (const auto& ref : profile.score)
      if (ref.name == p->name() && ref.weight > 0) w = ref.weight;
    fw->scoreWeights_.push_back(w);
  }
  // Plugins configured through pluginConfig must exist too (kube fails on args for unknown
  // plugins only when they are enabled; build what was given so bad args are reported).
  for (const auto& [name, args] : profile.pluginArgs) {
    if (instances.count(name) || isAcceptedNoopPlugin(name)) continue;
    auto r = registry.find(name);
    if (r == registry.end()) continue;
    auto made = r->second(args);
    if (!made) return Status::badRequest("initializing plugin \"" + name + "\": " + made.status().message());
  }
  for (const auto& [name, plugin] : instances) {
    if (hasName(fw->preFilter_, name) || hasName(fw->filter_, name) || hasName(fw->preScore_, name) ||
        hasName(fw->score_, name))
      fw->signers_.push_back(plugin.get());
  }
  (void)pointName;
  return std::unique_ptr<Framework>(std::move(fw));
}

}  // namespace orrery::scheduler
