// Resource requests: get, list, create, update, patch, delete, and the subresources that
// live in the control plane (status, scale, binding, eviction, finalize, access reviews).

#include <algorithm>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "engine/api/json_parse.h"
#include "engine/api/base64.h"
#include "engine/api/kinds.h"
#include "engine/api/managed_fields.h"
#include "engine/api/object.h"
#include "engine/api/patch.h"
#include "engine/api/schema_protobuf.h"
#include "engine/api/selector.h"
#include "engine/api/table.h"
#include "engine/api/yaml.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Result;
using api::Status;
using nlohmann::json;

namespace {

constexpr auto kFreshTimeout = std::chrono::seconds(3);


/// kube's continue token: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}.
std::string encodeContinue(int64_t revision, const std::string& keySuffix) {
  json token = {{"v", "meta.k8s.io/v1"}, {"rv", revision}, {"start", keySuffix + std::string(1, '\0')}};
  return api::base64Encode(token.dump());
}

Status badContinue(const std::string& why) {
  return Status::badRequest("invalid continue token: " + why);
}

Result<std::pair<int64_t, std::string>> decodeContinue(const std::string& token) {
  std::string raw;
  if (!api::base64Decode(token, &raw)) return badContinue("not base64");
  json j = json::parse(raw, nullptr, false);
  if (!j.is_object() || j.value("v", "") != "meta.k8s.io/v1" || !j.contains("rv") ||
      !j["rv"].is_number_integer() || !j.contains("start") || !j["start"].is_string()) {
    return badContinue("not a continue token issued by this server");
  }
  std::string start = j["start"].get<std::string>();
  if (!start.empty() && start.back() == '\0') start.pop_back();
  if (start.find("..") != std::string::npos || (!start.empty() && start[0] == '/')) {
    return badContinue("invalid start key");
  }
  return std::make_pair(j["rv"].get<int64_t>(), start);
}

std::string kindOfList(const api::ResourceInfo& info) {
  return info.listKind.empty() ? info.kind + "List" : info.listKind;
}


}  // namespace

std::string storedForm(const json& object, StoredTextLayout* layout) {
  auto metadata = object.find("metadata");
  if (!object.is_object() || metadata == object.end() || !metadata->is_object()) {
    if (layout) *layout = {};
    return api::dumpJson(object);
  }
  // dumpJson's text, written member by member so that the metadata's resourceVersion is left
  // out without editing the object, and so that the layout is known without a scan.
  std::string out;
  out.reserve(1024);
  StoredTextLayout found;
  out += '{';
  bool firstMember = true;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!firstMember) out += ',';
    firstMember = false;
    api::appendJsonString(out, it.key());
    out += ':';
    if (it != metadata) {
      api::appendJson(out, *it);
      continue;
    }
    out += '{';
    found.metadataBody = out.size();
    size_t previousEnd = 0;  // where the last member's value ended (0: none yet)
    for (auto m = it->begin(); m != it->end(); ++m) {
      if (m.key() == "resourceVersion") continue;
      if (previousEnd) out += ',';
      const size_t keyBegin = out.size();
      if (found.managedFields.present && found.managedFields.nextBegin == 0 &&
          found.managedFields.valueEnd == previousEnd) {
        found.managedFields.nextBegin = keyBegin;
      }
      api::appendJsonString(out, m.key());
      out += ':';
      api::appendJson(out, *m);
      if (m.key() == "managedFields") {
        found.managedFields.present = true;
        found.managedFields.begin = keyBegin;
        found.managedFields.valueEnd = out.size();
        found.managedFields.previousEnd = previousEnd;
      }
      previousEnd = out.size();
    }
    found.metadataEmpty = previousEnd == 0;
    out += '}';
  }
  out += '}';
  if (layout) *layout = found;
  return out;
}

// ---------------------------------------------------------------------------------------
// Shared machinery

std::string ApiHandler::storageKey(const api::ResourceInfo& info, const std::string& ns,
                                   const std::string& name) const {
  return info.namespaced ? info.storagePrefix + ns + "/" + name : info.storagePrefix + name;
}

const api::Schema* ApiHandler::schemaFor(const api::ResourceInfo& info) const {
  auto s = schemas_->find(info.schemaName);
  // Definitions live as long as the registry (CRD schemas: until the CRD is deleted).
  return s.get();
}

void ApiHandler::noteWrite(int64_t revision, const std::string& key, WatchCache* cache) {
  if (!cache) return noteWrite(revision, key);
  noteWrite(revision);
  cache->noteLocalWrite(revision);
}

void ApiHandler::noteWrite(int64_t revision, const std::string& key) {
  int64_t seen = lastWrittenRevision_.load();
  while (revision > seen && !lastWrittenRevision_.compare_exchange_weak(seen, revision)) {
  }
  if (key.empty()) return;
  std::lock_guard lock(cachesMu_);
  // Storage prefixes end in '/' and none is the start of another: the greatest prefix not
  // after the key is the only candidate.
  auto it = caches_.upper_bound(key);
  if (it == caches_.begin()) return;
  --it;
  if (key.compare(0, it->first.size(), it->first) == 0) it->second->noteLocalWrite(revision);
}

int64_t ApiHandler::freshRevisionFor(WatchCache& cache) {
  return storeIsShared_ ? consistentRevision() : cache.lastLocalWrite();
}

int64_t ApiHandler::consistentRevision() {
  // SQLite: every write goes through this server, so the newest revision it wrote is the
  // store's current revision as far as any client can have observed. etcd may be written by
  // others (another API server, etcdctl): ask it for its revision, as kube-apiserver's
  // consistent reads from cache do, with a count-only range of an empty key range.
  if (!storeIsShared_) return lastWrittenRevision_.load();
  store::RangeRequest probe;
  probe.key = "/registry/\xff";
  probe.countOnly = true;
  auto head = store_->range(probe);
  if (!head.ok()) return lastWrittenRevision_.load();
  return std::max(head->revision, lastWrittenRevision_.load());
}

WatchCache* ApiHandler::cacheFor(const api::ResourceInfo& info, Status* error) {
  if (info.storagePrefix.empty()) {
    // Nothing of this resource is stored (componentstatuses, bindings, reviews).
    *error = Status::methodNotAllowed("the server does not allow this method on the requested resource");
    return nullptr;
  }
  std::lock_guard lock(cachesMu_);
  // One cache per stored prefix: resources served from the same keys (core/v1 and
  // events.k8s.io/v1 Events, a custom resource's versions) read the same objects, and a cached
  // object does not depend on the version it is served as.
  const std::string& id = info.storagePrefix;
  auto it = caches_.find(id);
  if (it != caches_.end()) return it->second.get();
  // As kube-apiserver: Events have no watch cache (they are the most numerous objects, and
  // what reads them, `kubectl describe` and `get events`, can afford a read of the store).
  auto cache = std::make_unique<WatchCache>(*store_, info, 10000, 4u << 20,
                                            servedUncached(info.group, info.resource) ? WatchCache::Mode::kUncached
                                                                                      : WatchCache::Mode::kCached);
  if (auto st = cache->start(); !st.isOk()) {
    *error = st;
    return nullptr;
  }
  auto* raw = cache.get();
  caches_[id] = std::move(cache);
  return raw;
}

WatchCache* ApiHandler::existingCacheFor(const api::ResourceInfo& info) {
  std::lock_guard lock(cachesMu_);
  auto it = caches_.find(info.storagePrefix);
  return it == caches_.end() ? nullptr : it->second.get();
}

store::AttachmentPtr writtenVersion(const WatchCache* cache, const std::string& key, const json& object,
                                    const StoredTextLayout& layout) {
  // (A layout without metadata is one the cache must find out for itself.)
  if (!cache || cache->mode() != WatchCache::Mode::kCached || layout.metadataBody == 0) return nullptr;
  auto written = std::make_shared<WrittenVersion>();
  written->layout = layout;
  written->selectable = cache->selectableOf(key, object);
  return written;
}

store::AttachmentPtr boundVersion(const WatchCache* cache, const CachedObject* previous, const std::string& node,
                                  const StoredTextLayout& layout) {
  if (!previous || !cache || cache->mode() != WatchCache::Mode::kCached || layout.metadataBody == 0) return nullptr;
  auto written = std::make_shared<WrittenVersion>();
  written->layout = layout;
  // A binding changes one selectable field.
  written->selectable = previous->selectable->with("spec.nodeName", node);
  return written;
}

api::Result<Filter> ApiHandler::filterFromQuery(const Call& call) const {
  const auto& info = *call.resource;
  Filter filter;
  filter.ns = call.info.ns;
  filter.name = call.info.name;  // watch of one object: /api/v1/watch/namespaces/ns/pods/name
  if (!call.param("labelSelector").empty()) {
    auto sel = api::LabelSelector::parse(call.param("labelSelector"));
    if (!sel.ok()) return sel.status();
    filter.labels = std::move(*sel);
  }
  if (!call.param("fieldSelector").empty()) {
    auto sel = api::FieldSelector::parse(call.param("fieldSelector"), info.group, info.kind);
    if (!sel.ok()) return sel.status();
    filter.fields = std::move(*sel);
  }
  return filter;
}

api::Status ApiHandler::warmCaches() {
  for (const auto& info : resources_->all()) {
    if (info.storagePrefix.empty()) continue;  // reviews, bindings: never stored
    Status error;
    if (!cacheFor(info, &error)) return error;
  }
  return {};
}

Representation ApiHandler::representation(const Call& call) const {
  const std::string& accept = call.http.header("accept");
  // The first acceptable clause wins; kubectl lists Table first with a JSON fallback.
  size_t start = 0;
  while (start < accept.size()) {
    auto end = accept.find(',', start);
    std::string clause = accept.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? accept.size() : end + 1;
    if (clause.find("as=Table") != std::string::npos && clause.find("g=meta.k8s.io") != std::string::npos) {
      return Representation::kTable;
    }
    if (clause.find("as=PartialObjectMetadata") != std::string::npos) return Representation::kPartialMetadata;
    if (clause.find("application/json") != std::string::npos || clause.find("*/*") != std::string::npos) {
      return Representation::kObject;
    }
  }
  return Representation::kObject;
}

void ApiHandler::sendObject(Call& call, int code, const json& object) {
  switch (representation(call)) {
    case Representation::kTable: {
      auto table = api::buildTable(*call.resource, {object}, call.param("includeObject").empty() ? "Metadata" : call.param("includeObject"),
                                   api::metaString(object, "resourceVersion"), "", call.now);
      return sendJson(call, code, table);
    }
    case Representation::kPartialMetadata:
      return sendJson(call, code,
                      {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", object.value("metadata", json::object())}});
    case Representation::kObject:
      return sendJson(call, code, object);
  }
}

void ApiHandler::sendObject(Call& call, int code, json&& object) {
  if (representation(call) == Representation::kObject) return sendJson(call, code, std::move(object));
  sendObject(call, code, static_cast<const json&>(object));
}

void ApiHandler::sendList(Call& call, const std::vector<CachedPtr>& items, int64_t revision,
                          const std::string& continueToken, std::optional<int64_t> remaining) {
  const auto& info = *call.resource;
  Representation rep = representation(call);
  if (rep == Representation::kTable) {
    std::vector<json> objects;
    objects.reserve(items.size());
    for (const auto& item : items) objects.push_back(item->parse());
    std::string include = call.param("includeObject").empty() ? "Metadata" : call.param("includeObject");
    auto table = api::buildTable(info, objects, include, std::to_string(revision), continueToken, call.now);
    if (remaining && !continueToken.empty()) table["metadata"]["remainingItemCount"] = *remaining;
    return sendJson(call, 200, table);
  }
  json meta = {{"resourceVersion", std::to_string(revision)}};
  if (!continueToken.empty()) meta["continue"] = continueToken;
  if (remaining && !continueToken.empty()) meta["remainingItemCount"] = *remaining;
  std::string body;
  if (rep == Representation::kPartialMetadata) {
    body = R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":)" + meta.dump() + R"(,"items":[)";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) body.push_back(',');
      json m = {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"},
                {"metadata", items[i]->parse().value("metadata", json::object())}};
      body += m.dump();
    }
    body += "]}";
    return sendRaw(call, 200, "application/json", std::move(body));
  }
  // Items are cached as serialized JSON: the list is assembled without re-encoding them.
  size_t total = 128;
  for (const auto& item : items) total += item->jsonSize() + 1;
  const std::string head = R"({"kind":")" + kindOfList(info) + R"(","apiVersion":")" + info.apiVersion() +
                           R"(","metadata":)" + meta.dump() + R"(,"items":[)";
  constexpr size_t kStreamAbove = 1 << 20;
  constexpr size_t kChunk = 256 << 10;
  if (total <= kStreamAbove) {
    body.reserve(total);
    body += head;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) body.push_back(',');
      items[i]->appendJson(&body);
    }
    body += "]}";
    return sendRaw(call, 200, "application/json", std::move(body));
  }
  // A large list goes out in chunks while it is assembled, so the client starts reading
  // (and TLS starts encrypting) long before the last item is copied.
  call.responder->startStream(200, "application/json", false);
  auto chunk = std::make_shared<std::string>();
  chunk->reserve(kChunk + 64 * 1024);
  *chunk += head;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) chunk->push_back(',');
    items[i]->appendJson(chunk.get());
    if (chunk->size() >= kChunk) {
      if (!call.responder->writeChunk(std::move(chunk))) return;
      chunk = std::make_shared<std::string>();
      chunk->reserve(kChunk + 64 * 1024);
    }
  }
  *chunk += "]}";
  call.responder->writeChunk(std::move(chunk));
  call.responder->endStream();
}

Result<json> ApiHandler::decodeBody(Call& call, const std::string& body, const std::string& contentType) {
  std::string type = mediaType(contentType);
  json object;
  if (call.http.bodyObject && &body == &call.http.body) {
    // A caller in this process sent the object itself: nothing to decode, and no duplicate
    // fields can hide in it.
    object = std::move(*call.http.bodyObject);
    call.http.bodyObject.reset();
  } else if (type.empty() || type == "application/json" || type == "*/*") {
    object = api::parseJson(body);
    if (object.is_discarded()) {
      // Find where it breaks, for the message.
      try {
        (void)json::parse(body);
      } catch (const json::parse_error& e) {
        return Status::badRequest(std::string("the request body is not valid JSON: ") + e.what() +
                                  "; send a JSON object (or YAML with Content-Type: application/yaml)");
      }
      return Status::badRequest("the request body is not valid JSON");
    }
  } else if (type == "application/yaml") {
    auto parsed = api::yamlToJson(body);
    if (!parsed.ok()) return parsed.status();
    object = std::move(*parsed);
  } else if (type == "application/vnd.kubernetes.protobuf" && call.resource && !call.resource->custom) {
    // kubectl's typed clients (create configmap, auth can-i, ...) send protobuf.
    auto decoded = api::decodeKubernetesProtobuf(body, *schemas_, "");
    if (!decoded.ok()) return decoded.status();
    object = std::move(*decoded);
  } else {
    return Status::unsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml" +
        std::string(call.resource && !call.resource->custom ? ", application/vnd.kubernetes.protobuf" : ""));
  }
  if (!object.is_object()) {
    return Status::badRequest("the request body must be a JSON object, got " + std::string(object.type_name()));
  }
  return object;
}

Status ApiHandler::checkAndPrune(Call& call, json& object, const api::Schema* schema,
                                 const std::string& rawBody, const json* stored) {
  const auto& info = *call.resource;
  std::string mode = call.param("fieldValidation");
  if (mode.empty()) mode = "Warn";  // kube-apiserver's default since 1.27
  if (mode != "Strict" && mode != "Warn" && mode != "Ignore") {
    return Status::badRequest("fieldValidation must be one of \"Strict\", \"Warn\" or \"Ignore\", not \"" + mode + "\"");
  }
  if (!schema) return {};
  // A custom resource's schema may have changed since it was stored: all of it is checked.
  if (info.custom) stored = nullptr;
  auto check = api::checkAgainstSchema(object, *schema, stored);
  if (info.custom) {
    if (!check.errors.empty()) return Status::invalid(info.group, info.kind, api::metaString(object, "name"), check.errors);
  } else {
    // Built-ins fail decoding on a wrong type, before validation, as a 400; what the schema
    // calls required is checked by the kind's validation (422), as kube-apiserver does.
    std::string msg = api::builtinDecodeError(object, *schema, info.kind, info.version, stored);
    if (!msg.empty()) return Status::badRequest(msg);
  }
  // Unknown and duplicate fields, as kube's strict decoder reports them (document order for
  // built-ins; custom resources list unknown fields sorted, then duplicates).
  std::vector<std::string> strictProblems;
  if (mode != "Ignore") {
    bool rawJson = !rawBody.empty() && rawBody.find_first_not_of(" \t\r\n") != std::string::npos &&
                   rawBody[rawBody.find_first_not_of(" \t\r\n")] == '{';
    if (!info.custom && rawJson) {
      strictProblems = api::strictDecodingErrors(rawBody, *schema);
    } else {
      for (const auto& f : check.unknownFields) strictProblems.push_back(api::unknownFieldMessage(f));
      if (rawJson) {
        for (const auto& d : api::findDuplicateFields(rawBody)) strictProblems.push_back(d);
      }
    }
  }
  if (!strictProblems.empty()) {
    if (mode == "Strict") {
      std::string msg;
      for (const auto& p : strictProblems) msg += (msg.empty() ? "" : ", ") + p;
      return Status::badRequest(info.kind + " in version \"" + info.version + "\" cannot be handled as a " +
                                info.kind + ": strict decoding error: " + msg);
    }
    for (const auto& p : strictProblems) call.warnings.push_back(p);
  }
  if (!check.unknownFields.empty()) api::pruneUnknownFields(object, *schema);
  return {};
}

Status ApiHandler::ensureNamespaceAccepts(Call& call, const std::string& ns) {
  auto nsInfo = resources_->find({"", "v1", "namespaces"});
  if (!nsInfo) return {};
  Status error;
  auto* cache = cacheFor(*nsInfo, &error);
  if (!cache) return error;
  if (auto st = cache->waitUntilFresh(freshRevisionFor(*cache), kFreshTimeout); !st.isOk()) return st;
  auto object = cache->get(storageKey(*nsInfo, "", ns));
  if (!object) return Status::notFound("", "namespaces", ns);
  // Every namespaced create comes here: a namespace whose text names neither a deletion
  // timestamp nor the Terminating phase accepts without being parsed.
  const std::string text = object->json();
  if (text.find("deletionTimestamp") == std::string::npos && text.find("Terminating") == std::string::npos) return {};
  json parsed = json::parse(text);
  bool terminating = parsed["metadata"].contains("deletionTimestamp") ||
                     parsed.value("status", json::object()).value("phase", "") == "Terminating";
  if (terminating) {
    Status st = Status::forbidden(call.resource->resource + " \"" + api::metaString(parsed, "name") +
                                  "\" is forbidden: unable to create new content in namespace " + ns +
                                  " because it is being terminated");
    st.withDetails(call.resource->group, call.resource->resource, "");
    st.withCause({"NamespaceTerminating", "namespace " + ns + " is being terminated", "metadata.namespace"});
    return st;
  }
  return {};
}

void ApiHandler::allocateServiceAddresses(json& service, const json* old) {
  auto& spec = service["spec"];
  if (!spec.is_object()) spec = json::object();
  std::string type = spec.value("type", "ClusterIP");
  // Allocated values survive an update that leaves them out, as the service registry does.
  if (old && old->contains("spec")) {
    const auto& os = (*old)["spec"];
    if ((!spec.contains("clusterIP") || spec["clusterIP"] == "") && os.contains("clusterIP")) {
      spec["clusterIP"] = os["clusterIP"];
      if (os.contains("clusterIPs")) spec["clusterIPs"] = os["clusterIPs"];
    }
  }
  std::lock_guard lock(allocMu_);
  auto svcInfo = resources_->find({"", "v1", "services"});
  std::set<std::string> usedIps;
  std::set<int64_t> usedPorts;
  if (svcInfo) {
    Status error;
    if (auto* cache = cacheFor(*svcInfo, &error)) {
      for (const auto& item : cache->list(Filter{}, "", 0).items) {
        json s = item->parse();
        const auto& sp = s.value("spec", json::object());
        if (sp.contains("clusterIP") && sp["clusterIP"].is_string()) usedIps.insert(sp["clusterIP"].get<std::string>());
        for (const auto& p : sp.value("ports", json::array())) {
          if (p.contains("nodePort") && p["nodePort"].is_number_integer()) usedPorts.insert(p["nodePort"].get<int64_t>());
        }
      }
    }
  }
  auto& rng = api::threadRandom();
  if (type != "ExternalName" && (!spec.contains("clusterIP") || spec["clusterIP"] == "")) {
    // 10.96.0.0/12 as kind and kubeadm use; 10.96.0.1 is the kubernetes service, .10 DNS.
    for (int attempt = 0; attempt < 100000; ++attempt) {
      uint32_t offset = std::uniform_int_distribution<uint32_t>(11, (1u << 20) - 2)(rng);
      uint32_t ip = (10u << 24) | (96u << 16) | offset;
      std::string text = std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
                         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
      if (usedIps.count(text)) continue;
      spec["clusterIP"] = text;
      spec["clusterIPs"] = json::array({text});
      break;
    }
  }
  if (spec.contains("clusterIP") && spec["clusterIP"].is_string() && spec["clusterIP"] != "" &&
      !spec.contains("clusterIPs")) {
    spec["clusterIPs"] = json::array({spec["clusterIP"]});
  }
  if (type == "NodePort" || type == "LoadBalancer") {
    auto& ports = spec["ports"];
    if (ports.is_array()) {
      for (size_t i = 0; i < ports.size(); ++i) {
        auto& p = ports[i];
        if (p.contains("nodePort") && p["nodePort"].is_number_integer() && p["nodePort"] != 0) continue;
        // Keep the port an old version of this service had for the same port entry.
        if (old && (*old)["spec"].contains("ports") && i < (*old)["spec"]["ports"].size() &&
            (*old)["spec"]["ports"][i].contains("nodePort")) {
          p["nodePort"] = (*old)["spec"]["ports"][i]["nodePort"];
          continue;
        }
        for (int attempt = 0; attempt < 10000; ++attempt) {
          int64_t port = std::uniform_int_distribution<int64_t>(30000, 32767)(rng);
          if (usedPorts.insert(port).second) {
            p["nodePort"] = port;
            break;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Routing of resource requests

void ApiHandler::serveResource(Call& call) {
  const auto& info = call.info;
  call.resource = resources_->find({info.group, info.version, info.resource});
  if (!call.resource) {
    return sendStatus(call, Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
  }
  const auto& r = *call.resource;
  if (r.custom) {
    if (auto provider = providerFor(r.gvr())) return serveProvided(call, provider);
  }
  if (!info.subresource.empty() && !r.hasSubresource(info.subresource)) {
    return sendStatus(call, Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
  }
  if (!r.namespaced && !info.ns.empty()) {
    return sendStatus(call, Status(404, api::reason::kNotFound, "the server could not find the requested resource"));
  }
  auto served = [&](const std::string& verb) {
    return std::find(r.verbs.begin(), r.verbs.end(), verb) != r.verbs.end();
  };
  const std::string& verb = info.verb;
  bool sub = !info.subresource.empty();
  if (!sub && verb != "watch" && !served(verb)) {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  if (verb == "get") return get(call);
  if (verb == "list") return list(call);
  if (verb == "watch") {
    if (!served("watch")) {
      return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
    }
    return watch(call);
  }
  if (verb == "create") return sub ? createSubresource(call) : create(call);
  if (verb == "update") return update(call);
  if (verb == "patch") return patch(call);
  if (verb == "delete") return remove(call);
  if (verb == "deletecollection") return removeCollection(call);
  sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
}

// ---------------------------------------------------------------------------------------
// get / list


void ApiHandler::get(Call& call) {
  const auto& info = *call.resource;
  const std::string& sub = call.info.subresource;
  if (!sub.empty() && sub != "status" && sub != "scale") {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  Status error;
  auto* cache = cacheFor(info, &error);
  if (!cache) return sendStatus(call, error);
  // resourceVersion "0" may be served from whatever the cache has; anything else is a
  // consistent read: the cache waits for the newest revision written, as kube-apiserver's
  // consistent reads from its cache do. (A write to this resource may commit before another
  // that a client has already seen acknowledged, yet note itself after it: waiting only for
  // this resource's own writes could then serve the object as it was before.)
  const std::string& rv = call.param("resourceVersion");
  if (rv != "0") {
    if (auto st = cache->waitUntilFresh(consistentRevision(), kFreshTimeout); !st.isOk()) return sendStatus(call, st);
  }
  auto object = cache->get(storageKey(info, call.info.ns, call.info.name));
  if (!object) return sendStatus(call, Status::notFound(info.group, info.resource, call.info.name));
  if (sub == "scale") return sendJson(call, 200, scaleOf(object->parse()));
  if (representation(call) == Representation::kObject) {
    return sendRaw(call, 200, "application/json", object->json());
  }
  sendObject(call, 200, object->parse());
}

void ApiHandler::listFromStoreAt(Call& call, WatchCache& cache, const Filter& filter, const std::string& afterKey,
                                 int64_t rv, int64_t limit, const std::string& compactedMessage) {
  const auto& info = *call.resource;
  auto page = cache.listFromStore(filter, afterKey, limit, rv);
  if (!page.status.isOk()) {
    if (page.status.code() == 410) return sendStatus(call, Status::expired(compactedMessage));
    return sendStatus(call, page.status);
  }
  std::string next = page.more ? encodeContinue(rv, page.nextKey.substr(info.storagePrefix.size())) : "";
  sendList(call, page.items, rv, next, std::nullopt);
}

void ApiHandler::list(Call& call) {
  const auto& info = *call.resource;
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  Filter filter = std::move(*parsedFilter);
  int64_t limit = 0;
  if (!call.param("limit").empty()) {
    try {
      limit = std::stoll(call.param("limit"));
    } catch (...) {
      return sendStatus(call, Status::badRequest("limit must be an integer, not \"" + call.param("limit") + "\""));
    }
    if (limit < 0) limit = 0;
  }
  Status error;
  auto* cache = cacheFor(info, &error);
  if (!cache) return sendStatus(call, error);

  const std::string& token = call.param("continue");
  if (!token.empty()) {
    auto decoded = decodeContinue(token);
    if (!decoded.ok()) return sendStatus(call, decoded.status());
    auto [rv, start] = *decoded;
    // The cache can continue the list only while this resource has not changed since the
    // first page; otherwise read the snapshot at that revision from the store's history.
    if (cache->lastChangeRevision() <= rv) {
      auto page = cache->list(filter, info.storagePrefix + start, limit);
      if (!page.status.isOk()) return sendStatus(call, page.status);
      std::string next = page.more ? encodeContinue(rv, page.nextKey.substr(info.storagePrefix.size())) : "";
      std::optional<int64_t> remaining;
      if (!filter.labels && !filter.fields) remaining = page.remaining;
      return sendList(call, page.items, rv, next, remaining);
    }
    return listFromStoreAt(call, *cache, filter, info.storagePrefix + start, rv, limit,
                           "The provided continue parameter is too old to display a consistent list result. "
                           "You can start a new list without the continue parameter.");
  }

  const std::string& rv = call.param("resourceVersion");
  const std::string& match = call.param("resourceVersionMatch");
  if (!match.empty() && match != "NotOlderThan" && match != "Exact") {
    return sendStatus(call, Status::badRequest("resourceVersionMatch must be \"NotOlderThan\" or \"Exact\""));
  }
  if (rv.empty()) {
    if (auto st = cache->waitUntilFresh(consistentRevision(), kFreshTimeout); !st.isOk()) return sendStatus(call, st);
  } else if (rv != "0") {
    auto parsedRv = resourceVersionParam(call);
    if (!parsedRv.ok()) return sendStatus(call, parsedRv.status());
    const int64_t wanted = *parsedRv;
    if (match == "Exact" && cache->mode() == WatchCache::Mode::kUncached) {
      // Uncached (Events): the store's history has that revision until it is compacted.
      return listFromStoreAt(call, *cache, filter, "", wanted, limit, "too old resource version: " + rv);
    }
    if (match == "Exact") {
      // TODO(store): serve exact-revision lists of cached resources from the store's history
      // too; the cache serves them only when nothing changed since.
      if (cache->lastChangeRevision() > wanted) {
        return sendStatus(call, Status::expired("too old resource version: " + rv + " (" +
                                                std::to_string(cache->lastChangeRevision()) + ")"));
      }
    } else if (auto st = cache->waitUntilFresh(wanted, kFreshTimeout); !st.isOk()) {
      return sendStatus(call, st);
    }
  }
  auto page = cache->list(filter, "", limit);
  if (!page.status.isOk()) return sendStatus(call, page.status);
  std::string next = page.more ? encodeContinue(page.revision, page.nextKey.substr(info.storagePrefix.size())) : "";
  std::optional<int64_t> remaining;
  if (!filter.labels && !filter.fields) remaining = page.remaining;
  sendList(call, page.items, page.revision, next, remaining);
}

}  // namespace orrery::apiserver
