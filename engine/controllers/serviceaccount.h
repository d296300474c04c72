#pragma once
// Per-namespace identity, as kube-controller-manager keeps it:
//  - ServiceAccountController ("serviceaccount", pkg/controller/serviceaccount): a "default"
//    ServiceAccount in every active namespace, created again if deleted;
//  - RootCaCertPublisher ("root-ca-cert-publisher", pkg/controller/certificates/
//    rootcacertpublisher): ConfigMap kube-root-ca.crt with the cluster CA in every namespace,
//    when ControllerContext::rootCaPem is known.
// Tokens come from the TokenRequest API (serviceaccounts/NAME/token), as since kube 1.24.
// TODO(serviceaccount): the legacy tokens controller (Secrets of type
// kubernetes.io/service-account-token filled with token, ca.crt and namespace) needs the API
// server to sign and accept non-expiring tokens with issuer "kubernetes/serviceaccount".

#include <memory>
#include <string>
#include <vector>

#include "engine/controllers/controller.h"

namespace orrery::controllers {

class ServiceAccountController : public Controller {
 public:
  /// The accounts every namespace gets (kube: just "default").
  explicit ServiceAccountController(std::vector<std::string> accounts = {"default"});
  ~ServiceAccountController() override;

  std::string name() const override { return "serviceaccount"; }
  Status setup(ControllerContext& context) override;
  /// Key: the namespace name.
  Status sync(const std::string& key) override;
  int workers() const override { return 1; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class RootCaCertPublisher : public Controller {
 public:
  RootCaCertPublisher();
  ~RootCaCertPublisher() override;

  std::string name() const override { return "root-ca-cert-publisher"; }
  Status setup(ControllerContext& context) override;
  /// Key: the namespace name.
  Status sync(const std::string& key) override;
  int workers() const override { return 1; }

  static constexpr const char* kConfigMapName = "kube-root-ca.crt";

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::controllers
