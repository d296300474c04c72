#pragma once
// Collects what a store watch delivers, for tests to wait on.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "engine/store/store.h"

namespace orrery::store::testing {

class WatchCollector {
 public:
  WatchCallback callback() {
    return [this](const WatchResponse& r) {
      std::lock_guard lock(mu_);
      ++callbacks_;
      if (!r.status.isOk()) {
        ++terminals_;
        terminal_ = r;
      }
      if (r.status.isOk()) {
        revisions_.push_back(r.revision);
        if (r.events.empty()) ++progress_;
      }
      for (const auto& e : r.events) events_.push_back(e);
      cv_.notify_all();
    };
  }

  /// Waits until `pred(events, terminal count)` holds or `timeout` passes; returns whether it held.
  bool waitFor(const std::function<bool(const std::vector<Event>&, int)>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(events_, terminals_); });
  }
  bool waitForEvents(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return waitFor([n](const std::vector<Event>& e, int) { return e.size() >= n; }, timeout);
  }
  bool waitForTerminal(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return waitFor([](const std::vector<Event>&, int t) { return t > 0; }, timeout);
  }

  std::vector<Event> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  int callbacks() {
    std::lock_guard lock(mu_);
    return callbacks_;
  }
  /// WatchResponse::revision of every ok response, in order.
  std::vector<int64_t> revisions() {
    std::lock_guard lock(mu_);
    return revisions_;
  }
  /// Responses with no events and an ok status (progress notifications).
  int progressNotifications() {
    std::lock_guard lock(mu_);
    return progress_;
  }
  int terminals() {
    std::lock_guard lock(mu_);
    return terminals_;
  }
  WatchResponse terminal() {
    std::lock_guard lock(mu_);
    return terminal_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::vector<int64_t> revisions_;
  int progress_ = 0;
  int callbacks_ = 0;
  int terminals_ = 0;
  WatchResponse terminal_;
};

}  // namespace orrery::store::testing
