#pragma once
// The one place that chooses a storage backend: PostgreSQL when the
// location is a postgres:// or postgresql:// URI (engine/store/postgres/,
// docs/postgres.md), else a SQLite file (engine/store/sqlite/).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/store/timeline_source.hpp"
#include "engine/store/timeline_store.hpp"

namespace zonecall {

struct StoreOptions {
  static constexpr std::size_t kDefaultMaxQueuedWrites = 10'000;
  // Where the timeline is: the SQLite file's path, or a PostgreSQL URI.
  std::string location = "zonecall.db";
  // Fsync at every group commit (SQLite synchronous=FULL), so an
  // acknowledged event survives power loss too; else a process crash only.
  bool synchronous_full = true;
  // How long a commit waits for a locked database (PostgreSQL: lock_timeout).
  int busy_timeout_ms = 5000;
  std::int64_t max_db_pages = 0;  // a size cap in 4 KiB pages; 0: none (SQLite only)
  // Writes (one request's or one deadline tick's events each) that may wait
  // for the disk at once; beyond it an append fails with `overloaded`.
  std::size_t max_queued_writes = kDefaultMaxQueuedWrites;
  // PostgreSQL: the street office's schema (--pg-schema), created if missing.
  std::string pg_schema = kDefaultPgSchema;
  static constexpr const char* kDefaultPgSchema = "public";
};

// Opens the timeline for writing, creating it if new, and upgrading its
// schema if an older zonecall wrote it. Throws StoreFailure.
std::unique_ptr<TimelineStore> open_store(const StoreOptions& options);

// Opens the timeline read-only, for `zonecall replay`, the audit and the
// tests: safe while a server writes to it. Throws std::invalid_argument if
// there is none at `location` (in `pg_schema`, for PostgreSQL), and
// StoreFailure if it cannot be read.
std::unique_ptr<TimelineSource> open_source(const std::string& location,
                                            const std::string& pg_schema = StoreOptions::kDefaultPgSchema);

}  // namespace zonecall
