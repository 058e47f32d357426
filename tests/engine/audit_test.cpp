// `zonecall audit` against timelines recorded by a real server.
#include <catch2/catch.hpp>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <atomic>
#include <filesystem>
#include <sstream>
#include <thread>

#include "engine/audit/audit.hpp"
#include "engine/config/config.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "engine/token.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
report::AssessmentTopology topology() { return audit::topology_for(test_config()); }

// A timeline with every kind of event: the ladder, both call outcomes,
// duty, feedback, visits and a dedup attachment.
void record_busy_day(RunningServer& server) {
  const auto port = server.port();
  WsClient chief(port);
  WsClient desk(port);
  WsClient command(port);
  WsClient reporter(port);
  chief.hello_on_duty("demo-z7-chief");
  desk.hello("demo-dept-drill-desk");
  command.hello("demo-command");
  reporter.hello("demo-reporter");
  auto drill = chief.request(report_msg("Z7", "drill")).ack().incident_id();
  auto fire = chief.request(report_msg("Z7", "fire")).ack().incident_id();
  auto dup = report_msg("Z7", "neighbour_noise");
  dup.mutable_report()->set_dedup_key("k1");
  auto noise = reporter.request(dup).ack().incident_id();
  REQUIRE(reporter.request(dup).ack().attached());
  REQUIRE(chief.request(zone_call_msg(fire, "drill-desk")).has_ack());
  REQUIRE(chief.request(zone_call_msg(noise, "drill-desk")).has_ack());
  REQUIRE(desk.request(accept_msg(fire)).has_ack());
  REQUIRE(desk.request(decline_msg(noise, "wrong department")).has_ack());
  v1::ClientMessage visit;
  visit.mutable_visit()->set_zone_id("Z7");
  visit.mutable_visit()->set_household_ref("C7-1-101");
  REQUIRE(chief.request(visit).has_ack());
  // Let the drill's clocks (900 ms) and the desk's on-site limit run out;
  // RESOLVE_MISSED goes to community command.
  server.advance(3 * kDrillDiscoverMs + 1);
  bool resolve_missed = false;
  while (auto m = command.next_push()) {
    if (m->has_alert() && m->alert().rung() == v1::RESOLVE_MISSED) {
      resolve_missed = true;
      break;
    }
  }
  REQUIRE(resolve_missed);
  auto settle = resolve_msg(noise, "mediated");
  settle.mutable_resolve()->set_outcome(v1::SETTLED);
  REQUIRE(chief.request(settle).has_ack());
  v1::ClientMessage feedback;
  feedback.mutable_feedback()->set_incident_id(noise);
  feedback.mutable_feedback()->set_satisfied(true);
  feedback.mutable_feedback()->set_score(5);
  REQUIRE(reporter.request(feedback).has_ack());
  REQUIRE(chief.request(resolve_msg(drill, "late")).has_ack());
}

struct Recorded {
  TempDir dir;
  std::string db = dir.file("zonecall.db");
  Recorded() {
    RunningServer server(db);
    record_busy_day(server);
  }
  // A copy to tamper with.
  std::string copy(const std::string& name) const {
    const auto path = dir.file(name);
    std::filesystem::copy_file(db, path);
    return path;
  }
};

void exec(const std::string& db, const std::string& sql) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  file.exec(sql.c_str());
}

v1::TimelineEvent event_at(const std::string& db, std::int64_t seq) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, "SELECT payload FROM timeline WHERE seq = ?");
  q.bind(1, seq);
  REQUIRE(q.step());
  v1::TimelineEvent e;
  const auto bytes = q.column_blob(0);
  REQUIRE(e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  return e;
}

void rewrite(const std::string& db, std::int64_t seq, const v1::TimelineEvent& e) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  sqlite::Statement q(file, "UPDATE timeline SET payload = ? WHERE seq = ?");
  q.bind_blob(1, e.SerializeAsString()).bind(2, seq);
  q.step();
}

std::int64_t seq_of_first(const std::string& db, const std::string& where) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, ("SELECT MIN(seq) FROM timeline WHERE " + where).c_str());
  q.step();
  return q.column_int64(0);
}
}  // namespace

TEST_CASE("audit: a timeline recorded by the live engine replays exactly") {
  Recorded r;
  const auto report = audit::run(*open_source(r.db), topology(), {});
  for (const auto& d : report.discrepancies()) {
    UNSCOPED_INFO("seq " << d.seq() << ": " << d.what());
  }
  CHECK(report.chain_intact());
  CHECK(report.discrepancies_size() == 0);
  CHECK(audit::clean(report));
  CHECK(report.events() == static_cast<std::uint64_t>(count_rows(r.db)));
  CHECK(report.community().incidents() == 3);
  std::map<std::string, std::uint64_t> rungs;
  for (const auto& e : report.community().escalations()) {
    rungs[e.key()] = e.count();
  }
  CHECK(rungs["CRITICAL_AT_REPORT"] == 1);
  CHECK(rungs["RESOLVE_MISSED"] >= 1);
  CHECK(rungs["CALL_DECLINED"] == 1);
  CHECK(rungs["DEPARTMENT_MISSED"] >= 1);
  bool desk_found = false;
  for (const auto& d : report.departments()) {
    if (d.id() == "drill-desk") {
      desk_found = true;
      CHECK(d.department().calls() == 2);
      CHECK(d.department().declined() == 1);
    }
  }
  CHECK(desk_found);
}

TEST_CASE("audit: a hand-edited timeline is caught and named") {
  Recorded r;
  SECTION("a deleted event") {
    const auto db = r.copy("deleted.db");
    exec(db, "DELETE FROM timeline WHERE seq = 5");
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK_FALSE(audit::clean(report));
    CHECK_FALSE(report.chain_intact());
    CHECK(report.first_broken_seq() == 5);
    CHECK(report.chain_problem().find("missing") != std::string::npos);
  }
  SECTION("a changed timestamp") {
    const auto db = r.copy("retimed.db");
    const auto seq = seq_of_first(db, "kind = 11");  // a Discover/Respond/Resolve
    auto e = event_at(db, seq);
    e.set_at_ms(e.at_ms() - 60'000);  // "we were a minute faster"
    rewrite(db, seq, e);
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK_FALSE(audit::clean(report));
    CHECK(report.first_broken_seq() == static_cast<std::uint64_t>(seq));
    REQUIRE(report.discrepancies_size() > 0);
    CHECK(report.discrepancies(0).seq() == static_cast<std::uint64_t>(seq));
  }
  SECTION("a reordered event") {
    const auto db = r.copy("reordered.db");
    auto a = event_at(db, 3);
    auto b = event_at(db, 4);
    std::swap(a, b);
    a.set_seq(3);
    b.set_seq(4);
    rewrite(db, 3, a);
    rewrite(db, 4, b);
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK_FALSE(audit::clean(report));
    CHECK(report.first_broken_seq() == 3);
  }
  SECTION("an event moved to another incident by its column") {
    // The live engine reads an incident's story by the incident_id column,
    // which the hash chain does not cover.
    const auto db = r.copy("moved.db");
    const auto seq = seq_of_first(db, "kind = 11");
    exec(db, "UPDATE timeline SET incident_id = incident_id + 1 WHERE seq = " + std::to_string(seq));
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK_FALSE(audit::clean(report));
    CHECK_FALSE(report.chain_intact());
    CHECK(report.first_broken_seq() == static_cast<std::uint64_t>(seq));
    CHECK(report.chain_problem().find("incident_id column") != std::string::npos);
    CHECK(report.discrepancies_size() == 0);  // the events themselves replay
  }
  SECTION("a clock event's row made a minute earlier by its column") {
    // The replay knows this row by its bytes and never parses it.
    const auto db = r.copy("retimed-column.db");
    const auto seq = seq_of_first(db, "kind = 13");
    const auto at_ms = event_at(db, seq).at_ms();
    exec(db, "UPDATE timeline SET at_ms = at_ms - 60000 WHERE seq = " + std::to_string(seq));
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK_FALSE(audit::clean(report));
    CHECK(report.first_broken_seq() == static_cast<std::uint64_t>(seq));
    CHECK(report.chain_problem() == "row " + std::to_string(seq) + "'s at_ms column says " +
                                        std::to_string(at_ms - 60'000) + ", its event " +
                                        std::to_string(at_ms));
  }
  SECTION("a step re-credited to a grid worker of another zone, with a recomputed hash chain") {
    // The last row is the chief's resolution of the Z7 drill: credit it to a
    // Z2 grid worker, in the payload and the actor column, and relink it.
    const auto db = r.copy("recredited.db");
    const auto last = count_rows(db);
    auto e = event_at(db, last);
    REQUIRE(e.has_advanced());
    CHECK(e.actor_role() == v1::ZONE_CHIEF);
    CHECK(e.actor_zone_id() == "Z7");
    e.set_actor_id("z2-grid-1");
    e.set_actor_role(v1::GRID_WORKER);
    e.set_actor_zone_id("Z2");
    std::string previous;
    {
      sqlite::Database file(db, SQLITE_OPEN_READONLY);
      sqlite::Statement q(file, "SELECT hash FROM timeline WHERE seq = ?");
      q.bind(1, last - 1);
      REQUIRE(q.step());
      previous = std::string(q.column_blob(0));
    }
    const auto payload = e.SerializeAsString();
    {
      sqlite::Database file(db, SQLITE_OPEN_READWRITE);
      sqlite::Statement update(file, "UPDATE timeline SET actor = 'z2-grid-1', payload = ?, hash = ? WHERE seq = ?");
      update.bind_blob(1, payload).bind_blob(2, sha256_chain(previous, payload)).bind(3, last);
      update.step();
    }
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK(report.chain_intact());
    CHECK_FALSE(audit::clean(report));
    REQUIRE(report.discrepancies_size() == 1);
    CHECK(report.discrepancies(0).seq() == static_cast<std::uint64_t>(last));
    CHECK(report.discrepancies(0).what() ==
          "recorded command is not allowed by the state machine: GRID_WORKER z2-grid-1 may not act on "
          "incident " + std::to_string(e.incident_id()) + " in zone Z7");
  }
  SECTION("a forged escalation with a recomputed hash chain") {
    // The forger knows the hash scheme: only the replay can catch this.
    const auto db = r.copy("forged.db");
    const auto last = count_rows(db);
    auto e = event_at(db, last);
    v1::TimelineEvent forged;
    forged.set_seq(static_cast<std::uint64_t>(last + 1));
    forged.set_incident_id(1);
    forged.set_at_ms(e.at_ms());
    forged.set_actor_id("engine");
    forged.mutable_escalated()->set_rung(v1::RESPOND_MISSED);
    forged.mutable_escalated()->set_reason("forged");
    std::string previous;
    {
      sqlite::Database file(db, SQLITE_OPEN_READONLY);
      sqlite::Statement q(file, "SELECT hash FROM timeline WHERE seq = ?");
      q.bind(1, last);
      REQUIRE(q.step());
      previous = std::string(q.column_blob(0));
    }
    const auto payload = forged.SerializeAsString();
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement insert(file, "INSERT INTO timeline VALUES(?, 1, 13, ?, 'engine', ?, ?)");
    insert.bind(1, last + 1).bind(2, forged.at_ms()).bind_blob(3, payload).bind_blob(4, sha256_chain(previous, payload));
    insert.step();
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK(report.chain_intact());
    CHECK_FALSE(audit::clean(report));
    REQUIRE(report.discrepancies_size() == 1);
    CHECK(report.discrepancies(0).seq() == static_cast<std::uint64_t>(last + 1));
    CHECK(report.discrepancies(0).what().find("not dictated") != std::string::npos);
  }
}

TEST_CASE("audit: runs while the server is writing to the same file") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  // The writer's requests take no simulated time: the bucket must hold them.
  options.limits.request_burst = 1e9;
  RunningServer server(options);
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    WsClient grid(server.port());
    grid.hello_on_duty("demo-z2-grid-1");
    while (!stop) {
      auto id = grid.request(report_msg("Z2", "sanitation")).ack().incident_id();
      grid.request(resolve_msg(id, "done"));
      ++written;
    }
  });
  while (written < 5) {
    std::this_thread::yield();
  }
  for (int i = 0; i < 5; ++i) {
    const auto report = audit::run(*open_source(db), topology(), {});
    CHECK(audit::clean(report));
    CHECK(report.events() > 0);
  }
  stop = true;
  writer.join();
  CHECK(written > 5);
}

TEST_CASE("audit: JSON and CSV parse back to the same figures") {
  Recorded r;
  const auto report = audit::run(*open_source(r.db), topology(), {});

  v1::AuditReport parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(audit::render_json(report), &parsed).ok());
  CHECK(google::protobuf::util::MessageDifferencer::Equals(parsed, report));

  // CSV: every scalar figure of every scope, as scope,id,figure,value.
  std::map<std::string, std::string> csv;
  std::istringstream in(audit::render_csv(report));
  std::string line;
  std::getline(in, line);
  CHECK(line == "scope,id,figure,value");
  while (std::getline(in, line)) {
    const auto last = line.rfind(',');
    csv[line.substr(0, last)] = line.substr(last + 1);
  }
  // A figure with no data is "-" in the CSV, absent in the report.
  auto same = [&](const std::string& key, bool has, double value) {
    INFO(key);
    CHECK(csv.at(key) == (has ? csv.at(key) : "-"));
    if (has) {
      CHECK(std::stod(csv.at(key)) == value);
    }
  };
  auto check_scope = [&](const v1::ScopeFigures& s) {
    INFO(s.scope() << " " << s.id());
    const std::string key = s.scope() + "," + s.id() + ",";
    CHECK(std::stoull(csv.at(key + "incidents")) == s.incidents());
    CHECK(std::stoull(csv.at(key + "resolved")) == s.resolved());
    same(key + "completion_rate", s.has_completion_rate(), s.completion_rate());
    same(key + "satisfaction_rate", s.has_satisfaction_rate(), s.satisfaction_rate());
    same(key + "visit_coverage", s.has_visit_coverage(), s.visit_coverage());
    for (const auto& stage : s.stages()) {
      const auto prefix = key + "stages." + v1::Stage_Name(stage.stage()) + ".";
      CHECK(std::stoull(csv.at(prefix + "decided")) == stage.decided());
      same(prefix + "compliance", stage.has_compliance(), stage.compliance());
      same(prefix + "p90_ms", stage.has_p90_ms(), static_cast<double>(stage.p90_ms()));
    }
    for (const auto& c : s.escalations()) {
      CHECK(std::stoull(csv.at(key + "escalations." + c.key())) == c.count());
    }
  };
  check_scope(report.community());
  for (const auto& z : report.zones()) {
    check_scope(z);
  }
  for (const auto& d : report.departments()) {
    check_scope(d);
    CHECK(std::stoull(csv.at("department," + d.id() + ",department.calls")) == d.department().calls());
  }
  for (const auto& rank : report.ranking()) {
    same("ranking," + rank.zone_id() + ",total", rank.has_total(), rank.total());
  }
}

TEST_CASE("audit: the HTML report is one self-contained file with inline SVG charts") {
  Recorded r;
  const auto html = audit::render_html(audit::run(*open_source(r.db), topology(), {}));
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("<svg") != std::string::npos);
  for (const char* chart : {"Stage compliance by zone", "Distribution of stage times", "Daily trend",
                            "Department timeliness"}) {
    CHECK(html.find(chart) != std::string::npos);
  }
  // Nothing to fetch: no scripts, links or external sources.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("href=") == std::string::npos);
}

TEST_CASE("audit: one incident's whole story") {
  Recorded r;
  const SiteTime site(kDefaultTimeZone);
  const auto story = audit::incident_story(*open_source(r.db), 1, site);
  CHECK(story.find("Incident 1") != std::string::npos);
  CHECK(story.find("reported drill") != std::string::npos);
  CHECK(story.find("DISCOVER deadline missed") != std::string::npos);
  CHECK(story.find("LATE by") != std::string::npos);
  CHECK(story.find("z7-chief") != std::string::npos);
  CHECK(story.find("(times in Asia/Shanghai)") != std::string::npos);
  CHECK(story.find("+08:00  seq ") != std::string::npos);
  CHECK(audit::incident_story(*open_source(r.db), 999, site).empty());
}

namespace {
// RFC 4180: the cells of each row.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
    } else {
      cell += c;
    }
  }
  rows.pop_back();  // after the last line break
  return rows;
}
}  // namespace

TEST_CASE("audit: CSV quoting and HTML escaping hold for ESC, line breaks, quotes, markup and commas") {
  const std::string hostile = "Z\"1\",<script>alert('x')</script>\x1b[31m\r\nzone,forged,row,1";
  const std::string shown = "Z\"1\",<script>alert('x')</script>\\x1b[31m\\r\\nzone,forged,row,1";
  v1::AuditReport report;
  report.set_filters("zone=" + hostile);
  report.set_chain_intact(false);
  report.set_chain_problem("row 3 " + hostile);
  auto* d = report.add_discrepancies();
  d->set_seq(3);
  d->set_what("forged " + hostile);
  auto* zone = report.add_zones();
  zone->set_scope("zone");
  zone->set_id(hostile);
  zone->add_stages()->set_stage(v1::DISCOVER);
  auto* score = report.add_ranking();
  score->set_zone_id(hostile);

  const auto rows = parse_csv(audit::render_csv(report));
  int hostile_rows = 0;
  for (const auto& row : rows) {
    INFO(row.size() << " cells, the second: " << (row.size() > 1 ? row[1] : ""));
    REQUIRE(row.size() == 4);
    CHECK(row[0] != "zone,forged");
    hostile_rows += row[1] == shown ? 1 : 0;
    CHECK(row[1].find('\x1b') == std::string::npos);
  }
  CHECK(hostile_rows > 3);  // the zone's figures and its ranking row

  const auto html = audit::render_html(report);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("Z&quot;1&quot;,") != std::string::npos);
  CHECK(html.find('\x1b') == std::string::npos);
  CHECK(html.find("\\x1b[31m\\r\\nzone,forged") != std::string::npos);

  const auto text = audit::render_text(report);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find("\nzone,forged") == std::string::npos);
  CHECK(text.find(shown) != std::string::npos);
}

TEST_CASE("audit: a figure with no data is '-' in every format; a zone with no incidents is not ranked") {
  // Z5 misses every stage of a drill; no other zone has an incident.
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    RunningServer server(db);
    WsClient command(server.port());
    command.hello("demo-command");
    WsClient chief(server.port());
    chief.hello_on_duty("demo-z5-chief");
    REQUIRE(chief.request(report_msg("Z5", "drill")).has_ack());
    server.advance(3 * kDrillDiscoverMs + 1);
    bool resolve_missed = false;
    while (auto m = command.next_push()) {
      if (m->has_alert() && m->alert().rung() == v1::RESOLVE_MISSED) {
        resolve_missed = true;
        break;
      }
    }
    REQUIRE(resolve_missed);
  }
  const auto report = audit::run(*open_source(db), topology(), {});
  REQUIRE(report.ranking_size() == 9);
  CHECK(report.ranking(0).zone_id() == "Z5");
  CHECK(report.ranking(0).rank() == 1);
  CHECK(report.ranking(0).has_total());
  for (int i = 1; i < report.ranking_size(); ++i) {
    INFO(report.ranking(i).zone_id());
    CHECK(report.ranking(i).rank() == 0);
    CHECK_FALSE(report.ranking(i).has_total());
  }
  CHECK(report.ranking(1).zone_id() == "Z1");  // the unranked by zone id
  const v1::ScopeFigures* z5 = nullptr;
  const v1::ScopeFigures* z3 = nullptr;
  for (const auto& z : report.zones()) {
    z5 = z.id() == "Z5" ? &z : z5;
    z3 = z.id() == "Z3" ? &z : z3;
  }
  REQUIRE(z5 != nullptr);
  REQUIRE(z3 != nullptr);
  CHECK(z5->stages(0).has_compliance());
  CHECK(z5->stages(0).compliance() == 0);  // decided, and missed
  CHECK_FALSE(z5->stages(0).has_p90_ms());  // none met: no p90
  CHECK_FALSE(z3->stages(0).has_compliance());
  CHECK_FALSE(z3->has_completion_rate());

  const auto text = audit::render_text(report);
  CHECK(text.find("-     Z3      -          -          - (no incidents)") != std::string::npos);
  CHECK(text.find("0.0% p90 0.0s") == std::string::npos);
  CHECK(text.find("0.0% p90 -") != std::string::npos);
  const auto csv = audit::render_csv(report);
  CHECK(csv.find("zone,Z5,stages.DISCOVER.p90_ms,-\n") != std::string::npos);
  CHECK(csv.find("zone,Z3,stages.DISCOVER.compliance,-\n") != std::string::npos);
  CHECK(csv.find("ranking,Z3,total,-\n") != std::string::npos);
  CHECK(csv.find("ranking,Z3,rank,0\n") != std::string::npos);
  const auto json = audit::render_json(report);
  v1::AuditReport parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  CHECK(google::protobuf::util::MessageDifferencer::Equals(parsed, report));
  const auto html = audit::render_html(report);
  CHECK(html.find("<tr><td>Z3</td><td>0</td><td>-</td><td>-</td><td>-</td><td>-</td><td>-</td>") !=
        std::string::npos);
  CHECK(html.find("<tr><td>Z5</td><td>1</td><td>0.0%</td><td>0.0%</td><td>0.0%</td><td>-</td>") !=
        std::string::npos);
  CHECK(html.find("<tr><td>-</td><td>Z3</td><td>-</td><td>-</td><td>- (no incidents)</td></tr>") !=
        std::string::npos);
}

TEST_CASE("audit: a superseded call is named in the story, the figures and the HTML") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    RunningServer server(db);
    WsClient chief(server.port());
    WsClient desk(server.port());
    chief.hello_on_duty("demo-z7-chief");
    desk.hello("demo-dept-drill-desk");
    const auto id = chief.request(report_msg("Z7", "sanitation")).ack().incident_id();
    REQUIRE(chief.request(zone_call_msg(id, "drill-desk")).has_ack());
    server.advance(kDrillAcceptMs + 1);
    while (auto m = desk.next_push()) {  // until the acceptance limit is missed
      if (m->has_alert() && m->alert().incident().calls(0).accept_breached()) {
        break;
      }
    }
    REQUIRE(chief.request(zone_call_msg(id, "urban-management")).has_ack());
  }
  const auto report = audit::run(*open_source(db), topology(), {});
  CHECK(audit::clean(report));  // derived in the fold: the replay agrees
  std::uint64_t superseded = 0;
  for (const auto& d : report.departments()) {
    superseded += d.id() == "drill-desk" ? d.department().superseded() : 0;
  }
  CHECK(superseded == 1);
  CHECK(audit::render_text(report).find("superseded") != std::string::npos);
  CHECK(audit::render_html(report).find("superseded") != std::string::npos);
  const auto story = audit::incident_story(*open_source(db), 1, SiteTime(kDefaultTimeZone));
  INFO(story);
  CHECK(story.find("zone call 2 to urban-management") != std::string::npos);
  CHECK(story.find("; supersedes call 1 to drill-desk") != std::string::npos);
  CHECK(story.find("call 1 to drill-desk: SUPERSEDED by call 2") != std::string::npos);
  CHECK(story.find("call 2 to urban-management: open, not accepted") != std::string::npos);
}
