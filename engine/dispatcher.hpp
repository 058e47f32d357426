#pragma once
// The dispatcher: the engine's live side, behind net's RequestHandler. It
// turns requests into commands for sla::IncidentBook::handle, commits what
// the book decides (engine/dispatch/commit_pipeline), and answers, alerts
// and streams once it is durable. The parts, each in engine/dispatch/:
//   sessions        who is signed in, and how a message reaches them
//   sign_in         Hello, and the delay after a wrong token
//   request_ledger  retries get the original answer
//   commit_pipeline group commit, and the deadline timer
//   reads           GetIncident, ListIncidents
//   subscriptions   Subscribe's backlog and live stream
//   alerts          who a committed event alerts
// Everything runs on the one io_context thread, so nothing is locked.
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/config/roster.hpp"
#include "engine/dispatch/alerts.hpp"
#include "engine/dispatch/commit_pipeline.hpp"
#include "engine/dispatch/reads.hpp"
#include "engine/dispatch/request_ledger.hpp"
#include "engine/dispatch/sessions.hpp"
#include "engine/dispatch/sign_in.hpp"
#include "engine/dispatch/subscriptions.hpp"
#include "engine/metrics.hpp"
#include "engine/request_handler.hpp"
#include "engine/store/timeline_store.hpp"
#include "engine/time_source.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

class Dispatcher final : public RequestHandler {
 public:
  Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
             const sla::PolicyHistory& policies, TimeSource& time, SignInLimits sign_in);

  // Rebuilds the state from the timeline, then fires every deadline that
  // passed while the engine was down. Call once, before serving. Throws if
  // the hash chain is broken, unless it breaks exactly at
  // `accept_broken_chain_at` (the operator's --accept-broken-chain). A
  // standby (`as_standby`) fires nothing: that is the leader's.
  void recover(std::optional<std::uint64_t> accept_broken_chain_at = std::nullopt,
               bool as_standby = false);
  // New commands get UNAVAILABLE; commits in flight finish.
  void stop();
  // -- several engines on one PostgreSQL timeline (dispatcher_leadership.cpp) --
  // Until take_over(), a standby after recover(..., true): writes and
  // Subscribe are refused with UNAVAILABLE naming the leader, reads answer
  // from the committed timeline, which is tailed into the book.
  // The leader lock is ours: take the next term as `holder` (this engine's
  // URL), fold what the last leader committed, fire what fell due, and serve.
  void take_over(const std::string& holder);
  // The lock's session ended: whatever this engine was doing as leader stops.
  void lock_lost(const std::string& why);
  // The lock was lost, or a commit was fenced: stop deciding, close every
  // session (its client finds the leader), and stand by again.
  void step_down(const std::string& why);
  // Where the leader is, as the lock's table says.
  void leader_is(const std::string& url);
  bool leading() const { return role_ == Role::leader; }
  std::function<void()> on_step_down;  // the server closes the sessions
  std::function<void()> give_up_lock;  // the server releases the leader lock

  // After a config reload (see SessionRegistry::roster_changed).
  void roster_changed() { sessions_.roster_changed(roster_); }

  // -- RequestHandler --
  void attach(const std::shared_ptr<ClientSession>& session) override { sessions_.attach(session); }
  void detach(std::uint64_t session_id) override { sessions_.detach(session_id); }
  void on_message(std::uint64_t session_id, v1::ClientMessage message, Encoding encoding) override;
  void on_drained(std::uint64_t session_id) override { subscriptions_.on_drained(session_id); }
  void on_send_queue_overflow() override { metrics_.on_send_queue_overflow(); }
  Readiness readiness() const override;

  // The committed state.
  const sla::IncidentBook& book() const { return book_; }
  // Connections by role, open incidents by zone and state, and the engine's
  // counters and histograms, in Prometheus text format.
  void render_metrics(std::string& out) const;
  // True while some batch of events still waits for its commit's answer.
  bool has_commits_in_flight() const { return pipeline_.in_flight(); }
  // Runs `done` on the io thread once no batch waits for its commit's answer
  // (soon, if none does now); shutdown waits on it. Null forgets it.
  void on_commits_drained(std::function<void()> done) { pipeline_.on_drained(std::move(done)); }

 private:
  // A write: a retry is answered from the ledger; a new one is handled by
  // the book, committed and acknowledged.
  void write(const sla::Principal& who, const Requester& to, const v1::Command& command,
             const sla::RequestKey& key);
  void committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events, bool store_recovered);
  // The clock, clamped never to run backward.
  sla::Millis now();

  // taking_over: the lock is ours, the term not yet; catching_up: folding
  // what the last leader committed.
  enum class Role { leader, standby, taking_over, catching_up };
  // Folds events another engine committed (tail, catch-up).
  // False at an event the book refuses (it stops there).
  bool fold_committed(const std::vector<v1::TimelineEvent>& events);
  void tail_after(std::chrono::milliseconds delay);
  void catch_up();
  void become_leader();
  std::string standby_refusal() const;
  void note_recorded_break(const v1::TimelineEvent& e);
  // --accept-broken-chain's record, once per timeline, by whoever leads.
  void record_accepted_break();

  const Roster& roster_;
  TimeSource& time_;
  sla::IncidentBook book_;
  SessionRegistry sessions_;
  RequestLedger ledger_;
  CommitPipeline pipeline_;
  DeadlineTicker ticker_;
  SignIn sign_in_;
  Reads reads_;
  Subscriptions subscriptions_;
  EngineMetrics metrics_;
  std::vector<Push> folded_pushes_;  // the alerts of the batch being committed

  Role role_ = Role::leader;
  EngineRole standing_;  // what Welcome says of role_
  std::string holder_;
  std::int64_t term_ = 0;
  std::unique_ptr<Timer> tail_timer_;
  std::unique_ptr<Timer> retry_take_over_;
  bool lock_held_ = false;
  std::uint64_t takeovers_ = 0;  // tells a stale lead() answer from the current one
  std::optional<ChainVerdict> accepted_break_;
  std::optional<std::uint64_t> recorded_break_seq_;
  boost::asio::io_context& io() { return io_; }
  boost::asio::io_context& io_;

  bool ready_ = false;
  bool stopped_ = false;
  std::uint64_t recovery_batches_ = 0;  // batches recover() submitted
  bool recovery_durable_ = false;
  TimelineStore& store_;
  sla::Millis last_now_ = 0;
};

}  // namespace zonecall
