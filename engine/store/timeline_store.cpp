#include "engine/store/timeline_store.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "engine/log.hpp"
#include "engine/store/sqlite.hpp"
#include "engine/store/timeline_reader.hpp"
#include "engine/token.hpp"

namespace zonecall {

namespace {
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS timeline (
  seq         INTEGER PRIMARY KEY,   -- gap-free, in commit order
  incident_id INTEGER NOT NULL,
  kind        INTEGER NOT NULL,      -- TimelineEvent.kind field number
  at_ms       INTEGER NOT NULL,      -- server time
  actor       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,      -- the whole zonecall.v1.TimelineEvent
  hash        BLOB    NOT NULL       -- sha256(previous hash || payload)
);
CREATE INDEX IF NOT EXISTS timeline_by_incident ON timeline(incident_id);
CREATE TABLE IF NOT EXISTS policy_versions (
  version      INTEGER PRIMARY KEY,
  fingerprint  TEXT    NOT NULL UNIQUE,  -- config::policy_fingerprint()
  first_use_ms INTEGER NOT NULL
);
)sql";
}  // namespace

struct SqliteTimelineStore::Job {
  enum class Kind { append, read_after, resume } kind;
  explicit Job(Kind k) : kind(k) {}
  Batch events;
  std::uint64_t id = 0;  // the incident, or the seq to read after
  std::size_t limit = 0;
  AppendDone append_done;
  PageDone page_done;
};

// Everything that touches the database after start(); lives on the writer thread.
class SqliteTimelineStore::Writer {
 public:
  explicit Writer(const SqliteOptions& o)
      : db_(o.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    sqlite3_busy_timeout(db_.handle(), o.busy_timeout_ms);
    // SQLite falls back to read-only without a word; the timeline must be
    // writable, so say so plainly instead of failing on the first pragma.
    if (sqlite3_db_readonly(db_.handle(), "main") == 1 ||
        (std::filesystem::exists(o.path) && ::access(o.path.c_str(), W_OK) != 0) ||
        ::access(std::filesystem::absolute(o.path).parent_path().c_str(), W_OK) != 0) {
      throw sqlite::Error(SQLITE_READONLY,
                          "the database " + o.path +
                              " is read-only (its file, directory or filesystem); zonecall "
                              "needs to write its timeline and the WAL beside it");
    }
    db_.exec("PRAGMA journal_mode=WAL");
    db_.exec(o.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    db_.exec(kSchema);
    if (o.max_pages > 0) {
      db_.exec(("PRAGMA max_page_count=" + std::to_string(o.max_pages)).c_str());
    }
    insert_ = std::make_unique<sqlite::Statement>(
        db_, "INSERT INTO timeline(seq, incident_id, kind, at_ms, actor, payload, hash) "
             "VALUES(?,?,?,?,?,?,?)");
    after_seq_ = std::make_unique<sqlite::Statement>(
        db_, "SELECT payload FROM timeline WHERE seq > ? ORDER BY seq LIMIT ?");
    sqlite::Statement last(db_, "SELECT seq, hash FROM timeline ORDER BY seq DESC LIMIT 1");
    if (last.step()) {
      next_seq_ = static_cast<std::uint64_t>(last.column_int64(0)) + 1;
      last_hash_ = std::string(last.column_blob(1));
    }
  }

  sqlite::Database& db() { return db_; }

  // One transaction for all the events of all the jobs; throws on failure
  // and then leaves the chain state as it was.
  void commit(const std::vector<Job*>& jobs) {
    const std::uint64_t seq_before = next_seq_;
    const std::string hash_before = last_hash_;
    try {
      sqlite::Transaction tx(db_);
      std::string payload;
      for (const Job* job : jobs) {
        for (const auto& e : *job->events) {
          if (e.seq() != next_seq_) {
            throw sqlite::Error(SQLITE_MISUSE, "event seq " + std::to_string(e.seq()) +
                                                   " out of order, expected " +
                                                   std::to_string(next_seq_));
          }
          payload.clear();
          e.SerializeToString(&payload);
          last_hash_ = sha256_chain(last_hash_, payload);
          insert_->bind(1, static_cast<std::int64_t>(e.seq()))
              .bind(2, static_cast<std::int64_t>(e.incident_id()))
              .bind(3, static_cast<std::int64_t>(e.kind_case()))
              .bind(4, e.at_ms())
              .bind(5, e.actor_id())
              .bind_blob(6, payload)
              .bind_blob(7, last_hash_);
          insert_->step();
          insert_->reset();
          ++next_seq_;
        }
      }
      tx.commit();
    } catch (...) {
      insert_->reset();
      const std::uint64_t seq_after = next_seq_;
      next_seq_ = seq_before;
      last_hash_ = hash_before;
      // COMMIT can report an error (say, from the WAL fsync) after the
      // commit record was written. Then the batch is in the file: say so,
      // or a later batch would reuse its seqs.
      if (seq_after > seq_before && landed(seq_after - 1)) {
        log::warn("store.commit_landed_despite_error", {{"seq", std::to_string(seq_after - 1)}});
        return;
      }
      throw;
    }
  }

  // Whether the file holds `seq` (and takes the chain up to it if so).
  bool landed(std::uint64_t seq) noexcept {
    try {
      sqlite::Statement q(db_, "SELECT hash FROM timeline WHERE seq = ?");
      q.bind(1, static_cast<std::int64_t>(seq));
      if (!q.step()) {
        return false;
      }
      last_hash_ = std::string(q.column_blob(0));
      next_seq_ = seq + 1;
      return true;
    } catch (...) {
      return false;
    }
  }

  std::vector<v1::TimelineEvent> read_after(std::uint64_t after_seq, std::size_t limit) {
    after_seq_->bind(1, static_cast<std::int64_t>(after_seq))
        .bind(2, static_cast<std::int64_t>(limit));
    return read_events(*after_seq_);
  }

  std::uint64_t last_committed_seq() const { return next_seq_ - 1; }

  // Runs a bound statement whose first column is an event payload.
  static std::vector<v1::TimelineEvent> read_events(sqlite::Statement& q) {
    std::vector<v1::TimelineEvent> out;
    try {
      while (q.step()) {
        const auto bytes = q.column_blob(0);
        if (!out.emplace_back().ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          throw sqlite::Error(SQLITE_CORRUPT, "a timeline row holds no readable event");
        }
      }
    } catch (...) {
      q.reset();
      throw;
    }
    q.reset();
    return out;
  }

 private:
  sqlite::Database db_;
  std::unique_ptr<sqlite::Statement> insert_;
  std::unique_ptr<sqlite::Statement> after_seq_;
  std::uint64_t next_seq_ = 1;
  std::string last_hash_;
};

SqliteTimelineStore::SqliteTimelineStore(SqliteOptions options)
    : options_(std::move(options)), writer_(std::make_unique<Writer>(options_)) {}

SqliteTimelineStore::~SqliteTimelineStore() { stop(); }

std::uint32_t record_policy_version(sqlite::Database& db, const std::string& fingerprint,
                                    sla::Millis now) {
  sqlite::Statement find(db, "SELECT version FROM policy_versions WHERE fingerprint = ?");
  find.bind(1, fingerprint);
  if (find.step()) {
    return static_cast<std::uint32_t>(find.column_int64(0));
  }
  sqlite::Statement insert(
      db, "INSERT INTO policy_versions(version, fingerprint, first_use_ms) "
          "SELECT COALESCE(MAX(version), 0) + 1, ?, ? FROM policy_versions RETURNING version");
  insert.bind(1, fingerprint).bind(2, now);
  insert.step();
  return static_cast<std::uint32_t>(insert.column_int64(0));
}

std::uint32_t SqliteTimelineStore::record_policy(const std::string& fingerprint, sla::Millis now) {
  if (thread_.joinable()) {
    // The writer owns its connection now: record through a connection of
    // our own (SQLite serialises the two writers).
    sqlite::Database db(options_.path, SQLITE_OPEN_READWRITE);
    sqlite3_busy_timeout(db.handle(), options_.busy_timeout_ms);
    return record_policy_version(db, fingerprint, now);
  }
  return record_policy_version(writer_->db(), fingerprint, now);
}

ChainVerdict SqliteTimelineStore::load(const std::function<void(const v1::TimelineEvent&)>& each) {
  // The chain is checked on the reading thread while the caller folds.
  EventPipeline events(writer_->db(), EventPipeline::Mode::kCheckHashes);
  events.for_each([&](EventPipeline::Row& row) { each(*row.event()); });  // never null here
  return events.verdict();
}

std::map<std::uint32_t, std::string> SqliteTimelineStore::policy_versions() {
  return read_policy_versions(writer_->db());
}

void SqliteTimelineStore::start() {
  thread_ = std::thread([this] { run(); });
  reader_thread_ = std::thread([this] { run_reader(); });
}

void SqliteTimelineStore::stop() {
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
    // A clean stop leaves everything in the main file and an empty WAL, so
    // the next start (or a copy of the file) needs no WAL replay.
    try {
      writer_->db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (const std::exception& e) {
      log::warn("store.checkpoint_failed", {{"error", e.what()}});
    }
  }
}

void SqliteTimelineStore::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void SqliteTimelineStore::append(Batch events, AppendDone done) {
  Job job{Job::Kind::append};
  job.events = std::move(events);
  job.append_done = std::move(done);
  enqueue(std::move(job));
}

void SqliteTimelineStore::read_incident(std::uint64_t incident_id, ReadDone done) {
  {
    std::lock_guard lock(reader_mutex_);
    if (!reader_stopping_) {
      reader_queue_.push_back(IncidentRead{incident_id, std::move(done)});
      reader_wake_.notify_one();
      return;
    }
  }
  done({}, std::string("the store is stopping"));  // never left unanswered
}

void SqliteTimelineStore::run_reader() {
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<sqlite::Statement> by_incident;
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
        if (!db) {  // opened on first use, after the writer set up WAL
          db = std::make_unique<sqlite::Database>(options_.path, SQLITE_OPEN_READONLY);
          sqlite3_busy_timeout(db->handle(), options_.busy_timeout_ms);
          by_incident = std::make_unique<sqlite::Statement>(
              *db, "SELECT payload FROM timeline WHERE incident_id = ? ORDER BY seq");
        }
        by_incident->bind(1, static_cast<std::int64_t>(read.incident_id));
        read.done(Writer::read_events(*by_incident), std::nullopt);
      } catch (const std::exception& e) {
        log::error("store.read_failed", {{"error", e.what()}});
        read.done({}, std::string("read failed: ") + e.what());
      }
    }
    reads.clear();
  }
}

void SqliteTimelineStore::read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) {
  Job job{Job::Kind::read_after};
  job.id = after_seq;
  job.limit = limit;
  job.page_done = std::move(done);
  enqueue(std::move(job));
}

void SqliteTimelineStore::resume() { enqueue(Job{Job::Kind::resume}); }

void SqliteTimelineStore::render_metrics(std::string& out) const {
  std::lock_guard lock(stats_mutex_);
  out += "# HELP zonecall_commit_batch_events Events written per group commit.\n"
         "# TYPE zonecall_commit_batch_events histogram\n";
  batch_events_.render(out, "zonecall_commit_batch_events", "");
  out += "# HELP zonecall_commit_seconds Time each group commit took (fsync included).\n"
         "# TYPE zonecall_commit_seconds histogram\n";
  commit_seconds_.render(out, "zonecall_commit_seconds", "");
  out += "# HELP zonecall_commit_failures_total Group commits that failed (disk full, locked, ...).\n"
         "# TYPE zonecall_commit_failures_total counter\n"
         "zonecall_commit_failures_total " + std::to_string(failed_commits_) + "\n";
}

void SqliteTimelineStore::run() {
  bool failed = false;  // a commit failed and the owner has not resumed yet
  std::vector<Job> jobs;
  std::vector<Job*> appends;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and everything queued is done
      }
      jobs.swap(queue_);
    }
    // Appends between two resume markers commit together; reads run after
    // the commit, so they see every append queued before them.
    auto flush = [&] {
      if (appends.empty()) {
        return;
      }
      StoreError error;
      if (failed) {
        error = "an earlier commit failed; refusing later writes until recovered";
      } else {
        try {
          const auto started = std::chrono::steady_clock::now();
          writer_->commit(appends);
          const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
          std::size_t events = 0;
          for (const Job* job : appends) {
            events += job->events->size();
          }
          std::lock_guard lock(stats_mutex_);
          batch_events_.observe(static_cast<double>(events));
          commit_seconds_.observe(took.count());
        } catch (const std::exception& e) {
          {
            std::lock_guard lock(stats_mutex_);
            ++failed_commits_;
          }
          failed = true;
          error = std::string("commit failed: ") + e.what();
          log::error("store.commit_failed",
                     {{"error", e.what()}, {"jobs", std::to_string(appends.size())}});
        }
      }
      for (Job* job : appends) {
        job->append_done(error);
      }
      appends.clear();
    };
    for (Job& job : jobs) {
      if (job.kind == Job::Kind::append) {
        appends.push_back(&job);
      } else if (job.kind == Job::Kind::resume) {
        flush();
        failed = false;
      }
    }
    flush();
    for (const Job& job : jobs) {
      try {
        if (job.kind == Job::Kind::read_after) {
          job.page_done(writer_->read_after(job.id, job.limit), writer_->last_committed_seq(),
                        std::nullopt);
        }
      } catch (const std::exception& e) {
        log::error("store.read_failed", {{"error", e.what()}});
        job.page_done({}, 0, std::string("read failed: ") + e.what());
      }
    }
    jobs.clear();
  }
}

}  // namespace zonecall
