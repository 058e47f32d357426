#include "sla/incident_table.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace zonecall::sla {

namespace {
bool huge(std::size_t bytes, std::size_t huge_page) { return bytes >= huge_page; }
std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

std::vector<std::span<std::byte>> IncidentTable::reserve(std::uint64_t ids) {
  // Never past what create() would accept: the count may come from a forged file.
  ids = std::min<std::uint64_t>(ids, used_ + kMaxIdGap);
  std::vector<std::span<std::byte>> memory;
  if (ids == 0) {
    return memory;
  }
  const auto [last_chunk, last_offset] = locate(ids - 1);
  for (std::size_t c = 0; c <= last_chunk; ++c) {
    if (chunks_[c] == nullptr) {
      chunks_[c] = allocate(chunk_slots(c));
    }
    // The last chunk only as far as the ids reach: chunks double, and the
    // rest of it may never be used.
    std::size_t bytes = allocated_bytes(chunk_slots(c));
    if (c == last_chunk) {
      bytes = std::min(bytes, round_up((last_offset + 1) * sizeof(Slot), kPage));
    }
    memory.emplace_back(reinterpret_cast<std::byte*>(chunks_[c]), bytes);
  }
  return memory;
}

std::size_t IncidentTable::allocated_bytes(std::size_t slots) {
  const std::size_t bytes = slots * sizeof(Slot);
  return huge(bytes, kHugePage) ? round_up(bytes, kHugePage) : bytes;
}

IncidentTable::Slot* IncidentTable::allocate(std::size_t slots) {
  const std::size_t bytes = slots * sizeof(Slot);
  if (!huge(bytes, kHugePage)) {
    return static_cast<Slot*>(::operator new(bytes, std::align_val_t{alignof(Slot)}));
  }
  // Aligned to a huge page, and asking for them: a fault then maps 2 MiB
  // instead of 4 KiB. Only a hint: without it this is ordinary memory.
  void* p = std::aligned_alloc(kHugePage, allocated_bytes(slots));
  if (p == nullptr) {
    throw std::bad_alloc();
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, allocated_bytes(slots), MADV_HUGEPAGE);
#endif
  return static_cast<Slot*>(p);
}

void IncidentTable::deallocate(Slot* chunk, std::size_t slots) {
  if (!huge(slots * sizeof(Slot), kHugePage)) {
    ::operator delete(chunk, std::align_val_t{alignof(Slot)});
  } else {
    std::free(chunk);
  }
}

}  // namespace zonecall::sla
