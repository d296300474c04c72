#include "engine/simnodes/simulated_nodes.h"

#include <algorithm>
#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/api/object.h"
#include "engine/client/parallel.h"
#include "engine/simnodes/reflector.h"

namespace orrery::simnodes {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

namespace {

const api::GroupVersionResource kNodes{"", "v1", "nodes"};
const api::GroupVersionResource kPods{"", "v1", "pods"};
const api::GroupVersionResource kLeases{"coordination.k8s.io", "v1", "leases"};
constexpr const char* kLeaseNamespace = "kube-node-lease";
constexpr uint32_t kNoNode = UINT32_MAX;
constexpr auto kRetryDelay = std::chrono::seconds(1);

// metav1.MicroTime, as a Lease's renewTime serializes.
std::string formatMicroTime(SysClock::time_point t) {
  std::string base = api::formatTime(t);  // ...Z with second precision
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  if (micros < 0) micros += 1000000;
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(micros));
  if (!base.empty() && base.back() == 'Z') base.insert(base.size() - 1, frac);
  return base;
}

std::string formatSeconds(int64_t seconds) {
  return api::formatTime(SysClock::time_point(std::chrono::seconds(seconds)));
}

int64_t toSeconds(SysClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// A deterministic 64-hex-digit id (container ids, image digests): FNV-1a over four seeds.
std::string hex64(const std::string& text) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint64_t seed = 0; seed < 4; ++seed) {
    uint64_t h = 1469598103934665603ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    for (int i = 0; i < 16; ++i) out.push_back(digits[(h >> (60 - 4 * i)) & 0xF]);
  }
  return out;
}

// "nginx" -> "docker.io/library/nginx:latest", as the runtime reports containerStatuses.image.
std::string normalizeImage(const std::string& image) {
  std::string name = image;
  auto slash = name.find('/');
  std::string first = slash == std::string::npos ? "" : name.substr(0, slash);
  bool hasRegistry = first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost";
  if (!hasRegistry) name = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + name;
  auto lastSlash = name.rfind('/');
  if (name.find('@') == std::string::npos && name.find(':', lastSlash) == std::string::npos) name += ":latest";
  return name;
}

std::string ipv4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
         "." + std::to_string(a & 255);
}

// Node index -> its /24: 10.244.<i>.0/24 for the first 256, then on through 10.0.0.0/8.
uint32_t podNetwork(uint32_t index) {
  uint32_t block = (244u * 256u + index) % 65536u;
  return (10u << 24) | (block << 8);
}

// Node index -> InternalIP in 172.18.0.0/16 onwards (as kind's docker network), from .2.
uint32_t nodeAddress(uint32_t index) { return ((172u << 24) | (18u << 16)) + index + 2; }

bool parseIpv4(const std::string& text, uint32_t* out) {
  unsigned a, b, c, d;
  char tail;
  if (std::sscanf(text.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4) return false;
  if (a > 255 || b > 255 || c > 255 || d > 255) return false;
  *out = (a << 24) | (b << 16) | (c << 8) | d;
  return true;
}

int64_t parseSeconds(const json& value) {
  if (!value.is_string()) return 0;
  SysClock::time_point t;
  if (!api::parseTime(value.get<std::string>(), &t)) return 0;
  return toSeconds(t);
}

}  // namespace

nlohmann::json defaultNodeTemplate() {
  json resources = {{"cpu", "32"},
                    {"memory", "256Gi"},
                    {"pods", "110"},
                    {"ephemeral-storage", "1Ti"},
                    {"hugepages-1Gi", "0"},
                    {"hugepages-2Mi", "0"}};
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"labels",
             {{"beta.kubernetes.io/arch", "amd64"},
              {"beta.kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"kubernetes.io/os", "linux"},
              {"node.kubernetes.io/instance-type", "orrery-simulated"},
              {"type", "kwok"},
              {kSimulatedLabel, "true"}}},
            {"annotations",
             {{"node.alpha.kubernetes.io/ttl", "0"},
              {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}}}},
          {"spec", json::object()},
          {"status", {{"capacity", resources}, {"allocatable", resources}}}};
}

// ---------------------------------------------------------------------------------------------

struct SimulatedNodes::Impl {
  enum class TaskKind : uint8_t { kRegister, kLease, kNodeStatus, kPodStart, kPodExit, kPodStatus, kPodDelete };
  struct Task {
    Clock::time_point at;
    TaskKind kind;
    uint32_t slot = 0;
    uint32_t generation = 0;  // node tasks: the node incarnation it was made for
    uint32_t seq = 0;         // status tasks: only the latest one queued counts
    std::string podKey;       // pod tasks
    bool operator>(const Task& o) const { return at > o.at; }
  };

  struct Node {
    std::string name;
    std::string uid;
    uint32_t generation = 0;
    bool registered = false;
    bool registerFailed = false;
    bool heartbeat = true;
    bool statusSoon = false;     // an immediate status post is queued or in flight
    uint32_t statusSeq = 0;
    int64_t readySince = 0;      // Ready's lastTransitionTime (seconds)
    uint32_t pods = 0;
    std::bitset<256> ipUsed;  // host part of the node's /24 (0, 1 and 255 reserved)
  };

  struct Container {
    std::string name;
    std::string image;
    bool init = false;
    /// An init container with restartPolicy Always: it keeps running beside the containers.
    bool sidecar = false;
  };

  enum class PodState : uint8_t { kPending, kRunning, kFinished, kDeleting };
  enum class Restart : uint8_t { kAlways, kOnFailure, kNever };

  // What the simulated kubelet keeps per pod: no JSON.
  struct Pod {
    std::string uid;
    uint32_t slot = kNoNode;
    uint32_t generation = 0;
    uint8_t ipHost = 0;
    PodState state = PodState::kPending;
    Restart restart = Restart::kAlways;
    bool seen = true;            // relist mark
    int32_t exitCode = -1;       // from the annotation; -1: runs forever
    int32_t runSeconds = -1;
    int32_t restarts = 0;
    int64_t scheduledAt = 0;     // PodScheduled's lastTransitionTime, kept as the scheduler wrote it
    int64_t startTime = 0;       // status.startTime
    int64_t runningSince = 0;    // the current container run
    int64_t lastExitAt = 0;      // previous run's end (lastState.terminated)
    int64_t lastStartedAt = 0;
    int32_t lastExitCode = 0;
    bool terminal = false;       // reached Succeeded or Failed (before any deletion)
    bool hasFinalizers = false;  // metadata.finalizers, as last seen
    // One status write at a time (writePodStatus): one in flight, and whether the pod's state
    // changed meanwhile (then its current status follows once that write returns).
    bool statusInFlight = false;
    bool statusStale = false;
    std::vector<Container> containers;
  };

  std::shared_ptr<client::Client> client;
  SimulatedNodesOptions options;
  json labels, annotations, taints, capacity, allocatable;  // from the template, shared by all nodes

  mutable std::mutex mu;
  std::condition_variable cv;       // tasks and stop
  std::condition_variable changed;  // registration progress, idleness
  bool stopping = false;
  std::priority_queue<Task, std::vector<Task>, std::greater<Task>> tasks;
  size_t running = 0;  // tasks being executed
  std::vector<std::unique_ptr<Node>> slots;
  std::unordered_map<std::string, uint32_t> byName;
  std::unordered_map<std::string, Pod> pods;
  // Pods bound to a node name with our prefix that is not (yet) one of ours.
  std::unordered_map<std::string, std::vector<std::string>> orphans;
  uint32_t nextGeneration = 1;
  std::vector<std::thread> writers;
  std::unique_ptr<Reflector> podReflector;
  std::unique_ptr<Reflector> nodeReflector;
  std::mt19937 rng{std::random_device{}()};

  SysClock::time_point now() const { return options.now(); }
  int64_t nowSeconds() const { return toSeconds(now()); }

  void push(Task task) {
    tasks.push(std::move(task));
    cv.notify_one();
  }
  void pushNode(TaskKind kind, uint32_t slot, Clock::time_point at) {
    Task t;
    t.at = at;
    t.kind = kind;
    t.slot = slot;
    t.generation = slots[slot]->generation;
    push(std::move(t));
  }
  void pushPod(TaskKind kind, const std::string& key, Clock::time_point at) {
    Task t;
    t.at = at;
    t.kind = kind;
    t.podKey = key;
    push(std::move(t));
  }

  Node* nodeFor(const Task& task) {
    if (task.slot >= slots.size() || !slots[task.slot]) return nullptr;
    Node* n = slots[task.slot].get();
    return n->generation == task.generation ? n : nullptr;
  }

  std::string nodeName(uint32_t slot) const { return options.namePrefix + std::to_string(slot); }
  std::string podCidr(uint32_t slot) const { return ipv4(podNetwork(slot)) + "/24"; }

  // ---- writers ----------------------------------------------------------------------------

  void writerLoop() {
    std::unique_lock lock(mu);
    for (;;) {
      if (stopping) return;
      if (tasks.empty()) {
        cv.wait(lock);
        continue;
      }
      auto at = tasks.top().at;
      if (at > Clock::now()) {
        cv.wait_until(lock, at);
        continue;
      }
      Task task = tasks.top();
      tasks.pop();
      ++running;
      execute(task, lock);
      --running;
      changed.notify_all();
    }
  }

  // Called with `lock` held; releases it around API calls.
  void execute(const Task& task, std::unique_lock<std::mutex>& lock) {
    switch (task.kind) {
      case TaskKind::kRegister: return registerNode(task, lock);
      case TaskKind::kLease: return renewLease(task, lock);
      case TaskKind::kNodeStatus: return postNodeStatus(task, lock);
      case TaskKind::kPodStart: return startPod(task, lock);
      case TaskKind::kPodExit: return exitPod(task, lock);
      case TaskKind::kPodStatus: return repostPod(task, lock);
      case TaskKind::kPodDelete: return deletePod(task, lock);
    }
  }

  json nodeStatusBody(uint32_t slot, const Node& node, int64_t now) const {
    auto condition = [&](const char* type, const char* status, const char* reason, const char* message) {
      return json{{"type", type},
                  {"status", status},
                  {"lastHeartbeatTime", formatSeconds(now)},
                  {"lastTransitionTime", formatSeconds(node.readySince)},
                  {"reason", reason},
                  {"message", message}};
    };
    json status = {
        {"capacity", capacity},
        {"allocatable", allocatable},
        {"conditions",
         json::array({condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                                "kubelet has sufficient memory available"),
                      condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                      condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                      condition("Ready", "True", "KubeletReady", "kubelet is posting ready status")})},
        {"addresses", json::array({{{"type", "InternalIP"}, {"address", ipv4(nodeAddress(slot))}},
                                   {{"type", "Hostname"}, {"address", node.name}}})},
        {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
        {"nodeInfo",
         {{"machineID", hex64(node.name).substr(0, 32)},
          {"systemUUID", hex64("uuid" + node.name).substr(0, 32)},
          {"bootID", hex64("boot" + node.uid).substr(0, 32)},
          {"kernelVersion", "6.1.0-orrery-simulated"},
          {"osImage", "Orrery simulated node"},
          {"containerRuntimeVersion", "orrery-sim://1.0.0"},
          {"kubeletVersion", options.kubeletVersion},
          {"kubeProxyVersion", options.kubeletVersion},
          {"operatingSystem", labels.value("kubernetes.io/os", "linux")},
          {"architecture", labels.value("kubernetes.io/arch", "amd64")}}}};
    return json{{"status", std::move(status)}};
  }

  void registerNode(const Task& task, std::unique_lock<std::mutex>& lock) {
    Node* node = nodeFor(task);
    if (!node || node->registered) return;
    const std::string name = node->name;
    const uint32_t slot = task.slot;
    lock.unlock();
    json labelsOfNode = labels;
    labelsOfNode["kubernetes.io/hostname"] = name;
    json manifest = {{"apiVersion", "v1"},
                     {"kind", "Node"},
                     {"metadata", {{"name", name}, {"labels", labelsOfNode}, {"annotations", annotations}}},
                     {"spec",
                      {{"podCIDR", podCidr(slot)},
                       {"podCIDRs", json::array({podCidr(slot)})},
                       {"providerID", "orrery-sim://" + name}}}};
    if (!taints.empty()) manifest["spec"]["taints"] = taints;
    std::string uid;
    Status failure;
    auto created = client->create(kNodes, "", manifest);
    if (created.ok()) {
      uid = api::metaString(*created, "uid");
    } else if (created.status().code() == 409) {
      // A restarted control plane: the node is already registered; adopt it.
      auto existing = client->get(kNodes, "", name);
      if (existing.ok()) uid = api::metaString(*existing, "uid");
      else failure = existing.status();
    } else {
      failure = created.status();
    }
    lock.lock();
    node = nodeFor(task);
    if (!node) return;
    if (uid.empty()) {
      spdlog::warn("simulated-nodes: registering node {} failed: {}", name, failure.message());
      node->registerFailed = true;
      changed.notify_all();
      return;
    }
    node->uid = uid;
    node->registered = true;
    node->readySince = nowSeconds();
    // Status and Lease at once, then on their own periods; leases spread over the interval so
    // thousands of nodes do not renew in the same instant.
    queueNodeStatus(slot, Clock::now(), true);
    pushNode(TaskKind::kLease, slot, Clock::now());
    adoptOrphans(slot);
    changed.notify_all();
  }

  // Queues a node status post (`at` now: an urgent one); supersedes the one queued before.
  void queueNodeStatus(uint32_t slot, Clock::time_point at, bool urgent) {
    Node& node = *slots[slot];
    if (urgent) node.statusSoon = true;
    Task t;
    t.at = at;
    t.kind = TaskKind::kNodeStatus;
    t.slot = slot;
    t.generation = node.generation;
    t.seq = ++node.statusSeq;
    push(std::move(t));
  }

  void postNodeStatus(const Task& task, std::unique_lock<std::mutex>& lock) {
    Node* node = nodeFor(task);
    if (!node || task.seq != node->statusSeq) return;
    if (!node->heartbeat || !node->registered) {
      node->statusSoon = false;
      return;
    }
    json body = nodeStatusBody(task.slot, *node, nowSeconds());
    const std::string name = node->name;
    lock.unlock();
    auto result = client->patch(kNodes, "", name, client::PatchType::kStrategicMerge, body.dump(), "status");
    lock.lock();
    node = nodeFor(task);
    if (!node || task.seq != node->statusSeq) return;
    node->statusSoon = false;
    if (!result.ok() && result.status().code() != 404) {
      spdlog::debug("simulated-nodes: status of {}: {}", name, result.status().message());
      queueNodeStatus(task.slot, Clock::now() + kRetryDelay, false);
      return;
    }
    queueNodeStatus(task.slot, Clock::now() + options.statusReportInterval, false);
  }

  void renewLease(const Task& task, std::unique_lock<std::mutex>& lock) {
    Node* node = nodeFor(task);
    if (!node || !node->heartbeat || !node->registered) return;
    const std::string name = node->name;
    const std::string uid = node->uid;
    const std::string renewTime = formatMicroTime(now());
    lock.unlock();
    json patch = {{"spec", {{"holderIdentity", name}, {"leaseDurationSeconds", options.leaseDurationSeconds},
                            {"renewTime", renewTime}}}};
    auto result = client->patch(kLeases, kLeaseNamespace, name, client::PatchType::kMerge, patch.dump());
    if (!result.ok() && result.status().code() == 404) {
      json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                    {"kind", "Lease"},
                    {"metadata",
                     {{"name", name},
                      {"namespace", kLeaseNamespace},
                      {"ownerReferences",
                       json::array({{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", name}, {"uid", uid}}})}}}};
      lease["spec"] = patch["spec"];
      auto created = client->create(kLeases, kLeaseNamespace, lease);
      if (created.ok() || created.status().code() == 409) result = json::object();
      else result = created.status();
    }
    lock.lock();
    node = nodeFor(task);
    if (!node || !node->heartbeat) return;
    auto next = options.leaseRenewInterval;
    if (!result.ok()) {
      spdlog::debug("simulated-nodes: lease of {}: {}", name, result.status().message());
      next = std::min<std::chrono::milliseconds>(next, kRetryDelay);
    } else {
      // kubelet jitters its renewals by up to 4%.
      std::uniform_int_distribution<int64_t> jitter(0, next.count() / 25);
      next -= std::chrono::milliseconds(jitter(rng));
    }
    pushNode(TaskKind::kLease, task.slot, Clock::now() + next);
  }

  // ---- pods -------------------------------------------------------------------------------

  Pod* podFor(const Task& task) {
    auto it = pods.find(task.podKey);
    return it == pods.end() ? nullptr : &it->second;
  }

  json containerStatus(const std::string& podUid, const Container& c, const Pod& pod, bool finished,
                       int64_t now) const {
    // Init containers (sidecars too) do not run again when the containers restart.
    std::string id = "orrery-sim://" + hex64(podUid + "/" + c.name + "/" + std::to_string(c.init ? 0 : pod.restarts));
    std::string image = normalizeImage(c.image);
    std::string repo = image.substr(0, image.find('@'));
    auto tag = repo.rfind(':');
    if (tag != std::string::npos && tag > repo.rfind('/')) repo.resize(tag);
    json s = {{"name", c.name},
              {"image", image},
              {"imageID", repo + "@sha256:" + hex64(c.image)},
              {"containerID", id},
              {"restartCount", c.init ? 0 : pod.restarts}};
    if (c.sidecar) {
      // It started before the containers and runs until the pod is done; the simulated exit
      // is the containers', not its own, and it stops cleanly with them.
      s["lastState"] = json::object();
      if (finished) {
        s["ready"] = false;
        s["started"] = false;
        s["state"] = {{"terminated",
                       {{"exitCode", 0}, {"reason", "Completed"}, {"startedAt", formatSeconds(pod.startTime)},
                        {"finishedAt", formatSeconds(pod.lastExitAt ? pod.lastExitAt : now)}, {"containerID", id}}}};
      } else {
        s["ready"] = true;
        s["started"] = true;
        s["state"] = {{"running", {{"startedAt", formatSeconds(pod.startTime)}}}};
      }
      return s;
    }
    if (c.init) {
      s["ready"] = true;
      s["started"] = false;
      s["state"] = {{"terminated",
                     {{"exitCode", 0}, {"reason", "Completed"}, {"startedAt", formatSeconds(pod.startTime)},
                      {"finishedAt", formatSeconds(pod.startTime)}, {"containerID", id}}}};
      s["lastState"] = json::object();
      return s;
    }
    if (finished) {
      s["ready"] = false;
      s["started"] = false;
      s["state"] = {{"terminated",
                     {{"exitCode", pod.lastExitCode},
                      {"reason", pod.lastExitCode == 0 ? "Completed" : "Error"},
                      {"startedAt", formatSeconds(pod.lastStartedAt)},
                      {"finishedAt", formatSeconds(pod.lastExitAt)},
                      {"containerID", id}}}};
      s["lastState"] = json::object();
    } else {
      s["ready"] = true;
      s["started"] = true;
      s["state"] = {{"running", {{"startedAt", formatSeconds(pod.runningSince)}}}};
      s["lastState"] = json::object();
      if (pod.restarts > 0) {
        std::string lastId = "orrery-sim://" + hex64(podUid + "/" + c.name + "/" + std::to_string(pod.restarts - 1));
        s["lastState"] = {{"terminated",
                           {{"exitCode", pod.lastExitCode},
                            {"reason", pod.lastExitCode == 0 ? "Completed" : "Error"},
                            {"startedAt", formatSeconds(pod.lastStartedAt)},
                            {"finishedAt", formatSeconds(pod.lastExitAt)},
                            {"containerID", lastId}}}};
      }
    }
    return s;
  }

  // The status a kubelet posts: phase, the kubelet-owned conditions, IPs, container statuses.
  json podStatusBody(const std::string& key, const Pod& pod, const char* phase, int64_t now) const {
    (void)key;
    bool finished = std::string(phase) != "Running";
    auto cond = [&](const char* type, bool ok, int64_t since, const char* reason) {
      json c = {{"type", type}, {"status", ok ? "True" : "False"}, {"lastProbeTime", nullptr},
                {"lastTransitionTime", formatSeconds(since)}};
      if (reason) c["reason"] = reason;
      return c;
    };
    bool ready = !finished;
    const char* notReadyReason = finished ? "PodCompleted" : nullptr;
    json conditions = json::array({cond("PodReadyToStartContainers", !finished, finished ? now : pod.startTime, nullptr),
                                   cond("Initialized", true, pod.startTime, finished ? "PodCompleted" : nullptr),
                                   cond("Ready", ready, finished ? now : pod.runningSince, notReadyReason),
                                   cond("ContainersReady", ready, finished ? now : pod.runningSince, notReadyReason),
                                   cond("PodScheduled", true, pod.scheduledAt ? pod.scheduledAt : pod.startTime, nullptr)});
    // Initialized stays True once the init containers ran; only Ready/ContainersReady drop.
    conditions[1].erase("reason");
    std::string hostIp = ipv4(nodeAddress(pod.slot));
    std::string podIp = ipv4(podNetwork(pod.slot) | pod.ipHost);
    json containers = json::array(), inits = json::array();
    for (const auto& c : pod.containers) {
      if (c.init) inits.push_back(containerStatus(pod.uid, c, pod, finished, now));
      else containers.push_back(containerStatus(pod.uid, c, pod, finished, now));
    }
    json status = {{"phase", phase},
                   {"conditions", conditions},
                   {"hostIP", hostIp},
                   {"hostIPs", json::array({{{"ip", hostIp}}})},
                   {"podIP", podIp},
                   {"podIPs", json::array({{{"ip", podIp}}})},
                   {"startTime", formatSeconds(pod.startTime)},
                   {"containerStatuses", containers}};
    if (!inits.empty()) status["initContainerStatuses"] = inits;
    return json{{"metadata", {{"uid", pod.uid}}}, {"status", std::move(status)}};
  }

  bool allocateIp(Pod& pod) {
    if (pod.ipHost) return true;
    Node& node = *slots[pod.slot];
    for (int h = 2; h < 255; ++h) {
      if (!node.ipUsed.test(h)) {
        node.ipUsed.set(h);
        pod.ipHost = static_cast<uint8_t>(h);
        return true;
      }
    }
    return false;
  }

  void releaseIp(Pod& pod) {
    if (!pod.ipHost || pod.slot == kNoNode || pod.slot >= slots.size() || !slots[pod.slot] ||
        slots[pod.slot]->generation != pod.generation) {
      pod.ipHost = 0;
      return;
    }
    slots[pod.slot]->ipUsed.reset(pod.ipHost);
    pod.ipHost = 0;
  }

  bool podNodeAlive(const Pod& pod) const {
    return pod.slot != kNoNode && pod.slot < slots.size() && slots[pod.slot] &&
           slots[pod.slot]->generation == pod.generation && slots[pod.slot]->registered;
  }

  // Writes a pod status; on a transient failure re-posts the pod's state later.
  // Writes a pod's status, one write per pod at a time: two in flight (a start and an exit
  // right after it) could land in either order, and a Running that lands after the Failed took
  // the pod back from Failed, for its Job to see it active again and delete it, or never fail.
  // A status asked for while one is in flight is sent after it, as the pod's state by then.
  void writePodStatus(const std::string& key, const std::string& uid, const json& body,
                      std::unique_lock<std::mutex>& lock) {
    auto ours = [&]() -> Pod* {
      auto it = pods.find(key);
      return it != pods.end() && it->second.uid == uid ? &it->second : nullptr;
    };
    if (Pod* pod = ours()) {
      if (pod->statusInFlight) {
        pod->statusStale = true;
        return;
      }
      pod->statusInFlight = true;
    }
    lock.unlock();
    auto result = client->patch(kPods, client::splitKey(key).first, client::splitKey(key).second,
                                client::PatchType::kStrategicMerge, body.dump(), "status");
    lock.lock();
    bool stale = false;
    if (Pod* pod = ours()) {
      pod->statusInFlight = false;
      stale = std::exchange(pod->statusStale, false);
    }
    if (result.ok() || result.status().code() == 404) {  // (404: gone)
      if (stale) pushPod(TaskKind::kPodStatus, key, Clock::now());
      return;
    }
    // Anything else is tried again, as a kubelet retries its status until it lands; that
    // includes a 409, which is either a write that kept losing to others' or (the uid
    // precondition) a new pod under this name, whose uid the pod watch soon brings: then the
    // record below is no longer this pod's and the retries stop.
    spdlog::debug("simulated-nodes: status of pod {}: {}", key, result.status().message());
    if (ours()) pushPod(TaskKind::kPodStatus, key, stale ? Clock::now() : Clock::now() + kRetryDelay);
  }

  void repostPod(const Task& task, std::unique_lock<std::mutex>& lock) {
    Pod* pod = podFor(task);
    if (!pod || !podNodeAlive(*pod) || !slots[pod->slot]->heartbeat) return;
    const char* phase = nullptr;
    if (pod->state == PodState::kRunning) phase = "Running";
    else if (pod->state == PodState::kFinished) phase = pod->lastExitCode == 0 ? "Succeeded" : "Failed";
    if (!phase) return;
    json body = podStatusBody(task.podKey, *pod, phase, nowSeconds());
    std::string uid = pod->uid;
    writePodStatus(task.podKey, uid, body, lock);
  }

  void scheduleExit(const std::string& key, const Pod& pod) {
    if (pod.runSeconds < 0) return;
    int64_t left = pod.runningSince + pod.runSeconds - nowSeconds();
    pushPod(TaskKind::kPodExit, key, Clock::now() + std::chrono::seconds(std::max<int64_t>(left, 0)));
  }

  void startPod(const Task& task, std::unique_lock<std::mutex>& lock) {
    Pod* pod = podFor(task);
    if (!pod || pod->state != PodState::kPending || !podNodeAlive(*pod)) return;
    if (!slots[pod->slot]->heartbeat) {
      // A dead kubelet starts nothing; look again later.
      pushPod(TaskKind::kPodStart, task.podKey, Clock::now() + kRetryDelay);
      return;
    }
    if (!allocateIp(*pod)) {
      spdlog::warn("simulated-nodes: node {} has no free pod address for {}", slots[pod->slot]->name, task.podKey);
      return;
    }
    int64_t now = nowSeconds();
    if (!pod->startTime) pod->startTime = now;
    pod->runningSince = now;
    pod->state = PodState::kRunning;
    json body = podStatusBody(task.podKey, *pod, "Running", now);
    std::string uid = pod->uid;
    scheduleExit(task.podKey, *pod);
    writePodStatus(task.podKey, uid, body, lock);
  }

  void exitPod(const Task& task, std::unique_lock<std::mutex>& lock) {
    Pod* pod = podFor(task);
    if (!pod || pod->state != PodState::kRunning || pod->runSeconds < 0 || !podNodeAlive(*pod)) return;
    if (!slots[pod->slot]->heartbeat) return;
    int64_t now = nowSeconds();
    if (pod->runningSince + pod->runSeconds > now) {
      scheduleExit(task.podKey, *pod);
      return;
    }
    pod->lastExitCode = pod->exitCode;
    pod->lastStartedAt = pod->runningSince;
    pod->lastExitAt = now;
    bool restart = pod->restart == Restart::kAlways || (pod->restart == Restart::kOnFailure && pod->exitCode != 0);
    json body;
    if (restart) {
      // The kubelet restarts the container (no CrashLoopBackOff in the simulation).
      pod->restarts++;
      pod->runningSince = now;
      body = podStatusBody(task.podKey, *pod, "Running", now);
      scheduleExit(task.podKey, *pod);
    } else {
      pod->state = PodState::kFinished;
      pod->terminal = true;
      body = podStatusBody(task.podKey, *pod, pod->exitCode == 0 ? "Succeeded" : "Failed", now);
    }
    std::string uid = pod->uid;
    writePodStatus(task.podKey, uid, body, lock);
  }

  void deletePod(const Task& task, std::unique_lock<std::mutex>& lock) {
    Pod* pod = podFor(task);
    if (!pod || pod->state != PodState::kDeleting) return;
    if (podNodeAlive(*pod) && !slots[pod->slot]->heartbeat) {
      // A dead kubelet does not confirm the deletion (the pod stays Terminating, as on a real
      // cluster) until it comes back.
      pushPod(TaskKind::kPodDelete, task.podKey, Clock::now() + kRetryDelay);
      return;
    }
    std::string uid = pod->uid;
    if (!pod->terminal && pod->hasFinalizers && podNodeAlive(*pod)) {
      if (pod->statusInFlight) {
        // Its Failed report must land, after the write in flight, before the deletion.
        pushPod(TaskKind::kPodDelete, task.podKey, Clock::now() + std::chrono::milliseconds(20));
        return;
      }
      // The kubelet stops the containers of a deleted pod and reports it Failed before it
      // confirms the deletion. A finalizer keeps the object (the Job controller's, which waits
      // for that phase), so that report is what its holder sees; for a pod without one it
      // would be gone a moment later, and the simulation skips the write.
      const int64_t now = nowSeconds();
      if (!pod->runningSince) pod->runningSince = now;
      pod->lastStartedAt = pod->runningSince;
      pod->lastExitAt = now;
      pod->lastExitCode = 137;  // SIGKILL, as a container stopped for deletion reports
      pod->terminal = true;
      json body = podStatusBody(task.podKey, *pod, "Failed", now);
      writePodStatus(task.podKey, uid, body, lock);
      pod = podFor(task);
      if (!pod || pod->uid != uid) return;
    }
    auto [ns, name] = client::splitKey(task.podKey);
    lock.unlock();
    client::DeleteOptions opts;
    opts.gracePeriodSeconds = 0;
    opts.preconditionUid = uid;
    auto result = client->remove(kPods, ns, name, opts);
    lock.lock();
    if (result.ok() || result.status().code() == 404 || result.status().code() == 409) return;
    spdlog::debug("simulated-nodes: deleting pod {}: {}", task.podKey, result.status().message());
    auto it = pods.find(task.podKey);
    if (it != pods.end() && it->second.uid == uid) pushPod(TaskKind::kPodDelete, task.podKey, Clock::now() + kRetryDelay);
  }

  // ---- pod watch --------------------------------------------------------------------------

  void forgetPod(std::unordered_map<std::string, Pod>::iterator it) {
    Pod& pod = it->second;
    releaseIp(pod);
    if (podNodeAlive(pod) && slots[pod.slot]->pods > 0) slots[pod.slot]->pods--;
    pods.erase(it);
  }

  static bool hasFinalizers(const json& meta) {
    auto it = meta.find("finalizers");
    return it != meta.end() && it->is_array() && !it->empty();
  }

  static Restart restartOf(const json& spec) {
    std::string p = spec.value("restartPolicy", "Always");
    if (p == "Never") return Restart::kNever;
    if (p == "OnFailure") return Restart::kOnFailure;
    return Restart::kAlways;
  }

  // Fills a new Pod from the object as the watch delivered it.
  void fillPod(Pod& pod, const json& object) {
    const json& meta = api::memberOrEmpty(object, "metadata");
    const json& spec = api::memberOrEmpty(object, "spec");
    const json& status = api::memberOrEmpty(object, "status");
    pod.uid = meta.value("uid", "");
    pod.restart = restartOf(spec);
    pod.hasFinalizers = hasFinalizers(meta);
    if (meta.contains("annotations") && meta["annotations"].is_object()) {
      const json& ann = meta["annotations"];
      auto num = [&](const char* k) -> int32_t {
        auto it = ann.find(k);
        if (it == ann.end() || !it->is_string()) return -1;
        try {
          return std::stoi(it->get<std::string>());
        } catch (...) {
          return -1;
        }
      };
      pod.exitCode = num(kExitCodeAnnotation);
      pod.runSeconds = num(kRunSecondsAnnotation);
      if (pod.exitCode >= 0 && pod.runSeconds < 0) pod.runSeconds = 0;
      if (pod.runSeconds >= 0 && pod.exitCode < 0) pod.exitCode = 0;
    }
    for (const char* list : {"initContainers", "containers"}) {
      auto it = spec.find(list);
      if (it == spec.end() || !it->is_array()) continue;
      for (const auto& c : *it) {
        if (!c.is_object()) continue;
        const bool init = std::string(list) == "initContainers";
        pod.containers.push_back(
            {c.value("name", ""), c.value("image", ""), init, init && c.value("restartPolicy", "") == "Always"});
      }
    }
    pod.containers.shrink_to_fit();
    if (status.contains("conditions") && status["conditions"].is_array()) {
      for (const auto& c : status["conditions"]) {
        if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "True")
          pod.scheduledAt = parseSeconds(c.value("lastTransitionTime", json()));
      }
    }
    // Adopt what an earlier run of the simulated kubelet already wrote.
    std::string phase = status.value("phase", "Pending");
    pod.startTime = parseSeconds(status.value("startTime", json()));
    if (phase == "Running") {
      pod.state = PodState::kRunning;
      pod.runningSince = pod.startTime;
      if (status.contains("containerStatuses") && status["containerStatuses"].is_array() &&
          !status["containerStatuses"].empty()) {
        const json& cs = status["containerStatuses"][0];
        pod.restarts = cs.value("restartCount", 0);
        if (cs.contains("state") && cs["state"].contains("running"))
          pod.runningSince = parseSeconds(cs["state"]["running"].value("startedAt", json()));
      }
    } else if (phase == "Succeeded" || phase == "Failed") {
      pod.state = PodState::kFinished;
    }
    uint32_t ip = 0;
    if (pod.slot != kNoNode && parseIpv4(status.value("podIP", ""), &ip) && (ip & 0xFFFFFF00u) == podNetwork(pod.slot)) {
      uint8_t host = ip & 0xFF;
      if (host >= 2 && host < 255 && !slots[pod.slot]->ipUsed.test(host)) {
        slots[pod.slot]->ipUsed.set(host);
        pod.ipHost = host;
      }
    }
  }

  // The pod is ours and new to us (or was an orphan and its node arrived): start its life.
  void beginPod(const std::string& key, Pod& pod, const json* object) {
    if (pod.state == PodState::kPending) {
      pushPod(TaskKind::kPodStart, key, Clock::now() + options.runningDelay);
    } else if (pod.state == PodState::kRunning) {
      scheduleExit(key, pod);
    }
    (void)object;
  }

  void markDeleting(const std::string& key, Pod& pod, const json& meta) {
    if (pod.state == PodState::kDeleting) return;
    pod.state = PodState::kDeleting;
    auto at = Clock::now();
    if (options.honorGracePeriod) {
      int64_t deadline = parseSeconds(meta.value("deletionTimestamp", json()));
      int64_t left = deadline - nowSeconds();
      if (left > 0) at += std::chrono::seconds(left);
    }
    pushPod(TaskKind::kPodDelete, key, at);
  }

  void observePod(const json& object, bool deleted) {
    const json& meta = api::memberOrEmpty(object, "metadata");
    std::string key = client::objectKey(meta.value("namespace", ""), meta.value("name", ""));
    std::string uid = meta.value("uid", "");
    auto it = pods.find(key);
    if (deleted) {
      if (it != pods.end() && it->second.uid == uid) {
        if (it->second.slot == kNoNode) dropOrphan(key);
        forgetPod(it);
      }
      return;
    }
    if (it != pods.end() && it->second.uid != uid) {
      if (it->second.slot == kNoNode) dropOrphan(key);
      forgetPod(it);
      it = pods.end();
    }
    if (it != pods.end()) {
      it->second.seen = true;
      it->second.hasFinalizers = hasFinalizers(meta);
      if (meta.contains("deletionTimestamp") && it->second.slot != kNoNode) markDeleting(key, it->second, meta);
      return;
    }
    std::string nodeName = api::memberOrEmpty(object, "spec").value("nodeName", "");
    if (nodeName.empty()) return;
    auto node = byName.find(nodeName);
    bool ours = node != byName.end() && slots[node->second]->registered;
    if (!ours && nodeName.rfind(options.namePrefix, 0) != 0) return;  // another kubelet's pod
    Pod pod;
    pod.slot = ours ? node->second : kNoNode;
    pod.generation = ours ? slots[node->second]->generation : 0;
    fillPod(pod, object);
    auto [inserted, _] = pods.emplace(key, std::move(pod));
    if (!ours) {
      orphans[nodeName].push_back(key);
      return;
    }
    slots[inserted->second.slot]->pods++;
    if (meta.contains("deletionTimestamp")) {
      markDeleting(key, inserted->second, meta);
      return;
    }
    beginPod(key, inserted->second, &object);
  }

  void dropOrphan(const std::string& key) {
    for (auto it = orphans.begin(); it != orphans.end(); ++it) {
      auto& keys = it->second;
      auto pos = std::find(keys.begin(), keys.end(), key);
      if (pos == keys.end()) continue;
      keys.erase(pos);
      if (keys.empty()) orphans.erase(it);
      return;
    }
  }

  void adoptOrphans(uint32_t slot) {
    Node& node = *slots[slot];
    auto it = orphans.find(node.name);
    if (it == orphans.end()) return;
    for (const auto& key : it->second) {
      auto p = pods.find(key);
      if (p == pods.end()) continue;
      p->second.slot = slot;
      p->second.generation = node.generation;
      node.pods++;
      beginPod(key, p->second, nullptr);
    }
    orphans.erase(it);
  }

  // ---- node watch -------------------------------------------------------------------------

  void observeNode(const std::string& type, const json& object) {
    const json& meta = api::memberOrEmpty(object, "metadata");
    std::string name = meta.value("name", "");
    auto it = byName.find(name);
    if (it == byName.end()) return;
    Node& node = *slots[it->second];
    if (!node.registered || node.uid != meta.value("uid", "")) return;
    if (type == "DELETED") {
      // Deleted through the API (kubectl delete node): this simulated kubelet stops serving it.
      dropNode(it->second);
      return;
    }
    if (!node.heartbeat || node.statusSoon) return;
    // Someone (the node lifecycle controller) says the node is not Ready while its kubelet
    // runs: post the real status now, as a kubelet would at its next status update.
    const json& status = api::memberOrEmpty(object, "status");
    bool ready = false;
    if (status.contains("conditions") && status["conditions"].is_array())
      for (const auto& c : status["conditions"])
        if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
    if (!ready) {
      node.readySince = nowSeconds();
      queueNodeStatus(it->second, Clock::now(), true);
    }
  }

  // Forgets a node and turns its pods into orphans (their Pod entries stay until deleted).
  void dropNode(uint32_t slot) {
    Node& node = *slots[slot];
    std::vector<std::string> keys;
    for (auto& [key, pod] : pods) {
      if (pod.slot == slot && pod.generation == node.generation) keys.push_back(key);
    }
    for (const auto& key : keys) {
      auto& pod = pods[key];
      releaseIp(pod);
      pod.slot = kNoNode;
      pod.generation = 0;
      orphans[node.name].push_back(key);
    }
    byName.erase(node.name);
    slots[slot].reset();
    changed.notify_all();
  }

  // ---- registration -----------------------------------------------------------------------

  // Reserves `n` free slots and queues their registration; returns the slots. Locked.
  std::vector<uint32_t> reserve(int n) {
    std::vector<uint32_t> out;
    for (uint32_t slot = 0; static_cast<int>(out.size()) < n; ++slot) {
      if (slot == slots.size()) slots.emplace_back();
      if (slots[slot]) continue;
      auto node = std::make_unique<Node>();
      node->name = nodeName(slot);
      node->generation = nextGeneration++;
      byName[node->name] = slot;
      slots[slot] = std::move(node);
      pushNode(TaskKind::kRegister, slot, Clock::now());
      out.push_back(slot);
    }
    return out;
  }

  Result<std::vector<std::string>> addNodes(int n) {
    if (n < 0) return Status::badRequest("the number of simulated nodes to add must not be negative");
    std::unique_lock lock(mu);
    if (stopping) return Status(503, api::reason::kServiceUnavailable, "simulated nodes are stopped");
    auto added = reserve(n);
    std::vector<std::pair<uint32_t, uint32_t>> wanted;
    for (auto slot : added) wanted.emplace_back(slot, slots[slot]->generation);
    auto done = [&] {
      if (stopping) return true;
      for (auto [slot, gen] : wanted) {
        if (slot < slots.size() && slots[slot] && slots[slot]->generation == gen && !slots[slot]->registered &&
            !slots[slot]->registerFailed)
          return false;
      }
      return true;
    };
    changed.wait_for(lock, std::chrono::seconds(120), done);
    std::vector<std::string> names;
    Status failure;
    for (auto [slot, gen] : wanted) {
      if (slot < slots.size() && slots[slot] && slots[slot]->generation == gen && slots[slot]->registered) {
        names.push_back(slots[slot]->name);
      } else if (slot < slots.size() && slots[slot] && slots[slot]->generation == gen) {
        failure = Status(500, api::reason::kInternalError,
                         "simulated node " + slots[slot]->name + " could not be registered; see the log");
        byName.erase(slots[slot]->name);
        slots[slot].reset();
      }
    }
    if (!failure.isOk()) return failure;
    return names;
  }
};

// -----------------------------------------------------------------------------------------------

SimulatedNodes::SimulatedNodes(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SimulatedNodes::~SimulatedNodes() { stop(); }

Result<std::unique_ptr<SimulatedNodes>> SimulatedNodes::start(std::shared_ptr<client::Client> client,
                                                              SimulatedNodesOptions options) {
  if (!client) return Status::badRequest("simulated nodes need an API client");
  if (options.count < 0) return Status::badRequest("the number of simulated nodes must not be negative");
  auto impl = std::make_unique<Impl>();
  impl->client = std::move(client);
  // Template: what is given, with the default's gaps filled.
  json defaults = defaultNodeTemplate();
  const json& t = options.nodeTemplate.is_object() ? options.nodeTemplate : defaults;
  try {
    const json meta = t.value("metadata", json::object());
    impl->labels = meta.value("labels", json::object());
    impl->annotations = meta.value("annotations", json::object());
    for (auto& [k, v] : defaults["metadata"]["annotations"].items())
      if (!impl->annotations.contains(k)) impl->annotations[k] = v;
    impl->labels[kSimulatedLabel] = "true";
    impl->taints = t.value("spec", json::object()).value("taints", json::array());
    const json status = t.value("status", json::object());
    impl->capacity = status.value("capacity", json::object());
    for (auto& [k, v] : defaults["status"]["capacity"].items())
      if (!impl->capacity.contains(k)) impl->capacity[k] = v;
    impl->allocatable = status.value("allocatable", impl->capacity);
    for (auto& [k, v] : impl->capacity.items())
      if (!impl->allocatable.contains(k)) impl->allocatable[k] = v;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("the simulated node template is not a Node manifest: ") + e.what());
  }
  if (!options.now) options.now = [] { return SysClock::now(); };
  options.writers = std::max(1, options.writers);
  impl->options = std::move(options);

  Impl* self = impl.get();
  Reflector::Handlers nodeHandlers;
  nodeHandlers.onEvent = [self](const std::string& type, const json& object) {
    std::lock_guard lock(self->mu);
    self->observeNode(type, object);
  };
  client::ListOptions nodeSelector;
  nodeSelector.labelSelector = std::string(kSimulatedLabel) + "=true";
  impl->nodeReflector = std::make_unique<Reflector>(impl->client, kNodes, nodeSelector, nodeHandlers,
                                                    "simulated-nodes/nodes");

  Reflector::Handlers podHandlers;
  podHandlers.onListBegin = [self] {
    std::lock_guard lock(self->mu);
    for (auto& [key, pod] : self->pods) pod.seen = false;
  };
  podHandlers.onListItem = [self](const json& item) {
    std::lock_guard lock(self->mu);
    self->observePod(item, false);
  };
  podHandlers.onListEnd = [self] {
    std::lock_guard lock(self->mu);
    for (auto it = self->pods.begin(); it != self->pods.end();) {
      auto next = std::next(it);
      if (!it->second.seen) {
        if (it->second.slot == kNoNode) self->dropOrphan(it->first);
        self->forgetPod(it);
      }
      it = next;
    }
  };
  podHandlers.onEvent = [self](const std::string& type, const json& object) {
    std::lock_guard lock(self->mu);
    self->observePod(object, type == "DELETED");
  };
  client::ListOptions podSelector;
  podSelector.fieldSelector = "spec.nodeName!=";
  impl->podReflector = std::make_unique<Reflector>(impl->client, kPods, podSelector, podHandlers,
                                                   "simulated-nodes/pods");

  for (int i = 0; i < impl->options.writers; ++i) impl->writers.emplace_back([self] { self->writerLoop(); });
  impl->nodeReflector->start();
  std::unique_ptr<SimulatedNodes> nodes(new SimulatedNodes(std::move(impl)));
  auto added = nodes->impl_->addNodes(nodes->impl_->options.count);
  if (!added.ok()) return added.status();
  nodes->impl_->podReflector->start();
  if (!nodes->impl_->podReflector->waitForSync(std::chrono::seconds(60))) {
    return Status(503, api::reason::kServiceUnavailable, "simulated nodes: the pod watch did not sync in 60s");
  }
  return nodes;
}

Result<std::vector<std::string>> SimulatedNodes::add(int n) { return impl_->addNodes(n); }

Status SimulatedNodes::remove(const std::string& name) { return remove(std::vector<std::string>{name}); }

Status SimulatedNodes::remove(const std::vector<std::string>& names) {
  // What goes, decided under the lock: the slots are dropped at once (no more heartbeats or
  // status), the API calls follow without it.
  struct Call {
    const api::GroupVersionResource* resource;
    std::string ns, name, uid;  // uid: a pod's, as a precondition
    bool markFailed = false;    // a pod a finalizer holds: reported Failed first
  };
  std::vector<Call> nodeCalls, podCalls;
  Status notFound;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& name : names) {
      auto it = impl_->byName.find(name);
      if (it == impl_->byName.end()) {
        if (notFound.isOk()) notFound = Status(404, api::reason::kNotFound, "simulated node \"" + name + "\" not found");
        continue;
      }
      uint32_t slot = it->second;
      for (auto& [key, pod] : impl_->pods) {
        if (pod.slot != slot || pod.generation != impl_->slots[slot]->generation) continue;
        auto [ns, podName] = client::splitKey(key);
        podCalls.push_back({&kPods, ns, podName, pod.uid, pod.hasFinalizers && !pod.terminal});
      }
      impl_->slots[slot]->heartbeat = false;
      impl_->dropNode(slot);
      nodeCalls.push_back({&kNodes, "", name, ""});
      nodeCalls.push_back({&kLeases, kLeaseNamespace, name, ""});
    }
  }
  // The nodes and their Leases first, then their pods, as the pod GC controller deletes the
  // pods of a node that is gone. Like it, a pod that a finalizer will keep is first marked
  // Failed with a DisruptionTarget condition, so that its holder (a Job) sees it end.
  const std::string podGcMark =
      nlohmann::json{{"status",
                      {{"phase", "Failed"},
                       {"conditions", nlohmann::json::array({{{"type", "DisruptionTarget"},
                                                              {"status", "True"},
                                                              {"reason", "DeletionByPodGC"},
                                                              {"message", "PodGC: node no longer exists"},
                                                              {"lastTransitionTime", formatSeconds(impl_->nowSeconds())}}})}}}}
          .dump();
  std::mutex errorMu;
  Status firstError;
  auto run = [&](const std::vector<Call>& calls) {
    client::parallelize(static_cast<int>(calls.size()), impl_->options.writers, [&](int i) {
      const Call& c = calls[static_cast<size_t>(i)];
      if (c.markFailed)
        (void)impl_->client->patch(*c.resource, c.ns, c.name, client::PatchType::kStrategicMerge, podGcMark, "status");
      client::DeleteOptions opts;
      if (!c.uid.empty()) {
        opts.gracePeriodSeconds = 0;
        opts.preconditionUid = c.uid;
      }
      auto r = impl_->client->remove(*c.resource, c.ns, c.name, opts);
      const int code = r.ok() ? 200 : r.status().code();
      if (r.ok() || code == 404 || (!c.uid.empty() && code == 409)) return;
      std::lock_guard lock(errorMu);
      if (firstError.isOk()) firstError = r.status();
    });
  };
  run(nodeCalls);
  run(podCalls);
  if (!firstError.isOk()) return firstError;
  return notFound;
}

Status SimulatedNodes::stopHeartbeat(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->byName.find(name);
  if (it == impl_->byName.end()) return Status(404, api::reason::kNotFound, "simulated node \"" + name + "\" not found");
  impl_->slots[it->second]->heartbeat = false;
  return Status();
}

Status SimulatedNodes::resumeHeartbeat(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->byName.find(name);
  if (it == impl_->byName.end()) return Status(404, api::reason::kNotFound, "simulated node \"" + name + "\" not found");
  auto& node = *impl_->slots[it->second];
  if (node.heartbeat) return Status();
  node.heartbeat = true;
  // Tasks of the stopped heartbeat were dropped; a new generation keeps stale ones out.
  node.generation = impl_->nextGeneration++;
  for (auto& [key, pod] : impl_->pods)
    if (pod.slot == it->second) pod.generation = node.generation;
  node.readySince = impl_->nowSeconds();
  impl_->queueNodeStatus(it->second, Clock::now(), true);
  impl_->pushNode(Impl::TaskKind::kLease, it->second, Clock::now());
  return Status();
}

std::vector<SimulatedNodeInfo> SimulatedNodes::nodes() const {
  std::lock_guard lock(impl_->mu);
  std::vector<SimulatedNodeInfo> out;
  for (uint32_t slot = 0; slot < impl_->slots.size(); ++slot) {
    const auto& n = impl_->slots[slot];
    if (!n || !n->registered) continue;
    out.push_back({n->name, impl_->podCidr(slot), ipv4(nodeAddress(slot)), n->heartbeat, n->pods});
  }
  return out;
}

size_t SimulatedNodes::podCount() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& [key, pod] : impl_->pods)
    if (pod.slot != kNoNode) ++n;
  return n;
}

bool SimulatedNodes::waitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mu);
  auto deadline = Clock::now() + timeout;
  for (;;) {
    bool idle = impl_->running == 0 && (impl_->tasks.empty() || impl_->tasks.top().at > Clock::now());
    if (idle) return true;
    if (Clock::now() >= deadline) return false;
    impl_->changed.wait_for(lock, std::chrono::milliseconds(20));
  }
}

void SimulatedNodes::stop() {
  if (!impl_) return;
  if (impl_->podReflector) impl_->podReflector->stop();
  if (impl_->nodeReflector) impl_->nodeReflector->stop();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->changed.notify_all();
  for (auto& t : impl_->writers)
    if (t.joinable()) t.join();
  impl_->writers.clear();
}

}  // namespace orrery::simnodes
