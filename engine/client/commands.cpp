#include "engine/client/commands.hpp"

#include <sstream>
#include <stdexcept>
#include <vector>

#include "engine/printable.hpp"

namespace zonecall::client {

const char* const kHelp = R"(commands (one per line):
  hello TOKEN                     sign in (--token does it at start)
  duty on|off                     go on or off duty (alerts go to on-duty staff)
  report ZONE CATEGORY [WHERE...] report an incident
  discover ID [NOTE...]           respond ID [NOTE...]
  resolve ID [SETTLED|UNSETTLED|REFERRED] [NOTE...]
  call ID DEPARTMENT REASON...    raise a zone call to a street-office department
  accept ID | onsite ID           answer your department's call
  decline ID REASON...
  get ID                          one incident with its whole timeline
  list [ZONE]                     open incidents you may see
  tail [ZONE]                     follow the timeline (and alerts) live
  help | quit)";

namespace {
std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

std::string rest(const std::vector<std::string>& w, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < w.size(); ++i) {
    out += (out.empty() ? "" : " ") + w[i];
  }
  return out;
}

std::uint64_t incident_id(const std::vector<std::string>& w) {
  if (w.size() < 2) {
    throw std::invalid_argument(w[0] + " needs an incident id");
  }
  try {
    std::size_t used = 0;
    const auto id = std::stoull(w[1], &used);
    if (used == w[1].size() && id > 0) {
      return id;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("'" + w[1] + "' is not an incident id");
}

std::string clock_time(const SiteTime& site, std::int64_t ms) { return ms <= 0 ? "-" : site.clock(ms); }

std::string one_line(const v1::IncidentView& v, const SiteTime& site) {
  std::string out = "incident " + std::to_string(v.incident_id()) + " [" + printable(v.zone_id()) + " " +
                    printable(v.category()) + " " + v1::Severity_Name(v.severity()) + "] " +
                    v1::IncidentState_Name(v.state());
  for (const auto& s : v.stages()) {
    out += " " + v1::Stage_Name(s.stage()) + (s.met_at_ms() ? " met " + clock_time(site, s.met_at_ms())
                                                            : " due " + clock_time(site, s.deadline_ms()));
    if (s.breached()) {
      out += " (breached)";
    }
  }
  for (const auto& c : v.calls()) {
    out += " | call " + std::to_string(c.call_no()) + " to " + printable(c.department_id()) +
           (c.declined() ? " declined" : c.on_site_at_ms() ? " on site" : c.accepted_at_ms() ? " accepted"
                                                             : " accept by " + clock_time(site, c.accept_deadline_ms()));
  }
  return out;
}

std::string event_line(const v1::TimelineEvent& e, const SiteTime& site) {
  const auto* field = e.GetDescriptor()->FindFieldByNumber(static_cast<int>(e.kind_case()));
  std::string out = "event " + std::to_string(e.seq()) + " " + clock_time(site, e.at_ms()) + " " +
                    (field ? field->name() : "?");
  if (e.incident_id() != 0) {
    out += " incident " + std::to_string(e.incident_id());
  }
  if (!e.actor_id().empty()) {
    out += " by " + printable(e.actor_id());
  }
  if (e.has_advanced() && !e.advanced().note().empty()) {
    out += " — " + printable(e.advanced().note());
  }
  return out;
}
}  // namespace

Command parse_command(const std::string& line) {
  const auto w = words(line);
  Command c;
  if (w.empty() || w[0][0] == '#') {
    return c;
  }
  const std::string& verb = w[0];
  auto& m = c.message;
  c.kind = Command::Kind::request;
  if (verb == "hello" && w.size() == 2) {
    m.mutable_hello()->set_token(w[1]);
  } else if (verb == "duty" && w.size() == 2 && (w[1] == "on" || w[1] == "off")) {
    m.mutable_set_duty()->set_on_duty(w[1] == "on");
  } else if (verb == "report" && w.size() >= 3) {
    m.mutable_report()->set_zone_id(w[1]);
    m.mutable_report()->set_category(w[2]);
    m.mutable_report()->set_location(rest(w, 3));
  } else if (verb == "discover") {
    m.mutable_discover()->set_incident_id(incident_id(w));
    m.mutable_discover()->set_note(rest(w, 2));
  } else if (verb == "respond") {
    m.mutable_respond()->set_incident_id(incident_id(w));
    m.mutable_respond()->set_note(rest(w, 2));
  } else if (verb == "resolve") {
    m.mutable_resolve()->set_incident_id(incident_id(w));
    v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;
    std::size_t note_from = 2;
    if (w.size() > 2 && v1::Outcome_Parse(w[2], &outcome)) {
      note_from = 3;
    }
    m.mutable_resolve()->set_outcome(outcome);
    m.mutable_resolve()->set_note(rest(w, note_from));
  } else if (verb == "call" && w.size() >= 4) {
    m.mutable_zone_call()->set_incident_id(incident_id(w));
    m.mutable_zone_call()->set_department_id(w[2]);
    m.mutable_zone_call()->set_reason(rest(w, 3));
  } else if (verb == "accept") {
    m.mutable_department_accept()->set_incident_id(incident_id(w));
  } else if (verb == "onsite") {
    m.mutable_department_on_site()->set_incident_id(incident_id(w));
  } else if (verb == "decline" && w.size() >= 3) {
    m.mutable_department_decline()->set_incident_id(incident_id(w));
    m.mutable_department_decline()->set_reason(rest(w, 2));
  } else if (verb == "get") {
    m.mutable_get_incident()->set_incident_id(incident_id(w));
  } else if (verb == "list" && w.size() <= 2) {
    m.mutable_list_incidents()->set_zone_id(w.size() == 2 ? w[1] : "");
  } else if (verb == "tail" && w.size() <= 2) {
    c.kind = Command::Kind::tail;
    c.zone = w.size() == 2 ? w[1] : "";
  } else if (verb == "help") {
    c.kind = Command::Kind::help;
  } else if (verb == "quit" || verb == "exit") {
    c.kind = Command::Kind::quit;
  } else {
    throw std::invalid_argument("cannot read '" + printable(line) + "'; type help");
  }
  return c;
}

std::string describe(const v1::ServerMessage& m, const SiteTime& site) {
  switch (m.body_case()) {
    case v1::ServerMessage::kWelcome: {
      const auto& w = m.welcome();
      return "signed in as " + printable(w.staff_id()) + " (" + printable(w.name()) + ", " +
             v1::Role_Name(w.role()) + (w.zone_id().empty() ? "" : ", zone " + printable(w.zone_id())) +
             (w.department_id().empty() ? "" : ", department " + printable(w.department_id())) +
             "); times in " + site.name();
    }
    case v1::ServerMessage::kAck:
      return "ok" + (m.ack().incident_id() ? ": incident " + std::to_string(m.ack().incident_id()) : "") +
             ", seq " + std::to_string(m.ack().seq()) + (m.ack().attached() ? " (attached to an open incident)" : "");
    case v1::ServerMessage::kError:
      return "error " + v1::ErrorCode_Name(m.error().code()) + ": " + printable(m.error().message());
    case v1::ServerMessage::kIncident: {
      std::string out = one_line(m.incident(), site);
      if (!m.incident().location().empty()) {
        out += "\n  at " + printable(m.incident().location());
      }
      if (!m.incident().description().empty()) {
        out += "\n  " + printable(m.incident().description());
      }
      for (const auto& e : m.incident().timeline()) {
        out += "\n  " + event_line(e, site);
      }
      return out;
    }
    case v1::ServerMessage::kIncidents: {
      std::string out = std::to_string(m.incidents().incidents_size()) + " open incident(s)" +
                        (m.incidents().more() ? " (more: list again after the last)" : "");
      for (const auto& v : m.incidents().incidents()) {
        out += "\n  " + one_line(v, site);
      }
      return out;
    }
    case v1::ServerMessage::kAlert: {
      const auto& a = m.alert();
      return "ALERT " + v1::AlertReason_Name(a.reason()) + " " + one_line(a.incident(), site) +
             (a.reason_text().empty() ? "" : " — " + printable(a.reason_text()));
    }
    case v1::ServerMessage::kEvent:
      return event_line(m.event(), site);
    case v1::ServerMessage::kSubscribed:
      return "caught up at seq " + std::to_string(m.subscribed().caught_up_seq()) + "; following live";
    default:
      return m.ShortDebugString();
  }
}

}  // namespace zonecall::client
