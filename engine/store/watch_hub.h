#pragma once
// What every Store backend does the same way for watches (internal to engine/store): the
// watchers of one store, each with its own delivery thread, fed in revision order by one
// dispatcher ("live"), and a catch-up path for a watcher that starts in the past or fell too
// far behind ("replay"), which only the backend knows how to read: SQLite from its history
// table, etcd from a watch stream at that revision. Once a replay reaches the dispatcher's
// revision the watcher is live again.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/store/store.h"

namespace orrery::store::internal {

/// A key range as etcd reads one: a single key, [start, end), or every key from start on.
struct KeyRange {
  std::string start;
  std::optional<std::string> end;  // exclusive; nullopt = no upper bound
  bool single = false;
  bool contains(const std::string& key) const;
};

/// The smallest key greater than every key with prefix `p`; nullopt if there is none.
std::optional<std::string> prefixEnd(std::string p);
/// etcd's reading of (key, range_end, prefix): range_end "" is one key, "\0" every key ≥ key.
KeyRange keyRange(const std::string& key, const std::string& rangeEnd, bool prefix);

void nameThread(const char* name);

/// One watch. Everything below `cv` is guarded by the hub's mutex.
struct HubWatcher {
  KeyRange filter;
  bool prevKv = false;
  bool progressNotify = false;
  WatchCallback callback;

  int64_t pendingFrom = 0;  // first revision not yet buffered or delivered
  bool synced = false;      // fed by dispatch() (else the backend replays from pendingFrom)
  std::vector<Event> buffer;
  bool progressPending = false;  // a batch moved the revision on without matching events
  bool progressUrgent = false;   // someone waits for it (WatchHub::requestProgress)
  std::chrono::steady_clock::time_point lastResponse{};  // paces unrequested progress
  bool cancelled = false;
  std::optional<WatchResponse> terminal;
  /// Set by a backend while it replays, to cut a blocking read short on cancel or close.
  std::function<void()> interruptReplay;
  std::condition_variable cv;

  std::mutex joinMu;
  std::thread thread;
  ~HubWatcher();
};

/// The backend's catch-up for a watcher that is not synced. Called on the watcher's thread
/// with the hub's lock held; it may release the lock while it reads, must return with it
/// held, and either delivers events and advances pendingFrom (setting synced once it reaches
/// dispatched()), sets terminal, or waits a little before the next try.
using ReplayFn = std::function<void(HubWatcher& w, std::unique_lock<std::mutex>& lock)>;

class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  /// `bufferLimit`: events a live watcher may have queued before it is sent back to replay.
  WatchHub(const char* threadName, size_t bufferLimit, ReplayFn replay);

  /// Guards the hub and every watcher's state; backends may guard their own watch state with it.
  std::mutex mu;
  /// For backends' waits that close() must cut short.
  std::condition_variable cv;

  /// Every revision ≤ this has been offered to the live watchers. Under `mu`.
  int64_t dispatched() const { return dispatched_; }
  void setDispatched(int64_t revision) { dispatched_ = revision; }
  bool closed() const { return closed_; }

  /// Adds a watcher for `request`, starting at `startRevision` (> 0). It is live at once when
  /// `live` says so (the backend knows whether the dispatcher can still give it every event
  /// from there), else it replays first. Call with `mu` held.
  std::unique_ptr<WatchHandle> add(const WatchRequest& request, WatchCallback callback, int64_t startRevision,
                                   bool live);

  /// Offers the events of revisions up to `lastRevision` (in revision order) to the live
  /// watchers, and progress to those that asked for it. Takes `mu`.
  void dispatch(const std::vector<Event>& events, int64_t lastRevision);

  /// Asks every progress-notify watcher for a notification as soon as the hub has offered
  /// every revision up to `revision` (at once, with what it has, if it already has). Without
  /// a request a watcher with nothing to deliver hears of the revision at most once per
  /// kProgressInterval: waking every watch thread on every commit cost more than the writes.
  /// Takes `mu`.
  void requestProgress(int64_t revision);
  static constexpr std::chrono::milliseconds kProgressInterval{1000};

  /// Ends every live watcher with `end` (e.g. 410 when the history they need is gone).
  /// Call with `mu` held.
  void endLive(const WatchResponse& end);

  /// Ends every watcher with `status` and joins their threads; no callback runs afterwards.
  /// `beforeJoin` runs once the hub is marked closed and `mu` is released (backends stop
  /// their own threads there). Idempotent.
  void close(const Status& status, const std::function<void()>& beforeJoin = {});

 private:
  void loop(const std::shared_ptr<HubWatcher>& w);

  const char* threadName_;
  size_t bufferLimit_;
  ReplayFn replay_;
  int64_t dispatched_ = 0;
  int64_t progressWanted_ = 0;  // the highest revision requestProgress() was asked for
  bool closed_ = false;
  std::vector<std::shared_ptr<HubWatcher>> watchers_;
};

}  // namespace orrery::store::internal
