#pragma once
// The SQLite timeline store: a writer thread doing group commit on one
// connection (SqliteWriter), and incident reads on a read-only connection
// and thread of their own (WAL readers never wait for the writer's lock).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/store/sqlite/sqlite_source.hpp"
#include "engine/store/sqlite/sqlite_writer.hpp"
#include "engine/store/timeline_store.hpp"

namespace zonecall {

class SqliteTimelineStore final : public TimelineStore {
 public:
  // Opens (creating if needed) and checks the schema; throws StoreFailure.
  // At most `max_queued_batches` appends wait for the writer at once.
  SqliteTimelineStore(SqliteOptions options, std::size_t max_queued_batches);
  ~SqliteTimelineStore() override;

  TimelineSource& source() override { return source_; }
  void record_policy(const std::string& fingerprint, sla::Millis now, PolicyDone done) override;
  void start() override;
  void stop() override;
  void append(Batch events, AppendDone done) override;
  bool has_room() const override;
  void read_incident(std::uint64_t incident_id, ReadDone done) override;
  void read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) override;
  void resume() override;
  // Group-commit figures: events per commit, commit time, failures, and the
  // queue's length and refusals.
  void render_metrics(std::string& out) const override;

 private:
  struct Job;
  void run();
  void enqueue(Job job);
  bool running() const { return thread_.joinable(); }
  void run_reader();
  struct IncidentRead {
    std::uint64_t incident_id = 0;
    ReadDone done;
  };

  SqliteOptions options_;
  const std::size_t max_queued_batches_;
  std::unique_ptr<SqliteWriter> writer_;
  SqliteSource source_;  // on the writer's connection: before start() only
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Job> queue_;  // vector: Job is incomplete here
  // Appends queued and not yet answered; a refused one is not counted.
  std::atomic<std::size_t> queued_batches_{0};
  mutable std::mutex stats_mutex_;  // the writer records, /metrics reads
  Histogram batch_events_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
  Histogram commit_seconds_{{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1}};
  std::uint64_t failed_commits_ = 0;
  std::uint64_t refused_appends_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  std::mutex reader_mutex_;
  std::condition_variable reader_wake_;
  std::vector<IncidentRead> reader_queue_;
  bool reader_stopping_ = false;
  std::thread reader_thread_;
};

}  // namespace zonecall
