#include "engine/controllers/serviceaccount.h"

#include "engine/api/object.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};
const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};

constexpr const char* kDescriptionAnnotation = "kubernetes.io/description";
constexpr const char* kDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. "
    "No other usage is guaranteed across distributions of Kubernetes clusters.";

// The create was refused because the namespace is going away: nothing to retry.
bool namespaceTerminating(const Status& st) {
  for (const auto& c : st.causes) {
    if (c.type == "NamespaceTerminating") return true;
  }
  return false;
}

std::string phaseOf(const json& ns) {
  return ns.value("status", json::object()).value("phase", "");
}

}  // namespace

// ---- ServiceAccountController

struct ServiceAccountController::Impl {
  std::vector<std::string> accounts;
  std::shared_ptr<client::Client> client;
  client::Informer* namespaces = nullptr;
  client::Informer* serviceAccounts = nullptr;
};

ServiceAccountController::ServiceAccountController(std::vector<std::string> accounts)
    : impl_(std::make_unique<Impl>()) {
  impl_->accounts = std::move(accounts);
}

ServiceAccountController::~ServiceAccountController() = default;

Status ServiceAccountController::setup(ControllerContext& context) {
  impl_->client = context.client;
  impl_->namespaces = &context.informers->informer(kNamespaces);
  impl_->serviceAccounts = &context.informers->informer(kServiceAccounts);
  client::EventHandler onNamespace;
  onNamespace.onAdd = [this](const client::ObjectPtr& ns) { queue().add(api::metaString(*ns, "name")); };
  onNamespace.onUpdate = [this](const client::ObjectPtr&, const client::ObjectPtr& ns) {
    queue().add(api::metaString(*ns, "name"));
  };
  impl_->namespaces->addHandler(std::move(onNamespace));
  client::EventHandler onAccount;
  onAccount.onDelete = [this](const client::ObjectPtr& sa) { queue().add(api::metaString(*sa, "namespace")); };
  impl_->serviceAccounts->addHandler(std::move(onAccount));
  return Status::ok();
}

Status ServiceAccountController::sync(const std::string& key) {
  auto ns = impl_->namespaces->get(key);
  if (!ns) return Status::ok();
  // Accounts are not created in namespaces that are going away.
  if (phaseOf(*ns) != "Active") return Status::ok();
  std::vector<std::string> failures;
  for (const auto& name : impl_->accounts) {
    if (impl_->serviceAccounts->get(client::objectKey(key, name))) continue;
    json sa = {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", name}, {"namespace", key}}}};
    auto created = impl_->client->create(kServiceAccounts, key, sa);
    if (created.ok()) continue;
    const Status& st = created.status();
    if (st.code() == 409 && st.reason() == api::reason::kAlreadyExists) continue;
    if (namespaceTerminating(st)) continue;
    failures.push_back(st.message());
  }
  if (failures.empty()) return Status::ok();
  std::string msg = failures.size() == 1 ? failures[0] : "[";
  if (failures.size() > 1) {
    for (size_t i = 0; i < failures.size(); ++i) msg += (i ? ", " : "") + failures[i];
    msg += "]";
  }
  return Status::internal(msg);
}

// ---- RootCaCertPublisher

struct RootCaCertPublisher::Impl {
  std::string rootCa;
  std::shared_ptr<client::Client> client;
  client::Informer* configMaps = nullptr;
};

RootCaCertPublisher::RootCaCertPublisher() : impl_(std::make_unique<Impl>()) {}

RootCaCertPublisher::~RootCaCertPublisher() = default;

Status RootCaCertPublisher::setup(ControllerContext& context) {
  impl_->rootCa = context.rootCaPem;
  impl_->client = context.client;
  // Without a CA there is nothing to publish (kube-controller-manager without a root CA).
  if (impl_->rootCa.empty()) return Status::ok();
  impl_->configMaps = &context.informers->informer(kConfigMaps);
  client::EventHandler onConfigMap;
  auto ours = [this](const client::ObjectPtr& cm) {
    if (api::metaString(*cm, "name") == kConfigMapName) queue().add(api::metaString(*cm, "namespace"));
  };
  onConfigMap.onUpdate = [ours](const client::ObjectPtr&, const client::ObjectPtr& cm) { ours(cm); };
  onConfigMap.onDelete = ours;
  impl_->configMaps->addHandler(std::move(onConfigMap));
  client::EventHandler onNamespace;
  onNamespace.onAdd = [this](const client::ObjectPtr& ns) { queue().add(api::metaString(*ns, "name")); };
  onNamespace.onUpdate = [this](const client::ObjectPtr&, const client::ObjectPtr& ns) {
    if (phaseOf(*ns) == "Active") queue().add(api::metaString(*ns, "name"));
  };
  context.informers->informer(kNamespaces).addHandler(std::move(onNamespace));
  return Status::ok();
}

Status RootCaCertPublisher::sync(const std::string& key) {
  if (impl_->rootCa.empty()) return Status::ok();
  const json data = {{"ca.crt", impl_->rootCa}};
  auto cached = impl_->configMaps->get(client::objectKey(key, kConfigMapName));
  if (!cached) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", kConfigMapName}, {"namespace", key}, {"annotations", {{kDescriptionAnnotation, kDescription}}}}},
               {"data", data}};
    auto created = impl_->client->create(kConfigMaps, key, cm);
    if (created.ok()) return Status::ok();
    const Status& st = created.status();
    // Not retried when the namespace is gone or going.
    if (st.code() == 404 || namespaceTerminating(st)) return Status::ok();
    if (st.code() == 409 && st.reason() == api::reason::kAlreadyExists) return Status::ok();
    return st;
  }
  const json& meta = (*cached)["metadata"];
  std::string description;
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    description = meta["annotations"].value(kDescriptionAnnotation, "");
  }
  if (cached->value("data", json::object()) == data && !description.empty()) return Status::ok();
  json cm = *cached;
  cm["data"] = data;
  cm["metadata"]["annotations"][kDescriptionAnnotation] = kDescription;
  auto updated = impl_->client->update(kConfigMaps, key, cm);
  if (!updated.ok()) return updated.status();
  return Status::ok();
}

}  // namespace orrery::controllers
