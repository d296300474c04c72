#pragma once
// Private to engine/store: a thin RAII layer over one SQLite connection with a cache of
// prepared statements. A Conn is used by one thread at a time (opened NOMUTEX).

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/api/status.h"

namespace orrery::store::sqlite {

using api::Result;
using api::Status;

class Conn {
 public:
  enum class Role { kWriter, kReader };

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  /// Opens `path` (the writer creates it) and applies the pragmas of its role.
  static Result<std::unique_ptr<Conn>> open(const std::string& path, Role role);

  sqlite3* db() const { return db_; }
  /// A 500 InternalError carrying SQLite's own message.
  Status error(std::string_view what) const;
  /// A prepared statement kept for the connection's lifetime; nullptr (and `status`) on error.
  sqlite3_stmt* prepare(const std::string& sql, Status* status);
  /// Runs SQL text that returns nothing of interest (schema, pragmas).
  Status exec(const std::string& sql);

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

/// One use of a cached statement: bind, step, read columns; reset on destruction.
class Query {
 public:
  Query(Conn& conn, const std::string& sql) : conn_(conn) { stmt_ = conn.prepare(sql, &status_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  bool ok() const { return stmt_ != nullptr && status_.isOk(); }
  const Status& status() const { return status_; }

  // Text is bound without copying: the argument must outlive the stepping.
  Query& bind(int index, std::string_view text) {
    if (stmt_) sqlite3_bind_text(stmt_, index, text.data() ? text.data() : "",
                                 static_cast<int>(text.size()), SQLITE_STATIC);
    return *this;
  }
  Query& bind(int index, int64_t number) {
    if (stmt_) sqlite3_bind_int64(stmt_, index, number);
    return *this;
  }

  /// True while there is a row; false when done or failed (then status() says why).
  bool step() {
    if (!stmt_ || !status_.isOk()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = conn_.error("step");
    return false;
  }
  /// Steps to the end; for statements run for their effect.
  Status run() {
    while (step()) {
    }
    return status_;
  }

  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }

 private:
  Conn& conn_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
};

}  // namespace orrery::store::sqlite
