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
Principal who(v1::Role role, const std::string& zone = "", const std::string& id = "x") {
  return Principal{id, id, role, zone, role == v1::DEPARTMENT ? "emergency" : ""};
}
}  // namespace

TEST_CASE("zone roles act, report and read in their own zone only") {
  for (auto role : {v1::ZONE_CHIEF, v1::GRID_WORKER, v1::PATROL, v1::COMMUNITY_WORKER,
                    v1::BUILDING_LEADER, v1::VOLUNTEER}) {
    INFO(v1::Role_Name(role));
    const auto p = who(role, "Z1");
    CHECK(sla::is_zone_role(role));
    CHECK_FALSE(sla::check_act(p, incident_in("Z1")));
    CHECK_FALSE(sla::check_read(p, incident_in("Z1")));
    CHECK_FALSE(sla::check_report(p, "Z1"));
    CHECK(sla::receives_zone_alerts(p, "Z1"));

    auto act = sla::check_act(p, incident_in("Z2"));
    REQUIRE(act);
    CHECK(act->code == v1::FORBIDDEN);
    CHECK(sla::check_read(p, incident_in("Z2"))->code == v1::FORBIDDEN);
    CHECK(sla::check_report(p, "Z2")->code == v1::FORBIDDEN);
    CHECK_FALSE(sla::receives_zone_alerts(p, "Z2"));
  }
}

TEST_CASE("community command acts everywhere") {
  const auto p = who(v1::COMMUNITY_COMMAND);
  for (auto zone : {"Z1", "Z5", "Z9"}) {
    CHECK_FALSE(sla::check_act(p, incident_in(zone)));
    CHECK_FALSE(sla::check_read(p, incident_in(zone)));
    CHECK_FALSE(sla::check_report(p, zone));
    CHECK(sla::receives_zone_alerts(p, zone));
  }
}

TEST_CASE("auditors read everything and write nothing") {
  const auto p = who(v1::AUDITOR);
  CHECK_FALSE(sla::check_read(p, incident_in("Z3")));
  CHECK(sla::check_act(p, incident_in("Z3"))->code == v1::FORBIDDEN);
  CHECK(sla::check_report(p, "Z3")->code == v1::FORBIDDEN);
  CHECK_FALSE(sla::receives_zone_alerts(p, "Z3"));
}

TEST_CASE("reporters report anywhere and read only their own reports") {
  const auto p = who(v1::REPORTER, "", "resident-app");
  CHECK_FALSE(sla::check_report(p, "Z4"));
  CHECK_FALSE(sla::check_read(p, incident_in("Z4", "resident-app")));
  CHECK(sla::check_read(p, incident_in("Z4", "other"))->code == v1::FORBIDDEN);
  CHECK(sla::check_act(p, incident_in("Z4", "resident-app"))->code == v1::FORBIDDEN);
}

TEST_CASE("departments have no zone rights until a zone call names them") {
  const auto p = who(v1::DEPARTMENT);
  CHECK(sla::check_act(p, incident_in("Z1"))->code == v1::FORBIDDEN);
  CHECK(sla::check_read(p, incident_in("Z1"))->code == v1::FORBIDDEN);
  CHECK(sla::check_report(p, "Z1")->code == v1::FORBIDDEN);
}

TEST_CASE("a refusal names who was refused and what") {
  auto err = sla::check_act(who(v1::GRID_WORKER, "Z1", "z1-grid-1"), incident_in("Z2"));
  REQUIRE(err);
  CHECK(err->message.find("z1-grid-1") != std::string::npos);
  CHECK(err->message.find("Z2") != std::string::npos);
}
