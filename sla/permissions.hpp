#pragma once
// Who may do what: the one place where roles and zones are checked. The
// table it implements is in docs/protocol.md ("Who may do what").
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

// Each returns the refusal, or nothing when allowed.
std::optional<CommandError> check_report(const Principal& who, std::string_view zone_id);
std::optional<CommandError> check_act(const Principal& who, const Incident& incident);
std::optional<CommandError> check_read(const Principal& who, const Incident& incident);
// Whether pushes about this zone's incidents go to this principal.
bool receives_zone_alerts(const Principal& who, std::string_view zone_id);

}  // namespace zonecall::sla
