// The SQLite store itself, on a real file: typed errors from real faults
// and the schema's upgrade path. What every backend does alike is in
// store_behaviour_test.cpp, run on both.
#include <catch2/catch.hpp>


#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/schema.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/store_events.hpp"

using namespace zonecall;
using namespace zonecall::testing;
using Kind = StoreError::Kind;

namespace {
std::int64_t one_value(const std::string& db, const char* sql) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, sql);
  return q.step() ? q.column_int64(0) : -1;
}

// The statements zonecall ran on every file before the schema had a version.
constexpr const char* kSchemaBeforeVersions = R"sql(
CREATE TABLE IF NOT EXISTS timeline (
  seq         INTEGER PRIMARY KEY,   -- gap-free, in commit order
  incident_id INTEGER NOT NULL,
  kind        INTEGER NOT NULL,      -- TimelineEvent.kind field number
  at_ms       INTEGER NOT NULL,      -- server time
  actor       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,      -- the whole zonecall.v1.TimelineEvent
  hash        BLOB    NOT NULL       -- sha256(previous hash || payload)
);
CREATE INDEX IF NOT EXISTS timeline_by_incident ON timeline(incident_id);
CREATE TABLE IF NOT EXISTS policy_versions (
  version      INTEGER PRIMARY KEY,
  fingerprint  TEXT    NOT NULL UNIQUE,  -- config::policy_fingerprint()
  first_use_ms INTEGER NOT NULL
);
)sql";

// A timeline file as zonecall wrote it before the version table: its
// schema, a policy version and `count` chained events.
void write_file_before_versions(const std::string& db, std::uint64_t count) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  file.exec("PRAGMA journal_mode=WAL");
  file.exec(kSchemaBeforeVersions);
  file.exec("INSERT INTO policy_versions VALUES(1, 'old-fingerprint', 0)");
  sqlite::Statement insert(file, "INSERT INTO timeline VALUES(?,?,?,?,?,?,?)");
  std::string link;
  const auto events = reports(1, static_cast<int>(count));
  for (const auto& e : *events) {
    const std::string payload = e.SerializeAsString();
    link = chain_link(link, payload);
    insert.bind(1, static_cast<std::int64_t>(e.seq()))
        .bind(2, static_cast<std::int64_t>(e.incident_id()))
        .bind(3, static_cast<std::int64_t>(e.kind_case()))
        .bind(4, e.at_ms())
        .bind(5, e.actor_id())
        .bind_blob(6, payload)
        .bind_blob(7, link);
    insert.step();
    insert.reset();
  }
}
}  // namespace

TEST_CASE("store: SQLite result codes map to error kinds") {
  CHECK(sqlite::error_kind(SQLITE_FULL) == Kind::full);
  CHECK(sqlite::error_kind(SQLITE_BUSY) == Kind::locked);
  CHECK(sqlite::error_kind(SQLITE_LOCKED) == Kind::locked);
  CHECK(sqlite::error_kind(SQLITE_CORRUPT) == Kind::corrupt);
  CHECK(sqlite::error_kind(SQLITE_NOTADB) == Kind::corrupt);
  CHECK(sqlite::error_kind(SQLITE_IOERR) == Kind::connection_lost);
  CHECK(sqlite::error_kind(SQLITE_IOERR_FSYNC) == Kind::connection_lost);  // extended codes too
  CHECK(sqlite::error_kind(SQLITE_CANTOPEN) == Kind::connection_lost);
  CHECK(sqlite::error_kind(SQLITE_READONLY) == Kind::other);
  CHECK(sqlite::error_kind(SQLITE_MISUSE) == Kind::other);
  // Every kind has its own name for logs; `fenced` is for the PostgreSQL
  // backend and no SQLite code maps to it.
  CHECK(std::string(kind_name(Kind::connection_lost)) == "connection_lost");
  CHECK(std::string(kind_name(Kind::fenced)) == "fenced");
  CHECK(std::string(kind_name(Kind::overloaded)) == "overloaded");
  const sqlite::Error thrown(SQLITE_BUSY, "database is locked");
  const StoreFailure& failure = thrown;
  CHECK(failure.error().kind() == Kind::locked);
  CHECK(failure.error().message() == "database is locked");
  CHECK_FALSE(StoreError());
  CHECK(StoreError(Kind::other, "x"));
}

TEST_CASE("store: a database at its size cap fails the append as full") {
  TempDir dir;
  StoreOptions options{dir.file("t.db")};
  options.max_db_pages = 12;
  const auto store = open_store(options);
  store->start();
  StoreError error;
  std::uint64_t seq = 1;
  for (; seq < 1000 && !error; ++seq) {
    error = append_and_wait(*store, reports(seq));
  }
  REQUIRE(error);
  CHECK(error.kind() == Kind::full);
  CHECK_THAT(error.message(), Catch::Contains("full"));
}

TEST_CASE("store: a file that is not a database is corrupt; a missing directory is connection_lost") {
  TempDir dir;
  const auto db = dir.file("junk.db");
  {
    std::FILE* f = std::fopen(db.c_str(), "wb");
    const std::string junk(8192, 'Z');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  const auto kind_opening = [](const std::string& path) {
    try {
      open_store(StoreOptions{path});
    } catch (const StoreFailure& e) {
      INFO(e.what());
      return e.error().kind();
    }
    FAIL("opened " << path);
    return Kind::other;
  };
  CHECK(kind_opening(db) == Kind::corrupt);
  CHECK(kind_opening(dir.file("gone/t.db")) == Kind::connection_lost);
  CHECK_THROWS_AS(open_source(dir.file("gone/t.db")), std::invalid_argument);
}

TEST_CASE("store: a file written before the schema version table is upgraded in one transaction, keeping its timeline") {
  TempDir dir;
  const auto db = dir.file("old.db");
  write_file_before_versions(db, 5);
  REQUIRE(one_value(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'") == 0);
  {
    // With the write lock taken elsewhere the upgrade cannot run: it fails
    // whole, and the file is as it was.
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    StoreOptions options{db};
    options.busy_timeout_ms = 50;
    try {
      open_store(options);
      FAIL("upgraded a locked file");
    } catch (const StoreFailure& e) {
      CHECK(e.error().kind() == Kind::locked);
    }
    other.exec("ROLLBACK");
    CHECK(one_value(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'") == 0);
  }
  // The read-only tools read it as it is, without upgrading it.
  CHECK(open_source(db)->policy_versions() == std::map<std::uint32_t, std::string>{{1, "old-fingerprint"}});
  CHECK(one_value(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'") == 0);

  const auto store = open_store(StoreOptions{db});
  CHECK(one_value(db, "SELECT MAX(version) FROM schema_version") == 1);
  CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(store->record_policy_at_startup("old-fingerprint", 9) == 1);
  store->start();
  CHECK_FALSE(append_and_wait(*store, reports(6)));  // the chain goes on from the old file's
  store->stop();
  CHECK(stored_seqs(*store).size() == 6);
}

TEST_CASE("store: SQLite has no leaders: lead() fails as other and the store goes on") {
  TempDir dir;
  const auto store = open_store(StoreOptions{dir.file("zonecall.db")});
  store->start();
  std::promise<StoreError> done;
  store->lead("engine-a", 1, [&](std::int64_t, const StoreError& error) { done.set_value(error); });
  const auto error = done.get_future().get();
  REQUIRE(error);
  CHECK(error.kind() == Kind::other);
  CHECK_THAT(error.message(), Catch::Contains("leadership needs the PostgreSQL backend"));
  CHECK_FALSE(append_and_wait(*store, reports(1)));
  store->stop();
}
