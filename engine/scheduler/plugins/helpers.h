#pragma once
// Helpers the in-tree plugins share: label and node-selector matching over the typed structs
// (no JSON on the hot path), toleration checks, kube's DefaultNormalizeScore, and the
// resource accounting used by parsePod/parseNode.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/object.h"
#include "engine/scheduler/framework.h"

namespace orrery::scheduler {

inline constexpr int64_t kMaxNodeScore = 100;

/// labels.Selector.Matches over a label map. A "nothing" selector matches nothing.
bool selectorMatches(const api::LabelSelector& selector, const std::map<std::string, std::string>& labels);

/// One NodeSelectorTerm (requirements ANDed; an empty term matches nothing).
bool nodeSelectorTermMatches(const NodeSelectorTerm& term, const NodeInfo& node);
/// Terms ORed (v1 NodeSelector).
bool nodeSelectorTermsMatch(const std::vector<NodeSelectorTerm>& terms, const NodeInfo& node);
/// kube's RequiredNodeAffinity.Match: spec.nodeSelector and required node affinity.
bool podMatchesNodeSelectorAndAffinity(const PodInfo& pod, const NodeInfo& node);

/// v1helper.TolerationsTolerateTaint.
bool tolerationsTolerate(const std::vector<Toleration>& tolerations, const Taint& taint);
/// The first taint with an effect in NoSchedule/NoExecute not tolerated; nullptr if none.
const Taint* findUntoleratedNoScheduleTaint(const std::vector<Taint>& taints,
                                            const std::vector<Toleration>& tolerations);

/// AffinityTerm.Matches: the pod is in one of the term's namespaces (or its namespace's
/// labels match the term's namespaceSelector) and its labels match the term's selector.
bool affinityTermMatches(const PodAffinityTerm& term, const PodInfo& pod,
                         const std::map<std::string, std::string>* namespaceLabels);

/// helper.DefaultNormalizeScore(MaxNodeScore, reverse, scores).
void defaultNormalizeScore(std::vector<int64_t>& scores, bool reverse);

/// Accounting used by parsePod/parseNode.
bool isScalarResourceName(const std::string& name);
Status addResourceList(const nlohmann::json& list, const std::string& path, Resources& into,
                       bool* hasCpu, bool* hasMemory);
/// "nginx" -> "docker.io/library/nginx:latest".
std::string normalizeImageName(const std::string& image);

/// Whether `port` conflicts with a port already used on the node (HostPortInfo.CheckConflict).
bool hostPortConflicts(const std::map<HostPort, int>& used, const HostPort& port);

/// kube's util.MoreImportantPod: higher priority, then earlier start.
bool moreImportantPod(const PodInfo& a, const PodInfo& b);

/// DefaultPreemption (preemption.cpp).
Result<std::shared_ptr<Plugin>> newDefaultPreemption(const nlohmann::json& args);

/// The snapshot of the running cycle, which the framework writes into every CycleState
/// (score plugins that need cluster-wide counts, like ImageLocality, read it).
struct SnapshotRef : CycleState::Data {
  const Snapshot* snapshot = nullptr;
};
/// o[key] read in place, or an empty object (engine/api's, shared by the plugins).
using api::memberOrEmpty;
/// j[key] when it is a string, else "".
std::string stringMember(const nlohmann::json& j, const char* key);
/// j[key] read in place when it is a string, else null.
const std::string* stringRef(const nlohmann::json& j, const char* key);

inline constexpr const char* kSnapshotStateKey = "orrery.dev/snapshot";
const Snapshot* cycleSnapshot(const CycleState& state);

/// Pieces of a pod's scheduling signature (Plugin::sign). Each value is written with its
/// length first, so two different inputs never give the same text.
void signValue(std::string& signature, const std::string& value);
void signNumber(std::string& signature, int64_t value);
void signResources(std::string& signature, const Resources& resources);
void signTolerations(std::string& signature, const std::vector<Toleration>& tolerations);
void signNodeSelectorTerm(std::string& signature, const NodeSelectorTerm& term);

/// Reads an integer field of plugin args with a range check; errors name the field.
Result<int64_t> argInt(const nlohmann::json& args, const char* field, int64_t defaultValue,
                       int64_t min, int64_t max);

}  // namespace orrery::scheduler
