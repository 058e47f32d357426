#pragma once
// A SQLite timeline file, read: on the writer's own connection before it
// starts (recovery), or on a read-only connection of its own for `zonecall
// replay` and the audit, which is safe while a server writes to the same
// file (WAL readers).
#include <memory>
#include <string>

#include "engine/store/sqlite/sqlite.hpp"
#include "engine/store/timeline_source.hpp"

namespace zonecall {

class SqliteSource final : public TimelineSource {
 public:
  // Reads through `db`, which must outlive this source.
  explicit SqliteSource(sqlite::Database& db) : db_(db) {}
  // Opens `path` read-only (a copy on a read-only filesystem too); throws
  // StoreFailure if it cannot, or if a newer zonecall wrote it.
  static std::unique_ptr<SqliteSource> open_read_only(const std::string& path);

  std::unique_ptr<RowCursor> scan(ScanFields fields) override;
  std::map<std::uint32_t, std::string> policy_versions() override;
  std::vector<v1::TimelineEvent> incident_events(std::uint64_t incident_id) override;
  // The highest incident id, capped by the highest seq and by the rows the
  // file's pages could hold (each incident has a report row).
  std::uint64_t incident_id_bound() override;

 private:
  SqliteSource(std::unique_ptr<sqlite::Database> owned);
  std::unique_ptr<sqlite::Database> owned_;  // null when borrowed
  sqlite::Database& db_;
};

}  // namespace zonecall
