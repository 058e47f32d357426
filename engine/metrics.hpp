#pragma once
// Counters and histograms for GET /metrics (Prometheus text format). The
// dispatcher updates them on its thread as events commit; the store keeps
// its own group-commit figures (events per commit, commit time, failed
// commits) behind stats_mutex_ and renders them itself (see
// GroupCommitStore::render_metrics in engine/store/group_commit_store.hpp).
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sla/incident.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// A Prometheus histogram: cumulative buckets with upper bounds, sum, count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // The sample lines of one series: name_bucket{labels,le=...}, _sum, _count.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// The engine's own figures, fed from committed events.
class EngineMetrics {
 public:
  // `incident` is its state after the event (null for events of no incident).
  void on_committed(const v1::TimelineEvent& event, const sla::Incident* incident);
  void on_send_queue_overflow() { ++send_queue_overflows_; }
  void render(std::string& out) const;

 private:
  // Seconds from report to each stage being met, by zone and stage, with
  // buckets around the 1/5/15-minute budgets.
  std::map<std::pair<std::string, int>, Histogram> stage_seconds_;
  std::map<int, std::uint64_t> breaches_by_stage_;
  std::map<int, std::uint64_t> escalations_by_rung_;
  std::uint64_t call_breaches_ = 0;
  std::uint64_t send_queue_overflows_ = 0;
};

// Escapes a label value for the text format.
std::string prometheus_label(const std::string& value);

}  // namespace zonecall
