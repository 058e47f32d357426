#include "engine/dispatcher.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>

#include "engine/log.hpp"
#include "sla/permissions.hpp"

namespace zonecall {

namespace {
constexpr sla::Millis kRetryAfterStoreFailureMs = 1000;

// The alert that tells the zone about a committed event.
v1::ServerMessage alert_for(const v1::TimelineEvent& e, const sla::Incident& after) {
  v1::ServerMessage m;
  auto* alert = m.mutable_alert();
  alert->set_seq(e.seq());
  *alert->mutable_incident() = sla::view_of(after);
  if (e.has_reported()) {
    alert->set_reason(v1::NEW);
    alert->set_stage(v1::DISCOVER);
    alert->set_deadline_ms(e.reported().discover_deadline_ms());
  } else if (e.has_breached()) {
    alert->set_reason(v1::BREACHED);
    alert->set_stage(e.breached().stage());
    alert->set_deadline_ms(e.breached().deadline_ms());
  } else {
    alert->set_reason(v1::UPDATED);
    const auto& met = e.advanced().met();
    const v1::Stage stage = met.empty() ? v1::STAGE_UNSPECIFIED : met.rbegin()->stage();
    alert->set_stage(stage);
    alert->set_deadline_ms(met.empty() ? 0 : met.rbegin()->deadline_ms());
  }
  return m;
}
}  // namespace

Dispatcher::Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
                       const sla::Policy& policy, const sla::Clock& clock)
    : io_(io), store_(store), roster_(roster), clock_(clock), book_(&policy), timer_(io) {}

void Dispatcher::recover() {
  std::uint64_t events = 0;
  store_.load([&](const v1::TimelineEvent& e) {
    book_.apply(e);
    ++events;
  });
  committed_next_seq_ = book_.next_seq();
  committed_next_incident_id_ = book_.next_incident_id();
  std::size_t open = 0;
  for (const auto& [id, incident] : book_.incidents()) {
    open += incident.open() ? 1 : 0;
  }
  log::info("recovery.done", {{"events", std::to_string(events)},
                              {"incidents", std::to_string(book_.incidents().size())},
                              {"open", std::to_string(open)}});
  ready_ = true;
  tick();  // deadlines that passed while we were down fire now
}

void Dispatcher::stop() {
  stopped_ = true;
  timer_.cancel();
}

void Dispatcher::attach(const std::shared_ptr<ClientSession>& session) {
  sessions_[session->id()] = Connected{session, std::nullopt};
}

void Dispatcher::detach(std::uint64_t session_id) {
  sessions_.erase(session_id);
  for (auto& [zone, audience] : zone_audience_) {
    audience.erase(session_id);
  }
}

void Dispatcher::on_message(std::uint64_t session_id, v1::ClientMessage message,
                            net::Encoding encoding) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return;
  }
  const Requester to{session_id, message.request_id(), encoding};
  if (message.has_hello()) {
    hello(to, message.hello());
    return;
  }
  if (!it->second.who) {
    reply_error(to, v1::UNAUTHENTICATED, "send Hello with your token first");
    return;
  }
  if (!ready_ || stopped_) {
    reply_error(to, v1::UNAVAILABLE, "the server is not serving requests now");
    return;
  }
  const sla::Principal& who = *it->second.who;
  // The clock first: a deadline that has passed is recorded before any
  // command that comes after it. Replay relies on this order.
  tick();
  switch (message.body_case()) {
    case v1::ClientMessage::kReport:
      return report(who, to, message.report());
    case v1::ClientMessage::kDiscover:
      return advance(who, to, message.discover().incident_id(), v1::DISCOVERED,
                     message.discover().note());
    case v1::ClientMessage::kRespond:
      return advance(who, to, message.respond().incident_id(), v1::RESPONDING,
                     message.respond().note());
    case v1::ClientMessage::kResolve:
      return advance(who, to, message.resolve().incident_id(), v1::RESOLVED,
                     message.resolve().note());
    case v1::ClientMessage::kGetIncident:
      return get_incident(who, to, message.get_incident().incident_id());
    case v1::ClientMessage::kListIncidents:
      return list_incidents(who, to, message.list_incidents());
    default:
      return reply_error(to, v1::BAD_REQUEST, "unknown message type");
  }
}

void Dispatcher::hello(const Requester& to, const v1::Hello& hello) {
  Connected& c = sessions_.at(to.session_id);
  if (c.who) {
    reply_error(to, v1::BAD_REQUEST, "already signed in");
    return;
  }
  auto who = roster_.authenticate(hello.token());
  if (!who) {
    log::warn("auth.refused", {{"session", std::to_string(to.session_id)}});
    reply_error(to, v1::UNAUTHENTICATED, "unknown token");
    return;
  }
  c.who = std::move(*who);
  for (const auto& zone : roster_.zone_ids()) {
    if (sla::receives_zone_alerts(*c.who, zone)) {
      zone_audience_[zone].insert(to.session_id);
    }
  }
  log::info("auth.welcome", {{"session", std::to_string(to.session_id)},
                             {"staff", c.who->staff_id},
                             {"role", v1::Role_Name(c.who->role)}});
  v1::ServerMessage m;
  auto* w = m.mutable_welcome();
  w->set_staff_id(c.who->staff_id);
  w->set_name(c.who->name);
  w->set_role(c.who->role);
  w->set_zone_id(c.who->zone_id);
  w->set_server_time_ms(clock_.now());
  reply(to, std::move(m));
}

void Dispatcher::report(const sla::Principal& who, const Requester& to, const v1::Report& report) {
  if (!roster_.has_zone(report.zone_id())) {
    reply_error(to, v1::NOT_FOUND, "unknown zone '" + report.zone_id() + "'");
    return;
  }
  if (auto refused = sla::check_report(who, report.zone_id())) {
    refuse(who, to, *refused);
    return;
  }
  auto decision = book_.report({who.staff_id, to.request_id}, report, clock_.now());
  if (!decision.ok()) {
    reply_error(to, decision.error->code, decision.error->message);
    return;
  }
  const v1::TimelineEvent reported = decision.events.front();
  commit(std::move(decision.events),
         [this, to, reported](const StoreError& e) { acknowledge(to, reported, e); });
}

void Dispatcher::advance(const sla::Principal& who, const Requester& to, std::uint64_t incident_id,
                         v1::IncidentState state, const std::string& note) {
  const sla::Incident* incident = book_.find(incident_id);
  if (incident == nullptr) {
    reply_error(to, v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
    return;
  }
  if (auto refused = sla::check_act(who, *incident)) {
    refuse(who, to, *refused);
    return;
  }
  auto decision = book_.advance({who.staff_id, to.request_id}, incident_id, state, note, clock_.now());
  if (!decision.ok()) {
    reply_error(to, decision.error->code, decision.error->message);
    return;
  }
  const v1::TimelineEvent advanced = decision.events.front();
  commit(std::move(decision.events),
         [this, to, advanced](const StoreError& e) { acknowledge(to, advanced, e); });
}

void Dispatcher::get_incident(const sla::Principal& who, const Requester& to,
                              std::uint64_t incident_id) {
  const sla::Incident* incident = book_.find(incident_id);
  if (incident == nullptr) {
    reply_error(to, v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
    return;
  }
  if (auto refused = sla::check_read(who, *incident)) {
    refuse(who, to, *refused);
    return;
  }
  // Read through the writer's queue: the answer reflects every write
  // acknowledged before it. The view is the fold of what is on disk.
  store_.read_incident(incident_id, [this, to](std::vector<v1::TimelineEvent> events,
                                               const StoreError& e) {
    boost::asio::post(io_, [this, to, events = std::move(events), e] {
      if (e || events.empty()) {
        reply_error(to, v1::INTERNAL, "could not read the incident's timeline");
        return;
      }
      sla::Incident folded;
      for (const auto& event : events) {
        sla::apply_event(folded, event);
      }
      v1::ServerMessage m;
      auto* view = m.mutable_incident();
      *view = sla::view_of(folded);
      for (const auto& event : events) {
        *view->add_timeline() = event;
      }
      reply(to, std::move(m));
    });
  });
}

void Dispatcher::list_incidents(const sla::Principal& who, const Requester& to,
                                const v1::ListIncidents& list) {
  // Only committed state: an incident with a commit in flight is listed as
  // it was at its last commit (or not at all if its report is in flight).
  std::vector<const sla::Incident*> open;
  for (const auto& [id, live] : book_.incidents()) {
    const sla::Incident* incident = &live;
    if (auto pending = uncommitted_.find(id); pending != uncommitted_.end()) {
      if (!pending->second.committed) {
        continue;
      }
      incident = &*pending->second.committed;
    }
    if (!incident->open() || (!list.zone_id().empty() && incident->zone_id != list.zone_id())) {
      continue;
    }
    if (!sla::check_read(who, *incident)) {
      open.push_back(incident);
    }
  }
  std::sort(open.begin(), open.end(), [](auto* a, auto* b) { return a->id < b->id; });
  v1::ServerMessage m;
  auto* out = m.mutable_incidents();
  for (const auto* incident : open) {
    *out->add_incidents() = sla::view_of(*incident);
  }
  reply(to, std::move(m));
}

void Dispatcher::commit(std::vector<v1::TimelineEvent> events, OnDurable on_durable) {
  const std::uint64_t batch = ++batches_submitted_;
  std::vector<net::SharedMessage> alerts;
  alerts.reserve(events.size());
  for (const auto& e : events) {
    auto [it, first] = uncommitted_.try_emplace(e.incident_id());
    if (first) {
      if (const sla::Incident* now = book_.find(e.incident_id())) {
        it->second.committed = *now;
      }
    }
    it->second.last_batch = batch;
    book_.apply(e);
    alerts.emplace_back(alert_for(e, *book_.find(e.incident_id())));
  }
  arm_timer();  // the events may have armed an earlier deadline
  auto to_store = events;
  store_.append(std::move(to_store), [this, batch, events = std::move(events),
                                      alerts = std::move(alerts),
                                      on_durable = std::move(on_durable)](const StoreError& error) mutable {
    boost::asio::post(io_, [this, batch, events = std::move(events), alerts = std::move(alerts),
                            on_durable = std::move(on_durable), error]() mutable {
      committed(batch, events, alerts, on_durable, error);
    });
  });
}

void Dispatcher::committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                           std::vector<net::SharedMessage>& alerts, const OnDurable& on_durable,
                           const StoreError& error) {
  if (error) {
    if (batch > rolled_back_through_) {
      roll_back_uncommitted();
    }
    if (on_durable) {
      on_durable(error);
    }
    return;
  }
  if (store_failing_) {
    store_failing_ = false;
    log::info("store.recovered");
  }
  for (const auto& e : events) {
    committed_next_seq_ = std::max(committed_next_seq_, e.seq() + 1);
    if (e.has_reported()) {
      committed_next_incident_id_ = std::max(committed_next_incident_id_, e.incident_id() + 1);
    }
    auto it = uncommitted_.find(e.incident_id());
    if (it == uncommitted_.end()) {
      continue;
    }
    if (it->second.last_batch == batch) {
      uncommitted_.erase(it);  // nothing of it is pending any more
    } else {
      // Later batches are still pending: move its committed state forward.
      if (!it->second.committed) {
        it->second.committed.emplace();
      }
      sla::apply_event(*it->second.committed, e);
    }
  }
  if (on_durable) {
    on_durable(std::nullopt);
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    fan_out(alerts[i].message().alert().incident().zone_id(), alerts[i]);
  }
}

void Dispatcher::roll_back_uncommitted() {
  // Every batch submitted so far fails in the store until resume(), so undo
  // them all: each touched incident goes back to its committed state.
  log::error("dispatcher.rollback", {{"incidents", std::to_string(uncommitted_.size())},
                                     {"through_batch", std::to_string(batches_submitted_)}});
  for (const auto& [id, undo] : uncommitted_) {
    book_.restore(id, undo.committed);
  }
  uncommitted_.clear();
  book_.rewind(committed_next_seq_, committed_next_incident_id_);
  rolled_back_through_ = batches_submitted_;
  store_failing_ = true;
  store_.resume();
  timer_armed_for_.reset();
  arm_timer();
}

void Dispatcher::acknowledge(const Requester& to, const v1::TimelineEvent& event,
                             const StoreError& error) {
  if (error) {
    reply_error(to, v1::INTERNAL, "storage failed; the request was not recorded, retry later");
    return;
  }
  v1::ServerMessage m;
  auto* ack = m.mutable_ack();
  ack->set_incident_id(event.incident_id());
  ack->set_seq(event.seq());
  ack->set_at_ms(event.at_ms());
  reply(to, std::move(m));
}

void Dispatcher::tick() {
  if (stopped_ || !ready_) {
    return;
  }
  auto events = book_.due(clock_.now());
  if (!events.empty()) {
    commit(std::move(events), nullptr);
  }
  arm_timer();
}

void Dispatcher::arm_timer() {
  if (stopped_) {
    return;
  }
  auto next = book_.next_deadline();
  if (!next) {
    return;
  }
  // A deadline has passed once the clock is beyond it, i.e. 1 ms later.
  sla::Millis at = *next + 1;
  if (store_failing_) {
    at = std::max(at, clock_.now() + kRetryAfterStoreFailureMs);
  }
  if (timer_armed_for_ == at) {
    return;
  }
  timer_armed_for_ = at;
  timer_.expires_at(std::chrono::system_clock::time_point(std::chrono::milliseconds(at)));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) {
      return;  // re-armed or stopped
    }
    timer_armed_for_.reset();
    tick();
  });
}

void Dispatcher::fan_out(const std::string& zone_id, const net::SharedMessage& alert) {
  auto it = zone_audience_.find(zone_id);
  if (it == zone_audience_.end()) {
    return;
  }
  for (std::uint64_t id : it->second) {
    auto s = sessions_.find(id);
    if (s == sessions_.end()) {
      continue;
    }
    if (auto session = s->second.session.lock()) {
      session->send(alert);
    }
  }
}

void Dispatcher::reply(const Requester& to, v1::ServerMessage message) {
  auto it = sessions_.find(to.session_id);
  if (it == sessions_.end()) {
    return;  // the client left before its answer was ready
  }
  message.set_request_id(to.request_id);
  if (auto session = it->second.session.lock()) {
    session->send(net::SharedMessage(std::move(message)), to.encoding);
  }
}

void Dispatcher::reply_error(const Requester& to, v1::ErrorCode code, const std::string& text) {
  v1::ServerMessage m;
  m.mutable_error()->set_code(code);
  m.mutable_error()->set_message(text);
  reply(to, std::move(m));
}

void Dispatcher::refuse(const sla::Principal& who, const Requester& to,
                        const sla::CommandError& error) {
  log::warn("authz.refused", {{"staff", who.staff_id}, {"reason", error.message}});
  reply_error(to, error.code, error.message);
}

}  // namespace zonecall
