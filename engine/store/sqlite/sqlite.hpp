#pragma once
// A thin RAII layer over the SQLite C API (after SQLiteCpp): a statement owns
// its sqlite3_stmt, a transaction rolls back in its destructor unless it was
// committed, and no destructor throws. Failures throw sqlite::Error, a
// StoreFailure whose kind comes from the result code.
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/store/store_error.hpp"

namespace zonecall::sqlite {

// The store error kind of a primary SQLite result code.
StoreError::Kind error_kind(int code);

class Error : public StoreFailure {
 public:
  Error(int code, const std::string& what) : StoreFailure(StoreError(error_kind(code), what)), code_(code) {}
  int code() const { return code_; }  // the primary SQLite result code

 private:
  int code_;
};

class Database {
 public:
  // flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, or SQLITE_OPEN_READONLY.
  Database(const std::string& path, int flags);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(const char* sql);
  sqlite3* handle() const { return db_.get(); }
  [[noreturn]] void fail(int code, std::string_view doing) const;

 private:
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db_;
};

class Statement {
 public:
  Statement(Database& db, const char* sql);

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, std::string_view bytes);
  // True while there is a row; false when done.
  bool step();
  void reset();

  std::int64_t column_int64(int index) const;
  bool column_is_integer(int index) const;  // stored as INTEGER, not converted
  std::string_view column_blob(int index) const;
  std::string_view column_text(int index) const;

 private:
  Database& db_;
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt_;
};

class Transaction {
 public:
  // BEGIN IMMEDIATE: take the write lock now, not at the first write.
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit();

 private:
  enum class State { open, committed, rolled_back };
  Database& db_;
  State state_ = State::open;
};

}  // namespace zonecall::sqlite
