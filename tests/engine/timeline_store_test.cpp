// The store behind its interface, on a real SQLite file: typed errors from
// real faults, the bounded write queue, policy versions through the queue,
// and the schema's version and upgrade path.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <mutex>

#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/schema.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "support/fixtures.hpp"

using namespace zonecall;
using zonecall::testing::TempDir;
using Kind = StoreError::Kind;

namespace {
// `count` reports with seqs from `first_seq` on.
TimelineStore::Batch reports(std::uint64_t first_seq, int count = 1) {
  auto events = std::make_shared<std::vector<v1::TimelineEvent>>();
  for (int i = 0; i < count; ++i) {
    auto& e = events->emplace_back();
    e.set_seq(first_seq + static_cast<std::uint64_t>(i));
    e.set_incident_id(e.seq());
    e.set_at_ms(1'000 + static_cast<std::int64_t>(e.seq()));
    e.set_actor_id("z1-grid-1");
    e.mutable_reported()->set_zone_id("Z1");
    e.mutable_reported()->set_description(std::string(300, 'd'));
  }
  return events;
}

// Appends and waits for the completion.
StoreError append_and_wait(TimelineStore& store, TimelineStore::Batch events) {
  std::promise<StoreError> done;
  store.append(std::move(events), [&](const StoreError& error) { done.set_value(error); });
  return done.get_future().get();
}

std::int64_t one_value(const std::string& db, const char* sql) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, sql);
  return q.step() ? q.column_int64(0) : -1;
}

std::vector<std::uint64_t> stored_seqs(TimelineStore& store) {
  std::vector<std::uint64_t> seqs;
  const auto verdict = store.load([&](const v1::TimelineEvent& e) { seqs.push_back(e.seq()); });
  CHECK(verdict.intact);
  return seqs;
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

TEST_CASE("store: a locked database fails the append as locked, and every later one until resume()") {
  TempDir dir;
  const auto db = dir.file("t.db");
  StoreOptions options{db};
  options.busy_timeout_ms = 50;
  const auto store = open_store(options);
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));
  {
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    const auto error = append_and_wait(*store, reports(2));
    REQUIRE(error);
    CHECK(error.kind() == Kind::locked);
    CHECK_THAT(error.message(), Catch::Contains("database is locked"));
    other.exec("ROLLBACK");
  }
  // The owner has not resumed: refused, with the kind that stopped the writes.
  const auto refused = append_and_wait(*store, reports(2));
  REQUIRE(refused);
  CHECK(refused.kind() == Kind::locked);
  store->resume();
  CHECK_FALSE(append_and_wait(*store, reports(2)));
  store->stop();
  CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2});
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

TEST_CASE("store: past its bound the write queue refuses an append as overloaded, in its turn") {
  TempDir dir;
  const auto db = dir.file("t.db");
  StoreOptions options{db};
  options.max_queued_writes = 3;
  const auto store = open_store(options);
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));

  std::mutex mutex;
  std::vector<std::pair<int, StoreError>> answered;  // in completion order
  std::vector<std::future<void>> waits;
  auto append = [&](int n, TimelineStore::Batch events) {
    auto done = std::make_shared<std::promise<void>>();
    waits.push_back(done->get_future());
    store->append(std::move(events), [&, n, done](const StoreError& error) {
      std::lock_guard lock(mutex);
      answered.emplace_back(n, error);
      done->set_value();
    });
  };
  sqlite::Database other(db, SQLITE_OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // the writer is stuck on its first commit
  CHECK(store->has_room());
  append(1, reports(2));
  append(2, reports(3));
  CHECK(store->has_room());
  append(3, reports(4));
  CHECK_FALSE(store->has_room());
  append(4, reports(5, 1000));  // not queued
  CHECK_FALSE(store->has_room());
  // The refusal waits for the writes queued before it.
  CHECK(waits[3].wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  {
    std::lock_guard lock(mutex);
    CHECK(answered.empty());
  }
  other.exec("ROLLBACK");
  for (auto& w : waits) {
    w.get();
  }
  REQUIRE(answered.size() == 4);
  for (int i = 0; i < 3; ++i) {
    CHECK(answered[i].first == i + 1);
    CHECK_FALSE(answered[i].second);
  }
  CHECK(answered[3].first == 4);
  REQUIRE(answered[3].second);
  CHECK(answered[3].second.kind() == Kind::overloaded);
  CHECK(store->has_room());
  // As after a failed commit, the next writes fail until the owner resumes.
  const auto after = append_and_wait(*store, reports(5));
  REQUIRE(after);
  CHECK(after.kind() == Kind::overloaded);
  store->resume();
  CHECK_FALSE(append_and_wait(*store, reports(5)));
  std::string metrics;
  store->render_metrics(metrics);
  CHECK_THAT(metrics, Catch::Contains("\nzonecall_write_queue_refused_total 1\n"));
  CHECK_THAT(metrics, Catch::Contains("\nzonecall_write_queue_batches 0\n"));
  store->stop();
  CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("store: once started, a policy version is recorded through the writer's queue") {
  TempDir dir;
  const auto db = dir.file("t.db");
  const auto store = open_store(StoreOptions{db});
  CHECK(store->record_policy_at_startup("first", 1) == 1);
  CHECK(store->record_policy_at_startup("first", 2) == 1);  // unchanged: the same version
  store->start();
  sqlite::Database other(db, SQLITE_OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  std::promise<std::pair<std::uint32_t, StoreError>> done;
  const auto called = std::chrono::steady_clock::now();
  store->record_policy("second", 3, [&](std::uint32_t version, const StoreError& error) {
    done.set_value({version, error});
  });
  // The caller is not held while the writer waits for the lock.
  CHECK(std::chrono::steady_clock::now() - called < std::chrono::milliseconds(100));
  auto result = done.get_future();
  CHECK(result.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  other.exec("ROLLBACK");
  const auto [version, error] = result.get();
  CHECK_FALSE(error);
  CHECK(version == 2);
  store->stop();
  CHECK(store->source().policy_versions() ==
        std::map<std::uint32_t, std::string>{{1, "first"}, {2, "second"}});
}

TEST_CASE("store: a new file is at the current schema version") {
  TempDir dir;
  const auto db = dir.file("t.db");
  open_store(StoreOptions{db});
  CHECK(one_value(db, "SELECT MAX(version) FROM schema_version") == sqlite::kSchemaVersion);
  CHECK(one_value(db, "SELECT COUNT(*) FROM schema_version") == sqlite::kSchemaVersion);
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

TEST_CASE("store: a file from a newer zonecall is refused, naming both versions") {
  TempDir dir;
  const auto db = dir.file("t.db");
  open_store(StoreOptions{db});
  {
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    file.exec(("INSERT INTO schema_version VALUES(" + std::to_string(sqlite::kSchemaVersion + 1) + ")").c_str());
  }
  const std::string expected = "the database " + db + " has schema version " +
                               std::to_string(sqlite::kSchemaVersion + 1) +
                               ", newer than this zonecall knows (version " +
                               std::to_string(sqlite::kSchemaVersion) + ")";
  CHECK_THROWS_WITH(open_store(StoreOptions{db}), Catch::Contains(expected));
  CHECK_THROWS_WITH(open_source(db), Catch::Contains(expected));
  CHECK_THROWS_WITH(Server(testing::options_for(db)), Catch::Contains(expected));
}
