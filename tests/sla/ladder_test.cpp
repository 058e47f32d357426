// The escalation ladder on a manual clock: every rung, the CRITICAL path, a
// zone with nobody on duty, and a ladder loaded from config.
#include <catch2/catch.hpp>

#include <algorithm>

#include "book_harness.hpp"

using namespace zonecall;
using sla::kMinute;
using testing::BookHarness;
using testing::as;
using testing::commander;
using testing::department;
namespace command = testing::command;

namespace {
const v1::Escalated* find_rung(const std::vector<v1::TimelineEvent>& events, v1::Rung rung) {
  for (const auto& e : events) {
    if (e.has_escalated() && e.escalated().rung() == rung) {
      return &e.escalated();
    }
  }
  return nullptr;
}

std::vector<std::string> recipients(const v1::Escalated& esc) {
  std::vector<std::string> out;
  for (const auto& r : esc.recipients()) {
    out.push_back(v1::AudienceKind_Name(r.kind()) + ":" + r.zone_id() + r.department_id() +
                  r.staff_id());
  }
  return out;
}

std::uint64_t report_noise(BookHarness& h) {
  auto d = h.report("noise");  // LOW: no CRITICAL rung
  REQUIRE(d.ok());
  return d.events.front().incident_id();
}
}  // namespace

TEST_CASE("ladder: at report the zone's on-duty staff are alerted") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  auto d = h.report("noise");
  REQUIRE(d.ok());
  CHECK(BookHarness::rungs(d.events) == std::vector<v1::Rung>{v1::AT_REPORT});
  const auto* at_report = find_rung(d.events, v1::AT_REPORT);
  REQUIRE(at_report);
  CHECK(recipients(*at_report) == std::vector<std::string>{"ZONE_ON_DUTY:Z1"});
  CHECK(at_report->mutual_aid_zones_size() == 0);
  CHECK(d.events[1].seq() == d.events[0].seq() + 1);
}

TEST_CASE("ladder: a zone with nobody on duty goes straight to the next rung") {
  BookHarness h;
  h.set_duty("z0-grid-1", "Z0", true);  // someone elsewhere, nobody in Z1
  auto d = h.report("noise");
  REQUIRE(d.ok());
  CHECK(BookHarness::rungs(d.events) == std::vector<v1::Rung>{v1::AT_REPORT, v1::DISCOVER_MISSED});
  const auto* next = find_rung(d.events, v1::DISCOVER_MISSED);
  REQUIRE(next);
  CHECK(recipients(*next) == std::vector<std::string>{"ZONE_CHIEF_OF_ZONE:Z1", "NEIGHBOUR_ON_DUTY:Z0",
                                                      "NEIGHBOUR_ON_DUTY:Z2"});
  CHECK(next->reason().find("nobody on duty") != std::string::npos);
  // The rung fired once: the discover deadline itself escalates no further.
  h.clock.advance(kMinute + 1);
  auto tick = h.tick();
  CHECK(std::count_if(tick.begin(), tick.end(), [](auto& e) { return e.has_breached(); }) == 1);
  CHECK(find_rung(tick, v1::DISCOVER_MISSED) == nullptr);
}

TEST_CASE("ladder: every missed stage climbs one rung, each once") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  const auto id = report_noise(h);

  h.clock.set(BookHarness::kStart + kMinute + 1);
  auto discover = h.tick();
  const auto* d = find_rung(discover, v1::DISCOVER_MISSED);
  REQUIRE(d);
  CHECK(d->stage() == v1::DISCOVER);
  CHECK(recipients(*d) == std::vector<std::string>{"ZONE_CHIEF_OF_ZONE:Z1", "NEIGHBOUR_ON_DUTY:Z0",
                                                   "NEIGHBOUR_ON_DUTY:Z2"});
  CHECK(h.incident(id).mutual_aid_zones.empty());

  h.clock.set(BookHarness::kStart + 5 * kMinute + 1);
  auto respond = h.tick();
  const auto* r = find_rung(respond, v1::RESPOND_MISSED);
  REQUIRE(r);
  CHECK(recipients(*r) == std::vector<std::string>{"NEIGHBOUR_ON_DUTY:Z0", "NEIGHBOUR_ON_DUTY:Z2",
                                                   "COMMAND:"});
  CHECK(std::vector<std::string>(r->mutual_aid_zones().begin(), r->mutual_aid_zones().end()) ==
        std::vector<std::string>{"Z0", "Z2"});
  CHECK(h.incident(id).aid_zone("Z0"));
  CHECK(h.incident(id).aid_zone("Z2"));

  h.clock.set(BookHarness::kStart + 30 * kMinute + 1);  // noise resolves in 30 min
  auto resolve = h.tick();
  const auto* z = find_rung(resolve, v1::RESOLVE_MISSED);
  REQUIRE(z);
  CHECK(recipients(*z) == std::vector<std::string>{"COMMAND:", "STREET_OFFICE_DESK:"});

  h.clock.advance(60 * kMinute);
  CHECK(h.tick().empty());
  // Across the whole timeline each rung appears once.
  auto all = BookHarness::rungs(h.timeline);
  for (auto rung : {v1::AT_REPORT, v1::DISCOVER_MISSED, v1::RESPOND_MISSED, v1::RESOLVE_MISSED}) {
    CHECK(std::count(all.begin(), all.end(), rung) == 1);
  }
}

TEST_CASE("ladder: a CRITICAL incident asks for mutual aid and alerts command at report") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  auto d = h.report("fire");
  REQUIRE(d.ok());
  const auto* critical = find_rung(d.events, v1::CRITICAL_AT_REPORT);
  REQUIRE(critical);
  CHECK(recipients(*critical) == std::vector<std::string>{"NEIGHBOUR_ON_DUTY:Z0", "NEIGHBOUR_ON_DUTY:Z2",
                                                          "COMMAND:"});
  CHECK(critical->mutual_aid_zones_size() == 2);
  const auto id = d.events.front().incident_id();
  CHECK(h.incident(id).aid_zone("Z0"));
  // A NORMAL report of the same category is not CRITICAL.
  auto normal = h.report("fire", v1::NORMAL);
  CHECK(find_rung(normal.events, v1::CRITICAL_AT_REPORT) == nullptr);
}

TEST_CASE("ladder: a stage close to its deadline warns the staff handling it") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  const auto id = report_noise(h);
  // 80 % of the 1-minute discover budget: 48 s; not yet at exactly 48 s.
  h.clock.set(BookHarness::kStart + 48'000);
  CHECK(find_rung(h.tick(), v1::NEAR_DEADLINE) == nullptr);
  h.clock.set(BookHarness::kStart + 48'001);
  auto tick = h.tick();
  const auto* warn = find_rung(tick, v1::NEAR_DEADLINE);
  REQUIRE(warn);
  CHECK(warn->stage() == v1::DISCOVER);
  CHECK(recipients(*warn) == std::vector<std::string>{"ZONE_ON_DUTY:Z1"});  // nobody took it yet

  REQUIRE(h.advance(id, v1::DISCOVERED).ok());  // z1-grid-1 takes it
  h.clock.set(BookHarness::kStart + 4 * kMinute + 1);  // 80 % of 5 minutes
  auto respond = h.tick();
  const auto* warn2 = find_rung(respond, v1::NEAR_DEADLINE);
  REQUIRE(warn2);
  CHECK(warn2->stage() == v1::RESPOND);
  CHECK(recipients(*warn2) == std::vector<std::string>{"HANDLERS:z1-grid-1"});
  // A met stage is never warned about.
  REQUIRE(h.advance(id, v1::RESOLVED).ok());
  h.clock.advance(60 * kMinute);
  CHECK(h.tick().empty());
}

TEST_CASE("ladder: a different ladder from config changes the outcome") {
  auto config = testing::two_category_config();
  auto* ladder = config.mutable_policy()->mutable_ladder();
  ladder->set_warn_at_percent(50);
  auto* discover = ladder->add_rungs();
  discover->set_rung(v1::DISCOVER_MISSED);
  discover->add_alert(v1::COMMAND);
  discover->set_mutual_aid(true);
  auto* respond = ladder->add_rungs();
  respond->set_rung(v1::RESPOND_MISSED);
  respond->set_disabled(true);
  BookHarness h(config);
  h.set_duty("z1-grid-1", "Z1", true);
  const auto id = report_noise(h);

  h.clock.set(BookHarness::kStart + 30'001);  // 50 % of a minute
  CHECK(find_rung(h.tick(), v1::NEAR_DEADLINE) != nullptr);

  h.clock.set(BookHarness::kStart + kMinute + 1);
  const auto discover_tick = h.tick();
  const auto* d = find_rung(discover_tick, v1::DISCOVER_MISSED);
  REQUIRE(d);
  CHECK(recipients(*d) == std::vector<std::string>{"COMMAND:"});
  CHECK(h.incident(id).aid_zone("Z0"));  // mutual aid one rung earlier

  h.clock.set(BookHarness::kStart + 5 * kMinute + 1);
  auto respond_tick = h.tick();
  CHECK(std::any_of(respond_tick.begin(), respond_tick.end(), [](auto& e) { return e.has_breached(); }));
  CHECK(find_rung(respond_tick, v1::RESPOND_MISSED) == nullptr);  // disabled
}

TEST_CASE("duty: on, off, and moving zones") {
  BookHarness h;
  h.set_duty("a", "Z1", true);
  h.set_duty("b", "Z1", true);
  CHECK(h.book.duty().in_zone("Z1").size() == 2);
  h.set_duty("a", "Z1", false);
  CHECK(h.book.duty().in_zone("Z1") == std::set<std::string>{"b"});
  CHECK_FALSE(h.book.duty().on_duty("a"));
  h.set_duty("b", "Z2", true);
  CHECK(h.book.duty().in_zone("Z1").empty());
  CHECK(h.book.duty().in_zone("Z2") == std::set<std::string>{"b"});
  CHECK(h.timeline.back().incident_id() == 0);
}

TEST_CASE("dedup: a report with an open incident's dedup_key in the same zone attaches to it") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  v1::Report r;
  r.set_zone_id("Z1");
  r.set_category("noise");
  r.set_dedup_key("C3-building-2-noise");
  auto first = h.run(as("resident-1", v1::REPORTER), command::report(r));
  REQUIRE(first.ok());
  const auto id = first.events.front().incident_id();

  r.set_description("still loud");
  auto second = h.run(as("resident-2", v1::REPORTER), command::report(r));
  REQUIRE(second.ok());
  REQUIRE(second.events.size() == 1);
  CHECK(second.events[0].has_attached());
  CHECK(second.events[0].incident_id() == id);
  CHECK(h.incident(id).attached_reports == 1);
  CHECK(h.book.next_incident_id() == id + 1);

  r.set_zone_id("Z2");  // another zone: a new incident
  auto elsewhere = h.run(as("resident-3", v1::REPORTER), command::report(r));
  CHECK(elsewhere.events.front().has_reported());

  r.set_zone_id("Z1");
  REQUIRE(h.advance(id, v1::RESOLVED).ok());  // closed: the key is free again
  auto after = h.run(as("resident-4", v1::REPORTER), command::report(r));
  CHECK(after.events.front().has_reported());
  CHECK(after.events.front().incident_id() != id);
}
