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
    p.categories_.emplace(rule.id, std::move(rule));
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

}  // namespace zonecall::sla
