// CustomResourceDefinition schemas: an openAPIV3Schema parsed into a structural Schema, with
// the structural-schema rules of apiextensions-apiserver and its cause wording.

#include <algorithm>
#include <regex>
#include <set>

#include "engine/api/schema.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;

enum class Level { kRoot, kItem, kField };

std::string quoteStr(const std::string& s) { return json(s).dump(); }

struct CrdParser {
  std::vector<StatusCause> causes;
  SchemaPtr objectMeta;

  void required(const std::string& path, const std::string& detail) {
    causes.push_back({"FieldValueRequired", "Required value: " + detail, path});
  }
  void forbidden(const std::string& path, const std::string& detail) {
    causes.push_back({"FieldValueForbidden", "Forbidden: " + detail, path});
  }
  void invalid(const std::string& path, const json& value, const std::string& detail) {
    std::string v = value.is_string() ? quoteStr(value.get<std::string>()) : value.dump();
    causes.push_back({"FieldValueInvalid", "Invalid value: " + v + ": " + detail, path});
  }

  static bool flag(const json& s, const char* key) {
    auto it = s.find(key);
    return it != s.end() && it->is_boolean() && it->get<bool>();
  }
  static std::string str(const json& s, const char* key) {
    auto it = s.find(key);
    return it != s.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  // Value validations under anyOf/allOf/oneOf/not may not declare structure.
  void nested(const json& v, const std::string& path, bool skipIntOrStringAnyOf) {
    if (!v.is_object()) return;
    static const std::vector<std::pair<const char*, const char*>> forbiddenKeys = {
        {"type", "must be empty to be structural"},
        {"additionalProperties", "must be undefined to be structural"},
        {"default", "must be undefined to be structural"},
        {"title", "must be empty to be structural"},
        {"description", "must be empty to be structural"},
        {"nullable", "must be false to be structural"},
        {"x-kubernetes-preserve-unknown-fields", "must be false to be structural"},
        {"x-kubernetes-embedded-resource", "must be false to be structural"},
        {"x-kubernetes-int-or-string", "must be false to be structural"},
        {"x-kubernetes-list-map-keys", "must be empty to be structural"},
        {"x-kubernetes-list-type", "must be undefined to be structural"},
    };
    if (!skipIntOrStringAnyOf) {
      for (const auto& [k, why] : forbiddenKeys) {
        auto it = v.find(k);
        if (it == v.end() || (it->is_boolean() && !it->get<bool>())) continue;
        forbidden(path + "." + k, why);
      }
    }
    if (auto p = v.find("properties"); p != v.end() && p->is_object()) {
      for (auto it = p->begin(); it != p->end(); ++it) {
        if (it.key() == "metadata") {
          forbidden(path + ".properties[metadata]", "must not be specified in a nested context");
        }
        nested(it.value(), path + ".properties[" + it.key() + "]", false);
      }
    }
    if (auto i = v.find("items"); i != v.end()) nested(*i, path + ".items", false);
    junctors(v, path);
  }

  static bool isIntOrStringAnyOf(const json& anyOf) {
    return anyOf.is_array() && anyOf.size() == 2 &&
           anyOf[0] == json{{"type", "integer"}} && anyOf[1] == json{{"type", "string"}};
  }

  void junctors(const json& s, const std::string& path) {
    for (const char* j : {"anyOf", "allOf", "oneOf"}) {
      auto it = s.find(j);
      if (it == s.end() || !it->is_array()) continue;
      bool intOrString = std::string(j) == "anyOf" && isIntOrStringAnyOf(*it);
      for (size_t i = 0; i < it->size(); ++i) {
        // allOf[0].anyOf of int-or-string is recognised when nested() reaches it.
        nested((*it)[i], path + "." + j + "[" + std::to_string(i) + "]", intOrString);
      }
    }
    if (auto n = s.find("not"); n != s.end()) nested(*n, path + ".not", false);
  }

  std::shared_ptr<Schema> parse(const json& s, const std::string& path, Level lvl) {
    auto node = std::make_shared<Schema>();
    if (!s.is_object()) {
      invalid(path, s, "must be a schema object");
      return node;
    }
    const std::string type = str(s, "type");
    const bool intOrString = flag(s, "x-kubernetes-int-or-string");
    const bool preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    const bool embedded = flag(s, "x-kubernetes-embedded-resource");

    static const std::set<std::string> kTypes = {"array", "boolean", "integer",
                                                 "number", "object", "string"};
    if (!type.empty() && !kTypes.count(type)) {
      causes.push_back({"FieldValueNotSupported",
                        "Unsupported value: " + quoteStr(type) +
                            ": supported values: \"array\", \"boolean\", \"integer\", "
                            "\"number\", \"object\", \"string\"",
                        path + ".type"});
    }
    if (s.contains("$ref")) forbidden(path + ".$ref", "$ref is not supported");
    if (auto pf = s.find("x-kubernetes-preserve-unknown-fields");
        pf != s.end() && pf->is_boolean() && !pf->get<bool>()) {
      invalid(path + ".x-kubernetes-preserve-unknown-fields", false, "must be true or undefined");
    }
    if (flag(s, "uniqueItems")) {
      forbidden(path + ".uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic");
    }

    // Structural invariants (apiextensions-apiserver schema/validation.go).
    if (embedded && type != "object") {
      if (type.empty()) {
        required(path + ".type", "must be object if x-kubernetes-embedded-resource is true");
      } else {
        invalid(path + ".type", type, "must be object if x-kubernetes-embedded-resource is true");
      }
    } else if (type.empty() && !intOrString && !preserve) {
      required(path + ".type", lvl == Level::kRoot   ? "must not be empty at the root"
                               : lvl == Level::kItem ? "must not be empty for specified array items"
                                                     : "must not be empty for specified object fields");
    }
    if (lvl == Level::kRoot && !type.empty() && type != "object") {
      invalid(path + ".type", type, "must be object at the root");
    }
    if (intOrString && preserve) {
      invalid(path + ".x-kubernetes-preserve-unknown-fields", true,
              "must be false if x-kubernetes-int-or-string is true");
    }
    if (intOrString && embedded) {
      invalid(path + ".x-kubernetes-embedded-resource", true,
              "must be false if x-kubernetes-int-or-string is true");
    }

    node->description = str(s, "description");
    node->format = str(s, "format");
    node->pattern = str(s, "pattern");
    if (!node->pattern.empty()) {
      try {
        std::regex re(node->pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        invalid(path + ".pattern", node->pattern,
                "must be a valid regular expression, but isn't: " + std::string(e.what()));
      }
    }
    node->nullable = flag(s, "nullable");
    node->preserveUnknownFields = preserve;
    node->embeddedResource = embedded;
    auto num = [&](const char* k) -> std::optional<double> {
      auto it = s.find(k);
      if (it == s.end() || !it->is_number()) return std::nullopt;
      return it->get<double>();
    };
    auto count = [&](const char* k) -> std::optional<int64_t> {
      auto it = s.find(k);
      if (it == s.end() || !it->is_number_integer()) return std::nullopt;
      return it->get<int64_t>();
    };
    node->minimum = num("minimum");
    node->maximum = num("maximum");
    node->multipleOf = num("multipleOf");
    node->exclusiveMinimum = flag(s, "exclusiveMinimum");
    node->exclusiveMaximum = flag(s, "exclusiveMaximum");
    node->minLength = count("minLength");
    node->maxLength = count("maxLength");
    node->minItems = count("minItems");
    node->maxItems = count("maxItems");
    node->minProperties = count("minProperties");
    node->maxProperties = count("maxProperties");
    if (auto d = s.find("default"); d != s.end()) node->defaultValue = *d;
    if (auto e = s.find("enum"); e != s.end() && e->is_array()) {
      for (const auto& v : *e) {
        node->enumValues.push_back(v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    if (auto r = s.find("required"); r != s.end() && r->is_array()) {
      for (const auto& v : *r) {
        if (v.is_string()) node->required.push_back(v.get<std::string>());
      }
    }
    node->listType = str(s, "x-kubernetes-list-type");
    node->mapType = str(s, "x-kubernetes-map-type");
    if (auto k = s.find("x-kubernetes-list-map-keys"); k != s.end() && k->is_array()) {
      for (const auto& v : *k) {
        if (v.is_string()) node->listMapKeys.push_back(v.get<std::string>());
      }
    }
    if (!node->listType.empty() && node->listType != "atomic" && node->listType != "set" &&
        node->listType != "map") {
      causes.push_back({"FieldValueNotSupported",
                        "Unsupported value: " + quoteStr(node->listType) +
                            ": supported values: \"atomic\", \"map\", \"set\"",
                        path + ".x-kubernetes-list-type"});
    }
    if (node->listType == "map" && node->listMapKeys.empty()) {
      required(path + ".x-kubernetes-list-map-keys",
               "must not be empty if x-kubernetes-list-type is map");
    }
    if (!node->listMapKeys.empty() && node->listType != "map") {
      forbidden(path + ".x-kubernetes-list-map-keys",
                "must not be specified if x-kubernetes-list-type is not map");
    }

    // Children.
    auto props = s.find("properties");
    auto addl = s.find("additionalProperties");
    const bool hasProps = props != s.end() && props->is_object() && !props->empty();
    if (addl != s.end()) {
      if (lvl == Level::kRoot) forbidden(path + ".additionalProperties", "must not be used at the root");
      if (hasProps) {
        forbidden(path + ".additionalProperties",
                  "additionalProperties and properties are mutual exclusive");
      }
      if (embedded) {
        forbidden(path + ".additionalProperties",
                  "must not be used if x-kubernetes-embedded-resource is set");
      }
    }
    if (props != s.end() && props->is_object()) {
      for (auto it = props->begin(); it != props->end(); ++it) {
        std::string p = path + ".properties[" + it.key() + "]";
        node->properties[it.key()] = parse(it.value(), p, Level::kField);
      }
    }
    const bool checkMetadata = lvl == Level::kRoot || embedded;
    if (checkMetadata) {
      for (const char* k : {"kind", "apiVersion"}) {
        if (props != s.end() && props->is_object() && props->contains(k)) {
          std::string t = str((*props)[k], "type");
          if (t != "string") invalid(path + ".properties[" + k + "].type", t, "must be string");
        }
      }
      if (props != s.end() && props->is_object() && props->contains("metadata")) {
        std::string t = str((*props)["metadata"], "type");
        if (t != "object") invalid(path + ".properties[metadata].type", t, "must be object");
      }
    }
    if (lvl == Level::kRoot && props != s.end() && props->is_object() &&
        props->contains("metadata")) {
      const json& m = (*props)["metadata"];
      bool onlyNames = true;
      for (auto it = m.begin(); it != m.end(); ++it) {
        if (it.key() == "type" || it.key() == "default") continue;
        if (it.key() == "properties" && it->is_object()) {
          for (auto p = it->begin(); p != it->end(); ++p) {
            if (p.key() != "name" && p.key() != "generateName") onlyNames = false;
          }
          continue;
        }
        onlyNames = false;
      }
      if (!onlyNames) {
        forbidden(path + ".properties[metadata]",
                  "must not specify anything other than name and generateName, but metadata is "
                  "implicitly specified");
      }
    }
    if (embedded && !preserve && !hasProps) {
      required(path + ".properties",
               "must not be empty if x-kubernetes-embedded-resource is true without "
               "x-kubernetes-preserve-unknown-fields");
    }
    junctors(s, path);

    // The node's kind.
    if (intOrString) {
      node->type = Schema::Type::kIntOrString;
    } else if (type == "object") {
      if (addl != s.end() && !hasProps) {
        node->type = Schema::Type::kMap;
        if (addl->is_object()) {
          node->items = parse(*addl, path + ".additionalProperties", Level::kField);
        } else {
          auto any = std::make_shared<Schema>();
          any->type = Schema::Type::kAny;
          any->preserveUnknownFields = true;
          node->items = any;
        }
      } else {
        node->type = Schema::Type::kObject;
      }
    } else if (type == "array") {
      node->type = Schema::Type::kArray;
      auto items = s.find("items");
      if (items == s.end()) {
        required(path + ".items", "must be specified");
      } else if (items->is_array()) {
        forbidden(path + ".items", "items must be a schema object and not an array");
      } else {
        node->items = parse(*items, path + ".items", Level::kItem);
      }
    } else if (type == "string") {
      node->type = Schema::Type::kString;
    } else if (type == "integer") {
      node->type = Schema::Type::kInteger;
    } else if (type == "number") {
      node->type = Schema::Type::kNumber;
    } else if (type == "boolean") {
      node->type = Schema::Type::kBoolean;
    } else if (preserve) {
      node->type = Schema::Type::kAny;
    }
    if (embedded) addImplicitObjectFields(*node);
    return node;
  }

  // apiVersion, kind and metadata are always allowed at the root and in embedded resources;
  // metadata is ObjectMeta whatever the CRD says (kube validates it as such).
  void addImplicitObjectFields(Schema& node) {
    for (const char* k : {"apiVersion", "kind"}) {
      if (!node.properties.count(k)) {
        auto s = std::make_shared<Schema>();
        s->type = Schema::Type::kString;
        node.properties[k] = s;
      }
    }
    if (objectMeta) {
      node.properties["metadata"] = objectMeta;
    } else if (!node.properties.count("metadata")) {
      auto m = std::make_shared<Schema>();
      m->type = Schema::Type::kObject;
      m->preserveUnknownFields = true;
      node.properties["metadata"] = m;
    }
  }
};

}  // namespace

Result<SchemaPtr> schemaFromOpenApiV3(const nlohmann::json& openApiV3Schema,
                                      const std::string& fieldPath) {
  return schemaFromOpenApiV3(openApiV3Schema, fieldPath, nullptr);
}

Result<SchemaPtr> schemaFromOpenApiV3(const nlohmann::json& openApiV3Schema,
                                      const std::string& fieldPath, SchemaPtr objectMeta) {
  CrdParser p;
  p.objectMeta = std::move(objectMeta);
  std::shared_ptr<Schema> root;
  try {
    root = p.parse(openApiV3Schema, fieldPath, Level::kRoot);
  } catch (const nlohmann::json::exception& e) {
    return Status::badRequest(std::string("invalid openAPIV3Schema: ") + e.what());
  }
  if (!p.causes.empty()) {
    // kube sorts structural errors by their text, so the order is stable.
    std::sort(p.causes.begin(), p.causes.end(), [](const StatusCause& a, const StatusCause& b) {
      return a.field + ": " + a.message < b.field + ": " + b.message;
    });
    std::string msg;
    for (size_t i = 0; i < p.causes.size(); ++i) {
      msg += (i ? ", " : "") + p.causes[i].field + ": " + p.causes[i].message;
    }
    if (p.causes.size() > 1) msg = "[" + msg + "]";
    Status st(422, reason::kInvalid, msg);
    st.causes = std::move(p.causes);
    return st;
  }
  p.addImplicitObjectFields(*root);
  return SchemaPtr(root);
}

}  // namespace orrery::api
