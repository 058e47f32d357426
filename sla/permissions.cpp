#include "sla/permissions.hpp"

namespace zonecall::sla {

namespace {
std::optional<CommandError> forbidden(const Principal& who, std::string what) {
  return CommandError{v1::FORBIDDEN, v1::Role_Name(who.role) + " " + who.staff_id +
                                         " may not " + std::move(what)};
}
}  // namespace

bool is_zone_role(v1::Role role) {
  switch (role) {
    case v1::ZONE_CHIEF:
    case v1::GRID_WORKER:
    case v1::PATROL:
    case v1::COMMUNITY_WORKER:
    case v1::BUILDING_LEADER:
    case v1::VOLUNTEER:
      return true;
    default:
      return false;
  }
}

std::optional<CommandError> check_report(const Principal& who, std::string_view zone_id) {
  if (who.role == v1::COMMUNITY_COMMAND || who.role == v1::REPORTER) {
    return std::nullopt;
  }
  if (is_zone_role(who.role) && who.zone_id == zone_id) {
    return std::nullopt;
  }
  return forbidden(who, "report in zone " + std::string(zone_id));
}

std::optional<CommandError> check_act(const Principal& who, const Incident& incident) {
  if (who.role == v1::COMMUNITY_COMMAND) {
    return std::nullopt;
  }
  if (is_zone_role(who.role) && who.zone_id == incident.zone_id) {
    return std::nullopt;
  }
  return forbidden(who, "act on incident " + std::to_string(incident.id) + " in zone " +
                            incident.zone_id);
}

std::optional<CommandError> check_read(const Principal& who, const Incident& incident) {
  if (who.role == v1::COMMUNITY_COMMAND || who.role == v1::AUDITOR) {
    return std::nullopt;
  }
  if (who.role == v1::REPORTER && incident.reporter_id == who.staff_id) {
    return std::nullopt;
  }
  if (is_zone_role(who.role) && who.zone_id == incident.zone_id) {
    return std::nullopt;
  }
  return forbidden(who, "read incident " + std::to_string(incident.id));
}

bool receives_zone_alerts(const Principal& who, std::string_view zone_id) {
  return who.role == v1::COMMUNITY_COMMAND || (is_zone_role(who.role) && who.zone_id == zone_id);
}

}  // namespace zonecall::sla
