#pragma once
// The REST layer of the API server: routes a request to discovery, OpenAPI or a resource,
// authenticates and authorizes it, and runs create/get/list/watch/update/patch/delete over
// the store and the watch caches. Internal to engine/apiserver.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/managed_fields.h"
#include "engine/api/resource.h"
#include "engine/api/schema.h"
#include "engine/api/status.h"
#include "engine/apiserver/apiserver.h"
#include "engine/apiserver/http_server.h"
#include "engine/apiserver/request_info.h"
#include "engine/apiserver/tokens.h"
#include "engine/apiserver/watch_cache.h"
#include "engine/store/store.h"

namespace orrery::apiserver {

/// Who is asking (user.Info).
struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
  bool authenticated = false;
};

/// One request on its way through the handler: the parsed path, the identity, the response.
struct Call {
  HttpRequest& http;
  std::shared_ptr<Responder> responder;
  RequestInfo info;
  UserInfo user;
  std::shared_ptr<const api::ResourceInfo> resource;
  std::vector<std::string> warnings;  // sent as `Warning: 299 - "..."` headers
  std::chrono::system_clock::time_point now;

  const std::string& param(const std::string& name) const { return http.param(name); }
  bool dryRun() const { return http.param("dryRun") == "All"; }
};

/// One event of a watch stream as sent: `{"type":...,"object":...}` and a newline.
std::shared_ptr<const std::string> watchEventLine(const std::string& type, nlohmann::json object);
/// Queues a line on a watch stream. False once the client is gone, or so far behind (64 MiB
/// queued) that the stream is ended, as kube-apiserver drops watchers that stop reading.
bool writeWatchLine(Responder& responder, std::shared_ptr<const std::string> line);
/// What `cache` would read back of `object`, stored under `key` as a text laid out as
/// `layout`: carried with the write to it (WrittenVersion) so that it need not scan the text.
/// Null without a cache (a write does not start one) or a layout.
store::AttachmentPtr writtenVersion(const WatchCache* cache, const std::string& key, const nlohmann::json& object,
                                    const StoredTextLayout& layout);
/// The same for a pod that a binding bound to `node`, laid out as `layout`, from the cached
/// version it edited (`previous`).
store::AttachmentPtr boundVersion(const WatchCache* cache, const CachedObject* previous, const std::string& node,
                                  const StoredTextLayout& layout);

/// The same for a watch cache's shared frame (Responder::writeFrame).
bool writeWatchLine(Responder& responder, std::shared_ptr<const WatchFrame> frame);

/// How a response body is wanted (Accept header).
enum class Representation { kObject, kTable, kPartialMetadata };

class ApiHandler {
 public:
  ApiHandler(std::shared_ptr<store::Store> store, std::shared_ptr<api::ResourceRegistry> resources,
             std::shared_ptr<api::SchemaRegistry> schemas, std::string clusterName);
  ~ApiHandler();

  void handle(HttpRequest& request, std::shared_ptr<Responder> responder);

  /// Creates the objects every cluster starts with (namespaces, the kubernetes service,
  /// RBAC roles). Idempotent: existing objects are left alone.
  api::Status bootstrap(uint16_t port);

  /// The store's revision at start-up: consistent reads wait for at least this.
  void noteStartRevision(int64_t revision) { noteWrite(revision); }
  api::Status loadCustomResourcesAtStart() { return loadCustomResources(); }

  /// Starts the watch cache of every stored resource now, as kube-apiserver does, so the
  /// first LIST or WATCH finds its cache warm instead of building it from the store.
  api::Status warmCaches();

  /// Signs and verifies service-account tokens (none: bearer tokens are refused).
  void setTokenSigner(std::unique_ptr<TokenSigner> signer) { tokens_ = std::move(signer); }

  /// Serves a read-only resource from an in-process provider (see apiserver.h).
  api::Status registerProvider(api::ResourceInfo info, std::shared_ptr<ObjectProvider> provider);

  /// Sends bookmarks to watchers that asked for them; called periodically.
  void tick();

  /// Ends every watch (server stopping).
  void shutdown();

 private:
  friend class CrudOps;

  // --- responses
  void sendJson(Call& call, int code, const nlohmann::json& body);
  /// The same, handing the object itself to a responder that takes it (an in-process client).
  void sendJson(Call& call, int code, nlohmann::json&& body);
  void sendRaw(Call& call, int code, const std::string& contentType, std::string body);
  void sendStatus(Call& call, const api::Status& status);

  // --- routing
  void route(Call& call);
  bool serveNonResource(Call& call);
  void serveResource(Call& call);
  UserInfo authenticate(const HttpRequest& request);
  /// The service account a bearer token speaks for, if the token is valid and the account
  /// (with the token's uid) still exists.
  api::Result<UserInfo> authenticateToken(const std::string& token);
  void createServiceAccountToken(Call& call, const nlohmann::json& request);
  api::Status authorize(const Call& call);

  // --- discovery and OpenAPI (discovery.cpp)
  void serveApiVersions(Call& call);
  void serveApiGroupList(Call& call);
  void serveApiGroup(Call& call, const std::string& group);
  void serveResourceList(Call& call, const std::string& group, const std::string& version);
  void serveAggregatedDiscovery(Call& call, bool legacy, const std::string& version);
  void serveOpenApi(Call& call);
  nlohmann::json apiResourceJson(const api::ResourceInfo& r,
                                 const std::vector<api::ResourceInfo>& all) const;

  // --- resources (crud.cpp)
  void get(Call& call);
  void list(Call& call);
  void watch(Call& call);
  void create(Call& call);
  void update(Call& call);
  void patch(Call& call);
  void remove(Call& call);
  void removeCollection(Call& call);
  void createSubresource(Call& call);  // binding, eviction, reviews

  // --- writes (crud_write.cpp)
  struct DeleteOptions {
    std::optional<int64_t> gracePeriodSeconds;
    std::string propagationPolicy;
    std::string preconditionUid, preconditionRv;
    bool dryRun = false;
  };
  api::Result<DeleteOptions> deleteOptions(Call& call) const;
  api::Result<nlohmann::json> deleteObject(Call& call, const std::string& ns, const std::string& name,
                                           const DeleteOptions& options, bool* deletedNow);
  api::Result<nlohmann::json> createObject(Call& call, nlohmann::json object, bool managedByApply);
  /// The update path shared by PUT, PATCH and apply: strategy, validation, managed fields,
  /// no-op detection, compare-and-swap on `current`. *casFailed tells a lost race (retry).
  /// `currentMayBeStale` (a copy from the watch cache): a no-op is not trusted either, since
  /// the stored object may differ; it too sets *casFailed so that the caller reads again.
  /// `parsedCurrent`, when the caller already parsed `current` (with its resourceVersion
  /// set), is taken instead of parsing it again.
  api::Result<nlohmann::json> commitUpdate(Call& call, nlohmann::json updated,
                                           const store::KeyValue& current,
                                           const std::string& subresource, bool managedByApply,
                                           bool* casFailed, bool currentMayBeStale = false,
                                           nlohmann::json* parsedCurrent = nullptr);
  /// The object at `key` that an update starts from. With *fromCache true it first takes the
  /// watch cache's copy, as kube-apiserver passes the cacher's object to GuaranteedUpdate: it
  /// saves a store read per write, and a stale copy only costs a failed compare-and-swap. On
  /// return *fromCache says where the copy came from; the caller must read again (fromCache
  /// false) when anything but a successful write came of a cached copy.
  /// `parsed` (optional) receives the cached copy already parsed, when an in-process watcher
  /// had it parsed and it is still held (null otherwise): parseCurrent() then copies it.
  /// `cached` (optional) receives the cache's version itself (null when read from the store).
  api::Result<std::optional<store::KeyValue>> currentObject(const api::ResourceInfo& info,
                                                            const std::string& key, bool* fromCache,
                                                            std::shared_ptr<const nlohmann::json>* parsed = nullptr,
                                                            CachedPtr* cached = nullptr);
  /// The object currentObject() gave, as JSON with metadata.resourceVersion set: a copy of
  /// `parsed` when there is one, else the text parsed.
  static nlohmann::json parseCurrent(const store::KeyValue& current, const std::shared_ptr<const nlohmann::json>& parsed);
  api::ManagerInfo managerFor(const Call& call, const std::string& subresource) const;
  nlohmann::json scaleOf(const nlohmann::json& object) const;

  // --- admission (admission.cpp): the default plugins that read cluster state
  /// Priority: resolves spec.priorityClassName (or the global default) into spec.priority
  /// and spec.preemptionPolicy.
  api::Status admitPriority(Call& call, nlohmann::json& pod);
  /// What a pod takes from a PriorityClass.
  struct PriorityClassFacts {
    std::string name;
    int64_t value = 0;
    std::string preemptionPolicy;
  };
  /// The PriorityClass named `name`, or the global default one for "" (nullopt: none).
  std::optional<PriorityClassFacts> priorityClass(const std::string& name);
  /// LimitRanger: container default requests/limits, then min/max/ratio per container and pod.
  api::Status admitLimitRanges(Call& call, nlohmann::json& pod);
  /// ResourceQuota: refuses what would exceed a quota of the namespace, else charges
  /// status.used of every quota it counts against (compare-and-swap, all at once).
  api::Status admitQuota(Call& call, const nlohmann::json& object);
  /// pods/eviction: the PodDisruptionBudget check, taking one disruption from the budget.
  api::Status checkEviction(Call& call, const nlohmann::json& pod);

  // --- access reviews and custom resources (reviews.cpp, custom_resources.cpp)
  static bool isReviewResource(const api::ResourceInfo& info);
  void createReview(Call& call);
  /// What an authorization decision is about (authorizer.Attributes).
  struct Attributes {
    bool resourceRequest = true;
    std::string verb, group, resource, subresource, name, ns;
    std::string path;  // non-resource requests
  };
  /// RBAC (rbac.cpp): system:masters, or a rule of a role bound to the user.
  bool allowed(const UserInfo& user, const Attributes& attributes);
  /// How current a read of a watch cache must be.
  enum class Freshness {
    /// Every write acknowledged so far, by anyone (RBAC). On etcd that asks the store its
    /// revision first.
    kConsistent,
    /// Every write this server made (admission): a LimitRange, quota or PriorityClass created
    /// just before a pod applies to it, which kube's informer-fed plugins may miss. At once
    /// when the cache has caught up; never a store round trip.
    kOwnWrites,
  };
  /// The watch cache of `gvr` once it is as current as `freshness` asks (after a second it is
  /// read as it is); null when the resource has none.
  WatchCache* currentCache(const api::GroupVersionResource& gvr, Freshness freshness);
  /// The objects of a resource (in `ns`, "" = all) from its watch cache.
  std::vector<nlohmann::json> storedObjects(const api::GroupVersionResource& gvr, const std::string& ns,
                                            Freshness freshness = Freshness::kConsistent);
  /// As storedObjects, without parsing: the cache's entries (optionally only the one named
  /// `name`), for admission's per-create checks that usually need none of them parsed.
  std::vector<CachedPtr> cachedObjects(const api::GroupVersionResource& gvr, const std::string& ns,
                                       const std::string& name = "",
                                       Freshness freshness = Freshness::kOwnWrites);
  api::Status admitCustomResourceDefinition(nlohmann::json& crd, const nlohmann::json* old);
  /// Called after every successful write: keeps served custom resources in step with CRDs.
  void afterWrite(const api::ResourceInfo& info, const nlohmann::json& object, bool deleted);
  /// Registers the resources of every stored CRD (start-up).
  api::Status loadCustomResources();
  void registerCustomResource(const nlohmann::json& crd);
  void unregisterCustomResource(const nlohmann::json& crd);

  // --- shared machinery (crud.cpp)
  WatchCache* cacheFor(const api::ResourceInfo& info, api::Status* error);
  /// The resource's cache if a read has started one; writes use it without starting one.
  WatchCache* existingCacheFor(const api::ResourceInfo& info);
  std::string storageKey(const api::ResourceInfo& info, const std::string& ns,
                         const std::string& name) const;
  api::Result<nlohmann::json> decodeBody(Call& call, const std::string& body,
                                         const std::string& contentType);
  /// Types, unknown and duplicate fields (fieldValidation). `stored`: the object this one
  /// updates, as stored; a built-in's members it holds unchanged are not checked again.
  api::Status checkAndPrune(Call& call, nlohmann::json& object, const api::Schema* schema,
                            const std::string& rawBody, const nlohmann::json* stored = nullptr);
  api::Result<nlohmann::json> admitAndStore(Call& call, nlohmann::json object,
                                            const std::optional<store::KeyValue>& current,
                                            bool* created);
  api::Status ensureNamespaceAccepts(Call& call, const std::string& ns);
  void allocateServiceAddresses(nlohmann::json& service, const nlohmann::json* old);
  Representation representation(const Call& call) const;
  /// namespace, name, labelSelector and fieldSelector of a list, watch or deletecollection.
  api::Result<Filter> filterFromQuery(const Call& call) const;
  void sendObject(Call& call, int code, const nlohmann::json& object);
  void sendObject(Call& call, int code, nlohmann::json&& object);
  /// Answers a list from the store as of revision `rv`, keys after `afterKey` ("": from the
  /// start): continued lists whose first page the cache no longer holds, and exact-revision
  /// lists of uncached resources. `compactedMessage` is the 410's message.
  void listFromStoreAt(Call& call, WatchCache& cache, const Filter& filter, const std::string& afterKey,
                       int64_t rv, int64_t limit, const std::string& compactedMessage);
  void sendList(Call& call, const std::vector<CachedPtr>& items, int64_t revision,
                const std::string& continueToken, std::optional<int64_t> remaining);
  const api::Schema* schemaFor(const api::ResourceInfo& info) const;
  /// Records a write this server made at `revision` (of `key`, when it is one resource's).
  void noteWrite(int64_t revision, const std::string& key = "");
  /// The same for a write of `cache`'s resource, with the cache at hand (no lookup); without
  /// one (none had started when the write began), it is looked up by `key`.
  void noteWrite(int64_t revision, const std::string& key, WatchCache* cache);
  int64_t consistentRevision();
  /// The revision `cache` must have seen before a read that needs only its resource current:
  /// the newest write this server made under its prefix, or, when others may write the store
  /// too, the store's current revision.
  int64_t freshRevisionFor(WatchCache& cache);

  std::shared_ptr<store::Store> store_;
  std::shared_ptr<api::ResourceRegistry> resources_;
  std::shared_ptr<api::SchemaRegistry> schemas_;
  std::string clusterName_;

  std::mutex cachesMu_;
  std::map<std::string, std::unique_ptr<WatchCache>> caches_;  // by storage prefix
  std::atomic<int64_t> lastWrittenRevision_{0};
  /// True when others may write the store too (etcd): consistent reads ask it its revision.
  bool storeIsShared_ = false;
  std::mutex allocMu_;  // service IP / node port allocation
  /// priorityClass()'s answers as of the PriorityClasses' last change (every pod create asks
  /// for the global default; the classes change seldom).
  std::mutex priorityMemoMu_;
  int64_t priorityMemoRevision_ = -1;
  std::map<std::string, std::optional<PriorityClassFacts>> priorityMemo_;

  // Cached serialized discovery and OpenAPI documents, rebuilt when resources change.
  std::mutex docsMu_;
  std::map<std::string, std::string> docs_;
  std::atomic<bool> shuttingDown_{false};
  std::unique_ptr<TokenSigner> tokens_;
  std::mutex providersMu_;
  std::map<api::GroupVersionResource, std::shared_ptr<ObjectProvider>> providers_;
  std::shared_ptr<ObjectProvider> providerFor(const api::GroupVersionResource& gvr);
  void serveProvided(Call& call, const std::shared_ptr<ObjectProvider>& provider);
  void watchProvided(Call& call, const std::shared_ptr<ObjectProvider>& provider);
  /// A list's or watch's ?resourceVersion as a revision (0 when absent); 400 when it is not an
  /// integer.
  static api::Result<int64_t> resourceVersionParam(const Call& call);
  /// When a watch ends: after ?timeoutSeconds, or a random 30-60 minutes as kube-apiserver
  /// ends watches; 400 when it is not an integer.
  static api::Result<std::chrono::steady_clock::time_point> watchDeadline(const Call& call);
  /// Ends every watch of a provided resource and joins its thread (shutdown).
  void stopProvidedWatches();
  /// Watches of provided resources, each on a thread of its own (they are few: kubectl -w).
  struct ProvidedWatch;
  std::mutex providedWatchesMu_;
  std::vector<std::shared_ptr<ProvidedWatch>> providedWatches_;
};

}  // namespace orrery::apiserver
