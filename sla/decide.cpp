// The decisions, one per command: each reads the latest state (committed,
// with pending events on top) and returns events without changing anything.
#include <algorithm>

#include "sla/book_draft.hpp"

namespace zonecall::sla {

namespace {

std::string state_name(v1::IncidentState s) { return v1::IncidentState_Name(s); }

// Rungs of the ladder table fire once per incident; the others once per
// stage (NEAR_DEADLINE) or per call (DEPARTMENT_MISSED, CALL_DECLINED).
bool once_per_incident(v1::Rung rung) {
  return rung != v1::NEAR_DEADLINE && rung != v1::DEPARTMENT_MISSED && rung != v1::CALL_DECLINED;
}
}  // namespace

v1::TimelineEvent& IncidentBook::Draft::add(std::uint64_t incident_id) {
  if (events_.empty()) {
    events_.reserve(4);  // a report's or a breach's events, without regrowing
  }
  v1::TimelineEvent& e = events_.emplace_back();
  e.set_seq(book_.decide_next_seq() + events_.size() - 1);
  e.set_incident_id(incident_id);
  e.set_at_ms(now_);
  if (origin_.who == nullptr) {
    e.set_actor_id(std::string(kEngineActor));
    return e;
  }
  const Principal& who = *origin_.who;
  e.set_actor_id(who.staff_id);
  e.set_request_id(origin_.request.id);
  e.set_request_digest(origin_.request.digest);
  if (origin_.record_rights) {
    e.set_actor_role(who.role);
    // Empty strings are not set: protobuf allocates for any set, even of
    // the default "", and the audit's replay decides every command again.
    if (!who.zone_id.empty()) {
      e.set_actor_zone_id(who.zone_id);
    }
    if (!who.department_id.empty()) {
      e.set_actor_department_id(who.department_id);
    }
  }
  return e;
}

void IncidentBook::Draft::escalate(Incident& incident, v1::Rung rung, v1::Stage stage,
                                 const std::string& reason, std::uint32_t call_no) {
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
  v1::TimelineEvent& e = add(incident.id);
  auto* esc = e.mutable_escalated();
  esc->set_rung(rung);
  esc->set_stage(stage);
  esc->set_reason(reason);
  esc->set_call_no(call_no);
  for (v1::AudienceKind kind : rule.alert) {
    auto add = [&](v1::AudienceKind k, const std::string& zone) {
      auto* r = esc->add_recipients();
      r->set_kind(k);
      if (!zone.empty()) {
        r->set_zone_id(zone);
      }
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
  fold_last(incident);
}


Decision IncidentBook::report(const Origin& origin, const v1::Report& report,
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
    auto it = open_with_key(dedup_index_key(report.zone_id(), report.dedup_key()));
    if (it) {
      v1::TimelineEvent& e = draft.add(*it);
      auto* a = e.mutable_attached();
      a->set_dedup_key(report.dedup_key());
      a->set_location(report.location());
      a->set_description(report.description());
      a->set_claimed_occurred_at_ms(report.occurred_at_ms());
      return draft.finish();
    }
  }

  const v1::Severity severity = policy.effective_severity(*rule, report.severity());
  const Budgets budgets = policy.budgets_for(*rule, severity);
  v1::TimelineEvent& e = draft.add(decide_next_incident_id());
  auto* r = e.mutable_reported();
  r->set_zone_id(report.zone_id());
  r->set_category(report.category());
  r->set_severity(severity);
  r->set_location(report.location());
  r->set_description(report.description());
  if (!report.dedup_key().empty()) {
    r->set_dedup_key(report.dedup_key());
  }
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
  draft.fold_last(incident);

  // The ladder's rungs at report time.
  const bool nobody_on_duty = latest_duty().in_zone(report.zone_id()).empty();
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
    v1::TimelineEvent& call = draft.add(incident.id);
    auto* c = call.mutable_call_raised();
    c->set_call_no(1);
    c->set_department_id(department->id);
    c->set_reason("beyond the community's authority: " + rule->id);
    c->set_automatic(true);
    c->set_accept_deadline_ms(now + department->accept_limit);
    c->set_on_site_limit_ms(static_cast<std::uint32_t>(department->on_site_limit));
    draft.fold_last(incident);
  }
  return draft.finish();
}

Decision IncidentBook::advance(const Origin& origin, std::uint64_t incident_id,
                               v1::IncidentState to, const std::string& note, Millis now,
                               v1::Outcome outcome) const {
  const Incident* incident = latest(incident_id);
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
  v1::TimelineEvent& e = draft.add(incident_id);
  if (!v1::Outcome_IsValid(outcome) || (outcome != v1::OUTCOME_UNSPECIFIED && to != v1::RESOLVED)) {
    return Decision::refuse(v1::BAD_REQUEST, "an outcome belongs to a resolution");
  }
  auto* a = e.mutable_advanced();
  a->set_to(to);
  if (!note.empty()) {
    a->set_note(note);
  }
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
  return draft.finish();
}

Decision IncidentBook::feedback(const Origin& origin, std::uint64_t incident_id,
                                bool satisfied, std::uint32_t score, const std::string& comment,
                                Millis now) const {
  const Incident* incident = latest(incident_id);
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
    if (!comment.empty()) {
      f->set_comment(comment);
    }
  });
}

Decision IncidentBook::visit(const Origin& origin, const std::string& zone_id,
                             const std::string& household_ref, const std::string& note,
                             Millis now) const {
  if (household_ref.empty()) {
    return Decision::refuse(v1::BAD_REQUEST, "a visit names the household");
  }
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* v = e.mutable_visit();
    v->set_zone_id(zone_id);
    v->set_household_ref(household_ref);
    if (!note.empty()) {
      v->set_note(note);
    }
  });
}

Decision IncidentBook::set_duty(const Origin& origin, const std::string& zone_id,
                                bool on_duty, Millis now) const {
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* d = e.mutable_duty();
    d->set_staff_id(origin.who->staff_id);
    d->set_zone_id(zone_id);
    d->set_on_duty(on_duty);
  });
}

Decision IncidentBook::accept_broken_chain(const Origin& origin,
                                           std::uint64_t first_broken_seq,
                                           const std::string& problem, Millis now) const {
  return single(origin, 0, now, [&](v1::TimelineEvent& e) {
    auto* record = e.mutable_chain_break_accepted();
    record->set_first_broken_seq(first_broken_seq);
    record->set_problem(problem);
  });
}

}  // namespace zonecall::sla
