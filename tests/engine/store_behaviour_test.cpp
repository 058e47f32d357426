// The store's behaviour behind its interface, on both backends (a SQLite
// file, and a database on a throwaway PostgreSQL cluster): typed errors from
// a held lock, the bounded write queue, policy versions through the queue,
// and the schema's version.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <mutex>

#include "engine/store/open_store.hpp"
#include "engine/store/postgres/pg_schema.hpp"
#include "engine/store/sqlite/schema.hpp"
#include "support/fixtures.hpp"
#include "support/store_backend.hpp"
#include "support/store_events.hpp"

using namespace zonecall;
using namespace zonecall::testing;
using Kind = StoreError::Kind;

namespace {
Backend any_backend() { return GENERATE(Backend::sqlite, Backend::postgres); }
}  // namespace

TEST_CASE("store behaviour: a locked timeline fails the append as locked, and every later one until resume()") {
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  auto options = timeline.options();
  options.busy_timeout_ms = 50;
  const auto store = open_store(options);
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));
  {
    const auto other = timeline.lock();
    const auto error = append_and_wait(*store, reports(2));
    REQUIRE(error);
    CHECK(error.kind() == Kind::locked);
    CHECK_THAT(error.message(), Catch::Contains(timeline.locked_message()));
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

TEST_CASE("store behaviour: past its bound the write queue refuses an append as overloaded, in its turn") {
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  auto options = timeline.options();
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
  auto other = timeline.lock();  // the writer is stuck on its first commit
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
  other->release();
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

TEST_CASE("store behaviour: once started, a policy version is recorded through the writer's queue") {
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  const auto store = open_store(timeline.options());
  CHECK(store->record_policy_at_startup("first", 1) == 1);
  CHECK(store->record_policy_at_startup("first", 2) == 1);  // unchanged: the same version
  store->start();
  auto other = timeline.lock();
  std::promise<std::pair<std::uint32_t, StoreError>> done;
  const auto called = std::chrono::steady_clock::now();
  store->record_policy("second", 3, [&](std::uint32_t version, const StoreError& error) {
    done.set_value({version, error});
  });
  // The caller is not held while the writer waits for the lock.
  CHECK(std::chrono::steady_clock::now() - called < std::chrono::milliseconds(100));
  auto result = done.get_future();
  CHECK(result.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  other->release();
  const auto [version, error] = result.get();
  CHECK_FALSE(error);
  CHECK(version == 2);
  store->stop();
  CHECK(store->source().policy_versions() ==
        std::map<std::uint32_t, std::string>{{1, "first"}, {2, "second"}});
}

TEST_CASE("store behaviour: a new timeline is at the current schema version") {
  static_assert(sqlite::kSchemaVersion == pg::kSchemaVersion);
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  open_store(timeline.options());
  CHECK(timeline.value("SELECT MAX(version) FROM schema_version") == sqlite::kSchemaVersion);
  CHECK(timeline.value("SELECT COUNT(*) FROM schema_version") == sqlite::kSchemaVersion);
}

TEST_CASE("store behaviour: a timeline from a newer zonecall is refused, naming both versions") {
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  open_store(timeline.options());
  timeline.exec("INSERT INTO schema_version VALUES(" + std::to_string(sqlite::kSchemaVersion + 1) + ")");
  const std::string expected = " has schema version " + std::to_string(sqlite::kSchemaVersion + 1) +
                               ", newer than this zonecall knows (version " +
                               std::to_string(sqlite::kSchemaVersion) + ")";
  CHECK_THROWS_WITH(open_store(timeline.options()), Catch::Contains(expected));
  CHECK_THROWS_WITH(open_source(timeline.location()), Catch::Contains(expected));
  CHECK_THROWS_WITH(Server(options_for(timeline.location())), Catch::Contains(expected));
}

TEST_CASE("store behaviour: appends commit in order with the same hash chain, and read back") {
  const TestTimeline timeline(any_backend());
  INFO(backend_name(timeline.backend()));
  const auto store = open_store(timeline.options());
  store->start();
  std::vector<std::future<StoreError>> waits;
  for (std::uint64_t seq = 1; seq <= 40; seq += 4) {
    auto done = std::make_shared<std::promise<StoreError>>();
    waits.push_back(done->get_future());
    store->append(reports(seq, 4), [done](const StoreError& error) { done->set_value(error); });
  }
  for (auto& w : waits) {
    CHECK_FALSE(w.get());
  }
  std::promise<std::vector<v1::TimelineEvent>> incident;
  store->read_incident(7, [&](std::vector<v1::TimelineEvent> events, const StoreError& error) {
    CHECK_FALSE(error);
    incident.set_value(std::move(events));
  });
  const auto seven = incident.get_future().get();
  REQUIRE(seven.size() == 1);
  CHECK(seven[0].seq() == 7);
  std::promise<std::pair<std::size_t, std::uint64_t>> page;
  store->read_after(30, 5, [&](std::vector<v1::TimelineEvent> events, std::uint64_t last, const StoreError&) {
    page.set_value({events.size(), events.empty() ? 0 : events.front().seq() + 1000 * last});
  });
  CHECK(page.get_future().get() == std::pair<std::size_t, std::uint64_t>{5, 31 + 1000 * 40});
  store->stop();
  // The links are the chain every backend shares.
  std::string link;
  std::uint64_t rows = 0;
  const auto source = open_source(timeline.location());
  const auto cursor = source->scan(ScanFields{.links = true, .columns = true});
  StoredRow row;
  while (cursor->next(row)) {
    link = chain_link(link, row.payload);
    CHECK(row.link == link);
    CHECK(row.columns.incident_id == static_cast<std::int64_t>(row.seq));
    ++rows;
  }
  CHECK(rows == 40);
  CHECK(source->incident_id_bound() == 40);
}
