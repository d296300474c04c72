// managedFields tracking and server-side apply, following kube-apiserver's field manager stack
// (k8s.io/apimachinery/pkg/util/managedfields/internal): strip-meta, managed-fields updater
// (timestamps), cap on Update managers, skip-non-applied (objects without managedFields stay
// untracked on update; the first apply records "before-first-apply"), last-applied manager
// (kubectl's client-side to server-side upgrade) and last-applied updater.

#include "engine/api/managed_fields.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/api/json_dump.h"
#include "engine/api/managed_fields_internal.h"
#include "engine/api/object.h"

namespace orrery::api {

using nlohmann::json;
using fieldmanager::canonicalJson;
using fieldmanager::Comparison;
using fieldmanager::FieldError;
using fieldmanager::FieldSet;
using fieldmanager::Path;

namespace {

constexpr const char* kApply = "Apply";
constexpr const char* kUpdate = "Update";
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr const char* kBeforeFirstApply = "before-first-apply";
constexpr const char* kAncientChanges = "ancient-changes";
constexpr size_t kMaxUpdateManagers = 10;

/// One managedFields entry, decoded.
struct Entry {
  std::string manager, operation, apiVersion, time, subresource;
  FieldSet set;

  // kube's manager identifier: appliers are one manager whatever apiVersion they apply in.
  bool sameIdentity(const std::string& m, const std::string& op, const std::string& version,
                    const std::string& sub) const {
    return manager == m && operation == op && subresource == sub &&
           (op == kApply || apiVersion == version);
  }
  bool sameIdentity(const Entry& o) const {
    return sameIdentity(o.manager, o.operation, o.apiVersion, o.subresource);
  }
};
using Managed = std::vector<Entry>;

struct Conflict {
  Entry owner;  // identity only
  Path path;
};

// Fields the server sets itself; nobody owns them (kube's stripMetaManager, plus the deletion
// fields the registry sets on graceful deletion).
const FieldSet& stripSet() {
  static const FieldSet set = [] {
    FieldSet s;
    s.insert({"f:apiVersion"});
    s.insert({"f:kind"});
    s.insert({"f:metadata"});
    for (const char* f : {"name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
                          "generation", "managedFields", "resourceVersion", "deletionTimestamp",
                          "deletionGracePeriodSeconds"})
      s.insert({"f:metadata", std::string("f:") + f});
    return s;
  }();
  return set;
}

FieldSet resetFieldSet(const ManagerInfo& who) {
  FieldSet s;
  for (const auto& dotted : who.resetFields) {
    Path p;
    size_t start = 0;
    while (start <= dotted.size()) {
      size_t dot = dotted.find('.', start);
      if (dot == std::string::npos) dot = dotted.size();
      if (dot > start) p.push_back("f:" + dotted.substr(start, dot - start));
      start = dot + 1;
    }
    if (!p.empty()) s.insert(p);
  }
  return s;
}

// ---- decoding and encoding metadata.managedFields

const json* managedFieldsOf(const json& obj) {
  if (!obj.is_object()) return nullptr;
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return nullptr;
  auto f = m->find("managedFields");
  if (f == m->end()) return nullptr;
  return &*f;
}

void removeManagedFields(json& obj) {
  if (!obj.is_object()) return;
  auto m = obj.find("metadata");
  if (m != obj.end() && m->is_object()) m->erase("managedFields");
}

std::string stringField(const json& e, const char* name) {
  auto it = e.find(name);
  if (it == e.end() || it->is_null()) return "";
  if (!it->is_string()) throw FieldError(std::string(name) + " must be a string");
  return it->get<std::string>();
}

Managed decode(const json* fields) {
  Managed out;
  if (fields == nullptr || fields->is_null()) return out;
  if (!fields->is_array()) throw FieldError("managedFields must be a list");
  for (size_t i = 0; i < fields->size(); ++i) {
    const json& e = (*fields)[i];
    if (!e.is_object()) throw FieldError("managed fields entry " + std::to_string(i) + " is not an object");
    Entry entry;
    entry.manager = stringField(e, "manager");
    entry.operation = stringField(e, "operation");
    entry.apiVersion = stringField(e, "apiVersion");
    entry.time = stringField(e, "time");
    entry.subresource = stringField(e, "subresource");
    if (entry.operation != kApply && entry.operation != kUpdate)
      throw FieldError("operation must be `Apply` or `Update`");
    if (entry.apiVersion.empty()) throw FieldError("apiVersion must not be empty");
    std::string type = stringField(e, "fieldsType");
    if (type.empty()) throw FieldError("missing fieldsType in managed fields entry " + std::to_string(i));
    if (type != "FieldsV1")
      throw FieldError("invalid fieldsType \"" + type + "\" in managed fields entry " + std::to_string(i));
    auto f = e.find("fieldsV1");
    if (f != e.end() && !f->is_null()) entry.set = FieldSet::fromFieldsV1(*f);
    // A later entry with the same identity replaces an earlier one, as in kube's decoding.
    auto same = std::find_if(out.begin(), out.end(), [&](const Entry& x) { return x.sameIdentity(entry); });
    if (same != out.end()) {
      *same = std::move(entry);
    } else {
      out.push_back(std::move(entry));
    }
  }
  return out;
}

// Seconds since the epoch of an RFC 3339 time; 0 when absent or unreadable.
int64_t unixSeconds(const std::string& t) {
  std::chrono::system_clock::time_point at;
  if (!parseTime(t, &at)) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
}

// kube keeps at most 10 Update managers: the oldest are merged into "ancient-changes".
void capUpdateManagers(Managed& managed) {
  std::vector<size_t> updaters;
  for (size_t i = 0; i < managed.size(); ++i)
    if (managed[i].operation == kUpdate) updaters.push_back(i);
  if (updaters.size() <= kMaxUpdateManagers) return;
  std::sort(updaters.begin(), updaters.end(), [&](size_t a, size_t b) {
    int64_t ta = unixSeconds(managed[a].time), tb = unixSeconds(managed[b].time);
    if (ta != tb) return ta < tb;
    return managed[a].manager < managed[b].manager;
  });
  std::map<std::string, size_t> firstOfVersion;  // apiVersion -> index of the bucket entry
  std::vector<bool> drop(managed.size(), false);
  size_t length = updaters.size();
  for (size_t n = 0; n < updaters.size() && length > kMaxUpdateManagers; ++n) {
    size_t i = updaters[n];
    auto first = firstOfVersion.find(managed[i].apiVersion);
    if (first == firstOfVersion.end()) {
      firstOfVersion[managed[i].apiVersion] = i;
      continue;
    }
    // Merge into the version's existing bucket, or turn the oldest entry of the version into it.
    size_t b = first->second;
    for (size_t j = 0; j < managed.size(); ++j) {
      if (!drop[j] && managed[j].manager == kAncientChanges && managed[j].operation == kUpdate &&
          managed[j].subresource.empty() && managed[j].apiVersion == managed[i].apiVersion) {
        b = j;
        break;
      }
    }
    if (b == i) continue;
    Entry& bucket = managed[b];
    bucket.manager = kAncientChanges;
    bucket.subresource.clear();
    bucket.set = bucket.set.unite(managed[i].set);
    bucket.time = managed[i].time;  // the newer of the two
    drop[i] = true;
    --length;
  }
  Managed kept;
  for (size_t i = 0; i < managed.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(managed[i]));
  managed = std::move(kept);
}

void dropEmpty(Managed& managed) {
  managed.erase(std::remove_if(managed.begin(), managed.end(), [](const Entry& e) { return e.set.empty(); }),
                managed.end());
}

// One managedFields entry as kube writes it, its set already in FieldsV1.
json entryJson(const Entry& e, json fieldsV1) {
  json j = {{"manager", e.manager},
            {"operation", e.operation},
            {"apiVersion", e.apiVersion},
            {"fieldsType", "FieldsV1"},
            {"fieldsV1", std::move(fieldsV1)}};
  if (!e.time.empty()) j["time"] = e.time;
  if (!e.subresource.empty()) j["subresource"] = e.subresource;
  return j;
}

// Writes the entries into obj.metadata.managedFields in kube's order: operation, time,
// manager, apiVersion, subresource. No entries: no managedFields at all.
void encode(json& obj, Managed managed) {
  removeManagedFields(obj);
  if (managed.empty() || !obj.is_object()) return;
  std::stable_sort(managed.begin(), managed.end(), [](const Entry& p, const Entry& q) {
    if (p.operation != q.operation) return p.operation < q.operation;
    int64_t ps = unixSeconds(p.time), qs = unixSeconds(q.time);
    if (ps != qs) return ps < qs;
    if (p.manager != q.manager) return p.manager < q.manager;
    if (p.apiVersion != q.apiVersion) return p.apiVersion < q.apiVersion;
    return p.subresource < q.subresource;
  });
  json list = json::array();
  for (const auto& e : managed) list.push_back(entryJson(e, e.set.toFieldsV1()));
  obj["metadata"]["managedFields"] = std::move(list);
}

// managedFields: [] or [{}] in a request asks to reset them.
bool isResetRequest(const json* fields) {
  if (fields == nullptr || !fields->is_array()) return false;
  if (fields->empty()) return true;
  return fields->size() == 1 && (*fields)[0].is_object() && (*fields)[0].empty();
}

Entry& entryFor(Managed& managed, const ManagerInfo& who, const char* operation) {
  for (auto& e : managed)
    if (e.sameIdentity(who.manager, operation, who.apiVersion, who.subresource)) return e;
  Entry e;
  e.manager = who.manager;
  e.operation = operation;
  e.apiVersion = who.apiVersion;
  e.subresource = who.subresource;
  managed.push_back(std::move(e));
  return managed.back();
}

// The Update step of structured-merge-diff as the managed-fields updater drives it: everybody
// loses what changed; `who` gains what it added or modified (and gets the time) if anything.
void recordUpdate(const json* live, const json& updated, Managed& managed, const ManagerInfo& who,
                  const Schema& schema, const FieldSet& ignored, bool liveIsEmptyObject) {
  Comparison cmp = fieldmanager::compare(live, &updated, &schema, liveIsEmptyObject);
  // Each set operation builds a whole new tree. On a create (every API create records one)
  // most operands are empty: the steps that would only copy a set are skipped.
  FieldSet changed = cmp.modified == FieldSet{} ? std::move(cmp.added) : cmp.added.unite(cmp.modified);
  if (!(ignored == FieldSet{})) changed = changed.minusRecursive(ignored);
  if (!managed.empty()) {
    FieldSet removed = ignored == FieldSet{} ? std::move(cmp.removed) : cmp.removed.minusRecursive(ignored);
    const FieldSet touched = removed == FieldSet{} ? changed : changed.unite(removed);
    for (auto& e : managed) e.set = e.set.minus(touched);
  }
  FieldSet mine = changed.minus(stripSet());
  if (!mine.empty()) {
    Entry& self = entryFor(managed, who, kUpdate);
    self.set = self.set == FieldSet{} ? std::move(mine) : self.set.unite(mine);
    self.apiVersion = who.apiVersion;
    self.time = who.time;
  }
  dropEmpty(managed);
}

// Copies the values at `paths` from `from` into `to` (or removes them): the fields the
// strategy resets for this endpoint (status on the main resource, spec on /status).
void resetPaths(const json& from, json& to, const ManagerInfo& who) {
  for (const auto& dotted : who.resetFields) {
    json::json_pointer ptr;
    size_t start = 0;
    while (start <= dotted.size()) {
      size_t dot = dotted.find('.', start);
      if (dot == std::string::npos) dot = dotted.size();
      if (dot > start) ptr /= dotted.substr(start, dot - start);
      start = dot + 1;
    }
    if (ptr.empty()) continue;
    bool inFrom = from.is_object() && from.contains(ptr);
    if (inFrom) {
      if (to.is_object()) to[ptr] = from.at(ptr);
    } else if (to.is_object() && to.contains(ptr)) {
      json& parent = to.at(ptr.parent_pointer());
      if (parent.is_object()) parent.erase(ptr.back());
    }
  }
}

std::string printManager(const Entry& e) {
  std::string s = json(e.manager).dump();
  if (!e.subresource.empty()) s += " with subresource " + json(e.subresource).dump();
  if (e.operation == kUpdate) s += " using " + e.apiVersion;
  return s;
}

Status conflictStatus(std::vector<Conflict> conflicts) {
  std::stable_sort(conflicts.begin(), conflicts.end(), [](const Conflict& a, const Conflict& b) {
    return std::tie(a.owner.manager, a.owner.operation, a.owner.apiVersion, a.owner.subresource) <
           std::tie(b.owner.manager, b.owner.operation, b.owner.apiVersion, b.owner.subresource);
  });
  std::string message;
  if (conflicts.size() == 1) {
    message = "Apply failed with 1 conflict: conflict with " + printManager(conflicts[0].owner) + ": " +
              fieldmanager::pathToString(conflicts[0].path);
  } else {
    message = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
    const Entry* current = nullptr;
    bool first = true;
    for (const auto& c : conflicts) {
      if (current == nullptr || !current->sameIdentity(c.owner)) {
        if (!first) message += "\n";
        message += "conflicts with " + printManager(c.owner) + ":";
        current = &c.owner;
        first = false;
      }
      message += "\n- " + fieldmanager::pathToString(c.path);
    }
  }
  Status st(409, reason::kConflict, message);
  for (const auto& c : conflicts)
    st.withCause({"FieldManagerConflict", "conflict with " + printManager(c.owner),
                  fieldmanager::pathToString(c.path)});
  return st;
}

struct ApplyOutcome {
  json object;
  Managed managed;
  bool changed = false;
  std::vector<Conflict> conflicts;
};

// structured-merge-diff's Updater.Apply: merge, prune what the applier stopped applying (unless
// somebody else owns it), then check what changed against the other managers.
ApplyOutcome applyCore(const json& live, const json& applied, Managed managed, const ManagerInfo& who,
                       bool force, const Schema& schema, const FieldSet& ignored) {
  ApplyOutcome out;
  json merged = fieldmanager::merge(live, applied, &schema);

  FieldSet config = fieldmanager::toFieldSet(applied, &schema).minusRecursive(ignored);
  FieldSet last;
  for (const auto& e : managed)
    if (e.sameIdentity(who.manager, kApply, who.apiVersion, who.subresource)) last = e.set.minusRecursive(ignored);
  Entry& self = entryFor(managed, who, kApply);
  std::string previousTime = self.time;
  self.set = config;
  self.apiVersion = who.apiVersion;

  // Prune: remove what the applier owned before and nobody (itself included) owns now.
  if (!last.empty()) {
    FieldSet owned;
    for (const auto& e : managed) owned = owned.unite(e.set);
    FieldSet lastN = fieldmanager::ensureNamedFieldsAreMembers(last, &schema);
    FieldSet ownedN = fieldmanager::ensureNamedFieldsAreMembers(owned, &schema);
    FieldSet mergedSet =
        fieldmanager::ensureNamedFieldsAreMembers(fieldmanager::toFieldSet(merged, &schema), &schema);
    json pruned = merged;
    fieldmanager::removeItems(pruned, lastN, &schema);
    FieldSet prunedSet =
        fieldmanager::ensureNamedFieldsAreMembers(fieldmanager::toFieldSet(pruned, &schema), &schema);
    // Add back everything somebody owns.
    pruned = merged;
    fieldmanager::removeItems(pruned, mergedSet.minus(prunedSet.unite(ownedN)), &schema);
    // And anything the removal took that the applier never owned.
    prunedSet = fieldmanager::ensureNamedFieldsAreMembers(fieldmanager::toFieldSet(pruned, &schema), &schema);
    json result = merged;
    fieldmanager::removeItems(result, mergedSet.minus(prunedSet).intersect(lastN), &schema);
    merged = std::move(result);
  }

  Comparison cmp = fieldmanager::compare(&live, &merged, &schema);
  FieldSet changed = cmp.changed().minusRecursive(ignored);
  FieldSet removed = cmp.removed.minusRecursive(ignored);
  for (auto& e : managed) {
    if (e.sameIdentity(who.manager, kApply, who.apiVersion, who.subresource)) continue;
    FieldSet conflict = e.set.intersect(changed);
    if (!conflict.empty()) {
      for (auto& p : conflict.paths()) out.conflicts.push_back({e, std::move(p)});
      e.set = e.set.minus(conflict);
    }
    e.set = e.set.minus(removed);
  }
  if (!out.conflicts.empty() && !force) return out;
  out.conflicts.clear();

  out.changed = merged != live;
  Entry& me = entryFor(managed, who, kApply);
  me.time = out.changed ? who.time : previousTime;
  me.set = me.set.minus(stripSet());
  dropEmpty(managed);
  out.object = std::move(merged);
  out.managed = std::move(managed);
  return out;
}

// Fields kubectl's client-side apply set that still hold the last-applied value: the
// server-side applier named kubectl* may take them over without a conflict.
FieldSet allowedFromLastApplied(const json& live, const Schema& schema) {
  const json* meta = live.contains("metadata") ? &live["metadata"] : nullptr;
  if (!meta || !meta->is_object() || !meta->contains("annotations")) return {};
  const json& ann = (*meta)["annotations"];
  if (!ann.is_object() || !ann.contains(kLastApplied) || !ann[kLastApplied].is_string()) return {};
  json last = json::parse(ann[kLastApplied].get<std::string>(), nullptr, false);
  if (last.is_discarded() || !last.is_object()) return {};
  FieldSet set = fieldmanager::toFieldSet(last, &schema);
  Comparison cmp = fieldmanager::compare(&last, &live, &schema);
  return set.minus(cmp.modified).minus(cmp.added).minus(cmp.removed);
}

bool hasLastApplied(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata")) return false;
  const json& meta = obj["metadata"];
  if (!meta.is_object() || !meta.contains("annotations") || !meta["annotations"].is_object()) return false;
  return meta["annotations"].contains(kLastApplied);
}

// The value kubectl would write: the applied object without the annotation itself, encoded
// as Go's json encoder does (sorted keys, compact, trailing newline).
std::string buildLastApplied(json applied) {
  if (applied.contains("metadata") && applied["metadata"].is_object()) {
    json& meta = applied["metadata"];
    if (meta.contains("annotations") && meta["annotations"].is_object()) meta["annotations"].erase(kLastApplied);
  }
  return canonicalJson(applied) + "\n";
}

// kube's objectGVKNN: "default/web; apps/v1, Kind=Deployment" ("/v1, Kind=Service" for core).
std::string objectGvkNN(const json& obj) {
  auto str = [](const json& o, const char* k) {
    return o.is_object() && o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
  };
  json meta = obj.is_object() && obj.contains("metadata") ? obj["metadata"] : json::object();
  std::string apiVersion = str(obj, "apiVersion");
  if (apiVersion.find('/') == std::string::npos) apiVersion = "/" + apiVersion;
  return str(meta, "namespace") + "/" + str(meta, "name") + "; " + apiVersion + ", Kind=" + str(obj, "kind");
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::string fieldManagerFromUserAgent(const std::string& userAgent) {
  std::string head = userAgent.substr(0, userAgent.find('/'));
  std::string out;
  for (size_t i = 0; i < head.size();) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
    if (c < 0x80 && (c < 0x20 || c == 0x7f)) {  // not printable
      ++i;
      continue;
    }
    if (out.size() + len > kFieldManagerMaxLength) break;
    out += head.substr(i, len);
    i += len;
  }
  return out;
}

namespace {

// ---- Creates of objects alike.
//
// A create's field set depends only on the object's shape (which fields it sets, and the whole
// items of its lists, whose keys and values spell k:{...} and v:... paths), its schema and the
// endpoint's reset fields: never on a field's scalar value. Controllers and benchmarks create
// many objects of one shape (a ReplicaSet's pods differ in name and uid), so the FieldsV1 of
// the first is kept and handed to the next ones.

// Appends a description of `value` that two objects share exactly when their creates record
// the same field set: keys everywhere, scalar types outside lists, whole values inside them.
void appendShape(const json& value, bool inList, std::string& out) {
  auto lengthPrefixed = [&out](const std::string& s) {
    char digits[24];
    out.append(digits, std::to_chars(digits, digits + sizeof(digits), s.size()).ptr);
    out += ':';
    out += s;
  };
  switch (value.type()) {
    case json::value_t::object:
      out += '{';
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        lengthPrefixed(key);
        appendShape(member, inList, out);
      }
      out += '}';
      return;
    case json::value_t::array:
      out += '[';
      for (const auto& item : value.get_ref<const json::array_t&>()) appendShape(item, true, out);
      out += ']';
      return;
    case json::value_t::string:
      out += 's';
      if (inList) lengthPrefixed(value.get_ref<const std::string&>());
      return;
    case json::value_t::null:
      out += '0';
      return;
    default:
      // Numbers, booleans (and anything else): the type, and inside a list the value, whose
      // text never holds the ';' that ends it.
      out += static_cast<char>('a' + static_cast<int>(value.type()));
      if (inList) {
        appendJson(out, value);
        out += ';';
      }
      return;
  }
}

class CreateFieldsMemo {
 public:
  /// The FieldsV1 a create of this shape recorded, or null when none is known. `found`
  /// distinguishes a known empty set (no entry at all) from an unknown shape.
  std::shared_ptr<const json> find(const std::string& key, bool* found) {
    std::lock_guard lock(mu_);
    auto it = memo_.find(key);
    *found = it != memo_.end();
    return *found ? it->second : nullptr;
  }
  void clear() {
    std::lock_guard lock(mu_);
    memo_.clear();
  }
  void remember(std::string key, std::shared_ptr<const json> fields) {
    std::lock_guard lock(mu_);
    // Bounded (at most ~1 MB with its keys): a workload has few shapes; a burst of distinct
    // ones starts the memo over.
    if (memo_.size() >= kMaxShapes) memo_.clear();
    memo_.emplace(std::move(key), std::move(fields));
  }

 private:
  static constexpr size_t kMaxShapes = 64;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const json>> memo_;
};

CreateFieldsMemo& createFieldsMemo() {
  static CreateFieldsMemo memo;
  return memo;
}

// The memo's key: the schema (built-in ones only: they live as long as the process, where a
// custom resource's schema is replaced when its CRD changes), the reset fields, the shape.
std::optional<std::string> createShapeKey(const json& object, const ManagerInfo& who, const Schema& schema) {
  if (schema.refName.rfind("io.k8s.", 0) != 0 || !who.subresource.empty()) return std::nullopt;
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(&schema));
  key.reserve(1024);
  for (const auto& field : who.resetFields) {
    key += '|';
    key += field;
  }
  key += '|';
  appendShape(object, false, key);
  // Lists are in the key whole: an object with a long one is not worth remembering.
  constexpr size_t kMaxKeyBytes = 8 * 1024;
  if (key.size() > kMaxKeyBytes) return std::nullopt;
  return key;
}

}  // namespace

namespace fieldmanager {
void forgetCreateShapes() { createFieldsMemo().clear(); }
}  // namespace fieldmanager

Status updateManagedFields(const json& live, json& updated, const ManagerInfo& who, const Schema& schema) {
  if (!updated.is_object()) return Status::ok();
  const bool create = live.is_null();
  try {
    Managed managed;
    const json* requested = managedFieldsOf(updated);
    if (!who.subresource.empty()) {
      // Subresources never take managedFields from the request.
      try {
        managed = decode(managedFieldsOf(live));
      } catch (const FieldError&) {
        managed.clear();
      }
    } else if (isResetRequest(requested)) {
      managed.clear();
    } else {
      bool useLive = true;
      try {
        managed = decode(requested);
        useLive = managed.empty();
      } catch (const FieldError&) {
        useLive = true;
      }
      if (useLive) {
        try {
          managed = decode(create ? nullptr : managedFieldsOf(live));
        } catch (const FieldError&) {
          managed.clear();
        }
      }
    }
    removeManagedFields(updated);
    // An existing object without managedFields stays untracked until it is applied to.
    if (managed.empty() && !create) return Status::ok();

    std::optional<std::string> shapeKey;
    if (create && managed.empty()) {
      shapeKey = createShapeKey(updated, who, schema);
      bool found = false;
      auto known = shapeKey ? createFieldsMemo().find(*shapeKey, &found) : nullptr;
      if (found) {
        // What recordUpdate and encode would write: one Update entry of `who`, if any.
        if (known) {
          Entry self;
          self.manager = who.manager;
          self.operation = kUpdate;
          self.apiVersion = who.apiVersion;
          self.time = who.time;
          updated["metadata"]["managedFields"] = json::array({entryJson(self, *known)});
        }
        return Status::ok();
      }
    }
    FieldSet ignored = resetFieldSet(who);
    if (create) {
      recordUpdate(nullptr, updated, managed, who, schema, ignored, true);
      if (shapeKey) {
        createFieldsMemo().remember(std::move(*shapeKey),
                                    managed.empty() ? nullptr : std::make_shared<const json>(managed[0].set.toFieldsV1()));
      }
    } else {
      // (The comparison skips live's managedFields.)
      recordUpdate(&live, updated, managed, who, schema, ignored, false);
    }
    capUpdateManagers(managed);
    encode(updated, std::move(managed));
    return Status::ok();
  } catch (const std::exception& e) {
    // As kube-apiserver: never fail a write over bookkeeping; drop managedFields instead.
    spdlog::error("failed to update managedFields for {}: {}", who.manager, e.what());
    removeManagedFields(updated);
    return Status::ok();
  }
}

Result<json> serverSideApply(const json& live, const json& applied, const ManagerInfo& who, bool force,
                             const Schema& schema) {
  if (!applied.is_object()) return Status::badRequest("error decoding YAML: the applied object is not an object");
  const json* requested = managedFieldsOf(applied);
  if (requested != nullptr && !requested->is_null())
    return Status::badRequest("metadata.managedFields must be nil");
  std::string version = applied.contains("apiVersion") && applied["apiVersion"].is_string()
                            ? applied["apiVersion"].get<std::string>()
                            : "";
  if (!who.apiVersion.empty() && version != who.apiVersion)
    return Status::badRequest("Incorrect version specified in apply patch. Specified patch version: " + version +
                              ", expected: " + who.apiVersion);
  try {
    std::vector<std::string> invalid = fieldmanager::validateApplied(applied, &schema);
    if (!invalid.empty()) {
      // kube-apiserver answers these with a plain error, i.e. 500 InternalError.
      std::string detail = invalid.size() == 1 ? invalid[0] : "errors:\n  " + invalid[0];
      for (size_t i = 1; i < invalid.size(); ++i) detail += "\n  " + invalid[i];
      return Status::internal("failed to create typed patch object (" + objectGvkNN(applied) + "): " + detail);
    }
    const bool exists = !live.is_null();
    json liveObj = exists ? live : json::object();
    Managed managed;
    try {
      managed = decode(managedFieldsOf(liveObj));
    } catch (const FieldError& e) {
      return Status::internal(std::string("failed to decode managed fields: ") + e.what());
    }
    removeManagedFields(liveObj);
    FieldSet ignored = resetFieldSet(who);

    if (managed.empty() && exists) {
      // Untracked object: what is there now belongs to "before-first-apply".
      ManagerInfo before = who;
      before.manager = kBeforeFirstApply;
      before.subresource.clear();
      recordUpdate(nullptr, liveObj, managed, before, schema, ignored, true);
    }

    ApplyOutcome out;
    try {
      out = applyCore(liveObj, applied, managed, who, force, schema, ignored);
    } catch (const FieldError& e) {
      return Status::internal(std::string("failed to create typed patch object: ") + e.what());
    }
    if (!out.conflicts.empty() && startsWith(who.manager, "kubectl") && hasLastApplied(liveObj)) {
      // Upgrading from client-side apply: conflicts on fields still at their last-applied
      // value are not conflicts; force those.
      FieldSet allowed = allowedFromLastApplied(liveObj, schema);
      std::vector<Conflict> remaining;
      for (auto& c : out.conflicts)
        if (!allowed.has(c.path)) remaining.push_back(std::move(c));
      if (!remaining.empty()) return conflictStatus(std::move(remaining));
      out = applyCore(liveObj, applied, managed, who, true, schema, ignored);
    }
    if (!out.conflicts.empty()) return conflictStatus(std::move(out.conflicts));

    json result = std::move(out.object);
    if (!who.resetFields.empty()) resetPaths(liveObj, result, who);
    if (who.manager == "kubectl" && hasLastApplied(result))
      result["metadata"]["annotations"][kLastApplied] = buildLastApplied(applied);
    encode(result, std::move(out.managed));
    return result;
  } catch (const FieldError& e) {
    return Status::internal(e.what());
  } catch (const json::exception& e) {
    return Status::internal(std::string("server-side apply: ") + e.what());
  }
}

}  // namespace orrery::api
