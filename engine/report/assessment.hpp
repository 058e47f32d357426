#pragma once
// The SLA figures and the two-level assessment (二级量化考核) over a period,
// computed from a timeline: the fold of its incidents plus the events the
// fold does not keep (visits, escalations). Pure, like sla/: the audit
// command feeds it.
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sla/clock.hpp"
#include "sla/incident.hpp"
#include "sla/incident_table.hpp"
#include "sla/utc_offsets.hpp"
#include "zonecall/v1/audit.pb.h"
#include "zonecall/v1/config.pb.h"

namespace zonecall::report {

// What the figures need from the deployment's config.
struct AssessmentTopology {
  struct Zone {
    std::string id;
    std::uint32_t households = 0;
  };
  std::vector<Zone> zones;
  std::set<std::string> dispute_categories;
  v1::AssessmentWeights weights;  // with defaults applied (see defaults())
  // The site's time zone (its IANA name, for the report) and its offsets:
  // the daily figures count the site's days.
  std::string time_zone;
  sla::UtcOffsets offsets;

  static AssessmentTopology from_config(const v1::Config& config);
  static v1::AssessmentWeights default_weights();
};

// Which incidents count: reported in [from, to), and matching every filter set.
struct AuditFilter {
  sla::Millis from = std::numeric_limits<sla::Millis>::min();
  sla::Millis to = std::numeric_limits<sla::Millis>::max();
  std::string zone_id;
  std::string department_id;
  std::string category;
  bool matches(const sla::Incident& incident) const;
  std::string describe() const;
};

// Nearest-rank percentile (p in 0..100); 0 when empty. Reorders the values
// (a selection, not a sort: a year's figures hold millions of them).
sla::Millis percentile(std::span<sla::Millis> values, double p);

class Assessment {
 public:
  Assessment(AssessmentTopology topology, AuditFilter filter);

  // Every event, in seq order.
  void observe(const v1::TimelineEvent& event);
  // The figures over the folded incidents of the same timeline. `now` bounds
  // the time of stages still unmet (the audit's end).
  v1::AuditReport report(const sla::IncidentTable& incidents,
                         sla::Millis now) const;

  // The bounds of the stage-time histogram's buckets.
  static const std::vector<sla::Millis>& histogram_bounds();

 private:
  AssessmentTopology topology_;
  AuditFilter filter_;
  // Escalations per incident, by rung number.
  std::unordered_map<std::uint64_t, std::array<std::uint16_t, 16>> rungs_;
  // Households visited in the period: zone -> refs, and visits per staff member.
  std::map<std::string, std::set<std::string>> visited_;
  std::map<std::string, std::uint64_t> visits_by_staff_;
};

}  // namespace zonecall::report
