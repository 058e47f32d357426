#pragma once
// Every incident, by id. Ids are dense (the book hands them out one by one),
// so the table is indexed by id in chunks of 1,024 slots: lookups are O(1),
// growing never moves or rehashes what is there (a hash map's rehash of a
// million incidents stalled the io thread for ~100 ms, bench/RESULTS.md,
// benchmark 3), and a million incidents cost a thousand allocations, not a
// million (those were 15 % of recovery).
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "sla/incident.hpp"

namespace zonecall::sla {

class IncidentTable {
 public:
  // The largest id ahead of the table that create() accepts: beyond it an id
  // is not one the book handed out (a forged row), and is refused.
  static constexpr std::uint64_t kMaxIdGap = 1'000'000;

  IncidentTable() = default;
  IncidentTable(IncidentTable&&) noexcept = default;
  IncidentTable& operator=(IncidentTable&&) noexcept = default;
  // A deep copy (tests and the fuzzers compare a book before and after).
  IncidentTable(const IncidentTable& other) : used_(other.used_), count_(other.count_) {
    for (std::size_t c = 0; c < other.chunks_.size(); ++c) {
      chunks_.push_back(std::make_unique_for_overwrite<std::optional<Incident>[]>(kChunk));
    }
    for (std::size_t i = 0; i < used_; ++i) {
      slot(i) = other.slot(i);  // only the slots in use; the rest stay empty
    }
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
  // The incident with this id, created empty if absent. False for id 0 or an
  // id too far ahead (see kMaxIdGap).
  bool acceptable(std::uint64_t id) const { return id != 0 && id <= used_ + kMaxIdGap; }
  Incident& operator[](std::uint64_t id) {
    while (id > chunks_.size() * kChunk) {
      // Default-initialised: each slot only marks itself empty, so memory is
      // touched as incidents arrive, not zeroed a chunk at a time.
      chunks_.push_back(std::make_unique_for_overwrite<std::optional<Incident>[]>(kChunk));
    }
    used_ = std::max<std::size_t>(used_, id);
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
      --used_;  // a rolled-back tail gives its ids back
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
  static constexpr std::size_t kChunk = 1024;
  std::optional<Incident>& slot(std::size_t i) { return chunks_[i / kChunk][i % kChunk]; }
  const std::optional<Incident>& slot(std::size_t i) const { return chunks_[i / kChunk][i % kChunk]; }

  std::vector<std::unique_ptr<std::optional<Incident>[]>> chunks_;  // slot i holds id i + 1
  std::size_t used_ = 0;  // slots up to the highest id present
  std::size_t count_ = 0;
};

}  // namespace zonecall::sla
