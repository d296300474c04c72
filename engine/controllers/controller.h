#pragma once
// The controllers of kube-controller-manager, as clients of the API: each learns through the
// shared informers, reconciles one key at a time from a rate-limited work queue, and acts
// through API calls. One file pair per controller; this header is the runner they share.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/api/status.h"
#include "engine/client/client.h"
#include "engine/client/events.h"
#include "engine/client/informer.h"
#include "engine/client/workqueue.h"

namespace orrery::controllers {

using api::Status;

/// What every controller gets from the runner. Shared by all controllers of the process.
struct ControllerContext {
  std::shared_ptr<client::Client> client;
  client::InformerFactory* informers = nullptr;
  /// Injected so tests can drive time-based logic (deadlines, TTLs, node monitor).
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  /// PEM of the cluster CA, published in every namespace as ConfigMap kube-root-ca.crt
  /// (empty: no ConfigMap, as kube-controller-manager without --root-ca-file).
  std::string rootCaPem;
};

/// What sync() returns to be retried with backoff without an error being logged (kube's
/// "requeue" outcomes: an item not yet observed, content still being removed).
inline constexpr const char* kRequeueReason = "Requeue";
inline Status requeue(std::string why = "requeued") { return Status(202, kRequeueReason, std::move(why)); }

class Controller {
 public:
  virtual ~Controller() = default;
  /// kube-controller-manager's name for it: "deployment", "replicaset", "garbagecollector".
  virtual std::string name() const = 0;
  /// Gets its informers from `context.informers` and registers handlers that enqueue keys
  /// into queue(). Called once, before informers start.
  virtual Status setup(ControllerContext& context) = 0;
  /// Reconciles one key. A non-ok Status requeues it with backoff; ok forgets its failures.
  /// An exception is treated as an error status (the manager logs it with the key).
  virtual Status sync(const std::string& key) = 0;
  /// Worker threads for sync() (kube-controller-manager's --concurrent-*-syncs).
  virtual int workers() const { return 2; }
  /// Periodic work (node monitor, cron schedules), if tickInterval() > 0.
  virtual void tick() {}
  virtual std::chrono::milliseconds tickInterval() const { return std::chrono::milliseconds(0); }
  /// The events this controller records appear with this component name.
  virtual std::string component() const { return name() + "-controller"; }

  client::WorkQueue& queue() { return queue_; }
  /// Set by the runner before setup().
  client::EventRecorder* events = nullptr;

 private:
  client::WorkQueue queue_;
};

/// Runs controllers: setup, shared informers started and synced, workers and tickers.
class ControllerManager {
 public:
  explicit ControllerManager(ControllerContext context);
  ~ControllerManager();
  void add(std::unique_ptr<Controller> controller);
  /// Sets up every controller, starts the informers, waits for their sync, starts workers.
  Status start(std::chrono::milliseconds syncTimeout = std::chrono::seconds(30));
  /// Shuts every queue down and joins every thread, then stops the informers it created
  /// itself (when the context brought none). Idempotent. A shared InformerFactory from the
  /// context keeps calling the controllers' handlers until it is stopped: stop it before the
  /// manager (and its controllers) is destroyed.
  void stop();
  Controller* find(const std::string& name) const;

 private:
  /// Starts another worker of controller `c`, unless it runs workers() already or the
  /// manager is stopping.
  void startWorker(Controller* c);
  /// A worker's loop: takes keys until the queue shuts down.
  void runWorker(Controller* c, int index);

  ControllerContext context_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::vector<std::unique_ptr<client::EventRecorder>> recorders_;
  std::mutex threadsMu_;  // guards threads_ and workersStarted_: workers start workers
  std::vector<std::thread> threads_;
  std::map<const Controller*, int> workersStarted_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  /// The informers, when the context brought none.
  std::unique_ptr<client::InformerFactory> ownedInformers_;
  std::mutex mu_;                // guards stop() and wakes tickers
  std::condition_variable wake_;
};

/// Every controller Orrery has, by name, in a stable order (the default set to run).
std::vector<std::unique_ptr<Controller>> defaultControllers();

}  // namespace orrery::controllers
