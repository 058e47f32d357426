// The permission table of docs/protocol.md, row by row, against a real
// server. Each refusal is FORBIDDEN.
#include <catch2/catch.hpp>

#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
constexpr v1::ErrorCode kAllowed = v1::ERROR_CODE_UNSPECIFIED;

// a: Z1 with an open call to drill-desk; b: Z2; c: Z1 without a call.
struct Scene {
  TempDir dir;
  RunningServer server{dir.file("zonecall.db")};
  std::uint64_t a = 0, b = 0, c = 0;
  Scene() {
    WsClient command(server.port());
    command.hello("demo-command");
    a = command.request(report_msg("Z1", "sanitation")).ack().incident_id();
    b = command.request(report_msg("Z2", "sanitation")).ack().incident_id();
    c = command.request(report_msg("Z1", "sanitation")).ack().incident_id();
    REQUIRE(command.request(zone_call_msg(a, "drill-desk")).has_ack());
  }
};

// The error code a request got, or kAllowed.
v1::ErrorCode outcome(WsClient& client, v1::ClientMessage m) {
  auto reply = client.request(std::move(m));
  UNSCOPED_INFO(reply.ShortDebugString());
  return reply.has_error() ? reply.error().code() : kAllowed;
}

void check(WsClient& client, const char* what, v1::ClientMessage m, v1::ErrorCode expected) {
  INFO(what);
  CHECK(v1::ErrorCode_Name(outcome(client, std::move(m))) == v1::ErrorCode_Name(expected));
}
}  // namespace

TEST_CASE("permissions: zone staff act on their zone's incidents only") {
  Scene s;
  WsClient grid(s.server.port());
  grid.hello("demo-z1-grid-1");
  check(grid, "report in own zone", report_msg("Z1", "sanitation"), kAllowed);
  check(grid, "report elsewhere", report_msg("Z2", "sanitation"), v1::FORBIDDEN);
  check(grid, "read own zone", get_incident_msg(s.a), kAllowed);
  check(grid, "read elsewhere", get_incident_msg(s.b), v1::FORBIDDEN);
  check(grid, "discover own zone", discover_msg(s.c), kAllowed);
  check(grid, "discover elsewhere", discover_msg(s.b), v1::FORBIDDEN);
  check(grid, "raise a zone call", zone_call_msg(s.c, "drill-desk"), v1::FORBIDDEN);
  check(grid, "answer a call", accept_msg(s.a), v1::FORBIDDEN);
  check(grid, "go on duty", duty_msg(true), kAllowed);
}

TEST_CASE("permissions: zone chiefs also raise zone calls for their zone") {
  Scene s;
  WsClient chief(s.server.port());
  chief.hello("demo-z1-chief");
  check(chief, "raise a call", zone_call_msg(s.c, "drill-desk"), kAllowed);
  check(chief, "raise a call elsewhere", zone_call_msg(s.b, "drill-desk"), v1::FORBIDDEN);
  check(chief, "resolve own zone", resolve_msg(s.c), kAllowed);
  check(chief, "answer a call", accept_msg(s.a), v1::FORBIDDEN);
}

TEST_CASE("permissions: community command acts on every incident") {
  Scene s;
  WsClient command(s.server.port());
  command.hello("demo-command-duty");
  check(command, "report anywhere", report_msg("Z9", "sanitation"), kAllowed);
  check(command, "act anywhere", respond_msg(s.b), kAllowed);
  check(command, "raise a call anywhere", zone_call_msg(s.b, "drill-desk"), kAllowed);
  check(command, "read anywhere", get_incident_msg(s.c), kAllowed);
  check(command, "answer a call", accept_msg(s.a), v1::FORBIDDEN);
  check(command, "go on duty", duty_msg(true), v1::FORBIDDEN);
}

TEST_CASE("permissions: departments see and act on their own calls only") {
  Scene s;
  WsClient desk(s.server.port());
  desk.hello("demo-dept-drill-desk");
  check(desk, "read its call", get_incident_msg(s.a), kAllowed);
  check(desk, "read another incident", get_incident_msg(s.b), v1::FORBIDDEN);
  check(desk, "answer another incident", accept_msg(s.b), v1::FORBIDDEN);
  check(desk, "answer its call", accept_msg(s.a), kAllowed);
  check(desk, "act as zone staff", resolve_msg(s.a), v1::FORBIDDEN);
  check(desk, "report", report_msg("Z1", "sanitation"), v1::FORBIDDEN);
  check(desk, "raise a call", zone_call_msg(s.c, "drill-desk"), v1::FORBIDDEN);
  check(desk, "go on duty", duty_msg(true), v1::FORBIDDEN);
  WsClient other(s.server.port());
  other.hello("demo-dept-urban-management");
  check(other, "another department", get_incident_msg(s.a), v1::FORBIDDEN);
}

TEST_CASE("permissions: auditors read everything and write nothing") {
  Scene s;
  WsClient auditor(s.server.port());
  auditor.hello("demo-auditor");
  check(auditor, "read", get_incident_msg(s.a), kAllowed);
  check(auditor, "read", get_incident_msg(s.b), kAllowed);
  check(auditor, "report", report_msg("Z1", "sanitation"), v1::FORBIDDEN);
  check(auditor, "act", discover_msg(s.c), v1::FORBIDDEN);
  check(auditor, "call", zone_call_msg(s.c, "drill-desk"), v1::FORBIDDEN);
  check(auditor, "answer", accept_msg(s.a), v1::FORBIDDEN);
  check(auditor, "duty", duty_msg(true), v1::FORBIDDEN);
  check(auditor, "subscribe", subscribe_msg(0), kAllowed);
}

TEST_CASE("permissions: reporters report and read their own reports") {
  Scene s;
  WsClient reporter(s.server.port());
  reporter.hello("demo-reporter");
  auto own = reporter.request(report_msg("Z4", "sanitation"));
  REQUIRE(own.has_ack());
  check(reporter, "read own report", get_incident_msg(own.ack().incident_id()), kAllowed);
  check(reporter, "read another's", get_incident_msg(s.a), v1::FORBIDDEN);
  check(reporter, "act on own report", discover_msg(own.ack().incident_id()), v1::FORBIDDEN);
  check(reporter, "duty", duty_msg(true), v1::FORBIDDEN);
}

TEST_CASE("permissions: the street office reads everything and writes nothing") {
  Scene s;
  WsClient street(s.server.port());
  street.hello("demo-street-duty");
  check(street, "read", get_incident_msg(s.b), kAllowed);
  check(street, "act", discover_msg(s.b), v1::FORBIDDEN);
  check(street, "report", report_msg("Z2", "sanitation"), v1::FORBIDDEN);
}

TEST_CASE("permissions: feedback by the reporter or command, once, after resolution") {
  Scene s;
  WsClient reporter(s.server.port());
  reporter.hello("demo-reporter");
  const auto id = reporter.request(report_msg("Z4", "sanitation")).ack().incident_id();
  auto feedback = [&](std::uint64_t incident) {
    v1::ClientMessage m;
    m.mutable_feedback()->set_incident_id(incident);
    m.mutable_feedback()->set_satisfied(true);
    m.mutable_feedback()->set_score(4);
    return m;
  };
  check(reporter, "before resolution", feedback(id), v1::INVALID_TRANSITION);
  WsClient command(s.server.port());
  command.hello("demo-command");
  REQUIRE(command.request(resolve_msg(id, "done")).has_ack());
  WsClient grid(s.server.port());
  grid.hello("demo-z4-grid-1");
  check(grid, "someone else's report", feedback(id), v1::FORBIDDEN);
  auto bad_score = feedback(id);
  bad_score.mutable_feedback()->set_score(9);
  check(reporter, "a score out of 1..5", bad_score, v1::BAD_REQUEST);
  check(reporter, "the reporter", feedback(id), kAllowed);
  check(command, "a second time", feedback(id), v1::INVALID_TRANSITION);
}

TEST_CASE("permissions: household visits by the zone's staff or command") {
  Scene s;
  auto visit = [](const std::string& zone, const std::string& household) {
    v1::ClientMessage m;
    m.mutable_visit()->set_zone_id(zone);
    m.mutable_visit()->set_household_ref(household);
    return m;
  };
  WsClient grid(s.server.port());
  grid.hello("demo-z1-grid-1");
  check(grid, "own zone", visit("Z1", "C1-2-301"), kAllowed);
  check(grid, "another zone", visit("Z2", "C3-1-101"), v1::FORBIDDEN);
  check(grid, "no household", visit("Z1", ""), v1::BAD_REQUEST);
  check(grid, "unknown zone", visit("Z99", "x"), v1::NOT_FOUND);
  WsClient command(s.server.port());
  command.hello("demo-command");
  check(command, "command anywhere", visit("Z2", "C3-1-101"), kAllowed);
  WsClient auditor(s.server.port());
  auditor.hello("demo-auditor");
  check(auditor, "auditor", visit("Z1", "x"), v1::FORBIDDEN);
}
