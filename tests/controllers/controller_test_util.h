#pragma once
// Shared by the controller tests: a temp-dir API server over the in-process transport, and
// polling until the cluster reaches a state.

#include <chrono>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"
#include "engine/client/client.h"

namespace orrery::testing {

/// Polls `condition` every 20 ms until it holds or `timeout` passes; true if it held.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

/// The object, or null when the server answers 404 (any other error is null too).
inline nlohmann::json getOrNull(client::Client& c, const api::GroupVersionResource& gvr, const std::string& ns,
                                const std::string& name) {
  auto r = c.get(gvr, ns, name);
  return r.ok() ? *r : nlohmann::json(nullptr);
}

inline bool gone(client::Client& c, const api::GroupVersionResource& gvr, const std::string& ns,
                 const std::string& name) {
  auto r = c.get(gvr, ns, name);
  return !r.ok() && r.status().code() == 404;
}

}  // namespace orrery::testing
