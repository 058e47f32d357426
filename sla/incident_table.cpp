#include "sla/incident_table.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace zonecall::sla {

namespace {
bool huge(std::size_t bytes, std::size_t huge_page) { return bytes >= huge_page; }
std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

IncidentTable::Slot* IncidentTable::allocate(std::size_t slots) {
  const std::size_t bytes = slots * sizeof(Slot);
  if (!huge(bytes, kHugePage)) {
    return static_cast<Slot*>(::operator new(bytes, std::align_val_t{alignof(Slot)}));
  }
  // Aligned to a huge page, and asking for them: a fault then maps 2 MiB
  // instead of 4 KiB. Only a hint: without it this is ordinary memory.
  void* p = std::aligned_alloc(kHugePage, round_up(bytes, kHugePage));
  if (p == nullptr) {
    throw std::bad_alloc();
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, round_up(bytes, kHugePage), MADV_HUGEPAGE);
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
