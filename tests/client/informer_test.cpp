// Informers against a real in-process API server: list then watch, handlers hearing every
// change in order, handlers added late, indexes, a broken watch resumed from the last
// resourceVersion, a relist after 410 that reports only real differences, thousands of
// objects listed in pages, and the shared factory.

#include <QtTest>

#include <atomic>
#include <mutex>

#include "engine/api/object.h"
#include "engine/client/informer.h"
#include "engine/cluster/in_process.h"

using namespace orrery;
using client::Informer;
using client::ObjectPtr;
using nlohmann::json;

namespace {

const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kSecrets{"", "v1", "secrets"};

json configMap(const std::string& ns, const std::string& name, json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"data", {{"v", "1"}}}};
}

// A transport that forwards to a replaceable one (none: the server is down, 503), counts
// requests, and can break the streams it carries as a dropped connection would.
class SwitchTransport : public client::Transport {
 public:
  void set(std::shared_ptr<client::Transport> inner) {
    std::lock_guard lock(mu_);
    inner_ = std::move(inner);
  }
  int lists() const { return lists_.load(); }
  int pagedLists() const { return pagedLists_.load(); }
  int watches() const { return watches_.load(); }

  api::Result<client::Response> roundTrip(const client::Request& request) override {
    auto inner = current();
    if (!inner) return api::Status::serviceUnavailable("connection refused");
    if (request.method == "GET" && !request.query.count("watch")) {
      lists_++;
      if (request.query.count("limit")) pagedLists_++;
    }
    return inner->roundTrip(request);
  }

  api::Result<std::unique_ptr<client::Stream>> stream(const client::Request& request, client::LineHandler onLine,
                                                      client::EndHandler onEnd) override {
    auto inner = current();
    if (!inner) return api::Status::serviceUnavailable("connection refused");
    auto tracked = std::make_shared<Tracked>();
    tracked->onEnd = std::move(onEnd);
    auto started = inner->stream(request, std::move(onLine), [tracked](const api::Status& st) {
      tracked->end(st);
    });
    if (!started.ok()) return started.status();
    {
      std::lock_guard lock(tracked->mu);
      tracked->inner = std::move(*started);
    }
    {
      std::lock_guard lock(mu_);
      streams_.push_back(tracked);
    }
    watches_++;  // counted once breakStreams() can reach it
    return std::unique_ptr<client::Stream>(new Wrapper(tracked));
  }

  /// Ends every open stream with an error, as a reset connection would.
  void breakStreams() {
    std::vector<std::shared_ptr<Tracked>> all;
    {
      std::lock_guard lock(mu_);
      all.swap(streams_);
    }
    for (auto& t : all) {
      std::unique_ptr<client::Stream> inner;
      {
        std::lock_guard lock(t->mu);
        inner = std::move(t->inner);
      }
      if (inner) inner->cancel();
      t->end(api::Status::serviceUnavailable("connection reset by peer"));
    }
  }

 private:
  struct Tracked {
    std::mutex mu;
    std::unique_ptr<client::Stream> inner;
    client::EndHandler onEnd;
    std::atomic<bool> finished{false};
    void end(const api::Status& st) {
      if (finished.exchange(true)) return;
      onEnd(st);
    }
  };
  struct Wrapper : client::Stream {
    explicit Wrapper(std::shared_ptr<Tracked> t) : t_(std::move(t)) {}
    ~Wrapper() override { cancel(); }
    void cancel() override {
      t_->finished = true;
      std::unique_ptr<client::Stream> inner;
      {
        std::lock_guard lock(t_->mu);
        inner = std::move(t_->inner);
      }
      if (inner) inner->cancel();
    }
    std::shared_ptr<Tracked> t_;
  };

  std::shared_ptr<client::Transport> current() {
    std::lock_guard lock(mu_);
    return inner_;
  }
  std::mutex mu_;
  std::shared_ptr<client::Transport> inner_;
  std::vector<std::shared_ptr<Tracked>> streams_;
  std::atomic<int> lists_{0}, pagedLists_{0}, watches_{0};
};

// What handlers heard, as "add:name", "update:name:oldv->newv", "delete:name".
struct Recorder {
  std::mutex mu;
  std::vector<std::string> log;
  std::string ns;

  client::EventHandler handler() {
    client::EventHandler h;
    auto mine = [this](const ObjectPtr& o) { return api::metaString(*o, "namespace") == ns; };
    h.onAdd = [this, mine](const ObjectPtr& o) {
      if (mine(o)) push("add:" + api::metaString(*o, "name"));
    };
    h.onUpdate = [this, mine](const ObjectPtr& a, const ObjectPtr& b) {
      if (mine(b)) {
        push("update:" + api::metaString(*b, "name") + ":" + a->at("data").value("v", "") + "->" +
             b->at("data").value("v", ""));
      }
    };
    h.onDelete = [this, mine](const ObjectPtr& o) {
      if (mine(o)) push("delete:" + api::metaString(*o, "name"));
    };
    return h;
  }
  void push(std::string s) {
    std::lock_guard lock(mu);
    log.push_back(std::move(s));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mu);
    return log;
  }
  size_t size() {
    std::lock_guard lock(mu);
    return log.size();
  }
  void clear() {
    std::lock_guard lock(mu);
    log.clear();
  }
};

QStringList toQt(const std::vector<std::string>& v) {
  QStringList out;
  for (const auto& s : v) out << QString::fromStdString(s);
  return out;
}

}  // namespace

class InformerTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    auto local = cluster::LocalApiServer::start({dir_->path().toStdString(), ""});
    QVERIFY2(local.ok(), local.ok() ? "" : local.status().message().c_str());
    local_ = std::move(*local);
    admin_ = local_->adminClient("informer-test");
    switch_ = std::make_shared<SwitchTransport>();
    switch_->set(local_->adminClient()->transport());
    client_ = std::make_shared<client::Client>(switch_, "informer-under-test");
  }

  void cleanup() {
    client_.reset();
    admin_.reset();
    switch_.reset();
    local_.reset();
    dir_.reset();
  }

  void listThenWatchInOrder() {
    createNamespace("inf");
    for (auto name : {"a", "b", "c"}) QVERIFY(admin_->create(kConfigMaps, "inf", configMap("inf", name)).ok());

    Informer informer(client_, kConfigMaps);
    Recorder rec;
    rec.ns = "inf";
    informer.addHandler(rec.handler());
    QVERIFY(!informer.hasSynced());
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    QVERIFY(informer.hasSynced());
    auto initial = rec.snapshot();
    std::sort(initial.begin(), initial.end());
    QCOMPARE(toQt(initial), QStringList({"add:a", "add:b", "add:c"}));
    QVERIFY(informer.get("inf/a"));
    QCOMPARE(informer.get("inf/a")->value("kind", ""), std::string("ConfigMap"));
    QVERIFY(!informer.get("inf/zzz"));
    QVERIFY(!informer.lastResourceVersion().empty());

    rec.clear();
    QVERIFY(admin_->create(kConfigMaps, "inf", configMap("inf", "d")).ok());
    QVERIFY(admin_->patch(kConfigMaps, "inf", "a", client::PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
    QVERIFY(admin_->remove(kConfigMaps, "inf", "b").ok());
    QVERIFY(admin_->patch(kConfigMaps, "inf", "a", client::PatchType::kMerge, R"({"data":{"v":"3"}})").ok());
    QTRY_COMPARE_WITH_TIMEOUT(rec.size(), size_t(4), 10000);
    QCOMPARE(toQt(rec.snapshot()),
             QStringList({"add:d", "update:a:1->2", "delete:b", "update:a:2->3"}));
    QVERIFY(!informer.get("inf/b"));
    QCOMPARE(informer.get("inf/a")->at("data").value("v", ""), std::string("3"));
    auto last = admin_->get(kConfigMaps, "inf", "a");
    QCOMPARE(informer.lastResourceVersion(), api::metaString(*last, "resourceVersion"));

    informer.stop();
    // No handler runs after stop().
    rec.clear();
    QVERIFY(admin_->create(kConfigMaps, "inf", configMap("inf", "after-stop")).ok());
    QTest::qWait(200);
    QCOMPARE(rec.size(), size_t(0));
  }

  // An informer that strips managedFields has none in its cache, listed or watched; the
  // watch asks the in-process server for objects parsed without them, and any other
  // transform still runs on the informer's own copy.
  void strippedInformersHoldNoManagedFields() {
    createNamespace("strip");
    QVERIFY(admin_->create(kConfigMaps, "strip", configMap("strip", "listed")).ok());
    Informer stripped(client_, kConfigMaps, "strip");
    stripped.setTransform(client::stripManagedFields);
    Informer labelled(client_, kConfigMaps, "strip");
    labelled.setTransform([](json& o) {
      client::stripManagedFields(o);
      o["metadata"]["labels"]["seen"] = "yes";
    });
    stripped.start();
    labelled.start();
    QVERIFY(stripped.waitForSync(std::chrono::seconds(10)) && labelled.waitForSync(std::chrono::seconds(10)));
    QVERIFY(admin_->create(kConfigMaps, "strip", configMap("strip", "watched")).ok());
    QVERIFY(admin_->patch(kConfigMaps, "strip", "listed", client::PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
    QTRY_VERIFY_WITH_TIMEOUT(stripped.get("strip/watched") && labelled.get("strip/watched"), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(stripped.get("strip/listed")->at("data").value("v", "") == "2", 10000);
    QTRY_VERIFY_WITH_TIMEOUT(labelled.get("strip/listed")->at("data").value("v", "") == "2", 10000);
    auto stored = admin_->get(kConfigMaps, "strip", "watched");
    QVERIFY(stored.ok() && (*stored)["metadata"].contains("managedFields"));
    for (const char* name : {"strip/listed", "strip/watched"}) {
      QVERIFY2(!stripped.get(name)->at("metadata").contains("managedFields"), name);
      QVERIFY2(!labelled.get(name)->at("metadata").contains("managedFields"), name);
      QCOMPARE(labelled.get(name)->at("metadata").at("labels").value("seen", ""), std::string("yes"));
    }
    json expected = *stored;
    expected["metadata"].erase("managedFields");
    QCOMPARE(*stripped.get("strip/watched"), expected);
    stripped.stop();
    labelled.stop();
  }

  void handlersAddedLateGetTheCache() {
    createNamespace("late");
    QVERIFY(admin_->create(kConfigMaps, "late", configMap("late", "x")).ok());
    Informer informer(client_, kConfigMaps, "late");
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    Recorder rec;
    rec.ns = "late";
    informer.addHandler(rec.handler());
    QCOMPARE(toQt(rec.snapshot()), QStringList({"add:x"}));
    QVERIFY(admin_->create(kConfigMaps, "late", configMap("late", "y")).ok());
    QTRY_COMPARE_WITH_TIMEOUT(rec.size(), size_t(2), 10000);
    QCOMPARE(toQt(rec.snapshot()), QStringList({"add:x", "add:y"}));
  }

  void indexesFollowChanges() {
    createNamespace("idx1");
    createNamespace("idx2");
    QVERIFY(admin_->create(kConfigMaps, "idx1", configMap("idx1", "p", {{"tier", "web"}})).ok());
    QVERIFY(admin_->create(kConfigMaps, "idx2", configMap("idx2", "q", {{"tier", "web"}})).ok());
    QVERIFY(admin_->create(kConfigMaps, "idx2", configMap("idx2", "r", {{"tier", "db"}})).ok());
    Informer informer(client_, kConfigMaps);
    informer.addIndex("tier", [](const json& o) {
      std::vector<std::string> out;
      auto labels = o["metadata"].find("labels");
      if (labels != o["metadata"].end() && labels->contains("tier")) out.push_back((*labels)["tier"]);
      return out;
    });
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    QCOMPARE(informer.byIndex("namespace", "idx2").size(), size_t(2));
    QCOMPARE(informer.byIndex("namespace", "idx1").size(), size_t(1));
    QCOMPARE(informer.byIndex("tier", "web").size(), size_t(2));
    QCOMPARE(informer.byIndex("tier", "db").size(), size_t(1));
    QCOMPARE(informer.byIndex("nope", "web").size(), size_t(0));

    // Relabel q: it moves from web to db.
    QVERIFY(admin_->patch(kConfigMaps, "idx2", "q", client::PatchType::kMerge,
                          R"({"metadata":{"labels":{"tier":"db"}}})").ok());
    QTRY_COMPARE_WITH_TIMEOUT(informer.byIndex("tier", "db").size(), size_t(2), 10000);
    QCOMPARE(informer.byIndex("tier", "web").size(), size_t(1));
    // An update that changes nothing indexed leaves p where it was, in both indexes.
    QVERIFY(admin_->patch(kConfigMaps, "idx1", "p", client::PatchType::kMerge, R"({"data":{"changed":"yes"}})").ok());
    QTRY_VERIFY_WITH_TIMEOUT(informer.get("idx1/p") && (*informer.get("idx1/p"))["data"].contains("changed"), 10000);
    QCOMPARE(informer.byIndex("tier", "web").size(), size_t(1));
    QCOMPARE(informer.byIndex("tier", "web")[0]->at("metadata").value("name", ""), std::string("p"));
    QCOMPARE(informer.byIndex("namespace", "idx1").size(), size_t(1));
    QVERIFY(admin_->remove(kConfigMaps, "idx2", "r").ok());
    QTRY_COMPARE_WITH_TIMEOUT(informer.byIndex("namespace", "idx2").size(), size_t(1), 10000);
    QCOMPARE(informer.byIndex("tier", "db").size(), size_t(1));
  }

  void aBrokenWatchResumesFromTheLastResourceVersion() {
    createNamespace("resume");
    QVERIFY(admin_->create(kConfigMaps, "resume", configMap("resume", "one")).ok());
    Informer informer(client_, kConfigMaps, "resume");
    Recorder rec;
    rec.ns = "resume";
    informer.addHandler(rec.handler());
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    QTRY_COMPARE_WITH_TIMEOUT(switch_->watches(), 1, 5000);
    int listsBefore = switch_->lists();

    // The connection drops, changes happen, the informer re-watches and catches up without a
    // relist: the server still has the history.
    switch_->set(nullptr);
    switch_->breakStreams();
    QVERIFY(admin_->create(kConfigMaps, "resume", configMap("resume", "two")).ok());
    QVERIFY(admin_->patch(kConfigMaps, "resume", "one", client::PatchType::kMerge, R"({"data":{"v":"9"}})").ok());
    switch_->set(local_->adminClient()->transport());
    QTRY_COMPARE_WITH_TIMEOUT(rec.size(), size_t(3), 15000);
    QCOMPARE(toQt(rec.snapshot()), QStringList({"add:one", "add:two", "update:one:1->9"}));
    QCOMPARE(switch_->lists(), listsBefore);
    QVERIFY(switch_->watches() >= 2);
  }

  void relistAfter410ReportsOnlyRealChanges() {
    createNamespace("gone");
    for (auto name : {"keep", "change", "remove"}) {
      QVERIFY(admin_->create(kConfigMaps, "gone", configMap("gone", name)).ok());
    }
    Informer informer(client_, kConfigMaps, "gone");
    Recorder rec;
    rec.ns = "gone";
    informer.addHandler(rec.handler());
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    ObjectPtr kept = informer.get("gone/keep");
    QVERIFY(kept);
    QTRY_COMPARE_WITH_TIMEOUT(switch_->watches(), 1, 5000);  // the watch is up: breakable
    int listsBefore = switch_->lists();

    // Disconnect the informer, change things behind its back, then restart the API server:
    // its new watch cache starts after those changes, so the informer's resourceVersion is
    // too old (410) and it must relist.
    switch_->set(nullptr);
    switch_->breakStreams();
    QVERIFY(admin_->patch(kConfigMaps, "gone", "change", client::PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
    QVERIFY(admin_->remove(kConfigMaps, "gone", "remove").ok());
    QVERIFY(admin_->create(kConfigMaps, "gone", configMap("gone", "new")).ok());
    admin_.reset();
    local_.reset();
    auto restarted = cluster::LocalApiServer::start({dir_->path().toStdString(), ""});
    QVERIFY2(restarted.ok(), restarted.ok() ? "" : restarted.status().message().c_str());
    local_ = std::move(*restarted);
    admin_ = local_->adminClient("informer-test");
    rec.clear();
    switch_->set(local_->adminClient()->transport());

    QTRY_VERIFY_WITH_TIMEOUT(rec.size() >= 3, 20000);
    QTest::qWait(100);
    auto log = rec.snapshot();
    std::sort(log.begin(), log.end());
    QCOMPARE(toQt(log), QStringList({"add:new", "delete:remove", "update:change:1->2"}));
    QVERIFY(switch_->lists() > listsBefore);
    // The unchanged object is the very same cached object.
    QCOMPARE(informer.get("gone/keep").get(), kept.get());
    QVERIFY(!informer.get("gone/remove"));

    // And the informer watches on from the relist.
    QVERIFY(admin_->create(kConfigMaps, "gone", configMap("gone", "later")).ok());
    QTRY_VERIFY_WITH_TIMEOUT(informer.get("gone/later") != nullptr, 10000);
  }

  void thousandsOfObjectsInPages() {
    createNamespace("many");
    const int n = 1200;
    for (int i = 0; i < n; ++i) {
      auto r = admin_->create(kConfigMaps, "many", configMap("many", "cm-" + std::to_string(i)));
      QVERIFY(r.ok());
    }
    Informer informer(client_, kConfigMaps, "many");
    std::atomic<int> adds{0};
    client::EventHandler h;
    h.onAdd = [&](const ObjectPtr&) { adds++; };
    informer.addHandler(h);
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(30)));
    QCOMPARE(adds.load(), n);
    QCOMPARE(informer.list().size(), size_t(n));
    QCOMPARE(switch_->pagedLists(), 3);  // 500 + 500 + 200
    for (int i = n; i < n + 300; ++i) {
      QVERIFY(admin_->create(kConfigMaps, "many", configMap("many", "cm-" + std::to_string(i))).ok());
    }
    QTRY_COMPARE_WITH_TIMEOUT(adds.load(), n + 300, 20000);
    QCOMPARE(informer.byIndex("namespace", "many").size(), size_t(n + 300));
  }

  void factorySharesOneInformerPerResource() {
    client::InformerFactory factory(client_);
    auto& a = factory.informer(kConfigMaps);
    auto& b = factory.informer(kConfigMaps);
    QCOMPARE(&a, &b);
    QVERIFY(&factory.informer(kSecrets) != &a);
    QVERIFY(!factory.waitForSync(std::chrono::milliseconds(10)));  // not started
    factory.start();
    QVERIFY(factory.waitForSync(std::chrono::seconds(10)));
    QVERIFY(a.hasSynced());
    // One created after start() starts at once.
    auto& ns = factory.informer(kNamespaces);
    QVERIFY(ns.waitForSync(std::chrono::seconds(10)));
    QVERIFY(ns.get("default"));
    factory.stop();
  }

 private:
  void createNamespace(const std::string& name) {
    auto r = admin_->create(kNamespaces, "", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}});
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
  }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<cluster::LocalApiServer> local_;
  std::shared_ptr<client::Client> admin_;
  std::shared_ptr<SwitchTransport> switch_;
  std::shared_ptr<client::Client> client_;
};

QTEST_APPLESS_MAIN(InformerTest)
#include "informer_test.moc"
