#pragma once
// The SLA figures and the two-level assessment (二级量化考核) over a period,
// computed from a timeline: the fold of its incidents plus the events the
// fold does not keep (visits, escalations). Pure, like sla/ (no threads, no
// I/O): the audit command feeds it, and may count on two threads (Tally).
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/report/scope_figures.hpp"
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

class Assessment {
 public:
  Assessment(AssessmentTopology topology, AuditFilter filter);

  // Every event, in seq order.
  void observe(const v1::TimelineEvent& event);

  // The figures over the folded incidents of the same timeline, counted in
  // two passes. Both only read the incidents and the assessment, and each
  // writes its own figures, so a caller may run them on two threads at once
  // (the audit does: a year's report takes half as long, bench/RESULTS.md),
  // then call finish() once both have returned.
  class Tally {
   public:
    // The community, the zones, the days and the stage-time histograms.
    void count_places();
    // The staff and the departments.
    void count_people();
    v1::AuditReport finish();

   private:
    friend class Assessment;
    Tally(const Assessment& assessment, const sla::IncidentTable& incidents, sla::Millis now);

    // Per site day: incidents, and per stage [met on time, decided].
    using DayCounts = std::pair<std::uint64_t, std::array<std::array<std::uint64_t, 2>, 3>>;

    const Assessment* assessment_;
    sla::Millis now_;
    sla::Millis end_;  // unmet stages are timed to here
    std::vector<const sla::Incident*> scope_;  // in id order: every list and tie comes out the same
    ScopeBuilder community_{"community", ""};
    std::map<std::string, ScopeBuilder> zones_;
    std::map<std::int64_t, DayCounts> daily_;
    std::array<std::vector<std::uint64_t>, 3> histogram_;
    std::map<std::string, ScopeBuilder> staff_;
    std::map<std::string, ScopeBuilder> departments_;
  };
  // `now` bounds the time of stages still unmet (the audit's end). The tally
  // reads this assessment and the incidents until finish().
  Tally tally(const sla::IncidentTable& incidents, sla::Millis now) const;
  // Both passes in turn, and finish().
  v1::AuditReport report(const sla::IncidentTable& incidents, sla::Millis now) const;

  // The bounds of the stage-time histogram's buckets.
  static const std::vector<sla::Millis>& histogram_bounds();

 private:
  const RungCounts* rungs_of(std::uint64_t incident_id) const;

  AssessmentTopology topology_;
  AuditFilter filter_;
  std::unordered_map<std::uint64_t, RungCounts> rungs_;  // escalations per incident
  // Households visited in the period: zone -> refs, and visits per staff member.
  std::map<std::string, std::set<std::string>> visited_;
  std::map<std::string, std::uint64_t> visits_by_staff_;
};

}  // namespace zonecall::report
