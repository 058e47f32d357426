#pragma once
// Exact replay: re-run a timeline's recorded commands and clock ticks
// through a fresh IncidentBook on a virtual clock, and check that every
// event it dictates is the event that was recorded. Used by the audit and
// by `zonecall replay`; recovery only folds (IncidentBook::apply).
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "sla/incident_book.hpp"

namespace zonecall::sla {

struct Discrepancy {
  std::uint64_t seq = 0;          // the recorded event concerned
  std::uint64_t incident_id = 0;
  std::string what;
};

class Replayer {
 public:
  // Every policy version the timeline was recorded under.
  explicit Replayer(PolicyHistory policies);

  // Feed the recorded events in seq order. `stored` may give the event's
  // stored bytes, which spares re-encoding it for the comparison.
  void feed(const v1::TimelineEvent& recorded, std::string_view stored = {});
  // Call once after the last event.
  void finish();

  const std::vector<Discrepancy>& discrepancies() const { return discrepancies_; }
  std::uint64_t events_checked() const { return events_checked_; }
  // The state the replay arrived at: the fold of the recorded events.
  const IncidentBook& book() const { return book_; }

 private:
  void start_group(const v1::TimelineEvent& recorded);
  Decision decide_command(const v1::TimelineEvent& recorded);
  void flush_missing(const std::string& where);
  void compare(const v1::TimelineEvent& dictated, const v1::TimelineEvent& recorded,
               std::string_view stored);
  void note(const v1::TimelineEvent& e, std::string what);

  PolicyHistory policies_;
  IncidentBook book_;
  std::deque<v1::TimelineEvent> expected_;  // dictated, not yet matched
  std::vector<Discrepancy> discrepancies_;
  std::string dictated_bytes_;  // scratch for compare()
  std::string recorded_bytes_;
  std::uint64_t events_checked_ = 0;
  Millis last_at_ = 0;
};

// Whether an event starts from a command (as opposed to the clock).
bool is_command_event(const v1::TimelineEvent& e);

}  // namespace zonecall::sla
