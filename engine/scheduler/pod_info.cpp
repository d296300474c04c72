// Pods as the scheduler sees them: parsed once from the API's JSON into PodInfo, with the
// effective requests kube-scheduler computes (init containers, sidecars, overhead) and the
// terms its plugins read.

#include <algorithm>
#include <tuple>

#include "engine/api/object.h"
#include "engine/api/quantity.h"
#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/helpers.h"

namespace orrery::scheduler {

namespace {

constexpr int64_t kDefaultMilliCpuRequest = 100;             // schedutil.DefaultMilliCPURequest
constexpr int64_t kDefaultMemoryRequest = 200 * 1024 * 1024;  // schedutil.DefaultMemoryRequest

void maxInto(Resources& into, const Resources& r) {
  into.milliCpu = std::max(into.milliCpu, r.milliCpu);
  into.memory = std::max(into.memory, r.memory);
  into.ephemeralStorage = std::max(into.ephemeralStorage, r.ephemeralStorage);
  for (const auto& [k, v] : r.scalar) {
    auto& slot = into.scalar[k];
    slot = std::max(slot, v);
  }
}

Status badField(const std::string& field, const std::string& why) {
  return Status::badRequest(field + ": " + why);
}

Result<std::vector<std::string>> stringList(const nlohmann::json& j, const char* key,
                                            const std::string& path) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return badField(path + "." + key, "must be a list of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) return badField(path + "." + key, "must be a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::vector<NodeSelectorRequirement>> parseRequirements(const nlohmann::json& list,
                                                              const std::string& path) {
  std::vector<NodeSelectorRequirement> out;
  if (list.is_null()) return out;
  if (!list.is_array()) return badField(path, "must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& r = list[i];
    std::string p = path + "[" + std::to_string(i) + "]";
    if (!r.is_object()) return badField(p, "must be an object");
    NodeSelectorRequirement req;
    req.key = stringMember(r, "key");
    req.op = stringMember(r, "operator");
    auto values = stringList(r, "values", p);
    if (!values) return values.status();
    req.values = std::move(*values);
    out.push_back(std::move(req));
  }
  return out;
}

Result<NodeSelectorTerm> parseNodeSelectorTerm(const nlohmann::json& t, const std::string& path) {
  NodeSelectorTerm term;
  if (t.is_null()) return term;
  if (!t.is_object()) return badField(path, "must be an object");
  auto me = parseRequirements(t.value("matchExpressions", nlohmann::json()), path + ".matchExpressions");
  if (!me) return me.status();
  auto mf = parseRequirements(t.value("matchFields", nlohmann::json()), path + ".matchFields");
  if (!mf) return mf.status();
  term.matchExpressions = std::move(*me);
  term.matchFields = std::move(*mf);
  return term;
}

// kube merges matchLabelKeys / mismatchLabelKeys into the term's selector with the incoming
// pod's values (key In (v) / key NotIn (v)), for keys the pod has.
Result<PodAffinityTerm> parseAffinityTerm(const nlohmann::json& t, const std::string& path,
                                          const std::string& podNamespace,
                                          const std::map<std::string, std::string>& podLabels) {
  PodAffinityTerm term;
  if (!t.is_object()) return badField(path, "must be an object");
  term.topologyKey = stringMember(t, "topologyKey");
  auto ns = stringList(t, "namespaces", path);
  if (!ns) return ns.status();
  term.namespaces = std::move(*ns);
  auto mlk = stringList(t, "matchLabelKeys", path);
  if (!mlk) return mlk.status();
  auto mmlk = stringList(t, "mismatchLabelKeys", path);
  if (!mmlk) return mmlk.status();
  term.matchLabelKeys = std::move(*mlk);
  term.mismatchLabelKeys = std::move(*mmlk);

  auto sel = t.find("labelSelector");
  if (sel == t.end() || sel->is_null()) {
    term.labelSelector = api::LabelSelector::nothing();
  } else {
    nlohmann::json merged = *sel;
    if (!merged.is_object()) return badField(path + ".labelSelector", "must be an object");
    auto addExpr = [&](const std::vector<std::string>& keys, const char* op) {
      for (const auto& k : keys) {
        auto it = podLabels.find(k);
        if (it == podLabels.end()) continue;
        merged["matchExpressions"].push_back({{"key", k}, {"operator", op}, {"values", {it->second}}});
      }
    };
    addExpr(term.matchLabelKeys, "In");
    addExpr(term.mismatchLabelKeys, "NotIn");
    auto parsed = api::LabelSelector::fromJson(merged);
    if (!parsed) return badField(path + ".labelSelector", parsed.status().message());
    term.labelSelector = std::move(*parsed);
  }
  auto nsSel = t.find("namespaceSelector");
  if (nsSel != t.end() && !nsSel->is_null()) {
    auto parsed = api::LabelSelector::fromJson(*nsSel);
    if (!parsed) return badField(path + ".namespaceSelector", parsed.status().message());
    term.namespaceSelector = std::move(*parsed);
  }
  // A term with neither namespaces nor a namespaceSelector means the pod's own namespace.
  if (term.namespaces.empty() && !term.namespaceSelector) term.namespaces.push_back(podNamespace);
  return term;
}

Status parseAffinityTerms(const nlohmann::json& parent, const char* key, const std::string& path,
                          PodInfo& pod, std::vector<PodAffinityTerm>& required,
                          std::vector<WeightedPodAffinityTerm>& preferred) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return Status::ok();
  const auto& a = *it;
  std::string p = path + "." + key;
  if (auto r = a.find("requiredDuringSchedulingIgnoredDuringExecution"); r != a.end() && r->is_array()) {
    for (size_t i = 0; i < r->size(); ++i) {
      auto term = parseAffinityTerm((*r)[i], p + ".requiredDuringSchedulingIgnoredDuringExecution[" +
                                                 std::to_string(i) + "]", pod.ns, pod.labels);
      if (!term) return term.status();
      required.push_back(std::move(*term));
    }
  }
  if (auto r = a.find("preferredDuringSchedulingIgnoredDuringExecution"); r != a.end() && r->is_array()) {
    for (size_t i = 0; i < r->size(); ++i) {
      std::string tp = p + ".preferredDuringSchedulingIgnoredDuringExecution[" + std::to_string(i) + "]";
      const auto& w = (*r)[i];
      if (!w.is_object()) return badField(tp, "must be an object");
      WeightedPodAffinityTerm wt;
      wt.weight = w.value("weight", 0);
      auto term = parseAffinityTerm(w.value("podAffinityTerm", nlohmann::json::object()),
                                    tp + ".podAffinityTerm", pod.ns, pod.labels);
      if (!term) return term.status();
      wt.term = std::move(*term);
      preferred.push_back(std::move(wt));
    }
  }
  return Status::ok();
}

}  // namespace

// ---- Resources

void Resources::add(const Resources& o) {
  milliCpu += o.milliCpu;
  memory += o.memory;
  ephemeralStorage += o.ephemeralStorage;
  allowedPodNumber += o.allowedPodNumber;
  for (const auto& [k, v] : o.scalar) scalar[k] += v;
}

void Resources::subtract(const Resources& o) {
  milliCpu -= o.milliCpu;
  memory -= o.memory;
  ephemeralStorage -= o.ephemeralStorage;
  allowedPodNumber -= o.allowedPodNumber;
  for (const auto& [k, v] : o.scalar) {
    auto it = scalar.find(k);
    if (it == scalar.end()) continue;
    it->second -= v;
    if (it->second == 0) scalar.erase(it);
  }
}

bool Toleration::tolerates(const Taint& taint) const {
  if (!effect.empty() && effect != taint.effect) return false;
  if (!key.empty() && key != taint.key) return false;
  if (op == "Exists") return true;
  if (op.empty() || op == "Equal") return value == taint.value;
  return false;
}

bool HostPort::operator<(const HostPort& o) const {
  return std::tie(port, protocol, hostIP) < std::tie(o.port, o.protocol, o.hostIP);
}

// ---- resource lists

bool isScalarResourceName(const std::string& name) {
  if (name.rfind("hugepages-", 0) == 0) return true;
  if (name.rfind("attachable-volumes-", 0) == 0) return true;
  // Extended resources (a domain that is not kubernetes.io) and prefixed native ones
  // (kubernetes.io/...): both carry a '/'. Bare names other than cpu/memory/... are not
  // resources the scheduler accounts.
  return name.find('/') != std::string::npos;
}

namespace {

// addResourceList with the field path built only for an error: parsePod reads every
// container's requests twice per pod (its pending and its bound version).
template <typename PathFn>
Status addResources(const nlohmann::json& list, const PathFn& path, Resources& into, bool* hasCpu, bool* hasMemory) {
  if (list.is_null()) return Status::ok();
  if (!list.is_object()) return badField(path(), "must be an object");
  for (auto it = list.begin(); it != list.end(); ++it) {
    const std::string& name = it.key();
    auto q = it->is_string() ? api::Quantity::parse(it->get_ref<const std::string&>()) : api::Quantity::parse(it->dump());
    if (!q) return badField(path() + "[" + name + "]", q.status().message());
    if (name == "cpu") {
      into.milliCpu += q->milliValue();
      if (hasCpu) *hasCpu = true;
    } else if (name == "memory") {
      into.memory += q->value();
      if (hasMemory) *hasMemory = true;
    } else if (name == "ephemeral-storage") {
      into.ephemeralStorage += q->value();
    } else if (name == "pods") {
      into.allowedPodNumber += q->value();
    } else if (isScalarResourceName(name)) {
      into.scalar[name] += q->value();
    }
  }
  return Status::ok();
}

}  // namespace

Status addResourceList(const nlohmann::json& list, const std::string& path, Resources& into,
                       bool* hasCpu, bool* hasMemory) {
  return addResources(list, [&] { return path; }, into, hasCpu, hasMemory);
}

// Docker reference normalization, so "nginx", "library/nginx:latest" and
// "docker.io/library/nginx" all name the same image a node reports.
std::string normalizeImageName(const std::string& image) {
  if (image.empty()) return image;
  std::string name = image;
  std::string suffix;
  if (auto at = name.find('@'); at != std::string::npos) {
    suffix = name.substr(at);
    name = name.substr(0, at);
  }
  auto slash = name.find('/');
  std::string first = slash == std::string::npos ? std::string() : name.substr(0, slash);
  bool hasDomain = !first.empty() && (first.find('.') != std::string::npos ||
                                      first.find(':') != std::string::npos || first == "localhost" ||
                                      std::any_of(first.begin(), first.end(),
                                                  [](char c) { return c >= 'A' && c <= 'Z'; }));
  if (!hasDomain) {
    name = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + name;
  } else if (first == "index.docker.io") {
    name = "docker.io" + name.substr(slash);
  }
  if (name.rfind("docker.io/", 0) == 0 && name.find('/', 10) == std::string::npos) {
    name = "docker.io/library/" + name.substr(10);
  }
  auto lastColon = name.rfind(':');
  auto lastSlash = name.rfind('/');
  bool hasTag = lastColon != std::string::npos && (lastSlash == std::string::npos || lastColon > lastSlash);
  if (!hasTag && suffix.empty()) name += ":latest";
  return name + suffix;
}

Result<PodInfoPtr> parsePod(const nlohmann::json& pod) {
  return parsePod(std::make_shared<const nlohmann::json>(pod));
}

Result<PodInfoPtr> parsePod(std::shared_ptr<const nlohmann::json> shared) {
  if (!shared) return Status::badRequest("pod: must be an object");
  const nlohmann::json& pod = *shared;
  try {
    if (!pod.is_object()) return Status::badRequest("pod: must be an object");
    auto info = std::make_shared<PodInfo>();
    const nlohmann::json& meta = memberOrEmpty(pod, "metadata");
    const nlohmann::json& spec = memberOrEmpty(pod, "spec");
    const nlohmann::json& status = memberOrEmpty(pod, "status");
    info->name = stringMember(meta, "name");
    if (info->name.empty()) return badField("metadata.name", "Required value: name is required");
    info->ns = stringMember(meta, "namespace");
    if (info->ns.empty()) info->ns = "default";
    info->uid = stringMember(meta, "uid");
    if (info->uid.empty()) info->uid = info->ns + "/" + info->name;
    info->resourceVersion = stringMember(meta, "resourceVersion");
    if (auto l = meta.find("labels"); l != meta.end() && l->is_object()) {
      for (auto it = l->begin(); it != l->end(); ++it)
        if (it->is_string()) info->labels[it.key()] = it->get<std::string>();
    }
    info->terminating = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
    if (const std::string* t = stringRef(meta, "creationTimestamp")) api::parseTime(*t, &info->created);
    info->startTime = info->created;
    if (const std::string* t = stringRef(status, "startTime")) api::parseTime(*t, &info->startTime);
    if (auto refs = meta.find("ownerReferences"); refs != meta.end() && refs->is_array()) {
      for (const auto& r : *refs) {
        if (r.is_object() && r.value("controller", false)) {
          info->controllerKind = stringMember(r, "kind");
          info->controllerName = stringMember(r, "name");
          break;
        }
      }
    }

    info->nodeName = stringMember(spec, "nodeName");
    info->nominatedNodeName = stringMember(status, "nominatedNodeName");
    info->phase = stringMember(status, "phase");
    if (const std::string* scheduler = stringRef(spec, "schedulerName"); scheduler && !scheduler->empty())
      info->schedulerName = *scheduler;
    if (auto p = spec.find("priority"); p != spec.end() && p->is_number_integer()) info->priority = p->get<int32_t>();
    if (const std::string* policy = stringRef(spec, "preemptionPolicy"); policy && !policy->empty())
      info->preemptionPolicy = *policy;

    // Effective requests: containers summed, then the max with each init container (a
    // restartable init container, a sidecar, keeps running and adds to what follows it),
    // then the overhead.
    Resources sum, nonZeroSum;
    auto containerRequests = [&](const nlohmann::json& c, const char* list, size_t index, Resources& r,
                                 Resources& nz) -> Status {
      bool hasCpu = false, hasMemory = false;
      const nlohmann::json& requests = memberOrEmpty(memberOrEmpty(c, "resources"), "requests");
      auto path = [&] { return std::string(list) + "[" + std::to_string(index) + "].resources.requests"; };
      if (auto s = addResources(requests, path, r, &hasCpu, &hasMemory); !s) return s;
      nz = r;
      if (!hasCpu) nz.milliCpu = kDefaultMilliCpuRequest;
      if (!hasMemory) nz.memory = kDefaultMemoryRequest;
      return Status::ok();
    };
    auto addPorts = [&](const nlohmann::json& c) {
      auto ports = c.find("ports");
      if (ports == c.end() || !ports->is_array()) return;
      for (const auto& p : *ports) {
        int32_t hp = p.value("hostPort", 0);
        if (hp <= 0) continue;
        HostPort port;
        port.port = hp;
        std::string proto = stringMember(p, "protocol");
        if (!proto.empty()) port.protocol = proto;
        std::string ip = stringMember(p, "hostIP");
        if (!ip.empty()) port.hostIP = ip;
        info->hostPorts.push_back(port);
      }
    };
    size_t numContainers = 0;
    if (auto cs = spec.find("containers"); cs != spec.end() && cs->is_array()) {
      for (size_t i = 0; i < cs->size(); ++i) {
        Resources r, nz;
        if (auto s = containerRequests((*cs)[i], "spec.containers", i, r, nz); !s) return s;
        sum.add(r);
        nonZeroSum.add(nz);
        addPorts((*cs)[i]);
        ++numContainers;
      }
    }
    Resources initMax, initMaxNz, sidecars, sidecarsNz;
    std::vector<std::string> initImages;
    if (auto cs = spec.find("initContainers"); cs != spec.end() && cs->is_array()) {
      for (size_t i = 0; i < cs->size(); ++i) {
        const auto& c = (*cs)[i];
        Resources r, nz;
        if (auto s = containerRequests(c, "spec.initContainers", i, r, nz); !s) return s;
        if (stringMember(c, "restartPolicy") == "Always") {
          sum.add(r);
          nonZeroSum.add(nz);
          sidecars.add(r);
          sidecarsNz.add(nz);
          maxInto(initMax, sidecars);
          maxInto(initMaxNz, sidecarsNz);
          addPorts(c);
        } else {
          r.add(sidecars);
          nz.add(sidecarsNz);
          maxInto(initMax, r);
          maxInto(initMaxNz, nz);
        }
        initImages.push_back(normalizeImageName(stringMember(c, "image")));
      }
    }
    maxInto(sum, initMax);
    maxInto(nonZeroSum, initMaxNz);
    Resources overhead;
    if (auto s = addResources(memberOrEmpty(spec, "overhead"), [] { return std::string("spec.overhead"); }, overhead,
                              nullptr, nullptr);
        !s)
      return s;
    sum.add(overhead);
    nonZeroSum.add(overhead);
    sum.allowedPodNumber = nonZeroSum.allowedPodNumber = 0;
    info->requests = std::move(sum);
    info->nonZeroRequests = std::move(nonZeroSum);

    // ImageLocality counts init containers and containers, in that order.
    info->images = std::move(initImages);
    if (auto cs = spec.find("containers"); cs != spec.end() && cs->is_array())
      for (const auto& c : *cs) info->images.push_back(normalizeImageName(stringMember(c, "image")));
    (void)numContainers;

    if (auto t = spec.find("tolerations"); t != spec.end() && t->is_array()) {
      for (const auto& tj : *t) {
        if (!tj.is_object()) continue;
        Toleration tol;
        if (const std::string* v = stringRef(tj, "key")) tol.key = *v;
        if (const std::string* v = stringRef(tj, "operator"); v && !v->empty()) tol.op = *v;
        if (const std::string* v = stringRef(tj, "value")) tol.value = *v;
        if (const std::string* v = stringRef(tj, "effect")) tol.effect = *v;
        if (auto s = tj.find("tolerationSeconds"); s != tj.end() && s->is_number_integer())
          tol.tolerationSeconds = s->get<int64_t>();
        info->tolerations.push_back(std::move(tol));
      }
    }
    if (auto ns = spec.find("nodeSelector"); ns != spec.end() && ns->is_object()) {
      for (auto it = ns->begin(); it != ns->end(); ++it)
        if (it->is_string()) info->nodeSelector[it.key()] = it->get<std::string>();
    }

    if (auto aff = spec.find("affinity"); aff != spec.end() && aff->is_object()) {
      if (auto na = aff->find("nodeAffinity"); na != aff->end() && na->is_object()) {
        if (auto req = na->find("requiredDuringSchedulingIgnoredDuringExecution");
            req != na->end() && req->is_object()) {
          const auto& terms = req->value("nodeSelectorTerms", nlohmann::json::array());
          for (size_t i = 0; i < terms.size(); ++i) {
            auto term = parseNodeSelectorTerm(terms[i], "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[" + std::to_string(i) + "]");
            if (!term) return term.status();
            info->requiredNodeAffinity.push_back(std::move(*term));
          }
          // A required affinity with no terms matches no node (kube: an empty
          // nodeSelectorTerms list selects nothing); keep one empty term to say so.
          if (terms.empty()) info->requiredNodeAffinity.push_back({});
        }
        if (auto pref = na->find("preferredDuringSchedulingIgnoredDuringExecution");
            pref != na->end() && pref->is_array()) {
          for (size_t i = 0; i < pref->size(); ++i) {
            const auto& pj = (*pref)[i];
            PreferredSchedulingTerm pt;
            pt.weight = pj.value("weight", 0);
            auto term = parseNodeSelectorTerm(pj.value("preference", nlohmann::json()), "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[" + std::to_string(i) + "].preference");
            if (!term) return term.status();
            pt.preference = std::move(*term);
            info->preferredNodeAffinity.push_back(std::move(pt));
          }
        }
      }
      if (auto s = parseAffinityTerms(*aff, "podAffinity", "spec.affinity", *info, info->requiredAffinity,
                                      info->preferredAffinity); !s)
        return s;
      if (auto s = parseAffinityTerms(*aff, "podAntiAffinity", "spec.affinity", *info,
                                      info->requiredAntiAffinity, info->preferredAntiAffinity); !s)
        return s;
    }

    if (auto tsc = spec.find("topologySpreadConstraints"); tsc != spec.end() && tsc->is_array()) {
      for (size_t i = 0; i < tsc->size(); ++i) {
        const auto& cj = (*tsc)[i];
        std::string path = "spec.topologySpreadConstraints[" + std::to_string(i) + "]";
        if (!cj.is_object()) return badField(path, "must be an object");
        TopologySpreadConstraint c;
        c.maxSkew = cj.value("maxSkew", 1);
        c.topologyKey = stringMember(cj, "topologyKey");
        std::string wu = stringMember(cj, "whenUnsatisfiable");
        if (!wu.empty()) c.whenUnsatisfiable = wu;
        if (auto md = cj.find("minDomains"); md != cj.end() && md->is_number_integer()) c.minDomains = md->get<int32_t>();
        std::string nap = stringMember(cj, "nodeAffinityPolicy"), ntp = stringMember(cj, "nodeTaintsPolicy");
        if (!nap.empty()) c.nodeAffinityPolicy = nap;
        if (!ntp.empty()) c.nodeTaintsPolicy = ntp;
        auto mlk = stringList(cj, "matchLabelKeys", path);
        if (!mlk) return mlk.status();
        c.matchLabelKeys = std::move(*mlk);
        auto sel = cj.find("labelSelector");
        if (sel == cj.end() || sel->is_null()) {
          c.labelSelector = api::LabelSelector::nothing();
        } else {
          nlohmann::json merged = *sel;
          // matchLabelKeys: the pod's values for these keys join the selector.
          for (const auto& k : c.matchLabelKeys) {
            auto it = info->labels.find(k);
            if (it != info->labels.end())
              merged["matchExpressions"].push_back({{"key", k}, {"operator", "In"}, {"values", {it->second}}});
          }
          auto parsed = api::LabelSelector::fromJson(merged);
          if (!parsed) return badField(path + ".labelSelector", parsed.status().message());
          c.labelSelector = std::move(*parsed);
        }
        info->topologySpread.push_back(std::move(c));
      }
    }

    info->object = std::move(shared);
    return PodInfoPtr(std::move(info));
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("pod: ") + e.what());
  }
}

}  // namespace orrery::scheduler
