#pragma once
// kube-controller-manager's node lifecycle controller (pkg/controller/nodelifecycle) with the
// taint-based eviction of its taint manager (pkg/controller/tainteviction):
//  - every nodeMonitorPeriod it checks each node's heartbeats (its Lease in kube-node-lease and
//    its Ready condition's lastHeartbeatTime); a node silent for nodeMonitorGracePeriod gets
//    Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown ("NodeStatusUnknown",
//    "Kubelet stopped posting node status."), its pods marked not Ready, and a NodeNotReady
//    event;
//  - a node whose Ready is False or Unknown is tainted node.kubernetes.io/not-ready or
//    node.kubernetes.io/unreachable with effect NoExecute, through per-zone rate-limited queues
//    (--node-eviction-rate, --secondary-node-eviction-rate, --unhealthy-zone-threshold,
//    --large-cluster-size-threshold); when every zone is fully disrupted it stops tainting and
//    untaints all (kube's "master disruption mode"); recovery removes the taints;
//  - NoSchedule taints follow the conditions (not-ready, unreachable, memory-pressure,
//    disk-pressure, pid-pressure, network-unavailable) and spec.unschedulable;
//  - pods on a node with NoExecute taints they do not tolerate are deleted at once (with a
//    DisruptionTarget condition and a TaintManagerEviction event), those that tolerate them
//    for tolerationSeconds after that long.

#include <chrono>
#include <memory>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

struct NodeLifecycleOptions {
  /// --node-monitor-period.
  std::chrono::milliseconds nodeMonitorPeriod{5000};
  /// --node-monitor-grace-period.
  std::chrono::milliseconds nodeMonitorGracePeriod{40000};
  /// --node-startup-grace-period: for a node that never posted a Ready condition.
  std::chrono::milliseconds nodeStartupGracePeriod{60000};
  /// --node-eviction-rate (nodes tainted per second per zone, burst 1).
  double evictionRate = 0.1;
  /// --secondary-node-eviction-rate: in a partially disrupted zone larger than
  /// largeClusterThreshold (0 for smaller zones).
  double secondaryEvictionRate = 0.01;
  /// --unhealthy-zone-threshold.
  double unhealthyZoneThreshold = 0.55;
  /// --large-cluster-size-threshold.
  int largeClusterThreshold = 50;
  /// How often the NoExecute tainting queue is processed (kube: 100 ms).
  std::chrono::milliseconds evictionPeriod{100};
};

/// The "nodelifecycle" controller (events as "node-controller", as kube's).
std::unique_ptr<Controller> newNodeLifecycleController(NodeLifecycleOptions options = {});

}  // namespace orrery::controllers
