#pragma once
// Fan-out of independent API calls, as client-go's workqueue.ParallelizeUntil: controllers
// (a ReplicaSet's pod creations and deletions) and the simulated nodes (removing many nodes
// at once) issue calls that each wait for the store to make them durable, and the store
// commits those in flight together.

#include <functional>

namespace orrery::client {

/// Runs fn(i) for every i in [0, n) on up to `workers` threads (just the caller's when one is
/// enough) and returns once all have run. fn must be safe to call concurrently.
void parallelize(int n, int workers, const std::function<void(int)>& fn);

}  // namespace orrery::client
