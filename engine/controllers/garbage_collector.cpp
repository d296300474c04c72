#include "engine/controllers/garbage_collector.h"

#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "engine/api/object.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

using nlohmann::json;

namespace {

constexpr const char* kDeletePrefix = "delete/";
constexpr const char* kOrphanPrefix = "orphan/";
// kube's absentOwnerCache is an LRU of 500 coordinates.
constexpr size_t kAbsentOwnerCacheSize = 500;
constexpr int kPatchConflictRetries = 5;

// Where an object lives: the coordinates of an ownerReference plus the namespace.
struct Identity {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string ns;
  std::string uid;
  bool operator==(const Identity&) const = default;
  std::string key() const { return apiVersion + "|" + kind + "|" + ns + "|" + name + "|" + uid; }
  std::string describe() const {
    return "[" + apiVersion + "/" + kind + ", namespace: " + ns + ", name: " + name + ", uid: " + uid + "]";
  }
};

struct Node {
  Identity id;
  std::vector<OwnerReference> owners;
  std::set<std::string> dependents;  // uids
  bool beingDeleted = false;
  bool deletingDependents = false;
  // Known only from a dependent's ownerReference, not yet seen through an informer.
  bool isVirtual = false;
};

bool startsDeletionWith(const json* oldObj, const json& newObj, const char* finalizer) {
  if (!isBeingDeleted(newObj) || !hasFinalizer(newObj, finalizer)) return false;
  if (!oldObj) return true;
  return !isBeingDeleted(*oldObj) || !hasFinalizer(*oldObj, finalizer);
}

}  // namespace

struct GarbageCollector::Impl {
  GarbageCollector* self = nullptr;
  std::shared_ptr<client::Client> client;
  client::InformerFactory* informers = nullptr;
  std::unique_ptr<KindMapper> mapper;
  std::shared_ptr<api::ResourceRegistry> builtin;

  mutable std::mutex mu;  // the graph, the absent-owner cache, the watched set
  std::unordered_map<std::string, Node> nodes;
  std::set<std::string> absentOwners;
  std::set<api::GroupVersionResource> watched;

  // ---- queueing

  void enqueueDelete(const std::string& uid) { self->queue().add(kDeletePrefix + uid); }
  void enqueueOrphan(const std::string& uid) { self->queue().add(kOrphanPrefix + uid); }

  void addAbsent(const Identity& id) {
    if (absentOwners.size() >= kAbsentOwnerCacheSize) absentOwners.clear();
    absentOwners.insert(id.key());
  }

  // ---- the graph builder (runs on informer threads, under mu)

  void watch(const api::GroupVersionResource& gvr, const std::string& kind) {
    {
      std::lock_guard lock(mu);
      if (!watched.insert(gvr).second) return;
    }
    const std::string apiVersion = gvr.group.empty() ? gvr.version : gvr.group + "/" + gvr.version;
    client::EventHandler handler;
    handler.onAdd = [this, apiVersion, kind](const client::ObjectPtr& obj) {
      onEvent(apiVersion, kind, nullptr, *obj, false);
    };
    handler.onUpdate = [this, apiVersion, kind](const client::ObjectPtr& oldObj, const client::ObjectPtr& newObj) {
      onEvent(apiVersion, kind, oldObj.get(), *newObj, false);
    };
    handler.onDelete = [this, apiVersion, kind](const client::ObjectPtr& obj) {
      onEvent(apiVersion, kind, nullptr, *obj, true);
    };
    informers->informer(gvr).addHandler(std::move(handler));
  }

  void onEvent(const std::string& apiVersion, const std::string& kind, const json* oldObj, const json& obj,
               bool deleted) {
    Identity id{apiVersion, kind, api::metaString(obj, "name"), api::metaString(obj, "namespace"),
                api::metaString(obj, "uid")};
    if (id.uid.empty()) return;
    std::lock_guard lock(mu);
    auto it = nodes.find(id.uid);
    if (it != nodes.end() && !deleted && it->second.isVirtual) {
      // First sight of an owner that dependents named: it is real now, with the coordinates
      // the informer saw. Dependents that named it otherwise are checked again.
      Node& existing = it->second;
      if (!(existing.id == id)) {
        for (const auto& depUid : existing.dependents) {
          auto dep = nodes.find(depUid);
          if (dep == nodes.end()) continue;
          for (const auto& ref : dep->second.owners) {
            if (ref.uid == id.uid && (ref.kind != id.kind || ref.name != id.name ||
                                      splitApiVersion(ref.apiVersion).first != splitApiVersion(id.apiVersion).first)) {
              enqueueDelete(depUid);
            }
          }
        }
        existing.id = id;
      }
      existing.isVirtual = false;
    }
    if (deleted) {
      if (it == nodes.end()) return;
      removeNode(id.uid, id);
      return;
    }
    auto newOwners = ownerReferences(obj);
    if (it == nodes.end()) {
      Node n;
      n.id = id;
      n.owners = newOwners;
      n.beingDeleted = isBeingDeleted(obj);
      n.deletingDependents = n.beingDeleted && hasFinalizer(obj, kFinalizerForeground);
      nodes.emplace(id.uid, n);
      addDependentToOwners(id.uid, newOwners);
      processTransitions(oldObj, obj, id.uid);
      return;
    }
    Node& existing = it->second;
    // Differences in ownerReferences, by owner uid.
    std::vector<OwnerReference> added, removed;
    std::vector<std::pair<OwnerReference, OwnerReference>> changed;
    std::map<std::string, OwnerReference> oldByUid;
    for (const auto& r : existing.owners) oldByUid[r.uid] = r;
    std::set<std::string> newUids;
    for (const auto& r : newOwners) {
      newUids.insert(r.uid);
      auto o = oldByUid.find(r.uid);
      if (o == oldByUid.end()) {
        added.push_back(r);
      } else if (o->second.toJson() != r.toJson()) {
        changed.emplace_back(o->second, r);
      }
    }
    for (const auto& r : existing.owners) {
      if (!newUids.count(r.uid)) removed.push_back(r);
    }
    if (!added.empty() || !removed.empty() || !changed.empty()) {
      addUnblockedOwnersToDeleteQueue(removed, changed);
      existing.owners = newOwners;
      addDependentToOwners(id.uid, added);
      for (const auto& r : removed) {
        auto owner = nodes.find(r.uid);
        if (owner != nodes.end()) owner->second.dependents.erase(id.uid);
      }
    }
    if (isBeingDeleted(obj)) existing.beingDeleted = true;
    processTransitions(oldObj, obj, id.uid);
  }

  // A removed or unblocked reference may be what an owner deleting in the foreground waited for.
  void addUnblockedOwnersToDeleteQueue(const std::vector<OwnerReference>& removed,
                                       const std::vector<std::pair<OwnerReference, OwnerReference>>& changed) {
    auto kick = [&](const std::string& uid) {
      auto owner = nodes.find(uid);
      if (owner != nodes.end() && owner->second.deletingDependents) enqueueDelete(uid);
    };
    for (const auto& r : removed) {
      if (r.blockOwnerDeletion) kick(r.uid);
    }
    for (const auto& [oldRef, newRef] : changed) {
      if (oldRef.blockOwnerDeletion && !newRef.blockOwnerDeletion) kick(newRef.uid);
    }
  }

  void addDependentToOwners(const std::string& depUid, const std::vector<OwnerReference>& owners) {
    const std::string depNs = nodes[depUid].id.ns;
    for (const auto& ref : owners) {
      if (ref.uid.empty()) continue;
      auto owner = nodes.find(ref.uid);
      if (owner == nodes.end()) {
        // An owner nobody has seen: a virtual node, checked against the API by a worker.
        Node v;
        v.id = Identity{ref.apiVersion, ref.kind, ref.name, depNs, ref.uid};
        v.isVirtual = true;
        v.dependents.insert(depUid);
        nodes.emplace(ref.uid, std::move(v));
        enqueueDelete(ref.uid);
      } else {
        owner->second.dependents.insert(depUid);
      }
    }
  }

  void processTransitions(const json* oldObj, const json& obj, const std::string& uid) {
    if (startsDeletionWith(oldObj, obj, kFinalizerOrphan)) {
      enqueueOrphan(uid);
      return;
    }
    if (startsDeletionWith(oldObj, obj, kFinalizerForeground)) {
      Node& n = nodes[uid];
      n.deletingDependents = true;
      n.beingDeleted = true;
      for (const auto& dep : n.dependents) enqueueDelete(dep);
      enqueueDelete(uid);
    }
  }

  // Takes a node out of the graph (its object is gone) and wakes what depended on it.
  void removeNode(const std::string& uid, const Identity& deletedAs) {
    auto it = nodes.find(uid);
    if (it == nodes.end()) return;
    Node n = std::move(it->second);
    nodes.erase(it);
    for (const auto& ref : n.owners) {
      auto owner = nodes.find(ref.uid);
      if (owner == nodes.end()) continue;
      owner->second.dependents.erase(uid);
      // An owner deleting in the foreground may have waited for this one.
      if (owner->second.deletingDependents) enqueueDelete(ref.uid);
    }
    if (!n.dependents.empty()) addAbsent(deletedAs);
    for (const auto& dep : n.dependents) enqueueDelete(dep);
  }

  // A worker found the object gone (404 or another uid): as a delete event, unless an observed
  // node disagrees with the coordinates that were checked.
  void virtualDelete(const Identity& checked) {
    std::lock_guard lock(mu);
    auto it = nodes.find(checked.uid);
    if (it == nodes.end()) return;
    Node& existing = it->second;
    if (!existing.isVirtual && !(existing.id == checked)) {
      addAbsent(checked);
      for (const auto& dep : existing.dependents) enqueueDelete(dep);
      return;
    }
    removeNode(checked.uid, checked);
  }

  // ---- the workers

  struct Snapshot {
    Node node;
    std::vector<Node> dependents;
  };

  std::optional<Snapshot> snapshot(const std::string& uid) const {
    std::lock_guard lock(mu);
    auto it = nodes.find(uid);
    if (it == nodes.end()) return std::nullopt;
    Snapshot s{it->second, {}};
    for (const auto& depUid : it->second.dependents) {
      auto dep = nodes.find(depUid);
      if (dep != nodes.end()) s.dependents.push_back(dep->second);
    }
    return s;
  }

  // The live object behind an identity (404 Status when it does not exist).
  api::Result<json> getLive(const Identity& id, DiscoveredResource* resource = nullptr) {
    auto mapped = mapper->resolve(id.apiVersion, id.kind);
    if (!mapped.ok()) return mapped.status();
    if (resource) *resource = *mapped;
    return client->get(mapped->gvr, mapped->namespaced ? id.ns : "", id.name);
  }

  // GETs the object, lets `mutate` change it (false: nothing to do) and writes the change back
  // as a JSON merge patch of `field` guarded by uid and resourceVersion, retrying conflicts.
  Status patchMetadata(const Identity& id, const char* field, const std::function<bool(json& meta)>& mutate) {
    for (int attempt = 0; attempt < kPatchConflictRetries; ++attempt) {
      DiscoveredResource resource;
      auto live = getLive(id, &resource);
      if (!live.ok()) return live.status().code() == 404 ? Status::ok() : live.status();
      json& meta = (*live)["metadata"];
      if (meta.value("uid", "") != id.uid) return Status::ok();
      if (!mutate(meta)) return Status::ok();
      json patchMeta = {{"uid", id.uid}, {"resourceVersion", meta.value("resourceVersion", "")}};
      patchMeta[field] = meta.contains(field) ? meta[field] : json(nullptr);
      json body = {{"metadata", patchMeta}};
      auto patched = client->patch(resource.gvr, resource.namespaced ? id.ns : "", id.name,
                                   client::PatchType::kMerge, body.dump());
      if (patched.ok() || patched.status().code() == 404) return Status::ok();
      if (!isConflict(patched.status())) return patched.status();
    }
    return Status(409, api::reason::kConflict, "too many conflicts patching " + id.describe());
  }

  Status removeFinalizer(const Identity& id, const std::string& finalizer) {
    return patchMetadata(id, "finalizers", [&](json& meta) {
      if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) return false;
      json kept = json::array();
      bool found = false;
      for (const auto& f : meta["finalizers"]) {
        if (f.is_string() && f.get<std::string>() == finalizer) {
          found = true;
        } else {
          kept.push_back(f);
        }
      }
      if (!found) return false;
      meta["finalizers"] = kept;
      return true;
    });
  }

  Status removeOwnerReferences(const Identity& id, const std::set<std::string>& ownerUids) {
    return patchMetadata(id, "ownerReferences", [&](json& meta) {
      if (!meta.contains("ownerReferences") || !meta["ownerReferences"].is_array()) return false;
      json kept = json::array();
      bool found = false;
      for (const auto& r : meta["ownerReferences"]) {
        if (ownerUids.count(r.value("uid", ""))) {
          found = true;
        } else {
          kept.push_back(r);
        }
      }
      if (!found) return false;
      meta["ownerReferences"] = kept;
      return true;
    });
  }

  Status unblockOwnerReferences(const Identity& id) {
    return patchMetadata(id, "ownerReferences", [&](json& meta) {
      if (!meta.contains("ownerReferences") || !meta["ownerReferences"].is_array()) return false;
      bool changed = false;
      for (auto& r : meta["ownerReferences"]) {
        if (r.value("blockOwnerDeletion", false)) {
          r["blockOwnerDeletion"] = false;
          changed = true;
        }
      }
      return changed;
    });
  }

  Status deleteObject(const Identity& id, const std::string& policy) {
    auto mapped = mapper->resolve(id.apiVersion, id.kind);
    if (!mapped.ok()) return mapped.status();
    client::DeleteOptions options;
    options.propagationPolicy = policy;
    options.preconditionUid = id.uid;
    logger()->debug("garbagecollector: deleting {} with propagation {}", id.describe(), policy);
    auto result = client->remove(mapped->gvr, mapped->namespaced ? id.ns : "", id.name, options);
    if (!result.ok() && result.status().code() != 404) return result.status();
    return Status::ok();
  }

  enum class OwnerState { kSolid, kDangling, kWaitingForDependentsDeletion };

  // Whether an owner still exists (live GET, remembered when absent).
  api::Result<OwnerState> classify(const OwnerReference& ref, const Identity& item) {
    Identity owner{ref.apiVersion, ref.kind, ref.name, "", ref.uid};
    {
      std::lock_guard lock(mu);
      if (absentOwners.count(owner.key())) return OwnerState::kDangling;
      owner.ns = item.ns;
      if (absentOwners.count(owner.key())) return OwnerState::kDangling;
    }
    auto mapped = mapper->resolve(ref.apiVersion, ref.kind);
    if (!mapped.ok()) return mapped.status();
    if (!mapped->namespaced) owner.ns = "";
    if (item.ns.empty() && mapped->namespaced) {
      return Status(400, api::reason::kBadRequest,
                    "cluster-scoped object " + item.describe() + " has a namespaced owner " + ref.kind + "/" + ref.name);
    }
    auto live = client->get(mapped->gvr, owner.ns, ref.name);
    if (!live.ok()) {
      if (live.status().code() != 404) return live.status();
      std::lock_guard lock(mu);
      addAbsent(owner);
      return OwnerState::kDangling;
    }
    if (api::metaString(*live, "uid") != ref.uid) {
      std::lock_guard lock(mu);
      addAbsent(owner);
      return OwnerState::kDangling;
    }
    if (isBeingDeleted(*live) && hasFinalizer(*live, kFinalizerForeground)) {
      return OwnerState::kWaitingForDependentsDeletion;
    }
    return OwnerState::kSolid;
  }

  Status processDeletingDependents(const Snapshot& s) {
    std::vector<const Node*> blocking;
    for (const auto& dep : s.dependents) {
      for (const auto& ref : dep.owners) {
        if (ref.uid == s.node.id.uid && ref.blockOwnerDeletion) {
          blocking.push_back(&dep);
          break;
        }
      }
    }
    if (blocking.empty()) return removeFinalizer(s.node.id, kFinalizerForeground);
    for (const Node* dep : blocking) {
      if (!dep->deletingDependents) enqueueDelete(dep->id.uid);
    }
    return Status::ok();
  }

  Status attemptToDelete(const std::string& uid) {
    auto s = snapshot(uid);
    if (!s) return Status::ok();
    const Node& item = s->node;
    // Being deleted is a one-way trip: the delete event will wake the dependents.
    if (item.beingDeleted && !item.deletingDependents) return Status::ok();

    auto latest = getLive(item.id);
    if (!latest.ok()) {
      if (latest.status().code() == 404 && latest.status().reason() == api::reason::kNotFound &&
          latest.status().message().rfind("no matches for kind", 0) != 0) {
        virtualDelete(item.id);
        return Status::ok();
      }
      return latest.status();
    }
    if (api::metaString(*latest, "uid") != item.id.uid) {
      virtualDelete(item.id);
      return Status::ok();
    }
    if (item.deletingDependents) return processDeletingDependents(*s);

    auto refs = ownerReferences(*latest);
    if (refs.empty()) return item.isVirtual ? requeue("not yet observed by an informer") : Status::ok();

    std::vector<OwnerReference> solid, dangling, waiting;
    for (const auto& ref : refs) {
      auto state = classify(ref, item.id);
      if (!state.ok()) {
        if (state.status().code() == 400) {
          logger()->warn("garbagecollector: {}", state.status().message());
          return Status::ok();
        }
        return state.status();
      }
      switch (*state) {
        case OwnerState::kSolid: solid.push_back(ref); break;
        case OwnerState::kDangling: dangling.push_back(ref); break;
        case OwnerState::kWaitingForDependentsDeletion: waiting.push_back(ref); break;
      }
    }

    Status result;
    if (!solid.empty()) {
      // A live owner keeps it; references to owners that are gone, or that wait in the
      // foreground for their dependents, are removed so those owners are not stuck.
      if (dangling.empty() && waiting.empty()) {
        result = Status::ok();
      } else {
        std::set<std::string> uids;
        for (const auto& r : dangling) uids.insert(r.uid);
        for (const auto& r : waiting) uids.insert(r.uid);
        result = removeOwnerReferences(item.id, uids);
      }
    } else if (!waiting.empty() && !s->dependents.empty()) {
      // Foreground propagates: this dependent is itself an owner, so it goes in the foreground
      // too. A dependent of ours already deleting in the foreground could make a cycle: our
      // own references stop blocking first.
      for (const auto& dep : s->dependents) {
        if (dep.deletingDependents) {
          if (auto st = unblockOwnerReferences(item.id); !st.isOk()) return st;
          break;
        }
      }
      result = deleteObject(item.id, "Foreground");
    } else {
      // No owner left that keeps it: collect it, as its own finalizers ask.
      std::string policy = "Background";
      if (hasFinalizer(*latest, kFinalizerOrphan)) {
        policy = "Orphan";
      } else if (hasFinalizer(*latest, kFinalizerForeground)) {
        policy = "Foreground";
      }
      result = deleteObject(item.id, policy);
    }
    if (!result.isOk()) return result;
    return item.isVirtual ? requeue("not yet observed by an informer") : Status::ok();
  }

  Status attemptToOrphan(const std::string& uid) {
    auto s = snapshot(uid);
    if (!s) return Status::ok();
    for (const auto& dep : s->dependents) {
      if (auto st = removeOwnerReferences(dep.id, {uid}); !st.isOk()) {
        return Status(st.code(), st.reason(),
                      "orphaning " + dep.id.describe() + " failed: " + st.message());
      }
    }
    return removeFinalizer(s->node.id, kFinalizerOrphan);
  }

  // TODO(gc): stop watching resources discovery no longer lists (a deleted CRD); kube's GC
  // resyncs its monitors the same way.
  void discoverAndWatch() {
    auto found = discoverResources(*client);
    if (!found.ok()) {
      logger()->warn("garbagecollector: discovery failed: {}", found.status().message());
      return;
    }
    for (const auto& r : found->resources) {
      if (!r.has("list") || !r.has("watch") || !r.has("delete")) continue;
      // Built-in resources beyond the default set are left alone (events, roles, ...);
      // custom resources are all watched, as kube's GC watches every deletable resource.
      auto info = builtin->find(r.gvr);
      if (info && !info->custom) continue;
      watch(r.gvr, r.kind);
    }
  }
};

GarbageCollector::GarbageCollector() : impl_(std::make_unique<Impl>()) { impl_->self = this; }

GarbageCollector::~GarbageCollector() = default;

std::vector<api::GroupVersionResource> GarbageCollector::defaultResources() {
  return {
      {"", "v1", "pods"},
      {"", "v1", "services"},
      {"", "v1", "endpoints"},
      {"", "v1", "configmaps"},
      {"", "v1", "secrets"},
      {"", "v1", "serviceaccounts"},
      {"", "v1", "persistentvolumeclaims"},
      {"", "v1", "replicationcontrollers"},
      {"apps", "v1", "replicasets"},
      {"apps", "v1", "deployments"},
      {"apps", "v1", "statefulsets"},
      {"apps", "v1", "daemonsets"},
      {"apps", "v1", "controllerrevisions"},
      {"batch", "v1", "jobs"},
      {"batch", "v1", "cronjobs"},
      {"discovery.k8s.io", "v1", "endpointslices"},
      // Node heartbeats are Leases owned by their Node: a removed node takes its Lease.
      {"", "v1", "nodes"},
      {"coordination.k8s.io", "v1", "leases"},
  };
}

Status GarbageCollector::setup(ControllerContext& context) {
  impl_->client = context.client;
  impl_->informers = context.informers;
  impl_->mapper = std::make_unique<KindMapper>(context.client);
  impl_->builtin = api::ResourceRegistry::builtin();
  for (const auto& gvr : defaultResources()) {
    auto info = impl_->builtin->find(gvr);
    if (!info) continue;  // not served by this build
    impl_->watch(gvr, info->kind);
  }
  return Status::ok();
}

Status GarbageCollector::sync(const std::string& key) {
  if (key.rfind(kOrphanPrefix, 0) == 0) return impl_->attemptToOrphan(key.substr(std::string(kOrphanPrefix).size()));
  if (key.rfind(kDeletePrefix, 0) == 0) return impl_->attemptToDelete(key.substr(std::string(kDeletePrefix).size()));
  return Status::ok();
}

void GarbageCollector::tick() {
  if (impl_->client) impl_->discoverAndWatch();
}

size_t GarbageCollector::graphSize() const {
  std::lock_guard lock(impl_->mu);
  return impl_->nodes.size();
}

bool GarbageCollector::observed(const std::string& uid) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->nodes.find(uid);
  return it != impl_->nodes.end() && !it->second.isVirtual;
}

}  // namespace orrery::controllers
