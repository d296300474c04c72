// JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch, with the
// semantics and error wording of kube-apiserver 1.32 (gopkg.in/evanphx/json-patch.v4 for the
// first two, k8s.io/apimachinery/pkg/util/strategicpatch for the third).
#include "engine/api/patch.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

namespace orrery::api {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------
// Go-flavoured formatting: kube's messages print values with fmt's %v, so a patch error
// reads `map: map[image:nginx] does not contain declared merge key: name` as on a cluster.

std::string goNumber(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  double d = v.get<double>();
  char buf[64];
  // %v of a float64 is strconv 'g' with the shortest representation.
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::general);
  std::string s(buf, res.ptr);
  // Go writes exponents with at least two digits and a sign ("1e+06").
  auto e = s.find('e');
  if (e != std::string::npos) {
    std::string mant = s.substr(0, e), exp = s.substr(e + 1);
    char sign = '+';
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) {
      sign = exp[0];
      exp = exp.substr(1);
    }
    if (exp.size() < 2) exp = "0" + exp;
    s = mant + "e" + sign + exp;
  }
  return s;
}

std::string goValue(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "<nil>";
    case json::value_t::string: return v.get<std::string>();
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::object: {
      std::string s = "map[";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {  // std::map: sorted like fmt does
        if (!first) s += ' ';
        first = false;
        s += it.key() + ":" + goValue(it.value());
      }
      return s + "]";
    }
    case json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ' ';
        s += goValue(v[i]);
      }
      return s + "]";
    }
    default: return goNumber(v);
  }
}

// reflect.TypeOf(x).String() of a value decoded by kube's JSON decoder (ints preserved).
std::string goTypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "%!s(<nil>)";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "bool";
    case json::value_t::object: return "map[string]interface {}";
    case json::value_t::array: return "[]interface {}";
    case json::value_t::number_float: return "float64";
    default: return "int64";
  }
}

// fmt's %s of an interface{} value: strings print as-is, others as %!s(type=value).
std::string goPercentS(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "%!s(<nil>)";
  if (v.is_object() || v.is_array()) return goValue(v);
  return "%!s(" + goTypeName(v) + "=" + goValue(v) + ")";
}

// encoding/json's name of a JSON value's kind in "cannot unmarshal X into ..." errors.
std::string jsonKindName(const json& v) {
  switch (v.type()) {
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "bool";
    case json::value_t::null: return "null";
    default: return "number";
  }
}

// The 422 kube-apiserver answers when a patch result no longer decodes into an object
// (patch handler: field.Invalid(field.NewPath("patch"), patchedJS, decodeErr)).
Status resultNotAnObject(const json& result) {
  std::string shown = result.dump();
  std::string detail =
      "couldn't get version/kind; json parse error: json: cannot unmarshal " +
      jsonKindName(result) +
      " into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; "
      "Kind string \"json:\\\"kind,omitempty\\\"\" }";
  return Status::invalid("", "", "",
                         {{"FieldValueInvalid", "Invalid value: " + json(shown).dump() + ": " + detail,
                           "patch"}});
}

// ---------------------------------------------------------------------------------------
// RFC 6902 (evanphx/json-patch v4, as vendored by kube-apiserver).

struct OpError {
  std::string message;
};

constexpr const char* kErrMissing = "missing value";
constexpr const char* kErrTestFailed = "test failed";
constexpr const char* kErrInvalidIndex = "invalid index referenced";

// strconv.Atoi, with its error text.
std::optional<long long> goAtoi(const std::string& s, std::string* err) {
  std::string_view v = s;
  bool neg = false;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!ok) {
    *err = "strconv.Atoi: parsing " + json(s).dump() + ": invalid syntax";
    return std::nullopt;
  }
  long long n = 0;
  for (char c : v) {
    if (n > (1LL << 62) / 10) {
      *err = "strconv.Atoi: parsing " + json(s).dump() + ": value out of range";
      return std::nullopt;
    }
    n = n * 10 + (c - '0');
  }
  return neg ? -n : n;
}

std::string decodeToken(const std::string& t) {
  // strings.NewReplacer("~1", "/", "~0", "~"): one left-to-right pass.
  std::string out;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '~' && i + 1 < t.size() && (t[i + 1] == '1' || t[i + 1] == '0')) {
      out += t[i + 1] == '1' ? '/' : '~';
      ++i;
    } else {
      out += t[i];
    }
  }
  return out;
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = path.find('/', start);
    parts.push_back(path.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return parts;
}

// A container (object or array) and the last, decoded key of a path; null when any parent
// along the path is missing or not a container (findObject).
struct Located {
  json* container = nullptr;
  std::string key;
};

// Index into an array the way partialArray.get does (negative indices count from the end).
long long arrayIndex(const json& arr, const std::string& key, bool forAdd) {
  std::string err;
  auto idx = goAtoi(key, &err);
  if (!idx) throw OpError{forAdd ? "value was not a proper array index: '" + key + "': " + err : err};
  long long n = static_cast<long long>(arr.size()) + (forAdd ? 1 : 0);
  long long i = *idx;
  if (i >= n || i < -n)
    throw OpError{"Unable to access invalid index: " + std::to_string(i) + ": " + kErrInvalidIndex};
  if (i < 0) i += n;
  return i;
}

Located findObject(json& doc, const std::string& path) {
  auto split = splitPath(path);
  if (split.size() < 2) return {};
  json* cur = &doc;
  for (size_t i = 1; i + 1 < split.size(); ++i) {
    std::string part = decodeToken(split[i]);
    json* next = nullptr;
    if (cur->is_object()) {
      auto it = cur->find(part);
      if (it != cur->end()) next = &*it;
    } else if (cur->is_array()) {
      try {
        next = &(*cur)[static_cast<size_t>(arrayIndex(*cur, part, false))];
      } catch (const OpError&) {
        return {};
      }
    }
    if (!next || !(next->is_object() || next->is_array())) return {};
    cur = next;
  }
  return {cur, decodeToken(split.back())};
}

// Container primitives; `get` returns null for an absent object key (no error), as v4 does.
const json* conGet(json& con, const std::string& key, bool* present) {
  if (con.is_object()) {
    auto it = con.find(key);
    *present = it != con.end();
    return *present ? &*it : nullptr;
  }
  *present = true;
  return &con[static_cast<size_t>(arrayIndex(con, key, false))];
}

void conAdd(json& con, const std::string& key, json val) {
  if (con.is_object()) {
    con[key] = std::move(val);
    return;
  }
  if (key == "-") {
    con.push_back(std::move(val));
    return;
  }
  long long i = arrayIndex(con, key, true);
  con.insert(con.begin() + i, std::move(val));
}

void conRemove(json& con, const std::string& key) {
  if (con.is_object()) {
    if (!con.contains(key))
      throw OpError{"Unable to remove nonexistent key: " + key + ": " + kErrMissing};
    con.erase(key);
    return;
  }
  long long i = arrayIndex(con, key, false);
  con.erase(con.begin() + i);
}

// op.Path()/op.From(): the field must be a string.
std::optional<std::string> opString(const json& op, const char* field, std::string* err) {
  auto it = op.find(field);
  if (it == op.end() || it->is_null()) {
    *err = std::string(field) == "path" ? std::string("operation missing path field: ") + kErrMissing
                                        : std::string("operation, missing from field: ") + kErrMissing;
    return std::nullopt;
  }
  if (!it->is_string()) {
    *err = "json: cannot unmarshal " + jsonKindName(*it) + " into Go value of type string";
    return std::nullopt;
  }
  return it->get<std::string>();
}

json opValue(const json& op) {
  auto it = op.find("value");
  return it == op.end() ? json() : *it;
}

void applyOne(json& doc, const json& op) {
  std::string kind = "unknown";
  if (op.is_object()) {
    auto it = op.find("op");
    if (it != op.end() && it->is_string()) kind = it->get<std::string>();
  }
  std::string err;
  auto wrap = [](const std::string& prefix, const std::string& inner) { return OpError{prefix + ": " + inner}; };

  if (kind == "add" || kind == "remove") {
    auto path = opString(op, "path", &err);
    if (!path) throw OpError{kind + " operation failed to decode path: " + kErrMissing};
    Located at = findObject(doc, *path);
    if (!at.container)
      throw OpError{kind + " operation does not apply: doc is missing path: \"" + *path + "\": " + kErrMissing};
    try {
      if (kind == "add") conAdd(*at.container, at.key, opValue(op));
      else conRemove(*at.container, at.key);
    } catch (const OpError& e) {
      throw wrap("error in " + kind + " for path: '" + *path + "'", e.message);
    }
    return;
  }
  if (kind == "replace") {
    auto path = opString(op, "path", &err);
    if (!path) throw wrap("replace operation failed to decode path", err);
    if (path->empty()) {
      json v = opValue(op);
      if (!v.is_object() && !v.is_array())
        throw OpError{"replace operation value must be object or array: %!w(<nil>)"};
      doc = std::move(v);
      return;
    }
    Located at = findObject(doc, *path);
    if (!at.container)
      throw OpError{"replace operation does not apply: doc is missing path: " + *path + ": " + kErrMissing};
    bool present = false;
    try {
      conGet(*at.container, at.key, &present);
    } catch (const OpError&) {
      throw OpError{"replace operation does not apply: doc is missing key: " + *path + ": " + kErrMissing};
    }
    // v4 sets an absent object key rather than failing (kube-apiserver accepts that).
    if (at.container->is_object()) (*at.container)[at.key] = opValue(op);
    else (*at.container)[static_cast<size_t>(arrayIndex(*at.container, at.key, false))] = opValue(op);
    return;
  }
  if (kind == "move") {
    auto from = opString(op, "from", &err);
    if (!from) throw wrap("move operation failed to decode from", err);
    Located src = findObject(doc, *from);
    if (!src.container)
      throw OpError{"move operation does not apply: doc is missing from path: " + *from + ": " + kErrMissing};
    json val;
    try {
      bool present = false;
      const json* v = conGet(*src.container, src.key, &present);
      if (v) val = *v;
      conRemove(*src.container, src.key);
    } catch (const OpError& e) {
      throw wrap("error in move for path: '" + src.key + "'", e.message);
    }
    auto path = opString(op, "path", &err);
    if (!path) throw wrap("move operation failed to decode path", err);
    Located dst = findObject(doc, *path);
    if (!dst.container)
      throw OpError{"move operation does not apply: doc is missing destination path: " + *path + ": " + kErrMissing};
    try {
      conAdd(*dst.container, dst.key, std::move(val));
    } catch (const OpError& e) {
      throw wrap("error in move for path: '" + *path + "'", e.message);
    }
    return;
  }
  if (kind == "test") {
    auto path = opString(op, "path", &err);
    if (!path) throw wrap("test operation failed to decode path", err);
    bool hasValue = op.contains("value");
    json expected = opValue(op);
    if (path->empty()) {
      if (doc == expected) return;
      throw OpError{"testing value " + *path + " failed: " + kErrTestFailed};
    }
    Located at = findObject(doc, *path);
    if (!at.container)
      throw OpError{"test operation does not apply: is missing path: " + *path + ": " + kErrMissing};
    const json* val = nullptr;
    bool present = false;
    try {
      val = conGet(*at.container, at.key, &present);
    } catch (const OpError& e) {
      throw wrap("error in test for path: '" + *path + "'", e.message);
    }
    if (!val) {
      if (!hasValue || expected.is_null()) return;
      throw OpError{"testing value " + *path + " failed: " + kErrTestFailed};
    }
    if (!hasValue || *val != expected)
      throw OpError{"testing value " + *path + " failed: " + kErrTestFailed};
    return;
  }
  if (kind == "copy") {
    auto from = opString(op, "from", &err);
    if (!from) throw wrap("copy operation failed to decode from", err);
    Located src = findObject(doc, *from);
    if (!src.container)
      throw OpError{"copy operation does not apply: doc is missing from path: " + *from + ": " + kErrMissing};
    json val;
    try {
      bool present = false;
      const json* v = conGet(*src.container, src.key, &present);
      if (v) val = *v;  // an absent key copies as null, as v4 does
    } catch (const OpError& e) {
      throw wrap("error in copy for from: '" + *from + "'", e.message);
    }
    auto path = opString(op, "path", &err);
    if (!path) throw OpError{std::string("copy operation failed to decode path: ") + kErrMissing};
    Located dst = findObject(doc, *path);
    if (!dst.container)
      throw OpError{"copy operation does not apply: doc is missing destination path: " + *path + ": " + kErrMissing};
    try {
      conAdd(*dst.container, dst.key, std::move(val));
    } catch (const OpError& e) {
      throw wrap("error while adding value during copy", e.message);
    }
    return;
  }
  throw OpError{"Unexpected kind: " + kind};
}

// ---------------------------------------------------------------------------------------
// RFC 7386 as evanphx/json-patch v4's MergePatch does it (including where it prunes nulls).

void pruneNulls(json& v);
void pruneDocNulls(json& obj) {
  for (auto it = obj.begin(); it != obj.end();) {
    if (it->is_null()) {
      it = obj.erase(it);
    } else {
      pruneNulls(*it);
      ++it;
    }
  }
}
void pruneNulls(json& v) {
  if (v.is_object()) pruneDocNulls(v);
  else if (v.is_array())
    for (auto& e : v)
      if (!e.is_null()) pruneNulls(e);
}

void mergeDocs(json& doc, const json& patch) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) {
      doc.erase(k);
      continue;
    }
    auto cur = doc.find(k);
    if (cur == doc.end() || cur->is_null()) {
      json copy = v;
      pruneNulls(copy);
      doc[k] = std::move(copy);
    } else if (!cur->is_object()) {
      json copy = v;
      pruneNulls(copy);
      *cur = std::move(copy);
    } else if (!v.is_object()) {
      *cur = v;
    } else {
      mergeDocs(*cur, v);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, as the patch handler
// calls it: MergeParallelList and IgnoreUnmatchedNulls both true).

constexpr const char* kDirectiveMarker = "$patch";
constexpr const char* kRetainKeys = "$retainKeys";
constexpr std::string_view kDeletePrefix = "$deleteFromPrimitiveList";
constexpr std::string_view kOrderPrefix = "$setElementOrder";

struct SmpError {
  Status status;
};

// mergepatch's sentinel errors become 400 or 422 (interpretStrategicMergePatchError); every
// other error reaches the client as kube's catch-all 500 with an empty reason.
[[noreturn]] void badRequest(const std::string& m) { throw SmpError{Status::badRequest(m)}; }
[[noreturn]] void unprocessable(const std::string& m) {
  Status s(422, reason::kInvalid, "the server rejected our request due to an error in our request");
  s.withCause({"UnexpectedServerResponse", m, ""});
  throw SmpError{std::move(s)};
}
[[noreturn]] void internalError(const std::string& m) { throw SmpError{Status(500, "", m)}; }

[[noreturn]] void errNoMergeKey(const json& m, const std::string& key) {
  internalError("map: " + goValue(m) + " does not contain declared merge key: " + key);
}
[[noreturn]] void errBadArgType(const std::string& expected, const json& actual) {
  internalError("expected a " + expected + ", but received a " + goTypeName(actual));
}
[[noreturn]] void errBadPatchType(const json& t, const json& m) {
  internalError("unknown patch type: " + goPercentS(t) + " in map: " + goValue(m));
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// extractKey: "$setElementOrder/containers" -> "containers".
std::string extractKey(const std::string& s, std::string_view prefix) {
  auto slash = s.find('/');
  if (slash == std::string::npos || std::string_view(s).substr(0, slash) != prefix) {
    if (prefix == kDeletePrefix) badRequest("invalid patch format of primitive list");
    badRequest("invalid patch format of setElementOrder list");
  }
  return s.substr(slash + 1);
}

struct FieldMeta {
  const Schema* schema = nullptr;  // the field's schema node (array node for lists)
  std::string strategy;            // "merge", "replace" or "" (retainKeys split off)
  std::string mergeKey;
};

FieldMeta lookupField(const Schema* parent, const std::string& key) {
  FieldMeta meta;
  if (!parent) return meta;
  meta.schema = parent->child(key);
  if (!meta.schema) return meta;
  std::string all = meta.schema->patchStrategy;
  size_t start = 0;
  while (start <= all.size()) {
    size_t comma = all.find(',', start);
    std::string one = all.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!one.empty() && one != "retainKeys") meta.strategy = one;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  meta.mergeKey = meta.schema->patchMergeKey;
  return meta;
}

const Schema* elementSchema(const Schema* arrayNode) {
  return arrayNode && arrayNode->type == Schema::Type::kArray ? arrayNode->items.get() : nullptr;
}

// reflect.TypeOf identity of decoded JSON values (int64 and float64 differ).
int goTypeId(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return 1;
    case json::value_t::number_float: return 2;
    case json::value_t::string: return 3;
    case json::value_t::boolean: return 4;
    case json::value_t::object: return 5;
    case json::value_t::array: return 6;
    default: return 0;
  }
}

// Go's == on two interface{} values holding scalars.
bool goEqual(const json& a, const json& b) { return goTypeId(a) == goTypeId(b) && a == b; }

// sliceElementType: the common element kind of the lists, or an error.
json::value_t sliceElementType(const std::vector<const json*>& lists) {
  std::optional<int> prev;
  json::value_t kind = json::value_t::null;
  for (const json* l : lists) {
    if (!l) continue;
    for (const auto& v : *l) {
      int id = goTypeId(v);
      if (!prev) {
        prev = id;
        kind = v.type();
        if (v.is_array()) unprocessable("lists of lists are not supported");
      } else if (*prev != id) {
        std::string all = "[";
        bool first = true;
        for (const json* x : lists) {
          if (!first) all += ' ';
          first = false;
          all += x ? goValue(*x) : "[]";
        }
        internalError("list element types are not identical: " + all + "]");
      }
    }
  }
  if (!prev) internalError("no elements in any of the given slices");
  return kind;
}

class StrategicMerge {
 public:
  json mergeMap(json original, json patch, const Schema* schema) {
    if (auto d = patch.find(kDirectiveMarker); d != patch.end()) {
      if (*d == "replace") {
        patch.erase(kDirectiveMarker);
        // The patch replaces the map; merging it into nothing drops nested directives.
        return mergeMap(json::object(), std::move(patch), schema);
      }
      if (*d == "delete") return json::object();
      errBadPatchType(*d, patch);
    }
    if (!original.is_object()) original = json::object();

    applyRetainKeys(original, patch);
    mergeSetElementOrder(original, patch, schema);

    for (auto it = patch.begin(); it != patch.end(); ++it) {
      std::string k = it.key();
      json& patchV = it.value();
      bool isDeleteList = false;
      if (startsWith(k, kDeletePrefix)) {
        k = extractKey(k, kDeletePrefix);
        isDeleteList = true;
      }
      if (patchV.is_null()) {
        original.erase(k);
        continue;  // IgnoreUnmatchedNulls
      }
      FieldMeta meta = lookupField(schema, k);
      auto cur = original.find(k);
      if (cur == original.end() || goTypeId(*cur) != goTypeId(patchV)) {
        if (!isDeleteList) original[k] = fresh(patchV, meta);
        continue;
      }
      if (cur->is_object()) {
        if (meta.strategy == "replace") *cur = fresh(patchV, meta);
        else *cur = mergeMap(std::move(*cur), std::move(patchV), meta.schema);
      } else if (cur->is_array()) {
        if (meta.strategy == "merge")
          *cur = mergeSlice(std::move(*cur), std::move(patchV), meta, isDeleteList);
        else
          *cur = fresh(patchV, meta);  // no merge strategy: the patch's list replaces
      } else {
        *cur = patchV;
      }
    }
    return original;
  }

 private:
  // A patch value taken where the original has nothing to merge with: merged into an empty
  // value so its directives are applied (and never stored).
  json fresh(const json& patchV, const FieldMeta& meta) {
    if (patchV.is_object()) return mergeMap(json::object(), patchV, meta.schema);
    if (patchV.is_array()) {
      if (meta.strategy == "merge" && !patchV.empty()) {
        // Element types are checked on the patch alone.
        return mergeSlice(json::array(), patchV, meta, false);
      }
      json out = json::array();
      const Schema* elem = elementSchema(meta.schema);
      for (const auto& e : patchV) out.push_back(e.is_object() ? mergeMap(json::object(), e, elem) : e);
      return out;
    }
    return patchV;
  }

  void applyRetainKeys(json& original, json& patch) {
    auto it = patch.find(kRetainKeys);
    if (it == patch.end()) return;
    json list = std::move(*it);
    patch.erase(it);
    if (!list.is_array()) badRequest("invalid patch format of retainKeys");
    auto inList = [&](const std::string& k) {
      return std::any_of(list.begin(), list.end(), [&](const json& v) { return v.is_string() && v == k; });
    };
    for (auto p = patch.begin(); p != patch.end(); ++p) {
      if (p->is_null() || startsWith(p.key(), kDeletePrefix) || startsWith(p.key(), kOrderPrefix)) continue;
      if (!inList(p.key())) badRequest("invalid patch format of retainKeys");
    }
    for (auto o = original.begin(); o != original.end();) {
      if (!inList(o.key())) o = original.erase(o);
      else ++o;
    }
  }

  void mergeSetElementOrder(json& original, json& patch, const Schema* schema) {
    std::vector<std::string> keys;
    for (auto it = patch.begin(); it != patch.end(); ++it)
      if (startsWith(it.key(), kOrderPrefix)) keys.push_back(it.key());
    for (const auto& key : keys) {
      json order = std::move(patch[key]);
      patch.erase(key);
      if (!order.is_array()) errBadArgType("[]interface {}", order);
      std::string field = extractKey(key, kOrderPrefix);
      auto o = original.find(field);
      auto p = patch.find(field);
      bool foundOriginal = o != original.end(), foundPatch = p != patch.end();
      if (foundOriginal && !o->is_array()) errBadArgType("[]interface {}", *o);
      if (foundPatch && !p->is_array()) errBadArgType("[]interface {}", *p);
      FieldMeta meta = lookupField(schema, field);
      json originalList = foundOriginal ? *o : json::array();
      json patchList = foundPatch ? *p : json::array();
      validatePatchWithSetOrderList(patchList, order, meta.mergeKey);

      json merged;
      if (foundOriginal && !foundPatch) merged = originalList;
      else if (!foundOriginal && foundPatch) merged = fresh(patchList, meta);
      else if (foundOriginal && foundPatch)
        merged = meta.strategy == "merge" ? mergeSlice(originalList, patchList, meta, false)
                                          : fresh(patchList, meta);
      else continue;

      if (originalList.empty() && patchList.empty()) {
        original[field] = merged;
        patch.erase(field);
        continue;
      }
      std::vector<json> patchItems, serverOnly;
      partition(merged, order, meta.mergeKey, patchItems, serverOnly);
      json::value_t kind = sliceElementType({&originalList, &patchList});
      original[field] = normalizeElementOrder(std::move(patchItems), std::move(serverOnly), order,
                                              originalList, meta.mergeKey, kind);
      patch.erase(field);
    }
  }

  static const json* findByKey(const json& list, const std::string& mergeKey, const json& value,
                               size_t* index = nullptr) {
    for (size_t i = 0; i < list.size(); ++i) {
      const json& e = list[i];
      if (!e.is_object()) internalError("value for key " + std::to_string(i) + " is not a map.");
      auto k = e.find(mergeKey);
      if (k != e.end() && goEqual(*k, value)) {
        if (index) *index = i;
        return &e;
      }
    }
    return nullptr;
  }

  static void partition(const json& merged, const json& by, const std::string& mergeKey,
                        std::vector<json>& in, std::vector<json>& out) {
    for (const auto& v : merged) {
      bool found = false;
      if (mergeKey.empty()) {
        found = std::any_of(by.begin(), by.end(), [&](const json& b) { return goEqual(b, v); });
      } else {
        if (!v.is_object()) errBadArgType("map[string]interface {}", v);
        auto k = v.find(mergeKey);
        if (k == v.end()) errNoMergeKey(v, mergeKey);
        found = findByKey(by, mergeKey, *k) != nullptr;
      }
      (found ? in : out).push_back(v);
    }
  }

  static bool isDeleteDirective(const json& v) {
    auto d = v.find(kDirectiveMarker);
    return d != v.end() && *d == "delete";
  }

  void validatePatchWithSetOrderList(const json& patchList, const json& order, const std::string& mergeKey) {
    if (order.empty() || patchList.empty()) return;
    std::vector<const json*> nonDelete;
    for (const auto& v : patchList) {
      if (!mergeKey.empty()) {
        if (!v.is_object()) errBadArgType("map[string]interface {}", v);
        if (isDeleteDirective(v)) continue;
      }
      nonDelete.push_back(&v);
    }
    size_t pi = 0, oi = 0;
    while (pi < nonDelete.size() && oi < order.size()) {
      const json& pv = *nonDelete[pi];
      if (pv.is_object() && pv.contains(kDirectiveMarker)) {
        ++pi;
        continue;
      }
      bool equal;
      if (mergeKey.empty()) {
        equal = goEqual(pv, order[oi]);
      } else {
        if (!pv.is_object()) errBadArgType("map[string]interface {}", pv);
        if (!order[oi].is_object()) errBadArgType("map[string]interface {}", order[oi]);
        auto a = pv.find(mergeKey);
        if (a == pv.end()) errNoMergeKey(pv, mergeKey);
        auto b = order[oi].find(mergeKey);
        if (b == order[oi].end()) errNoMergeKey(order[oi], mergeKey);
        equal = goEqual(*a, *b);
      }
      if (equal) ++pi;
      ++oi;
    }
    if (pi < nonDelete.size() && oi >= order.size())
      internalError("The order in patch list:\n" + goValue(patchList) + "\n doesn't match " +
                    std::string(kOrderPrefix) + " list:\n" + goValue(order) + "\n");
  }

  json mergeSlice(json original, json patch, const FieldMeta& meta, bool isDeleteList) {
    if (original.empty() && patch.empty()) return original;
    json::value_t kind = sliceElementType({&original, &patch});
    const std::string& mergeKey = meta.mergeKey;
    json merged = json::array();
    json patchOrder = patch;
    json serverOrder = original;

    if (kind != json::value_t::object) {
      if (isDeleteList) {
        json out = json::array();
        for (const auto& v : original)
          if (std::none_of(patch.begin(), patch.end(), [&](const json& d) { return goEqual(d, v); }))
            out.push_back(v);
        return out;
      }
      for (const auto* l : {&original, &patch})
        for (const auto& v : *l)
          if (std::none_of(merged.begin(), merged.end(), [&](const json& m) { return goEqual(m, v); }))
            merged.push_back(v);
    } else {
      if (mergeKey.empty()) internalError("cannot merge lists without merge key for type map");
      const Schema* elem = elementSchema(meta.schema);
      // Special elements: {"$patch": "delete", key: v} removes, {"$patch": "replace"} replaces.
      json plain = json::array();
      bool replace = false;
      for (const auto& v : patch) {
        auto d = v.find(kDirectiveMarker);
        if (d == v.end()) {
          plain.push_back(v);
          continue;
        }
        if (*d == "delete") {
          auto k = v.find(mergeKey);
          if (k == v.end()) errNoMergeKey(v, mergeKey);
          size_t idx;
          while (findByKey(original, mergeKey, *k, &idx)) original.erase(original.begin() + idx);
        } else if (*d == "replace") {
          replace = true;
        } else if (*d == "merge") {
          internalError("merging lists cannot yet be specified in the patch");
        } else {
          errBadPatchType(*d, v);
        }
      }
      if (replace) {
        original = json::array();
        for (const auto& v : plain) original.push_back(mergeMap(json::object(), v, elem));
        plain = json::array();
      }
      serverOrder = original;
      patchOrder = plain;
      merged = original;
      for (const auto& v : plain) {
        auto k = v.find(mergeKey);
        if (k == v.end()) errNoMergeKey(v, mergeKey);
        size_t idx;
        if (findByKey(merged, mergeKey, *k, &idx)) merged[idx] = mergeMap(merged[idx], v, elem);
        else merged.push_back(mergeMap(json::object(), v, elem));
      }
    }

    std::vector<json> patchItems, serverOnly;
    partition(merged, patchOrder, kind == json::value_t::object ? mergeKey : std::string(), patchItems,
              serverOnly);
    return normalizeElementOrder(std::move(patchItems), std::move(serverOnly), patchOrder, serverOrder,
                                 kind == json::value_t::object ? mergeKey : std::string(), kind);
  }

  static long index(const json& list, const json& item, const std::string& mergeKey, bool maps) {
    auto val = [&](const json& x) -> json {
      if (!maps) return x;
      if (!x.is_object()) return json();
      auto k = x.find(mergeKey);
      return k == x.end() ? json() : *k;
    };
    json want = val(item);
    for (size_t i = 0; i < list.size(); ++i)
      if (goEqual(val(list[i]), want)) return static_cast<long>(i);
    return -1;
  }

  // normalizeSliceOrder: a stable sort by position in `order` (Go's insertion sort, with
  // kube's comparator that treats an element missing from `order` as "less").
  static std::vector<json> normalizeSliceOrder(std::vector<json> toSort, const json& order,
                                               const std::string& mergeKey, json::value_t kind) {
    bool maps = kind == json::value_t::object;
    std::vector<json> toDelete;
    if (maps) {
      for (const auto& item : toSort) {
        if (!item.is_object()) errBadArgType("map[string]interface {}", item);
        if (!item.contains(mergeKey)) errNoMergeKey(item, mergeKey);
      }
      for (const auto& item : order) {
        if (!item.is_object()) errBadArgType("map[string]interface {}", item);
        if (!item.contains(mergeKey)) errNoMergeKey(item, mergeKey);
      }
      std::vector<json> keep;
      for (auto& item : toSort) (isDeleteDirective(item) ? toDelete : keep).push_back(std::move(item));
      toSort = std::move(keep);
    }
    auto less = [&](const json& a, const json& b) {
      long ia = index(order, a, mergeKey, maps);
      if (ia >= 0) {
        long ib = index(order, b, mergeKey, maps);
        if (ib >= 0) return ia < ib;
      }
      return true;
    };
    for (size_t i = 1; i < toSort.size(); ++i)
      for (size_t j = i; j > 0 && less(toSort[j], toSort[j - 1]); --j) std::swap(toSort[j], toSort[j - 1]);
    for (auto& d : toDelete) toSort.push_back(std::move(d));
    return toSort;
  }

  // normalizeElementOrder + mergeSortedSlice: patch items keep the patch's order, server-only
  // items the live order, interleaved by the live order where both are known.
  static json normalizeElementOrder(std::vector<json> patchItems, std::vector<json> serverOnly,
                                    const json& patchOrder, const json& serverOrder,
                                    const std::string& mergeKey, json::value_t kind) {
    bool maps = kind == json::value_t::object;
    patchItems = normalizeSliceOrder(std::move(patchItems), patchOrder, mergeKey, kind);
    serverOnly = normalizeSliceOrder(std::move(serverOnly), serverOrder, mergeKey, kind);
    json out = json::array();
    size_t i = 0, j = 0;
    const auto& left = serverOnly;
    const auto& right = patchItems;
    while (i < left.size() || j < right.size()) {
      if (i >= left.size()) {
        out.push_back(right[j++]);
      } else if (j >= right.size()) {
        out.push_back(left[i++]);
      } else {
        long li = index(serverOrder, left[i], mergeKey, maps);
        long ri = index(serverOrder, right[j], mergeKey, maps);
        if (li >= 0 && ri >= 0 && li < ri) out.push_back(left[i++]);
        else out.push_back(right[j++]);
      }
    }
    return out;
  }
};

}  // namespace

Result<nlohmann::json> applyJsonPatch(const nlohmann::json& original, const nlohmann::json& patch) {
  // jsonpatch.DecodePatch: a JSON array of objects (null decodes to an empty patch).
  if (patch.is_null()) return original;
  if (!patch.is_array())
    return Status::badRequest("json: cannot unmarshal " + jsonKindName(patch) +
                              " into Go value of type jsonpatch.Patch");
  for (const auto& op : patch)
    if (!op.is_object() && !op.is_null())
      return Status::badRequest("json: cannot unmarshal " + jsonKindName(op) +
                                " into Go value of type jsonpatch.Operation");
  if (patch.size() > 10000)
    return Status::requestEntityTooLarge("The allowed maximum operations in a JSON patch is 10000, got " +
                                         std::to_string(patch.size()));
  try {
    json doc = original;
    for (const auto& op : patch) applyOne(doc, op);
    if (!doc.is_object()) return resultNotAnObject(doc);
    return doc;
  } catch (const OpError& e) {
    // NewGenericServerResponse(422, ...): a fixed message, the library's error as the cause.
    Status s(422, reason::kInvalid, "the server rejected our request due to an error in our request");
    s.withCause({"UnexpectedServerResponse", e.message, ""});
    return s;
  } catch (const std::exception& e) {
    return Status::internal(std::string("json patch: ") + e.what());
  }
}

Result<nlohmann::json> applyMergePatch(const nlohmann::json& original, const nlohmann::json& patch) {
  try {
    if (patch.is_object()) {
      json doc = original.is_object() ? original : json::object();
      mergeDocs(doc, patch);
      return doc;
    }
    if (patch.is_array()) {
      // A list patch replaces the document, which then is no object.
      json copy = patch;
      pruneNulls(copy);
      return resultNotAnObject(copy);
    }
    // null and scalars: jsonpatch.ErrBadJSONPatch.
    return Status::badRequest("Invalid JSON Patch");
  } catch (const std::exception& e) {
    return Status::internal(std::string("merge patch: ") + e.what());
  }
}

Result<nlohmann::json> applyStrategicMergePatch(const nlohmann::json& original,
                                                const nlohmann::json& patch, const Schema& schema) {
  if (!patch.is_object())
    return Status::badRequest("json: cannot unmarshal " + jsonKindName(patch) +
                              " into Go value of type map[string]interface {}");
  try {
    StrategicMerge smp;
    return smp.mergeMap(original.is_object() ? original : json::object(), patch, &schema);
  } catch (const SmpError& e) {
    return e.status;
  } catch (const std::exception& e) {
    return Status::internal(std::string("strategic merge patch: ") + e.what());
  }
}

}  // namespace orrery::api
