#pragma once
// Builders for the pure framework/plugin tests: pods and nodes as the API would give them,
// snapshots, and one-call scheduling with the default (or a given) profile.

#include <QtTest>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scheduler/framework.h"

namespace fixture {

using json = nlohmann::json;
using namespace orrery::scheduler;

inline json node(const std::string& name, const std::string& cpu = "4", const std::string& memory = "32Gi",
                 int pods = 110, json labels = json::object()) {
  labels["kubernetes.io/hostname"] = name;
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", json::object()},
          {"status", {{"allocatable", {{"cpu", cpu}, {"memory", memory}, {"pods", std::to_string(pods)}}}}}};
}

inline json withTaint(json n, const std::string& key, const std::string& value, const std::string& effect) {
  n["spec"]["taints"].push_back({{"key", key}, {"value", value}, {"effect", effect}});
  return n;
}

/// A pod with one container requesting cpu/memory (empty: no request).
inline json pod(const std::string& name, const std::string& cpu = "", const std::string& memory = "",
                json labels = json::object()) {
  json requests = json::object();
  if (!cpu.empty()) requests["cpu"] = cpu;
  if (!memory.empty()) requests["memory"] = memory;
  json container = {{"name", "c"}, {"image", "nginx"}};
  if (!requests.empty()) container["resources"] = {{"requests", requests}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"uid", "uid-" + name},
            {"labels", labels},
            {"creationTimestamp", "2024-01-01T00:00:00Z"}}},
          {"spec", {{"containers", json::array({container})}}},
          {"status", {{"phase", "Pending"}}}};
}

inline PodInfoPtr parse(const json& p) {
  auto r = parsePod(p);
  if (!r) qFatal("parsePod: %s", r.status().message().c_str());
  return *r;
}

struct NodeSpec {
  json node;
  std::vector<json> pods;  // bound to it
};

inline Snapshot snapshot(const std::vector<NodeSpec>& specs) {
  Snapshot s;
  for (const auto& spec : specs) {
    auto n = parseNode(spec.node);
    if (!n) qFatal("parseNode: %s", n.status().message().c_str());
    for (auto p : spec.pods) {
      p["spec"]["nodeName"] = (*n)->name;
      (*n)->addPod(parse(p));
    }
    s.nodes.push_back(*n);
  }
  s.reindex();
  return s;
}

inline ProfileConfig defaultProfile() { return defaultSchedulerConfig().profiles.at(0); }

struct Run {
  Framework::Outcome outcome;
  DecisionRecord record;
};

inline Run schedule(const json& p, const Snapshot& s, const ProfileConfig& profile = defaultProfile(),
                    size_t start = 0) {
  auto fw = Framework::create(profile);
  if (!fw) qFatal("Framework::create: %s", fw.status().message().c_str());
  Run r;
  r.outcome = (*fw)->schedule(*parse(p), s, start, 0, r.record);
  return r;
}

inline const NodeDecision* decisionFor(const DecisionRecord& r, const std::string& node) {
  for (const auto& d : r.nodes)
    if (d.node == node) return &d;
  return nullptr;
}

/// The index of a score plugin in the record, -1 if it did not score.
inline int scoreIndex(const DecisionRecord& r, const std::string& plugin) {
  for (size_t i = 0; i < r.scorePlugins.size(); ++i)
    if (r.scorePlugins[i].name == plugin) return static_cast<int>(i);
  return -1;
}

inline ProfileConfig profileFromYaml(const std::string& yaml) {
  auto c = parseSchedulerConfig(yaml);
  if (!c) qFatal("parseSchedulerConfig: %s", c.status().message().c_str());
  return c->profiles.at(0);
}

}  // namespace fixture
