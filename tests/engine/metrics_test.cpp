// EngineMetrics on hand-made events: no server, so the timing of steps is
// exact (on a real server two steps often land in the same millisecond).
#include <catch2/catch.hpp>

#include <string>

#include "engine/metrics.hpp"
#include "sla/incident.hpp"

using namespace zonecall;

namespace {
v1::TimelineEvent advanced(std::int64_t at_ms, v1::IncidentState to,
                           std::initializer_list<v1::Stage> met) {
  v1::TimelineEvent e;
  e.set_incident_id(7);
  e.set_at_ms(at_ms);
  e.mutable_advanced()->set_to(to);
  for (auto stage : met) {
    e.mutable_advanced()->add_met()->set_stage(stage);
  }
  return e;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// Feeds each event to the incident and then to the metrics, as the dispatcher does.
std::string metrics_after(std::initializer_list<v1::TimelineEvent> events) {
  sla::Incident incident;
  incident.zone_id = "Z3";
  incident.reported_at = 1'000'000;
  EngineMetrics metrics;
  for (const auto& e : events) {
    sla::apply_event(incident, e);
    metrics.on_committed(e, &incident);
  }
  std::string out;
  metrics.render(out);
  return out;
}
}  // namespace

TEST_CASE("metrics: steps in the same millisecond count each stage once") {
  const auto m = metrics_after({advanced(1'020'000, v1::DISCOVERED, {v1::DISCOVER}),
                                advanced(1'020'000, v1::RESPONDING, {v1::RESPOND}),
                                advanced(1'020'000, v1::RESOLVED, {v1::RESOLVE})});
  INFO(m);
  for (const char* stage : {"DISCOVER", "RESPOND", "RESOLVE"}) {
    const std::string series = std::string("zone=\"Z3\",stage=\"") + stage + "\"";
    CHECK(has_line(m, "zonecall_stage_time_seconds_count{" + series + "} 1"));
    CHECK(has_line(m, "zonecall_stage_time_seconds_sum{" + series + "} 20"));
  }
}

TEST_CASE("metrics: a skip forward counts every stage it meets, at its own time") {
  const auto m = metrics_after({advanced(1'045'000, v1::RESPONDING, {v1::DISCOVER, v1::RESPOND}),
                                advanced(1'400'000, v1::RESOLVED, {v1::RESOLVE})});
  INFO(m);
  CHECK(has_line(m, "zonecall_stage_time_seconds_count{zone=\"Z3\",stage=\"DISCOVER\"} 1"));
  CHECK(has_line(m, "zonecall_stage_time_seconds_bucket{zone=\"Z3\",stage=\"DISCOVER\",le=\"30\"} 0"));
  CHECK(has_line(m, "zonecall_stage_time_seconds_bucket{zone=\"Z3\",stage=\"DISCOVER\",le=\"60\"} 1"));
  CHECK(has_line(m, "zonecall_stage_time_seconds_sum{zone=\"Z3\",stage=\"RESPOND\"} 45"));
  CHECK(has_line(m, "zonecall_stage_time_seconds_sum{zone=\"Z3\",stage=\"RESOLVE\"} 400"));
  CHECK(has_line(m, "zonecall_stage_time_seconds_count{zone=\"Z3\",stage=\"RESOLVE\"} 1"));
}
