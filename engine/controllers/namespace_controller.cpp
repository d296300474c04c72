#include "engine/controllers/namespace_controller.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "engine/api/object.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;

namespace {

const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
constexpr const char* kFinalizerToken = "kubernetes";
// kube's default wait for items held by finalizers (finalizerEstimateSeconds).
constexpr int64_t kFinalizerEstimateSeconds = 15;
constexpr int kConflictRetries = 10;

// The condition types the deleter owns, in kube's order, with their "all is well" variants.
struct ConditionKind {
  const char* type;
  const char* okReason;
  const char* okMessage;
};
const ConditionKind kConditionKinds[] = {
    {"NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"},
    {"NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"},
    {"NamespaceDeletionContentFailure", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
    {"NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"},
    {"NamespaceFinalizersRemaining", "ContentRemoved", "All content successfully removed"},
};

struct Condition {
  std::string type, status, reason, message;
};

// Go's %v of a schema.GroupVersionResource: "{apps v1 deployments}", "{ v1 pods}".
std::string goGvr(const api::GroupVersionResource& gvr) {
  return "{" + gvr.group + " " + gvr.version + " " + gvr.resource + "}";
}

std::string gvrKey(const api::GroupVersionResource& gvr) {
  return gvr.group + "/" + gvr.version + "/" + gvr.resource;
}

// utilerrors.NewAggregate's message.
std::string aggregate(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return errors[0];
  std::string msg = "[";
  for (size_t i = 0; i < errors.size(); ++i) msg += (i ? ", " : "") + errors[i];
  return msg + "]";
}

struct GvrResult {
  int64_t estimate = 0;
  int remaining = 0;
  std::map<std::string, int> finalizers;
};

}  // namespace

struct NamespaceController::Impl {
  NamespaceController* self = nullptr;
  std::chrono::milliseconds delay{0};
  std::shared_ptr<client::Client> client;
  std::function<std::chrono::system_clock::time_point()> now;
  // Operations a resource turned out not to support ("deletecollection|g/v/r").
  std::mutex mu;
  std::set<std::string> notSupported;

  bool supported(const std::string& op, const DiscoveredResource& r) {
    if (!r.has(op)) return false;
    std::lock_guard lock(mu);
    return !notSupported.count(op + "|" + gvrKey(r.gvr));
  }
  void setNotSupported(const std::string& op, const api::GroupVersionResource& gvr) {
    std::lock_guard lock(mu);
    notSupported.insert(op + "|" + gvrKey(gvr));
  }

  void enqueue(const json& ns) {
    if (!isBeingDeleted(ns)) return;
    std::string name = api::metaString(ns, "name");
    if (delay.count() > 0) {
      self->queue().addAfter(name, delay);
    } else {
      self->queue().add(name);
    }
  }

  // GET, change, PUT (to `subresource`), again on conflict, as retryOnConflictError does.
  api::Result<json> updateNamespace(json ns, const std::string& subresource,
                                    const std::function<bool(json& ns)>& mutate) {
    const std::string uid = api::metaString(ns, "uid");
    for (int attempt = 0; attempt < kConflictRetries; ++attempt) {
      if (!mutate(ns)) return ns;
      auto updated = client->update(kNamespaces, "", ns, subresource);
      if (updated.ok()) return updated;
      if (!isConflict(updated.status())) return updated.status();
      auto latest = client->get(kNamespaces, "", api::metaString(ns, "name"));
      if (!latest.ok()) return latest.status();
      if (api::metaString(*latest, "uid") != uid) {
        return Status::internal("namespace uid has changed across retries");
      }
      ns = std::move(*latest);
    }
    return Status(409, api::reason::kConflict, "too many conflicts updating namespace " + api::metaString(ns, "name"));
  }

  int64_t estimatePods(const std::string& ns, Status* error) {
    auto pods = client->list({"", "v1", "pods"}, ns);
    if (!pods.ok()) {
      *error = pods.status();
      return 0;
    }
    int64_t estimate = 0;
    for (const auto& pod : pods->value("items", json::array())) {
      std::string phase = pod.value("status", json::object()).value("phase", "");
      if (phase == "Succeeded" || phase == "Failed") continue;
      const json spec = pod.value("spec", json::object());
      if (spec.contains("terminationGracePeriodSeconds") && spec["terminationGracePeriodSeconds"].is_number_integer()) {
        estimate = std::max(estimate, spec["terminationGracePeriodSeconds"].get<int64_t>());
      }
    }
    return estimate;
  }

  // Deletes one resource's content in `ns`; what remains and how long it may take.
  GvrResult deleteContentOf(const DiscoveredResource& r, const std::string& ns,
                            std::chrono::system_clock::time_point deletedAt, std::string* error) {
    GvrResult result;
    if (r.gvr.group.empty() && r.gvr.resource == "pods") {
      Status st;
      int64_t estimate = estimatePods(ns, &st);
      if (!st.isOk()) {
        *error = st.message();
        return {};
      }
      if (now() - deletedAt >= std::chrono::seconds(estimate)) estimate = 0;
      result.estimate = estimate;
    }

    bool collectionDeleted = false;
    if (supported("deletecollection", r)) {
      client::Request request;
      request.method = "DELETE";
      request.path = client::Client::path(r.gvr, ns);
      request.contentType = "application/json";
      // Background, so that no orphan finalizer is added: everything here goes.
      request.body = json{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}}.dump();
      auto response = client->roundTrip(request);
      if (!response.ok()) {
        *error = response.status().message();
        return result;
      }
      if (response->code >= 200 && response->code < 300) {
        collectionDeleted = true;
      } else if (response->code == 405 || response->code == 404) {
        setNotSupported("deletecollection", r.gvr);
      } else {
        *error = client::statusFromResponse(*response).message();
        return result;
      }
    }

    if (!supported("list", r)) return result;
    auto list = client->list(r.gvr, ns);
    if (!list.ok()) {
      if (list.status().code() == 405 || list.status().code() == 404) {
        setNotSupported("list", r.gvr);
        return result;
      }
      *error = list.status().message();
      return result;
    }
    json items = list->value("items", json::array());
    if (!collectionDeleted) {
      for (const auto& item : items) {
        client::DeleteOptions options;
        options.propagationPolicy = "Background";
        auto removed = client->remove(r.gvr, ns, api::metaString(item, "name"), options);
        if (!removed.ok() && removed.status().code() != 404 && removed.status().code() != 405) {
          *error = removed.status().message();
          return result;
        }
      }
      auto again = client->list(r.gvr, ns);
      if (!again.ok()) {
        *error = again.status().message();
        return result;
      }
      items = again->value("items", json::array());
    }
    if (items.empty()) return GvrResult{};

    result.remaining = static_cast<int>(items.size());
    for (const auto& item : items) {
      const json meta = item.value("metadata", json::object());
      for (const auto& f : meta.value("finalizers", json::array())) {
        if (f.is_string()) result.finalizers[f.get<std::string>()]++;
      }
    }
    if (result.estimate != 0) return result;
    if (!result.finalizers.empty()) {
      result.estimate = kFinalizerEstimateSeconds;
      return result;
    }
    *error = "unexpected items still remain in namespace: " + ns + " for gvr: " + goGvr(r.gvr);
    return result;
  }

  // Sets the deleter's conditions on `status`; true when something changed.
  bool updateConditions(json& status, const std::vector<Condition>& fresh) {
    if (!status.is_object()) status = json::object();
    if (!status.contains("conditions") || !status["conditions"].is_array()) status["conditions"] = json::array();
    json& conditions = status["conditions"];
    const std::string nowText = api::formatTime(now());
    bool changed = false;
    for (const auto& kind : kConditionKinds) {
      Condition want{kind.type, "False", kind.okReason, kind.okMessage};
      for (const auto& c : fresh) {
        if (c.type == kind.type) want = c;
      }
      json* old = nullptr;
      for (auto& c : conditions) {
        if (c.value("type", "") == want.type) old = &c;
      }
      if (!old) {
        conditions.push_back({{"type", want.type},
                              {"status", want.status},
                              {"lastTransitionTime", nowText},
                              {"reason", want.reason},
                              {"message", want.message}});
        changed = true;
      } else if (old->value("status", "") != want.status || old->value("reason", "") != want.reason ||
                 old->value("message", "") != want.message) {
        if (old->value("status", "") != want.status) (*old)["lastTransitionTime"] = nowText;
        (*old)["status"] = want.status;
        (*old)["reason"] = want.reason;
        (*old)["message"] = want.message;
        changed = true;
      }
    }
    return changed;
  }

  // Deletes everything in the namespace; the estimate (seconds) of what is still going.
  api::Result<int64_t> deleteAllContent(json& ns) {
    const std::string name = api::metaString(ns, "name");
    std::chrono::system_clock::time_point deletedAt;
    api::parseTime(api::metaString(ns, "deletionTimestamp"), &deletedAt);
    std::vector<std::string> errors;
    std::vector<std::string> contentErrors;
    std::vector<Condition> fresh;

    std::vector<DiscoveredResource> resources;
    auto discovered = discoverResources(*client);
    if (!discovered.ok()) {
      errors.push_back(discovered.status().message());
      fresh.push_back({"NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed", discovered.status().message()});
    } else {
      resources = discovered->resources;
      if (!discovered->error.empty()) {
        // Not fatal: what could be discovered is still deleted.
        errors.push_back(discovered->error);
        fresh.push_back({"NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed", discovered->error});
      }
    }

    int64_t estimate = 0;
    std::map<std::string, int> remainingByGvr;
    std::map<std::string, int> remainingByFinalizer;
    for (const auto& r : resources) {
      if (!r.namespaced || !r.has("delete")) continue;
      std::string error;
      GvrResult result = deleteContentOf(r, name, deletedAt, &error);
      if (!error.empty()) {
        errors.push_back(error);
        contentErrors.push_back(error);
      }
      estimate = std::max(estimate, result.estimate);
      if (result.remaining > 0) {
        remainingByGvr[r.gvr.resource + "." + r.gvr.group + " has " + std::to_string(result.remaining) +
                       " resource instances"] = result.remaining;
        for (const auto& [f, n] : result.finalizers) remainingByFinalizer[f] += n;
      }
    }
    if (!remainingByGvr.empty()) {
      std::string msg = "Some resources are remaining: ";
      bool first = true;
      for (const auto& [text, n] : remainingByGvr) {  // sorted, as kube sorts them
        msg += (first ? "" : ", ") + text;
        first = false;
      }
      fresh.push_back({"NamespaceContentRemaining", "True", "SomeResourcesRemain", msg});
    }
    if (!remainingByFinalizer.empty()) {
      std::vector<std::string> parts;
      for (const auto& [f, n] : remainingByFinalizer) parts.push_back(f + " in " + std::to_string(n) + " resource instances");
      std::sort(parts.begin(), parts.end());
      std::string msg = "Some finalizers are remaining: ";
      for (size_t i = 0; i < parts.size(); ++i) msg += (i ? ", " : "") + parts[i];
      fresh.push_back({"NamespaceFinalizersRemaining", "True", "SomeFinalizerRemain", msg});
    }
    if (!contentErrors.empty()) {
      std::sort(contentErrors.begin(), contentErrors.end());
      std::string msg = "Failed to delete all resource types, " + std::to_string(contentErrors.size()) + " remaining: ";
      for (size_t i = 0; i < contentErrors.size(); ++i) msg += (i ? ", " : "") + contentErrors[i];
      fresh.push_back({"NamespaceDeletionContentFailure", "True", "ContentDeletionFailed", msg});
    }

    // Always written when it changed: a condition that went back to fine must say so.
    json updated = ns;
    if (updateConditions(updated["status"], fresh)) {
      auto written = client->update(kNamespaces, "", updated, "status");
      if (written.ok()) {
        ns = std::move(*written);
      } else {
        logger()->warn("namespace: couldn't update status condition for namespace \"{}\": {}", name,
                       written.status().message());
      }
    }
    if (!errors.empty()) return Status::internal(aggregate(errors));
    return estimate;
  }

  Status syncNamespace(const std::string& name) {
    auto current = client->get(kNamespaces, "", name);
    if (!current.ok()) return current.status().code() == 404 ? Status::ok() : current.status();
    json ns = std::move(*current);
    if (!isBeingDeleted(ns)) return Status::ok();

    auto terminating = updateNamespace(ns, "status", [](json& n) {
      if (n["status"].is_object() && n["status"].value("phase", "") == "Terminating") return false;
      n["status"]["phase"] = "Terminating";
      return true;
    });
    if (!terminating.ok()) return terminating.status().code() == 404 ? Status::ok() : terminating.status();
    ns = std::move(*terminating);
    if (!isBeingDeleted(ns)) return Status::ok();

    auto specFinalizers = ns.value("spec", json::object()).value("finalizers", json::array());
    if (!specFinalizers.empty()) {
      auto estimate = deleteAllContent(ns);
      if (!estimate.ok()) return estimate.status();
      if (*estimate > 0) {
        // ResourcesRemainingError: look again in half the estimate.
        auto wait = std::chrono::seconds(*estimate / 2 + 1);
        logger()->debug("namespace: content remaining in \"{}\", checking again in {} s", name, wait.count());
        self->queue().addAfter(name, wait);
        return Status::ok();
      }
      auto finalized = updateNamespace(ns, "finalize", [](json& n) {
        json kept = json::array();
        std::set<std::string> seen;
        for (const auto& f : n.value("spec", json::object()).value("finalizers", json::array())) {
          if (f.is_string() && f.get<std::string>() != kFinalizerToken && seen.insert(f.get<std::string>()).second) {
            kept.push_back(f);
          }
        }
        std::sort(kept.begin(), kept.end());
        if (kept == n["spec"]["finalizers"]) return false;
        n["spec"]["finalizers"] = kept;
        return true;
      });
      if (!finalized.ok()) return finalized.status().code() == 404 ? Status::ok() : finalized.status();
      ns = std::move(*finalized);
    }
    // kube-apiserver removes a namespace whose last finalizer went in the finalize update; an
    // API server that keeps it is asked again (a no-op where it is already gone).
    bool specEmpty = ns.value("spec", json::object()).value("finalizers", json::array()).empty();
    bool metaEmpty = ns.value("metadata", json::object()).value("finalizers", json::array()).empty();
    if (specEmpty && metaEmpty) {
      client::DeleteOptions options;
      options.preconditionUid = api::metaString(ns, "uid");
      auto removed = client->remove(kNamespaces, "", name, options);
      if (!removed.ok() && removed.status().code() != 404 && removed.status().code() != 409) return removed.status();
    }
    return Status::ok();
  }
};

NamespaceController::NamespaceController(std::chrono::milliseconds deletionDelay) : impl_(std::make_unique<Impl>()) {
  impl_->self = this;
  impl_->delay = deletionDelay;
}

NamespaceController::~NamespaceController() = default;

Status NamespaceController::setup(ControllerContext& context) {
  impl_->client = context.client;
  impl_->now = context.now;
  client::EventHandler handler;
  handler.onAdd = [this](const client::ObjectPtr& ns) { impl_->enqueue(*ns); };
  handler.onUpdate = [this](const client::ObjectPtr&, const client::ObjectPtr& ns) { impl_->enqueue(*ns); };
  context.informers->informer(kNamespaces).addHandler(std::move(handler));
  return Status::ok();
}

Status NamespaceController::sync(const std::string& key) { return impl_->syncNamespace(key); }

}  // namespace orrery::controllers
