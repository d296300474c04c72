#include "engine/client/informer.h"

#include <condition_variable>
#include <deque>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace orrery::client {

using nlohmann::json;

namespace {

// The informer whose handlers this thread is running: stop() from a handler must not wait for
// the thread that delivers the event being handled (the stream's thread or the informer's).
thread_local const void* tHandlersOf = nullptr;

struct HandlingScope {
  explicit HandlingScope(const void* informer) : previous(tHandlersOf) { tHandlersOf = informer; }
  ~HandlingScope() { tHandlersOf = previous; }
  const void* previous;
};

const std::string& metaField(const json& object, const char* field) {
  static const std::string empty;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return empty;
  auto v = meta->find(field);
  return v != meta->end() && v->is_string() ? v->get_ref<const std::string&>() : empty;
}

std::string resourceName(const api::GroupVersionResource& gvr) {
  return gvr.group.empty() ? gvr.resource : gvr.resource + "." + gvr.group;
}

// The reflector's retry delays: 800 ms doubling to 30 s, reset after a healthy run.
class Backoff {
 public:
  std::chrono::milliseconds next() {
    auto d = current_;
    current_ = std::min(current_ * 2, std::chrono::milliseconds(30000));
    return d;
  }
  void reset() { current_ = std::chrono::milliseconds(800); }

 private:
  std::chrono::milliseconds current_{800};
};

}  // namespace

struct Informer::State {
  std::shared_ptr<Client> client;
  api::GroupVersionResource gvr;
  std::string ns;
  ListOptions selectors;
  std::atomic<bool>* synced = nullptr;  // the owning Informer's flag (it outlives the thread)
  TransformFunc transform;              // set before the thread starts

  bool transformIsStripManagedFields() const {
    auto* fn = transform.target<void (*)(json&)>();
    return fn && *fn == &stripManagedFields;
  }

  // The cache and its indexes.
  struct Index {
    IndexFunc func;
    // The values follow from the object's key alone (the built-in namespace index): an
    // update, which keeps the key, never moves it.
    bool followsKey = false;
    std::unordered_map<std::string, std::unordered_set<std::string>> buckets;
  };
  mutable std::shared_mutex cacheMu;
  std::unordered_map<std::string, ObjectPtr> items;
  std::map<std::string, Index> indexes;
  std::string lastRV;

  // Held while the cache changes and handlers hear of it, so a handler added meanwhile sees
  // each object exactly once (from the replay or from the event). Recursive: a handler may
  // add another handler.
  std::recursive_mutex dispatchMu;
  std::vector<EventHandler> handlers;

  // How a watch ended, for the informer thread: its end, or an ERROR event (the events
  // themselves are applied on the stream's thread).
  struct Incoming {
    bool end = false;
    api::Status status;   // end
    std::string type;     // ERROR
    ObjectPtr object;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable syncCv;
  std::deque<Incoming> queue;
  std::atomic<bool> watchHealthy{false};  // the current watch delivered an event
  std::atomic<bool> stopRequestedFlag{false};  // `stopping`, for the stream's thread
  bool started = false;
  bool stopping = false;
  std::thread thread;

  bool stopRequested() {
    std::lock_guard lock(mu);
    return stopping;
  }
  // Sleeps `d` unless stop() comes first; false when stopping.
  bool waitFor(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [this] { return stopping; });
  }

  static void addToBuckets(Index& index, const std::string& key, const std::vector<std::string>& values) {
    for (const auto& value : values) index.buckets[value].insert(key);
  }
  static void removeFromBuckets(Index& index, const std::string& key, const std::vector<std::string>& values) {
    for (const auto& value : values) {
      auto it = index.buckets.find(value);
      if (it == index.buckets.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) index.buckets.erase(it);
    }
  }
  void indexLocked(const std::string& key, const json& object) {
    for (auto& [name, index] : indexes) addToBuckets(index, key, safeIndex(index.func, object));
  }
  void unindexLocked(const std::string& key, const json& object) {
    for (auto& [name, index] : indexes) removeFromBuckets(index, key, safeIndex(index.func, object));
  }
  // An update moves the key only between the buckets whose values changed: most updates
  // (a status, a binding) change none, and moving it out and back cost two hash-set edits
  // per index.
  void reindexLocked(const std::string& key, const json& oldObject, const json& newObject) {
    for (auto& [name, index] : indexes) {
      if (index.followsKey) continue;
      auto before = safeIndex(index.func, oldObject);
      auto after = safeIndex(index.func, newObject);
      if (before == after) continue;
      removeFromBuckets(index, key, before);
      addToBuckets(index, key, after);
    }
  }
  static std::vector<std::string> safeIndex(const IndexFunc& func, const json& object) {
    try {
      return func(object);
    } catch (const std::exception& e) {
      spdlog::warn("informer: an index function failed: {}", e.what());
      return {};
    }
  }

  template <typename F>
  void callHandlers(F&& f) {
    HandlingScope scope(this);
    for (auto& h : handlers) {
      try {
        f(h);
      } catch (const std::exception& e) {
        spdlog::error("informer {}: a handler failed: {}", resourceName(gvr), e.what());
      }
    }
  }

  // One watch event: the cache changes, then every handler hears of it.
  void apply(const std::string& type, const ObjectPtr& object) {
    std::lock_guard dispatch(dispatchMu);
    std::string key = objectKey(*object);
    ObjectPtr old;
    {
      std::unique_lock lock(cacheMu);
      if (type == "DELETED") {
        if (auto it = items.find(key); it != items.end()) {
          old = std::move(it->second);
          items.erase(it);
          unindexLocked(key, *old);
        }
      } else {
        auto& slot = items[key];
        old = std::move(slot);
        slot = object;
        if (old) {
          reindexLocked(key, *old, *object);
        } else {
          indexLocked(key, *object);
        }
      }
      if (const auto& rv = metaField(*object, "resourceVersion"); !rv.empty()) lastRV = rv;
    }
    if (type == "DELETED") {
      callHandlers([&](EventHandler& h) { if (h.onDelete) h.onDelete(object); });
    } else if (old) {
      callHandlers([&](EventHandler& h) { if (h.onUpdate) h.onUpdate(old, object); });
    } else {
      callHandlers([&](EventHandler& h) { if (h.onAdd) h.onAdd(object); });
    }
  }

  // A full list replaces the cache; handlers hear only what differs from what they knew.
  void replace(std::vector<ObjectPtr> listed, const std::string& rv) {
    std::lock_guard dispatch(dispatchMu);
    std::vector<ObjectPtr> adds;
    std::vector<std::pair<ObjectPtr, ObjectPtr>> updates;
    std::vector<ObjectPtr> deletes;
    {
      std::unique_lock lock(cacheMu);
      std::unordered_map<std::string, ObjectPtr> fresh;
      fresh.reserve(listed.size());
      for (auto& object : listed) {
        std::string key = objectKey(*object);
        auto it = items.find(key);
        if (it == items.end()) {
          adds.push_back(object);
        } else if (metaField(*it->second, "resourceVersion") != metaField(*object, "resourceVersion")) {
          updates.emplace_back(it->second, object);
        } else {
          object = it->second;  // unchanged: keep the pointer handlers already hold
        }
        fresh[std::move(key)] = std::move(object);
      }
      for (auto& [key, object] : items) {
        if (!fresh.count(key)) deletes.push_back(object);
      }
      items = std::move(fresh);
      for (auto& [name, index] : indexes) index.buckets.clear();
      for (auto& [key, object] : items) indexLocked(key, *object);
      lastRV = rv;
    }
    for (auto& object : deletes) callHandlers([&](EventHandler& h) { if (h.onDelete) h.onDelete(object); });
    for (auto& [o, n] : updates) callHandlers([&](EventHandler& h) { if (h.onUpdate) h.onUpdate(o, n); });
    for (auto& object : adds) callHandlers([&](EventHandler& h) { if (h.onAdd) h.onAdd(object); });
  }

  // Lists every page (limit 500 + continue) at one resourceVersion.
  api::Status listAll(std::vector<ObjectPtr>* out, std::string* rv) {
    ListOptions options = selectors;
    options.resourceVersion.clear();
    options.resourceVersionMatch.clear();
    options.limit = 500;
    options.continueToken.clear();
    out->clear();
    for (;;) {
      auto page = client->list(gvr, ns, options);
      if (!page.ok()) {
        if (page.status().code() == 410 && !options.continueToken.empty()) {
          // The continue token expired mid-list: start over with one full list.
          options.continueToken.clear();
          options.limit = 0;
          out->clear();
          continue;
        }
        return page.status();
      }
      json& list = *page;
      if (options.continueToken.empty()) *rv = metaField(list, "resourceVersion");
      // Items of a list may lack kind/apiVersion; the cache holds whole objects.
      std::string kind = list.value("kind", "");
      if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0) kind.resize(kind.size() - 4);
      std::string apiVersion = list.value("apiVersion", "");
      if (auto items = list.find("items"); items != list.end() && items->is_array()) {
        out->reserve(out->size() + items->size());
        for (auto& item : *items) {
          if (!item.contains("kind") && !kind.empty()) item["kind"] = kind;
          if (!item.contains("apiVersion") && !apiVersion.empty()) item["apiVersion"] = apiVersion;
          if (transform) transform(item);
          out->push_back(std::make_shared<const json>(std::move(item)));
        }
      }
      const std::string& next = metaField(list, "continue");
      if (next.empty()) return {};
      options.continueToken = next;
    }
  }

  void run() {
    Backoff listBackoff;
    Backoff watchBackoff;
    bool needList = true;
    std::mt19937 rng{std::random_device{}()};
    while (!stopRequested()) {
      if (needList) {
        std::vector<ObjectPtr> listed;
        std::string rv;
        auto st = listAll(&listed, &rv);
        if (!st.isOk()) {
          spdlog::warn("informer {}: list failed: {} ({}); retrying", resourceName(gvr), st.message(), st.code());
          if (!waitFor(listBackoff.next())) break;
          continue;
        }
        if (stopRequested()) break;
        replace(std::move(listed), rv);
        listBackoff.reset();
        needList = false;
        if (synced && !synced->exchange(true)) {
          std::lock_guard lock(mu);
          syncCv.notify_all();
        }
      }

      ListOptions options = selectors;
      options.limit = 0;
      options.continueToken.clear();
      options.resourceVersionMatch.clear();
      {
        std::shared_lock lock(cacheMu);
        options.resourceVersion = lastRV;
      }
      options.allowWatchBookmarks = true;
      // As the reflector: a watch lasts a random 5-10 minutes, then is renewed.
      options.timeoutSeconds = std::uniform_int_distribution<int>(300, 600)(rng);
      auto started = std::chrono::steady_clock::now();
      // The transform that only strips managedFields is the watch's own job: the server in
      // this process parses events without them once for every such informer, and nothing
      // is copied.
      const bool watchStrips = transformIsStripManagedFields();
      watchHealthy.store(false);
      auto stream = client->watchShared(
          gvr, ns, options,
          [this, watchStrips](SharedWatchEvent&& event) {
            // stop() from a handler returns before the stream is cancelled: nothing after it.
            if (stopRequestedFlag.load(std::memory_order_relaxed)) return;
            if (event.type == "ADDED" || event.type == "MODIFIED" || event.type == "DELETED") {
              // Applied here, on the stream's own thread: handing each event to the informer
              // thread cost a wake-up and a context switch per event, more than most handlers.
              ObjectPtr object = std::move(event.object);
              if (transform && !watchStrips) {
                // The object may be shared with other watchers: transform a copy. (Copying is
                // a fifth of what parsing the event cost each informer before they shared it.)
                json copy = *object;
                transform(copy);
                object = std::make_shared<const json>(std::move(copy));
              }
              watchHealthy.store(true, std::memory_order_relaxed);
              apply(event.type, object);
              return;
            }
            if (event.type == "BOOKMARK") {
              watchHealthy.store(true, std::memory_order_relaxed);
              if (const auto& rv = metaField(*event.object, "resourceVersion"); !rv.empty()) {
                std::unique_lock lock(cacheMu);
                lastRV = rv;
              }
              return;
            }
            // An ERROR ends this watch: the informer thread decides what comes next.
            Incoming in;
            in.type = std::move(event.type);
            in.object = std::move(event.object);
            {
              std::lock_guard lock(mu);
              queue.push_back(std::move(in));
            }
            cv.notify_one();  // after unlocking: the informer thread would block on `mu` again
          },
          [this](const api::Status& status) {
            Incoming in;
            in.end = true;
            in.status = status;
            {
              std::lock_guard lock(mu);
              queue.push_back(std::move(in));
            }
            cv.notify_one();
          },
          watchStrips ? SharedObjectForm::kWithoutManagedFields : SharedObjectForm::kWhole);
      if (!stream.ok()) {
        if (stream.status().code() == 410) {
          needList = true;
          continue;
        }
        spdlog::warn("informer {}: watch failed: {}; retrying", resourceName(gvr), stream.status().message());
        if (!waitFor(watchBackoff.next())) break;
        continue;
      }
      std::chrono::milliseconds pause{0};
      // Events are applied on the stream's thread; this one waits for the watch to end (or
      // for an ERROR event) and decides whether to re-watch, relist or back off.
      for (;;) {
        Incoming in;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [this] { return stopping || !queue.empty(); });
          if (stopping) break;
          in = std::move(queue.front());
          queue.pop_front();
        }
        bool healthy = watchHealthy.load();
        if (healthy) watchBackoff.reset();
        if (in.end) {
          if (in.status.code() == 410) {
            needList = true;
          } else if (!in.status.isOk()) {
            spdlog::info("informer {}: watch ended: {}", resourceName(gvr), in.status.message());
            pause = watchBackoff.next();
          } else if (!healthy && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
            // A watch that ends at once, cleanly, would otherwise spin.
            pause = watchBackoff.next();
          }
          break;
        }
        // ERROR
        int code = in.object->is_object() ? in.object->value("code", 0) : 0;
        if (code == 410) {
          needList = true;
        } else {
          spdlog::warn("informer {}: watch error: {}", resourceName(gvr),
                       in.object->is_object() ? in.object->value("message", "") : in.object->dump());
          pause = watchBackoff.next();
        }
        break;
      }
      // After cancel() the stream delivers nothing more: what is queued is stale.
      stream->reset();
      {
        std::lock_guard lock(mu);
        queue.clear();
      }
      if (pause.count() > 0 && !waitFor(pause)) break;
    }
  }
};

Informer::Informer(std::shared_ptr<Client> client, api::GroupVersionResource gvr, std::string ns,
                   ListOptions selectors)
    : state_(std::make_shared<State>()), gvr_(std::move(gvr)) {
  state_->client = std::move(client);
  state_->gvr = gvr_;
  state_->ns = std::move(ns);
  state_->selectors = std::move(selectors);
  state_->synced = &synced_;
  auto& byNamespace = state_->indexes["namespace"];
  byNamespace.func = [](const json& object) { return std::vector<std::string>{metaField(object, "namespace")}; };
  byNamespace.followsKey = true;
}

Informer::~Informer() { stop(); }

void Informer::addHandler(EventHandler handler) {
  std::lock_guard dispatch(state_->dispatchMu);
  bool started;
  {
    std::lock_guard lock(state_->mu);
    started = state_->started;
  }
  if (started && handler.onAdd) {
    for (const auto& object : list()) {
      try {
        handler.onAdd(object);
      } catch (const std::exception& e) {
        spdlog::error("informer {}: a handler failed: {}", resourceName(gvr_), e.what());
      }
    }
  }
  state_->handlers.push_back(std::move(handler));
}

void Informer::setTransform(TransformFunc transform) {
  std::lock_guard lock(state_->mu);
  if (state_->started) {
    // The list and watch threads read it without a lock: changing it now would race.
    spdlog::warn("informer {}: transform set after start; ignored", resourceName(gvr_));
    return;
  }
  state_->transform = std::move(transform);
}

void Informer::addIndex(const std::string& name, IndexFunc func) {
  std::unique_lock lock(state_->cacheMu);
  auto& index = state_->indexes[name];
  index.func = std::move(func);
  index.followsKey = false;
  index.buckets.clear();
  for (const auto& [key, object] : state_->items) {
    State::addToBuckets(index, key, State::safeIndex(index.func, *object));
  }
}

void Informer::start() {
  std::lock_guard lock(state_->mu);
  if (state_->started || state_->stopping) return;
  state_->started = true;
  auto state = state_;
  state_->thread = std::thread([state] { state->run(); });
}

void Informer::stop() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    state_->stopRequestedFlag.store(true);
    state_->cv.notify_all();
    state_->syncCv.notify_all();
  }
  if (state_->thread.joinable()) {
    if (state_->thread.get_id() == std::this_thread::get_id() || tHandlersOf == state_.get()) {
      // stop() from a handler: the informer thread ends once it has cancelled the stream,
      // which waits for this handler to return.
      state_->thread.detach();
    } else {
      state_->thread.join();
    }
  }
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->syncCv.wait_for(lock, timeout, [this] { return synced_.load() || state_->stopping; }) &&
         synced_.load();
}

ObjectPtr Informer::get(const std::string& key) const {
  std::shared_lock lock(state_->cacheMu);
  auto it = state_->items.find(key);
  return it == state_->items.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::list() const {
  std::shared_lock lock(state_->cacheMu);
  std::vector<ObjectPtr> out;
  out.reserve(state_->items.size());
  for (const auto& [key, object] : state_->items) out.push_back(object);
  return out;
}

std::vector<ObjectPtr> Informer::byIndex(const std::string& index, const std::string& value) const {
  std::shared_lock lock(state_->cacheMu);
  std::vector<ObjectPtr> out;
  auto idx = state_->indexes.find(index);
  if (idx == state_->indexes.end()) return out;
  auto bucket = idx->second.buckets.find(value);
  if (bucket == idx->second.buckets.end()) return out;
  out.reserve(bucket->second.size());
  for (const auto& key : bucket->second) {
    if (auto it = state_->items.find(key); it != state_->items.end()) out.push_back(it->second);
  }
  return out;
}

std::string Informer::lastResourceVersion() const {
  std::shared_lock lock(state_->cacheMu);
  return state_->lastRV;
}

InformerFactory::InformerFactory(std::shared_ptr<Client> client) : client_(std::move(client)) {}

InformerFactory::~InformerFactory() { stop(); }

void InformerFactory::setTransform(TransformFunc transform) {
  std::lock_guard lock(mu_);
  transform_ = std::move(transform);
  for (auto& [gvr, informer] : informers_) informer->setTransform(transform_);
}

Informer& InformerFactory::informer(const api::GroupVersionResource& gvr) {
  std::lock_guard lock(mu_);
  auto& slot = informers_[gvr];
  if (!slot) {
    slot = std::make_unique<Informer>(client_, gvr);
    if (transform_) slot->setTransform(transform_);
    if (started_) slot->start();
  }
  return *slot;
}

void InformerFactory::start() {
  std::lock_guard lock(mu_);
  started_ = true;
  for (auto& [gvr, informer] : informers_) informer->start();
}

bool InformerFactory::waitForSync(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Informer*> all;
  {
    std::lock_guard lock(mu_);
    if (!started_) return false;
    for (auto& [gvr, informer] : informers_) all.push_back(informer.get());
  }
  for (auto* informer : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!informer->waitForSync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

void InformerFactory::stop() {
  std::vector<Informer*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [gvr, informer] : informers_) all.push_back(informer.get());
  }
  for (auto* informer : all) informer->stop();
}

}  // namespace orrery::client
