// DecisionRecord as the API serves it: the `status` of a scheduling.orrery.dev/v1alpha1
// SchedulingAttempt (the runtime adds kind, apiVersion, metadata and spec).

#include "engine/api/object.h"
#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

namespace {

// Go's time.Duration.String()-like rendering for people: "1.234ms", "56µs", "2.5s".
std::string humanDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  char buf[64];
  if (ns < 1000) {
    snprintf(buf, sizeof buf, "%lldns", static_cast<long long>(ns));
  } else if (ns < 1000000) {
    snprintf(buf, sizeof buf, "%.3gµs", ns / 1e3);
  } else if (ns < 1000000000) {
    snprintf(buf, sizeof buf, "%.4gms", ns / 1e6);
  } else {
    snprintf(buf, sizeof buf, "%.4gs", ns / 1e9);
  }
  return buf;
}

}  // namespace

int64_t DecisionRecord::raw(const NodeDecision& node, size_t plugin) const {
  size_t at = (static_cast<size_t>(node.scoreRow) * scorePlugins.size() + plugin) * 2;
  return node.scoreRow >= 0 && plugin < scorePlugins.size() && at < scores.size() ? scores[at] : 0;
}

int64_t DecisionRecord::normalized(const NodeDecision& node, size_t plugin) const {
  size_t at = (static_cast<size_t>(node.scoreRow) * scorePlugins.size() + plugin) * 2 + 1;
  return node.scoreRow >= 0 && plugin < scorePlugins.size() && at < scores.size() ? scores[at] : 0;
}

int64_t DecisionRecord::weighted(const NodeDecision& node, size_t plugin) const {
  return plugin < scorePlugins.size() ? normalized(node, plugin) * scorePlugins[plugin].weight : 0;
}

nlohmann::json DecisionRecord::toJson() const {
  using json = nlohmann::json;
  json status = json::object();
  status["result"] = result;
  if (!node.empty()) status["node"] = node;
  status["message"] = message;
  status["profile"] = profile;
  status["startTime"] = api::formatTime(started);
  status["duration"] = humanDuration(duration);
  status["durationNanoseconds"] = duration.count();
  if (!preFilterRejection.empty()) status["preFilterRejection"] = preFilterRejection;
  status["nodesTotal"] = nodesTotal;
  status["nodesEvaluated"] = nodesEvaluated;
  status["nodesFeasible"] = nodesFeasible;
  if (batch) {
    json reuse = {{"fromAttempt", {{"pod", batch->fromPod}, {"attempt", batch->fromAttempt}}},
                  {"candidates", batch->candidates}};
    if (!batch->rescoredNode.empty()) reuse["rescoredNode"] = batch->rescoredNode;
    status["batch"] = std::move(reuse);
  }

  json plugins = json::array();
  for (const auto& p : scorePlugins) plugins.push_back({{"name", p.name}, {"weight", p.weight}});
  status["scorePlugins"] = std::move(plugins);

  json nodesJson = json::array();
  for (const auto& d : nodes) {
    json n = {{"name", d.node}};
    if (!d.rejectedBy.empty()) {
      n["rejectedBy"] = d.rejectedBy;
      n["reasons"] = d.reasons;
      if (d.unresolvable) n["unresolvable"] = true;
    } else {
      json scores = json::array();
      if (scored(d)) {
        for (size_t i = 0; i < scorePlugins.size(); ++i) {
          scores.push_back({{"plugin", scorePlugins[i].name},
                            {"raw", raw(d, i)},
                            {"normalized", normalized(d, i)},
                            {"weight", scorePlugins[i].weight},
                            {"weighted", weighted(d, i)}});
        }
      }
      n["scores"] = std::move(scores);
      n["total"] = d.total;
    }
    nodesJson.push_back(std::move(n));
  }
  status["nodes"] = std::move(nodesJson);

  if (preemption.attempted) {
    json p = {{"attempted", true}};
    if (!preemption.nominatedNode.empty()) p["nominatedNode"] = preemption.nominatedNode;
    json victims = json::array();
    if (!victimNames.empty()) {
      for (const auto& v : victimNames) victims.push_back(v);
    } else {
      for (const auto& v : preemption.victims) victims.push_back(v->ns + "/" + v->name);
    }
    p["victims"] = std::move(victims);
    if (!preemption.message.empty()) p["message"] = preemption.message;
    status["preemption"] = std::move(p);
  }

  json timingsJson = json::array();
  for (const auto& t : timings) {
    timingsJson.push_back({{"plugin", t.plugin},
                           {"extensionPoint", t.extensionPoint},
                           {"duration", humanDuration(t.spent)},
                           {"nanoseconds", t.spent.count()}});
  }
  status["timings"] = std::move(timingsJson);
  return status;
}

size_t DecisionRecord::approximateBytes() const {
  // Strings beyond the small-string buffer, vectors' capacity, and the structs themselves.
  auto s = [](const std::string& v) { return v.capacity() > 15 ? v.capacity() + 1 : 0; };
  size_t bytes = sizeof(DecisionRecord);
  bytes += s(podNamespace) + s(podName) + s(podUid) + s(profile) + s(result) + s(node) + s(message) +
           s(preFilterRejection);
  bytes += scorePlugins.capacity() * sizeof(PluginRef);
  for (const auto& p : scorePlugins) bytes += s(p.name);
  bytes += nodes.capacity() * sizeof(NodeDecision);
  for (const auto& d : nodes) {
    bytes += s(d.node) + s(d.rejectedBy);
    bytes += d.reasons.capacity() * sizeof(std::string);
    for (const auto& r : d.reasons) bytes += s(r);
  }
  bytes += scores.capacity() * sizeof(int64_t);
  bytes += s(preemption.nominatedNode) + s(preemption.message);
  if (batch) bytes += s(batch->fromPod) + s(batch->rescoredNode);
  bytes += preemption.victims.capacity() * sizeof(PodInfoPtr);
  bytes += victimNames.capacity() * sizeof(std::string);
  for (const auto& v : victimNames) bytes += s(v);
  bytes += timings.capacity() * sizeof(PluginTiming);
  for (const auto& t : timings) bytes += s(t.plugin) + s(t.extensionPoint);
  return bytes;
}

}  // namespace orrery::scheduler
