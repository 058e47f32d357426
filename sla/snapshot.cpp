#include "sla/snapshot.hpp"

#include <string>
#include <utility>

namespace zonecall::sla {

namespace {

v1::StageRecord record_of(const StageClock& clock) {
  v1::StageRecord r;
  r.set_deadline_ms(clock.deadline);
  r.set_warn_at_ms(clock.warn_at);
  if (clock.met_at) {
    r.set_met_at_ms(*clock.met_at);
  }
  r.set_met_by(clock.met_by);
  r.set_breached(clock.breached);
  return r;
}

StageClock clock_of(const v1::StageRecord& r) {
  StageClock clock;
  clock.deadline = r.deadline_ms();
  clock.warn_at = r.warn_at_ms();
  if (r.has_met_at_ms()) {
    clock.met_at = r.met_at_ms();
  }
  clock.met_by = r.met_by();
  clock.breached = r.breached();
  return clock;
}

v1::CallRecord record_of(const CallState& call) {
  v1::CallRecord r;
  r.set_call_no(call.call_no);
  r.set_department_id(call.department_id);
  r.set_reason(call.reason);
  r.set_raised_at_ms(call.raised_at);
  r.set_accept_deadline_ms(call.accept_deadline);
  r.set_on_site_limit_ms(call.on_site_limit);
  if (call.accepted_at) {
    r.set_accepted_at_ms(*call.accepted_at);
  }
  r.set_on_site_deadline_ms(call.on_site_deadline);
  if (call.on_site_at) {
    r.set_on_site_at_ms(*call.on_site_at);
  }
  r.set_declined(call.declined);
  r.set_superseded(call.superseded);
  r.set_accept_breached(call.accept_breached);
  r.set_on_site_breached(call.on_site_breached);
  r.set_miss_escalated(call.miss_escalated);
  return r;
}

CallState call_of(const v1::CallRecord& r) {
  CallState call;
  call.call_no = r.call_no();
  call.department_id = r.department_id();
  call.reason = r.reason();
  call.raised_at = r.raised_at_ms();
  call.accept_deadline = r.accept_deadline_ms();
  call.on_site_limit = r.on_site_limit_ms();
  if (r.has_accepted_at_ms()) {
    call.accepted_at = r.accepted_at_ms();
  }
  call.on_site_deadline = r.on_site_deadline_ms();
  if (r.has_on_site_at_ms()) {
    call.on_site_at = r.on_site_at_ms();
  }
  call.declined = r.declined();
  call.superseded = r.superseded();
  call.accept_breached = r.accept_breached();
  call.on_site_breached = r.on_site_breached();
  call.miss_escalated = r.miss_escalated();
  return call;
}

void record_into(const Incident& incident, v1::IncidentRecord& r) {
  r.set_id(incident.id);
  r.set_zone_id(incident.zone_id);
  r.set_category(incident.category);
  r.set_severity(incident.severity);
  r.set_location(incident.location);
  r.set_description(incident.description);
  r.set_dedup_key(incident.dedup_key);
  r.set_reporter_id(incident.reporter_id);
  r.set_reported_at_ms(incident.reported_at);
  r.set_policy_version(incident.policy_version);
  r.set_state(incident.state);
  for (const auto& clock : incident.stages) {
    *r.add_stages() = record_of(clock);
  }
  r.set_last_seq(incident.last_seq);
  r.set_rungs_fired(incident.rungs_fired);
  r.set_warned_stages(incident.warned_stages);
  for (const auto& zone : incident.mutual_aid_zones) {
    r.add_mutual_aid_zones(zone);
  }
  for (const auto& call : incident.calls) {
    *r.add_calls() = record_of(call);
  }
  r.set_handler_id(incident.handler_id);
  r.set_holder(incident.holder);
  r.set_attached_reports(incident.attached_reports);
  r.set_outcome(incident.outcome);
  if (incident.feedback) {
    auto* f = r.mutable_feedback();
    f->set_satisfied(incident.feedback->satisfied);
    f->set_score(incident.feedback->score);
    f->set_comment(incident.feedback->comment);
  }
  r.set_resolved_at_ms(incident.resolved_at);
}

Incident incident_of(const v1::IncidentRecord& r) {
  if (r.stages_size() != static_cast<int>(kStages.size())) {
    throw BadSnapshot("incident " + std::to_string(r.id()) + " has " + std::to_string(r.stages_size()) +
                      " stage clocks, not " + std::to_string(kStages.size()));
  }
  if (r.warned_stages() > 0xff) {
    throw BadSnapshot("incident " + std::to_string(r.id()) + " warns of stages that do not exist");
  }
  Incident incident;
  incident.id = r.id();
  incident.zone_id = r.zone_id();
  incident.category = r.category();
  incident.severity = r.severity();
  incident.location = r.location();
  incident.description = r.description();
  incident.dedup_key = r.dedup_key();
  incident.reporter_id = r.reporter_id();
  incident.reported_at = r.reported_at_ms();
  incident.policy_version = r.policy_version();
  incident.state = r.state();
  for (std::size_t i = 0; i < kStages.size(); ++i) {
    incident.stages[i] = clock_of(r.stages(static_cast<int>(i)));
  }
  incident.last_seq = r.last_seq();
  incident.rungs_fired = r.rungs_fired();
  incident.warned_stages = static_cast<std::uint8_t>(r.warned_stages());
  incident.mutual_aid_zones.assign(r.mutual_aid_zones().begin(), r.mutual_aid_zones().end());
  for (const auto& call : r.calls()) {
    incident.calls.push_back(call_of(call));
  }
  incident.handler_id = r.handler_id();
  incident.holder = r.holder();
  incident.attached_reports = r.attached_reports();
  incident.outcome = r.outcome();
  if (r.has_feedback()) {
    incident.feedback = Feedback{r.feedback().satisfied(), r.feedback().score(), r.feedback().comment()};
  }
  incident.resolved_at = r.resolved_at_ms();
  return incident;
}

}  // namespace

v1::BookSnapshot snapshot_of(const IncidentBook& book) {
  v1::BookSnapshot snapshot;
  snapshot.set_format(kSnapshotFormat);
  snapshot.set_next_seq(book.next_seq());
  snapshot.set_next_incident_id(book.next_incident_id());
  snapshot.mutable_incidents()->Reserve(static_cast<int>(book.incidents().size()));
  for (const auto& [id, incident] : book.incidents()) {
    record_into(incident, *snapshot.add_incidents());
  }
  for (const auto& [staff, zone] : book.duty().zone_of_staff()) {
    auto* on = snapshot.add_on_duty();
    on->set_staff_id(staff);
    on->set_zone_id(zone);
  }
  return snapshot;
}

void restore_snapshot(IncidentBook& book, const v1::BookSnapshot& snapshot) {
  if (snapshot.format() != kSnapshotFormat) {
    throw BadSnapshot("a snapshot of format " + std::to_string(snapshot.format()) + "; this zonecall reads format " +
                      std::to_string(kSnapshotFormat));
  }
  if (snapshot.next_seq() == 0 || snapshot.next_incident_id() == 0) {
    throw BadSnapshot("a snapshot with no next seq or incident id");
  }
  std::vector<Incident> incidents;
  incidents.reserve(static_cast<std::size_t>(snapshot.incidents_size()));
  for (const auto& r : snapshot.incidents()) {
    incidents.push_back(incident_of(r));
  }
  DutyState duty;
  for (const auto& on : snapshot.on_duty()) {
    v1::DutyChanged change;
    change.set_staff_id(on.staff_id());
    change.set_zone_id(on.zone_id());
    change.set_on_duty(true);
    duty.apply(change);
  }
  if (!book.load_state(std::move(incidents), std::move(duty), snapshot.next_seq(), snapshot.next_incident_id())) {
    throw BadSnapshot("a snapshot whose incidents are not in id order below its next incident id");
  }
}

}  // namespace zonecall::sla
