#pragma once
// Every scheduling attempt's DecisionRecord, kept per pod (the last `perPod` attempts) and
// bounded in memory across all pods (oldest dropped first), served as read-only API objects:
// scheduling.orrery.dev/v1alpha1 SchedulingAttempt, namespaced, named "<pod>-<attempt>".
// get/list mirror apiserver::ObjectProvider so the control plane can serve the history with a
// two-line adapter (this library does not link the API server).

#include <chrono>
#include <condition_variable>
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
  /// `revision` (optional) receives the history's revision, read with the list.
  std::vector<nlohmann::json> list(const std::string& ns, int64_t* revision = nullptr);

  /// What a watch of SchedulingAttempts is told: an attempt added (kept), amended, or dropped
  /// (by the budget, the per-pod bound, or a new pod under the same name). `object` is the
  /// SchedulingAttempt: as it is now for ADDED and MODIFIED, its last metadata and spec for
  /// DELETED.
  struct Change {
    std::string type;  // "ADDED", "MODIFIED", "DELETED"
    int64_t revision = 0;
    nlohmann::json object;
  };
  /// The changes after `revision`, oldest first, up to the history's current revision (which
  /// `current` receives). False when changes after `revision` are no longer remembered (the
  /// last `kChangesKept`): a watch from there must start over (410 Expired).
  bool changesSince(int64_t revision, std::vector<Change>* out, int64_t* current) const;
  /// Waits until the history's revision passes `revision`, or until `deadline`.
  void waitForChange(int64_t revision, std::chrono::steady_clock::time_point deadline) const;
  /// The revision of the last change (lists report it as their resourceVersion).
  int64_t revision() const;
  static constexpr size_t kChangesKept = 4096;

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
    /// The record without its nodes and scores (never changed once stored: amend() replaces
    /// it). Scores are kept in the narrowest of
    /// `scores16`, `scores32` or the record's own int64 `scores` that holds them all: raw
    /// and normalized scores are mostly 0-100.
    std::shared_ptr<const DecisionRecord> record;
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
  uint16_t internPluginLocked(const std::string& plugin);
  struct PodHistory {
    std::string uid;
    int32_t lastAttempt = 0;
    std::deque<Stored> attempts;  // attempt order
  };
  using PodKey = std::pair<std::string, std::string>;  // namespace, pod name

  /// A stored attempt copied out under the lock with the interned names it refers to, so that
  /// its object is built after the lock is released: a `kubectl get` or watch of thousands of
  /// attempts never holds up the scheduling cycles adding the next ones. (A stored record is
  /// never changed in place, so the copy can share it.)
  struct Detached {
    Stored stored;
    std::shared_ptr<const std::vector<std::string>> plugins;
    std::unordered_map<uint32_t, std::vector<std::string>> reasons;  // the reason lists it uses
  };
  Detached detachLocked(const Stored& stored) const;
  static std::shared_ptr<const DecisionRecord> expand(const Detached& detached);
  static nlohmann::json toObject(const Detached& detached);
  void dropOldestLocked();
  /// Drops a pod's oldest stored attempt and notes the deletion.
  void popFrontLocked(const PodKey& pod, PodHistory& history);
  /// Notes a change at a new revision (the revision it took). `dropped`: the attempt a
  /// DELETED change drops.
  int64_t noteLocked(const char* type, const PodKey& pod, int32_t attempt, const Stored* dropped);
  /// What names an attempt beyond its pod and number (kept for a dropped one's DELETED event).
  struct AttemptIdentity {
    std::string uid, podUid, profile;
    std::chrono::system_clock::time_point created;
  };
  /// A change as the log keeps it: which attempt, not its object (built when a watch reads it).
  struct LoggedChange {
    const char* type;
    int64_t revision;
    PodKey pod;
    int32_t attempt;
    std::unique_ptr<AttemptIdentity> dropped;  // DELETED only
  };
  /// A SchedulingAttempt's apiVersion, kind, metadata and spec.
  static nlohmann::json identityObject(const std::string& ns, const std::string& pod, int32_t attempt,
                                       const AttemptIdentity& identity, int64_t resourceVersion);

  Options options_;
  mutable std::mutex mu_;
  std::map<PodKey, PodHistory> pods_;
  /// Insertion order across pods, for the global bound: (pod, attempt).
  std::deque<std::pair<PodKey, int32_t>> order_;
  int64_t bytes_ = 0;
  size_t count_ = 0;
  int64_t resourceVersion_ = 0;
  /// The last kChangesKept changes, for watches; `changed_` wakes them.
  std::deque<LoggedChange> changes_;
  mutable std::condition_variable changed_;
  /// Interned plugin names and reason lists (node names are interned process-wide). They grow
  /// with the distinct names ever seen, not with the attempts.
  /// plugins_ is replaced, never appended to, so that a Detached can hold the list it saw.
  std::shared_ptr<const std::vector<std::string>> plugins_ = std::make_shared<const std::vector<std::string>>(1);
  std::vector<std::vector<std::string>> reasonLists_{{}};
  std::map<std::vector<std::string>, uint32_t> reasonListIds_{{{}, 0}};
};

}  // namespace orrery::scheduler
