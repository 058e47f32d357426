// Checkpoint snapshots (sla/snapshot.hpp): a snapshot plus the events after
// it folds to the state of the whole timeline, and a snapshot that cannot
// be trusted is refused. The sla fuzzer checks the same on random timelines.
#include <catch2/catch.hpp>

#include "book_harness.hpp"
#include "sla/snapshot.hpp"

using namespace zonecall;
using sla::kMinute;
using testing::BookHarness;
using testing::commander;
using testing::department;
namespace command = testing::command;

namespace {
// The book as recovery from a checkpoint builds it: the snapshot through its
// bytes, then the events after it.
sla::IncidentBook restored(const BookHarness& h, const std::string& bytes, std::size_t folded) {
  v1::BookSnapshot snapshot;
  REQUIRE(snapshot.ParseFromString(bytes));
  sla::IncidentBook book(&h.policies);
  book.begin_bulk_load();
  sla::restore_snapshot(book, snapshot);
  for (std::size_t i = folded; i < h.timeline.size(); ++i) {
    REQUIRE(book.apply(h.timeline[i]));
  }
  book.end_bulk_load();
  return book;
}
}  // namespace

TEST_CASE("a checkpoint's snapshot plus the events after it is the state of the whole timeline") {
  BookHarness h;
  h.set_duty("z1-grid-1", "Z1", true);
  const auto fire = h.report("fire").events[0].incident_id();
  const auto permit = h.report("illegal_construction").events[0].incident_id();
  h.run(commander(), command::zone_call(permit, "urban", "beyond our authority"));
  h.clock.advance(2 * kMinute);
  h.tick();  // breaches, escalations
  h.advance(fire, v1::DISCOVERED, "on it");
  const std::string bytes = sla::snapshot_of(h.book).SerializeAsString();
  const std::size_t folded = h.timeline.size();

  h.run(department("urban"), command::accept(permit));
  h.advance(fire, v1::RESPONDING);
  h.advance(fire, v1::RESOLVED);
  h.run(commander(), command::feedback(fire, true, 5, "quick"));
  h.set_duty("z1-grid-1", "Z1", false);
  const auto noise = h.report("noise").events[0].incident_id();
  h.clock.advance(30'000);  // its clocks still run: the future below fires them
  h.tick();

  sla::IncidentBook book = restored(h, bytes, folded);
  CHECK(book.incidents() == h.book.incidents());
  CHECK(book.open_ids() == h.book.open_ids());
  CHECK(book.duty() == h.book.duty());
  CHECK(book.next_seq() == h.book.next_seq());
  CHECK(book.next_incident_id() == h.book.next_incident_id());
  CHECK(book.open_counts().at("Z1") == h.book.open_counts().at("Z1"));
  CHECK(book.find(noise) != nullptr);
  // It owes what the live book owes, and fires the same from here.
  CHECK(book.next_deadline() == h.book.next_deadline());
  const auto later = h.clock.now() + 24 * 60 * kMinute;
  const auto live_due = h.book.due(later);
  const auto restored_due = book.due(later);
  REQUIRE(live_due.size() == restored_due.size());
  REQUIRE_FALSE(live_due.empty());
  for (std::size_t i = 0; i < live_due.size(); ++i) {
    CHECK(live_due[i].SerializeAsString() == restored_due[i].SerializeAsString());
  }
}

TEST_CASE("a snapshot of another format, or one that does not hold together, is refused") {
  BookHarness h;
  h.report("fire");
  h.report("noise");
  const v1::BookSnapshot good = sla::snapshot_of(h.book);
  auto refused = [&](const v1::BookSnapshot& snapshot) {
    sla::IncidentBook book(&h.policies);
    book.begin_bulk_load();
    try {
      sla::restore_snapshot(book, snapshot);
    } catch (const sla::BadSnapshot& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(good).empty());
  auto newer = good;
  newer.set_format(sla::kSnapshotFormat + 1);
  CHECK_THAT(refused(newer), Catch::Contains("a snapshot of format 2; this zonecall reads format 1"));
  auto clocks = good;
  clocks.mutable_incidents(0)->mutable_stages()->RemoveLast();
  CHECK_THAT(refused(clocks), Catch::Contains("has 2 stage clocks, not 3"));
  auto order = good;
  order.mutable_incidents()->SwapElements(0, 1);
  CHECK_THAT(refused(order), Catch::Contains("not in id order"));
  auto beyond = good;
  beyond.set_next_incident_id(2);  // incident 2 is in it
  CHECK_THAT(refused(beyond), Catch::Contains("below its next incident id"));
}
