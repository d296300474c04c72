#include "engine/controllers/resourcequota.h"

#include <set>

#include "engine/api/object.h"
#include "engine/api/quota.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {
namespace {

using nlohmann::json;

const api::GroupVersionResource kQuotas{"", "v1", "resourcequotas"};

class ResourceQuotaController : public Controller {
 public:
  std::string name() const override { return "resourcequota"; }
  std::chrono::milliseconds tickInterval() const override { return std::chrono::seconds(30); }

  Status setup(ControllerContext& context) override {
    client_ = context.client;
    informers_ = context.informers;
    registry_ = api::ResourceRegistry::builtin();
    quotas_ = &informers_->informer(kQuotas);
    quotas_->addHandler({[this](const client::ObjectPtr& q) { queue().add(client::objectKey(*q)); },
                         [this](const client::ObjectPtr&, const client::ObjectPtr& q) { queue().add(client::objectKey(*q)); },
                         nullptr});
    // The resources quotas count most often are watched from the start; others (count/...)
    // get an informer the first time a quota names them.
    for (const char* resource : {"pods", "services", "configmaps", "secrets", "persistentvolumeclaims"}) {
      watchCounted({"", "v1", resource});
    }
    return {};
  }

  void tick() override {
    for (const auto& q : quotas_->list()) queue().add(client::objectKey(*q));
  }

  Status sync(const std::string& key) override {
    auto quota = quotas_->get(key);
    if (!quota) return {};
    const std::string ns = api::metaString(*quota, "namespace");
    const json& hardJson = quota->value("spec", json::object()).value("hard", json::object());
    api::Quantities hard = api::quantitiesOf(hardJson);

    // Which resources to count for each quota name in spec.hard.
    api::Quantities used;
    std::set<api::GroupVersionResource> sources;
    for (const auto& [name, q] : hard) {
      auto gvr = sourceOf(name);
      if (!gvr) continue;
      sources.insert(*gvr);
      used.emplace(name, api::Quantity());
    }
    for (const auto& gvr : sources) {
      client::Informer& informer = watchCounted(gvr);
      if (!informer.hasSynced()) return Status::serviceUnavailable("waiting for the " + gvr.resource + " cache");
      auto info = registry_->find(gvr);
      if (!info) continue;
      for (const auto& object : informer.byIndex("namespace", ns)) {
        for (auto& [name, q] : api::quotaUsage(*info, *object)) {
          if (used.count(name) && sourceOf(name) == gvr) used[name].add(q);
        }
      }
    }

    json status = {{"hard", json::object()}, {"used", json::object()}};
    for (const auto& [name, q] : hard) status["hard"][name] = hardJson[name];
    for (const auto& [name, q] : used) status["used"][name] = q.toString();
    if (quota->value("status", json::object()) == status) return {};
    json updated = *quota;
    updated["status"] = status;
    auto result = client_->update(kQuotas, ns, updated, "status");
    if (!result.ok() && !isConflict(result.status()) && result.status().code() != 404) return result.status();
    if (!result.ok() && isConflict(result.status())) return result.status();  // retry on fresh state
    return {};
  }

 private:
  /// The resource a quota name counts ("requests.cpu" -> pods, "count/deployments.apps" ->
  /// deployments). Unknown names are not counted (kube leaves them at their charge).
  std::optional<api::GroupVersionResource> sourceOf(const std::string& name) const {
    static const std::set<std::string> podNames = {"pods", "cpu", "memory", "ephemeral-storage"};
    if (podNames.count(name) || name.rfind("requests.", 0) == 0 || name.rfind("limits.", 0) == 0) {
      if (name == "requests.storage") return api::GroupVersionResource{"", "v1", "persistentvolumeclaims"};
      return api::GroupVersionResource{"", "v1", "pods"};
    }
    if (name == "services.nodeports" || name == "services.loadbalancers") return api::GroupVersionResource{"", "v1", "services"};
    static const std::set<std::string> legacy = {"services", "configmaps", "secrets", "persistentvolumeclaims",
                                                 "replicationcontrollers", "resourcequotas"};
    if (legacy.count(name)) return api::GroupVersionResource{"", "v1", name};
    if (name.rfind("count/", 0) == 0) {
      std::string qualified = name.substr(6);
      auto dot = qualified.find('.');
      std::string resource = qualified.substr(0, dot);
      std::string group = dot == std::string::npos ? "" : qualified.substr(dot + 1);
      for (const auto& info : registry_->all()) {
        if (info.group == group && info.resource == resource) return info.gvr();
      }
    }
    return std::nullopt;
  }

  client::Informer& watchCounted(const api::GroupVersionResource& gvr) {
    std::lock_guard lock(mu_);
    client::Informer& informer = informers_->informer(gvr);
    if (watched_.insert(gvr).second) {
      auto requeueNamespace = [this](const client::ObjectPtr& object) {
        for (const auto& q : quotas_->byIndex("namespace", api::metaString(*object, "namespace"))) {
          queue().add(client::objectKey(*q));
        }
      };
      informer.addHandler({requeueNamespace,
                           [requeueNamespace](const client::ObjectPtr&, const client::ObjectPtr& o) { requeueNamespace(o); },
                           requeueNamespace});
    }
    return informer;
  }

  std::shared_ptr<client::Client> client_;
  client::InformerFactory* informers_ = nullptr;
  std::shared_ptr<api::ResourceRegistry> registry_;
  client::Informer* quotas_ = nullptr;
  std::mutex mu_;
  std::set<api::GroupVersionResource> watched_;
};

}  // namespace

std::unique_ptr<Controller> newResourceQuotaController() { return std::make_unique<ResourceQuotaController>(); }

}  // namespace orrery::controllers
