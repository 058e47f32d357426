#include "sla/incident.hpp"

#include <optional>

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

std::optional<std::string> malformed(const v1::TimelineEvent& e) {
  auto stage_ok = [](v1::Stage s) { return s >= v1::DISCOVER && s <= v1::RESOLVE; };
  // Incident ids share a 64-bit deadline key with a 4-bit kind.
  if (e.incident_id() >= (std::uint64_t{1} << 60)) {
    return "incident id out of range";
  }
  const bool needs_incident = !e.has_duty() && !e.has_visit() && !e.has_chain_break_accepted();
  if (needs_incident && e.incident_id() == 0) {
    return "event without an incident";
  }
  switch (e.kind_case()) {
    case v1::TimelineEvent::kReported:
      if (!v1::Severity_IsValid(e.reported().severity())) {
        return "severity out of range";
      }
      return std::nullopt;
    case v1::TimelineEvent::kAdvanced: {
      const auto to = e.advanced().to();
      if (to < v1::DISCOVERED || to > v1::RESOLVED) {
        return "state out of range";
      }
      for (const auto& met : e.advanced().met()) {
        if (!stage_ok(met.stage())) {
          return "stage out of range";
        }
      }
      return std::nullopt;
    }
    case v1::TimelineEvent::kBreached:
      return stage_ok(e.breached().stage()) ? std::nullopt
                                            : std::optional<std::string>("stage out of range");
    case v1::TimelineEvent::kEscalated: {
      const auto& esc = e.escalated();
      if (!v1::Rung_IsValid(esc.rung()) || esc.rung() == v1::RUNG_UNSPECIFIED) {
        return "rung out of range";
      }
      if (esc.stage() != v1::STAGE_UNSPECIFIED && !stage_ok(esc.stage())) {
        return "stage out of range";
      }
      if (esc.rung() == v1::NEAR_DEADLINE && !stage_ok(esc.stage())) {
        return "a warning without its stage";
      }
      return std::nullopt;
    }
    case v1::TimelineEvent::kCallBreached:
      if (e.call_breached().what() != v1::ACCEPT && e.call_breached().what() != v1::ON_SITE) {
        return "call stage out of range";
      }
      return std::nullopt;
    case v1::TimelineEvent::kFeedback:
      if (e.feedback().score() < 1 || e.feedback().score() > 5) {
        return "feedback score out of range";
      }
      return std::nullopt;
    case v1::TimelineEvent::KIND_NOT_SET:
      return "event of unknown kind";
    default:
      return std::nullopt;
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
      incident.stage(v1::DISCOVER).warn_at = r.discover_warn_ms();
      incident.stage(v1::RESPOND).warn_at = r.respond_warn_ms();
      incident.stage(v1::RESOLVE).warn_at = r.resolve_warn_ms();
      incident.last_seq = event.seq();
      return;
    }
    case v1::TimelineEvent::kAdvanced:
      incident.state = event.advanced().to();
      incident.handler_id = event.actor_id();
      for (const auto& met : event.advanced().met()) {
        incident.stage(met.stage()).met_at = event.at_ms();
        incident.stage(met.stage()).met_by = event.actor_id();
      }
      if (incident.state == v1::RESOLVED) {
        incident.outcome = event.advanced().outcome();
        incident.resolved_at = event.at_ms();
      }
      return;
    case v1::TimelineEvent::kBreached:
      incident.stage(event.breached().stage()).breached = true;
      return;
    case v1::TimelineEvent::kEscalated: {
      const auto& esc = event.escalated();
      if (esc.rung() == v1::NEAR_DEADLINE) {
        incident.warned_stages |= static_cast<std::uint8_t>(1u << Incident::stage_index(esc.stage()));
      } else if (esc.rung() == v1::DEPARTMENT_MISSED) {
        if (esc.call_no() >= 1 && esc.call_no() <= incident.calls.size()) {
          incident.calls[esc.call_no() - 1].miss_escalated = true;
        }
      } else {
        incident.rungs_fired |= 1u << esc.rung();
      }
      for (const auto& zone : esc.mutual_aid_zones()) {
        if (!incident.aid_zone(zone)) {
          incident.mutual_aid_zones.push_back(zone);
        }
      }
      return;
    }
    case v1::TimelineEvent::kAttached:
      ++incident.attached_reports;
      return;
    case v1::TimelineEvent::kFeedback:
      incident.feedback =
          Feedback{event.feedback().satisfied(), event.feedback().score(), event.feedback().comment()};
      return;
    case v1::TimelineEvent::kCallRaised: {
      const auto& r = event.call_raised();
      CallState call;
      call.call_no = r.call_no();
      call.department_id = r.department_id();
      call.reason = r.reason();
      call.raised_at = event.at_ms();
      call.accept_deadline = r.accept_deadline_ms();
      call.on_site_limit = r.on_site_limit_ms();
      // Only a call whose acceptance limit was missed is ever superseded; one
      // accepted late held the incident, which goes back to the zone.
      if (!incident.calls.empty() && incident.calls.back().open()) {
        incident.calls.back().superseded = true;
        incident.holder.clear();
      }
      incident.calls.push_back(std::move(call));
      return;
    }
    default:
      break;
  }
  // The answers to a call name it by number.
  auto call_of = [&](std::uint32_t call_no) -> CallState* {
    return call_no >= 1 && call_no <= incident.calls.size() ? &incident.calls[call_no - 1] : nullptr;
  };
  if (event.has_call_accepted()) {
    if (auto* call = call_of(event.call_accepted().call_no())) {
      call->accepted_at = event.at_ms();
      call->on_site_deadline = event.call_accepted().on_site_deadline_ms();
      incident.holder = call->department_id;
    }
  } else if (event.has_call_on_site()) {
    if (auto* call = call_of(event.call_on_site().call_no())) {
      call->on_site_at = event.at_ms();
    }
  } else if (event.has_call_declined()) {
    if (auto* call = call_of(event.call_declined().call_no())) {
      call->declined = true;
      incident.holder.clear();
    }
  } else if (event.has_call_breached()) {
    if (auto* call = call_of(event.call_breached().call_no())) {
      (event.call_breached().what() == v1::ACCEPT ? call->accept_breached : call->on_site_breached) =
          true;
    }
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
  v.set_holder(incident.holder.empty() ? incident.zone_id : incident.holder);
  for (const auto& zone : incident.mutual_aid_zones) {
    v.add_mutual_aid_zones(zone);
  }
  for (const auto& call : incident.calls) {
    auto* cv = v.add_calls();
    cv->set_call_no(call.call_no);
    cv->set_department_id(call.department_id);
    cv->set_reason(call.reason);
    cv->set_raised_at_ms(call.raised_at);
    cv->set_accept_deadline_ms(call.accept_deadline);
    cv->set_accepted_at_ms(call.accepted_at.value_or(0));
    cv->set_on_site_deadline_ms(call.on_site_deadline);
    cv->set_on_site_at_ms(call.on_site_at.value_or(0));
    cv->set_declined(call.declined);
    cv->set_accept_breached(call.accept_breached);
    cv->set_on_site_breached(call.on_site_breached);
    cv->set_superseded(call.superseded);
  }
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
