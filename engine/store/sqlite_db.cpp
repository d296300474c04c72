#include "engine/store/sqlite_db.h"

namespace orrery::store::sqlite {

Conn::~Conn() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  if (db_) sqlite3_close_v2(db_);
}

Status Conn::error(std::string_view what) const {
  return Status::internal("sqlite: " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

sqlite3_stmt* Conn::prepare(const std::string& sql, Status* status) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    if (status) *status = error("prepare \"" + sql + "\"");
    sqlite3_finalize(stmt);
    return nullptr;
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

Status Conn::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status::internal("sqlite: " + sql + ": " + message);
  }
  return {};
}

Result<std::unique_ptr<Conn>> Conn::open(const std::string& path, Role role) {
  auto conn = std::make_unique<Conn>();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (role == Role::kWriter) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &conn->db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = conn->db_ ? sqlite3_errmsg(conn->db_) : sqlite3_errstr(rc);
    return Status::internal("sqlite: open " + path + ": " + message);
  }
  sqlite3_extended_result_codes(conn->db_, 1);
  // Readers in WAL mode never wait for the writer; the timeout covers the rare moments
  // (WAL recovery, checkpoint restart) where SQLite briefly locks.
  sqlite3_busy_timeout(conn->db_, 5000);

  if (role == Role::kWriter) {
    // WAL + synchronous=FULL: each commit fsyncs the WAL, so an acknowledged write survives
    // kill -9 and power loss. Group commit amortizes that fsync over every queued txn.
    Query mode(*conn, "PRAGMA journal_mode=WAL");
    std::string journal = mode.step() ? mode.text(0) : std::string();
    if (!mode.status().isOk()) return mode.status();
    if (journal != "wal") {
      return Status::internal("sqlite: " + path + ": cannot use WAL journal mode (got \"" +
                              journal + "\")");
    }
    for (const char* pragma : {
             "PRAGMA synchronous=FULL",
             // 8 MiB: a write touches the B-trees' inner pages and one leaf each; a miss reads
             // the page back from the kernel's cache. 16 MiB bought no measurable throughput.
             "PRAGMA cache_size=-8192",
             "PRAGMA wal_autocheckpoint=1000",  // pages; keeps the WAL around 4 MiB
             "PRAGMA journal_size_limit=16777216",
             "PRAGMA temp_store=MEMORY",
         }) {
      if (auto s = conn->exec(pragma); !s.isOk()) return s;
    }
  } else {
    for (const char* pragma : {
             "PRAGMA query_only=1",
             // 2 MiB, and no mmap: a mapped database's pages count in the process's RSS
             // once read (a `kubectl get events` over 10,000 Events mapped 130 MB of it);
             // pread costs reads of 10,000 objects a few milliseconds, gets nothing visible.
             "PRAGMA cache_size=-2048",
             "PRAGMA mmap_size=0",
             "PRAGMA temp_store=MEMORY",
         }) {
      if (auto s = conn->exec(pragma); !s.isOk()) return s;
    }
  }
  return conn;
}

}  // namespace orrery::store::sqlite
