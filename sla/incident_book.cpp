#include "sla/incident_book.hpp"

#include <algorithm>

#include "sla/book_draft.hpp"

namespace zonecall::sla {

std::string dedup_index_key(const std::string& zone_id, const std::string& dedup_key) {
  return zone_id + '\x1f' + dedup_key;
}

Principal IncidentBook::engine() {
  Principal p;
  p.staff_id = std::string(kEngineActor);
  return p;
}

const Policy& IncidentBook::policy_of(const Incident& incident) const {
  return policies_->of_version(incident.policy_version);
}

// -- the one way in --

Step IncidentBook::handle(const Principal& who, const v1::Command& command,
                          const RequestKey& request, Millis now) {
  // Whatever fell due by `now` is recorded before the command stamped `now`:
  // the replay relies on this order.
  Step step;
  step.due = tick(now);
  step.decision = decide(who, command, request, now);
  if (step.decision.ok()) {
    add_pending(step.decision.events);
  }
  return step;
}

std::vector<v1::TimelineEvent> IncidentBook::tick(Millis now) {
  // Popped first and decided from the popped list: one pass over the queue.
  auto passed = pop_passed(now);
  Changed changed;
  auto events = decide_passed(passed, now, changed);
  adopt_pending(events, changed);
  park(std::move(passed));
  return events;
}

void IncidentBook::discard_pending() {
  if (!pending_) {
    return;
  }
  for (const auto& [seq, deadlines] : pending_->parked) {
    for (const Deadline& d : deadlines) {
      deadlines_.arm(d);
    }
  }
  pending_.reset();
}

Decision IncidentBook::decide(const Principal& who, const v1::Command& command,
                              const RequestKey& request, Millis now) const {
  return decide_as(who, command, Origin{&who, request, true}, now, true);
}

Decision IncidentBook::decide_unrecorded(const Principal& who, const v1::Command& command,
                                         const RequestKey& request, Millis now) const {
  return decide_as(who, command, Origin{&who, request, false}, now, false);
}

namespace {
Decision refused(const std::optional<CommandError>& error) {
  return Decision::refuse(error->code, error->message);
}
}  // namespace

Decision IncidentBook::decide_as(const Principal& who, const v1::Command& command,
                                 const Origin& origin, Millis now, bool authorise) const {
  // Unknown things are NOT_FOUND before anything is FORBIDDEN.
  auto incident_or_refusal = [&](std::uint64_t id, auto check, auto decide) -> Decision {
    const Incident* incident = latest(id);
    if (incident == nullptr) {
      return Decision::refuse(v1::NOT_FOUND, "no incident " + std::to_string(id));
    }
    if (authorise) {
      if (auto no = check(who, *incident)) {
        return refused(no);
      }
    }
    return decide();
  };
  auto known_zone = [&](const std::string& zone_id) -> std::optional<CommandError> {
    if (!policies_->current().has_zone(zone_id)) {
      return CommandError{v1::NOT_FOUND, "unknown zone '" + zone_id + "'"};
    }
    return std::nullopt;
  };
  switch (command.body_case()) {
    case v1::Command::kReport: {
      const auto& r = command.report();
      if (auto no = known_zone(r.zone_id())) {
        return refused(no);
      }
      if (auto no = authorise ? check_report(who, r.zone_id()) : std::nullopt) {
        return refused(no);
      }
      return report(origin, r, now);
    }
    case v1::Command::kDiscover:
      return incident_or_refusal(command.discover().incident_id(), check_act, [&] {
        return advance(origin, command.discover().incident_id(), v1::DISCOVERED,
                       command.discover().note(), now, v1::OUTCOME_UNSPECIFIED);
      });
    case v1::Command::kRespond:
      return incident_or_refusal(command.respond().incident_id(), check_act, [&] {
        return advance(origin, command.respond().incident_id(), v1::RESPONDING,
                       command.respond().note(), now, v1::OUTCOME_UNSPECIFIED);
      });
    case v1::Command::kResolve:
      return incident_or_refusal(command.resolve().incident_id(), check_act, [&] {
        return advance(origin, command.resolve().incident_id(), v1::RESOLVED,
                       command.resolve().note(), now, command.resolve().outcome());
      });
    case v1::Command::kZoneCall: {
      const auto& c = command.zone_call();
      return incident_or_refusal(c.incident_id(), check_call, [&] {
        return zone_call(origin, c.incident_id(), c.department_id(), c.reason(), now);
      });
    }
    case v1::Command::kDepartmentAccept: {
      const auto& a = command.department_accept();
      return incident_or_refusal(a.incident_id(), check_department, [&] {
        return department_accept(origin, a.incident_id(), who.department_id, now, a.note());
      });
    }
    case v1::Command::kDepartmentOnSite: {
      const auto& o = command.department_on_site();
      return incident_or_refusal(o.incident_id(), check_department, [&] {
        return department_on_site(origin, o.incident_id(), who.department_id, now, o.note());
      });
    }
    case v1::Command::kDepartmentDecline: {
      const auto& d = command.department_decline();
      return incident_or_refusal(d.incident_id(), check_department, [&] {
        return department_decline(origin, d.incident_id(), who.department_id, d.reason(), now);
      });
    }
    case v1::Command::kFeedback: {
      const auto& f = command.feedback();
      return incident_or_refusal(f.incident_id(), check_feedback, [&] {
        return feedback(origin, f.incident_id(), f.satisfied(), f.score(), f.comment(), now);
      });
    }
    case v1::Command::kVisit: {
      const auto& v = command.visit();
      if (auto no = known_zone(v.zone_id())) {
        return refused(no);
      }
      if (auto no = authorise ? check_visit(who, v.zone_id()) : std::nullopt) {
        return refused(no);
      }
      return visit(origin, v.zone_id(), v.household_ref(), v.note(), now);
    }
    case v1::Command::kSetDuty:
      if (auto no = authorise ? check_set_duty(who) : std::nullopt) {
        return refused(no);
      }
      return set_duty(origin, who.zone_id, command.set_duty().on_duty(), now);
    case v1::Command::kAcceptBrokenChain:
      if (who.staff_id != kEngineActor) {
        return Decision::refuse(v1::FORBIDDEN, "only the engine records an accepted chain break");
      }
      return accept_broken_chain(Origin{}, command.accept_broken_chain().first_broken_seq(),
                                 command.accept_broken_chain().problem(), now);
    default:
      return Decision::refuse(v1::BAD_REQUEST, "unknown message type");
  }
}

// -- the latest state, for decisions --

const Incident* IncidentBook::latest(std::uint64_t incident_id) const {
  if (pending_) {
    if (auto it = pending_->incidents.find(incident_id); it != pending_->incidents.end()) {
      return &it->second.first;
    }
  }
  return incidents_.find(incident_id);
}

const DutyState& IncidentBook::latest_duty() const {
  return pending_ && pending_->duty ? pending_->duty->first : duty_;
}

std::optional<std::uint64_t> IncidentBook::open_with_key(const std::string& zone_key) const {
  if (pending_) {
    if (auto it = pending_->dedup.find(zone_key); it != pending_->dedup.end()) {
      return it->second.first == 0 ? std::nullopt : std::optional(it->second.first);
    }
  }
  auto it = open_by_dedup_.find(zone_key);
  return it == open_by_dedup_.end() ? std::nullopt : std::optional(it->second);
}

IncidentBook::Pending& IncidentBook::open_pending() {
  if (!pending_) {
    pending_.emplace();
    pending_->through_seq = 0;
    pending_->next_seq = next_seq_;
    pending_->next_incident_id = next_incident_id_;
  }
  return *pending_;
}

void IncidentBook::adopt_pending(const std::vector<v1::TimelineEvent>& events, Changed& changed) {
  if (events.empty()) {
    return;
  }
  Pending& p = open_pending();
  // Clock events never report, close or touch duty: only incidents change.
  for (const auto& e : events) {
    const std::uint64_t seq = e.seq();
    p.through_seq = seq;
    p.next_seq = seq + 1;
    if (auto c = changed.find(e.incident_id()); c != changed.end()) {
      p.incidents.insert_or_assign(e.incident_id(), std::pair{std::move(c->second), seq});
      changed.erase(c);
    } else {
      p.incidents.at(e.incident_id()).second = seq;  // adopted at an earlier event
    }
  }
}

void IncidentBook::add_pending(const std::vector<v1::TimelineEvent>& events) {
  if (events.empty()) {
    return;
  }
  Pending& p = open_pending();
  for (const auto& e : events) {
    const std::uint64_t seq = e.seq();
    p.through_seq = seq;
    p.next_seq = seq + 1;
    if (e.has_duty()) {
      if (!p.duty) {
        p.duty.emplace(duty_, 0);
      }
      p.duty->first.apply(e.duty());
      p.duty->second = seq;
      continue;
    }
    if (e.incident_id() == 0) {
      continue;
    }
    auto it = p.incidents.find(e.incident_id());
    if (it == p.incidents.end()) {
      const Incident* committed = incidents_.find(e.incident_id());
      it = p.incidents.emplace(e.incident_id(), std::pair{committed ? *committed : Incident{}, seq}).first;
    }
    Incident& incident = it->second.first;
    const bool was_open = e.has_reported() || incident.open();
    apply_event(incident, e);
    it->second.second = seq;
    if (e.has_reported()) {
      p.next_incident_id = std::max(p.next_incident_id, e.incident_id() + 1);
    }
    if (!incident.dedup_key.empty() && (e.has_reported() || (was_open && !incident.open()))) {
      p.dedup[dedup_index_key(incident.zone_id, incident.dedup_key)] = {incident.open() ? incident.id : 0, seq};
    }
  }
}

void IncidentBook::retire_pending(const v1::TimelineEvent& event) {
  Pending& p = *pending_;
  const std::uint64_t seq = event.seq();
  if (seq >= p.through_seq) {
    pending_.reset();  // everything decided is durable
    return;
  }
  if (p.duty && p.duty->second <= seq) {
    p.duty.reset();
  }
  while (!p.parked.empty() && p.parked.front().first <= seq) {
    p.parked.pop_front();
  }
  if (auto it = p.incidents.find(event.incident_id()); it != p.incidents.end() && it->second.second <= seq) {
    const Incident& incident = it->second.first;
    if (!incident.dedup_key.empty()) {
      auto key = p.dedup.find(dedup_index_key(incident.zone_id, incident.dedup_key));
      if (key != p.dedup.end() && key->second.second <= seq) {
        p.dedup.erase(key);
      }
    }
    p.incidents.erase(it);
  }
}

// -- the committed state --

bool IncidentBook::apply(const v1::TimelineEvent& event) {
  if (malformed(event)) {
    return false;
  }
  if (pending_) {
    retire_pending(event);
  }
  next_seq_ = std::max(next_seq_, event.seq() + 1);
  if (event.has_chain_break_accepted()) {
    return true;  // a record for the audit; no state
  }
  if (event.has_duty()) {
    duty_.apply(event.duty());
    return true;
  }
  if (event.has_visit()) {
    return true;  // visits change no state; the assessment counts them
  }
  if (event.has_reported()) {
    if (!incidents_.acceptable(event.incident_id())) {
      return false;  // an id the book could never have handed out
    }
    next_incident_id_ = std::max(next_incident_id_, event.incident_id() + 1);
    Incident& incident = incidents_[event.incident_id()];
    apply_event(incident, event);
    index_dedup(incident, true);
    open_ids_.insert(incident.id);
    count_open(incident, +1);
    arm(incident);
    return true;
  }
  Incident* found = incidents_.find(event.incident_id());
  if (found == nullptr) {
    return true;  // an event for an incident never reported: nothing to fold into
  }
  Incident& incident = *found;
  const bool was_open = incident.open();
  if (was_open && event.has_advanced()) {
    count_open(incident, -1);
  }
  apply_event(incident, event);
  if (was_open && event.has_advanced()) {
    count_open(incident, +1);
  }
  if (was_open && !incident.open()) {
    index_dedup(incident, false);
    open_ids_.erase(incident.id);
  }
  if (event.has_call_raised() || event.has_call_accepted()) {
    arm(incident);
  }
  // Only an event of the front entry's incident can settle it; entries
  // settled further back are dropped once pops bring them to the front.
  if (arming_) {
    if (auto next = deadlines_.next(); next && next->incident_id == event.incident_id()) {
      drop_settled_deadlines();
    }
  }
  return true;
}

const Incident* IncidentBook::find(std::uint64_t incident_id) const {
  return incidents_.find(incident_id);
}

bool IncidentBook::load_state(std::vector<Incident> incidents, DutyState duty, std::uint64_t next_seq,
                              std::uint64_t next_incident_id) {
  std::uint64_t last_id = 0;
  for (Incident& from : incidents) {
    if (from.id <= last_id || from.id >= next_incident_id || !incidents_.acceptable(from.id)) {
      return false;
    }
    last_id = from.id;
    Incident& incident = incidents_[from.id];
    incident = std::move(from);
    index_dedup(incident, true);
    if (incident.open()) {
      open_ids_.insert(incident.id);  // armed and counted by end_bulk_load()
    }
  }
  duty_ = std::move(duty);
  next_seq_ = next_seq;
  next_incident_id_ = next_incident_id;
  return true;
}

void IncidentBook::end_bulk_load() {
  arming_ = true;
  open_counts_.clear();
  for (std::uint64_t id : open_ids_) {
    const Incident& incident = *incidents_.find(id);
    arm(incident);
    ++counts_for(incident)[incident.state];
  }
}

void IncidentBook::index_dedup(const Incident& incident, bool add) {
  if (incident.dedup_key.empty()) {
    return;
  }
  const std::string key = dedup_index_key(incident.zone_id, incident.dedup_key);
  if (add && incident.open()) {
    open_by_dedup_.try_emplace(key, incident.id);
  } else if (auto it = open_by_dedup_.find(key); it != open_by_dedup_.end() && it->second == incident.id) {
    open_by_dedup_.erase(it);
  }
}

IncidentBook::OpenCounts::mapped_type& IncidentBook::counts_for(const Incident& incident) {
  auto it = open_counts_.find(incident.zone_id);
  if (it == open_counts_.end()) {
    it = open_counts_.emplace(incident.zone_id, OpenCounts::mapped_type{}).first;
  }
  return it->second;
}

void IncidentBook::count_open(const Incident& incident, int delta) {
  if (arming_ && incident.open()) {  // a bulk load counts once, at its end
    counts_for(incident)[incident.state] += delta;
  }
}

}  // namespace zonecall::sla
