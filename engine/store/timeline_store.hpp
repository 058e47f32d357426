#pragma once
// The durable timeline. One writer thread does group commit: everything
// queued since the last commit goes into one transaction, and each caller's
// completion runs only after COMMIT returned. Completions run on the writer
// thread; the dispatcher posts them back to its own thread.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/store/event_pipeline.hpp"
#include "sla/clock.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// An error from storage, already worded for a log line.
using StoreError = std::optional<std::string>;

// The interface the engine depends on; SQLite is the first backend.
class TimelineStore {
 public:
  using AppendDone = std::function<void(const StoreError& error)>;
  using ReadDone = std::function<void(std::vector<v1::TimelineEvent> events, const StoreError& error)>;
  // A page of events, and the newest committed seq when it was read.
  using PageDone = std::function<void(std::vector<v1::TimelineEvent> events,
                                      std::uint64_t last_committed_seq, const StoreError& error)>;

  virtual ~TimelineStore() = default;

  // The version of this policy (see config::policy_fingerprint): the one
  // recorded before if it is unchanged, else a new version. At startup, and
  // again when the config is reloaded.
  virtual std::uint32_t record_policy(const std::string& fingerprint, sla::Millis now) = 0;

  // -- at startup, before start() --
  // Every event in seq order, checking the seqs and the hash chain as it
  // goes; throws on a row that holds no readable event.
  virtual ChainVerdict load(const std::function<void(const v1::TimelineEvent&)>& each) = 0;
  // Every policy version recorded: version -> fingerprint.
  virtual std::map<std::uint32_t, std::string> policy_versions() = 0;

  // -- while running --
  virtual void start() = 0;
  // Finishes everything queued, then stops the writer.
  virtual void stop() = 0;
  // The events are shared, not copied: the caller keeps them for its
  // completion, and must not change them.
  using Batch = std::shared_ptr<const std::vector<v1::TimelineEvent>>;
  virtual void append(Batch events, AppendDone done) = 0;
  // The incident's committed events. Never waits for a commit: an append
  // whose completion has run is included, one still in flight may not be.
  virtual void read_incident(std::uint64_t incident_id, ReadDone done) = 0;
  // Up to `limit` events with seq > after_seq, in order, reflecting every
  // append queued before this call.
  virtual void read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) = 0;
  // After a failed commit every later append fails too, until the owner has
  // rolled back its state and calls resume(): appends queued after it run.
  virtual void resume() = 0;
};

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

class SqliteTimelineStore final : public TimelineStore {
 public:
  // Opens (creating if needed) and checks the schema; throws sqlite::Error.
  explicit SqliteTimelineStore(SqliteOptions options);
  ~SqliteTimelineStore() override;

  std::uint32_t record_policy(const std::string& fingerprint, sla::Millis now) override;
  ChainVerdict load(const std::function<void(const v1::TimelineEvent&)>& each) override;
  std::map<std::uint32_t, std::string> policy_versions() override;
  void start() override;
  void stop() override;
  void append(Batch events, AppendDone done) override;
  void read_incident(std::uint64_t incident_id, ReadDone done) override;
  void read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) override;
  void resume() override;
  // Group-commit figures for /metrics: events per commit and commit time.
  void render_metrics(std::string& out) const;

 private:
  struct Job;
  class Writer;
  void run();
  void enqueue(Job job);
  // Incident reads on a connection and thread of their own (WAL readers
  // never wait for the writer's lock).
  void run_reader();
  struct IncidentRead {
    std::uint64_t incident_id = 0;
    ReadDone done;
  };

  SqliteOptions options_;
  std::unique_ptr<Writer> writer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Job> queue_;  // vector: Job is incomplete here
  mutable std::mutex stats_mutex_;  // the writer records, /metrics reads
  Histogram batch_events_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
  Histogram commit_seconds_{{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1}};
  std::uint64_t failed_commits_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  std::mutex reader_mutex_;
  std::condition_variable reader_wake_;
  std::vector<IncidentRead> reader_queue_;
  bool reader_stopping_ = false;
  std::thread reader_thread_;
};

}  // namespace zonecall
