#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <pthread.h>
#include <time.h>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/client/events.h"

namespace orrery::scheduler {

namespace {

using nlohmann::json;

const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kPdbs{"policy", "v1", "poddisruptionbudgets"};

// Named threads, so `perf report --comm` and `top -H` tell the scheduler's work apart.
void nameThread(const char* name) { pthread_setname_np(pthread_self(), name); }

int64_t threadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> log = [] {
    auto existing = spdlog::get("scheduler");
    return existing ? existing : spdlog::default_logger()->clone("scheduler");
  }();
  return log;
}

// A pool of workers for the API calls that follow a decision (bindings, status patches,
// deletions), so the loop never waits on the API. Each call waits for its group commit, so up
// to `maxWorkers` run at once; threads start only when the queued calls outnumber the idle
// ones, so an idle scheduler holds none of them (each costs its stack).
class WorkerPool {
 public:
  explicit WorkerPool(int32_t maxWorkers) : max_(static_cast<size_t>(std::max(1, maxWorkers))) {}
  ~WorkerPool() { stop(); }
  void submit(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
      ++pending_;
      if (tasks_.size() > idle_ && threads_.size() < max_) {
        try {
          threads_.emplace_back([this] {
            nameThread("sched-bind");
            run();
          });
        } catch (const std::system_error& e) {
          // Out of threads (pids.max, ulimit): the threads already running take the task.
          if (threads_.empty()) throw;
          logger()->warn("cannot start another bind worker: {}", e.what());
        }
      }
    }
    cv_.notify_one();
  }
  void waitIdle() {
    std::unique_lock lock(mu_);
    idleCv_.wait(lock, [&] { return pending_ == 0; });
  }
  void stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        ++idle_;
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        --idle_;
        if (tasks_.empty()) return;  // stopping, and everything handed in is done
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      try {
        task();
      } catch (const std::exception& e) {
        logger()->error("worker task failed: {}", e.what());
      }
      {
        std::lock_guard lock(mu_);
        if (--pending_ == 0) idleCv_.notify_all();
      }
    }
  }
  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_, idleCv_;
  std::deque<std::function<void()>> tasks_;
  size_t pending_ = 0;
  size_t idle_ = 0;  // threads waiting for a task
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

bool isTerminal(const PodInfo& pod) { return pod.phase == "Succeeded" || pod.phase == "Failed"; }

std::map<std::string, std::string> labelsOf(const json& object) {
  std::map<std::string, std::string> out;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return out;
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return out;
  for (auto it = labels->begin(); it != labels->end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

Result<DisruptionBudget> parsePdb(const json& object) {
  try {
    DisruptionBudget pdb;
    pdb.ns = api::metaString(object, "namespace");
    pdb.name = api::metaString(object, "name");
    const json& spec = api::memberOrEmpty(object, "spec");
    if (spec.contains("selector") && spec["selector"].is_object()) {
      auto sel = api::LabelSelector::fromJson(spec["selector"]);
      if (!sel.ok()) return sel.status();
      pdb.selector = *sel;
    } else {
      // A PDB without a selector selects nothing (policy/v1).
      pdb.selector = api::LabelSelector::nothing();
    }
    const json& status = api::memberOrEmpty(object, "status");
    pdb.disruptionsAllowed = status.value("disruptionsAllowed", 0);
    if (status.contains("disruptedPods") && status["disruptedPods"].is_object()) {
      for (auto it = status["disruptedPods"].begin(); it != status["disruptedPods"].end(); ++it) {
        pdb.disruptedPods.insert(it.key());
      }
    }
    return pdb;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("poddisruptionbudget: ") + e.what());
  }
}

// The plugin names a failed attempt was rejected by (what cluster events may help it).
std::set<std::string> rejectingPlugins(const DecisionRecord& record) {
  std::set<std::string> out;
  for (const auto& n : record.nodes) {
    if (!n.rejectedBy.empty()) out.insert(n.rejectedBy);
  }
  if (!record.preFilterRejection.empty()) {
    // "<Plugin>: reason" or the bare plugin name.
    auto colon = record.preFilterRejection.find(':');
    out.insert(record.preFilterRejection.substr(0, colon));
  }
  return out;
}

// kube's truncateMessage for event notes (1 KiB limit on events.k8s.io notes).
std::string truncateMessage(const std::string& message) {
  constexpr size_t kMax = 1024;
  if (message.size() <= kMax) return message;
  return message.substr(0, kMax - 3) + "...";
}

}  // namespace

// ---------------------------------------------------------------------------------------

struct Scheduler::Core : std::enable_shared_from_this<Scheduler::Core> {
  SchedulerOptions options;
  std::shared_ptr<client::Client> client;
  std::unique_ptr<client::InformerFactory> ownedInformers;
  client::InformerFactory* informers = nullptr;
  std::map<std::string, std::unique_ptr<Framework>> frameworks;  // by schedulerName
  std::map<std::string, std::unique_ptr<client::EventRecorder>> recorders;
  std::unique_ptr<SchedulingQueue> queue;
  SchedulerCache cache;
  std::shared_ptr<DecisionHistory> history;
  std::unique_ptr<WorkerPool> workers;

  std::atomic<bool> stopped{false};
  std::thread loop;
  std::thread flusher;
  std::mutex flusherMu;
  std::condition_variable flusherCv;

  Snapshot snapshot;  // the loop's
  size_t nextStartIndex = 0;
  /// Pods taken from the queue (kube's scheduling cycle): a framework batches only a cycle
  /// that directly follows its own successful one. Scheduling loop only.
  int64_t cycle = 0;

  // Last parsed version of every pod we heard of, by ns/name (handlers' thread).
  std::mutex podsMu;
  std::unordered_map<std::string, PodInfoPtr> pods;

  std::atomic<uint64_t> attempts{0}, scheduled{0}, unschedulable{0}, errors{0}, bound{0}, bindFailures{0},
      preemptions{0};
  std::atomic<int64_t> cycleNanos{0}, cycleCpuNanos{0};

  bool responsibleFor(const PodInfo& pod) const { return frameworks.count(pod.schedulerName) > 0; }

  client::EventRecorder* recorderFor(const std::string& schedulerName) {
    auto it = recorders.find(schedulerName);
    return it == recorders.end() ? nullptr : it->second.get();
  }

  // ---- informer handlers (the informers' threads)
  void onPodAdd(const client::ObjectPtr& object);
  void onPodUpdate(const client::ObjectPtr& oldObject, const client::ObjectPtr& newObject);
  void onPodDelete(const client::ObjectPtr& object);
  void onNode(const client::ObjectPtr& object, bool added);
  void onNodeDelete(const client::ObjectPtr& object);

  // ---- the loop
  void run();
  void scheduleOne(QueuedPod queued);
  void handleFailure(QueuedPod queued, DecisionRecord& record, const std::string& reason);
  void bind(PodInfoPtr assumed, QueuedPod queued, int32_t attempt, std::string schedulerName);
  void patchCondition(const PodInfoPtr& pod, const std::string& reason, const std::string& message,
                      const std::string& nominatedNode);
  void preempt(const PodInfoPtr& preemptor, const PreemptionResult& preemption,
               std::vector<PodInfoPtr> lowerNominated);
  bool podStillPending(const std::string& ns, const std::string& name, const std::string& uid);
};

void Scheduler::Core::onPodAdd(const client::ObjectPtr& object) {
  if (stopped || !object) return;
  auto parsed = parsePod(object);
  if (!parsed.ok()) {
    logger()->warn("ignoring pod {}: {}", client::objectKey(*object), parsed.status().message());
    return;
  }
  PodInfoPtr pod = *parsed;
  {
    std::lock_guard lock(podsMu);
    pods[pod->ns + "/" + pod->name] = pod;
  }
  if (!pod->nodeName.empty()) {
    if (isTerminal(*pod)) return;  // it no longer takes resources
    queue->remove(pod->ns, pod->name);
    cache.addPod(pod);
    queue->moveOnEvent(ClusterEvent::kAssignedPodAdd);
    return;
  }
  if (responsibleFor(*pod) && !pod->terminating && !isTerminal(*pod)) queue->add(pod);
}

void Scheduler::Core::onPodUpdate(const client::ObjectPtr& oldObject, const client::ObjectPtr& newObject) {
  if (stopped || !newObject) return;
  auto parsed = parsePod(newObject);
  if (!parsed.ok()) {
    logger()->warn("ignoring pod {}: {}", client::objectKey(*newObject), parsed.status().message());
    return;
  }
  PodInfoPtr pod = *parsed;
  PodInfoPtr old;
  {
    std::lock_guard lock(podsMu);
    auto& slot = pods[pod->ns + "/" + pod->name];
    old = slot;
    slot = pod;
  }
  if (!old && oldObject) {
    auto o = parsePod(oldObject);
    if (o.ok()) old = *o;
  }
  bool wasBound = old && !old->nodeName.empty();
  if (!pod->nodeName.empty()) {
    if (isTerminal(*pod)) {
      // Succeeded or Failed: its resources are free (kube's cache drops terminated pods).
      cache.removePod(pod);
      queue->moveOnEvent(ClusterEvent::kAssignedPodDelete);
      return;
    }
    if (!wasBound) {
      queue->remove(pod->ns, pod->name);
      cache.addPod(pod);
      queue->moveOnEvent(ClusterEvent::kAssignedPodAdd);
    } else {
      cache.updatePod(old, pod);
      if (old->labels != pod->labels) queue->moveOnEvent(ClusterEvent::kAssignedPodUpdate);
    }
    return;
  }
  if (!responsibleFor(*pod) || pod->terminating || isTerminal(*pod)) {
    queue->remove(pod->ns, pod->name);
    return;
  }
  queue->update(old, pod);
}

void Scheduler::Core::onPodDelete(const client::ObjectPtr& object) {
  if (stopped || !object) return;
  std::string ns = api::metaString(*object, "namespace"), name = api::metaString(*object, "name");
  PodInfoPtr pod;
  {
    std::lock_guard lock(podsMu);
    auto it = pods.find(ns + "/" + name);
    if (it != pods.end()) {
      pod = it->second;
      pods.erase(it);
    }
  }
  if (!pod) {
    auto parsed = parsePod(object);
    if (parsed.ok()) pod = *parsed;
  }
  queue->remove(ns, name);
  if (pod) {
    bool inCache = cache.hasPod(pod->uid);
    cache.removePod(pod);
    if (inCache) queue->moveOnEvent(ClusterEvent::kAssignedPodDelete);
  }
}

void Scheduler::Core::onNode(const client::ObjectPtr& object, bool added) {
  if (stopped || !object) return;
  auto changed = cache.upsertNode(object);
  if (!changed.ok()) {
    logger()->warn("ignoring node {}: {}", api::metaString(*object, "name"), changed.status().message());
    return;
  }
  if (*changed) queue->moveOnEvent(added ? ClusterEvent::kNodeAdd : ClusterEvent::kNodeUpdate);
}

void Scheduler::Core::onNodeDelete(const client::ObjectPtr& object) {
  if (stopped || !object) return;
  cache.removeNode(api::metaString(*object, "name"));
}

bool Scheduler::Core::podStillPending(const std::string& ns, const std::string& name, const std::string& uid) {
  std::lock_guard lock(podsMu);
  auto it = pods.find(ns + "/" + name);
  return it != pods.end() && it->second->uid == uid && it->second->nodeName.empty() && !it->second->terminating;
}

void Scheduler::Core::run() {
  while (!stopped) {
    auto queued = queue->pop();
    if (!queued) return;
    try {
      auto t0 = std::chrono::steady_clock::now();
      int64_t cpu0 = threadCpuNanos();
      scheduleOne(std::move(*queued));
      cycleNanos.fetch_add((std::chrono::steady_clock::now() - t0).count(), std::memory_order_relaxed);
      cycleCpuNanos.fetch_add(threadCpuNanos() - cpu0, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      // A bug in a plugin must not take the scheduler down.
      logger()->error("scheduling cycle failed: {}", e.what());
    }
  }
}

void Scheduler::Core::scheduleOne(QueuedPod queued) {
  ++cycle;
  PodInfoPtr pod = queued.pod;
  auto fw = frameworks.find(pod->schedulerName);
  // kube's skipPodSchedule: deleted, being deleted, or already assumed/bound.
  if (fw == frameworks.end() || pod->terminating || cache.hasPod(pod->uid) ||
      !podStillPending(pod->ns, pod->name, pod->uid)) {
    queue->done(pod->ns, pod->name);
    return;
  }
  ++attempts;
  cache.updateSnapshot(snapshot);
  snapshot.nominatedPods = queue->nominatedPods();
  for (auto& [node, list] : snapshot.nominatedPods) {
    list.erase(std::remove_if(list.begin(), list.end(), [&](const PodInfoPtr& p) { return p->uid == pod->uid; }),
               list.end());
  }

  DecisionRecord record;
  record.podNamespace = pod->ns;
  record.podName = pod->name;
  record.podUid = pod->uid;
  record.attempt = history->nextAttempt(pod->ns, pod->name, pod->uid);
  record.profile = pod->schedulerName;
  record.started = std::chrono::system_clock::now();
  auto t0 = std::chrono::steady_clock::now();

  if (snapshot.nodes.empty()) {
    // kube's ErrNoNodesAvailable: unschedulable and unresolvable until a node comes.
    record.result = "Unschedulable";
    record.message = "no nodes available to schedule pods";
    record.duration = std::chrono::steady_clock::now() - t0;
    ++unschedulable;
    queued.unschedulablePlugins.clear();
    handleFailure(std::move(queued), record, "Unschedulable");
    return;
  }

  Framework::Outcome outcome =
      fw->second->schedule(*pod, snapshot, nextStartIndex % snapshot.nodes.size(), cycle, record);
  if (record.duration.count() == 0) record.duration = std::chrono::steady_clock::now() - t0;
  int32_t processed = std::max<int32_t>(1, record.nodesEvaluated);
  nextStartIndex = (nextStartIndex + processed) % snapshot.nodes.size();

  if (!outcome.node.empty()) {
    auto assumed = std::make_shared<PodInfo>(*pod);
    assumed->nodeName = outcome.node;
    Status st = cache.assumePod(assumed);
    if (!st.isOk()) {
      fw->second->dropBatch();
      record.result = "Error";
      record.message = st.message();
      ++errors;
      queued.error = true;
      handleFailure(std::move(queued), record, "SchedulerError");
      return;
    }
    ++scheduled;
    if (record.result.empty()) record.result = "Scheduled";
    if (record.node.empty()) record.node = outcome.node;
    if (record.message.empty()) {
      record.message = "Successfully assigned " + pod->ns + "/" + pod->name + " to " + outcome.node;
    }
    queue->nominate(pod, "");  // deleteNominatedPodIfExists
    queue->done(pod->ns, pod->name);
    int32_t attempt = record.attempt;
    history->add(std::move(record));
    auto self = shared_from_this();
    std::string profile = pod->schedulerName;
    workers->submit([self, assumed, queued = std::move(queued), attempt, profile]() mutable {
      self->bind(assumed, std::move(queued), attempt, profile);
    });
    return;
  }

  bool isError = outcome.status.code == PluginStatus::Code::kError;
  if (record.result.empty()) record.result = isError ? "Error" : "Unschedulable";
  if (record.message.empty()) {
    record.message = isError ? (outcome.status.reasons.empty() ? std::string("scheduling error")
                                                               : outcome.status.reasons.front())
                             : fitErrorMessage(static_cast<int32_t>(snapshot.nodes.size()), record.nodes,
                                               record.preFilterRejection);
  }
  if (isError) {
    ++errors;
    queued.error = true;
  } else {
    ++unschedulable;
    queued.unschedulablePlugins = rejectingPlugins(record);
  }
  handleFailure(std::move(queued), record, isError ? "SchedulerError" : "Unschedulable");
}

void Scheduler::Core::handleFailure(QueuedPod queued, DecisionRecord& record, const std::string& reason) {
  PodInfoPtr pod = queued.pod;
  std::string nominated;
  std::vector<PodInfoPtr> lowerNominated;
  const PreemptionResult& preemption = record.preemption;
  if (!preemption.nominatedNode.empty()) {
    nominated = preemption.nominatedNode;
    ++preemptions;
    // Lower-priority pods nominated to that node may no longer fit there: clear them.
    for (const auto& p : queue->nominatedPodsForNode(nominated)) {
      if (p->uid != pod->uid && p->priority < pod->priority) {
        lowerNominated.push_back(p);
        queue->nominate(p, "");
      }
    }
    queue->nominate(pod, nominated);
    if (record.victimNames.empty()) {
      for (const auto& v : preemption.victims) record.victimNames.push_back(v->ns + "/" + v->name);
    }
  }
  std::string message = record.message;
  queue->addUnschedulable(std::move(queued));
  PreemptionResult preemptionCopy = preemption;
  // The record goes to the history as it is (a failed cycle's record holds every node's
  // reasons: moved, not copied); the caller does not read it afterwards.
  history->add(std::move(record));

  auto self = shared_from_this();
  workers->submit([self, pod, reason, message, nominated, preemptionCopy, lowerNominated]() mutable {
    if (!nominated.empty()) self->preempt(pod, preemptionCopy, std::move(lowerNominated));
    self->patchCondition(pod, reason, message, nominated);
    if (auto* recorder = self->recorderFor(pod->schedulerName); recorder && pod->object) {
      recorder->record(*pod->object, "Warning", "FailedScheduling", truncateMessage(message));
    }
  });
}

void Scheduler::Core::patchCondition(const PodInfoPtr& pod, const std::string& reason, const std::string& message,
                                     const std::string& nominatedNode) {
  // kube's updatePod: skip the write when the condition and nomination are already so.
  std::string lastTransition = api::formatTime(std::chrono::system_clock::now());
  PodInfoPtr current;
  {
    std::lock_guard lock(podsMu);
    auto it = pods.find(pod->ns + "/" + pod->name);
    if (it != pods.end()) current = it->second;
  }
  if (!current || current->uid != pod->uid || !current->nodeName.empty()) return;  // gone or bound meanwhile
  if (current->object) {
    const json& status = api::memberOrEmpty(*current->object, "status");
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") != "PodScheduled") continue;
      bool same = c.value("status", "") == "False" && c.value("reason", "") == reason &&
                  c.value("message", "") == message;
      if (c.value("status", "") == "False" && c.contains("lastTransitionTime") && c["lastTransitionTime"].is_string()) {
        lastTransition = c["lastTransitionTime"].get<std::string>();
      }
      if (same && (nominatedNode.empty() || status.value("nominatedNodeName", "") == nominatedNode)) return;
    }
  }
  json patch = {{"status",
                 {{"conditions",
                   json::array({{{"type", "PodScheduled"},
                                 {"status", "False"},
                                 {"reason", reason},
                                 {"message", message},
                                 {"lastProbeTime", nullptr},
                                 {"lastTransitionTime", lastTransition}}})}}}};
  if (!nominatedNode.empty()) patch["status"]["nominatedNodeName"] = nominatedNode;
  auto r = client->patch(kPods, pod->ns, pod->name, client::PatchType::kStrategicMerge, patch.dump(), "status");
  if (!r.ok() && r.status().code() != 404) {
    logger()->warn("updating the PodScheduled condition of {}/{}: {}", pod->ns, pod->name, r.status().message());
  }
}

void Scheduler::Core::preempt(const PodInfoPtr& preemptor, const PreemptionResult& preemption,
                              std::vector<PodInfoPtr> lowerNominated) {
  // kube's prepareCandidate: mark each victim DisruptionTarget, then delete it.
  auto* recorder = recorderFor(preemptor->schedulerName);
  for (const auto& victim : preemption.victims) {
    json patch = {{"status",
                   {{"conditions",
                     json::array({{{"type", "DisruptionTarget"},
                                   {"status", "True"},
                                   {"reason", "PreemptionByScheduler"},
                                   {"message", preemptor->schedulerName +
                                                   ": preempting to accommodate a higher priority pod"},
                                   {"lastTransitionTime", api::formatTime(std::chrono::system_clock::now())}}})}}}};
    auto p = client->patch(kPods, victim->ns, victim->name, client::PatchType::kStrategicMerge, patch.dump(), "status");
    if (!p.ok() && p.status().code() == 404) continue;
    client::DeleteOptions del;
    if (!victim->uid.empty()) del.preconditionUid = victim->uid;
    auto d = client->remove(kPods, victim->ns, victim->name, del);
    if (!d.ok() && d.status().code() != 404) {
      logger()->warn("preempting {}/{}: {}", victim->ns, victim->name, d.status().message());
      continue;
    }
    if (recorder && victim->object) {
      recorder->record(*victim->object, "Normal", "Preempted",
                       "Preempted by pod " + preemptor->uid + " on node " + preemption.nominatedNode);
    }
  }
  for (const auto& p : lowerNominated) {
    json patch = {{"status", {{"nominatedNodeName", nullptr}}}};
    client->patch(kPods, p->ns, p->name, client::PatchType::kMerge, patch.dump(), "status");
  }
}

void Scheduler::Core::bind(PodInfoPtr assumed, QueuedPod queued, int32_t attempt, std::string schedulerName) {
  if (stopped) {
    cache.forgetPod(assumed);
    return;
  }
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", assumed->name}, {"namespace", assumed->ns}, {"uid", assumed->uid}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", assumed->nodeName}}}};
  auto r = client->create(kPods, assumed->ns, std::move(binding), "binding");
  if (r.ok()) {
    ++bound;
    if (auto* recorder = recorderFor(schedulerName); recorder && assumed->object) {
      recorder->record(*assumed->object, "Normal", "Scheduled",
                       "Successfully assigned " + assumed->ns + "/" + assumed->name + " to " + assumed->nodeName);
    }
    return;
  }
  // kube's handleBindingCycleError: forget the assumed pod (its resources are free again,
  // which may help others) and retry the pod after its backoff.
  ++bindFailures;
  cache.forgetPod(assumed);
  std::string message = "running Bind plugin \"DefaultBinder\": " + r.status().message();
  history->amend(assumed->ns, assumed->name, attempt, "Error", message);
  queue->moveOnEvent(ClusterEvent::kAssignedPodDelete);
  if (!podStillPending(assumed->ns, assumed->name, assumed->uid)) return;  // deleted or bound meanwhile
  queued.error = true;
  queue->addBackoff(std::move(queued));
  PodInfoPtr original = std::make_shared<PodInfo>([&] {
    PodInfo copy = *assumed;
    copy.nodeName.clear();
    return copy;
  }());
  patchCondition(original, "SchedulerError", message, "");
  if (auto* recorder = recorderFor(schedulerName); recorder && assumed->object) {
    recorder->record(*assumed->object, "Warning", "FailedScheduling", truncateMessage(message));
  }
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Scheduler>> Scheduler::start(SchedulerOptions options) {
  if (!options.client) return Status::badRequest("scheduler: no API client");
  if (options.config.profiles.empty()) return Status::badRequest("scheduler: at least one profile is required");
  auto core = std::make_shared<Core>();
  core->client = options.client;
  for (const auto& profile : options.config.profiles) {
    if (core->frameworks.count(profile.schedulerName)) {
      return Status::badRequest("profiles: Duplicate value: \"" + profile.schedulerName + "\"");
    }
    int32_t pct = profile.percentageOfNodesToScore ? profile.percentageOfNodesToScore
                                                   : options.config.percentageOfNodesToScore;
    auto fw = Framework::create(profile, pct, options.config.opportunisticBatching);
    if (!fw.ok()) return fw.status();
    core->frameworks[profile.schedulerName] = std::move(fw).value();
    core->recorders[profile.schedulerName] =
        std::make_unique<client::EventRecorder>(options.client, profile.schedulerName, options.host);
  }
  SchedulingQueue::Options qo;
  qo.podInitialBackoff = std::chrono::seconds(std::max<int64_t>(0, options.config.podInitialBackoffSeconds));
  qo.podMaxBackoff = std::chrono::seconds(std::max<int64_t>(0, options.config.podMaxBackoffSeconds));
  qo.clock = options.clock;
  core->queue = std::make_unique<SchedulingQueue>(qo);
  core->history = std::make_shared<DecisionHistory>(
      DecisionHistory::Options{options.config.decisionsPerPod, options.config.decisionHistoryBytes});
  core->workers = std::make_unique<WorkerPool>(options.bindWorkers);

  if (options.informers) {
    core->informers = options.informers;
  } else {
    core->ownedInformers = std::make_unique<client::InformerFactory>(options.client);
    // As kube-scheduler's pod informer: nothing here reads managedFields.
    core->ownedInformers->setTransform(client::stripManagedFields);
    core->informers = core->ownedInformers.get();
  }
  std::weak_ptr<Core> weak = core;
  // Handlers hold the core weakly: a shared factory may outlive the scheduler.
  auto with = [weak](auto fn) {
    return [weak, fn](auto&&... args) {
      if (auto c = weak.lock()) fn(*c, args...);
    };
  };
  core->informers->informer(kNodes).addHandler(client::EventHandler{
      with([](Core& c, const client::ObjectPtr& o) { c.onNode(o, true); }),
      with([](Core& c, const client::ObjectPtr&, const client::ObjectPtr& n) { c.onNode(n, false); }),
      with([](Core& c, const client::ObjectPtr& o) { c.onNodeDelete(o); })});
  core->informers->informer(kNamespaces).addHandler(client::EventHandler{
      with([](Core& c, const client::ObjectPtr& o) {
        c.cache.upsertNamespace(api::metaString(*o, "name"), labelsOf(*o));
      }),
      with([](Core& c, const client::ObjectPtr& old, const client::ObjectPtr& n) {
        c.cache.upsertNamespace(api::metaString(*n, "name"), labelsOf(*n));
        if (labelsOf(*old) != labelsOf(*n)) c.queue->moveOnEvent(ClusterEvent::kNamespaceChange);
      }),
      with([](Core& c, const client::ObjectPtr& o) { c.cache.removeNamespace(api::metaString(*o, "name")); })});
  auto pdbUpsert = [](Core& c, const client::ObjectPtr& o) {
    auto pdb = parsePdb(*o);
    if (!pdb.ok()) return;
    c.cache.upsertPdb(std::move(pdb).value());
    c.queue->moveOnEvent(ClusterEvent::kPdbChange);
  };
  core->informers->informer(kPdbs).addHandler(client::EventHandler{
      with(pdbUpsert), with([pdbUpsert](Core& c, const client::ObjectPtr&, const client::ObjectPtr& n) { pdbUpsert(c, n); }),
      with([](Core& c, const client::ObjectPtr& o) {
        c.cache.removePdb(api::metaString(*o, "namespace"), api::metaString(*o, "name"));
      })});
  core->informers->informer(kPods).addHandler(client::EventHandler{
      with([](Core& c, const client::ObjectPtr& o) { c.onPodAdd(o); }),
      with([](Core& c, const client::ObjectPtr& o, const client::ObjectPtr& n) { c.onPodUpdate(o, n); }),
      with([](Core& c, const client::ObjectPtr& o) { c.onPodDelete(o); })});
  core->informers->start();
  if (!core->informers->waitForSync(options.syncTimeout)) {
    core->stopped = true;
    core->workers->stop();
    if (core->ownedInformers) core->ownedInformers->stop();
    return Status::serviceUnavailable("scheduler: the informer caches did not sync within " +
                                      std::to_string(options.syncTimeout.count()) + "ms");
  }
  core->options = std::move(options);

  core->loop = std::thread([c = core.get()] {
    nameThread("sched-loop");
    c->run();
  });
  core->flusher = std::thread([c = core.get()] {
    nameThread("sched-flush");
    // kube flushes pods unschedulable for over 5 minutes every 30 seconds.
    std::unique_lock lock(c->flusherMu);
    while (!c->stopped) {
      c->flusherCv.wait_for(lock, std::chrono::seconds(30), [c] { return c->stopped.load(); });
      if (c->stopped) break;
      c->queue->flushUnschedulableLeftover();
    }
  });
  std::unique_ptr<Scheduler> s(new Scheduler());
  s->core_ = std::move(core);
  logger()->info("scheduler started with {} profile(s)", s->core_->frameworks.size());
  return s;
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  if (!core_ || core_->stopped.exchange(true)) return;
  core_->queue->close();
  {
    std::lock_guard lock(core_->flusherMu);
    core_->flusherCv.notify_all();
  }
  if (core_->loop.joinable()) core_->loop.join();
  if (core_->flusher.joinable()) core_->flusher.join();
  core_->workers->stop();
  for (auto& [name, recorder] : core_->recorders) recorder->flush();
  if (core_->ownedInformers) core_->ownedInformers->stop();
}

std::shared_ptr<DecisionHistory> Scheduler::history() const { return core_->history; }
SchedulingQueue& Scheduler::queue() { return *core_->queue; }
SchedulerCache& Scheduler::cache() { return core_->cache; }

Scheduler::Stats Scheduler::stats() const {
  Stats s;
  s.attempts = core_->attempts;
  s.scheduled = core_->scheduled;
  s.unschedulable = core_->unschedulable;
  s.errors = core_->errors;
  s.bound = core_->bound;
  s.bindFailures = core_->bindFailures;
  s.preemptions = core_->preemptions;
  for (const auto& [name, fw] : core_->frameworks) s.batched += static_cast<uint64_t>(fw->batchedCycles());
  s.cycleTime = std::chrono::nanoseconds(core_->cycleNanos.load());
  s.cycleCpuTime = std::chrono::nanoseconds(core_->cycleCpuNanos.load());
  return s;
}

void Scheduler::waitIdle() {
  core_->workers->waitIdle();
  for (auto& [name, recorder] : core_->recorders) recorder->flush();
}

// ---------------------------------------------------------------------------------------

api::ResourceInfo schedulingAttemptResource() {
  api::ResourceInfo info;
  info.group = kSchedulingGroup;
  info.version = kSchedulingVersion;
  info.resource = "schedulingattempts";
  info.kind = kSchedulingAttemptKind;
  info.listKind = std::string(kSchedulingAttemptKind) + "List";
  info.singular = "schedulingattempt";
  info.shortNames = {"attempt"};
  // Verbs: the API server's registerProvider sets them from what the provider can do.
  info.namespaced = true;
  auto column = [](std::string name, std::string type, std::string path, std::string description, int priority = 0) {
    api::TableColumn c;
    c.name = std::move(name);
    c.type = std::move(type);
    c.jsonPath = std::move(path);
    c.description = std::move(description);
    c.priority = priority;
    return c;
  };
  api::TableColumn name;
  name.name = "Name";
  name.type = "string";
  name.format = "name";
  name.description = "Name must be unique within a namespace.";
  info.columns = {
      name,
      column("Pod", "string", ".spec.pod.name", "The pod this attempt scheduled."),
      column("Attempt", "integer", ".spec.attempt", "The pod's scheduling attempt number."),
      column("Result", "string", ".status.result", "Scheduled, Unschedulable or Error."),
      column("Node", "string", ".status.node", "The node chosen."),
      column("Feasible", "integer", ".status.nodesFeasible", "Nodes that passed every filter."),
      column("Ranked-By", "string", ".status.batch.fromAttempt.pod",
             "The pod whose full cycle ranked the nodes this attempt took its node from (opportunistic batching).", 1),
      column("Message", "string", ".status.message", "The event message of the attempt.", 1),
      column("Age", "date", ".metadata.creationTimestamp", "Time since the attempt."),
  };
  return info;
}

}  // namespace orrery::scheduler
