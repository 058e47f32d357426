#include <catch2/catch.hpp>

#include "book_harness.hpp"
#include "sla/replay.hpp"

using namespace zonecall;
using sla::kMinute;
using testing::BookHarness;

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

sla::Replayer replay(const BookHarness& h, const std::vector<v1::TimelineEvent>& timeline) {
  sla::Replayer r([&](std::uint32_t v) { return v == 1 ? &h.policy : nullptr; });
  for (const auto& e : timeline) {
    r.feed(e);
  }
  r.finish();
  return r;
}
}  // namespace

TEST_CASE("replaying a recorded timeline reproduces every event and the state") {
  auto h = recorded_day();
  REQUIRE(h.timeline.size() > 10);
  auto r = replay(h, h.timeline);
  for (const auto& d : r.discrepancies()) {
    UNSCOPED_INFO(d.seq << ": " << d.what);
  }
  CHECK(r.discrepancies().empty());
  CHECK(r.events_checked() == h.timeline.size());
  CHECK(r.book().incidents() == h.book.incidents());
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
    CHECK(r.discrepancies().front().what.find("missing breach") != std::string::npos);
    CHECK(r.discrepancies().front().seq == seq);
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
