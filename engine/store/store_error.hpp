#pragma once
// What went wrong in storage, typed so that callers can tell a full disk
// from a locked database or a lost connection, and worded for a log line.
// Every backend maps its own failures to these kinds (SQLite:
// engine/store/sqlite/sqlite.cpp; PostgreSQL: engine/store/postgres/pg.cpp).
#include <optional>
#include <stdexcept>
#include <string>

namespace zonecall {

class StoreError {
 public:
  enum class Kind {
    full,             // the disk, or the configured size cap (--max-db-mb), is full
    locked,           // another writer held the database past the busy timeout
    corrupt,          // the stored data is not what was written (or not a database)
    connection_lost,  // the storage could not be reached: an I/O error, a vanished file,
                      // a dropped database connection
    fenced,           // another engine has taken over the timeline; this one must stop
                      // writing (PostgreSQL: its term is no longer current)
    overloaded,       // the writer's queue was full: the write was not queued
    other,
  };

  // No error. Completions say so with std::nullopt, as when this type was
  // an optional string.
  StoreError() = default;
  StoreError(std::nullopt_t) {}  // NOLINT: implicit on purpose, see above
  StoreError(Kind kind, std::string message)
      : failed_(true), kind_(kind), message_(std::move(message)) {}

  explicit operator bool() const { return failed_; }
  Kind kind() const { return kind_; }  // meaningful only when failed
  const std::string& message() const { return message_; }

 private:
  bool failed_ = false;
  Kind kind_ = Kind::other;
  std::string message_;
};

// The kind as logs and metrics write it: "full", "locked", "connection_lost", ...
const char* kind_name(StoreError::Kind kind);

// Thrown by what a store does on the caller's thread (opening, recovery's
// scan, the read-only tools' reads); what() is the error's message.
class StoreFailure : public std::runtime_error {
 public:
  explicit StoreFailure(StoreError error)
      : std::runtime_error(error.message()), error_(std::move(error)) {}
  const StoreError& error() const { return error_; }

 private:
  StoreError error_;
};

// An exception caught around a store operation, as a StoreError: a
// StoreFailure keeps its kind, anything else is `other`. The message is
// `doing` followed by what().
StoreError store_error_of(const std::exception& e, const std::string& doing);

}  // namespace zonecall
