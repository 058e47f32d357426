#pragma once
// The PostgreSQL timeline store: group commit (GroupCommitStore) on the
// writer's connection (PgWriter), recovery's scan on a connection of its
// own, and incident reads on a third, on the reader thread.
#include <cstddef>
#include <memory>

#include "engine/store/group_commit_store.hpp"
#include "engine/store/postgres/pg_source.hpp"
#include "engine/store/postgres/pg_writer.hpp"

namespace zonecall {

class PgTimelineStore final : public GroupCommitStore {
 public:
  // Connects, creating the schema or upgrading it; throws StoreFailure.
  PgTimelineStore(const PgOptions& options, std::size_t max_queued_batches);
  ~PgTimelineStore() override { stop(); }

  TimelineSource& source() override { return *source_; }

 private:
  std::unique_ptr<PgSource> source_;
};

}  // namespace zonecall
