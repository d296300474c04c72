// Faults of the etcd backend, on real etcd processes on loopback:
// - a 3-member cluster loses one member (kill -9) under a stream of writes: no acknowledged
//   write is lost and writes keep succeeding on the others (failover);
// - every member dies: requests fail with a 503 that says what is wrong; once the members are
//   back, writes succeed again and a watch opened before the outage delivers what was written
//   after it, without the caller doing anything;
// - etcd compacts past a watch while the watch's connection is down: the watch ends with 410
//   (a loopback proxy in front of etcd cuts the connection at a chosen moment).

#include <QtTest>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "engine/store/etcd_process.h"
#include "engine/store/store.h"
#include "tests/store/watch_collector.h"

using namespace orrery::store;
using namespace orrery::store::testing;
using namespace std::chrono_literals;

namespace {

const char* why(const orrery::api::Status& s) { return s.message().c_str(); }
#define CHECK_OK(expr)                                                 \
  do {                                                                 \
    const auto& checked_ = (expr);                                     \
    QVERIFY2(checked_.ok(), checked_.ok() ? "" : why(checked_.status())); \
  } while (0)

// A TCP forwarder on 127.0.0.1 that the test can cut (close every connection and refuse new
// ones) and resume (listen again on the same port). All socket work happens on its thread.
class Proxy {
 public:
  explicit Proxy(int targetPort) : target_(targetPort) {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return;
    if (!listenOn(0)) return;
    thread_ = std::thread([this] { loop(); });
  }
  ~Proxy() {
    command(Command::kStop);
    if (thread_.joinable()) thread_.join();
    closeAll();
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
  }
  int port() const { return port_; }
  void cut() { command(Command::kCut); }
  void resume() { command(Command::kResume); }

 private:
  enum class Command { kNone, kCut, kResume, kStop };

  bool listenOn(int port) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    socklen_t len = sizeof a;
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_, 64) != 0 || ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::close(listen_);
      listen_ = -1;
      return false;
    }
    port_ = ntohs(a.sin_port);
    return true;
  }

  void command(Command c) {
    std::unique_lock lock(mu_);
    if (!thread_.joinable()) return;
    pending_ = c;
    char b = 1;
    (void)::write(wake_[1], &b, 1);
    cv_.wait(lock, [&] { return pending_ == Command::kNone; });
  }

  void closeAll() {
    for (auto [a, b] : pairs_) {
      ::close(a);
      ::close(b);
    }
    pairs_.clear();
    if (listen_ >= 0) ::close(listen_);
    listen_ = -1;
  }

  void loop() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({wake_[0], POLLIN, 0});
      if (listen_ >= 0) fds.push_back({listen_, POLLIN, 0});
      const size_t firstPair = fds.size();
      for (auto [a, b] : pairs_) {
        fds.push_back({a, POLLIN, 0});
        fds.push_back({b, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 1000);
      if (fds[0].revents) {
        char buf[64];
        while (::read(wake_[0], buf, sizeof buf) > 0) {}
        std::lock_guard lock(mu_);
        Command c = pending_;
        if (c == Command::kCut) closeAll();
        if (c == Command::kResume && listen_ < 0) listenOn(port_);
        pending_ = Command::kNone;
        cv_.notify_all();
        if (c == Command::kStop) return;
        continue;  // the fd set changed
      }
      if (listen_ >= 0 && fds[1].revents & POLLIN) {
        int client = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) {
          int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          a.sin_port = htons(static_cast<uint16_t>(target_));
          if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            pairs_.push_back({client, up});
          } else {
            ::close(up);
            ::close(client);
          }
        }
      }
      std::vector<size_t> dead;
      for (size_t p = 0; p < pairs_.size(); ++p) {
        for (int side = 0; side < 2; ++side) {
          const auto& f = fds[firstPair + 2 * p + side];
          if (!f.revents) continue;
          int from = side == 0 ? pairs_[p].first : pairs_[p].second;
          int to = side == 0 ? pairs_[p].second : pairs_[p].first;
          char buf[65536];
          ssize_t n = ::read(from, buf, sizeof buf);
          bool ok = n > 0;
          for (ssize_t off = 0; ok && off < n;) {
            ssize_t w = ::write(to, buf + off, n - off);
            if (w <= 0) ok = false;
            else off += w;
          }
          if (!ok) {
            dead.push_back(p);
            break;
          }
        }
      }
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
        ::close(pairs_[*it].first);
        ::close(pairs_[*it].second);
        pairs_.erase(pairs_.begin() + static_cast<long>(*it));
      }
    }
  }

  int target_;
  int port_ = 0;
  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::vector<std::pair<int, int>> pairs_;
  std::mutex mu_;
  std::condition_variable cv_;
  Command pending_ = Command::kNone;
  std::thread thread_;
};

int portOf(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// Writes until one succeeds or `timeout` passes (an election after a restart takes a moment).
orrery::api::Result<int64_t> createEventually(Store& store, const std::string& key,
                                              const std::string& value,
                                              std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = store.create(key, value);
    if (r.ok() || std::chrono::steady_clock::now() > deadline) return r;
    std::this_thread::sleep_for(100ms);
  }
}

}  // namespace

class EtcdFaultsTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
  }
  void cleanup() {
    etcd_.reset();  // stops every member, even after a failed check
    dir_.reset();
  }

  void killingOneMemberLosesNoAcknowledgedWrite() {
    startCluster(3);
    QVERIFY(etcd_);
    auto opened = openStore(etcd_->storeUrl());
    CHECK_OK(opened);
    Store& store = **opened;

    constexpr int kWriters = 4;
    std::mutex mu;
    std::map<std::string, std::pair<std::string, int64_t>> acknowledged;  // key -> value, rev
    std::atomic<int> acks{0}, acksAfterKill{0}, failures{0};
    std::atomic<bool> killed{false}, stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < kWriters; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; !stop; ++i) {
          std::string key = "/registry/pods/w" + std::to_string(t) + "/p" + std::to_string(i);
          std::string value = "{\"writer\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
          auto r = store.create(key, value);
          if (!r.ok()) {
            ++failures;
            std::this_thread::sleep_for(20ms);
            continue;
          }
          {
            std::lock_guard lock(mu);
            acknowledged[key] = {value, *r};
          }
          ++acks;
          if (killed) ++acksAfterKill;
        }
      });
    }
    QTRY_VERIFY_WITH_TIMEOUT(acks.load() >= 200, 30000);
    // Member 0 is the endpoint the store talks to first: its connections die mid-request.
    QVERIFY(etcd_->killMember(0).isOk());
    killed = true;
    QTRY_VERIFY_WITH_TIMEOUT(acksAfterKill.load() >= 300, 30000);
    stop = true;
    for (auto& w : writers) w.join();
    qInfo("acknowledged %d writes (%d after the kill), %d failed", acks.load(),
          acksAfterKill.load(), failures.load());

    for (const auto& [key, expected] : acknowledged) {
      auto kv = store.get(key);
      CHECK_OK(kv);
      QVERIFY2(kv->has_value(), key.c_str());
      QCOMPARE((*kv)->value, expected.first);
      QCOMPARE((*kv)->createRevision, expected.second);
    }
    RangeRequest all;
    all.key = "/registry/pods/";
    all.prefix = true;
    all.countOnly = true;
    auto count = store.range(all);
    CHECK_OK(count);
    // Unacknowledged writes may have landed too (their answer was lost), never fewer.
    QVERIFY(count->count >= static_cast<int64_t>(acknowledged.size()));

    auto members = store.members();
    CHECK_OK(members);
    QCOMPARE(members->size(), size_t{3});
    int healthy = 0;
    for (const auto& m : *members) {
      if (m.name == etcd_->memberName(0)) QVERIFY(!m.healthy);
      healthy += m.healthy ? 1 : 0;
    }
    QCOMPARE(healthy, 2);
  }

  void killingEveryMemberFailsWith503AndWatchesResume() {
    startCluster(3);
    QVERIFY(etcd_);
    auto opened = openStore(etcd_->storeUrl());
    CHECK_OK(opened);
    Store& store = **opened;
    WatchCollector got;
    WatchRequest w;
    w.key = "/f/";
    w.prevKv = true;
    auto handle = store.watch(w, got.callback());
    CHECK_OK(handle);
    CHECK_OK(store.create("/f/before", "1"));
    QVERIFY(got.waitForEvents(1));

    for (size_t i = 0; i < etcd_->memberCount(); ++i) QVERIFY(etcd_->killMember(i).isOk());
    auto down = store.create("/f/during", "x");
    QVERIFY(!down.ok());
    QCOMPARE(down.status().code(), 503);
    QCOMPARE(down.status().reason(), std::string("ServiceUnavailable"));
    QVERIFY2(down.status().message().find("etcd is unreachable") != std::string::npos, why(down.status()));
    QVERIFY2(down.status().message().find(etcd_->clientUrls()[2]) != std::string::npos, why(down.status()));
    RangeRequest r;
    r.key = "/f/";
    r.prefix = true;
    QCOMPARE(store.range(r).status().code(), 503);
    QTest::qWait(1500);  // the watch's stream is down and retrying meanwhile

    for (size_t i = 0; i < etcd_->memberCount(); ++i) QVERIFY(etcd_->startMember(i, false).isOk());
    for (size_t i = 0; i < etcd_->memberCount(); ++i) {
      auto s = etcd_->waitHealthy(i, 30s);
      QVERIFY2(s.isOk(), why(s));
    }
    auto after = createEventually(store, "/f/after", "2");
    CHECK_OK(after);
    QVERIFY(got.waitForEvents(2, 15s));
    auto events = got.events();
    QCOMPARE(events.size(), size_t{2});
    QCOMPARE(events[1].kv.key, std::string("/f/after"));
    QCOMPARE(events[1].kv.modRevision, *after);
    QCOMPARE(got.terminals(), 0);
    auto kv = store.get("/f/before");  // nothing acknowledged before the outage is lost
    CHECK_OK(kv);
    QVERIFY(kv->has_value());
  }

  void watchEndsWith410WhenEtcdCompactedPastItDuringAnOutage() {
    startCluster(1);
    QVERIFY(etcd_);
    Proxy proxy(portOf(etcd_->clientUrls()[0]));
    QVERIFY(proxy.port() > 0);
    auto viaProxy = openStore("etcd://127.0.0.1:" + std::to_string(proxy.port()));
    CHECK_OK(viaProxy);
    auto direct = openStore(etcd_->storeUrl());
    CHECK_OK(direct);

    WatchCollector got;
    WatchRequest w;
    w.key = "/p/";
    auto handle = (*viaProxy)->watch(w, got.callback());
    CHECK_OK(handle);
    CHECK_OK((*direct)->create("/p/a", "1"));
    QVERIFY(got.waitForEvents(1));

    proxy.cut();
    QCOMPARE((*viaProxy)->create("/p/x", "1").status().code(), 503);
    CHECK_OK((*direct)->create("/p/b", "2"));
    auto c = (*direct)->create("/p/c", "3");
    CHECK_OK(c);
    QVERIFY((*direct)->compact(*c).isOk());
    proxy.resume();

    QVERIFY(got.waitForTerminal(15s));
    QTest::qWait(100);
    QCOMPARE(got.terminals(), 1);
    QCOMPARE(got.events().size(), size_t{1});  // /p/b and /p/c are gone from history
    auto end = got.terminal();
    QCOMPARE(end.status.code(), 410);
    QCOMPARE(end.status.reason(), std::string("Expired"));
    QCOMPARE(end.compactRevision, *c);

    // The store itself carries on: new watches and writes work through the proxy again.
    WatchCollector again;
    auto h2 = (*viaProxy)->watch(w, again.callback());
    CHECK_OK(h2);
    CHECK_OK((*viaProxy)->create("/p/d", "4"));
    QVERIFY(again.waitForEvents(1));
    QCOMPARE(again.events()[0].kv.key, std::string("/p/d"));
  }

 private:
  void startCluster(int members) {
    EtcdProcessOptions options;
    options.dataDir = dir_->filePath("etcd").toStdString();
    options.members = members;
    options.heartbeatMs = 50;
    options.electionMs = 500;
    auto etcd = EtcdProcess::start(options);
    if (!etcd.ok()) {
      qWarning("starting etcd failed: %s", why(etcd.status()));
      return;
    }
    etcd_ = std::move(etcd).value();
  }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<EtcdProcess> etcd_;
};

QTEST_APPLESS_MAIN(EtcdFaultsTest)
#include "etcd_faults_test.moc"
