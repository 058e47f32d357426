#include "engine/store/group_commit_store.hpp"

#include <chrono>

#include "engine/log.hpp"

namespace zonecall {

struct GroupCommitStore::Job {
  enum class Kind {
    append,
    refused,  // an append past the queue's bound: no events, answered in its turn
    read_after,
    policy,
    resume,
    lead,  // a new term: also a resume
  } kind;
  explicit Job(Kind k) : kind(k) {}
  Batch events;
  std::uint64_t after_seq = 0;
  std::size_t limit = 0;
  std::string fingerprint;
  sla::Millis now = 0;
  AppendDone append_done;
  PageDone page_done;
  PolicyDone policy_done;
  LeadDone lead_done;
};

namespace {
void record_policy_now(TimelineWriter& writer, const std::string& fingerprint, sla::Millis now,
                       const TimelineStore::PolicyDone& done) {
  std::uint32_t version = 0;
  StoreError error;
  try {
    version = writer.record_policy(fingerprint, now);
  } catch (const std::exception& e) {
    error = store_error_of(e, "recording the policy version: ");
  }
  done(version, error);
}
}  // namespace

GroupCommitStore::GroupCommitStore(std::unique_ptr<TimelineWriter> writer, ReaderFactory make_reader,
                                   std::size_t max_queued_batches)
    : writer_(std::move(writer)),
      make_reader_(std::move(make_reader)),
      max_queued_batches_(max_queued_batches) {}

GroupCommitStore::~GroupCommitStore() { stop(); }

void GroupCommitStore::record_policy(const std::string& fingerprint, sla::Millis now,
                                        PolicyDone done) {
  if (!running()) {
    record_policy_now(*writer_, fingerprint, now, done);
    return;
  }
  Job job{Job::Kind::policy};
  job.fingerprint = fingerprint;
  job.now = now;
  job.policy_done = std::move(done);
  enqueue(std::move(job));
}

void GroupCommitStore::start() {
  thread_ = std::thread([this] { run(); });
  reader_thread_ = std::thread([this] { run_reader(); });
}

void GroupCommitStore::stop() {
  {
    std::lock_guard lock(reader_mutex_);
    reader_stopping_ = true;
  }
  reader_wake_.notify_one();
  if (reader_thread_.joinable()) {
    reader_thread_.join();
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
    writer_->finish();
  }
}

void GroupCommitStore::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void GroupCommitStore::append(Batch events, AppendDone done) {
  Job job{Job::Kind::append};
  if (queued_batches_.fetch_add(1) >= max_queued_batches_) {
    queued_batches_.fetch_sub(1);
    job.kind = Job::Kind::refused;
    std::lock_guard lock(stats_mutex_);
    ++refused_appends_;
  } else {
    job.events = std::move(events);
  }
  job.append_done = std::move(done);
  enqueue(std::move(job));
}

bool GroupCommitStore::has_room() const {
  return queued_batches_.load(std::memory_order_relaxed) < max_queued_batches_;
}

void GroupCommitStore::read_incident(std::uint64_t incident_id, ReadDone done) {
  {
    std::lock_guard lock(reader_mutex_);
    if (!reader_stopping_) {
      reader_queue_.push_back(IncidentRead{incident_id, std::move(done)});
      reader_wake_.notify_one();
      return;
    }
  }
  done({}, StoreError(StoreError::Kind::other, "the store is stopping"));  // never left unanswered
}

void GroupCommitStore::run_reader() {
  std::unique_ptr<IncidentReader> reader;
  std::vector<IncidentRead> reads;
  for (;;) {
    {
      std::unique_lock lock(reader_mutex_);
      reader_wake_.wait(lock, [&] { return reader_stopping_ || !reader_queue_.empty(); });
      if (reader_queue_.empty()) {
        return;
      }
      reads.swap(reader_queue_);
    }
    for (IncidentRead& read : reads) {
      try {
        if (!reader) {  // made on first use, once the writer has set the storage up
          reader = make_reader_();
        }
        read.done(reader->read(read.incident_id), std::nullopt);
      } catch (const std::exception& e) {
        reader.reset();  // a fresh connection next time (PostgreSQL: after a lost one)
        log::error("store.read_failed", {{"error", e.what()}});
        read.done({}, store_error_of(e, "read failed: "));
      }
    }
    reads.clear();
  }
}

void GroupCommitStore::read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) {
  Job job{Job::Kind::read_after};
  job.after_seq = after_seq;
  job.limit = limit;
  job.page_done = std::move(done);
  enqueue(std::move(job));
}

void GroupCommitStore::resume() { enqueue(Job{Job::Kind::resume}); }

std::int64_t TimelineWriter::lead(const std::string&, sla::Millis) {
  throw StoreFailure(StoreError(StoreError::Kind::other,
                                "leadership needs the PostgreSQL backend (--store postgres://...)"));
}

void GroupCommitStore::lead(const std::string& holder, sla::Millis now, LeadDone done) {
  Job job{Job::Kind::lead};
  job.fingerprint = holder;
  job.now = now;
  job.lead_done = std::move(done);
  enqueue(std::move(job));
}

void GroupCommitStore::render_metrics(std::string& out) const {
  std::lock_guard lock(stats_mutex_);
  out += "# HELP zonecall_commit_batch_events Events written per group commit.\n"
         "# TYPE zonecall_commit_batch_events histogram\n";
  batch_events_.render(out, "zonecall_commit_batch_events", "");
  out += "# HELP zonecall_commit_seconds Time each group commit took (fsync included).\n"
         "# TYPE zonecall_commit_seconds histogram\n";
  commit_seconds_.render(out, "zonecall_commit_seconds", "");
  out += "# HELP zonecall_commit_failures_total Group commits that failed (disk full, locked, ...).\n"
         "# TYPE zonecall_commit_failures_total counter\n"
         "zonecall_commit_failures_total " + std::to_string(failed_commits_) + "\n"
         "# HELP zonecall_write_queue_batches Writes waiting for the disk (each one request's or one deadline tick's events).\n"
         "# TYPE zonecall_write_queue_batches gauge\n"
         "zonecall_write_queue_batches " + std::to_string(queued_batches_.load()) + "\n"
         "# HELP zonecall_write_queue_refused_total Writes refused because the queue was at its bound (--max-queued-writes).\n"
         "# TYPE zonecall_write_queue_refused_total counter\n"
         "zonecall_write_queue_refused_total " + std::to_string(refused_appends_) + "\n";
}

void GroupCommitStore::run() {
  // Set by a failed commit or a refused append, until the owner resumes:
  // every append meanwhile fails with it.
  StoreError failure;
  std::vector<Job> jobs;
  std::vector<Job*> appends;
  std::vector<const std::vector<v1::TimelineEvent>*> batches;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and everything queued is done
      }
      jobs.swap(queue_);
    }
    // Appends between two resume markers (or refusals) commit together;
    // reads run after the commit, so they see every append queued before them.
    auto flush = [&] {
      if (appends.empty()) {
        return;
      }
      StoreError error;
      if (failure) {
        error = StoreError(failure.kind(), "an earlier write failed (" + std::string(kind_name(failure.kind())) +
                                               "); refusing later writes until recovered");
      } else {
        batches.clear();
        std::size_t events = 0;
        for (const Job* job : appends) {
          batches.push_back(job->events.get());
          events += job->events->size();
        }
        try {
          const auto started = std::chrono::steady_clock::now();
          writer_->commit(batches);
          const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
          std::lock_guard lock(stats_mutex_);
          batch_events_.observe(static_cast<double>(events));
          commit_seconds_.observe(took.count());
        } catch (const std::exception& e) {
          {
            std::lock_guard lock(stats_mutex_);
            ++failed_commits_;
          }
          error = store_error_of(e, "commit failed: ");
          failure = error;
          log::error("store.commit_failed", {{"error", e.what()},
                                             {"kind", kind_name(error.kind())},
                                             {"jobs", std::to_string(appends.size())}});
        }
      }
      queued_batches_.fetch_sub(appends.size());
      for (Job* job : appends) {
        job->append_done(error);
      }
      appends.clear();
    };
    for (Job& job : jobs) {
      if (job.kind == Job::Kind::append) {
        appends.push_back(&job);
      } else if (job.kind == Job::Kind::refused) {
        flush();
        const StoreError refused(StoreError::Kind::overloaded,
                                 "the write queue is full (" + std::to_string(max_queued_batches_) +
                                     " writes waiting for the disk)");
        if (!failure) {
          failure = refused;
          log::error("store.overloaded", {{"queued", std::to_string(max_queued_batches_)}});
        }
        job.append_done(refused);
      } else if (job.kind == Job::Kind::resume) {
        flush();
        failure = StoreError();
      } else if (job.kind == Job::Kind::lead) {
        flush();
        failure = StoreError();
        try {
          job.lead_done(writer_->lead(job.fingerprint, job.now), std::nullopt);
        } catch (const std::exception& e) {
          log::error("store.lead_failed", {{"error", e.what()}});
          job.lead_done(0, store_error_of(e, "taking the leader's term: "));
        }
      }
    }
    flush();
    for (const Job& job : jobs) {
      if (job.kind == Job::Kind::read_after) {
        try {
          job.page_done(writer_->read_after(job.after_seq, job.limit), writer_->last_committed_seq(),
                        std::nullopt);
        } catch (const std::exception& e) {
          log::error("store.read_failed", {{"error", e.what()}});
          job.page_done({}, 0, store_error_of(e, "read failed: "));
        }
      } else if (job.kind == Job::Kind::policy) {
        record_policy_now(*writer_, job.fingerprint, job.now, job.policy_done);
      }
    }
    jobs.clear();
  }
}

}  // namespace zonecall
