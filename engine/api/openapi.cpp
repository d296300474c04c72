// OpenAPI v2 (/openapi/v2, JSON and gnostic protobuf) and v3 (/openapi/v3/...) documents,
// generated on demand from the schema registry and the resource registry. Nothing is kept:
// the apiserver caches the serialized bytes it serves.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <functional>
#include <set>

#include "engine/api/resource.h"
#include "engine/api/schema.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;

constexpr const char* kMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.";
constexpr const char* kInfoVersion = "v1.32.0";

enum class Flavor { kV2, kV3 };

std::string refTo(Flavor f, const std::string& name) {
  return (f == Flavor::kV2 ? "#/definitions/" : "#/components/schemas/") + name;
}

json gvkJson(const SchemaGvk& g) {
  return json{{"group", g.group}, {"kind", g.kind}, {"version", g.version}};
}

// The merge and list extensions kube puts next to a field's type.
void addFieldExtensions(json& out, const Schema& s) {
  if (!s.patchStrategy.empty()) out["x-kubernetes-patch-strategy"] = s.patchStrategy;
  if (!s.patchMergeKey.empty()) out["x-kubernetes-patch-merge-key"] = s.patchMergeKey;
  if (!s.listType.empty()) out["x-kubernetes-list-type"] = s.listType;
  if (!s.listMapKeys.empty()) out["x-kubernetes-list-map-keys"] = s.listMapKeys;
  if (!s.mapType.empty()) out["x-kubernetes-map-type"] = s.mapType;
}

void addValueConstraints(json& out, const Schema& s) {
  if (!s.format.empty() && s.format != "quantity") out["format"] = s.format;
  if (!s.enumValues.empty()) {
    json e = json::array();
    for (const auto& v : s.enumValues) {
      if (s.type == Schema::Type::kString || s.type == Schema::Type::kIntOrString) {
        e.push_back(v);
      } else {
        auto parsed = json::parse(v, nullptr, false);
        e.push_back(parsed.is_discarded() ? json(v) : parsed);
      }
    }
    out["enum"] = std::move(e);
  }
  if (s.defaultValue) out["default"] = *s.defaultValue;
  if (s.minimum) out["minimum"] = *s.minimum;
  if (s.maximum) out["maximum"] = *s.maximum;
  if (s.exclusiveMinimum) out["exclusiveMinimum"] = true;
  if (s.exclusiveMaximum) out["exclusiveMaximum"] = true;
  if (s.multipleOf) out["multipleOf"] = *s.multipleOf;
  if (s.minLength) out["minLength"] = *s.minLength;
  if (s.maxLength) out["maxLength"] = *s.maxLength;
  if (s.minItems) out["minItems"] = *s.minItems;
  if (s.maxItems) out["maxItems"] = *s.maxItems;
  if (s.minProperties) out["minProperties"] = *s.minProperties;
  if (s.maxProperties) out["maxProperties"] = *s.maxProperties;
  if (!s.pattern.empty()) out["pattern"] = s.pattern;
}

// One schema node as OpenAPI. `top` is true for the body of a definition; a nested node that
// names a definition becomes a reference (which also ends recursion through named types).
json toOpenApi(const Schema& s, Flavor f, bool top, std::set<std::string>* refs) {
  if (!top && !s.refName.empty()) {
    if (refs) refs->insert(s.refName);
    json out = json::object();
    if (s.isDefinition) {
      out["$ref"] = refTo(f, s.refName);
      return out;
    }
    // A field of a named type: the field's own description and merge rules sit beside the
    // reference (v2), or beside an allOf of it (v3), as kube-apiserver writes them.
    if (f == Flavor::kV2) {
      out["$ref"] = refTo(f, s.refName);
    } else {
      out["allOf"] = json::array({json{{"$ref", refTo(f, s.refName)}}});
    }
    if (!s.description.empty()) out["description"] = s.description;
    addFieldExtensions(out, s);
    if (s.defaultValue) out["default"] = *s.defaultValue;
    return out;
  }
  json out = json::object();
  if (!s.description.empty()) out["description"] = s.description;
  switch (s.type) {
    case Schema::Type::kObject:
      out["type"] = "object";
      if (!s.properties.empty()) {
        json props = json::object();
        for (const auto& [name, child] : s.properties) {
          props[name] = toOpenApi(*child, f, false, refs);
        }
        out["properties"] = std::move(props);
      }
      if (!s.required.empty()) out["required"] = s.required;
      if (s.preserveUnknownFields) out["x-kubernetes-preserve-unknown-fields"] = true;
      break;
    case Schema::Type::kMap:
      out["type"] = "object";
      out["additionalProperties"] =
          s.items ? toOpenApi(*s.items, f, false, refs) : json::object();
      break;
    case Schema::Type::kArray:
      out["type"] = "array";
      out["items"] = s.items ? toOpenApi(*s.items, f, false, refs) : json::object();
      break;
    case Schema::Type::kString: out["type"] = "string"; break;
    case Schema::Type::kInteger: out["type"] = "integer"; break;
    case Schema::Type::kNumber: out["type"] = "number"; break;
    case Schema::Type::kBoolean: out["type"] = "boolean"; break;
    case Schema::Type::kIntOrString:
      if (s.format == "quantity") {
        // v2 has one type per schema: quantities are strings there; v3 says string or number.
        if (f == Flavor::kV2) {
          out["type"] = "string";
        } else {
          out["oneOf"] = json::array({json{{"type", "string"}}, json{{"type", "number"}}});
        }
      } else if (s.isDefinition) {
        // The IntOrString definition itself, as kube-openapi describes it.
        out["type"] = "string";
        out["format"] = "int-or-string";
      } else {
        out["x-kubernetes-int-or-string"] = true;
        out["anyOf"] = json::array({json{{"type", "integer"}}, json{{"type", "string"}}});
      }
      break;
    case Schema::Type::kAny:
      if (f == Flavor::kV3) out["x-kubernetes-preserve-unknown-fields"] = true;
      break;
  }
  addValueConstraints(out, s);
  if (s.nullable && f == Flavor::kV3) out["nullable"] = true;
  if (s.embeddedResource) out["x-kubernetes-embedded-resource"] = true;
  if (top) {
    if (!s.mapType.empty()) out["x-kubernetes-map-type"] = s.mapType;
    if (!s.gvks.empty()) {
      json g = json::array();
      for (const auto& x : s.gvks) g.push_back(gvkJson(x));
      out["x-kubernetes-group-version-kind"] = std::move(g);
    }
  } else {
    addFieldExtensions(out, s);
  }
  return out;
}

// ---- Paths.

std::string camel(const std::string& s) {
  std::string out;
  bool up = true;
  for (char c : s) {
    if (c == '.' || c == '-' || c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

// "CoreV1", "AppsV1", "RbacAuthorizationV1", "ExampleComV1": kube's operationId infix.
std::string groupVersionId(const std::string& group, const std::string& version) {
  std::string g = group.empty() ? "core" : group;
  const std::string suffix = ".k8s.io";
  if (g.size() > suffix.size() && g.compare(g.size() - suffix.size(), suffix.size(), suffix) == 0) {
    g = g.substr(0, g.size() - suffix.size());
  }
  return camel(g) + camel(version);
}

std::string basePath(const ResourceInfo& r) {
  return r.group.empty() ? "/api/" + r.version : "/apis/" + r.group + "/" + r.version;
}

json queryParam(const std::string& name, const std::string& type, const std::string& desc,
                Flavor f) {
  json p{{"name", name}, {"in", "query"}, {"description", desc}};
  if (f == Flavor::kV2) {
    p["type"] = type;
    p["uniqueItems"] = true;
  } else {
    p["schema"] = json{{"type", type}, {"uniqueItems", true}};
  }
  return p;
}

json pathParam(const std::string& name, const std::string& desc, Flavor f) {
  json p{{"name", name}, {"in", "path"}, {"required", true}, {"description", desc}};
  if (f == Flavor::kV2) {
    p["type"] = "string";
    p["uniqueItems"] = true;
  } else {
    p["schema"] = json{{"type", "string"}, {"uniqueItems", true}};
  }
  return p;
}

const char* kDryRunDoc =
    "When present, indicates that modifications should not be persisted. Valid values: All.";
const char* kFieldManagerDoc = "A name associated with the actor or entity making the changes.";
const char* kFieldValidationDoc =
    "How the server handles unknown and duplicate fields in the object: Ignore, Warn (the "
    "default) or Strict.";

struct PathBuilder {
  Flavor f;
  const SchemaRegistry& schemas;
  std::set<std::string>* refs;  // definitions the paths refer to (v3 components)
  json paths = json::object();

  // A reference to a definition when the registry has it, else a free-form object.
  json schemaRef(const std::string& name) {
    if (!name.empty() && schemas.find(name)) {
      if (refs) refs->insert(name);
      return json{{"$ref", refTo(f, name)}};
    }
    return json{{"type", "object"}};
  }

  json responses(const std::vector<std::pair<std::string, std::string>>& codes,
                 const std::string& schemaName) {
    json out = json::object();
    for (const auto& [code, desc] : codes) {
      json r{{"description", desc}};
      if (f == Flavor::kV2) {
        r["schema"] = schemaRef(schemaName);
      } else {
        json content = json::object();
        for (const char* mt : {"application/json", "application/yaml",
                               "application/vnd.kubernetes.protobuf"}) {
          content[mt] = json{{"schema", schemaRef(schemaName)}};
        }
        r["content"] = std::move(content);
      }
      out[code] = std::move(r);
    }
    out["401"] = json{{"description", "Unauthorized"}};
    return out;
  }

  void body(json& op, const std::string& schemaName, bool required,
            const std::vector<std::string>& consumes) {
    if (f == Flavor::kV2) {
      json p{{"name", "body"}, {"in", "body"}, {"schema", schemaRef(schemaName)}};
      if (required) p["required"] = true;
      op["parameters"].push_back(std::move(p));
      op["consumes"] = consumes;
    } else {
      json content = json::object();
      for (const auto& mt : consumes) content[mt] = json{{"schema", schemaRef(schemaName)}};
      op["requestBody"] = json{{"content", std::move(content)}};
      if (required) op["requestBody"]["required"] = true;
    }
  }

  json operation(const std::string& verbId, const ResourceInfo& r, const SchemaGvk& gvk,
                 const std::string& action, const std::string& description,
                 const std::string& suffix) {
    json op{{"description", description},
            {"operationId", verbId + groupVersionId(r.group, r.version) + suffix},
            {"tags", json::array({(r.group.empty() ? std::string("core") : r.group) + "_" +
                                  r.version})},
            {"x-kubernetes-action", action},
            {"x-kubernetes-group-version-kind", gvkJson(gvk)},
            {"parameters", json::array()}};
    if (f == Flavor::kV2) {
      op["produces"] = json::array({"application/json", "application/yaml",
                                    "application/vnd.kubernetes.protobuf"});
      op["schemes"] = json::array({"https"});
    }
    return op;
  }

  void addResource(const ResourceInfo& r, const SchemaGvk& gvk) {
    std::vector<std::string> verbs = r.verbs;
    if (verbs.empty()) {
      verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
    }
    auto has = [&](const char* v) { return std::find(verbs.begin(), verbs.end(), v) != verbs.end(); };
    const std::string ns = r.namespaced ? "Namespaced" : "";
    const std::string base = basePath(r);
    const std::string collection =
        r.namespaced ? base + "/namespaces/{namespace}/" + r.resource : base + "/" + r.resource;
    const std::string item = collection + "/{name}";
    const std::string kindSchema = r.schemaName;
    const std::string listSchema = r.schemaName.empty() ? "" : r.schemaName + "List";
    const std::string status = std::string(kMeta) + "Status";
    const std::string deleteOptions = std::string(kMeta) + "DeleteOptions";
    const std::string patch = std::string(kMeta) + "Patch";
    const std::vector<std::string> writeTypes = {"application/json", "application/yaml",
                                                 "application/vnd.kubernetes.protobuf"};
    const std::vector<std::string> patchTypes = {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"};

    auto listParams = [&](json& op) {
      for (const auto& [n, t, d] : std::vector<std::tuple<std::string, std::string, std::string>>{
               {"allowWatchBookmarks", "boolean", "Requests watch events with type BOOKMARK."},
               {"continue", "string", "The continue token of a previous paginated list."},
               {"fieldSelector", "string", "A selector to restrict the objects by their fields."},
               {"labelSelector", "string", "A selector to restrict the objects by their labels."},
               {"limit", "integer", "The maximum number of objects to return."},
               {"resourceVersion", "string", "The resource version to list or watch from."},
               {"resourceVersionMatch", "string", "How resourceVersion applies to list calls."},
               {"sendInitialEvents", "boolean", "Start a watch with synthetic initial events."},
               {"timeoutSeconds", "integer", "Timeout for the list/watch call."},
               {"watch", "boolean", "Watch for changes and return them as a stream."}}) {
        op["parameters"].push_back(queryParam(n, t, d, f));
      }
    };
    auto writeParams = [&](json& op, bool withForce) {
      op["parameters"].push_back(queryParam("dryRun", "string", kDryRunDoc, f));
      op["parameters"].push_back(queryParam("fieldManager", "string", kFieldManagerDoc, f));
      op["parameters"].push_back(queryParam("fieldValidation", "string", kFieldValidationDoc, f));
      if (withForce) {
        op["parameters"].push_back(queryParam(
            "force", "boolean", "Force apply requests to take over conflicting fields.", f));
      }
    };
    auto deleteParams = [&](json& op) {
      op["parameters"].push_back(queryParam("dryRun", "string", kDryRunDoc, f));
      op["parameters"].push_back(queryParam(
          "gracePeriodSeconds", "integer", "The duration in seconds before deletion.", f));
      op["parameters"].push_back(queryParam(
          "orphanDependents", "boolean", "Deprecated: use propagationPolicy.", f));
      op["parameters"].push_back(queryParam(
          "propagationPolicy", "string", "Orphan, Background or Foreground garbage collection.",
          f));
    };
    auto pathItem = [&](const std::string& p, bool withName) -> json& {
      json& pi = paths[p];
      if (!pi.contains("parameters")) {
        pi["parameters"] = json::array();
        if (withName) pi["parameters"].push_back(pathParam("name", "name of the " + r.kind, f));
        if (r.namespaced) {
          pi["parameters"].push_back(
              pathParam("namespace", "object name and auth scope, such as for teams and projects",
                        f));
        }
        pi["parameters"].push_back(
            queryParam("pretty", "string", "If 'true', then the output is pretty printed.", f));
      }
      return pi;
    };

    // Collection.
    if (has("list") || has("create") || has("deletecollection")) {
      json& pi = pathItem(collection, false);
      if (has("list")) {
        json op = operation("list", r, gvk, "list", "list or watch objects of kind " + r.kind,
                            ns + r.kind);
        listParams(op);
        op["responses"] = responses({{"200", "OK"}}, listSchema);
        pi["get"] = std::move(op);
      }
      if (has("create")) {
        json op = operation("create", r, gvk, "post", "create a " + r.kind, ns + r.kind);
        body(op, kindSchema, true, writeTypes);
        writeParams(op, false);
        op["responses"] = responses({{"200", "OK"}, {"201", "Created"}, {"202", "Accepted"}},
                                    kindSchema);
        pi["post"] = std::move(op);
      }
      if (has("deletecollection")) {
        json op = operation("deleteCollection", r, gvk, "deletecollection",
                            "delete collection of " + r.kind, ns + r.kind);
        body(op, deleteOptions, false, writeTypes);
        deleteParams(op);
        listParams(op);
        op["responses"] = responses({{"200", "OK"}}, status);
        pi["delete"] = std::move(op);
      }
    }
    if (r.namespaced && has("list")) {
      json& pi = paths[base + "/" + r.resource];
      pi["parameters"] = json::array(
          {queryParam("pretty", "string", "If 'true', then the output is pretty printed.", f)});
      json op = operation("list", r, gvk, "list", "list or watch objects of kind " + r.kind,
                          r.kind + "ForAllNamespaces");
      listParams(op);
      op["responses"] = responses({{"200", "OK"}}, listSchema);
      pi["get"] = std::move(op);
    }
    // One object.
    if (has("get") || has("update") || has("patch") || has("delete")) {
      json& pi = pathItem(item, true);
      if (has("get")) {
        json op = operation("read", r, gvk, "get", "read the specified " + r.kind, ns + r.kind);
        op["responses"] = responses({{"200", "OK"}}, kindSchema);
        pi["get"] = std::move(op);
      }
      if (has("update")) {
        json op = operation("replace", r, gvk, "put", "replace the specified " + r.kind,
                            ns + r.kind);
        body(op, kindSchema, true, writeTypes);
        writeParams(op, false);
        op["responses"] = responses({{"200", "OK"}, {"201", "Created"}}, kindSchema);
        pi["put"] = std::move(op);
      }
      if (has("patch")) {
        json op = operation("patch", r, gvk, "patch", "partially update the specified " + r.kind,
                            ns + r.kind);
        body(op, patch, true, patchTypes);
        writeParams(op, true);
        op["responses"] = responses({{"200", "OK"}, {"201", "Created"}}, kindSchema);
        pi["patch"] = std::move(op);
      }
      if (has("delete")) {
        json op = operation("delete", r, gvk, "delete", "delete a " + r.kind, ns + r.kind);
        body(op, deleteOptions, false, writeTypes);
        deleteParams(op);
        op["responses"] = responses({{"200", "OK"}, {"202", "Accepted"}}, status);
        pi["delete"] = std::move(op);
      }
    }
    // status and scale: read, replace, patch of a part of the object.
    for (const auto& sub : r.subresources) {
      if (sub != "status" && sub != "scale") continue;
      SchemaGvk subGvk = gvk;
      std::string subSchema = kindSchema;
      if (sub == "scale") {
        subGvk = {"autoscaling", "v1", "Scale"};
        subSchema = "io.k8s.api.autoscaling.v1.Scale";
      }
      const std::string suffix = ns + r.kind + camel(sub);
      json& pi = pathItem(item + "/" + sub, true);
      json get = operation("read", r, subGvk, "get", "read " + sub + " of the specified " + r.kind,
                           suffix);
      get["responses"] = responses({{"200", "OK"}}, subSchema);
      pi["get"] = std::move(get);
      json put = operation("replace", r, subGvk, "put",
                           "replace " + sub + " of the specified " + r.kind, suffix);
      body(put, subSchema, true, writeTypes);
      writeParams(put, false);
      put["responses"] = responses({{"200", "OK"}, {"201", "Created"}}, subSchema);
      pi["put"] = std::move(put);
      json pat = operation("patch", r, subGvk, "patch",
                           "partially update " + sub + " of the specified " + r.kind, suffix);
      body(pat, patch, true, patchTypes);
      writeParams(pat, true);
      pat["responses"] = responses({{"200", "OK"}, {"201", "Created"}}, subSchema);
      pi["patch"] = std::move(pat);
    }
  }
};

// The GVK a resource's kind schema carries (the schema's own when it has one).
SchemaGvk kindGvk(const ResourceInfo& r) { return {r.group, r.version, r.kind}; }

// Definitions, with x-kubernetes-group-version-kind added for served kinds whose schema (a
// CRD's) does not carry one.
json definitionOf(const Schema& s, Flavor f, const std::vector<SchemaGvk>& extraGvks,
                  std::set<std::string>* refs) {
  json d = toOpenApi(s, f, true, refs);
  if (s.gvks.empty() && !extraGvks.empty()) {
    json g = json::array();
    for (const auto& x : extraGvks) g.push_back(gvkJson(x));
    d["x-kubernetes-group-version-kind"] = std::move(g);
  }
  return d;
}

std::map<std::string, std::vector<SchemaGvk>> servedGvks(const ResourceRegistry* resources) {
  std::map<std::string, std::vector<SchemaGvk>> out;
  if (!resources) return out;
  for (const auto& r : resources->all()) {
    if (r.schemaName.empty()) continue;
    auto& v = out[r.schemaName];
    SchemaGvk g = kindGvk(r);
    if (std::find(v.begin(), v.end(), g) == v.end()) v.push_back(g);
  }
  return out;
}

// ---- gnostic openapi_v2.Document protobuf (github.com/google/gnostic openapiv2/OpenAPIv2.proto).

class Pb {
 public:
  std::string buf;

  void varint(uint64_t v) {
    while (v >= 0x80) {
      buf += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    buf += static_cast<char>(v);
  }
  void tag(int field, int wire) { varint((static_cast<uint64_t>(field) << 3) | wire); }
  void str(int field, const std::string& s) {
    tag(field, 2);
    varint(s.size());
    buf += s;
  }
  void boolean(int field, bool b) {
    if (!b) return;
    tag(field, 0);
    varint(1);
  }
  void int64(int field, int64_t v) {
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void dbl(int field, double d) {
    tag(field, 1);
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    for (int i = 0; i < 8; ++i) buf += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  void msg(int field, const Pb& m) { str(field, m.buf); }
};

// Any{yaml}: kube-openapi stores extension, default and enum values as YAML text; JSON is YAML.
Pb anyYaml(const json& v) {
  Pb a;
  a.str(2, v.is_string() ? json(v).dump() : v.dump());
  return a;
}

Pb namedAny(const std::string& name, const json& v) {
  Pb n;
  n.str(1, name);
  n.msg(2, anyYaml(v));
  return n;
}

void vendorExtensions(Pb& out, int field, const json& j) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key().rfind("x-", 0) == 0) out.msg(field, namedAny(it.key(), it.value()));
  }
}

Pb pbSchema(const json& s) {
  Pb p;
  auto getStr = [&](const char* k, int field) {
    if (auto it = s.find(k); it != s.end() && it->is_string()) p.str(field, it->get<std::string>());
  };
  getStr("$ref", 1);
  getStr("format", 2);
  getStr("title", 3);
  getStr("description", 4);
  if (auto it = s.find("default"); it != s.end()) p.msg(5, anyYaml(*it));
  auto num = [&](const char* k, int field) {
    if (auto it = s.find(k); it != s.end() && it->is_number()) p.dbl(field, it->get<double>());
  };
  auto cnt = [&](const char* k, int field) {
    if (auto it = s.find(k); it != s.end() && it->is_number_integer()) {
      p.int64(field, it->get<int64_t>());
    }
  };
  auto flag = [&](const char* k, int field) {
    if (auto it = s.find(k); it != s.end() && it->is_boolean()) p.boolean(field, it->get<bool>());
  };
  num("multipleOf", 6);
  num("maximum", 7);
  flag("exclusiveMaximum", 8);
  num("minimum", 9);
  flag("exclusiveMinimum", 10);
  cnt("maxLength", 11);
  cnt("minLength", 12);
  getStr("pattern", 13);
  cnt("maxItems", 14);
  cnt("minItems", 15);
  flag("uniqueItems", 16);
  cnt("maxProperties", 17);
  cnt("minProperties", 18);
  if (auto it = s.find("required"); it != s.end() && it->is_array()) {
    for (const auto& r : *it) p.str(19, r.get<std::string>());
  }
  if (auto it = s.find("enum"); it != s.end() && it->is_array()) {
    for (const auto& e : *it) p.msg(20, anyYaml(e));
  }
  if (auto it = s.find("additionalProperties"); it != s.end()) {
    Pb ap;
    if (it->is_boolean()) {
      ap.tag(2, 0);
      ap.varint(it->get<bool>() ? 1 : 0);
    } else {
      ap.msg(1, pbSchema(*it));
    }
    p.msg(21, ap);
  }
  if (auto it = s.find("type"); it != s.end() && it->is_string()) {
    Pb t;
    t.str(1, it->get<std::string>());
    p.msg(22, t);
  }
  if (auto it = s.find("items"); it != s.end() && it->is_object()) {
    Pb items;
    items.msg(1, pbSchema(*it));
    p.msg(23, items);
  }
  if (auto it = s.find("allOf"); it != s.end() && it->is_array()) {
    for (const auto& a : *it) p.msg(24, pbSchema(a));
  }
  if (auto it = s.find("properties"); it != s.end() && it->is_object()) {
    Pb props;
    for (auto pi = it->begin(); pi != it->end(); ++pi) {
      Pb named;
      named.str(1, pi.key());
      named.msg(2, pbSchema(pi.value()));
      props.msg(1, named);
    }
    p.msg(25, props);
  }
  vendorExtensions(p, 31, s);
  return p;
}

Pb pbParameter(const json& param) {
  Pb item;  // ParametersItem
  Pb parameter;
  if (param.value("in", "") == "body") {
    Pb b;  // BodyParameter
    if (param.contains("description")) b.str(1, param["description"].get<std::string>());
    b.str(2, param.value("name", ""));
    b.str(3, "body");
    b.boolean(4, param.value("required", false));
    if (param.contains("schema")) b.msg(5, pbSchema(param["schema"]));
    parameter.msg(1, b);
  } else {
    const bool inPath = param.value("in", "") == "path";
    Pb q;  // QueryParameterSubSchema / PathParameterSubSchema
    q.boolean(1, param.value("required", false));
    q.str(2, param.value("in", ""));
    if (param.contains("description")) q.str(3, param["description"].get<std::string>());
    q.str(4, param.value("name", ""));
    if (inPath) {
      q.str(5, param.value("type", ""));
      q.boolean(19, param.value("uniqueItems", false));
    } else {
      q.str(6, param.value("type", ""));
      q.boolean(20, param.value("uniqueItems", false));
    }
    Pb nonBody;
    nonBody.msg(inPath ? 4 : 3, q);
    parameter.msg(2, nonBody);
  }
  item.msg(1, parameter);
  return item;
}

Pb pbOperation(const json& op) {
  Pb o;
  if (auto it = op.find("tags"); it != op.end()) {
    for (const auto& t : *it) o.str(1, t.get<std::string>());
  }
  if (op.contains("description")) o.str(3, op["description"].get<std::string>());
  if (op.contains("operationId")) o.str(5, op["operationId"].get<std::string>());
  if (auto it = op.find("produces"); it != op.end()) {
    for (const auto& t : *it) o.str(6, t.get<std::string>());
  }
  if (auto it = op.find("consumes"); it != op.end()) {
    for (const auto& t : *it) o.str(7, t.get<std::string>());
  }
  if (auto it = op.find("parameters"); it != op.end()) {
    for (const auto& p : *it) o.msg(8, pbParameter(p));
  }
  if (auto it = op.find("responses"); it != op.end()) {
    Pb responses;
    for (auto r = it->begin(); r != it->end(); ++r) {
      Pb response;
      response.str(1, r->value("description", ""));
      if (r->contains("schema")) {
        Pb schemaItem;
        schemaItem.msg(1, pbSchema((*r)["schema"]));
        response.msg(2, schemaItem);
      }
      Pb value;  // ResponseValue
      value.msg(1, response);
      Pb named;
      named.str(1, r.key());
      named.msg(2, value);
      responses.msg(1, named);
    }
    o.msg(9, responses);
  }
  if (auto it = op.find("schemes"); it != op.end()) {
    for (const auto& t : *it) o.str(10, t.get<std::string>());
  }
  vendorExtensions(o, 13, op);
  return o;
}

std::string hexHash(std::string_view data) {
  // Two FNV-1a passes with different offsets: a stable 128-bit content hash for cache URLs.
  uint64_t a = 14695981039346656037ull, b = 1099511628211ull * 31 + 7;
  for (unsigned char c : data) {
    a = (a ^ c) * 1099511628211ull;
    b = (b ^ c) * 0x100000001b3ull + 0x9E3779B97F4A7C15ull;
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llX%016llX", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

// "apps/v1" -> {"apps","v1"}; "v1" -> {"","v1"}.
std::pair<std::string, std::string> splitGroupVersion(const std::string& gv) {
  auto slash = gv.find('/');
  if (slash == std::string::npos) return {"", gv};
  return {gv.substr(0, slash), gv.substr(slash + 1)};
}

}  // namespace

nlohmann::json SchemaRegistry::openApiV2() const {
  json defs = json::object();
  for (const auto& name : names()) {
    if (auto s = find(name)) defs[name] = definitionOf(*s, Flavor::kV2, {}, nullptr);
  }
  return json{{"swagger", "2.0"},
              {"info", {{"title", "Kubernetes"}, {"version", kInfoVersion}}},
              {"paths", json::object()},
              {"definitions", std::move(defs)}};
}

nlohmann::json SchemaRegistry::openApiV2(const ResourceRegistry& resources) const {
  auto gvks = servedGvks(&resources);
  json defs = json::object();
  for (const auto& name : names()) {
    auto s = find(name);
    if (!s) continue;
    auto g = gvks.find(name);
    defs[name] = definitionOf(*s, Flavor::kV2, g == gvks.end() ? std::vector<SchemaGvk>{} : g->second,
                              nullptr);
  }
  PathBuilder pb{Flavor::kV2, *this, nullptr};
  for (const auto& r : resources.all()) pb.addResource(r, kindGvk(r));
  return json{{"swagger", "2.0"},
              {"info", {{"title", "Kubernetes"}, {"version", kInfoVersion}}},
              {"paths", std::move(pb.paths)},
              {"definitions", std::move(defs)},
              {"securityDefinitions",
               {{"BearerToken",
                 {{"type", "apiKey"}, {"name", "authorization"}, {"in", "header"},
                  {"description", "Bearer Token authentication"}}}}},
              {"security", json::array({json{{"BearerToken", json::array()}}})}};
}

std::string SchemaRegistry::openApiV2Protobuf(const ResourceRegistry& resources) const {
  const json doc = openApiV2(resources);
  Pb d;
  d.str(1, "2.0");
  Pb info;
  info.str(1, doc["info"]["title"].get<std::string>());
  info.str(2, doc["info"]["version"].get<std::string>());
  d.msg(2, info);
  Pb paths;
  for (auto it = doc["paths"].begin(); it != doc["paths"].end(); ++it) {
    Pb item;
    static const std::vector<std::pair<const char*, int>> methods = {
        {"get", 2}, {"put", 3}, {"post", 4}, {"delete", 5}, {"patch", 8}};
    for (const auto& [m, field] : methods) {
      if (it->contains(m)) item.msg(field, pbOperation((*it)[m]));
    }
    if (it->contains("parameters")) {
      for (const auto& p : (*it)["parameters"]) item.msg(9, pbParameter(p));
    }
    Pb named;
    named.str(1, it.key());
    named.msg(2, item);
    paths.msg(2, named);
  }
  d.msg(8, paths);
  Pb defs;
  for (auto it = doc["definitions"].begin(); it != doc["definitions"].end(); ++it) {
    Pb named;
    named.str(1, it.key());
    named.msg(2, pbSchema(it.value()));
    defs.msg(1, named);
  }
  d.msg(9, defs);
  return std::move(d.buf);
}

nlohmann::json SchemaRegistry::openApiV3(const std::string& groupVersion) const {
  // Without resources: every definition whose kind belongs to the group-version, and what it
  // refers to; no paths.
  auto [group, version] = splitGroupVersion(groupVersion);
  std::set<std::string> wanted;
  for (const auto& name : names()) {
    auto s = find(name);
    for (const auto& g : s->gvks) {
      if (g.group == group && g.version == version) wanted.insert(name);
    }
  }
  json schemas = json::object();
  std::vector<std::string> queue(wanted.begin(), wanted.end());
  std::set<std::string> done;
  while (!queue.empty()) {
    std::string n = queue.back();
    queue.pop_back();
    if (!done.insert(n).second) continue;
    auto s = find(n);
    if (!s) continue;
    std::set<std::string> refs;
    schemas[n] = definitionOf(*s, Flavor::kV3, {}, &refs);
    for (const auto& r : refs) {
      if (!done.count(r)) queue.push_back(r);
    }
  }
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", kInfoVersion}}},
              {"paths", json::object()},
              {"components", {{"schemas", std::move(schemas)}}}};
}

nlohmann::json SchemaRegistry::openApiV3(const std::string& groupVersion,
                                         const ResourceRegistry& resources) const {
  auto [group, version] = splitGroupVersion(groupVersion);
  auto gvks = servedGvks(&resources);
  std::set<std::string> refs;
  PathBuilder pb{Flavor::kV3, *this, &refs};
  for (const auto& r : resources.all()) {
    if (r.group != group || r.version != version) continue;
    pb.addResource(r, kindGvk(r));
    if (!r.schemaName.empty()) refs.insert(r.schemaName);
  }
  json schemas = json::object();
  std::vector<std::string> queue(refs.begin(), refs.end());
  std::set<std::string> done;
  while (!queue.empty()) {
    std::string n = queue.back();
    queue.pop_back();
    if (!done.insert(n).second) continue;
    auto s = find(n);
    if (!s) continue;
    std::set<std::string> more;
    auto g = gvks.find(n);
    schemas[n] = definitionOf(*s, Flavor::kV3,
                              g == gvks.end() ? std::vector<SchemaGvk>{} : g->second, &more);
    for (const auto& r : more) {
      if (!done.count(r)) queue.push_back(r);
    }
  }
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", kInfoVersion}}},
              {"paths", std::move(pb.paths)},
              {"components",
               {{"schemas", std::move(schemas)},
                {"securitySchemes",
                 {{"BearerToken",
                   {{"type", "apiKey"}, {"name", "authorization"}, {"in", "header"},
                    {"description", "Bearer Token authentication"}}}}}}}};
}

nlohmann::json SchemaRegistry::openApiV3Index(const ResourceRegistry& resources,
                                              const std::map<std::string, std::string>& hashes) const {
  json paths = json::object();
  for (const auto& gv : resources.groupVersions()) {
    std::string key = gv.find('/') == std::string::npos ? "api/" + gv : "apis/" + gv;
    std::string hash;
    if (auto it = hashes.find(gv); it != hashes.end()) {
      hash = it->second;
    } else {
      hash = openApiHash(openApiV3(gv, resources).dump());
    }
    paths[key] = json{{"serverRelativeURL", "/openapi/v3/" + key + "?hash=" + hash}};
  }
  return json{{"paths", std::move(paths)}};
}

std::string SchemaRegistry::openApiHash(std::string_view serialized) { return hexHash(serialized); }

}  // namespace orrery::api
