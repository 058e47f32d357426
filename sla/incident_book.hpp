#pragma once
// The deterministic state machine over all open incidents.
//
// Commands are decided, then applied: report()/advance()/due() return the
// events a command or a clock tick produces (with seq and incident ids
// assigned) without changing any incident; apply() folds an event in. The
// caller must apply every returned event before deciding again. The live
// dispatcher, recovery and the audit replay all drive this same class.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sla/deadline_queue.hpp"
#include "sla/errors.hpp"
#include "sla/incident.hpp"
#include "sla/policy.hpp"

namespace zonecall::sla {

// Who issued a command, as recorded in the timeline.
struct CommandOrigin {
  std::string actor_id;
  std::uint64_t request_id = 0;
};

class IncidentBook {
 public:
  explicit IncidentBook(const Policy* policy) : policy_(policy) {}

  // The policy used for new reports; earlier incidents keep their deadlines.
  void set_policy(const Policy* policy) { policy_ = policy; }
  const Policy& policy() const { return *policy_; }

  Decision report(const CommandOrigin& origin, const v1::Report& report, Millis now) const;
  Decision advance(const CommandOrigin& origin, std::uint64_t incident_id, v1::IncidentState to,
                   const std::string& note, Millis now) const;
  // The breach events for every stage deadline that passed before `now`.
  // Pops those deadlines; call apply() on each returned event.
  std::vector<v1::TimelineEvent> due(Millis now);
  // When the next deadline falls due (the earliest armed one), if any.
  std::optional<Millis> next_deadline() const;

  void apply(const v1::TimelineEvent& event);

  const Incident* find(std::uint64_t incident_id) const;
  const std::unordered_map<std::uint64_t, Incident>& incidents() const { return incidents_; }
  std::uint64_t next_seq() const { return next_seq_; }
  std::uint64_t next_incident_id() const { return next_incident_id_; }
  const DeadlineQueue& deadlines() const { return deadlines_; }

  // Undo support for the engine when a commit fails: put an incident back
  // as it was (or remove it when it did not exist) and rewind the counters.
  void restore(std::uint64_t incident_id, const std::optional<Incident>& before);
  void rewind(std::uint64_t next_seq, std::uint64_t next_incident_id);

 private:
  void arm_unmet_stages(const Incident& incident);
  v1::TimelineEvent new_event(const CommandOrigin& origin, std::uint64_t incident_id, Millis now,
                              std::uint64_t offset) const;

  const Policy* policy_;
  std::unordered_map<std::uint64_t, Incident> incidents_;
  DeadlineQueue deadlines_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_incident_id_ = 1;
};

}  // namespace zonecall::sla
