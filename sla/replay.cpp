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
    auto due = book_.due(recorded.at_ms());
    if (due.empty()) {
      note(recorded, "event not dictated by the policy: " + describe(recorded));
      return;
    }
    expect(std::move(due));
    return;
  }
  // The engine ticks before every command, so anything due by now must
  // already be recorded.
  for (const auto& missed : book_.due(recorded.at_ms())) {
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

Decision Replayer::decide_command(const v1::TimelineEvent& e) {
  const CommandOrigin origin{e.actor_id(), e.request_id(), e.request_digest()};
  const auto id = e.incident_id();
  const auto now = e.at_ms();
  switch (e.kind_case()) {
    case v1::TimelineEvent::kReported: {
      const auto& r = e.reported();
      if (!policies_.set_current(r.policy_version())) {
        return Decision::refuse(v1::INTERNAL,
                                "unknown policy version " + std::to_string(r.policy_version()));
      }
      v1::Report command;
      command.set_zone_id(r.zone_id());
      command.set_category(r.category());
      command.set_severity(r.severity());
      command.set_location(r.location());
      command.set_description(r.description());
      command.set_dedup_key(r.dedup_key());
      command.set_occurred_at_ms(r.claimed_occurred_at_ms());
      return book_.report(origin, command, now);
    }
    case v1::TimelineEvent::kAttached: {
      const Incident* incident = book_.find(id);
      if (incident == nullptr) {
        return Decision::refuse(v1::NOT_FOUND, "attached to an unknown incident");
      }
      policies_.set_current(incident->policy_version);
      v1::Report command;
      command.set_zone_id(incident->zone_id);
      command.set_category(incident->category);
      command.set_dedup_key(e.attached().dedup_key());
      command.set_location(e.attached().location());
      command.set_description(e.attached().description());
      command.set_occurred_at_ms(e.attached().claimed_occurred_at_ms());
      return book_.report(origin, command, now);
    }
    case v1::TimelineEvent::kAdvanced:
      return book_.advance(origin, id, e.advanced().to(), e.advanced().note(), now,
                           e.advanced().outcome());
    case v1::TimelineEvent::kFeedback:
      return book_.feedback(origin, id, e.feedback().satisfied(), e.feedback().score(),
                            e.feedback().comment(), now);
    case v1::TimelineEvent::kVisit:
      return book_.visit(origin, e.visit().zone_id(), e.visit().household_ref(), e.visit().note(),
                         now);
    case v1::TimelineEvent::kDuty:
      return book_.set_duty(origin, e.duty().zone_id(), e.duty().on_duty(), now);
    case v1::TimelineEvent::kCallRaised:
      return book_.zone_call(origin, id, e.call_raised().department_id(), e.call_raised().reason(),
                             now);
    case v1::TimelineEvent::kCallAccepted:
      return book_.department_accept(origin, id, e.call_accepted().department_id(), now,
                                     e.call_accepted().note());
    case v1::TimelineEvent::kCallOnSite:
      return book_.department_on_site(origin, id, e.call_on_site().department_id(), now,
                                      e.call_on_site().note());
    case v1::TimelineEvent::kCallDeclined:
      return book_.department_decline(origin, id, e.call_declined().department_id(),
                                      e.call_declined().reason(), now);
    case v1::TimelineEvent::kChainBreakAccepted:
      return book_.accept_broken_chain(origin, e.chain_break_accepted().first_broken_seq(),
                                       e.chain_break_accepted().problem(), now);
    default:
      return Decision::refuse(v1::BAD_REQUEST, "event of unknown kind");
  }
}

void Replayer::finish() { flush_missing("at the end of the timeline"); }

}  // namespace zonecall::sla
