#pragma once
// Who may do what: the one place where roles and zones are checked. The
// table it implements is in docs/protocol.md ("Who may do what"):
//
//   zone staff        act on their zone's incidents and on those their zone
//                     was asked to help with (mutual aid); report in their zone
//   zone chief        the same, and raise zone calls
//   community command everything in the community
//   department        see and answer its own calls only
//   auditor           read everything, write nothing
//   street office     read everything, write nothing (receives escalations)
//   reporter          report anywhere, read its own reports
//   feedback          the incident's reporter, or community command
//   household visits  zone staff in their zone, or community command
#include <optional>
#include <string>
#include <string_view>

#include "sla/errors.hpp"
#include "sla/incident.hpp"
#include "zonecall/v1/common.pb.h"

namespace zonecall::sla {

// An authenticated staff member (or reporter, or auditor).
struct Principal {
  std::string staff_id;
  std::string name;
  v1::Role role = v1::ROLE_UNSPECIFIED;
  std::string zone_id;        // for zone roles
  std::string department_id;  // for DEPARTMENT
};

// Grid workers, patrol, community workers, building leaders, volunteers and
// the zone chief: the roles that belong to one zone.
bool is_zone_role(v1::Role role);

// Each returns the refusal (FORBIDDEN), or nothing when allowed.
std::optional<CommandError> check_report(const Principal& who, std::string_view zone_id);
// Discover, Respond, Resolve.
std::optional<CommandError> check_act(const Principal& who, const Incident& incident);
// Raise a zone call.
std::optional<CommandError> check_call(const Principal& who, const Incident& incident);
// Accept, decline, or report on site for a call to one's department.
std::optional<CommandError> check_department(const Principal& who, const Incident& incident);
std::optional<CommandError> check_read(const Principal& who, const Incident& incident);
std::optional<CommandError> check_set_duty(const Principal& who);
// Rate a resolved incident: its reporter, or community command.
std::optional<CommandError> check_feedback(const Principal& who, const Incident& incident);
// Record a household visit in a zone: that zone's staff, or community command.
std::optional<CommandError> check_visit(const Principal& who, std::string_view zone_id);

// Whether a subscriber may see a timeline event. `incident` is the event's
// incident (null for events about no incident, such as duty changes).
bool may_see_event(const Principal& who, const v1::TimelineEvent& event, const Incident* incident);

}  // namespace zonecall::sla
