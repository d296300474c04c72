#include "engine/client/events.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"

namespace orrery::client {

using nlohmann::json;

namespace {

constexpr size_t kMaxQueuedEvents = 1000;


const api::GroupVersionResource kEvents{"", "v1", "events"};
// client-go's EventCorrelator, with its defaults (tools/record/events_cache.go):
// - repeats of one event within this window update the existing Event (count, lastTimestamp);
constexpr auto kAggregationWindow = std::chrono::minutes(10);
// - once 10 events about one object differ only in their message within the window, they are
//   written as one Event "(combined from similar events): <latest message>";
constexpr size_t kAggregateMaxEvents = 10;
constexpr const char* kCombinedPrefix = "(combined from similar events): ";
// - a source may write 25 events about one object, then one more every 5 minutes.
constexpr double kSpamBurst = 25;
constexpr double kSpamRefillPerSecond = 1.0 / 300.0;
constexpr size_t kCacheSize = 4096;  // entries in each of the correlator's LRU caches

/// A map that keeps its `capacity` most recently used entries (groupcache's lru.Cache, as the
/// correlator's caches are).
template <typename Value>
class Lru {
 public:
  /// The entry for `key`, created empty when absent; it becomes the most recent.
  Value& touch(const std::string& key) {
    if (auto it = entries_.find(key); it != entries_.end()) {
      order_.splice(order_.begin(), order_, it->second.second);
      return it->second.first;
    }
    order_.push_front(key);
    auto& entry = entries_.emplace(key, std::make_pair(Value{}, order_.begin())).first->second;
    while (entries_.size() > kCacheSize) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
    return entry.first;
  }
  const Value* find(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second.first;
  }

 private:
  std::list<std::string> order_;  // most recent first
  std::unordered_map<std::string, std::pair<Value, std::list<std::string>::iterator>> entries_;
};

std::string str(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

struct EventRecorder::State {
  std::shared_ptr<Client> client;
  std::string component;
  std::string host;

  struct Pending {
    json involved;  // involvedObject
    std::string type, reason, message;
    std::chrono::system_clock::time_point at;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable idle;
  std::deque<Pending> queue;
  bool busy = false;
  bool stopping = false;
  std::thread thread;

  // The event logger: what was written for each (source, object, type, reason, message).
  struct Seen {
    std::string name, ns;
    int64_t count = 0;
    std::string firstTimestamp;
    std::chrono::system_clock::time_point last;
  };
  Lru<Seen> seen;
  void remember(const std::string& key, Seen value) { seen.touch(key) = std::move(value); }

  // The aggregator: per (source, object, type, reason), the messages seen in the window.
  struct Similar {
    std::set<std::string> messages;
    std::chrono::system_clock::time_point last;
  };
  Lru<Similar> similar;

  // The spam filter: a token bucket per (source, object).
  struct Bucket {
    double tokens = kSpamBurst;
    std::chrono::system_clock::time_point refilled;
    bool used = false;
  };
  Lru<Bucket> buckets;
  bool spamAllows(const std::string& key, std::chrono::system_clock::time_point at) {
    Bucket& b = buckets.touch(key);
    if (!b.used) {
      b.used = true;
      b.refilled = at;
    }
    double seconds = std::chrono::duration<double>(at - b.refilled).count();
    if (seconds > 0) {
      b.tokens = std::min(kSpamBurst, b.tokens + seconds * kSpamRefillPerSecond);
      b.refilled = at;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  std::string eventName(const std::string& objectName, std::chrono::system_clock::time_point at) {
    // "<name>.<nanoseconds in hex>", as client-go names events; bumped so names never repeat.
    auto nanos = static_cast<unsigned long long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count());
    if (nanos <= lastNanos) nanos = lastNanos + 1;
    lastNanos = nanos;
    char hex[32];
    std::snprintf(hex, sizeof hex, "%llx", nanos);
    return objectName + "." + hex;
  }
  unsigned long long lastNanos = 0;

  void write(const Pending& p) {
    std::string ns = str(p.involved, "namespace");
    if (ns.empty()) ns = "default";  // events about cluster-scoped objects live in default
    // The correlator's steps, in client-go's order: aggregate, observe, then filter spam.
    const std::string spamKey = component + "\x1f" + host + "\x1f" + str(p.involved, "kind") + "\x1f" +
                                str(p.involved, "namespace") + "\x1f" + str(p.involved, "name") + "\x1f" +
                                str(p.involved, "uid") + "\x1f" + str(p.involved, "apiVersion");
    const std::string aggregateKey = spamKey + "\x1f" + p.type + "\x1f" + p.reason;
    std::string key = aggregateKey + "\x1f" + p.message;
    std::string message = p.message;
    Similar& group = similar.touch(aggregateKey);
    if (p.at - group.last > kAggregationWindow) group.messages.clear();
    group.messages.insert(p.message);
    group.last = p.at;
    if (group.messages.size() >= kAggregateMaxEvents) {
      group.messages.erase(group.messages.begin());  // the set never grows past the limit
      message = kCombinedPrefix + p.message;
      key = aggregateKey;  // every later one updates the combined Event
    }

    std::string now = api::formatTime(p.at);
    Seen next{"", ns, 1, now, p.at};
    const Seen* last = seen.find(key);
    const bool repeat = last && p.at - last->last < kAggregationWindow;
    if (repeat) {
      next = *last;
      next.count++;
      next.last = p.at;
    } else {
      next.name = eventName(str(p.involved, "name"), p.at);
    }
    if (!spamAllows(spamKey, p.at)) {
      remember(key, next);  // observed, as client-go's logger does, but not written
      return;
    }
    if (repeat) {
      json patch = {{"count", next.count}, {"lastTimestamp", now}, {"message", message}};
      auto patched = client->patch(kEvents, next.ns, next.name, PatchType::kMerge, patch.dump());
      if (patched.ok()) {
        remember(key, next);
        return;
      }
      if (patched.status().code() != 404) {
        spdlog::warn("events: cannot update event {}/{}: {}", next.ns, next.name, patched.status().message());
        return;
      }
      // Deleted meanwhile: written again under its name with the count so far, as client-go does.
    }
    json event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", next.name}, {"namespace", ns}}},
                  {"involvedObject", p.involved},
                  {"reason", p.reason},
                  {"message", message},
                  {"source", host.empty() ? json{{"component", component}}
                                          : json{{"component", component}, {"host", host}}},
                  {"firstTimestamp", next.firstTimestamp},
                  {"lastTimestamp", now},
                  {"count", next.count},
                  {"type", p.type},
                  {"eventTime", nullptr},
                  {"reportingComponent", component},
                  {"reportingInstance", host}};
    auto created = client->create(kEvents, ns, std::move(event));
    if (!created.ok()) {
      spdlog::warn("events: cannot write event {} about {} {}/{}: {}", p.reason, str(p.involved, "kind"), ns,
                   str(p.involved, "name"), created.status().message());
      return;
    }
    remember(key, next);
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty()) break;  // stopping and drained
      Pending p = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      try {
        write(p);
      } catch (const std::exception& e) {
        spdlog::warn("events: {}", e.what());
      }
      lock.lock();
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
    idle.notify_all();
  }
};

EventRecorder::EventRecorder(std::shared_ptr<Client> client, std::string component, std::string host)
    : state_(std::make_shared<State>()) {
  state_->client = std::move(client);
  state_->component = std::move(component);
  state_->host = std::move(host);
  // The writer thread starts with the first event: most of a control plane's recorders
  // (one per controller) never record one, and an idle thread still costs its stack.
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    state_->cv.notify_all();
  }
  if (state_->thread.joinable()) state_->thread.join();
}

void EventRecorder::record(const json& object, const std::string& type, const std::string& reason,
                           const std::string& message) {
  {
    // A full queue drops the event (below): then it is not worth building. In a burst that is
    // most of them.
    std::lock_guard lock(state_->mu);
    if (state_->stopping || state_->queue.size() >= kMaxQueuedEvents) return;
  }
  State::Pending p;
  json involved = json::object();
  if (object.is_object()) {
    if (auto v = str(object, "kind"); !v.empty()) involved["kind"] = v;
    auto meta = object.find("metadata");
    if (meta != object.end() && meta->is_object()) {
      if (auto v = str(*meta, "namespace"); !v.empty()) involved["namespace"] = v;
      if (auto v = str(*meta, "name"); !v.empty()) involved["name"] = v;
      if (auto v = str(*meta, "uid"); !v.empty()) involved["uid"] = v;
    }
    if (auto v = str(object, "apiVersion"); !v.empty()) involved["apiVersion"] = v;
    if (meta != object.end() && meta->is_object()) {
      if (auto v = str(*meta, "resourceVersion"); !v.empty()) involved["resourceVersion"] = v;
    }
  }
  p.involved = std::move(involved);
  p.type = type;
  p.reason = reason;
  p.message = message;
  p.at = std::chrono::system_clock::now();
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    // As client-go's broadcaster: at most 1,000 events wait; beyond that new ones are dropped,
    // so a burst (10,000 pods scheduled at once) cannot grow memory or delay shutdown.
    if (state_->queue.size() >= kMaxQueuedEvents) return;
    state_->queue.push_back(std::move(p));
    if (!state_->thread.joinable()) {
      auto state = state_;
      state_->thread = std::thread([state] { state->run(); });
    }
  }
  state_->cv.notify_one();  // after unlocking: the writer thread would block on `mu` again
}

void EventRecorder::flush() {
  std::unique_lock lock(state_->mu);
  state_->idle.wait(lock, [this] { return state_->queue.empty() && !state_->busy; });
}

}  // namespace orrery::client
