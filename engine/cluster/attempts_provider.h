#pragma once
// The scheduler's decision history as the API server's read-only, watchable
// SchedulingAttempts (scheduling.orrery.dev/v1alpha1): the adapter between
// scheduler::DecisionHistory and apiserver::ObjectProvider, which know nothing of each other.

#include <memory>
#include <utility>

#include "engine/apiserver/apiserver.h"
#include "engine/scheduler/decision_history.h"

namespace orrery::cluster {

class AttemptsProvider : public apiserver::ObjectProvider {
 public:
  explicit AttemptsProvider(std::shared_ptr<scheduler::DecisionHistory> history) : history_(std::move(history)) {}
  std::optional<nlohmann::json> get(const std::string& ns, const std::string& name) override {
    return history_->get(ns, name);
  }
  std::vector<nlohmann::json> list(const std::string& ns) override { return history_->list(ns); }
  bool watchable() const override { return true; }
  int64_t revision() override { return history_->revision(); }
  std::vector<nlohmann::json> listAt(const std::string& ns, int64_t* revision) override {
    return history_->list(ns, revision);
  }
  bool changesSince(int64_t revision, std::vector<Change>* out, int64_t* current) override {
    std::vector<scheduler::DecisionHistory::Change> changes;
    if (!history_->changesSince(revision, &changes, current)) return false;
    for (auto& c : changes) out->push_back({std::move(c.type), c.revision, std::move(c.object)});
    return true;
  }
  void waitForChange(int64_t revision, std::chrono::steady_clock::time_point deadline) override {
    history_->waitForChange(revision, deadline);
  }

 private:
  std::shared_ptr<scheduler::DecisionHistory> history_;
};

}  // namespace orrery::cluster
