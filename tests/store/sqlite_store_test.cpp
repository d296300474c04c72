// The SQLite backend: the shared Store suite, plus what only a file-backed store can show
// (kill -9 durability, bounded file size under churn, the file's own layout).

#include <QtTest>

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "engine/store/store.h"
#include "tests/store/store_suite.h"
#include "tests/store/watch_collector.h"

using namespace orrery::store;
using namespace orrery::store::testing;

namespace {

const char* why(const orrery::api::Status& s) { return s.message().c_str(); }
// Evaluates its argument once: the argument is often the write being checked.
#define CHECK_OK(expr)                                                 \
  do {                                                                 \
    const auto& checked_ = (expr);                                     \
    QVERIFY2(checked_.ok(), checked_.ok() ? "" : why(checked_.status())); \
  } while (0)

std::unique_ptr<Store> openAt(const std::string& path, int64_t retain = 10000,
                              bool autoCompact = false, int64_t watchBuffer = 10000) {
  SqliteOptions o;
  o.path = path;
  o.retainRevisions = retain;
  o.autoCompact = autoCompact;
  o.watchBufferEvents = watchBuffer;
  auto s = openSqliteStore(o);
  if (!s.ok()) {
    qWarning("open %s: %s", path.c_str(), why(s.status()));
    return nullptr;
  }
  return std::move(s).value();
}

int64_t fileSize(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

std::string pod(int i, int generation) {
  // About the size of a small pod object.
  std::string s = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p)" + std::to_string(i) +
                  R"(","namespace":"default","generation":)" + std::to_string(generation) +
                  R"(},"spec":{"containers":[{"name":"app","image":"registry.local/app:1.0"}]},)";
  s += R"("status":{"phase":"Running","podIP":"10.244.0.)" + std::to_string(i % 250) + "\"}}";
  return s;
}

}  // namespace

class SqliteStoreTest : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    dir_ = std::make_unique<QTemporaryDir>();
    QVERIFY(dir_->isValid());
    path_ = dir_->filePath("orrery.db").toStdString();
  }
  void cleanup() { dir_.reset(); }

  void valuesAreReadableJsonInTheFile() {
    auto store = openAt(path_);
    QVERIFY(store);
    CHECK_OK(store->create("/registry/pods/default/p1", pod(1, 1)));
    store.reset();
    sqlite3* db = nullptr;
    QCOMPARE(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    QCOMPARE(sqlite3_prepare_v2(db, "SELECT value, mod_rev FROM kv_values WHERE key = '/registry/pods/default/p1'",
                                -1, &st, nullptr),
             SQLITE_OK);
    QCOMPARE(sqlite3_step(st), SQLITE_ROW);
    QCOMPARE(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), pod(1, 1));
    QCOMPARE(sqlite3_column_int64(st, 1), sqlite3_int64{2});
    sqlite3_finalize(st);
    QCOMPARE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
    QCOMPARE(sqlite3_step(st), SQLITE_ROW);
    QCOMPARE(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))),
             std::string("wal"));
    sqlite3_finalize(st);
    sqlite3_close(db);
  }

  // A file written by schema 1 (each current value also in kv) opens with every key, value,
  // revision and version as it was, a value missing from history included, and takes writes.
  void movesASchema1FileToSchema2() {
    {
      sqlite3* db = nullptr;
      QCOMPARE(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
      const std::string p3 = pod(3, 1), p4 = pod(4, 2), p4old = pod(4, 1), p5 = pod(5, 1);
      std::string sql = R"sql(
        PRAGMA journal_mode=WAL;
        CREATE TABLE kv(key TEXT NOT NULL UNIQUE, value TEXT NOT NULL,
                        create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL);
        CREATE TABLE history(id INTEGER PRIMARY KEY, revision INTEGER NOT NULL, sub INTEGER NOT NULL,
                             key TEXT NOT NULL, value TEXT NOT NULL, create_rev INTEGER NOT NULL,
                             version INTEGER NOT NULL, deleted INTEGER NOT NULL, prev_rev INTEGER NOT NULL);
        CREATE INDEX history_key ON history(key, revision);
        CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('schema', 1), ('revision', 5), ('compact_revision', 0),
                                ('compact_cursor_rev', 0), ('compact_cursor_sub', -1);
      )sql";
      sql += "INSERT INTO history VALUES (2 * 1048576, 2, 0, '/registry/pods/default/p3', '" + p3 + "', 2, 1, 0, 0);";
      sql += "INSERT INTO history VALUES (3 * 1048576, 3, 0, '/registry/pods/default/p4', '" + p4old + "', 3, 1, 0, 0);";
      sql += "INSERT INTO history VALUES (4 * 1048576, 4, 0, '/registry/pods/default/p4', '" + p4 + "', 3, 2, 0, 3);";
      sql += "INSERT INTO kv VALUES ('/registry/pods/default/p3', '" + p3 + "', 2, 2, 1);";
      sql += "INSERT INTO kv VALUES ('/registry/pods/default/p4', '" + p4 + "', 3, 4, 2);";
      // Its history row lost: the migration must keep the value all the same.
      sql += "INSERT INTO kv VALUES ('/registry/pods/default/p5', '" + p5 + "', 5, 5, 1);";
      char* error = nullptr;
      QVERIFY2(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK, error ? error : "");
      sqlite3_close(db);
    }
    auto store = openAt(path_);
    QVERIFY(store);
    RangeRequest all;
    all.key = "/registry/pods/";
    all.prefix = true;
    auto got = store->range(all);
    QVERIFY(got.ok());
    QCOMPARE(got->kvs.size(), size_t{3});
    QCOMPARE(got->kvs[0].value, pod(3, 1));
    QCOMPARE(got->kvs[1].value, pod(4, 2));
    QCOMPARE(got->kvs[1].modRevision, int64_t{4});
    QCOMPARE(got->kvs[1].createRevision, int64_t{3});
    QCOMPARE(got->kvs[1].version, int64_t{2});
    QCOMPARE(got->kvs[2].value, pod(5, 1));
    QCOMPARE(got->kvs[2].modRevision, int64_t{5});
    // Writes go on from the file's revision, and a compare-and-swap sees the migrated version.
    auto swapped = store->compareAndSwap("/registry/pods/default/p4", 4, pod(4, 3));
    QVERIFY(swapped.ok() && swapped->succeeded);
    QCOMPARE(swapped->revision, int64_t{6});
    auto p4 = store->get("/registry/pods/default/p4");
    QVERIFY(p4.ok() && *p4);
    QCOMPARE((*p4)->value, pod(4, 3));
    QCOMPARE((*p4)->version, int64_t{3});
    store.reset();
    auto again = openAt(path_);  // schema 2 now: opens as it is
    QVERIFY(again);
    auto p3 = again->get("/registry/pods/default/p3");
    QVERIFY(p3.ok() && *p3);
    QCOMPARE((*p3)->value, pod(3, 1));
    again.reset();

    // A file of a later schema is refused, saying why, not misread.
    {
      sqlite3* db = nullptr;
      QCOMPARE(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
      QCOMPARE(sqlite3_exec(db, "UPDATE meta SET value = 3 WHERE name = 'schema'", nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(db);
    }
    SqliteOptions o;
    o.path = path_;
    auto later = openSqliteStore(o);
    QVERIFY(!later.ok());
    QVERIFY2(later.status().message().find("store schema 3") != std::string::npos, later.status().message().c_str());
  }

  void statsAndMembersDescribeTheFile() {
    auto store = openAt(path_);
    QVERIFY(store);
    CHECK_OK(store->create("/a", "1"));
    CHECK_OK(store->create("/b", "2"));
    auto st = store->stats();
    CHECK_OK(st);
    QCOMPARE(st->backend, std::string("sqlite"));
    QCOMPARE(st->revision, int64_t{3});
    QCOMPARE(st->keys, int64_t{2});
    QVERIFY(st->dbSizeBytes > 0);
    auto members = store->members();
    CHECK_OK(members);
    QCOMPARE(members->size(), size_t{1});
    QCOMPARE(members->front().name, std::string("orrery.db"));
    QCOMPARE(members->front().clientUrls, std::vector<std::string>{"file:" + path_});
    QVERIFY(members->front().healthy);
  }

  void openStoreUnderstandsUrls() {
    {
      auto s = openStore("sqlite://" + path_);
      CHECK_OK(s);
      CHECK_OK((*s)->create("/x", "1"));
    }
    {
      auto s = openStore(path_);  // a bare path is SQLite too, and the same file
      CHECK_OK(s);
      auto kv = (*s)->get("/x");
      CHECK_OK(kv);
      QVERIFY(kv->has_value());
    }
    // An etcd URL opens the etcd backend; nothing listens on port 1, so it says so.
    auto etcd = openStore("etcd://127.0.0.1:1");
    QVERIFY(!etcd.ok());
    QCOMPARE(etcd.status().code(), 503);
    QVERIFY2(etcd.status().message().find("etcd is unreachable at http://127.0.0.1:1") != std::string::npos,
             etcd.status().message().c_str());
    auto bogus = openStore("redis://localhost");
    QVERIFY(!bogus.ok());
    QCOMPARE(bogus.status().code(), 400);
  }

  void sqliteFailuresAre500WithSqlitesMessage() {
    // The path is a directory: SQLite cannot open it as a database.
    auto s = openSqliteStore(SqliteOptions{dir_->path().toStdString(), 100, false});
    QVERIFY(!s.ok());
    QCOMPARE(s.status().code(), 500);
    QCOMPARE(s.status().reason(), std::string("InternalError"));
    QVERIFY2(s.status().message().find("sqlite") != std::string::npos, why(s.status()));

    // Not a database at all.
    QFile junk(QString::fromStdString(path_));
    QVERIFY(junk.open(QIODevice::WriteOnly));
    junk.write(QByteArray(8192, 'x'));
    junk.close();
    auto j = openSqliteStore(SqliteOptions{path_, 100, false});
    QVERIFY(!j.ok());
    QCOMPARE(j.status().code(), 500);
    QVERIFY2(j.status().message().find("not a database") != std::string::npos, why(j.status()));
  }

  void closingTheStoreEndsWatchesWith503() {
    auto store = openAt(path_);
    QVERIFY(store);
    WatchCollector got;
    WatchRequest w;
    w.key = "/";
    auto handle = store->watch(w, got.callback());
    CHECK_OK(handle);
    CHECK_OK(store->create("/a", "1"));
    QVERIFY(got.waitForEvents(1));
    store.reset();
    QVERIFY(got.waitForTerminal());
    QCOMPARE(got.terminal().status.code(), 503);
    QCOMPARE(got.events().size(), size_t{1});
    (*handle)->cancel();  // after the store is gone: harmless
  }

  // What a writer attaches to a put reaches the live watchers with its event, the same object
  // for each; a watch that starts in the past reads history, which has no attachments (the
  // API server's watch cache then reads the value itself).
  void liveWatchersGetAPutsAttachment() {
    struct Note : Attachment {
      int n = 7;
    };
    auto store = openAt(path_);
    QVERIFY(store);
    WatchCollector first, second;
    WatchRequest w;
    w.key = "/n/";
    auto a = store->watch(w, first.callback());
    auto b = store->watch(w, second.callback());
    CHECK_OK(a);
    CHECK_OK(b);
    auto note = std::make_shared<const Note>();
    CHECK_OK(store->create("/n/a", "1", note));
    auto cas = store->compareAndSwap("/n/a", 2, "2", note);
    CHECK_OK(cas);
    QVERIFY(cas->succeeded);
    CHECK_OK(store->create("/n/b", "3"));  // without one
    QVERIFY(first.waitForEvents(3) && second.waitForEvents(3));
    for (auto* got : {&first, &second}) {
      auto events = got->events();
      QCOMPARE(events[0].attachment.get(), static_cast<const Attachment*>(note.get()));
      QCOMPARE(events[1].attachment.get(), static_cast<const Attachment*>(note.get()));
      QVERIFY(!events[2].attachment);
    }
    WatchCollector replayed;
    w.startRevision = 1;
    auto c = store->watch(w, replayed.callback());
    CHECK_OK(c);
    QVERIFY(replayed.waitForEvents(3));
    for (const auto& e : replayed.events()) QVERIFY(!e.attachment);
  }

  void slowWatcherCatchesUpFromHistory() {
    // A buffer of 16 events; the watcher stalls while 400 events arrive, so it must drop its
    // queue and replay from history — and still see every event exactly once, in order.
    auto store = openAt(path_, 10000, false, 16);
    QVERIFY(store);
    std::atomic<bool> release{false};
    WatchCollector got;
    auto inner = got.callback();
    WatchRequest w;
    w.key = "/s/";
    auto handle = store->watch(w, [&](const WatchResponse& r) {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      inner(r);
    });
    CHECK_OK(handle);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 100; ++i) (void)store->create("/s/" + std::to_string(t) + "/" + std::to_string(i), "v");
      });
    }
    for (auto& th : writers) th.join();
    release = true;
    QVERIFY(got.waitForEvents(400));
    QTest::qWait(50);
    auto events = got.events();
    QCOMPARE(events.size(), size_t{400});
    for (size_t i = 0; i < events.size(); ++i) {
      QCOMPARE(events[i].kv.modRevision, static_cast<int64_t>(i + 2));
    }
    QCOMPARE(got.terminals(), 0);
  }

  void slowWatcherOvertakenByCompactionGets410() {
    auto store = openAt(path_, 50, true, 16);
    QVERIFY(store);
    std::atomic<bool> release{false};
    WatchCollector got;
    auto inner = got.callback();
    WatchRequest w;
    w.key = "/s/";
    auto handle = store->watch(w, [&](const WatchResponse& r) {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      inner(r);
    });
    CHECK_OK(handle);
    for (int i = 0; i < 400; ++i) CHECK_OK(store->create("/s/" + std::to_string(i), "v"));
    release = true;
    QVERIFY(got.waitForTerminal());
    auto end = got.terminal();
    QCOMPARE(end.status.code(), 410);
    QVERIFY(end.compactRevision > 2);
    auto st = store->stats();
    CHECK_OK(st);
    QVERIFY(st->compactRevision >= end.compactRevision);
  }

  void acknowledgedWritesSurviveKill9() {
    int fds[2];
    QCOMPARE(pipe(fds), 0);
    pid_t child = fork();
    QVERIFY(child >= 0);
    if (child == 0) {
      // The child: write from 4 threads, report each key only after its write is acknowledged.
      ::close(fds[0]);
      auto store = openAt(path_);
      if (!store) _exit(2);
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
          for (int32_t i = 0;; ++i) {
            int32_t id = t * 1000000 + i;
            if (!store->create("/registry/pods/d/k" + std::to_string(id), pod(id, 1)).ok()) _exit(3);
            if (::write(fds[1], &id, sizeof id) != sizeof id) _exit(4);
          }
        });
      }
      for (auto& th : threads) th.join();
      _exit(0);
    }
    ::close(fds[1]);
    std::set<int32_t> acked;
    int32_t id = 0;
    while (acked.size() < 1500) {
      ssize_t n = ::read(fds[0], &id, sizeof id);
      if (n != sizeof id) break;
      acked.insert(id);
    }
    QVERIFY(::kill(child, SIGKILL) == 0);
    int status = 0;
    QCOMPARE(::waitpid(child, &status, 0), child);
    QVERIFY(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    // Acknowledgements the child sent before it died are in the pipe still: they count too.
    while (::read(fds[0], &id, sizeof id) == sizeof id) acked.insert(id);
    ::close(fds[0]);
    QVERIFY(acked.size() >= 1500);

    auto store = openAt(path_);
    QVERIFY(store);
    RangeRequest r;
    r.key = "/registry/pods/d/";
    r.prefix = true;
    r.keysOnly = true;
    auto all = store->range(r);
    CHECK_OK(all);
    std::set<std::string> present;
    for (const auto& kv : all->kvs) present.insert(kv.key);
    int missing = 0;
    for (int32_t a : acked) missing += present.count("/registry/pods/d/k" + std::to_string(a)) ? 0 : 1;
    QCOMPARE(missing, 0);
    // Revisions continue after the crash.
    auto next = store->create("/after-crash", "1");
    CHECK_OK(next);
    QCOMPARE(*next, all->revision + 1);
    qInfo("%zu acknowledged writes, %zu keys on disk after kill -9", acked.size(), present.size());
  }

  void fileStopsGrowingUnderChurn() {
    // 100 keys overwritten 50,000 times with auto-compaction keeping 1,000 revisions.
    auto store = openAt(path_, 1000, true);
    QVERIFY(store);
    constexpr int kKeys = 100, kWrites = 50000, kThreads = 20;
    std::atomic<int> next{0};
    std::atomic<int> failures{0};
    std::atomic<int64_t> sizeAtFifth{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Each thread owns keys t, t+20, ...: no two writers race on one key.
        for (int n = 0;; ++n) {
          int i = next.fetch_add(1);
          if (i >= kWrites) return;
          int key = t + kThreads * (n % (kKeys / kThreads));
          TxnRequest req;
          req.success.push_back(Operation::put("/registry/pods/default/p" + std::to_string(key), pod(key, n)));
          if (!store->txn(req).ok()) ++failures;
          if (i == kWrites / 5) sizeAtFifth = fileSize(path_);
        }
      });
    }
    for (auto& th : threads) th.join();
    QCOMPARE(failures.load(), 0);
    auto st = store->stats();
    CHECK_OK(st);
    QCOMPARE(st->revision, int64_t{1 + kWrites});
    QCOMPARE(st->keys, int64_t{kKeys});
    QVERIFY(st->revision - st->compactRevision <= 1000 + 200);
    int64_t db = fileSize(path_), wal = fileSize(path_ + "-wal");
    qInfo("after %d writes: db %lld bytes (at 1/5: %lld), wal %lld bytes, compacted at %lld",
          kWrites, static_cast<long long>(db), static_cast<long long>(sizeAtFifth.load()),
          static_cast<long long>(wal), static_cast<long long>(st->compactRevision));
    QVERIFY2(db <= 3 * 1024 * 1024, "the database file grew past 3 MiB");
    QVERIFY2(db <= sizeAtFifth.load() + 512 * 1024, "the database file kept growing");
    QVERIFY2(wal <= 12 * 1024 * 1024, "the WAL grew past its limit");
    // Compacting everything still leaves every live key readable at the compacted revision.
    QVERIFY(store->compact(st->revision).isOk());
    RangeRequest r;
    r.key = "/registry/pods/default/";
    r.prefix = true;
    r.revision = st->revision;
    auto old = store->range(r);
    CHECK_OK(old);
    QCOMPARE(old->count, int64_t{kKeys});
  }

  void compactsEachIntervalUpToWhereThePreviousOneEnded() {
    // kube-apiserver's compactor: at the end of each interval, history is compacted up to the
    // revision the interval started at. A 1 s interval stands for the 5 minutes: long beside
    // the few writes each interval holds here, even on a loaded machine's disk.
    SqliteOptions o;
    o.path = path_;
    o.compactionInterval = std::chrono::milliseconds(1000);
    auto opened = openSqliteStore(o);
    CHECK_OK(opened);
    auto store = std::move(opened).value();
    // Writes the key, then answers the store's revisions (none if either failed).
    auto writeAndStats = [&](const std::string& value) -> std::optional<StoreStats> {
      TxnRequest req;
      req.success.push_back(Operation::put("/registry/configmaps/default/c", value));
      if (!store->txn(req).ok()) return std::nullopt;
      auto st = store->stats();
      if (!st.ok()) return std::nullopt;
      return *st;
    };
    auto first = writeAndStats("1");
    QVERIFY(first);
    QCOMPARE(first->compactRevision, int64_t{0});  // within the first interval: all history kept
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto second = writeAndStats("2");
    QVERIFY(second);
    // The first interval started at the revision the store opened at (1).
    QCOMPARE(second->compactRevision, int64_t{1});
    for (int i = 0; i < 5; ++i) QVERIFY(writeAndStats("more"));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto third = writeAndStats("3");
    QVERIFY(third);
    // The second interval started at the write that ended the first.
    QCOMPARE(third->compactRevision, second->revision);
    RangeRequest r;
    r.key = "/registry/configmaps/default/c";
    r.revision = second->revision - 1;
    auto gone = store->range(r);
    QVERIFY(!gone.ok());
    QCOMPARE(gone.status().code(), 410);
    r.revision = second->revision;
    auto kept = store->range(r);
    CHECK_OK(kept);
    QCOMPARE(kept->kvs.size(), size_t{1});
    QCOMPARE(kept->kvs[0].value, std::string("2"));
  }

 private:
  std::unique_ptr<QTemporaryDir> dir_;
  std::string path_;
};

int main(int argc, char** argv) {
  StoreFactory sqlite{"sqlite", [](const std::string& dir) {
                        SqliteOptions o;
                        o.path = dir + "/orrery.db";
                        o.autoCompact = false;
                        return openSqliteStore(o);
                      }};
  StoreSuite suite(sqlite);
  SqliteStoreTest specific;
  int failures = QTest::qExec(&suite, argc, argv);
  failures += QTest::qExec(&specific, argc, argv);
  return failures;
}

#include "sqlite_store_test.moc"
