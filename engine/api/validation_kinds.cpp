// validateKind: the semantic validation kube-apiserver runs per kind (pkg/apis/*/validation),
// with its cause types, field paths and messages. The schema layer checks types and unknown
// fields; this file checks what a schema cannot say.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>

#include "engine/api/cron_schedule.h"
#include "engine/api/kinds.h"
#include "engine/api/quantity.h"
#include "engine/api/selector.h"
#include "engine/api/time_zone.h"
#include "engine/api/validation.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;
using Causes = std::vector<StatusCause>;
namespace v = validation;

const json& at(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string str(const json& o, const char* key) {
  const json& x = at(o, key);
  return x.is_string() ? x.get<std::string>() : std::string();
}

bool has(const json& o, const char* key) { return !at(o, key).is_null(); }

std::string idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }
std::string key(const std::string& path, const std::string& k) { return path + "[" + k + "]"; }

void nonNegative(const json& o, const char* field, const std::string& path, Causes& out) {
  const json& x = at(o, field);
  if (x.is_number() && x.get<double>() < 0)
    out.push_back(v::invalidRaw(path, x.dump(), "must be greater than or equal to 0"));
}

void addEach(const std::vector<std::string>& msgs, const std::string& path, const json& value, Causes& out) {
  for (const auto& m : msgs) out.push_back(v::invalid(path, value, m));
}

// %#v of an intstr.IntOrString, as kube prints a bad maxSurge / maxUnavailable.
std::string goIntOrString(const json& x) {
  if (x.is_string())
    return "intstr.IntOrString{Type:1, IntVal:0, StrVal:" + v::goQuote(x.get<std::string>()) + "}";
  return "intstr.IntOrString{Type:0, IntVal:" + (x.is_number() ? x.dump() : std::string("0")) + ", StrVal:\"\"}";
}

// %#v of a metav1.LabelSelector (what `field is immutable` on spec.selector prints).
std::string goLabelSelector(const json& sel) {
  std::string out = "v1.LabelSelector{MatchLabels:";
  const json& ml = at(sel, "matchLabels");
  out += ml.is_object() && !ml.empty() ? v::goValue(ml) : "map[string]string(nil)";
  out += ", MatchExpressions:";
  const json& me = at(sel, "matchExpressions");
  if (me.is_array() && !me.empty()) {
    out += "[]v1.LabelSelectorRequirement{";
    for (size_t i = 0; i < me.size(); ++i) {
      if (i) out += ", ";
      const json& vals = at(me[i], "values");
      out += "v1.LabelSelectorRequirement{Key:" + v::goQuote(str(me[i], "key")) +
             ", Operator:" + v::goQuote(str(me[i], "operator")) + ", Values:" +
             (vals.is_array() && !vals.empty() ? v::goValue(vals) : "[]string(nil)") + "}";
    }
    out += "}";
  } else {
    out += "[]v1.LabelSelectorRequirement(nil)";
  }
  return out + "}";
}

std::string goLabels(const json& labels) {
  return labels.is_object() && !labels.empty() ? v::goValue(labels) : "map[string]string(nil)";
}

// ---------------------------------------------------------------- metadata

enum class NameRule { kSubdomain, kLabel, kDns1035, kPathSegment };

NameRule nameRule(const ResourceInfo& info) {
  if (info.custom) return NameRule::kSubdomain;
  if (info.group.empty() && info.kind == "Namespace") return NameRule::kLabel;
  if (info.group.empty() && info.kind == "Service") return NameRule::kDns1035;
  if (info.group == "rbac.authorization.k8s.io") return NameRule::kPathSegment;
  return NameRule::kSubdomain;
}

std::vector<std::string> checkName(NameRule rule, const std::string& name) {
  switch (rule) {
    case NameRule::kLabel: return isDns1123Label(name);
    case NameRule::kDns1035: return isDns1035Label(name);
    case NameRule::kPathSegment: return v::isValidPathSegmentName(name);
    case NameRule::kSubdomain: break;
  }
  return isDns1123Subdomain(name);
}

void validateMeta(const ResourceInfo& info, const json& object, Causes& out) {
  const json& meta = at(object, "metadata");
  std::string name = str(meta, "name");
  if (name.empty()) {
    out.push_back(v::required("metadata.name", "name or generateName is required"));
  } else {
    addEach(checkName(nameRule(info), name), "metadata.name", name, out);
  }
  v::validateLabels(at(meta, "labels"), "metadata.labels", out);
  v::validateAnnotations(at(meta, "annotations"), "metadata.annotations", out);
  const json& fin = at(meta, "finalizers");
  if (fin.is_array()) {
    for (const auto& f : fin) {
      std::string s = f.is_string() ? f.get<std::string>() : f.dump();
      auto msgs = v::isQualifiedName(s);
      addEach(msgs, "metadata.finalizers", s, out);
      // Built-in kinds also refuse unqualified names other than kube's own.
      if (msgs.empty() && !info.custom && s.find('/') == std::string::npos &&
          s != "kubernetes" && s != "orphan" && s != "foregroundDeletion")
        out.push_back(v::invalid("metadata.finalizers", s,
                                 "name is neither a standard finalizer name nor is it fully qualified"));
    }
  }
}

// ---------------------------------------------------------------- pods

void validateResources(const json& res, const std::string& path, Causes& out) {
  std::map<std::string, Quantity> limits;
  const json& lim = at(res, "limits");
  const json& req = at(res, "requests");
  auto parseList = [&](const json& list, const std::string& p, std::map<std::string, Quantity>* keep) {
    if (!list.is_object()) return;
    for (const auto& [name, val] : list.items()) {
      std::string text = val.is_string() ? val.get<std::string>() : val.dump();
      auto q = Quantity::parse(text);
      if (!q.ok()) {
        out.push_back(v::invalid(key(p, name), text, q.status().message()));
        continue;
      }
      if (q->sign() < 0) out.push_back(v::invalid(key(p, name), q->toString(), "must be greater than or equal to 0"));
      if (keep) keep->emplace(name, *q);
    }
  };
  parseList(lim, path + ".limits", &limits);
  std::map<std::string, Quantity> requests;
  parseList(req, path + ".requests", &requests);
  for (const auto& [name, q] : requests) {
    auto l = limits.find(name);
    if (l == limits.end()) continue;
    // Extended resources (not cpu, memory, ephemeral-storage, hugepages-*) cannot overcommit.
    bool overcommit = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
                      name.rfind("hugepages-", 0) == 0 || name.find('/') == std::string::npos;
    if (!overcommit && q.compare(l->second) != 0) {
      out.push_back(v::invalid(path + ".requests", q.toString(),
                               "must be equal to " + name + " limit of " + l->second.toString()));
    } else if (q.compare(l->second) > 0) {
      out.push_back(v::invalid(path + ".requests", q.toString(),
                               "must be less than or equal to " + name + " limit of " + l->second.toString()));
    }
  }
}

void validatePorts(const json& ports, const std::string& path, Causes& out) {
  if (!ports.is_array()) return;
  std::set<std::string> names;
  for (size_t i = 0; i < ports.size(); ++i) {
    const json& p = ports[i];
    std::string pp = idx(path, i);
    std::string name = str(p, "name");
    if (!name.empty()) {
      auto msgs = v::isValidPortName(name);
      if (!msgs.empty()) addEach(msgs, pp + ".name", name, out);
      else if (!names.insert(name).second) out.push_back(v::duplicate(pp + ".name", name));
    }
    const json& cp = at(p, "containerPort");
    if (!cp.is_number() || cp.get<int64_t>() == 0) {
      out.push_back(v::required(pp + ".containerPort"));
    } else {
      for (const auto& m : v::isValidPortNum(cp.get<int64_t>()))
        out.push_back(v::invalidRaw(pp + ".containerPort", cp.dump(), m));
    }
    const json& hp = at(p, "hostPort");
    if (hp.is_number() && hp.get<int64_t>() != 0)
      for (const auto& m : v::isValidPortNum(hp.get<int64_t>()))
        out.push_back(v::invalidRaw(pp + ".hostPort", hp.dump(), m));
    std::string proto = str(p, "protocol");
    if (proto.empty()) out.push_back(v::required(pp + ".protocol"));
    else if (proto != "TCP" && proto != "UDP" && proto != "SCTP")
      out.push_back(v::notSupported(pp + ".protocol", proto, {"SCTP", "TCP", "UDP"}));
  }
}

void validateContainer(const json& c, const std::string& pp, std::set<std::string>& names,
                       const std::set<std::string>& volumes, Causes& out) {
  std::string name = str(c, "name");
  if (name.empty()) {
    out.push_back(v::required(pp + ".name"));
  } else {
    auto msgs = isDns1123Label(name);
    addEach(msgs, pp + ".name", name, out);
    if (msgs.empty() && !names.insert(name).second) out.push_back(v::duplicate(pp + ".name", name));
  }
  if (str(c, "image").empty()) out.push_back(v::required(pp + ".image"));
  std::string pull = str(c, "imagePullPolicy");
  if (pull.empty()) out.push_back(v::required(pp + ".imagePullPolicy"));
  else if (pull != "Always" && pull != "IfNotPresent" && pull != "Never")
    out.push_back(v::notSupported(pp + ".imagePullPolicy", pull, {"Always", "IfNotPresent", "Never"}));
  std::string tmp = str(c, "terminationMessagePolicy");
  if (tmp.empty()) out.push_back(v::required(pp + ".terminationMessagePolicy"));
  else if (tmp != "File" && tmp != "FallbackToLogsOnError")
    out.push_back(v::notSupported(pp + ".terminationMessagePolicy", tmp, {"File", "FallbackToLogsOnError"}));
  validatePorts(at(c, "ports"), pp + ".ports", out);
  const json& env = at(c, "env");
  if (env.is_array()) {
    for (size_t i = 0; i < env.size(); ++i) {
      std::string en = str(env[i], "name");
      std::string ep = idx(pp + ".env", i);
      if (en.empty()) {
        out.push_back(v::required(ep + ".name"));
        continue;
      }
      bool ok = true;
      for (unsigned char ch : en) ok = ok && ch >= 32 && ch <= 126 && ch != '=';
      if (!ok)
        out.push_back(v::invalid(ep + ".name", en,
                                 "a valid environment variable name must consist only of printable ASCII "
                                 "characters other than '='"));
    }
  }
  const json& mounts = at(c, "volumeMounts");
  if (mounts.is_array()) {
    std::set<std::string> paths;
    for (size_t i = 0; i < mounts.size(); ++i) {
      std::string mp = idx(pp + ".volumeMounts", i);
      std::string vn = str(mounts[i], "name");
      if (vn.empty()) out.push_back(v::required(mp + ".name"));
      else if (!volumes.count(vn))
        out.push_back({"FieldValueNotFound", "Not found: " + v::goQuote(vn), mp + ".name"});
      std::string path = str(mounts[i], "mountPath");
      if (path.empty()) out.push_back(v::required(mp + ".mountPath"));
      else if (!paths.insert(path).second) out.push_back(v::invalid(mp + ".mountPath", path, "must be unique"));
    }
  }
  validateResources(at(c, "resources"), pp + ".resources", out);
}

void validatePodSpec(const json& spec, const std::string& path, Causes& out) {
  std::set<std::string> volumes;
  const json& vols = at(spec, "volumes");
  if (vols.is_array()) {
    for (size_t i = 0; i < vols.size(); ++i) {
      std::string vp = idx(path + ".volumes", i);
      std::string name = str(vols[i], "name");
      if (name.empty()) {
        out.push_back(v::required(vp + ".name"));
        continue;
      }
      auto msgs = isDns1123Label(name);
      addEach(msgs, vp + ".name", name, out);
      if (msgs.empty() && !volumes.insert(name).second) out.push_back(v::duplicate(vp + ".name", name));
    }
  }
  std::set<std::string> names;
  const json& containers = at(spec, "containers");
  if (!containers.is_array() || containers.empty()) {
    out.push_back(v::required(path + ".containers"));
  } else {
    for (size_t i = 0; i < containers.size(); ++i)
      validateContainer(containers[i], idx(path + ".containers", i), names, volumes, out);
  }
  const json& inits = at(spec, "initContainers");
  if (inits.is_array())
    for (size_t i = 0; i < inits.size(); ++i)
      validateContainer(inits[i], idx(path + ".initContainers", i), names, volumes, out);

  std::string rp = str(spec, "restartPolicy");
  if (rp.empty()) out.push_back(v::required(path + ".restartPolicy"));
  else if (rp != "Always" && rp != "OnFailure" && rp != "Never")
    out.push_back(v::notSupported(path + ".restartPolicy", rp, {"Always", "OnFailure", "Never"}));
  std::string dns = str(spec, "dnsPolicy");
  if (dns.empty()) out.push_back(v::required(path + ".dnsPolicy"));
  else if (dns != "ClusterFirstWithHostNet" && dns != "ClusterFirst" && dns != "Default" && dns != "None")
    out.push_back(v::notSupported(path + ".dnsPolicy", dns,
                                  {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"}));
  v::validateLabels(at(spec, "nodeSelector"), path + ".nodeSelector", out);
  std::string sa = str(spec, "serviceAccountName");
  if (!sa.empty()) addEach(isDns1123Subdomain(sa), path + ".serviceAccountName", sa, out);
  const json& ads = at(spec, "activeDeadlineSeconds");
  if (ads.is_number() && (ads.get<int64_t>() < 1 || ads.get<int64_t>() > 2147483647))
    out.push_back(v::invalidRaw(path + ".activeDeadlineSeconds", ads.dump(),
                                "must be between 1 and 2147483647, inclusive"));
  for (const char* f : {"hostname", "subdomain"}) {
    std::string s = str(spec, f);
    if (!s.empty()) addEach(isDns1123Label(s), path + "." + f, s, out);
  }
  const json& tols = at(spec, "tolerations");
  if (tols.is_array()) {
    for (size_t i = 0; i < tols.size(); ++i) {
      std::string tp = idx(path + ".tolerations", i);
      std::string op = str(tols[i], "operator");
      if (!op.empty() && op != "Equal" && op != "Exists")
        out.push_back(v::notSupported(tp + ".operator", op, {"Equal", "Exists"}));
      if (op == "Exists" && !str(tols[i], "value").empty())
        out.push_back(v::invalid(tp + ".operator", str(tols[i], "value"),
                                 "value must be empty when `operator` is 'Exists'"));
      std::string k = str(tols[i], "key");
      if (!k.empty()) addEach(v::isQualifiedName(k), tp + ".key", k, out);
      else if (op != "Exists")
        out.push_back(v::invalid(tp + ".operator", op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
    }
  }
}

void validatePodTemplate(const json& tmpl, const std::string& path, Causes& out) {
  const json& meta = at(tmpl, "metadata");
  v::validateLabels(at(meta, "labels"), path + ".metadata.labels", out);
  v::validateAnnotations(at(meta, "annotations"), path + ".metadata.annotations", out);
  validatePodSpec(at(tmpl, "spec"), path + ".spec", out);
}

// ValidatePodTemplateSpecForReplicaSet and the selector rules the workload kinds share.
void validateWorkloadSelector(const json& spec, const std::string& kindWord, bool selectorRequired,
                              Causes& out) {
  const json& sel = at(spec, "selector");
  if (sel.is_null()) {
    if (selectorRequired) out.push_back(v::required("spec.selector"));
  } else {
    v::validateLabelSelector(sel, "spec.selector", out);
    size_t n = (at(sel, "matchLabels").is_object() ? at(sel, "matchLabels").size() : 0) +
               (at(sel, "matchExpressions").is_array() ? at(sel, "matchExpressions").size() : 0);
    if (n == 0)
      out.push_back(v::invalidRaw("spec.selector", goLabelSelector(sel),
                                  "empty selector is invalid for " + kindWord));
  }
  auto selector = LabelSelector::fromJson(sel);
  const json& tmplLabels = at(at(at(spec, "template"), "metadata"), "labels");
  if (!selector.ok()) {
    out.push_back(v::invalidRaw("spec.selector", goLabelSelector(sel), "invalid label selector"));
  } else if (!selector->empty() && !selector->matches(tmplLabels.is_object() ? tmplLabels : json::object())) {
    out.push_back(v::invalidRaw("spec.template.metadata.labels", goLabels(tmplLabels),
                                "`selector` does not match template `labels`"));
  }
}

void requireRestartPolicy(const json& spec, const std::string& path, const std::vector<std::string>& allowed,
                          Causes& out) {
  std::string rp = str(at(at(spec, "template"), "spec"), "restartPolicy");
  if (std::find(allowed.begin(), allowed.end(), rp) == allowed.end() && !rp.empty())
    out.push_back(v::notSupported(path, rp, allowed));
}

bool validPercentOrInt(const json& x, const std::string& path, Causes& out) {
  if (x.is_string()) {
    std::string s = x.get<std::string>();
    bool ok = s.size() >= 2 && s.back() == '%';
    for (size_t i = 0; ok && i + 1 < s.size(); ++i) ok = s[i] >= '0' && s[i] <= '9';
    if (!ok) {
      out.push_back(v::invalidRaw(path, goIntOrString(x),
                                  "a valid percent string must be a numeric string followed by an ending '%' "
                                  "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
      return false;
    }
  } else if (x.is_number() && x.get<int64_t>() < 0) {
    out.push_back(v::invalidRaw(path, x.dump(), "must be greater than or equal to 0"));
    return false;
  }
  return true;
}

int64_t intOrPercentValue(const json& x) {
  if (x.is_number()) return x.get<int64_t>();
  if (x.is_string()) {
    std::string s = x.get<std::string>();
    if (!s.empty() && s.back() == '%') s.pop_back();
    try {
      return std::stoll(s);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

void validateDeployment(const json& d, Causes& out) {
  const json& spec = at(d, "spec");
  nonNegative(spec, "replicas", "spec.replicas", out);
  validateWorkloadSelector(spec, "deployment", true, out);
  validatePodTemplate(at(spec, "template"), "spec.template", out);
  requireRestartPolicy(spec, "spec.template.spec.restartPolicy", {"Always"}, out);
  if (has(at(at(spec, "template"), "spec"), "activeDeadlineSeconds"))
    out.push_back(v::forbidden("spec.template.spec.activeDeadlineSeconds",
                               "activeDeadlineSeconds in ReplicaSet is not Supported"));
  const json& strategy = at(spec, "strategy");
  std::string type = str(strategy, "type");
  if (type == "Recreate") {
    if (has(strategy, "rollingUpdate"))
      out.push_back(v::forbidden("spec.strategy.rollingUpdate",
                                 "may not be specified when strategy `type` is 'Recreate'"));
  } else if (type == "RollingUpdate") {
    const json& ru = at(strategy, "rollingUpdate");
    if (ru.is_null()) {
      out.push_back(v::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
    } else {
      const json& mu = at(ru, "maxUnavailable");
      const json& ms = at(ru, "maxSurge");
      bool okU = validPercentOrInt(mu, "spec.strategy.rollingUpdate.maxUnavailable", out);
      validPercentOrInt(ms, "spec.strategy.rollingUpdate.maxSurge", out);
      if (intOrPercentValue(mu) == 0 && intOrPercentValue(ms) == 0)
        out.push_back(v::invalidRaw("spec.strategy.rollingUpdate.maxUnavailable", goIntOrString(mu),
                                    "may not be 0 when `maxSurge` is 0"));
      if (okU && mu.is_string() && intOrPercentValue(mu) > 100)
        out.push_back(v::invalidRaw("spec.strategy.rollingUpdate.maxUnavailable", goIntOrString(mu),
                                    "must not be greater than 100%"));
    }
  } else {
    out.push_back({"FieldValueNotSupported",
                   "Unsupported value: apps.DeploymentStrategy{Type:" + v::goQuote(type) +
                       ", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "
                       "\"Recreate\", \"RollingUpdate\"",
                   "spec.strategy"});
  }
  nonNegative(spec, "minReadySeconds", "spec.minReadySeconds", out);
  nonNegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", out);
  const json& pds = at(spec, "progressDeadlineSeconds");
  if (pds.is_number()) {
    nonNegative(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", out);
    int64_t mrs = at(spec, "minReadySeconds").is_number() ? at(spec, "minReadySeconds").get<int64_t>() : 0;
    if (pds.get<int64_t>() <= mrs)
      out.push_back(v::invalidRaw("spec.progressDeadlineSeconds", pds.dump(), "must be greater than minReadySeconds"));
  }
}

void validateReplicaSet(const json& rs, bool rc, Causes& out) {
  const json& spec = at(rs, "spec");
  nonNegative(spec, "replicas", "spec.replicas", out);
  nonNegative(spec, "minReadySeconds", "spec.minReadySeconds", out);
  if (rc) {
    // ReplicationController: a map selector that must match the template.
    const json& sel = at(spec, "selector");
    v::validateLabels(sel, "spec.selector", out);
    if (!sel.is_object() || sel.empty()) out.push_back(v::required("spec.selector"));
    const json& tl = at(at(at(spec, "template"), "metadata"), "labels");
    if (sel.is_object() && !sel.empty()) {
      for (const auto& [k, val] : sel.items()) {
        if (!tl.is_object() || !tl.contains(k) || tl[k] != val) {
          out.push_back(v::invalidRaw("spec.template.metadata.labels", goLabels(tl),
                                      "`selector` does not match template `labels`"));
          break;
        }
      }
    }
  } else {
    validateWorkloadSelector(spec, "deployment", true, out);
  }
  if (has(spec, "template") || !rc) {
    validatePodTemplate(at(spec, "template"), "spec.template", out);
    requireRestartPolicy(spec, "spec.template.spec.restartPolicy", {"Always"}, out);
  }
}

void validateStatefulSet(const json& s, Causes& out) {
  const json& spec = at(s, "spec");
  std::string pmp = str(spec, "podManagementPolicy");
  if (pmp != "OrderedReady" && pmp != "Parallel")
    out.push_back(v::invalid("spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'"));
  std::string ust = str(at(spec, "updateStrategy"), "type");
  if (ust != "RollingUpdate" && ust != "OnDelete")
    out.push_back(v::invalid("spec.updateStrategy.type", ust, "must be 'RollingUpdate' or 'OnDelete'"));
  if (ust == "OnDelete" && has(at(spec, "updateStrategy"), "rollingUpdate"))
    out.push_back(v::invalid("spec.updateStrategy.rollingUpdate", at(spec, "updateStrategy")["rollingUpdate"].dump(),
                             "only allowed for updateStrategy 'RollingUpdate'"));
  nonNegative(spec, "replicas", "spec.replicas", out);
  nonNegative(spec, "minReadySeconds", "spec.minReadySeconds", out);
  validateWorkloadSelector(spec, "statefulset", true, out);
  validatePodTemplate(at(spec, "template"), "spec.template", out);
  requireRestartPolicy(spec, "spec.template.spec.restartPolicy", {"Always"}, out);
  if (has(at(at(spec, "template"), "spec"), "activeDeadlineSeconds"))
    out.push_back(v::forbidden("spec.template.spec.activeDeadlineSeconds",
                               "activeDeadlineSeconds in StatefulSet is not Supported"));
}

void validateDaemonSet(const json& d, Causes& out) {
  const json& spec = at(d, "spec");
  validateWorkloadSelector(spec, "daemonset", false, out);
  validatePodTemplate(at(spec, "template"), "spec.template", out);
  requireRestartPolicy(spec, "spec.template.spec.restartPolicy", {"Always"}, out);
  if (has(at(at(spec, "template"), "spec"), "activeDeadlineSeconds"))
    out.push_back(v::forbidden("spec.template.spec.activeDeadlineSeconds",
                               "activeDeadlineSeconds in DaemonSet is not Supported"));
  nonNegative(spec, "minReadySeconds", "spec.minReadySeconds", out);
  nonNegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", out);
  const json& us = at(spec, "updateStrategy");
  std::string t = str(us, "type");
  if (t != "RollingUpdate" && t != "OnDelete")
    out.push_back(v::notSupported("spec.updateStrategy.type", t, {"OnDelete", "RollingUpdate"}));
}

// validateJobSpec (shared by jobs and cronjobs' job templates).
// kube-apiserver's validatePodFailurePolicyRuleOnExitCodes.
void validateOnExitCodes(const json& req, const std::string& path, const std::set<std::string>& containerNames,
                         Causes& out) {
  const std::string op = str(req, "operator");
  if (op.empty()) out.push_back(v::required(path + ".operator", "valid values: [\"In\" \"NotIn\"]"));
  else if (op != "In" && op != "NotIn") out.push_back(v::notSupported(path + ".operator", op, {"In", "NotIn"}));
  if (has(req, "containerName") && !containerNames.count(str(req, "containerName")))
    out.push_back(v::invalid(path + ".containerName", req["containerName"],
                             "must be one of the container or initContainer names in the pod template"));
  const json& values = at(req, "values");
  const size_t n = values.is_array() ? values.size() : 0;
  if (n == 0) out.push_back(v::invalidRaw(path + ".values", values.is_array() ? "[]int32{}" : "[]int32(nil)", "at least one value is required"));
  else if (n > 255) out.push_back(v::tooMany(path + ".values", static_cast<int64_t>(n), 255));
  bool ordered = true;
  std::set<int64_t> seen;
  for (size_t j = 0; j < n; ++j) {
    if (!values[j].is_number_integer()) continue;  // the schema check reports it
    const int64_t value = values[j].get<int64_t>();
    const std::string valuePath = idx(path + ".values", j);
    if (op == "In" && value == 0) out.push_back(v::invalid(valuePath, value, "must not be 0 for the In operator"));
    if (!seen.insert(value).second) out.push_back(v::duplicate(valuePath, value));
    if (j > 0 && values[j - 1].is_number_integer() && values[j - 1].get<int64_t>() > value) ordered = false;
  }
  if (!ordered) {
    std::string shown = "[]int32{";
    for (size_t j = 0; j < n; ++j) shown += (j ? ", " : "") + values[j].dump();
    out.push_back(v::invalidRaw(path + ".values", shown + "}", "must be ordered"));
  }
}

// kube-apiserver's validateIndexesFormat: "1,3-5" with each index below `completions`, in
// increasing order; the number of indexes, or the error.
Result<int64_t> indexesFormat(const std::string& text, int64_t completions) {
  if (text.empty()) return int64_t{0};
  int64_t total = 0;
  std::optional<int64_t> last;
  auto number = [&](const std::string& part) -> Result<int64_t> {
    if (part.empty() || part.size() > 10 || part.find_first_not_of("0123456789") != std::string::npos)
      return Status::badRequest("cannot convert string to integer for index: " + v::goQuote(part));
    int64_t n = std::stoll(part);
    if (n >= completions) return Status::badRequest("too large index: " + v::goQuote(part));
    return n;
  };
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string interval = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t dash = interval.find('-');
    if (dash != std::string::npos && interval.find('-', dash + 1) != std::string::npos)
      return Status::badRequest("the fragment " + v::goQuote(interval) +
                                " violates the requirement that an index interval can have at most two parts separated by '-'");
    auto first = number(interval.substr(0, dash));
    if (!first.ok()) return first.status();
    int64_t lastOfInterval = *first;
    if (dash != std::string::npos) {
      auto second = number(interval.substr(dash + 1));
      if (!second.ok()) return second.status();
      if (*first >= *second)
        return Status::badRequest("non-increasing order, previous: " + std::to_string(*first) + ", current: " + std::to_string(*second));
      lastOfInterval = *second;
    }
    if (last && *last >= *first)
      return Status::badRequest("non-increasing order, previous: " + std::to_string(*last) + ", current: " + std::to_string(*first));
    total += lastOfInterval - *first + 1;
    last = lastOfInterval;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return total;
}

// kube-apiserver's validateSuccessPolicy (Indexed Jobs).
void validateSuccessPolicy(const json& spec, const std::string& path, Causes& out) {
  const json& rules = at(at(spec, "successPolicy"), "rules");
  const size_t n = rules.is_array() ? rules.size() : 0;
  if (n == 0) out.push_back(v::required(path + ".rules", "at least one rules must be specified when the successPolicy is specified"));
  if (n > 20) out.push_back(v::tooMany(path + ".rules", static_cast<int64_t>(n), 20));
  const int64_t completions = at(spec, "completions").is_number_integer() ? spec["completions"].get<int64_t>() : 0;
  for (size_t i = 0; i < n; ++i) {
    const json& rule = rules[i];
    const std::string rulePath = idx(path + ".rules", i);
    const bool hasIndexes = has(rule, "succeededIndexes"), hasCount = has(rule, "succeededCount");
    if (!hasIndexes && !hasCount)
      out.push_back(v::required(rulePath, "at least one of succeededCount or succeededIndexes must be specified"));
    int64_t totalIndexes = 0;
    if (hasIndexes) {
      const std::string text = str(rule, "succeededIndexes");
      if (text.size() > 64 * 1024) out.push_back(v::tooLong(rulePath + ".succeededIndexes", 64 * 1024));
      auto total = indexesFormat(text, completions);
      if (!total.ok())
        out.push_back(v::invalid(rulePath + ".succeededIndexes", text, "error parsing succeededIndexes: " + total.status().message()));
      else totalIndexes = *total;
    }
    if (hasCount && rule["succeededCount"].is_number_integer()) {
      const int64_t count = rule["succeededCount"].get<int64_t>();
      nonNegative(rule, "succeededCount", rulePath + ".succeededCount", out);
      if (count > completions)
        out.push_back(v::invalid(rulePath + ".succeededCount", count,
                                 "must be less than or equal to " + std::to_string(completions) + " (the number of specified completions)"));
      if (hasIndexes && count > totalIndexes)
        out.push_back(v::invalid(rulePath + ".succeededCount", count,
                                 "must be less than or equal to " + std::to_string(totalIndexes) +
                                     " (the number of indexes in the specified succeededIndexes field)"));
    }
  }
}

// kube-apiserver's validatePodFailurePolicy (rules, their actions and requirements).
void validatePodFailurePolicy(const json& spec, const std::string& path, Causes& out) {
  const json& rules = at(at(spec, "podFailurePolicy"), "rules");
  if (!rules.is_array()) return;
  if (rules.size() > 20) out.push_back(v::tooMany(path + ".rules", static_cast<int64_t>(rules.size()), 20));
  std::set<std::string> containerNames;
  const json& podSpec = at(at(spec, "template"), "spec");
  for (const char* list : {"containers", "initContainers"})
    if (at(podSpec, list).is_array())
      for (const auto& c : podSpec[list]) containerNames.insert(str(c, "name"));
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& rule = rules[i];
    const std::string rulePath = idx(path + ".rules", i);
    const std::string action = str(rule, "action");
    if (action.empty()) {
      out.push_back(v::required(rulePath + ".action", "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]"));
    } else if (action == "FailIndex") {
      if (!has(spec, "backoffLimitPerIndex"))
        out.push_back(v::invalid(rulePath + ".action", action, "requires the backoffLimitPerIndex to be set"));
    } else if (action != "Count" && action != "FailJob" && action != "Ignore") {
      out.push_back(v::notSupported(rulePath + ".action", action, {"Count", "FailIndex", "FailJob", "Ignore"}));
    }
    const bool onExitCodes = has(rule, "onExitCodes");
    const json& conditions = at(rule, "onPodConditions");
    const bool onConditions = conditions.is_array() && !conditions.empty();
    if (onExitCodes) validateOnExitCodes(rule["onExitCodes"], rulePath + ".onExitCodes", containerNames, out);
    if (onConditions) {
      const std::string condPath = rulePath + ".onPodConditions";
      if (conditions.size() > 20) out.push_back(v::tooMany(condPath, static_cast<int64_t>(conditions.size()), 20));
      for (size_t j = 0; j < conditions.size(); ++j) {
        const std::string patternPath = idx(condPath, j);
        const std::string type = str(conditions[j], "type");
        for (const auto& e : v::isQualifiedName(type)) out.push_back(v::invalid(patternPath + ".type", type, e));
        const std::string status = str(conditions[j], "status");
        if (status.empty())
          out.push_back(v::required(patternPath + ".status", "valid values: [\"False\" \"True\" \"Unknown\"]"));
        else if (status != "True" && status != "False" && status != "Unknown")
          out.push_back(v::notSupported(patternPath + ".status", status, {"False", "True", "Unknown"}));
      }
    }
    if (onExitCodes && onConditions)
      out.push_back(v::invalidOmitValue(rulePath, "specifying both OnExitCodes and OnPodConditions is not supported"));
    if (!onExitCodes && !onConditions)
      out.push_back(v::invalidOmitValue(rulePath, "specifying one of OnExitCodes and OnPodConditions is required"));
  }
}

void validateJobSpec(const json& spec, const std::string& path, Causes& out) {
  for (const char* f : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                        "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"})
    nonNegative(spec, f, path + "." + f, out);
  if (has(spec, "maxFailedIndexes") && !has(spec, "backoffLimitPerIndex"))
    out.push_back(v::required(path + ".backoffLimitPerIndex", "when maxFailedIndexes is specified"));
  const json& cm = at(spec, "completionMode");
  const bool indexed = cm == "Indexed";
  if (cm.is_string()) {
    std::string mode = cm.get<std::string>();
    if (mode != "NonIndexed" && mode != "Indexed")
      out.push_back(v::notSupported(path + ".completionMode", mode, {"NonIndexed", "Indexed"}));
    if (mode == "Indexed" && !has(spec, "completions"))
      out.push_back(v::required(path + ".completions", "when completion mode is Indexed"));
    if (indexed && at(spec, "parallelism").is_number_integer() && spec["parallelism"].get<int64_t>() > 100000)
      out.push_back(v::invalid(path + ".parallelism", spec["parallelism"],
                               "must be less than or equal to 100000 when completion mode is Indexed"));
    if (indexed && at(spec, "completions").is_number_integer() && at(spec, "maxFailedIndexes").is_number_integer() &&
        spec["maxFailedIndexes"].get<int64_t>() > spec["completions"].get<int64_t>())
      out.push_back(v::invalid(path + ".maxFailedIndexes", spec["maxFailedIndexes"], "must be less than or equal to completions"));
  }
  if (!indexed) {
    for (const char* f : {"backoffLimitPerIndex", "maxFailedIndexes"})
      if (has(spec, f)) out.push_back(v::invalid(path + "." + f, spec[f], "requires indexed completion mode"));
  }
  const bool podFailurePolicy = has(spec, "podFailurePolicy");
  if (podFailurePolicy) validatePodFailurePolicy(spec, path + ".podFailurePolicy", out);
  if (has(spec, "successPolicy")) {
    if (!indexed) out.push_back(v::invalidRaw(path + ".successPolicy", "batch.SuccessPolicy{...}", "requires indexed completion mode"));
    else validateSuccessPolicy(spec, path + ".successPolicy", out);
  }
  if (has(spec, "podReplacementPolicy")) {
    const std::string rp = str(spec, "podReplacementPolicy");
    if (podFailurePolicy && rp != "Failed")
      out.push_back(v::notSupported(path + ".podReplacementPolicy", rp, {"Failed"}));
    else if (rp != "Failed" && rp != "TerminatingOrFailed")
      out.push_back(v::notSupported(path + ".podReplacementPolicy", rp, {"Failed", "TerminatingOrFailed"}));
  }
  validatePodTemplate(at(spec, "template"), path + ".template", out);
  std::string rp = str(at(at(spec, "template"), "spec"), "restartPolicy");
  if (rp != "OnFailure" && rp != "Never")
    out.push_back(v::notSupported(path + ".template.spec.restartPolicy", rp, {"OnFailure", "Never"}));
  else if (podFailurePolicy && rp != "Never")
    out.push_back(v::invalid(path + ".template.spec.restartPolicy", rp,
                             "only \"Never\" is supported when podFailurePolicy is specified"));
}

void validateJob(const json& job, Causes& out) {
  const json& spec = at(job, "spec");
  validateJobSpec(spec, "spec", out);
  const json& sel = at(spec, "selector");
  if (sel.is_null()) {
    out.push_back(v::required("spec.selector"));
  } else {
    v::validateLabelSelector(sel, "spec.selector", out);
  }
  auto selector = LabelSelector::fromJson(sel);
  const json& tl = at(at(at(spec, "template"), "metadata"), "labels");
  if (selector.ok() && !selector->matches(tl.is_object() ? tl : json::object()))
    out.push_back(v::invalidRaw("spec.template.metadata.labels", goLabels(tl),
                                "`selector` does not match template `labels`"));
}

// https://data.iana.org/time-zones/theory.html#naming, as kube-apiserver checks each part of
// a timeZone: ASCII letters, '.', '-', '_' (and, for legacy names, digits and '+'), at most
// 14 characters, not "." or "..", not starting with '-'.
bool validTimeZonePart(const std::string& part) {
  if (part.empty() || part.size() > 14 || part == "." || part == ".." || part[0] == '-') return false;
  for (char c : part)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == '+')) return false;
  return true;
}

// kube-apiserver's validateTimeZone.
void validateTimeZone(const json& timeZone, Causes& out) {
  if (timeZone.is_null()) return;
  const std::string tz = timeZone.is_string() ? timeZone.get<std::string>() : "";
  if (tz.empty()) {
    out.push_back(v::invalid("spec.timeZone", timeZone, "timeZone must be nil or non-empty string"));
    return;
  }
  for (size_t start = 0;;) {
    size_t slash = tz.find('/', start);
    if (!validTimeZonePart(tz.substr(start, slash == std::string::npos ? std::string::npos : slash - start))) {
      out.push_back(v::invalid("spec.timeZone", timeZone, "unknown time zone " + tz));
      return;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string lower;
  for (char c : tz) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "local")
    out.push_back(v::invalid("spec.timeZone", timeZone,
                             "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
  if (auto zone = TimeZone::load(tz); !zone.ok()) out.push_back(v::invalid("spec.timeZone", timeZone, zone.status().message()));
}

void validateCronJob(const json& cj, const json* old, Causes& out) {
  std::string name = str(at(cj, "metadata"), "name");
  if (name.size() > 52)
    out.push_back(v::invalid("metadata.name", name, "must be no more than 52 characters"));
  const json& spec = at(cj, "spec");
  const json* oldSpec = old ? &at(*old, "spec") : nullptr;
  std::string schedule = str(spec, "schedule");
  if (schedule.empty()) {
    out.push_back(v::required("spec.schedule"));
  } else {
    // validateScheduleFormat: a TZ= or CRON_TZ= prefix only stays on CronJobs that had one.
    if (auto parsed = cron::parseSchedule(schedule); !parsed.ok())
      out.push_back(v::invalid("spec.schedule", schedule, parsed.status().message()));
    const bool allowTzInSchedule = oldSpec && str(*oldSpec, "schedule").find("TZ") != std::string::npos;
    if (schedule.find("TZ") != std::string::npos) {
      if (!allowTzInSchedule)
        out.push_back(v::invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
      else if (has(spec, "timeZone"))
        out.push_back(v::invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
    }
  }
  // Checked when set or changed: a zone the tz database has since dropped does not block
  // other updates.
  const json& timeZone = at(spec, "timeZone");
  if (!oldSpec || at(*oldSpec, "timeZone") != timeZone) validateTimeZone(timeZone, out);
  nonNegative(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", out);
  std::string cp = str(spec, "concurrencyPolicy");
  if (cp.empty()) out.push_back(v::required("spec.concurrencyPolicy"));
  else if (cp != "Allow" && cp != "Forbid" && cp != "Replace")
    out.push_back(v::notSupported("spec.concurrencyPolicy", cp, {"Allow", "Forbid", "Replace"}));
  const json& jt = at(spec, "jobTemplate");
  validateJobSpec(at(jt, "spec"), "spec.jobTemplate.spec", out);
  if (has(at(jt, "spec"), "selector"))
    out.push_back(v::invalidRaw("spec.jobTemplate.spec.selector", goLabelSelector(at(jt, "spec")["selector"]),
                                "`selector` will be auto-generated"));
  if (at(at(jt, "spec"), "manualSelector") == true)
    out.push_back(v::notSupported("spec.jobTemplate.spec.manualSelector", true, {"nil", "false"}));
  nonNegative(spec, "successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit", out);
  nonNegative(spec, "failedJobsHistoryLimit", "spec.failedJobsHistoryLimit", out);
}

// ---------------------------------------------------------------- core kinds

void validateService(const json& svc, Causes& out) {
  const json& spec = at(svc, "spec");
  std::string type = str(spec, "type");
  static const std::vector<std::string> types = {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"};
  if (type.empty()) out.push_back(v::required("spec.type"));
  else if (std::find(types.begin(), types.end(), type) == types.end())
    out.push_back(v::notSupported("spec.type", type, types));
  std::string sa = str(spec, "sessionAffinity");
  if (sa.empty()) out.push_back(v::required("spec.sessionAffinity"));
  else if (sa != "ClientIP" && sa != "None")
    out.push_back(v::notSupported("spec.sessionAffinity", sa, {"ClientIP", "None"}));
  bool headless = type == "ClusterIP" && str(spec, "clusterIP") == "None";
  const json& ports = at(spec, "ports");
  size_t nports = ports.is_array() ? ports.size() : 0;
  if (nports == 0 && !headless && type != "ExternalName") out.push_back(v::required("spec.ports"));
  if (type == "ExternalName") {
    std::string en = str(spec, "externalName");
    if (en.empty()) out.push_back(v::required("spec.externalName"));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < nports; ++i) {
    const json& p = ports[i];
    std::string pp = idx("spec.ports", i);
    std::string name = str(p, "name");
    if (nports > 1 && name.empty()) {
      out.push_back(v::required(pp + ".name"));
    } else if (!name.empty()) {
      addEach(isDns1123Label(name), pp + ".name", name, out);
      if (!names.insert(name).second) out.push_back(v::duplicate(pp + ".name", name));
    }
    const json& port = at(p, "port");
    int64_t pn = port.is_number() ? port.get<int64_t>() : 0;
    for (const auto& m : v::isValidPortNum(pn)) out.push_back(v::invalidRaw(pp + ".port", std::to_string(pn), m));
    std::string proto = str(p, "protocol");
    if (proto.empty()) out.push_back(v::required(pp + ".protocol"));
    else if (proto != "TCP" && proto != "UDP" && proto != "SCTP")
      out.push_back(v::notSupported(pp + ".protocol", proto, {"SCTP", "TCP", "UDP"}));
    const json& tp = at(p, "targetPort");
    if (tp.is_number()) {
      for (const auto& m : v::isValidPortNum(tp.get<int64_t>()))
        out.push_back(v::invalidRaw(pp + ".targetPort", tp.dump(), m));
    } else if (tp.is_string()) {
      addEach(v::isValidPortName(tp.get<std::string>()), pp + ".targetPort", tp, out);
    }
    const json& np = at(p, "nodePort");
    if (type == "ClusterIP" && np.is_number() && np.get<int64_t>() != 0)
      out.push_back(v::forbidden(pp + ".nodePort", "may not be used when `type` is 'ClusterIP'"));
  }
  v::validateLabels(at(spec, "selector"), "spec.selector", out);
  std::string ip = str(spec, "clusterIP");
  if (!ip.empty() && ip != "None" && type != "ExternalName")
    addEach(v::isValidIP(ip), "spec.clusterIPs[0]", ip, out);
}

void validateDataKeys(const json& object, const char* field, Causes& out) {
  const json& data = at(object, field);
  if (!data.is_object()) return;
  for (const auto& [k, val] : data.items()) addEach(v::isConfigMapKey(k), key(field, k), k, out);
}

void validateConfigMap(const json& cm, Causes& out) {
  validateDataKeys(cm, "data", out);
  validateDataKeys(cm, "binaryData", out);
  const json& data = at(cm, "data");
  const json& bin = at(cm, "binaryData");
  size_t total = 0;
  if (data.is_object()) {
    for (const auto& [k, val] : data.items()) {
      if (bin.is_object() && bin.contains(k))
        out.push_back(v::invalid(key("data", k), k, "duplicate of key present in binaryData"));
      total += val.is_string() ? val.get_ref<const std::string&>().size() : 0;
    }
  }
  if (bin.is_object())
    for (const auto& [k, val] : bin.items()) total += val.is_string() ? val.get_ref<const std::string&>().size() * 3 / 4 : 0;
  if (total > 1024 * 1024) out.push_back(v::tooLong("", 1024 * 1024));
}

void validateSecret(const json& s, Causes& out) {
  validateDataKeys(s, "data", out);
  const json& data = at(s, "data");
  size_t total = 0;
  if (data.is_object())
    for (const auto& [k, val] : data.items()) total += val.is_string() ? val.get_ref<const std::string&>().size() * 3 / 4 : 0;
  if (total > 1024 * 1024) out.push_back(v::tooLong("data", 1024 * 1024));
  std::string type = str(s, "type");
  auto needKey = [&](const char* k) {
    if (!data.is_object() || !data.contains(k)) out.push_back(v::required(key("data", k)));
  };
  if (type == "kubernetes.io/service-account-token") {
    const json& ann = at(at(s, "metadata"), "annotations");
    if (!ann.is_object() || str(ann, "kubernetes.io/service-account.name").empty())
      out.push_back(v::required("metadata.annotations[kubernetes.io/service-account.name]"));
  } else if (type == "kubernetes.io/dockercfg") {
    needKey(".dockercfg");
  } else if (type == "kubernetes.io/dockerconfigjson") {
    needKey(".dockerconfigjson");
  } else if (type == "kubernetes.io/basic-auth") {
    if (!data.is_object() || (!data.contains("username") && !data.contains("password"))) {
      out.push_back(v::required("data[username]"));
      out.push_back(v::required("data[password]"));
    }
  } else if (type == "kubernetes.io/ssh-auth") {
    needKey("ssh-privatekey");
  } else if (type == "kubernetes.io/tls") {
    needKey("tls.crt");
    needKey("tls.key");
  } else if (type.empty()) {
    out.push_back(v::required("type"));
  }
}

void validatePvcSpec(const json& spec, const std::string& path, Causes& out) {
  const json& modes = at(spec, "accessModes");
  static const std::vector<std::string> supported = {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"};
  if (!modes.is_array() || modes.empty()) {
    out.push_back(v::required(path + ".accessModes", "at least 1 access mode is required"));
  } else {
    for (const auto& m : modes) {
      std::string s = m.is_string() ? m.get<std::string>() : m.dump();
      if (std::find(supported.begin(), supported.end(), s) == supported.end())
        out.push_back(v::notSupported(path + ".accessModes", s, supported));
    }
  }
  const json& req = at(at(spec, "resources"), "requests");
  if (!req.is_object() || !req.contains("storage")) out.push_back(v::required(path + ".resources[storage]"));
  validateResources(at(spec, "resources"), path + ".resources", out);
  std::string vm = str(spec, "volumeMode");
  if (!vm.empty() && vm != "Block" && vm != "Filesystem")
    out.push_back(v::notSupported(path + ".volumeMode", vm, {"Block", "Filesystem"}));
}

void validatePv(const json& pv, Causes& out) {
  const json& spec = at(pv, "spec");
  const json& modes = at(spec, "accessModes");
  if (!modes.is_array() || modes.empty()) out.push_back(v::required("spec.accessModes"));
  const json& cap = at(spec, "capacity");
  if (!cap.is_object() || cap.empty()) {
    out.push_back(v::required("spec.capacity"));
  } else if (!cap.contains("storage") || cap.size() > 1) {
    out.push_back(v::notSupported("spec.capacity", cap, {"storage"}));
  }
  static const char* sources[] = {"gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs",
                                  "rbd", "iscsi", "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile",
                                  "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                                  "scaleIO", "local", "storageos", "csi"};
  int n = 0;
  for (const char* s : sources) n += has(spec, s) ? 1 : 0;
  if (n == 0) out.push_back(v::required("spec", "must specify a volume type"));
  std::string rp = str(spec, "persistentVolumeReclaimPolicy");
  if (!rp.empty() && rp != "Delete" && rp != "Recycle" && rp != "Retain")
    out.push_back(v::notSupported("spec.persistentVolumeReclaimPolicy", rp, {"Delete", "Recycle", "Retain"}));
}

void validateQuantityList(const json& list, const std::string& path, Causes& out) {
  if (!list.is_object()) return;
  for (const auto& [name, val] : list.items()) {
    std::string text = val.is_string() ? val.get<std::string>() : val.dump();
    auto q = Quantity::parse(text);
    if (!q.ok()) out.push_back(v::invalid(key(path, name), text, q.status().message()));
    else if (q->sign() < 0) out.push_back(v::invalid(key(path, name), q->toString(), "must be greater than or equal to 0"));
  }
}

// ---------------------------------------------------------------- other groups

void validateRoleRules(const json& role, bool namespaced, Causes& out) {
  const json& rules = at(role, "rules");
  if (!rules.is_array()) return;
  for (size_t i = 0; i < rules.size(); ++i) {
    const json& r = rules[i];
    std::string rp = idx("rules", i);
    auto count = [&](const char* f) { return at(r, f).is_array() ? at(r, f).size() : 0; };
    if (count("verbs") == 0) out.push_back(v::required(rp + ".verbs", "verbs must contain at least one value"));
    if (count("nonResourceURLs") > 0) {
      if (namespaced)
        out.push_back(v::invalid(rp + ".nonResourceURLs", at(r, "nonResourceURLs"),
                                 "namespaced rules cannot apply to non-resource URLs"));
      if (count("apiGroups") > 0 || count("resources") > 0 || count("resourceNames") > 0)
        out.push_back(v::invalid(rp + ".nonResourceURLs", at(r, "nonResourceURLs"),
                                 "rules cannot apply to both regular resources and non-resource URLs"));
      continue;
    }
    if (count("apiGroups") == 0)
      out.push_back(v::required(rp + ".apiGroups", "resource rules must supply at least one api group"));
    if (count("resources") == 0)
      out.push_back(v::required(rp + ".resources", "resource rules must supply at least one resource"));
  }
}

void validateBinding(const json& b, bool namespaced, Causes& out) {
  const json& ref = at(b, "roleRef");
  std::string group = str(ref, "apiGroup");
  if (group != "rbac.authorization.k8s.io")
    out.push_back(v::notSupported("roleRef.apiGroup", group, {"rbac.authorization.k8s.io"}));
  std::string kind = str(ref, "kind");
  if (namespaced) {
    if (kind != "Role" && kind != "ClusterRole") out.push_back(v::notSupported("roleRef.kind", kind, {"Role", "ClusterRole"}));
  } else if (kind != "ClusterRole") {
    out.push_back(v::notSupported("roleRef.kind", kind, {"ClusterRole"}));
  }
  std::string name = str(ref, "name");
  if (name.empty()) out.push_back(v::required("roleRef.name"));
  else addEach(v::isValidPathSegmentName(name), "roleRef.name", name, out);
  const json& subs = at(b, "subjects");
  if (!subs.is_array()) return;
  for (size_t i = 0; i < subs.size(); ++i) {
    const json& s = subs[i];
    std::string sp = idx("subjects", i);
    std::string sn = str(s, "name");
    if (sn.empty()) out.push_back(v::required(sp + ".name"));
    std::string sk = str(s, "kind");
    std::string sg = str(s, "apiGroup");
    if (sk == "ServiceAccount") {
      if (!sn.empty()) addEach(isDns1123Subdomain(sn), sp + ".name", sn, out);
      if (!sg.empty()) out.push_back(v::notSupported(sp + ".apiGroup", sg, {""}));
      if (!namespaced && str(s, "namespace").empty()) out.push_back(v::required(sp + ".namespace"));
    } else if (sk == "User" || sk == "Group") {
      if (sg != "rbac.authorization.k8s.io")
        out.push_back(v::notSupported(sp + ".apiGroup", sg, {"rbac.authorization.k8s.io"}));
    } else {
      out.push_back(v::notSupported(sp + ".kind", sk, {"ServiceAccount", "User", "Group"}));
    }
  }
}

void validateCrd(const json& crd, Causes& out) {
  const json& spec = at(crd, "spec");
  const json& names = at(spec, "names");
  std::string group = str(spec, "group"), plural = str(names, "plural");
  std::string name = str(at(crd, "metadata"), "name");
  if (!name.empty() && name != plural + "." + group)
    out.push_back(v::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
  if (group.empty()) {
    out.push_back(v::required("spec.group"));
  } else {
    addEach(isDns1123Subdomain(group), "spec.group", group, out);
    if (group.find('.') == std::string::npos)
      out.push_back(v::invalid("spec.group", group, "should be a domain with at least one dot"));
  }
  std::string scope = str(spec, "scope");
  if (scope.empty()) out.push_back(v::required("spec.scope"));
  else if (scope != "Cluster" && scope != "Namespaced")
    out.push_back(v::notSupported("spec.scope", scope, {"Cluster", "Namespaced"}));
  if (plural.empty()) out.push_back(v::required("spec.names.plural"));
  else addEach(isDns1035Label(plural), "spec.names.plural", plural, out);
  std::string singular = str(names, "singular");
  if (!singular.empty()) addEach(isDns1035Label(singular), "spec.names.singular", singular, out);
  std::string kind = str(names, "kind");
  if (kind.empty()) out.push_back(v::required("spec.names.kind"));
  std::string listKind = str(names, "listKind");
  if (listKind.empty()) out.push_back(v::required("spec.names.listKind"));
  else if (listKind == kind) out.push_back(v::invalid("spec.names.listKind", listKind, "kind and listKind may not be the same"));
  const json& versions = at(spec, "versions");
  int storage = 0;
  std::set<std::string> seen;
  if (versions.is_array()) {
    for (size_t i = 0; i < versions.size(); ++i) {
      std::string vp = idx("spec.versions", i);
      std::string vn = str(versions[i], "name");
      if (!seen.insert(vn).second) out.push_back(v::invalid(vp + ".name", vn, "must be unique"));
      addEach(isDns1035Label(vn), vp + ".name", vn, out);
      if (at(versions[i], "storage") == true) ++storage;
    }
  }
  if (!versions.is_array() || versions.empty()) {
    out.push_back(v::required("spec.versions"));
  } else if (storage != 1) {
    out.push_back(v::invalidRaw("spec.versions", "[]apiextensions.CustomResourceDefinitionVersion{...}",
                                "must have exactly one version marked as storage version"));
  }
}

void validatePriorityClass(const json& pc, Causes& out) {
  std::string name = str(at(pc, "metadata"), "name");
  const json& value = at(pc, "value");
  int64_t val = value.is_number() ? value.get<int64_t>() : 0;
  if (name.rfind("system-", 0) == 0) {
    bool known = (name == "system-node-critical" && val == 2000001000) ||
                 (name == "system-cluster-critical" && val == 2000000000);
    if (!known)
      out.push_back(v::forbidden("metadata.name",
                                 "priority class names with 'system-' prefix are reserved for system use only. error: " +
                                     name + " is not a known system priority class"));
  } else if (val > 1000000000) {
    out.push_back(v::forbidden("value", "maximum allowed value of a user defined priority is 1000000000"));
  }
  std::string pp = str(pc, "preemptionPolicy");
  if (!pp.empty() && pp != "PreemptLowerPriority" && pp != "Never")
    out.push_back(v::notSupported("preemptionPolicy", pp, {"Never", "PreemptLowerPriority"}));
}

void validatePdb(const json& pdb, Causes& out) {
  const json& spec = at(pdb, "spec");
  if (has(spec, "minAvailable") && has(spec, "maxUnavailable"))
    out.push_back(v::invalidRaw("spec", "policy.PodDisruptionBudgetSpec{...}",
                                "minAvailable and maxUnavailable cannot be both set"));
  for (const char* f : {"minAvailable", "maxUnavailable"}) {
    const json& x = at(spec, f);
    if (x.is_null()) continue;
    if (validPercentOrInt(x, std::string("spec.") + f, out) && x.is_string() && intOrPercentValue(x) > 100)
      out.push_back(v::invalidRaw(std::string("spec.") + f, goIntOrString(x), "must not be greater than 100%"));
  }
  if (has(spec, "selector")) v::validateLabelSelector(spec["selector"], "spec.selector", out);
}

// ---------------------------------------------------------------- updates

std::string goPodTemplate() { return "core.PodTemplateSpec{...}"; }

void immutable(const json& now, const json& before, const std::string& path, const std::string& shown, Causes& out) {
  if (now != before) out.push_back(v::invalidRaw(path, shown, "field is immutable"));
}

void validatePodUpdate(const json& pod, const json& old, Causes& out) {
  json spec = at(pod, "spec");
  const json& oldSpec = at(old, "spec");
  if (!spec.is_object() || !oldSpec.is_object()) return;
  // What may change: images, activeDeadlineSeconds (set or shortened), added tolerations,
  // terminationGracePeriodSeconds from negative to 1, removal of scheduling gates.
  for (const char* list : {"containers", "initContainers"}) {
    auto it = spec.find(list);
    if (it == spec.end()) continue;
    json& nc = *it;
    const json& oc = at(oldSpec, list);
    if (nc.is_array() && oc.is_array() && nc.size() == oc.size())
      for (size_t i = 0; i < nc.size(); ++i)
        if (nc[i].is_object() && oc[i].is_object() && oc[i].contains("image")) nc[i]["image"] = oc[i]["image"];
  }
  const json& nads = at(spec, "activeDeadlineSeconds");
  const json& oads = at(oldSpec, "activeDeadlineSeconds");
  if (nads.is_number() && (oads.is_null() || (oads.is_number() && nads.get<int64_t>() <= oads.get<int64_t>()))) {
    if (oads.is_null()) spec.erase("activeDeadlineSeconds");
    else spec["activeDeadlineSeconds"] = oads;
  }
  const json& ntol = at(spec, "tolerations");
  const json& otol = at(oldSpec, "tolerations");
  if (ntol.is_array()) {
    bool superset = true;
    if (otol.is_array())
      for (const auto& t : otol) superset = superset && std::find(ntol.begin(), ntol.end(), t) != ntol.end();
    if (superset) {
      if (otol.is_null()) spec.erase("tolerations");
      else spec["tolerations"] = otol;
    }
  }
  const json& otg = at(oldSpec, "terminationGracePeriodSeconds");
  if (otg.is_number() && otg.get<int64_t>() < 0 && at(spec, "terminationGracePeriodSeconds") == 1)
    spec["terminationGracePeriodSeconds"] = otg;
  if (has(oldSpec, "schedulingGates")) {
    if (oldSpec.contains("schedulingGates")) spec["schedulingGates"] = oldSpec["schedulingGates"];
    if (has(oldSpec, "nodeSelector")) spec["nodeSelector"] = oldSpec["nodeSelector"];
    if (has(oldSpec, "affinity")) spec["affinity"] = oldSpec["affinity"];
  }
  if (spec != oldSpec) {
    // TODO(kinds): kube appends a cmp.Diff of the two specs to this message.
    out.push_back(v::forbidden(
        "spec",
        "pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
        "(allow it to be set to 1 if it was previously negative)"));
  }
}

// A status write may not bring a container back from terminated when the pod would not have
// restarted it (kube-apiserver's ValidateContainerStateTransition and its init-container
// sibling): with restartPolicy Never never, with OnFailure not after exit code 0. A sidecar
// (an init container with restartPolicy Always) restarts whatever the pod's policy. The path
// indexes the old status list, as kube's does.
void validateContainerStateTransition(const json& newStatuses, const json& oldStatuses, const std::string& path,
                                      const std::string& restartPolicy, const json* initContainers, Causes& out) {
  if (restartPolicy == "Always" || !oldStatuses.is_array() || !newStatuses.is_array()) return;
  for (size_t i = 0; i < oldStatuses.size(); ++i) {
    const json& terminated = at(at(oldStatuses[i], "state"), "terminated");
    if (!terminated.is_object()) continue;
    const json& exitCode = at(terminated, "exitCode");
    bool failed = exitCode.is_number() && exitCode.get<int64_t>() != 0;
    if (failed && restartPolicy == "OnFailure") continue;
    const std::string name = str(oldStatuses[i], "name");
    if (initContainers && initContainers->is_array()) {
      auto sidecar = std::find_if(initContainers->begin(), initContainers->end(),
                                  [&](const json& c) { return str(c, "name") == name; });
      if (sidecar != initContainers->end() && str(*sidecar, "restartPolicy") == "Always") continue;
    }
    for (const json& now : newStatuses)
      if (str(now, "name") == name && !at(at(now, "state"), "terminated").is_object())
        out.push_back(v::forbidden(idx(path, i) + ".state", "may not be transitioned to non-terminated state"));
  }
}

void validatePodStatusTransitions(const json& pod, const json& old, Causes& out) {
  const json& status = at(pod, "status");
  const json& oldStatus = at(old, "status");
  const json& oldSpec = at(old, "spec");
  // The API server defaults restartPolicy to Always, so an empty one is Always too.
  std::string policy = str(oldSpec, "restartPolicy");
  if (policy.empty()) policy = "Always";
  validateContainerStateTransition(at(status, "containerStatuses"), at(oldStatus, "containerStatuses"),
                                   "status.containerStatuses", policy, nullptr, out);
  validateContainerStateTransition(at(status, "initContainerStatuses"), at(oldStatus, "initContainerStatuses"),
                                   "status.initContainerStatuses", policy, &at(oldSpec, "initContainers"), out);
  // The kubelet never restarts an ephemeral container: as if the pod's policy were Never.
  validateContainerStateTransition(at(status, "ephemeralContainerStatuses"),
                                   at(oldStatus, "ephemeralContainerStatuses"), "status.ephemeralContainerStatuses",
                                   "Never", nullptr, out);
}

void validateImmutableData(const json& obj, const json& old, const std::vector<const char*>& fields, Causes& out) {
  if (at(old, "immutable") != true) return;
  if (at(obj, "immutable") != true)
    out.push_back(v::forbidden("immutable", "field is immutable when `immutable` is set"));
  for (const char* f : fields) {
    const json& a = at(obj, f);
    const json& b = at(old, f);
    bool emptyA = a.is_null() || (a.is_object() && a.empty());
    bool emptyB = b.is_null() || (b.is_object() && b.empty());
    if (!(emptyA && emptyB) && a != b) out.push_back(v::forbidden(f, "field is immutable when `immutable` is set"));
  }
}

void validateUpdate(const ResourceInfo& info, const json& obj, const json& old, Causes& out) {
  const std::string& g = info.group;
  const std::string& k = info.kind;
  const json& spec = at(obj, "spec");
  const json& oldSpec = at(old, "spec");
  if (g.empty() && k == "Pod") {
    validatePodUpdate(obj, old, out);
    validatePodStatusTransitions(obj, old, out);
  } else if (g == "apps" && (k == "Deployment" || k == "ReplicaSet" || k == "DaemonSet" || k == "StatefulSet")) {
    immutable(at(spec, "selector"), at(oldSpec, "selector"), "spec.selector", goLabelSelector(at(spec, "selector")), out);
    if (k == "StatefulSet") {
      json a = spec, b = oldSpec;
      for (const char* f : {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                            "minReadySeconds"}) {
        a.erase(f);
        b.erase(f);
      }
      if (a != b)
        out.push_back(v::forbidden("spec",
                                   "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                   "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                   "'minReadySeconds' are forbidden"));
    }
  } else if (g == "batch" && k == "Job") {
    immutable(at(spec, "selector"), at(oldSpec, "selector"), "spec.selector", goLabelSelector(at(spec, "selector")), out);
    if (at(spec, "completionMode") != "Indexed")
      immutable(at(spec, "completions"), at(oldSpec, "completions"), "spec.completions", at(spec, "completions").dump(), out);
    immutable(at(spec, "completionMode"), at(oldSpec, "completionMode"), "spec.completionMode",
              v::goValue(at(spec, "completionMode")), out);
    immutable(at(spec, "template"), at(oldSpec, "template"), "spec.template", goPodTemplate(), out);
    immutable(at(spec, "podFailurePolicy"), at(oldSpec, "podFailurePolicy"), "spec.podFailurePolicy",
              has(spec, "podFailurePolicy") ? "batch.PodFailurePolicy{...}" : "null", out);
    immutable(at(spec, "backoffLimitPerIndex"), at(oldSpec, "backoffLimitPerIndex"), "spec.backoffLimitPerIndex",
              has(spec, "backoffLimitPerIndex") ? spec["backoffLimitPerIndex"].dump() : "null", out);
    immutable(at(spec, "successPolicy"), at(oldSpec, "successPolicy"), "spec.successPolicy",
              has(spec, "successPolicy") ? "batch.SuccessPolicy{...}" : "null", out);
    immutable(at(spec, "managedBy"), at(oldSpec, "managedBy"), "spec.managedBy", v::goValue(at(spec, "managedBy")), out);
  } else if (g.empty() && k == "Service") {
    std::string oldIp = str(oldSpec, "clusterIP"), newIp = str(spec, "clusterIP");
    bool ext = str(spec, "type") == "ExternalName" || str(oldSpec, "type") == "ExternalName";
    if (!ext && !oldIp.empty() && oldIp != newIp) {
      json ips = at(spec, "clusterIPs").is_array() ? spec["clusterIPs"] : json::array({newIp});
      out.push_back(v::invalid("spec.clusterIPs[0]", ips, "may not change once set"));
    }
  } else if (g.empty() && k == "Secret") {
    immutable(at(obj, "type"), at(old, "type"), "type", v::goValue(at(obj, "type")), out);
    validateImmutableData(obj, old, {"data"}, out);
  } else if (g.empty() && k == "ConfigMap") {
    validateImmutableData(obj, old, {"data", "binaryData"}, out);
  } else if (g.empty() && k == "PersistentVolumeClaim") {
    json a = spec, b = oldSpec;
    for (json* x : {&a, &b}) {
      if (x->contains("resources") && (*x)["resources"].is_object()) (*x)["resources"].erase("requests");
      x->erase("volumeAttributesClassName");
    }
    if (str(oldSpec, "volumeName").empty()) a.erase("volumeName"), b.erase("volumeName");
    if (a != b)
      out.push_back(v::forbidden("spec",
                                 "spec is immutable after creation except resources.requests and "
                                 "volumeAttributesClassName for bound claims"));
  } else if (g == "scheduling.k8s.io" && k == "PriorityClass") {
    if (at(obj, "value") != at(old, "value")) out.push_back(v::forbidden("value", "may not be changed in an update."));
    immutable(at(obj, "preemptionPolicy"), at(old, "preemptionPolicy"), "preemptionPolicy",
              v::goValue(at(obj, "preemptionPolicy")), out);
  } else if (g == "rbac.authorization.k8s.io" && (k == "RoleBinding" || k == "ClusterRoleBinding")) {
    const json& a = at(obj, "roleRef");
    if (a != at(old, "roleRef"))
      out.push_back(v::invalidRaw("roleRef",
                                  "rbac.RoleRef{APIGroup:" + v::goQuote(str(a, "apiGroup")) + ", Kind:" +
                                      v::goQuote(str(a, "kind")) + ", Name:" + v::goQuote(str(a, "name")) + "}",
                                  "cannot change roleRef"));
  } else if (g == "apiextensions.k8s.io" && k == "CustomResourceDefinition") {
    immutable(at(spec, "scope"), at(oldSpec, "scope"), "spec.scope", v::goValue(at(spec, "scope")), out);
    immutable(at(spec, "group"), at(oldSpec, "group"), "spec.group", v::goValue(at(spec, "group")), out);
  }
}

}  // namespace

std::vector<StatusCause> validateKind(const ResourceInfo& info, const nlohmann::json& object,
                                      const nlohmann::json* old) {
  Causes out;
  try {
    validateMeta(info, object, out);
    if (!info.custom) {
      const std::string& g = info.group;
      const std::string& k = info.kind;
      if (g.empty()) {
        if (k == "Pod") validatePodSpec(at(object, "spec"), "spec", out);
        else if (k == "PodTemplate") validatePodTemplate(at(object, "template"), "template", out);
        else if (k == "ReplicationController") validateReplicaSet(object, true, out);
        else if (k == "Service") validateService(object, out);
        else if (k == "ConfigMap") validateConfigMap(object, out);
        else if (k == "Secret") validateSecret(object, out);
        else if (k == "PersistentVolumeClaim") validatePvcSpec(at(object, "spec"), "spec", out);
        else if (k == "PersistentVolume") validatePv(object, out);
        else if (k == "ResourceQuota") validateQuantityList(at(at(object, "spec"), "hard"), "spec.hard", out);
        else if (k == "Event") {
          std::string ns = str(at(object, "metadata"), "namespace");
          std::string ions = str(at(object, "involvedObject"), "namespace");
          if (!ions.empty() && !ns.empty() && ions != ns)
            out.push_back(v::invalid("involvedObject.namespace", ions, "does not match event.namespace"));
        } else if (k == "LimitRange") {
          const json& limits = at(at(object, "spec"), "limits");
          if (limits.is_array())
            for (size_t i = 0; i < limits.size(); ++i) {
              std::string lp = idx("spec.limits", i);
              if (str(limits[i], "type").empty()) out.push_back(v::required(lp + ".type"));
              for (const char* l : {"max", "min", "default", "defaultRequest"})
                validateQuantityList(at(limits[i], l), lp + "." + l, out);
            }
        }
      } else if (g == "apps") {
        if (k == "Deployment") validateDeployment(object, out);
        else if (k == "ReplicaSet") validateReplicaSet(object, false, out);
        else if (k == "StatefulSet") validateStatefulSet(object, out);
        else if (k == "DaemonSet") validateDaemonSet(object, out);
      } else if (g == "batch") {
        if (k == "Job") validateJob(object, out);
        else if (k == "CronJob") validateCronJob(object, old, out);
      } else if (g == "rbac.authorization.k8s.io") {
        if (k == "Role") validateRoleRules(object, true, out);
        else if (k == "ClusterRole") validateRoleRules(object, false, out);
        else if (k == "RoleBinding") validateBinding(object, true, out);
        else if (k == "ClusterRoleBinding") validateBinding(object, false, out);
      } else if (g == "apiextensions.k8s.io" && k == "CustomResourceDefinition") {
        validateCrd(object, out);
      } else if (g == "scheduling.k8s.io" && k == "PriorityClass") {
        validatePriorityClass(object, out);
      } else if (g == "policy" && k == "PodDisruptionBudget") {
        validatePdb(object, out);
      } else if (g == "discovery.k8s.io" && k == "EndpointSlice") {
        std::string at_ = str(object, "addressType");
        if (at_.empty()) out.push_back(v::required("addressType"));
        else if (at_ != "IPv4" && at_ != "IPv6" && at_ != "FQDN")
          out.push_back(v::notSupported("addressType", at_, {"FQDN", "IPv4", "IPv6"}));
      } else if (g == "coordination.k8s.io" && k == "Lease") {
        nonNegative(at(object, "spec"), "leaseDurationSeconds", "spec.leaseDurationSeconds", out);
      }
    }
    if (old) validateUpdate(info, object, *old, out);
  } catch (const std::exception& e) {
    // A wrongly typed field the schema layer let through: report it, never throw across.
    out.push_back(v::invalidRaw("", "<object>", std::string("unexpected value: ") + e.what()));
  }
  return out;
}

}  // namespace orrery::api
