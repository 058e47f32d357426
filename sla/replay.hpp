#pragma once
// Exact replay: re-run a timeline's recorded commands and clock ticks
// through a fresh IncidentBook on a virtual clock, and check that every
// event it dictates is the event that was recorded. Used by the audit and
// by `zonecall replay`; recovery only folds (IncidentBook::apply).
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "sla/incident_book.hpp"

namespace zonecall::sla {

struct Discrepancy {
  std::uint64_t seq = 0;          // the recorded event concerned (0: none)
  std::uint64_t incident_id = 0;
  std::string what;
};

// The policy of each version the engine has run with.
using PolicyLookup = std::function<const Policy*(std::uint32_t version)>;

class Replayer {
 public:
  explicit Replayer(PolicyLookup policies);

  // Feed the recorded events in seq order.
  void feed(const v1::TimelineEvent& recorded);
  // Call once after the last event.
  void finish();

  const std::vector<Discrepancy>& discrepancies() const { return discrepancies_; }
  std::uint64_t events_checked() const { return events_checked_; }
  // The state the replay arrived at: the fold of the recorded events.
  const IncidentBook& book() const { return book_; }

 private:
  void expect_no_pending_breaches(const v1::TimelineEvent& before);
  void compare(const v1::TimelineEvent& dictated, const v1::TimelineEvent& recorded);
  void note(const v1::TimelineEvent& e, std::string what);

  PolicyLookup policies_;
  Policy no_policy_;
  IncidentBook book_;
  std::deque<v1::TimelineEvent> dictated_breaches_;  // from the current tick
  std::vector<Discrepancy> discrepancies_;
  std::uint64_t events_checked_ = 0;
};

}  // namespace zonecall::sla
