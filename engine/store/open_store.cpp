#include "engine/store/open_store.hpp"

#include <fstream>
#include <stdexcept>

#include "engine/store/postgres/pg_source.hpp"
#include "engine/store/postgres/pg_store.hpp"
#include "engine/store/sqlite/sqlite_source.hpp"
#include "engine/store/sqlite/sqlite_store.hpp"

namespace zonecall {

namespace {
PgOptions pg_options(const StoreOptions& options) {
  return PgOptions{options.location, options.pg_schema, options.busy_timeout_ms};
}
}  // namespace

std::unique_ptr<TimelineStore> open_store(const StoreOptions& options) {
  if (pg::is_postgres_location(options.location)) {
    return std::make_unique<PgTimelineStore>(pg_options(options), options.max_queued_writes);
  }
  return std::make_unique<SqliteTimelineStore>(
      SqliteOptions{options.location, options.synchronous_full, options.busy_timeout_ms,
                    options.max_db_pages},
      options.max_queued_writes);
}

std::unique_ptr<TimelineSource> open_source(const std::string& location, const std::string& pg_schema) {
  if (pg::is_postgres_location(location)) {
    return PgSource::open_read_only(location, pg_schema);
  }
  if (!std::ifstream(location)) {
    throw std::invalid_argument("no database at " + location);
  }
  return SqliteSource::open_read_only(location);
}

}  // namespace zonecall
