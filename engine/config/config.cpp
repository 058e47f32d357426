#include "engine/config/config.hpp"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "engine/site_time.hpp"
#include "sla/incident_book.hpp"
#include "sla/permissions.hpp"

namespace zonecall::config {

namespace pb = google::protobuf;

ConfigError::ConfigError(const std::string& source, int line, int column,
                         const std::string& reason)
    : std::runtime_error(source + ":" + std::to_string(line) +
                         (column > 0 ? ":" + std::to_string(column) : std::string()) + ": " +
                         reason),
      line_(line) {}

namespace {

// Collects the first syntax error protobuf's parser reports.
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!found) {
      found = true;
      this->line = line + 1;
      this->column = column + 1;
      this->message = message;
    }
  }
  bool found = false;
  int line = 0;
  int column = 0;
  std::string message;
};

// Finds where a field of the parsed message was written, to name its line.
class Locator {
 public:
  Locator(const pb::TextFormat::ParseInfoTree* tree, const pb::Descriptor* type)
      : tree_(tree), type_(type) {}

  Locator nested(const char* field, int index) const {
    const auto* f = type_->FindFieldByName(field);
    return Locator(tree_ ? tree_->GetTreeForNested(f, index) : nullptr, f->message_type());
  }
  // 1-based line of field[index] (index -1 for a singular field), 0 if unknown.
  int line(const char* field, int index = -1) const {
    if (tree_ == nullptr) {
      return 0;
    }
    const auto loc = tree_->GetLocation(type_->FindFieldByName(field), index);
    return loc.line < 0 ? 0 : loc.line + 1;
  }

 private:
  const pb::TextFormat::ParseInfoTree* tree_;
  const pb::Descriptor* type_;
};

// The field's own line when it was written, else its message's line.
int or_line(int field_line, int fallback) { return field_line > 0 ? field_line : fallback; }

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

void validate(const v1::Config& c, const Locator& at, const std::string& source) {
  auto fail = [&](int line, const std::string& reason) { throw ConfigError(source, line, 0, reason); };

  if (c.zones_size() == 0) {
    fail(1, "the config has no zones");
  }
  std::map<std::string, int> zone_index;
  for (int i = 0; i < c.zones_size(); ++i) {
    const auto& z = c.zones(i);
    const int line = at.line("zones", i);
    if (z.id().empty()) {
      fail(line, "zone without an id");
    }
    if (!zone_index.emplace(z.id(), i).second) {
      fail(at.nested("zones", i).line("id"), "duplicate zone id '" + z.id() + "'");
    }
  }
  for (int i = 0; i < c.zones_size(); ++i) {
    const auto& z = c.zones(i);
    for (int j = 0; j < z.neighbours_size(); ++j) {
      const auto& n = z.neighbours(j);
      const int line = at.nested("zones", i).line("neighbours", j);
      auto it = zone_index.find(n);
      if (it == zone_index.end()) {
        fail(line, "zone " + z.id() + " names unknown neighbour '" + n + "'");
      }
      if (n == z.id()) {
        fail(line, "zone " + z.id() + " cannot neighbour itself");
      }
      const auto& back = c.zones(it->second).neighbours();
      if (std::find(back.begin(), back.end(), z.id()) == back.end()) {
        fail(line, "neighbours must be symmetric: " + n + " does not list " + z.id());
      }
    }
  }

  std::set<std::string> departments;
  for (int i = 0; i < c.departments_size(); ++i) {
    const auto& d = c.departments(i);
    if (d.id().empty() || !departments.insert(d.id()).second) {
      fail(at.line("departments", i), "department id '" + d.id() + "' is empty or repeated");
    }
  }

  for (int i = 0; i < c.stations_size(); ++i) {
    const auto& s = c.stations(i);
    if (!zone_index.count(s.zone_id())) {
      fail(or_line(at.nested("stations", i).line("zone_id"), at.line("stations", i)),
           "station " + s.id() + " is in unknown zone '" + s.zone_id() + "'");
    }
  }

  std::set<std::string> staff_ids;
  std::set<std::string> token_hashes;
  for (int i = 0; i < c.staff_size(); ++i) {
    const auto& s = c.staff(i);
    const Locator field = at.nested("staff", i);
    const int line = at.line("staff", i);
    if (s.id().empty() || !staff_ids.insert(s.id()).second) {
      fail(or_line(field.line("id"), line), "staff id '" + s.id() + "' is empty or repeated");
    }
    if (s.id() == sla::kEngineActor) {
      // The timeline's actor for clock-driven events: a staff member of that
      // name could not be told apart from the clock.
      fail(or_line(field.line("id"), line),
           "staff id '" + s.id() + "' is reserved for the engine's own events");
    }
    if (s.role() == v1::ROLE_UNSPECIFIED) {
      fail(line, "staff " + s.id() + " has no role");
    }
    if (sla::is_zone_role(s.role()) && !zone_index.count(s.zone_id())) {
      fail(or_line(field.line("zone_id"), line),
           "staff " + s.id() + " needs a known zone_id, not '" + s.zone_id() + "'");
    }
    if (s.role() == v1::DEPARTMENT && !departments.count(s.department_id())) {
      fail(or_line(field.line("department_id"), line),
           "staff " + s.id() + " needs a known department_id, not '" + s.department_id() + "'");
    }
    if (!is_sha256_hex(s.token_sha256())) {
      fail(or_line(field.line("token_sha256"), line),
           "staff " + s.id() + ": token_sha256 must be 64 lowercase hex digits");
    }
    if (!token_hashes.insert(s.token_sha256()).second) {
      fail(field.line("token_sha256"), "staff " + s.id() + " shares a token with another");
    }
  }

  std::set<std::string> categories;
  for (int i = 0; i < c.categories_size(); ++i) {
    const auto& cat = c.categories(i);
    const Locator field = at.nested("categories", i);
    if (cat.id().empty() || !categories.insert(cat.id()).second) {
      fail(at.line("categories", i), "category id '" + cat.id() + "' is empty or repeated");
    }
    if (!cat.department_id().empty() && !departments.count(cat.department_id())) {
      fail(field.line("department_id"), "category " + cat.id() + " names unknown department '" +
                                            cat.department_id() + "'");
    }
    if (cat.beyond_community_authority() && cat.department_id().empty()) {
      fail(at.line("categories", i), "category " + cat.id() +
                                         " is beyond the community's authority but names no department");
    }
    std::set<int> severities;
    for (int j = 0; j < cat.by_severity_size(); ++j) {
      const auto sev = cat.by_severity(j).severity();
      if (sev == v1::SEVERITY_UNSPECIFIED || !severities.insert(sev).second) {
        fail(field.line("by_severity", j),
             "category " + cat.id() + ": by_severity needs a distinct severity");
      }
    }
  }
}

}  // namespace

namespace {
v1::Config parse_syntax(std::string_view text, const std::string& source_name,
                        pb::TextFormat::ParseInfoTree* tree) {
  v1::Config config;
  pb::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(tree);
  if (!parser.ParseFromString(std::string(text), &config)) {
    throw ConfigError(source_name, errors.line, errors.column,
                      errors.found ? errors.message : "cannot parse");
  }
  return config;
}
}  // namespace

namespace {
void validate_ladder(const v1::Config& c, const Locator& at, const std::string& source) {
  const Locator ladder = at.nested("policy", -1).nested("ladder", -1);
  std::set<int> rungs;
  for (int i = 0; i < c.policy().ladder().rungs_size(); ++i) {
    const auto& r = c.policy().ladder().rungs(i);
    if (r.rung() == v1::RUNG_UNSPECIFIED || !rungs.insert(r.rung()).second) {
      throw ConfigError(source, ladder.line("rungs", i), 0, "ladder rungs need a distinct rung");
    }
    for (int kind : r.alert()) {
      if (kind == v1::AUDIENCE_UNSPECIFIED) {
        throw ConfigError(source, ladder.line("rungs", i), 0, "a rung alerts a named audience");
      }
    }
  }
  if (c.policy().ladder().warn_at_percent() > 99) {
    throw ConfigError(source, ladder.line("warn_at_percent"), 0, "warn_at_percent must be below 100");
  }
}
}  // namespace

v1::Config parse(std::string_view text, const std::string& source_name) {
  pb::TextFormat::ParseInfoTree tree;
  v1::Config config = parse_syntax(text, source_name, &tree);
  const Locator root(&tree, v1::Config::descriptor());
  validate(config, root, source_name);
  validate_ladder(config, root, source_name);
  if (config.time_zone().empty()) {
    config.set_time_zone(kDefaultTimeZone);
  }
  if (!known_time_zone(config.time_zone())) {
    throw ConfigError(source_name, or_line(root.line("time_zone"), 1), 0,
                      "time_zone '" + config.time_zone() +
                          "' is not an IANA time zone this system's tzdata knows (e.g. Asia/Shanghai)");
  }
  return config;
}

sla::Policy policy_from_fingerprint(const std::string& fingerprint, std::uint32_t version) {
  pb::TextFormat::ParseInfoTree tree;
  const auto config = parse_syntax(fingerprint, "policy version " + std::to_string(version), &tree);
  return sla::Policy::from_config(config, version);
}

v1::Config load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path, 0, 0, "cannot open the file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

sla::PolicyHistory policy_history(const std::map<std::uint32_t, std::string>& versions) {
  sla::PolicyHistory history;
  for (const auto& [version, fingerprint] : versions) {
    history.add(policy_from_fingerprint(fingerprint, version), true);
  }
  return history;
}

std::string policy_fingerprint(const v1::Config& config) {
  // Everything sla::Policy reads, and nothing else: names, staff and
  // stations may change without a new policy version.
  v1::Config policy_only;
  *policy_only.mutable_categories() = config.categories();
  *policy_only.mutable_policy() = config.policy();
  for (const auto& z : config.zones()) {
    auto* zone = policy_only.add_zones();
    zone->set_id(z.id());
    *zone->mutable_neighbours() = z.neighbours();
  }
  for (const auto& d : config.departments()) {
    auto* department = policy_only.add_departments();
    department->set_id(d.id());
    department->set_accept_limit_ms(d.accept_limit_ms());
    department->set_on_site_limit_ms(d.on_site_limit_ms());
  }
  std::string out;
  pb::TextFormat::PrintToString(policy_only, &out);
  return out;
}

}  // namespace zonecall::config
