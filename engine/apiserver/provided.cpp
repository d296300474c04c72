// Read-only resources served from an in-process component's memory (ObjectProvider): the
// scheduler's decision records. They take the same routing, RBAC, discovery and table paths
// as stored resources; get, list and (when the provider tells its changes) watch are served
// from the provider instead of a cache.

#include <algorithm>
#include <atomic>
#include <thread>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/api/table.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Status;
using nlohmann::json;

api::Status ApiHandler::registerProvider(api::ResourceInfo info, std::shared_ptr<ObjectProvider> provider) {
  if (!provider) return Status::badRequest("registerProvider: no provider for " + info.qualifiedResource());
  // Provided resources print their columns from jsonPath, as custom resources do.
  info.custom = true;
  info.verbs = provider->watchable() ? std::vector<std::string>{"get", "list", "watch"}
                                     : std::vector<std::string>{"get", "list"};
  auto gvr = info.gvr();
  {
    std::lock_guard lock(providersMu_);
    providers_[gvr] = std::move(provider);
  }
  resources_->add(std::move(info));
  std::lock_guard lock(docsMu_);
  docs_.clear();  // discovery and OpenAPI now list the resource
  return {};
}

std::shared_ptr<ObjectProvider> ApiHandler::providerFor(const api::GroupVersionResource& gvr) {
  std::lock_guard lock(providersMu_);
  auto it = providers_.find(gvr);
  return it == providers_.end() ? nullptr : it->second;
}

namespace {

// Whether a provided object is one a request's filter (namespace, name, selectors) wants.
bool wanted(const json& object, const Filter& filter) {
  if (!filter.ns.empty() && api::metaString(object, "namespace") != filter.ns) return false;
  if (!filter.name.empty() && api::metaString(object, "name") != filter.name) return false;
  if (filter.labels && !filter.labels->matches(api::memberOrEmpty(api::memberOrEmpty(object, "metadata"), "labels")))
    return false;
  if (filter.fields && !filter.fields->matches(object)) return false;
  return true;
}

int64_t revisionOf(const json& object) {
  try {
    return std::stoll(api::metaString(object, "resourceVersion"));
  } catch (...) {
    return 0;
  }
}

}  // namespace

void ApiHandler::serveProvided(Call& call, const std::shared_ptr<ObjectProvider>& provider) {
  const auto& info = *call.resource;
  const std::string& verb = call.info.verb;
  if (verb == "watch" && call.info.subresource.empty() && provider->watchable()) return watchProvided(call, provider);
  if (!call.info.subresource.empty() || (verb != "get" && verb != "list")) {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  if (verb == "get") {
    auto object = provider->get(call.info.ns, call.info.name);
    if (!object) return sendStatus(call, Status::notFound(info.group, info.resource, call.info.name));
    return sendObject(call, 200, std::move(*object));
  }
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  Filter filter = std::move(*parsedFilter);
  filter.ns = call.info.ns;
  std::vector<json> items;
  // A watch from this list's resourceVersion sees every change after it.
  int64_t revision = 0;
  for (auto& object : provider->listAt(call.info.ns, &revision)) {
    if (!wanted(object, filter)) continue;
    revision = std::max(revision, revisionOf(object));
    items.push_back(std::move(object));
  }
  std::sort(items.begin(), items.end(), [](const json& a, const json& b) {
    return std::make_pair(api::metaString(a, "namespace"), api::metaString(a, "name")) <
           std::make_pair(api::metaString(b, "namespace"), api::metaString(b, "name"));
  });
  if (representation(call) == Representation::kTable) {
    std::string include = call.param("includeObject").empty() ? "Metadata" : call.param("includeObject");
    return sendJson(call, 200, api::buildTable(info, items, include, std::to_string(revision), "", call.now));
  }
  json list = {{"kind", info.listKind},
               {"apiVersion", info.apiVersion()},
               {"metadata", {{"resourceVersion", std::to_string(revision)}}},
               {"items", std::move(items)}};
  sendJson(call, 200, list);
}

// One watch of a provided resource: a thread that waits for the provider's changes and
// writes them as watch events, until the client leaves, its time is up, or the server stops.
struct ApiHandler::ProvidedWatch {
  std::shared_ptr<ObjectProvider> provider;
  std::shared_ptr<Responder> responder;
  api::ResourceInfo info;
  Filter filter;
  bool table = false;
  int64_t from = 0;            // send the changes after this revision
  bool initialEvents = false;  // first, every current object as ADDED
  std::chrono::steady_clock::time_point deadline;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::thread thread;

  bool send(const std::string& type, json object) {
    if (!table) return writeWatchLine(*responder, watchEventLine(type, std::move(object)));
    json row = api::buildTable(info, {object}, "Metadata", api::metaString(object, "resourceVersion"), "",
                               std::chrono::system_clock::now());
    return writeWatchLine(*responder, watchEventLine(type, std::move(row)));
  }

  void run() {
    int64_t seen = from;
    if (initialEvents) {
      // As a watch without a resourceVersion: the state now, then what changes after it.
      auto objects = provider->listAt(filter.ns, &seen);
      std::sort(objects.begin(), objects.end(), [](const json& a, const json& b) { return revisionOf(a) < revisionOf(b); });
      for (auto& object : objects) {
        if (wanted(object, filter) && !send("ADDED", std::move(object))) return finish(false);
      }
    }
    while (!stop) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return finish(true);
      // Wakes at least every second to notice a client that left or a server that stops.
      provider->waitForChange(seen, std::min(deadline, now + std::chrono::seconds(1)));
      std::vector<ObjectProvider::Change> changes;
      int64_t current = 0;
      if (!provider->changesSince(seen, &changes, &current)) {
        Status expired = Status::expired("too old resource version: " + std::to_string(seen) + " (" +
                                         std::to_string(current) + ")");
        responder->writeChunk(watchEventLine("ERROR", expired.toJson()));
        return finish(true);
      }
      for (auto& change : changes) {
        if (wanted(change.object, filter) && !send(change.type, std::move(change.object))) return finish(false);
      }
      seen = std::max(seen, current);
    }
    finish(true);
  }

  void finish(bool endStream) {
    if (endStream) responder->endStream();
    done = true;
  }
};

void ApiHandler::watchProvided(Call& call, const std::shared_ptr<ObjectProvider>& provider) {
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  auto watch = std::make_shared<ProvidedWatch>();
  watch->provider = provider;
  watch->responder = call.responder;
  watch->info = *call.resource;
  watch->filter = std::move(*parsedFilter);
  watch->filter.ns = call.info.ns;
  watch->table = representation(call) == Representation::kTable;
  const std::string& rv = call.param("resourceVersion");
  watch->initialEvents = rv.empty() || rv == "0" || truthyParam(call.param("sendInitialEvents"));
  auto revision = resourceVersionParam(call);
  if (!revision.ok()) return sendStatus(call, revision.status());
  watch->from = *revision;
  auto deadline = watchDeadline(call);
  if (!deadline.ok()) return sendStatus(call, deadline.status());
  watch->deadline = *deadline;

  call.responder->startStream(200, "application/json", true);
  std::weak_ptr<ProvidedWatch> weak = watch;
  call.responder->onClose([weak] {
    if (auto w = weak.lock()) w->stop = true;
  });
  std::lock_guard lock(providedWatchesMu_);
  // Threads of watches that ended are joined here, as new ones start (and at shutdown).
  std::erase_if(providedWatches_, [](const std::shared_ptr<ProvidedWatch>& w) {
    if (!w->done) return false;
    w->thread.join();
    return true;
  });
  if (shuttingDown_) {
    watch->finish(true);
    return;
  }
  watch->thread = std::thread([w = watch.get()] { w->run(); });
  providedWatches_.push_back(std::move(watch));
}

void ApiHandler::stopProvidedWatches() {
  std::vector<std::shared_ptr<ProvidedWatch>> watches;
  {
    std::lock_guard lock(providedWatchesMu_);
    watches.swap(providedWatches_);
  }
  for (auto& w : watches) w->stop = true;
  for (auto& w : watches) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace orrery::apiserver
