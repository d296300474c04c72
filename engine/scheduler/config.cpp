// KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): kube's defaults, and the file
// format merged onto them the way kube-scheduler does (mergePluginSet on the default
// multiPoint set, then the framework's multiPoint expansion per extension point).

#include <algorithm>
#include <set>

#include "engine/api/yaml.h"
#include "engine/scheduler/framework.h"
#include "engine/scheduler/plugins/registry.h"

namespace orrery::scheduler {

namespace {

using json = nlohmann::json;

struct PluginSet {
  std::vector<PluginRef> enabled;
  std::vector<std::string> disabled;
};

// getDefaultPlugins() of kube-scheduler 1.32 (v1): everything through multiPoint.
std::vector<PluginRef> defaultMultiPoint() {
  return {{"SchedulingGates", 0},
          {"PrioritySort", 0},
          {"NodeUnschedulable", 0},
          {"NodeName", 0},
          {"TaintToleration", 3},
          {"NodeAffinity", 2},
          {"NodePorts", 0},
          {"NodeResourcesFit", 1},
          {"VolumeRestrictions", 0},
          {"NodeVolumeLimits", 0},
          {"VolumeBinding", 0},
          {"VolumeZone", 0},
          {"PodTopologySpread", 2},
          {"InterPodAffinity", 2},
          {"DefaultPreemption", 0},
          {"NodeResourcesBalancedAllocation", 1},
          {"ImageLocality", 1},
          {"DefaultBinder", 0}};
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// v1 mergePluginSet: defaults in order (minus disabled, replaced in place by a custom entry of
// the same name), then the remaining custom entries.
PluginSet mergePluginSet(const std::vector<PluginRef>& defaults, const PluginSet& custom) {
  PluginSet out;
  out.disabled = custom.disabled;
  std::set<size_t> replaced;
  if (!has(custom.disabled, "*")) {
    for (const auto& d : defaults) {
      if (has(custom.disabled, d.name)) continue;
      PluginRef ref = d;
      for (size_t i = 0; i < custom.enabled.size(); ++i) {
        if (custom.enabled[i].name == d.name) {
          ref = custom.enabled[i];
          replaced.insert(i);
          break;
        }
      }
      out.enabled.push_back(ref);
    }
  }
  for (size_t i = 0; i < custom.enabled.size(); ++i)
    if (!replaced.count(i)) out.enabled.push_back(custom.enabled[i]);
  return out;
}

struct PointDef {
  const char* field;  // plugins.<field>
  const char* iface;  // kube's interface name
  uint32_t bit;
  std::vector<PluginRef> ProfileConfig::*list;
};

const std::vector<PointDef>& pointDefs() {
  static const std::vector<PointDef> defs = {
      {"preFilter", "PreFilterPlugin", kPointPreFilter, &ProfileConfig::preFilter},
      {"filter", "FilterPlugin", kPointFilter, &ProfileConfig::filter},
      {"postFilter", "PostFilterPlugin", kPointPostFilter, &ProfileConfig::postFilter},
      {"preScore", "PreScorePlugin", kPointPreScore, &ProfileConfig::preScore},
      {"score", "ScorePlugin", kPointScore, &ProfileConfig::score},
  };
  return defs;
}

// The framework's expandMultiPointPlugins for one extension point.
Result<std::vector<PluginRef>> expandPoint(const PointDef& def, const PluginSet& multi, const PluginSet& point,
                                           const std::string& path) {
  std::vector<PluginRef> out;
  if (has(point.disabled, "*")) {
    for (const auto& p : point.enabled)
      if (!isAcceptedNoopPlugin(p.name)) out.push_back(p);
    return out;
  }
  auto inPoint = [&](const std::string& name) -> const PluginRef* {
    for (const auto& p : point.enabled)
      if (p.name == name) return &p;
    return nullptr;
  };
  std::vector<PluginRef> multiEnabled;
  std::set<std::string> overrides;
  for (const auto& m : multi.enabled) {
    if (!(pluginExtensionPoints(m.name) & def.bit)) continue;
    if (has(point.disabled, m.name)) continue;
    if (inPoint(m.name)) {
      overrides.insert(m.name);
      continue;
    }
    for (const auto& e : multiEnabled)
      if (e.name == m.name)
        return Status::badRequest(path + ": Invalid value: \"" + m.name + "\": plugin \"" + m.name +
                                  "\" already registered as \"" + def.iface + "\"");
    multiEnabled.push_back(m);
  }
  auto weightOf = [&](const PluginRef& p) {
    PluginRef r = p;
    if (r.weight <= 0)
      for (const auto& m : multi.enabled)
        if (m.name == p.name && m.weight > 0) r.weight = m.weight;
    if (r.weight <= 0) r.weight = 1;
    return r;
  };
  for (const auto& p : point.enabled)
    if (overrides.count(p.name)) out.push_back(weightOf(p));
  for (const auto& p : multiEnabled) out.push_back(weightOf(p));
  for (const auto& p : point.enabled)
    if (!overrides.count(p.name)) out.push_back(weightOf(p));
  std::vector<PluginRef> filtered;
  for (auto& p : out)
    if (!isAcceptedNoopPlugin(p.name)) filtered.push_back(std::move(p));
  if (def.bit != kPointScore)
    for (auto& p : filtered) p.weight = 0;
  return filtered;
}

Result<ProfileConfig> resolveProfile(const std::string& schedulerName, const PluginSet& multiCustom,
                                     const std::map<std::string, PluginSet>& pointsCustom, const std::string& path) {
  ProfileConfig profile;
  profile.schedulerName = schedulerName;
  PluginSet multi = mergePluginSet(defaultMultiPoint(), multiCustom);
  for (const auto& def : pointDefs()) {
    PluginSet point;
    if (auto it = pointsCustom.find(def.field); it != pointsCustom.end()) point = it->second;
    auto list = expandPoint(def, multi, point, path + ".plugins." + def.field);
    if (!list) return list.status();
    profile.*(def.list) = std::move(*list);
  }
  return profile;
}

Status invalid(const std::string& field, const std::string& valueAndWhy) {
  return Status::badRequest(field + ": Invalid value: " + valueAndWhy);
}

Result<PluginSet> parsePluginSet(const json& j, const std::string& path, const PointDef* def) {
  PluginSet set;
  if (j.is_null()) return set;
  if (!j.is_object()) return invalid(path, j.dump() + ": must be an object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "enabled" && it.key() != "disabled")
      return Status::badRequest(path + ": strict decoding error: unknown field \"" + it.key() + "\"");
  for (const char* which : {"enabled", "disabled"}) {
    auto list = j.find(which);
    if (list == j.end() || list->is_null()) continue;
    if (!list->is_array()) return invalid(path + "." + which, list->dump() + ": must be a list");
    for (size_t i = 0; i < list->size(); ++i) {
      const auto& p = (*list)[i];
      std::string pp = path + "." + which + "[" + std::to_string(i) + "]";
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || p["name"].get<std::string>().empty())
        return Status::badRequest(pp + ".name: Required value");
      std::string name = p["name"].get<std::string>();
      if (std::string(which) == "disabled") {
        set.disabled.push_back(name);
        continue;
      }
      uint32_t points = pluginExtensionPoints(name);
      if (points == 0) return invalid(pp + ".name", "\"" + name + "\": plugin not found");
      if (def && !(points & def->bit) && !isAcceptedNoopPlugin(name))
        return invalid(pp + ".name", "\"" + name + "\": plugin does not extend " + def->iface);
      PluginRef ref{name, 0};
      if (auto w = p.find("weight"); w != p.end() && !w->is_null()) {
        if (!w->is_number_integer()) return invalid(pp + ".weight", w->dump() + ": must be an integer");
        ref.weight = w->get<int32_t>();
        if (ref.weight < 0) return invalid(pp + ".weight", std::to_string(ref.weight) + ": must be a non-negative value");
      }
      set.enabled.push_back(ref);
    }
  }
  return set;
}

}  // namespace

SchedulerConfig defaultSchedulerConfig() {
  SchedulerConfig config;
  auto profile = resolveProfile("default-scheduler", {}, {}, "profiles[0]");
  config.profiles.push_back(std::move(*profile));
  return config;
}

Result<SchedulerConfig> parseSchedulerConfig(const std::string& text) {
  auto doc = api::yamlToJson(text);
  if (!doc) return Status::badRequest("decoding scheduler configuration: " + doc.status().message());
  try {
    const json& j = *doc;
    if (!j.is_object()) return Status::badRequest("decoding scheduler configuration: must be an object");
    std::string apiVersion = j.value("apiVersion", std::string());
    std::string kind = j.value("kind", std::string());
    if (kind != "KubeSchedulerConfiguration")
      return Status::badRequest("kind: Invalid value: \"" + kind + "\": must be \"KubeSchedulerConfiguration\"");
    if (apiVersion != "kubescheduler.config.k8s.io/v1")
      return Status::badRequest("no kind \"KubeSchedulerConfiguration\" is registered for version \"" + apiVersion +
                                "\" (supported: \"kubescheduler.config.k8s.io/v1\")");
    static const std::set<std::string> known = {
        "apiVersion", "kind", "parallelism", "percentageOfNodesToScore", "podInitialBackoffSeconds",
        "podMaxBackoffSeconds", "profiles", "extenders", "leaderElection", "clientConnection",
        "healthzBindAddress", "metricsBindAddress", "enableProfiling", "enableContentionProfiling",
        "delayCacheUntilActive",
        // Orrery's own: the decision history's bounds, and kube's OpportunisticBatching
        // feature gate (a command-line flag of kube-scheduler).
        "decisionsPerPod", "decisionHistoryBytes", "opportunisticBatching"};
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!known.count(it.key())) return Status::badRequest("strict decoding error: unknown field \"" + it.key() + "\"");
    if (j.contains("extenders") && j["extenders"].is_array() && !j["extenders"].empty())
      return Status::badRequest("extenders: Forbidden: scheduler extenders are not supported by Orrery");

    SchedulerConfig config;
    auto intField = [&](const char* name, auto& into) -> Status {
      auto it = j.find(name);
      if (it == j.end() || it->is_null()) return Status::ok();
      if (!it->is_number_integer()) return invalid(name, it->dump() + ": must be an integer");
      into = it->get<std::decay_t<decltype(into)>>();
      return Status::ok();
    };
    for (auto s : {intField("parallelism", config.parallelism),
                   intField("percentageOfNodesToScore", config.percentageOfNodesToScore),
                   intField("podInitialBackoffSeconds", config.podInitialBackoffSeconds),
                   intField("podMaxBackoffSeconds", config.podMaxBackoffSeconds),
                   intField("decisionsPerPod", config.decisionsPerPod),
                   intField("decisionHistoryBytes", config.decisionHistoryBytes)})
      if (!s) return s;
    if (config.parallelism <= 0)
      return invalid("parallelism", std::to_string(config.parallelism) + ": should be an integer value greater than zero");
    if (config.percentageOfNodesToScore < 0 || config.percentageOfNodesToScore > 100)
      return invalid("percentageOfNodesToScore", std::to_string(config.percentageOfNodesToScore) + ": not in valid range [0-100]");
    if (config.podInitialBackoffSeconds <= 0)
      return invalid("podInitialBackoffSeconds", std::to_string(config.podInitialBackoffSeconds) + ": must be greater than 0");
    if (config.podMaxBackoffSeconds < config.podInitialBackoffSeconds)
      return invalid("podMaxBackoffSeconds", std::to_string(config.podMaxBackoffSeconds) +
                                                 ": must be greater than or equal to PodInitialBackoffSeconds");
    if (auto it = j.find("opportunisticBatching"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) return invalid("opportunisticBatching", it->dump() + ": must be a boolean");
      config.opportunisticBatching = it->get<bool>();
    }
    if (config.decisionsPerPod <= 0)
      return invalid("decisionsPerPod", std::to_string(config.decisionsPerPod) + ": must be greater than 0");

    const json profiles = j.value("profiles", json());
    if (profiles.is_null() || (profiles.is_array() && profiles.empty())) {
      config.profiles = defaultSchedulerConfig().profiles;
      return config;
    }
    if (!profiles.is_array()) return invalid("profiles", profiles.dump() + ": must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < profiles.size(); ++i) {
      const json& pj = profiles[i];
      std::string path = "profiles[" + std::to_string(i) + "]";
      if (!pj.is_object()) return invalid(path, pj.dump() + ": must be an object");
      for (auto it = pj.begin(); it != pj.end(); ++it)
        if (it.key() != "schedulerName" && it.key() != "plugins" && it.key() != "pluginConfig" &&
            it.key() != "percentageOfNodesToScore")
          return Status::badRequest(path + ": strict decoding error: unknown field \"" + it.key() + "\"");
      std::string name = pj.value("schedulerName", std::string("default-scheduler"));
      if (name.empty()) return Status::badRequest(path + ".schedulerName: Required value");
      if (!names.insert(name).second)
        return Status::badRequest(path + ".schedulerName: Duplicate value: \"" + name + "\"");

      PluginSet multi;
      std::map<std::string, PluginSet> points;
      const json plugins = pj.value("plugins", json());
      if (!plugins.is_null()) {
        if (!plugins.is_object()) return invalid(path + ".plugins", plugins.dump() + ": must be an object");
        static const std::set<std::string> otherPoints = {"queueSort", "preEnqueue", "reserve", "permit",
                                                          "preBind", "bind", "postBind"};
        for (auto it = plugins.begin(); it != plugins.end(); ++it) {
          std::string pp = path + ".plugins." + it.key();
          const PointDef* def = nullptr;
          for (const auto& d : pointDefs())
            if (it.key() == d.field) def = &d;
          if (it.key() == "multiPoint") {
            auto set = parsePluginSet(*it, pp, nullptr);
            if (!set) return set.status();
            multi = std::move(*set);
          } else if (def) {
            auto set = parsePluginSet(*it, pp, def);
            if (!set) return set.status();
            points[def->field] = std::move(*set);
          } else if (otherPoints.count(it.key())) {
            // Orrery's runtime owns these points with kube's defaults; only in-tree names pass.
            auto set = parsePluginSet(*it, pp, nullptr);
            if (!set) return set.status();
          } else {
            return Status::badRequest(path + ".plugins: strict decoding error: unknown field \"" + it.key() + "\"");
          }
        }
      }
      auto profile = resolveProfile(name, multi, points, path);
      if (!profile) return profile.status();
      if (auto p = pj.find("percentageOfNodesToScore"); p != pj.end() && !p->is_null()) {
        if (!p->is_number_integer()) return invalid(path + ".percentageOfNodesToScore", p->dump() + ": must be an integer");
        profile->percentageOfNodesToScore = p->get<int32_t>();
        if (profile->percentageOfNodesToScore < 0 || profile->percentageOfNodesToScore > 100)
          return invalid(path + ".percentageOfNodesToScore",
                         std::to_string(profile->percentageOfNodesToScore) + ": not in valid range [0-100]");
      }
      const json pluginConfig = pj.value("pluginConfig", json());
      if (!pluginConfig.is_null()) {
        if (!pluginConfig.is_array()) return invalid(path + ".pluginConfig", pluginConfig.dump() + ": must be a list");
        for (size_t k = 0; k < pluginConfig.size(); ++k) {
          const json& c = pluginConfig[k];
          std::string cp = path + ".pluginConfig[" + std::to_string(k) + "]";
          if (!c.is_object() || !c.contains("name") || !c["name"].is_string())
            return Status::badRequest(cp + ".name: Required value");
          std::string pname = c["name"].get<std::string>();
          if (pluginExtensionPoints(pname) == 0) return invalid(cp + ".name", "\"" + pname + "\": plugin not found");
          if (profile->pluginArgs.count(pname)) return Status::badRequest(cp + ": Duplicate value: \"" + pname + "\"");
          json args = c.value("args", json());
          if (!args.is_null() && !args.is_object()) return invalid(cp + ".args", args.dump() + ": must be an object");
          // Validate the args now, so the error names the file's field.
          auto factory = pluginRegistry().find(pname);
          if (factory != pluginRegistry().end()) {
            auto made = factory->second(args);
            if (!made) return Status::badRequest(cp + ".args." + made.status().message());
          }
          profile->pluginArgs[pname] = std::move(args);
        }
      }
      config.profiles.push_back(std::move(*profile));
    }
    return config;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("decoding scheduler configuration: ") + e.what());
  }
}

}  // namespace orrery::scheduler
