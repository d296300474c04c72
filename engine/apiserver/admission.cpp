// kube-apiserver's default admission plugins that need the cluster's state: Priority
// (priorityClassName -> spec.priority), LimitRanger (container defaults and limits),
// ResourceQuota (checks and charges status.used) and the eviction subresource's
// PodDisruptionBudget check. Their refusals read as kube-apiserver's do:
// `pods "web-1" is forbidden: exceeded quota: ...`.

#include <algorithm>
#include <cmath>
#include <set>

#include <spdlog/spdlog.h>

#include "engine/api/json_parse.h"
#include "engine/api/object.h"
#include "engine/api/quantity.h"
#include "engine/api/quota.h"
#include "engine/api/selector.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Quantities;
using api::Quantity;
using api::effectivePodResources;
using api::podContainers;
using api::quantitiesOf;
using api::Status;
using nlohmann::json;

namespace {

constexpr int kMaxQuotaRetries = 10;

/// `pods "web-1" is forbidden: <why>`, with details as kube-apiserver's NewForbidden.
Status forbiddenFor(const api::ResourceInfo& info, const std::string& name, const std::string& why) {
  Status st = Status::forbidden(info.qualifiedResource() + " \"" + name + "\" is forbidden: " + why);
  st.withDetails(info.group, info.resource, name);
  return st;
}

/// utilerrors.NewAggregate's message: one error alone, several in brackets.
std::string aggregate(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return errors.front();
  std::string out = "[";
  for (size_t i = 0; i < errors.size(); ++i) out += (i ? ", " : "") + errors[i];
  return out + "]";
}

bool podIsReady(const json& pod) {
  for (const auto& c : pod.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Priority

std::optional<ApiHandler::PriorityClassFacts> ApiHandler::priorityClass(const std::string& name) {
  const api::GroupVersionResource priorityClasses{"scheduling.k8s.io", "v1", "priorityclasses"};
  // Current with this server's writes before the memo is asked: a class created just before
  // the pod counts.
  WatchCache* cache = currentCache(priorityClasses, Freshness::kOwnWrites);
  const int64_t asOf = cache ? cache->lastChangeRevision() : -1;
  if (cache) {
    std::lock_guard lock(priorityMemoMu_);
    if (priorityMemoRevision_ == asOf) {
      if (auto known = priorityMemo_.find(name); known != priorityMemo_.end()) return known->second;
    }
  }
  std::optional<PriorityClassFacts> found;
  // Parse only the named class, or the classes that may be the global default.
  for (const auto& item : cachedObjects(priorityClasses, "", name)) {
    // Stored objects are compact JSON: a class that is the global default says so in these
    // words (the parse below confirms it; the text could sit in an annotation).
    if (name.empty() && item->json().find("\"globalDefault\":true") == std::string::npos) continue;
    json pc = item->parse();
    if (name.empty() ? pc.value("globalDefault", false) : api::metaString(pc, "name") == name) {
      found = PriorityClassFacts{api::metaString(pc, "name"), pc.value("value", int64_t{0}),
                                 pc.value("preemptionPolicy", "PreemptLowerPriority")};
      break;
    }
  }
  // Remembered only when no class changed while this looked: the answer is then the one as of
  // `asOf`, and a later change moves lastChangeRevision past it.
  if (cache && cache->lastChangeRevision() == asOf) {
    std::lock_guard lock(priorityMemoMu_);
    // Pods may name any class, existing or not: the memo stays small.
    if (priorityMemoRevision_ != asOf || priorityMemo_.size() >= 64) {
      priorityMemo_.clear();
      priorityMemoRevision_ = asOf;
    }
    priorityMemo_[name] = found;
  }
  return found;
}

Status ApiHandler::admitPriority(Call& call, json& pod) {
  const auto& info = *call.resource;
  json& spec = pod["spec"];
  std::string className = spec.value("priorityClassName", "");
  int64_t priority = 0;
  std::string policy = "PreemptLowerPriority";
  std::optional<PriorityClassFacts> found = priorityClass(className);
  if (!className.empty() && !found) {
    return forbiddenFor(info, api::metaString(pod, "name"), "no PriorityClass with name " + className + " was found");
  }
  if (found) {
    className = found->name;
    priority = found->value;
    policy = found->preemptionPolicy;
    spec["priorityClassName"] = className;
  }
  if (spec.contains("priority") && spec["priority"].is_number_integer() && spec["priority"].get<int64_t>() != priority) {
    return forbiddenFor(info, api::metaString(pod, "name"),
                        "the integer value of priority (" + std::to_string(spec["priority"].get<int64_t>()) +
                            ") must not be provided in pod spec; priority admission controller computed " +
                            std::to_string(priority) + " from the given PriorityClass name");
  }
  if (spec.contains("preemptionPolicy") && spec["preemptionPolicy"].is_string() && found &&
      spec["preemptionPolicy"].get<std::string>() != policy) {
    return forbiddenFor(info, api::metaString(pod, "name"),
                        "the string value of PreemptionPolicy (" + spec["preemptionPolicy"].get<std::string>() +
                            ") must not be provided in pod spec; priority admission controller computed " + policy +
                            " from the given PriorityClass name");
  }
  spec["priority"] = priority;
  spec["preemptionPolicy"] = policy;
  return {};
}

// ---------------------------------------------------------------------------------------
// LimitRanger

Status ApiHandler::admitLimitRanges(Call& call, json& pod) {
  const auto& info = *call.resource;
  auto ranges = storedObjects({"", "v1", "limitranges"}, call.info.ns, Freshness::kOwnWrites);
  if (ranges.empty()) return {};
  std::sort(ranges.begin(), ranges.end(),
            [](const json& a, const json& b) { return api::metaString(a, "name") < api::metaString(b, "name"); });

  // Defaults first (mutating), for every container of the pod.
  std::vector<std::string> requestNotes, limitNotes;
  for (const char* field : {"containers", "initContainers"}) {
    auto& list = pod["spec"][field];
    if (!list.is_array()) {
      if (list.is_null()) pod["spec"].erase(field);
      continue;
    }
    for (auto& c : list) {
      std::set<std::string> setRequests, setLimits;
      for (const auto& lr : ranges) {
        for (const auto& item : lr.value("spec", json::object()).value("limits", json::array())) {
          if (item.value("type", "") != "Container") continue;
          json& resources = c["resources"];
          if (!resources.is_object()) resources = json::object();
          // Held in locals: items() of the temporary value() returns would outlive it.
          const json defaults = item.value("default", json::object());
          const json defaultRequests = item.value("defaultRequest", json::object());
          for (const auto& [k, v] : defaults.items()) {
            json& limits = resources["limits"];
            if (!limits.is_object()) limits = json::object();
            if (!limits.contains(k)) {
              limits[k] = v;
              setLimits.insert(k);
            }
          }
          for (const auto& [k, v] : defaultRequests.items()) {
            json& requests = resources["requests"];
            if (!requests.is_object()) requests = json::object();
            if (!requests.contains(k)) {
              requests[k] = v;
              setRequests.insert(k);
            }
          }
        }
      }
      auto note = [&](const std::set<std::string>& names, const char* what, std::vector<std::string>& out) {
        if (names.empty()) return;
        std::string joined;
        for (const auto& n : names) joined += (joined.empty() ? "" : ", ") + n;
        out.push_back(joined + " " + what + " for " + (std::string(field) == "initContainers" ? "init container " : "container ") +
                      c.value("name", ""));
      };
      note(setRequests, "request", requestNotes);
      note(setLimits, "limit", limitNotes);
    }
  }
  if (!requestNotes.empty() || !limitNotes.empty()) {
    std::string text = "LimitRanger plugin set: ";
    bool first = true;
    for (const auto* notes : {&requestNotes, &limitNotes}) {
      for (const auto& n : *notes) {
        text += (first ? "" : "; ") + n;
        first = false;
      }
    }
    metadataOf(pod)["annotations"]["kubernetes.io/limit-ranger"] = text;
  }

  // Then the limits (validating), per container and per pod.
  std::vector<std::string> errors;
  auto check = [&](const json& item, const std::string& scope, const Quantities& requests, const Quantities& limits) {
    for (auto& [k, min] : quantitiesOf(item.value("min", json::object()))) {
      auto r = requests.find(k);
      auto l = limits.find(k);
      if (r == requests.end()) {
        errors.push_back("minimum " + k + " usage per " + scope + " is " + min.toString() + ".  No request is specified");
      } else if (r->second < min) {
        errors.push_back("minimum " + k + " usage per " + scope + " is " + min.toString() + ", but request is " + r->second.toString());
      }
      if (l != limits.end() && l->second < min) {
        errors.push_back("minimum " + k + " usage per " + scope + " is " + min.toString() + ", but limit is " + l->second.toString());
      }
    }
    for (auto& [k, max] : quantitiesOf(item.value("max", json::object()))) {
      auto r = requests.find(k);
      auto l = limits.find(k);
      if (l == limits.end()) {
        errors.push_back("maximum " + k + " usage per " + scope + " is " + max.toString() + ".  No limit is specified");
      } else if (max < l->second) {
        errors.push_back("maximum " + k + " usage per " + scope + " is " + max.toString() + ", but limit is " + l->second.toString());
      }
      if (r != requests.end() && max < r->second) {
        errors.push_back("maximum " + k + " usage per " + scope + " is " + max.toString() + ", but request is " + r->second.toString());
      }
    }
    for (auto& [k, ratio] : quantitiesOf(item.value("maxLimitRequestRatio", json::object()))) {
      auto r = requests.find(k);
      auto l = limits.find(k);
      std::string head = k + " max limit to request ratio per " + scope + " is " + ratio.toString();
      if (l == limits.end() || l->second.isZero()) {
        errors.push_back(head + ", but no limit is specified or limit is 0");
      } else if (r == requests.end() || r->second.isZero()) {
        errors.push_back(head + ", but no request is specified or request is 0");
      } else {
        double provided = l->second.asDouble() / r->second.asDouble();
        if (provided > ratio.asDouble()) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%f", provided);
          errors.push_back(head + ", but provided ratio is " + buf);
        }
      }
    }
  };
  for (const auto& lr : ranges) {
    for (const auto& item : lr.value("spec", json::object()).value("limits", json::array())) {
      std::string type = item.value("type", "");
      if (type == "Container") {
        for (const json* c : podContainers(pod, true)) {
          const json& res = c->value("resources", json::object());
          check(item, "Container", quantitiesOf(res.value("requests", json::object())),
                quantitiesOf(res.value("limits", json::object())));
        }
      } else if (type == "Pod") {
        check(item, "Pod", effectivePodResources(pod, "requests"), effectivePodResources(pod, "limits"));
      }
    }
  }
  if (!errors.empty()) return forbiddenFor(info, api::metaString(pod, "name"), aggregate(errors));
  return {};
}

// ---------------------------------------------------------------------------------------
// ResourceQuota

Status ApiHandler::admitQuota(Call& call, const json& object) {
  const auto& info = *call.resource;
  if (!info.namespaced || call.info.ns.empty()) return {};
  auto quotaInfo = resources_->find({"", "v1", "resourcequotas"});
  if (!quotaInfo) return {};
  // Cheap test first: most namespaces have no quota.
  if (cachedObjects(quotaInfo->gvr(), call.info.ns).empty()) return {};
  const Quantities usage = api::quotaUsage(info, object);
  if (usage.empty()) return {};
  const std::string name = api::metaString(object, "name");
  bool isPod = info.group.empty() && info.resource == "pods";

  for (int attempt = 0; attempt < kMaxQuotaRetries; ++attempt) {
    store::RangeRequest range;
    range.key = storageKey(*quotaInfo, call.info.ns, "");
    range.prefix = true;
    auto quotas = store_->range(range);
    if (!quotas.ok()) return quotas.status();

    struct Charge {
      store::KeyValue kv;
      json quota;
    };
    std::vector<Charge> charges;
    for (const auto& kv : quotas->kvs) {
      json quota = api::parseJson(kv.value);
      if (quota.is_discarded()) continue;
      const std::string quotaName = api::metaString(quota, "name");
      Quantities hard = quantitiesOf(quota.value("spec", json::object()).value("hard", json::object()));
      std::vector<std::string> relevant;
      for (const auto& [k, q] : usage) {
        if (hard.count(k)) relevant.push_back(k);
      }
      if (isPod) {
        std::string missing = api::missingQuotaResources(object, hard);
        if (!missing.empty()) return forbiddenFor(info, name, "failed quota: " + quotaName + ": must specify " + missing);
      }
      if (relevant.empty()) continue;
      const json& status = quota.value("status", json::object());
      Quantities statusHard = quantitiesOf(status.value("hard", json::object()));
      std::vector<std::string> unknown;
      for (const auto& k : relevant) {
        if (!statusHard.count(k)) unknown.push_back(k);
      }
      if (!unknown.empty()) {
        std::string list;
        for (const auto& k : unknown) list += (list.empty() ? "" : ",") + k;
        return forbiddenFor(info, name, "status unknown for quota: " + quotaName + ", resources: " + list);
      }
      Quantities used = quantitiesOf(status.value("used", json::object()));
      std::vector<std::string> exceeded;
      Quantities after = used;
      for (const auto& k : relevant) {
        api::addQuantity(after, k, usage.at(k));
        if (hard.at(k) < after.at(k)) exceeded.push_back(k);
      }
      if (!exceeded.empty()) {
        return forbiddenFor(info, name,
                            "exceeded quota: " + quotaName + ", requested: " + api::prettyQuantities(usage, exceeded) +
                                ", used: " + api::prettyQuantities(used, exceeded) + ", limited: " + api::prettyQuantities(hard, exceeded));
      }
      json& newUsed = quota["status"]["used"];
      if (!newUsed.is_object()) newUsed = json::object();
      for (const auto& k : relevant) newUsed[k] = after.at(k).toString();
      charges.push_back({kv, std::move(quota)});
    }
    if (charges.empty() || call.dryRun()) return {};
    // Charge every quota in one transaction, so a concurrent create that read the same usage
    // fails its compare and tries again with ours.
    store::TxnRequest txn;
    for (auto& c : charges) {
      txn.compares.push_back({c.kv.key, store::Compare::Target::kModRevision, store::Compare::Op::kEqual, c.kv.modRevision, {}});
      txn.success.push_back(store::Operation::put(c.kv.key, c.quota.dump()));
    }
    auto result = store_->txn(txn);
    if (!result.ok()) return result.status();
    if (result->succeeded) {
      noteWrite(result->revision, charges.front().kv.key);
      return {};
    }
  }
  return Status(409, api::reason::kConflict,
                "Operation cannot be fulfilled on resourcequotas: the quota usage changed too often while charging it; try again");
}

// ---------------------------------------------------------------------------------------
// Eviction and PodDisruptionBudgets

Status ApiHandler::checkEviction(Call& call, const json& pod) {
  std::string phase = pod.value("status", json::object()).value("phase", "");
  // Pods that are done, not yet running, or already going are evicted without a budget.
  if (phase == "Succeeded" || phase == "Failed" || phase == "Pending" ||
      pod.value("metadata", json::object()).contains("deletionTimestamp")) {
    return {};
  }
  auto pdbInfo = resources_->find({"policy", "v1", "poddisruptionbudgets"});
  if (!pdbInfo) return {};
  const json labels = pod.value("metadata", json::object()).value("labels", json::object());
  const std::string podName = api::metaString(pod, "name");

  for (int attempt = 0; attempt < kMaxQuotaRetries; ++attempt) {
    store::RangeRequest range;
    range.key = storageKey(*pdbInfo, call.info.ns, "");
    range.prefix = true;
    auto stored = store_->range(range);
    if (!stored.ok()) return stored.status();
    std::vector<std::pair<store::KeyValue, json>> matching;
    for (const auto& kv : stored->kvs) {
      json pdb = api::parseJson(kv.value);
      if (pdb.is_discarded()) continue;
      auto selector = api::LabelSelector::fromJson(pdb.value("spec", json::object()).value("selector", json()));
      // An empty selector matches every pod of the namespace in policy/v1.
      if (selector.ok() && selector->matches(labels)) matching.emplace_back(kv, std::move(pdb));
    }
    if (matching.empty()) return {};
    if (matching.size() > 1) {
      return Status::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
    }
    auto& [kv, pdb] = matching.front();
    const std::string pdbName = api::metaString(pdb, "name");
    const json& status = pdb.value("status", json::object());
    const json& spec = pdb.value("spec", json::object());
    auto refuse = [&](const std::string& cause) {
      Status st = Status::tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0);
      st.retryAfterSeconds.reset();
      st.withCause({"DisruptionBudget", cause, ""});
      return st;
    };
    int64_t generation = pdb.value("metadata", json::object()).value("generation", int64_t{0});
    if (status.value("observedGeneration", int64_t{0}) < generation) {
      return refuse("The disruption budget " + pdbName + " is still being processed by the server.");
    }
    int64_t allowed = status.value("disruptionsAllowed", int64_t{0});
    int64_t currentHealthy = status.value("currentHealthy", int64_t{0});
    int64_t desiredHealthy = status.value("desiredHealthy", int64_t{0});
    if (allowed < 0) {
      return Status::forbidden("pdb disruptions allowed is negative");
    }
    // An unready pod does not count against a budget that is already healthy
    // (unhealthyPodEvictionPolicy IfHealthyBudget, the default), or ever with AlwaysAllow.
    if (!podIsReady(pod)) {
      std::string policy = spec.value("unhealthyPodEvictionPolicy", "IfHealthyBudget");
      if (policy == "AlwaysAllow" || currentHealthy >= desiredHealthy) return {};
    }
    if (status.value("disruptedPods", json::object()).size() > 2000) {
      return Status::forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller");
    }
    if (allowed == 0) {
      return refuse("The disruption budget " + pdbName + " needs " + std::to_string(desiredHealthy) +
                    " healthy pods and has " + std::to_string(currentHealthy) + " currently");
    }
    if (call.dryRun()) return {};
    pdb["status"]["disruptionsAllowed"] = allowed - 1;
    pdb["status"]["disruptedPods"][podName] = api::formatTime(call.now);
    auto cas = store_->compareAndSwap(kv.key, kv.modRevision, storedForm(pdb));
    if (!cas.ok()) return cas.status();
    if (cas->succeeded) {
      noteWrite(cas->revision, kv.key);
      return {};
    }
  }
  return Status::tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0);
}

}  // namespace orrery::apiserver
