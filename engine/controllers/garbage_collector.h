#pragma once
// The garbage collector, as kube-controller-manager's (pkg/controller/garbagecollector): a
// graph of owners and dependents built from informers over every watched resource, and
// workers that act on it through the API:
//  - background: a dependent whose owners are all gone (404 or another uid, confirmed by a
//    live GET) is deleted, with the propagation its own finalizers ask for;
//  - foreground: an owner being deleted with the foregroundDeletion finalizer has its
//    dependents deleted (foreground in turn for those that have dependents), and loses the
//    finalizer once no dependent with blockOwnerDeletion is left;
//  - orphan: an owner being deleted with the orphan finalizer has its ownerReferences removed
//    from its dependents, then loses the finalizer.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

class GarbageCollector : public Controller {
 public:
  GarbageCollector();
  ~GarbageCollector() override;

  std::string name() const override { return "garbagecollector"; }
  std::string component() const override { return "garbage-collector-controller"; }
  Status setup(ControllerContext& context) override;
  /// Keys are "delete/<uid>" (attemptToDelete) and "orphan/<uid>" (attemptToOrphan).
  Status sync(const std::string& key) override;
  int workers() const override { return 4; }
  /// Discovers custom resources (and any resource served later) and starts watching them.
  void tick() override;
  std::chrono::milliseconds tickInterval() const override { return std::chrono::seconds(10); }

  /// The built-in resources watched from the start: the workload and core kinds that own or
  /// are owned.
  static std::vector<api::GroupVersionResource> defaultResources();
  /// Nodes in the dependency graph (observed and virtual), for tests and introspection.
  size_t graphSize() const;
  /// Whether an informer has shown the object with this uid to the graph. The collector acts
  /// on what it has seen, as kube's does: a dependent created an instant before its owner is
  /// deleted with Orphan may not have been seen yet.
  bool observed(const std::string& uid) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::controllers
