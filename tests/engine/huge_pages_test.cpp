// The engine's memory for the incident table: blocks of 2 MiB and more on
// huge pages, advised to the kernel; smaller blocks from the heap.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/huge_pages.hpp"
#include "sla/incident_table.hpp"

using zonecall::huge_pages;

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

bool on_huge_page_boundary(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kHugePage == 0; }

// Whether the mapping holding `p` was advised MADV_HUGEPAGE: its VmFlags in
// /proc/self/smaps list "hg".
bool advised_huge(const void* p) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> start >> dash >> end && dash == '-') {
      inside = start <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return (line + " ").find(" hg ") != std::string::npos;
    }
  }
  return false;
}

// A kernel without transparent huge pages refuses the advice.
bool kernel_has_huge_pages() { return std::filesystem::exists("/sys/kernel/mm/transparent_hugepage"); }
}  // namespace

TEST_CASE("huge pages: a block of 2 MiB or more starts on a huge page and is advised to use them") {
  auto* memory = huge_pages();
  const std::size_t bytes = 3 * (std::size_t{1} << 20);
  void* big = memory->allocate(bytes, 64);
  CHECK(on_huge_page_boundary(big));
  std::memset(big, 0x5a, bytes);  // all of it writable
  if (kernel_has_huge_pages()) {
    CHECK(advised_huge(big));
    CHECK_FALSE(advised_huge(&bytes));  // the stack: the check tells them apart
  } else {
    WARN("no transparent huge pages in this kernel: the advice is not checked");
  }
  memory->deallocate(big, bytes, 64);

  void* small = memory->allocate(1000, 64);
  CHECK(reinterpret_cast<std::uintptr_t>(small) % 64 == 0);
  std::memset(small, 0x5a, 1000);
  memory->deallocate(small, 1000, 64);
}

TEST_CASE("huge pages: an incident table given them keeps its large chunks on huge pages") {
  zonecall::sla::IncidentTable table(huge_pages());
  int large = 0;
  for (const auto& chunk : table.reserve(100'000)) {
    if (chunk.size() >= kHugePage) {
      ++large;
      CHECK(on_huge_page_boundary(chunk.data()));
      if (kernel_has_huge_pages()) {
        CHECK(advised_huge(chunk.data()));
      }
    }
  }
  CHECK(large > 0);
  table[100'000].id = 100'000;  // the memory is the table's, and usable
  CHECK(table.find(100'000)->id == 100'000);
}
