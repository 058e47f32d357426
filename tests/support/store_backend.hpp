#pragma once
// One timeline for a test, on either backend: a SQLite file in a temporary
// directory, or a fresh database on the shared PostgreSQL cluster. Tests of
// behaviour rather than of SQLite run on both (Catch2 GENERATE).
#include <memory>
#include <string>

#include "engine/store/open_store.hpp"
#include "support/fixtures.hpp"

namespace zonecall::testing {

enum class Backend { sqlite, postgres };
const char* backend_name(Backend backend);

class TestTimeline {
 public:
  explicit TestTimeline(Backend backend);
  Backend backend() const { return backend_; }
  // Where the timeline is, as --db or --store takes it.
  const std::string& location() const { return location_; }
  StoreOptions options() const { return StoreOptions{location_}; }
  // The first value `sql` returns, read on a connection of the test's own.
  std::int64_t value(const std::string& sql) const;
  // Runs `sql` on a connection of the test's own.
  void exec(const std::string& sql) const;

  // Holds the writer off: another connection takes the write lock of the
  // timeline and the policy versions (SQLite: BEGIN IMMEDIATE; PostgreSQL:
  // LOCK TABLE ... IN EXCLUSIVE MODE) until release() or destruction.
  class Lock {
   public:
    virtual ~Lock() = default;
    virtual void release() = 0;
  };
  std::unique_ptr<Lock> lock() const;
  // What the backend says when a commit gave up waiting for that lock.
  std::string locked_message() const;

 private:
  Backend backend_;
  TempDir dir_;
  std::string location_;
};

}  // namespace zonecall::testing
