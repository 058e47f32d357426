#pragma once
// The SLA policy: how long each stage may take, per category and severity;
// the escalation ladder; the neighbours each zone may call on; and each
// street-office department's limits. Everything here is versioned: an
// incident keeps the policy version in force when it was reported.
// Budgets inherit: severity override <- category <- policy default <- 1/5/15.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sla/clock.hpp"
#include "zonecall/v1/config.pb.h"

namespace zonecall::sla {

struct Budgets {
  Millis discover = 1 * kMinute;
  Millis respond = 5 * kMinute;
  Millis resolve = 15 * kMinute;

  Millis for_stage(v1::Stage stage) const;
  bool operator==(const Budgets&) const = default;
};

struct CategoryRule {
  std::string id;
  v1::Severity default_severity = v1::NORMAL;
  Budgets budgets;
  std::map<v1::Severity, Budgets> by_severity;
  std::string department_id;            // the matching department
  bool beyond_community_authority = false;  // raise a zone call at report
};

struct RungRule {
  bool enabled = true;
  std::vector<v1::AudienceKind> alert;
  bool mutual_aid = false;
};

struct DepartmentRule {
  std::string id;
  Millis accept_limit = 5 * kMinute;    // 限时接单
  Millis on_site_limit = 15 * kMinute;  // counted from acceptance
};

class Policy {
 public:
  // The built-in policy: 1/5/15 minutes, the default ladder, no categories.
  Policy();
  // Reads the policy part of a config. The config is validated by the
  // engine's loader; here a missing field simply inherits.
  static Policy from_config(const v1::Config& config, std::uint32_t version);
  // The ladder of the table in docs/escalation.md.
  static std::map<v1::Rung, RungRule> default_ladder();

  std::uint32_t version() const { return version_; }
  const CategoryRule* category(std::string_view id) const;
  // The severity a report gets when it names none.
  v1::Severity effective_severity(const CategoryRule& rule, v1::Severity asked) const;
  Budgets budgets_for(const CategoryRule& rule, v1::Severity severity) const;

  const RungRule& rung(v1::Rung rung) const;
  int warn_at_percent() const { return warn_at_percent_; }
  const std::vector<std::string>& neighbours(const std::string& zone_id) const;
  bool has_zone(std::string_view zone_id) const { return neighbours_.find(zone_id) != neighbours_.end(); }
  const DepartmentRule* department(std::string_view id) const;

 private:
  std::uint32_t version_ = 0;
  std::map<std::string, CategoryRule, std::less<>> categories_;
  std::map<v1::Rung, RungRule> ladder_;
  int warn_at_percent_ = 80;
  std::map<std::string, std::vector<std::string>, std::less<>> neighbours_;
  std::map<std::string, DepartmentRule, std::less<>> departments_;
};

// Every policy version the engine has run with, and the one in force for
// new reports. An incident is judged by the version it was reported under.
class PolicyHistory {
 public:
  PolicyHistory() = default;
  explicit PolicyHistory(Policy current) { add(std::move(current), true); }
  void add(Policy policy, bool make_current);
  // False when no such version is known.
  bool set_current(std::uint32_t version);
  const Policy& current() const { return versions_.at(current_); }
  // The incident's version, or the current one if that version is unknown.
  const Policy& of_version(std::uint32_t version) const;
  const Policy* find(std::uint32_t version) const;

 private:
  std::map<std::uint32_t, Policy> versions_{{0, Policy()}};
  std::uint32_t current_ = 0;
};

}  // namespace zonecall::sla
