#pragma once
// Drives an IncidentBook the way the dispatcher does (tick before every
// command, apply every decided event), on a ManualClock, and keeps the
// timeline it produced.
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

struct BookHarness {
  static constexpr sla::Millis kStart = 1'700'000'000'000;

  explicit BookHarness(v1::Config config = two_category_config())
      : policies(sla::Policy::from_config(config, 1)), book(&policies) {}

  sla::Decision run(sla::Decision d) {
    for (const auto& e : d.events) {
      book.apply(e);
      timeline.push_back(e);
    }
    return d;
  }
  std::vector<v1::TimelineEvent> tick() {
    auto events = book.due(clock.now());
    for (const auto& e : events) {
      book.apply(e);
      timeline.push_back(e);
    }
    return events;
  }
  sla::Decision report(const std::string& category, v1::Severity severity = v1::SEVERITY_UNSPECIFIED,
                       const std::string& zone = "Z1") {
    tick();
    v1::Report r;
    r.set_zone_id(zone);
    r.set_category(category);
    r.set_severity(severity);
    r.set_location("C1 building 3");
    return run(book.report({"z1-grid-1", ++request_id}, r, clock.now()));
  }
  sla::Decision advance(std::uint64_t id, v1::IncidentState to, const std::string& note = "") {
    tick();
    return run(book.advance({"z1-grid-1", ++request_id}, id, to, note, clock.now()));
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
    tick();
    return run(book.set_duty({staff, ++request_id}, zone, on, clock.now()));
  }
  sla::Decision call(std::uint64_t id, const std::string& department) {
    tick();
    return run(book.zone_call({"z1-chief", ++request_id}, id, department, "beyond us", clock.now()));
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
