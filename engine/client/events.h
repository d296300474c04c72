#pragma once
// Records Events about objects the way client-go's event recorder does for core/v1 Events
// (what `kubectl describe` and `kubectl get events` show): the event is named
// "<object name>.<unique suffix>", and a repeat of the same (object, type, reason, message,
// source) within 10 minutes bumps `count` and `lastTimestamp` of the existing event instead of
// creating a new one. As client-go's correlator, once 10 events about one object differ only
// in their message within 10 minutes they are combined into one "(combined from similar
// events): ..." event, and a recorder writes at most 25 events about one object in a burst,
// then one every 5 minutes. Writing is asynchronous: record() never blocks the caller on the
// API.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/client/client.h"

namespace orrery::client {

class EventRecorder {
 public:
  /// `component` fills source.component and reportingController ("default-scheduler",
  /// "deployment-controller").
  EventRecorder(std::shared_ptr<Client> client, std::string component, std::string host = "");
  ~EventRecorder();
  /// `object` is the involved object (its kind, apiVersion, namespace, name, uid and
  /// resourceVersion are copied into involvedObject). type: "Normal" or "Warning".
  void record(const nlohmann::json& object, const std::string& type, const std::string& reason,
              const std::string& message);
  /// Waits until every recorded event has been written (tests, shutdown).
  void flush();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace orrery::client
