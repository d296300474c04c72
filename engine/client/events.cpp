#include "engine/client/events.h"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"

namespace orrery::client {

using nlohmann::json;

namespace {

constexpr size_t kMaxQueuedEvents = 1000;


const api::GroupVersionResource kEvents{"", "v1", "events"};
// client-go's correlator: repeats within this window update the existing Event.
constexpr auto kAggregationWindow = std::chrono::minutes(10);
constexpr size_t kCacheSize = 4096;

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

  // What was written for each (object, type, reason, message, source) key: a small LRU.
  struct Seen {
    std::string name, ns;
    int64_t count = 0;
    std::string firstTimestamp;
    std::chrono::system_clock::time_point last;
  };
  std::list<std::string> lru;  // most recent first
  std::unordered_map<std::string, std::pair<Seen, std::list<std::string>::iterator>> seen;

  void remember(const std::string& key, Seen value) {
    if (auto it = seen.find(key); it != seen.end()) {
      lru.erase(it->second.second);
      seen.erase(it);
    }
    lru.push_front(key);
    seen.emplace(key, std::make_pair(std::move(value), lru.begin()));
    while (seen.size() > kCacheSize) {
      seen.erase(lru.back());
      lru.pop_back();
    }
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
    std::string key = str(p.involved, "uid") + "\x1f" + str(p.involved, "kind") + "\x1f" +
                      str(p.involved, "namespace") + "\x1f" + str(p.involved, "name") + "\x1f" + p.type +
                      "\x1f" + p.reason + "\x1f" + p.message + "\x1f" + component + "\x1f" + host;
    std::string now = api::formatTime(p.at);
    Seen next{"", ns, 1, now, p.at};
    if (auto it = seen.find(key); it != seen.end() && p.at - it->second.first.last < kAggregationWindow) {
      next = it->second.first;
      next.count++;
      next.last = p.at;
      json patch = {{"count", next.count}, {"lastTimestamp", now}, {"message", p.message}};
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
    } else {
      next.name = eventName(str(p.involved, "name"), p.at);
    }
    json event = {{"apiVersion", "v1"},
                  {"kind", "Event"},
                  {"metadata", {{"name", next.name}, {"namespace", ns}}},
                  {"involvedObject", p.involved},
                  {"reason", p.reason},
                  {"message", p.message},
                  {"source", host.empty() ? json{{"component", component}}
                                          : json{{"component", component}, {"host", host}}},
                  {"firstTimestamp", next.firstTimestamp},
                  {"lastTimestamp", now},
                  {"count", next.count},
                  {"type", p.type},
                  {"eventTime", nullptr},
                  {"reportingComponent", component},
                  {"reportingInstance", host}};
    auto created = client->create(kEvents, ns, event);
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
  state_->cv.notify_one();
}

void EventRecorder::flush() {
  std::unique_lock lock(state_->mu);
  state_->idle.wait(lock, [this] { return state_->queue.empty() && !state_->busy; });
}

}  // namespace orrery::client
