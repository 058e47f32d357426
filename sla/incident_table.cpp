#include "sla/incident_table.hpp"

namespace zonecall::sla {

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
    const std::size_t slots = c == last_chunk ? last_offset + 1 : chunk_slots(c);
    memory.emplace_back(reinterpret_cast<std::byte*>(chunks_[c]), slots * sizeof(Slot));
  }
  return memory;
}

}  // namespace zonecall::sla
