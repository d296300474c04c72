// Read-only resources served from an in-process component's memory (ObjectProvider): the
// scheduler's decision records. They take the same routing, RBAC, discovery and table paths
// as stored resources; only get and list are served, from the provider instead of a cache.

#include <algorithm>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/api/table.h"
#include "engine/apiserver/handler.h"

namespace orrery::apiserver {

using api::Status;
using nlohmann::json;

api::Status ApiHandler::registerProvider(api::ResourceInfo info, std::shared_ptr<ObjectProvider> provider) {
  if (!provider) return Status::badRequest("registerProvider: no provider for " + info.qualifiedResource());
  // Provided resources print their columns from jsonPath, as custom resources do.
  info.custom = true;
  info.verbs = {"get", "list"};
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

void ApiHandler::serveProvided(Call& call, ObjectProvider& provider) {
  const auto& info = *call.resource;
  const std::string& verb = call.info.verb;
  if (!call.info.subresource.empty() || (verb != "get" && verb != "list")) {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  if (verb == "get") {
    auto object = provider.get(call.info.ns, call.info.name);
    if (!object) return sendStatus(call, Status::notFound(info.group, info.resource, call.info.name));
    return sendObject(call, 200, *object);
  }
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  const Filter& filter = *parsedFilter;
  std::vector<json> items;
  int64_t revision = 0;
  for (auto& object : provider.list(call.info.ns)) {
    const json& meta = object.value("metadata", json::object());
    if (!filter.name.empty() && meta.value("name", "") != filter.name) continue;
    if (filter.labels && !filter.labels->matches(meta.value("labels", json::object()))) continue;
    if (filter.fields && !filter.fields->matches(object)) continue;
    try {
      revision = std::max<int64_t>(revision, std::stoll(meta.value("resourceVersion", "0")));
    } catch (...) {
    }
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

}  // namespace orrery::apiserver
