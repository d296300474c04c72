#pragma once
// The running scheduler, as kube-scheduler runs: informers feed the cache (nodes, bound pods,
// namespaces, PDBs) and the queue (pending pods of our profiles' schedulerNames); one loop
// pops a pod, brings the snapshot up to date, runs the profile's Framework, assumes the pod on
// the chosen node and binds it through pods/binding on a worker pool, so many bindings are in
// flight while the next pods are scheduled. Failures set PodScheduled=False and record a
// FailedScheduling event with kube's message; preemption nominates the node and deletes the
// victims. Every attempt's DecisionRecord goes to the DecisionHistory, readable through the
// API as scheduling.orrery.dev/v1alpha1 SchedulingAttempts.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/api/resource.h"
#include "engine/api/status.h"
#include "engine/client/client.h"
#include "engine/client/informer.h"
#include "engine/scheduler/cache.h"
#include "engine/scheduler/decision_history.h"
#include "engine/scheduler/framework.h"
#include "engine/scheduler/queue.h"

namespace orrery::scheduler {

struct SchedulerOptions {
  SchedulerConfig config = defaultSchedulerConfig();
  /// Talks to the API (in the control plane: the in-process transport).
  std::shared_ptr<client::Client> client;
  /// Shared informers of the process; null: the scheduler makes and owns its own. The
  /// scheduler adds its handlers and starts the factory.
  client::InformerFactory* informers = nullptr;
  /// The queue's clock (backoffs, flushes); empty: steady_clock.
  SteadyClock clock;
  /// Bindings, status patches and deletions in flight at once.
  int32_t bindWorkers = 32;
  /// Events' source.host.
  std::string host;
  /// How long start() waits for the informers' first lists.
  std::chrono::milliseconds syncTimeout{60000};
};

class Scheduler {
 public:
  /// Builds the profiles' frameworks, registers informer handlers, waits for the caches to
  /// sync and starts the scheduling loop. Fails (400) on a bad profile, (503) if the caches
  /// do not sync in time.
  static Result<std::unique_ptr<Scheduler>> start(SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Stops the loop and the workers (waiting for bindings in flight). Idempotent.
  void stop();

  /// The decision history; shared so an API adapter may outlive the scheduler.
  std::shared_ptr<DecisionHistory> history() const;
  SchedulingQueue& queue();
  SchedulerCache& cache();

  struct Stats {
    uint64_t attempts = 0;       // scheduling cycles run
    uint64_t scheduled = 0;      // cycles that chose a node
    uint64_t unschedulable = 0;  // cycles that found none
    uint64_t errors = 0;         // cycles that failed with an error
    uint64_t bound = 0;          // bindings the API accepted
    uint64_t bindFailures = 0;
    uint64_t preemptions = 0;    // nominations made by preemption
    /// Cycles that took a node from an earlier cycle's ranking (opportunistic batching).
    uint64_t batched = 0;
    /// Time the scheduling loop spent in cycles (snapshot, plugins, record, assume, hand-off):
    /// attempts / cycleTime is the rate one loop could sustain if pods arrived instantly.
    std::chrono::nanoseconds cycleTime{0};
    /// CPU time of the loop's thread in those cycles (less than cycleTime when it waits for
    /// locks or for a core).
    std::chrono::nanoseconds cycleCpuTime{0};
  };
  Stats stats() const;
  /// Waits until every binding, status patch and deletion handed to the workers is done
  /// (tests, benchmarks).
  void waitIdle();

  struct Core;

 private:
  Scheduler() = default;
  std::shared_ptr<Core> core_;
};

/// The API description of the decision history (scheduling.orrery.dev/v1alpha1
/// schedulingattempts, kind SchedulingAttempt, namespaced, short name "attempt")
/// with `kubectl get` columns from jsonPath: NAME, POD, ATTEMPT, RESULT, NODE, FEASIBLE,
/// MESSAGE (-o wide), AGE. For ApiServer::registerProvider with the history as provider.
api::ResourceInfo schedulingAttemptResource();

}  // namespace orrery::scheduler
