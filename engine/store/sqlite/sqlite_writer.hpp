#pragma once
// The SQLite store's connection and everything it writes: the group
// commit's transaction, the hash chain's next link, policy versions. Used
// by one thread at a time: the caller's before the store starts, the
// writer thread's after.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/store/group_commit_store.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "sla/clock.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

struct SqliteOptions {
  std::string path;
  // FULL: fsync the WAL at every group commit, so an acknowledged event
  // survives power loss too. NORMAL survives a process crash only.
  bool synchronous_full = true;
  int busy_timeout_ms = 5000;
  // A cap on the database size in pages (0: none). At the cap a commit
  // fails as on a full disk.
  std::int64_t max_pages = 0;
};

class SqliteWriter final : public TimelineWriter {
 public:
  // Opens (creating if needed) and brings the schema up to date; throws
  // StoreFailure (sqlite::Error).
  explicit SqliteWriter(const SqliteOptions& options);

  sqlite::Database& db() { return db_; }

  // One transaction for all the events of all the batches, each in seq
  // order after the last committed; throws on failure, and then leaves the
  // chain where it was, unless the commit landed despite the error.
  void commit(const Batches& batches) override;
  // Up to `limit` committed events with seq > after_seq, in order.
  std::vector<v1::TimelineEvent> read_after(std::uint64_t after_seq, std::size_t limit) override;
  std::uint64_t last_committed_seq() const override { return next_seq_ - 1; }
  // The policy's version: the one recorded before if it is unchanged, else a new one.
  std::uint32_t record_policy(const std::string& fingerprint, sla::Millis now) override;
  // Moves the WAL into the main file and empties it (a clean stop), so the
  // next start (or a copy of the file) needs no WAL replay.
  void finish() override;

  // Runs a bound statement whose first column is an event payload.
  static std::vector<v1::TimelineEvent> read_events(sqlite::Statement& q);

 private:
  // Whether the file holds `seq` (and takes the chain up to it if so).
  bool landed(std::uint64_t seq) noexcept;

  sqlite::Database db_;
  std::unique_ptr<sqlite::Statement> insert_;
  std::unique_ptr<sqlite::Statement> after_seq_;
  std::uint64_t next_seq_ = 1;
  std::string last_link_;
};

}  // namespace zonecall
