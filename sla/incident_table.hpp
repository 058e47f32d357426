#pragma once
// Every incident, by id. Ids are dense (the book hands them out one by one),
// so the table is a deque indexed by id: lookups are O(1), and growing it
// never moves or rehashes what is there. A hash map's rehash of a million
// incidents stalled the io thread for ~100 ms (bench/RESULTS.md, benchmark 3).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "sla/incident.hpp"

namespace zonecall::sla {

class IncidentTable {
 public:
  // The largest id ahead of the table that create() accepts: beyond it an id
  // is not one the book handed out (a forged row), and is refused.
  static constexpr std::uint64_t kMaxIdGap = 1'000'000;

  const Incident* find(std::uint64_t id) const {
    return id != 0 && id <= slots_.size() && slots_[id - 1] ? &*slots_[id - 1] : nullptr;
  }
  Incident* find(std::uint64_t id) {
    return id != 0 && id <= slots_.size() && slots_[id - 1] ? &*slots_[id - 1] : nullptr;
  }
  // The incident with this id, created empty if absent. False for id 0 or an
  // id too far ahead (see kMaxIdGap).
  bool acceptable(std::uint64_t id) const { return id != 0 && id <= slots_.size() + kMaxIdGap; }
  Incident& operator[](std::uint64_t id) {
    if (id > slots_.size()) {
      slots_.resize(id);  // appends: references to others stay valid
    }
    auto& slot = slots_[id - 1];
    if (!slot) {
      slot.emplace();
      ++count_;
    }
    return *slot;
  }
  void erase(std::uint64_t id) {
    if (find(id) == nullptr) {
      return;
    }
    slots_[id - 1].reset();
    --count_;
    while (!slots_.empty() && !slots_.back()) {
      slots_.pop_back();  // a rolled-back tail gives its ids back
    }
  }
  std::size_t size() const { return count_; }
  bool operator==(const IncidentTable& other) const {
    return count_ == other.count_ && slots_ == other.slots_;
  }

  // Iterates in id order as (id, incident) pairs, skipping empty slots.
  class const_iterator {
   public:
    const_iterator(const IncidentTable* table, std::size_t at) : table_(table), at_(at) { skip(); }
    std::pair<std::uint64_t, const Incident&> operator*() const {
      return {at_ + 1, *table_->slots_[at_]};
    }
    const_iterator& operator++() {
      ++at_;
      skip();
      return *this;
    }
    bool operator!=(const const_iterator& other) const { return at_ != other.at_; }

   private:
    void skip() {
      while (at_ < table_->slots_.size() && !table_->slots_[at_]) {
        ++at_;
      }
    }
    const IncidentTable* table_;
    std::size_t at_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, slots_.size()}; }

 private:
  std::deque<std::optional<Incident>> slots_;  // slot i holds id i + 1
  std::size_t count_ = 0;
};

}  // namespace zonecall::sla
