// The audit as one self-contained HTML file: no script, no network; charts
// are inline SVG.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <sstream>

#include "engine/audit/audit.hpp"
#include "engine/printable.hpp"

namespace zonecall::audit {

namespace {
// printable() first: a control character means nothing in HTML, and the
// text shows the same as in the text report.
std::string esc(const std::string& text) {
  std::string out;
  for (char c : printable(text)) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v, const char* format = "%.1f") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

constexpr double kNoData = std::numeric_limits<double>::quiet_NaN();

const char* kStageColours[] = {"#2b7bb9", "#e69f00", "#009e73"};
const char* kStageNames[] = {"discover 发现", "respond 响应", "resolve 处置"};

// Grouped bars: one group per label, one bar per series, values in [0, 1];
// NaN (no data) draws no bar.
std::string grouped_bars(const std::vector<std::string>& labels,
                         const std::vector<std::vector<double>>& series, const char* title) {
  const int group = 16 + 14 * static_cast<int>(series.size());
  const int width = 60 + group * static_cast<int>(labels.size());
  const int height = 220;
  std::ostringstream svg;
  svg << "<figure><figcaption>" << title << "</figcaption><svg xmlns='http://www.w3.org/2000/svg' width='"
      << width << "' height='" << height + 40 << "' role='img'>";
  for (int pct = 0; pct <= 100; pct += 25) {
    const int y = 10 + height - pct * height / 100;
    svg << "<line x1='40' x2='" << width << "' y1='" << y << "' y2='" << y
        << "' stroke='#ddd'/><text x='2' y='" << y + 4 << "' font-size='10'>" << pct << "%</text>";
  }
  for (std::size_t g = 0; g < labels.size(); ++g) {
    const int x0 = 48 + group * static_cast<int>(g);
    for (std::size_t s = 0; s < series.size(); ++s) {
      if (std::isnan(series[s][g])) {
        svg << "<title>" << esc(labels[g]) << ": -</title>";
        continue;
      }
      const double v = std::clamp(series[s][g], 0.0, 1.0);
      const int h = static_cast<int>(v * height);
      svg << "<rect x='" << x0 + 14 * static_cast<int>(s) << "' y='" << 10 + height - h
          << "' width='12' height='" << h << "' fill='" << kStageColours[s % 3] << "'><title>"
          << esc(labels[g]) << ": " << num(100 * v) << "%</title></rect>";
    }
    svg << "<text x='" << x0 << "' y='" << height + 28 << "' font-size='11'>" << esc(labels[g]) << "</text>";
  }
  svg << "</svg></figure>";
  return svg.str();
}

std::string legend(std::size_t n, const char* const* names) {
  std::ostringstream out;
  out << "<p class='legend'>";
  for (std::size_t i = 0; i < n; ++i) {
    out << "<span style='background:" << kStageColours[i] << "'></span>" << names[i] << " ";
  }
  out << "</p>";
  return out.str();
}
}  // namespace

std::string render_html(const v1::AuditReport& report) {
  const SiteTime site(report.time_zone());
  std::ostringstream out;
  out << "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'><title>zonecall audit</title>"
         "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
         "td:first-child,th:first-child{text-align:left}.bad{color:#b00;font-weight:bold}.ok{color:#070}"
         ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}"
         "figure{display:inline-block;margin:1em 2em 1em 0}</style></head><body>";
  out << "<h1>zonecall audit 审计报告</h1><p>" << esc(report.from_ms() == 0 ? std::string("the beginning") : site.format(report.from_ms())) << " — "
      << esc(site.format(report.to_ms())) << " (times in " << esc(site.name()) << "); filters: " << esc(report.filters())
      << "; events checked: " << report.events() << "</p>";
  out << "<p class='" << (clean(report) ? "ok'>Timeline intact and consistent with its policy."
                                        : "bad'>Timeline NOT intact or NOT consistent.")
      << "</p>";
  if (!report.chain_intact()) {
    out << "<p class='bad'>Hash chain broken at seq " << report.first_broken_seq() << ": "
        << esc(report.chain_problem()) << "</p>";
  }
  if (report.discrepancies_size() > 0) {
    out << "<h2>Replay discrepancies</h2><table><tr><th>seq</th><th>incident</th><th>what</th></tr>";
    for (const auto& d : report.discrepancies()) {
      out << "<tr><td>" << d.seq() << "</td><td>" << d.incident_id() << "</td><td style='text-align:left'>"
          << esc(d.what()) << "</td></tr>";
    }
    out << "</table>";
  }

  out << "<h2>Two-level assessment 二级量化考核</h2><table><tr><th>rank</th><th>zone</th>"
         "<th>level one</th><th>level two</th><th>total</th></tr>";
  for (const auto& r : report.ranking()) {
    out << "<tr><td>" << (r.rank() == 0 ? "-" : std::to_string(r.rank())) << "</td><td>" << esc(r.zone_id())
        << "</td><td>" << score_or_dash(r.has_level_one(), r.level_one()) << "</td><td>"
        << score_or_dash(r.has_level_two(), r.level_two()) << "</td><td>"
        << (r.rank() == 0 ? "- (no incidents)" : score_or_dash(r.has_total(), r.total())) << "</td></tr>";
  }
  out << "</table>";

  // Stage compliance by zone.
  std::vector<std::string> zones;
  std::vector<std::vector<double>> compliance(3);
  for (const auto& z : report.zones()) {
    zones.push_back(z.id());
    for (int i = 0; i < 3; ++i) {  // one value per series and zone, or the chart reads past the end
      const bool has = i < z.stages_size() && z.stages(i).has_compliance();
      compliance[i].push_back(has ? z.stages(i).compliance() : kNoData);
    }
  }
  out << "<h2>Charts</h2>" << legend(3, kStageNames)
      << grouped_bars(zones, compliance, "Stage compliance by zone (share on time)");

  // Distribution of stage times.
  std::vector<std::string> buckets;
  for (auto bound : report.stage_time_histogram_bounds_ms()) {
    buckets.push_back("≤" + format_duration(static_cast<sla::Millis>(bound)));
  }
  buckets.push_back("more");
  std::vector<std::vector<double>> shares;
  for (const auto& h : report.histograms()) {
    std::uint64_t total = 0;
    for (auto c : h.counts()) {
      total += c;
    }
    std::vector<double> row;
    for (auto c : h.counts()) {
      row.push_back(total == 0 ? 0.0 : static_cast<double>(c) / static_cast<double>(total));
    }
    shares.push_back(row);
  }
  if (!shares.empty()) {
    out << grouped_bars(buckets, shares, "Distribution of stage times (share of met stages)");
  }

  // Daily trend of compliance.
  std::vector<std::string> days;
  std::vector<std::vector<double>> trend(3);
  for (const auto& d : report.daily()) {
    days.push_back(d.day().substr(5));
    for (int i = 0; i < 3; ++i) {
      const bool decided = i < d.decided_size() && d.decided(i) > 0 && i < d.compliance_size();
      trend[i].push_back(decided ? d.compliance(i) : kNoData);
    }
  }
  out << grouped_bars(days, trend, "Daily trend: stage compliance per day");

  // Department timeliness.
  static const char* kDepartmentSeries[] = {"accepted in time 限时接单", "on site in time 到场"};
  std::vector<std::string> departments;
  std::vector<std::vector<double>> timely(2);
  for (const auto& d : report.departments()) {
    departments.push_back(d.id());
    const auto& f = d.department();
    timely[0].push_back(f.calls() ? static_cast<double>(f.accepted_on_time()) / f.calls() : kNoData);
    timely[1].push_back(f.accepted() ? static_cast<double>(f.on_site_on_time()) / f.accepted() : kNoData);
  }
  out << "<div>" << legend(2, kDepartmentSeries)
      << grouped_bars(departments, timely, "Department timeliness") << "</div>";
  out << "<h2>Departments 科室</h2><table><tr><th>department</th><th>calls</th><th>accepted in time</th>"
         "<th>on site in time</th><th>declined</th><th>superseded 被替换</th><th>breaches</th></tr>";
  for (const auto& d : report.departments()) {
    const auto& f = d.department();
    out << "<tr><td>" << esc(d.id()) << "</td><td>" << f.calls() << "</td><td>" << f.accepted_on_time()
        << "/" << f.calls() << "</td><td>" << f.on_site_on_time() << "/" << f.accepted() << "</td><td>"
        << f.declined() << "</td><td>" << f.superseded() << "</td><td>" << f.breaches() << "</td></tr>";
  }
  out << "</table>";

  out << "<h2>Zones</h2><table><tr><th>zone</th><th>incidents</th><th>discover</th><th>respond</th>"
         "<th>resolve</th><th>p90 discover</th><th>completion 办结率</th><th>satisfaction 满意率</th>"
         "<th>mediation 调解率</th><th>visits 走访</th></tr>";
  for (const auto& z : report.zones()) {
    out << "<tr><td>" << esc(z.id()) << "</td><td>" << z.incidents() << "</td>";
    for (const auto& s : z.stages()) {
      out << "<td>" << percent_or_dash(s.has_compliance(), s.compliance()) << "</td>";
    }
    const bool p90 = z.stages_size() > 0 && z.stages(0).has_p90_ms();
    out << "<td>" << duration_or_dash(p90, p90 ? z.stages(0).p90_ms() : 0) << "</td><td>"
        << percent_or_dash(z.has_completion_rate(), z.completion_rate()) << "</td><td>"
        << percent_or_dash(z.has_satisfaction_rate(), z.satisfaction_rate()) << "</td><td>"
        << percent_or_dash(z.has_mediation_rate(), z.mediation_rate()) << "</td><td>"
        << percent_or_dash(z.has_visit_coverage(), z.visit_coverage()) << "</td></tr>";
  }
  out << "</table></body></html>\n";
  return out.str();
}

}  // namespace zonecall::audit
