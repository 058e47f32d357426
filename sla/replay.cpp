#include "sla/replay.hpp"


namespace zonecall::sla {

namespace {
// Into `out`, reusing its capacity: this runs for every event audited. The
// way the store encodes (TimelineEvent has no map fields, so the encoding of
// equal events is equal bytes).
void serialize(const v1::TimelineEvent& e, std::string& out) { e.SerializeToString(&out); }

std::string describe(const v1::TimelineEvent& e) {
  std::string s = e.ShortDebugString();
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}
}  // namespace

bool is_command_kind(int kind) {
  switch (kind) {
    case v1::TimelineEvent::kBreached:
    case v1::TimelineEvent::kEscalated:
    case v1::TimelineEvent::kCallBreached:
      return false;
    default:
      return true;
  }
}

Replayer::Replayer(PolicyHistory policies, std::pmr::memory_resource* memory)
    : policies_(std::move(policies)), book_(&policies_, memory) {}

void Replayer::note(const v1::TimelineEvent& e, std::string what) {
  discrepancies_.push_back(Discrepancy{e.seq(), e.incident_id(), std::move(what)});
}

void Replayer::compare(const v1::TimelineEvent& dictated, const v1::TimelineEvent& recorded,
                       std::string_view stored) {
  serialize(dictated, dictated_bytes_);
  if (stored.empty()) {
    serialize(recorded, recorded_bytes_);
    stored = recorded_bytes_;
  }
  const bool same = dictated_bytes_ == stored;
  if (!same) {
    note(recorded, "recorded " + describe(recorded) + " but the policy dictates " + describe(dictated));
  }
}

void Replayer::flush_missing(const std::string& where) {
  for (std::size_t i = next_expected_; i < expected_.size(); ++i) {
    note(expected_[i], "missing " + where + ": " + describe(expected_[i]));
  }
  expected_.clear();
  next_expected_ = 0;
}

const v1::TimelineEvent* Replayer::feed_if_expected(std::uint64_t seq, std::string_view stored) {
  if (next_expected_ == expected_.size()) {
    return nullptr;
  }
  const v1::TimelineEvent& expected = expected_[next_expected_];
  if (expected.seq() != seq || expected.at_ms() < last_at_) {
    return nullptr;  // feed() says what is wrong
  }
  serialize(expected, dictated_bytes_);
  if (dictated_bytes_ != stored) {
    return nullptr;
  }
  // All feed() would check holds: the book made it, so it is well formed,
  // and it is of the current group.
  ++events_checked_;
  ++next_expected_;
  last_at_ = expected.at_ms();
  book_.apply(expected);
  return &expected;
}

void Replayer::feed(const v1::TimelineEvent& recorded, std::string_view stored) {
  ++events_checked_;
  if (auto why = malformed(recorded)) {
    note(recorded, "malformed event (" + *why + "): " + describe(recorded));
    return;
  }
  // Server time never goes backward along the timeline.
  if (recorded.at_ms() < last_at_) {
    note(recorded, "time goes backward: " + std::to_string(last_at_ - recorded.at_ms()) +
                       " ms before the event preceding it");
  }
  last_at_ = std::max(last_at_, recorded.at_ms());
  // A command event never belongs to the group before it: what that group
  // still expected is missing.
  if (next_expected_ < expected_.size() && is_command_event(recorded) &&
      expected_[next_expected_].kind_case() != recorded.kind_case()) {
    flush_missing("event before seq " + std::to_string(recorded.seq()));
  }
  if (next_expected_ == expected_.size()) {
    start_group(recorded);
  }
  if (next_expected_ < expected_.size()) {
    compare(expected_[next_expected_], recorded, stored);
    ++next_expected_;
  }
  book_.apply(recorded);
}

void Replayer::expect(std::vector<v1::TimelineEvent> group) {
  expected_ = std::move(group);
  next_expected_ = 0;
}

void Replayer::start_group(const v1::TimelineEvent& recorded) {
  if (!is_command_event(recorded)) {
    // A clock tick: ask the book what falls due at that instant.
    auto due = book_.pass_due(recorded.at_ms());
    if (due.empty()) {
      note(recorded, "event not dictated by the policy: " + describe(recorded));
      return;
    }
    expect(std::move(due));
    return;
  }
  // The engine ticks before every command, so anything due by now must
  // already be recorded.
  for (const auto& missed : book_.pass_due(recorded.at_ms())) {
    note(missed, "missing before seq " + std::to_string(recorded.seq()) + ": " + describe(missed));
  }
  Decision decision = decide_command(recorded);
  if (!decision.ok()) {
    note(recorded, "recorded command is not allowed by the state machine: " +
                       decision.error->message);
    return;
  }
  expect(std::move(decision.events));
}

namespace {
// Who decided a recorded command: its actor, with the rights recorded on the
// event. Events from before rights were recorded name only the actor; the
// zone and department a decision used are then read off the event itself.
Principal actor_of(const v1::TimelineEvent& e) {
  Principal who;
  who.staff_id = e.actor_id();
  who.role = e.actor_role();
  who.zone_id = e.actor_zone_id();
  who.department_id = e.actor_department_id();
  if (who.role == v1::ROLE_UNSPECIFIED) {
    if (e.has_duty()) {
      who.zone_id = e.duty().zone_id();
    }
    who.department_id = e.has_call_accepted()  ? e.call_accepted().department_id()
                        : e.has_call_on_site() ? e.call_on_site().department_id()
                        : e.has_call_declined() ? e.call_declined().department_id()
                                                : who.department_id;
  }
  return who;
}
}  // namespace

const v1::Command* Replayer::command_of(const v1::TimelineEvent& e) {
  // One command per kind (and per target state), reused: this runs for
  // every command event audited, and reuse spares its allocations. Each
  // case sets every field it uses.
  const int slot = e.has_advanced() ? static_cast<int>(v1::TimelineEvent::kChainBreakAccepted) + e.advanced().to()
                                    : e.kind_case();
  if (slot < 0 || static_cast<std::size_t>(slot) >= commands_.size()) {
    return nullptr;
  }
  v1::Command& c = commands_[slot];
  const auto id = e.incident_id();
  switch (e.kind_case()) {
    case v1::TimelineEvent::kReported: {
      const auto& r = e.reported();
      if (!policies_.set_current(r.policy_version())) {
        return nullptr;
      }
      auto* report = c.mutable_report();
      report->set_zone_id(r.zone_id());
      report->set_category(r.category());
      report->set_severity(r.severity());
      report->set_location(r.location());
      report->set_description(r.description());
      report->set_dedup_key(r.dedup_key());
      report->set_occurred_at_ms(r.claimed_occurred_at_ms());
      return &c;
    }
    case v1::TimelineEvent::kAttached: {
      const Incident* incident = book_.find(id);
      if (incident == nullptr) {
        return nullptr;
      }
      policies_.set_current(incident->policy_version);
      auto* report = c.mutable_report();
      report->set_zone_id(incident->zone_id);
      report->set_category(incident->category);
      report->set_dedup_key(e.attached().dedup_key());
      report->set_location(e.attached().location());
      report->set_description(e.attached().description());
      report->set_occurred_at_ms(e.attached().claimed_occurred_at_ms());
      return &c;
    }
    case v1::TimelineEvent::kAdvanced: {
      const auto& a = e.advanced();
      if (a.to() == v1::DISCOVERED) {
        c.mutable_discover()->set_incident_id(id);
        c.mutable_discover()->set_note(a.note());
      } else if (a.to() == v1::RESPONDING) {
        c.mutable_respond()->set_incident_id(id);
        c.mutable_respond()->set_note(a.note());
      } else {
        c.mutable_resolve()->set_incident_id(id);
        c.mutable_resolve()->set_note(a.note());
        c.mutable_resolve()->set_outcome(a.outcome());
      }
      return &c;
    }
    case v1::TimelineEvent::kFeedback: {
      auto* f = c.mutable_feedback();
      f->set_incident_id(id);
      f->set_satisfied(e.feedback().satisfied());
      f->set_score(e.feedback().score());
      f->set_comment(e.feedback().comment());
      return &c;
    }
    case v1::TimelineEvent::kVisit: {
      auto* v = c.mutable_visit();
      v->set_zone_id(e.visit().zone_id());
      v->set_household_ref(e.visit().household_ref());
      v->set_note(e.visit().note());
      return &c;
    }
    case v1::TimelineEvent::kDuty:
      c.mutable_set_duty()->set_on_duty(e.duty().on_duty());
      return &c;
    case v1::TimelineEvent::kCallRaised: {
      auto* z = c.mutable_zone_call();
      z->set_incident_id(id);
      z->set_department_id(e.call_raised().department_id());
      z->set_reason(e.call_raised().reason());
      return &c;
    }
    case v1::TimelineEvent::kCallAccepted:
      c.mutable_department_accept()->set_incident_id(id);
      c.mutable_department_accept()->set_note(e.call_accepted().note());
      return &c;
    case v1::TimelineEvent::kCallOnSite:
      c.mutable_department_on_site()->set_incident_id(id);
      c.mutable_department_on_site()->set_note(e.call_on_site().note());
      return &c;
    case v1::TimelineEvent::kCallDeclined:
      c.mutable_department_decline()->set_incident_id(id);
      c.mutable_department_decline()->set_reason(e.call_declined().reason());
      return &c;
    case v1::TimelineEvent::kChainBreakAccepted:
      *c.mutable_accept_broken_chain() = e.chain_break_accepted();
      return &c;
    default:
      return nullptr;
  }
}

Decision Replayer::decide_command(const v1::TimelineEvent& e) {
  const auto command = command_of(e);
  if (!command) {
    return Decision::refuse(v1::NOT_FOUND, e.has_reported() ? "unknown policy version " +
                                                                  std::to_string(e.reported().policy_version())
                                                            : "an event of no known command");
  }
  const Principal who = e.actor_id() == kEngineActor ? IncidentBook::engine() : actor_of(e);
  const RequestKey request{e.request_id(), e.request_digest()};
  if (who.role != v1::ROLE_UNSPECIFIED || e.actor_id() == kEngineActor) {
    if (who.role != v1::ROLE_UNSPECIFIED && rights_recorded_from_ == 0) {
      rights_recorded_from_ = e.seq();
    }
    return book_.decide(who, *command, request, e.at_ms());
  }
  // Written before rights were recorded: decided as then, unchecked. Once a
  // timeline records them, a command without them is a forged step.
  if (rights_recorded_from_ != 0) {
    note(e, "command without the actor's rights, which are recorded from seq " +
                std::to_string(rights_recorded_from_) + " on");
  }
  return book_.decide_unrecorded(who, *command, request, e.at_ms());
}

void Replayer::finish() { flush_missing("at the end of the timeline"); }

}  // namespace zonecall::sla
