#include "engine/report/scope_figures.hpp"

#include <algorithm>
#include <cmath>

namespace zonecall::report {

namespace {
constexpr std::size_t kWorstCases = 5;
}  // namespace

sla::Millis percentile(std::span<sla::Millis> values, double p) {
  if (values.empty()) {
    return 0;
  }
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  const auto nth = values.begin() + static_cast<std::ptrdiff_t>(std::clamp<std::size_t>(rank, 1, values.size()) - 1);
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

double rate(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

void WorstCases::offer(const Case& c) {
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

ScopeBuilder::ScopeBuilder(std::string scope, std::string id) {
  out_.set_scope(std::move(scope));
  out_.set_id(std::move(id));
}

void ScopeBuilder::add(const sla::Incident& incident, const RungCounts* rungs,
                       const std::set<std::string>& disputes, sla::Millis now, const std::string* met_by) {
  out_.set_incidents(out_.incidents() + 1);
  ++categories_[incident.category];
  ++severities_[v1::Severity_Name(incident.severity)];
  for (std::size_t i = 0; i < sla::kStages.size(); ++i) {
    const sla::StageClock& clock = incident.stages[i];
    if (met_by != nullptr && clock.met_by != *met_by) {
      continue;
    }
    Stage& s = stages_[i];
    if (clock.met()) {
      const sla::Millis time = *clock.met_at - incident.reported_at;
      ++s.decided;
      (*clock.met_at <= clock.deadline ? s.on_time : s.late) += 1;
      s.times.push_back(time);
      s.worst.offer({incident.id, time, false});
    } else if (clock.breached) {
      ++s.decided;
      ++s.unmet;
      s.worst.offer({incident.id, std::max<sla::Millis>(0, now - incident.reported_at), true});
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

void ScopeBuilder::add_calls(const sla::Incident& incident, const std::string& department) {
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

void ScopeBuilder::set_visits(std::uint64_t households, std::uint64_t visited) {
  out_.set_households(households);
  out_.set_households_visited(visited);
  out_.set_has_visits(households > 0);
  if (households > 0) {
    out_.set_visit_coverage(std::min(1.0, rate(visited, households)));
  }
}

void ScopeBuilder::reserve(std::size_t incidents) {
  for (Stage& s : stages_) {
    s.times.reserve(incidents);
  }
}

v1::ScopeFigures ScopeBuilder::finish() {
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
  for (std::size_t i = 0; i < sla::kStages.size(); ++i) {
    Stage& s = stages_[i];
    auto* f = out_.add_stages();
    f->set_stage(sla::kStages[i]);
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
    for (const auto& c : s.worst.cases()) {
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

}  // namespace zonecall::report
