#include "sla/permissions.hpp"

namespace zonecall::sla {

namespace {
std::optional<CommandError> forbidden(const Principal& who, std::string what) {
  return CommandError{v1::FORBIDDEN, v1::Role_Name(who.role) + " " + who.staff_id +
                                         " may not " + std::move(what)};
}

std::string incident_name(const Incident& incident) {
  return "incident " + std::to_string(incident.id) + " in zone " + incident.zone_id;
}

// Zone staff work on their own zone and on zones they were asked to help.
bool zone_covers(const Principal& who, const Incident& incident) {
  return is_zone_role(who.role) &&
         (who.zone_id == incident.zone_id || incident.aid_zone(who.zone_id));
}

bool reads_everything(v1::Role role) {
  return role == v1::COMMUNITY_COMMAND || role == v1::AUDITOR || role == v1::STREET_OFFICE;
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
  if (who.role == v1::COMMUNITY_COMMAND || zone_covers(who, incident)) {
    return std::nullopt;
  }
  return forbidden(who, "act on " + incident_name(incident));
}

std::optional<CommandError> check_call(const Principal& who, const Incident& incident) {
  if (who.role == v1::COMMUNITY_COMMAND ||
      (who.role == v1::ZONE_CHIEF && who.zone_id == incident.zone_id)) {
    return std::nullopt;
  }
  return forbidden(who, "raise a zone call for " + incident_name(incident));
}

std::optional<CommandError> check_department(const Principal& who, const Incident& incident) {
  if (who.role == v1::DEPARTMENT && incident.called(who.department_id)) {
    return std::nullopt;
  }
  return forbidden(who, "answer a call for " + incident_name(incident));
}

std::optional<CommandError> check_read(const Principal& who, const Incident& incident) {
  if (reads_everything(who.role) || zone_covers(who, incident)) {
    return std::nullopt;
  }
  if (who.role == v1::REPORTER && incident.reporter_id == who.staff_id) {
    return std::nullopt;
  }
  if (who.role == v1::DEPARTMENT && incident.called(who.department_id)) {
    return std::nullopt;
  }
  return forbidden(who, "read " + incident_name(incident));
}

std::optional<CommandError> check_set_duty(const Principal& who) {
  if (is_zone_role(who.role)) {
    return std::nullopt;
  }
  return forbidden(who, "go on duty: duty is for zone staff");
}

std::optional<CommandError> check_feedback(const Principal& who, const Incident& incident) {
  if (who.role == v1::COMMUNITY_COMMAND || who.staff_id == incident.reporter_id) {
    return std::nullopt;
  }
  return forbidden(who, "give feedback on " + incident_name(incident));
}

std::optional<CommandError> check_visit(const Principal& who, std::string_view zone_id) {
  if (who.role == v1::COMMUNITY_COMMAND || (is_zone_role(who.role) && who.zone_id == zone_id)) {
    return std::nullopt;
  }
  return forbidden(who, "record a visit in zone " + std::string(zone_id));
}

bool may_see_event(const Principal& who, const v1::TimelineEvent& event, const Incident* incident) {
  if (incident != nullptr) {
    return !check_read(who, *incident);
  }
  if (event.has_duty() || event.has_visit()) {
    const auto& zone = event.has_duty() ? event.duty().zone_id() : event.visit().zone_id();
    return reads_everything(who.role) || (is_zone_role(who.role) && who.zone_id == zone);
  }
  return reads_everything(who.role);
}

}  // namespace zonecall::sla
