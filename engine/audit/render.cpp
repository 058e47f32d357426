// Text, JSON and CSV renderings of an audit report, and one incident's story.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <sstream>

#include "engine/audit/audit.hpp"
#include "engine/printable.hpp"
#include "sla/incident.hpp"

namespace zonecall::audit {

namespace pb = google::protobuf;

namespace {
std::string percent(double rate) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * rate);
  return buf;
}

std::string pad(const std::string& s, std::size_t width) {
  // Width in characters, not bytes: names are often Chinese.
  std::size_t chars = 0;
  for (unsigned char c : s) {
    chars += (c & 0xC0) != 0x80 ? 1 : 0;
  }
  return s + std::string(width > chars ? width - chars : 1, ' ');
}

const v1::StageFigures* stage_of(const v1::ScopeFigures& scope, v1::Stage stage) {
  for (const auto& s : scope.stages()) {
    if (s.stage() == stage) {
      return &s;
    }
  }
  return nullptr;
}

std::string stage_cell(const v1::ScopeFigures& scope, v1::Stage stage) {
  const auto* s = stage_of(scope, stage);
  if (s == nullptr || !s->has_compliance()) {
    return "-";
  }
  return percent(s->compliance()) + " p90 " + duration_or_dash(s->has_p90_ms(), s->p90_ms());
}


// One CSV cell: printable, then quoted (RFC 4180) if it holds a comma or
// a quote. printable() leaves no line break to quote.
std::string csv_cell(const std::string& text) {
  std::string cell = printable(text);
  if (cell.find_first_of(",\"") == std::string::npos) {
    return cell;
  }
  std::string quoted = "\"";
  for (char c : cell) {
    quoted += c == '"' ? "\"\"" : std::string(1, c);
  }
  return quoted + "\"";
}

std::string csv_row(const std::string& scope, const std::string& id, const std::string& figure,
                    const std::string& value) {
  return csv_cell(scope) + ',' + csv_cell(id) + ',' + csv_cell(figure) + ',' + csv_cell(value) + '\n';
}

// CSV rows of every scalar field of a message, by reflection, so that the
// CSV carries exactly the figures of the JSON.
void csv_fields(std::ostringstream& out, const std::string& scope, const std::string& id,
                const std::string& prefix, const pb::Message& message) {
  const auto* type = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (field->is_repeated() || field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->name() == "scope" || field->name() == "id") {
      continue;
    }
    std::string value;
    char buf[40];
    if (field->has_presence() && !reflection->HasField(message, field)) {
      out << csv_row(scope, id, prefix + field->name(), "-");  // no data
      continue;
    }
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        value = std::to_string(reflection->GetUInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        value = std::to_string(reflection->GetInt64(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        value = std::to_string(reflection->GetUInt32(message, field));
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        std::snprintf(buf, sizeof buf, "%.17g", reflection->GetDouble(message, field));
        value = buf;
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        value = reflection->GetBool(message, field) ? "true" : "false";
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        value = reflection->GetEnum(message, field)->name();
        break;
      default:
        continue;
    }
    out << csv_row(scope, id, prefix + field->name(), value);
  }
}

void csv_scope(std::ostringstream& out, const v1::ScopeFigures& s) {
  csv_fields(out, s.scope(), s.id(), "", s);
  for (const auto& c : s.by_category()) {
    out << csv_row(s.scope(), s.id(), "by_category." + c.key(), std::to_string(c.count()));
  }
  for (const auto& c : s.by_severity()) {
    out << csv_row(s.scope(), s.id(), "by_severity." + c.key(), std::to_string(c.count()));
  }
  for (const auto& c : s.escalations()) {
    out << csv_row(s.scope(), s.id(), "escalations." + c.key(), std::to_string(c.count()));
  }
  for (const auto& stage : s.stages()) {
    csv_fields(out, s.scope(), s.id(), "stages." + v1::Stage_Name(stage.stage()) + ".", stage);
  }
  if (s.has_department()) {
    csv_fields(out, s.scope(), s.id(), "department.", s.department());
  }
}

std::string describe(const v1::TimelineEvent& e, const SiteTime& site) {
  switch (e.kind_case()) {
    case v1::TimelineEvent::kReported:
      return "reported " + e.reported().category() + " (" + v1::Severity_Name(e.reported().severity()) +
             ") at " + e.reported().location();
    case v1::TimelineEvent::kAdvanced: {
      std::string s = "moved to " + v1::IncidentState_Name(e.advanced().to());
      for (const auto& met : e.advanced().met()) {
        s += "; met " + v1::Stage_Name(met.stage()) +
             (met.late_by_ms() > 0 ? " " + format_duration(met.late_by_ms()) + " late" : " on time");
      }
      if (!e.advanced().note().empty()) {
        s += " — " + e.advanced().note();
      }
      return s;
    }
    case v1::TimelineEvent::kBreached:
      return v1::Stage_Name(e.breached().stage()) + " deadline missed (due " +
             site.format(e.breached().deadline_ms()) + ")";
    case v1::TimelineEvent::kEscalated:
      return "escalated: " + v1::Rung_Name(e.escalated().rung()) + " — " + e.escalated().reason();
    case v1::TimelineEvent::kAttached:
      return "a duplicate report attached";
    case v1::TimelineEvent::kCallRaised:
      return "zone call " + std::to_string(e.call_raised().call_no()) + " to " +
             e.call_raised().department_id() + (e.call_raised().automatic() ? " (automatic)" : "") +
             ", accept by " + site.format(e.call_raised().accept_deadline_ms());
    case v1::TimelineEvent::kCallAccepted:
      return e.call_accepted().department_id() + " accepted" +
             (e.call_accepted().late_by_ms() > 0 ? " " + format_duration(e.call_accepted().late_by_ms()) + " late"
                                                 : " in time");
    case v1::TimelineEvent::kCallOnSite:
      return e.call_on_site().department_id() + " on site" +
             (e.call_on_site().late_by_ms() > 0 ? " " + format_duration(e.call_on_site().late_by_ms()) + " late"
                                                : " in time");
    case v1::TimelineEvent::kCallDeclined:
      return e.call_declined().department_id() + " declined: " + e.call_declined().reason();
    case v1::TimelineEvent::kCallBreached:
      return e.call_breached().department_id() + " missed its " +
             (e.call_breached().what() == v1::ACCEPT ? "acceptance" : "on-site") + " limit";
    case v1::TimelineEvent::kFeedback:
      return std::string("feedback: ") + (e.feedback().satisfied() ? "satisfied" : "not satisfied") +
             ", score " + std::to_string(e.feedback().score());
    default:
      return e.ShortDebugString();
  }
}
// Whether a call_raised closed the call before it; the timeline does not say
// so, the fold does (see CallRaised in timeline.proto).
std::string superseding(const sla::Incident& after, const v1::TimelineEvent& e) {
  const auto no = e.has_call_raised() ? e.call_raised().call_no() : 0;
  if (no < 2 || no > after.calls.size() || !after.calls[no - 2].superseded) {
    return "";
  }
  return "; supersedes call " + std::to_string(no - 1) + " to " + after.calls[no - 2].department_id;
}

std::string call_outcome(const sla::CallState& call, const SiteTime& site) {
  const std::string accepted =
      call.accepted_at ? "accepted " + site.format(*call.accepted_at) + ", " : "";
  if (call.superseded) {
    return accepted + "SUPERSEDED by call " + std::to_string(call.call_no + 1);
  }
  if (call.declined) {
    return accepted + "declined";
  }
  if (call.on_site_at) {
    return accepted + "on site " + site.format(*call.on_site_at);
  }
  return accepted.empty() ? "open, not accepted" : accepted + "open, not on site";
}
}  // namespace

std::string percent_or_dash(bool has, double rate) { return has ? percent(rate) : "-"; }

std::string duration_or_dash(bool has, sla::Millis ms) { return has ? format_duration(ms) : "-"; }

std::string score_or_dash(bool has, double score) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f", score);
  return has ? buf : "-";
}

std::string render_verdict(const v1::AuditReport& report, int listed) {
  std::ostringstream out;
  out << "hash chain: "
      << (report.chain_intact() ? "intact"
                                : "BROKEN at seq " + std::to_string(report.first_broken_seq()) + ": " +
                                      printable(report.chain_problem()))
      << "\n";
  for (const auto& b : report.accepted_chain_breaks()) {
    out << "  the operator served on it anyway (--accept-broken-chain " << b.first_broken_seq()
        << "), recorded at seq " << b.seq() << ": " << printable(b.problem()) << "\n";
  }
  out << "replay: " << report.discrepancies_size() << " discrepancies\n";
  for (int i = 0; i < std::min(report.discrepancies_size(), listed); ++i) {
    const auto& d = report.discrepancies(i);
    out << "  seq " << d.seq() << " incident " << d.incident_id() << ": " << printable(d.what()) << "\n";
  }
  return out.str();
}

std::string render_json(const v1::AuditReport& report) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  pb::util::MessageToJsonString(report, &out, options);
  return out;
}

std::string render_csv(const v1::AuditReport& report) {
  std::ostringstream out;
  out << "scope,id,figure,value\n";
  csv_fields(out, "audit", "", "", report);
  csv_scope(out, report.community());
  for (const auto& z : report.zones()) {
    csv_scope(out, z);
  }
  for (const auto& s : report.staff()) {
    csv_scope(out, s);
  }
  for (const auto& d : report.departments()) {
    csv_scope(out, d);
  }
  for (const auto& r : report.ranking()) {
    csv_fields(out, "ranking", r.zone_id(), "", r);
  }
  return out.str();
}

std::string render_text(const v1::AuditReport& report) {
  const SiteTime site(report.time_zone());
  std::ostringstream out;
  out << "zonecall audit  "
      << (report.from_ms() == 0 ? std::string("(the beginning)") : site.format(report.from_ms()))
      << "  ..  " << site.format(report.to_ms()) << "  (times in " << site.name()
      << ")\nfilters: " << printable(report.filters()) << "; events checked: " << report.events() << "\n\n";
  out << render_verdict(report, 20);

  out << "\nTwo-level assessment (二级量化考核), zones ranked\n"
      << pad("rank", 6) << pad("zone", 8) << pad("level one", 11) << pad("level two", 11) << "total\n";
  for (const auto& r : report.ranking()) {
    out << pad(r.rank() == 0 ? "-" : std::to_string(r.rank()), 6) << pad(printable(r.zone_id()), 8)
        << pad(score_or_dash(r.has_level_one(), r.level_one()), 11)
        << pad(score_or_dash(r.has_level_two(), r.level_two()), 11)
        << (r.rank() == 0 ? "- (no incidents)" : score_or_dash(r.has_total(), r.total())) << "\n";
  }

  auto scope_table = [&](const char* title, const auto& scopes) {
    out << "\n" << title << "\n"
        << pad("", 16) << pad("incidents", 11) << pad("discover", 20) << pad("respond", 20)
        << pad("resolve", 20) << pad("done", 8) << pad("satisfied", 11) << pad("mediated", 10)
        << "visits\n";
    for (const auto& s : scopes) {
      out << pad(printable(s.id().empty() ? s.scope() : s.id()), 16) << pad(std::to_string(s.incidents()), 11)
          << pad(stage_cell(s, v1::DISCOVER), 20) << pad(stage_cell(s, v1::RESPOND), 20)
          << pad(stage_cell(s, v1::RESOLVE), 20)
          << pad(percent_or_dash(s.has_completion_rate(), s.completion_rate()), 8)
          << pad(percent_or_dash(s.has_satisfaction_rate(), s.satisfaction_rate()), 11)
          << pad(percent_or_dash(s.has_mediation_rate(), s.mediation_rate()), 10)
          << (s.scope() == "staff" ? std::to_string(s.households_visited())
                                   : percent_or_dash(s.has_visit_coverage(), s.visit_coverage()))
          << "\n";
    }
  };
  scope_table("Community (stage: share on time, p90)", std::vector<v1::ScopeFigures>{report.community()});
  scope_table("Zones", report.zones());
  scope_table("Staff", report.staff());

  out << "\nDepartments (zone calls)\n"
      << pad("", 24) << pad("calls", 7) << pad("accepted in time", 18) << pad("accept p90", 12)
      << pad("on site in time", 17) << pad("on-site p90", 13) << pad("declined", 10)
      << pad("superseded", 12) << "breaches\n";
  for (const auto& s : report.departments()) {
    const auto& d = s.department();
    out << pad(printable(s.id()), 24) << pad(std::to_string(d.calls()), 7)
        << pad(std::to_string(d.accepted_on_time()) + "/" + std::to_string(d.calls()), 18)
        << pad(duration_or_dash(d.has_accept_p90_ms(), d.accept_p90_ms()), 12)
        << pad(std::to_string(d.on_site_on_time()) + "/" + std::to_string(d.accepted()), 17)
        << pad(duration_or_dash(d.has_on_site_p90_ms(), d.on_site_p90_ms()), 13) << pad(std::to_string(d.declined()), 10)
        << pad(std::to_string(d.superseded()), 12) << d.breaches() << "\n";
  }

  const auto& c = report.community();
  out << "\nEscalations by rung:";
  for (const auto& e : c.escalations()) {
    out << "  " << e.key() << " " << e.count();
  }
  out << "\nWorst cases (community):\n";
  for (const auto& s : c.stages()) {
    out << "  " << pad(v1::Stage_Name(s.stage()), 10) << "p50 " << pad(duration_or_dash(s.has_p50_ms(), s.p50_ms()), 9)
        << "p90 " << pad(duration_or_dash(s.has_p90_ms(), s.p90_ms()), 9) << "p99 "
        << pad(duration_or_dash(s.has_p99_ms(), s.p99_ms()), 9)
        << "worst:";
    for (const auto& w : s.worst()) {
      out << " #" << w.incident_id() << " " << format_duration(w.stage_ms()) << (w.unmet() ? "+" : "");
    }
    out << "\n";
  }
  out << "\n" << (clean(report) ? "OK: the timeline is intact and consistent with its policy."
                                : "FAILED: the timeline is not intact or not consistent (see above).")
      << "\n";
  return out.str();
}

std::string incident_story(TimelineSource& timeline, std::uint64_t incident_id, const SiteTime& site) {
  const auto events = timeline.incident_events(incident_id);
  if (events.empty()) {
    return "";
  }
  sla::Incident incident;
  std::ostringstream out;
  out << "Incident " << incident_id << " (times in " << site.name() << ")\n";
  for (const auto& e : events) {
    if (!sla::malformed(e)) {
      sla::apply_event(incident, e);
    }
    out << "  " << site.format(e.at_ms()) << "  seq " << pad(std::to_string(e.seq()), 8)
        << pad(printable(e.actor_id()), 18) << printable(describe(e, site) + superseding(incident, e)) << "\n";
  }
  out << "\n  zone " << printable(incident.zone_id) << ", " << printable(incident.category) << ", "
      << v1::Severity_Name(incident.severity) << ", policy version " << incident.policy_version
      << ", now " << v1::IncidentState_Name(incident.state) << "\n\n  "
      << pad("stage", 10) << pad("budget", 10) << pad("deadline", 31) << pad("met", 31) << "took\n";
  for (auto stage : sla::kStages) {
    const auto& c = incident.stage(stage);
    out << "  " << pad(v1::Stage_Name(stage), 10) << pad(format_duration(c.deadline - incident.reported_at), 10)
        << pad(site.format(c.deadline), 31) << pad(c.met_at ? site.format(*c.met_at) : "not met", 31);
    if (c.met_at) {
      const auto took = *c.met_at - incident.reported_at;
      out << format_duration(took)
          << (*c.met_at <= c.deadline ? "  on time" : "  LATE by " + format_duration(*c.met_at - c.deadline));
    } else if (c.breached) {
      out << "BREACHED";
    }
    out << "\n";
  }
  for (const auto& call : incident.calls) {
    out << "\n  call " << call.call_no << " to " << printable(call.department_id) << ": " << call_outcome(call, site);
  }
  out << (incident.calls.empty() ? "" : "\n");
  return out.str();
}

}  // namespace zonecall::audit
