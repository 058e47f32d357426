#include "sla/incident_book.hpp"

#include <algorithm>

namespace zonecall::sla {

namespace {
constexpr char kDedupSeparator = '\x1f';

std::string state_name(v1::IncidentState s) { return v1::IncidentState_Name(s); }

v1::Rung rung_for_missed(v1::Stage stage) {
  switch (stage) {
    case v1::DISCOVER:
      return v1::DISCOVER_MISSED;
    case v1::RESPOND:
      return v1::RESPOND_MISSED;
    default:
      return v1::RESOLVE_MISSED;
  }
}

// Rungs of the ladder table fire once per incident; the others once per
// stage (NEAR_DEADLINE) or per call (DEPARTMENT_MISSED, CALL_DECLINED).
bool once_per_incident(v1::Rung rung) {
  return rung != v1::NEAR_DEADLINE && rung != v1::DEPARTMENT_MISSED && rung != v1::CALL_DECLINED;
}
}  // namespace

// The events one decision produces. Each event is also folded into a local
// copy of its incident, so later steps of the same decision see it.
class IncidentBook::Draft {
 public:
  Draft(const IncidentBook& book, CommandOrigin origin, Millis now)
      : book_(book), origin_(std::move(origin)), now_(now) {}

  v1::TimelineEvent event(std::uint64_t incident_id) const {
    v1::TimelineEvent e;
    e.set_seq(book_.next_seq_ + events_.size());
    e.set_incident_id(incident_id);
    e.set_at_ms(now_);
    e.set_actor_id(origin_.actor_id);
    e.set_request_id(origin_.request_id);
    e.set_request_digest(origin_.request_digest);
    return e;
  }

  void push(v1::TimelineEvent e, Incident* local) {
    if (local != nullptr) {
      apply_event(*local, e);
    }
    events_.push_back(std::move(e));
  }

  // A rung of the ladder for `incident`, if the policy enables it and it has
  // not fired yet; recipients are resolved to zones, departments or staff.
  void escalate(Incident& incident, v1::Rung rung, v1::Stage stage, const std::string& reason,
                std::uint32_t call_no = 0) {
    const Policy& policy = book_.policy_of(incident);
    const RungRule& rule = policy.rung(rung);
    if (!rule.enabled || (once_per_incident(rung) && incident.fired(rung)) ||
        (rung == v1::NEAR_DEADLINE && incident.warned(stage))) {
      return;
    }
    const CallState* call =
        call_no >= 1 && call_no <= incident.calls.size() ? &incident.calls[call_no - 1] : nullptr;
    if (rung == v1::DEPARTMENT_MISSED && (call == nullptr || call->miss_escalated)) {
      return;
    }
    v1::TimelineEvent e = event(incident.id);
    auto* esc = e.mutable_escalated();
    esc->set_rung(rung);
    esc->set_stage(stage);
    esc->set_reason(reason);
    esc->set_call_no(call_no);
    for (v1::AudienceKind kind : rule.alert) {
      auto add = [&](v1::AudienceKind k, const std::string& zone) {
        auto* r = esc->add_recipients();
        r->set_kind(k);
        r->set_zone_id(zone);
        return r;
      };
      switch (kind) {
        case v1::NEIGHBOUR_ON_DUTY:
          for (const auto& n : policy.neighbours(incident.zone_id)) {
            add(kind, n);
          }
          break;
        case v1::DEPARTMENT_MEMBERS:
          if (call != nullptr) {
            add(kind, "")->set_department_id(call->department_id);
          }
          break;
        case v1::HANDLERS:
          if (incident.handler_id.empty()) {
            add(v1::ZONE_ON_DUTY, incident.zone_id);  // nobody took it yet
          } else {
            add(kind, "")->set_staff_id(incident.handler_id);
          }
          break;
        case v1::COMMAND:
        case v1::STREET_OFFICE_DESK:
          add(kind, "");
          break;
        default:
          add(kind, incident.zone_id);
      }
    }
    if (rule.mutual_aid) {
      for (const auto& n : policy.neighbours(incident.zone_id)) {
        esc->add_mutual_aid_zones(n);
      }
    }
    push(std::move(e), &incident);
  }

  Decision finish() {
    Decision d;
    d.events = std::move(events_);
    return d;
  }
  std::vector<v1::TimelineEvent> take() { return std::move(events_); }

 private:
  const IncidentBook& book_;
  CommandOrigin origin_;
  Millis now_;
  std::vector<v1::TimelineEvent> events_;
};

template <class Fill>
Decision IncidentBook::single(const CommandOrigin& origin, std::uint64_t incident_id, Millis now,
                              Fill&& fill) const {
  Draft draft(*this, origin, now);
  v1::TimelineEvent e = draft.event(incident_id);
  fill(e);
  draft.push(std::move(e), nullptr);
  return draft.finish();
}

const Policy& IncidentBook::policy_of(const Incident& incident) const {
  return policies_->of_version(incident.policy_version);
}

Decision IncidentBook::report(const CommandOrigin& origin, const v1::Report& report,
                              Millis now) const {
  const Policy& policy = policies_->current();
  const CategoryRule* rule = policy.category(report.category());
  if (rule == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "unknown category '" + report.category() + "'");
  }
  if (!v1::Severity_IsValid(report.severity())) {
    return Decision::refuse(v1::BAD_REQUEST, "unknown severity");
  }
  Draft draft(*this, origin, now);

  // A second report of something already open in the zone joins it.
  if (!report.dedup_key().empty()) {
    auto it = open_by_dedup_.find(report.zone_id() + kDedupSeparator + report.dedup_key());
    if (it != open_by_dedup_.end()) {
      v1::TimelineEvent e = draft.event(it->second);
      auto* a = e.mutable_attached();
      a->set_dedup_key(report.dedup_key());
      a->set_location(report.location());
      a->set_description(report.description());
      a->set_claimed_occurred_at_ms(report.occurred_at_ms());
      draft.push(std::move(e), nullptr);
      return draft.finish();
    }
  }

  const v1::Severity severity = policy.effective_severity(*rule, report.severity());
  const Budgets budgets = policy.budgets_for(*rule, severity);
  v1::TimelineEvent e = draft.event(next_incident_id_);
  auto* r = e.mutable_reported();
  r->set_zone_id(report.zone_id());
  r->set_category(report.category());
  r->set_severity(severity);
  r->set_location(report.location());
  r->set_description(report.description());
  r->set_dedup_key(report.dedup_key());
  r->set_claimed_occurred_at_ms(report.occurred_at_ms());
  r->set_policy_version(policy.version());
  // All three clocks run from the alarm time: when the report reached us.
  r->set_discover_deadline_ms(now + budgets.discover);
  r->set_respond_deadline_ms(now + budgets.respond);
  r->set_resolve_deadline_ms(now + budgets.resolve);
  if (policy.rung(v1::NEAR_DEADLINE).enabled) {
    const Millis pct = policy.warn_at_percent();
    r->set_discover_warn_ms(now + budgets.discover * pct / 100);
    r->set_respond_warn_ms(now + budgets.respond * pct / 100);
    r->set_resolve_warn_ms(now + budgets.resolve * pct / 100);
  }
  Incident incident;
  draft.push(std::move(e), &incident);

  // The ladder's rungs at report time.
  const bool nobody_on_duty = duty_.in_zone(report.zone_id()).empty();
  draft.escalate(incident, v1::AT_REPORT, v1::DISCOVER,
                 nobody_on_duty ? "new incident; nobody on duty in zone " + report.zone_id()
                                : "new incident");
  if (nobody_on_duty) {
    draft.escalate(incident, v1::DISCOVER_MISSED, v1::DISCOVER,
                   "nobody on duty in zone " + report.zone_id());
  }
  if (severity == v1::CRITICAL) {
    draft.escalate(incident, v1::CRITICAL_AT_REPORT, v1::STAGE_UNSPECIFIED, "critical incident");
  }
  // Beyond the community's authority: call the category's department at once.
  const DepartmentRule* department = policy.department(rule->department_id);
  if (rule->beyond_community_authority && department != nullptr) {
    v1::TimelineEvent call = draft.event(incident.id);
    auto* c = call.mutable_call_raised();
    c->set_call_no(1);
    c->set_department_id(department->id);
    c->set_reason("beyond the community's authority: " + rule->id);
    c->set_automatic(true);
    c->set_accept_deadline_ms(now + department->accept_limit);
    c->set_on_site_limit_ms(static_cast<std::uint32_t>(department->on_site_limit));
    draft.push(std::move(call), &incident);
  }
  return draft.finish();
}

Decision IncidentBook::advance(const CommandOrigin& origin, std::uint64_t incident_id,
                               v1::IncidentState to, const std::string& note, Millis now,
                               v1::Outcome outcome) const {
  const Incident* incident = find(incident_id);
  if (incident == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
  }
  if (to < v1::DISCOVERED || to > v1::RESOLVED) {
    return Decision::refuse(v1::BAD_REQUEST, "no such state");
  }
  if (to <= incident->state) {
    return Decision::refuse(v1::INVALID_TRANSITION, "incident is already " +
                                                        state_name(incident->state) +
                                                        ", cannot go to " + state_name(to));
  }
  Draft draft(*this, origin, now);
  v1::TimelineEvent e = draft.event(incident_id);
  if (!v1::Outcome_IsValid(outcome) || (outcome != v1::OUTCOME_UNSPECIFIED && to != v1::RESOLVED)) {
    return Decision::refuse(v1::BAD_REQUEST, "an outcome belongs to a resolution");
  }
  auto* a = e.mutable_advanced();
  a->set_to(to);
  a->set_note(note);
  a->set_outcome(outcome);
  // A skip forward meets every stage it passes over, all now.
  for (int s = incident->state + 1; s <= to; ++s) {
    const v1::Stage stage = stage_completed_by(static_cast<v1::IncidentState>(s));
    const StageClock& clock = incident->stage(stage);
    auto* met = a->add_met();
    met->set_stage(stage);
    met->set_deadline_ms(clock.deadline);
    met->set_late_by_ms(std::max<Millis>(0, now - clock.deadline));
  }
  draft.push(std::move(e), nullptr);
  return draft.finish();
}

Decision IncidentBook::feedback(const CommandOrigin& origin, std::uint64_t incident_id,
                                bool satisfied, std::uint32_t score, const std::string& comment,
                                Millis now) const {
  const Incident* incident = find(incident_id);
  if (incident == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
  }
  if (score < 1 || score > 5) {
    return Decision::refuse(v1::BAD_REQUEST, "a score is 1 to 5");
  }
  if (incident->open()) {
    return Decision::refuse(v1::INVALID_TRANSITION, "feedback comes after resolution");
  }
  if (incident->feedback) {
    return Decision::refuse(v1::INVALID_TRANSITION, "feedback was already given");
  }
  return single(origin, incident_id, now, [&](v1::TimelineEvent& e) {
    auto* f = e.mutable_feedback();
    f->set_satisfied(satisfied);
    f->set_score(score);
    f->set_comment(comment);
  });
}

Decision IncidentBook::visit(const CommandOrigin& origin, const std::string& zone_id,
                             const std::string& household_ref, const std::string& note,
                             Millis now) const {
  if (household_ref.empty()) {
    return Decision::refuse(v1::BAD_REQUEST, "a visit names the household");
  }
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* v = e.mutable_visit();
    v->set_zone_id(zone_id);
    v->set_household_ref(household_ref);
    v->set_note(note);
  });
}

Decision IncidentBook::set_duty(const CommandOrigin& origin, const std::string& zone_id,
                                bool on_duty, Millis now) const {
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* d = e.mutable_duty();
    d->set_staff_id(origin.actor_id);
    d->set_zone_id(zone_id);
    d->set_on_duty(on_duty);
  });
}

Decision IncidentBook::zone_call(const CommandOrigin& origin, std::uint64_t incident_id,
                                 const std::string& department_id, const std::string& reason,
                                 Millis now) const {
  const Incident* incident = find(incident_id);
  if (incident == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
  }
  if (!incident->open()) {
    return Decision::refuse(v1::INVALID_TRANSITION, "incident is resolved");
  }
  const DepartmentRule* department = policy_of(*incident).department(department_id);
  if (department == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "unknown department '" + department_id + "'");
  }
  // A call whose acceptance limit passed may be superseded: the zone calls
  // someone else rather than wait forever (the escalation path).
  if (const CallState* open = incident->open_call(); open && !open->accept_breached) {
    return Decision::refuse(v1::INVALID_TRANSITION, "call " + std::to_string(open->call_no) +
                                                        " to " + open->department_id +
                                                        " is still open");
  }
  return single(origin, incident_id, now, [&](v1::TimelineEvent& e) {
    auto* c = e.mutable_call_raised();
    c->set_call_no(static_cast<std::uint32_t>(incident->calls.size() + 1));
    c->set_department_id(department_id);
    c->set_reason(reason);
    c->set_accept_deadline_ms(now + department->accept_limit);
    c->set_on_site_limit_ms(static_cast<std::uint32_t>(department->on_site_limit));
  });
}

namespace {
// The open call a department may answer, or why it may not.
const CallState* answerable_call(const Incident* incident, const std::string& department_id,
                                 std::optional<CommandError>& error) {
  if (incident == nullptr) {
    error = CommandError{v1::NOT_FOUND, "no such incident"};
    return nullptr;
  }
  const CallState* call = incident->open_call();
  if (call == nullptr || call->department_id != department_id) {
    // A late answer to a call the zone replaced says so.
    const CallState* own = nullptr;
    for (const auto& c : incident->calls) {
      own = c.department_id == department_id ? &c : own;
    }
    if (own != nullptr && own->superseded) {
      error = CommandError{v1::INVALID_TRANSITION,
                           "call " + std::to_string(own->call_no) + " to " + department_id +
                               " was superseded by call " + std::to_string(own->call_no + 1)};
      return nullptr;
    }
    error = CommandError{v1::INVALID_TRANSITION,
                         "incident " + std::to_string(incident->id) +
                             " has no open call to department " + department_id};
    return nullptr;
  }
  return call;
}
}  // namespace

Decision IncidentBook::department_accept(const CommandOrigin& origin, std::uint64_t incident_id,
                                         const std::string& department_id, Millis now,
                                         const std::string& note) const {
  std::optional<CommandError> error;
  const CallState* call = answerable_call(find(incident_id), department_id, error);
  if (call == nullptr) {
    return Decision::refuse(error->code, error->message);
  }
  if (call->accepted_at) {
    return Decision::refuse(v1::INVALID_TRANSITION, "the call is already accepted");
  }
  return single(origin, incident_id, now, [&](v1::TimelineEvent& e) {
    auto* a = e.mutable_call_accepted();
    a->set_call_no(call->call_no);
    a->set_department_id(department_id);
    a->set_late_by_ms(std::max<Millis>(0, now - call->accept_deadline));
    a->set_on_site_deadline_ms(now + call->on_site_limit);
    a->set_note(note);
  });
}

Decision IncidentBook::department_on_site(const CommandOrigin& origin, std::uint64_t incident_id,
                                          const std::string& department_id, Millis now,
                                          const std::string& note) const {
  std::optional<CommandError> error;
  const CallState* call = answerable_call(find(incident_id), department_id, error);
  if (call == nullptr) {
    return Decision::refuse(error->code, error->message);
  }
  if (!call->accepted_at) {
    return Decision::refuse(v1::INVALID_TRANSITION, "accept the call before reporting on site");
  }
  return single(origin, incident_id, now, [&](v1::TimelineEvent& e) {
    auto* o = e.mutable_call_on_site();
    o->set_call_no(call->call_no);
    o->set_department_id(department_id);
    o->set_late_by_ms(std::max<Millis>(0, now - call->on_site_deadline));
    o->set_note(note);
  });
}

Decision IncidentBook::accept_broken_chain(const CommandOrigin& origin,
                                           std::uint64_t first_broken_seq,
                                           const std::string& problem, Millis now) const {
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* record = e.mutable_chain_break_accepted();
    record->set_first_broken_seq(first_broken_seq);
    record->set_problem(problem);
  });
}

Decision IncidentBook::department_decline(const CommandOrigin& origin, std::uint64_t incident_id,
                                          const std::string& department_id,
                                          const std::string& reason, Millis now) const {
  if (reason.empty()) {
    return Decision::refuse(v1::BAD_REQUEST, "a decline needs a reason, e.g. wrong department");
  }
  std::optional<CommandError> error;
  const Incident* found = find(incident_id);
  const CallState* call = answerable_call(found, department_id, error);
  if (call == nullptr) {
    return Decision::refuse(error->code, error->message);
  }
  Draft draft(*this, origin, now);
  Incident incident = *found;
  v1::TimelineEvent e = draft.event(incident_id);
  auto* d = e.mutable_call_declined();
  d->set_call_no(call->call_no);
  d->set_department_id(department_id);
  d->set_reason(reason);
  const auto call_no = call->call_no;
  draft.push(std::move(e), &incident);
  draft.escalate(incident, v1::CALL_DECLINED, v1::STAGE_UNSPECIFIED,
                 "department " + department_id + " declined: " + reason, call_no);
  return draft.finish();
}

std::vector<v1::TimelineEvent> IncidentBook::due(Millis now) {
  last_due_at_ = std::max(last_due_at_, now);
  Draft draft(*this, CommandOrigin{std::string(kEngineActor), 0}, now);
  // Incidents changed earlier in this tick, so each decision sees the last.
  std::unordered_map<std::uint64_t, Incident> changed;
  std::optional<Deadline> previous;
  while (auto deadline = deadlines_.pop_passed(now)) {
    // restore() may arm an entry twice; equal entries pop back to back.
    if (previous && previous->due == deadline->due && previous->incident_id == deadline->incident_id &&
        previous->kind == deadline->kind) {
      continue;
    }
    previous = deadline;
    const Incident* incident = find(deadline->incident_id);
    if (incident == nullptr || !incident->open()) {
      continue;  // stale: deadlines of resolved incidents no longer matter
    }
    auto seen = changed.find(incident->id);
    if (!still_due(seen == changed.end() ? *incident : seen->second, *deadline)) {
      continue;  // checked before copying the incident: most entries are stale
    }
    if (seen == changed.end()) {
      seen = changed.emplace(incident->id, *incident).first;
    }
    decide_due(draft, seen->second, *deadline, now);
  }
  return draft.take();
}

bool IncidentBook::still_due(const Incident& incident, const Deadline& deadline) {
  const std::uint8_t kind = deadline.kind;
  if (kind >= 1 && kind <= 3) {
    const StageClock& clock = incident.stage(static_cast<v1::Stage>(kind - kBreachBase));
    return !clock.met() && !clock.breached && clock.deadline == deadline.due;
  }
  if (kind >= 4 && kind <= 6) {
    const StageClock& clock = incident.stage(static_cast<v1::Stage>(kind - kWarnBase));
    return !clock.met() && !clock.breached && clock.warn_at == deadline.due;
  }
  if (kind == kCallAccept || kind == kCallOnSite) {
    const CallState* call = incident.open_call();
    if (call == nullptr) {
      return false;
    }
    const bool accept = kind == kCallAccept;
    const bool pending = accept ? !call->accepted_at && !call->accept_breached
                                : call->accepted_at && !call->on_site_breached;
    return pending && (accept ? call->accept_deadline : call->on_site_deadline) == deadline.due;
  }
  return false;
}

void IncidentBook::decide_due(Draft& draft, Incident& incident, const Deadline& deadline,
                              Millis now) const {
  if (!still_due(incident, deadline)) {
    return;  // stale entry
  }
  const std::uint8_t kind = deadline.kind;
  if (kind >= 1 && kind <= 3) {
    const auto stage = static_cast<v1::Stage>(kind - kBreachBase);
    const StageClock& clock = incident.stage(stage);
    v1::TimelineEvent e = draft.event(incident.id);
    e.mutable_breached()->set_stage(stage);
    e.mutable_breached()->set_deadline_ms(clock.deadline);
    draft.push(std::move(e), &incident);
    draft.escalate(incident, rung_for_missed(stage), stage,
                   v1::Stage_Name(stage) + " deadline missed");
  } else if (kind >= 4 && kind <= 6) {
    const auto stage = static_cast<v1::Stage>(kind - kWarnBase);
    draft.escalate(incident, v1::NEAR_DEADLINE, stage,
                   v1::Stage_Name(stage) + " deadline is near");
  } else if (kind == kCallAccept || kind == kCallOnSite) {
    const CallState* call = incident.open_call();
    const bool accept = kind == kCallAccept;
    const Millis due = accept ? call->accept_deadline : call->on_site_deadline;
    const auto call_no = call->call_no;
    const std::string department = call->department_id;
    v1::TimelineEvent e = draft.event(incident.id);
    auto* b = e.mutable_call_breached();
    b->set_call_no(call_no);
    b->set_department_id(department);
    b->set_what(accept ? v1::ACCEPT : v1::ON_SITE);
    b->set_deadline_ms(due);
    draft.push(std::move(e), &incident);
    draft.escalate(incident, v1::DEPARTMENT_MISSED, v1::STAGE_UNSPECIFIED,
                   "department " + department + " missed its " +
                       (accept ? "acceptance" : "on-site") + " limit",
                   call_no);
  }
}

std::optional<Millis> IncidentBook::next_deadline() const {
  auto next = deadlines_.next();
  if (!next) {
    return std::nullopt;
  }
  return next->due;
}

bool IncidentBook::apply(const v1::TimelineEvent& event) {
  if (malformed(event)) {
    return false;
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
  return true;
}

const Incident* IncidentBook::find(std::uint64_t incident_id) const {
  return incidents_.find(incident_id);
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

void IncidentBook::arm(const Incident& incident, std::optional<Millis> popped_before) {
  if (!incident.open() || !arming_) {
    return;
  }
  auto put = [&](Millis due, std::uint8_t kind) {
    if (!popped_before || due < *popped_before) {
      deadlines_.arm(Deadline{due, incident.id, kind});
    }
  };
  for (v1::Stage s : kStages) {
    const StageClock& clock = incident.stage(s);
    if (clock.met() || clock.breached) {
      continue;
    }
    put(clock.deadline, static_cast<std::uint8_t>(kBreachBase + static_cast<int>(s)));
    if (clock.warn_at != 0 && !incident.warned(s)) {
      put(clock.warn_at, static_cast<std::uint8_t>(kWarnBase + static_cast<int>(s)));
    }
  }
  if (const CallState* call = incident.open_call()) {
    if (!call->accepted_at && !call->accept_breached) {
      put(call->accept_deadline, kCallAccept);
    } else if (call->accepted_at && !call->on_site_breached) {
      put(call->on_site_deadline, kCallOnSite);
    }
  }
}

void IncidentBook::index_dedup(const Incident& incident, bool add) {
  if (incident.dedup_key.empty()) {
    return;
  }
  const std::string key = incident.zone_id + kDedupSeparator + incident.dedup_key;
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

void IncidentBook::restore(std::uint64_t incident_id, const std::optional<Incident>& before) {
  if (const Incident* current = incidents_.find(incident_id)) {
    index_dedup(*current, false);
    count_open(*current, -1);
  }
  open_ids_.erase(incident_id);
  if (!before) {
    incidents_.erase(incident_id);
    return;
  }
  Incident& incident = incidents_[incident_id];
  incident = *before;
  index_dedup(incident, true);
  count_open(incident, +1);
  if (incident.open()) {
    open_ids_.insert(incident_id);
  }
  // Deadlines that ticks popped for the undone events must fire again; the
  // later ones are still queued. (A duplicate entry would be harmless: due()
  // skips it; re-arming only the popped ones keeps a long outage from
  // growing the queue.)
  arm(incident, last_due_at_);
}

void IncidentBook::rewind(std::uint64_t next_seq, std::uint64_t next_incident_id) {
  next_seq_ = next_seq;
  next_incident_id_ = next_incident_id;
}

}  // namespace zonecall::sla
