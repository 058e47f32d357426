#pragma once
// One scope's figures (the community, a zone, a staff member, a department),
// accumulated incident by incident: counts, stage compliance, percentiles,
// the slowest cases, and a department's call timeliness.
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sla/clock.hpp"
#include "sla/incident.hpp"
#include "zonecall/v1/audit.pb.h"

namespace zonecall::report {

// Escalations of one incident, by rung number.
using RungCounts = std::array<std::uint16_t, 16>;

// Nearest-rank percentile (p in 0..100); 0 when empty. Reorders the values
// (a selection, not a sort: a year's figures hold millions of them).
sla::Millis percentile(std::span<sla::Millis> values, double p);

// part / whole, 0 when whole is 0.
double rate(std::uint64_t part, std::uint64_t whole);

// The slowest few stages, longest first (ties: lower incident id first),
// kept as they come rather than sorting a year's millions of cases to show
// five (those sorts were part of the fifth of the audit the report took).
class WorstCases {
 public:
  struct Case {
    std::uint64_t incident;
    sla::Millis time;
    bool unmet;
  };
  void offer(const Case& c);
  const std::vector<Case>& cases() const { return cases_; }

 private:
  std::vector<Case> cases_;
};

class ScopeBuilder {
 public:
  ScopeBuilder(std::string scope, std::string id);

  // Counts an incident. With `met_by`, only the stages that person met count
  // (a staff member's scope); without, every stage.
  void add(const sla::Incident& incident, const RungCounts* rungs, const std::set<std::string>& disputes,
           sla::Millis now, const std::string* met_by = nullptr);
  // Counts the incident's calls to this department.
  void add_calls(const sla::Incident& incident, const std::string& department);
  void set_visits(std::uint64_t households, std::uint64_t visited);
  // Room for this many incidents' stage times, so a year's figures do not
  // grow (copy and fault in) their vectors a doubling at a time.
  void reserve(std::size_t incidents);
  v1::ScopeFigures finish();

 private:
  struct Stage {
    std::uint64_t decided = 0, on_time = 0, late = 0, unmet = 0;
    std::vector<sla::Millis> times;
    WorstCases worst;
  };
  v1::ScopeFigures out_;
  std::map<std::string, std::uint64_t> categories_;
  std::map<std::string, std::uint64_t> severities_;
  std::array<Stage, 3> stages_;
  std::array<std::uint64_t, 16> escalations_{};
  std::vector<sla::Millis> accept_times_;
  std::vector<sla::Millis> on_site_times_;
};

}  // namespace zonecall::report
