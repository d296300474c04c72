#pragma once
// Every scheduling attempt's DecisionRecord, kept per pod (the last `perPod` attempts) and
// bounded in memory across all pods (oldest dropped first), served as read-only API objects:
// scheduling.orrery.dev/v1alpha1 SchedulingAttempt, namespaced, named "<pod>-<attempt>".
// get/list mirror apiserver::ObjectProvider so the control plane can serve the history with a
// two-line adapter (this library does not link the API server).

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

inline constexpr const char* kSchedulingGroup = "scheduling.orrery.dev";
inline constexpr const char* kSchedulingVersion = "v1alpha1";
inline constexpr const char* kSchedulingAttemptKind = "SchedulingAttempt";
/// Label on every SchedulingAttempt naming its pod (`kubectl get attempts -l ...=web-1`).
inline constexpr const char* kAttemptPodLabel = "scheduling.orrery.dev/pod";

class DecisionHistory {
 public:
  struct Options {
    int32_t perPod = 8;
    int64_t maxBytes = 16ll << 20;
  };
  explicit DecisionHistory(Options options);

  /// The attempt number the next record of this pod gets (1, 2, ...). A pod recreated under
  /// the same name (another uid) starts again at 1 and its predecessor's records are dropped.
  int32_t nextAttempt(const std::string& ns, const std::string& pod, const std::string& uid);
  /// Stores a record (its podNamespace/podName/podUid/attempt set); stamps uid,
  /// creationTimestamp and resourceVersion of the API object.
  void add(DecisionRecord record);
  /// Amends a stored attempt's result and message (the binding that followed a successful
  /// cycle failed). No-op if the record is gone.
  void amend(const std::string& ns, const std::string& pod, int32_t attempt, const std::string& result,
             const std::string& message);

  /// The SchedulingAttempt "<pod>-<attempt>" in `ns`, or nullopt.
  std::optional<nlohmann::json> get(const std::string& ns, const std::string& name);
  /// Every SchedulingAttempt of `ns` ("" = all namespaces).
  std::vector<nlohmann::json> list(const std::string& ns);

  /// A pod's records, oldest first (tests, UI).
  std::vector<std::shared_ptr<const DecisionRecord>> records(const std::string& ns, const std::string& pod) const;
  size_t size() const;
  int64_t bytes() const;

 private:
  /// A NodeDecision as stored, 16 bytes: node names (internNodeName), plugin names and reason
  /// lists interned.
  /// Its total is not stored: it is the sum of the node's weighted scores, recomputed when
  /// the record is read (unless it was not; then Stored::totals keeps them).
  struct StoredNode {
    uint32_t node = 0;       // internNodeName id
    int32_t scoreRow = -1;
    uint32_t reasons = 0;    // reasonLists_ index; 0: none
    uint16_t rejectedBy = 0; // plugins_ id; 0: passed
    bool unresolvable = false;
  };
  struct Stored {
    /// The record without its nodes and scores. Scores are kept in the narrowest of
    /// `scores16`, `scores32` or the record's own int64 `scores` that holds them all: raw
    /// and normalized scores are mostly 0-100.
    std::shared_ptr<DecisionRecord> record;
    std::vector<StoredNode> nodes;
    std::vector<int16_t> scores16;
    std::vector<int32_t> scores32;
    std::vector<int64_t> totals;  // only when a total is not the sum of weighted scores
    std::string uid;
    int64_t resourceVersion = 0;
    std::chrono::system_clock::time_point created;
    size_t bytes = 0;
  };
  /// Moves `record`'s nodes and scores into their compact form in `stored`.
  void compactLocked(DecisionRecord& record, Stored& stored);
  /// The whole record again.
  std::shared_ptr<const DecisionRecord> expandLocked(const Stored& stored) const;
  uint16_t internPluginLocked(const std::string& plugin);
  struct PodHistory {
    std::string uid;
    int32_t lastAttempt = 0;
    std::deque<Stored> attempts;  // attempt order
  };
  using PodKey = std::pair<std::string, std::string>;  // namespace, pod name

  nlohmann::json toObject(const Stored& stored) const;
  void dropOldestLocked();

  Options options_;
  mutable std::mutex mu_;
  std::map<PodKey, PodHistory> pods_;
  /// Insertion order across pods, for the global bound: (pod, attempt).
  std::deque<std::pair<PodKey, int32_t>> order_;
  int64_t bytes_ = 0;
  size_t count_ = 0;
  int64_t resourceVersion_ = 0;
  /// Interned plugin names and reason lists (node names are interned process-wide). They grow
  /// with the distinct names ever seen, not with the attempts.
  std::vector<std::string> plugins_{""};
  std::vector<std::vector<std::string>> reasonLists_{{}};
  std::map<std::vector<std::string>, uint32_t> reasonListIds_{{{}, 0}};
};

}  // namespace orrery::scheduler
