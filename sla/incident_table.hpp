#pragma once
// Every incident, by id. Ids are dense (the book hands them out one by one),
// so the table is indexed by id: lookups are O(1), and growing never moves
// or rehashes what is there (a hash map's rehash of a million incidents
// stalled the io thread for ~100 ms, bench/RESULTS.md, benchmark 3).
//
// The slots live in chunks that double in size: 16 slots, then 32, 64, ...
// A small book (a test, a fuzzed input) costs a few hundred bytes; a million
// incidents cost 16 allocations. A slot is constructed only when the table
// grows over it, so capacity not yet used is untouched address space. The
// chunks come from a memory resource: the heap by default; the engine's
// asks for transparent huge pages for chunks of 2 MiB or more
// (engine/huge_pages.hpp): page faults on a year's fresh incidents were a
// sixth of the audit (bench/RESULTS.md).
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "sla/incident.hpp"

namespace zonecall::sla {

class IncidentTable {
 public:
  // The largest id ahead of the table that create() accepts: beyond it an id
  // is not one the book handed out (a forged row), and is refused.
  static constexpr std::uint64_t kMaxIdGap = 1'000'000;

  // The chunks come from `memory`, which must outlive the table.
  explicit IncidentTable(std::pmr::memory_resource* memory = std::pmr::new_delete_resource())
      : memory_(memory) {}
  ~IncidentTable() { release(); }
  IncidentTable(IncidentTable&& other) noexcept { take(other); }
  IncidentTable& operator=(IncidentTable&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  // A deep copy, from the same memory resource (tests and the fuzzers
  // compare a book before and after).
  IncidentTable(const IncidentTable& other) : memory_(other.memory_) {
    grow_to(other.used_);
    for (std::size_t i = 0; i < used_; ++i) {
      slot(i) = other.slot(i);
    }
    count_ = other.count_;
  }
  IncidentTable& operator=(const IncidentTable& other) {
    if (this != &other) {
      *this = IncidentTable(other);
    }
    return *this;
  }

  const Incident* find(std::uint64_t id) const {
    return id != 0 && id <= used_ && slot(id - 1) ? &*slot(id - 1) : nullptr;
  }
  Incident* find(std::uint64_t id) {
    return id != 0 && id <= used_ && slot(id - 1) ? &*slot(id - 1) : nullptr;
  }
  // Whether operator[] may create this id: not 0, not too far ahead (see
  // kMaxIdGap).
  bool acceptable(std::uint64_t id) const { return id != 0 && id <= used_ + kMaxIdGap; }
  // Allocates the chunks for ids up to `ids` (at most kMaxIdGap beyond the
  // table) now, constructing nothing, and returns the memory those ids will
  // use: a caller that knows how many incidents are coming may fault it in
  // on another core (the audit; faulting a year's fresh incidents in was a
  // tenth of its replay). The memory stays the table's.
  std::vector<std::span<std::byte>> reserve(std::uint64_t ids);
  // The incident with this id, created empty if absent.
  Incident& operator[](std::uint64_t id) {
    grow_to(id);
    auto& s = slot(id - 1);
    if (!s) {
      s.emplace();
      ++count_;
    }
    return *s;
  }
  void erase(std::uint64_t id) {
    if (find(id) == nullptr) {
      return;
    }
    slot(id - 1).reset();
    --count_;
    while (used_ > 0 && !slot(used_ - 1)) {
      --used_;  // a rolled-back tail gives its ids back (its slots stay constructed)
    }
  }
  std::size_t size() const { return count_; }
  bool operator==(const IncidentTable& other) const {
    if (count_ != other.count_ || used_ != other.used_) {
      return false;
    }
    for (std::size_t i = 0; i < used_; ++i) {
      if (slot(i) != other.slot(i)) {
        return false;
      }
    }
    return true;
  }

  // Iterates in id order as (id, incident) pairs, skipping empty slots.
  class const_iterator {
   public:
    const_iterator(const IncidentTable* table, std::size_t at) : table_(table), at_(at) { skip(); }
    std::pair<std::uint64_t, const Incident&> operator*() const {
      return {at_ + 1, *table_->slot(at_)};
    }
    const_iterator& operator++() {
      ++at_;
      skip();
      return *this;
    }
    bool operator!=(const const_iterator& other) const { return at_ != other.at_; }

   private:
    void skip() {
      while (at_ < table_->used_ && !table_->slot(at_)) {
        ++at_;
      }
    }
    const IncidentTable* table_;
    std::size_t at_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, used_}; }

 private:
  using Slot = std::optional<Incident>;
  static constexpr std::size_t kFirstChunkShift = 4;  // 16 slots
  static constexpr std::size_t kMaxChunks = 40;       // 16 << 40 slots: never reached

  static constexpr std::size_t chunk_slots(std::size_t chunk) {
    return std::size_t{1} << (kFirstChunkShift + chunk);
  }
  // Chunk c holds slots [16 * (2^c - 1), 16 * (2^(c+1) - 1)).
  static std::pair<std::size_t, std::size_t> locate(std::size_t i) {
    const std::size_t chunk = std::bit_width((i >> kFirstChunkShift) + 1) - 1;
    return {chunk, i - (chunk_slots(chunk) - chunk_slots(0))};
  }
  Slot& slot(std::size_t i) {
    const auto [chunk, offset] = locate(i);
    return chunks_[chunk][offset];
  }
  const Slot& slot(std::size_t i) const {
    const auto [chunk, offset] = locate(i);
    return chunks_[chunk][offset];
  }

  // Makes slots [0, id) usable: allocates chunks and constructs empty slots.
  void grow_to(std::size_t id) {
    for (; constructed_ < id; ++constructed_) {
      const auto [chunk, offset] = locate(constructed_);
      if (offset == 0 && chunks_[chunk] == nullptr) {  // else reserve() made it
        chunks_[chunk] = allocate(chunk_slots(chunk));
      }
      new (&chunks_[chunk][offset]) Slot();
    }
    used_ = std::max(used_, id);
  }
  Slot* allocate(std::size_t slots) {
    return static_cast<Slot*>(memory_->allocate(slots * sizeof(Slot), alignof(Slot)));
  }
  void deallocate(Slot* chunk, std::size_t slots) {
    memory_->deallocate(chunk, slots * sizeof(Slot), alignof(Slot));
  }

  void release() {
    for (std::size_t i = 0; i < constructed_; ++i) {
      slot(i).~Slot();
    }
    for (std::size_t c = 0; c < kMaxChunks && chunks_[c] != nullptr; ++c) {
      deallocate(chunks_[c], chunk_slots(c));
      chunks_[c] = nullptr;
    }
    constructed_ = used_ = count_ = 0;
  }
  void take(IncidentTable& other) {
    memory_ = other.memory_;  // which must free the chunks taken
    chunks_ = std::exchange(other.chunks_, {});
    constructed_ = std::exchange(other.constructed_, 0);
    used_ = std::exchange(other.used_, 0);
    count_ = std::exchange(other.count_, 0);
  }

  std::pmr::memory_resource* memory_;
  std::array<Slot*, kMaxChunks> chunks_{};  // slot i holds id i + 1
  std::size_t constructed_ = 0;  // slots [0, constructed_) hold a Slot object
  std::size_t used_ = 0;         // slots up to the highest id present
  std::size_t count_ = 0;
};

}  // namespace zonecall::sla
