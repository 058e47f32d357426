// Escalation, mutual aid and the zone-call channel against a real server.
#include <catch2/catch.hpp>

#include "support/fixtures.hpp"
#include "support/store_backend.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
// The next alert with this rung (or reason), skipping others.
std::optional<v1::Alert> wait_for(WsClient& client, v1::AlertReason reason,
                                  v1::Rung rung = v1::RUNG_UNSPECIFIED) {
  while (auto m = client.next_push()) {
    if (m->has_alert() && m->alert().reason() == reason &&
        (rung == v1::RUNG_UNSPECIFIED || m->alert().rung() == rung)) {
      return m->alert();
    }
  }
  return std::nullopt;
}

// Asserts nothing was pushed: the reply to a later request comes first.
void expect_no_push(WsClient& client) {
  auto reply = client.request(list_msg());
  CHECK(reply.has_incidents());
  CHECK(client.pushes_waiting() == 0);
}
}  // namespace

TEST_CASE("engine: a zone with nobody on duty escalates to its chief and neighbours at once") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  // Z5 neighbours Z2, Z4, Z6, Z8 on the default map; Z9 is not a neighbour.
  WsClient chief(server.port());
  WsClient neighbour(server.port());
  WsClient far(server.port());
  WsClient command(server.port());
  chief.hello("demo-z5-chief");  // connected, not on duty
  neighbour.hello_on_duty("demo-z2-grid-1");
  far.hello_on_duty("demo-z9-grid-1");
  command.hello("demo-command");

  auto ack = command.request(report_msg("Z5", "sanitation"));
  REQUIRE(ack.has_ack());
  auto at_chief = wait_for(chief, v1::ESCALATED, v1::DISCOVER_MISSED);
  REQUIRE(at_chief);
  CHECK(at_chief->reason_text().find("nobody on duty") != std::string::npos);
  CHECK(at_chief->incident().incident_id() == ack.ack().incident_id());
  auto at_neighbour = wait_for(neighbour, v1::ESCALATED, v1::DISCOVER_MISSED);
  REQUIRE(at_neighbour);
  CHECK_FALSE(at_neighbour->mutual_aid());  // alerted, not yet asked to act
  expect_no_push(far);
}

TEST_CASE("engine: a neighbour may act once mutual aid is requested, and is refused before") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient local(server.port());
  WsClient neighbour(server.port());
  WsClient command(server.port());
  local.hello_on_duty("demo-z5-grid-1");
  neighbour.hello_on_duty("demo-z4-grid-1");
  command.hello("demo-command");
  const auto id = local.request(report_msg("Z5", "drill")).ack().incident_id();

  auto before = neighbour.request(discover_msg(id));
  REQUIRE(before.has_error());
  CHECK(before.error().code() == v1::FORBIDDEN);
  CHECK(neighbour.request(get_incident_msg(id)).error().code() == v1::FORBIDDEN);

  // RESPOND missed (600 ms): the ladder asks the neighbours for mutual aid.
  server.advance(2 * kDrillDiscoverMs + 1);
  auto aid = wait_for(neighbour, v1::ESCALATED, v1::RESPOND_MISSED);
  REQUIRE(aid);
  CHECK(aid->mutual_aid());
  auto at_command = wait_for(command, v1::ESCALATED, v1::RESPOND_MISSED);
  REQUIRE(at_command);

  auto after = neighbour.request(respond_msg(id, "Z4 patrol on site"));
  REQUIRE(after.has_ack());
  auto view = neighbour.request(get_incident_msg(id)).incident();
  CHECK(view.state() == v1::RESPONDING);
  CHECK(std::find(view.mutual_aid_zones().begin(), view.mutual_aid_zones().end(), "Z4") !=
        view.mutual_aid_zones().end());
}

TEST_CASE("engine: a CRITICAL incident alerts command and asks neighbours at report") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient local(server.port());
  WsClient neighbour(server.port());
  WsClient command(server.port());
  local.hello_on_duty("demo-z1-grid-1");
  neighbour.hello_on_duty("demo-z2-grid-1");
  command.hello("demo-command");
  const auto id = local.request(report_msg("Z1", "fire")).ack().incident_id();
  REQUIRE(wait_for(command, v1::ESCALATED, v1::CRITICAL_AT_REPORT));
  REQUIRE(wait_for(neighbour, v1::ESCALATED, v1::CRITICAL_AT_REPORT));
  CHECK(neighbour.request(discover_msg(id, "coming from Z2")).has_ack());
}

TEST_CASE("engine: a department gets the call, accepts late, and the breach is recorded") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  RunningServer server(db);
  WsClient chief(server.port());
  WsClient desk(server.port());
  WsClient other_desk(server.port());
  WsClient street(server.port());
  chief.hello_on_duty("demo-z7-chief");
  desk.hello("demo-dept-drill-desk");
  other_desk.hello("demo-dept-urban-management");
  street.hello("demo-street-duty");
  const auto id = chief.request(report_msg("Z7", "sanitation")).ack().incident_id();

  // The department sees nothing before it is called.
  CHECK(desk.request(get_incident_msg(id)).error().code() == v1::FORBIDDEN);
  CHECK(desk.request(accept_msg(id)).error().code() == v1::FORBIDDEN);

  auto call = chief.request(zone_call_msg(id, "drill-desk", "needs the drill desk"));
  REQUIRE(call.has_ack());
  auto called = wait_for(desk, v1::CALLED);
  REQUIRE(called);
  REQUIRE(called->incident().calls_size() == 1);
  const auto accept_deadline = called->incident().calls(0).accept_deadline_ms();
  CHECK(accept_deadline == call.ack().at_ms() + kDrillAcceptMs);
  expect_no_push(other_desk);

  // The limit passes: the department's breach, escalated to the street office.
  server.advance(kDrillAcceptMs + 1);
  auto missed = wait_for(street, v1::ESCALATED, v1::DEPARTMENT_MISSED);
  REQUIRE(missed);
  auto late = desk.request(accept_msg(id));
  REQUIRE(late.has_ack());
  CHECK(late.ack().at_ms() == accept_deadline + 1);
  CHECK(other_desk.request(accept_msg(id)).error().code() == v1::FORBIDDEN);

  auto view = desk.request(get_incident_msg(id)).incident();
  REQUIRE(view.calls_size() == 1);
  CHECK(view.calls(0).accept_breached());
  CHECK(view.calls(0).accepted_at_ms() == late.ack().at_ms());
  CHECK(view.holder() == "drill-desk");
  bool breach_dated = false;
  for (const auto& e : view.timeline()) {
    if (e.has_call_breached()) {
      breach_dated = e.call_breached().deadline_ms() == accept_deadline &&
                     e.call_breached().what() == v1::ACCEPT;
    }
  }
  CHECK(breach_dated);
  CHECK(desk.request(on_site_msg(id)).has_ack());

  // Declining needs a reason and returns the incident to the zone.
  auto second = chief.request(zone_call_msg(id, "drill-desk"));
  REQUIRE(second.has_ack());
  CHECK(desk.request(decline_msg(id, "")).error().code() == v1::BAD_REQUEST);
  CHECK(desk.request(decline_msg(id, "wrong department")).has_ack());
  REQUIRE(wait_for(chief, v1::ESCALATED, v1::CALL_DECLINED));
  CHECK(chief.request(get_incident_msg(id)).incident().holder() == "Z7");
}

TEST_CASE("engine: a call past its acceptance limit is superseded, marked, and its late accept refused") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient chief(server.port());
  WsClient desk(server.port());
  WsClient urban(server.port());
  chief.hello_on_duty("demo-z7-chief");
  desk.hello("demo-dept-drill-desk");
  urban.hello("demo-dept-urban-management");
  const auto id = chief.request(report_msg("Z7", "sanitation")).ack().incident_id();
  REQUIRE(chief.request(zone_call_msg(id, "drill-desk")).has_ack());
  auto early = chief.request(zone_call_msg(id, "urban-management"));
  REQUIRE(early.has_error());  // within its limit the call stays open
  CHECK(early.error().code() == v1::INVALID_TRANSITION);

  // Once the limit has passed, a call to another department supersedes it.
  server.advance(kDrillAcceptMs + 1);
  while (auto called = wait_for(desk, v1::CALLED)) {
    if (called->incident().calls(0).accept_breached()) {
      break;
    }
  }
  REQUIRE(chief.request(zone_call_msg(id, "urban-management")).has_ack());
  auto told = wait_for(desk, v1::CALLED);  // the superseded department hears it
  REQUIRE(told);
  REQUIRE(told->incident().calls_size() == 2);
  CHECK(told->incident().calls(0).superseded());
  REQUIRE(wait_for(urban, v1::CALLED));

  auto late = desk.request(accept_msg(id));
  REQUIRE(late.has_error());
  CHECK(late.error().code() == v1::INVALID_TRANSITION);
  CHECK(late.error().message() == "call 1 to drill-desk was superseded by call 2");
  auto view = chief.request(get_incident_msg(id)).incident();
  REQUIRE(view.calls_size() == 2);
  CHECK(view.calls(0).superseded());
  CHECK(view.calls(0).accepted_at_ms() == 0);
  CHECK_FALSE(view.calls(1).superseded());
  CHECK(urban.request(accept_msg(id)).has_ack());
  CHECK(chief.request(get_incident_msg(id)).incident().holder() == "urban-management");
}

TEST_CASE("engine: a client resumes after a disconnect and misses nothing") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient grid(server.port());
  grid.hello_on_duty("demo-z3-grid-1");
  for (int i = 0; i < 3; ++i) {
    grid.request(report_msg("Z3", "sanitation"));
  }

  std::vector<std::uint64_t> seen;
  std::uint64_t cursor = 0;
  {
    WsClient board(server.port(), WsClient::Mode::json);
    board.hello("demo-command");
    board.send(subscribe_msg(0));
    for (;;) {
      auto m = board.receive();
      REQUIRE(m);
      if (m->has_subscribed()) {
        cursor = m->subscribed().caught_up_seq();
        break;
      }
      if (m->has_event()) {
        seen.push_back(m->event().seq());
      }
    }
    CHECK(seen.size() == 7);  // a duty change, then three reports with their AT_REPORT
    // Live: one more report streams in.
    grid.request(report_msg("Z3", "sanitation"));
    for (int live = 0; live < 2;) {
      auto m = board.receive();
      REQUIRE(m);
      if (m->has_event()) {
        seen.push_back(m->event().seq());
        cursor = m->event().seq();
        ++live;
      }
    }
  }  // the board drops off
  // Meanwhile, more happens.
  const auto id = grid.request(report_msg("Z3", "sanitation")).ack().incident_id();
  grid.request(discover_msg(id));

  WsClient board(server.port());
  board.hello("demo-command");
  board.send(subscribe_msg(cursor));
  for (;;) {
    auto m = board.receive();
    REQUIRE(m);
    if (m->has_subscribed()) {
      break;
    }
    if (m->has_event()) {
      seen.push_back(m->event().seq());
    }
  }
  // Every seq once, in order, no gaps.
  REQUIRE(seen.size() == 12);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i] == i + 1);
  }
}

TEST_CASE("engine: a subscriber sees only what it may read") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient command(server.port());
  command.hello("demo-command");
  command.request(report_msg("Z1", "sanitation"));
  command.request(report_msg("Z2", "sanitation"));
  WsClient z2(server.port());
  z2.hello("demo-z2-grid-1");
  z2.send(subscribe_msg(0));
  std::vector<std::string> zones;
  for (;;) {
    auto m = z2.receive();
    REQUIRE(m);
    if (m->has_subscribed()) {
      break;
    }
    REQUIRE(m->has_event());
    zones.push_back(m->event().has_reported() ? m->event().reported().zone_id() : "");
  }
  CHECK(std::count(zones.begin(), zones.end(), "Z1") == 0);
  CHECK(std::count(zones.begin(), zones.end(), "Z2") == 1);
}

TEST_CASE("engine: retries with the same request_id get the original reply") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  RunningServer server(db);
  WsClient grid(server.port());
  grid.hello_on_duty("demo-z1-grid-1");
  auto report = report_msg("Z1", "sanitation");
  report.set_request_id(77);
  auto first = grid.request(report);
  auto again = grid.request(report);
  REQUIRE(first.has_ack());
  CHECK(again.SerializeAsString() == first.SerializeAsString());
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 10") == 1);

  auto discover = discover_msg(first.ack().incident_id());
  discover.set_request_id(78);
  auto d1 = grid.request(discover);
  auto d2 = grid.request(discover);  // not INVALID_TRANSITION: the same request
  REQUIRE(d1.has_ack());
  CHECK(d2.SerializeAsString() == d1.SerializeAsString());

  // A retry sent before the first attempt was even committed.
  auto pipelined = report_msg("Z1", "sanitation");
  pipelined.set_request_id(79);
  grid.send(pipelined);
  grid.send(pipelined);
  std::vector<v1::ServerMessage> replies;
  while (replies.size() < 2) {
    auto m = grid.receive();
    REQUIRE(m);
    if (m->request_id() == 79) {
      replies.push_back(*m);
    }
  }
  REQUIRE(replies[0].has_ack());
  CHECK(replies[1].SerializeAsString() == replies[0].SerializeAsString());
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 10") == 2);

  // The same id for a different request is refused, not answered with
  // the first request's Ack.
  auto reused = resolve_msg(first.ack().incident_id());
  reused.set_request_id(77);
  auto refused = grid.request(reused);
  REQUIRE(refused.has_error());
  CHECK(refused.error().code() == v1::BAD_REQUEST);
  CHECK(refused.error().message().find("already used") != std::string::npos);

  // Another staff member's request 77 is their own.
  WsClient other(server.port());
  other.hello("demo-z1-grid-2");
  CHECK(other.request(report).ack().incident_id() != first.ack().incident_id());
}

TEST_CASE("engine: retries stay idempotent across a restart") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  auto report = report_msg("Z1", "sanitation");
  report.set_request_id(5);
  v1::ServerMessage first;
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    first = grid.request(report);
  }
  RunningServer server(db);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  CHECK(grid.request(report).SerializeAsString() == first.SerializeAsString());
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 10") == 1);
  auto other = discover_msg(first.ack().incident_id());
  other.set_request_id(5);  // recovered from the timeline: a Report's id
  CHECK(grid.request(other).error().code() == v1::BAD_REQUEST);
}

TEST_CASE("engine: a request_id reused for a different request is refused, live and after a restart") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  auto z1 = report_msg("Z1", "sanitation");
  z1.set_request_id(41);
  // The same kind of message with the same id but another body: a fire in Z5.
  auto fire = report_msg("Z5", "fire", v1::CRITICAL);
  fire.set_request_id(41);
  auto on = duty_msg(true);
  on.set_request_id(42);
  auto off = duty_msg(false);
  off.set_request_id(42);
  v1::ClientMessage visit;
  visit.set_request_id(43);
  visit.mutable_visit()->set_zone_id("Z1");
  visit.mutable_visit()->set_household_ref("C1-b1-101");
  auto other_visit = visit;
  other_visit.mutable_visit()->set_household_ref("C1-b1-102");

  auto check_refused = [](const v1::ServerMessage& m) {
    REQUIRE(m.has_error());
    CHECK(m.error().code() == v1::BAD_REQUEST);
    CHECK(m.error().message().find("already used") != std::string::npos);
  };
  v1::ServerMessage first_report;
  {
    RunningServer server(db);
    WsClient reporter(server.port());
    reporter.hello("demo-reporter");
    first_report = reporter.request(z1);
    REQUIRE(first_report.has_ack());
    check_refused(reporter.request(fire));
    // The identical request is still a retry, in either encoding.
    CHECK(reporter.request(z1).SerializeAsString() == first_report.SerializeAsString());
    WsClient json(server.port(), WsClient::Mode::json);
    json.hello("demo-reporter");
    CHECK(json.request(z1).ack().SerializeAsString() == first_report.ack().SerializeAsString());

    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    REQUIRE(grid.request(on).has_ack());
    check_refused(grid.request(off));
    REQUIRE(grid.request(visit).has_ack());
    check_refused(grid.request(other_visit));
  }
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 10") == 1);
  // After a restart the ledger is rebuilt from the stored digests.
  RunningServer server(db);
  WsClient reporter(server.port());
  reporter.hello("demo-reporter");
  check_refused(reporter.request(fire));
  CHECK(reporter.request(z1).SerializeAsString() == first_report.SerializeAsString());
  WsClient grid(server.port());
  CHECK(grid.hello("demo-z1-grid-1").on_duty());
  check_refused(grid.request(off));
  check_refused(grid.request(other_visit));
  WsClient again(server.port());
  CHECK(again.hello("demo-z1-grid-1").on_duty());  // the refused "off" changed nothing
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 10") == 1);
}

TEST_CASE("engine: a report with an open incident's dedup_key attaches to it") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient reporter(server.port());
  reporter.hello("demo-reporter");
  auto report = report_msg("Z6", "neighbour_noise");
  report.mutable_report()->set_dedup_key("C6-b4-noise");
  auto first = reporter.request(report).ack();
  auto second = reporter.request(report).ack();
  CHECK_FALSE(first.attached());
  CHECK(second.attached());
  CHECK(second.incident_id() == first.incident_id());
  CHECK(second.seq() > first.seq());
}

TEST_CASE("engine: duty decides who is alerted") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient grid(server.port());
  auto welcome = grid.hello("demo-z8-grid-1");
  CHECK_FALSE(welcome.on_duty());
  WsClient reporter(server.port());
  reporter.hello("demo-reporter");
  reporter.request(report_msg("Z8", "sanitation"));
  expect_no_push(grid);
  REQUIRE(grid.request(duty_msg(true)).has_ack());
  reporter.request(report_msg("Z8", "sanitation"));
  REQUIRE(wait_for(grid, v1::NEW));
  REQUIRE(grid.request(duty_msg(false)).has_ack());
  reporter.request(report_msg("Z8", "sanitation"));
  expect_no_push(grid);
  WsClient again(server.port());
  CHECK_FALSE(again.hello("demo-z8-grid-1").on_duty());
}

TEST_CASE("engine: staff who sign in or go on duty while an alert's event is being committed get it") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  RunningServer server(db);
  {
    WsClient earlier(server.port());
    earlier.hello("demo-z8-grid-1");
    REQUIRE(earlier.request(duty_msg(true)).has_ack());
  }  // on duty, but not connected
  WsClient reporter(server.port());
  reporter.hello("demo-reporter");

  // Another connection holds the write lock: the report's commit waits for it.
  auto held = timeline.lock();
  auto report = report_msg("Z8", "sanitation");
  report.set_request_id(WsClient::fresh_request_id());
  reporter.send(report);
  reporter.request(list_msg());  // answered in order: the report is decided and queued

  WsClient returning(server.port());
  returning.hello("demo-z8-grid-1");
  WsClient joining(server.port());
  joining.hello("demo-z8-grid-2");
  joining.send(duty_msg(true));
  joining.request(list_msg());  // the duty change is applied, its commit queued
  held->release();

  auto ack = reporter.next_push();
  REQUIRE(ack);
  REQUIRE(ack->has_ack());
  auto at_returning = wait_for(returning, v1::NEW);
  REQUIRE(at_returning);
  CHECK(at_returning->incident().incident_id() == ack->ack().incident_id());
  auto at_joining = wait_for(joining, v1::NEW);
  REQUIRE(at_joining);
  CHECK(at_joining->incident().incident_id() == ack->ack().incident_id());
}

TEST_CASE("engine: the last 256 requests per staff member are remembered, older ones are not") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const std::uint64_t base = WsClient::fresh_request_id() + 1'000'000;
  std::vector<v1::Ack> acks;
  for (std::uint64_t i = 0; i < 300; ++i) {
    auto m = report_msg("Z1", "sanitation");
    m.set_request_id(base + i);
    acks.push_back(grid.request(m).ack());
  }
  auto last = report_msg("Z1", "sanitation");
  last.set_request_id(base + 299);
  CHECK(grid.request(last).ack().SerializeAsString() == acks.back().SerializeAsString());
  auto recent = report_msg("Z1", "sanitation");
  recent.set_request_id(base + 300 - 256);
  CHECK(grid.request(recent).ack().incident_id() == acks[300 - 256].incident_id());
  auto first = report_msg("Z1", "sanitation");
  first.set_request_id(base);  // forgotten: a new request
  CHECK(grid.request(first).ack().incident_id() == acks.back().incident_id() + 1);
}
