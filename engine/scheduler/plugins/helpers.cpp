#include "engine/scheduler/plugins/helpers.h"

#include <algorithm>
#include <charconv>

namespace orrery::scheduler {

namespace {

bool parseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool contains(const std::vector<std::string>& values, const std::string& v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

bool requirementMatches(const NodeSelectorRequirement& r, const std::map<std::string, std::string>& labels) {
  auto it = labels.find(r.key);
  bool has = it != labels.end();
  if (r.op == "In") return has && contains(r.values, it->second);
  if (r.op == "NotIn") return !has || !contains(r.values, it->second);
  if (r.op == "Exists") return has;
  if (r.op == "DoesNotExist") return !has;
  if (r.op == "Gt" || r.op == "Lt") {
    if (!has || r.values.size() != 1) return false;
    int64_t labelValue = 0, bound = 0;
    if (!parseInt(it->second, &labelValue) || !parseInt(r.values[0], &bound)) return false;
    return r.op == "Gt" ? labelValue > bound : labelValue < bound;
  }
  return false;  // an unknown operator makes the term invalid: it matches nothing
}

}  // namespace

bool selectorMatches(const api::LabelSelector& selector, const std::map<std::string, std::string>& labels) {
  if (selector.matchesNothing()) return false;
  using Op = api::LabelSelector::Requirement::Op;
  for (const auto& r : selector.requirements()) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    switch (r.op) {
      case Op::kEquals:
      case Op::kDoubleEquals:
      case Op::kIn:
        if (!has || !contains(r.values, it->second)) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (has && contains(r.values, it->second)) return false;
        break;
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kDoesNotExist:
        if (has) return false;
        break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        int64_t v = 0, bound = 0;
        if (!has || r.values.empty() || !parseInt(it->second, &v) || !parseInt(r.values[0], &bound)) return false;
        if (r.op == Op::kGreaterThan ? !(v > bound) : !(v < bound)) return false;
        break;
      }
    }
  }
  return true;
}

bool nodeSelectorTermMatches(const NodeSelectorTerm& term, const NodeInfo& node) {
  if (term.matchExpressions.empty() && term.matchFields.empty()) return false;
  for (const auto& r : term.matchExpressions)
    if (!requirementMatches(r, node.labels)) return false;
  for (const auto& r : term.matchFields) {
    if (r.key != "metadata.name") return false;
    std::map<std::string, std::string> fields{{"metadata.name", node.name}};
    if (r.op != "In" && r.op != "NotIn") return false;
    if (!requirementMatches(r, fields)) return false;
  }
  return true;
}

bool nodeSelectorTermsMatch(const std::vector<NodeSelectorTerm>& terms, const NodeInfo& node) {
  for (const auto& t : terms)
    if (nodeSelectorTermMatches(t, node)) return true;
  return false;
}

bool podMatchesNodeSelectorAndAffinity(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& [k, v] : pod.nodeSelector) {
    auto it = node.labels.find(k);
    if (it == node.labels.end() || it->second != v) return false;
  }
  if (!pod.requiredNodeAffinity.empty() && !nodeSelectorTermsMatch(pod.requiredNodeAffinity, node)) return false;
  return true;
}

bool tolerationsTolerate(const std::vector<Toleration>& tolerations, const Taint& taint) {
  for (const auto& t : tolerations)
    if (t.tolerates(taint)) return true;
  return false;
}

const Taint* findUntoleratedNoScheduleTaint(const std::vector<Taint>& taints,
                                            const std::vector<Toleration>& tolerations) {
  for (const auto& taint : taints) {
    if (taint.effect != "NoSchedule" && taint.effect != "NoExecute") continue;
    if (!tolerationsTolerate(tolerations, taint)) return &taint;
  }
  return nullptr;
}

bool affinityTermMatches(const PodAffinityTerm& term, const PodInfo& pod,
                         const std::map<std::string, std::string>* namespaceLabels) {
  bool nsOk = contains(term.namespaces, pod.ns);
  if (!nsOk && term.namespaceSelector) {
    static const std::map<std::string, std::string> kNone;
    nsOk = selectorMatches(*term.namespaceSelector, namespaceLabels ? *namespaceLabels : kNone);
  }
  return nsOk && selectorMatches(term.labelSelector, pod.labels);
}

void defaultNormalizeScore(std::vector<int64_t>& scores, bool reverse) {
  int64_t maxCount = 0;
  for (auto s : scores) maxCount = std::max(maxCount, s);
  if (maxCount == 0) {
    if (reverse)
      for (auto& s : scores) s = kMaxNodeScore;
    return;
  }
  for (auto& s : scores) {
    s = kMaxNodeScore * s / maxCount;
    if (reverse) s = kMaxNodeScore - s;
  }
}

bool hostPortConflicts(const std::map<HostPort, int>& used, const HostPort& port) {
  if (used.empty()) return false;
  // Every entry for this port number and protocol: a wildcard on either side conflicts,
  // otherwise the addresses must be equal.
  HostPort lo{port.protocol, "", port.port};
  for (auto it = used.lower_bound(lo); it != used.end(); ++it) {
    const HostPort& u = it->first;
    if (u.port != port.port || u.protocol != port.protocol) break;
    if (it->second <= 0) continue;
    if (port.hostIP == "0.0.0.0" || u.hostIP == "0.0.0.0" || u.hostIP == port.hostIP) return true;
  }
  return false;
}

bool moreImportantPod(const PodInfo& a, const PodInfo& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.startTime < b.startTime;
}

const std::string* stringRef(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

std::string stringMember(const nlohmann::json& j, const char* key) {
  const std::string* s = stringRef(j, key);
  return s ? *s : std::string();
}

const Snapshot* cycleSnapshot(const CycleState& state) {
  auto* ref = state.read<SnapshotRef>(kSnapshotStateKey);
  return ref ? ref->snapshot : nullptr;
}

Result<int64_t> argInt(const nlohmann::json& args, const char* field, int64_t defaultValue,
                       int64_t min, int64_t max) {
  if (!args.is_object()) return defaultValue;
  auto it = args.find(field);
  if (it == args.end() || it->is_null()) return defaultValue;
  if (!it->is_number_integer())
    return Status::badRequest(std::string(field) + ": Invalid value: " + it->dump() + ": must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < min || v > max)
    return Status::badRequest(std::string(field) + ": Invalid value: " + std::to_string(v) + ": not in valid range [" +
                              std::to_string(min) + "-" + std::to_string(max) + "]");
  return v;
}

void signValue(std::string& signature, const std::string& value) {
  signature += std::to_string(value.size());
  signature += ':';
  signature += value;
}

void signNumber(std::string& signature, int64_t value) {
  signature += std::to_string(value);
  signature += ';';
}

void signResources(std::string& signature, const Resources& resources) {
  signNumber(signature, resources.milliCpu);
  signNumber(signature, resources.memory);
  signNumber(signature, resources.ephemeralStorage);
  signNumber(signature, static_cast<int64_t>(resources.scalar.size()));
  for (const auto& [name, quantity] : resources.scalar) {
    signValue(signature, name);
    signNumber(signature, quantity);
  }
}

void signTolerations(std::string& signature, const std::vector<Toleration>& tolerations) {
  signNumber(signature, static_cast<int64_t>(tolerations.size()));
  for (const auto& t : tolerations) {
    signValue(signature, t.key);
    signValue(signature, t.op);
    signValue(signature, t.value);
    signValue(signature, t.effect);
    signNumber(signature, t.tolerationSeconds.has_value());
    signNumber(signature, t.tolerationSeconds.value_or(0));
  }
}

void signNodeSelectorTerm(std::string& signature, const NodeSelectorTerm& term) {
  for (const auto* requirements : {&term.matchExpressions, &term.matchFields}) {
    signNumber(signature, static_cast<int64_t>(requirements->size()));
    for (const auto& r : *requirements) {
      signValue(signature, r.key);
      signValue(signature, r.op);
      signNumber(signature, static_cast<int64_t>(r.values.size()));
      for (const auto& v : r.values) signValue(signature, v);
    }
  }
}

}  // namespace orrery::scheduler
