#pragma once
// `zonecall audit`: reads a timeline read-only (safe while a server writes
// to it), verifies the hash chain, replays every event through sla/, and
// computes the SLA figures and the two-level assessment.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/site_time.hpp"
#include "engine/report/assessment.hpp"
#include "engine/store/timeline_source.hpp"
#include "zonecall/v1/audit.pb.h"
#include "zonecall/v1/config.pb.h"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall::audit {

// The config's topology and weights, with its time zone's offsets resolved.
report::AssessmentTopology topology_for(const v1::Config& config);

// The whole timeline is checked; the filter chooses the incidents counted.
v1::AuditReport run(TimelineSource& timeline, const report::AssessmentTopology& topology,
                    const report::AuditFilter& filter);

// The chain check and the replay of run(), without the figures (`zonecall
// replay`): the report's verdict fields only.
v1::AuditReport verify(TimelineSource& timeline);

// Whether the timeline is intact and consistent: the exit status's meaning.
bool clean(const v1::AuditReport& report);

// One incident's whole story: each event, who did it, and how long each
// stage took against its deadline. Empty if there is no such incident.
// Times are the site's, labelled with their UTC offset.
std::string incident_story(TimelineSource& timeline, std::uint64_t incident_id, const SiteTime& site);

// Renderers. render_verdict: the chain's and the replay's verdict lines,
// listing the first `listed` discrepancies.
std::string render_verdict(const v1::AuditReport& report, int listed);
std::string render_text(const v1::AuditReport& report);
std::string render_json(const v1::AuditReport& report);
std::string render_csv(const v1::AuditReport& report);
std::string render_html(const v1::AuditReport& report);

// "2026-11-26" (the site's midnight) or milliseconds since the epoch.
sla::Millis parse_time(const SiteTime& site, const std::string& text);
std::string format_duration(sla::Millis ms);
// A figure with no data (unset in the report) prints as "-" in every format.
std::string percent_or_dash(bool has, double rate);  // "87.5%"
std::string duration_or_dash(bool has, sla::Millis ms);
std::string score_or_dash(bool has, double score);   // "62.4"

}  // namespace zonecall::audit
