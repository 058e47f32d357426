#pragma once
// Read-only access to a timeline database, for `zonecall replay` and the
// audit. Safe while a server writes to the same file (WAL readers).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/store/sqlite.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// Streams every event of an open database in seq order (read on a second
// thread, see EventPipeline); throws sqlite::Error (SQLITE_CORRUPT) on a row
// that holds no readable event.
void read_all_events(sqlite::Database& db, const std::function<void(const v1::TimelineEvent&)>& each);

// Every policy version recorded in an open database: version -> fingerprint.
std::map<std::uint32_t, std::string> read_policy_versions(sqlite::Database& db);

class TimelineReader {
 public:
  explicit TimelineReader(const std::string& path);
  void for_each_event(const std::function<void(const v1::TimelineEvent&)>& each);
  // The connection, for an EventPipeline that also checks the hash chain.
  sqlite::Database& db() { return db_; }
  // One incident's events in seq order.
  std::vector<v1::TimelineEvent> incident_events(std::uint64_t incident_id);
  // Every policy version the engine has run with: version -> fingerprint.
  std::map<std::uint32_t, std::string> policy_versions();
  // How many incident ids the timeline can hold: its highest id, capped by
  // its highest seq and by the rows its file could hold (each incident has
  // a report row), so a forged id or seq cannot inflate it. No scan.
  std::uint64_t incident_id_bound();

 private:
  sqlite::Database db_;
};

}  // namespace zonecall
