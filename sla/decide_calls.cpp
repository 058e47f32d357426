// The zone-call decisions: raising a call to a street-office department,
// and the department's answers (accept, on site, decline).
#include <algorithm>

#include "sla/book_draft.hpp"

namespace zonecall::sla {

Decision IncidentBook::zone_call(const Origin& origin, std::uint64_t incident_id,
                                 const std::string& department_id, const std::string& reason,
                                 Millis now) const {
  const Incident* incident = latest(incident_id);
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
    if (!reason.empty()) {
      c->set_reason(reason);
    }
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

Decision IncidentBook::department_accept(const Origin& origin, std::uint64_t incident_id,
                                         const std::string& department_id, Millis now,
                                         const std::string& note) const {
  std::optional<CommandError> error;
  const CallState* call = answerable_call(latest(incident_id), department_id, error);
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
    if (!note.empty()) {
      a->set_note(note);
    }
  });
}

Decision IncidentBook::department_on_site(const Origin& origin, std::uint64_t incident_id,
                                          const std::string& department_id, Millis now,
                                          const std::string& note) const {
  std::optional<CommandError> error;
  const CallState* call = answerable_call(latest(incident_id), department_id, error);
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
    if (!note.empty()) {
      o->set_note(note);
    }
  });
}

Decision IncidentBook::department_decline(const Origin& origin, std::uint64_t incident_id,
                                          const std::string& department_id,
                                          const std::string& reason, Millis now) const {
  if (reason.empty()) {
    return Decision::refuse(v1::BAD_REQUEST, "a decline needs a reason, e.g. wrong department");
  }
  std::optional<CommandError> error;
  const Incident* found = latest(incident_id);
  const CallState* call = answerable_call(found, department_id, error);
  if (call == nullptr) {
    return Decision::refuse(error->code, error->message);
  }
  Draft draft(*this, origin, now);
  Incident incident = *found;
  v1::TimelineEvent& e = draft.add(incident_id);
  auto* d = e.mutable_call_declined();
  d->set_call_no(call->call_no);
  d->set_department_id(department_id);
  if (!reason.empty()) {
    d->set_reason(reason);
  }
  const auto call_no = call->call_no;
  draft.fold_last(incident);
  draft.escalate(incident, v1::CALL_DECLINED, v1::STAGE_UNSPECIFIED,
                 "department " + department_id + " declined: " + reason, call_no);
  return draft.finish();
}

}  // namespace zonecall::sla
