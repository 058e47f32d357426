#pragma once
// The deterministic state machine over every incident, the duty roster and
// the zone calls.
//
// Commands are decided, then applied: the decide functions (report, advance,
// set_duty, zone_call, department_*) and due() return the events a command
// or a clock tick produces, with seq and incident ids assigned, without
// changing any state; apply() folds an event in. The caller must apply every
// returned event, in order, before deciding again. The live dispatcher,
// recovery and the audit replay all drive this same class.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sla/deadline_queue.hpp"
#include "sla/duty.hpp"
#include "sla/errors.hpp"
#include "sla/incident.hpp"
#include "sla/incident_table.hpp"
#include "sla/policy.hpp"

namespace zonecall::sla {

// The actor of clock-driven events. Config refuses it as a staff id.
inline constexpr std::string_view kEngineActor = "engine";

// Who issued a command, as recorded in the timeline.
struct CommandOrigin {
  std::string actor_id;
  std::uint64_t request_id = 0;
  std::uint64_t request_digest = 0;  // of the request's body: tells a retry from a reuse
};

class IncidentBook {
 public:
  // Reports use policies->current(); an incident's clocks and ladder use the
  // version it was reported under. The incident table's memory comes from
  // `memory` (the engine's asks for huge pages: engine/huge_pages.hpp).
  explicit IncidentBook(const PolicyHistory* policies,
                        std::pmr::memory_resource* memory = std::pmr::new_delete_resource())
      : policies_(policies), incidents_(memory) {}

  Decision report(const CommandOrigin& origin, const v1::Report& report, Millis now) const;
  Decision advance(const CommandOrigin& origin, std::uint64_t incident_id, v1::IncidentState to,
                   const std::string& note, Millis now,
                   v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED) const;
  Decision feedback(const CommandOrigin& origin, std::uint64_t incident_id, bool satisfied,
                    std::uint32_t score, const std::string& comment, Millis now) const;
  Decision visit(const CommandOrigin& origin, const std::string& zone_id,
                 const std::string& household_ref, const std::string& note, Millis now) const;
  Decision set_duty(const CommandOrigin& origin, const std::string& zone_id, bool on_duty,
                    Millis now) const;
  Decision zone_call(const CommandOrigin& origin, std::uint64_t incident_id,
                     const std::string& department_id, const std::string& reason, Millis now) const;
  Decision department_accept(const CommandOrigin& origin, std::uint64_t incident_id,
                             const std::string& department_id, Millis now,
                             const std::string& note = "") const;
  Decision department_on_site(const CommandOrigin& origin, std::uint64_t incident_id,
                              const std::string& department_id, Millis now,
                              const std::string& note = "") const;
  Decision department_decline(const CommandOrigin& origin, std::uint64_t incident_id,
                              const std::string& department_id, const std::string& reason,
                              Millis now) const;
  // The record that the operator chose to serve on a broken hash chain.
  Decision accept_broken_chain(const CommandOrigin& origin, std::uint64_t first_broken_seq,
                               const std::string& problem, Millis now) const;

  // The events for every deadline that passed before `now`: stage breaches,
  // near-deadline warnings, department misses, and the ladder's rungs.
  // Pops those deadlines; call apply() on each returned event.
  std::vector<v1::TimelineEvent> due(Millis now);
  std::optional<Millis> next_deadline() const;

  // Recovery folds a whole timeline at once: arming each incident's
  // deadlines as it goes would fill the queue with millions of entries for
  // incidents resolved later. Between these two calls nothing is armed; the
  // second arms the incidents still open.
  void begin_bulk_load() { arming_ = false; }
  // Room for incident ids up to `ids`; see IncidentTable::reserve.
  std::vector<std::span<std::byte>> reserve_incidents(std::uint64_t ids) {
    return incidents_.reserve(ids);
  }
  void end_bulk_load();

  // Folds an event in. A malformed event (see sla::malformed) is refused
  // and leaves everything as it was: the caller reports it.
  bool apply(const v1::TimelineEvent& event);

  const Incident* find(std::uint64_t incident_id) const;
  const IncidentTable& incidents() const { return incidents_; }
  // The open (unresolved) incidents' ids, in order.
  const std::set<std::uint64_t>& open_ids() const { return open_ids_; }
  const DutyState& duty() const { return duty_; }
  // Open incidents by zone, then by state (indexed by v1::IncidentState),
  // kept as events are applied so that /metrics never walks the table.
  using OpenCounts = std::map<std::string, std::array<std::int64_t, v1::IncidentState_ARRAYSIZE>, std::less<>>;
  const OpenCounts& open_counts() const { return open_counts_; }
  std::uint64_t next_seq() const { return next_seq_; }
  std::uint64_t next_incident_id() const { return next_incident_id_; }
  const DeadlineQueue& deadlines() const { return deadlines_; }
  const Policy& policy_of(const Incident& incident) const;

  // Undo support for the engine when a commit fails: put an incident back
  // as it was (or remove it when it did not exist), the duty roster, and
  // rewind the counters.
  void restore(std::uint64_t incident_id, const std::optional<Incident>& before);
  void restore_duty(const DutyState& duty) { duty_ = duty; }
  void rewind(std::uint64_t next_seq, std::uint64_t next_incident_id);

 private:
  // Deadline kinds in the queue.
  enum Kind : std::uint8_t {
    kBreachBase = 0,  // + stage (1..3)
    kWarnBase = 3,    // + stage (4..6)
    kCallAccept = 7,
    kCallOnSite = 8,
  };

  class Draft;
  // A decision of exactly one event, which `fill` completes.
  template <class Fill>
  Decision single(const CommandOrigin& origin, std::uint64_t incident_id, Millis now, Fill&& fill) const;
  // Arms the incident's pending deadlines; with `popped_before`, only those
  // due before it (the ones earlier ticks took off the queue).
  void arm(const Incident& incident, std::optional<Millis> popped_before = std::nullopt);
  void index_dedup(const Incident& incident, bool add);
  void count_open(const Incident& incident, int delta);
  OpenCounts::mapped_type& counts_for(const Incident& incident);
  // Whether a popped deadline still means something for the incident (most
  // do not: the stage was met, or the entry was re-armed since).
  static bool still_due(const Incident& incident, const Deadline& deadline);
  void decide_due(Draft& draft, Incident& incident, const Deadline& deadline, Millis now) const;

  const PolicyHistory* policies_;
  IncidentTable incidents_;
  std::set<std::uint64_t> open_ids_;
  OpenCounts open_counts_;
  std::unordered_map<std::string, std::uint64_t> open_by_dedup_;  // zone + key -> open incident
  DutyState duty_;
  DeadlineQueue deadlines_;
  Millis last_due_at_ = 0;  // the latest `now` due() ran at
  bool arming_ = true;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_incident_id_ = 1;
};

}  // namespace zonecall::sla
