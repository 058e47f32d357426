// The audit's figures on small hand-built timelines with known answers.
#include <catch2/catch.hpp>

#include <thread>

#include "engine/report/assessment.hpp"
#include "sla/book_harness.hpp"

using namespace zonecall;
using sla::kMinute;
using sla::Millis;
using testing::BookHarness;
using testing::as;
using testing::commander;
using testing::department;
namespace command = testing::command;

namespace {
constexpr Millis T0 = BookHarness::kStart;

report::AssessmentTopology topology() {
  report::AssessmentTopology t;
  t.zones = {{"Z0", 10}, {"Z1", 4}, {"Z2", 0}};
  t.dispute_categories = {"noise"};
  t.weights = report::AssessmentTopology::default_weights();
  return t;
}

// Three incidents in Z1 (see the test below for the story).
struct Day {
  BookHarness h;
  std::uint64_t a = 0, b = 0, c = 0;
  Day() {
    h.set_duty("z1-grid-1", "Z1", true);
    a = h.report("noise").events[0].incident_id();
    b = h.report("noise").events[0].incident_id();
    c = h.report("fire").events[0].incident_id();
    at(30'000);
    h.advance(a, v1::DISCOVERED);
    at(90'000);
    h.advance(b, v1::DISCOVERED);
    at(2 * kMinute);
    h.advance(a, v1::RESPONDING);
    at(10 * kMinute);
    h.run(commander("z1-grid-1"), command::advance(a, v1::RESOLVED, "mediated", v1::SETTLED));
    h.run(commander("resident"), command::feedback(a, true, 5));
    at(20 * kMinute);
    h.run(commander("z1-grid-2"), command::advance(b, v1::RESOLVED, "no agreement", v1::UNSETTLED));
    h.run(commander("resident"), command::feedback(b, false, 2));
    for (const char* household : {"h1", "h2", "h1"}) {
      h.run(commander("z1-grid-1"), command::visit("Z1", household));
    }
    at(25 * kMinute);
  }
  void at(Millis offset) {
    h.clock.set(T0 + offset);
    h.tick();
  }
  v1::AuditReport report(report::AuditFilter filter = {}) const {
    report::Assessment assessment(topology(), filter);
    for (const auto& e : h.timeline) {
      assessment.observe(e);
    }
    return assessment.report(h.book.incidents(), h.clock.now());
  }
};

const v1::ScopeFigures& scope(const google::protobuf::RepeatedPtrField<v1::ScopeFigures>& all,
                              const std::string& id) {
  for (const auto& s : all) {
    if (s.id() == id) {
      return s;
    }
  }
  FAIL("no scope " << id);
  return all.Get(0);
}
}  // namespace

TEST_CASE("assessment: nearest-rank percentiles at their edges, of values in any order") {
  auto pct = [](std::vector<Millis> values, double p) { return report::percentile(values, p); };
  CHECK(pct({}, 50) == 0);
  CHECK(pct({5}, 50) == 5);
  CHECK(pct({5}, 99) == 5);
  CHECK(pct({2, 1}, 50) == 1);
  CHECK(pct({2, 1}, 51) == 2);
  const std::vector<Millis> ten{7, 3, 10, 1, 9, 5, 2, 8, 6, 4};
  CHECK(pct(ten, 50) == 5);
  CHECK(pct(ten, 90) == 9);
  CHECK(pct(ten, 99) == 10);
  CHECK(pct(ten, 0) == 1);
  CHECK(pct(ten, 100) == 10);
  // One vector asked for several percentiles in turn, as a report does.
  std::vector<Millis> hundred(100);
  for (int i = 0; i < 100; ++i) {
    hundred[i] = (i * 37) % 100 + 1;  // 1..100, shuffled
  }
  CHECK(report::percentile(hundred, 50) == 50);
  CHECK(report::percentile(hundred, 99) == 99);
  CHECK(report::percentile(hundred, 90) == 90);
  CHECK(report::percentile(hundred, 1) == 1);
}

TEST_CASE("assessment: every figure of a known day") {
  Day day;
  const auto report = day.report();
  const auto& z1 = scope(report.zones(), "Z1");
  CHECK(z1.incidents() == 3);

  // DISCOVER: a on time (30 s), b late (90 s), c never met.
  const auto& discover = z1.stages(0);
  CHECK(discover.stage() == v1::DISCOVER);
  CHECK(discover.decided() == 3);
  CHECK(discover.met_on_time() == 1);
  CHECK(discover.met_late() == 1);
  CHECK(discover.breached_unmet() == 1);
  CHECK(discover.compliance() == Approx(1.0 / 3));
  CHECK(discover.measured() == 2);
  CHECK(discover.p50_ms() == 30'000);
  CHECK(discover.p90_ms() == 90'000);
  CHECK(discover.p99_ms() == 90'000);
  REQUIRE(discover.worst_size() == 3);
  CHECK(discover.worst(0).incident_id() == day.c);  // unmet after 25 minutes
  CHECK(discover.worst(0).unmet());
  CHECK(discover.worst(0).stage_ms() == 25 * kMinute);
  CHECK(discover.worst(1).incident_id() == day.b);
  CHECK(discover.worst(1).stage_ms() == 90'000);

  // RESPOND: a on time (2 min), b late (met by its resolution at 20 min).
  CHECK(z1.stages(1).met_on_time() == 1);
  CHECK(z1.stages(1).met_late() == 1);
  CHECK(z1.stages(1).p90_ms() == 20 * kMinute);
  // RESOLVE: noise may take 30 minutes, so b is on time; c (fire, 15) is not.
  CHECK(z1.stages(2).met_on_time() == 2);
  CHECK(z1.stages(2).compliance() == Approx(2.0 / 3));

  CHECK(z1.resolved() == 2);
  CHECK(z1.completion_rate() == Approx(2.0 / 3));
  CHECK(z1.feedback() == 2);
  CHECK(z1.satisfied() == 1);
  CHECK(z1.satisfaction_rate() == Approx(0.5));
  CHECK(z1.has_mediation());
  CHECK(z1.disputes_resolved() == 2);
  CHECK(z1.disputes_settled() == 1);
  CHECK(z1.mediation_rate() == Approx(0.5));
  CHECK(z1.households() == 4);
  CHECK(z1.households_visited() == 2);  // h1 twice counts once
  CHECK(z1.visit_coverage() == Approx(0.5));

  bool counted_categories = false;
  for (const auto& c : z1.by_category()) {
    if (c.key() == "noise") {
      counted_categories = c.count() == 2;
    }
  }
  CHECK(counted_categories);
  std::map<std::string, std::uint64_t> rungs;
  for (const auto& e : z1.escalations()) {
    rungs[e.key()] = e.count();
  }
  CHECK(rungs["AT_REPORT"] == 3);
  CHECK(rungs["CRITICAL_AT_REPORT"] == 1);
  CHECK(rungs["DISCOVER_MISSED"] == 2);  // b and c
  CHECK(rungs["RESOLVE_MISSED"] == 1);   // c

  // The community is the sum; the zone without incidents is all zeros.
  CHECK(report.community().incidents() == 3);
  CHECK(report.community().households() == 14);
  const auto& z2 = scope(report.zones(), "Z2");
  CHECK(z2.incidents() == 0);
  CHECK(z2.stages(0).decided() == 0);
  CHECK_FALSE(z2.stages(0).has_compliance());  // nothing decided: no figure, not 0
  CHECK_FALSE(z2.stages(0).has_p90_ms());
  CHECK_FALSE(z2.has_completion_rate());
  CHECK_FALSE(z2.has_visits());
  CHECK_FALSE(z2.has_visit_coverage());  // no households configured
  CHECK_FALSE(z2.has_satisfaction());
}

TEST_CASE("assessment: staff are measured by the stages they met") {
  Day day;
  const auto report = day.report();
  const auto& grid1 = scope(report.staff(), "z1-grid-1");
  CHECK(grid1.stages(0).decided() == 2);  // discovered a and b
  CHECK(grid1.stages(0).met_on_time() == 1);
  CHECK(grid1.stages(2).decided() == 1);  // resolved a
  CHECK(grid1.households_visited() == 3);
  const auto& grid2 = scope(report.staff(), "z1-grid-2");
  CHECK(grid2.stages(0).decided() == 0);
  CHECK(grid2.stages(2).met_on_time() == 1);  // resolved b in time
}

TEST_CASE("assessment: the two-level scores and the ranking of zones") {
  Day day;
  const auto report = day.report();
  REQUIRE(report.ranking_size() == 3);
  const auto& first = report.ranking(0);
  CHECK(first.zone_id() == "Z1");
  CHECK(first.rank() == 1);
  // Level one: 0.7 x mean stage compliance (1/3, 1/3, 2/3) + 0.3 x visits (1/2).
  const double one = 0.7 * (4.0 / 9) + 0.3 * 0.5;
  // Level two: 0.3 x mediation (1/2) + 0.4 x completion (2/3) + 0.3 x satisfaction (1/2).
  const double two = 0.3 * 0.5 + 0.4 * (2.0 / 3) + 0.3 * 0.5;
  CHECK(first.level_one() == Approx(100 * one));
  CHECK(first.level_two() == Approx(100 * two));
  CHECK(first.total() == Approx(100 * (one + two) / 2));
  // No incidents in the period: not ranked, and no scores, rather than 0
  // and level with a zone that missed everything; after the ranked, by id.
  CHECK(report.ranking(1).zone_id() == "Z0");
  CHECK(report.ranking(1).rank() == 0);
  CHECK_FALSE(report.ranking(1).has_total());
  CHECK_FALSE(report.ranking(1).has_level_one());
  CHECK(report.ranking(2).zone_id() == "Z2");
  CHECK(report.ranking(2).rank() == 0);
}

TEST_CASE("assessment: weights from config change the ranking") {
  auto t = topology();
  t.weights.set_level_one_share(1.0);   // speed and visits only
  t.weights.set_visit_coverage(0.0);
  Day day;
  report::Assessment assessment(t, {});
  for (const auto& e : day.h.timeline) {
    assessment.observe(e);
  }
  const auto report = assessment.report(day.h.book.incidents(), day.h.clock.now());
  CHECK(report.ranking(0).total() == Approx(100 * 4.0 / 9));
}

TEST_CASE("assessment: an empty period and filters") {
  Day day;
  report::AuditFilter later;
  later.from = T0 + 60 * kMinute;
  auto empty = day.report(later);
  CHECK(empty.community().incidents() == 0);
  CHECK_FALSE(empty.community().has_completion_rate());
  CHECK(empty.zones_size() == 3);
  CHECK(empty.community().households_visited() == 0);  // the visits were before

  report::AuditFilter fire;
  fire.category = "fire";
  CHECK(day.report(fire).community().incidents() == 1);
  report::AuditFilter zone;
  zone.zone_id = "Z0";
  CHECK(day.report(zone).community().incidents() == 0);
  report::AuditFilter until;
  until.to = T0;  // [.., T0): the reports at T0 are outside
  CHECK(day.report(until).community().incidents() == 0);
  CHECK(day.report(fire).filters() == "category=fire");
}

TEST_CASE("assessment: department timeliness from the zone calls") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  const auto on_time = h.report("noise").events[0].incident_id();
  const auto late = h.report("noise").events[0].incident_id();
  const auto declined = h.report("noise").events[0].incident_id();
  for (auto id : {on_time, late, declined}) {
    REQUIRE(h.call(id, "urban").ok());
  }
  h.clock.advance(kMinute);
  h.run(department("urban"), command::accept(on_time));
  h.run(department("urban"), command::decline(declined, "not ours"));
  h.clock.advance(10 * kMinute);
  h.tick();  // late misses its acceptance limit
  h.run(department("urban"), command::accept(late));
  h.run(department("urban"), command::on_site(on_time));

  report::Assessment assessment(topology(), {});
  for (const auto& e : h.timeline) {
    assessment.observe(e);
  }
  const auto report = assessment.report(h.book.incidents(), h.clock.now());
  const auto& urban = scope(report.departments(), "urban");
  const auto& d = urban.department();
  CHECK(d.calls() == 3);
  CHECK(d.accepted() == 2);
  CHECK(d.accepted_on_time() == 1);
  CHECK(d.accept_p50_ms() == kMinute);
  CHECK(d.accept_p90_ms() == 11 * kMinute);
  CHECK(d.on_site() == 1);
  CHECK(d.on_site_on_time() == 1);
  CHECK(d.on_site_p50_ms() == 10 * kMinute);
  CHECK(d.declined() == 1);
  CHECK(d.breaches() == 1);
}

TEST_CASE("assessment: severities, the daily trend and the stage-time histogram of a known day") {
  Day day;
  const auto report = day.report();
  std::map<std::string, std::uint64_t> severities;
  for (const auto& c : scope(report.zones(), "Z1").by_severity()) {
    severities[c.key()] = c.count();
  }
  CHECK(severities["LOW"] == 2);       // the two noise reports
  CHECK(severities["CRITICAL"] == 1);  // the fire
  // All three were reported on one day (UTC+8).
  REQUIRE(report.daily_size() == 1);
  CHECK(report.daily(0).incidents() == 3);
  REQUIRE(report.daily(0).compliance_size() == 3);
  CHECK(report.daily(0).compliance(0) == Approx(1.0 / 3));
  CHECK(report.daily(0).compliance(2) == Approx(2.0 / 3));
  // DISCOVER times 30 s and 90 s fall in the buckets "<= 30 s" and "<= 2 min".
  REQUIRE(report.stage_time_histogram_bounds_ms_size() == 8);
  CHECK(report.stage_time_histogram_bounds_ms(0) == 30'000);
  const auto& discover = report.histograms(0);
  CHECK(discover.stage() == v1::DISCOVER);
  REQUIRE(discover.counts_size() == 9);
  CHECK(discover.counts(0) == 1);
  CHECK(discover.counts(1) == 0);
  CHECK(discover.counts(2) == 1);
}

TEST_CASE("assessment: the daily figures count the site's days, across a daylight-saving change") {
  // Europe/London's offsets around 2026-03-29 01:00 UTC, when BST begins.
  constexpr Millis kBst = 1774746000000;  // 2026-03-29T01:00:00Z
  auto t = topology();
  t.offsets = sla::UtcOffsets({{std::numeric_limits<Millis>::min(), 0}, {kBst, 60 * kMinute}});
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  for (Millis at : {kBst - 90 * kMinute,    // 23:30 GMT on the 28th
                    kBst + 22 * 60 * kMinute + 30 * kMinute}) {  // 23:30 UTC, 00:30 BST on the 30th
    h.clock.set(at);
    h.tick();
    h.report("noise");
  }
  report::Assessment assessment(t, {});
  for (const auto& e : h.timeline) {
    assessment.observe(e);
  }
  const auto report = assessment.report(h.book.incidents(), h.clock.now());
  REQUIRE(report.daily_size() == 2);
  CHECK(report.daily(0).day() == "2026-03-28");
  CHECK(report.daily(1).day() == "2026-03-30");
}

TEST_CASE("assessment: the two counting passes give the same report in either order and on two threads") {
  Day day;
  REQUIRE(day.h.call(day.c, "urban").ok());  // a department's figures too
  day.at(30 * kMinute);
  report::Assessment assessment(topology(), {});
  for (const auto& e : day.h.timeline) {
    assessment.observe(e);
  }
  const auto& incidents = day.h.book.incidents();
  const Millis now = day.h.clock.now();
  const auto expected = assessment.report(incidents, now);
  REQUIRE(expected.departments_size() == 1);
  REQUIRE(expected.staff_size() >= 2);
  REQUIRE(expected.daily_size() == 1);

  auto people_first = assessment.tally(incidents, now);
  people_first.count_people();
  people_first.count_places();
  CHECK(people_first.finish().SerializeAsString() == expected.SerializeAsString());

  auto concurrent = assessment.tally(incidents, now);
  std::thread people([&concurrent] { concurrent.count_people(); });
  concurrent.count_places();
  people.join();
  CHECK(concurrent.finish().SerializeAsString() == expected.SerializeAsString());
}
