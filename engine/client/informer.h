#pragma once
// Shared informers: one list+watch per resource kept in a local cache, with handlers that
// hear every add, update and delete in order, as client-go's SharedIndexInformer. The cache
// survives a broken watch: the informer re-watches from its last resourceVersion and relists
// on 410 Gone, telling handlers only what actually changed.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/client/client.h"

namespace orrery::client {

/// Objects in a cache are immutable and shared: copy before changing.
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

/// Handlers run one at a time, in the order of events: a relist's on the informer's thread,
/// a watch event's on the thread that delivers the watch stream (no hand-off between them).
/// They should be quick: a slow one holds back the stream, as a slow watcher would.
struct EventHandler {
  std::function<void(const ObjectPtr& object)> onAdd;
  std::function<void(const ObjectPtr& oldObject, const ObjectPtr& newObject)> onUpdate;
  /// For a delete seen only through a relist, `object` is the last state the cache had.
  std::function<void(const ObjectPtr& object)> onDelete;
};

/// Index function: the index values of an object (e.g. its namespace, its node name).
using IndexFunc = std::function<std::vector<std::string>(const nlohmann::json& object)>;

/// Changes an object before it enters a cache (client-go's TransformFunc): runs once per
/// listed or watched object, on the thread that hands it to the handlers.
using TransformFunc = std::function<void(nlohmann::json& object)>;

// stripManagedFields (client.h) is the transform for informers that drop managed fields.

class Informer {
 public:
  Informer(std::shared_ptr<Client> client, api::GroupVersionResource gvr, std::string ns = "",
           ListOptions selectors = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  /// Handlers added after start() first get an onAdd for every cached object.
  void addHandler(EventHandler handler);
  /// Sets the transform before start().
  void setTransform(TransformFunc transform);
  /// Adds an index before start(). "namespace" exists by default.
  void addIndex(const std::string& name, IndexFunc func);

  /// Lists, then watches on a background thread. Idempotent.
  void start();
  /// Stops the watch and the thread; handlers are not called after stop() returns.
  void stop();
  bool hasSynced() const { return synced_.load(); }
  /// Waits until the first list has been delivered to handlers.
  bool waitForSync(std::chrono::milliseconds timeout);

  ObjectPtr get(const std::string& key) const;  // objectKey form; null if absent
  std::vector<ObjectPtr> list() const;
  std::vector<ObjectPtr> byIndex(const std::string& index, const std::string& value) const;
  /// The resourceVersion the cache is current to.
  std::string lastResourceVersion() const;
  const api::GroupVersionResource& gvr() const { return gvr_; }

 private:
  struct State;
  std::shared_ptr<State> state_;
  api::GroupVersionResource gvr_;
  std::atomic<bool> synced_{false};
};

/// One informer per (resource, namespace="") shared by every component of a process.
class InformerFactory {
 public:
  explicit InformerFactory(std::shared_ptr<Client> client);
  ~InformerFactory();
  /// The shared informer for `gvr` over all namespaces (created on first use, not started).
  Informer& informer(const api::GroupVersionResource& gvr);
  /// A transform for every informer of the factory (informers.WithTransform); before start().
  void setTransform(TransformFunc transform);
  /// Starts every informer created so far (and later ones when they are created).
  void start();
  /// Waits until every started informer has synced.
  bool waitForSync(std::chrono::milliseconds timeout);
  void stop();
  std::shared_ptr<Client> client() const { return client_; }

 private:
  std::shared_ptr<Client> client_;
  mutable std::mutex mu_;
  std::map<api::GroupVersionResource, std::unique_ptr<Informer>> informers_;
  TransformFunc transform_;
  bool started_ = false;
};

}  // namespace orrery::client
