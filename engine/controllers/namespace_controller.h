#pragma once
// The namespace controller, as kube-controller-manager's (pkg/controller/namespace): a
// namespace being deleted is marked Terminating, everything in it is deleted (every
// namespaced resource discovery lists with the delete verb, custom resources included), its
// status conditions say what is left and why, and once it is empty the "kubernetes"
// finalizer is removed through namespaces/NAME/finalize, which lets the namespace go.

#include <chrono>
#include <memory>
#include <string>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

class NamespaceController : public Controller {
 public:
  /// `deletionDelay`: how long after an event a namespace is looked at. kube-controller-manager
  /// waits 5 s so that every API server of an HA control plane sees the deletion; Orrery's
  /// single API server reads consistently, so it does not wait by default.
  explicit NamespaceController(std::chrono::milliseconds deletionDelay = std::chrono::milliseconds(0));
  ~NamespaceController() override;

  std::string name() const override { return "namespace"; }
  Status setup(ControllerContext& context) override;
  /// Key: the namespace name.
  Status sync(const std::string& key) override;
  int workers() const override { return 2; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::controllers
