#pragma once
// The SLA policy: how long each stage may take, per category and severity.
// Budgets inherit: severity override <- category <- policy default <- 1/5/15.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

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
};

class Policy {
 public:
  // The built-in policy: 1/5/15 minutes and no categories.
  Policy() = default;
  // Reads the policy part of a config. The config is validated by the
  // engine's loader; here a missing field simply inherits.
  static Policy from_config(const v1::Config& config, std::uint32_t version);

  std::uint32_t version() const { return version_; }
  const CategoryRule* category(std::string_view id) const;
  // The severity a report gets when it names none.
  v1::Severity effective_severity(const CategoryRule& rule, v1::Severity asked) const;
  Budgets budgets_for(const CategoryRule& rule, v1::Severity severity) const;

 private:
  std::uint32_t version_ = 0;
  std::map<std::string, CategoryRule, std::less<>> categories_;
};

}  // namespace zonecall::sla
