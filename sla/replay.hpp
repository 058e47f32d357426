#pragma once
// Exact replay: re-run a timeline's recorded commands and clock ticks
// through a fresh IncidentBook on a virtual clock, and check that every
// event it dictates is the event that was recorded. Used by the audit and
// by `zonecall replay`; recovery only folds (IncidentBook::apply).
#include <array>
#include <cstdint>
#include <optional>
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
  // Every policy version the timeline was recorded under; `memory` for the
  // book's incident table (see IncidentBook).
  explicit Replayer(PolicyHistory policies,
                    std::pmr::memory_resource* memory = std::pmr::new_delete_resource());

  // Feed the recorded events in seq order. `stored` may give the event's
  // stored bytes, which spares re-encoding it for the comparison.
  void feed(const v1::TimelineEvent& recorded, std::string_view stored = {});
  // Feeds a recorded event by its stored bytes alone, when they are exactly
  // those of the event the replay expects next (the rest of a group: an
  // escalation after its report or breach). Spares parsing it: the audit
  // leaves such rows unparsed. Returns the event, valid until the next
  // feed or finish(), or null when the replay expects nothing or something
  // else: then parse the row and feed() it.
  const v1::TimelineEvent* feed_if_expected(std::uint64_t seq, std::string_view stored);
  // Room for incident ids up to `ids`; see IncidentTable::reserve.
  std::vector<std::span<std::byte>> reserve_incidents(std::uint64_t ids) {
    return book_.reserve_incidents(ids);
  }
  // Call once after the last event.
  void finish();

  const std::vector<Discrepancy>& discrepancies() const { return discrepancies_; }
  std::uint64_t events_checked() const { return events_checked_; }
  // The state the replay arrived at: the fold of the recorded events.
  const IncidentBook& book() const { return book_; }

 private:
  void start_group(const v1::TimelineEvent& recorded);
  void expect(std::vector<v1::TimelineEvent> group);  // a new group, none matched yet
  // The command a recorded command event was decided from, and its decision
  // as the actor's recorded rights allow.
  // Null for an event of no command (or of an unknown policy version).
  const v1::Command* command_of(const v1::TimelineEvent& recorded);
  Decision decide_command(const v1::TimelineEvent& recorded);
  void flush_missing(const std::string& where);
  void compare(const v1::TimelineEvent& dictated, const v1::TimelineEvent& recorded,
               std::string_view stored);
  void note(const v1::TimelineEvent& e, std::string what);

  PolicyHistory policies_;
  IncidentBook book_;
  // The current group's dictated events; those from next_expected_ on are
  // not yet matched.
  std::vector<v1::TimelineEvent> expected_;
  std::size_t next_expected_ = 0;
  std::vector<Discrepancy> discrepancies_;
  std::string dictated_bytes_;  // scratch for compare()
  std::string recorded_bytes_;
  std::uint64_t events_checked_ = 0;
  Millis last_at_ = 0;
  std::uint64_t rights_recorded_from_ = 0;  // the first event with the actor's rights
  std::array<v1::Command, 32> commands_;  // command_of's, one per kind
};

// Whether an event starts from a command (as opposed to the clock). `kind`
// is a TimelineEvent::KindCase, or the timeline's kind column.
bool is_command_kind(int kind);
inline bool is_command_event(const v1::TimelineEvent& e) { return is_command_kind(e.kind_case()); }

}  // namespace zonecall::sla
