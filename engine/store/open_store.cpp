#include "engine/store/open_store.hpp"

#include <fstream>
#include <stdexcept>

#include "engine/store/sqlite/sqlite_source.hpp"
#include "engine/store/sqlite/sqlite_store.hpp"

namespace zonecall {

std::unique_ptr<TimelineStore> open_store(const StoreOptions& options) {
  return std::make_unique<SqliteTimelineStore>(
      SqliteOptions{options.location, options.synchronous_full, options.busy_timeout_ms,
                    options.max_db_pages},
      options.max_queued_writes);
}

std::unique_ptr<TimelineSource> open_source(const std::string& location) {
  if (!std::ifstream(location)) {
    throw std::invalid_argument("no database at " + location);
  }
  return SqliteSource::open_read_only(location);
}

}  // namespace zonecall
