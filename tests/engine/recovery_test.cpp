// Restart recovery and exact replay against a real server and file.
#include <catch2/catch.hpp>

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <filesystem>

#include "engine/store/sqlite/sqlite.hpp"
#include "engine/token.hpp"
#include "support/fixtures.hpp"
#include "support/store_backend.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;


TEST_CASE("engine: a restart rebuilds every incident from the timeline") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  v1::IncidentView before;
  std::uint64_t id = 0;
  std::uint64_t last_seq = 0;
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello("demo-z5-grid-1");
    id = grid.request(report_msg("Z5", "dispute")).ack().incident_id();
    last_seq = grid.request(discover_msg(id, "talking to both")).ack().seq();
    before = grid.request(get_incident_msg(id)).incident();
  }
  RunningServer server(db);
  WsClient grid(server.port());
  grid.hello("demo-z5-grid-1");
  auto after = grid.request(get_incident_msg(id)).incident();
  CHECK(after.SerializeAsString() == before.SerializeAsString());
  auto listed = grid.request(list_msg("Z5"));
  REQUIRE(listed.incidents().incidents_size() == 1);
  CHECK(listed.incidents().incidents(0).state() == v1::DISCOVERED);
  // Counters continue where they stopped.
  auto next = grid.request(report_msg("Z5", "sanitation")).ack();
  CHECK(next.incident_id() == id + 1);
  CHECK(next.seq() == last_seq + 1);
  CHECK(grid.request(respond_msg(id)).has_ack());
}

TEST_CASE("engine: replaying the stored timeline gives exactly the live state") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  {
    WsClient grid(server.port());
    WsClient command(server.port(), WsClient::Mode::json);
    grid.hello_on_duty("demo-z2-grid-1");
    command.hello("demo-command");
    auto a = grid.request(report_msg("Z2", "drill")).ack().incident_id();
    auto b = grid.request(report_msg("Z2", "fire")).ack().incident_id();
    auto c = command.request(report_msg("Z8", "noise_complaint_unknown"));
    CHECK(c.error().code() == v1::NOT_FOUND);
    auto d = command.request(report_msg("Z8", "neighbour_noise")).ack().incident_id();
    grid.request(respond_msg(b));
    command.request(resolve_msg(d, "mediated"));
    // Past the drill's three deadlines: its breaches are pushed to the zone.
    server.advance(3 * kDrillDiscoverMs + 1);
    int breaches = 0;
    while (breaches < 3) {
      auto push = grid.next_push();
      REQUIRE(push);
      breaches += push->alert().reason() == v1::BREACHED ? 1 : 0;
    }
    grid.request(resolve_msg(a, "late"));
  }
  server.stop();

  StoredReplay replay(db);
  for (const auto& d : replay.replayer->discrepancies()) {
    UNSCOPED_INFO("seq " << d.seq << ": " << d.what);
  }
  CHECK(replay.replayer->discrepancies().empty());
  CHECK(replay.replayer->events_checked() == static_cast<std::uint64_t>(count_rows(db)));
  const auto& live = server.server().dispatcher().book();
  CHECK(replay.replayer->book().incidents() == live.incidents());
  CHECK(replay.replayer->book().next_seq() == live.next_seq());
}

TEST_CASE("engine: a deadline that passed while the server was down fires on restart") {
  const TestTimeline timeline(GENERATE(Backend::sqlite, Backend::postgres));
  INFO("backend " << backend_name(timeline.backend()));
  const auto& db = timeline.location();
  SimulatedTime time;  // one clock across the restart
  v1::Ack reported;
  {
    RunningServer server(db, time);
    WsClient grid(server.port());
    grid.hello("demo-z4-grid-1");
    reported = grid.request(report_msg("Z4", "drill")).ack();
  }
  // The downtime: every deadline passes while nothing runs.
  const auto deadline = reported.at_ms() + kDrillDiscoverMs;
  time.advance(4 * kDrillDiscoverMs);
  const auto restart_ms = time.now();
  RunningServer server(db, time);
  WsClient grid(server.port());
  // Going on duty is a write, committed after the overdue breaches: once it
  // is acknowledged, so are they.
  grid.hello_on_duty("demo-z4-grid-1");
  auto view = grid.request(get_incident_msg(reported.incident_id())).incident();
  int breaches = 0;
  for (const auto& e : view.timeline()) {
    if (e.has_breached()) {
      ++breaches;
      CHECK(e.at_ms() == restart_ms);  // when it really fired: at recovery
      if (e.breached().stage() == v1::DISCOVER) {
        CHECK(e.breached().deadline_ms() == deadline);  // dated at the deadline
      }
    }
  }
  CHECK(breaches == 3);
  for (const auto& stage : view.stages()) {
    CHECK(stage.breached());
  }
}

TEST_CASE("engine: a graceful stop checkpoints the WAL into the database file") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  {
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    for (int i = 0; i < 20; ++i) {
      grid.request(report_msg("Z1", "sanitation"));
    }
  }
  CHECK(std::filesystem::file_size(db + "-wal") > 0);
  server.stop();
  CHECK(std::filesystem::file_size(db + "-wal") == 0);
  CHECK(count_rows(db, "kind = 10") == 20);
}

TEST_CASE("engine: a reload brings in a new roster and policy without dropping anyone; a bad file is refused") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient before(server.port());
  before.hello("demo-z1-grid-1");
  {
    // Not on the roster yet: refused, once the sign-in delay has passed.
    WsClient stranger(server.port());
    auto hello = hello_msg("demo-newbie");
    hello.set_request_id(WsClient::fresh_request_id());
    stranger.send(hello);
    REQUIRE(stranger.request(list_msg()).has_error());  // the Hello was read first
    server.advance(net::Limits{}.hello_failure_delay.count());
    auto refused = stranger.receive();
    REQUIRE(refused);
    CHECK(refused->error().code() == v1::UNAUTHENTICATED);
  }

  auto config = test_config();
  auto* newbie = config.add_staff();
  newbie->set_id("newbie");
  newbie->set_role(v1::GRID_WORKER);
  newbie->set_zone_id("Z1");
  newbie->set_token_sha256(sha256_hex("demo-newbie"));
  for (auto& c : *config.mutable_categories()) {
    if (c.id() == "drill") {
      c.mutable_budgets()->set_discover_ms(4000);
    }
  }
  const auto path = dir.file("new.textproto");
  {
    std::string text;
    google::protobuf::TextFormat::PrintToString(config, &text);
    std::ofstream(path) << text;
  }
  CHECK(server.reload(path).get().empty());

  WsClient after(server.port());
  CHECK(after.hello("demo-newbie").staff_id() == "newbie");
  auto ack = before.request(report_msg("Z1", "drill"));  // still connected
  REQUIRE(ack.has_ack());
  auto view = before.request(get_incident_msg(ack.ack().incident_id())).incident();
  CHECK(view.stages(0).deadline_ms() == ack.ack().at_ms() + 4000);
  CHECK(view.timeline(0).reported().policy_version() == 2);

  const auto bad = dir.file("bad.textproto");
  std::ofstream(bad) << "zones { id: \"A\" }\nzones { id: \"A\" }\n";
  const auto error = server.reload(bad).get();
  CHECK(error.find("bad.textproto:2") != std::string::npos);
  WsClient still(server.port());
  CHECK(still.hello("demo-newbie").staff_id() == "newbie");  // the new config stays in force
}

TEST_CASE("engine: a reload signs out removed staff and applies a moved member's new zone at once") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient removed(server.port());
  removed.hello("demo-z1-grid-2");
  WsClient rotated(server.port());
  rotated.hello("demo-z1-patrol");
  WsClient moved(server.port());
  moved.hello_on_duty("demo-z1-grid-1");  // on duty in Z1
  REQUIRE(moved.request(subscribe_msg(0)).has_subscribed());
  WsClient reporter(server.port());
  reporter.hello("demo-reporter");

  auto config = test_config();
  auto& staff = *config.mutable_staff();
  staff.erase(std::remove_if(staff.begin(), staff.end(), [](const auto& s) { return s.id() == "z1-grid-2"; }),
              staff.end());
  for (auto& s : staff) {
    if (s.id() == "z1-grid-1") {
      s.set_zone_id("Z2");
    }
    if (s.id() == "z1-patrol") {
      s.set_token_sha256(sha256_hex("a-new-token"));
    }
  }
  const auto path = dir.file("new.textproto");
  {
    std::string text;
    google::protobuf::TextFormat::PrintToString(config, &text);
    std::ofstream(path) << text;
  }
  REQUIRE(server.reload(path).get().empty());

  for (WsClient* gone : {&removed, &rotated}) {
    CHECK_FALSE(gone->receive());
    CHECK(gone->closed());
    CHECK(gone->close_code() == 1008);
    CHECK(gone->close_reason() == "signed out: no longer on the roster");
  }
  // The moved member's next request is judged in Z2.
  const auto refused = moved.request(report_msg("Z1", "sanitation"));
  REQUIRE(refused.has_error());
  CHECK(refused.error().code() == v1::FORBIDDEN);
  // Their subscription and alerts follow the new zone: a Z1 incident is not
  // sent to them, a Z2 one is.
  const auto z1 = reporter.request(report_msg("Z1", "sanitation")).ack();
  const auto z2 = reporter.request(report_msg("Z2", "sanitation")).ack();
  const auto own = moved.request(report_msg("Z2", "sanitation"));
  REQUIRE(own.has_ack());
  // Commits are answered in order: the Ack of a duty change follows every
  // push of the commits before it.
  REQUIRE(moved.request(duty_msg(true)).has_ack());
  std::set<std::uint64_t> seen;
  while (moved.pushes_waiting() > 0) {
    auto m = moved.next_push();
    if (m->has_event()) {
      seen.insert(m->event().incident_id());
    }
    if (m->has_alert()) {
      seen.insert(m->alert().incident().incident_id());
    }
  }
  CHECK(seen.count(z1.incident_id()) == 0);
  CHECK(seen.count(z2.incident_id()) == 1);
  CHECK(seen.count(own.ack().incident_id()) == 1);
}

TEST_CASE("engine: a reload waits for the store without holding up requests; a store error refuses it") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 1500;
  RunningServer server(options);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const auto id = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();

  auto config = test_config();  // a new policy, so the reload records a new version
  for (auto& c : *config.mutable_categories()) {
    if (c.id() == "drill") {
      c.mutable_budgets()->set_discover_ms(4000);
    }
  }
  auto* newbie = config.add_staff();
  newbie->set_id("newbie");
  newbie->set_role(v1::GRID_WORKER);
  newbie->set_zone_id("Z1");
  newbie->set_token_sha256(sha256_hex("demo-newbie"));
  const auto path = dir.file("new.textproto");
  {
    std::string text;
    google::protobuf::TextFormat::PrintToString(config, &text);
    std::ofstream(path) << text;
  }
  {
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");  // the policy version cannot be written yet
    auto reloaded = server.reload(path);
    // Requests are answered meanwhile (reads on the io thread), and the old
    // config is still in force.
    const auto asked = std::chrono::steady_clock::now();
    CHECK(grid.request(get_incident_msg(id)).has_incident());
    CHECK(std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(750));
    CHECK(reloaded.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
    CHECK_THROWS(WsClient(server.port()).hello("demo-newbie"));
    // The busy timeout passes: refused, naming the store's error.
    CHECK_THAT(reloaded.get(), Catch::Contains("database is locked"));
    CHECK_THROWS(WsClient(server.port()).hello("demo-newbie"));
    other.exec("ROLLBACK");
  }
  CHECK(grid.request(report_msg("Z1", "sanitation")).has_ack());
  REQUIRE(server.reload(path).get().empty());
  WsClient after(server.port());
  CHECK(after.hello("demo-newbie").staff_id() == "newbie");
  const auto ack = after.request(report_msg("Z1", "drill")).ack();
  CHECK(after.request(get_incident_msg(ack.incident_id())).incident().timeline(0).reported().policy_version() == 2);
}
