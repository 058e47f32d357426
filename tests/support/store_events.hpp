#pragma once
// Events and waits for the store tests of both backends.
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/store/timeline_store.hpp"

namespace zonecall::testing {

// `count` reports with seqs from `first_seq` on.
inline TimelineStore::Batch reports(std::uint64_t first_seq, int count = 1) {
  auto events = std::make_shared<std::vector<v1::TimelineEvent>>();
  for (int i = 0; i < count; ++i) {
    auto& e = events->emplace_back();
    e.set_seq(first_seq + static_cast<std::uint64_t>(i));
    e.set_incident_id(e.seq());
    e.set_at_ms(1'000 + static_cast<std::int64_t>(e.seq()));
    e.set_actor_id("z1-grid-1");
    e.mutable_reported()->set_zone_id("Z1");
    e.mutable_reported()->set_description(std::string(300, 'd'));
  }
  return events;
}

// Appends and waits for the completion.
inline StoreError append_and_wait(TimelineStore& store, TimelineStore::Batch events) {
  std::promise<StoreError> done;
  store.append(std::move(events), [&](const StoreError& error) { done.set_value(error); });
  return done.get_future().get();
}

inline std::vector<std::uint64_t> stored_seqs(TimelineStore& store) {
  std::vector<std::uint64_t> seqs;
  const auto verdict = store.load([&](const v1::TimelineEvent& e) { seqs.push_back(e.seq()); });
  CHECK(verdict.intact);
  return seqs;
}

}  // namespace zonecall::testing
