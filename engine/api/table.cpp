// `kubectl get` tables: kube-apiserver 1.32's printers (pkg/printers/internalversion) for the
// built-in kinds Orrery serves, its default table for kinds without a printer, and the
// additionalPrinterColumns table of custom resources.
#include "engine/api/table.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "engine/api/object.h"

namespace orrery::api {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

// ---- column descriptions (kube takes most from the API types' documentation)
constexpr const char* kNameDoc =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
constexpr const char* kAgeDoc =
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
constexpr const char* kContainersDoc = "Names of each container in the template.";
constexpr const char* kImagesDoc = "Images referenced by each container in the template.";
constexpr const char* kSelectorDoc =
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones "
    "affected by this deployment. It must match the pod template's labels.";

TableColumn col(std::string name, std::string type, std::string description, int priority = 0) {
  TableColumn c;
  c.name = std::move(name);
  c.type = std::move(type);
  c.description = std::move(description);
  c.priority = priority;
  return c;
}
TableColumn nameCol(int priority = 0) {
  TableColumn c = col("Name", "string", kNameDoc, priority);
  c.format = "name";
  return c;
}
TableColumn ageCol() { return col("Age", "string", kAgeDoc); }

// ---- reading objects
const json& at(const json& o, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &o;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}
std::string str(const json& o, std::initializer_list<const char*> path) {
  const json& v = at(o, path);
  return v.is_string() ? v.get<std::string>() : std::string();
}
int64_t num(const json& o, std::initializer_list<const char*> path) {
  const json& v = at(o, path);
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_float()) return static_cast<int64_t>(v.get<double>());
  return 0;
}
const json& arr(const json& o, std::initializer_list<const char*> path) {
  static const json kEmpty = json::array();
  const json& v = at(o, path);
  return v.is_array() ? v : kEmpty;
}
std::string name(const json& o) { return str(o, {"metadata", "name"}); }
bool has(const json& o, std::initializer_list<const char*> path) { return !at(o, path).is_null(); }

// RFC 3339 (metav1.Time and MicroTime) to a time point.
std::optional<Clock::time_point> parseTime(const std::string& s) {
  Clock::time_point t;
  if (!api::parseTime(s, &t)) return std::nullopt;
  return t;
}

// translateTimestampSince: "<unknown>" for a zero/missing time.
std::string since(const json& ts, Clock::time_point now) {
  if (!ts.is_string()) return "<unknown>";
  auto t = parseTime(ts.get<std::string>());
  if (!t) return "<unknown>";
  return humanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
}
std::string age(const json& o, Clock::time_point now) { return since(at(o, {"metadata", "creationTimestamp"}), now); }

// labels.FormatLabels: sorted "k=v" pairs, "<none>" when empty.
std::string formatLabels(const json& m) {
  std::string out;
  if (m.is_object())
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!out.empty()) out += ',';
      out += it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
    }
  return out.empty() ? "<none>" : out;
}

// metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key.
std::string selectorString(const json& sel) {
  std::vector<std::pair<std::string, std::string>> reqs;
  if (sel.is_object()) {
    const json& ml = at(sel, {"matchLabels"});
    if (ml.is_object())
      for (auto it = ml.begin(); it != ml.end(); ++it)
        reqs.emplace_back(it.key(), it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump()));
    for (const auto& e : arr(sel, {"matchExpressions"})) {
      std::string key = str(e, {"key"}), op = str(e, {"operator"});
      std::vector<std::string> values;
      for (const auto& v : arr(e, {"values"}))
        if (v.is_string()) values.push_back(v.get<std::string>());
      std::sort(values.begin(), values.end());
      values.erase(std::unique(values.begin(), values.end()), values.end());
      std::string joined;
      for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
      if (op == "In") reqs.emplace_back(key, key + " in (" + joined + ")");
      else if (op == "NotIn") reqs.emplace_back(key, key + " notin (" + joined + ")");
      else if (op == "Exists") reqs.emplace_back(key, key);
      else if (op == "DoesNotExist") reqs.emplace_back(key, "!" + key);
    }
  }
  std::stable_sort(reqs.begin(), reqs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& r : reqs) out += (out.empty() ? "" : ",") + r.second;
  return out;
}
// metav1.FormatLabelSelector: "<none>" when it selects everything.
std::string formatLabelSelector(const json& sel) {
  std::string s = selectorString(sel);
  return s.empty() ? "<none>" : s;
}

std::pair<std::string, std::string> layoutContainers(const json& containers) {
  std::string names, images;
  for (size_t i = 0; i < containers.size(); ++i) {
    if (i) {
      names += ',';
      images += ',';
    }
    names += str(containers[i], {"name"});
    images += str(containers[i], {"image"});
  }
  return {names, images};
}

std::string intOrString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return std::to_string(v.get<int64_t>());
  return "";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// ---- pods
bool conditionTrue(const json& conditions, const std::string& type) {
  for (const auto& c : conditions)
    if (str(c, {"type"}) == type) return str(c, {"status"}) == "True";
  return false;
}

json podCells(const json& pod, Clock::time_point now, json* rowConditions) {
  int64_t restarts = 0, restartableRestarts = 0;
  int64_t total = static_cast<int64_t>(arr(pod, {"spec", "containers"}).size());
  int64_t ready = 0;
  std::optional<Clock::time_point> lastRestart, lastRestartableRestart;
  auto later = [](std::optional<Clock::time_point>& cur, const json& status) {
    const json& fin = at(status, {"lastState", "terminated", "finishedAt"});
    if (!has(status, {"lastState", "terminated"})) return;
    auto t = fin.is_string() ? parseTime(fin.get<std::string>()) : std::nullopt;
    if (t && (!cur || *cur < *t)) cur = t;
  };

  std::string phase = str(pod, {"status", "phase"});
  std::string reason = phase;
  if (!str(pod, {"status", "reason"}).empty()) reason = str(pod, {"status", "reason"});
  for (const auto& c : arr(pod, {"status", "conditions"}))
    if (str(c, {"type"}) == "PodScheduled" && str(c, {"reason"}) == "SchedulingGated") reason = "SchedulingGated";

  if (phase == "Succeeded")
    *rowConditions = json::array({{{"type", "Completed"}, {"status", "True"}, {"reason", "Succeeded"},
                                   {"message", "The pod has completed successfully."}}});
  else if (phase == "Failed")
    *rowConditions = json::array(
        {{{"type", "Completed"}, {"status", "True"}, {"reason", "Failed"}, {"message", "The pod failed."}}});

  const json& initSpecs = arr(pod, {"spec", "initContainers"});
  auto restartable = [&](const std::string& n) {
    for (const auto& c : initSpecs)
      if (str(c, {"name"}) == n) return str(c, {"restartPolicy"}) == "Always";
    return false;
  };
  for (const auto& c : initSpecs)
    if (str(c, {"restartPolicy"}) == "Always") ++total;

  bool initializing = false;
  const json& initStatuses = arr(pod, {"status", "initContainerStatuses"});
  for (size_t i = 0; i < initStatuses.size(); ++i) {
    const json& cs = initStatuses[i];
    restarts += num(cs, {"restartCount"});
    later(lastRestart, cs);
    bool isRestartable = restartable(str(cs, {"name"}));
    if (isRestartable) {
      restartableRestarts += num(cs, {"restartCount"});
      later(lastRestartableRestart, cs);
    }
    bool terminated = has(cs, {"state", "terminated"});
    std::string waitingReason = str(cs, {"state", "waiting", "reason"});
    if (terminated && num(cs, {"state", "terminated", "exitCode"}) == 0) continue;
    if (isRestartable && at(cs, {"started"}) == json(true)) {
      if (at(cs, {"ready"}) == json(true)) ++ready;
      continue;
    }
    if (terminated) {
      std::string r = str(cs, {"state", "terminated", "reason"});
      if (r.empty()) {
        int64_t sig = num(cs, {"state", "terminated", "signal"});
        reason = sig != 0 ? "Init:Signal:" + std::to_string(sig)
                          : "Init:ExitCode:" + std::to_string(num(cs, {"state", "terminated", "exitCode"}));
      } else {
        reason = "Init:" + r;
      }
    } else if (!waitingReason.empty() && waitingReason != "PodInitializing") {
      reason = "Init:" + waitingReason;
    } else {
      reason = "Init:" + std::to_string(i) + "/" + std::to_string(initSpecs.size());
    }
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(arr(pod, {"status", "conditions"}), "Initialized")) {
    restarts = restartableRestarts;
    lastRestart = lastRestartableRestart;
    bool hasRunning = false;
    const json& statuses = arr(pod, {"status", "containerStatuses"});
    for (size_t k = statuses.size(); k-- > 0;) {
      const json& cs = statuses[k];
      restarts += num(cs, {"restartCount"});
      later(lastRestart, cs);
      std::string waiting = str(cs, {"state", "waiting", "reason"});
      bool terminated = has(cs, {"state", "terminated"});
      std::string termReason = str(cs, {"state", "terminated", "reason"});
      if (has(cs, {"state", "waiting"}) && !waiting.empty()) {
        reason = waiting;
      } else if (terminated && !termReason.empty()) {
        reason = termReason;
      } else if (terminated) {
        int64_t sig = num(cs, {"state", "terminated", "signal"});
        reason = sig != 0 ? "Signal:" + std::to_string(sig)
                          : "ExitCode:" + std::to_string(num(cs, {"state", "terminated", "exitCode"}));
      } else if (at(cs, {"ready"}) == json(true) && has(cs, {"state", "running"})) {
        hasRunning = true;
        ++ready;
      }
    }
    if (reason == "Completed" && hasRunning)
      reason = conditionTrue(arr(pod, {"status", "conditions"}), "Ready") ? "Running" : "NotReady";
  }

  bool deleting = has(pod, {"metadata", "deletionTimestamp"});
  if (deleting && str(pod, {"status", "reason"}) == "NodeLost") reason = "Unknown";
  else if (deleting && phase != "Succeeded" && phase != "Failed") reason = "Terminating";

  std::string restartsStr = std::to_string(restarts);
  if (restarts != 0 && lastRestart)
    restartsStr += " (" + humanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - *lastRestart)) + " ago)";

  std::string ip;
  if (!arr(pod, {"status", "podIPs"}).empty()) ip = str(arr(pod, {"status", "podIPs"})[0], {"ip"});
  if (ip.empty()) ip = str(pod, {"status", "podIP"});
  std::string node = str(pod, {"spec", "nodeName"});
  std::string nominated = str(pod, {"status", "nominatedNodeName"});
  std::string gates = "<none>";
  const json& rg = arr(pod, {"spec", "readinessGates"});
  if (!rg.empty()) {
    int trueCount = 0;
    for (const auto& g : rg)
      for (const auto& c : arr(pod, {"status", "conditions"}))
        if (str(c, {"type"}) == str(g, {"conditionType"})) {
          if (str(c, {"status"}) == "True") ++trueCount;
          break;
        }
    gates = std::to_string(trueCount) + "/" + std::to_string(rg.size());
  }
  return json::array({name(pod), std::to_string(ready) + "/" + std::to_string(total), reason, restartsStr,
                      age(pod, now), ip.empty() ? "<none>" : ip, node.empty() ? "<none>" : node,
                      nominated.empty() ? "<none>" : nominated, gates});
}

// ---- services
std::string serviceExternalIP(const json& svc) {
  std::string type = str(svc, {"spec", "type"});
  std::vector<std::string> external;
  for (const auto& ip : arr(svc, {"spec", "externalIPs"}))
    if (ip.is_string()) external.push_back(ip.get<std::string>());
  if (type == "ClusterIP" || type == "NodePort") return external.empty() ? "<none>" : join(external, ",");
  if (type == "LoadBalancer") {
    std::set<std::string> lb;  // sets.NewString: sorted, unique
    for (const auto& in : arr(svc, {"status", "loadBalancer", "ingress"})) {
      if (!str(in, {"ip"}).empty()) lb.insert(str(in, {"ip"}));
      else if (!str(in, {"hostname"}).empty()) lb.insert(str(in, {"hostname"}));
    }
    std::vector<std::string> all(lb.begin(), lb.end());
    if (!external.empty()) {
      all.insert(all.end(), external.begin(), external.end());
      return join(all, ",");
    }
    return all.empty() ? "<pending>" : join(all, ",");
  }
  if (type == "ExternalName") return str(svc, {"spec", "externalName"});
  return "<unknown>";
}

std::string servicePorts(const json& svc) {
  std::vector<std::string> pieces;
  for (const auto& p : arr(svc, {"spec", "ports"})) {
    std::string proto = str(p, {"protocol"});
    int64_t nodePort = num(p, {"nodePort"});
    pieces.push_back(std::to_string(num(p, {"port"})) + (nodePort > 0 ? ":" + std::to_string(nodePort) : "") + "/" +
                     proto);
  }
  return pieces.empty() ? "<none>" : join(pieces, ",");
}

// ---- endpoints
std::string formatEndpoints(const json& ep) {
  const json& subsets = arr(ep, {"subsets"});
  if (subsets.empty()) return "<none>";
  std::vector<std::string> list;
  const size_t max = 3;
  bool more = false;
  size_t count = 0;
  for (const auto& ss : subsets) {
    const json& addrs = arr(ss, {"addresses"});
    const json& ports = arr(ss, {"ports"});
    if (ports.empty()) {
      count += addrs.size();
      for (const auto& a : addrs) {
        if (list.size() == max) {
          more = true;
          break;
        }
        list.push_back(str(a, {"ip"}));
      }
      continue;
    }
    for (const auto& port : ports) {
      count += addrs.size();
      for (const auto& a : addrs) {
        if (list.size() == max) {
          more = true;
          break;
        }
        std::string ip = str(a, {"ip"});
        if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";  // net.JoinHostPort
        list.push_back(ip + ":" + std::to_string(num(port, {"port"})));
      }
    }
  }
  std::string ret = join(list, ",");
  if (more) return ret + " + " + std::to_string(count - max) + " more...";
  return ret;
}

std::string listWithMore(const std::vector<std::string>& list, bool more, size_t count, size_t max) {
  std::string ret = join(list, ",");
  if (more) return ret + " + " + std::to_string(count - max) + " more...";
  return ret.empty() ? "<unset>" : ret;
}

// ---- persistent volumes
std::string accessModes(const json& modes) {
  auto hasMode = [&](const char* m) {
    return std::any_of(modes.begin(), modes.end(), [&](const json& v) { return v == m; });
  };
  std::vector<std::string> out;
  if (hasMode("ReadWriteOnce")) out.push_back("RWO");
  if (hasMode("ReadOnlyMany")) out.push_back("ROX");
  if (hasMode("ReadWriteMany")) out.push_back("RWX");
  if (hasMode("ReadWriteOncePod")) out.push_back("RWOP");
  return join(out, ",");
}
std::string storageClass(const json& o) {
  std::string beta = str(o, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"});
  if (!at(o, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"}).is_null()) return beta;
  return str(o, {"spec", "storageClassName"});
}
std::string quantity(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return "0";
}

// ---- events (core/v1 and events.k8s.io/v1 share kube's printer via the internal type)
json eventAsCore(const json& e) {
  json c = e;
  c["involvedObject"] = at(e, {"regarding"});
  c["message"] = at(e, {"note"});
  c["source"] = at(e, {"deprecatedSource"});
  c["firstTimestamp"] = at(e, {"deprecatedFirstTimestamp"});
  c["lastTimestamp"] = at(e, {"deprecatedLastTimestamp"});
  c["count"] = at(e, {"deprecatedCount"});
  return c;
}

json eventCells(const json& ev, Clock::time_point now) {
  std::string first = has(ev, {"firstTimestamp"}) ? since(at(ev, {"firstTimestamp"}), now)
                                                  : since(at(ev, {"eventTime"}), now);
  std::string last = has(ev, {"lastTimestamp"}) ? since(at(ev, {"lastTimestamp"}), now) : first;
  int64_t count = num(ev, {"count"});
  if (has(ev, {"series"})) {
    last = since(at(ev, {"series", "lastObservedTime"}), now);
    count = num(ev, {"series", "count"});
  } else if (count == 0) {
    count = 1;  // singleton events carry no count in the new API
  }
  std::string kind = str(ev, {"involvedObject", "kind"});
  std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char ch) { return std::tolower(ch); });
  std::string objName = str(ev, {"involvedObject", "name"});
  std::string target = objName.empty() ? kind : kind + "/" + objName;
  std::string component = str(ev, {"source", "component"});
  if (component.empty()) component = str(ev, {"reportingController"});
  std::string host = str(ev, {"source", "host"});
  if (host.empty()) host = str(ev, {"reportingInstance"});
  std::string source = host.empty() ? component : component + ", " + host;
  std::string message = str(ev, {"message"});
  auto notSpace = [](unsigned char ch) { return !std::isspace(ch); };
  message.erase(message.begin(), std::find_if(message.begin(), message.end(), notSpace));
  message.erase(std::find_if(message.rbegin(), message.rend(), notSpace).base(), message.end());
  return json::array({last, str(ev, {"type"}), str(ev, {"reason"}), target, str(ev, {"involvedObject", "fieldPath"}),
                      source, message, first, count, name(ev)});
}

// rbac.SubjectsStrings
json bindingCells(const json& b, Clock::time_point now) {
  std::vector<std::string> users, groups, sas;
  for (const auto& s : arr(b, {"subjects"})) {
    std::string kind = str(s, {"kind"});
    if (kind == "ServiceAccount") sas.push_back(str(s, {"namespace"}) + "/" + str(s, {"name"}));
    else if (kind == "User") users.push_back(str(s, {"name"}));
    else if (kind == "Group") groups.push_back(str(s, {"name"}));
  }
  return json::array({name(b), str(b, {"roleRef", "kind"}) + "/" + str(b, {"roleRef", "name"}), age(b, now),
                      join(users, ", "), join(groups, ", "), join(sas, ", ")});
}

struct Printer {
  std::vector<TableColumn> columns;
  std::function<json(const json&, Clock::time_point, json*)> cells;
};

const std::map<std::string, Printer>& printers() {
  static const std::map<std::string, Printer> table = [] {
    std::map<std::string, Printer> p;
    auto workloadWide = [](const char* selectorDoc) {
      return std::vector<TableColumn>{col("Containers", "string", kContainersDoc, 1),
                                      col("Images", "string", kImagesDoc, 1),
                                      col("Selector", "string", selectorDoc, 1)};
    };
    auto plus = [](std::vector<TableColumn> a, const std::vector<TableColumn>& b) {
      a.insert(a.end(), b.begin(), b.end());
      return a;
    };

    p["/pods"] = {{nameCol(), col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
                   col("Status", "string", "The aggregate status of the containers in this pod."),
                   col("Restarts", "string",
                       "The number of times the containers in this pod have been restarted and when the last "
                       "container in this pod has restarted."),
                   ageCol(),
                   col("IP", "string",
                       "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
                       "allocated.",
                       1),
                   col("Node", "string",
                       "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
                       "for scheduling by the scheduler defined in schedulerName.",
                       1),
                   col("Nominated Node", "string",
                       "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot "
                       "be scheduled right away as preemption victims receive their graceful termination periods.",
                       1),
                   col("Readiness Gates", "string",
                       "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when "
                       "all its containers are ready AND all conditions specified in the readiness gates have "
                       "status equal to \"True\"",
                       1)},
                  [](const json& o, Clock::time_point now, json* conds) { return podCells(o, now, conds); }};

    p["/podtemplates"] = {{nameCol(), col("Containers", "string", kContainersDoc), col("Images", "string", kImagesDoc),
                           col("Pod Labels", "string", "The labels for the pod template.")},
                          [](const json& o, Clock::time_point, json*) {
                            auto [n, i] = layoutContainers(arr(o, {"template", "spec", "containers"}));
                            return json::array({name(o), n, i, formatLabels(at(o, {"template", "metadata", "labels"}))});
                          }};

    p["/namespaces"] = {{nameCol(), col("Status", "string", "The status of the namespace"), ageCol()},
                        [](const json& o, Clock::time_point now, json*) {
                          return json::array({name(o), str(o, {"status", "phase"}), age(o, now)});
                        }};

    p["/services"] = {{nameCol(), col("Type", "string", "type determines how the Service is exposed."),
                       col("Cluster-IP", "string", "clusterIP is the IP address of the service."),
                       col("External-IP", "string",
                           "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
                           "traffic for this service."),
                       col("Port(s)", "string", "The list of ports that are exposed by this service."), ageCol(),
                       col("Selector", "string",
                           "Route service traffic to pods with label keys and values matching this selector.", 1)},
                      [](const json& o, Clock::time_point now, json*) {
                        std::string ip = "<none>";
                        if (!arr(o, {"spec", "clusterIPs"}).empty()) ip = arr(o, {"spec", "clusterIPs"})[0].get<std::string>();
                        else if (!str(o, {"spec", "clusterIP"}).empty()) ip = str(o, {"spec", "clusterIP"});
                        return json::array({name(o), str(o, {"spec", "type"}), ip, serviceExternalIP(o), servicePorts(o),
                                            age(o, now), formatLabels(at(o, {"spec", "selector"}))});
                      }};

    p["/endpoints"] = {{nameCol(),
                        col("Endpoints", "string",
                            "The set of all endpoints is the union of all subsets."),
                        ageCol()},
                       [](const json& o, Clock::time_point now, json*) {
                         return json::array({name(o), formatEndpoints(o), age(o, now)});
                       }};

    p["/configmaps"] = {{nameCol(), col("Data", "string", "Data contains the configuration data."), ageCol()},
                        [](const json& o, Clock::time_point now, json*) {
                          int64_t n = static_cast<int64_t>(at(o, {"data"}).is_object() ? at(o, {"data"}).size() : 0) +
                                      static_cast<int64_t>(at(o, {"binaryData"}).is_object() ? at(o, {"binaryData"}).size() : 0);
                          return json::array({name(o), n, age(o, now)});
                        }};

    p["/secrets"] = {{nameCol(), col("Type", "string", "Used to facilitate programmatic handling of secret data."),
                      col("Data", "string", "Data contains the secret data."), ageCol()},
                     [](const json& o, Clock::time_point now, json*) {
                       std::set<std::string> keys;
                       for (const char* f : {"data", "stringData"}) {
                         const json& d = at(o, {f});
                         if (d.is_object())
                           for (auto it = d.begin(); it != d.end(); ++it) keys.insert(it.key());
                       }
                       return json::array({name(o), str(o, {"type"}), static_cast<int64_t>(keys.size()), age(o, now)});
                     }};

    p["/serviceaccounts"] = {{nameCol(),
                              col("Secrets", "string",
                                  "Secrets is a list of the secrets in the same namespace that pods running using "
                                  "this ServiceAccount are allowed to use."),
                              ageCol()},
                             [](const json& o, Clock::time_point now, json*) {
                               return json::array({name(o), static_cast<int64_t>(arr(o, {"secrets"}).size()), age(o, now)});
                             }};

    p["/nodes"] = {{nameCol(), col("Status", "string", "The status of the node"),
                    col("Roles", "string", "The roles of the node"), ageCol(),
                    col("Version", "string", "Kubelet Version reported by the node."),
                    col("Internal-IP", "string", "List of addresses reachable to the node.", 1),
                    col("External-IP", "string", "List of addresses reachable to the node.", 1),
                    col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
                    col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
                    col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1)},
                   [](const json& o, Clock::time_point now, json*) {
                     std::vector<std::string> status;
                     for (const auto& c : arr(o, {"status", "conditions"}))
                       if (str(c, {"type"}) == "Ready") {
                         status = {str(c, {"status"}) == "True" ? "Ready" : "NotReady"};
                       }
                     if (status.empty()) status.push_back("Unknown");
                     if (at(o, {"spec", "unschedulable"}) == json(true)) status.push_back("SchedulingDisabled");
                     std::set<std::string> roles;
                     const json& labels = at(o, {"metadata", "labels"});
                     if (labels.is_object())
                       for (auto it = labels.begin(); it != labels.end(); ++it) {
                         const std::string prefix = "node-role.kubernetes.io/";
                         if (it.key().rfind(prefix, 0) == 0 && it.key().size() > prefix.size())
                           roles.insert(it.key().substr(prefix.size()));
                         else if (it.key() == "kubernetes.io/role" && it->is_string() && !it->get<std::string>().empty())
                           roles.insert(it->get<std::string>());
                       }
                     std::string rolesStr = join(std::vector<std::string>(roles.begin(), roles.end()), ",");
                     auto address = [&](const char* type) {
                       for (const auto& a : arr(o, {"status", "addresses"}))
                         if (str(a, {"type"}) == type) return str(a, {"address"});
                       return std::string("<none>");
                     };
                     auto unknown = [](std::string s) { return s.empty() ? std::string("<unknown>") : s; };
                     return json::array({name(o), join(status, ","), rolesStr.empty() ? "<none>" : rolesStr, age(o, now),
                                         str(o, {"status", "nodeInfo", "kubeletVersion"}), address("InternalIP"),
                                         address("ExternalIP"), unknown(str(o, {"status", "nodeInfo", "osImage"})),
                                         unknown(str(o, {"status", "nodeInfo", "kernelVersion"})),
                                         unknown(str(o, {"status", "nodeInfo", "containerRuntimeVersion"}))});
                   }};

    std::vector<TableColumn> eventColumns = {
        col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
        col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
        col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        col("Object", "string", "The object that this event is about."),
        col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].", 1),
        col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1),
        col("Message", "string", "A human-readable description of the status of this operation."),
        col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
        col("Count", "string", "The number of times this event has occurred.", 1),
        nameCol(1)};
    p["/events"] = {eventColumns, [](const json& o, Clock::time_point now, json*) { return eventCells(o, now); }};
    p["events.k8s.io/events"] = {eventColumns, [](const json& o, Clock::time_point now, json*) {
                                   return eventCells(eventAsCore(o), now);
                                 }};

    p["/persistentvolumes"] = {{nameCol(), col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
                                col("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
                                col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
                                col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
                                col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
                                col("StorageClass", "string", "StorageClass of the pv"),
                                col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
                                col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
                                ageCol(),
                                col("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.", 1)},
                               [](const json& o, Clock::time_point now, json*) {
                                 std::string claim;
                                 if (has(o, {"spec", "claimRef"}))
                                   claim = str(o, {"spec", "claimRef", "namespace"}) + "/" + str(o, {"spec", "claimRef", "name"});
                                 std::string phase = has(o, {"metadata", "deletionTimestamp"}) ? "Terminating" : str(o, {"status", "phase"});
                                 std::string vm = has(o, {"spec", "volumeMode"}) ? str(o, {"spec", "volumeMode"}) : "<unset>";
                                 std::string vac = has(o, {"spec", "volumeAttributesClassName"}) ? str(o, {"spec", "volumeAttributesClassName"}) : "<unset>";
                                 return json::array({name(o), quantity(at(o, {"spec", "capacity", "storage"})),
                                                     accessModes(arr(o, {"spec", "accessModes"})),
                                                     str(o, {"spec", "persistentVolumeReclaimPolicy"}), phase, claim,
                                                     storageClass(o), vac, str(o, {"status", "reason"}), age(o, now), vm});
                               }};

    p["/persistentvolumeclaims"] = {{nameCol(), col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
                                     col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
                                     col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
                                     col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has."),
                                     col("StorageClass", "string", "StorageClass of the pvc"),
                                     col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"), ageCol(),
                                     col("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim.", 1)},
                                    [](const json& o, Clock::time_point now, json*) {
                                      std::string phase = has(o, {"metadata", "deletionTimestamp"}) ? "Terminating" : str(o, {"status", "phase"});
                                      std::string capacity, modes;
                                      std::string volume = str(o, {"spec", "volumeName"});
                                      if (!volume.empty()) {
                                        modes = accessModes(arr(o, {"status", "accessModes"}));
                                        capacity = quantity(at(o, {"status", "capacity", "storage"}));
                                      }
                                      std::string vm = has(o, {"spec", "volumeMode"}) ? str(o, {"spec", "volumeMode"}) : "<unset>";
                                      std::string vac = has(o, {"spec", "volumeAttributesClassName"}) ? str(o, {"spec", "volumeAttributesClassName"}) : "<unset>";
                                      return json::array({name(o), phase, volume, capacity, modes, storageClass(o), vac, age(o, now), vm});
                                    }};

    p["/resourcequotas"] = {{nameCol(), col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
                             col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
                             ageCol()},
                            [](const json& o, Clock::time_point now, json*) {
                              std::string request, limit;
                              const json& hard = at(o, {"status", "hard"});
                              if (hard.is_object())
                                for (auto it = hard.begin(); it != hard.end(); ++it) {  // sorted by name
                                  std::string entry = it.key() + ": " + quantity(at(o, {"status", "used", it.key().c_str()})) +
                                                      "/" + quantity(*it) + ", ";
                                  (it.key().rfind("limits.", 0) == 0 ? limit : request) += entry;
                                }
                              auto trim = [](std::string s) {
                                if (s.size() >= 2 && s.compare(s.size() - 2, 2, ", ") == 0) s.resize(s.size() - 2);
                                return s;
                              };
                              return json::array({name(o), trim(request), trim(limit), age(o, now)});
                            }};

    p["/replicationcontrollers"] = {plus({nameCol(), col("Desired", "integer", "Replicas is the number of desired replicas."),
                                          col("Current", "integer", "Replicas is the most recently observed number of replicas."),
                                          col("Ready", "integer", "The number of ready replicas for this replication controller."), ageCol()},
                                         workloadWide("Selector is a label query over pods that should match the Replicas count.")),
                                    [](const json& o, Clock::time_point now, json*) {
                                      auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                                      return json::array({name(o), num(o, {"spec", "replicas"}), num(o, {"status", "replicas"}),
                                                          num(o, {"status", "readyReplicas"}), age(o, now), n, i,
                                                          formatLabels(at(o, {"spec", "selector"}))});
                                    }};

    p["apps/deployments"] = {plus({nameCol(), col("Ready", "string", "Number of the pod with ready state"),
                                   col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                                   col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                                   ageCol()},
                                  workloadWide(kSelectorDoc)),
                             [](const json& o, Clock::time_point now, json*) {
                               auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                               return json::array({name(o),
                                                   std::to_string(num(o, {"status", "readyReplicas"})) + "/" +
                                                       std::to_string(num(o, {"spec", "replicas"})),
                                                   num(o, {"status", "updatedReplicas"}), num(o, {"status", "availableReplicas"}),
                                                   age(o, now), n, i, selectorString(at(o, {"spec", "selector"}))});
                             }};

    p["apps/replicasets"] = {plus({nameCol(), col("Desired", "integer", "Replicas is the number of desired replicas."),
                                   col("Current", "integer", "Replicas is the most recently observed number of replicas."),
                                   col("Ready", "integer", "The number of ready replicas for this replica set."), ageCol()},
                                  workloadWide("Selector is a label query over pods that should match the replica count.")),
                             [](const json& o, Clock::time_point now, json*) {
                               auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                               return json::array({name(o), num(o, {"spec", "replicas"}), num(o, {"status", "replicas"}),
                                                   num(o, {"status", "readyReplicas"}), age(o, now), n, i,
                                                   formatLabelSelector(at(o, {"spec", "selector"}))});
                             }};

    p["apps/statefulsets"] = {{nameCol(), col("Ready", "string", "Number of the pod with ready state"), ageCol(),
                               col("Containers", "string", kContainersDoc, 1), col("Images", "string", kImagesDoc, 1)},
                              [](const json& o, Clock::time_point now, json*) {
                                auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                                return json::array({name(o),
                                                    std::to_string(num(o, {"status", "readyReplicas"})) + "/" +
                                                        std::to_string(num(o, {"spec", "replicas"})),
                                                    age(o, now), n, i});
                              }};

    p["apps/daemonsets"] = {plus({nameCol(), col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
                                  col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
                                  col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
                                  col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
                                  col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
                                  col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node."),
                                  ageCol()},
                                 workloadWide("A label query over pods that are managed by the daemon set.")),
                            [](const json& o, Clock::time_point now, json*) {
                              auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                              return json::array({name(o), num(o, {"status", "desiredNumberScheduled"}),
                                                  num(o, {"status", "currentNumberScheduled"}), num(o, {"status", "numberReady"}),
                                                  num(o, {"status", "updatedNumberScheduled"}), num(o, {"status", "numberAvailable"}),
                                                  formatLabels(at(o, {"spec", "template", "spec", "nodeSelector"})), age(o, now), n, i,
                                                  formatLabelSelector(at(o, {"spec", "selector"}))});
                            }};

    p["apps/controllerrevisions"] = {{nameCol(), col("Controller", "string", "Controller of the object"),
                                      col("Revision", "string", "Revision indicates the revision of the state represented by Data."),
                                      ageCol()},
                                     [](const json& o, Clock::time_point now, json*) {
                                       std::string controller = "<none>";
                                       for (const auto& ref : arr(o, {"metadata", "ownerReferences"}))
                                         if (at(ref, {"controller"}) == json(true)) {
                                           std::string apiVersion = str(ref, {"apiVersion"});
                                           auto slash = apiVersion.find('/');
                                           std::string group = slash == std::string::npos ? "" : apiVersion.substr(0, slash);
                                           std::string gk = str(ref, {"kind"}) + (group.empty() ? "" : "." + group);
                                           std::transform(gk.begin(), gk.end(), gk.begin(), [](unsigned char c) { return std::tolower(c); });
                                           controller = gk.empty() ? str(ref, {"name"}) : gk + "/" + str(ref, {"name"});
                                           break;
                                         }
                                       return json::array({name(o), controller, num(o, {"revision"}), age(o, now)});
                                     }};

    p["batch/jobs"] = {plus({nameCol(), col("Status", "string", "Status of the job."),
                             col("Completions", "string", "The number of pods which reached phase Succeeded."),
                             col("Duration", "string", "Time required to complete the job."), ageCol()},
                            workloadWide("A label query over pods that should match the pod count.")),
                       [](const json& o, Clock::time_point now, json*) {
                         int64_t succeeded = num(o, {"status", "succeeded"});
                         std::string completions;
                         if (has(o, {"spec", "completions"})) {
                           completions = std::to_string(succeeded) + "/" + std::to_string(num(o, {"spec", "completions"}));
                         } else {
                           int64_t parallelism = num(o, {"spec", "parallelism"});
                           completions = parallelism > 1 ? std::to_string(succeeded) + "/1 of " + std::to_string(parallelism)
                                                         : std::to_string(succeeded) + "/1";
                         }
                         std::string duration;
                         auto start = has(o, {"status", "startTime"}) ? parseTime(str(o, {"status", "startTime"})) : std::nullopt;
                         auto done = has(o, {"status", "completionTime"}) ? parseTime(str(o, {"status", "completionTime"})) : std::nullopt;
                         if (start)
                           duration = humanDuration(std::chrono::duration_cast<std::chrono::seconds>((done ? *done : now) - *start));
                         const json& conds = arr(o, {"status", "conditions"});
                         std::string status = conditionTrue(conds, "Complete")                ? "Complete"
                                              : conditionTrue(conds, "Failed")                ? "Failed"
                                              : has(o, {"metadata", "deletionTimestamp"})     ? "Terminating"
                                              : conditionTrue(conds, "Suspended")             ? "Suspended"
                                              : conditionTrue(conds, "FailureTarget")         ? "FailureTarget"
                                                                                              : "Running";
                         auto [n, i] = layoutContainers(arr(o, {"spec", "template", "spec", "containers"}));
                         return json::array({name(o), status, completions, duration, age(o, now), n, i,
                                             formatLabelSelector(at(o, {"spec", "selector"}))});
                       }};

    p["batch/cronjobs"] = {plus({nameCol(), col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
                                 col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
                                 col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions."),
                                 col("Active", "integer", "A list of pointers to currently running jobs."),
                                 col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
                                 ageCol()},
                                workloadWide("A label query over pods that should match the pod count.")),
                           [](const json& o, Clock::time_point now, json*) {
                             std::string last = has(o, {"status", "lastScheduleTime"}) ? since(at(o, {"status", "lastScheduleTime"}), now) : "<none>";
                             std::string tz = has(o, {"spec", "timeZone"}) ? str(o, {"spec", "timeZone"}) : "<none>";
                             const json& suspend = at(o, {"spec", "suspend"});
                             std::string suspendStr = suspend.is_boolean() ? (suspend.get<bool>() ? "True" : "False") : "<unset>";
                             auto [n, i] = layoutContainers(arr(o, {"spec", "jobTemplate", "spec", "template", "spec", "containers"}));
                             return json::array({name(o), str(o, {"spec", "schedule"}), tz, suspendStr,
                                                 static_cast<int64_t>(arr(o, {"status", "active"}).size()), last, age(o, now), n, i,
                                                 formatLabelSelector(at(o, {"spec", "jobTemplate", "spec", "selector"}))});
                           }};

    p["coordination.k8s.io/leases"] = {{nameCol(), col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease."), ageCol()},
                                       [](const json& o, Clock::time_point now, json*) {
                                         return json::array({name(o), str(o, {"spec", "holderIdentity"}), age(o, now)});
                                       }};

    p["discovery.k8s.io/endpointslices"] = {{nameCol(), col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice."),
                                             col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice."),
                                             col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."), ageCol()},
                                            [](const json& o, Clock::time_point now, json*) {
                                              std::vector<std::string> ports, addrs;
                                              const size_t max = 3;
                                              bool morePorts = false, moreAddrs = false;
                                              size_t portCount = 0, addrCount = 0;
                                              for (const auto& p : arr(o, {"ports"})) {
                                                if (ports.size() < max) {
                                                  std::string s = "*";
                                                  if (at(p, {"port"}).is_number()) s = std::to_string(num(p, {"port"}));
                                                  else if (at(p, {"name"}).is_string()) s = str(p, {"name"});
                                                  ports.push_back(s);
                                                } else if (ports.size() == max) {
                                                  morePorts = true;
                                                }
                                                ++portCount;
                                              }
                                              for (const auto& e : arr(o, {"endpoints"}))
                                                for (const auto& a : arr(e, {"addresses"})) {
                                                  if (addrs.size() < max) addrs.push_back(a.is_string() ? a.get<std::string>() : "");
                                                  else if (addrs.size() == max) moreAddrs = true;
                                                  ++addrCount;
                                                }
                                              return json::array({name(o), str(o, {"addressType"}),
                                                                  listWithMore(ports, morePorts, portCount, max),
                                                                  listWithMore(addrs, moreAddrs, addrCount, max), age(o, now)});
                                            }};

    p["policy/poddisruptionbudgets"] = {{nameCol(), col("Min Available", "string", "The minimum number of pods that must be available."),
                                         col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
                                         col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
                                         ageCol()},
                                        [](const json& o, Clock::time_point now, json*) {
                                          std::string minA = has(o, {"spec", "minAvailable"}) ? intOrString(at(o, {"spec", "minAvailable"})) : "N/A";
                                          std::string maxU = has(o, {"spec", "maxUnavailable"}) ? intOrString(at(o, {"spec", "maxUnavailable"})) : "N/A";
                                          return json::array({name(o), minA, maxU, num(o, {"status", "disruptionsAllowed"}), age(o, now)});
                                        }};

    p["scheduling.k8s.io/priorityclasses"] = {{nameCol(), col("Value", "integer", "value represents the integer value of this priority class."),
                                               col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
                                               ageCol(),
                                               col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority.", 1)},
                                              [](const json& o, Clock::time_point now, json*) {
                                                return json::array({name(o), num(o, {"value"}), at(o, {"globalDefault"}) == json(true),
                                                                    age(o, now), str(o, {"preemptionPolicy"})});
                                              }};

    auto bindingColumns = [](const std::string& what) {
      return std::vector<TableColumn>{nameCol(),
                                      col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
                                      ageCol(), col("Users", "string", "Users in the " + what, 1),
                                      col("Groups", "string", "Groups in the " + what, 1),
                                      col("ServiceAccounts", "string", "ServiceAccounts in the " + what, 1)};
    };
    p["rbac.authorization.k8s.io/rolebindings"] = {bindingColumns("roleBinding"),
                                                   [](const json& o, Clock::time_point now, json*) { return bindingCells(o, now); }};
    p["rbac.authorization.k8s.io/clusterrolebindings"] = {bindingColumns("clusterRoleBinding"),
                                                          [](const json& o, Clock::time_point now, json*) { return bindingCells(o, now); }};
    return p;
  }();
  return table;
}

const Printer* printerFor(const ResourceInfo& info) {
  if (info.custom) return nullptr;
  auto it = printers().find(info.group + "/" + info.resource);
  return it == printers().end() ? nullptr : &it->second;
}

// ---- the default table (rest.NewDefaultTableConvertor): Name and "Created At".
std::vector<TableColumn> defaultColumns() {
  return {nameCol(), col("Created At", "date", kAgeDoc)};
}
json defaultCells(const json& o) {
  std::string created = "0001-01-01T00:00:00Z";
  if (auto t = parseTime(str(o, {"metadata", "creationTimestamp"}))) created = formatTime(*t);
  return json::array({name(o), created});
}

// ---- custom resources: additionalPrinterColumns evaluated with kube's simple JSONPath.

// Evaluates `path` (".spec.replicas", ".status.conditions[?(@.type=="Ready")].status",
// ".items[0]", ".a[*].b", "['dotted.key']") against `root`; every match, in order.
class JsonPath {
 public:
  explicit JsonPath(std::string path) : p_(std::move(path)) {
    if (p_.size() >= 2 && p_.front() == '{' && p_.back() == '}') p_ = p_.substr(1, p_.size() - 2);
  }
  std::vector<json> eval(const json& root) const {
    std::vector<json> cur{root};
    size_t i = 0;
    if (!p_.empty() && p_[0] == '$') ++i;
    while (i < p_.size()) {
      std::vector<json> next;
      if (p_[i] == '.') {
        ++i;
        std::string key;
        while (i < p_.size() && p_[i] != '.' && p_[i] != '[') {
          if (p_[i] == '\\' && i + 1 < p_.size()) ++i;
          key += p_[i++];
        }
        if (key.empty()) continue;
        for (const auto& v : cur) {
          if (key == "*") {
            if (v.is_object() || v.is_array())
              for (const auto& e : v) next.push_back(e);
          } else if (v.is_object() && v.contains(key)) {
            next.push_back(v.at(key));
          }
        }
      } else if (p_[i] == '[') {
        size_t close = matching(i);
        if (close == std::string::npos) return {};
        std::string inner = p_.substr(i + 1, close - i - 1);
        i = close + 1;
        for (const auto& v : cur) select(v, inner, next);
      } else {
        // A leading name without a dot ("spec.replicas").
        std::string key;
        while (i < p_.size() && p_[i] != '.' && p_[i] != '[') key += p_[i++];
        for (const auto& v : cur)
          if (v.is_object() && v.contains(key)) next.push_back(v.at(key));
      }
      cur = std::move(next);
      if (cur.empty()) return cur;
    }
    return cur;
  }

 private:
  size_t matching(size_t open) const {
    int depth = 0;
    char quote = 0;
    for (size_t j = open; j < p_.size(); ++j) {
      char c = p_[j];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '[') {
        ++depth;
      } else if (c == ']' && --depth == 0) {
        return j;
      }
    }
    return std::string::npos;
  }

  static std::string trim(std::string s) {
    auto ns = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), ns));
    s.erase(std::find_if(s.rbegin(), s.rend(), ns).base(), s.end());
    return s;
  }

  static std::optional<json> literal(const std::string& s) {
    std::string t = trim(s);
    if (t.size() >= 2 && (t.front() == '"' || t.front() == '\'') && t.back() == t.front())
      return json(t.substr(1, t.size() - 2));
    try {
      return json::parse(t);
    } catch (...) {
      return std::nullopt;
    }
  }

  static void select(const json& v, const std::string& inner, std::vector<json>& out) {
    std::string in = trim(inner);
    if (in == "*") {
      if (v.is_array() || v.is_object())
        for (const auto& e : v) out.push_back(e);
      return;
    }
    if (in.size() >= 2 && (in.front() == '\'' || in.front() == '"')) {
      std::string key = in.substr(1, in.size() - 2);
      if (v.is_object() && v.contains(key)) out.push_back(v.at(key));
      return;
    }
    if (in.rfind("?(", 0) == 0 && in.back() == ')') {
      std::string expr = in.substr(2, in.size() - 3);
      static const char* ops[] = {"==", "!=", "<=", ">=", "<", ">"};
      std::string op, lhs, rhs;
      for (const char* o : ops) {
        auto pos = expr.find(o);
        if (pos != std::string::npos) {
          op = o;
          lhs = trim(expr.substr(0, pos));
          rhs = expr.substr(pos + op.size());
          break;
        }
      }
      if (!v.is_array()) return;
      for (const auto& e : v) {
        std::string sub = op.empty() ? trim(expr) : lhs;
        if (sub.rfind("@", 0) != 0) continue;
        auto found = JsonPath(sub.substr(1)).eval(e);
        if (op.empty()) {
          if (!found.empty()) out.push_back(e);
          continue;
        }
        auto lit = literal(rhs);
        if (found.empty() || !lit) continue;
        const json& a = found[0];
        bool match = false;
        if (op == "==") match = a == *lit;
        else if (op == "!=") match = a != *lit;
        else if (a.is_number() && lit->is_number()) {
          double x = a.get<double>(), y = lit->get<double>();
          match = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y;
        }
        if (match) out.push_back(e);
      }
      return;
    }
    if (!v.is_array()) return;
    auto colon = in.find(':');
    long n = static_cast<long>(v.size());
    try {
      if (colon == std::string::npos) {
        long idx = std::stol(in);
        if (idx < 0) idx += n;
        if (idx >= 0 && idx < n) out.push_back(v[static_cast<size_t>(idx)]);
      } else {
        std::string a = trim(in.substr(0, colon)), b = trim(in.substr(colon + 1));
        long s = a.empty() ? 0 : std::stol(a), e = b.empty() ? n : std::stol(b);
        if (s < 0) s += n;
        if (e < 0) e += n;
        for (long k = std::max(0L, s); k < std::min(n, e); ++k) out.push_back(v[static_cast<size_t>(k)]);
      }
    } catch (...) {
    }
  }

  std::string p_;
};

// What the jsonpath printer writes for a value in a "string" column.
std::string printedValue(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
  }
  return v.dump();
}

// cellForJSONValue of the apiextensions table convertor.
json customCell(const TableColumn& c, const json& object, Clock::time_point now) {
  auto results = JsonPath(c.jsonPath).eval(object);
  if (results.empty() || results[0].is_null()) return nullptr;
  const json& v = results[0];
  if (c.type == "string") return printedValue(v);
  if (c.type == "integer") {
    if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
    if (v.is_number_float()) return static_cast<int64_t>(v.get<double>());
    return nullptr;
  }
  if (c.type == "number") return v.is_number() ? json(v.get<double>()) : json();
  if (c.type == "boolean") return v.is_boolean() ? v : json();
  if (c.type == "date") {
    if (!v.is_string()) return nullptr;
    auto t = parseTime(v.get<std::string>());
    if (!t) return "<invalid>";
    return humanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
  }
  return nullptr;
}

std::vector<TableColumn> customColumns(const ResourceInfo& info) {
  std::vector<TableColumn> out{nameCol()};
  std::vector<TableColumn> extra;
  for (const auto& c : info.columns) {
    if (c.jsonPath.empty() && (c.format == "name" || c.name == "Name" || c.name == "NAME")) continue;
    extra.push_back(c);
  }
  if (extra.empty()) {
    // A CRD version without additionalPrinterColumns prints Age.
    TableColumn age = col("Age", "date", kAgeDoc);
    age.jsonPath = ".metadata.creationTimestamp";
    extra.push_back(age);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

}  // namespace

std::string humanDuration(std::chrono::seconds d) {
  // duration.HumanDuration (k8s.io/apimachinery/pkg/util/duration).
  long long seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return std::to_string(seconds) + "s";
  long long minutes = seconds / 60;
  if (minutes < 10) {
    long long s = seconds % 60;
    return s == 0 ? std::to_string(minutes) + "m" : std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 60 * 3) return std::to_string(minutes) + "m";
  long long hours = seconds / 3600;
  if (hours < 8) {
    long long m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h" : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    long long h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d" : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    return dy == 0 ? std::to_string(hours / 24 / 365) + "y"
                   : std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::vector<TableColumn> tableColumns(const ResourceInfo& info) {
  if (info.custom) return customColumns(info);
  if (const Printer* p = printerFor(info)) return p->columns;
  return defaultColumns();
}

nlohmann::json tableCells(const ResourceInfo& info, const nlohmann::json& object,
                          std::chrono::system_clock::time_point now) {
  if (info.custom) {
    json cells = json::array({name(object)});
    auto cols = customColumns(info);
    for (size_t i = 1; i < cols.size(); ++i) cells.push_back(customCell(cols[i], object, now));
    return cells;
  }
  if (const Printer* p = printerFor(info)) {
    json conditions;
    return p->cells(object, now, &conditions);
  }
  return defaultCells(object);
}

nlohmann::json buildTable(const ResourceInfo& info, const std::vector<nlohmann::json>& objects,
                          const std::string& includeObject, const std::string& resourceVersion,
                          const std::string& continueToken,
                          std::chrono::system_clock::time_point now) {
  json columns = json::array();
  for (const auto& c : tableColumns(info))
    columns.push_back({{"name", c.name},
                       {"type", c.type},
                       {"format", c.format},
                       {"description", c.description},
                       {"priority", c.priority}});
  const Printer* printer = printerFor(info);
  json rows = json::array();
  for (const auto& o : objects) {
    json row = json::object();
    json conditions;
    if (printer) row["cells"] = printer->cells(o, now, &conditions);
    else row["cells"] = tableCells(info, o, now);
    if (conditions.is_array() && !conditions.empty()) row["conditions"] = conditions;
    if (includeObject == "Object") {
      row["object"] = o;
    } else if (includeObject != "None") {  // Metadata is the default
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", o.contains("metadata") ? o.at("metadata") : json::object()}};
    }
    rows.push_back(std::move(row));
  }
  json meta = json::object();
  if (!resourceVersion.empty()) meta["resourceVersion"] = resourceVersion;
  if (!continueToken.empty()) meta["continue"] = continueToken;
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", meta},
          {"columnDefinitions", columns},
          {"rows", rows}};
}

}  // namespace orrery::api
