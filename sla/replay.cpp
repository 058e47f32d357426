#include "sla/replay.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace zonecall::sla {

namespace {
std::string bytes_of(const v1::TimelineEvent& e) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  e.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

std::string describe(const v1::TimelineEvent& e) {
  std::string s = e.ShortDebugString();
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}
}  // namespace

Replayer::Replayer(PolicyLookup policies)
    : policies_(std::move(policies)), book_(&no_policy_) {}

void Replayer::note(const v1::TimelineEvent& e, std::string what) {
  discrepancies_.push_back(Discrepancy{e.seq(), e.incident_id(), std::move(what)});
}

void Replayer::compare(const v1::TimelineEvent& dictated, const v1::TimelineEvent& recorded) {
  if (bytes_of(dictated) != bytes_of(recorded)) {
    note(recorded, "recorded " + describe(recorded) + " but the policy dictates " + describe(dictated));
  }
}

void Replayer::expect_no_pending_breaches(const v1::TimelineEvent& before) {
  for (const auto& missing : dictated_breaches_) {
    note(missing, "missing breach before seq " + std::to_string(before.seq()) + ": " +
                      describe(missing));
  }
  dictated_breaches_.clear();
}

void Replayer::feed(const v1::TimelineEvent& recorded) {
  ++events_checked_;
  if (recorded.has_breached()) {
    // A clock tick: the first breach of a tick asks the book what falls
    // due at that instant; the following ones of the same tick match in order.
    if (dictated_breaches_.empty() || dictated_breaches_.front().at_ms() != recorded.at_ms()) {
      expect_no_pending_breaches(recorded);
      auto due = book_.due(recorded.at_ms());
      dictated_breaches_.assign(due.begin(), due.end());
    }
    if (dictated_breaches_.empty()) {
      note(recorded, "breach not dictated by the policy: " + describe(recorded));
    } else {
      compare(dictated_breaches_.front(), recorded);
      dictated_breaches_.pop_front();
    }
    book_.apply(recorded);
    return;
  }

  // A command. The engine always ticks before applying a command, so any
  // deadline that passed before this instant must already be recorded.
  expect_no_pending_breaches(recorded);
  for (const auto& missed : book_.due(recorded.at_ms())) {
    note(missed, "missing breach before seq " + std::to_string(recorded.seq()) + ": " +
                     describe(missed));
  }
  const CommandOrigin origin{recorded.actor_id(), recorded.request_id()};
  Decision decision;
  if (recorded.has_reported()) {
    const auto& r = recorded.reported();
    const Policy* policy = policies_(r.policy_version());
    if (policy == nullptr) {
      note(recorded, "unknown policy version " + std::to_string(r.policy_version()));
      book_.apply(recorded);
      return;
    }
    book_.set_policy(policy);
    v1::Report command;
    command.set_zone_id(r.zone_id());
    command.set_category(r.category());
    command.set_severity(r.severity());
    command.set_location(r.location());
    command.set_description(r.description());
    command.set_dedup_key(r.dedup_key());
    command.set_occurred_at_ms(r.claimed_occurred_at_ms());
    decision = book_.report(origin, command, recorded.at_ms());
  } else if (recorded.has_advanced()) {
    decision = book_.advance(origin, recorded.incident_id(), recorded.advanced().to(),
                             recorded.advanced().note(), recorded.at_ms());
  } else {
    note(recorded, "event of unknown kind");
    return;
  }
  if (!decision.ok()) {
    note(recorded, "recorded command is not allowed by the state machine: " +
                       decision.error->message);
  } else {
    compare(decision.events.front(), recorded);
  }
  book_.apply(recorded);
}

void Replayer::finish() {
  for (const auto& missing : dictated_breaches_) {
    note(missing, "missing breach at the end of the timeline: " + describe(missing));
  }
  dictated_breaches_.clear();
}

}  // namespace zonecall::sla
