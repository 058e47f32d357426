#pragma once
// `zonecall audit`: reads a timeline read-only (safe while a server writes
// to it), verifies the hash chain, replays every event through sla/, and
// computes the SLA figures and the two-level assessment.
#include <cstdint>
#include <string>
#include <vector>

#include "sla/assessment.hpp"
#include "zonecall/v1/audit.pb.h"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall::audit {

// The whole timeline is checked; the filter chooses the incidents counted.
v1::AuditReport run(const std::string& db_path, const sla::AssessmentTopology& topology,
                    const sla::AuditFilter& filter);

// Whether the timeline is intact and consistent: the exit status's meaning.
bool clean(const v1::AuditReport& report);

// One incident's whole story: each event, who did it, and how long each
// stage took against its deadline. Empty if there is no such incident.
std::string incident_story(const std::string& db_path, std::uint64_t incident_id);

// Renderers.
std::string render_text(const v1::AuditReport& report);
std::string render_json(const v1::AuditReport& report);
std::string render_csv(const v1::AuditReport& report);
std::string render_html(const v1::AuditReport& report);

// "2026-11-26" (midnight, UTC+8) or milliseconds since the epoch.
sla::Millis parse_time(const std::string& text);
// "2026-11-26 09:15:02.120" in UTC+8.
std::string format_time(sla::Millis t);
std::string format_duration(sla::Millis ms);

}  // namespace zonecall::audit
