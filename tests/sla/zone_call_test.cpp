// Zone call, department report (战区呼叫、科室报到) on a manual clock.
#include <catch2/catch.hpp>

#include <algorithm>

#include "book_harness.hpp"
#include "sla/replay.hpp"

using namespace zonecall;
using sla::kMinute;
using testing::BookHarness;
using testing::as;
using testing::commander;
using testing::department;
namespace command = testing::command;

namespace {
struct Called {
  BookHarness h;
  std::uint64_t id = 0;
  Called() {
    h.set_duty("z1-grid-1", "Z1", true);
    id = h.report("noise").events.front().incident_id();
    auto call = h.call(id, "urban");
    REQUIRE(call.ok());
    REQUIRE(call.events.size() == 1);
    raised = call.events[0];
  }
  sla::Decision accept() {
    return h.run(department("urban"), command::accept(id));
  }
  sla::Decision on_site() {
    return h.run(department("urban"), command::on_site(id));
  }
  sla::Decision decline(const std::string& reason) {
    return h.run(department("urban"), command::decline(id, reason));
  }
  v1::TimelineEvent raised;
};

int count(const std::vector<v1::TimelineEvent>& events, bool (v1::TimelineEvent::*has)() const) {
  return static_cast<int>(std::count_if(events.begin(), events.end(), [&](auto& e) { return (e.*has)(); }));
}
}  // namespace

TEST_CASE("zone call: a department accepts in time and arrives on site in time") {
  Called c;
  CHECK(c.raised.call_raised().call_no() == 1);
  CHECK(c.raised.call_raised().department_id() == "urban");
  CHECK(c.raised.call_raised().accept_deadline_ms() == BookHarness::kStart + 5 * kMinute);
  CHECK(c.h.incident(c.id).holder.empty());  // the zone holds it until accepted

  c.h.clock.set(BookHarness::kStart + 5 * kMinute);  // exactly at the limit: in time
  auto accepted = c.accept();
  REQUIRE(accepted.ok());
  CHECK(accepted.events[0].call_accepted().late_by_ms() == 0);
  CHECK(accepted.events[0].call_accepted().on_site_deadline_ms() == BookHarness::kStart + 20 * kMinute);
  CHECK(c.h.incident(c.id).holder == "urban");

  c.h.clock.set(BookHarness::kStart + 20 * kMinute);
  auto arrived = c.on_site();
  REQUIRE(arrived.ok());
  CHECK(arrived.events[0].call_on_site().late_by_ms() == 0);
  CHECK(count(c.h.timeline, &v1::TimelineEvent::has_call_breached) == 0);
  CHECK(c.h.incident(c.id).open_call() == nullptr);
}

TEST_CASE("zone call: a late acceptance is the department's breach and escalates") {
  Called c;
  c.h.clock.set(BookHarness::kStart + 5 * kMinute + 1);
  auto tick = c.h.tick();
  auto breach = std::find_if(tick.begin(), tick.end(), [](auto& e) { return e.has_call_breached(); });
  REQUIRE(breach != tick.end());
  CHECK(breach->call_breached().what() == v1::ACCEPT);
  CHECK(breach->call_breached().deadline_ms() == BookHarness::kStart + 5 * kMinute);
  CHECK(breach->call_breached().department_id() == "urban");
  auto escalation = std::find_if(tick.begin(), tick.end(), [](auto& e) {
    return e.has_escalated() && e.escalated().rung() == v1::DEPARTMENT_MISSED;
  });
  REQUIRE(escalation != tick.end());
  CHECK(escalation->escalated().recipients(0).kind() == v1::STREET_OFFICE_DESK);
  CHECK(c.h.incident(c.id).calls[0].accept_breached);

  c.h.clock.advance(2 * kMinute);
  auto late = c.accept();
  REQUIRE(late.ok());
  CHECK(late.events[0].call_accepted().late_by_ms() == 2 * kMinute + 1);
}

TEST_CASE("zone call: missing the on-site limit is a breach too, escalated once per call") {
  Called c;
  c.h.clock.set(BookHarness::kStart + 6 * kMinute);
  REQUIRE(c.accept().ok());  // 1 minute late: accept breach already escalated
  c.h.clock.set(BookHarness::kStart + 21 * kMinute + 1);  // on-site limit: accepted + 15 min
  auto tick = c.h.tick();
  auto breach = std::find_if(tick.begin(), tick.end(), [](auto& e) { return e.has_call_breached(); });
  REQUIRE(breach != tick.end());
  CHECK(breach->call_breached().what() == v1::ON_SITE);
  CHECK(breach->call_breached().deadline_ms() == BookHarness::kStart + 21 * kMinute);
  auto rungs = BookHarness::rungs(c.h.timeline);
  CHECK(std::count(rungs.begin(), rungs.end(), v1::DEPARTMENT_MISSED) == 1);
  CHECK(c.h.incident(c.id).calls[0].on_site_breached);
}

TEST_CASE("zone call: a decline needs a reason, returns the incident to the zone and alerts command") {
  Called c;
  auto bare = c.decline("");
  REQUIRE_FALSE(bare.ok());
  CHECK(bare.error->code == v1::BAD_REQUEST);

  REQUIRE(c.accept().ok());
  auto declined = c.decline("wrong department: this is market supervision");
  REQUIRE(declined.ok());
  REQUIRE(declined.events.size() == 2);
  CHECK(declined.events[0].call_declined().reason().find("wrong department") != std::string::npos);
  CHECK(declined.events[1].escalated().rung() == v1::CALL_DECLINED);
  CHECK(declined.events[1].escalated().recipients(0).kind() == v1::COMMAND);
  CHECK(c.h.incident(c.id).holder.empty());
  CHECK(c.h.incident(c.id).open_call() == nullptr);

  // No deadline of the declined call fires later.
  c.h.clock.advance(60 * kMinute);
  CHECK(count(c.h.tick(), &v1::TimelineEvent::has_call_breached) == 0);

  // The zone calls another department.
  auto again = c.h.call(c.id, "urban");
  REQUIRE(again.ok());
  CHECK(again.events[0].call_raised().call_no() == 2);
}

TEST_CASE("zone call: one open call at a time, and answers only to the open call") {
  Called c;
  auto second = c.h.call(c.id, "urban");
  REQUIRE_FALSE(second.ok());
  CHECK(second.error->code == v1::INVALID_TRANSITION);

  auto other = c.h.run(department("emergency"), command::accept(c.id));  // never called
  REQUIRE_FALSE(other.ok());
  CHECK(other.error->code == v1::FORBIDDEN);

  auto early = c.on_site();
  REQUIRE_FALSE(early.ok());
  CHECK(early.error->code == v1::INVALID_TRANSITION);  // accept first

  REQUIRE(c.accept().ok());
  auto twice = c.accept();
  CHECK(twice.error->code == v1::INVALID_TRANSITION);

  auto unknown = c.h.run(commander("z1-chief"), command::zone_call(c.id, "nope", "x"));
  CHECK(unknown.error->code == v1::NOT_FOUND);
}

TEST_CASE("zone call: the incident's own clocks keep running during a call") {
  Called c;
  REQUIRE(c.accept().ok());
  c.h.clock.set(BookHarness::kStart + kMinute + 1);
  auto tick = c.h.tick();
  auto breach = std::find_if(tick.begin(), tick.end(), [](auto& e) { return e.has_breached(); });
  REQUIRE(breach != tick.end());
  CHECK(breach->breached().stage() == v1::DISCOVER);
}

TEST_CASE("zone call: beyond the community's authority, the category raises the call itself") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  auto d = h.report("illegal_construction");
  REQUIRE(d.ok());
  auto call = std::find_if(d.events.begin(), d.events.end(), [](auto& e) { return e.has_call_raised(); });
  REQUIRE(call != d.events.end());
  CHECK(call->call_raised().automatic());
  CHECK(call->call_raised().department_id() == "urban");
  CHECK(call->call_raised().accept_deadline_ms() == BookHarness::kStart + 5 * kMinute);
}

TEST_CASE("zone call: a resolved incident takes no new call and its call clocks stop") {
  Called c;
  REQUIRE(c.h.advance(c.id, v1::RESOLVED).ok());
  c.h.clock.advance(60 * kMinute);
  CHECK(c.h.tick().empty());
  auto call = c.h.call(c.id, "urban");
  CHECK(call.error->code == v1::INVALID_TRANSITION);
}

TEST_CASE("zone call: a call not accepted in time may be superseded by another") {
  Called c;
  auto early = c.h.call(c.id, "urban");
  CHECK(early.error->code == v1::INVALID_TRANSITION);  // still within its limit
  c.h.clock.set(BookHarness::kStart + 5 * kMinute + 1);
  c.h.tick();  // the acceptance limit is missed
  auto next = c.h.call(c.id, "urban");
  REQUIRE(next.ok());
  CHECK(next.events[0].call_raised().call_no() == 2);
  CHECK(c.h.incident(c.id).calls[0].superseded);
  CHECK(c.h.incident(c.id).open_call()->call_no == 2);
  // The first department can no longer answer the superseded call's number,
  // only the open one; and its late acceptance goes to call 2.
  auto accepted = c.accept();
  REQUIRE(accepted.ok());
  CHECK(accepted.events[0].call_accepted().call_no() == 2);
}

namespace {
// Two departments: urban (the harness's) and water, both 5 min to accept.
BookHarness two_departments() {
  auto config = testing::two_category_config();
  auto* water = config.add_departments();
  water->set_id("water");
  water->set_accept_limit_ms(5 * kMinute);
  water->set_on_site_limit_ms(15 * kMinute);
  return BookHarness(config);
}
sla::Decision accept(BookHarness& h, std::uint64_t id, const std::string& department_id) {
  return h.run(department(department_id), command::accept(id));
}
}  // namespace

TEST_CASE("zone call: a superseded call is marked closed and its department's late answer refused") {
  BookHarness h = two_departments();
  const auto id = h.report("noise").events.front().incident_id();
  REQUIRE(h.call(id, "urban").ok());
  h.clock.set(BookHarness::kStart + 5 * kMinute + 1);
  REQUIRE(h.call(id, "water").ok());  // the tick records urban's missed limit first

  const auto view = sla::view_of(h.incident(id));
  REQUIRE(view.calls_size() == 2);
  CHECK(view.calls(0).superseded());
  CHECK(view.calls(0).accept_breached());
  CHECK_FALSE(view.calls(1).superseded());

  auto late = accept(h, id, "urban");
  REQUIRE(late.error);
  CHECK(late.error->code == v1::INVALID_TRANSITION);
  CHECK(late.error->message == "call 1 to urban was superseded by call 2");
  auto decline = h.run(department("urban"), command::decline(id, "late"));
  CHECK(decline.error->message == "call 1 to urban was superseded by call 2");
  CHECK(accept(h, id, "water").ok());
  CHECK(h.incident(id).holder == "water");

  // Nothing marks it in the timeline: the fold derives it, so the replay
  // (and any timeline recorded before the view had the field) agrees.
  sla::Replayer replayer(h.policies);
  for (const auto& e : h.timeline) {
    replayer.feed(e);
  }
  replayer.finish();
  CHECK(replayer.discrepancies().empty());
  CHECK(*replayer.book().find(id) == h.incident(id));
}

TEST_CASE("zone call: superseding a call accepted late hands the incident back to the zone") {
  BookHarness h = two_departments();
  const auto id = h.report("noise").events.front().incident_id();
  REQUIRE(h.call(id, "urban").ok());
  h.clock.set(BookHarness::kStart + 6 * kMinute);
  REQUIRE(accept(h, id, "urban").ok());
  CHECK(h.incident(id).holder == "urban");
  REQUIRE(h.call(id, "water").ok());
  CHECK(h.incident(id).holder.empty());
  CHECK(sla::view_of(h.incident(id)).holder() == "Z1");
  auto arrived = h.run(department("urban"), command::on_site(id));
  REQUIRE(arrived.error);
  CHECK(arrived.error->message == "call 1 to urban was superseded by call 2");
}
