#pragma once
// The scheduling framework: pods and nodes as compact typed structs (parsed once from their
// JSON), the filter/score plugin interfaces with kube-scheduler's extension points and
// semantics, profiles (KubeSchedulerConfiguration), and the decision record every scheduling
// attempt fills in. Pure: nothing here talks to the API; engine/scheduler/scheduler.h feeds
// it from informers and binds what it decides.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/selector.h"
#include "engine/api/status.h"

namespace orrery::scheduler {

using api::Result;
using api::Status;

/// Quantities as kube-scheduler's framework.Resource keeps them.
struct Resources {
  int64_t milliCpu = 0;
  int64_t memory = 0;            // bytes
  int64_t ephemeralStorage = 0;  // bytes
  int64_t allowedPodNumber = 0;  // node: status.allocatable.pods
  std::map<std::string, int64_t> scalar;  // extended resources, hugepages-*, attachable volumes
  void add(const Resources& other);
  void subtract(const Resources& other);
};

struct Taint {
  std::string key, value, effect;  // effect: NoSchedule, PreferNoSchedule, NoExecute
};

struct Toleration {
  std::string key;
  std::string op = "Equal";  // "Equal" or "Exists"
  std::string value;
  std::string effect;  // empty: every effect
  std::optional<int64_t> tolerationSeconds;
  /// v1.Toleration.ToleratesTaint.
  bool tolerates(const Taint& taint) const;
};

struct NodeSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist, Gt, Lt
  std::vector<std::string> values;
};

/// Requirements ANDed; a node selector's terms are ORed.
struct NodeSelectorTerm {
  std::vector<NodeSelectorRequirement> matchExpressions;
  std::vector<NodeSelectorRequirement> matchFields;  // only metadata.name
};

struct PreferredSchedulingTerm {
  int32_t weight = 0;
  NodeSelectorTerm preference;
};

struct PodAffinityTerm {
  api::LabelSelector labelSelector;
  std::vector<std::string> namespaces;  // empty and no namespaceSelector: the pod's namespace
  std::optional<api::LabelSelector> namespaceSelector;
  std::string topologyKey;
  std::vector<std::string> matchLabelKeys, mismatchLabelKeys;
};

struct WeightedPodAffinityTerm {
  int32_t weight = 0;
  PodAffinityTerm term;
};

struct TopologySpreadConstraint {
  int32_t maxSkew = 1;
  std::string topologyKey;
  std::string whenUnsatisfiable = "DoNotSchedule";  // or ScheduleAnyway
  api::LabelSelector labelSelector;
  std::optional<int32_t> minDomains;
  std::string nodeAffinityPolicy = "Honor";
  std::string nodeTaintsPolicy = "Ignore";
  std::vector<std::string> matchLabelKeys;
};

struct HostPort {
  std::string protocol = "TCP";
  std::string hostIP = "0.0.0.0";
  int32_t port = 0;
  bool operator<(const HostPort& o) const;
};

/// A pod as the scheduler needs it. Built once per pod version by parsePod().
struct PodInfo {
  std::string ns, name, uid, resourceVersion;
  std::map<std::string, std::string> labels;
  std::string nodeName;           // spec.nodeName: bound (or the NodeName plugin's target)
  std::string nominatedNodeName;  // status.nominatedNodeName
  std::string schedulerName = "default-scheduler";
  int32_t priority = 0;
  std::string preemptionPolicy = "PreemptLowerPriority";
  /// Effective requests: max(sum of containers, each init container) + overhead.
  Resources requests;
  /// Requests with kube's non-zero defaults (100m CPU, 200Mi memory) where a container has
  /// none: what scoring uses.
  Resources nonZeroRequests;
  std::vector<Toleration> tolerations;
  std::map<std::string, std::string> nodeSelector;
  std::vector<NodeSelectorTerm> requiredNodeAffinity;  // ORed; empty: none
  std::vector<PreferredSchedulingTerm> preferredNodeAffinity;
  std::vector<PodAffinityTerm> requiredAffinity, requiredAntiAffinity;
  std::vector<WeightedPodAffinityTerm> preferredAffinity, preferredAntiAffinity;
  std::vector<TopologySpreadConstraint> topologySpread;
  std::vector<HostPort> hostPorts;
  std::vector<std::string> images;  // normalized ("nginx" -> "docker.io/library/nginx:latest")
  std::string phase;                // status.phase
  bool terminating = false;         // metadata.deletionTimestamp set
  std::chrono::system_clock::time_point created;
  /// status.startTime (creationTimestamp when unset): preemption's "more important pod" order.
  std::chrono::system_clock::time_point startTime;
  /// The controller ownerReference (kind and name), for PodTopologySpread's default selector.
  std::string controllerKind, controllerName;
  std::shared_ptr<const nlohmann::json> object;  // the pod as the API last gave it
};
using PodInfoPtr = std::shared_ptr<const PodInfo>;

/// Parses a v1 Pod. Fails (400) only on what would make scheduling meaningless (no name,
/// unparseable quantities or selectors), naming the field. PodInfo::object shares `pod`
/// (an informer's cached object) rather than copying it.
Result<PodInfoPtr> parsePod(std::shared_ptr<const nlohmann::json> pod);
/// As above, for a pod not already shared (tests, tools): copies it once.
Result<PodInfoPtr> parsePod(const nlohmann::json& pod);

/// Node names interned process-wide, so that a decision record can name each of the
/// hundreds of nodes a cycle looks at with 4 bytes instead of hashing its name: the ids are
/// dense, start at 1 (0: none) and live as long as the process. The table grows with the
/// distinct names ever seen, which a cluster's nodes bound.
uint32_t internNodeName(const std::string& name);
/// The name of an id internNodeName() gave out ("" for 0 or an unknown id).
std::string nodeNameOf(uint32_t id);
/// A NodeInfo generation never given out before in this process.
int64_t nextNodeGeneration();

/// The well-known topology labels (kube's LabelHostname and LabelTopologyZone).
inline constexpr std::string_view kHostnameLabelKey = "kubernetes.io/hostname";
inline constexpr std::string_view kZoneLabelKey = "topology.kubernetes.io/zone";

/// A node and the pods on it (bound or assumed), with their sums kept up to date.
struct NodeInfo {
  // What Filter and Score read on every node comes first and together: a cycle reads it on
  // hundreds of nodes whose NodeInfos lie apart on the heap, so each extra cache line counts.
  bool unschedulable = false;
  uint32_t nameId = 0;  // internNodeName(name); parseNode() sets it
  std::vector<Taint> taints;
  std::vector<PodInfoPtr> pods;
  Resources allocatable;
  Resources requested;         // sum of pods' requests
  Resources nonZeroRequested;  // sum of pods' nonZeroRequests
  std::string name;  // the decision record copies it for every node a cycle looks at
  std::map<std::string, int64_t> imageSizes;  // every name of each image in status.images
  std::map<std::string, std::string> labels;
  /// The values of the two topology labels that spreading and affinity read on hundreds of
  /// nodes every cycle, kubernetes.io/hostname and topology.kubernetes.io/zone, kept beside
  /// `labels` so that reading them searches no map (a search there was three cold cache lines
  /// a node). parseNode() fills them; whoever changes `labels` calls indexTopologyLabels().
  std::optional<std::string> hostnameLabel, zoneLabel;
  std::shared_ptr<const nlohmann::json> object;

  std::vector<PodInfoPtr> podsWithAffinity;              // any (anti-)affinity term
  std::vector<PodInfoPtr> podsWithRequiredAntiAffinity;
  std::map<HostPort, int> usedPorts;
  /// New on every change, so a snapshot can tell which nodes changed. Every change (addPod,
  /// removePod, the cache's) draws it from one process-wide counter (nextNodeGeneration), so
  /// no two versions of a node share it: plugins may remember what they computed from a node
  /// by (nameId, generation).
  int64_t generation = 0;

  /// The value of label `key`, or null.
  const std::string* label(const std::string& key) const;
  void indexTopologyLabels();

  void addPod(const PodInfoPtr& pod);
  /// Removes the pod with this uid; false if it was not there.
  bool removePod(const std::string& uid);
};
using NodeInfoPtr = std::shared_ptr<const NodeInfo>;

/// Parses a v1 Node (no pods yet); NodeInfo::object shares `node`.
Result<std::shared_ptr<NodeInfo>> parseNode(std::shared_ptr<const nlohmann::json> node);
/// As above, copying `node` once.
Result<std::shared_ptr<NodeInfo>> parseNode(const nlohmann::json& node);

/// A PodDisruptionBudget as preemption needs it.
struct DisruptionBudget {
  std::string ns, name;
  api::LabelSelector selector;
  int32_t disruptionsAllowed = 0;  // status.disruptionsAllowed
  std::set<std::string> disruptedPods;  // status.disruptedPods keys
};

/// The cluster as one scheduling cycle sees it. Immutable during the cycle.
struct Snapshot {
  std::vector<NodeInfoPtr> nodes;  // stable order (the scheduler rotates where it starts)
  std::map<std::string, size_t> indexByName;
  std::vector<NodeInfoPtr> nodesWithAffinityPods;
  std::vector<NodeInfoPtr> nodesWithRequiredAntiAffinityPods;
  /// How many nodes have each image (ImageLocality's spread factor).
  std::map<std::string, int> imageNodeCount;
  /// Namespace labels, for affinity terms with a namespaceSelector.
  std::map<std::string, std::map<std::string, std::string>> namespaceLabels;
  /// Pods nominated to a node by earlier preemptions, by node name: Filter counts those of
  /// equal or higher priority as if they ran there (kube's addNominatedPods).
  std::map<std::string, std::vector<PodInfoPtr>> nominatedPods;
  std::vector<DisruptionBudget> disruptionBudgets;
  /// Selectors of the Services in each namespace and of ReplicaSets, StatefulSets and
  /// ReplicationControllers by "Kind/namespace/name": PodTopologySpread's system default
  /// constraints spread a pod among the pods these select (kube's DefaultSelector). When the
  /// runtime leaves them empty, a pod with a controller owner falls back to its own labels.
  std::map<std::string, std::vector<api::LabelSelector>> serviceSelectors;
  std::map<std::string, api::LabelSelector> controllerSelectors;

  const NodeInfo* find(const std::string& name) const;
  /// Fills indexByName and the derived lists from `nodes`.
  void reindex();
};

// ---------------------------------------------------------------------------------------
// Plugins

/// A plugin's answer (framework.Status): success, or why not, in kube's words.
struct PluginStatus {
  enum class Code { kSuccess, kUnschedulable, kUnschedulableAndUnresolvable, kSkip, kError };
  Code code = Code::kSuccess;
  /// kube-scheduler's reason strings: "node(s) had untolerated taint {k: v}",
  /// "Insufficient cpu", "node(s) didn't match Pod's node affinity/selector".
  std::vector<std::string> reasons;
  std::string plugin;  // which plugin said so (the framework fills it)

  bool ok() const { return code == Code::kSuccess; }
  static PluginStatus success() { return {}; }
  static PluginStatus skip() { return {Code::kSkip, {}, {}}; }
  static PluginStatus unschedulable(std::vector<std::string> reasons) {
    return {Code::kUnschedulable, std::move(reasons), {}};
  }
  static PluginStatus unresolvable(std::vector<std::string> reasons) {
    return {Code::kUnschedulableAndUnresolvable, std::move(reasons), {}};
  }
  static PluginStatus error(std::string message) { return {Code::kError, {std::move(message)}, {}}; }
};

/// Per-cycle data plugins compute in PreFilter/PreScore and read in Filter/Score.
class CycleState {
 public:
  struct Data {
    virtual ~Data() = default;
    /// A deep copy for CycleState::clone() (preemption and nominated pods change a copy of
    /// the state); nullptr: the data is never changed after PreFilter, share it.
    virtual std::shared_ptr<Data> clone() const { return nullptr; }
  };
  /// A copy whose data can be changed (PreFilter AddPod/RemovePod) without touching this one.
  CycleState clone() const;
  void write(const std::string& key, std::shared_ptr<Data> data) { data_[key] = std::move(data); }
  template <typename T>
  T* read(const std::string& key) const {
    auto it = data_.find(key);
    return it == data_.end() ? nullptr : dynamic_cast<T*>(it->second.get());
  }

 private:
  std::map<std::string, std::shared_ptr<Data>> data_;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string name() const = 0;
  /// kube's SignPod (opportunistic batching, KEP-5598): appends to `signature` what of `pod`
  /// decides this plugin's PreFilter, Filter, PreScore and Score results, so that two pods
  /// with equal signatures get equal results on every node, and placing one of them on a
  /// node changes no other node's results for the other. Returns false when the results
  /// depend on more than the pod and the node (other pods' placement, for instance): the pod
  /// is then "unsignable" and always gets a full cycle. Default: unsignable.
  virtual bool sign(const PodInfo& pod, const Snapshot& snapshot, std::string& signature) const { return false; }
};

class PreFilterPlugin : public virtual Plugin {
 public:
  /// kSkip: this plugin's Filter is not run for this pod.
  virtual PluginStatus preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) = 0;
  /// PreFilterExtensions: update this plugin's PreFilter state as if `podToAdd` ran on
  /// `node` (nominated pods, preemption reprieves). Default: nothing to update.
  virtual PluginStatus addPod(CycleState& state, const PodInfo& podToSchedule, const PodInfo& podToAdd,
                              const NodeInfo& node, const Snapshot& snapshot) const {
    return PluginStatus::success();
  }
  /// ... and as if `podToRemove` no longer ran on `node` (preemption victims).
  virtual PluginStatus removePod(CycleState& state, const PodInfo& podToSchedule,
                                 const PodInfo& podToRemove, const NodeInfo& node,
                                 const Snapshot& snapshot) const {
    return PluginStatus::success();
  }
};

class FilterPlugin : public virtual Plugin {
 public:
  /// Must be thread-safe: nodes are filtered in parallel.
  virtual PluginStatus filter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const = 0;
};

class PreScorePlugin : public virtual Plugin {
 public:
  virtual PluginStatus preScore(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                                const std::vector<const NodeInfo*>& feasible) = 0;
};

class ScorePlugin : public virtual Plugin {
 public:
  /// Raw score of one feasible node. Thread-safe.
  virtual int64_t score(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const = 0;
  /// Maps raw scores to [0, 100] in place (NormalizeScore); default: leave as they are.
  virtual void normalize(const CycleState& state, const PodInfo& pod, std::vector<int64_t>& scores) const {}
  /// Whether normalize() depends on the other nodes' scores. Opportunistic batching can
  /// rescore one node of such a plugin only while its raw score stays what it was.
  virtual bool normalizesAcrossNodes() const { return false; }
};

/// PostFilter (DefaultPreemption): when no node fits, find a node where evicting
/// lower-priority pods (honouring PodDisruptionBudgets as far as possible) makes it fit.
struct PreemptionResult {
  bool attempted = false;
  std::string nominatedNode;          // empty: preemption did not help
  std::vector<PodInfoPtr> victims;
  /// kube's "preemption: 0/3 nodes are available: ..." tail for the event.
  std::string message;
};

struct NodeDecision;

/// What a PostFilter plugin may ask of the framework that runs it (framework.Handle).
class FrameworkHandle {
 public:
  virtual ~FrameworkHandle() = default;
  /// kube's RunFilterPluginsWithNominatedPods on `node` (which may be a changed copy of a
  /// snapshot node), with `state` (which may be a changed clone).
  virtual PluginStatus runFilterPluginsWithNominatedPods(CycleState& state, const PodInfo& pod,
                                                         const NodeInfo& node,
                                                         const Snapshot& snapshot) = 0;
  /// RunPreFilterExtensionAddPod / RemovePod over every PreFilter plugin that ran.
  virtual PluginStatus runPreFilterExtensionAddPod(CycleState& state, const PodInfo& podToSchedule,
                                                   const PodInfo& podToAdd, const NodeInfo& node,
                                                   const Snapshot& snapshot) = 0;
  virtual PluginStatus runPreFilterExtensionRemovePod(CycleState& state,
                                                      const PodInfo& podToSchedule,
                                                      const PodInfo& podToRemove,
                                                      const NodeInfo& node,
                                                      const Snapshot& snapshot) = 0;
};

class PostFilterPlugin : public virtual Plugin {
 public:
  /// Runs when no node fits. `decisions` are the filter results of the cycle (every node).
  virtual PreemptionResult postFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                                      const std::vector<NodeDecision>& decisions,
                                      FrameworkHandle& handle) = 0;
};

/// Builds a plugin from its pluginConfig args (null: the defaults). Errors are 400s whose
/// message names the field relative to the args ("scoringStrategy.type: Unsupported value").
using PluginFactory = std::function<Result<std::shared_ptr<Plugin>>(const nlohmann::json& args)>;
/// The in-tree plugins Orrery runs, by kube's names.
const std::map<std::string, PluginFactory>& pluginRegistry();
/// kube in-tree plugins a KubeSchedulerConfiguration may name that Orrery accepts but does not
/// run here (PrioritySort and DefaultBinder belong to the runtime; volume and DRA plugins have
/// nothing to check without volumes): SchedulingGates, PrioritySort, DefaultBinder,
/// VolumeRestrictions, NodeVolumeLimits, VolumeBinding, VolumeZone, DynamicResources.
bool isAcceptedNoopPlugin(const std::string& name);

// ---------------------------------------------------------------------------------------
// Profiles (KubeSchedulerConfiguration)

struct PluginRef {
  std::string name;
  int32_t weight = 0;  // score plugins
};

struct ProfileConfig {
  std::string schedulerName = "default-scheduler";
  /// Enabled plugins per extension point, in order; built from kube's default set with the
  /// profile's enabled/disabled lists applied ("*" disables all defaults of a point).
  std::vector<PluginRef> preFilter, filter, postFilter, preScore, score;
  /// pluginConfig[].args by plugin name (NodeResourcesFitArgs.scoringStrategy,
  /// InterPodAffinityArgs.hardPodAffinityWeight, PodTopologySpreadArgs.defaultConstraints...).
  std::map<std::string, nlohmann::json> pluginArgs;
  int32_t percentageOfNodesToScore = 0;  // 0: the global setting
};

struct SchedulerConfig {
  std::vector<ProfileConfig> profiles;     // at least one
  int32_t percentageOfNodesToScore = 0;    // 0: adaptive (50% - nodes/125, at least 5%)
  int64_t podInitialBackoffSeconds = 1;
  int64_t podMaxBackoffSeconds = 10;
  int32_t parallelism = 16;
  /// Orrery: attempts kept per pod, and across all pods, in the decision history.
  int32_t decisionsPerPod = 8;
  int64_t decisionHistoryBytes = 16ll << 20;
  /// kube's OpportunisticBatching feature gate (KEP-5598; beta and on by default since 1.35),
  /// which a KubeSchedulerConfiguration cannot set: Orrery reads `opportunisticBatching`.
  bool opportunisticBatching = true;
};

/// kube-scheduler's defaults: one profile "default-scheduler" with the default plugins and
/// weights of v1 (TaintToleration 3, NodeAffinity 2, PodTopologySpread 2,
/// InterPodAffinity 2, NodeResourcesFit 1, NodeResourcesBalancedAllocation 1,
/// ImageLocality 1).
SchedulerConfig defaultSchedulerConfig();

/// Parses a KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1, YAML or JSON)
/// onto the defaults. Errors name the file's field ("profiles[0].plugins.score.enabled[1].name:
/// Invalid value: \"Foo\": plugin not found").
Result<SchedulerConfig> parseSchedulerConfig(const std::string& text);

// ---------------------------------------------------------------------------------------
// Decision records

/// What one node got in one attempt. Kept small: a cycle writes one per evaluated node
/// (hundreds to thousands), so the scores live in one flat array of the record
/// (DecisionRecord::raw/normalized/weighted read them).
struct NodeDecision {
  std::string node;
  uint32_t nodeId = 0;  // internNodeName(node) when the framework knows it; 0: not looked up
  /// Empty: the node passed every filter. Else the first plugin that rejected it, with its
  /// reasons (kube stops filtering a node at its first rejection).
  std::string rejectedBy;
  std::vector<std::string> reasons;
  bool unresolvable = false;
  /// Row of this node in DecisionRecord::scores; -1: not scored (rejected, or the only
  /// feasible node, which kube does not score).
  int32_t scoreRow = -1;
  int64_t total = 0;
};

struct PluginTiming {
  std::string plugin;
  std::string extensionPoint;  // "PreFilter", "Filter", "PreScore", "Score", "NormalizeScore", "PostFilter"
  std::chrono::nanoseconds spent{0};
};

/// Everything one scheduling attempt of one pod decided, and why.
struct DecisionRecord {
  std::string podNamespace, podName, podUid;
  int32_t attempt = 0;  // 1, 2, ... per pod
  std::chrono::system_clock::time_point started;
  std::chrono::nanoseconds duration{0};
  std::string profile;   // schedulerName
  std::string result;    // "Scheduled", "Unschedulable", "Error"
  std::string node;      // chosen node, when Scheduled
  /// The event message: "Successfully assigned ns/pod to node" or
  /// "0/3 nodes are available: 1 node(s) had untolerated taint {a: b}, 2 Insufficient cpu.
  /// preemption: ..."
  std::string message;
  std::string preFilterRejection;  // a PreFilter that rejected the pod outright
  int32_t nodesTotal = 0, nodesEvaluated = 0, nodesFeasible = 0;
  std::vector<PluginRef> scorePlugins;  // names and weights, the order of NodeDecision scores
  std::vector<NodeDecision> nodes;      // every node the attempt looked at
  /// Scores of the scored nodes: row r (NodeDecision::scoreRow) holds, per score plugin in
  /// scorePlugins order, the raw then the normalized score (weighted is normalized * weight).
  std::vector<int64_t> scores;
  PreemptionResult preemption;
  std::vector<std::string> victimNames;  // "ns/name" of preemption victims
  /// Set when the attempt reused the ranking of an earlier attempt of a pod with the same
  /// signature (kube's opportunistic batching, KEP-5598) instead of filtering and scoring
  /// nodesEvaluated nodes afresh: `nodes` then holds only the nodes filtered this time (the
  /// node chosen last, rescored with the pod placed there, and the node chosen now).
  struct BatchReuse {
    std::string fromPod;          // "ns/name" of the attempt that ranked the nodes
    int32_t fromAttempt = 0;
    int32_t candidates = 0;       // nodes the ranking still held when this node was taken
    std::string rescoredNode;     // the node chosen last, rescored ("" if it no longer fit)
  };
  std::optional<BatchReuse> batch;
  std::vector<PluginTiming> timings;

  /// A scored node's score from plugin `plugin` (scorePlugins index): raw (the plugin's Score),
  /// normalized (after NormalizeScore, 0-100) and weighted (normalized * weight); 0 when the
  /// node was not scored.
  int64_t raw(const NodeDecision& node, size_t plugin) const;
  int64_t normalized(const NodeDecision& node, size_t plugin) const;
  int64_t weighted(const NodeDecision& node, size_t plugin) const;
  /// Whether `node` carries scores (scorePlugins.size() of each kind).
  bool scored(const NodeDecision& node) const { return node.scoreRow >= 0 && !scorePlugins.empty(); }

  /// The record as served by the API (scheduling.orrery.dev/v1alpha1 SchedulingAttempt
  /// shape; see scheduler.h).
  nlohmann::json toJson() const;
  /// Approximate heap bytes, for the history's memory bound.
  size_t approximateBytes() const;
};

/// One profile's plugins, run in kube-scheduler's order.
class Framework {
 public:
  /// `opportunisticBatching`: kube's OpportunisticBatching feature gate (beta, on by default
  /// since 1.35).
  static Result<std::unique_ptr<Framework>> create(const ProfileConfig& profile,
                                                   int32_t percentageOfNodesToScore = 0,
                                                   bool opportunisticBatching = true);
  virtual ~Framework() = default;

  struct Outcome {
    std::string node;  // chosen node; empty if none
    PluginStatus status;  // why not, when no node
  };
  /// One scheduling cycle for `pod` over `snapshot`: PreFilter, Filter (on
  /// numFeasibleNodesToFind nodes starting at `startIndex`, in parallel), PostFilter
  /// (preemption) when none fits, PreScore, Score, NormalizeScore, weights, selectHost (ties
  /// broken at random, as kube does). Fills every part of `record` but its identity and
  /// timestamps. Thread-compatible: one cycle at a time per Framework.
  ///
  /// `cycle` counts the pods the scheduler has taken from its queue (kube's scheduling
  /// cycle). With opportunistic batching on, a cycle that directly follows a successful one
  /// of the same profile, for a pod with the same signature and within 500 ms of the full
  /// cycle whose ranking it reuses, takes the best node of that ranking after refiltering it
  /// (and refiltering and rescoring the node chosen last) instead of filtering and scoring
  /// afresh. Cycle 0 never batches.
  virtual Outcome schedule(const PodInfo& pod, const Snapshot& snapshot, size_t startIndex, int64_t cycle,
                           DecisionRecord& record) = 0;
  /// Forgets the ranking kept for batching: the last decision did not take effect (the
  /// scheduler could not assume the pod).
  virtual void dropBatch() = 0;
  /// How many cycles reused a ranking since the framework was made.
  virtual int64_t batchedCycles() const = 0;
  virtual const ProfileConfig& profile() const = 0;
};

/// How many nodes a cycle must filter (or score) before it spreads the work over the
/// process's worker pool (default 2048; on 2 cores smaller cycles run faster on one thread).
/// Results do not depend on it; tests lower it to exercise the parallel path.
void setParallelThreshold(size_t nodes);

/// kube's numFeasibleNodesToFind: how many feasible nodes to look for before scoring.
int32_t numFeasibleNodesToFind(int32_t percentageOfNodesToScore, int32_t nodes);

/// "0/3 nodes are available: 1 node(s) had untolerated taint {a: b}, 2 Insufficient cpu."
/// from the per-node statuses of a failed cycle (reasons counted, sorted as kube sorts them).
std::string fitErrorMessage(int32_t nodes, const std::vector<NodeDecision>& decisions,
                            const std::string& preFilterRejection);

}  // namespace orrery::scheduler
