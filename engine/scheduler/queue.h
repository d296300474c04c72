#pragma once
// The scheduling queue, as kube-scheduler's PriorityQueue (internal/queue/scheduling_queue.go):
// an activeQ ordered by PrioritySort (priority desc, then the time the pod entered the queue),
// a backoffQ of pods waiting out podInitialBackoff * 2^(attempts-1) (capped at podMaxBackoff),
// and unschedulable pods held until a cluster event that may help them (or the 5-minute
// flush). It also keeps the nominator: pods nominated to nodes by preemption.
//
// Queueing hints are simplified: an event moves every unschedulable pod that was rejected by a
// plugin the event may help (see ClusterEvent), whatever the event's details.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

/// The clock the queue's backoffs and flushes use; injectable for tests.
using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;

/// A pod waiting in the queue (framework.QueuedPodInfo).
struct QueuedPod {
  PodInfoPtr pod;
  /// When the pod was last added to (or re-queued into) the queue: PrioritySort's tie-break
  /// and the base of its backoff.
  std::chrono::steady_clock::time_point timestamp{};
  /// When the pod first entered the queue (for metrics and the 5-minute flush).
  std::chrono::steady_clock::time_point initialAttempt{};
  /// Scheduling attempts so far.
  int32_t attempts = 0;
  /// Plugins that rejected the pod in its last attempt; empty with `error`: any event helps.
  std::set<std::string> unschedulablePlugins;
  bool error = false;
  /// When it entered the unschedulable set.
  std::chrono::steady_clock::time_point unschedulableSince{};
};

/// A cluster change that may make unschedulable pods schedulable.
enum class ClusterEvent {
  kNodeAdd,
  kNodeUpdate,          // labels, taints, allocatable or unschedulable changed
  kAssignedPodAdd,      // a pod was bound (or assumed then confirmed)
  kAssignedPodUpdate,   // a bound pod's labels changed
  kAssignedPodDelete,   // a bound pod went away: its resources and ports are free
  kNamespaceChange,     // namespace labels (affinity namespaceSelector)
  kPdbChange,
  kForceActivate,       // flushes, tests
};

class SchedulingQueue {
 public:
  struct Options {
    std::chrono::milliseconds podInitialBackoff{1000};
    std::chrono::milliseconds podMaxBackoff{10000};
    /// kube's podMaxInUnschedulablePodsDuration.
    std::chrono::milliseconds maxInUnschedulable{5 * 60 * 1000};
    SteadyClock clock;  // empty: steady_clock::now
  };
  explicit SchedulingQueue(Options options);

  /// A new pending pod (informer add): straight to activeQ.
  void add(const PodInfoPtr& pod);
  /// A pending pod changed. If it waits as unschedulable and its spec or labels changed, it is
  /// moved to activeQ (or backoffQ while backing off); else it is updated where it is.
  void update(const PodInfoPtr& oldPod, const PodInfoPtr& newPod);
  /// The pod was deleted, or bound by someone else: drop it and its nomination.
  void remove(const std::string& ns, const std::string& name);

  /// Blocks until a pod is in activeQ (and returns it, attempts incremented, marked in flight)
  /// or the queue is closed (nullopt). Pods whose backoff ended are moved in first.
  std::optional<QueuedPod> pop();
  /// Non-blocking pop (tests): nullopt when activeQ is empty.
  std::optional<QueuedPod> tryPop();
  /// The cycle counter: bumped by every pop.
  int64_t schedulingCycle() const;

  /// After a failed attempt: to backoffQ if an event that may help it arrived during the
  /// attempt, or the failure was an error; else to the unschedulable set. No-op if the pod
  /// was deleted meanwhile.
  void addUnschedulable(QueuedPod pod);
  /// After a failed binding: the pod goes to backoffQ.
  void addBackoff(QueuedPod pod);
  /// The pod left the scheduler's hands (bound or given up): forget its in-flight mark.
  void done(const std::string& ns, const std::string& name);

  /// A cluster event: moves the unschedulable pods it may help to activeQ, or to backoffQ if
  /// they are still backing off.
  void moveOnEvent(ClusterEvent event);
  /// Moves backoffQ pods whose backoff has ended to activeQ (kube runs it every second; pop()
  /// also runs it). Returns how many moved.
  size_t flushBackoffCompleted();
  /// Moves pods unschedulable for longer than maxInUnschedulable (kube: every 30 s).
  size_t flushUnschedulableLeftover();
  /// When the earliest backoff ends (nullopt: backoffQ empty).
  std::optional<std::chrono::steady_clock::time_point> nextBackoffExpiry() const;

  // ---- nominator (preemption)
  /// Records that `pod` is nominated to `node` (empty: clears the nomination).
  void nominate(const PodInfoPtr& pod, const std::string& node);
  /// Pods nominated to each node, for the cycle's snapshot.
  std::map<std::string, std::vector<PodInfoPtr>> nominatedPods() const;
  std::vector<PodInfoPtr> nominatedPodsForNode(const std::string& node) const;

  /// Wakes pop() for good.
  void close();

  struct Counts {
    size_t active = 0, backoff = 0, unschedulable = 0, inFlight = 0;
  };
  Counts counts() const;
  /// Where a pod is: "active", "backoff", "unschedulable", "inflight" or "" (tests).
  std::string whereIs(const std::string& ns, const std::string& name) const;
  /// Backoff duration for a pod with `attempts` attempts.
  std::chrono::milliseconds backoffDuration(int32_t attempts) const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct ActiveKey {
    int32_t priority;
    TimePoint timestamp;
    uint64_t seq;
    bool operator<(const ActiveKey& o) const;
  };
  struct Entry {
    QueuedPod info;
    enum class Where { kActive, kBackoff, kUnschedulable } where = Where::kActive;
    ActiveKey activeKey{};
    TimePoint backoffExpiry{};
  };

  TimePoint now() const;
  static std::string key(const std::string& ns, const std::string& name);
  // All below with mu_ held.
  void pushActive(const std::string& k, QueuedPod info);
  void pushBackoff(const std::string& k, QueuedPod info);
  void pushUnschedulable(const std::string& k, QueuedPod info);
  void erase(const std::string& k);
  void moveToActiveOrBackoff(const std::string& k);
  TimePoint backoffExpiry(const QueuedPod& info) const;
  size_t flushBackoffLocked();
  void setNomination(const PodInfoPtr& pod, const std::string& node);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  uint64_t seq_ = 0;
  int64_t cycle_ = 0;

  std::map<std::string, Entry> entries_;            // every queued pod by ns/name
  std::map<ActiveKey, std::string> active_;         // activeQ heap
  std::multimap<TimePoint, std::string> backoff_;   // backoffQ by expiry
  std::set<std::string> unschedulable_;
  struct InFlight {
    PodInfoPtr pod;    // newest version seen while in flight
    uint32_t events = 0;  // ClusterEvent bits seen while in flight
  };
  std::map<std::string, InFlight> inFlight_;        // popped, not yet done/requeued

  std::map<std::string, std::string> nominatedNode_;  // pod key -> node
  std::map<std::string, std::map<std::string, PodInfoPtr>> nominatedByNode_;  // node -> key -> pod
};

}  // namespace orrery::scheduler
