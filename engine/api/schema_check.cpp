// Validation, defaulting and pruning of objects against structural schemas, with the messages
// kube-apiserver gives: the CRD validator's (kube-openapi) causes for custom resources, and the
// JSON decoder's errors for built-ins.

#include <cmath>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include "engine/api/object.h"
#include "engine/api/schema.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;

std::string childPath(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

std::string indexPath(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// A field path spelled only when a message names it. The walks below pass one down to every
// node of an object; spelling "spec.containers[0].image" for each node, as they did, cost more
// than the checks themselves. A FieldPath refers to its parent and to the member name, which
// outlive it (both belong to the walk's caller).
class FieldPath {
 public:
  FieldPath() = default;  // the object itself: ""
  FieldPath child(const std::string& name) const { return FieldPath(this, &name, 0); }
  FieldPath item(size_t index) const { return FieldPath(this, nullptr, index); }
  /// As childPath and indexPath spell it.
  std::string str() const {
    if (!parent_) return {};
    std::string above = parent_->str();
    return name_ ? childPath(above, *name_) : indexPath(above, index_);
  }

 private:
  FieldPath(const FieldPath* parent, const std::string* name, size_t index)
      : parent_(parent), name_(name), index_(index) {}
  const FieldPath* parent_ = nullptr;
  const std::string* name_ = nullptr;  // null: a list item
  size_t index_ = 0;
};

// A bad value as field.Error prints it: strings quoted, numbers and booleans bare.
std::string showValue(const json& v) {
  if (v.is_string()) return goQuote(v.get<std::string>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    std::ostringstream o;
    o << d;
    return o.str();
  }
  if (v.is_null()) return "null";
  return v.dump();
}

// The JSON type name kube-openapi reports for a value ("must be of type integer: "string"").
std::string jsonTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: {
      double d = v.get<double>();
      return std::floor(d) == d ? "integer" : "number";
    }
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "unknown";
  }
}

std::string schemaTypeName(const Schema& s) {
  switch (s.type) {
    case Schema::Type::kObject:
    case Schema::Type::kMap: return "object";
    case Schema::Type::kArray: return "array";
    case Schema::Type::kString: return "string";
    case Schema::Type::kInteger: return "integer";
    case Schema::Type::kNumber: return "number";
    case Schema::Type::kBoolean: return "boolean";
    case Schema::Type::kIntOrString: return "integer,string";
    case Schema::Type::kAny: return "";
  }
  return "";
}

bool isIntegral(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return true;
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  return false;
}

bool typeMatches(const Schema& s, const json& v) {
  switch (s.type) {
    case Schema::Type::kObject:
    case Schema::Type::kMap: return v.is_object();
    case Schema::Type::kArray: return v.is_array();
    case Schema::Type::kString: return v.is_string();
    case Schema::Type::kInteger: return isIntegral(v);
    case Schema::Type::kNumber: return v.is_number();
    case Schema::Type::kBoolean: return v.is_boolean();
    case Schema::Type::kIntOrString:
      // A quantity also decodes from a JSON number.
      if (s.format == "quantity") return v.is_string() || v.is_number();
      return v.is_string() || isIntegral(v);
    case Schema::Type::kAny: return true;
  }
  return true;
}

size_t utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string numberText(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  std::ostringstream o;
  o << d;
  return o.str();
}

// Compiled CRD patterns, shared: a pattern is compiled once per process.
const std::regex* compiledPattern(const std::string& pattern) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<std::regex>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<std::regex> re;
  try {
    re = std::make_unique<std::regex>(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    re = nullptr;  // not expressible in ECMAScript: the pattern is not enforced
  }
  auto* raw = re.get();
  cache[pattern] = std::move(re);
  return raw;
}

bool isDateTime(const std::string& s) {
  static const std::regex re(
      R"(^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
  return std::regex_match(s, re);
}

bool isEmbeddedKey(const std::string& k) {
  return k == "apiVersion" || k == "kind" || k == "metadata";
}

// Where a walk is in the stored version of the object it checks (null: nothing there, or no
// stored object): a member or list item equal to its stored counterpart needs no check again.
const json* storedMember(const json* was, const std::string& key) {
  if (!was || !was->is_object()) return nullptr;
  auto it = was->find(key);
  return it == was->end() ? nullptr : &*it;
}
const json* storedItem(const json* was, size_t i) {
  return was && was->is_array() && i < was->size() ? &(*was)[i] : nullptr;
}

struct Checker {
  bool nullIsAbsent;  // built-ins: explicit null means absent
  SchemaCheck out;

  void typeInvalid(const std::string& path, const Schema& s, const json& v) {
    // kube-openapi: `<path> in body must be of type <t>: "<actual>"`, as field.TypeInvalid.
    std::string actual = jsonTypeName(v);
    out.errors.push_back({"FieldValueTypeInvalid",
                          "Invalid value: " + goQuote(actual) + ": " + path +
                              " in body must be of type " + schemaTypeName(s) + ": " +
                              goQuote(actual),
                          path});
  }
  void invalid(const std::string& path, const std::string& value, const std::string& detail) {
    out.errors.push_back({"FieldValueInvalid", "Invalid value: " + value + ": " + detail, path});
  }

  // `was`: the same place in the object as last stored (null: nothing there, or no stored
  // object); what it holds unchanged passed this check when it was written.
  void check(const json& v, const Schema& s, const FieldPath& at, const json* was = nullptr) {
    if (v.is_null()) {
      if (nullIsAbsent || s.nullable) return;
      if (s.type == Schema::Type::kAny) return;
      typeInvalid(at.str(), s, v);
      return;
    }
    if (!typeMatches(s, v)) {
      typeInvalid(at.str(), s, v);
      return;
    }
    if (!s.enumValues.empty()) {
      std::string have = v.is_string() ? v.get<std::string>() : v.dump();
      bool found = false;
      for (const auto& e : s.enumValues) found = found || e == have;
      if (!found) {
        std::string list;
        for (size_t i = 0; i < s.enumValues.size(); ++i) {
          list += (i ? ", " : "") + goQuote(s.enumValues[i]);
        }
        out.errors.push_back({"FieldValueNotSupported",
                              "Unsupported value: " + showValue(v) + ": supported values: " + list,
                              at.str()});
      }
    }
    switch (s.type) {
      case Schema::Type::kString:
      case Schema::Type::kIntOrString:
        if (v.is_string()) checkString(v.get_ref<const std::string&>(), s, at);
        if (v.is_number()) checkNumber(v.get<double>(), s, at, v);
        break;
      case Schema::Type::kInteger:
      case Schema::Type::kNumber: checkNumber(v.get<double>(), s, at, v); break;
      case Schema::Type::kArray: checkArray(v, s, at, was); break;
      case Schema::Type::kMap:
        checkPropertyCount(v, s, at);
        if (s.items) {
          for (auto it = v.begin(); it != v.end(); ++it) {
            const json* before = storedMember(was, it.key());
            if (before && *before == it.value()) continue;
            check(it.value(), *s.items, at.child(it.key()), before);
          }
        }
        break;
      case Schema::Type::kObject: checkObject(v, s, at, was); break;
      case Schema::Type::kBoolean:
      case Schema::Type::kAny: break;
    }
  }

  void checkString(const std::string& str, const Schema& s, const FieldPath& at) {
    if (!s.maxLength && !s.minLength && s.pattern.empty() && s.format != "date-time") return;
    const std::string path = at.str();
    if (s.maxLength && static_cast<int64_t>(utf8Length(str)) > *s.maxLength) {
      out.errors.push_back({"FieldValueTooLong",
                            "Too long: may not be longer than " + std::to_string(*s.maxLength),
                            path});
    }
    if (s.minLength && static_cast<int64_t>(utf8Length(str)) < *s.minLength) {
      invalid(path, goQuote(str),
              path + " in body should be at least " + std::to_string(*s.minLength) +
                  " chars long");
    }
    if (!s.pattern.empty()) {
      if (const std::regex* re = compiledPattern(s.pattern); re && !std::regex_search(str, *re)) {
        invalid(path, goQuote(str), path + " in body should match '" + s.pattern + "'");
      }
    }
    if (s.format == "date-time" && !isDateTime(str)) {
      out.errors.push_back({"FieldValueTypeInvalid",
                            "Invalid value: " + goQuote(str) + ": " + path +
                                " in body must be of type date-time: " + goQuote(str),
                            path});
    }
  }

  void checkNumber(double d, const Schema& s, const FieldPath& at, const json& v) {
    if (!s.minimum && !s.maximum && !s.multipleOf) return;
    const std::string path = at.str();
    if (s.minimum) {
      if (s.exclusiveMinimum ? !(d > *s.minimum) : !(d >= *s.minimum)) {
        invalid(path, showValue(v),
                path + " in body should be greater than " +
                    (s.exclusiveMinimum ? "" : "or equal to ") + numberText(*s.minimum));
      }
    }
    if (s.maximum) {
      if (s.exclusiveMaximum ? !(d < *s.maximum) : !(d <= *s.maximum)) {
        invalid(path, showValue(v),
                path + " in body should be less than " +
                    (s.exclusiveMaximum ? "" : "or equal to ") + numberText(*s.maximum));
      }
    }
    if (s.multipleOf && *s.multipleOf != 0) {
      double q = d / *s.multipleOf;
      if (std::fabs(q - std::round(q)) > 1e-9) {
        invalid(path, showValue(v),
                path + " in body should be a multiple of " + numberText(*s.multipleOf));
      }
    }
  }

  void checkPropertyCount(const json& v, const Schema& s, const FieldPath& at) {
    if (!s.maxProperties && !s.minProperties) return;
    const std::string path = at.str();
    auto n = static_cast<int64_t>(v.size());
    if (s.maxProperties && n > *s.maxProperties) {
      out.errors.push_back({"FieldValueTooMany",
                            "Too many: " + std::to_string(n) + ": must have at most " +
                                std::to_string(*s.maxProperties) + " items",
                            path});
    }
    if (s.minProperties && n < *s.minProperties) {
      invalid(path, std::to_string(n),
              path + " in body should have at least " + std::to_string(*s.minProperties) +
                  " properties");
    }
  }

  void checkArray(const json& v, const Schema& s, const FieldPath& at, const json* was) {
    auto n = static_cast<int64_t>(v.size());
    if (s.maxItems && n > *s.maxItems) {
      out.errors.push_back({"FieldValueTooMany",
                            "Too many: " + std::to_string(n) + ": must have at most " +
                                std::to_string(*s.maxItems) + " items",
                            at.str()});
    }
    if (s.minItems && n < *s.minItems) {
      const std::string path = at.str();
      invalid(path, std::to_string(n),
              path + " in body should have at least " + std::to_string(*s.minItems) + " items");
    }
    if (s.items) {
      for (size_t i = 0; i < v.size(); ++i) {
        const json* before = storedItem(was, i);
        if (before && *before == v[i]) continue;
        check(v[i], *s.items, at.item(i), before);
      }
    }
    // x-kubernetes-list-type: set and map forbid duplicate entries / keys.
    if (s.listType == "set" || (s.listType == "map" && !s.listMapKeys.empty())) {
      // The keys of a map list's items: each item's key values, spelled apart (a value's JSON
      // text never holds the separator byte).
      auto keysOf = [&](const json& item) {
        std::string key;
        for (const auto& k : s.listMapKeys) {
          auto it = item.find(k);
          if (it == item.end()) continue;
          key += k;
          key += '\x1f';
          key += it->dump();
          key += '\x1f';
        }
        return key;
      };
      std::set<std::string> seen;
      for (size_t i = 0; i < v.size(); ++i) {
        std::string key;
        if (s.listType == "set") {
          key = v[i].dump();
        } else {
          if (!v[i].is_object()) continue;
          key = keysOf(v[i]);
        }
        if (seen.insert(std::move(key)).second) continue;
        // A duplicate: shown as kube shows it, the item (a set) or its keys (a map list).
        json shown = v[i];
        if (s.listType != "set") {
          shown = json::object();
          for (const auto& k : s.listMapKeys)
            if (v[i].contains(k)) shown[k] = v[i][k];
        }
        out.errors.push_back({"FieldValueDuplicate", "Duplicate value: " + showValue(shown), at.item(i).str()});
      }
    }
  }

  void checkObject(const json& v, const Schema& s, const FieldPath& at, const json* was) {
    checkPropertyCount(v, s, at);
    for (const auto& r : s.required) {
      auto it = v.find(r);
      if (it == v.end() || (it->is_null() && nullIsAbsent)) {
        out.errors.push_back({"FieldValueRequired", "Required value", at.child(r).str()});
      }
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      const json* before = storedMember(was, it.key());
      if (before && *before == it.value()) continue;
      const FieldPath path = at.child(it.key());
      auto prop = s.properties.find(it.key());
      if (prop != s.properties.end()) {
        check(it.value(), *prop->second, path, before);
      } else if (s.embeddedResource && isEmbeddedKey(it.key())) {
        if (it.key() != "metadata" && !it->is_string() && !it->is_null()) {
          Schema str;
          str.type = Schema::Type::kString;
          typeInvalid(path.str(), str, it.value());
        }
      } else if (!s.preserveUnknownFields) {
        out.unknownFields.push_back(path.str());
      }
    }
  }
};

void defaults(json& v, const Schema& s) {
  switch (s.type) {
    case Schema::Type::kObject: {
      if (!v.is_object()) return;
      for (const auto& [name, prop] : s.properties) {
        auto it = v.find(name);
        bool absent = it == v.end() || (it->is_null() && !prop->nullable);
        if (absent && prop->defaultValue) v[name] = *prop->defaultValue;
      }
      for (auto it = v.begin(); it != v.end(); ++it) {
        auto prop = s.properties.find(it.key());
        if (prop != s.properties.end()) defaults(it.value(), *prop->second);
      }
      break;
    }
    case Schema::Type::kMap:
      if (!v.is_object() || !s.items) return;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it->is_null() && s.items->defaultValue && !s.items->nullable) {
          it.value() = *s.items->defaultValue;
        }
        defaults(it.value(), *s.items);
      }
      break;
    case Schema::Type::kArray:
      if (!v.is_array() || !s.items) return;
      for (auto& item : v) {
        if (item.is_null() && s.items->defaultValue && !s.items->nullable) {
          item = *s.items->defaultValue;
        }
        defaults(item, *s.items);
      }
      break;
    default: break;
  }
}

void prune(json& v, const Schema& s) {
  switch (s.type) {
    case Schema::Type::kObject: {
      if (!v.is_object()) return;
      for (auto it = v.begin(); it != v.end();) {
        auto prop = s.properties.find(it.key());
        if (prop != s.properties.end()) {
          prune(it.value(), *prop->second);
          ++it;
        } else if (s.preserveUnknownFields || (s.embeddedResource && isEmbeddedKey(it.key()))) {
          ++it;
        } else {
          it = v.erase(it);
        }
      }
      break;
    }
    case Schema::Type::kMap:
      if (!v.is_object() || !s.items) return;
      for (auto it = v.begin(); it != v.end(); ++it) prune(it.value(), *s.items);
      break;
    case Schema::Type::kArray:
      if (!v.is_array() || !s.items) return;
      for (auto& item : v) prune(item, *s.items);
      break;
    default: break;
  }
}

// ---- Built-in decode errors, in the words of Go's encoding/json.

std::string lastSegment(const std::string& dotted) {
  auto p = dotted.rfind('.');
  return p == std::string::npos ? dotted : dotted.substr(p + 1);
}

// The Go type kube-apiserver's decoder names: "string", "int32", "[]v1.Container", "v1.PodSpec".
std::string goTypeName(const Schema& s) {
  switch (s.type) {
    case Schema::Type::kString:
      if (!s.refName.empty()) break;
      return "string";
    case Schema::Type::kInteger:
      return s.format == "int32" ? "int32" : s.format == "int64" ? "int64" : "int";
    case Schema::Type::kNumber: return "float64";
    case Schema::Type::kBoolean: return "bool";
    case Schema::Type::kIntOrString:
      return s.format == "quantity" ? "resource.Quantity" : "intstr.IntOrString";
    case Schema::Type::kArray: return "[]" + (s.items ? goTypeName(*s.items) : "interface {}");
    case Schema::Type::kMap:
      return "map[string]" + (s.items ? goTypeName(*s.items) : "interface {}");
    case Schema::Type::kAny: return "interface {}";
    case Schema::Type::kObject:
      if (s.refName.empty()) return "map[string]interface {}";
      break;
  }
  // Named type: package name (last segment of the package) and type name: "v1.PodSpec".
  auto p = s.refName.rfind('.');
  if (p == std::string::npos) return s.refName;
  return lastSegment(s.refName.substr(0, p)) + "." + s.refName.substr(p + 1);
}

// Go names a JSON value's kind: "string", "number", "bool", "array", "object".
std::string goJsonKind(const json& v) {
  switch (v.type()) {
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "number";
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "null";
  }
}

struct Decoder {
  std::string error;

  void fieldError(const json& v, std::string_view structName, const FieldPath& at,
                  const std::string& goType, bool withNumber) {
    std::string kind = goJsonKind(v);
    if (withNumber) kind += " " + v.dump();
    error = "json: cannot unmarshal " + kind + " into Go struct field " + std::string(structName) + "." +
            at.str() + " of type " + goType;
  }

  // `structName` is the Go struct holding the field (it lives in a schema's refName or the
  // caller's kind); `at` the JSON path from the root.
  // `was`: as in Checker::check.
  void decode(const json& v, const Schema& s, std::string_view structName, const FieldPath& at,
              const json* was = nullptr) {
    if (!error.empty() || v.is_null()) return;
    switch (s.type) {
      case Schema::Type::kString:
        if (!v.is_string()) fieldError(v, structName, at, goTypeName(s), false);
        return;
      case Schema::Type::kInteger:
        if (v.is_number_float()) {
          fieldError(v, structName, at, goTypeName(s), true);
        } else if (!v.is_number()) {
          fieldError(v, structName, at, goTypeName(s), false);
        } else if (s.format == "int32" && v.is_number_integer() &&
                   (v.get<int64_t>() > INT32_MAX || v.get<int64_t>() < INT32_MIN)) {
          fieldError(v, structName, at, goTypeName(s), true);
        }
        return;
      case Schema::Type::kNumber:
        if (!v.is_number()) fieldError(v, structName, at, goTypeName(s), false);
        return;
      case Schema::Type::kBoolean:
        if (!v.is_boolean()) fieldError(v, structName, at, goTypeName(s), false);
        return;
      case Schema::Type::kIntOrString:
        if (s.format == "quantity") {
          if (!v.is_string() && !v.is_number()) {
            error = "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
          }
        } else if (!v.is_string() && !v.is_number_integer() && !v.is_number_unsigned()) {
          // IntOrString decodes a non-string as an int32.
          std::string kind = goJsonKind(v);
          if (v.is_number_float()) kind += " " + v.dump();
          error = "json: cannot unmarshal " + kind + " into Go value of type int32";
        }
        return;
      case Schema::Type::kArray:
        if (!v.is_array()) {
          fieldError(v, structName, at, goTypeName(s), false);
          return;
        }
        if (s.items) {
          for (size_t i = 0; i < v.size(); ++i) {
            const json* before = storedItem(was, i);
            if (before && *before == v[i]) continue;
            decode(v[i], *s.items, structName, at, before);
          }
        }
        return;
      case Schema::Type::kMap:
        if (!v.is_object()) {
          fieldError(v, structName, at, goTypeName(s), false);
          return;
        }
        if (s.items) {
          for (auto it = v.begin(); it != v.end(); ++it) {
            const json* before = storedMember(was, it.key());
            if (before && *before == it.value()) continue;
            decode(it.value(), *s.items, structName, at, before);
          }
        }
        return;
      case Schema::Type::kObject: {
        if (s.preserveUnknownFields && s.properties.empty()) return;  // RawExtension: raw JSON
        if (!v.is_object()) {
          fieldError(v, structName, at, goTypeName(s), false);
          return;
        }
        std::string_view inner = structName;
        if (!s.refName.empty()) {
          inner = s.refName;
          if (auto dot = inner.rfind('.'); dot != std::string_view::npos) inner.remove_prefix(dot + 1);
        }
        for (auto it = v.begin(); it != v.end() && error.empty(); ++it) {
          auto prop = s.properties.find(it.key());
          if (prop == s.properties.end()) continue;
          const json* before = storedMember(was, it.key());
          if (before && *before == it.value()) continue;
          decode(it.value(), *prop->second, inner, at.child(it.key()), before);
        }
        return;
      }
      case Schema::Type::kAny: return;
    }
  }
};

// ---- Duplicate and unknown fields from the raw text, in document order (SAX).

class StrictSax : public nlohmann::json_sax<json> {
 public:
  // `root` null: report duplicates at every level (unstructured objects).
  explicit StrictSax(const Schema* root) : root_(root) {}
  std::vector<std::string> messages;
  bool failed = false;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    Frame f = next();
    f.isObject = true;
    stack_.push_back(std::move(f));
    return true;
  }
  bool key(string_t& k) override {
    Frame& f = stack_.back();
    f.nextPath = childPath(f.path, k);
    f.nextCheck = false;
    f.nextNode = nullptr;
    if (!f.check) return true;
    const Schema* node = f.node;
    bool unknown = false;
    if (node == nullptr) {
      f.nextCheck = true;  // unstructured: everything is checked for duplicates
    } else if (node->type == Schema::Type::kMap) {
      f.nextNode = node->items.get();
      f.nextCheck = f.nextNode != nullptr;
    } else if (node->type == Schema::Type::kObject) {
      auto it = node->properties.find(k);
      if (it != node->properties.end()) {
        f.nextNode = it->second.get();
        f.nextCheck = true;
      } else if (node->embeddedResource && isEmbeddedKey(k)) {
        // Embedded objects are decoded as unstructured.
      } else if (!node->preserveUnknownFields) {
        unknown = true;
      }
    }
    bool seen = !f.seen.insert(k).second;
    if (unknown) {
      if (!seen) messages.push_back("unknown field " + goQuote(f.nextPath));
      f.nextCheck = false;
    } else if (seen) {
      messages.push_back("duplicate field " + goQuote(f.nextPath));
    }
    if (f.nextNode && !descends(*f.nextNode)) f.nextCheck = false;
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    Frame f = next();
    f.isObject = false;
    stack_.push_back(std::move(f));
    return true;
  }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    failed = true;
    return false;
  }

 private:
  struct Frame {
    bool isObject = false;
    const Schema* node = nullptr;
    bool check = false;
    std::string path;
    std::set<std::string> seen;
    size_t index = 0;
    const Schema* nextNode = nullptr;
    bool nextCheck = false;
    std::string nextPath;
  };

  // Typed decoding does not look inside raw JSON (RawExtension, `any`).
  static bool descends(const Schema& s) {
    if (s.type == Schema::Type::kAny) return false;
    if (s.type == Schema::Type::kObject && s.preserveUnknownFields && s.properties.empty()) {
      return false;
    }
    return true;
  }

  // The frame of the value that starts now (consumes an array slot).
  Frame next() {
    Frame f;
    if (stack_.empty()) {
      f.node = root_;
      f.check = true;
      return f;
    }
    Frame& parent = stack_.back();
    if (parent.isObject) {
      f.node = parent.nextNode;
      f.check = parent.nextCheck;
      f.path = parent.nextPath;
    } else {
      f.path = indexPath(parent.path, parent.index++);
      f.check = parent.check;
      if (parent.node) {
        f.node = parent.node->items.get();
        f.check = parent.check && f.node && descends(*f.node);
      }
    }
    return f;
  }
  bool scalar() {
    if (!stack_.empty() && !stack_.back().isObject) ++stack_.back().index;
    return true;
  }

  const Schema* root_;
  std::vector<Frame> stack_;
};

}  // namespace

SchemaCheck checkAgainstSchema(const nlohmann::json& object, const Schema& schema, const nlohmann::json* stored) {
  // Built-in schemas are named (refName); CRD schemas are anonymous. Built-ins treat explicit
  // null as absent, as Go's decoder does; CRDs reject null unless nullable.
  Checker c{!schema.refName.empty(), {}};
  c.check(object, schema, FieldPath(), stored);
  return std::move(c.out);
}

void applySchemaDefaults(nlohmann::json& object, const Schema& schema) {
  defaults(object, schema);
}

void pruneUnknownFields(nlohmann::json& object, const Schema& schema) { prune(object, schema); }

std::string builtinDecodeError(const nlohmann::json& object, const Schema& schema,
                               const std::string& kind, const std::string& version, const nlohmann::json* stored) {
  Decoder d;
  d.decode(object, schema, kind, FieldPath(), stored);
  if (d.error.empty()) return {};
  return kind + " in version " + goQuote(version) + " cannot be handled as a " + kind + ": " +
         d.error;
}

std::vector<std::string> findDuplicateFields(std::string_view text) {
  StrictSax sax(nullptr);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true);
  if (!ok || sax.failed) return {};
  return std::move(sax.messages);
}

std::vector<std::string> strictDecodingErrors(std::string_view text, const Schema& schema) {
  StrictSax sax(&schema);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, true);
  if (!ok || sax.failed) return {};
  return std::move(sax.messages);
}

std::string unknownFieldMessage(const std::string& fieldPath) {
  return "unknown field " + goQuote(fieldPath);
}

}  // namespace orrery::api
