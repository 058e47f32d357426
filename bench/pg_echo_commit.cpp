#include "pg_echo_commit.hpp"

#include "engine/store/hash_chain.hpp"

namespace zonecall::bench {

PgEchoCommit::PgEchoCommit(const std::string& uri)
    : conn_(std::make_unique<pg::Connection>(uri, "public")) {
  conn_->exec("DROP TABLE IF EXISTS echo");
  conn_->exec("CREATE TABLE echo(seq bigint PRIMARY KEY, payload bytea NOT NULL, hash bytea NOT NULL)");
  // Prepared once, as zonecall's writer prepares its INSERT.
  const Oid types[] = {pg::kInt8Array, pg::kByteaArray, pg::kByteaArray};
  conn_->prepare("echo_insert",
                 "INSERT INTO echo(seq, payload, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
                 3, types);
}

void PgEchoCommit::commit(const std::vector<std::string_view>& payloads) {
  pg::ArrayParam seqs(pg::kInt8, payloads.size()), bodies(pg::kBytea, payloads.size()),
      links(pg::kBytea, payloads.size());
  std::string link = link_;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    link = chain_link(link, payloads[i]);  // zonecall hashes each event the same way
    seqs.add_int64(next_seq_ + static_cast<std::int64_t>(i));
    bodies.add_bytes(payloads[i]);
    links.add_bytes(link);
  }
  pg::Params rows;
  rows.array(seqs.take(), pg::kInt8Array).array(bodies.take(), pg::kByteaArray).array(links.take(), pg::kByteaArray);
  PGconn* c = conn_->get();
  if (PQenterPipelineMode(c) != 1) {
    throw conn_->error(nullptr, "entering pipeline mode");
  }
  const bool sent =
      PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 1) == 1 &&
      PQsendQueryPrepared(c, "echo_insert", rows.size(), rows.values(), rows.lengths(), rows.formats(), 1) == 1 &&
      PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 1) == 1 && PQpipelineSync(c) == 1;
  if (!sent) {
    throw conn_->error(nullptr, "sending the group");
  }
  // Three statements (each a result, then a null), then the sync.
  bool committed = false;
  std::string failure;
  for (int i = 0; i < 3; ++i) {
    pg::Result r(PQgetResult(c));
    if (!r) {
      throw conn_->error(nullptr, "reading the group's results");
    }
    if (PQresultStatus(r.get()) == PGRES_FATAL_ERROR && failure.empty()) {
      failure = PQresultErrorMessage(r.get());
    }
    committed = i == 2 && PQresultStatus(r.get()) == PGRES_COMMAND_OK && std::string_view(PQcmdStatus(r.get())) == "COMMIT";
    while (pg::Result end{PQgetResult(c)}) {
    }
  }
  pg::Result sync(PQgetResult(c));
  PQexitPipelineMode(c);
  if (!committed) {
    throw pg::Error(StoreError::Kind::other, "B4 group commit failed: " + failure);
  }
  next_seq_ += static_cast<std::int64_t>(payloads.size());
  link_ = std::move(link);
}

}  // namespace zonecall::bench
