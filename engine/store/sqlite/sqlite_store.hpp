#pragma once
// The SQLite timeline store: group commit (GroupCommitStore) on one
// connection (SqliteWriter), and incident reads on a read-only connection
// and thread of their own (WAL readers never wait for the writer's lock).
#include <cstddef>
#include <memory>

#include "engine/store/group_commit_store.hpp"
#include "engine/store/sqlite/sqlite_source.hpp"
#include "engine/store/sqlite/sqlite_writer.hpp"

namespace zonecall {

class SqliteTimelineStore final : public GroupCommitStore {
 public:
  // Opens (creating if needed) and checks the schema; throws StoreFailure.
  // At most `max_queued_batches` appends wait for the writer at once.
  SqliteTimelineStore(const SqliteOptions& options, std::size_t max_queued_batches);
  ~SqliteTimelineStore() override { stop(); }

  TimelineSource& source() override { return source_; }

 private:
  SqliteTimelineStore(const SqliteOptions& options, std::unique_ptr<SqliteWriter> writer,
                      std::size_t max_queued_batches);
  SqliteSource source_;  // on the writer's connection: before start() only
};

}  // namespace zonecall
