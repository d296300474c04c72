#pragma once
// A rate-limited work queue of keys, as client-go's: a key is never processed by two workers
// at once, adding a key already waiting is a no-op, a key re-added while being processed is
// processed again after done(), and failures come back after a per-key exponential backoff.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <deque>

namespace orrery::client {

struct BackoffPolicy {
  std::chrono::milliseconds base{5};
  std::chrono::milliseconds max{1000 * 1000};
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(BackoffPolicy policy = {});
  ~WorkQueue();

  void add(const std::string& key);
  /// Adds `key` once `delay` has passed (an earlier pending add wins).
  void addAfter(const std::string& key, std::chrono::milliseconds delay);
  /// Adds after the key's backoff: base * 2^failures, capped at max.
  void addRateLimited(const std::string& key);
  /// Clears the key's failure count (call after a successful sync).
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const;

  /// Blocks until a key is ready or the queue shuts down (returns false).
  bool get(std::string* key);
  /// Calls `callback` (without the queue's lock held) whenever a key is queued while no get()
  /// is waiting for one: a worker pool that grows with demand starts another worker there.
  /// Set before the queue is used.
  void setOnUnservedKey(std::function<void()> callback);
  /// Marks a key from get() as processed.
  void done(const std::string& key);
  void shutDown();
  bool shuttingDown() const;
  size_t length() const;

 private:
  void delayLoop();
  /// Keys wait that no get() is waiting for, and someone wants to know (under mu_).
  bool unservedLocked() const;
  BackoffPolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable delayCv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;
  std::set<std::string> processing_;
  std::multimap<Clock::time_point, std::string> waiting_;
  std::map<std::string, Clock::time_point> waitingAt_;
  std::map<std::string, int> failures_;
  bool shutdown_ = false;
  size_t getters_ = 0;  // get() calls waiting for a key
  std::function<void()> onUnserved_;
  std::thread delayThread_;
};

}  // namespace orrery::client
