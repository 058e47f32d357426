#include "engine/store/sqlite/sqlite_writer.hpp"

#include <unistd.h>

#include <filesystem>

#include "engine/log.hpp"
#include "engine/store/hash_chain.hpp"
#include "engine/store/sqlite/schema.hpp"

namespace zonecall {

SqliteWriter::SqliteWriter(const SqliteOptions& o)
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
  sqlite::upgrade_schema(db_, o.path);
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
    last_link_ = std::string(last.column_blob(1));
  }
}

void SqliteWriter::commit(const Batches& batches) {
  const std::uint64_t seq_before = next_seq_;
  const std::string link_before = last_link_;
  try {
    sqlite::Transaction tx(db_);
    std::string payload;
    for (const auto* events : batches) {
      for (const auto& e : *events) {
        if (e.seq() != next_seq_) {
          throw sqlite::Error(SQLITE_MISUSE, "event seq " + std::to_string(e.seq()) +
                                                 " out of order, expected " +
                                                 std::to_string(next_seq_));
        }
        payload.clear();
        e.SerializeToString(&payload);
        last_link_ = chain_link(last_link_, payload);
        insert_->bind(1, static_cast<std::int64_t>(e.seq()))
            .bind(2, static_cast<std::int64_t>(e.incident_id()))
            .bind(3, static_cast<std::int64_t>(e.kind_case()))
            .bind(4, e.at_ms())
            .bind(5, e.actor_id())
            .bind_blob(6, payload)
            .bind_blob(7, last_link_);
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
    last_link_ = link_before;
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

bool SqliteWriter::landed(std::uint64_t seq) noexcept {
  try {
    sqlite::Statement q(db_, "SELECT hash FROM timeline WHERE seq = ?");
    q.bind(1, static_cast<std::int64_t>(seq));
    if (!q.step()) {
      return false;
    }
    last_link_ = std::string(q.column_blob(0));
    next_seq_ = seq + 1;
    return true;
  } catch (...) {
    return false;
  }
}

std::vector<v1::TimelineEvent> SqliteWriter::read_after(std::uint64_t after_seq, std::size_t limit) {
  after_seq_->bind(1, static_cast<std::int64_t>(after_seq)).bind(2, static_cast<std::int64_t>(limit));
  return read_events(*after_seq_);
}

std::vector<v1::TimelineEvent> SqliteWriter::read_events(sqlite::Statement& q) {
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

std::uint32_t SqliteWriter::record_policy(const std::string& fingerprint, sla::Millis now) {
  sqlite::Statement find(db_, "SELECT version FROM policy_versions WHERE fingerprint = ?");
  find.bind(1, fingerprint);
  if (find.step()) {
    return static_cast<std::uint32_t>(find.column_int64(0));
  }
  sqlite::Statement insert(
      db_, "INSERT INTO policy_versions(version, fingerprint, first_use_ms) "
           "SELECT COALESCE(MAX(version), 0) + 1, ?, ? FROM policy_versions RETURNING version");
  insert.bind(1, fingerprint).bind(2, now);
  insert.step();
  return static_cast<std::uint32_t>(insert.column_int64(0));
}

void SqliteWriter::finish() {
  try {
    db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const std::exception& e) {
    log::warn("store.checkpoint_failed", {{"error", e.what()}});
  }
}

}  // namespace zonecall
