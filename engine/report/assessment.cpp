#include "engine/report/assessment.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

namespace zonecall::report {

using sla::Incident;
using sla::IncidentTable;
using sla::kMinute;
using sla::kSecond;
using sla::kStages;
using sla::Millis;
using sla::StageClock;
using sla::UtcOffsets;

namespace {
constexpr Millis kDay = 24 * 60 * kMinute;

// The site's day an instant falls in, as days since the epoch: a number to
// count by, formatted once per day rather than once per incident.
std::int64_t day_number(const UtcOffsets& offsets, Millis t) {
  const Millis local = t + offsets.at(t);
  return local / kDay - (local % kDay < 0 ? 1 : 0);
}

// "2026-03-28": the civil date of a day number (calendar arithmetic only).
std::string day_name(std::int64_t day) {
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return buf;
}

// Weighted mean of the figures that have data; nullopt if none has.
std::optional<double> weighted(std::initializer_list<std::pair<std::optional<double>, double>> parts) {
  double sum = 0;
  double weight = 0;
  for (const auto& [value, w] : parts) {
    if (value && w > 0) {
      sum += *value * w;
      weight += w;
    }
  }
  return weight == 0 ? std::nullopt : std::optional<double>(sum / weight);
}
}  // namespace

v1::AssessmentWeights AssessmentTopology::default_weights() {
  v1::AssessmentWeights w;
  w.set_response_speed(0.7);
  w.set_visit_coverage(0.3);
  w.set_mediation(0.3);
  w.set_completion(0.4);
  w.set_satisfaction(0.3);
  w.set_level_one_share(0.5);
  return w;
}

AssessmentTopology AssessmentTopology::from_config(const v1::Config& config) {
  AssessmentTopology t;
  t.time_zone = config.time_zone();
  for (const auto& z : config.zones()) {
    t.zones.push_back({z.id(), z.households()});
  }
  for (const auto& c : config.categories()) {
    if (c.dispute()) {
      t.dispute_categories.insert(c.id());
    }
  }
  const auto& w = config.assessment();
  const bool unset = w.response_speed() == 0 && w.visit_coverage() == 0 && w.mediation() == 0 &&
                     w.completion() == 0 && w.satisfaction() == 0 && w.level_one_share() == 0;
  t.weights = unset ? default_weights() : w;
  return t;
}

bool AuditFilter::matches(const Incident& incident) const {
  return incident.reported_at >= from && incident.reported_at < to &&
         (zone_id.empty() || incident.zone_id == zone_id) &&
         (category.empty() || incident.category == category) &&
         (department_id.empty() || incident.called(department_id));
}

std::string AuditFilter::describe() const {
  std::string out;
  auto add = [&](const char* name, const std::string& value) {
    if (!value.empty()) {
      out += (out.empty() ? "" : ", ") + std::string(name) + "=" + value;
    }
  };
  add("zone", zone_id);
  add("department", department_id);
  add("category", category);
  return out.empty() ? "none" : out;
}

const std::vector<Millis>& Assessment::histogram_bounds() {
  static const std::vector<Millis> bounds = {30 * kSecond, kMinute,      2 * kMinute,  5 * kMinute,
                                            10 * kMinute, 15 * kMinute, 30 * kMinute, 60 * kMinute};
  return bounds;
}

Assessment::Assessment(AssessmentTopology topology, AuditFilter filter)
    : topology_(std::move(topology)), filter_(std::move(filter)) {}

void Assessment::observe(const v1::TimelineEvent& e) {
  if (e.has_escalated()) {
    auto& counts = rungs_[e.incident_id()];
    const auto rung = static_cast<std::size_t>(e.escalated().rung());
    if (rung < counts.size()) {
      ++counts[rung];
    }
  } else if (e.has_visit() && e.at_ms() >= filter_.from && e.at_ms() < filter_.to) {
    visited_[e.visit().zone_id()].insert(e.visit().household_ref());
    ++visits_by_staff_[e.actor_id()];
  }
}

const RungCounts* Assessment::rungs_of(std::uint64_t incident_id) const {
  auto it = rungs_.find(incident_id);
  return it == rungs_.end() ? nullptr : &it->second;
}

Assessment::Tally Assessment::tally(const IncidentTable& incidents, Millis now) const {
  return Tally(*this, incidents, now);
}

v1::AuditReport Assessment::report(const IncidentTable& incidents, Millis now) const {
  Tally t = tally(incidents, now);
  t.count_places();
  t.count_people();
  return t.finish();
}

Assessment::Tally::Tally(const Assessment& assessment, const IncidentTable& incidents, Millis now)
    : assessment_(&assessment), now_(now), end_(std::min(now, assessment.filter_.to)) {
  for (const auto& [id, incident] : incidents) {
    if (assessment.filter_.matches(incident)) {
      scope_.push_back(&incident);
    }
  }
  community_.reserve(scope_.size());
  for (const auto& z : assessment.topology_.zones) {
    zones_.emplace(z.id, ScopeBuilder("zone", z.id));
  }
  std::map<std::string, std::size_t> zone_sizes;
  for (const Incident* incident : scope_) {
    ++zone_sizes[incident->zone_id];
  }
  for (const auto& [zone, size] : zone_sizes) {
    zones_.try_emplace(zone, "zone", zone).first->second.reserve(size);
  }
  for (auto& h : histogram_) {
    h.assign(histogram_bounds().size() + 1, 0);
  }
}

void Assessment::Tally::count_places() {
  const auto& disputes = assessment_->topology_.dispute_categories;
  const auto& bounds = histogram_bounds();
  for (const Incident* incident : scope_) {
    const RungCounts* rungs = assessment_->rungs_of(incident->id);
    community_.add(*incident, rungs, disputes, end_);
    zones_.at(incident->zone_id).add(*incident, rungs, disputes, end_);

    auto& day = daily_[day_number(assessment_->topology_.offsets, incident->reported_at)];
    ++day.first;
    for (std::size_t i = 0; i < kStages.size(); ++i) {
      const StageClock& c = incident->stages[i];
      if (c.met() || c.breached) {
        ++day.second[i][1];
        day.second[i][0] += (c.met() && *c.met_at <= c.deadline) ? 1 : 0;
      }
      if (c.met()) {
        const Millis t = *c.met_at - incident->reported_at;
        const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), t) - bounds.begin();
        ++histogram_[i][static_cast<std::size_t>(bucket)];
      }
    }
  }
}

void Assessment::Tally::count_people() {
  const auto& disputes = assessment_->topology_.dispute_categories;
  // Per incident: who reported or met a stage, and which departments were
  // called, each once (a handful, so a vector beats a set's allocations).
  std::vector<const std::string*> people;
  std::vector<const std::string*> called;
  auto add_once = [](std::vector<const std::string*>& names, const std::string& name) {
    if (std::none_of(names.begin(), names.end(), [&](const std::string* n) { return *n == name; })) {
      names.push_back(&name);
    }
  };
  for (const Incident* incident : scope_) {
    // A staff member's incidents: those they reported or moved forward;
    // their stage figures: the stages they met.
    people.assign({&incident->reporter_id});
    for (const auto& clock : incident->stages) {
      if (!clock.met_by.empty()) {
        add_once(people, clock.met_by);
      }
    }
    for (const std::string* person : people) {
      staff_.try_emplace(*person, "staff", *person).first->second.add(*incident, nullptr, disputes, end_, person);
    }
    called.clear();
    for (const auto& call : incident->calls) {
      add_once(called, call.department_id);
    }
    for (const std::string* department : called) {
      auto& builder = departments_.try_emplace(*department, "department", *department).first->second;
      builder.add(*incident, nullptr, disputes, end_);
      builder.add_calls(*incident, *department);
    }
  }
}

v1::AuditReport Assessment::Tally::finish() {
  const AssessmentTopology& topology = assessment_->topology_;
  const AuditFilter& filter = assessment_->filter_;
  v1::AuditReport report;
  report.set_time_zone(topology.time_zone);
  report.set_from_ms(filter.from == std::numeric_limits<Millis>::min() ? 0 : filter.from);
  report.set_to_ms(filter.to == std::numeric_limits<Millis>::max() ? now_ : filter.to);
  report.set_filters(filter.describe());

  // Visit coverage: the zone's households seen in the period.
  std::uint64_t households = 0;
  std::uint64_t visited = 0;
  for (const auto& z : topology.zones) {
    auto it = assessment_->visited_.find(z.id);
    const std::uint64_t seen = it == assessment_->visited_.end() ? 0 : it->second.size();
    zones_.at(z.id).set_visits(z.households, seen);
    households += z.households;
    visited += std::min<std::uint64_t>(seen, z.households);
  }
  community_.set_visits(households, visited);

  *report.mutable_community() = community_.finish();
  for (auto& [id, builder] : zones_) {
    *report.add_zones() = builder.finish();
  }
  const auto& visits_by_staff = assessment_->visits_by_staff_;
  for (auto& [id, builder] : staff_) {
    auto figures = builder.finish();
    auto v = visits_by_staff.find(id);
    figures.set_households_visited(v == visits_by_staff.end() ? 0 : v->second);
    *report.add_staff() = std::move(figures);
  }
  for (const auto& [id, count] : visits_by_staff) {
    if (!staff_.count(id)) {
      auto* figures = report.add_staff();
      *figures = ScopeBuilder("staff", id).finish();
      figures->set_households_visited(count);
    }
  }
  for (auto& [id, builder] : departments_) {
    *report.add_departments() = builder.finish();
  }

  // The ranking of the zones by the two-level assessment. A zone with no
  // incidents in the period has nothing to be judged by: it is not ranked
  // (rank 0, after the ranked zones), rather than level with one that missed
  // everything.
  const auto& w = topology.weights;
  std::vector<v1::ZoneScore> scores;
  for (const auto& z : report.zones()) {
    v1::ZoneScore score;
    score.set_zone_id(z.id());
    if (z.incidents() == 0) {
      scores.push_back(score);
      continue;
    }
    double sum = 0;
    int decided = 0;
    for (const auto& s : z.stages()) {
      if (s.has_compliance()) {
        sum += s.compliance();
        ++decided;
      }
    }
    const auto speed = decided > 0 ? std::optional<double>(sum / decided) : std::nullopt;
    auto opt = [](bool has, double value) { return has ? std::optional<double>(value) : std::nullopt; };
    const auto one = weighted({{speed, w.response_speed()},
                               {opt(z.has_visit_coverage(), z.visit_coverage()), w.visit_coverage()}});
    const auto two = weighted({{opt(z.has_mediation_rate(), z.mediation_rate()), w.mediation()},
                               {opt(z.has_completion_rate(), z.completion_rate()), w.completion()},
                               {opt(z.has_satisfaction_rate(), z.satisfaction_rate()), w.satisfaction()}});
    const double share = std::clamp(w.level_one_share(), 0.0, 1.0);
    const auto total = weighted({{one, share}, {two, 1.0 - share}});
    if (one) {
      score.set_level_one(100.0 * *one);
    }
    if (two) {
      score.set_level_two(100.0 * *two);
    }
    if (total) {
      score.set_total(100.0 * *total);
    }
    scores.push_back(score);
  }
  // Scored zones by total, then the rest; ties by zone id.
  std::sort(scores.begin(), scores.end(), [](const auto& a, const auto& b) {
    if (a.has_total() != b.has_total()) {
      return a.has_total();
    }
    return a.total() != b.total() ? a.total() > b.total() : a.zone_id() < b.zone_id();
  });
  std::uint32_t rank = 0;
  for (auto& score : scores) {
    if (score.has_total()) {
      score.set_rank(++rank);
    }
    *report.add_ranking() = score;
  }

  for (const auto& [day, figures] : daily_) {
    auto* d = report.add_daily();
    d->set_day(day_name(day));
    d->set_incidents(figures.first);
    for (const auto& stage : figures.second) {
      d->add_compliance(rate(stage[0], stage[1]));
      d->add_decided(stage[1]);
    }
  }
  for (Millis bound : histogram_bounds()) {
    report.add_stage_time_histogram_bounds_ms(static_cast<std::uint64_t>(bound));
  }
  for (std::size_t i = 0; i < kStages.size(); ++i) {
    auto* h = report.add_histograms();
    h->set_stage(kStages[i]);
    for (auto count : histogram_[i]) {
      h->add_counts(count);
    }
  }
  return report;
}

}  // namespace zonecall::report
