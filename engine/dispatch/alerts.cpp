#include "engine/dispatch/alerts.hpp"

namespace zonecall {

namespace {
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

}  // namespace

Push alert_for(const v1::TimelineEvent& e, const sla::Incident* incident) {
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

void send_alert(SessionRegistry& sessions, const Push& push, const sla::Incident& incident,
                const sla::DutyState& duty) {
  // The audience is resolved at commit, so that staff who signed in or went
  // on duty while the batch was being written are alerted too.
  const auto audience = sessions.audience(push.recipients, duty);
  if (audience.empty()) {
    return;
  }
  // The view is the costly part: built only for an audience.
  v1::ServerMessage m = *push.alert;
  *m.mutable_alert()->mutable_incident() = sla::view_of(incident);
  const SharedMessage shared(std::move(m));
  for (std::uint64_t session_id : audience) {
    sessions.send_to(session_id, shared);
  }
}

}  // namespace zonecall
