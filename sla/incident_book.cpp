#include "sla/incident_book.hpp"

#include <algorithm>

namespace zonecall::sla {

namespace {
constexpr const char* kEngineActor = "engine";

const char* state_name(v1::IncidentState s) { return v1::IncidentState_Name(s).c_str(); }
}  // namespace

v1::TimelineEvent IncidentBook::new_event(const CommandOrigin& origin, std::uint64_t incident_id,
                                          Millis now, std::uint64_t offset) const {
  v1::TimelineEvent e;
  e.set_seq(next_seq_ + offset);
  e.set_incident_id(incident_id);
  e.set_at_ms(now);
  e.set_actor_id(origin.actor_id);
  e.set_request_id(origin.request_id);
  return e;
}

Decision IncidentBook::report(const CommandOrigin& origin, const v1::Report& report,
                              Millis now) const {
  const CategoryRule* rule = policy_->category(report.category());
  if (rule == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "unknown category '" + report.category() + "'");
  }
  if (!v1::Severity_IsValid(report.severity())) {
    return Decision::refuse(v1::BAD_REQUEST, "unknown severity");
  }
  const v1::Severity severity = policy_->effective_severity(*rule, report.severity());
  const Budgets budgets = policy_->budgets_for(*rule, severity);

  Decision d;
  v1::TimelineEvent& e = d.events.emplace_back(new_event(origin, next_incident_id_, now, 0));
  auto* r = e.mutable_reported();
  r->set_zone_id(report.zone_id());
  r->set_category(report.category());
  r->set_severity(severity);
  r->set_location(report.location());
  r->set_description(report.description());
  r->set_dedup_key(report.dedup_key());
  r->set_claimed_occurred_at_ms(report.occurred_at_ms());
  r->set_policy_version(policy_->version());
  // All three clocks run from the alarm time: when the report reached us.
  r->set_discover_deadline_ms(now + budgets.discover);
  r->set_respond_deadline_ms(now + budgets.respond);
  r->set_resolve_deadline_ms(now + budgets.resolve);
  return d;
}

Decision IncidentBook::advance(const CommandOrigin& origin, std::uint64_t incident_id,
                               v1::IncidentState to, const std::string& note, Millis now) const {
  const Incident* incident = find(incident_id);
  if (incident == nullptr) {
    return Decision::refuse(v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
  }
  if (to <= incident->state) {
    return Decision::refuse(v1::INVALID_TRANSITION, std::string("incident is already ") +
                                                        state_name(incident->state) +
                                                        ", cannot go to " + state_name(to));
  }
  Decision d;
  v1::TimelineEvent& e = d.events.emplace_back(new_event(origin, incident_id, now, 0));
  auto* a = e.mutable_advanced();
  a->set_to(to);
  a->set_note(note);
  // A skip forward meets every stage it passes over, all now.
  for (int s = incident->state + 1; s <= to; ++s) {
    const v1::Stage stage = stage_completed_by(static_cast<v1::IncidentState>(s));
    const StageClock& clock = incident->stage(stage);
    auto* met = a->add_met();
    met->set_stage(stage);
    met->set_deadline_ms(clock.deadline);
    met->set_late_by_ms(std::max<Millis>(0, now - clock.deadline));
  }
  return d;
}

std::vector<v1::TimelineEvent> IncidentBook::due(Millis now) {
  std::vector<v1::TimelineEvent> events;
  const CommandOrigin engine{kEngineActor, 0};
  while (auto deadline = deadlines_.pop_passed(now)) {
    const Incident* incident = find(deadline->incident_id);
    const auto stage = static_cast<v1::Stage>(deadline->kind);
    // Stale entries (stage met, already breached, incident gone) are dropped.
    if (incident == nullptr || !incident->open()) {
      continue;
    }
    const StageClock& clock = incident->stage(stage);
    if (clock.met() || clock.breached || clock.deadline != deadline->due) {
      continue;
    }
    // restore() may arm a deadline twice; equal entries pop back to back.
    if (!events.empty() && events.back().incident_id() == incident->id &&
        events.back().breached().stage() == stage) {
      continue;
    }
    v1::TimelineEvent& e = events.emplace_back(new_event(engine, incident->id, now, events.size()));
    e.mutable_breached()->set_stage(stage);
    e.mutable_breached()->set_deadline_ms(clock.deadline);
  }
  return events;
}

std::optional<Millis> IncidentBook::next_deadline() const {
  auto next = deadlines_.next();
  if (!next) {
    return std::nullopt;
  }
  return next->due;
}

void IncidentBook::apply(const v1::TimelineEvent& event) {
  next_seq_ = std::max(next_seq_, event.seq() + 1);
  if (event.has_reported()) {
    next_incident_id_ = std::max(next_incident_id_, event.incident_id() + 1);
    Incident& incident = incidents_[event.incident_id()];
    apply_event(incident, event);
    arm_unmet_stages(incident);
    return;
  }
  auto it = incidents_.find(event.incident_id());
  if (it == incidents_.end()) {
    return;  // an event for an incident we never saw reported: ignored
  }
  apply_event(it->second, event);
}

const Incident* IncidentBook::find(std::uint64_t incident_id) const {
  auto it = incidents_.find(incident_id);
  return it == incidents_.end() ? nullptr : &it->second;
}

void IncidentBook::arm_unmet_stages(const Incident& incident) {
  for (v1::Stage s : kStages) {
    const StageClock& clock = incident.stage(s);
    if (!clock.met() && !clock.breached) {
      deadlines_.arm(Deadline{clock.deadline, incident.id, static_cast<std::uint8_t>(s)});
    }
  }
}

void IncidentBook::restore(std::uint64_t incident_id, const std::optional<Incident>& before) {
  if (!before) {
    incidents_.erase(incident_id);
    return;
  }
  Incident& incident = incidents_[incident_id];
  incident = *before;
  // A breach popped from the heap may have been undone: arm it again. A
  // duplicate entry is harmless, due() skips it.
  arm_unmet_stages(incident);
}

void IncidentBook::rewind(std::uint64_t next_seq, std::uint64_t next_incident_id) {
  next_seq_ = next_seq;
  next_incident_id_ = next_incident_id;
}

}  // namespace zonecall::sla
