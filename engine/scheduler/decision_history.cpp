#include "engine/scheduler/decision_history.h"

#include <algorithm>
#include <limits>

#include "engine/api/object.h"

namespace orrery::scheduler {

namespace {
// Bytes of a stored record beyond the record itself (the wrapper, its uid, the order entry).
constexpr size_t kOverhead = 160;
}  // namespace

DecisionHistory::DecisionHistory(Options options) : options_(options) {
  if (options_.perPod < 1) options_.perPod = 1;
}

int32_t DecisionHistory::nextAttempt(const std::string& ns, const std::string& pod, const std::string& uid) {
  std::lock_guard lock(mu_);
  PodKey key{ns, pod};
  PodHistory& h = pods_[key];
  if (h.uid != uid) {
    // Another pod under this name: its attempts start over.
    while (!h.attempts.empty()) popFrontLocked(key, h);
    h.lastAttempt = 0;
    h.uid = uid;
  }
  return h.lastAttempt + 1;
}

void DecisionHistory::add(DecisionRecord record) {
  std::lock_guard lock(mu_);
  PodKey key{record.podNamespace, record.podName};
  PodHistory& h = pods_[key];
  if (h.uid != record.podUid) {
    while (!h.attempts.empty()) popFrontLocked(key, h);
    h.uid = record.podUid;
  }
  if (record.attempt <= 0) record.attempt = h.lastAttempt + 1;
  h.lastAttempt = std::max(h.lastAttempt, record.attempt);
  Stored s;
  compactLocked(record, s);
  s.bytes = record.approximateBytes() + s.nodes.capacity() * sizeof(StoredNode) +
            s.scores16.capacity() * sizeof(int16_t) + s.scores32.capacity() * sizeof(int32_t) +
            s.totals.capacity() * sizeof(int64_t) + kOverhead;
  s.record = std::make_shared<DecisionRecord>(std::move(record));
  s.uid = api::newUid();
  s.created = s.record->started.time_since_epoch().count() ? s.record->started : std::chrono::system_clock::now();
  int32_t attempt = s.record->attempt;
  s.resourceVersion = noteLocked("ADDED", key, attempt, nullptr);
  bytes_ += static_cast<int64_t>(s.bytes);
  ++count_;
  h.attempts.push_back(std::move(s));
  order_.emplace_back(key, attempt);
  while (static_cast<int32_t>(h.attempts.size()) > options_.perPod) popFrontLocked(key, h);
  while (bytes_ > options_.maxBytes && !order_.empty()) dropOldestLocked();
  // The order list keeps entries of records already dropped per pod; trim it when it grows
  // well past the records it indexes.
  if (order_.size() > 2 * count_ + 1024) {
    std::deque<std::pair<PodKey, int32_t>> kept;
    for (auto& entry : order_) {
      auto it = pods_.find(entry.first);
      if (it == pods_.end()) continue;
      for (const auto& st : it->second.attempts) {
        if (st.record->attempt == entry.second) {
          kept.push_back(std::move(entry));
          break;
        }
      }
    }
    order_.swap(kept);
  }
}

uint16_t DecisionHistory::internPluginLocked(const std::string& plugin) {
  const auto& plugins = *plugins_;
  for (size_t i = 0; i < plugins.size(); ++i)
    if (plugins[i] == plugin) return static_cast<uint16_t>(i);
  // Plugins are a profile's few dozen at most; past 65,535 distinct names they share the last.
  if (plugins.size() >= std::numeric_limits<uint16_t>::max()) return static_cast<uint16_t>(plugins.size() - 1);
  auto grown = std::make_shared<std::vector<std::string>>(plugins);
  grown->push_back(plugin);
  plugins_ = std::move(grown);
  return static_cast<uint16_t>(plugins_->size() - 1);
}

namespace {

// The sum of a scored node's weighted scores (what the framework's total is).
int64_t weightedTotal(const DecisionRecord& record, const NodeDecision& node) {
  int64_t total = 0;
  for (size_t plugin = 0; record.scored(node) && plugin < record.scorePlugins.size(); ++plugin)
    total += record.weighted(node, plugin);
  return total;
}

template <typename Narrow>
bool allFit(const std::vector<int64_t>& values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) {
    return v >= std::numeric_limits<Narrow>::min() && v <= std::numeric_limits<Narrow>::max();
  });
}

}  // namespace

void DecisionHistory::compactLocked(DecisionRecord& record, Stored& stored) {
  bool totalsDerivable = true;
  for (const auto& d : record.nodes) {
    if (d.total != weightedTotal(record, d)) {
      totalsDerivable = false;
      break;
    }
  }
  stored.nodes.reserve(record.nodes.size());
  if (!totalsDerivable) stored.totals.reserve(record.nodes.size());
  for (auto& d : record.nodes) {
    StoredNode n;
    n.node = d.nodeId ? d.nodeId : internNodeName(d.node);
    n.rejectedBy = internPluginLocked(d.rejectedBy);
    if (!d.reasons.empty()) {
      auto [it, added] = reasonListIds_.emplace(d.reasons, static_cast<uint32_t>(reasonLists_.size()));
      if (added) reasonLists_.push_back(std::move(d.reasons));
      n.reasons = it->second;
    }
    n.scoreRow = d.scoreRow;
    n.unresolvable = d.unresolvable;
    stored.nodes.push_back(n);
    if (!totalsDerivable) stored.totals.push_back(d.total);
  }
  std::vector<NodeDecision>().swap(record.nodes);  // = {} would keep the capacity
  // Scores are int64 as in kube's framework; keep them as narrow as they all fit.
  if (allFit<int16_t>(record.scores)) {
    stored.scores16.assign(record.scores.begin(), record.scores.end());
    std::vector<int64_t>().swap(record.scores);
  } else if (allFit<int32_t>(record.scores)) {
    stored.scores32.assign(record.scores.begin(), record.scores.end());
    std::vector<int64_t>().swap(record.scores);
  }
}

DecisionHistory::Detached DecisionHistory::detachLocked(const Stored& stored) const {
  Detached d{stored, plugins_, {}};
  for (const StoredNode& n : stored.nodes)
    if (n.reasons && !d.reasons.count(n.reasons)) d.reasons.emplace(n.reasons, reasonLists_[n.reasons]);
  return d;
}

std::shared_ptr<const DecisionRecord> DecisionHistory::expand(const Detached& detached) {
  const Stored& stored = detached.stored;
  auto record = std::make_shared<DecisionRecord>(*stored.record);
  if (!stored.scores16.empty()) record->scores.assign(stored.scores16.begin(), stored.scores16.end());
  if (!stored.scores32.empty()) record->scores.assign(stored.scores32.begin(), stored.scores32.end());
  record->nodes.reserve(stored.nodes.size());
  for (size_t i = 0; i < stored.nodes.size(); ++i) {
    const StoredNode& n = stored.nodes[i];
    NodeDecision d;
    d.node = nodeNameOf(n.node);
    d.nodeId = n.node;
    d.rejectedBy = (*detached.plugins)[n.rejectedBy];
    if (n.reasons) d.reasons = detached.reasons.at(n.reasons);
    d.unresolvable = n.unresolvable;
    d.scoreRow = n.scoreRow;
    d.total = stored.totals.empty() ? weightedTotal(*record, d) : stored.totals[i];
    record->nodes.push_back(std::move(d));
  }
  return record;
}

void DecisionHistory::dropOldestLocked() {
  auto [key, attempt] = order_.front();
  order_.pop_front();
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  auto& attempts = it->second.attempts;
  if (!attempts.empty() && attempts.front().record->attempt == attempt) popFrontLocked(key, it->second);
  if (attempts.empty()) pods_.erase(it);
}

void DecisionHistory::popFrontLocked(const PodKey& key, PodHistory& h) {
  const Stored& s = h.attempts.front();
  noteLocked("DELETED", key, s.record->attempt, &s);
  bytes_ -= static_cast<int64_t>(s.bytes);
  --count_;
  h.attempts.pop_front();
}

int64_t DecisionHistory::noteLocked(const char* type, const PodKey& pod, int32_t attempt, const Stored* dropped) {
  int64_t revision = ++resourceVersion_;
  LoggedChange change{type, revision, pod, attempt, nullptr};
  if (dropped) {
    // A watcher is told of a dropped attempt by its identity (the record itself goes).
    change.dropped.reset(new AttemptIdentity{dropped->uid, dropped->record->podUid, dropped->record->profile, dropped->created});
  }
  changes_.push_back(std::move(change));
  if (changes_.size() > kChangesKept) changes_.pop_front();
  changed_.notify_all();
  return revision;
}

bool DecisionHistory::changesSince(int64_t revision, std::vector<Change>* out, int64_t* current) const {
  // Under the lock, what each change needs; its object is built after.
  std::vector<std::pair<size_t, Detached>> pending;  // (index in *out, the attempt as it is now)
  {
    std::lock_guard lock(mu_);
    *current = resourceVersion_;
    if (revision >= resourceVersion_) return true;
    // Every change took the next revision: a gap before the oldest kept means some are lost.
    if (changes_.empty() || changes_.front().revision > revision + 1) return false;
    auto first = std::lower_bound(changes_.begin(), changes_.end(), revision + 1,
                                  [](const LoggedChange& c, int64_t r) { return c.revision < r; });
    for (auto it = first; it != changes_.end(); ++it) {
      if (it->dropped) {
        out->push_back({it->type, it->revision,
                        identityObject(it->pod.first, it->pod.second, it->attempt, *it->dropped, it->revision)});
        continue;
      }
      // ADDED or MODIFIED: the attempt as it is now. One dropped since has its DELETED later
      // in the log.
      auto pod = pods_.find(it->pod);
      if (pod == pods_.end()) continue;
      for (const auto& s : pod->second.attempts) {
        if (s.record->attempt != it->attempt) continue;
        pending.emplace_back(out->size(), detachLocked(s));
        out->push_back({it->type, it->revision, nullptr});
        break;
      }
    }
  }
  for (const auto& [index, detached] : pending) (*out)[index].object = toObject(detached);
  return true;
}

void DecisionHistory::waitForChange(int64_t revision, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  changed_.wait_until(lock, deadline, [&] { return resourceVersion_ > revision; });
}

int64_t DecisionHistory::revision() const {
  std::lock_guard lock(mu_);
  return resourceVersion_;
}

void DecisionHistory::amend(const std::string& ns, const std::string& pod, int32_t attempt,
                            const std::string& result, const std::string& message) {
  std::lock_guard lock(mu_);
  auto it = pods_.find({ns, pod});
  if (it == pods_.end()) return;
  for (auto& s : it->second.attempts) {
    if (s.record->attempt != attempt) continue;
    // A new record, not an edit: objects being built from the old one outside the lock
    // (list, watch) go on reading it.
    auto amended = std::make_shared<DecisionRecord>(*s.record);
    amended->result = result;
    amended->message = message;
    s.record = std::move(amended);
    s.resourceVersion = noteLocked("MODIFIED", it->first, attempt, nullptr);
    return;
  }
}

nlohmann::json DecisionHistory::toObject(const Detached& detached) {
  const Stored& s = detached.stored;
  const DecisionRecord& r = *s.record;
  nlohmann::json object =
      identityObject(r.podNamespace, r.podName, r.attempt, {s.uid, r.podUid, r.profile, s.created}, s.resourceVersion);
  try {
    object["status"] = expand(detached)->toJson();
  } catch (const std::exception& e) {
    object["status"] = {{"error", e.what()}};
  }
  return object;
}

nlohmann::json DecisionHistory::identityObject(const std::string& ns, const std::string& pod, int32_t attempt,
                                               const AttemptIdentity& identity, int64_t resourceVersion) {
  return {
      {"apiVersion", std::string(kSchedulingGroup) + "/" + kSchedulingVersion},
      {"kind", kSchedulingAttemptKind},
      {"metadata",
       {{"name", pod + "-" + std::to_string(attempt)},
        {"namespace", ns},
        {"uid", identity.uid},
        {"resourceVersion", std::to_string(resourceVersion)},
        {"creationTimestamp", api::formatTime(identity.created)},
        {"labels", {{kAttemptPodLabel, pod}}}}},
      {"spec",
       {{"pod", {{"namespace", ns}, {"name", pod}, {"uid", identity.podUid}}},
        {"attempt", attempt},
        {"schedulerName", identity.profile}}},
  };
}

std::optional<nlohmann::json> DecisionHistory::get(const std::string& ns, const std::string& name) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 >= name.size()) return std::nullopt;
  int32_t attempt = 0;
  for (size_t i = dash + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || attempt > 100000000) return std::nullopt;
    attempt = attempt * 10 + (name[i] - '0');
  }
  std::optional<Detached> found;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find({ns, name.substr(0, dash)});
    if (it == pods_.end()) return std::nullopt;
    for (const auto& s : it->second.attempts) {
      if (s.record->attempt == attempt) {
        found = detachLocked(s);
        break;
      }
    }
  }
  if (!found) return std::nullopt;
  return toObject(*found);
}

std::vector<nlohmann::json> DecisionHistory::list(const std::string& ns, int64_t* revision) {
  std::vector<Detached> attempts;
  {
    std::lock_guard lock(mu_);
    if (revision) *revision = resourceVersion_;
    attempts.reserve(count_);
    auto it = ns.empty() ? pods_.begin() : pods_.lower_bound({ns, ""});
    for (; it != pods_.end(); ++it) {
      if (!ns.empty() && it->first.first != ns) break;
      for (const auto& s : it->second.attempts) attempts.push_back(detachLocked(s));
    }
  }
  std::vector<nlohmann::json> out;
  out.reserve(attempts.size());
  for (const auto& d : attempts) out.push_back(toObject(d));
  return out;
}

std::vector<std::shared_ptr<const DecisionRecord>> DecisionHistory::records(const std::string& ns,
                                                                            const std::string& pod) const {
  std::vector<Detached> attempts;
  {
    std::lock_guard lock(mu_);
    auto it = pods_.find({ns, pod});
    if (it != pods_.end())
      for (const auto& s : it->second.attempts) attempts.push_back(detachLocked(s));
  }
  std::vector<std::shared_ptr<const DecisionRecord>> out;
  for (const auto& d : attempts) out.push_back(expand(d));
  return out;
}

size_t DecisionHistory::size() const {
  std::lock_guard lock(mu_);
  return count_;
}

int64_t DecisionHistory::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace orrery::scheduler
