#pragma once
// kube-controller-manager's ReplicaSet controller: keeps spec.replicas active pods per
// ReplicaSet, adopting and releasing pods by selector and controllerRef, creating missing pods
// from the template in slow-start batches and deleting surplus ones in kube's preference order,
// with expectations so that a sync never acts twice on what the informer has not seen yet.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

/// The "replicaset" controller (events as "replicaset-controller").
std::unique_ptr<Controller> newReplicaSetController();

namespace replicaset {

/// The pods to delete when `pods` (the ReplicaSet's active pods) are `diff` too many, in
/// kube's order (ActivePodsWithRanks): unassigned before assigned, Pending < Unknown < Running,
/// not ready before ready, lower controller.kubernetes.io/pod-deletion-cost first, more
/// colocated `related` pods first, more recently ready first, more restarts first, newer
/// first (both times compared on a log2 scale of their age at `now`, ties broken by uid).
std::vector<nlohmann::json> podsToDelete(std::vector<nlohmann::json> pods,
                                         const std::vector<nlohmann::json>& related, int diff,
                                         std::chrono::system_clock::time_point now);

}  // namespace replicaset
}  // namespace orrery::controllers
