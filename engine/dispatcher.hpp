#pragma once
// The dispatcher owns the live state. It feeds commands and clock ticks to
// sla::IncidentBook, hands the resulting events to the store, and answers
// and fans out only once they are durable. Everything here runs on the one
// io_context thread, so nothing is locked.
#include <boost/asio/io_context.hpp>
#include <boost/asio/system_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/client_session.hpp"
#include "engine/config/roster.hpp"
#include "engine/store/timeline_store.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
             const sla::Policy& policy, const sla::Clock& clock);

  // Rebuilds the state from the timeline, then fires every deadline that
  // passed while the engine was down. Call once, before serving.
  void recover();
  bool ready() const { return ready_; }
  void stop();

  void attach(const std::shared_ptr<ClientSession>& session);
  void detach(std::uint64_t session_id);
  // A decoded request, with the encoding its frame used: the reply uses it.
  void on_message(std::uint64_t session_id, v1::ClientMessage message, net::Encoding encoding);

  const sla::IncidentBook& book() const { return book_; }
  // True while some applied event still waits for its commit.
  bool has_uncommitted() const { return !uncommitted_.empty(); }

 private:
  struct Connected {
    std::weak_ptr<ClientSession> session;
    std::optional<sla::Principal> who;
  };
  // Undo information for an incident with events not yet committed.
  struct Uncommitted {
    std::optional<sla::Incident> committed;  // its state as of the last commit
    std::uint64_t last_batch = 0;
  };
  // Where a reply goes: the session, the request it answers, its encoding.
  struct Requester {
    std::uint64_t session_id = 0;
    std::uint64_t request_id = 0;
    net::Encoding encoding = net::Encoding::binary;
  };
  using OnDurable = std::function<void(const StoreError& error)>;

  void hello(const Requester& to, const v1::Hello& hello);
  void report(const sla::Principal& who, const Requester& to, const v1::Report& report);
  void advance(const sla::Principal& who, const Requester& to, std::uint64_t incident_id,
               v1::IncidentState state, const std::string& note);
  void get_incident(const sla::Principal& who, const Requester& to, std::uint64_t incident_id);
  void list_incidents(const sla::Principal& who, const Requester& to, const v1::ListIncidents& list);

  // Applies the events at once (later commands see them) and queues them for
  // commit; on_durable runs after COMMIT, then the alerts go out.
  void commit(std::vector<v1::TimelineEvent> events, OnDurable on_durable);
  void committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                 std::vector<net::SharedMessage>& alerts, const OnDurable& on_durable,
                 const StoreError& error);
  void roll_back_uncommitted();
  void acknowledge(const Requester& to, const v1::TimelineEvent& event, const StoreError& error);

  void tick();
  void arm_timer();
  void fan_out(const std::string& zone_id, const net::SharedMessage& alert);

  void reply(const Requester& to, v1::ServerMessage message);
  void reply_error(const Requester& to, v1::ErrorCode code, const std::string& message);
  void refuse(const sla::Principal& who, const Requester& to, const sla::CommandError& error);

  boost::asio::io_context& io_;
  TimelineStore& store_;
  const Roster& roster_;
  const sla::Clock& clock_;
  sla::IncidentBook book_;
  bool ready_ = false;
  bool stopped_ = false;

  std::unordered_map<std::uint64_t, Connected> sessions_;
  // Who receives each zone's alerts (see sla::receives_zone_alerts).
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> zone_audience_;

  std::unordered_map<std::uint64_t, Uncommitted> uncommitted_;
  std::uint64_t batches_submitted_ = 0;
  std::uint64_t rolled_back_through_ = 0;
  std::uint64_t committed_next_seq_ = 1;
  std::uint64_t committed_next_incident_id_ = 1;
  bool store_failing_ = false;

  boost::asio::system_timer timer_;
  std::optional<sla::Millis> timer_armed_for_;
};

}  // namespace zonecall
