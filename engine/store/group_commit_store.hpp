#pragma once
// The part of a TimelineStore that every backend shares: the writer thread
// and its bounded queue (group commit, refusals, resume), the incident
// reader thread, and the figures for /metrics. A backend supplies what runs
// on those threads: a TimelineWriter (its connection and transaction) and
// an IncidentReader (a connection of its own, made on first use).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/store/timeline_store.hpp"

namespace zonecall {

// A backend's writing connection. Used by one thread at a time: the
// caller's before the store starts, the writer thread's after.
class TimelineWriter {
 public:
  using Batches = std::vector<const std::vector<v1::TimelineEvent>*>;
  virtual ~TimelineWriter() = default;
  // One transaction for all the events of all the batches, each in seq
  // order after the last committed; returns only after COMMIT. Throws
  // StoreFailure, and then leaves the chain where it was, unless the commit
  // is known to have landed despite the error.
  virtual void commit(const Batches& batches) = 0;
  // Up to `limit` committed events with seq > after_seq, in order.
  virtual std::vector<v1::TimelineEvent> read_after(std::uint64_t after_seq, std::size_t limit) = 0;
  virtual std::uint64_t last_committed_seq() const = 0;
  // The policy's version: the one recorded before if it is unchanged, else a new one.
  virtual std::uint32_t record_policy(const std::string& fingerprint, sla::Millis now) = 0;
  // After the writer thread has stopped (SQLite: checkpoint the WAL).
  virtual void finish() {}
  // TimelineStore::lead: the new term. Only PostgreSQL has leaders.
  virtual std::int64_t lead(const std::string& holder, sla::Millis now);
  // TimelineStore::commit_in_doubt. Thread-safe.
  virtual bool commit_in_doubt() const { return false; }
};

// An incident's committed events, on the reader thread's own connection.
class IncidentReader {
 public:
  virtual ~IncidentReader() = default;
  virtual std::vector<v1::TimelineEvent> read(std::uint64_t incident_id) = 0;
};

class GroupCommitStore : public TimelineStore {
 public:
  using ReaderFactory = std::function<std::unique_ptr<IncidentReader>()>;
  // At most `max_queued_batches` appends wait for the writer at once.
  GroupCommitStore(std::unique_ptr<TimelineWriter> writer, ReaderFactory make_reader,
                   std::size_t max_queued_batches);
  ~GroupCommitStore() override;

  void record_policy(const std::string& fingerprint, sla::Millis now, PolicyDone done) override;
  void start() override;
  void stop() override;
  void append(Batch events, AppendDone done) override;
  bool has_room() const override;
  bool commit_in_doubt() const override { return writer_->commit_in_doubt(); }
  void read_incident(std::uint64_t incident_id, ReadDone done) override;
  void read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) override;
  void resume() override;
  void lead(const std::string& holder, sla::Millis now, LeadDone done) override;
  // Group-commit figures: events per commit, commit time, failures, and the
  // queue's length and refusals. The same names for every backend.
  void render_metrics(std::string& out) const override;

 protected:
  TimelineWriter& writer() { return *writer_; }

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

  std::unique_ptr<TimelineWriter> writer_;
  ReaderFactory make_reader_;
  const std::size_t max_queued_batches_;
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
