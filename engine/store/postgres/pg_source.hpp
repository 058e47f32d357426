#pragma once
// A PostgreSQL timeline, read, on a connection of its own: recovery (before
// the store starts), `zonecall replay` and the audit, which are safe while
// a server writes (each scan reads one snapshot), and the live engine's
// incident reads.
#include <memory>
#include <string>

#include "engine/store/postgres/pg.hpp"
#include "engine/store/timeline_source.hpp"

namespace zonecall {

class PgSource final : public TimelineSource {
 public:
  // Connects now; a connection found lost later is made again, and the
  // read tried once more (reading twice is harmless).
  PgSource(std::string conninfo, std::string schema);
  // Connects for reading; throws std::invalid_argument if the schema holds
  // no timeline, and StoreFailure if it cannot be read or a newer zonecall wrote it.
  static std::unique_ptr<PgSource> open_read_only(const std::string& conninfo, const std::string& schema);

  // In one REPEATABLE READ transaction, fetched in pages through a cursor.
  std::unique_ptr<RowCursor> scan(ScanFields fields) override;
  std::map<std::uint32_t, std::string> policy_versions() override;
  std::vector<v1::TimelineEvent> incident_events(std::uint64_t incident_id) override;
  // The highest incident id, capped by the highest seq and by the rows the
  // table's size could hold (each incident has a report row).
  std::uint64_t incident_id_bound() override;

 private:
  template <class Read>
  auto retrying(Read read);
  std::string conninfo_;
  std::string schema_;
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace zonecall
