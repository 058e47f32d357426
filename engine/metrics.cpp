#include "engine/metrics.hpp"

#include <cstdio>

namespace zonecall {

namespace {
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}
}  // namespace

std::string prometheus_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) {
    ++i;
  }
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string prefix = labels.empty() ? "" : labels + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

void EngineMetrics::on_committed(const v1::TimelineEvent& event, const sla::Incident* incident) {
  if (event.has_breached()) {
    ++breaches_by_stage_[event.breached().stage()];
  } else if (event.has_escalated()) {
    ++escalations_by_rung_[event.escalated().rung()];
  } else if (event.has_call_breached()) {
    ++call_breaches_;
  } else if (event.has_advanced() && incident != nullptr) {
    // The event names the stages it met (a step may skip forward and meet several). Comparing
    // met_at with the event's time instead would count a stage again when the next step lands
    // in the same millisecond.
    for (const auto& met : event.advanced().met()) {
      auto [it, added] = stage_seconds_.try_emplace(
          {incident->zone_id, met.stage()},
          Histogram({15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600}));
      it->second.observe(static_cast<double>(event.at_ms() - incident->reported_at) / 1000.0);
    }
  }
}

void EngineMetrics::render(std::string& out) const {
  header(out, "zonecall_stage_time_seconds", "histogram",
         "Time from report until the stage was met, by zone and stage.");
  for (const auto& [key, histogram] : stage_seconds_) {
    histogram.render(out, "zonecall_stage_time_seconds",
                     "zone=\"" + prometheus_label(key.first) + "\",stage=\"" +
                         v1::Stage_Name(static_cast<v1::Stage>(key.second)) + "\"");
  }
  header(out, "zonecall_breaches_total", "counter", "Stage deadlines missed, by stage.");
  for (const auto& [stage, n] : breaches_by_stage_) {
    out += "zonecall_breaches_total{stage=\"" + v1::Stage_Name(static_cast<v1::Stage>(stage)) +
           "\"} " + std::to_string(n) + "\n";
  }
  header(out, "zonecall_escalations_total", "counter", "Escalations, by ladder rung.");
  for (const auto& [rung, n] : escalations_by_rung_) {
    out += "zonecall_escalations_total{rung=\"" + v1::Rung_Name(static_cast<v1::Rung>(rung)) +
           "\"} " + std::to_string(n) + "\n";
  }
  header(out, "zonecall_call_breaches_total", "counter",
         "Zone-call deadlines (accept or on site) missed by departments.");
  out += "zonecall_call_breaches_total " + std::to_string(call_breaches_) + "\n";
  header(out, "zonecall_send_queue_overflows_total", "counter",
         "Connections closed because their send queue overflowed (slow readers).");
  out += "zonecall_send_queue_overflows_total " + std::to_string(send_queue_overflows_) + "\n";
}

}  // namespace zonecall
