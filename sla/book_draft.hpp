#pragma once
// Private to sla/: the events one decision produces (IncidentBook::Draft).
#include "sla/incident_book.hpp"

namespace zonecall::sla {

// Each event is also folded into a local copy of its incident, so later
// steps of the same decision see it.
class IncidentBook::Draft {
 public:
  Draft(const IncidentBook& book, Origin origin, Millis now)
      : book_(book), origin_(origin), now_(now) {}

  // A new event of this decision, built in place: the audit decides every
  // command again, and moving each event into place cost more than making
  // it (bench/RESULTS.md). The reference lasts until the next add().
  v1::TimelineEvent& add(std::uint64_t incident_id);
  // Folds the last event added into `local`, so later steps see it.
  void fold_last(Incident& local) { apply_event(local, events_.back()); }
  // A rung of the ladder for `incident`, if the policy enables it and it has
  // not fired yet; recipients are resolved to zones, departments or staff.
  void escalate(Incident& incident, v1::Rung rung, v1::Stage stage, const std::string& reason,
                std::uint32_t call_no = 0);

  Decision finish() {
    Decision d;
    d.events = std::move(events_);
    return d;
  }
  std::vector<v1::TimelineEvent> take() { return std::move(events_); }

 private:
  const IncidentBook& book_;
  Origin origin_;
  Millis now_;
  std::vector<v1::TimelineEvent> events_;
};

template <class Fill>
Decision IncidentBook::single(const Origin& origin, std::uint64_t incident_id, Millis now,
                              Fill&& fill) const {
  Draft draft(*this, origin, now);
  fill(draft.add(incident_id));
  return draft.finish();
}

}  // namespace zonecall::sla
