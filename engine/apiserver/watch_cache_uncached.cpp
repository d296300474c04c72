// WatchCache's uncached mode: nothing is held in memory; lists and gets read the store, and
// each watch follows a store watch of its own, as kube-apiserver serves a resource whose
// watch cache is disabled (Events, by default). A 10,000-pod cluster writes over 10,000
// Events that almost no one reads; caching them cost the control plane ~25 MiB.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "engine/apiserver/watch_cache.h"

namespace orrery::apiserver {

/// One watch of an uncached resource and the store watch that feeds it.
struct WatchCache::DirectWatch {
  std::mutex mu;  // serializes deliveries, bookmarks and the end of the watch
  std::shared_ptr<CacheWatcher> watcher;
  std::unique_ptr<store::WatchHandle> handle;
  int64_t revision = 0;  // every change up to this revision has been delivered
  bool ended = false;
};

namespace {

// The key range of `filter`'s namespace (or of the whole resource).
std::string rangePrefix(const api::ResourceInfo& info, const Filter& filter) {
  std::string prefix = info.storagePrefix;
  if (!filter.ns.empty() && info.namespaced) prefix += filter.ns + "/";
  return prefix;
}

std::string prefixEnd(std::string prefix) {
  // Keys are printable; the prefix ends in '/', whose successor bounds the range.
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

bool hasSelectors(const Filter& filter) {
  return !filter.name.empty() || (filter.labels && !filter.labels->empty()) ||
         (filter.fields && !filter.fields->empty());
}

api::Status tooOld(int64_t revision, int64_t compacted) {
  std::string message = "too old resource version: " + std::to_string(revision);
  if (compacted > 0) message += " (" + std::to_string(compacted) + ")";
  return api::Status::expired(message);
}

}  // namespace

int64_t WatchCache::storeRevision() const {
  // A count-only read of an empty key range: the store's revision, without touching a row.
  store::RangeRequest probe;
  probe.key = info_.storagePrefix + "\xff";
  probe.countOnly = true;
  auto head = store_.range(probe);
  return head.ok() ? head->revision : 0;
}

WatchCache::ListResult WatchCache::listFromStore(const Filter& filter, const std::string& afterKey,
                                                 int64_t limit, int64_t atRevision) const {
  ListResult result;
  const std::string prefix = rangePrefix(info_, filter);
  const std::string end = prefixEnd(prefix);
  const bool selective = hasSelectors(filter);
  // Read in chunks from one revision, so that a page reads about what it returns.
  constexpr int64_t kChunk = 512;
  std::string from = !afterKey.empty() && afterKey >= prefix ? afterKey + std::string(1, '\0') : prefix;
  int64_t revision = atRevision;
  while (true) {
    store::RangeRequest request;
    request.key = from;
    request.rangeEnd = end;
    request.revision = revision;  // 0 the first time: the current revision
    request.limit = limit > 0 && !selective ? limit + 1 - static_cast<int64_t>(result.items.size()) : kChunk;
    auto range = store_.range(request);
    if (!range.ok()) {
      result.status = range.status();
      return result;
    }
    if (revision == 0) revision = range->revision;
    result.revision = revision;
    for (const auto& kv : range->kvs) {
      const bool pageFull = limit > 0 && static_cast<int64_t>(result.items.size()) >= limit;
      if (pageFull && !selective) {
        // Every object matches: what is left is counted by the store, not read.
        result.more = true;
        result.nextKey = result.items.back()->key();
        result.remaining = range->count - static_cast<int64_t>(&kv - range->kvs.data());
        return result;
      }
      auto object = makeCached(kv.key, kv.value, kv.modRevision);
      if (!filter.matches(*object)) continue;
      if (pageFull) {
        // A selector's count of what is left is not reported (as kube-apiserver); that
        // there is more is enough.
        result.more = true;
        result.nextKey = result.items.back()->key();
        result.remaining = 1;
        return result;
      }
      result.items.push_back(std::move(object));
    }
    if (!range->more || range->kvs.empty()) return result;
    from = range->kvs.back().key + std::string(1, '\0');
  }
}

CachedPtr WatchCache::getFromStore(const std::string& key) const {
  auto kv = store_.get(key);
  if (!kv.ok()) {
    // get() has no error to give; the caller answers 404. Say why here.
    spdlog::warn("apiserver: reading {} from the store failed: {}", key, kv.status().message());
    return nullptr;
  }
  if (!kv->has_value()) return nullptr;
  return makeCached(key, (*kv)->value, (*kv)->modRevision);
}

api::Status WatchCache::addDirectWatcher(std::shared_ptr<CacheWatcher> watcher, int64_t fromRevision,
                                         bool initialEvents, bool initialEventsEndBookmark) {
  const std::string prefix = rangePrefix(info_, watcher->filter);
  auto direct = std::make_shared<DirectWatch>();
  direct->watcher = watcher;
  {
    // Registered first, so that a client leaving while the initial events go out is removed
    // (removeWatcher marks it ended, and it is not started below).
    std::lock_guard lock(mu_);
    if (stopping_) return api::Status::serviceUnavailable("the server is shutting down");
    direct_.push_back(direct);
  }
  int64_t from = fromRevision;
  if (initialEvents) {
    store::RangeRequest request;
    request.key = prefix;
    request.prefix = true;
    auto range = store_.range(request);
    if (!range.ok()) {
      removeDirectWatcher(watcher.get());
      return range.status();
    }
    std::lock_guard lock(direct->mu);
    for (const auto& kv : range->kvs) {
      if (direct->ended) return {};
      auto object = makeCached(kv.key, kv.value, kv.modRevision);
      if (!watcher->filter.matches(*object)) continue;
      if (!watcher->deliver(EventType::kAdded, object)) {
        direct->ended = true;  // the sweep removes it
        return {};
      }
    }
    if (initialEventsEndBookmark && !watcher->bookmark(range->revision)) {
      direct->ended = true;
      return {};
    }
    from = range->revision;
  }
  {
    std::lock_guard lock(direct->mu);
    direct->revision = from;
  }

  const bool selective = hasSelectors(watcher->filter);
  std::weak_ptr<DirectWatch> weak = direct;
  auto onEvents = [this, weak, selective, from](const store::WatchResponse& response) {
    auto d = weak.lock();
    if (!d) return;
    std::lock_guard lock(d->mu);
    if (d->ended) return;
    if (!response.status.isOk()) {
      d->ended = true;
      d->watcher->terminate(response.status.code() == 410 ? tooOld(from, response.compactRevision)
                                                          : response.status);
      return;
    }
    for (const auto& event : response.events) {
      CachedPtr object;
      EventType type;
      SelectablePtr previous;
      if (event.type == store::Event::Type::kPut) {
        object = makeCached(event.kv.key, event.kv.value, event.kv.modRevision);
        type = event.kv.version == 1 ? EventType::kAdded : EventType::kModified;
        if (type == EventType::kModified) {
          // Whether the version before matched: only a selector needs to read it.
          if (selective && event.prevKv) previous = makeSelectable(event.prevKv->key, event.prevKv->value);
          else previous = object->selectable;
        }
      } else {
        if (!event.prevKv) continue;  // nothing to show of it
        object = makeCached(event.kv.key, event.prevKv->value, event.kv.modRevision);
        type = EventType::kDeleted;
      }
      if (!deliverTransition(*d->watcher, type, object, previous.get())) {
        d->ended = true;
        return;
      }
    }
    d->revision = std::max(d->revision, response.revision);
  };

  store::WatchRequest request;
  request.key = prefix;
  request.prefix = true;
  request.startRevision = from + 1;
  request.prevKv = true;
  request.progressNotify = watcher->wantsBookmarks;
  auto handle = store_.watch(request, onEvents);
  if (!handle.ok()) {
    removeDirectWatcher(watcher.get());
    if (handle.status().code() == 410) return tooOld(fromRevision, 0);
    return handle.status();
  }
  std::unique_ptr<store::WatchHandle> orphan;
  {
    std::lock_guard lock(direct->mu);
    direct->handle = std::move(handle).value();
    // Removed while it started: nothing else will cancel it.
    if (direct->ended) orphan = std::move(direct->handle);
  }
  if (orphan) orphan->cancel();  // outside the watch's lock: cancel() waits for its callback
  return {};
}

void WatchCache::endDirectWatches(const std::vector<std::shared_ptr<DirectWatch>>& watches,
                                  const api::Status& status) {
  for (const auto& d : watches) {
    std::unique_ptr<store::WatchHandle> handle;
    {
      std::lock_guard lock(d->mu);
      if (!d->ended && !status.isOk()) d->watcher->terminate(status);
      d->ended = true;
      handle = std::move(d->handle);
    }
    // Outside the watch's lock: cancel() waits for a running callback, which takes it.
    if (handle) handle->cancel();
  }
}

void WatchCache::removeDirectWatcher(const CacheWatcher* watcher) {
  std::vector<std::shared_ptr<DirectWatch>> removed;
  {
    std::lock_guard lock(mu_);
    auto keep = std::stable_partition(direct_.begin(), direct_.end(),
                                      [&](const auto& d) { return d->watcher.get() != watcher; });
    removed.assign(keep, direct_.end());
    direct_.erase(keep, direct_.end());
  }
  endDirectWatches(removed, api::Status());  // the client went away: nothing to tell it
}

void WatchCache::sweepDirect(std::chrono::steady_clock::time_point now, bool bookmarks) {
  std::vector<std::shared_ptr<DirectWatch>> watches;
  {
    std::lock_guard lock(mu_);
    watches = direct_;
  }
  std::vector<const CacheWatcher*> done;
  for (const auto& d : watches) {
    std::lock_guard lock(d->mu);
    if (!d->ended && now >= d->watcher->deadline) {
      d->watcher->finish();
      d->ended = true;
    } else if (!d->ended && bookmarks && d->watcher->wantsBookmarks && !d->watcher->bookmark(d->revision)) {
      d->ended = true;
    }
    if (d->ended) done.push_back(d->watcher.get());
  }
  for (const auto* w : done) removeDirectWatcher(w);
}

}  // namespace orrery::apiserver
