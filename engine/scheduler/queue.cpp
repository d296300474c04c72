#include "engine/scheduler/queue.h"

#include <algorithm>

namespace orrery::scheduler {

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

uint32_t bit(ClusterEvent event) { return 1u << static_cast<uint32_t>(event); }

// Which plugins' rejections an event may resolve (a coarse form of kube's EventsToRegister
// and queueing hints). Empty: every plugin.
const std::set<std::string>& pluginsHelpedBy(ClusterEvent event) {
  static const std::set<std::string> kAll;
  static const std::set<std::string> kAssignedPodAdd{"InterPodAffinity", "PodTopologySpread"};
  static const std::set<std::string> kAssignedPodUpdate{"InterPodAffinity", "PodTopologySpread",
                                                         "NodeResourcesFit"};
  static const std::set<std::string> kAssignedPodDelete{
      "NodeResourcesFit", "NodePorts", "InterPodAffinity", "PodTopologySpread", "DefaultPreemption"};
  static const std::set<std::string> kNamespace{"InterPodAffinity"};
  static const std::set<std::string> kPdb{"DefaultPreemption"};
  switch (event) {
    case ClusterEvent::kAssignedPodAdd: return kAssignedPodAdd;
    case ClusterEvent::kAssignedPodUpdate: return kAssignedPodUpdate;
    case ClusterEvent::kAssignedPodDelete: return kAssignedPodDelete;
    case ClusterEvent::kNamespaceChange: return kNamespace;
    case ClusterEvent::kPdbChange: return kPdb;
    default: return kAll;
  }
}

bool eventHelps(ClusterEvent event, const QueuedPod& pod) {
  if (pod.error || pod.unschedulablePlugins.empty()) return true;
  const auto& helped = pluginsHelpedBy(event);
  if (helped.empty()) return true;
  for (const auto& p : pod.unschedulablePlugins) {
    if (helped.count(p)) return true;
  }
  return false;
}

// Whether an update of a pending pod may change its scheduling result (kube's isPodUpdated:
// everything but status, resourceVersion, generation and managed fields).
bool schedulingRelevantChange(const PodInfo& a, const PodInfo& b) {
  if (!a.object || !b.object) return true;
  auto strip = [](const nlohmann::json& pod) {
    nlohmann::json copy = nlohmann::json::object();
    if (pod.contains("spec")) copy["spec"] = pod["spec"];
    if (pod.contains("metadata")) {
      const auto& m = pod["metadata"];
      copy["labels"] = m.value("labels", nlohmann::json::object());
      copy["annotations"] = m.value("annotations", nlohmann::json::object());
    }
    return copy;
  };
  try {
    return strip(*a.object) != strip(*b.object);
  } catch (...) {
    return true;
  }
}

}  // namespace

bool SchedulingQueue::ActiveKey::operator<(const ActiveKey& o) const {
  // PrioritySort: higher priority first, then the earlier queue timestamp.
  if (priority != o.priority) return priority > o.priority;
  if (timestamp != o.timestamp) return timestamp < o.timestamp;
  return seq < o.seq;
}

SchedulingQueue::SchedulingQueue(Options options) : options_(std::move(options)) {}

TimePoint SchedulingQueue::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

std::string SchedulingQueue::key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

std::chrono::milliseconds SchedulingQueue::backoffDuration(int32_t attempts) const {
  // kube's calculateBackoffDuration: initial, doubled per further attempt, capped.
  auto d = options_.podInitialBackoff;
  for (int32_t i = 1; i < attempts; ++i) {
    if (d > options_.podMaxBackoff - d) return options_.podMaxBackoff;
    d += d;
  }
  return std::min(d, options_.podMaxBackoff);
}

TimePoint SchedulingQueue::backoffExpiry(const QueuedPod& info) const {
  return info.timestamp + backoffDuration(std::max<int32_t>(info.attempts, 1));
}

void SchedulingQueue::pushActive(const std::string& k, QueuedPod info) {
  Entry& e = entries_[k];
  e.info = std::move(info);
  e.where = Entry::Where::kActive;
  e.activeKey = {e.info.pod ? e.info.pod->priority : 0, e.info.timestamp, seq_++};
  active_.emplace(e.activeKey, k);
  cv_.notify_one();
}

void SchedulingQueue::pushBackoff(const std::string& k, QueuedPod info) {
  Entry& e = entries_[k];
  e.info = std::move(info);
  e.where = Entry::Where::kBackoff;
  e.backoffExpiry = backoffExpiry(e.info);
  backoff_.emplace(e.backoffExpiry, k);
  cv_.notify_one();  // pop() may need to wait for a nearer expiry
}

void SchedulingQueue::pushUnschedulable(const std::string& k, QueuedPod info) {
  Entry& e = entries_[k];
  e.info = std::move(info);
  e.info.unschedulableSince = now();
  e.where = Entry::Where::kUnschedulable;
  unschedulable_.insert(k);
}

void SchedulingQueue::erase(const std::string& k) {
  auto it = entries_.find(k);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  switch (e.where) {
    case Entry::Where::kActive: active_.erase(e.activeKey); break;
    case Entry::Where::kBackoff: {
      auto range = backoff_.equal_range(e.backoffExpiry);
      for (auto b = range.first; b != range.second; ++b) {
        if (b->second == k) {
          backoff_.erase(b);
          break;
        }
      }
      break;
    }
    case Entry::Where::kUnschedulable: unschedulable_.erase(k); break;
  }
  entries_.erase(it);
}

void SchedulingQueue::moveToActiveOrBackoff(const std::string& k) {
  auto it = entries_.find(k);
  if (it == entries_.end()) return;
  QueuedPod info = it->second.info;
  erase(k);
  if (!info.error && backoffExpiry(info) > now()) {
    pushBackoff(k, std::move(info));
  } else {
    pushActive(k, std::move(info));
  }
}

void SchedulingQueue::add(const PodInfoPtr& pod) {
  if (!pod) return;
  std::lock_guard lock(mu_);
  std::string k = key(pod->ns, pod->name);
  if (inFlight_.count(k)) {
    inFlight_[k].pod = pod;  // the cycle in progress decides; a newer version is picked up later
    return;
  }
  auto it = entries_.find(k);
  if (it != entries_.end()) {
    it->second.info.pod = pod;
    return;
  }
  QueuedPod info;
  info.pod = pod;
  info.timestamp = info.initialAttempt = now();
  pushActive(k, std::move(info));
  if (!pod->nominatedNodeName.empty()) setNomination(pod, pod->nominatedNodeName);
}

void SchedulingQueue::update(const PodInfoPtr& oldPod, const PodInfoPtr& newPod) {
  if (!newPod) return;
  std::lock_guard lock(mu_);
  std::string k = key(newPod->ns, newPod->name);
  if (nominatedNode_.count(k) || !newPod->nominatedNodeName.empty()) {
    // Keep the nomination the API shows (kube's nominator follows status.nominatedNodeName).
    auto current = nominatedNode_.find(k);
    std::string node = current != nominatedNode_.end() && newPod->nominatedNodeName.empty()
                           ? current->second
                           : newPod->nominatedNodeName;
    setNomination(newPod, node);
  }
  if (auto f = inFlight_.find(k); f != inFlight_.end()) {
    f->second.pod = newPod;
    return;
  }
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    QueuedPod info;
    info.pod = newPod;
    info.timestamp = info.initialAttempt = now();
    pushActive(k, std::move(info));
    return;
  }
  Entry& e = it->second;
  bool relevant = !oldPod || schedulingRelevantChange(*oldPod, *newPod);
  if (e.where == Entry::Where::kActive) {
    // Priority may have changed: re-key.
    QueuedPod info = e.info;
    info.pod = newPod;
    erase(k);
    pushActive(k, std::move(info));
    return;
  }
  e.info.pod = newPod;
  if (e.where == Entry::Where::kUnschedulable && relevant) {
    // The user changed the pod: it may fit now (kube moves it, honouring backoff).
    moveToActiveOrBackoff(k);
  }
}

void SchedulingQueue::remove(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  std::string k = key(ns, name);
  erase(k);
  inFlight_.erase(k);
  auto n = nominatedNode_.find(k);
  if (n != nominatedNode_.end()) {
    auto byNode = nominatedByNode_.find(n->second);
    if (byNode != nominatedByNode_.end()) {
      byNode->second.erase(k);
      if (byNode->second.empty()) nominatedByNode_.erase(byNode);
    }
    nominatedNode_.erase(n);
  }
}

size_t SchedulingQueue::flushBackoffLocked() {
  size_t moved = 0;
  auto t = now();
  while (!backoff_.empty() && backoff_.begin()->first <= t) {
    std::string k = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    auto it = entries_.find(k);
    if (it == entries_.end()) continue;
    QueuedPod info = std::move(it->second.info);
    entries_.erase(it);
    pushActive(k, std::move(info));
    ++moved;
  }
  return moved;
}

std::optional<QueuedPod> SchedulingQueue::tryPop() {
  std::lock_guard lock(mu_);
  flushBackoffLocked();
  if (active_.empty()) return std::nullopt;
  auto first = active_.begin();
  std::string k = first->second;
  active_.erase(first);
  auto it = entries_.find(k);
  QueuedPod info = std::move(it->second.info);
  entries_.erase(it);
  info.attempts++;
  ++cycle_;
  inFlight_[k] = InFlight{info.pod, 0};
  return info;
}

std::optional<QueuedPod> SchedulingQueue::pop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (closed_) return std::nullopt;
    flushBackoffLocked();
    if (!active_.empty()) break;
    if (!backoff_.empty() && !options_.clock) {
      cv_.wait_until(lock, backoff_.begin()->first);
    } else if (!backoff_.empty()) {
      // An injected clock does not advance with real time: poll it.
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    } else {
      cv_.wait(lock);
    }
  }
  auto first = active_.begin();
  std::string k = first->second;
  active_.erase(first);
  auto it = entries_.find(k);
  QueuedPod info = std::move(it->second.info);
  entries_.erase(it);
  info.attempts++;
  ++cycle_;
  inFlight_[k] = InFlight{info.pod, 0};
  return info;
}

int64_t SchedulingQueue::schedulingCycle() const {
  std::lock_guard lock(mu_);
  return cycle_;
}

void SchedulingQueue::addUnschedulable(QueuedPod pod) {
  if (!pod.pod) return;
  std::lock_guard lock(mu_);
  std::string k = key(pod.pod->ns, pod.pod->name);
  auto f = inFlight_.find(k);
  if (f == inFlight_.end()) return;  // deleted while in flight
  if (f->second.pod) pod.pod = f->second.pod;  // the newest version seen meanwhile
  uint32_t seen = f->second.events;
  inFlight_.erase(f);
  if (entries_.count(k)) return;
  pod.timestamp = now();
  // An event during the attempt may already have helped: retry after the backoff rather than
  // wait for another event (kube's in-flight events / moveRequestCycle).
  bool helped = false;
  for (uint32_t e = 0; e < 32 && !helped; ++e) {
    if (seen & (1u << e)) helped = eventHelps(static_cast<ClusterEvent>(e), pod);
  }
  if (pod.error || helped) {
    pushBackoff(k, std::move(pod));
  } else {
    pushUnschedulable(k, std::move(pod));
  }
}

void SchedulingQueue::addBackoff(QueuedPod pod) {
  if (!pod.pod) return;
  std::lock_guard lock(mu_);
  std::string k = key(pod.pod->ns, pod.pod->name);
  inFlight_.erase(k);
  if (entries_.count(k)) return;
  pod.timestamp = now();
  pushBackoff(k, std::move(pod));
}

void SchedulingQueue::done(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  inFlight_.erase(key(ns, name));
}

void SchedulingQueue::moveOnEvent(ClusterEvent event) {
  std::lock_guard lock(mu_);
  for (auto& [k, f] : inFlight_) f.events |= bit(event);
  if (unschedulable_.empty()) return;
  std::vector<std::string> toMove;
  for (const auto& k : unschedulable_) {
    auto it = entries_.find(k);
    if (it != entries_.end() && eventHelps(event, it->second.info)) toMove.push_back(k);
  }
  for (const auto& k : toMove) moveToActiveOrBackoff(k);
}

size_t SchedulingQueue::flushBackoffCompleted() {
  std::lock_guard lock(mu_);
  return flushBackoffLocked();
}

size_t SchedulingQueue::flushUnschedulableLeftover() {
  std::lock_guard lock(mu_);
  auto t = now();
  std::vector<std::string> toMove;
  for (const auto& k : unschedulable_) {
    auto it = entries_.find(k);
    if (it != entries_.end() && t - it->second.info.unschedulableSince > options_.maxInUnschedulable) {
      toMove.push_back(k);
    }
  }
  for (const auto& k : toMove) moveToActiveOrBackoff(k);
  return toMove.size();
}

std::optional<TimePoint> SchedulingQueue::nextBackoffExpiry() const {
  std::lock_guard lock(mu_);
  if (backoff_.empty()) return std::nullopt;
  return backoff_.begin()->first;
}

void SchedulingQueue::setNomination(const PodInfoPtr& pod, const std::string& node) {
  if (!pod) return;
  std::string k = key(pod->ns, pod->name);
  auto n = nominatedNode_.find(k);
  if (n != nominatedNode_.end()) {
    auto byNode = nominatedByNode_.find(n->second);
    if (byNode != nominatedByNode_.end()) {
      byNode->second.erase(k);
      if (byNode->second.empty()) nominatedByNode_.erase(byNode);
    }
    nominatedNode_.erase(n);
  }
  if (node.empty()) return;
  nominatedNode_[k] = node;
  nominatedByNode_[node][k] = pod;
}

void SchedulingQueue::nominate(const PodInfoPtr& pod, const std::string& node) {
  std::lock_guard lock(mu_);
  setNomination(pod, node);
}

std::map<std::string, std::vector<PodInfoPtr>> SchedulingQueue::nominatedPods() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::vector<PodInfoPtr>> out;
  for (const auto& [node, pods] : nominatedByNode_) {
    auto& v = out[node];
    for (const auto& [k, p] : pods) v.push_back(p);
  }
  return out;
}

std::vector<PodInfoPtr> SchedulingQueue::nominatedPodsForNode(const std::string& node) const {
  std::lock_guard lock(mu_);
  std::vector<PodInfoPtr> out;
  auto it = nominatedByNode_.find(node);
  if (it != nominatedByNode_.end()) {
    for (const auto& [k, p] : it->second) out.push_back(p);
  }
  return out;
}

void SchedulingQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

SchedulingQueue::Counts SchedulingQueue::counts() const {
  std::lock_guard lock(mu_);
  return {active_.size(), backoff_.size(), unschedulable_.size(), inFlight_.size()};
}

std::string SchedulingQueue::whereIs(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  std::string k = key(ns, name);
  if (inFlight_.count(k)) return "inflight";
  auto it = entries_.find(k);
  if (it == entries_.end()) return "";
  switch (it->second.where) {
    case Entry::Where::kActive: return "active";
    case Entry::Where::kBackoff: return "backoff";
    case Entry::Where::kUnschedulable: return "unschedulable";
  }
  return "";
}

}  // namespace orrery::scheduler
