// End to end: a real server on 127.0.0.1:0, real WebSocket clients, a real
// SQLite file in a temporary directory.
#include <catch2/catch.hpp>

#include "support/fixtures.hpp"
#include "support/store_backend.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
std::uint64_t acked_incident(const v1::ServerMessage& reply) {
  INFO(reply.ShortDebugString());
  REQUIRE(reply.has_ack());
  return reply.ack().incident_id();
}
}  // namespace

TEST_CASE("engine: the full lifecycle, each step acknowledged once on disk") {
  const auto mode = GENERATE(WsClient::Mode::binary, WsClient::Mode::json);
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  auto rows_at = [&](std::uint64_t seq) {
    return timeline.value("SELECT count(*) FROM timeline WHERE seq = " + std::to_string(seq));
  };
  RunningServer server(timeline.location());
  WsClient grid(server.port(), mode);

  auto welcome = grid.hello_on_duty("demo-z1-grid-1");
  CHECK(welcome.staff_id() == "z1-grid-1");
  CHECK(welcome.role() == v1::GRID_WORKER);
  CHECK(welcome.zone_id() == "Z1");
  CHECK_FALSE(welcome.name().empty());

  auto report = report_msg("Z1", "sanitation");
  report.mutable_report()->set_occurred_at_ms(1);  // a claim only
  auto ack = grid.request(report);
  const auto id = acked_incident(ack);
  CHECK(ack.ack().seq() == 2);  // after the SetDuty event
  CHECK(ack.ack().at_ms() >= welcome.server_time_ms());
  // Acknowledged means committed: another connection already sees the row.
  CHECK(rows_at(ack.ack().seq()) == 1);

  std::uint64_t last_seq = ack.ack().seq();
  for (auto step : {discover_msg(id, "I have it"), respond_msg(id, "on site"),
                    resolve_msg(id, "extinguished")}) {
    auto reply = grid.request(step);
    REQUIRE(reply.has_ack());
    CHECK(reply.ack().incident_id() == id);
    CHECK(reply.ack().seq() > last_seq);
    last_seq = reply.ack().seq();
    CHECK(rows_at(last_seq) == 1);
  }

  auto view_reply = grid.request(get_incident_msg(id));
  REQUIRE(view_reply.has_incident());
  const auto& view = view_reply.incident();
  CHECK(view.state() == v1::RESOLVED);
  CHECK(view.zone_id() == "Z1");
  CHECK(view.reporter_id() == "z1-grid-1");
  CHECK(view.reported_at_ms() == ack.ack().at_ms());
  REQUIRE(view.stages_size() == 3);
  CHECK(view.stages(0).deadline_ms() == ack.ack().at_ms() + 60'000);
  CHECK(view.stages(1).deadline_ms() == ack.ack().at_ms() + 300'000);
  CHECK(view.stages(2).deadline_ms() == ack.ack().at_ms() + 900'000);
  for (const auto& stage : view.stages()) {
    CHECK(stage.met_at_ms() >= ack.ack().at_ms());
    CHECK_FALSE(stage.breached());
    CHECK(stage.late_by_ms() == 0);
  }
  REQUIRE(view.timeline_size() == 5);  // reported, AT_REPORT, three advances
  CHECK(view.timeline(0).reported().claimed_occurred_at_ms() == 1);
  CHECK(view.timeline(1).escalated().rung() == v1::AT_REPORT);
  CHECK(view.timeline(4).advanced().note() == "extinguished");
  CHECK(view.timeline(4).actor_id() == "z1-grid-1");
}

TEST_CASE("engine: a step may be skipped forward, never backward") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  WsClient patrol(server.port());
  patrol.hello("demo-z1-patrol");
  const auto id = acked_incident(patrol.request(report_msg("Z1", "public_safety")));
  REQUIRE(patrol.request(respond_msg(id, "already on site")).has_ack());
  const auto rows = count_rows(db);

  for (auto back : {discover_msg(id), respond_msg(id)}) {
    auto reply = patrol.request(back);
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == v1::INVALID_TRANSITION);
  }
  CHECK(count_rows(db) == rows);  // nothing persisted

  auto view = patrol.request(get_incident_msg(id)).incident();
  CHECK(view.state() == v1::RESPONDING);
  CHECK(view.stages(0).met_at_ms() == view.stages(1).met_at_ms());
}

TEST_CASE("engine: pushes reach only the staff of the incident's zone and command") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient reporter(server.port());
  WsClient colleague(server.port(), WsClient::Mode::json);
  WsClient chief(server.port());
  WsClient command(server.port());
  WsClient other_zone(server.port());
  WsClient auditor(server.port());
  WsClient off_duty(server.port());
  reporter.hello_on_duty("demo-z1-grid-1");
  colleague.hello_on_duty("demo-z1-grid-2");
  chief.hello_on_duty("demo-z1-chief");
  command.hello("demo-command");
  other_zone.hello_on_duty("demo-z2-grid-1");
  auditor.hello("demo-auditor");
  off_duty.hello("demo-z1-patrol");

  const auto ack = reporter.request(report_msg("Z1", "sanitation"));
  const auto id = acked_incident(ack);

  for (WsClient* staff : {&colleague, &chief, &reporter}) {
    auto push = staff->next_push();
    REQUIRE(push);
    REQUIRE(push->has_alert());
    CHECK(push->request_id() == 0);
    CHECK(push->alert().reason() == v1::NEW);
    CHECK(push->alert().stage() == v1::DISCOVER);
    CHECK(push->alert().deadline_ms() == ack.ack().at_ms() + 60'000);
    CHECK(push->alert().seq() == ack.ack().seq() + 1);  // the AT_REPORT rung
    CHECK(push->alert().rung() == v1::AT_REPORT);
    CHECK(push->alert().incident().incident_id() == id);
    CHECK(push->alert().incident().zone_id() == "Z1");
  }
  // The fan-out happened before the Ack, so a reply to a later request
  // arrives only after any push there was: none for other zones, for
  // off-duty staff, or for command (not escalated: not CRITICAL).
  for (WsClient* outsider : {&other_zone, &auditor, &off_duty, &command}) {
    auto reply = outsider->request(list_msg());
    CHECK(reply.has_incidents());
    CHECK(outsider->pushes_waiting() == 0);
  }
  // A discover is pushed to the zone as an update.
  REQUIRE(colleague.request(discover_msg(id, "mine")).has_ack());
  auto update = chief.next_push();
  REQUIRE(update);
  CHECK(update->alert().reason() == v1::UPDATED);
  CHECK(update->alert().incident().state() == v1::DISCOVERED);
}

TEST_CASE("engine: a missed deadline is recorded at its deadline and pushed to the zone") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  RunningServer server(timeline.location());
  WsClient grid(server.port());
  WsClient chief(server.port());
  grid.hello_on_duty("demo-z3-grid-1");
  chief.hello_on_duty("demo-z3-chief");
  const auto ack = grid.request(report_msg("Z3", "drill"));
  const auto id = acked_incident(ack);
  const auto deadline = ack.ack().at_ms() + kDrillDiscoverMs;
  REQUIRE(chief.next_push()->alert().reason() == v1::NEW);
  // Nothing is pushed before its time. Commits are answered in order, so
  // the Ack of a duty change (which pushes nothing) follows anything an
  // earlier commit pushed.
  auto nothing_pushed = [&] {
    CHECK(chief.request(duty_msg(true)).has_ack());
    CHECK(chief.pushes_waiting() == 0);
  };
  // At 80 % of the 300 ms discover clock, a warning to the zone first.
  server.advance(kDrillDiscoverMs * 8 / 10);
  nothing_pushed();
  server.advance(1);
  auto warning = chief.next_push();
  REQUIRE(warning);
  CHECK(warning->alert().reason() == v1::WARNING);

  // The deadline itself is still on time; 1 ms beyond it, the breach.
  server.advance(deadline - server.now());
  nothing_pushed();
  server.advance(1);
  auto breach = chief.next_push();
  REQUIRE(breach);
  REQUIRE(breach->has_alert());
  CHECK(breach->alert().reason() == v1::BREACHED);
  CHECK(breach->alert().stage() == v1::DISCOVER);
  CHECK(breach->alert().deadline_ms() == deadline);
  CHECK(breach->alert().incident().incident_id() == id);
  CHECK(breach->alert().incident().stages(0).breached());

  // Met late, the stage records its lateness.
  server.advance(49);
  auto late = grid.request(discover_msg(id));
  REQUIRE(late.has_ack());
  CHECK(late.ack().at_ms() == deadline + 50);
  auto view = grid.request(get_incident_msg(id)).incident();
  CHECK(view.stages(0).late_by_ms() == 50);
  CHECK(timeline.value("SELECT count(*) FROM timeline WHERE kind = 12") == 1);  // a StageBreached row
  bool recorded_on_time = false;
  for (const auto& e : view.timeline()) {
    if (e.has_breached()) {
      recorded_on_time = e.at_ms() == deadline + 1 && e.breached().deadline_ms() == deadline;
    }
  }
  CHECK(recorded_on_time);
}

TEST_CASE("engine: unauthenticated and wrong-token requests are refused") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient anon(server.port());
  auto before = anon.request(report_msg("Z1", "fire"));
  REQUIRE(before.has_error());
  CHECK(before.error().code() == v1::UNAUTHENTICATED);

  auto wrong = hello_msg("demo-not-a-token");
  wrong.set_request_id(WsClient::fresh_request_id());
  anon.send(wrong);
  // Its answer waits out the sign-in delay: a request sent after it is
  // answered first.
  auto still = anon.request(get_incident_msg(1));
  CHECK(still.error().code() == v1::UNAUTHENTICATED);
  CHECK(anon.pushes_waiting() == 0);
  server.advance(net::Limits{}.hello_failure_delay.count());
  auto refused = anon.receive();
  REQUIRE(refused);
  CHECK(refused->request_id() == wrong.request_id());
  CHECK(refused->error().code() == v1::UNAUTHENTICATED);

  anon.hello("demo-z1-grid-1");
  auto twice = anon.request(hello_msg("demo-z1-grid-1"));
  CHECK(twice.error().code() == v1::BAD_REQUEST);
}

TEST_CASE("engine: cross-zone and wrong-role requests are forbidden") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  WsClient z1(server.port());
  WsClient z2(server.port());
  WsClient command(server.port());
  WsClient auditor(server.port());
  z1.hello("demo-z1-grid-1");
  z2.hello("demo-z2-grid-1");
  command.hello("demo-command");
  auditor.hello("demo-auditor");
  const auto id = acked_incident(z1.request(report_msg("Z1", "sanitation")));
  const auto rows = count_rows(db);

  for (auto attempt : {discover_msg(id), respond_msg(id), resolve_msg(id), get_incident_msg(id)}) {
    auto reply = z2.request(attempt);
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == v1::FORBIDDEN);
  }
  CHECK(z2.request(report_msg("Z1", "fire")).error().code() == v1::FORBIDDEN);
  CHECK(auditor.request(discover_msg(id)).error().code() == v1::FORBIDDEN);
  CHECK(auditor.request(report_msg("Z1", "fire")).error().code() == v1::FORBIDDEN);
  CHECK(count_rows(db) == rows);

  auto listed = z2.request(list_msg());
  CHECK(listed.incidents().incidents_size() == 0);

  // Community command acts anywhere; the auditor reads anywhere.
  CHECK(auditor.request(get_incident_msg(id)).has_incident());
  CHECK(command.request(discover_msg(id)).has_ack());
  CHECK(command.request(report_msg("Z7", "fire")).has_ack());
}

TEST_CASE("engine: unknown zones, categories and incidents are NOT_FOUND") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient command(server.port());
  command.hello("demo-command");
  CHECK(command.request(report_msg("Z99", "fire")).error().code() == v1::NOT_FOUND);
  CHECK(command.request(report_msg("Z1", "alien")).error().code() == v1::NOT_FOUND);
  CHECK(command.request(discover_msg(424242)).error().code() == v1::NOT_FOUND);
  CHECK(command.request(get_incident_msg(424242)).error().code() == v1::NOT_FOUND);
}

TEST_CASE("engine: each reply comes in the encoding of its own request") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient client(server.port(), WsClient::Mode::json);
  client.hello("demo-z1-grid-1");
  auto report = report_msg("Z1", "sanitation");
  report.set_request_id(1);
  auto list = list_msg();
  list.set_request_id(2);
  // A JSON report, then a binary request before its Ack can have come back.
  client.send_in(WsClient::Mode::json, report);
  client.send_in(WsClient::Mode::binary, list);
  bool acked = false;
  bool listed = false;
  while (!(acked && listed)) {
    auto m = client.receive();  // throws if a reply's encoding is wrong
    REQUIRE(m);
    acked = acked || (m->request_id() == 1 && m->has_ack());
    listed = listed || (m->request_id() == 2 && m->has_incidents());
  }
}

TEST_CASE("engine: a listing shows an incident only once its report is committed") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient client(server.port());
  client.hello("demo-z1-grid-1");
  auto report = report_msg("Z1", "sanitation");
  report.set_request_id(1);
  auto list = list_msg();
  list.set_request_id(2);
  client.send(report);
  client.send(list);
  std::optional<v1::ServerMessage> ack;
  std::optional<v1::ServerMessage> listing;
  while (!ack || !listing) {
    auto m = client.receive();
    REQUIRE(m);
    if (m->request_id() == 1) {
      ack = m;
    } else if (m->request_id() == 2) {
      listing = m;
      // Answered before the Ack: the report may not be listed yet.
      if (!ack) {
        CHECK(listing->incidents().incidents_size() == 0);
      }
    }
  }
  REQUIRE(ack->has_ack());
  if (listing->incidents().incidents_size() == 1) {
    CHECK(listing->incidents().incidents(0).incident_id() == ack->ack().incident_id());
  }
}

TEST_CASE("engine: open incidents are listed in pages") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient command(server.port());
  command.hello("demo-command");
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(command.request(report_msg("Z2", "sanitation")).ack().incident_id());
  }
  command.request(resolve_msg(ids[1]));  // resolved: not listed
  auto page = list_msg("Z2");
  page.mutable_list_incidents()->set_limit(2);
  auto first = command.request(page).incidents();
  REQUIRE(first.incidents_size() == 2);
  CHECK(first.incidents(0).incident_id() == ids[0]);
  CHECK(first.incidents(1).incident_id() == ids[2]);
  CHECK(first.more());
  page.mutable_list_incidents()->set_after_incident_id(ids[2]);
  auto second = command.request(page).incidents();
  REQUIRE(second.incidents_size() == 2);
  CHECK(second.incidents(1).incident_id() == ids[4]);
  CHECK_FALSE(second.more());
  CHECK(command.request(list_msg("Z3")).incidents().incidents_size() == 0);
}
