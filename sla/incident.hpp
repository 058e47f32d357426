#pragma once
// One incident's state, and the fold that derives it from timeline events.
// The live engine, crash recovery and the audit replay all use apply_event().
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "sla/clock.hpp"
#include "zonecall/v1/timeline.pb.h"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::sla {

constexpr std::array<v1::Stage, 3> kStages = {v1::DISCOVER, v1::RESPOND, v1::RESOLVE};

struct StageClock {
  Millis deadline = 0;
  std::optional<Millis> met_at;
  bool breached = false;

  bool met() const { return met_at.has_value(); }
  bool operator==(const StageClock&) const = default;
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

  StageClock& stage(v1::Stage s) { return stages[stage_index(s)]; }
  const StageClock& stage(v1::Stage s) const { return stages[stage_index(s)]; }
  bool open() const { return state != v1::RESOLVED; }
  bool operator==(const Incident&) const = default;

  static constexpr std::size_t stage_index(v1::Stage s) { return static_cast<std::size_t>(s) - 1; }
};

// The stage that reaching `state` completes: DISCOVERED completes DISCOVER.
v1::Stage stage_completed_by(v1::IncidentState state);

// Folds one event into the incident. A `reported` event starts it afresh.
void apply_event(Incident& incident, const v1::TimelineEvent& event);

// The client's view of an incident (without its timeline).
v1::IncidentView view_of(const Incident& incident);

}  // namespace zonecall::sla
