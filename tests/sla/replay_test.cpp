#include <catch2/catch.hpp>

#include "book_harness.hpp"
#include "sla/replay.hpp"

#include <algorithm>

using namespace zonecall;
using sla::kMinute;
using testing::BookHarness;
using testing::as;
using testing::commander;
using testing::department;
namespace command = testing::command;

namespace {
// A day in a zone: reports, skips, late stages, breaches, a restart gap.
BookHarness recorded_day() {
  BookHarness h;
  auto a = h.report("fire").events[0].incident_id();
  h.clock.advance(20'000);
  auto b = h.report("noise").events[0].incident_id();
  h.advance(a, v1::DISCOVERED, "have it");
  h.clock.advance(2 * kMinute);  // b's discover breaches at the next tick
  h.advance(a, v1::RESPONDING);
  h.advance(b, v1::RESOLVED, "mediated");
  auto c = h.report("noise", v1::MAJOR).events[0].incident_id();
  h.clock.advance(25 * kMinute);  // "downtime": a and c breach late
  h.tick();
  h.advance(a, v1::RESOLVED);
  h.advance(c, v1::DISCOVERED);
  return h;
}

// Replays the timeline twice: every event parsed and fed (`zonecall
// replay`), and each first offered by its bytes alone, parsed only when the
// replay did not expect it (the audit). Both must find the same.
sla::Replayer replay(const BookHarness& h, const std::vector<v1::TimelineEvent>& timeline,
                     std::vector<std::uint64_t>* matched_by_bytes = nullptr) {
  sla::Replayer parsed(h.policies);
  sla::Replayer by_bytes(h.policies);
  std::vector<std::uint64_t> matched;
  for (const auto& e : timeline) {
    parsed.feed(e);
    const std::string bytes = e.SerializeAsString();
    if (const auto* fed = by_bytes.feed_if_expected(e.seq(), bytes)) {
      CHECK(fed->SerializeAsString() == bytes);
      matched.push_back(e.seq());
    } else {
      by_bytes.feed(e, bytes);
    }
  }
  parsed.finish();
  by_bytes.finish();
  REQUIRE(by_bytes.discrepancies().size() == parsed.discrepancies().size());
  for (std::size_t i = 0; i < parsed.discrepancies().size(); ++i) {
    CHECK(by_bytes.discrepancies()[i].seq == parsed.discrepancies()[i].seq);
    CHECK(by_bytes.discrepancies()[i].what == parsed.discrepancies()[i].what);
  }
  CHECK(by_bytes.events_checked() == parsed.events_checked());
  CHECK(by_bytes.book().incidents() == parsed.book().incidents());
  CHECK(by_bytes.book().next_seq() == parsed.book().next_seq());
  if (matched_by_bytes != nullptr) {
    *matched_by_bytes = matched;
  }
  return parsed;
}
}  // namespace

TEST_CASE("replaying a recorded timeline reproduces every event and the state") {
  auto h = recorded_day();
  REQUIRE(h.timeline.size() > 10);
  std::vector<std::uint64_t> matched_by_bytes;
  auto r = replay(h, h.timeline, &matched_by_bytes);
  // Bytes alone match what a command or a tick dictated after the event that
  // starts it (each report's escalation), never that first event.
  auto matched = [&](std::uint64_t seq) {
    return std::find(matched_by_bytes.begin(), matched_by_bytes.end(), seq) !=
           matched_by_bytes.end();
  };
  std::size_t at_report = 0;
  for (std::size_t i = 0; i < h.timeline.size(); ++i) {
    const auto& e = h.timeline[i];
    INFO(e.ShortDebugString());
    if (e.has_reported() || e.has_advanced()) {
      CHECK_FALSE(matched(e.seq()));
    }
    if (e.has_escalated() && e.escalated().rung() == v1::AT_REPORT) {
      ++at_report;
      CHECK(h.timeline[i - 1].has_reported());
      CHECK(matched(e.seq()));
    }
  }
  CHECK(at_report == 3);
  for (const auto& d : r.discrepancies()) {
    UNSCOPED_INFO(d.seq << ": " << d.what);
  }
  CHECK(r.discrepancies().empty());
  CHECK(r.events_checked() == h.timeline.size());
  CHECK(r.book().incidents() == h.book.incidents());
}

TEST_CASE("replay reproduces the ladder, duty, dedup and the zone-call channel") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  h.set_duty("z0-grid-1", "Z0", true);
  auto fire = h.report("fire").events[0].incident_id();  // CRITICAL: mutual aid at once
  v1::Report dup;
  dup.set_zone_id("Z1");
  dup.set_category("noise");
  dup.set_dedup_key("k");
  auto noise = h.run(as("resident", v1::REPORTER), command::report(dup)).events[0].incident_id();
  h.run(as("resident", v1::REPORTER), command::report(dup));  // attaches
  auto permit = h.report("illegal_construction").events[0].incident_id();  // automatic call
  h.clock.advance(50'000);  // near-deadline warnings
  h.tick();
  h.advance(fire, v1::DISCOVERED);
  h.run(department("urban"), command::accept(permit));
  h.call(noise, "urban");
  h.clock.advance(6 * kMinute);  // misses: stages and the noise call's acceptance
  h.tick();
  h.run(department("urban"), command::decline(noise, "wrong department"));
  h.set_duty("z1-grid-1", "Z1", false);
  h.clock.advance(30 * kMinute);  // everything else falls due
  h.tick();
  h.advance(fire, v1::RESOLVED);

  auto rungs = BookHarness::rungs(h.timeline);
  for (auto rung : {v1::AT_REPORT, v1::CRITICAL_AT_REPORT, v1::NEAR_DEADLINE, v1::DISCOVER_MISSED,
                    v1::RESPOND_MISSED, v1::RESOLVE_MISSED, v1::DEPARTMENT_MISSED,
                    v1::CALL_DECLINED}) {
    INFO(v1::Rung_Name(rung));
    CHECK(std::count(rungs.begin(), rungs.end(), rung) >= 1);
  }
  auto r = replay(h, h.timeline);
  for (const auto& d : r.discrepancies()) {
    UNSCOPED_INFO(d.seq << ": " << d.what);
  }
  CHECK(r.discrepancies().empty());
  CHECK(r.book().incidents() == h.book.incidents());
  CHECK(r.book().duty() == h.book.duty());

  SECTION("a forged escalation is named") {
    auto forged_timeline = h.timeline;
    v1::TimelineEvent forged;
    forged.set_seq(forged_timeline.back().seq() + 1);
    forged.set_incident_id(noise);
    forged.set_at_ms(forged_timeline.back().at_ms());
    forged.set_actor_id("engine");
    forged.mutable_escalated()->set_rung(v1::RESOLVE_MISSED);
    forged_timeline.push_back(forged);
    auto bad = replay(h, forged_timeline);
    REQUIRE(bad.discrepancies().size() == 1);
    CHECK(bad.discrepancies()[0].seq == forged.seq());
  }
  SECTION("a deleted escalation is named") {
    auto cut = h.timeline;
    auto it = std::find_if(cut.begin(), cut.end(), [](auto& e) {
      return e.has_escalated() && e.escalated().rung() == v1::RESPOND_MISSED;
    });
    const auto seq = it->seq();
    cut.erase(it);
    auto bad = replay(h, cut);
    REQUIRE_FALSE(bad.discrepancies().empty());
    // Named where the timeline diverges: the dictated event is the deleted one.
    const auto& first = bad.discrepancies().front();
    CHECK(first.seq >= seq);
    CHECK(first.what.find("RESPOND_MISSED") != std::string::npos);
    CHECK(first.what.find("seq: " + std::to_string(seq)) != std::string::npos);
  }
}

TEST_CASE("replay names tampering") {
  auto h = recorded_day();
  auto timeline = h.timeline;

  SECTION("a deleted breach") {
    auto it = std::find_if(timeline.begin(), timeline.end(),
                           [](const auto& e) { return e.has_breached(); });
    const auto seq = it->seq();
    timeline.erase(it);
    auto r = replay(h, timeline);
    REQUIRE_FALSE(r.discrepancies().empty());
    CHECK(r.discrepancies().front().what.find("missing") != std::string::npos);
    CHECK(r.discrepancies().front().seq == seq);
    // Named once, not again before every later command.
    CHECK(std::count_if(r.discrepancies().begin(), r.discrepancies().end(),
                        [&](const auto& d) { return d.seq == seq; }) == 1);
  }
  SECTION("a deleted command shifts every later seq") {
    timeline.erase(timeline.begin() + 2);
    auto r = replay(h, timeline);
    REQUIRE_FALSE(r.discrepancies().empty());
    CHECK(r.discrepancies().front().seq == h.timeline[3].seq());
  }
  SECTION("a changed timestamp") {
    timeline[0].set_at_ms(timeline[0].at_ms() - 60'000);
    auto r = replay(h, timeline);
    REQUIRE_FALSE(r.discrepancies().empty());
    CHECK(r.discrepancies().front().seq == timeline[0].seq());
  }
  SECTION("a forged breach") {
    v1::TimelineEvent forged = timeline[1];
    forged.Clear();
    forged.set_seq(timeline.back().seq() + 1);
    forged.set_incident_id(timeline.back().incident_id());
    forged.set_at_ms(timeline.back().at_ms());
    forged.set_actor_id("engine");
    forged.mutable_breached()->set_stage(v1::RESOLVE);
    forged.mutable_breached()->set_deadline_ms(timeline.back().at_ms());
    timeline.push_back(forged);
    auto r = replay(h, timeline);
    REQUIRE(r.discrepancies().size() == 1);
    CHECK(r.discrepancies()[0].seq == forged.seq());
    CHECK(r.discrepancies()[0].what.find("not dictated") != std::string::npos);
  }
  SECTION("an unknown policy version") {
    timeline[0].mutable_reported()->set_policy_version(7);
    auto r = replay(h, timeline);
    REQUIRE_FALSE(r.discrepancies().empty());
    CHECK(r.discrepancies()[0].what.find("policy version") != std::string::npos);
  }
}

TEST_CASE("replay re-checks every step's permission from the rights recorded on it") {
  BookHarness h;
  const auto a = h.report("noise").events[0].incident_id();  // in Z1, no mutual aid
  const auto grid = as("z1-grid-1", v1::GRID_WORKER, "Z1");
  REQUIRE(h.run(grid, command::advance(a, v1::DISCOVERED, "have it")).ok());
  REQUIRE(h.run(grid, command::advance(a, v1::RESOLVED, "done")).ok());
  auto timeline = h.timeline;
  auto discover = std::find_if(timeline.begin(), timeline.end(),
                               [](const auto& e) { return e.has_advanced(); });
  REQUIRE(discover != timeline.end());
  CHECK(discover->actor_role() == v1::GRID_WORKER);
  CHECK(discover->actor_zone_id() == "Z1");
  CHECK(replay(h, timeline).discrepancies().empty());

  SECTION("a step re-credited to someone of another zone") {
    discover->set_actor_id("z2-grid-1");
    discover->set_actor_zone_id("Z2");
    auto r = replay(h, timeline);
    REQUIRE(r.discrepancies().size() == 1);
    CHECK(r.discrepancies()[0].seq == discover->seq());
    CHECK(r.discrepancies()[0].what ==
          "recorded command is not allowed by the state machine: GRID_WORKER z2-grid-1 may not act "
          "on incident " + std::to_string(a) + " in zone Z1");
  }
  SECTION("a step whose actor has a role that may not do it") {
    discover->set_actor_role(v1::AUDITOR);
    auto r = replay(h, timeline);
    REQUIRE(r.discrepancies().size() == 1);
    CHECK(r.discrepancies()[0].what.find("AUDITOR z1-grid-1 may not act") != std::string::npos);
  }
  SECTION("a step whose rights were stripped, in a timeline that records them") {
    discover->clear_actor_role();
    discover->clear_actor_zone_id();
    auto r = replay(h, timeline);
    REQUIRE(r.discrepancies().size() == 1);
    CHECK(r.discrepancies()[0].what.find("command without the actor's rights") != std::string::npos);
  }
  SECTION("a timeline from before rights were recorded replays as it was decided") {
    for (auto& e : timeline) {
      e.clear_actor_role();
      e.clear_actor_zone_id();
      e.clear_actor_department_id();
    }
    CHECK(replay(h, timeline).discrepancies().empty());
  }
}

TEST_CASE("replay and the fold refuse malformed events instead of crashing") {
  auto h = recorded_day();
  std::vector<v1::TimelineEvent> forged;
  auto stage = h.timeline[0];
  stage.Clear();
  stage.set_seq(h.timeline.back().seq() + 1);
  stage.set_incident_id(h.timeline[0].incident_id());
  stage.mutable_breached()->set_stage(static_cast<v1::Stage>(200000000));
  forged.push_back(stage);
  auto zero = stage;
  zero.mutable_breached()->set_stage(v1::STAGE_UNSPECIFIED);
  forged.push_back(zero);
  auto state = stage;
  state.mutable_advanced()->set_to(static_cast<v1::IncidentState>(99));
  forged.push_back(state);
  auto big_id = stage;
  big_id.set_incident_id(std::uint64_t{1} << 62);
  big_id.mutable_breached()->set_stage(v1::DISCOVER);
  forged.push_back(big_id);
  auto nothing = stage;
  nothing.clear_breached();
  forged.push_back(nothing);

  for (const auto& bad : forged) {
    INFO(bad.ShortDebugString());
    CHECK(sla::malformed(bad));
    auto book_before = h.book.incidents();
    CHECK_FALSE(h.book.apply(bad));
    CHECK(h.book.incidents() == book_before);
    auto timeline = h.timeline;
    timeline.push_back(bad);
    auto r = replay(h, timeline);
    REQUIRE(r.discrepancies().size() == 1);
    CHECK(r.discrepancies()[0].what.find("malformed") != std::string::npos);
  }
  for (const auto& good : h.timeline) {
    CHECK_FALSE(sla::malformed(good));
  }
}
