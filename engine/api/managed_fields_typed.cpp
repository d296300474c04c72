// Schema-aware walks over objects, with the semantics of structured-merge-diff's typed package:
// which fields an object sets, what changed between two objects, how an applied configuration
// merges into a live object, and how fields are removed.
//
// Schema mapping (as kube-apiserver converts OpenAPI to structured-merge-diff schemas):
// - objects with properties are structs (their properties are "named fields"); unknown keys
//   (preserve-unknown-fields) are map keys of deduced type; mapType=atomic makes them leaves;
// - maps (additionalProperties) are granular maps unless mapType=atomic;
// - arrays: x-kubernetes-list-type atomic|set|map; without it, patchStrategy merge makes an
//   associative list keyed by patchMergeKey (a set without a key); anything else is atomic;
// - untyped (preserve-unknown, RawExtension) is "deduced": objects are granular maps, arrays
//   atomic, scalars leaves.

#include <set>

#include "engine/api/managed_fields_internal.h"

namespace orrery::api::fieldmanager {

using nlohmann::json;

namespace {

struct Kind {
  enum Shape { kLeaf, kStruct, kMap, kSet, kAssoc } shape = kLeaf;
  const Schema* schema = nullptr;           // null: deduced
  const std::vector<std::string>* keys = nullptr;  // kAssoc
  std::string mergeKey;                     // kAssoc from patchMergeKey
};

bool fits(const json* v, bool wantObject) {
  if (v == nullptr || v->is_null()) return true;
  return wantObject ? v->is_object() : v->is_array();
}

// The shape of a node given its schema and the value(s) found there. A value of the wrong JSON
// type makes the node a leaf, compared and replaced as a whole.
Kind kindOf(const Schema* s, const json* a, const json* b = nullptr) {
  Kind k;
  k.schema = s;
  if (s == nullptr || s->type == Schema::Type::kAny) {
    k.schema = nullptr;
    bool aObj = a != nullptr && a->is_object(), bObj = b != nullptr && b->is_object();
    if ((aObj || bObj) && fits(a, true) && fits(b, true)) k.shape = Kind::kMap;
    return k;
  }
  switch (s->type) {
    case Schema::Type::kObject:
      if (s->mapType == "atomic" || !fits(a, true) || !fits(b, true)) return k;
      k.shape = Kind::kStruct;
      return k;
    case Schema::Type::kMap:
      if (s->mapType == "atomic" || !fits(a, true) || !fits(b, true)) return k;
      k.shape = Kind::kMap;
      return k;
    case Schema::Type::kArray: {
      if (!fits(a, false) || !fits(b, false)) return k;
      if (s->listType == "set") {
        k.shape = Kind::kSet;
      } else if (s->listType == "map") {
        k.shape = s->listMapKeys.empty() ? Kind::kSet : Kind::kAssoc;
        k.keys = &s->listMapKeys;
      } else if (s->listType.empty() &&
                 (s->patchStrategy == "merge" || s->patchStrategy == "merge,retainKeys")) {
        if (s->patchMergeKey.empty()) {
          k.shape = Kind::kSet;
        } else {
          k.shape = Kind::kAssoc;
          k.mergeKey = s->patchMergeKey;
        }
      }
      return k;
    }
    default:
      return k;
  }
}

bool isContainer(const Kind& k) { return k.shape != Kind::kLeaf; }

// Schema of a struct field / map value; `named` tells whether it is a declared struct field.
const Schema* childSchema(const Kind& k, const std::string& name, bool* named = nullptr,
                          bool* required = nullptr) {
  if (named) *named = false;
  if (required) *required = false;
  if (k.schema == nullptr) return nullptr;
  if (k.shape == Kind::kMap) return k.schema->type == Schema::Type::kMap ? k.schema->items.get() : nullptr;
  if (k.shape == Kind::kStruct) {
    auto it = k.schema->properties.find(name);
    if (it == k.schema->properties.end()) return nullptr;
    if (named) *named = true;
    if (required) {
      for (const auto& r : k.schema->required)
        if (r == name) *required = true;
    }
    return it->second.get();
  }
  return nullptr;
}

const Schema* itemSchema(const Kind& k) { return k.schema ? k.schema->items.get() : nullptr; }

PathElement fieldElement(const std::string& name) { return "f:" + name; }

// The path element naming a list item: its key fields for associative lists, its value for sets.
PathElement itemElement(const Kind& k, const json& item) {
  if (k.shape == Kind::kSet) return "v:" + canonicalJson(item);
  if (item.is_null()) throw FieldError("associative list with keys may not have a null element");
  if (!item.is_object()) throw FieldError("associative list with keys may not have non-map elements");
  std::vector<std::string> single;
  const std::vector<std::string>* keys = k.keys;
  if (keys == nullptr) {
    single.push_back(k.mergeKey);
    keys = &single;
  }
  json key = json::object();
  const Schema* elem = itemSchema(k);
  for (const auto& name : *keys) {
    auto it = item.find(name);
    if (it != item.end()) {
      key[name] = *it;
      continue;
    }
    const Schema* fs = elem ? elem->child(name) : nullptr;
    if (fs != nullptr && fs->defaultValue) {
      key[name] = *fs->defaultValue;
    } else if (name == "protocol") {
      // Built-in port lists key on protocol, which defaults to TCP in kube's OpenAPI.
      key[name] = "TCP";
    } else {
      throw FieldError("associative list with keys has an element that omits key field \"" + name +
                       "\" (and doesn't have default value)");
    }
  }
  return "k:" + canonicalJson(key);
}

// Items of a list by path element, first occurrence wins, in list order.
struct IndexedList {
  std::vector<PathElement> order;
  std::map<PathElement, const json*> byElement;
};

IndexedList indexList(const Kind& k, const json* list) {
  IndexedList out;
  if (list == nullptr || !list->is_array()) return out;
  for (const auto& item : *list) {
    PathElement pe = itemElement(k, item);
    if (out.byElement.emplace(pe, &item).second) out.order.push_back(pe);
  }
  return out;
}

bool emptyContainer(const json* v) { return v == nullptr || v->is_null() || v->empty(); }

// ---- ToFieldSet

void toSet(const json& v, const Schema* s, Path& path, FieldSet& out) {
  Kind k = kindOf(s, &v);
  switch (k.shape) {
    case Kind::kLeaf:
      out.insert(path);
      return;
    case Kind::kStruct:
    case Kind::kMap:
      if (v.is_null()) return;
      for (const auto& [key, val] : v.items()) {
        bool named = false;
        const Schema* cs = childSchema(k, key, &named);
        path.push_back(fieldElement(key));
        toSet(val, cs, path, out);
        if (val.is_null() || (val.is_object() && val.empty()) || !named) out.insert(path);
        path.pop_back();
      }
      return;
    case Kind::kSet:
    case Kind::kAssoc:
      if (v.is_null()) return;
      for (const auto& item : v) {
        path.push_back(itemElement(k, item));
        toSet(item, itemSchema(k), path, out);
        out.insert(path);
        path.pop_back();
      }
      return;
  }
}

// ---- Compare

struct Comparer {
  Comparison& out;

  void leaf(const json* l, const json* r, const Path& path) {
    if (l == nullptr) {
      out.added.insert(path);
    } else if (r == nullptr) {
      out.removed.insert(path);
    } else if (*l != *r) {
      out.modified.insert(path);
    }
  }

  // `emptyObj`: lhs is the Go empty object here (only along struct fields from the root).
  void walk(const json* l, const json* r, const Schema* s, Path& path, bool emptyObj, bool required) {
    Kind k = kindOf(s, l, r);
    bool bothEmpty = emptyContainer(l) && emptyContainer(r);
    if (!isContainer(k) || bothEmpty) {
      leaf(l, r, path);
      return;
    }
    if (k.shape == Kind::kStruct || k.shape == Kind::kMap) {
      // Both sides' members in key order (objects keep them sorted), each key once.
      static const json::object_t kNoMembers;
      const json::object_t& lm = l && l->is_object() ? l->get_ref<const json::object_t&>() : kNoMembers;
      const json::object_t& rm = r && r->is_object() ? r->get_ref<const json::object_t&>() : kNoMembers;
      const bool atMetadata = path.size() == 1 && path[0] == "f:metadata";
      for (auto li = lm.begin(), ri = rm.begin(); li != lm.end() || ri != rm.end();) {
        const std::string* key;
        const json* lc = nullptr;
        const json* rc = nullptr;
        if (ri == rm.end() || (li != lm.end() && li->first < ri->first)) {
          key = &li->first;
          lc = &(li++)->second;
        } else if (li == lm.end() || ri->first < li->first) {
          key = &ri->first;
          rc = &(ri++)->second;
        } else {
          key = &li->first;
          lc = &(li++)->second;
          rc = &(ri++)->second;
        }
        // managedFields are the bookkeeping of fields, never a field (kube compares objects
        // without them); callers need not copy an object to take them out.
        if (atMetadata && *key == "managedFields") continue;
        // A member that did not change adds nothing: most of an update (a status write's
        // whole spec) is decided by one comparison instead of a walk that builds paths.
        if (lc && rc && *lc == *rc) continue;
        bool named = false, req = false;
        const Schema* cs = childSchema(k, *key, &named, &req);
        path.push_back(fieldElement(*key));
        walk(lc, rc, cs, path, emptyObj && named && k.shape == Kind::kStruct, req);
        path.pop_back();
      }
    } else {
      IndexedList li = indexList(k, l), ri = indexList(k, r);
      std::vector<PathElement> all = li.order;
      for (const auto& pe : ri.order)
        if (!li.byElement.count(pe)) all.push_back(pe);
      for (const auto& pe : all) {
        auto lit = li.byElement.find(pe);
        auto rit = ri.byElement.find(pe);
        const json* lc = lit == li.byElement.end() ? nullptr : lit->second;
        const json* rc = rit == ri.byElement.end() ? nullptr : rit->second;
        if (lc && rc && *lc == *rc) continue;  // an item that did not change adds nothing
        path.push_back(pe);
        walk(lc, rc, itemSchema(k), path, false, false);
        path.pop_back();
      }
    }
    if (path.empty()) return;
    if (l == nullptr) {
      // In the Go empty object, required fields (no omitempty) and non-pointer structs exist.
      if (!(emptyObj && (k.shape == Kind::kStruct || required))) out.added.insert(path);
    } else if (r == nullptr) {
      out.removed.insert(path);
    }
  }
};

// ---- Merge

json mergeValue(const json* l, const json* r, const Schema* s);

json mergeLists(const Kind& k, const json* l, const json* r) {
  IndexedList li = indexList(k, l), ri = indexList(k, r);
  // Items in both, in rhs order: the order shared items must keep.
  std::vector<PathElement> shared;
  for (const auto& pe : ri.order)
    if (li.byElement.count(pe)) shared.push_back(pe);
  size_t nextShared = 0;
  auto isNextShared = [&](const PathElement& pe) {
    return nextShared < shared.size() && shared[nextShared] == pe;
  };
  std::set<PathElement> mergedFromRhs;
  json out = json::array();
  const Schema* es = itemSchema(k);
  size_t lI = 0, rI = 0;
  const size_t lN = li.order.size(), rN = ri.order.size();
  while (lI < lN || rI < rN) {
    if (lI < lN && rI < rN) {
      const PathElement& lpe = li.order[lI];
      if (lpe == ri.order[rI]) {
        mergedFromRhs.insert(lpe);
        out.push_back(mergeValue(li.byElement[lpe], ri.byElement[lpe], es));
        ++lI;
        ++rI;
        if (isNextShared(lpe)) ++nextShared;
        continue;
      }
      // A shared item that must wait for its turn in rhs order: skip it on the lhs side.
      if (ri.byElement.count(lpe) && nextShared < shared.size() && !isNextShared(lpe)) {
        ++lI;
        continue;
      }
    }
    if (lI < lN) {
      const PathElement& lpe = li.order[lI];
      if (!ri.byElement.count(lpe)) {
        out.push_back(*li.byElement[lpe]);  // only in lhs: kept where it was
        ++lI;
        continue;
      }
      if (mergedFromRhs.count(lpe)) {
        ++lI;
        continue;
      }
    }
    if (rI < rN) {
      const PathElement& rpe = ri.order[rI];
      mergedFromRhs.insert(rpe);
      auto lit = li.byElement.find(rpe);
      out.push_back(mergeValue(lit == li.byElement.end() ? nullptr : lit->second, ri.byElement[rpe], es));
      ++rI;
      if (isNextShared(rpe)) ++nextShared;
      continue;
    }
    ++lI;  // unreachable in practice; guarantees progress
  }
  return out;
}

json mergeValue(const json* l, const json* r, const Schema* s) {
  if (r == nullptr) return l ? *l : json();
  if (l == nullptr) return *r;
  Kind k = kindOf(s, l, r);
  if (!isContainer(k) || (emptyContainer(l) && emptyContainer(r)) || r->is_null()) return *r;
  if (l->is_null()) return *r;
  if (k.shape == Kind::kStruct || k.shape == Kind::kMap) {
    json out = *l;
    for (const auto& [key, rv] : r->items()) {
      if (rv.is_null()) {
        // An explicit null in the applied configuration clears the field.
        out.erase(key);
        continue;
      }
      const Schema* cs = childSchema(k, key);
      auto it = l->find(key);
      out[key] = mergeValue(it == l->end() ? nullptr : &*it, &rv, cs);
    }
    return out;
  }
  return mergeLists(k, l, r);
}

// ---- Remove

void removeWalk(json& v, const FieldSet& set, const Schema* s) {
  Kind k = kindOf(s, &v);
  if (!isContainer(k) || v.is_null() || v.empty()) return;
  if (k.shape == Kind::kStruct || k.shape == Kind::kMap) {
    for (auto it = v.begin(); it != v.end();) {
      auto node = set.children().find(fieldElement(it.key()));
      if (node == set.children().end()) {
        ++it;
        continue;
      }
      if (node->second.member()) {
        it = v.erase(it);
        continue;
      }
      json& child = it.value();
      bool wasFull = (child.is_object() || child.is_array()) && !child.empty();
      removeWalk(child, node->second, childSchema(k, it.key()));
      // Like a Go object re-encoded: a map or list emptied by the removal disappears.
      if (wasFull && child.empty()) {
        it = v.erase(it);
        continue;
      }
      ++it;
    }
    return;
  }
  json out = json::array();
  for (auto& item : v) {
    PathElement pe = itemElement(k, item);
    auto node = set.children().find(pe);
    if (node != set.children().end()) {
      if (node->second.member()) continue;
      removeWalk(item, node->second, itemSchema(k));
    }
    out.push_back(std::move(item));
  }
  v = std::move(out);
}

// ---- Named fields

FieldSet ensureNamed(const FieldSet& set, const Schema* s) {
  Kind k;
  k.schema = s;
  if (s != nullptr && s->type == Schema::Type::kObject && s->mapType != "atomic") {
    k.shape = Kind::kStruct;
  } else if (s != nullptr && s->type == Schema::Type::kMap && s->mapType != "atomic") {
    k.shape = Kind::kMap;
  } else if (s != nullptr && s->type == Schema::Type::kArray) {
    k.shape = Kind::kSet;
  } else {
    return set;  // leaves and deduced types have no named fields below
  }
  FieldSet out;
  out.setMember(set.member());
  for (const auto& [pe, child] : set.children()) {
    const Schema* cs = nullptr;
    bool named = false;
    if (k.shape == Kind::kSet) {
      cs = s->items.get();
    } else if (pe.rfind("f:", 0) == 0) {
      cs = childSchema(k, pe.substr(2), &named);
    }
    FieldSet c = ensureNamed(child, cs);
    // A declared struct field on the way to members is owned as a whole too.
    if (named && !c.children().empty()) c.setMember(true);
    out.child(pe) = std::move(c);
  }
  return out;
}

// ---- Validation of an applied configuration (structured-merge-diff refuses duplicates there)

void validateWalk(const json& v, const Schema* s, Path& path, std::vector<std::string>& errors) {
  Kind k = kindOf(s, &v);
  if (!isContainer(k) || v.is_null()) return;
  if (k.shape == Kind::kStruct || k.shape == Kind::kMap) {
    for (const auto& [key, val] : v.items()) {
      path.push_back(fieldElement(key));
      validateWalk(val, childSchema(k, key), path, errors);
      path.pop_back();
    }
    return;
  }
  std::set<PathElement> seen;
  for (size_t i = 0; i < v.size(); ++i) {
    PathElement pe;
    try {
      pe = itemElement(k, v[i]);
    } catch (const FieldError& e) {
      errors.push_back(pathToString(path) + ": element " + std::to_string(i) + ": " + e.what());
      continue;
    }
    if (!seen.insert(pe).second) {
      errors.push_back(pathToString(path) + ": duplicate entries for key " + pathToString({pe}));
      continue;
    }
    path.push_back(pe);
    validateWalk(v[i], itemSchema(k), path, errors);
    path.pop_back();
  }
}

}  // namespace

std::vector<std::string> validateApplied(const json& object, const Schema* schema) {
  std::vector<std::string> errors;
  Path path;
  validateWalk(object, schema, path, errors);
  return errors;
}

FieldSet toFieldSet(const json& object, const Schema* schema) {
  FieldSet out;
  Path path;
  toSet(object, schema, path, out);
  return out;
}

Comparison compare(const json* lhs, const json* rhs, const Schema* schema, bool lhsIsEmptyObject) {
  Comparison c;
  Comparer w{c};
  Path path;
  w.walk(lhs, rhs, schema, path, lhsIsEmptyObject, false);
  return c;
}

json merge(const json& lhs, const json& rhs, const Schema* schema) {
  return mergeValue(&lhs, &rhs, schema);
}

void removeItems(json& object, const FieldSet& set, const Schema* schema) {
  if (set.empty()) return;
  removeWalk(object, set, schema);
}

FieldSet ensureNamedFieldsAreMembers(const FieldSet& set, const Schema* schema) {
  return ensureNamed(set, schema);
}

}  // namespace orrery::api::fieldmanager
