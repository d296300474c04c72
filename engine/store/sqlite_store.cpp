// The SQLite backend of the store.
//
// Layout of the database (values are the JSON text callers give, readable with sqlite3):
//   kv(key, hid, create_rev, mod_rev, version)             the current state; its value is
//                                                          history's row `hid` (the view
//                                                          kv_values shows them together)
//   history(id, revision, sub, key, value, create_rev, version, deleted, prev_rev)
//                                                          every change, for reads at a past
//                                                          revision, watch replay, compaction
//   meta(name, value)                                      revision, compact_revision, and the
//                                                          physical compaction cursor
// A value is written once, into history (schema 2). Schema 1 kept a second copy in kv, which
// took half of the bytes every write sent to the WAL and to the checkpoints; a kv row is now
// ~60 bytes, and compaction never removes the history row a key's current version is (it
// removes only versions that a newer one supersedes, and deletions). open() moves a schema-1
// file over.
//
// Threads:
//   writer      the only thread that writes. Callers queue txns; the writer takes every queued
//               txn into ONE SQLite transaction (one WAL fsync), evaluates each txn against the
//               state left by the txns before it, gives each writing txn its own revision,
//               commits, hands the events to the dispatcher, and then acknowledges them all.
//               Compaction runs here too, in chunks of ≤ kCompactChunk rows between batches.
//   dispatcher  copies committed events into the buffers of the watchers that match.
//   per watcher one thread that replays history, then delivers its buffer; a watcher whose
//               buffer passes SqliteOptions::watchBufferEvents drops it and replays from
//               history again (etcd's "unsynced" watchers), so a slow watcher costs bounded
//               memory and never blocks the writer or other watchers.
//   checkpointer copies the WAL into the database file (SQLite's auto-checkpoint would do it
//               inside the writer's commits); the writer only steps in if it falls far behind.
//   readers     range() and read-only txns run on a small pool of WAL reader connections, each
//               in its own read transaction, so they never wait behind the writer.

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "engine/store/interval_compaction.h"
#include "engine/store/sqlite_db.h"
#include "engine/store/store.h"
#include "engine/store/watch_hub.h"

namespace orrery::store {
namespace {

using sqlite::Conn;
using sqlite::Query;

constexpr size_t kMaxBatch = 4096;         // txns per SQLite transaction
constexpr int64_t kCompactChunk = 500;     // history rows examined per compaction transaction
constexpr int64_t kReplayChunk = 1000;     // history rows read per watch replay step
// Idle reader connections kept open. Opening one maps the database again, so under many
// concurrent readers (the scheduler's bind workers, pod creators) a small pool would open and
// close connections on every request.
constexpr size_t kMaxIdleReaders = 64;
// WAL size (pages) at which the checkpointer thread copies the WAL into the database, and the
// size at which the writer does it itself because the checkpointer fell behind.
constexpr int kCheckpointPages = 1000;
constexpr int kWriterCheckpointPages = 2000;
// history.id = revision * kSubSpan + sub: the rowid orders rows by (revision, sub), so rows
// are appended at the end of the table and revision ranges are rowid ranges.
constexpr int64_t kSubSpan = int64_t{1} << 20;

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("store")) return existing;
    try {
      return spdlog::stderr_color_mt("store");
    } catch (...) {
      return spdlog::default_logger();
    }
  }();
  return instance;
}

using internal::HubWatcher;
using internal::KeyRange;
using internal::keyRange;
using internal::nameThread;
using internal::WatchHub;

Status closedStatus() { return Status::serviceUnavailable("the store is closed"); }
Status compactedStatus() { return Status::expired("required revision has been compacted"); }
Status futureStatus() { return Status::badRequest("required revision is a future revision"); }

// ---- Key ranges, as etcd reads them (internal::KeyRange).

// SQL condition on `key` using parameters ?first (and ?first+1).
std::string keyCondition(const KeyRange& r, int first) {
  if (r.single) return "key = ?" + std::to_string(first);
  std::string w = "key >= ?" + std::to_string(first);
  if (r.end) w += " AND key < ?" + std::to_string(first + 1);
  return w;
}

// A kv row's value: its history row's.
constexpr const char* kCurrentValue = "(SELECT value FROM history WHERE id = kv.hid)";

void bindRange(Query& q, const KeyRange& r, int first) {
  q.bind(first, r.start);
  if (!r.single && r.end) q.bind(first + 1, std::string_view(*r.end));
}

// ---- Reads shared by the writer (inside its transaction) and the readers.

struct Row {
  bool exists = false;
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t version = 0;
};

Status readRow(Conn& c, const std::string& key, Row& row) {
  static const std::string kSql =  // built once: every write reads its key's row
      std::string("SELECT ") + kCurrentValue + ", create_rev, mod_rev, version FROM kv WHERE key = ?1";
  Query q(c, kSql);
  q.bind(1, key);
  row = Row{};
  if (q.step()) {
    row.exists = true;
    row.value = q.text(0);
    row.createRevision = q.integer(1);
    row.modRevision = q.integer(2);
    row.version = q.integer(3);
  }
  return q.status();
}

Status rangeCurrent(Conn& c, const KeyRange& kr, int64_t limit, bool keysOnly, bool countOnly,
                    RangeResponse& out) {
  if (!countOnly) {
    Query q(c, std::string("SELECT key, ") + (keysOnly ? "''" : kCurrentValue) +
                   ", create_rev, mod_rev, version FROM kv WHERE " + keyCondition(kr, 1) +
                   " ORDER BY key LIMIT ?3");
    bindRange(q, kr, 1);
    q.bind(3, limit > 0 ? limit : int64_t{-1});
    while (q.step()) {
      out.kvs.push_back(KeyValue{q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4)});
    }
    if (!q.status().isOk()) return q.status();
  }
  if (countOnly || (limit > 0 && static_cast<int64_t>(out.kvs.size()) == limit)) {
    Query q(c, "SELECT count(*) FROM kv WHERE " + keyCondition(kr, 1));
    bindRange(q, kr, 1);
    if (q.step()) out.count = q.integer(0);
    if (!q.status().isOk()) return q.status();
  } else {
    out.count = static_cast<int64_t>(out.kvs.size());
  }
  out.more = limit > 0 && out.count > limit;
  return {};
}

// The state as of `revision`: per key, its newest history row at or before it.
Status rangeAt(Conn& c, const KeyRange& kr, int64_t revision, int64_t limit, bool keysOnly,
               bool countOnly, RangeResponse& out) {
  // With one max() aggregate, SQLite takes the bare columns from the row holding the max. The
  // groups come in key order from the (key, revision) index, so a page stops reading at its
  // end; the count of the rest is a second pass that reads no values (a continued 500-pod
  // page of a 10,000-pod list took 92-100 ms reading every pod's text to count them; 62-79).
  auto query = [&](bool withValues) {
    return std::string("SELECT key, max(revision), ") + (withValues ? "value" : "''") +
           ", create_rev, version, deleted FROM history WHERE " + keyCondition(kr, 1) +
           " AND revision <= ?3 GROUP BY key ORDER BY key";
  };
  const bool withValues = !keysOnly && !countOnly;
  Query q(c, query(withValues));
  bindRange(q, kr, 1);
  q.bind(3, revision);
  int64_t count = 0;
  bool cut = false;  // stopped at the page's end: the count needs the second pass
  while (q.step()) {
    if (q.integer(5) != 0) continue;  // deleted as of `revision`
    ++count;
    if (countOnly) continue;
    if (limit > 0 && static_cast<int64_t>(out.kvs.size()) >= limit) {
      if (withValues) {
        cut = true;
        break;
      }
      continue;
    }
    out.kvs.push_back(KeyValue{q.text(0), q.text(2), q.integer(3), q.integer(1), q.integer(4)});
  }
  if (!q.status().isOk()) return q.status();
  if (cut) {
    Query keys(c, query(false));
    bindRange(keys, kr, 1);
    keys.bind(3, revision);
    count = 0;
    while (keys.step())
      if (keys.integer(5) == 0) ++count;
    if (!keys.status().isOk()) return keys.status();
  }
  out.count = count;
  out.more = limit > 0 && count > limit;
  return {};
}

bool compareHolds(const Compare& cmp, const Row& row) {
  int c = 0;
  auto order = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (cmp.target) {
    case Compare::Target::kValue: {
      int r = row.value.compare(cmp.value);
      c = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    }
    case Compare::Target::kModRevision: c = order(row.modRevision, cmp.number); break;
    case Compare::Target::kCreateRevision: c = order(row.createRevision, cmp.number); break;
    case Compare::Target::kVersion: c = order(row.version, cmp.number); break;
  }
  switch (cmp.op) {
    case Compare::Op::kEqual: return c == 0;
    case Compare::Op::kNotEqual: return c != 0;
    case Compare::Op::kGreater: return c > 0;
    case Compare::Op::kLess: return c < 0;
  }
  return false;
}

// etcd refuses a txn branch that writes one key twice (ErrGRPCDuplicateKey).
Status validateBranch(const std::vector<Operation>& ops) {
  std::unordered_set<std::string> puts;
  for (const auto& op : ops) {
    if (op.type != Operation::Type::kRange && op.key.empty()) {
      return Status::badRequest("key is not provided");
    }
    if (op.type == Operation::Type::kPut && !puts.insert(op.key).second) {
      return Status::badRequest("duplicate key given in txn request");
    }
  }
  for (const auto& op : ops) {
    if (op.type != Operation::Type::kDelete) continue;
    KeyRange r = keyRange(op.key, {}, op.prefix);
    for (const auto& key : puts) {
      if (r.contains(key)) return Status::badRequest("duplicate key given in txn request");
    }
  }
  return {};
}

bool readOnly(const TxnRequest& r) {
  auto reads = [](const std::vector<Operation>& ops) {
    return std::all_of(ops.begin(), ops.end(),
                       [](const Operation& op) { return op.type == Operation::Type::kRange; });
  };
  return reads(r.success) && reads(r.failure);
}

// ---- Reader pool.

class ReaderPool {
 public:
  explicit ReaderPool(std::string path) : path_(std::move(path)) {}

  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (conn_) pool_->release(std::move(conn_));
    }
    Conn& operator*() { return *conn_; }
    Conn* operator->() { return conn_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  Result<Lease> acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(conn));
      }
    }
    auto conn = Conn::open(path_, Conn::Role::kReader);
    if (!conn.ok()) return std::move(conn).takeStatus();
    return Lease(this, std::move(conn).value());
  }

  void release(std::unique_ptr<Conn> conn) {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleReaders) idle_.push_back(std::move(conn));
  }

  void clear() {
    std::lock_guard lock(mu_);
    idle_.clear();
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
};

struct Snapshot {
  int64_t revision = 0;
  int64_t compactRevision = 0;
};

// A read transaction: every query between begin and its destruction sees one snapshot.
class ReadTxn {
 public:
  explicit ReadTxn(Conn& c) : c_(c) {}
  ~ReadTxn() {
    if (open_) Query(c_, "COMMIT").run();
  }
  Status begin(Snapshot& snap) {
    if (auto s = Query(c_, "BEGIN").run(); !s.isOk()) return s;
    open_ = true;
    Query q(c_, "SELECT name, value FROM meta WHERE name IN ('revision', 'compact_revision')");
    while (q.step()) {
      if (q.text(0) == "revision") snap.revision = q.integer(1);
      else snap.compactRevision = q.integer(1);
    }
    return q.status();
  }

 private:
  Conn& c_;
  bool open_ = false;
};

// ---- The store.

struct WriteItem {
  enum class Kind { kTxn, kCompact };
  Kind kind = Kind::kTxn;
  const TxnRequest* txn = nullptr;
  int64_t compactRevision = 0;
  std::optional<Result<TxnResponse>> result;
  Status status;

  // A futex word rather than a mutex and condition variable: finish() is the writer's, once
  // per write, and with a condition variable notified under its mutex (it must be: the waiter
  // owns the item and may destroy it as soon as it sees `done`) the woken caller first blocked
  // on the mutex the writer still held, and the writer's unlock had to wake it again.
  std::atomic<uint32_t> done{0};

  void finish() {
    done.store(1, std::memory_order_release);
    // FUTEX_WAKE only hashes the address: if the waiter saw `done` without sleeping and has
    // already freed the item, the wake finds no one (or wakes a waiter whose loop re-checks).
    syscall(SYS_futex, &done, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
  void wait() {
    while (done.load(std::memory_order_acquire) == 0) {
      syscall(SYS_futex, &done, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
    }
  }
};

struct CommittedBatch {
  std::vector<Event> events;  // in revision order; each event's kv.modRevision is its revision
  int64_t lastRevision = 0;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteOptions options)
      : options_(std::move(options)), readers_(options_.path),
        hub_(std::make_shared<WatchHub>(
            "store-watch", static_cast<size_t>(options_.watchBufferEvents),
            [this](HubWatcher& w, std::unique_lock<std::mutex>& lock) { replayStep(w, lock); })) {}
  ~SqliteStore() override { close(); }

  Status open();

  Result<RangeResponse> range(const RangeRequest& request) override;
  Result<TxnResponse> txn(const TxnRequest& request) override;
  Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request,
                                             WatchCallback callback) override;
  Status compact(int64_t revision) override;
  Result<StoreStats> stats() override;
  Result<std::vector<Member>> members() override;
  void requestProgress(int64_t revision) override { hub_->requestProgress(revision); }

 private:
  void close();
  Status submit(WriteItem& item);
  Result<TxnResponse> readOnlyTxn(const TxnRequest& request);

  // Writer thread.
  void writerLoop();
  void commitTxns(std::vector<WriteItem*>& items);
  Result<TxnResponse> applyTxn(const TxnRequest& request, int64_t& revision,
                               std::vector<Event>& events);
  Status insertHistory(int64_t revision, int64_t sub, const KeyValue& kv, bool deleted,
                       int64_t prevRevision);
  Status setMeta(const char* name, int64_t value);
  void startCompaction(WriteItem& item);
  Status upgradeSchema();
  bool compactionPending() const { return compactCursorRevision_ < compactRevision_; }
  void compactChunk();
  // The revision automatic compaction should move to after a commit at `revision` (0: none).
  int64_t automaticCompaction(int64_t revision);
  void finishCompactWaiters(const Status& status);

  // Checkpointer thread: keeps WAL-to-database copying (and its fsync) off the writer.
  static int walHook(void* self, sqlite3* db, const char* name, int pages);
  void checkpointLoop();

  // Dispatcher thread.
  void dispatcherLoop();
  void dispatch(const CommittedBatch& batch);

  // Watcher threads: catching up from the history table.
  void replayStep(HubWatcher& w, std::unique_lock<std::mutex>& lock);
  Status replay(const HubWatcher& w, int64_t from, std::vector<Event>& events, int64_t& upTo,
                int64_t& compactRevision);

  SqliteOptions options_;
  ReaderPool readers_;
  std::unique_ptr<Conn> writer_;

  std::mutex queueMu_;
  std::condition_variable queueCv_;
  std::deque<WriteItem*> queue_;
  bool stopping_ = false;
  bool opened_ = false;
  std::thread writerThread_;

  // Writer-thread state.
  int64_t revision_ = 1;
  int64_t compactRevision_ = 0;
  int64_t compactCursorRevision_ = 0;  // physical compaction done for rows below (rev, sub)
  int64_t compactCursorSub_ = -1;
  std::vector<WriteItem*> compactWaiters_;
  std::atomic<int64_t> committedRevision_{1};
  std::atomic<int64_t> publishedCompactRevision_{0};  // compactRevision_, for other threads
  // Automatic compaction's intervals (set up by open()).
  internal::IntervalCompaction compactionInterval_{std::chrono::milliseconds(0), 0};

  std::unique_ptr<Conn> checkpointer_;
  std::mutex checkpointMu_;
  std::condition_variable checkpointCv_;
  bool checkpointWanted_ = false;
  bool checkpointStop_ = false;
  std::thread checkpointThread_;

  std::mutex dispatchMu_;
  std::condition_variable dispatchCv_;
  std::deque<CommittedBatch> dispatchQueue_;
  bool dispatchStop_ = false;
  std::thread dispatcherThread_;

  std::shared_ptr<WatchHub> hub_;
};

// Schema 1 kept each current value twice, in kv and in history. The current version of every
// key is in history (compaction keeps it), so kv becomes a pointer to it; a value missing
// there (damage) is put back as a history row of its own first, so nothing is lost. A file of
// a later schema is refused rather than misread.
Status SqliteStore::upgradeSchema() {
  constexpr int64_t kSchema = 2;
  int64_t schema = 0;
  {
    Query q(*writer_, "SELECT value FROM meta WHERE name = 'schema'");
    if (q.step()) schema = q.integer(0);
    if (!q.status().isOk()) return q.status();
  }
  if (schema == kSchema) return {};
  if (schema != 1) {
    return Status::internal(options_.path + " has store schema " + std::to_string(schema) + "; this Orrery reads " +
                            std::to_string(kSchema) + " (and moves 1 over): open it with the Orrery that wrote it");
  }
  static const char* kMigrate = R"sql(
    BEGIN IMMEDIATE;
    INSERT INTO history(id, revision, sub, key, value, create_rev, version, deleted, prev_rev)
      SELECT kv.mod_rev * 1048576 + 1048575, kv.mod_rev, 1048575, kv.key, kv.value,
             kv.create_rev, kv.version, 0, 0
      FROM kv WHERE NOT EXISTS (SELECT 1 FROM history h
                                WHERE h.key = kv.key AND h.revision = kv.mod_rev AND h.deleted = 0);
    CREATE TABLE kv_schema2(
      key TEXT NOT NULL PRIMARY KEY, hid INTEGER NOT NULL,
      create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO kv_schema2(key, hid, create_rev, mod_rev, version)
      SELECT kv.key, (SELECT max(h.id) FROM history h
                      WHERE h.key = kv.key AND h.revision = kv.mod_rev AND h.deleted = 0),
             kv.create_rev, kv.mod_rev, kv.version
      FROM kv;
    DROP TABLE kv;
    ALTER TABLE kv_schema2 RENAME TO kv;
    UPDATE meta SET value = 2 WHERE name = 'schema';
    COMMIT;
  )sql";
  if (auto s = writer_->exec(kMigrate); !s.isOk()) {
    writer_->exec("ROLLBACK");
    return Status::internal("cannot move " + options_.path + " to the store's schema 2: " + s.message());
  }
  logger()->info("moved {} to schema 2 (each value stored once)", options_.path);
  return {};
}

Status SqliteStore::open() {
  std::error_code ec;
  std::filesystem::path path(options_.path);
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::internal("cannot create the directory of " + options_.path + ": " +
                              ec.message());
    }
  }
  auto writer = Conn::open(options_.path, Conn::Role::kWriter);
  if (!writer.ok()) return writer.status();
  writer_ = std::move(writer).value();

  static const char* kSchema = R"sql(
    BEGIN IMMEDIATE;
    CREATE TABLE IF NOT EXISTS history(
      id INTEGER PRIMARY KEY,
      revision INTEGER NOT NULL, sub INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
      create_rev INTEGER NOT NULL, version INTEGER NOT NULL, deleted INTEGER NOT NULL,
      prev_rev INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS history_key ON history(key, revision);
    CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO meta(name, value) VALUES
      ('schema', 2), ('revision', 1), ('compact_revision', 0),
      ('compact_cursor_rev', 0), ('compact_cursor_sub', -1);
    CREATE TABLE IF NOT EXISTS kv(
      key TEXT NOT NULL PRIMARY KEY, hid INTEGER NOT NULL,
      create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL
    ) WITHOUT ROWID;
    COMMIT;
  )sql";
  if (auto s = writer_->exec(kSchema); !s.isOk()) {
    writer_->exec("ROLLBACK");
    return s;
  }
  if (auto s = upgradeSchema(); !s.isOk()) return s;
  // For whoever opens the file with sqlite3: the current values by key.
  if (auto s = writer_->exec("CREATE VIEW IF NOT EXISTS kv_values AS "
                             "SELECT kv.key, h.value, kv.create_rev, kv.mod_rev, kv.version "
                             "FROM kv JOIN history h ON h.id = kv.hid");
      !s.isOk()) {
    return s;
  }
  {
    Query q(*writer_, "SELECT name, value FROM meta");
    while (q.step()) {
      std::string name = q.text(0);
      if (name == "revision") revision_ = q.integer(1);
      else if (name == "compact_revision") compactRevision_ = q.integer(1);
      else if (name == "compact_cursor_rev") compactCursorRevision_ = q.integer(1);
      else if (name == "compact_cursor_sub") compactCursorSub_ = q.integer(1);
    }
    if (!q.status().isOk()) return q.status();
  }
  committedRevision_ = revision_;
  publishedCompactRevision_ = compactRevision_;
  compactionInterval_ = internal::IntervalCompaction(options_.compactionInterval, revision_);
  {
    std::lock_guard lock(hub_->mu);
    hub_->setDispatched(revision_);
  }
  // A reader up front: a file that cannot be read should fail open(), not the first range().
  if (auto lease = readers_.acquire(); !lease.ok()) return lease.status();
  auto checkpointer = Conn::open(options_.path, Conn::Role::kWriter);
  if (!checkpointer.ok()) return checkpointer.status();
  checkpointer_ = std::move(checkpointer).value();
  // Replaces SQLite's auto-checkpoint, which would run inside the writer's commits.
  sqlite3_wal_hook(writer_->db(), &SqliteStore::walHook, this);
  checkpointThread_ = std::thread([this] { checkpointLoop(); });

  opened_ = true;
  writerThread_ = std::thread([this] { writerLoop(); });
  dispatcherThread_ = std::thread([this] { dispatcherLoop(); });
  logger()->debug("opened {} at revision {} (compacted at {})", options_.path, revision_,
               compactRevision_);
  return {};
}

void SqliteStore::close() {
  {
    std::lock_guard lock(queueMu_);
    if (stopping_) return;
    stopping_ = true;
  }
  queueCv_.notify_all();
  if (writerThread_.joinable()) writerThread_.join();  // drains every queued txn first
  {
    std::lock_guard lock(checkpointMu_);
    checkpointStop_ = true;
  }
  checkpointCv_.notify_all();
  if (checkpointThread_.joinable()) checkpointThread_.join();
  {
    std::lock_guard lock(dispatchMu_);
    dispatchStop_ = true;
  }
  dispatchCv_.notify_all();
  if (dispatcherThread_.joinable()) dispatcherThread_.join();  // delivers what was committed

  hub_->close(closedStatus());
  readers_.clear();
  checkpointer_.reset();
  writer_.reset();  // the last connection: SQLite checkpoints and removes the WAL
}

Status SqliteStore::submit(WriteItem& item) {
  {
    std::lock_guard lock(queueMu_);
    if (stopping_ || !opened_) return closedStatus();
    queue_.push_back(&item);
  }
  queueCv_.notify_one();
  item.wait();
  return {};
}

// ---- Reads.

Result<RangeResponse> SqliteStore::range(const RangeRequest& request) {
  if (request.revision < 0) return Status::badRequest("revision must not be negative");
  if (request.limit < 0) return Status::badRequest("limit must not be negative");
  {
    std::lock_guard lock(queueMu_);
    if (stopping_) return closedStatus();
  }
  auto lease = readers_.acquire();
  if (!lease.ok()) return lease.status();
  Conn& c = **lease;
  ReadTxn read(c);
  Snapshot snap;
  if (auto s = read.begin(snap); !s.isOk()) return s;
  if (request.revision > 0 && request.revision < snap.compactRevision) return compactedStatus();
  if (request.revision > snap.revision) return futureStatus();

  RangeResponse out;
  out.revision = snap.revision;
  KeyRange kr = keyRange(request.key, request.rangeEnd, request.prefix);
  Status s = (request.revision == 0 || request.revision == snap.revision)
                 ? rangeCurrent(c, kr, request.limit, request.keysOnly, request.countOnly, out)
                 : rangeAt(c, kr, request.revision, request.limit, request.keysOnly,
                           request.countOnly, out);
  if (!s.isOk()) return s;
  return out;
}

// A txn that only reads runs on a reader, in one snapshot, without queueing for the writer.
Result<TxnResponse> SqliteStore::readOnlyTxn(const TxnRequest& request) {
  auto lease = readers_.acquire();
  if (!lease.ok()) return lease.status();
  Conn& c = **lease;
  ReadTxn read(c);
  Snapshot snap;
  if (auto s = read.begin(snap); !s.isOk()) return s;
  TxnResponse response;
  response.succeeded = true;
  for (const auto& cmp : request.compares) {
    Row row;
    if (auto s = readRow(c, cmp.key, row); !s.isOk()) return s;
    if (!compareHolds(cmp, row)) {
      response.succeeded = false;
      break;
    }
  }
  for (const auto& op : response.succeeded ? request.success : request.failure) {
    RangeResponse r;
    if (auto s = rangeCurrent(c, keyRange(op.key, {}, op.prefix), 0, false, false, r); !s.isOk()) {
      return s;
    }
    OperationResult result;
    result.kvs = std::move(r.kvs);
    response.results.push_back(std::move(result));
  }
  response.revision = snap.revision;
  return response;
}

Result<TxnResponse> SqliteStore::txn(const TxnRequest& request) {
  if (auto s = validateBranch(request.success); !s.isOk()) return s;
  if (auto s = validateBranch(request.failure); !s.isOk()) return s;
  if (readOnly(request)) {
    {
      std::lock_guard lock(queueMu_);
      if (stopping_) return closedStatus();
    }
    return readOnlyTxn(request);
  }
  WriteItem item;
  item.txn = &request;
  if (auto s = submit(item); !s.isOk()) return s;
  if (!item.result) return Status::internal("the store's writer dropped a transaction");
  return std::move(*item.result);
}

Status SqliteStore::compact(int64_t revision) {
  WriteItem item;
  item.kind = WriteItem::Kind::kCompact;
  item.compactRevision = revision;
  if (auto s = submit(item); !s.isOk()) return s;
  return item.status;
}

Result<StoreStats> SqliteStore::stats() {
  {
    std::lock_guard lock(queueMu_);
    if (stopping_) return closedStatus();
  }
  auto lease = readers_.acquire();
  if (!lease.ok()) return lease.status();
  Conn& c = **lease;
  ReadTxn read(c);
  Snapshot snap;
  if (auto s = read.begin(snap); !s.isOk()) return s;
  StoreStats st;
  st.backend = "sqlite";
  st.revision = snap.revision;
  st.compactRevision = snap.compactRevision;
  {
    Query q(c, "SELECT count(*) FROM kv");
    if (q.step()) st.keys = q.integer(0);
    if (!q.status().isOk()) return q.status();
  }
  {
    Query q(c, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    if (q.step()) st.dbSizeBytes = q.integer(0);
    if (!q.status().isOk()) return q.status();
  }
  return st;
}

Result<std::vector<Member>> SqliteStore::members() {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(options_.path, ec);
  std::string path = ec ? options_.path : absolute.lexically_normal().string();
  Member m;
  m.name = std::filesystem::path(path).filename().string();
  m.clientUrls = {"file:" + path};
  {
    std::lock_guard lock(queueMu_);
    m.healthy = !stopping_;
  }
  return std::vector<Member>{m};
}

// ---- The writer.

void SqliteStore::writerLoop() {
  nameThread("store-writer");
  std::vector<WriteItem*> batch;
  for (;;) {
    {
      std::unique_lock lock(queueMu_);
      queueCv_.wait(lock, [&] { return stopping_ || !queue_.empty() || compactionPending(); });
      if (queue_.empty() && stopping_) break;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      // Split first: an item belongs to its caller again as soon as it is finished.
      std::vector<WriteItem*> txns, compactions;
      for (auto* item : batch) {
        (item->kind == WriteItem::Kind::kTxn ? txns : compactions).push_back(item);
      }
      batch.clear();
      if (!txns.empty()) commitTxns(txns);
      for (auto* item : compactions) startCompaction(*item);
    }
    // One chunk per round: compaction progresses without ever holding writes back long.
    if (compactionPending()) compactChunk();
  }
  finishCompactWaiters(closedStatus());
}

Status SqliteStore::setMeta(const char* name, int64_t value) {
  Query q(*writer_, "UPDATE meta SET value = ?2 WHERE name = ?1");
  q.bind(1, std::string_view(name)).bind(2, value);
  return q.run();
}

Status SqliteStore::insertHistory(int64_t revision, int64_t sub, const KeyValue& kv, bool deleted,
                                  int64_t prevRevision) {
  Query q(*writer_,
          "INSERT INTO history(id, revision, sub, key, value, create_rev, version, deleted, "
          "prev_rev) VALUES(?1 * 1048576 + ?2, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  q.bind(1, revision).bind(2, sub).bind(3, kv.key).bind(4, kv.value);
  q.bind(5, kv.createRevision).bind(6, kv.version).bind(7, int64_t{deleted ? 1 : 0});
  q.bind(8, prevRevision);
  return q.run();
}

Result<TxnResponse> SqliteStore::applyTxn(const TxnRequest& request, int64_t& revision,
                                          std::vector<Event>& events) {
  Conn& w = *writer_;
  if (auto s = Query(w, "SAVEPOINT txn").run(); !s.isOk()) return s;
  size_t eventsBefore = events.size();
  auto fail = [&](Status s) -> Result<TxnResponse> {
    Query(w, "ROLLBACK TO txn").run();
    Query(w, "RELEASE txn").run();
    events.resize(eventsBefore);
    return s;
  };

  TxnResponse response;
  response.succeeded = true;
  // A compare-and-swap reads its key's row to compare it, and its put needs the same row as
  // the event's previous value: the put takes the row the last compare read, unless another
  // operation came first.
  const std::string* comparedKey = nullptr;
  Row compared;
  for (const auto& cmp : request.compares) {
    Row row;
    if (auto s = readRow(w, cmp.key, row); !s.isOk()) return fail(s);
    if (!compareHolds(cmp, row)) {
      response.succeeded = false;
      break;
    }
    comparedKey = &cmp.key;
    compared = std::move(row);
  }

  const int64_t next = revision + 1;
  int64_t sub = 0;
  for (const auto& op : response.succeeded ? request.success : request.failure) {
    OperationResult result;
    if (sub >= kSubSpan - 1) {
      return fail(Status::badRequest("too many operations in txn request"));
    }
    switch (op.type) {
      case Operation::Type::kPut: {
        Row old;
        if (comparedKey && *comparedKey == op.key) {
          old = std::move(compared);
        } else if (auto s = readRow(w, op.key, old); !s.isOk()) {
          return fail(s);
        }
        comparedKey = nullptr;
        KeyValue kv{op.key, op.value, old.exists ? old.createRevision : next, next,
                    old.exists ? old.version + 1 : 1};
        Query up(w,
                 "INSERT INTO kv(key, hid, create_rev, mod_rev, version) VALUES(?1, ?2, ?3, ?4, ?5) "
                 "ON CONFLICT(key) DO UPDATE SET hid = excluded.hid, "
                 "create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, "
                 "version = excluded.version");
        up.bind(1, kv.key).bind(2, next * kSubSpan + sub).bind(3, kv.createRevision).bind(4, next);
        up.bind(5, kv.version);
        if (auto s = up.run(); !s.isOk()) return fail(s);
        if (auto s = insertHistory(next, sub++, kv, false, old.exists ? old.modRevision : 0);
            !s.isOk()) {
          return fail(s);
        }
        Event e;
        e.type = Event::Type::kPut;
        e.kv = std::move(kv);
        e.attachment = op.attachment;
        if (old.exists) {
          e.prevKv = KeyValue{op.key, std::move(old.value), old.createRevision, old.modRevision,
                              old.version};
          if (op.prevKv) result.prevKvs.push_back(*e.prevKv);
        }
        events.push_back(std::move(e));
        break;
      }
      case Operation::Type::kDelete: {
        comparedKey = nullptr;
        RangeResponse victims;
        if (auto s = rangeCurrent(w, keyRange(op.key, {}, op.prefix), 0, false, false, victims);
            !s.isOk()) {
          return fail(s);
        }
        if (sub + static_cast<int64_t>(victims.kvs.size()) >= kSubSpan) {
          return fail(Status::badRequest("too many operations in txn request"));
        }
        for (auto& old : victims.kvs) {
          Query del(w, "DELETE FROM kv WHERE key = ?1");
          del.bind(1, old.key);
          if (auto s = del.run(); !s.isOk()) return fail(s);
          KeyValue tomb{old.key, {}, 0, next, 0};
          if (auto s = insertHistory(next, sub++, tomb, true, old.modRevision); !s.isOk()) {
            return fail(s);
          }
          ++result.deleted;
          if (op.prevKv) result.prevKvs.push_back(old);
          Event e;
          e.type = Event::Type::kDelete;
          e.kv = std::move(tomb);
          e.prevKv = std::move(old);
          events.push_back(std::move(e));
        }
        break;
      }
      case Operation::Type::kRange: {
        RangeResponse r;
        if (auto s = rangeCurrent(w, keyRange(op.key, {}, op.prefix), 0, false, false, r);
            !s.isOk()) {
          return fail(s);
        }
        result.kvs = std::move(r.kvs);
        break;
      }
    }
    response.results.push_back(std::move(result));
  }
  if (auto s = Query(w, "RELEASE txn").run(); !s.isOk()) return fail(s);
  // As etcd: only a txn that changed something takes a revision.
  if (sub > 0) revision = next;
  response.revision = revision;
  return response;
}

void SqliteStore::commitTxns(std::vector<WriteItem*>& items) {
  Conn& w = *writer_;
  auto failAll = [&](const Status& s) {
    for (auto* item : items) {
      item->result = s;
      item->finish();
    }
  };
  if (auto s = Query(w, "BEGIN IMMEDIATE").run(); !s.isOk()) {
    failAll(s);
    return;
  }
  int64_t revision = revision_;
  CommittedBatch batch;
  for (auto* item : items) item->result = applyTxn(*item->txn, revision, batch.events);

  Status s;
  int64_t newCompact = 0;
  if (revision != revision_) {
    s = setMeta("revision", revision);
    if (s.isOk() && options_.autoCompact) {
      newCompact = automaticCompaction(revision);
      if (newCompact > compactRevision_) s = setMeta("compact_revision", newCompact);
    }
  }
  if (s.isOk()) s = Query(w, "COMMIT").run();
  if (!s.isOk()) {
    Query(w, "ROLLBACK").run();
    logger()->error("commit of {} txns failed: {}", items.size(), s.message());
    failAll(s);
    return;
  }
  revision_ = revision;
  committedRevision_.store(revision);
  if (newCompact > compactRevision_) {
    compactRevision_ = newCompact;
    publishedCompactRevision_.store(newCompact);
  }
  if (!batch.events.empty()) {
    batch.lastRevision = revision;
    {
      std::lock_guard lock(dispatchMu_);
      dispatchQueue_.push_back(std::move(batch));
    }
    dispatchCv_.notify_one();
  }
  for (auto* item : items) item->finish();
}

int64_t SqliteStore::automaticCompaction(int64_t revision) {
  // Checked at commits: a quiet store has none to run this, and nothing to compact either.
  int64_t target = compactionInterval_.due(revision);
  // The cap keeps ~retainRevisions under churn; the slack avoids starting a new compaction
  // after every batch.
  int64_t retain = std::max<int64_t>(options_.retainRevisions, 1);
  int64_t slack = std::max<int64_t>(retain / 10, 100);
  if (revision - compactRevision_ > retain + slack) target = std::max(target, revision - retain);
  return target > compactRevision_ ? target : 0;
}

void SqliteStore::startCompaction(WriteItem& item) {
  int64_t rev = item.compactRevision;
  if (rev <= compactRevision_) {
    item.status = compactedStatus();
  } else if (rev > revision_) {
    item.status = futureStatus();
  } else {
    Status s = Query(*writer_, "BEGIN IMMEDIATE").run();
    if (s.isOk()) s = setMeta("compact_revision", rev);
    if (s.isOk()) s = Query(*writer_, "COMMIT").run();
    if (!s.isOk()) {
      Query(*writer_, "ROLLBACK").run();
      item.status = s;
    } else {
      compactRevision_ = rev;
      publishedCompactRevision_.store(rev);
      compactWaiters_.push_back(&item);  // answered when the physical compaction catches up
      return;
    }
  }
  item.finish();
}

void SqliteStore::finishCompactWaiters(const Status& status) {
  for (auto* item : compactWaiters_) {
    item->status = status;
    item->finish();
  }
  compactWaiters_.clear();
}

// Physical compaction, one chunk: every history row below the compact revision is visited
// once, in revision order. A row that has a predecessor (prev_rev) makes that predecessor
// unreachable (it is superseded at or before the compact revision), and a tombstone below
// the compact revision is itself unreachable. What remains below the compact revision is
// exactly the newest version of every key live at the compact revision.
void SqliteStore::compactChunk() {
  Conn& w = *writer_;
  struct Visit {
    int64_t revision, sub;
    std::string key;
    bool deleted;
    int64_t prev;
  };
  std::vector<Visit> rows;
  Status s = Query(w, "BEGIN IMMEDIATE").run();
  if (s.isOk()) {
    Query q(w,
            "SELECT revision, sub, key, deleted, prev_rev FROM history "
            "WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3");
    q.bind(1, compactCursorRevision_ * kSubSpan + compactCursorSub_);
    q.bind(2, compactRevision_ * kSubSpan).bind(3, kCompactChunk);
    while (q.step()) rows.push_back({q.integer(0), q.integer(1), q.text(2), q.integer(3) != 0,
                                     q.integer(4)});
    s = q.status();
  }
  for (const auto& row : rows) {
    if (!s.isOk()) break;
    if (row.prev > 0) {
      Query del(w, "DELETE FROM history WHERE key = ?1 AND revision = ?2");
      del.bind(1, row.key).bind(2, row.prev);
      s = del.run();
    }
    if (s.isOk() && row.deleted) {
      Query del(w, "DELETE FROM history WHERE id = ?1");
      del.bind(1, row.revision * kSubSpan + row.sub);
      s = del.run();
    }
  }
  int64_t cursorRev = compactCursorRevision_, cursorSub = compactCursorSub_;
  if (static_cast<int64_t>(rows.size()) < kCompactChunk) {
    // Everything below the compact revision is visited: resume there next time.
    cursorRev = compactRevision_;
    cursorSub = -1;
  } else {
    cursorRev = rows.back().revision;
    cursorSub = rows.back().sub;
  }
  if (s.isOk()) s = setMeta("compact_cursor_rev", cursorRev);
  if (s.isOk()) s = setMeta("compact_cursor_sub", cursorSub);
  if (s.isOk()) s = Query(w, "COMMIT").run();
  if (!s.isOk()) {
    Query(w, "ROLLBACK").run();
    logger()->error("compaction to revision {} failed: {}", compactRevision_, s.message());
    // Give up on this target rather than spin; the next compaction retries from the cursor.
    finishCompactWaiters(s);
    compactCursorRevision_ = compactRevision_;
    compactCursorSub_ = -1;
    return;
  }
  compactCursorRevision_ = cursorRev;
  compactCursorSub_ = cursorSub;
  if (!compactionPending()) finishCompactWaiters(Status::ok());
}

// ---- Checkpoints.

int SqliteStore::walHook(void* self, sqlite3* db, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (pages >= kWriterCheckpointPages) {
    // The checkpointer's passive copies never catch up with a writer that keeps appending, and
    // the WAL only restarts from its beginning once fully copied. The writer copies what is
    // left (usually little: the checkpointer did the bulk), so the WAL stays ~8 MiB.
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (pages >= kCheckpointPages) {
    {
      std::lock_guard lock(store->checkpointMu_);
      store->checkpointWanted_ = true;
    }
    store->checkpointCv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::checkpointLoop() {
  nameThread("store-ckpt");
  for (;;) {
    {
      std::unique_lock lock(checkpointMu_);
      checkpointCv_.wait(lock, [&] { return checkpointStop_ || checkpointWanted_; });
      if (checkpointStop_) return;
      checkpointWanted_ = false;
    }
    int rc = sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      logger()->warn("checkpoint of {}: {}", options_.path, sqlite3_errmsg(checkpointer_->db()));
    }
  }
}

// ---- The dispatcher.

void SqliteStore::dispatcherLoop() {
  nameThread("store-dispatch");
  for (;;) {
    CommittedBatch batch;
    {
      std::unique_lock lock(dispatchMu_);
      dispatchCv_.wait(lock, [&] { return dispatchStop_ || !dispatchQueue_.empty(); });
      if (dispatchQueue_.empty()) return;  // stopping, and everything is dispatched
      batch = std::move(dispatchQueue_.front());
      dispatchQueue_.pop_front();
    }
    dispatch(batch);
  }
}

void SqliteStore::dispatch(const CommittedBatch& batch) { hub_->dispatch(batch.events, batch.lastRevision); }

// ---- Watches.

Result<std::unique_ptr<WatchHandle>> SqliteStore::watch(const WatchRequest& request,
                                                        WatchCallback callback) {
  if (request.startRevision < 0) return Status::badRequest("start revision must not be negative");
  if (!callback) return Status::badRequest("watch needs a callback");
  std::lock_guard lock(hub_->mu);
  if (hub_->closed()) return closedStatus();
  {
    std::lock_guard q(queueMu_);
    if (stopping_) return closedStatus();
  }
  // Revision 0 = "from now": every write acknowledged before this call is ≤ committed.
  const int64_t from = request.startRevision > 0 ? request.startRevision : committedRevision_.load() + 1;
  // Live delivery only if the dispatcher has not passed the start yet, and the start is not
  // compacted: the dispatcher may still hold events older than a compaction, and a watch
  // asking for them must end with 410, which only the history replay checks.
  const bool live = from > hub_->dispatched() && from >= publishedCompactRevision_.load();
  return hub_->add(request, std::move(callback), from, live);
}

Status SqliteStore::replay(const HubWatcher& w, int64_t from, std::vector<Event>& events, int64_t& upTo,
                           int64_t& compactRevision) {
  auto lease = readers_.acquire();
  if (!lease.ok()) return lease.status();
  Conn& c = **lease;
  ReadTxn read(c);
  Snapshot snap;
  if (auto s = read.begin(snap); !s.isOk()) return s;
  if (from < snap.compactRevision) {
    compactRevision = snap.compactRevision;
    return compactedStatus();
  }
  upTo = snap.revision;
  if (from > snap.revision) return {};
  Query q(c, "SELECT revision, sub, key, value, create_rev, version, deleted, prev_rev "
             "FROM history WHERE id >= ?1 AND id < ?2 AND " +
                 keyCondition(w.filter, 3) + " ORDER BY id LIMIT ?5");
  q.bind(1, from * kSubSpan).bind(2, (snap.revision + 1) * kSubSpan);
  bindRange(q, w.filter, 3);
  q.bind(5, kReplayChunk);
  std::vector<int64_t> prevs;
  while (q.step()) {
    Event e;
    bool deleted = q.integer(6) != 0;
    e.type = deleted ? Event::Type::kDelete : Event::Type::kPut;
    e.kv = KeyValue{q.text(2), q.text(3), q.integer(4), q.integer(0), q.integer(5)};
    events.push_back(std::move(e));
    prevs.push_back(q.integer(7));
  }
  if (!q.status().isOk()) return q.status();
  if (static_cast<int64_t>(events.size()) == kReplayChunk) {
    // Keep revisions whole: stop before the last (maybe cut) revision, unless it is the only one.
    int64_t last = events.back().kv.modRevision;
    if (events.front().kv.modRevision != last) {
      while (events.back().kv.modRevision == last) {
        events.pop_back();
        prevs.pop_back();
      }
      upTo = last - 1;
    } else {
      events.clear();
      prevs.clear();
      Query all(c, "SELECT revision, sub, key, value, create_rev, version, deleted, prev_rev "
                   "FROM history WHERE id >= ?1 AND id < ?2 AND " + keyCondition(w.filter, 3) +
                       " ORDER BY id");
      all.bind(1, last * kSubSpan).bind(2, (last + 1) * kSubSpan);
      bindRange(all, w.filter, 3);
      while (all.step()) {
        Event e;
        e.type = all.integer(6) != 0 ? Event::Type::kDelete : Event::Type::kPut;
        e.kv = KeyValue{all.text(2), all.text(3), all.integer(4), all.integer(0), all.integer(5)};
        events.push_back(std::move(e));
        prevs.push_back(all.integer(7));
      }
      if (!all.status().isOk()) return all.status();
      upTo = last;
    }
  }
  if (w.prevKv) {
    for (size_t i = 0; i < events.size(); ++i) {
      if (prevs[i] <= 0) continue;
      Query p(c, "SELECT value, create_rev, version FROM history WHERE key = ?1 AND revision = ?2");
      p.bind(1, events[i].kv.key).bind(2, prevs[i]);
      if (p.step()) {
        events[i].prevKv = KeyValue{events[i].kv.key, p.text(0), p.integer(1), prevs[i],
                                    p.integer(2)};
      }
      if (!p.status().isOk()) return p.status();
    }
  }
  return {};
}

void SqliteStore::replayStep(HubWatcher& w, std::unique_lock<std::mutex>& lock) {
  // Replay history from pendingFrom (the dispatcher leaves an unsynced watcher alone meanwhile).
  const int64_t from = w.pendingFrom;
  lock.unlock();
  std::vector<Event> events;
  int64_t upTo = 0, compactRevision = 0;
  Status s = replay(w, from, events, upTo, compactRevision);
  lock.lock();
  if (w.cancelled) return;
  if (!s.isOk()) {
    WatchResponse end;
    end.status = s;
    end.compactRevision = compactRevision;
    w.terminal = std::move(end);
    return;
  }
  if (!events.empty()) {
    WatchResponse response;
    response.events = std::move(events);
    response.revision = upTo;
    lock.unlock();
    w.callback(response);
    lock.lock();
    if (w.cancelled) return;
  }
  w.pendingFrom = std::max(from, upTo + 1);
  if (w.pendingFrom > hub_->dispatched()) w.synced = true;
}

}  // namespace

Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options) {
  if (options.path.empty()) return Status::badRequest("the SQLite store needs a database path");
  auto store = std::make_unique<SqliteStore>(options);
  if (auto s = store->open(); !s.isOk()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace orrery::store
