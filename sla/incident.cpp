#include "sla/incident.hpp"

namespace zonecall::sla {

v1::Stage stage_completed_by(v1::IncidentState state) {
  switch (state) {
    case v1::DISCOVERED:
      return v1::DISCOVER;
    case v1::RESPONDING:
      return v1::RESPOND;
    case v1::RESOLVED:
      return v1::RESOLVE;
    default:
      return v1::STAGE_UNSPECIFIED;
  }
}

void apply_event(Incident& incident, const v1::TimelineEvent& event) {
  incident.last_seq = event.seq();
  switch (event.kind_case()) {
    case v1::TimelineEvent::kReported: {
      const auto& r = event.reported();
      incident = Incident{};
      incident.id = event.incident_id();
      incident.zone_id = r.zone_id();
      incident.category = r.category();
      incident.severity = r.severity();
      incident.location = r.location();
      incident.description = r.description();
      incident.dedup_key = r.dedup_key();
      incident.reporter_id = event.actor_id();
      incident.reported_at = event.at_ms();
      incident.policy_version = r.policy_version();
      incident.state = v1::REPORTED;
      incident.stage(v1::DISCOVER).deadline = r.discover_deadline_ms();
      incident.stage(v1::RESPOND).deadline = r.respond_deadline_ms();
      incident.stage(v1::RESOLVE).deadline = r.resolve_deadline_ms();
      incident.last_seq = event.seq();
      return;
    }
    case v1::TimelineEvent::kAdvanced:
      incident.state = event.advanced().to();
      for (const auto& met : event.advanced().met()) {
        incident.stage(met.stage()).met_at = event.at_ms();
      }
      return;
    case v1::TimelineEvent::kBreached:
      incident.stage(event.breached().stage()).breached = true;
      return;
    case v1::TimelineEvent::KIND_NOT_SET:
      return;
  }
}

v1::IncidentView view_of(const Incident& incident) {
  v1::IncidentView v;
  v.set_incident_id(incident.id);
  v.set_zone_id(incident.zone_id);
  v.set_category(incident.category);
  v.set_severity(incident.severity);
  v.set_state(incident.state);
  v.set_location(incident.location);
  v.set_description(incident.description);
  v.set_reporter_id(incident.reporter_id);
  v.set_reported_at_ms(incident.reported_at);
  for (v1::Stage s : kStages) {
    const StageClock& c = incident.stage(s);
    auto* sv = v.add_stages();
    sv->set_stage(s);
    sv->set_deadline_ms(c.deadline);
    sv->set_breached(c.breached);
    if (c.met_at) {
      sv->set_met_at_ms(*c.met_at);
      sv->set_late_by_ms(*c.met_at > c.deadline ? *c.met_at - c.deadline : 0);
    }
  }
  return v;
}

}  // namespace zonecall::sla
