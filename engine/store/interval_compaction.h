#pragma once
// When a store compacts on its own: kube-apiserver's compactor (--etcd-compaction-interval,
// 5 minutes), which both backends follow. At the end of each interval, history is compacted
// up to the revision the interval started at, so a watch can resume from any revision of the
// last one or two intervals.

#include <chrono>
#include <cstdint>

namespace orrery::store::internal {

class IntervalCompaction {
 public:
  using Clock = std::chrono::steady_clock;

  /// The first interval starts now, at `revision`. An interval of 0 never ends.
  IntervalCompaction(std::chrono::milliseconds interval, int64_t revision, Clock::time_point now = Clock::now())
      : interval_(interval), ends_(now + interval), startRevision_(revision) {}

  /// Told the store's current revision: once the interval has ended, the revision to compact
  /// up to (its start), and the next interval starts here; 0 before that.
  int64_t due(int64_t revision, Clock::time_point now = Clock::now()) {
    if (interval_.count() <= 0 || now < ends_) return 0;
    int64_t target = startRevision_;
    startRevision_ = revision;
    ends_ = now + interval_;
    return target;
  }

 private:
  std::chrono::milliseconds interval_;
  Clock::time_point ends_;
  int64_t startRevision_;
};

}  // namespace orrery::store::internal
