// Storage errors: the affected request gets INTERNAL, nothing half-written
// appears, the log names the error's kind, and the engine carries on once
// the database is usable again.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "engine/audit/audit.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

TEST_CASE("engine: a locked database fails the request with INTERNAL, then recovers") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 50;
  LogCapture logs;
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
  CHECK(logs.contains("\"event\":\"store.commit_failed\""));
  CHECK(logs.contains("\"kind\":\"locked\""));
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

TEST_CASE("engine: GetIncident answers from committed state while a commit waits on a locked database") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);  // the default 5 s busy timeout
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const auto first = grid.request(report_msg("Z1", "sanitation")).ack();

  sqlite::Database other(db, SQLITE_OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  auto stuck = report_msg("Z1", "fire");
  stuck.set_request_id(WsClient::fresh_request_id());
  grid.send(stuck);  // its commit waits for the lock
  auto read = get_incident_msg(first.incident_id());
  read.set_request_id(WsClient::fresh_request_id());
  grid.send(read);
  // The read is answered first, well inside the writer's busy timeout.
  auto reply = grid.receive(std::chrono::milliseconds(2000));
  REQUIRE(reply);
  CHECK(reply->request_id() == read.request_id());
  CHECK(reply->incident().incident_id() == first.incident_id());
  CHECK(reply->incident().timeline_size() >= 1);
  // The incident whose report is still being committed is not there yet.
  CHECK(grid.request(get_incident_msg(first.incident_id() + 1)).error().code() == v1::NOT_FOUND);
  other.exec("ROLLBACK");
  auto acked = grid.receive();
  REQUIRE(acked);
  CHECK(acked->request_id() == stuck.request_id());
  CHECK(acked->has_ack());
}

TEST_CASE("engine: a full database fails the request with INTERNAL and keeps serving") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.max_db_pages = 12;  // a "disk" that fills after a few dozen reports
  LogCapture logs;
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
  CHECK(logs.contains("\"kind\":\"full\""));
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
  } catch (const StoreFailure& e) {
    CHECK(std::string(e.what()).find("not a database") != std::string::npos);
    CHECK(e.error().kind() == StoreError::Kind::corrupt);
  }
}

TEST_CASE("engine: a broken hash chain stops start-up, naming the seq, unless the operator accepts that break") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  std::uint64_t noted_seq = 0;
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    const auto id = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();
    noted_seq = grid.request(discover_msg(id, "seen at gate 3")).ack().seq();
    grid.request(report_msg("Z1", "sanitation"));
  }
  {
    // One byte of the stored note changed, the chain left as it was.
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    file.exec(("UPDATE timeline SET payload = CAST(replace(CAST(payload AS TEXT), 'gate 3', 'gate 4') AS BLOB)"
               " WHERE seq = " + std::to_string(noted_seq)).c_str());
  }
  const auto seq = std::to_string(noted_seq);
  try {
    Server server(options_for(db));
    FAIL("the server started on a broken chain");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("hash chain breaks at seq " + seq));
    CHECK_THAT(e.what(), Catch::Contains("--accept-broken-chain " + seq));
  }
  auto wrong = options_for(db);
  wrong.accept_broken_chain_at = noted_seq + 1;  // not where it breaks
  CHECK_THROWS_WITH(Server(wrong), Catch::Contains("breaks at seq " + seq));

  {
    LogCapture log;
    auto accepted = options_for(db);
    accepted.accept_broken_chain_at = noted_seq;
    RunningServer server(accepted);
    CHECK(log.contains("store.chain_broken_accepted"));
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    CHECK(grid.request(report_msg("Z1", "sanitation")).has_ack());
  }
  // The choice is in the timeline, and the audit reports it; the replay
  // takes the record as it is (the only finding is the broken chain).
  CHECK(count_rows(db, "kind = 23 AND incident_id = 0 AND actor = 'engine'") == 1);
  const auto report = audit::run(*open_source(db), audit::topology_for(test_config()), {});
  CHECK_FALSE(report.chain_intact());
  CHECK(report.first_broken_seq() == noted_seq);
  CHECK(report.discrepancies_size() == 0);
  REQUIRE(report.accepted_chain_breaks_size() == 1);
  CHECK(report.accepted_chain_breaks(0).first_broken_seq() == noted_seq);
  CHECK_THAT(audit::render_text(report), Catch::Contains("the operator served on it anyway (--accept-broken-chain " + seq));
}

TEST_CASE("engine: --accept-broken-chain on an intact chain refuses to start") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  { RunningServer server(db); }
  auto options = options_for(db);
  options.accept_broken_chain_at = 1;
  CHECK_THROWS_WITH(Server(options), Catch::Contains("the timeline's hash chain is intact"));
}

namespace {
// Writes filler until the filesystem is full; returns the bytes written.
std::size_t fill_disk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const std::string chunk(4096, 'f');
  std::size_t written = 0;
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size() && std::fflush(f) == 0) {
    written += chunk.size();
  }
  std::fclose(f);
  return written;
}
}  // namespace

TEST_CASE("engine: a full disk fails requests with INTERNAL and a log line, and recovers when space returns") {
  TempDir dir;
  Tmpfs disk(dir.file("disk"), 2 * 1024 * 1024);
  if (!disk.mounted()) {
    WARN("not run: mounting a tmpfs needs root");
    return;
  }
  LogCapture logs;
  const auto db = dir.file("disk/zonecall.db");
  std::uint64_t acked = 0;
  std::uint64_t last_seq = 0;
  {
    RunningServer server(options_for(db));
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    auto big = report_msg("Z1", "sanitation");
    big.mutable_report()->set_description(std::string(1500, 'd'));
    REQUIRE(grid.request(big).has_ack());
    ++acked;
    fill_disk(dir.file("disk/filler"));

    v1::ServerMessage reply;
    for (int i = 0; i < 4000; ++i) {
      reply = grid.request(big);
      if (!reply.has_ack()) {
        break;
      }
      ++acked;
      last_seq = reply.ack().seq();
    }
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == v1::INTERNAL);
    CHECK(logs.contains("\"event\":\"store.commit_failed\""));
    CHECK(logs.contains("database or disk is full"));
    CHECK(logs.contains("\"kind\":\"full\""));
    // Still full: refused again, nothing acknowledged.
    CHECK(grid.request(big).error().code() == v1::INTERNAL);

    // Space returns: the same connection is served again, ids and seqs
    // continue without a gap.
    std::filesystem::remove(dir.file("disk/filler"));
    auto again = grid.request(big);
    REQUIRE(again.has_ack());
    CHECK(again.ack().incident_id() == acked + 1);
    CHECK(again.ack().seq() > last_seq);
    ++acked;
    CHECK(logs.contains("\"event\":\"store.recovered\""));
  }
  CHECK(count_rows(db, "kind = 10") == static_cast<std::int64_t>(acked));
  const auto max_seq = count_rows(db);
  CHECK(count_rows(db, "seq <= " + std::to_string(max_seq)) == max_seq);  // gap-free
  CHECK(integrity_check(db) == "ok");
}

TEST_CASE("engine: a database on a read-only filesystem refuses to start with a clear error") {
  TempDir dir;
  Tmpfs disk(dir.file("disk"), 2 * 1024 * 1024);
  if (!disk.mounted()) {
    WARN("not run: mounting a tmpfs needs root");
    return;
  }
  const auto db = dir.file("disk/zonecall.db");
  {
    RunningServer server(options_for(db));
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    REQUIRE(grid.request(report_msg("Z1", "sanitation")).has_ack());
  }
  REQUIRE(disk.remount(true));
  try {
    Server server(options_for(db));
    FAIL("the server started on a database it cannot write");
  } catch (const std::exception& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("read") != std::string::npos);
  }
  // Nothing was lost: once writable again, the server starts with the report.
  REQUIRE(disk.remount(false));
  RunningServer server(options_for(db));
  WsClient command(server.port());
  command.hello("demo-command");
  CHECK(command.request(get_incident_msg(1)).has_incident());
}

TEST_CASE("engine: several batches in flight when a commit fails all fail, and the live state is the stored one") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 300;
  RunningServer server(options);
  WsClient grid(server.port());
  WsClient command(server.port(), WsClient::Mode::json);
  grid.hello_on_duty("demo-z1-grid-1");
  command.hello("demo-command");
  const auto first = grid.request(report_msg("Z1", "sanitation")).ack();
  const auto rows = count_rows(db);
  {
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    // Sent without waiting, so each is decided while the ones before it are
    // still committing: the Discover finds the pending report's incident.
    grid.send(report_msg("Z1", "fire"));
    grid.send(discover_msg(first.incident_id() + 1));
    command.send(report_msg("Z2", "sanitation"));
    grid.send(duty_msg(false));
    for (int replies = 0; replies < 3;) {
      auto reply = grid.receive();
      REQUIRE(reply);
      if (reply->has_alert()) {
        continue;  // the first report's, sent before the lock
      }
      REQUIRE(reply->has_error());
      CHECK(reply->error().code() == v1::INTERNAL);
      ++replies;
    }
    auto reply = command.receive();
    REQUIRE(reply);
    CHECK(reply->error().code() == v1::INTERNAL);
    other.exec("ROLLBACK");
  }
  CHECK(count_rows(db) == rows);
  // Nothing of them is left in memory: the next ones get the same ids and seqs.
  CHECK(grid.request(get_incident_msg(first.incident_id() + 1)).error().code() == v1::NOT_FOUND);
  const auto again = grid.request(report_msg("Z1", "fire")).ack();
  CHECK(again.incident_id() == first.incident_id() + 1);
  CHECK(again.seq() == static_cast<std::uint64_t>(rows) + 1);
  CHECK(grid.request(discover_msg(again.incident_id())).has_ack());
  server.stop();

  StoredReplay replay(db);
  CHECK(replay.replayer->discrepancies().empty());
  const auto& live = server.server().dispatcher().book();
  CHECK(replay.replayer->book().incidents() == live.incidents());
  CHECK(replay.replayer->book().duty() == live.duty());
  CHECK(replay.replayer->book().next_seq() == live.next_seq());
  CHECK(live.duty().on_duty("z1-grid-1"));  // the failed SetDuty never happened
  CHECK_FALSE(live.has_pending());
}

TEST_CASE("engine: with the write queue full, a request is refused UNAVAILABLE before it is decided") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 1000;
  options.max_queued_writes = 2;
  RunningServer server(options);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const auto first = grid.request(report_msg("Z1", "sanitation")).ack();
  const auto rows = count_rows(db);
  {
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    // The writer is stuck on the first; at most two more are queued, so at
    // least one of four is refused (which, depends on when the writer
    // took the first), and so is the next.
    for (int i = 0; i < 4; ++i) {
      grid.send(report_msg("Z1", "fire"));
    }
    grid.request(list_msg());  // answered in order: the four were decided or refused
    auto refused = grid.request(report_msg("Z1", "fire"));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::UNAVAILABLE);
    CHECK(refused.error().message() == "too many writes are waiting for the disk; retry later");
    other.exec("ROLLBACK");
  }
  // The queued ones were not refused: they commit once the lock is gone.
  int acks = 0;
  int unavailable = 0;
  while (acks + unavailable < 4) {
    auto reply = grid.next_push();
    REQUIRE(reply);
    acks += reply->has_ack() ? 1 : 0;
    unavailable += reply->has_error() && reply->error().code() == v1::UNAVAILABLE ? 1 : 0;
  }
  CHECK(acks >= 2);
  CHECK(unavailable >= 1);
  const auto next = grid.request(report_msg("Z1", "fire"));
  REQUIRE(next.has_ack());
  CHECK(next.ack().incident_id() == first.incident_id() + acks + 1);  // nothing refused took an id
  CHECK(count_rows(db, "kind = 10") == acks + 2);
  CHECK(count_rows(db) > rows);
}
