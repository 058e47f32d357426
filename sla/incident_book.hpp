#pragma once
// The deterministic state machine over every incident, the duty roster and
// the zone calls.
//
// One way in: handle(who, command, request, now) ticks (decides what fell
// due by `now`), authorises the command against the permission table and
// the zones, and decides its events. The live engine, the test harness and
// the fuzzer drive the book through it; the replay uses its two halves,
// pass_due() and decide(), because it compares before it folds.
//
// Two states. The committed state is the fold of what is durable: apply()
// folds an event into it, and every reader (listings, alert views, /metrics,
// the replay, recovery) sees only it. Events that handle() or tick() decided are
// pending until the caller applies them, once durable: later decisions see
// them (a Discover right after its Report finds the incident), readers do
// not. If their commit fails, discard_pending() forgets them all, and the
// committed state is untouched: nothing has to be undone.
#include <array>
#include <cstdint>
#include <deque>
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
#include "sla/permissions.hpp"
#include "sla/policy.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::sla {

// The actor of clock-driven events. Config refuses it as a staff id.
inline constexpr std::string_view kEngineActor = "engine";

// The request a command came in, as recorded in its events: a retry of the
// same request (same id, same digest) is answered, not decided again.
struct RequestKey {
  std::uint64_t id = 0;
  std::uint64_t digest = 0;  // of the request's body: tells a retry from a reuse
};

// One step: the events that fell due by the command's time, then the
// command's own decision.
struct Step {
  std::vector<v1::TimelineEvent> due;
  Decision decision;
};

class IncidentBook {
 public:
  // Reports use policies->current(); an incident's clocks and ladder use the
  // version it was reported under. The incident table's memory comes from
  // `memory` (the engine's asks for huge pages: engine/huge_pages.hpp).
  explicit IncidentBook(const PolicyHistory* policies,
                        std::pmr::memory_resource* memory = std::pmr::new_delete_resource())
      : policies_(policies), incidents_(memory) {}

  // Ticks, then authorises and decides the command. Every returned event is
  // pending: apply each once it is durable, or discard_pending() if not.
  Step handle(const Principal& who, const v1::Command& command, const RequestKey& request,
              Millis now);
  // A clock tick alone; the events are pending as with handle().
  std::vector<v1::TimelineEvent> tick(Millis now);
  // The engine's own principal, for the commands it issues itself.
  static Principal engine();

  // -- the halves of handle(), for the replay (decide() and due() are pure) --
  // The command's events, or why not (NOT_FOUND, FORBIDDEN, …): the
  // permission table (sla/permissions.hpp) and the zones are checked here,
  // and the actor's rights are recorded on every event.
  Decision decide(const Principal& who, const v1::Command& command, const RequestKey& request,
                  Millis now) const;
  // For events written before rights were recorded: decides as they were
  // decided then, with no permission check and no rights on the events.
  Decision decide_unrecorded(const Principal& who, const v1::Command& command,
                             const RequestKey& request, Millis now) const;
  // The events for every deadline that passed before `now`: stage breaches,
  // near-deadline warnings, department misses, and the ladder's rungs.
  // Changes nothing. (tick() then parks the passed deadlines with the
  // pending events; they leave for good once those are applied, and go back
  // in the queue if they are discarded.)
  std::vector<v1::TimelineEvent> due(Millis now) const;
  std::optional<Millis> next_deadline() const;
  // For the replay, which folds the recorded events itself: due(now), with
  // the deadlines it passed taken off the queue, so that a recorded deletion
  // is named once and never walked again.
  std::vector<v1::TimelineEvent> pass_due(Millis now);

  // -- the committed state --
  // Folds a durable event in (and retires it from the pending ones). A
  // malformed event (see sla::malformed) is refused and leaves everything
  // as it was: the caller reports it.
  bool apply(const v1::TimelineEvent& event);
  // Forgets every pending event: their commit failed. The deadlines they
  // settled are queued again.
  void discard_pending();
  bool has_pending() const { return pending_.has_value(); }

  // Recovery folds a whole timeline at once: arming each incident's
  // deadlines as it goes would fill the queue with millions of entries for
  // incidents resolved later. Between these two calls nothing is armed; the
  // second arms the incidents still open.
  void begin_bulk_load() { arming_ = false; }
  // A checkpoint's committed state in place of the events before it
  // (sla/snapshot.hpp): only on a new book in bulk load. False, and the book
  // unusable, if the incidents are not in increasing id order below
  // next_incident_id.
  bool load_state(std::vector<Incident> incidents, DutyState duty, std::uint64_t next_seq,
                  std::uint64_t next_incident_id);
  // Room for incident ids up to `ids`; see IncidentTable::reserve.
  std::vector<std::span<std::byte>> reserve_incidents(std::uint64_t ids) {
    return incidents_.reserve(ids);
  }
  void end_bulk_load();

  const Incident* find(std::uint64_t incident_id) const;
  const IncidentTable& incidents() const { return incidents_; }
  // The open (unresolved) incidents' ids, in order.
  const std::set<std::uint64_t>& open_ids() const { return open_ids_; }
  const DutyState& duty() const { return duty_; }
  // Duty as the newest decision sees it, pending changes included: an
  // alert goes to whoever is on duty when it is sent, even if their SetDuty
  // is still being committed.
  const DutyState& latest_duty() const;
  // Open incidents by zone, then by state (indexed by v1::IncidentState),
  // kept as events are applied so that /metrics never walks the table.
  using OpenCounts = std::map<std::string, std::array<std::int64_t, v1::IncidentState_ARRAYSIZE>, std::less<>>;
  const OpenCounts& open_counts() const { return open_counts_; }
  // The committed state's next seq and incident id.
  std::uint64_t next_seq() const { return next_seq_; }
  std::uint64_t next_incident_id() const { return next_incident_id_; }
  const DeadlineQueue& deadlines() const { return deadlines_; }
  const Policy& policy_of(const Incident& incident) const;

 private:
  // Deadline kinds in the queue.
  enum Kind : std::uint8_t {
    kBreachBase = 0,  // + stage (1..3)
    kWarnBase = 3,    // + stage (4..6)
    kCallAccept = 7,
    kCallOnSite = 8,
  };
  // Who a command's events are recorded as coming from.
  struct Origin {
    const Principal* who = nullptr;  // null: the engine
    RequestKey request;
    bool record_rights = true;
  };
  // Decided events not yet durable, as later decisions see them: the latest
  // state of each incident, the duty roster and the dedup keys they touch,
  // each with the last pending seq that touched it (retired once applied).
  struct Pending {
    // Set by add_pending (no initialisers here: Clang cannot default-
    // construct a nested class with them inside its enclosing class).
    std::uint64_t through_seq;  // the newest pending event
    std::uint64_t next_seq;
    std::uint64_t next_incident_id;
    std::unordered_map<std::uint64_t, std::pair<Incident, std::uint64_t>> incidents;
    std::optional<std::pair<DutyState, std::uint64_t>> duty;
    // zone + key -> the open incident (0: none any more), last seq.
    std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> dedup;
    // Passed deadlines a tick took off the queue, with the newest pending
    // seq then: once it is applied they are settled for good.
    std::deque<std::pair<std::uint64_t, std::vector<Deadline>>> parked;
  };

  class Draft;
  Decision decide_as(const Principal& who, const v1::Command& command, const Origin& origin,
                     Millis now, bool authorise) const;
  // The state decisions see: committed, with pending events on top.
  const Incident* latest(std::uint64_t incident_id) const;
  std::optional<std::uint64_t> open_with_key(const std::string& zone_key) const;
  std::uint64_t decide_next_seq() const { return pending_ ? pending_->next_seq : next_seq_; }
  std::uint64_t decide_next_incident_id() const {
    return pending_ ? pending_->next_incident_id : next_incident_id_;
  }
  // Incidents a tick's decisions changed, as they stand after them.
  using Changed = std::unordered_map<std::uint64_t, Incident>;
  Pending& open_pending();
  void add_pending(const std::vector<v1::TimelineEvent>& events);
  // A tick's events: their incidents are `changed`, already folded, and
  // are moved into the overlay rather than copied and folded again.
  void adopt_pending(const std::vector<v1::TimelineEvent>& events, Changed& changed);
  void retire_pending(const v1::TimelineEvent& event);

  // The decisions, one per command (sla/decide.cpp).
  Decision report(const Origin& origin, const v1::Report& report, Millis now) const;
  Decision advance(const Origin& origin, std::uint64_t incident_id, v1::IncidentState to,
                   const std::string& note, Millis now, v1::Outcome outcome) const;
  Decision feedback(const Origin& origin, std::uint64_t incident_id, bool satisfied,
                    std::uint32_t score, const std::string& comment, Millis now) const;
  Decision visit(const Origin& origin, const std::string& zone_id,
                 const std::string& household_ref, const std::string& note, Millis now) const;
  Decision set_duty(const Origin& origin, const std::string& zone_id, bool on_duty,
                    Millis now) const;
  Decision zone_call(const Origin& origin, std::uint64_t incident_id,
                     const std::string& department_id, const std::string& reason, Millis now) const;
  Decision department_accept(const Origin& origin, std::uint64_t incident_id,
                             const std::string& department_id, Millis now,
                             const std::string& note) const;
  Decision department_on_site(const Origin& origin, std::uint64_t incident_id,
                              const std::string& department_id, Millis now,
                              const std::string& note) const;
  Decision department_decline(const Origin& origin, std::uint64_t incident_id,
                              const std::string& department_id, const std::string& reason,
                              Millis now) const;
  Decision accept_broken_chain(const Origin& origin, std::uint64_t first_broken_seq,
                               const std::string& problem, Millis now) const;
  // A decision of exactly one event, which `fill` completes.
  template <class Fill>
  Decision single(const Origin& origin, std::uint64_t incident_id, Millis now, Fill&& fill) const;

  // Deadlines (sla/book_deadlines.cpp).
  // The events for `passed` (in queue order), leaving in `changed` the
  // incidents they changed.
  std::vector<v1::TimelineEvent> decide_passed(const std::vector<Deadline>& passed, Millis now,
                                               Changed& changed) const;
  // Takes the deadlines passed by `now` off the queue, in order.
  std::vector<Deadline> pop_passed(Millis now);
  // Arms the incident's pending deadlines.
  void arm(const Incident& incident);
  // Pops queue entries the committed state shows settled.
  void drop_settled_deadlines();
  // After a tick decided what fell due from `passed`: parks them with the
  // pending events if there are any.
  void park(std::vector<Deadline> passed);
  // Whether a queued deadline still means something for the incident (most
  // do not: the stage was met, or the entry was re-armed since).
  static bool still_due(const Incident& incident, const Deadline& deadline);
  void decide_due(Draft& draft, Incident& incident, const Deadline& deadline, Millis now) const;

  void index_dedup(const Incident& incident, bool add);
  void count_open(const Incident& incident, int delta);
  OpenCounts::mapped_type& counts_for(const Incident& incident);

  const PolicyHistory* policies_;
  IncidentTable incidents_;
  std::set<std::uint64_t> open_ids_;
  OpenCounts open_counts_;
  std::unordered_map<std::string, std::uint64_t> open_by_dedup_;  // zone + key -> open incident
  DutyState duty_;
  DeadlineQueue deadlines_;
  bool arming_ = true;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_incident_id_ = 1;
  std::optional<Pending> pending_;
};

// The key of the open-incident index for a dedup key in a zone.
std::string dedup_index_key(const std::string& zone_id, const std::string& dedup_key);

}  // namespace zonecall::sla
