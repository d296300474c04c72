// The work queue's rules, one test each, as client-go's workqueue behaves: dedup of waiting
// keys, no key held by two workers, re-processing of a key added while processing, delayed adds
// keeping the earliest time, per-key exponential backoff, and shutdown.

#include <QtTest>

#include <atomic>
#include <thread>

#include "engine/client/workqueue.h"

using namespace orrery::client;
using namespace std::chrono_literals;

class WorkQueueTest : public QObject {
  Q_OBJECT

 private slots:
  void addingAWaitingKeyIsANoOp() {
    WorkQueue q;
    q.add("a");
    q.add("b");
    q.add("a");
    QCOMPARE(q.length(), size_t(2));
    std::string key;
    QVERIFY(q.get(&key));
    QCOMPARE(key, std::string("a"));  // FIFO
    QVERIFY(q.get(&key));
    QCOMPARE(key, std::string("b"));
    QCOMPARE(q.length(), size_t(0));
  }

  void aKeyReaddedWhileProcessingComesBackAfterDone() {
    WorkQueue q;
    q.add("a");
    std::string key;
    QVERIFY(q.get(&key));
    q.add("a");
    q.add("a");
    // Not handed to a second worker while the first holds it.
    QCOMPARE(q.length(), size_t(0));
    q.done("a");
    QCOMPARE(q.length(), size_t(1));
    QVERIFY(q.get(&key));
    QCOMPARE(key, std::string("a"));
    q.done("a");
    QCOMPARE(q.length(), size_t(0));
  }

  void noKeyIsProcessedByTwoWorkersAtOnce() {
    WorkQueue q;
    std::atomic<int> inFlight{0};
    std::atomic<bool> overlap{false};
    std::atomic<int> processed{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w) {
      workers.emplace_back([&] {
        std::string key;
        while (q.get(&key)) {
          if (inFlight.fetch_add(1) != 0) overlap = true;
          std::this_thread::sleep_for(1ms);
          inFlight.fetch_sub(1);
          processed++;
          q.done(key);
        }
      });
    }
    for (int i = 0; i < 200; ++i) {
      q.add("same");
      std::this_thread::sleep_for(100us);
    }
    QTRY_COMPARE_WITH_TIMEOUT(q.length(), size_t(0), 5000);
    QTest::qWait(50);
    q.shutDown();
    for (auto& t : workers) t.join();
    QVERIFY(!overlap.load());
    QVERIFY(processed.load() >= 1);
    QVERIFY(processed.load() < 200);  // adds while waiting were merged
  }

  void addAfterWaitsThenAdds() {
    WorkQueue q;
    auto start = WorkQueue::Clock::now();
    q.addAfter("a", 100ms);
    QCOMPARE(q.length(), size_t(0));
    std::string key;
    QVERIFY(q.get(&key));
    QCOMPARE(key, std::string("a"));
    QVERIFY(WorkQueue::Clock::now() - start >= 100ms);
  }

  void addAfterKeepsTheEarliestTime() {
    WorkQueue q;
    auto start = WorkQueue::Clock::now();
    q.addAfter("a", 2000ms);
    q.addAfter("a", 50ms);   // earlier: wins
    q.addAfter("a", 3000ms); // later: ignored
    std::string key;
    QVERIFY(q.get(&key));
    QVERIFY(WorkQueue::Clock::now() - start < 1500ms);
    q.done(key);
    // Only one add came of the three.
    QTest::qWait(100);
    QCOMPARE(q.length(), size_t(0));
  }

  void aDelayedKeyAlreadyQueuedIsNotDuplicated() {
    WorkQueue q;
    q.add("a");
    q.addAfter("a", 20ms);
    QTest::qWait(80);
    QCOMPARE(q.length(), size_t(1));
  }

  void backoffDoublesPerKeyAndForgetResets() {
    WorkQueue q(BackoffPolicy{std::chrono::milliseconds(20), std::chrono::milliseconds(80)});
    std::string key;
    std::vector<std::chrono::milliseconds> waits;
    for (int i = 0; i < 4; ++i) {
      auto start = WorkQueue::Clock::now();
      q.addRateLimited("a");
      QVERIFY(q.get(&key));
      waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(WorkQueue::Clock::now() - start));
      q.done(key);
    }
    QCOMPARE(q.numRequeues("a"), 4);
    QVERIFY(waits[0] >= 20ms);
    QVERIFY(waits[1] >= 40ms);
    QVERIFY(waits[2] >= 80ms);
    QVERIFY(waits[3] >= 80ms && waits[3] < 160ms);  // capped at max
    // Another key has its own count.
    QCOMPARE(q.numRequeues("b"), 0);
    q.forget("a");
    QCOMPARE(q.numRequeues("a"), 0);
    auto start = WorkQueue::Clock::now();
    q.addRateLimited("a");
    QVERIFY(q.get(&key));
    QVERIFY(WorkQueue::Clock::now() - start < 60ms);
  }

  void shutDownWakesGetAndDrains() {
    WorkQueue q;
    std::atomic<bool> returned{false};
    std::atomic<bool> result{true};
    std::thread waiter([&] {
      std::string key;
      result = q.get(&key);
      returned = true;
    });
    QTest::qWait(50);
    QVERIFY(!returned.load());
    q.shutDown();
    waiter.join();
    QVERIFY(returned.load());
    QVERIFY(!result.load());
    QVERIFY(q.shuttingDown());

    // Keys queued before shutDown are still handed out; new adds are refused.
    WorkQueue r;
    r.add("x");
    r.shutDown();
    r.add("y");
    r.addAfter("z", 1ms);
    std::string key;
    QVERIFY(r.get(&key));
    QCOMPARE(key, std::string("x"));
    QVERIFY(!r.get(&key));
  }
};

QTEST_APPLESS_MAIN(WorkQueueTest)
#include "workqueue_test.moc"
