// EventPipeline: the timeline read and parsed on a second thread, in
// batches, for recovery (trusting) and the audit (checking the chain).
#include <catch2/catch.hpp>

#include <future>

#include "engine/store/event_pipeline.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/sqlite_source.hpp"
#include "engine/token.hpp"
#include "support/fixtures.hpp"

using namespace zonecall;
using zonecall::testing::TempDir;

namespace {
// A timeline of `count` events written by the real store (so the hash
// chain and the kind column are the real ones), spanning several of the
// pipeline's batches. Every third is a clock event (an escalation), which
// the audit's reading thread leaves for the consumer to parse.
bool is_clock_seq(std::uint64_t seq) { return seq % 3 == 0; }

void write_timeline(const std::string& db, std::uint64_t count) {
  const auto store = open_store(StoreOptions{db, false});
  store->start();
  auto events = std::make_shared<std::vector<v1::TimelineEvent>>();
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    auto& e = events->emplace_back();
    e.set_seq(seq);
    e.set_incident_id(seq);
    e.set_at_ms(static_cast<std::int64_t>(1'000 + seq));
    e.set_actor_id("z1-grid-" + std::to_string(seq % 7));
    if (is_clock_seq(seq)) {
      e.mutable_escalated()->set_rung(v1::AT_REPORT);
      e.mutable_escalated()->add_recipients()->set_zone_id("Z1");
    } else {
      e.mutable_reported()->set_zone_id("Z1");
      e.mutable_reported()->set_description(std::string(seq % 90, 'd'));  // some longer than SSO
    }
  }
  std::promise<StoreError> done;
  store->append(events, [&](const StoreError& error) { done.set_value(error); });
  REQUIRE_FALSE(done.get_future().get());
  store->stop();
}

// A hand edit of the timeline, as a forger with the sqlite3 shell would make.
void edit(const std::string& db, const std::string& sql) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  file.exec(sql.c_str());
}

void overwrite_payload(const std::string& db, std::uint64_t seq, const std::string& payload) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  sqlite::Statement q(file, "UPDATE timeline SET payload = ? WHERE seq = ?");
  q.bind_blob(1, payload).bind(2, static_cast<std::int64_t>(seq));
  q.step();
}

// Overwrites the payload and re-links the chain from there on, as a forger
// would: only reading the row finds it.
void forge_payload(const std::string& db, std::uint64_t seq, const std::string& payload) {
  overwrite_payload(db, seq, payload);
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  std::string previous;
  sqlite::Statement rows(file, "SELECT seq, payload FROM timeline ORDER BY seq");
  sqlite::Statement relink(file, "UPDATE timeline SET hash = ? WHERE seq = ?");
  while (rows.step()) {
    previous = sha256_chain(previous, rows.column_blob(1));
    relink.reset();
    relink.bind_blob(1, previous).bind(2, rows.column_int64(0));
    relink.step();
  }
}

std::vector<std::uint64_t> seqs_read(const std::string& db, EventPipeline::Mode mode,
                                     ChainVerdict* verdict = nullptr) {
  const auto source = open_source(db);
  EventPipeline pipeline(*source, mode);
  std::vector<std::uint64_t> seqs;
  pipeline.for_each([&](EventPipeline::Row& row) {
    const v1::TimelineEvent* e = row.event();
    if (e == nullptr) {
      return;  // a row left unparsed, and unreadable: the verdict says so
    }
    // The stored bytes handed on are this event's own.
    v1::TimelineEvent again;
    REQUIRE(again.ParseFromArray(row.stored().data(), static_cast<int>(row.stored().size())));
    REQUIRE(again.seq() == e->seq());
    REQUIRE(e->has_escalated() == is_clock_seq(row.seq()));
    REQUIRE(e->reported().description().size() == (is_clock_seq(row.seq()) ? 0 : row.seq() % 90));
    seqs.push_back(e->seq());
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
    const auto source = open_source(db);
    EventPipeline pipeline(*source, EventPipeline::Mode::kTrust);
    std::vector<std::uint64_t> seqs;
    try {
      pipeline.for_each([&](EventPipeline::Row& row) { seqs.push_back(row.event()->seq()); });
      FAIL("an unreadable row was read");
    } catch (const StoreFailure& e) {
      CHECK(e.error().kind() == StoreError::Kind::corrupt);
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

TEST_CASE("event pipeline: a clock row left unparsed is checked when the consumer parses it") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 9'000);
  REQUIRE(is_clock_seq(6'000));
  forge_payload(db, 6'000, std::string("\xff\xff\xff\xff", 4));
  ChainVerdict verdict;

  SECTION("alone, it breaks the chain there") {
    CHECK(seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict) == one_to(9'000, 6'000));
    CHECK_FALSE(verdict.intact);
    CHECK(verdict.first_broken_seq == 6'000);
    CHECK(verdict.problem == "seq 6000 holds no readable event");
  }
  SECTION("after a break the reading thread found, the verdict names the first") {
    REQUIRE_FALSE(is_clock_seq(5'000));
    overwrite_payload(db, 5'000, std::string("\xff\xff\xff\xff", 4));
    seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict);
    CHECK(verdict.first_broken_seq == 5'000);
  }
  SECTION("a seq that is not the row's breaks it too") {
    v1::TimelineEvent wrong;
    wrong.set_seq(17);
    wrong.set_incident_id(6'000);
    wrong.mutable_escalated()->set_rung(v1::AT_REPORT);
    forge_payload(db, 6'000, wrong.SerializeAsString());
    seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict);
    CHECK(verdict.first_broken_seq == 6'000);
    CHECK(verdict.problem == "row 6000 holds the event of seq 17");
  }
}

TEST_CASE("event pipeline: a row whose columns are not its event's breaks the chain there") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 9'000);
  // 5000 holds a report, which the reading thread parses; 6000 an
  // escalation, left for the consumer (unless its kind column lies).
  const std::uint64_t seq = GENERATE(5'000u, 6'000u);
  REQUIRE(is_clock_seq(seq) == (seq == 6'000));
  const std::string s = std::to_string(seq);
  const std::string kind = is_clock_seq(seq) ? "13" : "10";
  const std::string other_kind = is_clock_seq(seq) ? "10" : "13";
  const std::string not_integer = "row " + s + " holds a column that is not an integer";
  const auto [assignment, problem] = GENERATE_COPY(table<std::string, std::string>({
      {"incident_id = 7", "row " + s + "'s incident_id column says 7, its event " + s},
      {"kind = " + other_kind, "row " + s + "'s kind column says " + other_kind + ", its event " + kind},
      {"at_ms = 1", "row " + s + "'s at_ms column says 1, its event " + std::to_string(1'000 + seq)},
      // Values that read back as the right integer, yet miss integer queries.
      {"incident_id = incident_id + 0.25", not_integer},
      {"at_ms = CAST(at_ms AS BLOB)", not_integer},
      {"kind = kind + 4294967296", "row " + s + "'s kind column says " +
                                       std::to_string(4294967296 + std::stoll(kind)) + ", its event " + kind},
  }));
  edit(db, "UPDATE timeline SET " + assignment + " WHERE seq = " + s);
  ChainVerdict verdict;
  // The row's event is still read: only the columns are wrong.
  CHECK(seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict) == one_to(9'000));
  CHECK_FALSE(verdict.intact);
  CHECK(verdict.first_broken_seq == seq);
  CHECK(verdict.problem == problem);
}

TEST_CASE("event pipeline: a gap is found before the bad column of the row after it") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 9'000);
  edit(db, "DELETE FROM timeline WHERE seq = 4000");
  edit(db, "UPDATE timeline SET at_ms = 'late' WHERE seq = 4001");  // the row after the gap
  ChainVerdict verdict;
  seqs_read(db, EventPipeline::Mode::kCheckChain, &verdict);
  CHECK(verdict.first_broken_seq == 4'000);
  CHECK(verdict.problem == "events 4000..4000 are missing");
}

TEST_CASE("event pipeline: a row the consumer identifies by its bytes has its columns checked") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 9'000);
  edit(db, "UPDATE timeline SET at_ms = 5 WHERE seq = 6000");
  const auto source = open_source(db);
  EventPipeline pipeline(*source, EventPipeline::Mode::kCheckChain);
  v1::TimelineEvent known;  // as the audit's replay knows an event it dictated
  bool same_event = false;
  pipeline.for_each([&](EventPipeline::Row& row) {
    if (row.seq() == 6'000) {
      REQUIRE(known.ParseFromArray(row.stored().data(), static_cast<int>(row.stored().size())));
      row.identified_as(known);
      same_event = row.event() == &known;  // not parsed again
    }
  });
  CHECK(same_event);
  CHECK_FALSE(pipeline.verdict().intact);
  CHECK(pipeline.verdict().first_broken_seq == 6'000);
  CHECK(pipeline.verdict().problem == "row 6000's at_ms column says 5, its event 7000");
}

TEST_CASE("event pipeline: a consumer that throws stops the reading thread") {
  TempDir dir;
  const auto db = dir.file("t.db");
  write_timeline(db, 20'000);
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  SqliteSource source(file);
  std::uint64_t last = 0;
  {
    EventPipeline pipeline(source, EventPipeline::Mode::kTrust);
    CHECK_THROWS_WITH(pipeline.for_each([&](EventPipeline::Row& row) {
      last = row.seq();
      if (row.seq() == 100) {
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

TEST_CASE("sqlite source: the incident id bound is the highest id, never more than the rows") {
  TempDir dir;
  const auto db = dir.file("t.db");
  {
    const auto store = open_store(StoreOptions{dir.file("empty.db"), false});
    store->start();
    store->stop();
  }
  CHECK(open_source(dir.file("empty.db"))->incident_id_bound() == 0);
  write_timeline(db, 1'000);  // incident ids 1..1000, one per row
  {
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement q(file, "UPDATE timeline SET incident_id = 7 WHERE seq > 500");
    q.step();
  }
  CHECK(open_source(db)->incident_id_bound() == 500);
  {
    // A forged id far beyond the rows: the bound stays at the rows.
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement q(file, "UPDATE timeline SET incident_id = 1000000000000 WHERE seq = 3");
    q.step();
  }
  CHECK(open_source(db)->incident_id_bound() == 1'000);
  {
    // Forged seq and id together: the file's size still bounds it.
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement q(file, "UPDATE timeline SET seq = 50000000, incident_id = 50000000 WHERE seq = 1000");
    q.step();
  }
  const auto bound = open_source(db)->incident_id_bound();
  CHECK(bound >= 1'000);
  CHECK(bound < 20'000);
}
