#pragma once
// Drives an IncidentBook the way the dispatcher does (handle() for every
// command, every decided event applied as committed), on a ManualClock, and
// keeps the timeline it produced.
#include <vector>

#include "sla/clock.hpp"
#include "sla/incident_book.hpp"

namespace zonecall::testing {

inline v1::Config two_category_config() {
  v1::Config c;
  // Z1 in the middle of a row of three zones.
  for (auto [id, n] : {std::pair{"Z0", "Z1"}, std::pair{"Z2", "Z1"}}) {
    auto* z = c.add_zones();
    z->set_id(id);
    z->add_neighbours(n);
  }
  auto* z1 = c.add_zones();
  z1->set_id("Z1");
  z1->add_neighbours("Z0");
  z1->add_neighbours("Z2");
  auto* dept = c.add_departments();
  dept->set_id("urban");
  dept->set_accept_limit_ms(5 * 60 * 1000);
  dept->set_on_site_limit_ms(15 * 60 * 1000);
  auto* permit = c.add_categories();
  permit->set_id("illegal_construction");
  permit->set_department_id("urban");
  permit->set_beyond_community_authority(true);
  auto* fire = c.add_categories();
  fire->set_id("fire");
  fire->set_default_severity(v1::CRITICAL);
  auto* noise = c.add_categories();
  noise->set_id("noise");
  noise->set_default_severity(v1::LOW);
  noise->mutable_budgets()->set_resolve_ms(30 * 60 * 1000);
  auto* major = noise->add_by_severity();
  major->set_severity(v1::MAJOR);
  major->mutable_budgets()->set_discover_ms(30 * 1000);
  return c;
}

// Principals for the tests: whoever the permission table lets do the step.
inline sla::Principal as(const std::string& staff_id, v1::Role role, const std::string& zone = "",
                         const std::string& department = "") {
  sla::Principal p;
  p.staff_id = staff_id;
  p.name = staff_id;
  p.role = role;
  p.zone_id = zone;
  p.department_id = department;
  return p;
}
inline sla::Principal commander(const std::string& staff_id = "z1-grid-1") {
  return as(staff_id, v1::COMMUNITY_COMMAND);
}
inline sla::Principal department(const std::string& department_id) {
  return as("dept-" + department_id, v1::DEPARTMENT, "", department_id);
}

// Commands, as the engine takes them from requests.
namespace command {
inline v1::Command report(const v1::Report& r) {
  v1::Command c;
  *c.mutable_report() = r;
  return c;
}
inline v1::Command advance(std::uint64_t id, v1::IncidentState to, const std::string& note = "",
                           v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED) {
  v1::Command c;
  if (to == v1::DISCOVERED) {
    c.mutable_discover()->set_incident_id(id);
    c.mutable_discover()->set_note(note);
  } else if (to == v1::RESPONDING) {
    c.mutable_respond()->set_incident_id(id);
    c.mutable_respond()->set_note(note);
  } else {
    c.mutable_resolve()->set_incident_id(id);
    c.mutable_resolve()->set_note(note);
    c.mutable_resolve()->set_outcome(outcome);
  }
  return c;
}
inline v1::Command set_duty(bool on) {
  v1::Command c;
  c.mutable_set_duty()->set_on_duty(on);
  return c;
}
inline v1::Command zone_call(std::uint64_t id, const std::string& department, const std::string& reason) {
  v1::Command c;
  c.mutable_zone_call()->set_incident_id(id);
  c.mutable_zone_call()->set_department_id(department);
  c.mutable_zone_call()->set_reason(reason);
  return c;
}
inline v1::Command accept(std::uint64_t id, const std::string& note = "") {
  v1::Command c;
  c.mutable_department_accept()->set_incident_id(id);
  c.mutable_department_accept()->set_note(note);
  return c;
}
inline v1::Command on_site(std::uint64_t id, const std::string& note = "") {
  v1::Command c;
  c.mutable_department_on_site()->set_incident_id(id);
  c.mutable_department_on_site()->set_note(note);
  return c;
}
inline v1::Command decline(std::uint64_t id, const std::string& reason) {
  v1::Command c;
  c.mutable_department_decline()->set_incident_id(id);
  c.mutable_department_decline()->set_reason(reason);
  return c;
}
inline v1::Command feedback(std::uint64_t id, bool satisfied, std::uint32_t score,
                            const std::string& comment = "") {
  v1::Command c;
  c.mutable_feedback()->set_incident_id(id);
  c.mutable_feedback()->set_satisfied(satisfied);
  c.mutable_feedback()->set_score(score);
  c.mutable_feedback()->set_comment(comment);
  return c;
}
inline v1::Command visit(const std::string& zone, const std::string& household,
                         const std::string& note = "") {
  v1::Command c;
  c.mutable_visit()->set_zone_id(zone);
  c.mutable_visit()->set_household_ref(household);
  c.mutable_visit()->set_note(note);
  return c;
}
}  // namespace command

struct BookHarness {
  static constexpr sla::Millis kStart = 1'700'000'000'000;

  explicit BookHarness(v1::Config config = two_category_config())
      : policies(sla::Policy::from_config(config, 1)), book(&policies) {}

  // One command through the engine's path: handle() ticks and decides, and
  // every event is applied as if its commit succeeded at once.
  sla::Decision run(const sla::Principal& who, const v1::Command& c) {
    sla::Step step = book.handle(who, c, {++request_id, 0}, clock.now());
    commit(step.due);
    commit(step.decision.events);
    return step.decision;
  }
  std::vector<v1::TimelineEvent> tick() {
    auto events = book.tick(clock.now());
    commit(events);
    return events;
  }
  void commit(const std::vector<v1::TimelineEvent>& events) {
    for (const auto& e : events) {
      book.apply(e);
      timeline.push_back(e);
    }
  }
  sla::Decision report(const std::string& category, v1::Severity severity = v1::SEVERITY_UNSPECIFIED,
                       const std::string& zone = "Z1") {
    v1::Report r;
    r.set_zone_id(zone);
    r.set_category(category);
    r.set_severity(severity);
    r.set_location("C1 building 3");
    return run(commander(), command::report(r));
  }
  sla::Decision advance(std::uint64_t id, v1::IncidentState to, const std::string& note = "") {
    return run(commander(), command::advance(id, to, note));
  }
  const sla::Incident& incident(std::uint64_t id) const { return *book.find(id); }

  // Only the stage breaches of a tick (warnings and escalations left out).
  std::vector<v1::TimelineEvent> tick_breaches() {
    std::vector<v1::TimelineEvent> out;
    for (auto& e : tick()) {
      if (e.has_breached()) {
        out.push_back(std::move(e));
      }
    }
    return out;
  }
  sla::Decision set_duty(const std::string& staff, const std::string& zone, bool on) {
    return run(as(staff, v1::GRID_WORKER, zone), command::set_duty(on));
  }
  sla::Decision call(std::uint64_t id, const std::string& department) {
    return run(commander("z1-chief"), command::zone_call(id, department, "beyond us"));
  }
  // The escalations of a list of events, by rung.
  static std::vector<v1::Rung> rungs(const std::vector<v1::TimelineEvent>& events) {
    std::vector<v1::Rung> out;
    for (const auto& e : events) {
      if (e.has_escalated()) {
        out.push_back(e.escalated().rung());
      }
    }
    return out;
  }

  sla::ManualClock clock{kStart};
  sla::PolicyHistory policies;
  sla::IncidentBook book;
  std::vector<v1::TimelineEvent> timeline;
  std::uint64_t request_id = 0;
};

}  // namespace zonecall::testing
