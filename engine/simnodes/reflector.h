#pragma once
// A list+watch loop that keeps no cache: it hands every listed item and every watch event to
// its handlers, re-watches from the last resourceVersion when a watch ends, and relists on 410
// Gone (the handlers then see a new list and drop what it no longer holds). The simulated nodes
// use it to keep compact structs instead of an informer's JSON copy of each object.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/client/client.h"

namespace orrery::simnodes {

class Reflector {
 public:
  struct Handlers {
    /// A (re)list starts; items follow, then onListEnd.
    std::function<void()> onListBegin;
    std::function<void(const nlohmann::json& item)> onListItem;
    std::function<void()> onListEnd;
    /// type: ADDED, MODIFIED, DELETED. Runs on a transport thread, one event at a time. The
    /// object comes without metadata.managedFields (no handler reads them).
    std::function<void(const std::string& type, const nlohmann::json& object)> onEvent;
  };

  Reflector(std::shared_ptr<client::Client> client, api::GroupVersionResource gvr,
            client::ListOptions selectors, Handlers handlers, std::string name);
  ~Reflector();
  void start();
  /// After stop() returns no handler runs.
  void stop();
  bool waitForSync(std::chrono::milliseconds timeout);

 private:
  void run();
  bool listAll();

  std::shared_ptr<client::Client> client_;
  api::GroupVersionResource gvr_;
  client::ListOptions selectors_;
  Handlers handlers_;
  std::string name_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool synced_ = false;
  bool watchEnded_ = false;
  bool gone_ = false;
  std::string lastRv_;
  std::thread thread_;
  // Serializes handler calls with stop(): a handler never runs once stop() has returned.
  std::mutex handlerMu_;
};

}  // namespace orrery::simnodes
