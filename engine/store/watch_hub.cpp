#include "engine/store/watch_hub.h"

#include <pthread.h>

#include <algorithm>

namespace orrery::store::internal {

bool KeyRange::contains(const std::string& key) const {
  if (single) return key == start;
  if (key < start) return false;
  return !end || key < *end;
}

std::optional<std::string> prefixEnd(std::string p) {
  while (!p.empty()) {
    auto c = static_cast<unsigned char>(p.back());
    if (c < 0xff) {
      p.back() = static_cast<char>(c + 1);
      return p;
    }
    p.pop_back();
  }
  return std::nullopt;
}

KeyRange keyRange(const std::string& key, const std::string& rangeEnd, bool prefix) {
  KeyRange r;
  r.start = key;
  if (prefix) {
    r.end = prefixEnd(key);
  } else if (rangeEnd.empty()) {
    r.single = true;
  } else if (rangeEnd != std::string(1, '\0')) {  // "\0" means "every key >= key", as in etcd
    r.end = rangeEnd;
  }
  return r;
}

void nameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

HubWatcher::~HubWatcher() {
  if (thread.joinable()) {
    if (thread.get_id() == std::this_thread::get_id()) thread.detach();
    else thread.join();
  }
}

namespace {

class HubWatchHandle : public WatchHandle {
 public:
  HubWatchHandle(std::shared_ptr<WatchHub> hub, std::shared_ptr<HubWatcher> w)
      : hub_(std::move(hub)), w_(std::move(w)) {}
  ~HubWatchHandle() override { cancel(); }
  void cancel() override {
    if (!w_) return;
    {
      std::lock_guard lock(hub_->mu);
      w_->cancelled = true;
      if (w_->interruptReplay) w_->interruptReplay();
      w_->cv.notify_all();
    }
    std::lock_guard join(w_->joinMu);
    if (w_->thread.joinable() && w_->thread.get_id() != std::this_thread::get_id()) w_->thread.join();
  }

 private:
  std::shared_ptr<WatchHub> hub_;
  std::shared_ptr<HubWatcher> w_;
};

}  // namespace

WatchHub::WatchHub(const char* threadName, size_t bufferLimit, ReplayFn replay)
    : threadName_(threadName), bufferLimit_(std::max<size_t>(bufferLimit, 1)), replay_(std::move(replay)) {}

std::unique_ptr<WatchHandle> WatchHub::add(const WatchRequest& request, WatchCallback callback,
                                           int64_t startRevision, bool live) {
  auto w = std::make_shared<HubWatcher>();
  w->filter = keyRange(request.key, {}, request.prefix);
  w->prevKv = request.prevKv;
  w->progressNotify = request.progressNotify;
  w->callback = std::move(callback);
  w->pendingFrom = startRevision;
  w->synced = live;
  watchers_.push_back(w);
  auto self = shared_from_this();
  w->thread = std::thread([self, w] { self->loop(w); });
  return std::make_unique<HubWatchHandle>(self, w);
}

void WatchHub::requestProgress(int64_t revision) {
  std::lock_guard lock(mu);
  progressWanted_ = std::max(progressWanted_, revision);
  // A revision not yet offered is reported by dispatch() once a batch reaches it.
  if (revision > dispatched_) return;
  for (auto& w : watchers_) {
    if (!w->progressNotify || !w->synced || w->cancelled || w->terminal) continue;
    w->progressPending = true;
    w->progressUrgent = true;
    w->cv.notify_all();
  }
}

void WatchHub::dispatch(const std::vector<Event>& events, int64_t lastRevision) {
  std::lock_guard lock(mu);
  if (lastRevision <= dispatched_) return;  // already offered
  // Progress is urgent when someone asked for a revision this batch reaches.
  const bool progressWanted = progressWanted_ > dispatched_ && progressWanted_ <= lastRevision;
  for (size_t i = 0; i < watchers_.size();) {
    HubWatcher& w = *watchers_[i];
    if (w.cancelled || w.terminal) {
      watchers_[i] = std::move(watchers_.back());  // its thread holds its own reference
      watchers_.pop_back();
      continue;
    }
    ++i;
    if (!w.synced) continue;
    const size_t before = w.buffer.size();
    const int64_t resumeAt = w.buffer.empty() ? w.pendingFrom : w.buffer.front().kv.modRevision;
    for (const auto& e : events) {
      if (e.kv.modRevision < w.pendingFrom || e.kv.modRevision <= dispatched_ || !w.filter.contains(e.kv.key)) {
        continue;
      }
      if (w.prevKv || !e.prevKv) {
        w.buffer.push_back(e);
      } else {
        w.buffer.push_back(Event{e.type, e.kv, std::nullopt, e.attachment});
      }
    }
    if (w.buffer.size() > bufferLimit_) {
      // Too slow: drop the queue and let the watcher catch up by replaying.
      w.buffer.clear();
      w.synced = false;
      w.pendingFrom = resumeAt;
      w.cv.notify_all();
      continue;
    }
    w.pendingFrom = std::max(w.pendingFrom, lastRevision + 1);
    if (w.buffer.size() != before) {
      w.cv.notify_all();
    } else if (w.progressNotify) {
      // Coalesced: one notification carries the latest revision. The watcher's thread sends
      // it when it is due (see loop()), unless someone waits for it now.
      const bool wasPending = w.progressPending;
      w.progressPending = true;
      if (progressWanted) w.progressUrgent = true;
      // Woken when progress becomes pending (to time its notification) or is wanted now;
      // not again for every further batch until it has been sent.
      if (!wasPending || progressWanted) w.cv.notify_all();
    }
  }
  dispatched_ = lastRevision;
}

void WatchHub::endLive(const WatchResponse& end) {
  for (auto& w : watchers_) {
    if (w->cancelled || w->terminal || !w->synced) continue;
    w->terminal = end;
    w->cv.notify_all();
  }
}

void WatchHub::close(const Status& status, const std::function<void()>& beforeJoin) {
  std::vector<std::shared_ptr<HubWatcher>> watchers;
  {
    std::lock_guard lock(mu);
    if (closed_) return;
    closed_ = true;
    cv.notify_all();
    watchers.swap(watchers_);
    for (auto& w : watchers) {
      if (w->interruptReplay) w->interruptReplay();
      if (w->cancelled || w->terminal) continue;
      WatchResponse end;
      end.status = status;
      w->terminal = std::move(end);
      w->cv.notify_all();
    }
  }
  if (beforeJoin) beforeJoin();
  for (auto& w : watchers) {
    std::lock_guard join(w->joinMu);
    if (w->thread.joinable() && w->thread.get_id() != std::this_thread::get_id()) w->thread.join();
  }
}

void WatchHub::loop(const std::shared_ptr<HubWatcher>& self) {
  nameThread(threadName_);
  HubWatcher& w = *self;
  std::unique_lock lock(mu);
  auto progressDue = [&] {
    return w.progressPending &&
           (w.progressUrgent || std::chrono::steady_clock::now() >= w.lastResponse + kProgressInterval);
  };
  for (;;) {
    auto ready = [&] {
      return w.cancelled || w.terminal || !w.buffer.empty() || !w.synced || progressDue();
    };
    while (!ready()) {
      if (w.progressPending) {
        w.cv.wait_until(lock, w.lastResponse + kProgressInterval);
      } else {
        w.cv.wait(lock);
      }
    }
    if (w.cancelled) return;
    if (!w.buffer.empty() || (progressDue() && w.synced && !w.terminal)) {
      // Everything up to pendingFrom - 1 is in this response (or did not match the watch).
      WatchResponse response;
      response.events.swap(w.buffer);
      response.revision = std::min(w.pendingFrom - 1, dispatched_);
      w.progressPending = false;
      w.progressUrgent = false;
      w.lastResponse = std::chrono::steady_clock::now();
      lock.unlock();
      w.callback(response);
      lock.lock();
      continue;
    }
    if (w.terminal) {
      WatchResponse end = std::move(*w.terminal);
      w.cancelled = true;
      lock.unlock();
      w.callback(end);
      return;
    }
    replay_(w, lock);
    if (w.synced && w.progressNotify && progressWanted_ > 0 && progressWanted_ <= dispatched_) {
      // Caught up while someone waited for a revision it now covers: a replay that found no
      // matching events delivers nothing, so say where it is rather than wait for the next
      // batch (which may never come on an idle store).
      w.progressPending = true;
      w.progressUrgent = true;
    }
  }
}

}  // namespace orrery::store::internal
