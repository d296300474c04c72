#include "engine/apiserver/watch_cache.h"

#include <algorithm>

#define LZ4_STATIC_LINKING_ONLY  // LZ4_attach_dictionary
#include <lz4.h>
#include <spdlog/spdlog.h>

#include "engine/api/json_parse.h"
#include "engine/apiserver/json_scan.h"

namespace orrery::apiserver {

namespace {

// Field labels kube-apiserver supports beyond metadata.name/namespace, per resource. The
// cache extracts these once per object version so selectors never parse JSON.
std::vector<std::string> fieldPathsFor(const api::ResourceInfo& info) {
  if (!info.group.empty() && info.group != "apps" && info.group != "batch" &&
      info.group != "events.k8s.io") {
    return {};
  }
  const std::string& r = info.resource;
  if (r == "pods") {
    return {"spec.nodeName",      "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
            "status.podIP",       "status.nominatedNodeName"};
  }
  if (r == "events") {
    return {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
            "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
            "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
            "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "note"};
  }
  if (r == "secrets") return {"type"};
  if (r == "nodes") return {"spec.unschedulable"};
  if (r == "namespaces") return {"status.phase"};
  if (r == "replicasets" || r == "replicationcontrollers") return {"status.replicas"};
  if (r == "jobs") return {"status.successful"};
  if (r == "services") return {"spec.clusterIP", "spec.type"};
  return {};
}

std::string scalarText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return v.dump();
  return "";
}

std::string extractField(const nlohmann::json& object, const std::string& path) {
  // Booleans that kube reports as "false" when unset.
  static const std::vector<std::string> falseWhenAbsent = {"spec.hostNetwork", "spec.unschedulable"};
  if (path == "source") {  // core/v1 Event: source.component
    auto s = object.find("source");
    if (s != object.end() && s->is_object()) return scalarText(s->value("component", nlohmann::json()));
    return "";
  }
  const nlohmann::json* cur = &object;
  std::string_view rest = path;
  while (cur) {
    const auto dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);  // (looked up without a copy)
    auto it = cur->is_object() ? cur->find(part) : cur->end();
    cur = it == cur->end() ? nullptr : &*it;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (!cur || cur->is_null()) {
    if (std::find(falseWhenAbsent.begin(), falseWhenAbsent.end(), path) != falseWhenAbsent.end()) return "false";
    return "";
  }
  return scalarText(*cur);
}

}  // namespace

const char* eventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
  }
  return "ERROR";
}

std::string CachedObject::json() const {
  std::string text;
  appendJson(&text);
  return text;
}

void CachedObject::appendJson(std::string* out) const {
  if (!dict_) {
    out->append(data_);
    return;
  }
  const size_t at = out->size();
  out->resize(at + size_);
  int n = LZ4_decompress_safe_usingDict(data_.data(), out->data() + at, static_cast<int>(data_.size()),
                                        static_cast<int>(size_), dict_->data(), static_cast<int>(dict_->size()));
  if (n != static_cast<int>(size_)) {
    // Cannot happen short of memory corruption; say so rather than serve garbage.
    spdlog::error("apiserver: watch cache: {} at revision {} does not decompress", key(), revision);
    out->resize(at);
    out->append("{}");
  }
}

std::shared_ptr<const WatchFrame> CachedObject::frame(EventType type) const {
  auto& slot = frames_[static_cast<int>(type)];
  if (!slot) {
    auto text = std::make_shared<std::string>();
    text->reserve(size_ + 40);
    text->append("{\"type\":\"").append(eventTypeName(type)).append("\",\"object\":");
    size_t objectBegin = text->size();
    appendJson(text.get());
    text->append("}\n");
    slot = std::make_shared<const WatchFrame>(
        eventTypeName(type), std::move(text), objectBegin,
        [self = weak_from_this()](const std::shared_ptr<const nlohmann::json>& parsed) {
          if (auto object = self.lock()) object->parsed_.store(parsed);
        },
        managedFieldsCut_);
  }
  return slot;
}

void CachedObject::releaseFrames() const {
  for (auto& slot : frames_) slot.reset();
}

bool servedUncached(const std::string& group, const std::string& resource) {
  return resource == "events" && (group.empty() || group == "events.k8s.io");
}

const std::string& Selectable::field(const std::string& path) const {
  static const std::string kNone;
  if (!fieldPaths) return kNone;
  for (size_t i = 0; i < fieldPaths->size() && i < fieldValues.size(); ++i) {
    if ((*fieldPaths)[i] == path) return fieldValues[i];
  }
  return kNone;
}

std::shared_ptr<const Selectable> Selectable::with(const std::string& path, std::string value) const {
  auto copy = std::make_shared<Selectable>(*this);
  for (size_t i = 0; fieldPaths && i < fieldPaths->size() && i < copy->fieldValues.size(); ++i) {
    if ((*fieldPaths)[i] == path) copy->fieldValues[i] = std::move(value);
  }
  return copy;
}

size_t Selectable::footprint() const {
  // Strings past the small-string buffer live on the heap; a JSON object member costs about
  // 80 bytes besides its text.
  auto heap = [](const std::string& s) { return s.size() > 15 ? s.capacity() + 1 : 0; };
  size_t bytes = sizeof(Selectable) + 16 + heap(key) + heap(ns) + heap(name);
  for (const auto& [k, v] : labels.items()) bytes += 80 + 32 + k.size() + (v.is_string() ? v.get_ref<const std::string&>().size() : 0);
  bytes += fieldValues.capacity() * sizeof(std::string);
  for (const auto& v : fieldValues) bytes += heap(v);
  return bytes;
}

bool Filter::matches(const Selectable& object) const {
  if (!ns.empty() && object.ns != ns) return false;
  if (!name.empty() && object.name != name) return false;
  if (labels && !labels->empty() && !labels->matches(object.labels)) return false;
  if (fields && !fields->empty()) {
    for (const auto& term : fields->terms()) {
      const std::string& value = term.field == "metadata.name"        ? object.name
                                 : term.field == "metadata.namespace" ? object.ns
                                                                      : object.field(term.field);
      if ((value == term.value) != term.equals) return false;
    }
  }
  return true;
}

WatchCache::WatchCache(store::Store& store, api::ResourceInfo info, size_t capacity,
                       size_t maxHistoryBytes, Mode mode)
    : store_(store), info_(std::move(info)), capacity_(capacity), maxHistoryBytes_(maxHistoryBytes),
      fieldPaths_(std::make_shared<const std::vector<std::string>>(fieldPathsFor(info_))), mode_(mode) {
  // What makeSelectable reads: the metadata it keeps and the selectable fields.
  scannedPaths_ = {"metadata.name", "metadata.namespace", "metadata.labels"};
  scannedPaths_.insert(scannedPaths_.end(), fieldPaths_->begin(), fieldPaths_->end());
}

WatchCache::~WatchCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    recoverCv_.notify_all();
    fresh_.notify_all();
  }
  if (recoverer_.joinable()) recoverer_.join();
  std::unique_ptr<store::WatchHandle> watch;
  {
    std::lock_guard lock(mu_);
    watch = std::move(storeWatch_);
  }
  // Outside the lock: cancel() waits for a running callback, which takes the lock.
  if (watch) watch->cancel();
  std::vector<std::shared_ptr<DirectWatch>> direct;
  {
    std::lock_guard lock(mu_);
    for (auto& w : watchers_) w->terminate(api::Status::serviceUnavailable("the server is shutting down"));
    watchers_.clear();
    direct.swap(direct_);
  }
  endDirectWatches(direct, api::Status::serviceUnavailable("the server is shutting down"));
}

namespace {

// A store value as a JSON object (an empty one, with a warning, if it is not one).
nlohmann::json parseStored(const std::string& key, const std::string& value) {
  nlohmann::json parsed = api::parseJson(value);
  if (parsed.is_discarded() || !parsed.is_object()) {
    // Not an object we wrote: serve it as an empty object rather than crash a list.
    spdlog::warn("apiserver: store key {} does not hold a JSON object; skipped", key);
    parsed = nlohmann::json::object();
  }
  auto& meta = parsed["metadata"];
  if (!meta.is_object()) meta = nlohmann::json::object();
  return parsed;
}

}  // namespace

SelectablePtr WatchCache::makeSelectable(const std::string& key, const nlohmann::json& parsed,
                                         const SelectablePtr& reuse) const {
  const nlohmann::json& meta = parsed["metadata"];
  auto labelsIt = meta.find("labels");
  const nlohmann::json noLabels = nlohmann::json::object();
  const nlohmann::json& labels = labelsIt != meta.end() && labelsIt->is_object() ? *labelsIt : noLabels;
  std::vector<std::string> fieldValues;
  fieldValues.reserve(fieldPaths_->size());
  for (const auto& path : *fieldPaths_) fieldValues.push_back(extractField(parsed, path));
  if (reuse && reuse->same(key, labels, fieldValues)) return reuse;
  auto selectable = std::make_shared<Selectable>();
  selectable->key = key;
  selectable->ns = meta.value("namespace", "");
  selectable->name = meta.value("name", "");
  selectable->labels = labels;
  selectable->fieldPaths = fieldPaths_;
  selectable->fieldValues = std::move(fieldValues);
  return selectable;
}

SelectablePtr WatchCache::makeSelectable(const std::string& key, const std::string& value) const {
  if (auto scanned = scanObject(value, scannedPaths_)) return makeSelectable(key, scanned->partial, nullptr);
  return makeSelectable(key, parseStored(key, value), nullptr);
}

CachedPtr WatchCache::makeCached(const std::string& key, const std::string& value, int64_t revision,
                                 const CachedObject* previous, const WrittenVersion* written) const {
  auto object = std::make_shared<CachedObject>();
  object->revision = revision;
  const SelectablePtr& reuse = previous ? previous->selectable : nullptr;
  if (written && written->selectable && written->selectable->key == key) {
    // Written by this API server: it said what a scan would find.
    const Selectable& mine = *written->selectable;
    object->selectable = reuse && reuse->same(key, mine.labels, mine.fieldValues) ? reuse : written->selectable;
    object->data_ = withResourceVersion(value, written->layout, revision);
    object->managedFieldsCut_ = managedFieldsRemoval(written->layout, revision);
  } else if (auto scanned = scanObject(value, scannedPaths_)) {
    // The usual case: the text the API server stored, read without building it whole.
    object->selectable = makeSelectable(key, scanned->partial, reuse);
    object->data_ = withResourceVersion(value, *scanned, revision);
    object->managedFieldsCut_ = managedFieldsRemoval(*scanned, revision);
  } else {
    nlohmann::json parsed = parseStored(key, value);
    parsed["metadata"]["resourceVersion"] = std::to_string(revision);
    object->selectable = makeSelectable(key, parsed, reuse);
    object->data_ = parsed.dump();
    // dump() grows its string by doubling; tens of thousands of versions stay cached.
    object->data_.shrink_to_fit();
  }
  if (!previous || object->selectable != previous->selectable) object->footprint += object->selectable->footprint();
  object->size_ = object->data_.size();
  object->footprint += sizeof(CachedObject) + 16 + object->data_.capacity() + 1;
  return object;
}

void WatchCache::Lz4StreamFree::operator()(void* stream) const { LZ4_freeStream(static_cast<LZ4_stream_t*>(stream)); }

CachedPtr WatchCache::makeRetained(const std::string& key, const std::string& value, int64_t revision,
                                   const CachedObject* previous, const WrittenVersion* written) {
  auto object = std::const_pointer_cast<CachedObject>(makeCached(key, value, revision, previous, written));
  const std::string& text = object->data_;
  const size_t textSize = text.size();  // `text` is replaced by its compression below
  constexpr size_t kWorthCompressing = 256;
  if (textSize < kWorthCompressing) return object;
  if (!dictionary_) {
    dictionary_ = std::make_shared<const std::string>(text);
    sinceDictionary_ = 0;
  }
  if (!lz4_) lz4_.reset(LZ4_createStream());
  if (lz4DictionaryOf_ != dictionary_) {
    // A new dictionary: hashed once here. Loading it into the working stream for every
    // object cleared and refilled 16 KB of hash table each time.
    if (!lz4Dictionary_) lz4Dictionary_.reset(LZ4_createStream());
    LZ4_loadDict(lz4Dictionary_.get(), dictionary_->data(), static_cast<int>(dictionary_->size()));
    lz4DictionaryOf_ = dictionary_;
  }
  LZ4_resetStream_fast(lz4_.get());
  LZ4_attach_dictionary(lz4_.get(), lz4Dictionary_.get());
  std::string packed(static_cast<size_t>(LZ4_compressBound(static_cast<int>(text.size()))), '\0');
  int n = LZ4_compress_fast_continue(lz4_.get(), text.data(), packed.data(), static_cast<int>(text.size()),
                                     static_cast<int>(packed.size()), 1);
  const size_t before = object->data_.capacity();
  if (n > 0 && static_cast<size_t>(n) < textSize * 3 / 4) {
    packed.resize(static_cast<size_t>(n));
    packed.shrink_to_fit();
    object->data_ = std::move(packed);
    object->dict_ = dictionary_;
    object->footprint = object->footprint - before + object->data_.capacity();
  }
  // A poor fit: objects to come may look more like this one than like the dictionary (a
  // new Deployment's pods). Not at every poor fit, though: each dictionary stays alive as
  // long as an object compressed against it.
  ++sinceDictionary_;
  constexpr size_t kMinBetweenDictionaries = 32;
  if ((n <= 0 || static_cast<size_t>(n) > textSize / 4) && sinceDictionary_ >= kMinBetweenDictionaries) {
    dictionary_ = std::make_shared<const std::string>(object->json());
    sinceDictionary_ = 0;
  }
  return object;
}

api::Status WatchCache::start() {
  if (mode_ == Mode::kUncached) return {};  // nothing to load: reads and watches go to the store
  store::RangeRequest request;
  request.key = info_.storagePrefix;
  request.prefix = true;
  auto range = store_.range(request);
  if (!range.ok()) return range.status();
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& kv : range->kvs) objects_[kv.key] = makeRetained(kv.key, kv.value, kv.modRevision);
    revision_ = range->revision;
    oldestRevision_ = range->revision;
    // Deletions before start-up are not known here: count the cache's whole past as changed.
    lastChange_ = range->revision;
    generation = ++watchGeneration_;
  }
  auto handle = watchFrom(range->revision + 1, generation);
  if (!handle.ok()) return handle.status();
  std::lock_guard lock(mu_);
  storeWatch_ = std::move(handle).value();
  return {};
}

api::Result<std::unique_ptr<store::WatchHandle>> WatchCache::watchFrom(int64_t fromRevision,
                                                                       uint64_t generation) {
  store::WatchRequest watch;
  watch.key = info_.storagePrefix;
  watch.prefix = true;
  watch.startRevision = fromRevision;
  watch.prevKv = true;
  watch.progressNotify = true;
  return store_.watch(watch, [this, generation](const store::WatchResponse& r) {
    onStoreEvents(generation, r);
  });
}

void WatchCache::onStoreEvents(uint64_t generation, const store::WatchResponse& response) {
  std::lock_guard lock(mu_);
  if (generation != watchGeneration_ || stopping_) return;  // a watch we have replaced
  if (!response.status.isOk()) {
    // The store cannot feed us any more (compacted past us, or gone). Recover on a thread of
    // our own: this is the store's callback thread, and recovery may take a while.
    if (!recovering_) {
      spdlog::warn("apiserver: watch cache of {}: the store's watch ended at revision {}: {}; {}",
                   info_.resource, revision_, response.status.message(),
                   response.status.code() == 410 ? "re-listing" : "watching again");
    }
    recovering_ = true;
    failedGeneration_ = generation;
    needRelist_ = needRelist_ || response.status.code() == 410;
    storeError_ = response.status;
    if (!recoveryRunning_) {
      // A previous recovery thread has left its loop (it cleared recoveryRunning_ as its
      // last step under the lock), so joining it here is immediate.
      if (recoverer_.joinable()) recoverer_.join();
      recoveryRunning_ = true;
      recoverer_ = std::thread([this] { recoverLoop(); });
    }
    recoverCv_.notify_all();
    return;
  }
  for (const auto& event : response.events) apply(event);
  // Progress notifications move the cache on through other resources' writes, so a
  // consistent read of this resource never waits for an event that will not come.
  revision_ = std::max(revision_, response.revision);
  fresh_.notify_all();
}

void WatchCache::recoverLoop() {
  constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
  auto backoff = kFirstBackoff;
  int attempts = 0;
  std::unique_lock lock(mu_);
  while (!stopping_ && recovering_) {
    // The ended watch calls back no more: drop it (outside the lock, as cancel() may wait).
    auto ended = std::move(storeWatch_);
    const bool relist = needRelist_;
    int64_t from = revision_ + 1;
    lock.unlock();
    ended.reset();
    api::Status failure;
    if (relist) {
      store::RangeRequest request;
      request.key = info_.storagePrefix;
      request.prefix = true;
      auto range = store_.range(request);
      lock.lock();
      if (range.ok()) {
        replaceLocked(*range);
        needRelist_ = false;
        from = range->revision + 1;
      } else {
        failure = range.status();
      }
      lock.unlock();
    }
    if (failure.isOk()) {
      uint64_t generation = 0;
      {
        std::lock_guard guard(mu_);
        if (stopping_) break;
        generation = ++watchGeneration_;
      }
      auto handle = watchFrom(from, generation);
      lock.lock();
      if (handle.ok()) {
        storeWatch_ = std::move(handle).value();
        if (failedGeneration_ != generation) {
          spdlog::info("apiserver: watch cache of {}: following the store again from revision {}",
                       info_.resource, from);
          recovering_ = false;
          storeError_ = {};
          fresh_.notify_all();
          break;
        }
        // That watch has ended already (its callback ran): go round again.
        backoff = kFirstBackoff;
        continue;
      }
      failure = handle.status();
      if (failure.code() == 410) needRelist_ = true;
      lock.unlock();
    }
    // The store is down (or still behind): retry with backoff, as the cacher's reflector does.
    if (attempts++ == 0 || attempts % 20 == 0) {
      spdlog::warn("apiserver: watch cache of {}: {} failed: {}; retrying", info_.resource,
                   relist ? "re-list" : "re-watch", failure.message());
    }
    lock.lock();
    storeError_ = failure;
    recoverCv_.wait_for(lock, backoff, [&] { return stopping_; });
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  if (!lock.owns_lock()) lock.lock();
  recoveryRunning_ = false;
}

void WatchCache::replaceLocked(const store::RangeResponse& range) {
  // Reuse what has not changed; anything else means this cache missed events.
  std::map<std::string, CachedPtr> fresh;
  bool lost = false;
  for (const auto& kv : range.kvs) {
    auto it = objects_.find(kv.key);
    if (it != objects_.end() && it->second->revision == kv.modRevision) {
      fresh.emplace(kv.key, it->second);
    } else {
      fresh.emplace(kv.key, makeRetained(kv.key, kv.value, kv.modRevision));
      lost = true;
    }
  }
  // Every listed key was known (or lost is set): a size difference means deletions we missed.
  if (fresh.size() != objects_.size()) lost = true;
  objects_.swap(fresh);
  // An object created and deleted inside the gap leaves no trace in the list; such a pair is
  // not reported, and the watchers' view of the current state stays right.
  if (lost) {
    const int64_t before = revision_;
    history_.clear();
    historyBytes_ = 0;
    oldestRevision_ = range.revision;
    lastChange_ = range.revision;
    // As the cacher after a re-list: watchers end and clients re-list (client-go's
    // reflector does on 410); a watch resuming from before the re-list gets 410 too.
    auto expired = api::Status::expired("too old resource version: " + std::to_string(before) +
                                        " (" + std::to_string(range.revision) + ")");
    for (auto& w : watchers_) w->terminate(expired);
    watchers_.clear();
    spdlog::info("apiserver: watch cache of {}: re-listed at revision {} ({} objects); events "
                 "after revision {} were lost, so its watchers were ended with 410",
                 info_.resource, range.revision, objects_.size(), before);
  }
  revision_ = std::max(revision_, range.revision);
  fresh_.notify_all();
}

api::Status WatchCache::notReadyStatus() const {
  std::string why = storeError_.isOk() ? std::string("the store's watch ended") : storeError_.message();
  api::Status st = api::Status::serviceUnavailable(
      "storage is (re)initializing: the watch cache of " + info_.resource +
      " is catching up with the store (" + why + ")");
  st.retryAfterSeconds = 1;
  return st;
}

bool WatchCache::ready() const {
  std::lock_guard lock(mu_);
  return !recovering_;
}

void WatchCache::apply(const store::Event& event) {
  const int64_t revision = event.kv.modRevision;
  CachedPtr previous;
  if (auto it = objects_.find(event.kv.key); it != objects_.end()) previous = it->second;
  CachedPtr object;
  EventType type;
  if (event.type == store::Event::Type::kPut) {
    object = makeRetained(event.kv.key, event.kv.value, revision, previous.get(),
                          dynamic_cast<const WrittenVersion*>(event.attachment.get()));
    type = event.kv.version == 1 || !previous ? EventType::kAdded : EventType::kModified;
    objects_[event.kv.key] = object;
  } else {
    if (!event.prevKv && !previous) {
      revision_ = std::max(revision_, revision);
      return;
    }
    object = makeRetained(event.kv.key, event.prevKv ? event.prevKv->value : previous->json(), revision,
                          previous.get());
    type = EventType::kDeleted;
    objects_.erase(event.kv.key);
  }
  revision_ = std::max(revision_, revision);
  lastChange_ = revision;
  SelectablePtr replaced = previous ? previous->selectable : nullptr;
  previous.reset();  // the replaced version's text goes once no history entry holds it
  history_.push_back({revision, type, object, replaced});
  // What the history holds beyond the current objects: each version's own footprint (a
  // version that is still current costs nothing extra, but is counted: it will be replaced).
  historyBytes_ += object->footprint;
  constexpr size_t kMinHistory = 100;
  while (history_.size() > capacity_ ||
         (historyBytes_ > maxHistoryBytes_ && history_.size() > kMinHistory)) {
    oldestRevision_ = history_.front().revision;
    historyBytes_ -= history_.front().object->footprint;
    history_.pop_front();
  }
  dispatch(type, object, replaced.get());
}

bool WatchCache::deliverTransition(CacheWatcher& w, EventType type, const CachedPtr& object,
                       const Selectable* previous) {
  bool now = w.filter.matches(*object);
  bool before = previous && type != EventType::kAdded && w.filter.matches(*previous);
  if (type == EventType::kDeleted) return now ? w.deliver(EventType::kDeleted, object) : true;
  if (now && before) return w.deliver(EventType::kModified, object);
  if (now) return w.deliver(EventType::kAdded, object);
  if (before) return w.deliver(EventType::kDeleted, object);
  return true;
}

void WatchCache::dispatch(EventType type, const CachedPtr& object, const Selectable* previous) {
  auto it = watchers_.begin();
  while (it != watchers_.end()) {
    it = deliverTransition(**it, type, object, previous) ? it + 1 : watchers_.erase(it);
  }
  object->releaseFrames();
}

api::Status WatchCache::waitUntilFresh(int64_t revision, std::chrono::milliseconds timeout) {
  if (mode_ == Mode::kUncached) return {};  // the store is always current
  std::unique_lock lock(mu_);
  auto done = [&] { return stopping_ || (!recovering_ && revision_ >= revision); };
  if (!done() && !recovering_) {
    // (A recovering cache relists; progress on its old watch would not help it.)
    // The store tells an idle prefix's watch of newer revisions only now and then; ask it
    // now (outside our lock: its watch threads call back into this cache).
    lock.unlock();
    store_.requestProgress(revision);
    lock.lock();
  }
  if (!fresh_.wait_for(lock, timeout, done)) {
    // Still re-initializing: fail fast with 503 rather than serve what may be stale.
    if (recovering_) return notReadyStatus();
    api::Status st(504, api::reason::kTimeout,
                   "Timeout: Too large resource version: " + std::to_string(revision) +
                       ", current: " + std::to_string(revision_));
    st.retryAfterSeconds = 1;
    return st;
  }
  if (stopping_) return api::Status::serviceUnavailable("the server is shutting down");
  return {};
}

void WatchCache::noteLocalWrite(int64_t revision) {
  int64_t seen = lastLocalWrite_.load(std::memory_order_relaxed);
  while (revision > seen && !lastLocalWrite_.compare_exchange_weak(seen, revision, std::memory_order_release)) {
  }
}

int64_t WatchCache::lastChangeRevision() const {
  // Uncached: not tracked; the store's revision is never older than the resource's last change.
  if (mode_ == Mode::kUncached) return storeRevision();
  std::lock_guard lock(mu_);
  return lastChange_;
}

int64_t WatchCache::revision() const {
  if (mode_ == Mode::kUncached) return storeRevision();
  std::lock_guard lock(mu_);
  return revision_;
}

WatchCache::ListResult WatchCache::list(const Filter& filter, const std::string& afterKey,
                                        int64_t limit) const {
  if (mode_ == Mode::kUncached) return listFromStore(filter, afterKey, limit);
  ListResult result;
  std::lock_guard lock(mu_);
  result.revision = revision_;
  // Namespaced lists only walk their namespace's key range.
  std::string prefix = info_.storagePrefix;
  if (!filter.ns.empty() && info_.namespaced) prefix += filter.ns + "/";
  auto it = afterKey.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(afterKey);
  if (!afterKey.empty() && afterKey < prefix) it = objects_.lower_bound(prefix);
  for (; it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (!filter.matches(*it->second)) continue;
    if (limit > 0 && static_cast<int64_t>(result.items.size()) >= limit) {
      if (!result.more) {
        result.more = true;
        result.nextKey = result.items.back()->key();
      }
      ++result.remaining;
      continue;
    }
    result.items.push_back(it->second);
  }
  return result;
}

CachedPtr WatchCache::get(const std::string& key) const {
  if (mode_ == Mode::kUncached) return getFromStore(key);
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

api::Status WatchCache::addWatcher(std::shared_ptr<CacheWatcher> watcher, int64_t fromRevision,
                                   bool initialEvents, bool initialEventsEndBookmark) {
  if (mode_ == Mode::kUncached) {
    return addDirectWatcher(std::move(watcher), fromRevision, initialEvents, initialEventsEndBookmark);
  }
  std::unique_lock lock(mu_);
  if (recovering_ && !fresh_.wait_for(lock, std::chrono::seconds(3),
                                      [&] { return stopping_ || !recovering_; })) {
    return notReadyStatus();
  }
  if (stopping_) return api::Status::serviceUnavailable("the server is shutting down");
  if (initialEvents) {
    std::string prefix = info_.storagePrefix;
    if (!watcher->filter.ns.empty() && info_.namespaced) prefix += watcher->filter.ns + "/";
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (!watcher->filter.matches(*it->second)) continue;
      bool open = watcher->deliver(EventType::kAdded, it->second);
      it->second->releaseFrames();
      if (!open) return {};
    }
    // sendInitialEvents: a bookmark tells the client its initial list is complete.
    if (initialEventsEndBookmark && !watcher->bookmark(revision_)) return {};
  } else {
    if (fromRevision < oldestRevision_) {
      return api::Status::expired("too old resource version: " + std::to_string(fromRevision) +
                                  " (" + std::to_string(oldestRevision_) + ")");
    }
    for (const auto& entry : history_) {
      if (entry.revision <= fromRevision) continue;
      bool open = deliverTransition(*watcher, entry.type, entry.object, entry.previous.get());
      entry.object->releaseFrames();
      if (!open) return {};
    }
  }
  watchers_.push_back(std::move(watcher));
  return {};
}

void WatchCache::removeWatcher(const CacheWatcher* watcher) {
  if (mode_ == Mode::kUncached) return removeDirectWatcher(watcher);
  std::lock_guard lock(mu_);
  watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                 [&](const auto& w) { return w.get() == watcher; }),
                  watchers_.end());
}

void WatchCache::sweep(std::chrono::steady_clock::time_point now, bool bookmarks) {
  if (mode_ == Mode::kUncached) return sweepDirect(now, bookmarks);
  std::lock_guard lock(mu_);
  auto it = watchers_.begin();
  while (it != watchers_.end()) {
    auto& w = **it;
    if (now >= w.deadline) {
      w.finish();
      it = watchers_.erase(it);
      continue;
    }
    bool keep = !bookmarks || !w.wantsBookmarks || w.bookmark(revision_);
    it = keep ? it + 1 : watchers_.erase(it);
  }
}

size_t WatchCache::watcherCount() const {
  std::lock_guard lock(mu_);
  return watchers_.size() + direct_.size();
}

}  // namespace orrery::apiserver
