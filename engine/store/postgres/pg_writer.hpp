#pragma once
// The PostgreSQL store's writing connection: each group commit is one
// transaction sent in one round trip (libpq pipeline mode: BEGIN, the fence
// check, one multi-row INSERT, COMMIT), the hash chain's next link, policy
// versions, and what to do when the connection goes.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/store/group_commit_store.hpp"
#include "engine/store/postgres/pg.hpp"

namespace zonecall {

struct PgOptions {
  std::string conninfo;  // a postgres:// URI
  std::string schema = "public";
  int lock_timeout_ms = 5000;  // how long a commit waits for a lock (`locked` after)
  // 0: no fencing, until lead() takes a term. Then every commit checks, in
  // its transaction, that this is the current term of zonecall_leader, and
  // fails as `fenced` if not.
  std::int64_t term = 0;
  // How long a commit whose COMMIT answer was lost keeps asking whether it
  // landed while no server takes writes: long enough for a failover to a
  // synchronous standby (Patroni's ttl plus its loop; docs/deployment.md).
  int in_doubt_wait_ms = 30000;
};

class PgWriter final : public TimelineWriter {
 public:
  // Connects, creates or upgrades the schema, and reads where the chain
  // ends; throws StoreFailure.
  explicit PgWriter(PgOptions options);

  // A lost connection is reconnected at the next commit. If the connection
  // went while COMMIT's answer was due, the commit is resolved by reading
  // what landed, on whichever server takes writes (after a failover, the
  // promoted standby), reconnecting for up to in_doubt_wait_ms: landed, it
  // succeeds; not landed, it fails as connection_lost. Still not known, it
  // fails as connection_lost and is resolved before the next commit, which
  // fails for good if it had landed after all (the engine must restart to
  // recover those events).
  void commit(const Batches& batches) override;
  std::vector<v1::TimelineEvent> read_after(std::uint64_t after_seq, std::size_t limit) override;
  std::uint64_t last_committed_seq() const override { return next_seq_ - 1; }
  std::uint32_t record_policy(const std::string& fingerprint, sla::Millis now) override;
  // Takes the next term and re-reads where the chain ends: the engine folds
  // what it finds there, so a commit whose outcome was not known is settled.
  std::int64_t lead(const std::string& holder, sla::Millis now) override;
  bool commit_in_doubt() const override { return in_doubt_; }

  // Whether the commit that ends at `seq` with `link` is in the timeline:
  // the stored row at `seq` carries exactly that link. Throws when the
  // database cannot be asked.
  bool landed(std::uint64_t seq, const std::string& link);

  // The connection, for tests (its backend pid) and for the source before start().
  pg::Connection& connection();

 private:
  struct Outcome;
  void connect();
  void prepare_statements();  // on the current connection, once
  void read_chain_end();
  Outcome send_and_read(pg::Params& rows);
  // After the connection went during a commit: reconnect and check.
  void resolve_lost(std::uint64_t last_seq, const std::string& last_link, const std::string& why);

  PgOptions options_;
  std::unique_ptr<pg::Connection> conn_;
  bool prepared_ = false;  // conn_ has the commit's statements
  std::uint64_t next_seq_ = 1;
  std::string last_link_;
  struct Unresolved {
    std::uint64_t seq;
    std::string link;
  };
  std::optional<Unresolved> unresolved_;
  std::atomic<bool> in_doubt_{false};  // inside resolve_lost  // a commit whose outcome is not known yet
  std::string diverged_;                  // set once an unknown commit is found to have landed
};

}  // namespace zonecall
