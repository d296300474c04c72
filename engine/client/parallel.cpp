#include "engine/client/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace orrery::client {

void parallelize(int n, int workers, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  const int threads = std::clamp(workers, 1, n);
  if (threads == 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int> next{0};
  auto work = [&] {
    for (int i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();  // the caller's thread is one of them
  for (auto& th : pool) th.join();
}

}  // namespace orrery::client
