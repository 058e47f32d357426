#include "engine/dispatcher.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "engine/log.hpp"
#include "engine/token.hpp"

namespace zonecall {

namespace {
constexpr sla::Millis kRetryAfterStoreFailureMs = 1000;
constexpr std::size_t kSubscribePage = 512;
constexpr std::size_t kMaxTickBatch = 2000;
// A backlog page waits while the subscriber has this much still unsent.
constexpr std::size_t kSubscribeQueueLowWater = 512 * 1024;
constexpr auto kSubscribePause = std::chrono::milliseconds(1);
// The close reason (with policy_error, 1008) for a session whose staff member
// a reload removed or gave a new token; docs/security.md quotes it.
constexpr const char* kRevokedReason = "signed out: no longer on the roster";

v1::Recipient recipient(v1::AudienceKind kind, const std::string& zone = "",
                        const std::string& department = "") {
  v1::Recipient r;
  r.set_kind(kind);
  r.set_zone_id(zone);
  r.set_department_id(department);
  return r;
}

// The zone's on-duty staff and those of every zone asked for mutual aid.
void add_zone_staff(std::vector<v1::Recipient>& out, const sla::Incident& incident) {
  out.push_back(recipient(v1::ZONE_ON_DUTY, incident.zone_id));
  for (const auto& zone : incident.mutual_aid_zones) {
    out.push_back(recipient(v1::ZONE_ON_DUTY, zone));
  }
}

// What a retry must repeat: the request's whole body, without its id. The
// same digest is stored in the request's events, so the ledger rebuilt at
// recovery tells a retry from a reused id exactly as the live engine did.
std::uint64_t request_digest(const v1::ClientMessage& m) {
  v1::ClientMessage body = m;
  body.clear_request_id();
  body.DiscardUnknownFields();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    body.SerializeToCodedStream(&coded);
  }
  const std::string hash = sha256_chain({}, bytes);
  std::uint64_t digest = 0;
  for (int i = 7; i >= 0; --i) {
    digest = (digest << 8) | static_cast<unsigned char>(hash[i]);
  }
  return digest == 0 ? 1 : digest;  // 0 means "not recorded" (older events)
}

v1::Ack ack_of(const v1::TimelineEvent& first) {
  v1::Ack ack;
  ack.set_incident_id(first.incident_id());
  ack.set_seq(first.seq());
  ack.set_at_ms(first.at_ms());
  ack.set_attached(first.has_attached());
  return ack;
}
}  // namespace

Dispatcher::Dispatcher(boost::asio::io_context& io, TimelineStore& store, const Roster& roster,
                       const sla::PolicyHistory& policies, TimeSource& time, SignInLimits sign_in)
    : io_(io), sign_in_(sign_in), store_(store), roster_(roster), time_(time), book_(&policies),
      timer_(time.make_timer(io, [this] {
        timer_armed_for_.reset();
        tick(now());
      })) {}

sla::Millis Dispatcher::now() {
  // Server time never runs backward in the timeline, even if the wall clock
  // is stepped back (the replay would flag it).
  last_now_ = std::max(last_now_, time_.now());
  return last_now_;
}

void Dispatcher::recover(std::optional<std::uint64_t> accept_broken_chain_at) {
  std::uint64_t events = 0;
  std::optional<ChainVerdict> accepted_break;
  book_.begin_bulk_load();
  const ChainVerdict chain = store_.load([&](const v1::TimelineEvent& e) {
    last_now_ = std::max(last_now_, e.at_ms());
    if (!book_.apply(e)) {
      throw std::runtime_error("the timeline is corrupt at seq " + std::to_string(e.seq()) + ": " +
                               sla::malformed(e).value_or("") + "; run `zonecall replay`");
    }
    ++events;
    if (e.request_id() != 0 && e.actor_id() != sla::kEngineActor) {
      auto& staff = requests_[e.actor_id()];
      if (staff.by_id.count(e.request_id()) == 0) {
        remember(e.actor_id(), e.request_id(), Remembered{e.request_digest(), ack_of(e), {}});
      }
    }
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
    accepted_break = chain;
  } else if (accept_broken_chain_at) {
    throw std::runtime_error("--accept-broken-chain " + std::to_string(*accept_broken_chain_at) +
                             " was given, but the timeline's hash chain is intact");
  }
  committed_next_seq_ = book_.next_seq();
  committed_next_incident_id_ = book_.next_incident_id();
  committed_duty_ = book_.duty();
  std::size_t open = 0;
  for (const auto& [id, incident] : book_.incidents()) {
    open += incident.open() ? 1 : 0;
  }
  log::info("recovery.done", {{"events", std::to_string(events)},
                              {"incidents", std::to_string(book_.incidents().size())},
                              {"open", std::to_string(open)}});
  ready_ = true;
  // Deadlines that passed while we were down fire now. Firing a backlog takes
  // time, in which more fall due: repeat until none is overdue, so the
  // engine starts serving with its clocks caught up.
  tick(now());
  for (auto next = book_.next_deadline(); next && *next < now(); next = book_.next_deadline()) {
    tick(now());
  }
  if (accepted_break) {
    // Recorded after the overdue backlog, at an instant with nothing more
    // due, as the replay expects of any event that is not a clock tick.
    const sla::Millis at = now();
    tick(at);
    const sla::CommandOrigin engine{std::string(sla::kEngineActor), 0, 0};
    commit(book_.accept_broken_chain(engine, accepted_break->first_broken_seq,
                                     accepted_break->problem, at).events,
           nullptr);
  }
  recovery_batches_ = batches_submitted_;
  recovery_durable_ = recovery_batches_ == 0;
  log::info("recovery.overdue", {{"batches", std::to_string(recovery_batches_)}});
}

void Dispatcher::stop() {
  stopped_ = true;
  timer_->cancel();
}

void Dispatcher::on_commits_drained(std::function<void()> done) {
  commits_drained_ = std::move(done);
  if (commits_drained_ && batches_in_flight_ == 0) {
    boost::asio::post(io_, std::exchange(commits_drained_, nullptr));
  }
}

void Dispatcher::attach(const std::shared_ptr<ClientSession>& session) {
  sessions_[session->id()] = Connected{session};
}

void Dispatcher::detach(std::uint64_t session_id) {
  if (sessions_.count(session_id) == 0) {
    return;
  }
  sign_out(session_id);
  sessions_.erase(session_id);
}

void Dispatcher::sign_in(std::uint64_t session_id, sla::Principal who) {
  Connected& c = sessions_.at(session_id);
  sessions_by_staff_[who.staff_id].insert(session_id);
  sessions_by_role_[who.role].insert(session_id);
  c.token_sha256 = roster_.token_sha256_of(who.staff_id);
  c.who = std::move(who);
}

void Dispatcher::sign_out(std::uint64_t session_id) {
  Connected& c = sessions_.at(session_id);
  if (c.who) {
    sessions_by_staff_[c.who->staff_id].erase(session_id);
    sessions_by_role_[c.who->role].erase(session_id);
  }
  c.who.reset();
  c.subscription.reset();
  subscribers_.erase(session_id);
}

void Dispatcher::roster_changed() {
  std::size_t closed = 0;
  std::size_t changed = 0;
  std::vector<std::uint64_t> signed_in;
  for (const auto& [session_id, c] : sessions_) {
    if (c.who) {
      signed_in.push_back(session_id);
    }
  }
  for (std::uint64_t session_id : signed_in) {
    Connected& c = sessions_.at(session_id);
    const sla::Principal* now = roster_.member(c.who->staff_id, c.token_sha256);
    if (now == nullptr) {
      log::warn("auth.revoked", {{"session", std::to_string(session_id)}, {"staff", c.who->staff_id}});
      sign_out(session_id);
      c.revoked = true;
      if (auto session = c.session.lock()) {
        session->close_for_policy(kRevokedReason);
      }
      ++closed;
    } else if (now->role != c.who->role || now->zone_id != c.who->zone_id ||
               now->department_id != c.who->department_id || now->name != c.who->name) {
      // Re-indexed: the role index decides who is alerted.
      auto subscription = std::move(c.subscription);
      sign_out(session_id);
      sign_in(session_id, *now);
      if (subscription) {
        c.subscription = std::move(subscription);
        subscribers_.insert(session_id);
      }
      ++changed;
    }
  }
  log::info("auth.roster_applied", {{"closed", std::to_string(closed)}, {"changed", std::to_string(changed)}});
}

void Dispatcher::on_message(std::uint64_t session_id, v1::ClientMessage message,
                            net::Encoding encoding) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || it->second.revoked) {
    return;  // gone, or signed out by a reload and closing: nothing more is read
  }
  Requester to{session_id, message.request_id(), encoding, 0};
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
  const sla::Principal who = *it->second.who;
  // Only writes are remembered for retries; reads skip the digest's copy and hash.
  const bool read = message.has_get_incident() || message.has_list_incidents() || message.has_subscribe();
  to.request_digest = read ? 0 : request_digest(message);
  // The clock is read once: a deadline that has passed by `now` is recorded
  // before the command stamped `now`. Replay relies on this order.
  const sla::Millis now = this->now();
  tick(now);
  switch (message.body_case()) {
    case v1::ClientMessage::kReport:
      return report(who, to, message.report(), now);
    case v1::ClientMessage::kDiscover:
    case v1::ClientMessage::kRespond:
    case v1::ClientMessage::kResolve: {
      const bool discover = message.has_discover();
      const bool respond = message.has_respond();
      const auto& id = discover  ? message.discover().incident_id()
                       : respond ? message.respond().incident_id()
                                 : message.resolve().incident_id();
      const std::string note = discover  ? message.discover().note()
                               : respond ? message.respond().note()
                                         : message.resolve().note();
      const v1::IncidentState state = discover  ? v1::DISCOVERED
                                      : respond ? v1::RESPONDING
                                                : v1::RESOLVED;
      const v1::Outcome outcome = message.has_resolve() ? message.resolve().outcome()
                                                        : v1::OUTCOME_UNSPECIFIED;
      return act_on_incident(who, to, id, sla::check_act, [=, this](const auto&, const auto& origin) {
        return book_.advance(origin, id, state, note, now, outcome);
      });
    }
    case v1::ClientMessage::kZoneCall: {
      const auto call = message.zone_call();
      return act_on_incident(who, to, call.incident_id(), sla::check_call,
                             [=, this](const auto&, const auto& origin) {
                               return book_.zone_call(origin, call.incident_id(),
                                                      call.department_id(), call.reason(), now);
                             });
    }
    case v1::ClientMessage::kDepartmentAccept: {
      const auto accept = message.department_accept();
      return act_on_incident(who, to, accept.incident_id(), sla::check_department,
                             [=, this](const auto& w, const auto& origin) {
                               return book_.department_accept(origin, accept.incident_id(),
                                                              w.department_id, now, accept.note());
                             });
    }
    case v1::ClientMessage::kDepartmentOnSite: {
      const auto arrived = message.department_on_site();
      return act_on_incident(who, to, arrived.incident_id(), sla::check_department,
                             [=, this](const auto& w, const auto& origin) {
                               return book_.department_on_site(origin, arrived.incident_id(),
                                                               w.department_id, now, arrived.note());
                             });
    }
    case v1::ClientMessage::kDepartmentDecline: {
      const auto decline = message.department_decline();
      return act_on_incident(who, to, decline.incident_id(), sla::check_department,
                             [=, this](const auto& w, const auto& origin) {
                               return book_.department_decline(origin, decline.incident_id(),
                                                               w.department_id, decline.reason(),
                                                               now);
                             });
    }
    case v1::ClientMessage::kFeedback: {
      const auto f = message.feedback();
      return act_on_incident(who, to, f.incident_id(), sla::check_feedback,
                             [=, this](const auto&, const auto& origin) {
                               return book_.feedback(origin, f.incident_id(), f.satisfied(),
                                                     f.score(), f.comment(), now);
                             });
    }
    case v1::ClientMessage::kVisit: {
      const auto v = message.visit();
      if (!roster_.has_zone(v.zone_id())) {
        return reply_error(to, v1::NOT_FOUND, "unknown zone '" + v.zone_id() + "'");
      }
      if (auto refused = sla::check_visit(who, v.zone_id())) {
        return refuse(who, to, *refused);
      }
      return write(who, to, [=, this](const auto&, const auto& origin) {
        return book_.visit(origin, v.zone_id(), v.household_ref(), v.note(), now);
      });
    }
    case v1::ClientMessage::kSetDuty:
      return set_duty(who, to, message.set_duty().on_duty(), now);
    case v1::ClientMessage::kGetIncident:
      return get_incident(who, to, message.get_incident().incident_id());
    case v1::ClientMessage::kListIncidents:
      return list_incidents(who, to, message.list_incidents());
    case v1::ClientMessage::kSubscribe:
      return subscribe(who, to, message.subscribe().after_seq());
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
    // Answer late, later each time, and close after a few: guessing tokens
    // is slow and noisy. The token itself is never logged.
    const int failures = ++c.failed_hellos;
    log::warn("auth.refused", {{"session", std::to_string(to.session_id)},
                               {"failures", std::to_string(failures)}});
    auto delay = refusal_delays_.insert(refusal_delays_.end(), nullptr);
    *delay = time_.make_timer(io_, [this, delay, to, failures] {
      reply_error(to, v1::UNAUTHENTICATED, "unknown token");
      if (failures >= sign_in_.max_failures) {
        if (auto it = sessions_.find(to.session_id); it != sessions_.end()) {
          if (auto session = it->second.session.lock()) {
            session->close_for_policy("too many failed sign-ins");
          }
        }
      }
      refusal_delays_.erase(delay);  // this timer: nothing of it is used after
    });
    (*delay)->arm_after(sign_in_.failure_delay * failures);
    return;
  }
  sign_in(to.session_id, std::move(*who));
  log::info("auth.welcome", {{"session", std::to_string(to.session_id)},
                             {"staff", c.who->staff_id},
                             {"role", v1::Role_Name(c.who->role)}});
  v1::ServerMessage m;
  auto* w = m.mutable_welcome();
  w->set_staff_id(c.who->staff_id);
  w->set_name(c.who->name);
  w->set_role(c.who->role);
  w->set_zone_id(c.who->zone_id);
  w->set_department_id(c.who->department_id);
  w->set_server_time_ms(now());
  w->set_on_duty(book_.duty().on_duty(c.who->staff_id));
  w->set_last_seq(committed_next_seq_ - 1);
  w->set_time_zone(roster_.time_zone());
  reply(to, std::move(m));
}

void Dispatcher::report(const sla::Principal& who, const Requester& to, const v1::Report& report,
                        sla::Millis now) {
  if (!roster_.has_zone(report.zone_id())) {
    reply_error(to, v1::NOT_FOUND, "unknown zone '" + report.zone_id() + "'");
    return;
  }
  if (auto refused = sla::check_report(who, report.zone_id())) {
    refuse(who, to, *refused);
    return;
  }
  write(who, to, [this, report, now](const auto&, const sla::CommandOrigin& origin) {
    return book_.report(origin, report, now);
  });
}

void Dispatcher::act_on_incident(
    const sla::Principal& who, const Requester& to, std::uint64_t incident_id,
    std::optional<sla::CommandError> (*permission)(const sla::Principal&, const sla::Incident&),
    const Command& decide) {
  const sla::Incident* incident = book_.find(incident_id);
  if (incident == nullptr) {
    reply_error(to, v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
    return;
  }
  if (auto refused = permission(who, *incident)) {
    refuse(who, to, *refused);
    return;
  }
  write(who, to, decide);
}

void Dispatcher::set_duty(const sla::Principal& who, const Requester& to, bool on_duty,
                          sla::Millis now) {
  if (auto refused = sla::check_set_duty(who)) {
    refuse(who, to, *refused);
    return;
  }
  write(who, to, [this, on_duty, now](const sla::Principal& w, const sla::CommandOrigin& origin) {
    return book_.set_duty(origin, w.zone_id, on_duty, now);
  });
}

void Dispatcher::write(const sla::Principal& who, const Requester& to, const Command& decide) {
  if (to.request_id != 0) {
    auto staff = requests_.find(who.staff_id);
    if (staff != requests_.end()) {
      auto known = staff->second.by_id.find(to.request_id);
      if (known != staff->second.by_id.end()) {
        // Digest 0: recorded before digests were; whether it is the same
        // request is unknown, so it is refused rather than guessed.
        if (known->second.request_digest == 0 || known->second.request_digest != to.request_digest) {
          reply_error(to, v1::BAD_REQUEST,
                      "request_id " + std::to_string(to.request_id) +
                          " was already used for another request; use a new id");
          return;
        }
        // A retry: the original answer, never a second application.
        if (known->second.ack) {
          v1::ServerMessage m;
          *m.mutable_ack() = *known->second.ack;
          reply(to, std::move(m));
        } else {
          known->second.waiting.push_back(to);
        }
        return;
      }
    }
  }
  auto decision = decide(who, sla::CommandOrigin{who.staff_id, to.request_id, to.request_digest});
  if (!decision.ok()) {
    reply_error(to, decision.error->code, decision.error->message);
    return;
  }
  const v1::TimelineEvent first = decision.events.front();
  if (to.request_id != 0) {
    remember(who.staff_id, to.request_id, Remembered{to.request_digest, std::nullopt, {to}});
  }
  const std::string staff_id = who.staff_id;
  commit(std::move(decision.events), [this, staff_id, to, first](const StoreError& error) {
    std::vector<Requester> answer{to};
    Remembered* entry = nullptr;
    if (to.request_id != 0) {
      auto& known = requests_[staff_id].by_id;
      if (auto it = known.find(to.request_id); it != known.end()) {
        entry = &it->second;
        answer = std::move(entry->waiting);
        entry->waiting.clear();
        if (error) {
          known.erase(it);  // not done: a later retry is a new attempt
          entry = nullptr;
        }
      }
    }
    for (const auto& requester : answer) {
      if (error) {
        reply_error(requester, v1::INTERNAL, "storage failed; the request was not recorded, retry later");
      } else {
        v1::ServerMessage m;
        *m.mutable_ack() = ack_of(first);
        reply(requester, std::move(m));
      }
    }
    if (entry != nullptr) {
      entry->ack = ack_of(first);
    }
  });
}

void Dispatcher::remember(const std::string& staff_id, std::uint64_t request_id, Remembered entry) {
  auto& staff = requests_[staff_id];
  entry.order_no = staff.next_order_no++;
  staff.order.emplace_back(request_id, entry.order_no);
  staff.by_id.insert_or_assign(request_id, std::move(entry));
  // Forget the oldest answered requests beyond the bound; a request still
  // waiting for its commit is never forgotten (it goes to the back).
  std::size_t looked = 0;
  while (staff.by_id.size() > kRememberedRequests && looked++ < staff.order.size()) {
    const auto [id, order_no] = staff.order.front();
    staff.order.pop_front();
    auto it = staff.by_id.find(id);
    if (it == staff.by_id.end() || it->second.order_no != order_no) {
      continue;  // a stale place: forgotten already, or queued again later
    }
    if (!it->second.ack) {
      staff.order.emplace_back(id, order_no);
      continue;
    }
    staff.by_id.erase(it);
  }
}

void Dispatcher::get_incident(const sla::Principal& who, const Requester& to,
                              std::uint64_t incident_id) {
  // Committed state only, read on the store's own reader connection: an
  // answer never waits behind a stuck commit, and reflects every write
  // acknowledged before it. The view is the fold of what is on disk.
  const sla::Incident* incident = committed_incident(incident_id);
  if (incident == nullptr) {
    reply_error(to, v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
    return;
  }
  if (auto refused = sla::check_read(who, *incident)) {
    refuse(who, to, *refused);
    return;
  }
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
  constexpr std::uint32_t kDefaultLimit = 200;
  constexpr std::uint32_t kMaxLimit = 1000;
  const std::uint32_t limit =
      list.limit() == 0 ? kDefaultLimit : std::min(list.limit(), kMaxLimit);
  v1::ServerMessage m;
  auto* out = m.mutable_incidents();
  const auto& open = book_.open_ids();
  for (auto it = open.upper_bound(list.after_incident_id()); it != open.end(); ++it) {
    // Only committed state: an incident with a commit in flight is listed as
    // it was at its last commit (or not at all if its report is in flight).
    const sla::Incident* incident = committed_incident(*it);
    if (incident == nullptr || !incident->open() || (!list.zone_id().empty() && incident->zone_id != list.zone_id()) ||
        sla::check_read(who, *incident)) {
      continue;
    }
    if (static_cast<std::uint32_t>(out->incidents_size()) == limit) {
      out->set_more(true);
      break;
    }
    *out->add_incidents() = sla::view_of(*incident);
  }
  reply(to, std::move(m));
}

void Dispatcher::subscribe(const sla::Principal& who, const Requester& to, std::uint64_t after_seq) {
  Connected& c = sessions_.at(to.session_id);
  c.subscription = Subscription{next_generation_++, after_seq, false};
  subscribers_.insert(to.session_id);
  next_page(to.session_id, c.subscription->generation, to);
}

void Dispatcher::next_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end() || !it->second.subscription ||
      it->second.subscription->generation != generation) {
    return;
  }
  // Pages go through the writer's queue, so a page never misses an event
  // whose completion (and live streaming) came before it.
  store_.read_after(it->second.subscription->cursor, kSubscribePage,
                    [this, session_id, generation, to](std::vector<v1::TimelineEvent> events,
                                                       std::uint64_t last_committed,
                                                       const StoreError& error) {
    boost::asio::post(io_, [this, session_id, generation, to, events = std::move(events),
                            last_committed, error] {
      auto it = sessions_.find(session_id);
      if (it == sessions_.end() || !it->second.subscription ||
          it->second.subscription->generation != generation) {
        return;  // gone, or subscribed afresh
      }
      Connected& c = it->second;
      Subscription& sub = *c.subscription;
      if (error) {
        c.subscription.reset();
        subscribers_.erase(session_id);
        reply_error(to, v1::INTERNAL, "could not read the timeline; subscribe again");
        return;
      }
      // Stop short of the page's end once the client has enough queued: a
      // backlog never overflows a send queue, however small it is set.
      auto session = c.session.lock();
      const std::size_t budget =
          session ? std::min(kSubscribeQueueLowWater, session->send_queue_limit() / 2)
                  : kSubscribeQueueLowWater;
      bool full = false;
      for (const auto& e : events) {
        if (session && session->queued_bytes() > budget) {
          full = true;
          break;
        }
        if (sla::may_see_event(*c.who, e, book_.find(e.incident_id()))) {
          v1::ServerMessage m;
          *m.mutable_event() = e;
          send_to(session_id, net::SharedMessage(std::move(m)));
        }
        sub.cursor = e.seq();
      }
      if (!full && events.size() < kSubscribePage) {
        sub.cursor = std::max(sub.cursor, last_committed);
        sub.live = true;
        v1::ServerMessage m;
        m.mutable_subscribed()->set_caught_up_seq(sub.cursor);
        reply(to, std::move(m));
        return;
      }
      // More backlog: wait until this client has drained most of what it has.
      if (session && session->queued_bytes() > budget) {
        auto timer = std::make_shared<boost::asio::steady_timer>(io_, kSubscribePause);
        timer->async_wait([this, timer, session_id, generation, to](auto) {
          next_page(session_id, generation, to);
        });
        return;
      }
      next_page(session_id, generation, to);
    });
  });
}

void Dispatcher::commit(std::vector<v1::TimelineEvent> events,
                        std::function<void(const StoreError&)> on_durable) {
  const std::uint64_t batch = ++batches_submitted_;
  ++batches_in_flight_;
  std::vector<Push> pushes;
  pushes.reserve(events.size());
  for (const auto& e : events) {
    if (e.incident_id() != 0) {
      auto [it, first] = uncommitted_.try_emplace(e.incident_id());
      if (first) {
        if (const sla::Incident* now = book_.find(e.incident_id())) {
          it->second.committed = *now;
        }
      }
      it->second.last_batch = batch;
    }
    book_.apply(e);
    pushes.push_back(push_for(e));
  }
  arm_timer();  // the events may have armed an earlier deadline
  auto shared = std::make_shared<const std::vector<v1::TimelineEvent>>(std::move(events));
  store_.append(shared, [this, batch, shared, pushes = std::move(pushes),
                         on_durable = std::move(on_durable)](const StoreError& error) mutable {
    boost::asio::post(io_, [this, batch, shared = std::move(shared), pushes = std::move(pushes),
                            on_durable = std::move(on_durable), error] {
      committed(batch, *shared, pushes, on_durable, error);
    });
  });
}

void Dispatcher::committed(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                           const std::vector<Push>& pushes,
                           const std::function<void(const StoreError&)>& on_durable,
                           const StoreError& error) {
  --batches_in_flight_;
  if (batches_in_flight_ == 0 && commits_drained_) {
    // Posted, so that it runs once this answer and its alerts are sent.
    boost::asio::post(io_, std::exchange(commits_drained_, nullptr));
  }
  if (error) {
    if (batch > rolled_back_through_) {
      roll_back_uncommitted();
    }
    if (on_durable) {
      on_durable(error);
    }
    return;
  }
  // Batches commit in order, and a failure rolls back every later one, so
  // this is the first moment the overdue backlog is surely on disk.
  if (!recovery_durable_ && batch >= recovery_batches_) {
    recovery_durable_ = true;
    log::info("recovery.durable");
  }
  if (store_failing_) {
    store_failing_ = false;
    log::info("store.recovered");
    timer_armed_for_.reset();  // drop the retry pause: deadlines fire on time again
    arm_timer();
  }
  for (const auto& e : events) {
    committed_next_seq_ = std::max(committed_next_seq_, e.seq() + 1);
    if (e.has_reported()) {
      committed_next_incident_id_ = std::max(committed_next_incident_id_, e.incident_id() + 1);
    }
    if (e.has_duty()) {
      committed_duty_.apply(e.duty());
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
  for (const auto& e : events) {
    metrics_.on_committed(e, e.incident_id() != 0 ? book_.find(e.incident_id()) : nullptr);
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (pushes[i].alert) {
      send_alert(pushes[i], events[i].incident_id());
    }
    stream_to_subscribers(events[i]);
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
  book_.restore_duty(committed_duty_);
  book_.rewind(committed_next_seq_, committed_next_incident_id_);
  rolled_back_through_ = batches_submitted_;
  store_failing_ = true;
  store_.resume();
  timer_armed_for_.reset();
  arm_timer();
}

Dispatcher::Push Dispatcher::push_for(const v1::TimelineEvent& e) const {
  const sla::Incident* incident = e.incident_id() != 0 ? book_.find(e.incident_id()) : nullptr;
  if (incident == nullptr || e.has_reported()) {
    return {};  // a report is announced by its AT_REPORT escalation
  }
  Push push;
  v1::ServerMessage m;
  auto* alert = m.mutable_alert();
  alert->set_seq(e.seq());
  auto stage_deadline = [&](v1::Stage stage) {
    return stage == v1::STAGE_UNSPECIFIED ? 0 : incident->stage(stage).deadline;
  };
  switch (e.kind_case()) {
    case v1::TimelineEvent::kEscalated: {
      const auto& esc = e.escalated();
      alert->set_reason(esc.rung() == v1::AT_REPORT       ? v1::NEW
                        : esc.rung() == v1::NEAR_DEADLINE ? v1::WARNING
                                                          : v1::ESCALATED);
      alert->set_rung(esc.rung());
      alert->set_stage(esc.stage());
      alert->set_deadline_ms(stage_deadline(esc.stage()));
      alert->set_reason_text(esc.reason());
      alert->set_mutual_aid(esc.mutual_aid_zones_size() > 0);
      push.recipients.assign(esc.recipients().begin(), esc.recipients().end());
      break;
    }
    case v1::TimelineEvent::kBreached:
      alert->set_reason(v1::BREACHED);
      alert->set_stage(e.breached().stage());
      alert->set_deadline_ms(e.breached().deadline_ms());
      add_zone_staff(push.recipients, *incident);
      break;
    case v1::TimelineEvent::kAdvanced:
    case v1::TimelineEvent::kAttached: {
      alert->set_reason(v1::UPDATED);
      if (e.has_advanced() && e.advanced().met_size() > 0) {
        const auto& met = *e.advanced().met().rbegin();
        alert->set_stage(met.stage());
        alert->set_deadline_ms(met.deadline_ms());
      }
      add_zone_staff(push.recipients, *incident);
      if (const sla::CallState* call = incident->open_call()) {
        push.recipients.push_back(recipient(v1::DEPARTMENT_MEMBERS, "", call->department_id));
      }
      break;
    }
    case v1::TimelineEvent::kCallRaised:
    case v1::TimelineEvent::kCallAccepted:
    case v1::TimelineEvent::kCallOnSite:
    case v1::TimelineEvent::kCallDeclined:
    case v1::TimelineEvent::kCallBreached: {
      alert->set_reason(v1::CALLED);
      const std::string department = e.has_call_raised()     ? e.call_raised().department_id()
                                     : e.has_call_accepted() ? e.call_accepted().department_id()
                                     : e.has_call_on_site()  ? e.call_on_site().department_id()
                                     : e.has_call_declined() ? e.call_declined().department_id()
                                                             : e.call_breached().department_id();
      alert->set_deadline_ms(e.has_call_raised()     ? e.call_raised().accept_deadline_ms()
                             : e.has_call_accepted() ? e.call_accepted().on_site_deadline_ms()
                             : e.has_call_breached() ? e.call_breached().deadline_ms()
                                                     : 0);
      push.recipients.push_back(recipient(v1::DEPARTMENT_MEMBERS, "", department));
      // The department whose call this one superseded learns that it is closed.
      const auto no = e.has_call_raised() ? e.call_raised().call_no() : 0;
      if (no >= 2 && no <= incident->calls.size() && incident->calls[no - 2].superseded) {
        push.recipients.push_back(
            recipient(v1::DEPARTMENT_MEMBERS, "", incident->calls[no - 2].department_id));
      }
      push.recipients.push_back(recipient(v1::ZONE_CHIEF_OF_ZONE, incident->zone_id));
      push.recipients.push_back(recipient(v1::ZONE_ON_DUTY, incident->zone_id));
      break;
    }
    default:
      return {};
  }
  push.alert = std::move(m);
  return push;
}

const sla::Incident* Dispatcher::committed_incident(std::uint64_t incident_id) const {
  if (auto pending = uncommitted_.find(incident_id); pending != uncommitted_.end()) {
    return pending->second.committed ? &*pending->second.committed : nullptr;
  }
  return book_.find(incident_id);
}

void Dispatcher::send_alert(const Push& push, std::uint64_t incident_id) {
  // The audience is resolved now, at commit, so that staff who signed in or
  // went on duty while the batch was being written are alerted too.
  const auto audience = sessions_for(push.recipients);
  const sla::Incident* incident = committed_incident(incident_id);
  if (audience.empty() || incident == nullptr) {
    return;
  }
  // The view is the costly part: built only for an audience, from the
  // committed state.
  v1::ServerMessage m = *push.alert;
  *m.mutable_alert()->mutable_incident() = sla::view_of(*incident);
  const net::SharedMessage shared(std::move(m));
  for (std::uint64_t session_id : audience) {
    send_to(session_id, shared);
  }
}

std::unordered_set<std::uint64_t> Dispatcher::sessions_for(
    const std::vector<v1::Recipient>& recipients) const {
  std::unordered_set<std::uint64_t> out;
  auto staff_sessions = [&](const std::string& staff_id, const std::string& zone_id = {}) {
    auto it = sessions_by_staff_.find(staff_id);
    if (it == sessions_by_staff_.end()) {
      return;
    }
    for (std::uint64_t id : it->second) {
      auto s = sessions_.find(id);
      if (zone_id.empty() || (s != sessions_.end() && s->second.who && s->second.who->zone_id == zone_id)) {
        out.insert(id);
      }
    }
  };
  auto role_sessions = [&](v1::Role role, const auto& keep) {
    auto it = sessions_by_role_.find(role);
    if (it == sessions_by_role_.end()) {
      return;
    }
    for (std::uint64_t id : it->second) {
      auto s = sessions_.find(id);
      if (s != sessions_.end() && s->second.who && keep(*s->second.who)) {
        out.insert(id);
      }
    }
  };
  for (const auto& r : recipients) {
    switch (r.kind()) {
      case v1::ZONE_ON_DUTY:
      case v1::NEIGHBOUR_ON_DUTY:
        for (const auto& staff : book_.duty().in_zone(r.zone_id())) {
          // Only sessions still of that zone: a reload may have moved them.
          staff_sessions(staff, r.zone_id());
        }
        break;
      case v1::ZONE_CHIEF_OF_ZONE:
        role_sessions(v1::ZONE_CHIEF, [&](const auto& who) { return who.zone_id == r.zone_id(); });
        break;
      case v1::COMMAND:
        role_sessions(v1::COMMUNITY_COMMAND, [](const auto&) { return true; });
        break;
      case v1::STREET_OFFICE_DESK:
        role_sessions(v1::STREET_OFFICE, [](const auto&) { return true; });
        break;
      case v1::DEPARTMENT_MEMBERS:
        role_sessions(v1::DEPARTMENT,
                      [&](const auto& who) { return who.department_id == r.department_id(); });
        break;
      case v1::HANDLERS:
        staff_sessions(r.staff_id());
        break;
      default:
        break;
    }
  }
  return out;
}

void Dispatcher::stream_to_subscribers(const v1::TimelineEvent& event) {
  std::optional<net::SharedMessage> message;
  const sla::Incident* incident = event.incident_id() != 0 ? book_.find(event.incident_id()) : nullptr;
  for (std::uint64_t session_id : subscribers_) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || !it->second.subscription) {
      continue;
    }
    Subscription& sub = *it->second.subscription;
    if (!sub.live || event.seq() <= sub.cursor) {
      continue;  // still catching up (a later page has it), or already sent
    }
    sub.cursor = event.seq();
    if (!sla::may_see_event(*it->second.who, event, incident)) {
      continue;
    }
    if (!message) {
      v1::ServerMessage m;
      *m.mutable_event() = event;
      message.emplace(std::move(m));
    }
    send_to(session_id, *message);
  }
}

void Dispatcher::render_metrics(std::string& out) const {
  out += "# HELP zonecall_connections Signed-in connections, by role.\n"
         "# TYPE zonecall_connections gauge\n";
  for (const auto& [role, sessions] : sessions_by_role_) {
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
         "zonecall_ready " + std::string(ready() && !store_failing_ ? "1" : "0") + "\n";
  metrics_.render(out);
}

void Dispatcher::tick(sla::Millis now) {
  if (stopped_ || !ready_) {
    return;
  }
  auto events = book_.due(now);
  // A large backlog (after a restart) commits in slices: the writer still
  // groups them into one transaction, but each slice's answer is a short
  // handler, so deadlines and requests interleave with them.
  for (std::size_t from = 0; from < events.size(); from += kMaxTickBatch) {
    const auto to = std::min(events.size(), from + kMaxTickBatch);
    commit(std::vector<v1::TimelineEvent>(std::make_move_iterator(events.begin() + from),
                                          std::make_move_iterator(events.begin() + to)),
           nullptr);
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
    at = std::max(at, now() + kRetryAfterStoreFailureMs);
  }
  if (timer_armed_for_ == at) {
    return;
  }
  timer_armed_for_ = at;
  timer_->arm_at(at);
}

void Dispatcher::send_to(std::uint64_t session_id, const net::SharedMessage& message) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return;
  }
  if (auto session = it->second.session.lock()) {
    session->send(message);
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
