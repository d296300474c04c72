// CustomResourceDefinitions: admission (names, versions, structural schemas), status
// (NamesAccepted, Established), and serving their custom resources as soon as they exist.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/apiserver/handler.h"

namespace orrery::apiserver {

using api::Status;
using api::StatusCause;
using nlohmann::json;

namespace {

std::string lowerCase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

// OpenAPI definition name kube-apiserver gives a custom kind: reversed group + version + kind
// ("widgets.example.com" v1 Widget -> "com.example.v1.Widget").
std::string definitionName(const std::string& group, const std::string& version, const std::string& kind) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    auto dot = group.find('.', start);
    parts.push_back(group.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string name;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) name += *it + ".";
  return name + version + "." + kind;
}

json condition(const std::string& type, const std::string& reason, const std::string& message,
               const std::string& time) {
  return {{"type", type}, {"status", "True"}, {"lastTransitionTime", time}, {"reason", reason}, {"message", message}};
}

}  // namespace

Status ApiHandler::admitCustomResourceDefinition(json& crd, const json* old) {
  std::vector<StatusCause> causes;
  const std::string name = api::metaString(crd, "name");
  json& spec = crd["spec"];
  if (!spec.is_object()) spec = json::object();
  const std::string group = spec.value("group", "");
  json& names = spec["names"];
  if (!names.is_object()) names = json::object();
  const std::string plural = names.value("plural", "");
  const std::string kind = names.value("kind", "");
  if (group.empty()) causes.push_back({"FieldValueRequired", "Required value", "spec.group"});
  if (plural.empty()) causes.push_back({"FieldValueRequired", "Required value", "spec.names.plural"});
  if (kind.empty()) causes.push_back({"FieldValueRequired", "Required value", "spec.names.kind"});
  if (!group.empty() && !plural.empty() && name != plural + "." + group) {
    causes.push_back({"FieldValueInvalid",
                      "Invalid value: \"" + name + "\": must be spec.names.plural+\".\"+spec.group", "metadata.name"});
  }
  if (!kind.empty() && names.value("listKind", "").empty()) names["listKind"] = kind + "List";
  if (!kind.empty() && names.value("singular", "").empty()) names["singular"] = lowerCase(kind);
  std::string scope = spec.value("scope", "");
  if (scope != "Namespaced" && scope != "Cluster") {
    causes.push_back({"FieldValueNotSupported",
                      "Unsupported value: \"" + scope + "\": supported values: \"Cluster\", \"Namespaced\"", "spec.scope"});
  }
  const json versions = spec.value("versions", json::array());
  if (versions.empty()) causes.push_back({"FieldValueRequired", "Required value: must have exactly one version marked as storage version", "spec.versions"});
  int storage = 0;
  std::string storageVersion;
  for (size_t i = 0; i < versions.size(); ++i) {
    const auto& v = versions[i];
    std::string path = "spec.versions[" + std::to_string(i) + "]";
    if (v.value("storage", false)) {
      ++storage;
      storageVersion = v.value("name", "");
    }
    if (!v.contains("schema") || !v["schema"].contains("openAPIV3Schema")) {
      causes.push_back({"FieldValueRequired", "Required value: schemas are required", path + ".schema.openAPIV3Schema"});
      continue;
    }
    auto parsed = api::schemaFromOpenApiV3(v["schema"]["openAPIV3Schema"], path + ".schema.openAPIV3Schema");
    if (!parsed.ok()) {
      const auto& st = parsed.status();
      if (st.causes.empty()) causes.push_back({"FieldValueInvalid", st.message(), path + ".schema.openAPIV3Schema"});
      for (const auto& c : st.causes) causes.push_back(c);
    }
  }
  if (!versions.empty() && storage != 1) {
    causes.push_back({"FieldValueInvalid", "Invalid value: \"" + std::to_string(storage) +
                                               "\": must have exactly one version marked as storage version",
                      "spec.versions"});
  }
  if (!causes.empty()) return Status::invalid("apiextensions.k8s.io", "CustomResourceDefinition", name, causes);

  // The server accepts the names and serves the resource at once: status says so.
  std::string now = api::formatTime(std::chrono::system_clock::now());
  json stored = old ? old->value("status", json::object()).value("storedVersions", json::array()) : json::array();
  if (std::find(stored.begin(), stored.end(), storageVersion) == stored.end()) stored.push_back(storageVersion);
  crd["status"] = {{"acceptedNames", names},
                   {"storedVersions", stored},
                   {"conditions",
                    {condition("NamesAccepted", "NoConflicts", "no conflicts found", now),
                     condition("Established", "InitialNamesAccepted", "the initial names have been accepted", now)}}};
  return {};
}

void ApiHandler::registerCustomResource(const json& crd) {
  const json spec = crd.value("spec", json::object());
  const json names = spec.value("names", json::object());
  const std::string group = spec.value("group", "");
  for (const auto& v : spec.value("versions", json::array())) {
    if (!v.value("served", true)) continue;
    api::ResourceInfo info;
    info.group = group;
    info.version = v.value("name", "");
    info.resource = names.value("plural", "");
    info.kind = names.value("kind", "");
    info.listKind = names.value("listKind", info.kind + "List");
    info.singular = names.value("singular", lowerCase(info.kind));
    for (const auto& s : names.value("shortNames", json::array())) info.shortNames.push_back(s.get<std::string>());
    for (const auto& c : names.value("categories", json::array())) info.categories.push_back(c.get<std::string>());
    info.verbs = {"delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"};
    info.namespaced = spec.value("scope", "Namespaced") == "Namespaced";
    const json subresources = v.value("subresources", json::object());
    if (subresources.contains("status")) info.subresources.push_back("status");
    if (subresources.contains("scale")) info.subresources.push_back("scale");
    info.schemaName = definitionName(group, info.version, info.kind);
    info.storagePrefix = "/registry/" + group + "/" + info.resource + "/";
    info.custom = true;
    for (const auto& col : v.value("additionalPrinterColumns", json::array())) {
      api::TableColumn c;
      c.name = col.value("name", "");
      c.type = col.value("type", "string");
      c.format = col.value("format", "");
      c.description = col.value("description", "");
      c.priority = col.value("priority", 0);
      c.jsonPath = col.value("jsonPath", "");
      info.columns.push_back(std::move(c));
    }
    if (v.contains("schema") && v["schema"].contains("openAPIV3Schema")) {
      auto parsed = api::schemaFromOpenApiV3(v["schema"]["openAPIV3Schema"], "");
      if (parsed.ok()) {
        // Every custom resource has apiVersion, kind and ObjectMeta, whatever its schema says.
        auto root = std::make_shared<api::Schema>(**parsed);
        auto str = std::make_shared<api::Schema>();
        str->type = api::Schema::Type::kString;
        root->properties["apiVersion"] = str;
        root->properties["kind"] = str;
        if (auto meta = schemas_->find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")) {
          root->properties["metadata"] = meta;
        }
        root->refName = info.schemaName;
        root->isDefinition = true;
        root->gvks = {{info.group, info.version, info.kind}};
        schemas_->add(info.schemaName, root);
      } else {
        spdlog::warn("apiserver: CRD {} version {} has a schema that cannot be used: {}",
                     api::metaString(crd, "name"), info.version, parsed.status().message());
      }
    }
    resources_->add(std::move(info));
  }
}

void ApiHandler::unregisterCustomResource(const json& crd) {
  const json spec = crd.value("spec", json::object());
  const std::string group = spec.value("group", "");
  const std::string plural = spec.value("names", json::object()).value("plural", "");
  for (const auto& r : resources_->all()) {
    if (r.custom && r.group == group && r.resource == plural) {
      resources_->remove(r.gvr());
      schemas_->remove(r.schemaName);
    }
  }
}

void ApiHandler::afterWrite(const api::ResourceInfo& info, const json& object, bool deleted) {
  if (info.group != "apiextensions.k8s.io" || info.resource != "customresourcedefinitions") return;
  {
    // Discovery and OpenAPI change with the served resources.
    std::lock_guard lock(docsMu_);
    docs_.clear();
  }
  unregisterCustomResource(object);
  if (!deleted) {
    registerCustomResource(object);
    return;
  }
  // The CRD is gone: so are its objects (kube-apiserver's customresourcecleanup finalizer).
  const json spec = object.value("spec", json::object());
  std::string prefix = "/registry/" + spec.value("group", "") + "/" +
                       spec.value("names", json::object()).value("plural", "") + "/";
  store::TxnRequest txn;
  store::Operation op;
  op.type = store::Operation::Type::kDelete;
  op.key = prefix;
  op.prefix = true;
  txn.success.push_back(op);
  auto result = store_->txn(txn);
  if (result.ok()) noteWrite(result->revision, prefix);
  else spdlog::warn("apiserver: could not delete the objects of CRD {}: {}", api::metaString(object, "name"),
                    result.status().message());
}

Status ApiHandler::loadCustomResources() {
  auto info = resources_->find({"apiextensions.k8s.io", "v1", "customresourcedefinitions"});
  if (!info) return {};
  store::RangeRequest request;
  request.key = info->storagePrefix;
  request.prefix = true;
  auto range = store_->range(request);
  if (!range.ok()) return range.status();
  noteWrite(range->revision);
  for (const auto& kv : range->kvs) {
    json crd = json::parse(kv.value, nullptr, false);
    if (crd.is_object()) registerCustomResource(crd);
  }
  return {};
}

}  // namespace orrery::apiserver
