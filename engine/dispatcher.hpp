#pragma once
// The dispatcher owns the live state. It feeds commands and clock ticks to
// sla::IncidentBook, hands the resulting events to the store, and answers,
// alerts and streams to subscribers only once they are durable. Everything
// here runs on the one io_context thread, so nothing is locked.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/client_session.hpp"
#include "engine/config/roster.hpp"
#include "engine/metrics.hpp"
#include "engine/store/timeline_store.hpp"
#include "engine/time_source.hpp"
#include "sla/incident_book.hpp"
#include "sla/permissions.hpp"

namespace zonecall {

class Dispatcher {
 public:
  // Limits on signing in.
  struct SignInLimits {
    int max_failures = 5;
    std::chrono::milliseconds failure_delay{250};
  };

  Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
             const sla::PolicyHistory& policies, TimeSource& time, SignInLimits sign_in);

  // Rebuilds the state from the timeline, then fires every deadline that
  // passed while the engine was down. Call once, before serving. Throws if
  // the hash chain is broken, unless it breaks exactly at
  // `accept_broken_chain_at` (the operator's --accept-broken-chain).
  void recover(std::optional<std::uint64_t> accept_broken_chain_at = std::nullopt);
  // Recovery is done and the deadlines it found overdue are durable. Commands
  // are taken from the end of recover() on, ordered after those breaches.
  bool ready() const { return ready_ && recovery_durable_; }
  void stop();

  // After a config reload: a signed-in staff member who was removed, or
  // whose token changed, is signed out and closed; a changed role, zone or
  // department applies from their next request and to what they are sent.
  void roster_changed();

  void attach(const std::shared_ptr<ClientSession>& session);
  void detach(std::uint64_t session_id);
  // A decoded request, with the encoding its frame used: the reply uses it.
  void on_message(std::uint64_t session_id, v1::ClientMessage message, net::Encoding encoding);

  const sla::IncidentBook& book() const { return book_; }
  // False while the store refuses writes (disk full, locked, read-only).
  bool store_healthy() const { return !store_failing_; }
  EngineMetrics& metrics() { return metrics_; }
  // Connections by role, open incidents by zone and state, and the engine's
  // counters and histograms, in Prometheus text format.
  void render_metrics(std::string& out) const;
  // True while some batch of events still waits for its commit's answer.
  bool has_commits_in_flight() const { return batches_in_flight_ != 0; }
  // Runs `done` on the io thread once no batch waits for its commit's answer
  // (soon, if none does now); shutdown waits on it. Null forgets it.
  void on_commits_drained(std::function<void()> done);

  // How many recent requests per staff member a retry is recognised for.
  static constexpr std::size_t kRememberedRequests = 256;

 private:
  // Where a reply goes: the session, the request it answers, its encoding.
  struct Requester {
    std::uint64_t session_id = 0;
    std::uint64_t request_id = 0;
    net::Encoding encoding = net::Encoding::binary;
    // Of the request's body: a reused request_id with another body is
    // refused, not answered with the first request's Ack.
    std::uint64_t request_digest = 0;
  };
  struct Subscription {
    std::uint64_t generation = 0;  // a new Subscribe drops pages of the old one
    std::uint64_t cursor = 0;      // every visible event up to here was sent
    bool live = false;             // caught up: committed events stream as they come
  };
  struct Connected {
    std::weak_ptr<ClientSession> session;
    std::optional<sla::Principal> who;
    std::string token_sha256;  // the token they signed in with, to notice its revocation
    std::optional<Subscription> subscription;
    int failed_hellos = 0;
    bool revoked = false;  // signed out by a reload; its close is under way
  };
  // Undo information for an incident with events not yet committed.
  struct Uncommitted {
    std::optional<sla::Incident> committed;  // its state as of the last commit
    std::uint64_t last_batch = 0;
  };
  // A write request's reply, kept so that a retry gets the same answer.
  struct Remembered {
    std::uint64_t request_digest = 0;
    std::optional<v1::Ack> ack;        // set once committed
    std::vector<Requester> waiting;    // retries that came before the commit
    std::uint64_t order_no = 0;        // its place in StaffRequests::order
  };
  struct StaffRequests {
    std::unordered_map<std::uint64_t, Remembered> by_id;
    // Oldest first, for the bound: (request id, order_no). An id used again
    // after a failed commit is queued again; its stale place is skipped.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> order;
    std::uint64_t next_order_no = 0;
  };
  // An alert to send once its event is durable, and to whom. The incident's
  // view is added when it is sent.
  struct Push {
    std::optional<v1::ServerMessage> alert;
    std::vector<v1::Recipient> recipients;
  };
  using Command =
      std::function<sla::Decision(const sla::Principal& who, const sla::CommandOrigin& origin)>;

  void hello(const Requester& to, const v1::Hello& hello);
  void sign_in(std::uint64_t session_id, sla::Principal who);
  void sign_out(std::uint64_t session_id);
  void report(const sla::Principal& who, const Requester& to, const v1::Report& report,
              sla::Millis now);
  // Discover/Respond/Resolve, zone calls and department answers: look the
  // incident up, check the permission, then decide and commit.
  void act_on_incident(const sla::Principal& who, const Requester& to, std::uint64_t incident_id,
                       std::optional<sla::CommandError> (*permission)(const sla::Principal&,
                                                                      const sla::Incident&),
                       const Command& decide);
  void set_duty(const sla::Principal& who, const Requester& to, bool on_duty, sla::Millis now);
  void get_incident(const sla::Principal& who, const Requester& to, std::uint64_t incident_id);
  void list_incidents(const sla::Principal& who, const Requester& to, const v1::ListIncidents& list);
  void subscribe(const sla::Principal& who, const Requester& to, std::uint64_t after_seq);
  void next_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to);

  // Runs a write command idempotently: a retry of a remembered request gets
  // the original Ack; a new one is decided, committed and acknowledged.
  void write(const sla::Principal& who, const Requester& to, const Command& decide);
  void remember(const std::string& staff_id, std::uint64_t request_id, Remembered entry);

  // Applies the events at once (later commands see them) and queues them for
  // commit; on_durable runs after COMMIT, then alerts and subscribers.
  void commit(std::vector<v1::TimelineEvent> events, std::function<void(const StoreError&)> on_durable);
  void committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                 const std::vector<Push>& pushes,
                 const std::function<void(const StoreError&)>& on_durable, const StoreError& error);
  void roll_back_uncommitted();
  Push push_for(const v1::TimelineEvent& event) const;
  void send_alert(const Push& push, std::uint64_t incident_id);
  // The incident as of its last commit; null if its report is not committed.
  const sla::Incident* committed_incident(std::uint64_t incident_id) const;
  std::unordered_set<std::uint64_t> sessions_for(const std::vector<v1::Recipient>& recipients) const;
  void stream_to_subscribers(const v1::TimelineEvent& event);

  void tick(sla::Millis now);
  // The clock, clamped never to run backward.
  sla::Millis now();
  void arm_timer();

  void send_to(std::uint64_t session_id, const net::SharedMessage& message);
  void reply(const Requester& to, v1::ServerMessage message);
  void reply_error(const Requester& to, v1::ErrorCode code, const std::string& message);
  void refuse(const sla::Principal& who, const Requester& to, const sla::CommandError& error);

  boost::asio::io_context& io_;
  SignInLimits sign_in_;
  TimelineStore& store_;
  const Roster& roster_;
  TimeSource& time_;
  sla::IncidentBook book_;
  bool ready_ = false;
  bool recovery_durable_ = false;
  std::uint64_t recovery_batches_ = 0;  // batches recover() submitted
  bool stopped_ = false;

  std::unordered_map<std::uint64_t, Connected> sessions_;
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> sessions_by_staff_;
  std::unordered_map<int, std::unordered_set<std::uint64_t>> sessions_by_role_;
  std::unordered_set<std::uint64_t> subscribers_;

  std::unordered_map<std::string, StaffRequests> requests_;

  std::unordered_map<std::uint64_t, Uncommitted> uncommitted_;
  sla::DutyState committed_duty_;
  std::uint64_t batches_submitted_ = 0;
  std::uint64_t batches_in_flight_ = 0;
  std::uint64_t rolled_back_through_ = 0;
  std::uint64_t committed_next_seq_ = 1;
  std::uint64_t committed_next_incident_id_ = 1;
  bool store_failing_ = false;
  EngineMetrics metrics_;

  std::unique_ptr<Timer> timer_;  // set to the earliest deadline
  // One per failed Hello whose answer is still held back; each removes itself.
  std::list<std::unique_ptr<Timer>> refusal_delays_;
  std::function<void()> commits_drained_;
  std::optional<sla::Millis> timer_armed_for_;
  sla::Millis last_now_ = 0;
  std::uint64_t next_generation_ = 1;
};

}  // namespace zonecall
