#include "sla/policy.hpp"

namespace zonecall::sla {

namespace {
// A field of 0 in the config means "inherit from the level above".
Budgets overlay(Budgets base, const v1::StageBudgets& over) {
  if (over.discover_ms() != 0) {
    base.discover = over.discover_ms();
  }
  if (over.respond_ms() != 0) {
    base.respond = over.respond_ms();
  }
  if (over.resolve_ms() != 0) {
    base.resolve = over.resolve_ms();
  }
  return base;
}
}  // namespace

Millis Budgets::for_stage(v1::Stage stage) const {
  switch (stage) {
    case v1::DISCOVER:
      return discover;
    case v1::RESPOND:
      return respond;
    default:
      return resolve;
  }
}

std::map<v1::Rung, RungRule> Policy::default_ladder() {
  return {
      {v1::AT_REPORT, {true, {v1::ZONE_ON_DUTY}, false}},
      {v1::DISCOVER_MISSED, {true, {v1::ZONE_CHIEF_OF_ZONE, v1::NEIGHBOUR_ON_DUTY}, false}},
      {v1::RESPOND_MISSED, {true, {v1::NEIGHBOUR_ON_DUTY, v1::COMMAND}, true}},
      {v1::RESOLVE_MISSED, {true, {v1::COMMAND, v1::STREET_OFFICE_DESK}, false}},
      {v1::CRITICAL_AT_REPORT, {true, {v1::NEIGHBOUR_ON_DUTY, v1::COMMAND}, true}},
      {v1::NEAR_DEADLINE, {true, {v1::HANDLERS}, false}},
      {v1::DEPARTMENT_MISSED, {true, {v1::STREET_OFFICE_DESK}, false}},
      {v1::CALL_DECLINED, {true, {v1::COMMAND, v1::ZONE_CHIEF_OF_ZONE}, false}},
  };
}

Policy::Policy() : ladder_(default_ladder()) {}

Policy Policy::from_config(const v1::Config& config, std::uint32_t version) {
  Policy p;
  p.version_ = version;
  const Budgets defaults = overlay(Budgets{}, config.policy().default_budgets());
  for (const auto& c : config.categories()) {
    CategoryRule rule;
    rule.id = c.id();
    rule.default_severity = c.default_severity() == v1::SEVERITY_UNSPECIFIED
                                ? v1::NORMAL
                                : c.default_severity();
    rule.budgets = overlay(defaults, c.budgets());
    for (const auto& s : c.by_severity()) {
      rule.by_severity[s.severity()] = overlay(rule.budgets, s.budgets());
    }
    rule.department_id = c.department_id();
    rule.beyond_community_authority = c.beyond_community_authority();
    p.categories_.emplace(rule.id, std::move(rule));
  }
  const auto& ladder = config.policy().ladder();
  for (const auto& r : ladder.rungs()) {
    RungRule rule;
    rule.enabled = !r.disabled();
    for (int kind : r.alert()) {
      rule.alert.push_back(static_cast<v1::AudienceKind>(kind));
    }
    rule.mutual_aid = r.mutual_aid();
    p.ladder_[r.rung()] = std::move(rule);
  }
  if (ladder.warn_at_percent() != 0) {
    p.warn_at_percent_ = static_cast<int>(ladder.warn_at_percent());
  }
  for (const auto& z : config.zones()) {
    p.neighbours_[z.id()].assign(z.neighbours().begin(), z.neighbours().end());
  }
  for (const auto& d : config.departments()) {
    DepartmentRule rule;
    rule.id = d.id();
    if (d.accept_limit_ms() != 0) {
      rule.accept_limit = d.accept_limit_ms();
    }
    if (d.on_site_limit_ms() != 0) {
      rule.on_site_limit = d.on_site_limit_ms();
    }
    p.departments_.emplace(rule.id, rule);
  }
  return p;
}

const CategoryRule* Policy::category(std::string_view id) const {
  auto it = categories_.find(id);
  return it == categories_.end() ? nullptr : &it->second;
}

v1::Severity Policy::effective_severity(const CategoryRule& rule, v1::Severity asked) const {
  return asked == v1::SEVERITY_UNSPECIFIED ? rule.default_severity : asked;
}

Budgets Policy::budgets_for(const CategoryRule& rule, v1::Severity severity) const {
  auto it = rule.by_severity.find(severity);
  return it == rule.by_severity.end() ? rule.budgets : it->second;
}

const RungRule& Policy::rung(v1::Rung rung) const {
  static const RungRule kDisabled{false, {}, false};
  auto it = ladder_.find(rung);
  return it == ladder_.end() ? kDisabled : it->second;
}

const std::vector<std::string>& Policy::neighbours(const std::string& zone_id) const {
  static const std::vector<std::string> kNone;
  auto it = neighbours_.find(zone_id);
  return it == neighbours_.end() ? kNone : it->second;
}

const DepartmentRule* Policy::department(std::string_view id) const {
  auto it = departments_.find(id);
  return it == departments_.end() ? nullptr : &it->second;
}

void PolicyHistory::add(Policy policy, bool make_current) {
  const auto version = policy.version();
  versions_.insert_or_assign(version, std::move(policy));
  if (make_current) {
    current_ = version;
  }
}

bool PolicyHistory::set_current(std::uint32_t version) {
  if (versions_.count(version) == 0) {
    return false;
  }
  current_ = version;
  return true;
}

const Policy& PolicyHistory::of_version(std::uint32_t version) const {
  auto it = versions_.find(version);
  return it == versions_.end() ? current() : it->second;
}

const Policy* PolicyHistory::find(std::uint32_t version) const {
  auto it = versions_.find(version);
  return it == versions_.end() ? nullptr : &it->second;
}

}  // namespace zonecall::sla
