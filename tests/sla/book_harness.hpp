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
      : policy(sla::Policy::from_config(config, 1)), book(&policy) {}

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

  sla::ManualClock clock{kStart};
  sla::Policy policy;
  sla::IncidentBook book;
  std::vector<v1::TimelineEvent> timeline;
  std::uint64_t request_id = 0;
};

}  // namespace zonecall::testing
