#include "engine/report/assessment.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <future>

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
constexpr std::size_t kWorstCases = 5;

double rate(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

constexpr Millis kDay = 24 * 60 * kMinute;

// The site's day an instant falls in, as days since the epoch: a number to
// count by, formatted once per day rather than once per incident.
std::int64_t day_number(const UtcOffsets& offsets, Millis t) {
  const Millis local = t + offsets.at(t);
  return local / kDay - (local % kDay < 0 ? 1 : 0);
}

std::string day_name(std::int64_t day) {
  const std::time_t seconds = static_cast<std::time_t>(day * (kDay / 1000));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

struct Case {
  std::uint64_t incident;
  Millis time;
  bool unmet;
};

// The slowest few stages, longest first (ties: lower incident id first),
// kept as they come rather than sorting a year's millions of cases to show
// five (those sorts were part of the fifth of the audit the report took).
class WorstCases {
 public:
  void offer(const Case& c) {
    auto slower = [](const Case& a, const Case& b) {
      return a.time != b.time ? a.time > b.time : a.incident < b.incident;
    };
    if (cases_.size() == kWorstCases && !slower(c, cases_.back())) {
      return;
    }
    if (cases_.size() == kWorstCases) {
      cases_.pop_back();
    }
    cases_.insert(std::upper_bound(cases_.begin(), cases_.end(), c, slower), c);
  }
  const std::vector<Case>& cases() const { return cases_; }

 private:
  std::vector<Case> cases_;
};

// Accumulates one scope's figures over its incidents.
class ScopeBuilder {
 public:
  ScopeBuilder(std::string scope, std::string id) {
    out_.set_scope(std::move(scope));
    out_.set_id(std::move(id));
  }

  // Counts an incident; `stage_filter` decides which of its stages count
  // (a staff member's scope counts only the stages they met).
  template <class StageFilter>
  void add(const Incident& incident, const std::array<std::uint16_t, 16>* rungs,
           const std::set<std::string>& disputes, Millis now, StageFilter&& counts_stage) {
    out_.set_incidents(out_.incidents() + 1);
    ++categories_[incident.category];
    ++severities_[v1::Severity_Name(incident.severity)];
    for (std::size_t i = 0; i < kStages.size(); ++i) {
      const StageClock& clock = incident.stages[i];
      if (!counts_stage(clock)) {
        continue;
      }
      Stage& s = stages_[i];
      if (clock.met()) {
        const Millis time = *clock.met_at - incident.reported_at;
        ++s.decided;
        (*clock.met_at <= clock.deadline ? s.on_time : s.late) += 1;
        s.times.push_back(time);
        s.worst.offer({incident.id, time, false});
      } else if (clock.breached) {
        ++s.decided;
        ++s.unmet;
        s.worst.offer({incident.id, std::max<Millis>(0, now - incident.reported_at), true});
      }
    }
    if (!incident.open()) {
      out_.set_resolved(out_.resolved() + 1);
    }
    if (incident.feedback) {
      out_.set_feedback(out_.feedback() + 1);
      out_.set_satisfied(out_.satisfied() + (incident.feedback->satisfied ? 1 : 0));
    }
    if (disputes.count(incident.category) && !incident.open()) {
      out_.set_disputes_resolved(out_.disputes_resolved() + 1);
      out_.set_disputes_settled(out_.disputes_settled() + (incident.outcome == v1::SETTLED ? 1 : 0));
    }
    if (rungs != nullptr) {
      for (std::size_t r = 0; r < rungs->size(); ++r) {
        escalations_[r] += (*rungs)[r];
      }
    }
  }

  void add_calls(const Incident& incident, const std::string& department) {
    auto* d = out_.mutable_department();
    for (const auto& call : incident.calls) {
      if (call.department_id != department) {
        continue;
      }
      d->set_calls(d->calls() + 1);
      if (call.accepted_at) {
        d->set_accepted(d->accepted() + 1);
        d->set_accepted_on_time(d->accepted_on_time() + (*call.accepted_at <= call.accept_deadline ? 1 : 0));
        accept_times_.push_back(*call.accepted_at - call.raised_at);
      }
      if (call.on_site_at && call.accepted_at) {
        d->set_on_site(d->on_site() + 1);
        d->set_on_site_on_time(d->on_site_on_time() + (*call.on_site_at <= call.on_site_deadline ? 1 : 0));
        on_site_times_.push_back(*call.on_site_at - *call.accepted_at);
      }
      d->set_declined(d->declined() + (call.declined ? 1 : 0));
      d->set_superseded(d->superseded() + (call.superseded ? 1 : 0));
      d->set_breaches(d->breaches() + (call.accept_breached ? 1 : 0) + (call.on_site_breached ? 1 : 0));
    }
  }

  void set_visits(std::uint64_t households, std::uint64_t visited) {
    out_.set_households(households);
    out_.set_households_visited(visited);
    out_.set_has_visits(households > 0);
    if (households > 0) {
      out_.set_visit_coverage(std::min(1.0, rate(visited, households)));
    }
  }

  // Room for this many incidents' stage times, so a year's figures do not
  // grow (copy and fault in) their vectors a doubling at a time.
  void reserve(std::size_t incidents) {
    for (Stage& s : stages_) {
      s.times.reserve(incidents);
    }
  }

  v1::ScopeFigures finish() {
    for (const auto& [key, n] : categories_) {
      auto* c = out_.add_by_category();
      c->set_key(key);
      c->set_count(n);
    }
    for (const auto& [key, n] : severities_) {
      auto* c = out_.add_by_severity();
      c->set_key(key);
      c->set_count(n);
    }
    for (std::size_t i = 0; i < kStages.size(); ++i) {
      Stage& s = stages_[i];
      auto* f = out_.add_stages();
      f->set_stage(kStages[i]);
      f->set_decided(s.decided);
      f->set_met_on_time(s.on_time);
      f->set_met_late(s.late);
      f->set_breached_unmet(s.unmet);
      if (s.decided > 0) {
        f->set_compliance(rate(s.on_time, s.decided));
      }
      f->set_measured(s.times.size());
      if (!s.times.empty()) {  // the percentiles of nothing are absent, not 0
        f->set_p50_ms(percentile(s.times, 50));
        f->set_p90_ms(percentile(s.times, 90));
        f->set_p99_ms(percentile(s.times, 99));
      }
      for (const Case& c : s.worst.cases()) {
        auto* w = f->add_worst();
        w->set_incident_id(c.incident);
        w->set_stage_ms(c.time);
        w->set_unmet(c.unmet);
      }
    }
    if (out_.incidents() > 0) {
      out_.set_completion_rate(rate(out_.resolved(), out_.incidents()));
    }
    out_.set_has_satisfaction(out_.feedback() > 0);
    if (out_.has_satisfaction()) {
      out_.set_satisfaction_rate(rate(out_.satisfied(), out_.feedback()));
    }
    out_.set_has_mediation(out_.disputes_resolved() > 0);
    if (out_.has_mediation()) {
      out_.set_mediation_rate(rate(out_.disputes_settled(), out_.disputes_resolved()));
    }
    for (std::size_t r = 0; r < escalations_.size(); ++r) {
      if (escalations_[r] > 0) {
        auto* c = out_.add_escalations();
        c->set_key(v1::Rung_Name(static_cast<v1::Rung>(r)));
        c->set_count(escalations_[r]);
      }
    }
    if (out_.has_department()) {
      auto* d = out_.mutable_department();
      if (!accept_times_.empty()) {
        d->set_accept_p50_ms(percentile(accept_times_, 50));
        d->set_accept_p90_ms(percentile(accept_times_, 90));
      }
      if (!on_site_times_.empty()) {
        d->set_on_site_p50_ms(percentile(on_site_times_, 50));
        d->set_on_site_p90_ms(percentile(on_site_times_, 90));
      }
    }
    return std::move(out_);
  }

 private:
  struct Stage {
    std::uint64_t decided = 0, on_time = 0, late = 0, unmet = 0;
    std::vector<Millis> times;
    WorstCases worst;
  };
  v1::ScopeFigures out_;
  std::map<std::string, std::uint64_t> categories_;
  std::map<std::string, std::uint64_t> severities_;
  std::array<Stage, 3> stages_;
  std::array<std::uint64_t, 16> escalations_{};
  std::vector<Millis> accept_times_;
  std::vector<Millis> on_site_times_;
};

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

Millis percentile(std::span<Millis> values, double p) {
  if (values.empty()) {
    return 0;
  }
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  const auto nth = values.begin() + static_cast<std::ptrdiff_t>(std::clamp<std::size_t>(rank, 1, values.size()) - 1);
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

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

v1::AuditReport Assessment::report(const IncidentTable& incidents,
                                   Millis now) const {
  v1::AuditReport report;
  report.set_time_zone(topology_.time_zone);
  report.set_from_ms(filter_.from == std::numeric_limits<Millis>::min() ? 0 : filter_.from);
  report.set_to_ms(filter_.to == std::numeric_limits<Millis>::max() ? now : filter_.to);
  report.set_filters(filter_.describe());
  const Millis end = std::min(now, filter_.to);

  // In id order (the table's), so every list and every tie comes out the
  // same each run.
  std::vector<const Incident*> scope;
  for (const auto& [id, incident] : incidents) {
    if (filter_.matches(incident)) {
      scope.push_back(&incident);
    }
  }

  auto all_stages = [](const StageClock&) { return true; };
  auto rungs_of = [&](const Incident& i) -> const std::array<std::uint16_t, 16>* {
    auto it = rungs_.find(i.id);
    return it == rungs_.end() ? nullptr : &it->second;
  };

  ScopeBuilder community("community", "");
  community.reserve(scope.size());
  std::map<std::string, ScopeBuilder> zones;
  for (const auto& z : topology_.zones) {
    zones.emplace(z.id, ScopeBuilder("zone", z.id));
  }
  std::map<std::string, std::size_t> zone_sizes;
  for (const Incident* incident : scope) {
    ++zone_sizes[incident->zone_id];
  }
  for (const auto& [zone, size] : zone_sizes) {
    zones.try_emplace(zone, "zone", zone).first->second.reserve(size);
  }
  std::map<std::string, ScopeBuilder> staff;
  std::map<std::string, ScopeBuilder> departments;
  std::map<std::int64_t, std::pair<std::uint64_t, std::array<std::uint64_t[2], 3>>> daily;
  std::array<std::vector<std::uint64_t>, 3> histogram;
  for (auto& h : histogram) {
    h.assign(histogram_bounds().size() + 1, 0);
  }

  // Staff and departments are counted on a second thread while this one
  // counts the community, the zones and the days: both passes only read the
  // incidents, and a year's report takes half as long (bench/RESULTS.md).
  auto people_pass = std::async(std::launch::async, [&] {
    // Per incident: who reported or met a stage, and which departments were
    // called, each once (a handful, so a vector beats a set's allocations).
    std::vector<const std::string*> people;
    std::vector<const std::string*> called;
    auto add_once = [](std::vector<const std::string*>& names, const std::string& name) {
      if (std::none_of(names.begin(), names.end(), [&](const std::string* n) { return *n == name; })) {
        names.push_back(&name);
      }
    };
    for (const Incident* incident : scope) {
      // A staff member's incidents: those they reported or moved forward;
      // their stage figures: the stages they met.
      people.assign({&incident->reporter_id});
      for (const auto& clock : incident->stages) {
        if (!clock.met_by.empty()) {
          add_once(people, clock.met_by);
        }
      }
      for (const std::string* person : people) {
        auto& builder = staff.try_emplace(*person, "staff", *person).first->second;
        builder.add(*incident, nullptr, topology_.dispute_categories, end,
                    [&](const StageClock& c) { return c.met_by == *person; });
      }
      called.clear();
      for (const auto& call : incident->calls) {
        add_once(called, call.department_id);
      }
      for (const std::string* department : called) {
        auto& builder = departments.try_emplace(*department, "department", *department).first->second;
        builder.add(*incident, nullptr, topology_.dispute_categories, end, all_stages);
        builder.add_calls(*incident, *department);
      }
    }
  });

  for (const Incident* incident : scope) {
    const auto* rungs = rungs_of(*incident);
    community.add(*incident, rungs, topology_.dispute_categories, end, all_stages);
    zones.at(incident->zone_id).add(*incident, rungs, topology_.dispute_categories, end, all_stages);

    auto& day = daily[day_number(topology_.offsets, incident->reported_at)];
    ++day.first;
    for (std::size_t i = 0; i < kStages.size(); ++i) {
      const StageClock& c = incident->stages[i];
      if (c.met() || c.breached) {
        ++day.second[i][1];
        day.second[i][0] += (c.met() && *c.met_at <= c.deadline) ? 1 : 0;
      }
      if (c.met()) {
        const Millis t = *c.met_at - incident->reported_at;
        const auto& bounds = histogram_bounds();
        const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), t) - bounds.begin();
        ++histogram[i][static_cast<std::size_t>(bucket)];
      }
    }
  }
  people_pass.get();  // rethrows what the other pass threw

  // Visit coverage: the zone's households seen in the period.
  std::uint64_t households = 0;
  std::uint64_t visited = 0;
  for (const auto& z : topology_.zones) {
    auto it = visited_.find(z.id);
    const std::uint64_t seen = it == visited_.end() ? 0 : it->second.size();
    zones.at(z.id).set_visits(z.households, seen);
    households += z.households;
    visited += std::min<std::uint64_t>(seen, z.households);
  }
  community.set_visits(households, visited);

  *report.mutable_community() = community.finish();
  for (auto& [id, builder] : zones) {
    *report.add_zones() = builder.finish();
  }
  for (auto& [id, builder] : staff) {
    auto figures = builder.finish();
    auto v = visits_by_staff_.find(id);
    figures.set_households_visited(v == visits_by_staff_.end() ? 0 : v->second);
    *report.add_staff() = std::move(figures);
  }
  for (const auto& [id, count] : visits_by_staff_) {
    if (!staff.count(id)) {
      auto* figures = report.add_staff();
      *figures = ScopeBuilder("staff", id).finish();
      figures->set_households_visited(count);
    }
  }
  for (auto& [id, builder] : departments) {
    *report.add_departments() = builder.finish();
  }

  // The ranking of the zones by the two-level assessment. A zone with no
  // incidents in the period has nothing to be judged by: it is not ranked
  // (rank 0, after the ranked zones), rather than level with one that missed
  // everything.
  const auto& w = topology_.weights;
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

  for (const auto& [day, figures] : daily) {
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
    for (auto count : histogram[i]) {
      h->add_counts(count);
    }
  }
  return report;
}

}  // namespace zonecall::report
