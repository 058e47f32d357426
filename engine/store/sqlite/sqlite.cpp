#include "engine/store/sqlite/sqlite.hpp"

namespace zonecall::sqlite {

StoreError::Kind error_kind(int code) {
  switch (code & 0xFF) {
    case SQLITE_FULL:  // the disk, or max_page_count (--max-db-mb)
      return StoreError::Kind::full;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StoreError::Kind::locked;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StoreError::Kind::corrupt;
    case SQLITE_IOERR:     // the disk failed a read, write or fsync
    case SQLITE_CANTOPEN:  // the file or its directory went away
      return StoreError::Kind::connection_lost;
    default:
      return StoreError::Kind::other;
  }
}

Database::Database(const std::string& path, int flags) : db_(nullptr, sqlite3_close_v2) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) {
    fail(rc, "open " + path);
  }
  sqlite3_extended_result_codes(raw, 0);
}

void Database::fail(int code, std::string_view doing) const {
  std::string msg(doing);
  msg += ": ";
  msg += db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(code);
  throw Error(code & 0xFF, msg);
}

void Database::exec(const char* sql) {
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    fail(rc, sql);
  }
}

Statement::Statement(Database& db, const char* sql) : db_(db), stmt_(nullptr, sqlite3_finalize) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db.handle(), sql, -1, &raw, nullptr);
  stmt_.reset(raw);
  if (rc != SQLITE_OK) {
    db.fail(rc, std::string("prepare ") + sql);
  }
}

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (rc != SQLITE_OK) {
    db_.fail(rc, "bind");
  }
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  const int rc = sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    db_.fail(rc, "bind");
  }
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  const int rc = sqlite3_bind_blob(stmt_.get(), index, bytes.data(), static_cast<int>(bytes.size()),
                                   SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    db_.fail(rc, "bind");
  }
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  sqlite3_reset(stmt_.get());
  db_.fail(rc, std::string("step ") + sqlite3_sql(stmt_.get()));
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::int64_t Statement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_.get(), index);
}

std::string_view Statement::column_blob(int index) const {
  const void* data = sqlite3_column_blob(stmt_.get(), index);
  const int size = sqlite3_column_bytes(stmt_.get(), index);
  return {static_cast<const char*>(data), static_cast<std::size_t>(size)};
}

bool Statement::column_is_integer(int index) const {
  return sqlite3_column_type(stmt_.get(), index) == SQLITE_INTEGER;
}

std::string_view Statement::column_text(int index) const {
  const auto* data = sqlite3_column_text(stmt_.get(), index);
  const int size = sqlite3_column_bytes(stmt_.get(), index);
  return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(size)};
}

Transaction::Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (state_ == State::open) {
    // Never throws: a failed ROLLBACK leaves SQLite to roll back on close.
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    state_ = State::rolled_back;
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  state_ = State::committed;
}

}  // namespace zonecall::sqlite
