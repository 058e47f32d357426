// EventPipeline: the timeline read and parsed on a second thread, in
// batches, for recovery (trusting) and the audit (checking the chain).
#include <catch2/catch.hpp>

#include <future>

#include "engine/store/event_pipeline.hpp"
#include "engine/store/timeline_store.hpp"
#include "support/fixtures.hpp"

using namespace zonecall;
using zonecall::testing::TempDir;

namespace {
// A timeline of `count` events written by the real store (so the hash
// chain is the real one), spanning several of the pipeline's batches.
void write_timeline(const std::string& db, std::uint64_t count) {
  SqliteTimelineStore store(SqliteOptions{db, false});
  store.start();
  auto events = std::make_shared<std::vector<v1::TimelineEvent>>();
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    auto& e = events->emplace_back();
    e.set_seq(seq);
    e.set_incident_id(seq);
    e.set_at_ms(static_cast<std::int64_t>(1'000 + seq));
    e.set_actor_id("z1-grid-" + std::to_string(seq % 7));
    e.mutable_reported()->set_zone_id("Z1");
    e.mutable_reported()->set_description(std::string(seq % 90, 'd'));  // some longer than SSO
  }
  std::promise<StoreError> done;
  store.append(events, [&](const StoreError& error) { done.set_value(error); });
  REQUIRE_FALSE(done.get_future().get().has_value());
  store.stop();
}

void overwrite_payload(const std::string& db, std::uint64_t seq, const std::string& payload) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  sqlite::Statement q(file, "UPDATE timeline SET payload = ? WHERE seq = ?");
  q.bind_blob(1, payload).bind(2, static_cast<std::int64_t>(seq));
  q.step();
}

std::vector<std::uint64_t> seqs_read(const std::string& db, EventPipeline::Mode mode,
                                     ChainVerdict* verdict = nullptr) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  EventPipeline pipeline(file, mode);
  std::vector<std::uint64_t> seqs;
  pipeline.for_each([&](const v1::TimelineEvent& e, std::string_view stored) {
    // The stored bytes handed on are this event's own.
    v1::TimelineEvent again;
    REQUIRE(again.ParseFromArray(stored.data(), static_cast<int>(stored.size())));
    REQUIRE(again.seq() == e.seq());
    REQUIRE(e.reported().description().size() == e.seq() % 90);
    seqs.push_back(e.seq());
  });
  if (verdict != nullptr) {
    *verdict = pipeline.verdict();
  }
  return seqs;
}

std::vector<std::uint64_t> one_to(std::uint64_t n, std::uint64_t except = 0) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = 1; s <= n; ++s) {
    if (s != except) {
      out.push_back(s);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("event pipeline: every event once, in seq order, across batches") {
  TempDir dir;
  const auto db = dir.file("t.db");
  constexpr std::uint64_t kEvents = 10'000;  // two full batches and a partial one
  write_timeline(db, kEvents);
  CHECK(seqs_read(db, EventPipeline::Mode::kTrust) == one_to(kEvents));
  ChainVerdict verdict;
  CHECK(seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict) == one_to(kEvents));
  CHECK(verdict.intact);
  CHECK(verdict.rows == kEvents);
}

TEST_CASE("event pipeline: an unreadable row stops recovery but only breaks the audit's chain") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 9'000);
  overwrite_payload(db, 5'000, std::string("\xff\xff\xff\xff", 4));

  SECTION("trusting (recovery): a typed error naming the row, after a gap-free prefix") {
    sqlite::Database file(db, SQLITE_OPEN_READONLY);
    EventPipeline pipeline(file, EventPipeline::Mode::kTrust);
    std::vector<std::uint64_t> seqs;
    try {
      pipeline.for_each([&](const v1::TimelineEvent& e, std::string_view) { seqs.push_back(e.seq()); });
      FAIL("an unreadable row was read");
    } catch (const sqlite::Error& e) {
      CHECK(e.code() == SQLITE_CORRUPT);
      CHECK(std::string(e.what()).find("seq 5000") != std::string::npos);
    }
    CHECK(seqs.size() < 5'000);
    CHECK(seqs == one_to(seqs.size()));
  }
  SECTION("checking (the audit): the chain breaks there, and every other event is read") {
    ChainVerdict verdict;
    CHECK(seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict) == one_to(9'000, 5'000));
    CHECK_FALSE(verdict.intact);
    CHECK(verdict.first_broken_seq == 5'000);
    CHECK(verdict.rows == 9'000);
  }
}

TEST_CASE("event pipeline: a consumer that throws stops the reading thread") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 20'000);
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  std::uint64_t last = 0;
  {
    EventPipeline pipeline(file, EventPipeline::Mode::kTrust);
    CHECK_THROWS_WITH(pipeline.for_each([&](const v1::TimelineEvent& e, std::string_view) {
      last = e.seq();
      if (e.seq() == 100) {
        throw std::runtime_error("consumer gave up");
      }
    }),
                      "consumer gave up");
  }  // the destructor joins the reader, which must not hang on a full queue
  CHECK(last == 100);
  // The connection is free again for the caller.
  sqlite::Statement q(file, "SELECT count(*) FROM timeline");
  REQUIRE(q.step());
  CHECK(q.column_int64(0) == 20'000);
}
