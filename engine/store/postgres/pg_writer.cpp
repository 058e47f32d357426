#include "engine/store/postgres/pg_writer.hpp"

#include <chrono>
#include <thread>

#include "engine/log.hpp"
#include "engine/store/hash_chain.hpp"
#include "engine/store/postgres/pg_schema.hpp"

namespace zonecall {

using Kind = StoreError::Kind;

namespace {
// How often an in-doubt commit asks again: a connection attempt is cheap
// (refused, or a standby saying it is read-only), and a failover's end
// should be seen at once.
constexpr std::chrono::milliseconds kInDoubtRetry{100};

// A group commit's two statements, prepared once per connection: parsing and
// planning them for every commit cost PostgreSQL more than the fence itself.
constexpr const char* kCheckTerm = "zc_check_term";
constexpr const char* kInsertRows = "zc_insert_rows";
}  // namespace

// What came back from a commit's pipeline.
struct PgWriter::Outcome {
  bool committed = false;          // COMMIT answered COMMIT
  bool lost = false;               // the connection went before that answer: not known
  std::optional<pg::Error> error;  // a statement failed, so COMMIT never ran
};

PgWriter::PgWriter(PgOptions options) : options_(std::move(options)) {
  connect();
  pg::upgrade_schema(*conn_);
  read_chain_end();
}

void PgWriter::read_chain_end() {
  next_seq_ = 1;
  last_link_.clear();
  const auto last = conn_->query("SELECT seq, hash FROM timeline ORDER BY seq DESC LIMIT 1");
  if (PQntuples(last.get()) == 1) {
    next_seq_ = static_cast<std::uint64_t>(pg::get_int64(last.get(), 0, 0)) + 1;
    last_link_ = std::string(pg::get_bytes(last.get(), 0, 1));
  }
}

std::int64_t PgWriter::lead(const std::string& holder, sla::Millis now) {
  connection();
  options_.term = pg::take_leadership(*conn_, holder, now);
  // The bump waited for every commit under the old term, so the end read
  // now is final: later ones under it are fenced.
  read_chain_end();
  unresolved_.reset();
  diverged_.clear();
  return options_.term;
}

pg::Connection& PgWriter::connection() {
  // A server that went away since the last commit has usually said so (its
  // kernel closed the socket): reading that now, before anything is sent,
  // makes it a fresh connection rather than a commit in doubt. Twice: a
  // terminated backend's last words (FATAL) come before the end of stream.
  for (int read = 0; read < 2 && conn_ && conn_->ok(); ++read) {
    if (PQconsumeInput(conn_->get()) == 0) {
      conn_.reset();
    }
  }
  if (!conn_ || !conn_->ok()) {
    connect();
  }
  return *conn_;
}

void PgWriter::connect() {
  conn_.reset();
  auto conn = std::make_unique<pg::Connection>(options_.conninfo, options_.schema);
  conn->exec("SET lock_timeout = " + std::to_string(options_.lock_timeout_ms));
  // A frozen engine's open transaction would hold the leader's row (the
  // fence check locks it) and stall the next leader's takeover.
  conn->exec("SET idle_in_transaction_session_timeout = " + std::to_string(options_.lock_timeout_ms));
  conn_ = std::move(conn);
  prepared_ = false;
}

void PgWriter::prepare_statements() {
  // Not in connect(): the first connection comes before the schema exists.
  if (prepared_) {
    return;
  }
  const Oid term_type[] = {pg::kInt8};
  conn_->prepare(kCheckTerm, "SELECT zonecall_check_term($1)", 1, term_type);
  const Oid row_types[] = {pg::kInt8Array, pg::kInt8Array, pg::kInt8Array, pg::kInt8Array,
                           pg::kTextArray, pg::kByteaArray, pg::kByteaArray};
  conn_->prepare(kInsertRows,
                 "INSERT INTO timeline(seq, incident_id, kind, at_ms, actor, payload, hash) "
                 "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], "
                 "$5::text[], $6::bytea[], $7::bytea[])",
                 7, row_types);
  prepared_ = true;
}

void PgWriter::commit(const Batches& batches) {
  if (!diverged_.empty()) {
    throw pg::Error(Kind::other, diverged_);
  }
  connection();  // reconnects after a lost connection; throws connection_lost if it cannot
  if (unresolved_) {
    const Unresolved u = *unresolved_;
    if (landed(u.seq, u.link)) {
      diverged_ = "a commit reported as failed (its connection was lost) landed after all, up to seq " +
                  std::to_string(u.seq) + ": restart zonecall to recover those events";
      log::error("store.commit_landed_after_failure", {{"seq", std::to_string(u.seq)}});
      throw pg::Error(Kind::other, diverged_);
    }
    unresolved_.reset();
  }
  std::size_t count = 0;
  for (const auto* events : batches) {
    count += events->size();
  }
  pg::ArrayParam seqs(pg::kInt8, count), incidents(pg::kInt8, count), kinds(pg::kInt8, count),
      ats(pg::kInt8, count), actors(pg::kText, count), payloads(pg::kBytea, count), links(pg::kBytea, count);
  std::uint64_t seq = next_seq_;
  std::string link = last_link_;
  std::string payload;
  for (const auto* events : batches) {
    for (const auto& e : *events) {
      if (e.seq() != seq) {
        throw pg::Error(Kind::other, "event seq " + std::to_string(e.seq()) + " out of order, expected " +
                                         std::to_string(seq));
      }
      payload.clear();
      e.SerializeToString(&payload);
      link = chain_link(link, payload);  // the same chain as every backend's
      seqs.add_int64(static_cast<std::int64_t>(seq));
      incidents.add_int64(static_cast<std::int64_t>(e.incident_id()));
      kinds.add_int64(static_cast<std::int64_t>(e.kind_case()));
      ats.add_int64(e.at_ms());
      actors.add_bytes(e.actor_id());
      payloads.add_bytes(payload);
      links.add_bytes(link);
      ++seq;
    }
  }
  if (count == 0) {
    return;
  }
  pg::Params rows;
  rows.array(seqs.take(), pg::kInt8Array)
      .array(incidents.take(), pg::kInt8Array)
      .array(kinds.take(), pg::kInt8Array)
      .array(ats.take(), pg::kInt8Array)
      .array(actors.take(), pg::kTextArray)
      .array(payloads.take(), pg::kByteaArray)
      .array(links.take(), pg::kByteaArray);
  prepare_statements();
  Outcome outcome = send_and_read(rows);
  if (outcome.committed) {
    next_seq_ = seq;
    last_link_ = std::move(link);
    return;
  }
  if (outcome.lost) {
    resolve_lost(seq - 1, link, outcome.error ? outcome.error->what() : "the connection was lost");
    next_seq_ = seq;  // resolve_lost returns only if the commit landed
    last_link_ = std::move(link);
    return;
  }
  throw *outcome.error;
}

PgWriter::Outcome PgWriter::send_and_read(pg::Params& rows) {
  PGconn* c = conn_->get();
  Outcome out;
  if (PQenterPipelineMode(c) != 1) {
    out.error = conn_->error(nullptr, "entering pipeline mode");
    out.lost = !conn_->ok();
    return out;
  }
  // Four statements, one Sync, one round trip; all in the transaction that
  // BEGIN opens, so the fence check and the rows commit (or not) together.
  int sent = 0;  // negative once a send failed: -sent - 1 statements went
  auto record = [&](bool done) {
    if (sent >= 0) {
      sent = done ? sent + 1 : -(sent + 1);
    }
  };
  auto send = [&](const char* sql) {
    record(sent >= 0 && PQsendQueryParams(c, sql, 0, nullptr, nullptr, nullptr, nullptr, 1) == 1);
  };
  auto send_prepared = [&](const char* name, pg::Params& params) {
    record(sent >= 0 && PQsendQueryPrepared(c, name, params.size(), params.values(), params.lengths(),
                                            params.formats(), 1) == 1);
  };
  send("BEGIN");
  pg::Params term;
  if (options_.term != 0) {
    term.int64(options_.term);
    send_prepared(kCheckTerm, term);
  }
  send_prepared(kInsertRows, rows);
  send("COMMIT");
  const bool all_sent = sent > 0;
  const int statements = all_sent ? sent : -sent - 1;
  const bool synced = conn_->ok() && PQpipelineSync(c) == 1;
  // One result (then a null) per statement sent, then the sync's.
  for (int i = 0; synced && i < statements && conn_->ok(); ++i) {
    pg::Result r(PQgetResult(c));
    if (!r) {
      break;
    }
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_FATAL_ERROR && !out.error) {
      out.error = conn_->error(r.get(), "commit failed");
    } else if (status == PGRES_COMMAND_OK && all_sent && i == statements - 1 &&
               std::string_view(PQcmdStatus(r.get())) == "COMMIT") {
      out.committed = true;
    }
    while (conn_->ok()) {  // to the statement's end marker
      pg::Result end(PQgetResult(c));
      if (!end) {
        break;
      }
    }
  }
  while (synced && conn_->ok()) {  // the sync
    pg::Result r(PQgetResult(c));
    if (!r || PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) {
      break;
    }
  }
  if (conn_->ok() && PQexitPipelineMode(c) == 1 && !out.committed) {
    PQclear(PQexec(c, "ROLLBACK"));  // the failed transaction block
  }
  if (!out.committed && !conn_->ok()) {
    out.lost = true;  // whatever the results said, COMMIT's answer is missing
  } else if (!out.committed && !out.error) {
    out.error = conn_->error(nullptr, "commit failed");
  }
  if (!conn_->ok() || PQpipelineStatus(c) != PQ_PIPELINE_OFF) {
    conn_.reset();  // a fresh connection for the next commit
  }
  return out;
}

void PgWriter::resolve_lost(std::uint64_t last_seq, const std::string& last_link, const std::string& why) {
  // Failing the commit now would be a guess: with a synchronous standby the
  // rows often reached it before the primary died, so they will be there
  // once it is promoted. Ask until a server that takes writes answers.
  in_doubt_ = true;
  struct Resolved {
    std::atomic<bool>& flag;
    ~Resolved() { flag = false; }
  } resolved{in_doubt_};
  const auto began = std::chrono::steady_clock::now();
  const auto until = began + std::chrono::milliseconds(options_.in_doubt_wait_ms);
  bool logged = false;
  for (;;) {
    try {
      connect();
      const bool found = landed(last_seq, last_link);
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
      log::warn(found ? "store.commit_landed_despite_lost_connection" : "store.commit_lost_with_connection",
                {{"seq", std::to_string(last_seq)}, {"waited_ms", std::to_string(waited.count())}});
      if (found) {
        return;
      }
      break;
    } catch (const std::exception& e) {
      const auto* failure = dynamic_cast<const StoreFailure*>(&e);
      const bool may_mend = failure != nullptr && failure->error().kind() == Kind::connection_lost;
      if (!may_mend || std::chrono::steady_clock::now() >= until) {
        unresolved_ = Unresolved{last_seq, last_link};
        conn_.reset();
        throw pg::Error(Kind::connection_lost, why + "; whether the commit landed is not known (" + e.what() +
                                                   "): it is checked before the next commit");
      }
      if (!logged) {
        log::warn("store.commit_in_doubt", {{"seq", std::to_string(last_seq)}, {"why", e.what()}});
        logged = true;
      }
    }
    std::this_thread::sleep_for(kInDoubtRetry);
  }
  throw pg::Error(Kind::connection_lost, why + "; the commit did not land");
}

bool PgWriter::landed(std::uint64_t seq, const std::string& link) {
  const auto r = connection().query("SELECT hash FROM timeline WHERE seq = $1",
                                    std::move(pg::Params().int64(static_cast<std::int64_t>(seq))));
  if (PQntuples(r.get()) == 0) {
    return false;
  }
  if (pg::get_bytes(r.get(), 0, 0) != link) {
    log::error("store.seq_written_by_another", {{"seq", std::to_string(seq)}});
    return false;
  }
  return true;
}

std::vector<v1::TimelineEvent> PgWriter::read_after(std::uint64_t after_seq, std::size_t limit) {
  const auto r = connection().query(
      "SELECT payload FROM timeline WHERE seq > $1 ORDER BY seq LIMIT $2",
      std::move(
          pg::Params().int64(static_cast<std::int64_t>(after_seq)).int64(static_cast<std::int64_t>(limit))));
  std::vector<v1::TimelineEvent> out(static_cast<std::size_t>(PQntuples(r.get())));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    const auto bytes = pg::get_bytes(r.get(), i, 0);
    if (!out[i].ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      throw pg::Error(Kind::corrupt, "a timeline row holds no readable event");
    }
  }
  return out;
}

std::uint32_t PgWriter::record_policy(const std::string& fingerprint, sla::Millis now) {
  auto& conn = connection();
  const auto found = conn.query("SELECT version FROM policy_versions WHERE fingerprint = $1",
                                std::move(pg::Params().text(fingerprint)));
  if (PQntuples(found.get()) == 1) {
    return static_cast<std::uint32_t>(pg::get_int64(found.get(), 0, 0));
  }
  const auto added = conn.query(
      "INSERT INTO policy_versions(version, fingerprint, first_use_ms) "
      "SELECT coalesce(max(version), 0) + 1, $1, $2 FROM policy_versions RETURNING version",
      std::move(pg::Params().text(fingerprint).int64(now)));
  return static_cast<std::uint32_t>(pg::get_int64(added.get(), 0, 0));
}

}  // namespace zonecall
