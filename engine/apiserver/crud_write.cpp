// Writes: create, update, patch (json, merge, strategic, apply), delete, deletecollection,
// and the subresources that write (status, scale, binding, eviction, finalize).

#include <algorithm>

#include <spdlog/spdlog.h>

#include "engine/api/json_parse.h"
#include "engine/api/kinds.h"
#include "engine/api/managed_fields.h"
#include "engine/api/object.h"
#include "engine/api/patch.h"
#include "engine/api/selector.h"
#include "engine/api/yaml.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/json_scan.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Result;
using api::Status;
using nlohmann::json;

namespace {

constexpr size_t kMaxObjectBytes = 1536 * 1024;  // etcd's default request limit
constexpr int kMaxConflictRetries = 8;

Status tooLarge(size_t bytes) {
  return Status::requestEntityTooLarge(
      "Request entity too large: the object is " + std::to_string(bytes) +
      " bytes, over the store's limit of " + std::to_string(kMaxObjectBytes) +
      " bytes (etcd's request size limit); keep each object under 1.5 MiB");
}

std::vector<std::string> resetFieldsFor(const api::ResourceInfo& info, const std::string& subresource) {
  if (subresource == "status") return {"spec", "metadata"};
  if (subresource.empty() && info.hasSubresource("status")) return {"status"};
  return {};
}

/// kube-apiserver's check that the body's apiVersion/kind fit the endpoint. Missing ones are
/// defaulted from the endpoint, as its decoder does.
Status checkTypeMeta(const api::ResourceInfo& info, json& object, const std::string& expectedKind,
                     const std::string& expectedApiVersion) {
  if (!object.contains("apiVersion") || object["apiVersion"] == "") object["apiVersion"] = expectedApiVersion;
  if (!object.contains("kind") || object["kind"] == "") object["kind"] = expectedKind;
  if (!object["apiVersion"].is_string() || !object["kind"].is_string()) {
    return Status::badRequest("apiVersion and kind must be strings");
  }
  const std::string av = object["apiVersion"].get<std::string>();
  const std::string kind = object["kind"].get<std::string>();
  if (av != expectedApiVersion) {
    return Status::badRequest("the API version in the data (" + av +
                              ") does not match the expected API version (" + expectedApiVersion + ")");
  }
  if (kind != expectedKind) {
    return Status::badRequest(kind + " in version \"" + info.version + "\" cannot be handled as a " +
                              expectedKind + ": the kind in the data (" + kind +
                              ") does not match the expected kind (" + expectedKind + ")");
  }
  return {};
}

json successStatus(const api::ResourceInfo& info, const std::string& name, const std::string& uid) {
  json details = {{"name", name}, {"kind", info.resource}};
  if (!info.group.empty()) details["group"] = info.group;
  if (!uid.empty()) details["uid"] = uid;
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Success"}, {"details", details}};
}

}  // namespace

api::ManagerInfo ApiHandler::managerFor(const Call& call, const std::string& subresource) const {
  api::ManagerInfo who;
  who.manager = call.param("fieldManager");
  if (who.manager.empty()) who.manager = api::fieldManagerFromUserAgent(call.http.header("user-agent"));
  who.apiVersion = call.resource->apiVersion();
  who.time = api::formatTime(call.now);
  who.subresource = subresource;
  who.resetFields = resetFieldsFor(*call.resource, subresource);
  return who;
}

Result<json> ApiHandler::createObject(Call& call, json object, bool managedByApply) {
  const auto& info = *call.resource;
  const api::Schema* schema = schemaFor(info);
  auto& meta = metadataOf(object);

  // Namespace: taken from the URL; a different one in the body is refused.
  if (info.namespaced) {
    std::string bodyNs = meta.value("namespace", "");
    if (!bodyNs.empty() && bodyNs != call.info.ns) {
      return Status::badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = call.info.ns;
  } else {
    meta.erase("namespace");
  }
  std::string name = meta.value("name", "");
  const std::string generateName = meta.value("generateName", "");
  if (name.empty() && generateName.empty()) {
    return Status::invalid(info.group, info.kind, "",
                           {{"FieldValueRequired", "Required value: name or generateName is required", "metadata.name"}});
  }
  if (name.empty()) meta["name"] = api::generateNameSuffix(generateName);

  if (auto st = api::checkDecodable(info, object); !st.isOk()) return st;
  if (schema) api::applySchemaDefaults(object, *schema);
  api::applyKindDefaults(info, object);
  meta["uid"] = api::newUid();
  meta["creationTimestamp"] = api::formatTime(call.now);
  for (const char* k : {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}) meta.erase(k);
  api::prepareForCreate(info, object);

  if (info.namespaced) {
    if (auto st = ensureNamespaceAccepts(call, call.info.ns); !st.isOk()) return st;
  }
  if (info.group.empty() && info.resource == "services") allocateServiceAddresses(object, nullptr);
  if (info.group == "apiextensions.k8s.io" && info.resource == "customresourcedefinitions") {
    if (auto st = admitCustomResourceDefinition(object, nullptr); !st.isOk()) return st;
  }

  const bool isPod = info.group.empty() && info.resource == "pods";
  if (isPod) {
    if (auto st = admitPriority(call, object); !st.isOk()) return st;
    if (auto st = admitLimitRanges(call, object); !st.isOk()) return st;
  }

  auto causes = api::validateKind(info, object, nullptr);
  if (!causes.empty()) return Status::invalid(info.group, info.kind, metadataOf(object).value("name", ""), causes);
  if (auto st = admitQuota(call, object); !st.isOk()) return st;

  if (!managedByApply && schema) {
    api::updateManagedFields(json(nullptr), object, managerFor(call, ""), *schema);
  }
  if (call.dryRun()) return object;

  WatchCache* cache = existingCacheFor(info);
  for (int attempt = 0;; ++attempt) {
    StoredTextLayout layout;
    std::string value = storedForm(object, &layout);
    if (value.size() > kMaxObjectBytes) return tooLarge(value.size());
    const std::string objName = metadataOf(object).value("name", "");
    const std::string key = storageKey(info, call.info.ns, objName);
    auto created = store_->create(key, value, writtenVersion(cache, key, object, layout));
    if (created.ok()) {
      noteWrite(*created, key, cache);
      metadataOf(object)["resourceVersion"] = std::to_string(*created);
      afterWrite(info, object, false);
      return object;
    }
    if (created.status().code() != 409) return created.status();
    // A generated name that is taken: draw another, as kube-apiserver retries.
    if (!name.empty() || attempt >= kMaxConflictRetries) {
      return Status::alreadyExists(info.group, info.resource, objName);
    }
    metadataOf(object)["name"] = api::generateNameSuffix(generateName);
  }
}

api::Result<std::optional<store::KeyValue>> ApiHandler::currentObject(const api::ResourceInfo& info,
                                                                      const std::string& key, bool* fromCache,
                                                                      std::shared_ptr<const json>* parsed,
                                                                      CachedPtr* cachedOut) {
  if (parsed) parsed->reset();
  if (cachedOut) cachedOut->reset();
  if (*fromCache) {
    if (auto* cache = existingCacheFor(info)) {
      if (auto cached = cache->get(key)) {
        store::KeyValue kv;
        kv.key = key;
        kv.value = cached->json();
        kv.modRevision = cached->revision;
        if (parsed) *parsed = cached->sharedParse();
        if (cachedOut) *cachedOut = std::move(cached);
        return std::optional<store::KeyValue>(std::move(kv));
      }
    }
    *fromCache = false;  // not cached (yet): the store has the last word
  }
  return store_->get(key);
}

json ApiHandler::parseCurrent(const store::KeyValue& current, const std::shared_ptr<const json>& parsed) {
  if (parsed) return *parsed;  // the cache's served form: resourceVersion is set
  json object = api::parseJsonOrThrow(current.value);
  metadataOf(object)["resourceVersion"] = std::to_string(current.modRevision);
  return object;
}

Result<json> ApiHandler::commitUpdate(Call& call, json updated, const store::KeyValue& current,
                                      const std::string& subresource, bool managedByApply,
                                      bool* casFailed, bool currentMayBeStale, json* parsedCurrent) {
  const auto& info = *call.resource;
  const api::Schema* schema = schemaFor(info);
  *casFailed = false;
  json old = parsedCurrent ? std::move(*parsedCurrent) : parseCurrent(current, nullptr);

  auto& meta = metadataOf(updated);
  const auto& oldMeta = old["metadata"];
  if (meta.contains("uid") && meta["uid"] != "" && meta["uid"] != oldMeta.value("uid", "")) {
    return Status::conflict(info.group, info.resource, oldMeta.value("name", ""),
                            "Precondition failed: UID in precondition: " + meta["uid"].get<std::string>() +
                                ", UID in object meta: " + oldMeta.value("uid", ""));
  }
  // Identity and lifecycle fields belong to the server.
  for (const char* k : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "name", "namespace"}) {
    if (oldMeta.contains(k)) meta[k] = oldMeta[k];
    else meta.erase(k);
  }
  if (!meta.contains("generation") && oldMeta.contains("generation")) meta["generation"] = oldMeta["generation"];

  if (auto st = api::checkDecodable(info, updated); !st.isOk()) return st;
  if (schema) api::applySchemaDefaults(updated, *schema);
  api::applyKindDefaults(info, updated);
  api::prepareForUpdate(info, subresource, updated, old);
  if (info.group.empty() && info.resource == "services") allocateServiceAddresses(updated, &old);
  if (info.group == "apiextensions.k8s.io" && info.resource == "customresourcedefinitions") {
    if (auto st = admitCustomResourceDefinition(updated, &old); !st.isOk()) return st;
  }

  auto causes = api::validateKind(info, updated, &old);
  if (!causes.empty()) return Status::invalid(info.group, info.kind, oldMeta.value("name", ""), causes);

  if (!managedByApply && schema) {
    api::updateManagedFields(old, updated, managerFor(call, subresource), *schema);
  }

  // An object being deleted goes once its last finalizer is removed; a namespace also waits
  // for its spec.finalizers (the namespace controller's "kubernetes"), as kube-apiserver's
  // ShouldDeleteNamespaceDuringUpdate.
  const bool isNamespace = info.group.empty() && info.resource == "namespaces";
  bool finalized = meta.contains("deletionTimestamp") &&
                   (!meta.contains("finalizers") || meta["finalizers"].empty()) &&
                   (!isNamespace || updated.value("spec", json::object()).value("finalizers", json::array()).empty());
  if (sameObject(updated, old)) {
    if (currentMayBeStale) {
      *casFailed = true;
      return Status::conflict(info.group, info.resource, oldMeta.value("name", ""), "the cached object may be stale");
    }
    return old;
  }
  if (call.dryRun()) return updated;

  const std::string key = storageKey(info, call.info.ns, oldMeta.value("name", ""));
  if (finalized) {
    auto del = store_->compareAndDelete(key, current.modRevision);
    if (!del.ok()) return del.status();
    if (!del->succeeded) {
      *casFailed = true;
      return Status::conflict(info.group, info.resource, oldMeta.value("name", ""),
                              "the object has been modified; please apply your changes to the latest version and try again");
    }
    noteWrite(del->revision, key);
    meta["resourceVersion"] = std::to_string(del->revision);
    afterWrite(info, updated, true);
    return updated;
  }

  StoredTextLayout layout;
  std::string value = storedForm(updated, &layout);
  if (value.size() > kMaxObjectBytes) return tooLarge(value.size());
  WatchCache* cache = existingCacheFor(info);
  auto cas = store_->compareAndSwap(key, current.modRevision, value, writtenVersion(cache, key, updated, layout));
  if (!cas.ok()) return cas.status();
  if (!cas->succeeded) {
    *casFailed = true;
    return Status::conflict(info.group, info.resource, oldMeta.value("name", ""),
                            "the object has been modified; please apply your changes to the latest version and try again");
  }
  noteWrite(cas->revision, key, cache);
  meta["resourceVersion"] = std::to_string(cas->revision);
  afterWrite(info, updated, false);
  return updated;
}

void ApiHandler::create(Call& call) {
  const auto& info = *call.resource;
  if (isReviewResource(info)) return createReview(call);
  auto decoded = decodeBody(call, call.http.body, call.http.header("content-type"));
  if (!decoded.ok()) return sendStatus(call, decoded.status());
  json object = std::move(*decoded);
  if (auto st = checkTypeMeta(info, object, info.kind, info.apiVersion()); !st.isOk()) return sendStatus(call, st);
  if (auto st = checkAndPrune(call, object, schemaFor(info), call.http.body); !st.isOk()) return sendStatus(call, st);
  auto result = createObject(call, std::move(object), false);
  if (!result.ok()) return sendStatus(call, result.status());
  sendObject(call, 201, std::move(*result));
}

void ApiHandler::update(Call& call) {
  const auto& info = *call.resource;
  const std::string sub = call.info.subresource;
  if (!sub.empty() && sub != "status" && sub != "scale" && sub != "finalize") {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  auto decoded = decodeBody(call, call.http.body, call.http.header("content-type"));
  if (!decoded.ok()) return sendStatus(call, decoded.status());
  json body = std::move(*decoded);
  if (sub == "scale") {
    if (auto st = checkTypeMeta(info, body, "Scale", "autoscaling/v1"); !st.isOk()) return sendStatus(call, st);
  } else {
    if (auto st = checkTypeMeta(info, body, info.kind, info.apiVersion()); !st.isOk()) return sendStatus(call, st);
    if (auto st = checkAndPrune(call, body, schemaFor(info), call.http.body); !st.isOk()) return sendStatus(call, st);
  }
  const std::string bodyName = api::metaString(body, "name");
  if (bodyName != call.info.name) {
    return sendStatus(call, Status::badRequest("the name of the object (" + bodyName +
                                               ") does not match the name on the URL (" + call.info.name + ")"));
  }
  if (info.namespaced) {
    std::string bodyNs = api::metaString(body, "namespace");
    if (!bodyNs.empty() && bodyNs != call.info.ns) {
      return sendStatus(call, Status::badRequest("the namespace of the provided object does not match the namespace sent on the request"));
    }
  }
  const std::string wantedRv = api::metaString(body, "resourceVersion");
  const std::string key = storageKey(info, call.info.ns, call.info.name);
  for (int attempt = 0; attempt <= kMaxConflictRetries; ++attempt) {
    bool fromCache = attempt == 0 && !call.dryRun();
    std::shared_ptr<const json> parsed;
    auto current = currentObject(info, key, &fromCache, &parsed);
    if (!current.ok()) return sendStatus(call, current.status());
    if (!*current) return sendStatus(call, Status::notFound(info.group, info.resource, call.info.name));
    if (!wantedRv.empty() && wantedRv != std::to_string((*current)->modRevision)) {
      if (fromCache) continue;
      return sendStatus(call, Status::conflict(info.group, info.resource, call.info.name,
                                               "the object has been modified; please apply your changes to the latest version and try again"));
    }
    json old = parseCurrent(**current, parsed);
    json updated = body;
    if (sub == "scale") {
      updated = old;
      updated["spec"]["replicas"] = body.value("spec", json::object()).value("replicas", 0);
    } else if (sub == "finalize") {
      updated = old;
      updated["spec"]["finalizers"] = body.value("spec", json::object()).value("finalizers", json::array());
    }
    bool casFailed = false;
    auto result = commitUpdate(call, std::move(updated), **current, sub == "scale" ? "" : sub, false, &casFailed,
                               fromCache, &old);
    if (fromCache && (casFailed || !result.ok())) continue;
    if (casFailed && wantedRv.empty()) continue;
    if (!result.ok()) return sendStatus(call, result.status());
    if (sub == "scale") return sendJson(call, 200, scaleOf(*result));
    return sendObject(call, 200, std::move(*result));
  }
  sendStatus(call, Status::conflict(info.group, info.resource, call.info.name,
                                    "the object has been modified; please apply your changes to the latest version and try again"));
}

void ApiHandler::patch(Call& call) {
  const auto& info = *call.resource;
  const std::string sub = call.info.subresource;
  if (!sub.empty() && sub != "status" && sub != "scale") {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  const std::string type = mediaType(call.http.header("content-type"));
  const bool isApply = type == "application/apply-patch+yaml";
  if (type != "application/json-patch+json" && type != "application/merge-patch+json" &&
      type != "application/strategic-merge-patch+json" && !isApply) {
    return sendStatus(call, Status::unsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" +
        std::string(info.custom ? "" : ", application/strategic-merge-patch+json")));
  }
  if (type == "application/strategic-merge-patch+json" && info.custom) {
    return sendStatus(call, Status::unsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"));
  }
  json patchDoc;
  if (isApply) {
    auto parsed = api::yamlToJson(call.http.body);
    if (!parsed.ok()) return sendStatus(call, parsed.status());
    patchDoc = std::move(*parsed);
    if (!patchDoc.is_object()) return sendStatus(call, Status::badRequest("the apply configuration must be an object"));
    if (call.param("fieldManager").empty()) {
      return sendStatus(call, Status::badRequest("PATCH requests of type apply must include a fieldManager"));
    }
  } else {
    patchDoc = api::parseJson(call.http.body);
    if (patchDoc.is_discarded()) {
      return sendStatus(call, Status::badRequest("the patch is not valid JSON; send a " + type + " document"));
    }
  }
  const api::Schema* schema = schemaFor(info);
  static const api::Schema kEmptySchema;
  const api::Schema& mergeSchema = schema ? *schema : kEmptySchema;
  const std::string key = storageKey(info, call.info.ns, call.info.name);
  const bool force = call.param("force") == "true";

  for (int attempt = 0; attempt <= kMaxConflictRetries; ++attempt) {
    bool fromCache = attempt == 0 && !call.dryRun();
    std::shared_ptr<const json> parsed;
    auto current = currentObject(info, key, &fromCache, &parsed);
    if (!current.ok()) return sendStatus(call, current.status());
    if (!*current) {
      if (isApply && sub.empty()) {
        // Server-side apply creates what does not exist yet.
        json applied = patchDoc;
        if (auto st = checkTypeMeta(info, applied, info.kind, info.apiVersion()); !st.isOk()) return sendStatus(call, st);
        if (api::metaString(applied, "name") != call.info.name) {
          return sendStatus(call, Status::badRequest("the name of the object (" + api::metaString(applied, "name") +
                                                     ") does not match the name on the URL (" + call.info.name + ")"));
        }
        if (auto st = checkAndPrune(call, applied, schema, call.http.body); !st.isOk()) return sendStatus(call, st);
        auto merged = api::serverSideApply(json(nullptr), applied, managerFor(call, ""), force, mergeSchema);
        if (!merged.ok()) return sendStatus(call, merged.status());
        auto created = createObject(call, std::move(*merged), true);
        if (!created.ok()) {
          if (created.status().code() == 409 && created.status().reason() == api::reason::kAlreadyExists) continue;
          return sendStatus(call, created.status());
        }
        return sendObject(call, 201, std::move(*created));
      }
      return sendStatus(call, Status::notFound(info.group, info.resource, call.info.name));
    }
    json old = parseCurrent(**current, parsed);
    const std::string oldRv = std::to_string((*current)->modRevision);

    // The document the patch applies to: the object, or its Scale view.
    const json scaleView = sub == "scale" ? scaleOf(old) : json();
    const json& base = sub == "scale" ? scaleView : old;
    Result<json> patched = json(nullptr);
    std::string reportedSub = sub == "scale" ? "" : sub;
    if (isApply) {
      json applied = patchDoc;
      if (sub == "scale") {
        patched = api::applyMergePatch(base, applied);  // TODO(apply): field ownership for /scale
      } else {
        if (auto st = checkTypeMeta(info, applied, info.kind, info.apiVersion()); !st.isOk()) return sendStatus(call, st);
        if (auto st = checkAndPrune(call, applied, schema, call.http.body); !st.isOk()) return sendStatus(call, st);
        patched = api::serverSideApply(old, applied, managerFor(call, reportedSub), force, mergeSchema);
      }
    } else if (type == "application/json-patch+json") {
      patched = api::applyJsonPatch(base, patchDoc);
    } else if (type == "application/merge-patch+json") {
      patched = api::applyMergePatch(base, patchDoc);
    } else {
      patched = api::applyStrategicMergePatch(base, patchDoc, mergeSchema);
    }
    if (!patched.ok()) {
      if (fromCache) continue;
      return sendStatus(call, patched.status());
    }
    json updated = std::move(*patched);

    // A resourceVersion in the patch result that differs is a precondition that failed.
    std::string patchedRv = api::metaString(updated, "resourceVersion");
    bool rvPrecondition = !patchedRv.empty() && patchedRv != oldRv;
    if (rvPrecondition) {
      if (fromCache) continue;
      return sendStatus(call, Status::conflict(info.group, info.resource, call.info.name,
                                               "the object has been modified; please apply your changes to the latest version and try again"));
    }
    if (sub == "scale") {
      json parent = old;
      parent["spec"]["replicas"] = updated.value("spec", json::object()).value("replicas", 0);
      updated = std::move(parent);
    } else if (!isApply) {
      if (!updated.is_object()) return sendStatus(call, Status::badRequest("the patch result is not an object"));
      if (auto st = checkTypeMeta(info, updated, info.kind, info.apiVersion()); !st.isOk()) return sendStatus(call, st);
      // Unknown fields are judged on the result: patch directives ($setElementOrder, ...) are
      // not fields. TODO(validation): duplicate fields inside a merge patch body.
      if (auto st = checkAndPrune(call, updated, schema, "", &old); !st.isOk()) return sendStatus(call, st);
    }
    bool casFailed = false;
    auto result = commitUpdate(call, std::move(updated), **current, reportedSub, isApply && sub != "scale", &casFailed,
                               fromCache, &old);
    if (casFailed || (fromCache && !result.ok())) continue;
    if (!result.ok()) return sendStatus(call, result.status());
    if (sub == "scale") return sendJson(call, 200, scaleOf(*result));
    return sendObject(call, 200, std::move(*result));
  }
  sendStatus(call, Status::conflict(info.group, info.resource, call.info.name,
                                    "the object has been modified; please apply your changes to the latest version and try again"));
}

Result<ApiHandler::DeleteOptions> ApiHandler::deleteOptions(Call& call) const {
  DeleteOptions options;
  json body = json::object();
  if (!call.http.body.empty()) {
    body = api::parseJson(call.http.body);
    if (body.is_discarded() || !body.is_object()) {
      return Status::badRequest("the request body must be a DeleteOptions JSON object");
    }
  }
  if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
    options.gracePeriodSeconds = body["gracePeriodSeconds"].get<int64_t>();
  }
  if (!call.param("gracePeriodSeconds").empty()) {
    try {
      options.gracePeriodSeconds = std::stoll(call.param("gracePeriodSeconds"));
    } catch (...) {
      return Status::badRequest("gracePeriodSeconds must be an integer");
    }
  }
  options.propagationPolicy = body.value("propagationPolicy", call.param("propagationPolicy"));
  if (body.contains("orphanDependents") && body["orphanDependents"].is_boolean() && options.propagationPolicy.empty()) {
    options.propagationPolicy = body["orphanDependents"].get<bool>() ? "Orphan" : "Background";
  }
  if (!options.propagationPolicy.empty() && options.propagationPolicy != "Orphan" &&
      options.propagationPolicy != "Background" && options.propagationPolicy != "Foreground") {
    Status st = Status::invalid("", "DeleteOptions", "",
                                {{"FieldValueNotSupported",
                                  "Unsupported value: \"" + options.propagationPolicy +
                                      "\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                                  "propagationPolicy"}});
    return st;
  }
  if (body.contains("preconditions") && body["preconditions"].is_object()) {
    options.preconditionUid = body["preconditions"].value("uid", "");
    options.preconditionRv = body["preconditions"].value("resourceVersion", "");
  }
  if (body.contains("dryRun") && body["dryRun"].is_array() && !body["dryRun"].empty()) options.dryRun = true;
  if (call.dryRun()) options.dryRun = true;
  return options;
}

Result<json> ApiHandler::deleteObject(Call& call, const std::string& ns, const std::string& name,
                                      const DeleteOptions& options, bool* deletedNow) {
  const auto& info = *call.resource;
  const std::string key = storageKey(info, ns, name);
  *deletedNow = false;
  for (int attempt = 0; attempt <= kMaxConflictRetries; ++attempt) {
    auto current = store_->get(key);
    if (!current.ok()) return current.status();
    if (!*current) return Status::notFound(info.group, info.resource, name);
    json object = api::parseJsonOrThrow((*current)->value);
    auto& meta = metadataOf(object);
    meta["resourceVersion"] = std::to_string((*current)->modRevision);
    if (!options.preconditionUid.empty() && options.preconditionUid != meta.value("uid", "")) {
      return Status::conflict(info.group, info.resource, name,
                              "Precondition failed: UID in precondition: " + options.preconditionUid +
                                  ", UID in object meta: " + meta.value("uid", ""));
    }
    if (!options.preconditionRv.empty() && options.preconditionRv != meta["resourceVersion"].get<std::string>()) {
      return Status::conflict(info.group, info.resource, name,
                              "Precondition failed: ResourceVersion in precondition: " + options.preconditionRv +
                                  ", ResourceVersion in meta: " + meta["resourceVersion"].get<std::string>());
    }

    // What keeps the object around: finalizers (existing, or the one the propagation policy
    // adds), a namespace's spec.finalizers, or a pod's graceful termination on a node.
    json finalizers = meta.value("finalizers", json::array());
    auto addFinalizer = [&](const std::string& f) {
      if (std::find(finalizers.begin(), finalizers.end(), f) == finalizers.end()) finalizers.push_back(f);
    };
    if (options.propagationPolicy == "Orphan") addFinalizer("orphan");
    if (options.propagationPolicy == "Foreground") addFinalizer("foregroundDeletion");
    bool isNamespace = info.group.empty() && info.resource == "namespaces";
    bool isPod = info.group.empty() && info.resource == "pods";
    bool namespaceFinalizers = isNamespace && api::memberOrEmpty(object, "spec").value("finalizers", json::array()).size() > 0;
    int64_t grace = 0;
    if (isPod) {
      const json& spec = api::memberOrEmpty(object, "spec");
      std::string phase = api::memberOrEmpty(object, "status").value("phase", "");
      bool onNode = !spec.value("nodeName", "").empty() && phase != "Succeeded" && phase != "Failed";
      grace = options.gracePeriodSeconds.value_or(spec.value("terminationGracePeriodSeconds", 30));
      if (!onNode) grace = 0;  // nothing is running it: delete at once, as kube-apiserver does
    }
    bool alreadyDeleting = meta.contains("deletionTimestamp");
    if (!finalizers.empty() || namespaceFinalizers || grace > 0) {
      if (alreadyDeleting && meta.value("finalizers", json::array()) == finalizers) {
        // TODO(kubelet): shorten a pod's grace period when asked again with a smaller one.
        return object;
      }
      if (!alreadyDeleting) {
        meta["deletionTimestamp"] = api::formatTime(call.now + std::chrono::seconds(grace));
        meta["deletionGracePeriodSeconds"] = grace;
      }
      if (!finalizers.empty()) meta["finalizers"] = finalizers;
      if (isNamespace) object["status"]["phase"] = "Terminating";
      if (options.dryRun) return object;
      auto cas = store_->compareAndSwap(key, (*current)->modRevision, storedForm(object));
      if (!cas.ok()) return cas.status();
      if (!cas->succeeded) continue;
      noteWrite(cas->revision, key);
      meta["resourceVersion"] = std::to_string(cas->revision);
      return object;
    }
    if (options.dryRun) {
      *deletedNow = true;
      return object;
    }
    auto del = store_->compareAndDelete(key, (*current)->modRevision);
    if (!del.ok()) return del.status();
    if (!del->succeeded) continue;
    noteWrite(del->revision, key);
    *deletedNow = true;
    afterWrite(info, object, true);
    return object;
  }
  return Status::conflict(info.group, info.resource, name,
                          "the object has been modified; please apply your changes to the latest version and try again");
}

void ApiHandler::remove(Call& call) {
  const auto& info = *call.resource;
  if (!call.info.subresource.empty()) {
    return sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
  }
  auto options = deleteOptions(call);
  if (!options.ok()) return sendStatus(call, options.status());
  bool deletedNow = false;
  auto result = deleteObject(call, call.info.ns, call.info.name, *options, &deletedNow);
  if (!result.ok()) return sendStatus(call, result.status());
  // Pods answer with the object; other kinds deleted at once answer with a Success status.
  bool isPod = info.group.empty() && info.resource == "pods";
  if (deletedNow && !isPod) {
    return sendJson(call, 200, successStatus(info, call.info.name, api::metaString(*result, "uid")));
  }
  sendObject(call, 200, std::move(*result));
}

void ApiHandler::removeCollection(Call& call) {
  const auto& info = *call.resource;
  auto options = deleteOptions(call);
  if (!options.ok()) return sendStatus(call, options.status());
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  Filter filter = std::move(*parsedFilter);
  Status error;
  auto* cache = cacheFor(info, &error);
  if (!cache) return sendStatus(call, error);
  if (auto st = cache->waitUntilFresh(freshRevisionFor(*cache), std::chrono::seconds(3)); !st.isOk()) return sendStatus(call, st);
  auto page = cache->list(filter, "", 0);
  if (!page.status.isOk()) return sendStatus(call, page.status);
  json items = json::array();
  for (const auto& item : page.items) {
    bool deletedNow = false;
    auto result = deleteObject(call, item->ns(), item->name(), *options, &deletedNow);
    if (!result.ok()) {
      if (result.status().code() == 404) continue;  // someone else deleted it meanwhile
      return sendStatus(call, result.status());
    }
    items.push_back(std::move(*result));
  }
  sendJson(call, 200,
           {{"kind", info.listKind.empty() ? info.kind + "List" : info.listKind},
            {"apiVersion", info.apiVersion()},
            {"metadata", {{"resourceVersion", std::to_string(consistentRevision())}}},
            {"items", items}});
}

void ApiHandler::createSubresource(Call& call) {
  const auto& info = *call.resource;
  const std::string& sub = call.info.subresource;
  auto decoded = decodeBody(call, call.http.body, call.http.header("content-type"));
  if (!decoded.ok()) return sendStatus(call, decoded.status());
  json body = std::move(*decoded);
  bool isPod = info.group.empty() && info.resource == "pods";
  if (isPod && sub == "binding") {
    // pods/binding: the scheduler's way to set spec.nodeName, once.
    std::string node = body.value("target", json::object()).value("name", "");
    if (node.empty()) {
      return sendStatus(call, Status::invalid("", "Binding", call.info.name,
                                              {{"FieldValueRequired", "Required value", "target.name"}}));
    }
    // The binding's uid, when it has one, must be the pod's: a pod deleted and made again
    // under its name is not the pod the decision was for (kube's precondition).
    const std::string wantedUid = api::metaString(body, "uid");
    const std::string key = storageKey(info, call.info.ns, call.info.name);
    WatchCache* cache = existingCacheFor(info);
    bool written = false;
    for (int attempt = 0; attempt <= kMaxConflictRetries && !written; ++attempt) {
      bool fromCache = attempt == 0 && !call.dryRun();
      std::shared_ptr<const json> parsed;
      CachedPtr cached;
      auto current = currentObject(info, key, &fromCache, &parsed, &cached);
      if (!current.ok()) return sendStatus(call, current.status());
      if (!*current) return sendStatus(call, Status::notFound("", "pods", call.info.name));
      static const json kScheduled = {{"type", "PodScheduled"}, {"status", "True"}, {"lastProbeTime", nullptr}};
      json scheduled = kScheduled;
      scheduled["lastTransitionTime"] = api::formatTime(call.now);
      if (!call.dryRun()) {
        // A pending pod is bound by editing its text: building the whole pod to change two
        // fields cost more than anything else in a binding.
        StoredTextLayout layout;
        if (auto text = bindPodText((*current)->value, node, scheduled, wantedUid, &layout)) {
          auto cas = store_->compareAndSwap(key, (*current)->modRevision, std::move(*text),
                                            boundVersion(cache, cached.get(), node, layout));
          if (!cas.ok()) return sendStatus(call, cas.status());
          if (!cas->succeeded) continue;
          noteWrite(cas->revision, key, cache);
          written = true;
          break;
        }
      }
      json pod = parseCurrent(**current, parsed);
      const std::string podUid = pod["metadata"].value("uid", "");
      if (!wantedUid.empty() && wantedUid != podUid) {
        if (fromCache) continue;
        return sendStatus(call, Status::conflict("", "pods", call.info.name,
                                                 "Precondition failed: UID in precondition: " + wantedUid +
                                                     ", UID in object meta: " + podUid));
      }
      if (pod["metadata"].contains("deletionTimestamp")) {
        if (fromCache) continue;
        return sendStatus(call, Status::conflict("", "pods", call.info.name, "pod is being deleted, cannot be assigned to a host"));
      }
      std::string bound = api::memberOrEmpty(pod, "spec").value("nodeName", "");
      if (!bound.empty()) {
        if (fromCache) continue;
        return sendStatus(call, Status::conflict("", "pods", call.info.name,
                                                 "pod " + call.info.name + " is already assigned to node \"" + bound + "\""));
      }
      pod["spec"]["nodeName"] = node;
      setCondition(pod["status"], scheduled);
      if (call.dryRun()) {
        written = true;
        break;
      }
      auto cas = store_->compareAndSwap(key, (*current)->modRevision, storedForm(pod));
      if (!cas.ok()) return sendStatus(call, cas.status());
      if (!cas->succeeded) continue;
      noteWrite(cas->revision, key);
      written = true;
    }
    if (!written) {
      // Every attempt lost its compare-and-swap to another writer.
      return sendStatus(call, Status::conflict("", "pods", call.info.name,
                                               "the object has been modified; please apply your changes to the latest "
                                               "version and try again"));
    }
    static const json kBound = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Success"}, {"code", 201}};
    return sendJson(call, 201, json(kBound));
  }
  if (isPod && sub == "eviction") {
    const std::string key = storageKey(info, call.info.ns, call.info.name);
    auto current = store_->get(key);
    if (!current.ok()) return sendStatus(call, current.status());
    if (!*current) return sendStatus(call, Status::notFound("", "pods", call.info.name));
    json pod = api::parseJsonOrThrow((*current)->value);
    if (auto st = checkEviction(call, pod); !st.isOk()) return sendStatus(call, st);
    // Tell the pod's owner why it goes (the DisruptionTarget condition, as kube-apiserver
    // sets it before deleting). Losing a race here only loses the condition.
    if (!call.dryRun() && !pod["metadata"].contains("deletionTimestamp")) {
      auto& conditions = pod["status"]["conditions"];
      if (!conditions.is_array()) conditions = json::array();
      conditions.push_back({{"type", "DisruptionTarget"}, {"status", "True"}, {"lastProbeTime", nullptr},
                            {"lastTransitionTime", api::formatTime(call.now)},
                            {"reason", "EvictionByEvictionAPI"}, {"message", "Eviction API: evicting"}});
      auto cas = store_->compareAndSwap(key, (*current)->modRevision, storedForm(pod));
      if (cas.ok() && cas->succeeded) noteWrite(cas->revision, key);
    }
    DeleteOptions options;
    if (body.contains("deleteOptions") && body["deleteOptions"].is_object()) {
      const auto& d = body["deleteOptions"];
      if (d.contains("gracePeriodSeconds") && d["gracePeriodSeconds"].is_number_integer()) {
        options.gracePeriodSeconds = d["gracePeriodSeconds"].get<int64_t>();
      }
    }
    options.dryRun = call.dryRun();
    bool deletedNow = false;
    auto result = deleteObject(call, call.info.ns, call.info.name, options, &deletedNow);
    if (!result.ok()) return sendStatus(call, result.status());
    return sendJson(call, 201, {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Success"}, {"code", 201}});
  }
  if (info.group.empty() && info.resource == "serviceaccounts" && sub == "token") {
    return createServiceAccountToken(call, body);
  }
  sendStatus(call, Status::methodNotAllowed("the server does not allow this method on the requested resource"));
}

void ApiHandler::createServiceAccountToken(Call& call, const json& request) {
  const auto& info = *call.resource;
  if (!tokens_) return sendStatus(call, Status::serviceUnavailable("this server has no service-account signing key"));
  Status error;
  auto* cache = cacheFor(info, &error);
  if (!cache) return sendStatus(call, error);
  if (auto st = cache->waitUntilFresh(freshRevisionFor(*cache), std::chrono::seconds(3)); !st.isOk()) return sendStatus(call, st);
  auto account = cache->get(storageKey(info, call.info.ns, call.info.name));
  if (!account) return sendStatus(call, Status::notFound("", "serviceaccounts", call.info.name));
  json spec = request.value("spec", json::object());
  // kubectl sends `"expirationSeconds": null` when the user gave no --duration.
  int64_t seconds = spec.contains("expirationSeconds") && spec["expirationSeconds"].is_number_integer()
                        ? spec["expirationSeconds"].get<int64_t>()
                        : 3600;
  if (seconds < 600) {
    return sendStatus(call, Status::invalid("authentication.k8s.io", "TokenRequest", call.info.name,
                                            {{"FieldValueInvalid", "Invalid value: " + std::to_string(seconds) +
                                                                       ": may not specify a duration less than 10 minutes",
                                              "spec.expirationSeconds"}}));
  }
  json audiences = spec.contains("audiences") && spec["audiences"].is_array() ? spec["audiences"] : json::array();
  if (audiences.empty()) audiences = json::array({kTokenIssuer});
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(call.now.time_since_epoch()).count();
  json claims = {{"iss", kTokenIssuer},
                 {"sub", "system:serviceaccount:" + call.info.ns + ":" + call.info.name},
                 {"aud", audiences},
                 {"iat", now},
                 {"nbf", now},
                 {"exp", now + seconds},
                 {"jti", api::newUid()},
                 {"kubernetes.io",
                  {{"namespace", call.info.ns},
                   {"serviceaccount", {{"name", call.info.name}, {"uid", account->parse()["metadata"].value("uid", "")}}}}}};
  auto token = tokens_->sign(claims);
  if (!token.ok()) return sendStatus(call, token.status());
  spec["audiences"] = audiences;
  spec["expirationSeconds"] = seconds;
  json response = {{"kind", "TokenRequest"},
                   {"apiVersion", "authentication.k8s.io/v1"},
                   {"metadata", {{"name", call.info.name}, {"namespace", call.info.ns}, {"creationTimestamp", nullptr}}},
                   {"spec", spec},
                   {"status", {{"token", *token},
                               {"expirationTimestamp", api::formatTime(call.now + std::chrono::seconds(seconds))}}}};
  sendJson(call, 201, response);
}

json ApiHandler::scaleOf(const json& object) const {
  const json& meta = api::memberOrEmpty(object, "metadata");
  json scaleMeta = json::object();
  for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (meta.contains(k)) scaleMeta[k] = meta[k];
  }
  const json& spec = api::memberOrEmpty(object, "spec");
  const json& status = api::memberOrEmpty(object, "status");
  json scaleStatus = {{"replicas", status.value("replicas", 0)}};
  if (spec.contains("selector")) {
    auto sel = api::LabelSelector::fromJson(spec["selector"]);
    if (sel.ok() && !sel->toString().empty()) scaleStatus["selector"] = sel->toString();
  }
  return {{"kind", "Scale"},
          {"apiVersion", "autoscaling/v1"},
          {"metadata", scaleMeta},
          {"spec", {{"replicas", spec.value("replicas", 0)}}},
          {"status", scaleStatus}};
}

}  // namespace orrery::apiserver
