// The controller runner: workers, retries with backoff, tickers, events, stop.

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include <QtTest>

#include "engine/controllers/controller.h"
#include "tests/controllers/controller_test_util.h"

using namespace orrery;
using orrery::testing::eventually;

namespace {

// Answers every request with an empty 200 object; streams end at once. Enough for the event
// recorder and an informer factory nobody asks for informers.
class NullTransport : public client::Transport {
 public:
  api::Result<client::Response> roundTrip(const client::Request&) override {
    return client::Response{200, "application/json", "{}", std::nullopt};
  }
  api::Result<std::unique_ptr<client::Stream>> stream(const client::Request&, client::LineHandler,
                                                      client::EndHandler) override {
    return api::Status::serviceUnavailable("no streams here");
  }
};

class ScriptedController : public controllers::Controller {
 public:
  std::string name() const override { return "scripted"; }
  std::string component() const override { return "scripted-controller"; }
  api::Status setup(controllers::ControllerContext& context) override {
    sawEvents = events != nullptr;
    sawClient = context.client != nullptr && context.informers != nullptr;
    if (failSetup) return api::Status::internal("no luck");
    return {};
  }
  api::Status sync(const std::string& key) override {
    int n;
    {
      std::lock_guard lock(mu);
      n = ++attempts[key];
    }
    if (key == "throws" && n == 1) throw std::runtime_error("boom");
    if (key == "flaky" && n <= 2) return api::Status::internal("not yet");
    if (key == "requeue" && n <= 2) return controllers::requeue("waiting");
    return {};
  }
  int workers() const override { return 3; }
  void tick() override { ++ticks; }
  std::chrono::milliseconds tickInterval() const override { return std::chrono::milliseconds(20); }

  int attemptsOf(const std::string& key) {
    std::lock_guard lock(mu);
    return attempts[key];
  }

  std::mutex mu;
  std::map<std::string, int> attempts;
  std::atomic<int> ticks{0};
  bool sawEvents = false;
  bool sawClient = false;
  bool failSetup = false;
};

controllers::ControllerContext nullContext() {
  controllers::ControllerContext context;
  context.client = std::make_shared<client::Client>(std::make_shared<NullTransport>(), "manager-test");
  return context;
}

}  // namespace

class ControllerManagerTest : public QObject {
  Q_OBJECT

 private slots:
  void failedSyncsAreRetriedUntilTheySucceed() {
    controllers::ControllerManager manager(nullContext());
    auto owned = std::make_unique<ScriptedController>();
    auto* c = owned.get();
    manager.add(std::move(owned));
    auto st = manager.start(std::chrono::seconds(5));
    QVERIFY2(st.isOk(), st.message().c_str());
    QVERIFY(c->sawEvents);
    QVERIFY(c->sawClient);
    QCOMPARE(manager.find("scripted"), c);
    QVERIFY(manager.find("nothing") == nullptr);

    c->queue().add("flaky");
    c->queue().add("throws");
    c->queue().add("requeue");
    c->queue().add("fine");
    QVERIFY(eventually([&] {
      return c->attemptsOf("flaky") == 3 && c->attemptsOf("throws") == 2 && c->attemptsOf("requeue") == 3 &&
             c->attemptsOf("fine") == 1;
    }, std::chrono::seconds(5)));
    // Once a sync succeeds the key is forgotten and not processed again.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    QCOMPARE(c->attemptsOf("flaky"), 3);
    QCOMPARE(c->attemptsOf("fine"), 1);
    QCOMPARE(c->queue().numRequeues("flaky"), 0);
    manager.stop();
  }

  void tickersRunUntilStop() {
    controllers::ControllerManager manager(nullContext());
    auto owned = std::make_unique<ScriptedController>();
    auto* c = owned.get();
    manager.add(std::move(owned));
    QVERIFY(manager.start().isOk());
    QVERIFY(eventually([&] { return c->ticks.load() >= 3; }, std::chrono::seconds(5)));
    manager.stop();
    int after = c->ticks.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    QCOMPARE(c->ticks.load(), after);
    // Stopped: queues are shut down, nothing is processed, and stop() may be called again.
    QVERIFY(c->queue().shuttingDown());
    c->queue().add("late");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    QCOMPARE(c->attemptsOf("late"), 0);
    manager.stop();
  }

  void aControllerThatCannotSetUpFailsStart() {
    controllers::ControllerManager manager(nullContext());
    auto owned = std::make_unique<ScriptedController>();
    owned->failSetup = true;
    manager.add(std::move(owned));
    auto st = manager.start();
    QVERIFY(!st.isOk());
    QCOMPARE(QString::fromStdString(st.message()), QString("controller scripted failed to set up: no luck"));
  }
};

QTEST_APPLESS_MAIN(ControllerManagerTest)
#include "controller_manager_test.moc"
