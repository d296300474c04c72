#include "engine/controllers/util.h"

#include <algorithm>

#include <spdlog/sinks/stdout_color_sinks.h>

#include "engine/api/object.h"

namespace orrery::controllers {

using nlohmann::json;

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("controllers")) return existing;
    try {
      return spdlog::stderr_color_mt("controllers");
    } catch (...) {
      // Registered by another thread meanwhile.
      if (auto existing = spdlog::get("controllers")) return existing;
      return spdlog::default_logger();
    }
  }();
  return instance;
}

namespace {

const json& metadataOf(const json& object) {
  static const json kEmpty = json::object();
  if (!object.is_object()) return kEmpty;
  auto it = object.find("metadata");
  if (it == object.end() || !it->is_object()) return kEmpty;
  return *it;
}

std::string stringField(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

// ---- Reading objects

const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

const json& field(const json& object, const char* a, const char* b) { return field(field(object, a), b); }

std::string strField(const json& object, const char* a, const char* b) {
  const json& v = field(object, a, b);
  return v.is_string() ? v.get<std::string>() : std::string();
}

int64_t intField(const json& object, const char* a, const char* b, int64_t dflt) {
  const json& v = field(object, a, b);
  return v.is_number_integer() ? v.get<int64_t>() : dflt;
}

std::chrono::system_clock::time_point timeField(const json& v) {
  std::chrono::system_clock::time_point t{};
  if (v.is_string()) api::parseTime(v.get_ref<const std::string&>(), &t);
  return t;
}

const json* controllerRefOf(const json& object) {
  const json& refs = field(object, "metadata", "ownerReferences");
  if (!refs.is_array()) return nullptr;
  for (const auto& r : refs)
    if (r.is_object() && r.value("controller", false)) return &r;
  return nullptr;
}

std::string safeEncode(const std::string& s) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out = s;
  for (auto& c : out) c = kAlphabet[static_cast<unsigned char>(c) % 27];
  return out;
}

bool hasFinalizer(const json& object, const std::string& finalizer) {
  const json& meta = metadataOf(object);
  auto it = meta.find("finalizers");
  if (it == meta.end() || !it->is_array()) return false;
  for (const auto& f : *it) {
    if (f.is_string() && f.get<std::string>() == finalizer) return true;
  }
  return false;
}

bool isBeingDeleted(const json& object) {
  const json& meta = metadataOf(object);
  auto it = meta.find("deletionTimestamp");
  return it != meta.end() && !it->is_null();
}

OwnerReference OwnerReference::fromJson(const json& ref) {
  OwnerReference r;
  if (!ref.is_object()) return r;
  r.apiVersion = stringField(ref, "apiVersion");
  r.kind = stringField(ref, "kind");
  r.name = stringField(ref, "name");
  r.uid = stringField(ref, "uid");
  auto c = ref.find("controller");
  r.controller = c != ref.end() && c->is_boolean() && c->get<bool>();
  auto b = ref.find("blockOwnerDeletion");
  r.blockOwnerDeletion = b != ref.end() && b->is_boolean() && b->get<bool>();
  return r;
}

json OwnerReference::toJson() const {
  json j = {{"apiVersion", apiVersion}, {"kind", kind}, {"name", name}, {"uid", uid}};
  if (controller) j["controller"] = true;
  if (blockOwnerDeletion) j["blockOwnerDeletion"] = true;
  return j;
}

std::vector<OwnerReference> ownerReferences(const json& object) {
  std::vector<OwnerReference> refs;
  const json& meta = metadataOf(object);
  auto it = meta.find("ownerReferences");
  if (it == meta.end() || !it->is_array()) return refs;
  for (const auto& ref : *it) refs.push_back(OwnerReference::fromJson(ref));
  return refs;
}

std::optional<OwnerReference> controllerRef(const json& object) {
  for (auto& ref : ownerReferences(object)) {
    if (ref.controller) return ref;
  }
  return std::nullopt;
}

json newControllerRef(const json& owner) {
  return {{"apiVersion", stringField(owner, "apiVersion")},
          {"kind", stringField(owner, "kind")},
          {"name", api::metaString(owner, "name")},
          {"uid", api::metaString(owner, "uid")},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

const json* podCondition(const json& pod, const std::string& type) {
  if (!pod.is_object()) return nullptr;
  auto status = pod.find("status");
  if (status == pod.end() || !status->is_object()) return nullptr;
  auto conditions = status->find("conditions");
  if (conditions == status->end() || !conditions->is_array()) return nullptr;
  // Controllers call this for every pod on every sync: compare in place, copy nothing.
  for (const auto& c : *conditions) {
    if (!c.is_object()) continue;
    const json& t = field(c, "type");
    if (t.is_string() && t.get_ref<const std::string&>() == type) return &c;
  }
  return nullptr;
}

bool isPodReady(const json& pod) {
  const json* c = podCondition(pod, "Ready");
  if (!c) return false;
  const json& status = field(*c, "status");
  return status.is_string() && status.get_ref<const std::string&>() == "True";
}

bool isPodAvailable(const json& pod, int minReadySeconds, std::chrono::system_clock::time_point now) {
  const json* c = podCondition(pod, "Ready");
  if (!c || stringField(*c, "status") != "True") return false;
  if (minReadySeconds <= 0) return true;
  std::chrono::system_clock::time_point since;
  if (!api::parseTime(stringField(*c, "lastTransitionTime"), &since)) return false;
  return readyLongEnough(since, minReadySeconds, now);
}

bool readyLongEnough(const std::optional<std::chrono::system_clock::time_point>& readySince, int64_t minReadySeconds,
                     std::chrono::system_clock::time_point now) {
  if (minReadySeconds <= 0) return true;
  // Strictly before, as podutil.IsPodAvailable's LastTransitionTime.Add(...).Before(now).
  return readySince && *readySince + std::chrono::seconds(minReadySeconds) < now;
}

bool isPodActive(const json& pod) {
  std::string phase;
  if (pod.is_object() && pod.contains("status") && pod["status"].is_object()) {
    phase = stringField(pod["status"], "phase");
  }
  return phase != "Succeeded" && phase != "Failed" && !isBeingDeleted(pod);
}

std::string orphanPodIndexKey(const std::string& ns) { return "_ORPHAN_POD/" + ns; }

void addPodControllerUidIndex(client::Informer& pods) {
  pods.addIndex(kPodControllerUidIndex, [](const json& pod) -> std::vector<std::string> {
    if (const json* ref = controllerRefOf(pod)) return {ref->value("uid", "")};
    return {orphanPodIndexKey(strField(pod, "metadata", "namespace"))};
  });
}

// ---- Expectations

namespace {
// kube's ExpectationsTimeout: a controller that missed an event recovers after this.
constexpr auto kExpectationsTimeout = std::chrono::minutes(5);
}  // namespace

Expectations::Expectations(std::function<Clock::time_point()> now) : now_(std::move(now)) {}

bool Expectations::satisfied(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return true;
  const Entry& e = it->second;
  if (e.adds <= 0 && e.deletes <= 0) return true;
  return now_() - e.at > kExpectationsTimeout;
}

void Expectations::expect(const std::string& key, int adds, int deletes) {
  std::lock_guard lock(mu_);
  entries_[key] = Entry{adds, deletes, {}, now_()};
}

void Expectations::expectDeletions(const std::string& key, const std::vector<std::string>& podKeys) {
  std::lock_guard lock(mu_);
  Entry e{0, static_cast<int>(podKeys.size()), {podKeys.begin(), podKeys.end()}, now_()};
  entries_[key] = std::move(e);
}

void Expectations::deletionObserved(const std::string& key, const std::string& podKey) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (it->second.deleting.erase(podKey) > 0) it->second.deletes--;
}

void Expectations::lower(const std::string& key, int adds, int deletes) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.adds -= adds;
  it->second.deletes -= deletes;
}

void Expectations::remove(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

// ---- Resources

bool DiscoveredResource::has(const std::string& verb) const {
  return std::find(verbs.begin(), verbs.end(), verb) != verbs.end();
}

std::pair<std::string, std::string> splitApiVersion(const std::string& apiVersion) {
  auto slash = apiVersion.find('/');
  if (slash == std::string::npos) return {"", apiVersion};
  return {apiVersion.substr(0, slash), apiVersion.substr(slash + 1)};
}

bool isConflict(const api::Status& status) {
  return status.code() == 409 && status.reason() == api::reason::kConflict;
}

namespace {

api::Result<json> getJson(client::Client& client, const std::string& path) {
  client::Request request;
  request.path = path;
  auto response = client.roundTrip(request);
  if (!response.ok()) return response.status();
  if (response->code < 200 || response->code > 299) return client::statusFromResponse(*response);
  json body = json::parse(response->body, nullptr, false);
  if (body.is_discarded()) return api::Status::internal("discovery: " + path + " answered with invalid JSON");
  return body;
}

// The resources of one APIResourceList (subresources left out).
void addResourceList(const json& list, const std::string& group, const std::string& version,
                     std::vector<DiscoveredResource>* out) {
  if (!list.contains("resources") || !list["resources"].is_array()) return;
  for (const auto& r : list["resources"]) {
    std::string name = stringField(r, "name");
    if (name.empty() || name.find('/') != std::string::npos) continue;
    DiscoveredResource d;
    d.gvr = {group, version, name};
    d.kind = stringField(r, "kind");
    d.namespaced = r.value("namespaced", false);
    if (r.contains("verbs") && r["verbs"].is_array()) {
      for (const auto& v : r["verbs"]) {
        if (v.is_string()) d.verbs.push_back(v.get<std::string>());
      }
    }
    out->push_back(std::move(d));
  }
}

}  // namespace

api::Result<Discovery> discoverResources(client::Client& client) {
  Discovery result;
  std::vector<std::string> failed;
  auto core = getJson(client, "/api/v1");
  if (core.ok()) {
    addResourceList(*core, "", "v1", &result.resources);
  } else {
    failed.push_back("v1: " + core.status().message());
  }
  auto groups = getJson(client, "/apis");
  if (!groups.ok()) {
    if (!core.ok()) return groups.status();
    result.error = "unable to retrieve the complete list of server APIs: " + groups.status().message();
    return result;
  }
  if (groups->contains("groups") && (*groups)["groups"].is_array()) {
    for (const auto& g : (*groups)["groups"]) {
      std::string name = stringField(g, "name");
      std::string gv;
      if (g.contains("preferredVersion") && g["preferredVersion"].is_object()) {
        gv = stringField(g["preferredVersion"], "groupVersion");
      }
      if (gv.empty() && g.contains("versions") && g["versions"].is_array() && !g["versions"].empty()) {
        gv = stringField(g["versions"][0], "groupVersion");
      }
      if (name.empty() || gv.empty()) continue;
      auto list = getJson(client, "/apis/" + gv);
      if (!list.ok()) {
        failed.push_back(gv + ": " + list.status().message());
        continue;
      }
      addResourceList(*list, name, splitApiVersion(gv).second, &result.resources);
    }
  }
  if (!failed.empty()) {
    // client-go's ErrGroupDiscoveryFailed wording.
    std::string msg = "unable to retrieve the complete list of server APIs: ";
    for (size_t i = 0; i < failed.size(); ++i) msg += (i ? ", " : "") + failed[i];
    result.error = msg;
  }
  return result;
}

KindMapper::KindMapper(std::shared_ptr<client::Client> client)
    : client_(std::move(client)), builtin_(api::ResourceRegistry::builtin()) {}

api::Result<DiscoveredResource> KindMapper::resolve(const std::string& apiVersion, const std::string& kind) {
  const std::string key = apiVersion + "/" + kind;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  auto [group, version] = splitApiVersion(apiVersion);
  DiscoveredResource found;
  bool ok = false;
  if (auto info = builtin_->findKind({group, version, kind}); info && !info->custom) {
    found.gvr = info->gvr();
    found.kind = info->kind;
    found.namespaced = info->namespaced;
    found.verbs = info->verbs;
    ok = true;
  } else if (client_) {
    auto list = getJson(*client_, group.empty() ? "/api/" + version : "/apis/" + apiVersion);
    if (!list.ok() && list.status().code() != 404) return list.status();
    if (list.ok()) {
      std::vector<DiscoveredResource> resources;
      addResourceList(*list, group, version, &resources);
      for (auto& r : resources) {
        if (r.kind == kind) {
          found = std::move(r);
          ok = true;
          break;
        }
      }
    }
  }
  if (!ok) {
    // The RESTMapper's NoKindMatchError wording.
    return api::Status(404, api::reason::kNotFound,
                       "no matches for kind \"" + kind + "\" in version \"" + apiVersion + "\"");
  }
  std::lock_guard lock(mu_);
  cache_[key] = found;
  return found;
}

}  // namespace orrery::controllers
