#pragma once
// One incident's state, and the fold that derives it from timeline events.
// The live engine, crash recovery and the audit replay all use apply_event().
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sla/clock.hpp"
#include "zonecall/v1/timeline.pb.h"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::sla {

constexpr std::array<v1::Stage, 3> kStages = {v1::DISCOVER, v1::RESPOND, v1::RESOLVE};

struct StageClock {
  Millis deadline = 0;
  Millis warn_at = 0;  // NEAR_DEADLINE time; 0: no warning
  std::optional<Millis> met_at;
  std::string met_by;  // the staff member whose step met it
  bool breached = false;

  bool met() const { return met_at.has_value(); }
  bool operator==(const StageClock&) const = default;
};

// One zone call (战区呼叫) to a street-office department, and its answer.
struct CallState {
  std::uint32_t call_no = 0;
  std::string department_id;
  std::string reason;
  Millis raised_at = 0;
  Millis accept_deadline = 0;
  Millis on_site_limit = 0;
  std::optional<Millis> accepted_at;
  Millis on_site_deadline = 0;
  std::optional<Millis> on_site_at;
  bool declined = false;
  bool superseded = false;  // the next call replaced it after its acceptance limit passed
  bool accept_breached = false;
  bool on_site_breached = false;
  bool miss_escalated = false;  // DEPARTMENT_MISSED fired for this call

  // Open: the department still owes an answer (acceptance or arrival).
  bool open() const { return !declined && !superseded && !on_site_at.has_value(); }
  bool operator==(const CallState&) const = default;
};

// A resident's rating (满意率), given once after resolution.
struct Feedback {
  bool satisfied = false;
  std::uint32_t score = 0;
  std::string comment;
  bool operator==(const Feedback&) const = default;
};

struct Incident {
  std::uint64_t id = 0;
  std::string zone_id;
  std::string category;
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  std::string location;
  std::string description;
  std::string dedup_key;
  std::string reporter_id;
  Millis reported_at = 0;
  std::uint32_t policy_version = 0;
  v1::IncidentState state = v1::STATE_UNSPECIFIED;
  std::array<StageClock, 3> stages;  // indexed by stage_index()
  std::uint64_t last_seq = 0;
  std::uint32_t rungs_fired = 0;     // a bit per ladder rung (fires once per incident)
  std::uint8_t warned_stages = 0;    // a bit per stage: NEAR_DEADLINE fired
  std::vector<std::string> mutual_aid_zones;  // zones asked to help, who may act
  std::vector<CallState> calls;      // every zone call, in order
  std::string handler_id;            // the staff member who last moved it forward
  std::string holder;                // the department holding it; empty: the zone
  std::uint32_t attached_reports = 0;  // duplicate reports attached by dedup_key
  v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;  // recorded at resolution
  std::optional<Feedback> feedback;               // once, after resolution
  Millis resolved_at = 0;

  bool fired(v1::Rung rung) const { return (rungs_fired >> rung) & 1u; }
  bool warned(v1::Stage s) const { return (warned_stages >> stage_index(s)) & 1u; }
  const CallState* open_call() const {
    return !calls.empty() && calls.back().open() ? &calls.back() : nullptr;
  }
  bool called(const std::string& department_id) const {
    for (const auto& c : calls) {
      if (c.department_id == department_id) {
        return true;
      }
    }
    return false;
  }
  bool aid_zone(const std::string& zone) const {
    for (const auto& z : mutual_aid_zones) {
      if (z == zone) {
        return true;
      }
    }
    return false;
  }

  StageClock& stage(v1::Stage s) { return stages[stage_index(s)]; }
  const StageClock& stage(v1::Stage s) const { return stages[stage_index(s)]; }
  bool open() const { return state != v1::RESOLVED; }
  bool operator==(const Incident&) const = default;

  static constexpr std::size_t stage_index(v1::Stage s) { return static_cast<std::size_t>(s) - 1; }
};

// The stage that reaching `state` completes: DISCOVERED completes DISCOVER.
v1::Stage stage_completed_by(v1::IncidentState state);

// Why a stored event cannot be folded (a field out of range: a corrupt or
// forged row), or nothing when it is well formed.
std::optional<std::string> malformed(const v1::TimelineEvent& event);

// Folds one event into the incident. A `reported` event starts it afresh.
// The event must be well formed (see malformed()).
void apply_event(Incident& incident, const v1::TimelineEvent& event);

// The client's view of an incident (without its timeline).
v1::IncidentView view_of(const Incident& incident);

}  // namespace zonecall::sla
