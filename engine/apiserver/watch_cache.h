#pragma once
// The watch cache of one resource, as kube-apiserver's cacher: the current objects and a
// window of recent events, fed by one store watch. LIST, GET and WATCH are served from here;
// each object is serialized once and its watch frames are built once for all watchers.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"
#include "engine/api/selector.h"
#include "engine/apiserver/http_server.h"
#include "engine/apiserver/json_scan.h"
#include "engine/store/store.h"

union LZ4_stream_u;

namespace orrery::apiserver {

enum class EventType { kAdded = 0, kModified = 1, kDeleted = 2 };
const char* eventTypeName(EventType type);

/// What selectors read of an object: its identity, labels and selectable fields. Successive
/// versions share one while these do not change (a pod's status updates leave its labels,
/// name and node alone), and the history keeps only this much of the version an event
/// replaced.
struct Selectable {
  std::string key;
  std::string ns;
  std::string name;
  nlohmann::json labels;   // metadata.labels (object), for label selectors
  /// The field-selector paths of the kind (shared by every object of the cache) and this
  /// version's value of each, in the same order.
  std::shared_ptr<const std::vector<std::string>> fieldPaths;
  std::vector<std::string> fieldValues;

  /// The value of a field-selector path ("" when the kind has no such field).
  const std::string& field(const std::string& path) const;
  /// A copy with the field-selector path `path` (one of fieldPaths) set to `value`.
  std::shared_ptr<const Selectable> with(const std::string& path, std::string value) const;
  /// Whether this reads as a selectable of `key` with these labels and field values would
  /// (so that a new version can share it).
  bool same(const std::string& key, const nlohmann::json& labels, const std::vector<std::string>& fieldValues) const {
    return this->key == key && this->labels == labels && this->fieldValues == fieldValues;
  }
  /// Roughly the heap this holds, for the history's byte budget.
  size_t footprint() const;
};
using SelectablePtr = std::shared_ptr<const Selectable>;

/// What the API server knows of a version it writes, carried with the write through the
/// store (store::Attachment) to the watch cache of its resource, so that the cache need not
/// scan the stored text to learn it: where the text has its metadata and managedFields, and
/// what selectors read of the object.
///
/// (The object itself, parsed, is not carried: handing the writer's DOM to in-process
/// watchers on other threads cost more CPU than parsing the text where it is used, though it
/// took a fifth of the instructions away; see docs/performance.md, session 12.)
struct WrittenVersion : store::Attachment {
  StoredTextLayout layout;
  SelectablePtr selectable;
};

/// One version of one object, immutable once cached.
///
/// A cached version's text is kept LZ4-compressed against a sibling: another object of the
/// same resource, which shares nearly all of its text (a Deployment's pods differ in names,
/// uids, times and addresses). A 3.7 KB pod then takes about 200 bytes, and reading it back
/// costs a tenth of a microsecond. Objects read straight from the store stay plain.
struct CachedObject : std::enable_shared_from_this<CachedObject> {
  SelectablePtr selectable;
  int64_t revision = 0;    // the store modRevision (or the delete's revision)
  /// Roughly the heap this version holds on its own (not the parts shared with the version
  /// before it, nor its dictionary), for the history's byte budget.
  size_t footprint = 0;

  const std::string& key() const { return selectable->key; }
  const std::string& ns() const { return selectable->ns; }
  const std::string& name() const { return selectable->name; }

  /// The object as served (metadata.resourceVersion set).
  std::string json() const;
  /// Appends json() to `out`, without a temporary.
  void appendJson(std::string* out) const;
  size_t jsonSize() const { return size_; }
  /// Whether both are compressed against the same dictionary (tests, diagnostics).
  bool sharesDictionaryWith(const CachedObject& other) const { return dict_ && dict_ == other.dict_; }
  nlohmann::json parse() const { return nlohmann::json::parse(json()); }

  /// `{"type":"ADDED","object":{...}}\n`, built on first use and shared by every watcher
  /// until releaseFrames(). Called only under the cache's lock.
  std::shared_ptr<const WatchFrame> frame(EventType type) const;
  /// Forgets the frames built so far (watchers keep theirs): a cache holds tens of thousands
  /// of versions, and a frame is a second copy of the object that only a dispatch needs.
  void releaseFrames() const;
  /// This version parsed, when an in-process watcher had a frame of it parsed and someone
  /// (an informer) still holds that object; null otherwise. A writer that starts from the
  /// current object copies it, which costs a fifth of parsing the text.
  std::shared_ptr<const nlohmann::json> sharedParse() const { return parsed_.load().lock(); }

 private:
  friend class WatchCache;
  std::string data_;                          // the text, or its compression against dict_
  std::shared_ptr<const std::string> dict_;   // null: data_ is the text itself
  size_t size_ = 0;                           // the text's size
  // In the text: what to cut to leave metadata.managedFields out ({0, 0}: nothing known).
  std::pair<size_t, size_t> managedFieldsCut_{0, 0};
  mutable std::shared_ptr<const WatchFrame> frames_[3];
  mutable std::atomic<std::weak_ptr<const nlohmann::json>> parsed_;
};
using CachedPtr = std::shared_ptr<const CachedObject>;

/// Whether a resource is served without a watch cache (WatchCache::Mode::kUncached), as
/// kube-apiserver's DefaultWatchCacheSizes: core/v1 and events.k8s.io Events.
bool servedUncached(const std::string& group, const std::string& resource);

/// Which objects a list or watch wants.
struct Filter {
  std::string ns;  // "" = all namespaces
  std::string name;  // metadata.name=X shortcut ("" = any)
  std::optional<api::LabelSelector> labels;
  std::optional<api::FieldSelector> fields;
  bool matches(const Selectable& object) const;
  bool matches(const CachedObject& object) const { return matches(*object.selectable); }
};

/// A registered watch. `deliver` is called under the cache lock, in revision order, and must
/// not block; it returns false to end the watch.
class CacheWatcher {
 public:
  virtual ~CacheWatcher() = default;
  virtual bool deliver(EventType type, const CachedPtr& object) = 0;
  /// A bookmark at `revision` (only called when the watcher asked for bookmarks).
  virtual bool bookmark(int64_t revision) = 0;
  /// The cache can no longer feed this watcher (store watch failed): end with this status.
  virtual void terminate(const api::Status& status) = 0;
  /// The watch's time is up (timeoutSeconds): end the stream normally.
  virtual void finish() = 0;
  Filter filter;
  bool wantsBookmarks = false;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

class WatchCache {
 public:
  /// kCached: the cache holds every current object and a window of history, fed by one store
  /// watch (kube-apiserver's cacher). kUncached: nothing is held; reads go to the store and
  /// each watch has a store watch of its own, as kube-apiserver serves the resources whose
  /// watch cache is disabled (Events, by default: they are the most numerous objects and
  /// few read them).
  enum class Mode { kCached, kUncached };

  /// The history kept for watches that resume from a revision: the newest `capacity` events,
  /// and of those no more than `maxHistoryBytes` of memory (the versions' text and what
  /// selectors read of them), but never fewer than 100 events (kube-apiserver's default
  /// watch cache size). A watch resuming from before that window gets 410 Gone and its
  /// client re-lists, as with kube's cacher.
  WatchCache(store::Store& store, api::ResourceInfo info, size_t capacity = 10000,
             size_t maxHistoryBytes = 4u << 20, Mode mode = Mode::kCached);
  ~WatchCache();

  /// Loads the current objects and starts following the store.
  ///
  /// When the store's watch ends (410: compacted past the cache, e.g. while etcd was away;
  /// 503: the store is gone), the cache recovers as kube-apiserver's cacher does: it watches
  /// again from its revision, or, when that history is gone, re-lists the prefix (retrying
  /// with backoff while the store is down) and watches from the list's revision. If the
  /// re-list shows that events were lost, its current watchers end with 410 Expired "too old
  /// resource version" so that clients re-list; otherwise they never notice.
  api::Status start();

  /// Waits until the cache has seen `revision` (consistent reads). Fails with 504-ish
  /// Timeout status when the cache lags too long, and with 503 ServiceUnavailable when the
  /// cache is still re-initializing from the store after `timeout`.
  api::Status waitUntilFresh(int64_t revision, std::chrono::milliseconds timeout);

  /// False while the cache is recovering from a failed store watch (see start()).
  bool ready() const;

  int64_t revision() const;
  /// Revision of the newest event of this resource (its state is unchanged since).
  int64_t lastChangeRevision() const;

  /// The newest revision this API server wrote under the cache's prefix. When no one else
  /// writes the store (SQLite), a cache that has seen it holds every write any client can have
  /// observed, whatever other resources were written since: reads that only need this
  /// resource current (admission, RBAC) wait for it instead of the store's newest revision,
  /// and so need no progress notification.
  void noteLocalWrite(int64_t revision);
  int64_t lastLocalWrite() const { return lastLocalWrite_.load(std::memory_order_acquire); }

  struct ListResult {
    std::vector<CachedPtr> items;  // sorted by key
    int64_t revision = 0;
    bool more = false;
    std::string nextKey;        // first key not returned, when more
    int64_t remaining = 0;      // items left after this page (for remainingItemCount)
    api::Status status;         // an uncached list's store read can fail
  };
  /// Objects matching `filter` with key > `afterKey` (continue), at most `limit` (0 = all).
  ListResult list(const Filter& filter, const std::string& afterKey, int64_t limit) const;
  CachedPtr get(const std::string& key) const;
  /// As list(), but read from the store as of `revision` (0: its current revision), whatever
  /// the mode: continued lists whose first page the cache no longer holds, exact-revision lists
  /// of uncached resources. A compacted revision fails with the store's 410.
  ListResult listFromStore(const Filter& filter, const std::string& afterKey, int64_t limit,
                           int64_t revision = 0) const;

  /// Registers `watcher` for events after `fromRevision`. With `initialEvents`, first sends
  /// an ADDED event for every current matching object (watch from resourceVersion "0"/unset)
  /// and then events after the current revision. Fails with 410 Expired when `fromRevision` is
  /// older than the cached window, as kube-apiserver does ("too old resource version").
  /// While the cache re-initializes, waits for it (bounded) and then fails with 503.
  api::Status addWatcher(std::shared_ptr<CacheWatcher> watcher, int64_t fromRevision,
                         bool initialEvents, bool initialEventsEndBookmark = false);
  void removeWatcher(const CacheWatcher* watcher);

  /// Ends watchers past their deadline and, with `bookmarks`, sends a bookmark to every
  /// watcher that wants them.
  void sweep(std::chrono::steady_clock::time_point now, bool bookmarks);

  const api::ResourceInfo& info() const { return info_; }
  Mode mode() const { return mode_; }
  size_t watcherCount() const;

  /// Builds the cached form of a store value (used for objects read straight from the store).
  /// It shares `previous`'s Selectable when its labels and fields are unchanged. With
  /// `written`, what the writer knew of the value is used instead of reading it.
  CachedPtr makeCached(const std::string& key, const std::string& value, int64_t revision,
                       const CachedObject* previous = nullptr, const WrittenVersion* written = nullptr) const;

  /// What selectors read of `object` (for a WrittenVersion).
  SelectablePtr selectableOf(const std::string& key, const nlohmann::json& object) const {
    return makeSelectable(key, object, nullptr);
  }

 private:
  void onStoreEvents(uint64_t generation, const store::WatchResponse& response);
  void apply(const store::Event& event);
  /// Starts the store watch of generation `generation` from `fromRevision` (no lock held).
  api::Result<std::unique_ptr<store::WatchHandle>> watchFrom(int64_t fromRevision, uint64_t generation);
  /// The recovery thread: re-watches or re-lists until the cache follows the store again.
  void recoverLoop();
  /// Replaces the cache's state with a fresh list of the prefix (under the lock).
  void replaceLocked(const store::RangeResponse& range);
  api::Status notReadyStatus() const;

  // The uncached mode (watch_cache_uncached.cpp).
  struct DirectWatch;
  CachedPtr getFromStore(const std::string& key) const;
  api::Status addDirectWatcher(std::shared_ptr<CacheWatcher> watcher, int64_t fromRevision, bool initialEvents,
                               bool initialEventsEndBookmark);
  /// The store's current revision (a store read; 0 if the store does not answer).
  int64_t storeRevision() const;
  void removeDirectWatcher(const CacheWatcher* watcher);
  void sweepDirect(std::chrono::steady_clock::time_point now, bool bookmarks);
  /// Ends `watches` with `status` and cancels their store watches (no lock held).
  static void endDirectWatches(const std::vector<std::shared_ptr<DirectWatch>>& watches, const api::Status& status);
  /// A watcher with a selector sees an object enter (ADDED) or leave (DELETED) its view when
  /// an update changes whether it matches, as kube-apiserver's cacher reports it. Returns
  /// false when the watcher wants no more events.
  static bool deliverTransition(CacheWatcher& w, EventType type, const CachedPtr& object, const Selectable* previous);
  Mode mode_;
  std::vector<std::shared_ptr<DirectWatch>> direct_;  // under mu_
  void dispatch(EventType type, const CachedPtr& object, const Selectable* previous);
  /// What selectors read of a parsed object; `reuse` when it holds the same.
  SelectablePtr makeSelectable(const std::string& key, const nlohmann::json& parsed,
                               const SelectablePtr& reuse) const;
  /// The same, of a store value (no text is serialized).
  SelectablePtr makeSelectable(const std::string& key, const std::string& value) const;
  /// makeCached for a version the cache keeps: its text compressed against the resource's
  /// current dictionary (an earlier object), which it adopts when none fits well.
  CachedPtr makeRetained(const std::string& key, const std::string& value, int64_t revision,
                         const CachedObject* previous = nullptr, const WrittenVersion* written = nullptr);

  store::Store& store_;
  api::ResourceInfo info_;
  size_t capacity_;
  size_t maxHistoryBytes_;
  size_t historyBytes_ = 0;  // the footprint of the versions in history_
  std::shared_ptr<const std::vector<std::string>> fieldPaths_;
  /// The paths makeCached scans a stored text for (scanObject): what makeSelectable reads.
  std::vector<std::string> scannedPaths_;
  std::shared_ptr<const std::string> dictionary_;  // under mu_
  struct Lz4StreamFree {
    void operator()(void* stream) const;
  };
  std::unique_ptr<LZ4_stream_u, Lz4StreamFree> lz4_;  // under mu_; 16 KB, made on first use
  // dictionary_ loaded (hashed) once; each compression attaches it rather than loading it.
  std::unique_ptr<LZ4_stream_u, Lz4StreamFree> lz4Dictionary_;  // under mu_
  std::shared_ptr<const std::string> lz4DictionaryOf_;          // under mu_; the dictionary it holds
  size_t sinceDictionary_ = 0;                     // objects compressed since it was chosen

  mutable std::mutex mu_;
  std::condition_variable fresh_;
  std::map<std::string, CachedPtr> objects_;
  struct HistoryEntry {
    int64_t revision;
    EventType type;
    CachedPtr object;
    /// What a selector needs of the version this event replaced (to tell a filtered watcher
    /// that the object entered or left its view), not that whole version.
    SelectablePtr previous;
  };
  std::deque<HistoryEntry> history_;
  int64_t revision_ = 0;
  int64_t lastChange_ = 0;
  std::atomic<int64_t> lastLocalWrite_{0};
  int64_t oldestRevision_ = 0;  // events after this revision are in history_
  std::vector<std::shared_ptr<CacheWatcher>> watchers_;
  std::unique_ptr<store::WatchHandle> storeWatch_;

  // Recovery from a store watch that ended (see start()). Callbacks of a store watch carry its
  // generation, so a late callback of a replaced watch is ignored.
  uint64_t watchGeneration_ = 0;
  uint64_t failedGeneration_ = 0;   // the generation whose watch last ended
  bool recovering_ = false;         // reads wait; watches wait, then 503
  bool needRelist_ = false;         // the store no longer has the history after revision_
  bool stopping_ = false;
  bool recoveryRunning_ = false;
  api::Status storeError_;          // why the store watch ended (for 503 messages)
  std::condition_variable recoverCv_;
  std::thread recoverer_;
};

}  // namespace orrery::apiserver
