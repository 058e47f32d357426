// The id-indexed incident table: chunks that double, slots constructed as
// the table grows, erase, copies, iteration, and the memory it is given.
#include <catch2/catch.hpp>

#include <memory_resource>
#include <vector>

#include "book_harness.hpp"
#include "sla/incident_table.hpp"
#include "sla/replay.hpp"

using zonecall::sla::Incident;
using zonecall::sla::IncidentTable;

namespace {
// Heap memory that counts the blocks and bytes taken from it and not yet given back.
class CountingMemory final : public std::pmr::memory_resource {
 public:
  std::size_t blocks = 0;
  std::size_t bytes = 0;

 private:
  void* do_allocate(std::size_t n, std::size_t alignment) override {
    ++blocks;
    bytes += n;
    return std::pmr::new_delete_resource()->allocate(n, alignment);
  }
  void do_deallocate(void* p, std::size_t n, std::size_t alignment) override {
    --blocks;
    bytes -= n;
    std::pmr::new_delete_resource()->deallocate(p, n, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }
};

std::vector<std::uint64_t> ids_of(const IncidentTable& table) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, incident] : table) {
    CHECK(incident.id == id);
    ids.push_back(id);
  }
  return ids;
}
}  // namespace

TEST_CASE("incident table: ids across many chunk boundaries stay where they were put") {
  IncidentTable table;
  // 16, 48, 112, ... are where chunks begin; go well past several.
  constexpr std::uint64_t kCount = 5000;
  for (std::uint64_t id = 1; id <= kCount; ++id) {
    Incident& incident = table[id];
    incident.id = id;
    incident.zone_id = "Z" + std::to_string(id % 9 + 1);
  }
  CHECK(table.size() == kCount);
  // Growing never moved an earlier incident: references taken early stay valid.
  Incident* first = table.find(1);
  Incident* boundary = table.find(17);
  for (std::uint64_t id = kCount + 1; id <= 3 * kCount; ++id) {
    table[id].id = id;
  }
  CHECK(table.find(1) == first);
  CHECK(table.find(17) == boundary);
  for (std::uint64_t id : {1ULL, 16ULL, 17ULL, 48ULL, 49ULL, 112ULL, 113ULL, 4096ULL, 5000ULL}) {
    REQUIRE(table.find(id) != nullptr);
    CHECK(table.find(id)->id == id);
    CHECK(table.find(id)->zone_id == "Z" + std::to_string(id % 9 + 1));
  }
  CHECK(table.find(0) == nullptr);
  CHECK(table.find(3 * kCount + 1) == nullptr);
  CHECK(ids_of(table).size() == 3 * kCount);
}

TEST_CASE("incident table: gaps, erase in the middle and at the tail") {
  IncidentTable table;
  table[3].id = 3;
  table[40].id = 40;  // skips a chunk boundary; the slots between stay empty
  CHECK(table.size() == 2);
  CHECK(table.find(2) == nullptr);
  CHECK(table.find(20) == nullptr);
  CHECK(ids_of(table) == std::vector<std::uint64_t>{3, 40});

  table[41].id = 41;
  table.erase(40);  // a hole
  CHECK(ids_of(table) == std::vector<std::uint64_t>{3, 41});
  table.erase(41);  // the tail: its ids are given back down to 3
  CHECK(ids_of(table) == std::vector<std::uint64_t>{3});
  CHECK(table.size() == 1);
  CHECK_FALSE(table.acceptable(3 + IncidentTable::kMaxIdGap + 1));
  CHECK(table.acceptable(3 + IncidentTable::kMaxIdGap));
  CHECK_FALSE(table.acceptable(0));

  // Slots given back are reused empty, not with what they held.
  CHECK(table[41].id == 0);
  CHECK(table.size() == 2);
  table.erase(999);  // absent: nothing happens
  CHECK(table.size() == 2);
}

TEST_CASE("incident table: a copy is deep, equal, and independent; a move empties the source") {
  IncidentTable table;
  for (std::uint64_t id = 1; id <= 300; ++id) {
    table[id].id = id;
    table[id].description = std::string(40, static_cast<char>('a' + id % 26));
  }
  table.erase(150);
  IncidentTable copy = table;
  CHECK(copy == table);
  CHECK(ids_of(copy) == ids_of(table));
  copy[7].description = "changed";
  CHECK_FALSE(copy == table);
  CHECK(table.find(7)->description == std::string(40, 'h'));

  IncidentTable moved = std::move(copy);
  CHECK(moved.size() == 299);
  CHECK(moved.find(7)->description == "changed");
  CHECK(copy.size() == 0);  // NOLINT(bugprone-use-after-move): a moved-from table is empty
  CHECK(copy.find(7) == nullptr);
  copy = table;  // and usable again
  CHECK(copy == table);
}

TEST_CASE("incident table: reserve() hands out the memory the ids up to it will use") {
  IncidentTable table;
  CHECK(table.reserve(0).empty());
  constexpr std::uint64_t kIds = 100'000;  // past the 2 MiB chunks too
  const auto memory = table.reserve(kIds);
  REQUIRE_FALSE(memory.empty());
  CHECK(table.size() == 0);  // nothing constructed
  CHECK(table.find(1) == nullptr);
  auto reserved = [&](const void* p) {
    const auto* byte = static_cast<const std::byte*>(p);
    for (const auto& chunk : memory) {
      if (byte >= chunk.data() && byte + sizeof(Incident) <= chunk.data() + chunk.size()) {
        return true;
      }
    }
    return false;
  };
  for (std::uint64_t id : {std::uint64_t{1}, std::uint64_t{16}, std::uint64_t{17}, std::uint64_t{50'000}, kIds}) {
    table[id].id = id;
    CHECK(reserved(table.find(id)));
  }
  CHECK(table.size() == 5);
  // Reserving again, or less, gives the same memory back.
  const auto again = table.reserve(kIds);
  REQUIRE(again.size() == memory.size());
  CHECK(again.back().data() == memory.back().data());
  CHECK(table.reserve(10).size() == 1);
  CHECK(table.find(50'000)->id == 50'000);
  // Beyond the reservation the table grows as before.
  table[4 * kIds].id = 4 * kIds;
  CHECK_FALSE(reserved(table.find(4 * kIds)));
  CHECK(ids_of(table) == std::vector<std::uint64_t>{1, 16, 17, 50'000, kIds, 4 * kIds});
}

TEST_CASE("incident table: reserve() stops where create() would refuse, and at the last id") {
  IncidentTable table;
  // A count from a forged file: no more than the gap create() accepts.
  std::size_t bytes = 0;
  for (const auto& chunk : table.reserve(std::uint64_t{1} << 50)) {
    bytes += chunk.size();
  }
  CHECK(bytes >= IncidentTable::kMaxIdGap * sizeof(Incident));
  CHECK(bytes <= 2 * IncidentTable::kMaxIdGap * sizeof(std::optional<Incident>));
  // The last chunk is handed out only as far as the ids reach (chunks double).
  IncidentTable small;
  const auto memory = small.reserve(70'000);
  const auto whole = small.reserve(IncidentTable::kMaxIdGap);
  REQUIRE(whole.size() > memory.size());
  CHECK(memory.back().size() < whole[memory.size() - 1].size());
  CHECK(memory.back().size() >= (70'000 - 65'520) * sizeof(Incident));
}

TEST_CASE("incident table: every chunk comes from the memory it was given and goes back to it") {
  CountingMemory memory;
  {
    IncidentTable table(&memory);
    CHECK(memory.blocks == 0);  // nothing until the first id
    table[1].id = 1;
    CHECK(memory.blocks == 1);
    table[5000].id = 5000;  // slot 4999 is in chunk 8: chunks 0..8
    constexpr std::size_t kChunks = 9;
    CHECK(memory.blocks == kChunks);
    CHECK(memory.bytes >= 5000 * sizeof(Incident));
    IncidentTable copy = table;  // a copy's chunks come from the same memory
    CHECK(memory.blocks == 2 * kChunks);
    IncidentTable moved = std::move(copy);  // a move takes the chunks as they are
    CHECK(memory.blocks == 2 * kChunks);
    IncidentTable on_heap;
    on_heap[1].id = 1;
    on_heap = table;  // gives its own chunk back to the heap, copies into the table's memory
    CHECK(memory.blocks == 3 * kChunks);
    CHECK(on_heap == table);
  }
  CHECK(memory.blocks == 0);
  CHECK(memory.bytes == 0);
}

TEST_CASE("incident table: a book and a replayer keep their incidents in the memory they were given") {
  zonecall::testing::BookHarness h;
  h.report("noise");
  h.report("fire");
  CountingMemory memory;
  {
    zonecall::sla::IncidentBook book(&h.policies, &memory);
    for (const auto& e : h.timeline) {
      REQUIRE(book.apply(e));
    }
    CHECK(book.incidents().size() == 2);
    CHECK(memory.blocks == 1);
    zonecall::sla::Replayer replayer(h.policies, &memory);
    for (const auto& e : h.timeline) {
      replayer.feed(e);
    }
    replayer.finish();
    CHECK(replayer.discrepancies().empty());
    CHECK(replayer.book().incidents() == book.incidents());
    CHECK(memory.blocks == 2);
  }
  CHECK(memory.blocks == 0);
}
