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
std::uint64_t reported_id(const sla::Decision& d) {
  REQUIRE(d.ok());
  REQUIRE_FALSE(d.events.empty());
  REQUIRE(d.events.front().has_reported());
  return d.events.front().incident_id();
}
}  // namespace

TEST_CASE("a report starts all three clocks at the alarm time, 1/5/15 by default") {
  BookHarness h;
  auto id = reported_id(h.report("fire"));
  const auto& inc = h.incident(id);
  CHECK(inc.state == v1::REPORTED);
  CHECK(inc.reported_at == BookHarness::kStart);
  CHECK(inc.severity == v1::CRITICAL);  // the category's default
  CHECK(inc.stage(v1::DISCOVER).deadline == BookHarness::kStart + 1 * kMinute);
  CHECK(inc.stage(v1::RESPOND).deadline == BookHarness::kStart + 5 * kMinute);
  CHECK(inc.stage(v1::RESOLVE).deadline == BookHarness::kStart + 15 * kMinute);
  CHECK(h.book.deadlines().size() == 6);  // three breaches, three warnings
}

TEST_CASE("the reporter's claimed time is stored but never drives a deadline") {
  BookHarness h;
  v1::Report r;
  r.set_zone_id("Z1");
  r.set_category("fire");
  r.set_occurred_at_ms(BookHarness::kStart - 10 * kMinute);
  auto d = h.run(commander(), command::report(r));
  REQUIRE(d.ok());
  CHECK(d.events[0].reported().claimed_occurred_at_ms() == BookHarness::kStart - 10 * kMinute);
  CHECK(d.events[0].reported().discover_deadline_ms() == BookHarness::kStart + kMinute);
}

TEST_CASE("every forward transition in turn") {
  BookHarness h;
  auto id = reported_id(h.report("fire"));
  h.clock.advance(30'000);
  auto d = h.advance(id, v1::DISCOVERED, "I have it");
  REQUIRE(d.ok());
  CHECK(h.incident(id).state == v1::DISCOVERED);
  CHECK(h.incident(id).stage(v1::DISCOVER).met_at == BookHarness::kStart + 30'000);
  h.clock.advance(60'000);
  REQUIRE(h.advance(id, v1::RESPONDING).ok());
  CHECK(h.incident(id).state == v1::RESPONDING);
  CHECK(h.incident(id).stage(v1::RESPOND).met_at == BookHarness::kStart + 90'000);
  h.clock.advance(60'000);
  REQUIRE(h.advance(id, v1::RESOLVED, "fire out").ok());
  CHECK(h.incident(id).state == v1::RESOLVED);
  CHECK_FALSE(h.incident(id).open());
  CHECK(h.incident(id).stage(v1::RESOLVE).met_at == BookHarness::kStart + 150'000);
  for (auto s : sla::kStages) {
    CHECK_FALSE(h.incident(id).stage(s).breached);
  }
  // Resolved: nothing left to fall due, even long after.
  h.clock.advance(60 * kMinute);
  CHECK(h.tick().empty());
}

TEST_CASE("a stage met exactly at its deadline is on time; 1 ms later it is late") {
  for (auto stage : sla::kStages) {
    const v1::IncidentState target = stage == v1::DISCOVER   ? v1::DISCOVERED
                                     : stage == v1::RESPOND ? v1::RESPONDING
                                                            : v1::RESOLVED;
    SECTION("on time: " + v1::Stage_Name(stage)) {
      BookHarness h;
      auto id = reported_id(h.report("fire"));
      h.clock.set(h.incident(id).stage(stage).deadline);
      auto d = h.advance(id, target);
      REQUIRE(d.ok());
      const auto& met = d.events[0].advanced().met();
      REQUIRE(met.size() > 0);
      CHECK(met.rbegin()->stage() == stage);
      CHECK(met.rbegin()->late_by_ms() == 0);
      CHECK_FALSE(h.incident(id).stage(stage).breached);
    }
    SECTION("1 ms late: " + v1::Stage_Name(stage)) {
      BookHarness h;
      auto id = reported_id(h.report("fire"));
      const auto deadline = h.incident(id).stage(stage).deadline;
      h.clock.set(deadline + 1);
      auto d = h.advance(id, target);
      REQUIRE(d.ok());
      const auto& met = d.events[0].advanced().met();
      REQUIRE(met.size() == static_cast<int>(stage));
      CHECK(met.rbegin()->stage() == stage);
      CHECK(met.rbegin()->late_by_ms() == 1);
      // The tick before the command recorded the breach, dated at the deadline.
      CHECK(h.incident(id).stage(stage).breached);
      bool found = false;
      for (const auto& e : h.timeline) {
        if (e.has_breached() && e.breached().stage() == stage) {
          found = true;
          CHECK(e.breached().deadline_ms() == deadline);
          CHECK(e.at_ms() == deadline + 1);
          CHECK(e.actor_id() == "engine");
        }
      }
      CHECK(found);
    }
  }
}

TEST_CASE("an unmet deadline breaches once, dated at the deadline, fired when noticed") {
  BookHarness h;
  auto id = reported_id(h.report("fire"));
  h.clock.set(h.incident(id).stage(v1::DISCOVER).deadline);
  CHECK(h.tick_breaches().empty());
  // The engine was down: it notices four minutes late.
  h.clock.advance(4 * kMinute);
  auto fired = h.tick_breaches();
  REQUIRE(fired.size() == 1);
  CHECK(fired[0].breached().stage() == v1::DISCOVER);
  CHECK(fired[0].breached().deadline_ms() == BookHarness::kStart + kMinute);
  CHECK(fired[0].at_ms() == BookHarness::kStart + 5 * kMinute);
  CHECK(h.tick_breaches().empty());  // once only
  h.clock.advance(20 * kMinute);
  auto later = h.tick_breaches();
  REQUIRE(later.size() == 2);  // respond, then resolve, in deadline order
  CHECK(later[0].breached().stage() == v1::RESPOND);
  CHECK(later[1].breached().stage() == v1::RESOLVE);
  CHECK(later[1].seq() > later[0].seq());
  CHECK(h.incident(id).stage(v1::RESOLVE).breached);
  // A breached stage can still be met, late, and records its lateness.
  auto d = h.advance(id, v1::RESOLVED);
  REQUIRE(d.ok());
  CHECK(d.events[0].advanced().met_size() == 3);
  CHECK(d.events[0].advanced().met(2).late_by_ms() == 10 * kMinute);
}

TEST_CASE("a step may be skipped forward, meeting every stage it passes") {
  BookHarness h;
  auto id = reported_id(h.report("fire"));
  h.clock.advance(10'000);
  auto d = h.advance(id, v1::RESPONDING, "patrol already on site");
  REQUIRE(d.ok());
  const auto& met = d.events[0].advanced().met();
  REQUIRE(met.size() == 2);
  CHECK(met[0].stage() == v1::DISCOVER);
  CHECK(met[1].stage() == v1::RESPOND);
  CHECK(h.incident(id).stage(v1::DISCOVER).met_at == BookHarness::kStart + 10'000);
  CHECK(h.incident(id).stage(v1::RESPOND).met_at == BookHarness::kStart + 10'000);
  CHECK_FALSE(h.incident(id).stage(v1::RESOLVE).met());

  auto id2 = reported_id(h.report("fire"));
  auto d2 = h.advance(id2, v1::RESOLVED);
  REQUIRE(d2.ok());
  CHECK(d2.events[0].advanced().met_size() == 3);
}

TEST_CASE("illegal transitions are typed errors and produce no events") {
  BookHarness h;
  auto id = reported_id(h.report("fire"));
  REQUIRE(h.advance(id, v1::RESPONDING).ok());
  const auto before = h.timeline.size();
  const auto seq_before = h.book.next_seq();

  auto back = h.advance(id, v1::DISCOVERED);
  REQUIRE_FALSE(back.ok());
  CHECK(back.error->code == v1::INVALID_TRANSITION);
  CHECK(back.events.empty());

  auto repeat = h.advance(id, v1::RESPONDING);
  REQUIRE_FALSE(repeat.ok());
  CHECK(repeat.error->code == v1::INVALID_TRANSITION);

  auto missing = h.advance(id + 100, v1::DISCOVERED);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error->code == v1::NOT_FOUND);

  REQUIRE(h.advance(id, v1::RESOLVED).ok());
  auto after_resolve = h.advance(id, v1::RESOLVED);
  CHECK(after_resolve.error->code == v1::INVALID_TRANSITION);

  CHECK(h.timeline.size() == before + 1);
  CHECK(h.book.next_seq() == seq_before + 1);
  CHECK(h.incident(id).state == v1::RESOLVED);
}

TEST_CASE("budgets come from the category and the severity") {
  BookHarness h;
  SECTION("category override of one stage, the others inherit") {
    auto id = reported_id(h.report("noise"));
    const auto& inc = h.incident(id);
    CHECK(inc.severity == v1::LOW);
    CHECK(inc.stage(v1::DISCOVER).deadline == BookHarness::kStart + 1 * kMinute);
    CHECK(inc.stage(v1::RESPOND).deadline == BookHarness::kStart + 5 * kMinute);
    CHECK(inc.stage(v1::RESOLVE).deadline == BookHarness::kStart + 30 * kMinute);
  }
  SECTION("severity override on top of the category") {
    auto id = reported_id(h.report("noise", v1::MAJOR));
    const auto& inc = h.incident(id);
    CHECK(inc.severity == v1::MAJOR);
    CHECK(inc.stage(v1::DISCOVER).deadline == BookHarness::kStart + 30'000);
    CHECK(inc.stage(v1::RESOLVE).deadline == BookHarness::kStart + 30 * kMinute);
  }
  SECTION("a policy default changes every category that does not override") {
    auto config = testing::two_category_config();
    config.mutable_policy()->mutable_default_budgets()->set_discover_ms(2 * kMinute);
    BookHarness h2(config);
    auto id = reported_id(h2.report("fire"));
    CHECK(h2.incident(id).stage(v1::DISCOVER).deadline == BookHarness::kStart + 2 * kMinute);
    CHECK(h2.incident(id).stage(v1::RESPOND).deadline == BookHarness::kStart + 5 * kMinute);
  }
  SECTION("the policy version is recorded with the incident") {
    auto d = h.report("fire");
    CHECK(d.events[0].reported().policy_version() == 1);
  }
}

TEST_CASE("unknown categories and severities are refused") {
  BookHarness h;
  auto d = h.report("alien-invasion");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error->code == v1::NOT_FOUND);
  auto bad = h.report("fire", static_cast<v1::Severity>(99));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error->code == v1::BAD_REQUEST);
  CHECK(h.timeline.empty());
}

TEST_CASE("seq and incident ids are gap-free and the fold matches the live state") {
  BookHarness h;
  auto a = reported_id(h.report("fire"));
  auto b = reported_id(h.report("noise"));
  CHECK(b == a + 1);
  h.advance(a, v1::DISCOVERED);
  h.clock.advance(20 * kMinute);
  h.tick();
  for (std::size_t i = 0; i < h.timeline.size(); ++i) {
    CHECK(h.timeline[i].seq() == i + 1);
  }
  sla::IncidentBook folded(&h.policies);
  for (const auto& e : h.timeline) {
    folded.apply(e);
  }
  CHECK(folded.incidents() == h.book.incidents());
  CHECK(folded.next_seq() == h.book.next_seq());
  CHECK(folded.next_incident_id() == h.book.next_incident_id());
}

TEST_CASE("pending events change nothing readers see, and a failed commit's are decided again") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  auto id = reported_id(h.report("fire"));
  const auto queued = h.book.deadlines().size();
  h.clock.advance(2 * kMinute);
  CHECK(h.book.due(h.clock.now()).size() == 3);
  CHECK(h.book.deadlines().size() == queued);   // deciding took nothing off the queue
  const auto first = h.book.tick(h.clock.now());  // warning, breach, escalation: in flight
  REQUIRE(first.size() == 3);
  CHECK(h.book.has_pending());
  CHECK_FALSE(h.incident(id).stage(v1::DISCOVER).breached);  // readers see the committed state
  CHECK(h.book.next_seq() == first.front().seq());
  CHECK(h.book.deadlines().size() < queued);   // parked with the pending events
  CHECK(h.book.tick(h.clock.now()).empty());   // later decisions see the pending events

  h.book.discard_pending();  // their commit failed
  CHECK_FALSE(h.book.has_pending());
  CHECK(h.book.deadlines().size() == queued);  // the parked deadlines are back
  auto again = h.tick();
  REQUIRE(again.size() == first.size());
  for (std::size_t i = 0; i < again.size(); ++i) {
    CHECK(again[i].SerializeAsString() == first[i].SerializeAsString());
  }
  CHECK(h.incident(id).stage(v1::DISCOVER).breached);
  CHECK(h.tick().empty());
  CHECK(h.book.deadlines().size() < queued);  // the settled entries left once committed
}

TEST_CASE("several batches in flight: one commits, the rest fail, and the book is the fold of the committed") {
  BookHarness h;
  v1::Report fire;
  fire.set_zone_id("Z1");
  fire.set_category("fire");
  fire.set_dedup_key("smoke");
  const auto now = h.clock.now();
  auto report = h.book.handle(commander(), command::report(fire), {1, 0}, now);
  const auto id = report.decision.events.front().incident_id();
  CHECK(h.book.find(id) == nullptr);  // not committed: no reader sees it
  // Decisions after it see it: a Discover finds it, a second report attaches.
  auto discover = h.book.handle(commander(), command::advance(id, v1::DISCOVERED), {2, 0}, now);
  REQUIRE(discover.decision.ok());
  auto attach = h.book.handle(commander(), command::report(fire), {3, 0}, now);
  REQUIRE(attach.decision.ok());
  CHECK(attach.decision.events.front().has_attached());
  auto duty = h.book.handle(testing::as("z1-grid-1", v1::GRID_WORKER, "Z1"), command::set_duty(true), {4, 0}, now);
  REQUIRE(duty.decision.ok());

  h.commit(report.decision.events);  // the first batch commits, the rest fail
  h.book.discard_pending();
  sla::IncidentBook folded(&h.policies);
  for (const auto& e : h.timeline) {
    folded.apply(e);
  }
  CHECK(h.book.incidents() == folded.incidents());
  CHECK(h.book.duty() == folded.duty());
  CHECK(h.book.next_seq() == folded.next_seq());
  CHECK(h.book.next_incident_id() == folded.next_incident_id());
  CHECK(h.book.open_counts() == folded.open_counts());
  CHECK(h.incident(id).state == v1::REPORTED);
  CHECK_FALSE(h.book.duty().on_duty("z1-grid-1"));
  // Decided again, the failed commands get the seqs they had.
  auto retried = h.run(commander(), command::advance(id, v1::DISCOVERED));
  REQUIRE(retried.ok());
  CHECK(retried.events.front().seq() == discover.decision.events.front().seq());
}

TEST_CASE("a bulk load arms only the incidents still open, and the same deadlines fire") {
  BookHarness h;
  auto open = reported_id(h.report("fire"));
  auto closed = reported_id(h.report("noise"));
  REQUIRE(h.advance(closed, v1::RESOLVED).ok());
  sla::IncidentBook folded(&h.policies);
  folded.begin_bulk_load();
  for (const auto& e : h.timeline) {
    folded.apply(e);
  }
  CHECK(folded.deadlines().size() == 0);
  folded.end_bulk_load();
  CHECK(folded.deadlines().size() == 6);  // the open incident's three breaches and three warnings
  const auto later = h.clock.now() + 20 * kMinute;
  auto live = h.book.due(later);
  auto recovered = folded.due(later);
  REQUIRE(live.size() == recovered.size());
  for (std::size_t i = 0; i < live.size(); ++i) {
    CHECK(live[i].SerializeAsString() == recovered[i].SerializeAsString());
    CHECK(live[i].incident_id() == open);
  }
}

namespace {
// The open-incident gauges as a walk over every incident would count them.
sla::IncidentBook::OpenCounts walked(const sla::IncidentBook& book) {
  sla::IncidentBook::OpenCounts out;
  for (const auto& [id, incident] : book.incidents()) {
    if (incident.open()) {
      ++out[incident.zone_id][incident.state];
    }
  }
  return out;
}
// Zones whose counts are all zero say nothing: drop them before comparing.
sla::IncidentBook::OpenCounts nonzero(sla::IncidentBook::OpenCounts counts) {
  std::erase_if(counts, [](const auto& entry) {
    return std::all_of(entry.second.begin(), entry.second.end(), [](auto n) { return n == 0; });
  });
  return counts;
}
}  // namespace

TEST_CASE("open-incident counts follow every advance, resolution, failed commit and bulk load") {
  BookHarness h;
  const auto a = reported_id(h.report("fire"));
  const auto b = reported_id(h.report("noise", v1::SEVERITY_UNSPECIFIED, "Z2"));
  reported_id(h.report("noise", v1::SEVERITY_UNSPECIFIED, "Z2"));
  CHECK(h.book.open_counts().at("Z1")[v1::REPORTED] == 1);
  CHECK(h.book.open_counts().at("Z2")[v1::REPORTED] == 2);
  REQUIRE(h.advance(b, v1::RESPONDING).ok());
  CHECK(h.book.open_counts().at("Z2")[v1::REPORTED] == 1);
  CHECK(h.book.open_counts().at("Z2")[v1::RESPONDING] == 1);
  REQUIRE(h.advance(a, v1::RESOLVED).ok());
  CHECK(h.book.open_counts().at("Z1")[v1::REPORTED] == 0);
  CHECK(h.book.open_counts().at("Z1")[v1::RESOLVED] == 0);  // resolved is not open
  h.clock.advance(20 * kMinute);  // breaches and escalations change no state
  h.tick();
  CHECK(nonzero(h.book.open_counts()) == walked(h.book));

  // Pending changes count only once committed; a failed commit's never do.
  h.book.handle(commander(), command::advance(b, v1::RESOLVED), {99, 0}, h.clock.now());
  CHECK(h.book.open_counts().at("Z2")[v1::RESPONDING] == 1);
  h.book.discard_pending();
  CHECK(nonzero(h.book.open_counts()) == walked(h.book));

  // Recovery counts once, at the end of the bulk load.
  sla::IncidentBook recovered(&h.policies);
  recovered.begin_bulk_load();
  for (const auto& e : h.timeline) {
    recovered.apply(e);
  }
  recovered.end_bulk_load();
  CHECK(nonzero(recovered.open_counts()) == walked(recovered));
  CHECK(recovered.open_counts().at("Z2")[v1::REPORTED] == 1);
  CHECK(recovered.open_counts().at("Z2")[v1::RESPONDING] == 1);
}

TEST_CASE("the core authorises every command: unknown things first, then the permission table") {
  BookHarness h;
  const auto id = reported_id(h.report("noise"));  // in Z1
  const auto recorded = h.timeline.size();
  const auto z2 = as("z2-grid-1", v1::GRID_WORKER, "Z2");

  auto act = h.run(z2, command::advance(id, v1::DISCOVERED));
  REQUIRE(act.error);
  CHECK(act.error->code == v1::FORBIDDEN);
  CHECK(act.error->message == "GRID_WORKER z2-grid-1 may not act on incident " + std::to_string(id) + " in zone Z1");
  CHECK(h.run(z2, command::advance(id + 7, v1::DISCOVERED)).error->code == v1::NOT_FOUND);

  v1::Report r;
  r.set_category("noise");
  r.set_zone_id("Z9");
  auto unknown = h.run(z2, command::report(r));
  CHECK(unknown.error->code == v1::NOT_FOUND);
  CHECK(unknown.error->message == "unknown zone 'Z9'");
  r.set_zone_id("Z1");
  CHECK(h.run(z2, command::report(r)).error->code == v1::FORBIDDEN);
  CHECK(h.run(z2, command::visit("Z9", "C1-3-201")).error->code == v1::NOT_FOUND);
  CHECK(h.run(z2, command::visit("Z1", "C1-3-201")).error->code == v1::FORBIDDEN);
  CHECK(h.run(as("auditor", v1::AUDITOR), command::set_duty(true)).error->code == v1::FORBIDDEN);
  CHECK(h.run(department("urban"), command::accept(id)).error->code == v1::FORBIDDEN);  // not called
  v1::Command chain;
  chain.mutable_accept_broken_chain()->set_first_broken_seq(3);
  CHECK(h.run(commander(), chain).error->code == v1::FORBIDDEN);  // the engine's own record
  CHECK(h.run(commander(), v1::Command{}).error->code == v1::BAD_REQUEST);
  CHECK(h.timeline.size() == recorded);

  // Allowed, the actor's rights are on the event for the replay to re-check.
  auto ok = h.run(as("z1-grid-1", v1::GRID_WORKER, "Z1"), command::advance(id, v1::DISCOVERED));
  REQUIRE(ok.ok());
  CHECK(ok.events[0].actor_role() == v1::GRID_WORKER);
  CHECK(ok.events[0].actor_zone_id() == "Z1");
  auto engine = h.run(sla::IncidentBook::engine(), chain);
  REQUIRE(engine.ok());
  CHECK(engine.events[0].actor_id() == "engine");
  CHECK(engine.events[0].actor_role() == v1::ROLE_UNSPECIFIED);
}
