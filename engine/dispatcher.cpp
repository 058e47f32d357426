#include "engine/dispatcher.hpp"

#include <algorithm>
#include <iterator>

#include "engine/dispatch/commands.hpp"
#include "engine/huge_pages.hpp"
#include "engine/log.hpp"

namespace zonecall {

Dispatcher::Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
                       const sla::PolicyHistory& policies, TimeSource& time, SignInLimits sign_in)
    : roster_(roster),
      time_(time),
      book_(&policies, huge_pages()),
      pipeline_(io, store, book_,
                CommitPipeline::Hooks{
                    [this](const v1::TimelineEvent& e) {
                      const sla::Incident* incident = e.incident_id() != 0 ? book_.find(e.incident_id()) : nullptr;
                      metrics_.on_committed(e, incident);
                      folded_pushes_.push_back(alert_for(e, incident));
                    },
                    [this](std::uint64_t batch, const auto& events, bool recovered) {
                      committed(batch, events, recovered);
                    },
                    [this](const StoreError& error) {
                      folded_pushes_.clear();
                      ticker_.after_commit(false);
                      if (error.kind() == StoreError::Kind::fenced) {
                        step_down(error.message());
                        if (give_up_lock) {
                          give_up_lock();  // the lock may still be ours: let another lead
                        }
                      }
                    }}),
      ticker_(io, time, book_, pipeline_, [this] { return now(); }),
      sign_in_(io, time, sessions_, roster, book_, standing_, sign_in),
      reads_(io, sessions_, store, book_),
      subscriptions_(io, sessions_, store, book_),
      io_(io),
      store_(store) {
  // A standby's tail, and a new leader's catch-up after a failed read.
  tail_timer_ = time.make_timer(io, [this] {
    if ((role_ == Role::standby || role_ == Role::catching_up) && !stopped_) {
      catch_up();
    }
  });
}

sla::Millis Dispatcher::now() {
  // Server time never runs backward in the timeline, even if the wall clock
  // is stepped back (the replay would flag it).
  last_now_ = std::max(last_now_, time_.now());
  return last_now_;
}

void Dispatcher::recover(std::optional<std::uint64_t> accept_broken_chain_at, bool as_standby) {
  std::uint64_t events = 0;
  book_.begin_bulk_load();
  const ChainVerdict chain = store_.load([&](const v1::TimelineEvent& e) {
    last_now_ = std::max(last_now_, e.at_ms());
    note_recorded_break(e);
    if (!book_.apply(e)) {
      throw std::runtime_error("the timeline is corrupt at seq " + std::to_string(e.seq()) + ": " +
                               sla::malformed(e).value_or("") + "; run `zonecall replay`");
    }
    ++events;
    ledger_.recovered(e);
  });
  book_.end_bulk_load();
  if (!chain.intact) {
    const std::string seq = std::to_string(chain.first_broken_seq);
    if (accept_broken_chain_at != chain.first_broken_seq) {
      throw std::runtime_error("the timeline's hash chain breaks at seq " + seq + ": " +
                               chain.problem + "; run `zonecall audit` to see what changed. To "
                               "serve on it anyway, pass --accept-broken-chain " + seq);
    }
    // The operator was told where it breaks and chose to go on.
    log::warn("store.chain_broken_accepted", {{"seq", seq}, {"problem", chain.problem}});
    accepted_break_ = chain;
  } else if (accept_broken_chain_at) {
    throw std::runtime_error("--accept-broken-chain " + std::to_string(*accept_broken_chain_at) +
                             " was given, but the timeline's hash chain is intact");
  }
  log::info("recovery.done", {{"events", std::to_string(events)},
                              {"incidents", std::to_string(book_.incidents().size())},
                              {"open", std::to_string(book_.open_ids().size())}});
  ready_ = true;
  if (as_standby) {
    role_ = Role::standby;
    standing_.standby = true;
    ticker_.stop();
    recovery_durable_ = true;
    tail_after(std::chrono::milliseconds(0));
    return;
  }
  // Deadlines that passed while we were down fire now. Firing a backlog takes
  // time, in which more fall due: repeat until a tick finds nothing new, so
  // the engine starts serving with its clocks caught up.
  while (ticker_.tick(now()) != 0) {
  }
  record_accepted_break();
  recovery_batches_ = pipeline_.submitted();
  recovery_durable_ = recovery_batches_ == 0;
  log::info("recovery.overdue", {{"batches", std::to_string(recovery_batches_)}});
}

void Dispatcher::note_recorded_break(const v1::TimelineEvent& e) {
  if (e.has_chain_break_accepted()) {
    recorded_break_seq_ = e.chain_break_accepted().first_broken_seq();
  }
}

void Dispatcher::record_accepted_break() {
  if (!accepted_break_ || recorded_break_seq_ == accepted_break_->first_broken_seq) {
    return;  // none accepted, or an engine that led before recorded it
  }
  // Recorded after the overdue backlog, at an instant with nothing more
  // due, as the replay expects of any event that is not a clock tick.
  v1::Command record;
  record.mutable_accept_broken_chain()->set_first_broken_seq(accepted_break_->first_broken_seq);
  record.mutable_accept_broken_chain()->set_problem(accepted_break_->problem);
  sla::Step step = book_.handle(sla::IncidentBook::engine(), record, {}, now());
  if (!step.due.empty()) {
    pipeline_.submit(std::move(step.due), nullptr);
  }
  pipeline_.submit(std::move(step.decision.events), nullptr);
  recorded_break_seq_ = accepted_break_->first_broken_seq;
}

void Dispatcher::stop() {
  stopped_ = true;
  ticker_.stop();
  tail_timer_->cancel();
}

RequestHandler::Readiness Dispatcher::readiness() const {
  if (!ready_ || !recovery_durable_) {
    return Readiness::recovering;
  }
  if (role_ != Role::leader) {
    return Readiness::standby;
  }
  if (pipeline_.store_failing()) {
    return Readiness::store_refusing_writes;
  }
  return store_.commit_in_doubt() ? Readiness::commit_in_doubt : Readiness::ready;
}

void Dispatcher::on_message(std::uint64_t session_id, v1::ClientMessage message, Encoding encoding) {
  auto* c = sessions_.find(session_id);
  if (c == nullptr || c->revoked) {
    return;  // gone, or signed out by a reload and closing: nothing more is read
  }
  const Requester to{session_id, message.request_id(), encoding};
  if (message.has_hello()) {
    sign_in_.hello(to, message.hello(), now());
    return;
  }
  if (!c->who) {
    sessions_.reply_error(to, v1::UNAUTHENTICATED, "send Hello with your token first");
    return;
  }
  if (!ready_ || stopped_) {
    sessions_.reply_error(to, v1::UNAVAILABLE, "the server is not serving requests now");
    return;
  }
  const sla::Principal who = *c->who;
  switch (message.body_case()) {
    case v1::ClientMessage::kGetIncident:
      return reads_.get_incident(who, to, message.get_incident().incident_id());
    case v1::ClientMessage::kListIncidents:
      return reads_.list_incidents(who, to, message.list_incidents());
    case v1::ClientMessage::kSubscribe:
      if (role_ != Role::leader) {
        // A standby's stream would lag the leader's: clients subscribe there.
        return sessions_.reply_error(to, v1::UNAVAILABLE, standby_refusal());
      }
      return subscriptions_.subscribe(to, message.subscribe().after_seq());
    default:
      break;
  }
  if (role_ != Role::leader) {
    sessions_.reply_error(to, v1::UNAVAILABLE, standby_refusal());
    return;
  }
  const std::uint64_t request_id = message.request_id();
  auto request = write_request(message);
  if (!request) {
    sessions_.reply_error(to, v1::BAD_REQUEST, "unknown message type");
    return;
  }
  write(who, to, request->command, sla::RequestKey{request_id, request->digest});
}

void Dispatcher::write(const sla::Principal& who, const Requester& to, const v1::Command& command,
                       const sla::RequestKey& key) {
  const auto seen = ledger_.check(who.staff_id, key, to);
  switch (seen.seen) {
    case RequestLedger::Seen::reused:
      sessions_.reply_error(to, v1::BAD_REQUEST, "request_id " + std::to_string(key.id) +
                                                     " was already used for another request; use a new id");
      return;
    case RequestLedger::Seen::answered: {
      v1::ServerMessage m;  // a retry: the original answer, never a second application
      *m.mutable_ack() = *seen.ack;
      sessions_.reply(to, std::move(m));
      return;
    }
    case RequestLedger::Seen::waiting:
      return;  // answered with the request it repeats
    case RequestLedger::Seen::fresh:
      break;
  }
  if (!store_.has_room()) {
    // Refused before it is decided: a stuck disk never grows the queue.
    sessions_.reply_error(to, v1::UNAVAILABLE, "too many writes are waiting for the disk; retry later");
    return;
  }
  // The clock is read once: a deadline that has passed by `now` is recorded
  // before the command stamped `now`.
  sla::Step step = book_.handle(who, command, key, now());
  if (!step.decision.ok()) {
    if (!step.due.empty()) {
      pipeline_.submit(std::move(step.due), nullptr);
    }
    ticker_.arm();
    refuse(sessions_, who, to, *step.decision.error);
    return;
  }
  // What fell due and the command go in one batch: a write takes one place
  // in the store's queue, the one has_room() promised.
  const v1::Ack ack = ack_of(step.decision.events.front());
  ledger_.started(who.staff_id, key, to);
  std::vector<v1::TimelineEvent> batch = std::move(step.due);
  batch.insert(batch.end(), std::make_move_iterator(step.decision.events.begin()),
               std::make_move_iterator(step.decision.events.end()));
  ticker_.arm();
  pipeline_.submit(std::move(batch), [this, staff_id = who.staff_id, to, key, ack](const StoreError& error) {
    std::vector<Requester> answer = key.id != 0 ? ledger_.finished(staff_id, key.id, error ? std::nullopt : std::optional(ack))
                                                : std::vector<Requester>{to};
    for (const auto& requester : answer) {
      if (error && error.kind() == StoreError::Kind::fenced) {
        sessions_.reply_error(requester, v1::UNAVAILABLE,
                              "standby: this engine no longer leads; the request was not recorded, send it to the leader");
      } else if (error) {
        sessions_.reply_error(requester, v1::INTERNAL, "storage failed; the request was not recorded, retry later");
      } else {
        v1::ServerMessage m;
        *m.mutable_ack() = ack;
        sessions_.reply(requester, std::move(m));
      }
    }
  });
}

void Dispatcher::committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                           bool store_recovered) {
  // Batches commit in order, and a failure fails every later one, so this
  // is the first moment the overdue backlog is surely on disk.
  if (!recovery_durable_ && batch >= recovery_batches_) {
    recovery_durable_ = true;
    log::info("recovery.durable");
  }
  std::vector<Push> pushes = std::move(folded_pushes_);
  folded_pushes_.clear();
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (pushes[i].alert) {
      if (const sla::Incident* incident = book_.find(events[i].incident_id())) {
        send_alert(sessions_, pushes[i], *incident, book_.latest_duty());
      }
    }
    subscriptions_.stream(events[i]);
  }
  ticker_.after_commit(store_recovered);
}

void Dispatcher::render_metrics(std::string& out) const {
  out += "# HELP zonecall_connections Signed-in connections, by role.\n"
         "# TYPE zonecall_connections gauge\n";
  for (const auto& [role, sessions] : sessions_.by_role()) {
    out += "zonecall_connections{role=\"" + v1::Role_Name(static_cast<v1::Role>(role)) + "\"} " +
           std::to_string(sessions.size()) + "\n";
  }
  // Kept by the book as events are applied: a scrape never walks the
  // incidents, which would stall every client at a million of them.
  out += "# HELP zonecall_open_incidents Open incidents, by zone and state.\n"
         "# TYPE zonecall_open_incidents gauge\n";
  for (const auto& [zone, by_state] : book_.open_counts()) {
    for (std::size_t state = 0; state < by_state.size(); ++state) {
      if (by_state[state] != 0) {
        out += "zonecall_open_incidents{zone=\"" + prometheus_label(zone) + "\",state=\"" +
               v1::IncidentState_Name(static_cast<v1::IncidentState>(state)) + "\"} " +
               std::to_string(by_state[state]) + "\n";
      }
    }
  }
  out += "# HELP zonecall_ready Whether recovery is done and the store accepts writes.\n"
         "# TYPE zonecall_ready gauge\n"
         "zonecall_ready " + std::string(readiness() == Readiness::ready ? "1" : "0") + "\n"
         "# HELP zonecall_leader Whether this engine leads (takes writes, fires deadlines).\n"
         "# TYPE zonecall_leader gauge\n"
         "zonecall_leader " + std::string(role_ == Role::leader ? "1" : "0") + "\n";
  metrics_.render(out);
}

}  // namespace zonecall
