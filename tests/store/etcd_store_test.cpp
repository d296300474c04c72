// The etcd backend: the shared Store suite against a real etcd that each test starts on
// loopback (a fresh data directory per test; "reopen" stops etcd and starts it again on the
// same directory), plus what only the etcd backend has: URLs, member list, binary keys,
// a 503 naming the endpoints when etcd is not there, TLS.

#include <QtTest>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "engine/store/etcd_process.h"
#include "engine/store/store.h"
#include "tests/store/store_suite.h"
#include "tests/store/watch_collector.h"

using namespace orrery::store;
using namespace orrery::store::testing;

namespace {

const char* why(const orrery::api::Status& s) { return s.message().c_str(); }
#define CHECK_OK(expr)                                                 \
  do {                                                                 \
    const auto& checked_ = (expr);                                     \
    QVERIFY2(checked_.ok(), checked_.ok() ? "" : why(checked_.status())); \
  } while (0)

// A store that owns the etcd it talks to: destroying it closes the client, then stops etcd
// (SIGTERM), keeping the data directory for a reopen.
class OwningStore final : public Store {
 public:
  OwningStore(std::unique_ptr<EtcdProcess> etcd, std::unique_ptr<Store> inner)
      : etcd_(std::move(etcd)), inner_(std::move(inner)) {}
  ~OwningStore() override {
    inner_.reset();
    etcd_->stop();
  }
  orrery::api::Result<RangeResponse> range(const RangeRequest& r) override { return inner_->range(r); }
  orrery::api::Result<TxnResponse> txn(const TxnRequest& r) override { return inner_->txn(r); }
  orrery::api::Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& r,
                                                          WatchCallback cb) override {
    return inner_->watch(r, std::move(cb));
  }
  orrery::api::Status compact(int64_t revision) override { return inner_->compact(revision); }
  orrery::api::Result<StoreStats> stats() override { return inner_->stats(); }
  orrery::api::Result<std::vector<Member>> members() override { return inner_->members(); }
  void requestProgress(int64_t revision) override { inner_->requestProgress(revision); }

 private:
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<Store> inner_;
};

orrery::api::Result<std::unique_ptr<Store>> openOwned(const std::string& dir) {
  EtcdProcessOptions options;
  options.dataDir = dir + "/etcd";
  auto etcd = EtcdProcess::start(options);
  if (!etcd.ok()) return etcd.status();
  auto store = openStore((*etcd)->storeUrl());
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(
      std::make_unique<OwningStore>(std::move(etcd).value(), std::move(store).value()));
}

}  // namespace

class EtcdStoreTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    EtcdProcessOptions options;
    options.dataDir = dir_->filePath("etcd").toStdString();
    auto etcd = EtcdProcess::start(options);
    CHECK_OK(etcd);
    etcd_ = std::move(etcd).value();
  }
  void cleanup() {
    etcd_.reset();  // stops etcd
    dir_.reset();
  }

  void localEtcdRunsOnLoopbackWithOrreryNames() {
    QCOMPARE(etcd_->memberCount(), size_t{1});
    QCOMPARE(etcd_->memberName(0), std::string("orrery-etcd-0"));
    QVERIFY(etcd_->memberRunning(0));
    auto urls = etcd_->clientUrls();
    QCOMPARE(urls.size(), size_t{1});
    QVERIFY(urls[0].rfind("http://127.0.0.1:", 0) == 0);
    QCOMPARE(etcd_->storeUrl(), "etcd://" + urls[0].substr(7));
    QVERIFY(std::filesystem::is_directory(etcd_->memberDataDir(0)));
    // The process really is etcd, named as the brief of `orrery down` expects.
    QFile cmdline(QString("/proc/%1/cmdline").arg(etcd_->memberPid(0)));
    QVERIFY(cmdline.open(QIODevice::ReadOnly));
    QByteArray args = cmdline.readAll();
    QVERIFY(args.contains("--name=orrery-etcd-0"));
    QVERIFY(args.contains("--auto-compaction-retention=0"));

    pid_t pid = etcd_->memberPid(0);
    QVERIFY(etcd_->stop().isOk());
    QVERIFY(!etcd_->memberRunning(0));
    QVERIFY(::kill(pid, 0) != 0);  // gone and reaped
  }

  void statsAndMembersComeFromEtcd() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    CHECK_OK((*store)->create("/a", "1"));
    CHECK_OK((*store)->create("/b", "2"));
    auto st = (*store)->stats();
    CHECK_OK(st);
    QCOMPARE(st->backend, std::string("etcd"));
    QCOMPARE(st->revision, int64_t{3});
    QCOMPARE(st->keys, int64_t{2});
    QCOMPARE(st->compactRevision, int64_t{0});
    QVERIFY(st->dbSizeBytes > 0);
    auto members = (*store)->members();
    CHECK_OK(members);
    QCOMPARE(members->size(), size_t{1});
    QCOMPARE(members->front().name, std::string("orrery-etcd-0"));
    QCOMPARE(members->front().clientUrls, etcd_->clientUrls());
    QVERIFY(members->front().healthy);
  }

  void compactsItsHistoryEveryInterval() {
    // Orrery starts etcd without auto-compaction: the store compacts, as kube-apiserver's
    // compactor does, up to the revision each interval started at. A 300 ms interval stands
    // for the 5 minutes.
    auto options = parseEtcdUrl(etcd_->storeUrl());
    CHECK_OK(options);
    options->compactionInterval = std::chrono::milliseconds(300);
    auto store = openEtcdStore(*options);
    CHECK_OK(store);
    auto first = (*store)->create("/registry/configmaps/default/c", "1");
    CHECK_OK(first);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    RangeRequest atFirst;
    atFirst.key = "/registry/configmaps/default/c";
    atFirst.revision = *first;
    CHECK_OK((*store)->range(atFirst));  // the interval it was written in is kept
    TxnRequest update;
    update.success.push_back(Operation::put("/registry/configmaps/default/c", "2"));
    auto second = (*store)->txn(update);
    CHECK_OK(second);
    // Within a few intervals compaction reaches the first write's revision: below it, 410.
    QTRY_VERIFY_WITH_TIMEOUT((*store)->stats().ok() && (*store)->stats()->compactRevision >= *first, 10000);
    auto st = (*store)->stats();
    CHECK_OK(st);
    QVERIFY(st->compactRevision <= st->revision);
    RangeRequest below;
    below.key = atFirst.key;
    below.revision = *first - 1;
    auto gone = (*store)->range(below);
    QVERIFY(!gone.ok());
    QCOMPARE(gone.status().code(), 410);
    RangeRequest latest;
    latest.key = atFirst.key;
    auto now = (*store)->range(latest);
    CHECK_OK(now);
    QCOMPARE(now->kvs.size(), size_t{1});
    QCOMPARE(now->kvs[0].value, std::string("2"));
  }

  void binaryKeysAndValuesRoundTrip() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    const std::string key = std::string("/bin/\xff\x00\x01", 8);
    const std::string value = std::string("line1\nline2\0\xfe{\"x\":1}", 20);
    CHECK_OK((*store)->create(key, value));
    auto kv = (*store)->get(key);
    CHECK_OK(kv);
    QVERIFY(kv->has_value());
    QCOMPARE((*kv)->key, key);
    QCOMPARE((*kv)->value, value);
    // A prefix ending in 0xff: its range end is computed by carrying, as etcd's clients do.
    RangeRequest r;
    r.key = std::string("/bin/\xff", 6);
    r.prefix = true;
    auto res = (*store)->range(r);
    CHECK_OK(res);
    QCOMPARE(res->kvs.size(), size_t{1});
  }

  void largeValuesRoundTripAndTooLargeIs413() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    // 2 MiB: above etcd's default request limit, within the one the local etcd is given.
    const std::string big(2 << 20, 'x');
    CHECK_OK((*store)->create("/big/a", big));
    auto kv = (*store)->get("/big/a");
    CHECK_OK(kv);
    QCOMPARE((*kv)->value.size(), big.size());
    auto tooBig = (*store)->create("/big/b", std::string(5 << 20, 'y'));
    QVERIFY(!tooBig.ok());
    QVERIFY2(tooBig.status().code() == 413, why(tooBig.status()));
    QVERIFY2(tooBig.status().message().find("too large") != std::string::npos, why(tooBig.status()));
  }

  void urlsParseIntoEndpointsAndTls() {
    auto plain = parseEtcdUrl("etcd://127.0.0.1:2379,127.0.0.1:22379");
    CHECK_OK(plain);
    QCOMPARE(plain->endpoints,
             (std::vector<std::string>{"http://127.0.0.1:2379", "http://127.0.0.1:22379"}));
    QVERIFY(plain->caFile.empty());
    auto tls = parseEtcdUrl("etcd://10.0.0.1:2379?cacert=/p/ca.crt&cert=/p/c.crt&key=/p/c.key");
    CHECK_OK(tls);
    QCOMPARE(tls->endpoints, std::vector<std::string>{"https://10.0.0.1:2379"});
    QCOMPARE(tls->caFile, std::string("/p/ca.crt"));
    QCOMPARE(tls->certFile, std::string("/p/c.crt"));
    QCOMPARE(tls->keyFile, std::string("/p/c.key"));
    QCOMPARE(parseEtcdUrl("etcd://").status().code(), 400);
    QCOMPARE(parseEtcdUrl("etcd://h:1?cert=/c.crt").status().code(), 400);  // no key
    auto unknown = parseEtcdUrl("etcd://h:1?password=x");
    QCOMPARE(unknown.status().code(), 400);
    QVERIFY(unknown.status().message().find("password") != std::string::npos);
  }

  void unreachableEtcdIs503NamingTheEndpoints() {
    const std::string url = etcd_->storeUrl();
    const std::string endpoint = etcd_->clientUrls()[0];
    QVERIFY(etcd_->stop().isOk());
    auto store = openStore(url);
    QVERIFY(!store.ok());
    QCOMPARE(store.status().code(), 503);
    QCOMPARE(store.status().reason(), std::string("ServiceUnavailable"));
    QVERIFY2(store.status().message().find(endpoint) != std::string::npos, why(store.status()));
    QVERIFY2(store.status().message().find("start etcd") != std::string::npos, why(store.status()));
  }

  void closingTheStoreEndsWatchesWith503() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    WatchCollector got;
    WatchRequest w;
    w.key = "/";
    auto handle = (*store)->watch(w, got.callback());
    CHECK_OK(handle);
    CHECK_OK((*store)->create("/a", "1"));
    QVERIFY(got.waitForEvents(1));
    store->reset();
    QVERIFY(got.waitForTerminal());
    QCOMPARE(got.terminal().status.code(), 503);
    QCOMPARE(got.events().size(), size_t{1});
    (*handle)->cancel();  // after the store is gone: harmless
  }

  void manyWatchersShareOneStreamAndSeeTheirOwnKeys() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    constexpr int kWatchers = 20;
    std::vector<std::unique_ptr<WatchCollector>> got;
    std::vector<std::unique_ptr<WatchHandle>> handles;
    for (int i = 0; i < kWatchers; ++i) {
      got.push_back(std::make_unique<WatchCollector>());
      WatchRequest w;
      w.key = "/r" + std::to_string(i) + "/";
      auto h = (*store)->watch(w, got.back()->callback());
      CHECK_OK(h);
      handles.push_back(std::move(h).value());
    }
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < kWatchers; ++i) {
        TxnRequest t;
        t.success.push_back(Operation::put("/r" + std::to_string(i) + "/k", std::to_string(round)));
        CHECK_OK((*store)->txn(t));
      }
    }
    for (int i = 0; i < kWatchers; ++i) {
      QVERIFY(got[i]->waitForEvents(3));
      auto events = got[i]->events();
      QCOMPARE(events.size(), size_t{3});
      for (const auto& e : events) QCOMPARE(e.kv.key, "/r" + std::to_string(i) + "/k");
      QCOMPARE(events.back().kv.value, std::string("2"));
      QCOMPARE(events.back().kv.version, int64_t{3});
    }
  }

  void sequentialRequestsReuseOneConnection() {
    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    const int port = std::stoi(etcd_->clientUrls()[0].substr(etcd_->clientUrls()[0].rfind(':') + 1));
    const int timeWaitBefore = socketsTo(port, "06");
    for (int i = 0; i < 200; ++i) CHECK_OK((*store)->create("/c/k" + std::to_string(i), "v"));
    // A connection per request would leave ~200 client sockets in TIME_WAIT.
    QVERIFY2(socketsTo(port, "06") - timeWaitBefore < 5,
             qPrintable(QString("%1 sockets in TIME_WAIT").arg(socketsTo(port, "06"))));
  }

  void tlsWithClientCertificates() {
    etcd_.reset();
    const QString certs = dir_->filePath("certs");
    QVERIFY(QDir().mkpath(certs));
    // A throwaway CA, a serving certificate for 127.0.0.1 and a client certificate.
    const char* script = R"(set -e
      gen() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $1.key -out $1.csr -subj /CN=$2 2>/dev/null; }
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=orrery-test-ca 2>/dev/null
      gen server 127.0.0.1; gen client orrery-test-client
      printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > server.ext
      printf 'extendedKeyUsage=clientAuth\n' > client.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out server.crt 2>/dev/null
      openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext -out client.crt 2>/dev/null)";
    QProcess sh;
    sh.setWorkingDirectory(certs);
    sh.start("/bin/sh", {"-c", script});
    QVERIFY(sh.waitForFinished(30000));
    QVERIFY2(sh.exitCode() == 0, sh.readAllStandardError().constData());
    auto file = [&](const char* name) { return (certs + "/" + name).toStdString(); };

    EtcdProcessOptions options;
    options.dataDir = dir_->filePath("etcd-tls").toStdString();
    options.tls.serverCertFile = file("server.crt");
    options.tls.serverKeyFile = file("server.key");
    options.tls.caFile = file("ca.crt");
    options.tls.clientCertFile = file("client.crt");
    options.tls.clientKeyFile = file("client.key");
    auto etcd = EtcdProcess::start(options);
    CHECK_OK(etcd);
    etcd_ = std::move(etcd).value();
    QVERIFY(etcd_->clientUrls()[0].rfind("https://127.0.0.1:", 0) == 0);
    QVERIFY(etcd_->storeUrl().find("?cacert=") != std::string::npos);

    auto store = openStore(etcd_->storeUrl());
    CHECK_OK(store);
    WatchCollector got;
    WatchRequest w;
    w.key = "/tls/";
    auto handle = (*store)->watch(w, got.callback());
    CHECK_OK(handle);
    CHECK_OK((*store)->create("/tls/a", "secret"));
    QVERIFY(got.waitForEvents(1));
    QCOMPARE(got.events()[0].kv.value, std::string("secret"));

    // Without a client certificate etcd refuses the handshake: a 503 that names the endpoint.
    const std::string port = etcd_->clientUrls()[0].substr(etcd_->clientUrls()[0].rfind(':') + 1);
    auto anonymous = openStore("etcd://127.0.0.1:" + port + "?cacert=" + file("ca.crt"));
    QVERIFY(!anonymous.ok());
    QCOMPARE(anonymous.status().code(), 503);
    QVERIFY2(anonymous.status().message().find("https://127.0.0.1:" + port) != std::string::npos,
             why(anonymous.status()));
  }

 private:
  // Sockets in /proc/net/tcp whose remote port is `port`, in the given state (06 TIME_WAIT).
  static int socketsTo(int port, const char* state) {
    QFile f("/proc/net/tcp");
    if (!f.open(QIODevice::ReadOnly)) return -1;
    int n = 0;
    const QString remote = QString(":%1").arg(port, 4, 16, QChar('0')).toUpper();
    for (const QByteArray& line : f.readAll().split('\n')) {
      const auto fields = QString(line).simplified().split(' ');
      if (fields.size() > 3 && fields[2].endsWith(remote) && fields[3] == state) ++n;
    }
    return n;
  }

  std::unique_ptr<QTemporaryDir> dir_;
  std::unique_ptr<EtcdProcess> etcd_;
};

int main(int argc, char** argv) {
  StoreFactory etcd{"etcd", &openOwned};
  StoreSuite suite(etcd);
  EtcdStoreTest specific;
  int failures = QTest::qExec(&suite, argc, argv);
  failures += QTest::qExec(&specific, argc, argv);
  return failures;
}

#include "etcd_store_test.moc"
