#pragma once
// Helpers the controllers share: the "controllers" logger, owner references and controller
// references, finalizers, pod readiness, kube's creation/deletion expectations, a kind →
// resource mapper and the discovery of served resources.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/api/resource.h"
#include "engine/api/status.h"
#include "engine/client/client.h"
#include "engine/client/informer.h"

namespace orrery::controllers {

/// The spdlog logger every controller logs to ("controllers").
std::shared_ptr<spdlog::logger> logger();

// ---- Reading objects.
//
// The controllers read objects the API server has validated, so an absent or mistyped member
// reads as null, "" or the given default instead of failing.

/// object[key], or null when `object` is not an object or has no such member (no copy).
const nlohmann::json& field(const nlohmann::json& object, const char* key);
/// object[a][b], as above.
const nlohmann::json& field(const nlohmann::json& object, const char* a, const char* b);
/// object[a][b] when it is a string, else "".
std::string strField(const nlohmann::json& object, const char* a, const char* b);
/// object[a][b] when it is an integer, else `dflt`.
int64_t intField(const nlohmann::json& object, const char* a, const char* b, int64_t dflt = 0);
/// An RFC 3339 timestamp, or the zero time_point when `v` is not one.
std::chrono::system_clock::time_point timeField(const nlohmann::json& v);
/// The ownerReference entry with controller=true, or null (no copy).
const nlohmann::json* controllerRefOf(const nlohmann::json& object);
/// rand.SafeEncodeString: maps every byte into an alphabet without vowels or look-alikes, as
/// kube does to the hashes in pod-template-hash and controller-revision-hash.
std::string safeEncode(const std::string& s);

// ---- Finalizers and deletion state.

/// kube's well-known finalizers (metav1.FinalizerOrphanDependents / FinalizerDeleteDependents).
inline constexpr const char* kFinalizerOrphan = "orphan";
inline constexpr const char* kFinalizerForeground = "foregroundDeletion";

bool hasFinalizer(const nlohmann::json& object, const std::string& finalizer);
/// metadata.deletionTimestamp is set.
bool isBeingDeleted(const nlohmann::json& object);

// ---- Owner references.

/// One metadata.ownerReferences entry.
struct OwnerReference {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
  bool blockOwnerDeletion = false;

  static OwnerReference fromJson(const nlohmann::json& ref);
  nlohmann::json toJson() const;
};

std::vector<OwnerReference> ownerReferences(const nlohmann::json& object);
/// The owner reference with controller=true, if any (metav1.GetControllerOf).
std::optional<OwnerReference> controllerRef(const nlohmann::json& object);
/// A controller reference to `owner` (metav1.NewControllerRef: controller and
/// blockOwnerDeletion true). `owner` needs apiVersion, kind, metadata.name and uid.
nlohmann::json newControllerRef(const nlohmann::json& owner);

// ---- Pods.

/// The pod's condition of `type`, or null.
const nlohmann::json* podCondition(const nlohmann::json& pod, const std::string& type);
/// The pod's Ready condition is True (podutil.IsPodReady).
bool isPodReady(const nlohmann::json& pod);
/// Ready for at least minReadySeconds at `now` (podutil.IsPodAvailable).
bool isPodAvailable(const nlohmann::json& pod, int minReadySeconds,
                    std::chrono::system_clock::time_point now);
/// podutil.IsPodAvailable's rule for a pod that is Ready: it has been for longer than
/// minReadySeconds (`readySince`: its Ready condition's lastTransitionTime, when readable).
bool readyLongEnough(const std::optional<std::chrono::system_clock::time_point>& readySince, int64_t minReadySeconds,
                     std::chrono::system_clock::time_point now);
/// Not terminal (Succeeded/Failed) and not being deleted (controller.IsPodActive).
bool isPodActive(const nlohmann::json& pod);

/// The pod index by controller (controller.PodControllerUIDIndex): a pod with a controller
/// reference under its controller's uid, an orphan under orphanPodIndexKey(namespace). A
/// controller then reads its own pods and the orphans it may adopt, not the whole namespace.
inline constexpr const char* kPodControllerUidIndex = "podControllerUID";
std::string orphanPodIndexKey(const std::string& ns);
/// Adds the index to a pod informer (idempotent).
void addPodControllerUidIndex(client::Informer& pods);

// ---- Expectations (pkg/controller/controller_utils.go ControllerExpectations).

/// How many creations and deletions a controller still expects to observe per key, so that a
/// sync does not act twice on a cache that has not caught up with its own writes. Expectations
/// older than five minutes count as satisfied, as in kube. Thread-safe.
class Expectations {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Expectations(std::function<Clock::time_point()> now = [] { return Clock::now(); });
  /// True when nothing is pending for `key` (or the expectations expired, or none were set).
  bool satisfied(const std::string& key) const;
  /// Replaces the expectations of `key`.
  void expect(const std::string& key, int adds, int deletes);
  void expectCreations(const std::string& key, int adds) { expect(key, adds, 0); }
  void expectDeletions(const std::string& key, int deletes) { expect(key, 0, deletes); }
  void creationObserved(const std::string& key) { lower(key, 1, 0); }
  void deletionObserved(const std::string& key) { lower(key, 0, 1); }
  /// Expects the deletion of these pods (namespace/name keys). Each counts once, however often
  /// its deletion is observed (UIDTrackingControllerExpectations).
  void expectDeletions(const std::string& key, const std::vector<std::string>& podKeys);
  /// Lowers the count if `podKey` was one of the expected deletions.
  void deletionObserved(const std::string& key, const std::string& podKey);
  /// Lowers without an observation (a create that failed, so no event will come).
  void lower(const std::string& key, int adds, int deletes);
  void remove(const std::string& key);

 private:
  struct Entry {
    int adds = 0;
    int deletes = 0;
    std::set<std::string> deleting;  // pod keys, from expectDeletions(key, podKeys)
    Clock::time_point at;
  };
  std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// ---- Resources: kind → resource, discovery.

/// A served resource as discovery describes it.
struct DiscoveredResource {
  api::GroupVersionResource gvr;
  std::string kind;
  bool namespaced = true;
  std::vector<std::string> verbs;
  bool has(const std::string& verb) const;
};

/// What discoverResources() found; `error` is set (with what it could still find) when some
/// group could not be read, as client-go's ErrGroupDiscoveryFailed.
struct Discovery {
  std::vector<DiscoveredResource> resources;
  std::string error;
};

/// The resources of every group's preferred version (ServerPreferredResources), without
/// subresources. Fails only when not even the group list could be read.
api::Result<Discovery> discoverResources(client::Client& client);

/// Maps apiVersion + kind to the resource serving it: built-in kinds from the registry, others
/// (custom resources) from discovery, cached. Thread-safe.
class KindMapper {
 public:
  explicit KindMapper(std::shared_ptr<client::Client> client);
  api::Result<DiscoveredResource> resolve(const std::string& apiVersion, const std::string& kind);

 private:
  std::shared_ptr<client::Client> client_;
  std::shared_ptr<api::ResourceRegistry> builtin_;
  std::mutex mu_;
  std::map<std::string, DiscoveredResource> cache_;  // "apiVersion/kind"
};

/// "apps/v1" → {"apps", "v1"}; "v1" → {"", "v1"}.
std::pair<std::string, std::string> splitApiVersion(const std::string& apiVersion);

/// True for a 409 Conflict caused by a stale resourceVersion (not AlreadyExists).
bool isConflict(const api::Status& status);

}  // namespace orrery::controllers
