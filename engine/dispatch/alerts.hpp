#pragma once
// The alert planner: which committed events alert whom, with what. The
// ladder's rungs carry their recipients on the event (the core resolved
// them); breaches, updates and zone-call changes go to the incident's zone
// staff and the departments concerned.
#include <optional>
#include <vector>

#include "engine/dispatch/sessions.hpp"
#include "sla/incident.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall {

// An alert, and its recipients, still to be resolved to sessions.
struct Push {
  std::optional<v1::ServerMessage> alert;
  std::vector<v1::Recipient> recipients;
};

// The alert a committed event sends; none for most. `incident` is the
// event's incident right after it (null for events of no incident).
Push alert_for(const v1::TimelineEvent& event, const sla::Incident* incident);

// Sends the alert to its audience as the sessions and `duty` are now, with
// the incident's view as `incident` is now.
void send_alert(SessionRegistry& sessions, const Push& push, const sla::Incident& incident,
                const sla::DutyState& duty);

}  // namespace zonecall
