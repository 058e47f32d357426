// Storage errors: the affected request gets INTERNAL, nothing half-written
// appears, and the engine carries on once the database is usable again.
#include <catch2/catch.hpp>

#include "engine/store/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

TEST_CASE("engine: a locked database fails the request with INTERNAL, then recovers") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 50;
  RunningServer server(options);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const auto first = grid.request(report_msg("Z1", "sanitation"));
  REQUIRE(first.has_ack());

  {
    // Another process holds the write lock.
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    auto refused = grid.request(report_msg("Z1", "fire"));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::INTERNAL);
    auto refused_too = grid.request(discover_msg(first.ack().incident_id()));
    CHECK(refused_too.error().code() == v1::INTERNAL);
    other.exec("ROLLBACK");
  }
  const auto reported = "kind = 10";  // IncidentReported rows
  CHECK(count_rows(db, reported) == 1);
  const auto rows = count_rows(db);

  // Nothing of the failed requests survives in memory either.
  CHECK(grid.request(get_incident_msg(first.ack().incident_id() + 1)).error().code() ==
        v1::NOT_FOUND);
  auto view = grid.request(get_incident_msg(first.ack().incident_id())).incident();
  CHECK(view.state() == v1::REPORTED);

  // Once the lock is gone the same requests succeed, with gap-free seqs.
  auto again = grid.request(report_msg("Z1", "fire"));
  REQUIRE(again.has_ack());
  CHECK(again.ack().incident_id() == first.ack().incident_id() + 1);
  CHECK(again.ack().seq() == static_cast<std::uint64_t>(rows) + 1);  // gap-free
  CHECK(grid.request(discover_msg(first.ack().incident_id())).has_ack());
  CHECK(count_rows(db, reported) == 2);
  CHECK(integrity_check(db) == "ok");
}

TEST_CASE("engine: a full database fails the request with INTERNAL and keeps serving") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.max_db_pages = 12;  // a "disk" that fills after a few dozen reports
  RunningServer server(options);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  std::uint64_t last_acked = 0;
  v1::ServerMessage reply;
  auto big = report_msg("Z1", "sanitation");
  big.mutable_report()->set_description(std::string(400, 'd'));
  for (int i = 0; i < 2000; ++i) {
    reply = grid.request(big);
    if (!reply.has_ack()) {
      break;
    }
    last_acked = reply.ack().incident_id();
  }
  REQUIRE(reply.has_error());
  CHECK(reply.error().code() == v1::INTERNAL);
  REQUIRE(last_acked > 0);
  const auto rows = count_rows(db);
  CHECK(count_rows(db, "kind = 10") == static_cast<std::int64_t>(last_acked));
  // Reads still work; the failed report left nothing behind.
  CHECK(grid.request(get_incident_msg(last_acked)).has_incident());
  CHECK(grid.request(get_incident_msg(last_acked + 1)).error().code() == v1::NOT_FOUND);
  CHECK(grid.request(big).error().code() == v1::INTERNAL);
  CHECK(count_rows(db) == rows);
  CHECK(integrity_check(db) == "ok");
}

TEST_CASE("engine: a corrupt database file refuses to start with a clear error") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    std::FILE* f = std::fopen(db.c_str(), "wb");
    const std::string junk(8192, 'Z');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  try {
    Server server(options_for(db));
    FAIL("the server started on a corrupt file");
  } catch (const sqlite::Error& e) {
    CHECK(std::string(e.what()).find("not a database") != std::string::npos);
  }
}
