// The controller runner: kube-controller-manager's loop for every controller of the process.

#include <algorithm>
#include <exception>
#include <system_error>

#include <pthread.h>

#include "engine/controllers/controller.h"
#include "engine/controllers/util.h"

namespace orrery::controllers {

namespace {

// Linux thread names are at most 15 characters; "gc-w0" reads well in `top -H`.
void nameThread(const std::string& name) {
  std::string shortName = name.substr(0, 15);
  pthread_setname_np(pthread_self(), shortName.c_str());
}

std::string shortName(const std::string& name) {
  // "garbagecollector" → "garbagecoll"; leaves room for "-wN".
  return name.substr(0, 11);
}

}  // namespace

ControllerManager::ControllerManager(ControllerContext context) : context_(std::move(context)) {}

ControllerManager::~ControllerManager() { stop(); }

void ControllerManager::add(std::unique_ptr<Controller> controller) {
  controllers_.push_back(std::move(controller));
}

Controller* ControllerManager::find(const std::string& name) const {
  for (const auto& c : controllers_) {
    if (c->name() == name) return c.get();
  }
  return nullptr;
}

Status ControllerManager::start(std::chrono::milliseconds syncTimeout) {
  std::lock_guard lock(mu_);
  if (started_) return Status::ok();
  if (!context_.client) return Status::internal("controller manager: the context has no API client");
  if (!context_.informers) {
    ownedInformers_ = std::make_unique<client::InformerFactory>(context_.client);
    context_.informers = ownedInformers_.get();
  }
  for (auto& c : controllers_) {
    recorders_.push_back(std::make_unique<client::EventRecorder>(context_.client, c->component()));
    c->events = recorders_.back().get();
    if (auto st = c->setup(context_); !st.isOk()) {
      logger()->error("controller {} failed to set up: {}", c->name(), st.message());
      return Status(st.code() ? st.code() : 500, st.reason(),
                    "controller " + c->name() + " failed to set up: " + st.message());
    }
  }
  context_.informers->start();
  if (!context_.informers->waitForSync(syncTimeout)) {
    return Status(504, api::reason::kTimeout,
                  "timed out waiting for the controllers' caches to sync (" +
                      std::to_string(syncTimeout.count()) + " ms)");
  }
  started_ = true;
  stopping_ = false;
  for (auto& owned : controllers_) {
    Controller* c = owned.get();
    // One worker per controller to begin with; another starts whenever a key is queued while
    // no worker waits for one, up to workers() (kube's --concurrent-*-syncs). An idle control
    // plane so holds ~20 worker threads instead of ~80, each with its stack.
    c->queue().setOnUnservedKey([this, c] { startWorker(c); });
    // Keys the informers' first sync queued before the callback was set get theirs now.
    const size_t queued = std::max<size_t>(1, c->queue().length());
    for (size_t i = 0; i < queued && i < static_cast<size_t>(std::max(1, c->workers())); ++i) startWorker(c);
    if (c->tickInterval().count() > 0) {
      std::lock_guard threadsLock(threadsMu_);
      threads_.emplace_back([this, c] {
        nameThread(shortName(c->name()) + "-t");
        std::unique_lock tickLock(mu_);
        while (!stopping_) {
          if (wake_.wait_for(tickLock, c->tickInterval(), [this] { return stopping_.load(); })) break;
          tickLock.unlock();
          try {
            c->tick();
          } catch (const std::exception& e) {
            logger()->error("{}: tick threw: {}", c->name(), e.what());
          } catch (...) {
            logger()->error("{}: tick threw an unknown exception", c->name());
          }
          tickLock.lock();
        }
      });
    }
    logger()->info("started controller {} (up to {} workers)", c->name(), std::max(1, c->workers()));
  }
  return Status::ok();
}

void ControllerManager::startWorker(Controller* c) {
  std::lock_guard lock(threadsMu_);
  if (stopping_) return;
  int& started = workersStarted_[c];
  if (started >= std::max(1, c->workers())) return;
  const int index = started;
  try {
    threads_.emplace_back([this, c, index] { runWorker(c, index); });
  } catch (const std::system_error& e) {
    // Out of threads (pids.max, ulimit): the workers already running carry on.
    logger()->warn("{}: cannot start worker {}: {}", c->name(), index, e.what());
    return;
  }
  ++started;
}

void ControllerManager::runWorker(Controller* c, int index) {
  nameThread(shortName(c->name()) + "-w" + std::to_string(index));
  std::string key;
  while (c->queue().get(&key)) {
    Status st;
    try {
      st = c->sync(key);
    } catch (const std::exception& e) {
      // A controller bug must not take the process down: log and retry, as
      // utilruntime.HandleCrash would have in a goroutine that recovers.
      st = Status::internal(std::string("sync threw: ") + e.what());
    } catch (...) {
      st = Status::internal("sync threw an unknown exception");
    }
    if (st.isOk()) {
      c->queue().forget(key);
    } else if (st.reason() == kRequeueReason) {
      logger()->debug("{}: requeue \"{}\": {}", c->name(), key, st.message());
      c->queue().addRateLimited(key);
    } else {
      logger()->warn("{}: error syncing \"{}\": {} (retry {})", c->name(), key, st.message(),
                     c->queue().numRequeues(key) + 1);
      c->queue().addRateLimited(key);
    }
    c->queue().done(key);
  }
}

void ControllerManager::stop() {
  {
    std::scoped_lock lock(mu_, threadsMu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& c : controllers_) c->queue().shutDown();
  // stopping_ is set, so no worker starts another once the list is taken.
  std::vector<std::thread> threads;
  {
    std::lock_guard threadsLock(threadsMu_);
    threads.swap(threads_);
    workersStarted_.clear();
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  // Handlers enqueue into the queues: stop the informers we own before the controllers go.
  if (ownedInformers_) ownedInformers_->stop();
  for (auto& r : recorders_) r->flush();
}

}  // namespace orrery::controllers
