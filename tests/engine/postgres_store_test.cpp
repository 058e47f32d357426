// The PostgreSQL store itself, on a throwaway cluster: errors at start, the
// fence, a killed connection, a COMMIT whose answer was lost, schemas per
// street office, and a real server on it end to end.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "engine/store/open_store.hpp"
#include "engine/store/postgres/pg.hpp"
#include "engine/store/postgres/pg_writer.hpp"
#include "support/commit_cutter.hpp"
#include "support/fixtures.hpp"
#include "support/postgres_cluster.hpp"
#include "support/store_events.hpp"
#include "support/ws_client.hpp"
#include "support/zonecall_cli.hpp"

using namespace zonecall;
using namespace zonecall::testing;
using Kind = StoreError::Kind;

namespace {
StoreError opening(const StoreOptions& options) {
  try {
    open_store(options);
  } catch (const StoreFailure& e) {
    return e.error();
  }
  FAIL("opened " << options.location);
  return {};
}

std::string terminate_others(const std::string& uri) {
  return PostgresCluster::sql(uri,
                              "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()");
}
}  // namespace

TEST_CASE("postgres: SQLSTATEs map to error kinds") {
  CHECK(pg::error_kind("53100", false) == Kind::full);
  CHECK(pg::error_kind("53300", false) == Kind::full);
  CHECK(pg::error_kind("55P03", false) == Kind::locked);
  CHECK(pg::error_kind("40P01", false) == Kind::locked);
  CHECK(pg::error_kind("40001", false) == Kind::locked);
  CHECK(pg::error_kind("08006", false) == Kind::connection_lost);
  CHECK(pg::error_kind("57P01", false) == Kind::connection_lost);  // pg_terminate_backend
  CHECK(pg::error_kind("XX001", false) == Kind::corrupt);
  CHECK(pg::error_kind("ZCF01", false) == Kind::fenced);
  CHECK(pg::error_kind("23505", false) == Kind::other);
  CHECK(pg::error_kind(nullptr, true) == Kind::connection_lost);
  CHECK(pg::error_kind("23505", true) == Kind::connection_lost);
  CHECK(pg::is_postgres_location("postgres://h/db"));
  CHECK(pg::is_postgres_location("postgresql://h/db"));
  CHECK_FALSE(pg::is_postgres_location("zonecall.db"));
  CHECK_THROWS_AS(pg::check_schema_name("Office-A"), std::invalid_argument);
  CHECK_THROWS_AS(pg::check_schema_name("pg_office"), std::invalid_argument);
  CHECK_NOTHROW(pg::check_schema_name("office_a"));
}

TEST_CASE("postgres: a bad connection string is refused at start, naming what is wrong and no password") {
  const auto error = opening(StoreOptions{"postgresql://alice:secret@localhost:notaport/db"});
  CHECK(error.kind() == Kind::other);
  CHECK_THAT(error.message(), Catch::Contains("the PostgreSQL connection string is not valid"));
  CHECK_THAT(error.message(), Catch::Contains("the port 'notaport' is not a number"));
  const auto option = opening(StoreOptions{"postgresql://alice:secret@localhost/db?colour=blue"});
  CHECK(option.kind() == Kind::other);
  CHECK_THAT(option.message(), Catch::Contains("invalid URI query parameter: \"colour\""));
  CHECK_THAT(error.message() + option.message(), !Catch::Contains("secret"));
  const auto run = zonecall_cli("serve --store 'postgresql://alice:secret@localhost:notaport/db'");
  CHECK(run.exit_code == 2);
  CHECK_THAT(run.output, Catch::Contains("--store: the PostgreSQL connection string is not valid"));
  CHECK(zonecall_cli("serve --db x.db --store postgresql://localhost/db").exit_code == 2);
  const auto schema = zonecall_cli("serve --store postgresql://localhost/db --pg-schema Office-A");
  CHECK(schema.exit_code == 2);
  CHECK_THAT(schema.output, Catch::Contains("--pg-schema 'Office-A': a schema name is lower-case letters"));
  const auto sync = zonecall_cli("serve --store postgresql://localhost/db --synchronous normal");
  CHECK(sync.exit_code == 2);
  CHECK_THAT(sync.output, Catch::Contains("--synchronous and --max-db-mb are for SQLite"));
  CHECK(zonecall_cli("replay --db x.db --pg-schema office_a").exit_code == 2);
  CHECK_THAT(zonecall_cli("audit --store /tmp/x.db").output, Catch::Contains("--store wants a postgres://"));
  // The schema in the string: one, well named, and the flag's if both are given.
  const auto several = zonecall_cli("serve --store 'postgresql://localhost/db?options=-csearch_path%3Da,b'");
  CHECK(several.exit_code == 2);
  CHECK_THAT(several.output, Catch::Contains("search_path names several schemas"));
  const auto disagree =
      zonecall_cli("serve --store 'postgresql://localhost/db?options=-c%20search_path%3Doffice_a' --pg-schema office_b");
  CHECK(disagree.exit_code == 2);
  CHECK_THAT(disagree.output, Catch::Contains("--pg-schema office_b and the connection string's search_path "
                                              "office_a name different schemas"));
  const auto badly = zonecall_cli("serve --store 'postgresql://localhost/db?options=--search_path%3DOffice'");
  CHECK(badly.exit_code == 2);
  CHECK_THAT(badly.output, Catch::Contains("--store: the connection string's search_path 'Office': a schema name"));
}

TEST_CASE("postgres: serve exits 1 when the database refuses connections, naming it") {
  const auto run = zonecall_cli("serve --store postgresql://zonecall@127.0.0.1:1/db --listen 127.0.0.1:0");
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.output, Catch::Contains("cannot connect to PostgreSQL (database db on 127.0.0.1:1"));
}

TEST_CASE("postgres: a database that refuses connections is connection_lost at start") {
  const auto closed = opening(StoreOptions{"postgresql://zonecall@127.0.0.1:1/db"});
  CHECK(closed.kind() == Kind::connection_lost);
  CHECK_THAT(closed.message(), Catch::Contains("127.0.0.1:1"));
}

namespace {
std::pair<std::int64_t, StoreError> lead_and_wait(TimelineStore& store, const std::string& holder) {
  std::promise<std::pair<std::int64_t, StoreError>> done;
  store.lead(holder, 1, [&](std::int64_t term, const StoreError& error) { done.set_value({term, error}); });
  return done.get_future().get();
}
}  // namespace

TEST_CASE("postgres: a store whose term was taken over is fenced, and stores nothing") {
  const auto uri = PostgresCluster::shared().fresh_database();
  const auto old_leader = open_store(StoreOptions{uri});
  old_leader->start();
  // Opened before the old leader writes: lead() must re-read where the chain ends.
  const auto new_leader = open_store(StoreOptions{uri});
  new_leader->start();
  REQUIRE(lead_and_wait(*old_leader, "engine-a").first == 1);
  REQUIRE_FALSE(append_and_wait(*old_leader, reports(1)));
  CHECK(lead_and_wait(*new_leader, "engine-b").first == 2);
  CHECK(PostgresCluster::sql(uri, "SELECT holder FROM zonecall_leader") == "engine-b");
  const auto fenced = append_and_wait(*old_leader, reports(2, 3));
  REQUIRE(fenced);
  CHECK(fenced.kind() == Kind::fenced);
  CHECK_THAT(fenced.message(), Catch::Contains("term 1, but the current term is 2"));
  old_leader->resume();
  CHECK(append_and_wait(*old_leader, reports(2)).kind() == Kind::fenced);  // still not its term
  CHECK(PostgresCluster::sql(uri, "SELECT count(*) FROM timeline") == "1");
  CHECK_FALSE(append_and_wait(*new_leader, reports(2, 2)));
  new_leader->stop();
  CHECK(stored_seqs(*new_leader) == std::vector<std::uint64_t>{1, 2, 3});
  old_leader->stop();
}

TEST_CASE("postgres: a connection killed between commits is replaced at the next commit, which succeeds") {
  const auto uri = PostgresCluster::shared().fresh_database();
  const auto store = open_store(StoreOptions{uri});
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));
  CHECK(terminate_others(uri) != "0");
  // Once the backends are gone their sockets are closed; the writer reads
  // that before it sends, so nothing is in doubt.
  while (PostgresCluster::sql(uri, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()") != "0") {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the close, just after the exit
  CHECK_FALSE(append_and_wait(*store, reports(2)));
  std::promise<std::size_t> read;  // the reader's connection went too: it reconnects
  store->read_incident(2, [&](std::vector<v1::TimelineEvent> events, const StoreError& error) {
    CHECK_FALSE(error);
    read.set_value(events.size());
  });
  CHECK(read.get_future().get() == 1);
  store->stop();
  CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("postgres: a COMMIT whose answer was lost is resolved by reading what landed") {
  auto& cluster = PostgresCluster::shared();
  const auto uri = cluster.fresh_database();
  CommitCutter cutter(cluster.port());
  const std::string via_cutter = cutter.uri_via(uri);
  LogCapture log;
  const auto store = open_store(StoreOptions{via_cutter});
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));
  SECTION("landed: the appends succeed") {
    cutter.arm();
    CHECK_FALSE(append_and_wait(*store, reports(2, 2)));
    CHECK(cutter.cuts() == 1);
    CHECK(log.contains("store.commit_landed_despite_lost_connection"));
    CHECK_FALSE(append_and_wait(*store, reports(4)));  // the chain goes on after it
    store->stop();
    CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2, 3, 4});
  }
  SECTION("in doubt until the server answers again, which the store says meanwhile") {
    cutter.arm([&] { cutter.refuse_new(true); });
    std::promise<StoreError> done;
    store->append(reports(2), [&](const StoreError& error) { done.set_value(error); });
    auto answer = done.get_future();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!store->commit_in_doubt() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(store->commit_in_doubt());
    CHECK(answer.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
    cutter.refuse_new(false);
    CHECK_FALSE(answer.get());  // it landed, and is found
    CHECK_FALSE(store->commit_in_doubt());
    store->stop();
    CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2});
  }
  SECTION("not landed: connection_lost") {
    // The server dies inside COMMIT (a deferred trigger ends its own backend).
    PostgresCluster::sql(uri, R"sql(
      CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(1); RETURN NULL; END $$;
      CREATE CONSTRAINT TRIGGER die AFTER INSERT ON timeline DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION die();)sql");
    const auto lost = append_and_wait(*store, reports(2, 2));
    REQUIRE(lost);
    CHECK(lost.kind() == Kind::connection_lost);
    CHECK_THAT(lost.message(), Catch::Contains("did not land"));
    PostgresCluster::sql(uri, "DROP TRIGGER die ON timeline");
    store->resume();
    CHECK_FALSE(append_and_wait(*store, reports(2)));
    store->stop();
    CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2});
  }
}

TEST_CASE("postgres: landed() compares the stored link, not just the seq") {
  const auto uri = PostgresCluster::shared().fresh_database();
  {
    const auto store = open_store(StoreOptions{uri});
    store->start();
    REQUIRE_FALSE(append_and_wait(*store, reports(1, 2)));
  }
  PgWriter writer(PgOptions{uri});
  const std::string first = chain_link("", reports(1)->front().SerializeAsString());
  const std::string second = chain_link(first, reports(2)->front().SerializeAsString());
  CHECK(writer.landed(2, second));
  CHECK_FALSE(writer.landed(2, first));  // another writer's row at that seq
  CHECK_FALSE(writer.landed(3, second));
  CHECK(writer.last_committed_seq() == 2);
  // Group commits reuse the connection (pipeline mode is left cleanly).
  const int pid = PQbackendPID(writer.connection().get());
  const auto third = reports(3);
  const auto fourth = reports(4);
  writer.commit({third.get()});
  writer.commit({fourth.get()});
  CHECK(PQbackendPID(writer.connection().get()) == pid);
  CHECK(writer.last_committed_seq() == 4);
}

TEST_CASE("postgres: each street office has its schema, created on first use") {
  const auto uri = PostgresCluster::shared().fresh_database();
  for (const char* office : {"office_a", "office_b"}) {
    StoreOptions options{uri};
    options.pg_schema = office;
    const auto store = open_store(options);
    store->start();
    REQUIRE_FALSE(append_and_wait(*store, reports(1, office == std::string("office_a") ? 3 : 1)));
  }
  CHECK(PostgresCluster::sql(uri, "SELECT count(*) FROM office_a.timeline") == "3");
  CHECK(PostgresCluster::sql(uri, "SELECT count(*) FROM office_b.timeline") == "1");
  CHECK_THROWS_AS(open_source(uri, "office_c"), std::invalid_argument);  // reading creates nothing
  CHECK(PostgresCluster::sql(uri, "SELECT count(*) FROM pg_namespace WHERE nspname = 'office_c'") == "0");
}

TEST_CASE("postgres: two engines creating one schema at once both start, and it is created once") {
  const auto uri = PostgresCluster::shared().fresh_database();
  StoreOptions options{uri};
  options.pg_schema = "office_a";
  auto open = [&] { return open_store(options); };
  auto first = std::async(std::launch::async, open);
  auto second = std::async(std::launch::async, open);
  CHECK_NOTHROW(first.get());
  CHECK_NOTHROW(second.get());
  CHECK(PostgresCluster::sql(uri, "SELECT count(*) FROM office_a.schema_version") == "1");
}

TEST_CASE("postgres: end to end, a server on PostgreSQL recovers an incident after a restart, and audits clean") {
  const auto uri = PostgresCluster::shared().fresh_database();
  auto options = options_for(uri);
  options.pg_schema = "jincheng";
  std::uint64_t id = 0;
  v1::IncidentView before;
  {
    RunningServer server(options);
    WsClient grid(server.port());
    grid.hello("demo-z5-grid-1");
    id = grid.request(report_msg("Z5", "dispute")).ack().incident_id();
    grid.request(discover_msg(id, "talking to both"));
    before = grid.request(get_incident_msg(id)).incident();
  }
  {
    RunningServer server(options);
    WsClient grid(server.port());
    grid.hello("demo-z5-grid-1");
    CHECK(grid.request(get_incident_msg(id)).incident().SerializeAsString() == before.SerializeAsString());
    CHECK(grid.request(respond_msg(id)).has_ack());
  }
  const auto audit = zonecall_cli("audit --store '" + uri + "' --pg-schema jincheng");
  INFO(audit.output);
  CHECK(audit.exit_code == 0);
  // The schema may be selected in the connection string instead.
  const auto by_string = zonecall_cli("audit --store '" + uri + "?options=-csearch_path%3Djincheng'");
  INFO(by_string.output);
  CHECK(by_string.exit_code == 0);
  CHECK(by_string.output == audit.output);
  CHECK_THAT(zonecall_cli("audit --store '" + uri + "'").output,
             Catch::Contains("no zonecall timeline in schema public"));
  const auto replay = zonecall_cli("replay --store '" + uri + "' --pg-schema jincheng");
  INFO(replay.output);
  CHECK(replay.exit_code == 0);
  CHECK_THAT(replay.output, Catch::Contains("0 discrepancies"));
}

TEST_CASE("postgres: end to end, /readyz says commit in doubt while a lost COMMIT answer is asked after, and the Ack follows") {
  auto& cluster = PostgresCluster::shared();
  const auto uri = cluster.fresh_database();
  CommitCutter cutter(cluster.port());
  const std::string via_cutter = cutter.uri_via(uri);
  RunningServer server(options_for(via_cutter));
  WsClient grid(server.port());
  grid.hello("demo-z5-grid-1");
  // The COMMIT lands, its answer is lost, and no server can be asked.
  cutter.arm([&] { cutter.refuse_new(true); });
  auto report = report_msg("Z5", "dispute");
  report.set_request_id(77);
  grid.send(report);
  CHECK(wait_for_readiness(server.port(), "commit in doubt", std::chrono::seconds(10)));
  CHECK(http_get(server.port(), "/readyz").status == 503);
  CHECK_THAT(http_get(server.port(), "/metrics").body, Catch::Contains("zonecall_ready 0"));
  // Not acknowledged, so not in the engine's state either, while in doubt.
  WsClient command(server.port());
  command.hello("demo-command");
  CHECK(command.request(list_msg()).incidents().incidents_size() == 0);
  cutter.refuse_new(false);
  const auto answer = grid.receive(std::chrono::seconds(10));
  REQUIRE(answer.has_value());
  CHECK(answer->request_id() == 77);
  CHECK(answer->has_ack());  // it had landed, and the engine found it
  CHECK(wait_for_readiness(server.port(), "ready", std::chrono::seconds(10)));
  CHECK(grid.request(get_incident_msg(answer->ack().incident_id())).has_incident());
}
