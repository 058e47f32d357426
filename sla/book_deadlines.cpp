// Deadlines: which ones a tick decides, and how passed or settled entries
// leave the queue (parked with the pending events, or dropped once the
// committed state shows them settled).
#include <algorithm>
#include <unordered_map>

#include "sla/book_draft.hpp"

namespace zonecall::sla {

namespace {
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

}  // namespace

std::vector<v1::TimelineEvent> IncidentBook::due(Millis now) const {
  Changed changed;
  return decide_passed(deadlines_.passed(now), now, changed);
}

std::vector<v1::TimelineEvent> IncidentBook::pass_due(Millis now) {
  auto passed = pop_passed(now);
  Changed changed;
  auto events = decide_passed(passed, now, changed);
  park(std::move(passed));
  return events;
}

std::vector<v1::TimelineEvent> IncidentBook::decide_passed(const std::vector<Deadline>& passed,
                                                           Millis now, Changed& changed) const {
  Draft draft(*this, Origin{}, now);
  // `changed` holds the incidents changed earlier in this tick, so each
  // decision sees the last.
  for (const Deadline& deadline : passed) {
    const Incident* incident = latest(deadline.incident_id);
    if (incident == nullptr || !incident->open()) {
      continue;  // resolved: its deadlines no longer matter
    }
    auto seen = changed.find(incident->id);
    if (!still_due(seen == changed.end() ? *incident : seen->second, deadline)) {
      continue;  // checked before copying the incident: most entries are settled
    }
    if (seen == changed.end()) {
      seen = changed.emplace(incident->id, *incident).first;
    }
    decide_due(draft, seen->second, deadline, now);
  }
  return draft.take();
}

std::vector<Deadline> IncidentBook::pop_passed(Millis now) {
  std::vector<Deadline> passed;
  while (auto d = deadlines_.pop_passed(now)) {
    passed.push_back(*d);
  }
  return passed;
}

void IncidentBook::park(std::vector<Deadline> passed) {
  if (passed.empty()) {
    return;
  }
  // With nothing pending, the tick decided nothing: every passed entry is
  // settled in the committed state already.
  if (pending_) {
    pending_->parked.emplace_back(pending_->through_seq, std::move(passed));
  }
  drop_settled_deadlines();  // the new front may be settled already
}

void IncidentBook::drop_settled_deadlines() {
  // Only the committed state settles an entry: one that a pending event
  // settles stays queued, so it is decided again if that commit fails.
  while (auto next = deadlines_.next()) {
    const Incident* incident = incidents_.find(next->incident_id);
    if (incident != nullptr && incident->open() && still_due(*incident, *next)) {
      return;
    }
    deadlines_.pop();
  }
}

bool IncidentBook::still_due(const Incident& incident, const Deadline& deadline) {
  const std::uint8_t kind = deadline.kind;
  if (kind >= 1 && kind <= 3) {
    const StageClock& clock = incident.stage(static_cast<v1::Stage>(kind - kBreachBase));
    return !clock.met() && !clock.breached && clock.deadline == deadline.due;
  }
  if (kind >= 4 && kind <= 6) {
    const auto stage = static_cast<v1::Stage>(kind - kWarnBase);
    const StageClock& clock = incident.stage(stage);
    return !clock.met() && !clock.breached && !incident.warned(stage) && clock.warn_at == deadline.due;
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
    v1::TimelineEvent& e = draft.add(incident.id);
    e.mutable_breached()->set_stage(stage);
    e.mutable_breached()->set_deadline_ms(clock.deadline);
    draft.fold_last(incident);
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
    v1::TimelineEvent& e = draft.add(incident.id);
    auto* b = e.mutable_call_breached();
    b->set_call_no(call_no);
    b->set_department_id(department);
    b->set_what(accept ? v1::ACCEPT : v1::ON_SITE);
    b->set_deadline_ms(due);
    draft.fold_last(incident);
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

void IncidentBook::arm(const Incident& incident) {
  if (!incident.open() || !arming_) {
    return;
  }
  auto put = [&](Millis due, std::uint8_t kind) { deadlines_.arm(Deadline{due, incident.id, kind}); };
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

}  // namespace zonecall::sla
