// The watch cache survives the end of the store's watch, as kube-apiserver's cacher does:
// it watches again (503) or re-lists (410), ends its watchers with 410 only when events were
// lost, and makes reads wait or fail 503 while it catches up.
//
// The store is a real SQLite store behind a wrapper that can end every watch with a given
// status and refuse requests (the store is "down"), the way the etcd backend behaves when etcd
// compacts past a broken watch or goes away.

#include <QtTest>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "engine/api/resource.h"
#include "engine/apiserver/watch_cache.h"
#include "engine/store/store.h"

using namespace orrery;
using namespace std::chrono_literals;

namespace {

/// A store that forwards to SQLite, but can be taken down and can end its watches.
class FaultyStore final : public store::Store {
 public:
  explicit FaultyStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  store::Store& inner() { return *inner_; }
  void setDown(bool down) { down_ = down; }

  /// Ends every live watch with `status` (as a backend's terminal callback).
  void endWatches(const api::Status& status) {
    std::vector<std::shared_ptr<Live>> live;
    {
      std::lock_guard lock(mu_);
      live.swap(live_);
    }
    for (auto& l : live) {
      l->inner->cancel();  // the inner store calls back no more
      store::WatchResponse end;
      end.status = status;
      std::lock_guard lock(l->mu);
      if (l->ended) continue;
      l->ended = true;
      l->callback(end);
    }
  }

  int watchesStarted() const { return started_.load(); }

  api::Result<store::RangeResponse> range(const store::RangeRequest& r) override {
    if (down_) return downStatus();
    return inner_->range(r);
  }
  api::Result<store::TxnResponse> txn(const store::TxnRequest& r) override {
    if (down_) return downStatus();
    return inner_->txn(r);
  }
  api::Result<std::unique_ptr<store::WatchHandle>> watch(const store::WatchRequest& r,
                                                         store::WatchCallback callback) override {
    if (down_) return downStatus();
    auto live = std::make_shared<Live>();
    live->callback = std::move(callback);
    std::weak_ptr<Live> weak = live;
    auto handle = inner_->watch(r, [weak](const store::WatchResponse& response) {
      auto l = weak.lock();
      if (!l) return;
      std::lock_guard lock(l->mu);
      if (l->ended) return;
      if (!response.status.isOk()) l->ended = true;
      l->callback(response);
    });
    if (!handle.ok()) return handle.status();
    live->inner = std::move(handle).value();
    ++started_;
    {
      std::lock_guard lock(mu_);
      live_.push_back(live);
    }
    return std::unique_ptr<store::WatchHandle>(std::make_unique<Handle>(live));
  }
  api::Status compact(int64_t revision) override { return inner_->compact(revision); }
  api::Result<store::StoreStats> stats() override { return inner_->stats(); }
  api::Result<std::vector<store::Member>> members() override { return inner_->members(); }
  void requestProgress(int64_t revision) override { inner_->requestProgress(revision); }

 private:
  struct Live {
    std::mutex mu;
    bool ended = false;
    store::WatchCallback callback;
    std::unique_ptr<store::WatchHandle> inner;
  };
  class Handle : public store::WatchHandle {
   public:
    explicit Handle(std::shared_ptr<Live> l) : live_(std::move(l)) {}
    ~Handle() override { cancel(); }
    void cancel() override {
      live_->inner->cancel();
      std::lock_guard lock(live_->mu);
      live_->ended = true;
    }

   private:
    std::shared_ptr<Live> live_;
  };
  static api::Status downStatus() {
    return api::Status::serviceUnavailable("etcd is unavailable: connection refused");
  }

  std::unique_ptr<store::Store> inner_;
  std::atomic<bool> down_{false};
  std::atomic<int> started_{0};
  std::mutex mu_;
  std::vector<std::shared_ptr<Live>> live_;
};

/// Collects what the cache delivers to one watcher.
class Recorder : public apiserver::CacheWatcher {
 public:
  bool deliver(apiserver::EventType type, const apiserver::CachedPtr& object) override {
    std::lock_guard lock(mu_);
    events_.push_back(std::string(apiserver::eventTypeName(type)) + " " + object->name());
    return true;
  }
  bool bookmark(int64_t) override { return true; }
  void terminate(const api::Status& status) override {
    std::lock_guard lock(mu_);
    ended_ = status;
    endedFlag_ = true;
  }
  void finish() override {}

  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool ended() {
    std::lock_guard lock(mu_);
    return endedFlag_;
  }
  api::Status endStatus() {
    std::lock_guard lock(mu_);
    return ended_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
  bool endedFlag_ = false;
  api::Status ended_;
};

std::string configMap(const std::string& name, const std::string& value = "v") {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
         R"(","namespace":"default"},"data":{"k":")" + value + R"("}})";
}

std::string labelled(const std::string& name, const std::string& app, const std::string& value) {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
         R"(","namespace":"default","labels":{"app":")" + app + R"("}},"data":{"k":")" + value + R"("}})";
}

template <typename F>
bool eventually(F f, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

}  // namespace

class WatchCacheTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>(QDir::tempPath() + "/orrery-watch-cache-XXXXXX");
    QVERIFY(dir_->isValid());
    store::SqliteOptions options;
    options.path = dir_->filePath("store.db").toStdString();
    auto opened = store::openSqliteStore(options);
    if (!opened.ok()) QFAIL(opened.status().message().c_str());
    store_ = std::make_unique<FaultyStore>(std::move(opened).value());
    auto info = api::ResourceRegistry::builtin()->find({"", "v1", "configmaps"});
    QVERIFY(info != nullptr);
    info_ = *info;
  }

  void cleanup() {
    store_.reset();
    dir_.reset();
  }

  // etcd went away and the store's watch ended with 503: the cache watches again from its
  // revision once the store is back; its watchers never notice and miss nothing.
  void rewatchAfterUnavailableLosesNothing() {
    QVERIFY(store_->inner().create(key("a"), configMap("a")).ok());
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    auto watcher = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(watcher, cache.revision(), false).isOk());

    store_->setDown(true);
    store_->endWatches(api::Status::serviceUnavailable("etcd closed the watch stream"));
    // Written while the cache follows nothing (another API server, say).
    auto rev = store_->inner().create(key("b"), configMap("b"));
    QVERIFY(rev.ok());
    QVERIFY(!cache.ready());
    auto st = cache.waitUntilFresh(*rev, 200ms);
    QCOMPARE(st.code(), 503);
    QVERIFY2(st.message().find("storage is (re)initializing") != std::string::npos, st.message().c_str());
    QCOMPARE(st.retryAfterSeconds.value_or(0), 1);

    store_->setDown(false);
    QVERIFY(cache.waitUntilFresh(*rev, 5000ms).isOk());
    QVERIFY(cache.ready());
    QVERIFY(cache.get(key("b")) != nullptr);
    QVERIFY(eventually([&] { return watcher->events().size() == 1; }));
    QCOMPARE(watcher->events().front(), std::string("ADDED b"));
    QVERIFY(!watcher->ended());

    // And it keeps following the store.
    QVERIFY(store_->inner().create(key("c"), configMap("c")).ok());
    QVERIFY(eventually([&] { return watcher->events().size() == 2; }));
    QCOMPARE(watcher->events().back(), std::string("ADDED c"));
  }

  // The store compacted past the cache while etcd was away (410): the cache re-lists, and as
  // events were lost its watchers end with 410 "too old resource version"; a watch resuming
  // from before the re-list gets 410 too, one from the new revision works.
  void relistAfterCompactionEndsWatchersWith410() {
    QVERIFY(store_->inner().create(key("a"), configMap("a")).ok());
    QVERIFY(store_->inner().create(key("b"), configMap("b")).ok());
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    const int64_t before = cache.revision();
    auto watcher = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(watcher, before, false).isOk());

    store_->setDown(true);  // the re-list has to retry until the store is back
    store_->endWatches(api::Status::expired("required revision has been compacted"));
    auto a = store_->inner().get(key("a"));
    QVERIFY(a.ok() && a->has_value());
    QVERIFY(store_->inner().compareAndSwap(key("a"), (*a)->modRevision, configMap("a", "changed")).ok());
    store::TxnRequest del;
    del.success.push_back(store::Operation::del(key("b")));
    QVERIFY(store_->inner().txn(del).ok());
    auto created = store_->inner().create(key("c"), configMap("c"));
    QVERIFY(created.ok());
    std::this_thread::sleep_for(300ms);  // a few failed re-lists
    QVERIFY(!cache.ready());
    QVERIFY(!watcher->ended());  // nothing is known to be lost until the list is in

    store_->setDown(false);
    QVERIFY(cache.waitUntilFresh(*created, 5000ms).isOk());
    QVERIFY(watcher->ended());
    QCOMPARE(watcher->endStatus().code(), 410);
    QVERIFY2(watcher->endStatus().message().find("too old resource version") != std::string::npos,
             watcher->endStatus().message().c_str());
    QCOMPARE(cache.watcherCount(), size_t(0));

    // The re-listed state.
    QVERIFY(cache.get(key("b")) == nullptr);
    QVERIFY(cache.get(key("c")) != nullptr);
    QVERIFY(cache.get(key("a"))->json().find("changed") != std::string::npos);
    QCOMPARE(cache.list({}, "", 0).items.size(), size_t(2));

    auto late = std::make_shared<Recorder>();
    auto st = cache.addWatcher(late, before, false);
    QCOMPARE(st.code(), 410);
    auto fresh = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(fresh, cache.revision(), false).isOk());
    QVERIFY(store_->inner().create(key("d"), configMap("d")).ok());
    QVERIFY(eventually([&] { return fresh->events().size() == 1; }));
    QCOMPARE(fresh->events().front(), std::string("ADDED d"));
  }

  // A 410 with nothing of this resource changed in the gap: the re-list finds the same
  // objects, so the watchers carry on.
  void relistWithoutChangesKeepsWatchers() {
    QVERIFY(store_->inner().create(key("a"), configMap("a")).ok());
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    auto watcher = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(watcher, cache.revision(), false).isOk());
    const int64_t before = cache.revision();

    store_->endWatches(api::Status::expired("required revision has been compacted"));
    auto other = store_->inner().create("/registry/secrets/default/s", configMap("s"));
    QVERIFY(other.ok());
    QVERIFY(cache.waitUntilFresh(*other, 5000ms).isOk());
    QVERIFY(!watcher->ended());
    // Resuming from the old revision still works: nothing of configmaps happened since.
    auto resumed = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(resumed, before, false).isOk());

    QVERIFY(store_->inner().create(key("b"), configMap("b")).ok());
    QVERIFY(eventually([&] { return watcher->events().size() == 1 && resumed->events().size() == 1; }));
    QCOMPARE(watcher->events().front(), std::string("ADDED b"));
  }

  // A watch that asks while the cache is re-initializing waits for it, bounded, then 503.
  void watchWhileRecoveringWaitsThenFails() {
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    store_->setDown(true);
    store_->endWatches(api::Status::serviceUnavailable("etcd closed the watch stream"));
    auto watcher = std::make_shared<Recorder>();
    const auto t0 = std::chrono::steady_clock::now();
    auto st = cache.addWatcher(watcher, 0, true);
    const auto waited = std::chrono::steady_clock::now() - t0;
    QCOMPARE(st.code(), 503);
    QVERIFY(waited >= 2s && waited < 10s);

    // Back while a watch waits: it is served.
    std::thread back([&] {
      std::this_thread::sleep_for(300ms);
      store_->setDown(false);
    });
    auto second = std::make_shared<Recorder>();
    st = cache.addWatcher(second, 0, true);
    back.join();
    QVERIFY2(st.isOk(), st.message().c_str());
  }

  // Destroying a cache that is still retrying does not hang.
  void destroyWhileStoreDown() {
    auto cache = std::make_unique<apiserver::WatchCache>(*store_, info_);
    QVERIFY(cache->start().isOk());
    store_->setDown(true);
    store_->endWatches(api::Status::expired("required revision has been compacted"));
    std::this_thread::sleep_for(200ms);
    const auto t0 = std::chrono::steady_clock::now();
    cache.reset();
    QVERIFY(std::chrono::steady_clock::now() - t0 < 3s);
  }

  // A labelled watch that resumes from a revision replays the history: an object whose
  // labels stop matching leaves its view (DELETED) and one whose labels start matching enters
  // it (ADDED), as kube's cacher reports them, even though the history keeps only what
  // selectors read of each replaced version.
  void resumedSelectorWatchSeesObjectsEnterAndLeave() {
    auto a = store_->inner().create(key("a"), labelled("a", "web", "1"));
    auto b = store_->inner().create(key("b"), labelled("b", "db", "1"));
    QVERIFY(a.ok() && b.ok());
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    const int64_t from = cache.revision();
    // a: data only (still matches), then relabelled away; b: relabelled into view.
    auto a2 = store_->inner().compareAndSwap(key("a"), *a, labelled("a", "web", "2"));
    QVERIFY(a2.ok() && a2->succeeded);
    auto a3 = store_->inner().compareAndSwap(key("a"), a2->revision, labelled("a", "db", "2"));
    auto b2 = store_->inner().compareAndSwap(key("b"), *b, labelled("b", "web", "1"));
    QVERIFY(a3.ok() && a3->succeeded && b2.ok() && b2->succeeded);
    QVERIFY(cache.waitUntilFresh(b2->revision, 5000ms).isOk());

    auto watcher = std::make_shared<Recorder>();
    auto selector = api::LabelSelector::parse("app=web");
    QVERIFY(selector.ok());
    watcher->filter.labels = std::move(*selector);
    QVERIFY(cache.addWatcher(watcher, from, false).isOk());
    QCOMPARE(watcher->events(), (std::vector<std::string>{"MODIFIED a", "DELETED a", "ADDED b"}));
  }

  // Versions whose labels and selectable fields are unchanged share what selectors read, and
  // the history stays within its byte budget however many versions pass through it: a watch
  // from before the window gets 410, one inside it replays every event since.
  void historyKeepsToItsByteBudget() {
    // Versions of random text: nothing to compress, each costs its 2 KB.
    std::mt19937 random(7);
    auto noise = [&] {
      std::string text(2000, 'x');
      for (auto& c : text) c = static_cast<char>('a' + random() % 26);
      return text;
    };
    const std::string big = noise();
    auto created = store_->inner().create(key("a"), labelled("a", "web", big));
    QVERIFY(created.ok());
    apiserver::WatchCache cache(*store_, info_, 10000, 256u << 10);  // 256 KiB
    QVERIFY(cache.start().isOk());
    const int64_t first = cache.revision();
    auto before = cache.get(key("a"));
    int64_t rev = *created;
    for (int i = 1; i <= 1000; ++i) {
      auto r = store_->inner().compareAndSwap(key("a"), rev, labelled("a", "web", noise()));
      QVERIFY(r.ok() && r->succeeded);
      rev = r->revision;
    }
    QVERIFY(cache.waitUntilFresh(rev, 5000ms).isOk());
    auto after = cache.get(key("a"));
    QVERIFY(after->revision == rev);
    QVERIFY(after->selectable == before->selectable);  // shared, not copied per version
    QVERIFY(after->footprint < big.size() + 1024);     // this version's own cost: its text

    // 1,000 versions of ~2 KB do not fit in 256 KiB: the oldest are gone...
    auto old = std::make_shared<Recorder>();
    QCOMPARE(cache.addWatcher(old, first, false).code(), 410);
    // ...what is kept is at least kube's minimum window of 100 events...
    auto recent = std::make_shared<Recorder>();
    QVERIFY(cache.addWatcher(recent, rev - 100, false).isOk());
    QCOMPARE(recent->events().size(), size_t(100));
    // ...and no more than the budget's worth: 130 versions of 2 KB are over 256 KiB.
    auto window = std::make_shared<Recorder>();
    QCOMPARE(cache.addWatcher(window, rev - 130, false).code(), 410);
  }

  // Cached objects are kept compressed against a sibling object; what is read back is the
  // exact text the store holds, with its resourceVersion.
  void objectsAreCompressedAgainstASibling() {
    const std::string data(3000, 'd');
    std::vector<int64_t> revisions;
    for (int i = 0; i < 200; ++i) {
      auto r = store_->inner().create(key("cm-" + std::to_string(i)), labelled("cm-" + std::to_string(i), "web", data));
      QVERIFY(r.ok());
      revisions.push_back(*r);
    }
    apiserver::WatchCache cache(*store_, info_);
    QVERIFY(cache.start().isOk());
    // And one that arrives through the watch.
    auto late = store_->inner().create(key("late"), labelled("late", "web", data));
    QVERIFY(late.ok());
    QVERIFY(cache.waitUntilFresh(*late, 5000ms).isOk());
    auto first = cache.get(key("cm-0"));
    for (int i = 0; i < 200; ++i) {
      auto object = cache.get(key("cm-" + std::to_string(i)));
      // Objects this alike all compress against one dictionary (a new one is chosen only
      // when an object fits it poorly).
      QVERIFY(object->sharesDictionaryWith(*first));
      QVERIFY(object);
      auto expected = nlohmann::json::parse(labelled("cm-" + std::to_string(i), "web", data));
      expected["metadata"]["resourceVersion"] = std::to_string(revisions[i]);
      // The same object; member order is not part of it (the cache puts resourceVersion
      // first in metadata, where a parse-and-serialize would sort it in).
      QCOMPARE(nlohmann::json::parse(object->json()), expected);
      QCOMPARE(object->jsonSize(), expected.dump().size());
      QVERIFY2(object->footprint < expected.dump().size() / 4, std::to_string(object->footprint).c_str());
    }
    auto object = cache.get(key("late"));
    QVERIFY(object->footprint < object->jsonSize() / 4);
    QCOMPARE(object->parse()["data"]["k"].get<std::string>(), data);
    // A list is the same text, object after object.
    auto page = cache.list(apiserver::Filter{}, "", 0);
    QCOMPARE(page.items.size(), size_t(201));
    std::string joined;
    for (const auto& item : page.items) item->appendJson(&joined);
    size_t expectedSize = 0;
    for (const auto& item : page.items) expectedSize += item->jsonSize();
    QCOMPARE(joined.size(), expectedSize);
    QVERIFY(joined.find("\"name\":\"late\"") != std::string::npos);
  }

  // Uncached (kube's disabled watch cache, used for Events): lists and gets read the store,
  // in pages with the same continue keys and counts as the cached lists.
  void uncachedReadsTheStore() {
    for (const char* name : {"a", "b", "c", "d", "e"})
      QVERIFY(store_->inner().create(key(name), labelled(name, name[0] < 'c' ? "web" : "db", "1")).ok());
    apiserver::WatchCache cache(*store_, info_, 10000, 4u << 20, apiserver::WatchCache::Mode::kUncached);
    QVERIFY(cache.start().isOk());
    QVERIFY(cache.waitUntilFresh(1'000'000, 10ms).isOk());  // the store is always current

    // Written after start: an uncached read sees it at once.
    auto f = store_->inner().create(key("f"), labelled("f", "db", "1"));
    QVERIFY(f.ok());
    auto all = cache.list(apiserver::Filter{}, "", 0);
    QVERIFY(all.status.isOk());
    QCOMPARE(all.items.size(), size_t(6));
    QCOMPARE(all.revision, *f);
    auto got = cache.get(key("f"));
    QVERIFY(got);
    QCOMPARE(got->revision, *f);
    QVERIFY(got->json().find("\"resourceVersion\":\"" + std::to_string(*f) + "\"") != std::string::npos);
    QVERIFY(!cache.get(key("none")));

    auto page = cache.list(apiserver::Filter{}, "", 2);
    QCOMPARE(page.items.size(), size_t(2));
    QVERIFY(page.more);
    QCOMPARE(page.nextKey, key("b"));
    QCOMPARE(page.remaining, int64_t(4));
    auto next = cache.list(apiserver::Filter{}, page.nextKey, 2);
    QCOMPARE(next.items.front()->name(), std::string("c"));
    QCOMPARE(next.remaining, int64_t(2));

    apiserver::Filter db;
    db.labels = api::LabelSelector::parse("app=db").value();
    auto dbPage = cache.list(db, "", 2);
    QCOMPARE(dbPage.items.size(), size_t(2));
    QCOMPARE(dbPage.items.front()->name(), std::string("c"));
    QVERIFY(dbPage.more);  // how many more is not counted under a selector, as kube-apiserver
    QCOMPARE(dbPage.nextKey, key("d"));

    // Lists longer than one read of the store (reads go in chunks of 512).
    for (int i = 0; i < 1100; ++i) {
      std::string name = "n" + std::to_string(1000 + i);
      QVERIFY(store_->inner().create(key(name), labelled(name, i % 2 ? "db" : "web", "1")).ok());
    }
    QCOMPARE(cache.list(apiserver::Filter{}, "", 0).items.size(), size_t(1106));
    QCOMPARE(cache.list(db, "", 0).items.size(), size_t(550 + 4));
    auto big = cache.list(db, "", 300);
    QCOMPARE(big.items.size(), size_t(300));
    QVERIFY(big.more);
    auto rest = cache.list(db, big.nextKey, 0);
    QCOMPARE(rest.items.size(), size_t(254));
    QVERIFY(!rest.more);
    auto plain = cache.list(apiserver::Filter{}, "", 1000);
    QCOMPARE(plain.items.size(), size_t(1000));
    QCOMPARE(plain.remaining, int64_t(106));
  }

  // An uncached watch has a store watch of its own: initial events, then every change, with
  // selector transitions; a watch resuming from a revision replays the store's history, and
  // one from a compacted revision gets 410. Removed watchers hear nothing more; the cache's
  // end ends the rest with 503.
  void uncachedWatchFollowsTheStore() {
    auto a = store_->inner().create(key("a"), labelled("a", "web", "1"));
    QVERIFY(a.ok());
    auto cache = std::make_unique<apiserver::WatchCache>(*store_, info_, 10000, 4u << 20,
                                                         apiserver::WatchCache::Mode::kUncached);
    QVERIFY(cache->start().isOk());
    auto all = std::make_shared<Recorder>();
    QVERIFY(cache->addWatcher(all, 0, true).isOk());
    auto web = std::make_shared<Recorder>();
    web->filter.labels = api::LabelSelector::parse("app=web").value();
    QVERIFY(cache->addWatcher(web, *a, false).isOk());

    auto b = store_->inner().create(key("b"), labelled("b", "web", "1"));
    QVERIFY(b.ok());
    auto a2 = store_->inner().compareAndSwap(key("a"), *a, labelled("a", "web", "2"));
    auto a3 = store_->inner().compareAndSwap(key("a"), a2->revision, labelled("a", "db", "2"));
    QVERIFY(a2->succeeded && a3->succeeded);
    auto gone = store_->inner().compareAndDelete(key("b"), *b);
    QVERIFY(gone.ok() && gone->succeeded);
    const std::vector<std::string> everything = {"ADDED a", "ADDED b", "MODIFIED a", "MODIFIED a", "DELETED b"};
    QVERIFY(eventually([&] { return all->events().size() == everything.size(); }));
    QCOMPARE(all->events(), everything);
    const std::vector<std::string> webView = {"ADDED b", "MODIFIED a", "DELETED a", "DELETED b"};
    QVERIFY(eventually([&] { return web->events().size() == webView.size(); }));
    QCOMPARE(web->events(), webView);

    // Resuming from a revision replays what the store kept since.
    auto resumed = std::make_shared<Recorder>();
    QVERIFY(cache->addWatcher(resumed, a2->revision, false).isOk());
    QVERIFY(eventually([&] { return resumed->events().size() == 2; }));
    QCOMPARE(resumed->events(), (std::vector<std::string>{"MODIFIED a", "DELETED b"}));

    // Once removed, a watcher hears no more.
    cache->removeWatcher(web.get());
    QVERIFY(store_->inner().compareAndSwap(key("a"), a3->revision, labelled("a", "web", "3"))->succeeded);
    QVERIFY(eventually([&] { return all->events().size() == everything.size() + 1; }));
    std::this_thread::sleep_for(50ms);
    QCOMPARE(web->events().size(), webView.size());
    QCOMPARE(cache->watcherCount(), size_t(2));

    // History compacted away: 410, as kube-apiserver answers a watch from etcd.
    QVERIFY(store_->inner().compact(gone->revision).isOk());
    auto stale = std::make_shared<Recorder>();
    auto st = cache->addWatcher(stale, *a, false);
    if (st.isOk()) QVERIFY(eventually([&] { return stale->ended(); }));
    QCOMPARE(st.isOk() ? stale->endStatus().code() : st.code(), 410);

    cache.reset();
    QVERIFY(all->ended());
    QCOMPARE(all->endStatus().code(), 503);
  }

 private:
  static std::string key(const std::string& name) { return "/registry/configmaps/default/" + name; }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<FaultyStore> store_;
  api::ResourceInfo info_;
};

QTEST_APPLESS_MAIN(WatchCacheTest)
#include "watch_cache_test.moc"
