// The permission table, row by row (docs/protocol.md, "Who may do what").
#include <catch2/catch.hpp>

#include "sla/permissions.hpp"

using namespace zonecall;
using sla::Principal;

namespace {
sla::Incident incident_in(const std::string& zone, const std::string& reporter = "someone") {
  sla::Incident i;
  i.id = 7;
  i.zone_id = zone;
  i.reporter_id = reporter;
  return i;
}
Principal who(v1::Role role, const std::string& zone = "", const std::string& id = "x",
              const std::string& department = "") {
  return Principal{id, id, role, zone, department};
}
bool allowed(const std::optional<sla::CommandError>& e) { return !e.has_value(); }
bool forbidden(const std::optional<sla::CommandError>& e) { return e && e->code == v1::FORBIDDEN; }
}  // namespace

TEST_CASE("row: zone staff act on their own zone's incidents and on mutual-aid ones") {
  for (auto role : {v1::GRID_WORKER, v1::PATROL, v1::COMMUNITY_WORKER, v1::BUILDING_LEADER,
                    v1::VOLUNTEER}) {
    INFO(v1::Role_Name(role));
    const auto p = who(role, "Z1");
    CHECK(sla::is_zone_role(role));
    CHECK(allowed(sla::check_report(p, "Z1")));
    CHECK(forbidden(sla::check_report(p, "Z2")));
    CHECK(allowed(sla::check_act(p, incident_in("Z1"))));
    CHECK(allowed(sla::check_read(p, incident_in("Z1"))));
    CHECK(allowed(sla::check_set_duty(p)));

    auto other = incident_in("Z2");
    CHECK(forbidden(sla::check_act(p, other)));
    CHECK(forbidden(sla::check_read(p, other)));
    other.mutual_aid_zones = {"Z1"};  // Z2 asked Z1 for help
    CHECK(allowed(sla::check_act(p, other)));
    CHECK(allowed(sla::check_read(p, other)));
    // Only chiefs raise zone calls; nobody else answers them.
    CHECK(forbidden(sla::check_call(p, incident_in("Z1"))));
    CHECK(forbidden(sla::check_department(p, incident_in("Z1"))));
  }
}

TEST_CASE("row: zone chiefs, plus raising zone calls for their zone") {
  const auto chief = who(v1::ZONE_CHIEF, "Z1");
  CHECK(allowed(sla::check_act(chief, incident_in("Z1"))));
  CHECK(allowed(sla::check_call(chief, incident_in("Z1"))));
  CHECK(forbidden(sla::check_call(chief, incident_in("Z2"))));
  CHECK(forbidden(sla::check_act(chief, incident_in("Z2"))));
  CHECK(allowed(sla::check_set_duty(chief)));
}

TEST_CASE("row: community command acts on every incident in the community") {
  const auto p = who(v1::COMMUNITY_COMMAND);
  for (auto zone : {"Z1", "Z5", "Z9"}) {
    CHECK(allowed(sla::check_report(p, zone)));
    CHECK(allowed(sla::check_act(p, incident_in(zone))));
    CHECK(allowed(sla::check_call(p, incident_in(zone))));
    CHECK(allowed(sla::check_read(p, incident_in(zone))));
  }
  CHECK(forbidden(sla::check_department(p, incident_in("Z1"))));
  CHECK(forbidden(sla::check_set_duty(p)));
}

TEST_CASE("row: departments see and act on their own calls only") {
  const auto p = who(v1::DEPARTMENT, "", "dept-urban", "urban");
  auto called = incident_in("Z3");
  CHECK(forbidden(sla::check_read(p, called)));
  CHECK(forbidden(sla::check_department(p, called)));
  sla::CallState call;
  call.call_no = 1;
  call.department_id = "urban";
  called.calls.push_back(call);
  CHECK(allowed(sla::check_read(p, called)));
  CHECK(allowed(sla::check_department(p, called)));
  // Another department's call is not theirs.
  auto other = incident_in("Z3");
  call.department_id = "emergency";
  other.calls.push_back(call);
  CHECK(forbidden(sla::check_read(p, other)));
  CHECK(forbidden(sla::check_department(p, other)));
  // And they never act as zone staff.
  CHECK(forbidden(sla::check_act(p, called)));
  CHECK(forbidden(sla::check_call(p, called)));
  CHECK(forbidden(sla::check_report(p, "Z3")));
  CHECK(forbidden(sla::check_set_duty(p)));
}

TEST_CASE("row: auditors read everything and write nothing") {
  const auto p = who(v1::AUDITOR);
  CHECK(allowed(sla::check_read(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_act(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_call(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_report(p, "Z3")));
  CHECK(forbidden(sla::check_department(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_set_duty(p)));
}

TEST_CASE("row: the street office reads everything and writes nothing") {
  const auto p = who(v1::STREET_OFFICE);
  CHECK(allowed(sla::check_read(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_act(p, incident_in("Z3"))));
  CHECK(forbidden(sla::check_report(p, "Z3")));
}

TEST_CASE("row: reporters report anywhere and read only their own reports") {
  const auto p = who(v1::REPORTER, "", "resident-app");
  CHECK(allowed(sla::check_report(p, "Z4")));
  CHECK(allowed(sla::check_read(p, incident_in("Z4", "resident-app"))));
  CHECK(forbidden(sla::check_read(p, incident_in("Z4", "other"))));
  CHECK(forbidden(sla::check_act(p, incident_in("Z4", "resident-app"))));
  CHECK(forbidden(sla::check_set_duty(p)));
}

TEST_CASE("subscribers see events as they may read them; duty changes per zone") {
  v1::TimelineEvent duty;
  duty.mutable_duty()->set_zone_id("Z1");
  CHECK(sla::may_see_event(who(v1::GRID_WORKER, "Z1"), duty, nullptr));
  CHECK_FALSE(sla::may_see_event(who(v1::GRID_WORKER, "Z2"), duty, nullptr));
  CHECK(sla::may_see_event(who(v1::AUDITOR), duty, nullptr));
  CHECK_FALSE(sla::may_see_event(who(v1::REPORTER), duty, nullptr));
  v1::TimelineEvent e;
  const auto incident = incident_in("Z2");
  CHECK(sla::may_see_event(who(v1::GRID_WORKER, "Z2"), e, &incident));
  CHECK_FALSE(sla::may_see_event(who(v1::GRID_WORKER, "Z1"), e, &incident));
}

TEST_CASE("a refusal names who was refused and what") {
  auto err = sla::check_act(who(v1::GRID_WORKER, "Z1", "z1-grid-1"), incident_in("Z2"));
  REQUIRE(err);
  CHECK(err->message.find("z1-grid-1") != std::string::npos);
  CHECK(err->message.find("Z2") != std::string::npos);
}
