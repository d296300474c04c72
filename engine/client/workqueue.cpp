#include "engine/client/workqueue.h"

#include <algorithm>

namespace orrery::client {

// The delay thread starts with the first delayed add: many queues never delay a key, and an
// idle thread still costs its stack.
WorkQueue::WorkQueue(BackoffPolicy policy) : policy_(policy) {}

WorkQueue::~WorkQueue() {
  shutDown();
  if (delayThread_.joinable()) delayThread_.join();
}

bool WorkQueue::unservedLocked() const { return onUnserved_ && queue_.size() > getters_; }

void WorkQueue::setOnUnservedKey(std::function<void()> callback) {
  std::lock_guard lock(mu_);
  onUnserved_ = std::move(callback);
}

void WorkQueue::add(const std::string& key) {
  bool unserved = false;
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    // Already waiting: one processing covers both adds.
    if (!dirty_.insert(key).second) return;
    // Being processed: done() queues it again, so no two workers hold the same key.
    if (processing_.count(key)) return;
    queue_.push_back(key);
    cv_.notify_one();
    unserved = unservedLocked();
  }
  if (unserved) onUnserved_();
}

void WorkQueue::addAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay <= std::chrono::milliseconds::zero()) {
    add(key);
    return;
  }
  std::lock_guard lock(mu_);
  if (shutdown_) return;
  auto at = Clock::now() + delay;
  auto it = waitingAt_.find(key);
  if (it != waitingAt_.end()) {
    // Already waiting: the earlier time wins, as client-go's delaying queue keeps it.
    if (it->second <= at) return;
    auto range = waiting_.equal_range(it->second);
    for (auto w = range.first; w != range.second; ++w) {
      if (w->second == key) {
        waiting_.erase(w);
        break;
      }
    }
    it->second = at;
  } else {
    waitingAt_.emplace(key, at);
  }
  bool earliest = waiting_.empty() || at < waiting_.begin()->first;
  waiting_.emplace(at, key);
  if (!delayThread_.joinable()) delayThread_ = std::thread([this] { delayLoop(); });
  if (earliest) delayCv_.notify_one();
}

void WorkQueue::addRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    int failures = failures_[key]++;
    // base * 2^failures, capped; computed in double so a long streak cannot overflow.
    double ms = static_cast<double>(policy_.base.count());
    for (int i = 0; i < failures && ms < static_cast<double>(policy_.max.count()); ++i) ms *= 2;
    ms = std::min(ms, static_cast<double>(policy_.max.count()));
    delay = std::chrono::milliseconds(static_cast<int64_t>(ms));
  }
  addAfter(key, delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::numRequeues(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

bool WorkQueue::get(std::string* key) {
  std::unique_lock lock(mu_);
  ++getters_;
  cv_.wait(lock, [this] { return !queue_.empty() || shutdown_; });
  --getters_;
  // After shutDown() the keys already queued are still handed out, then get() says stop.
  if (queue_.empty()) return false;
  *key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(*key);
  dirty_.erase(*key);
  return true;
}

void WorkQueue::done(const std::string& key) {
  bool unserved = false;
  {
    std::lock_guard lock(mu_);
    processing_.erase(key);
    if (dirty_.count(key)) {
      queue_.push_back(key);
      cv_.notify_one();
      unserved = unservedLocked();
    }
  }
  if (unserved) onUnserved_();
}

void WorkQueue::shutDown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
    delayCv_.notify_all();
  }
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shutdown_;
}

size_t WorkQueue::length() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkQueue::delayLoop() {
  std::unique_lock lock(mu_);
  while (!shutdown_) {
    if (waiting_.empty()) {
      delayCv_.wait(lock);
      continue;
    }
    auto next = waiting_.begin()->first;
    if (Clock::now() < next) {
      delayCv_.wait_until(lock, next);
      continue;
    }
    // Everything due goes into the queue (same rules as add()).
    auto now = Clock::now();
    while (!waiting_.empty() && waiting_.begin()->first <= now) {
      std::string key = std::move(waiting_.begin()->second);
      waiting_.erase(waiting_.begin());
      waitingAt_.erase(key);
      if (!dirty_.insert(key).second) continue;
      if (processing_.count(key)) continue;
      queue_.push_back(std::move(key));
      cv_.notify_one();
    }
    if (unservedLocked()) {
      lock.unlock();
      onUnserved_();
      lock.lock();
    }
  }
}

}  // namespace orrery::client
