#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <tuple>
#include <vector>

#include "sla/deadline_queue.hpp"

using zonecall::sla::Deadline;
using zonecall::sla::DeadlineQueue;

TEST_CASE("deadline queue pops in due order, ties by incident then kind") {
  DeadlineQueue q;
  q.arm({300, 1, 3});
  q.arm({100, 7, 1});
  q.arm({100, 2, 2});
  q.arm({100, 2, 1});
  REQUIRE(q.size() == 4);
  std::vector<std::pair<std::uint64_t, int>> order;
  while (auto d = q.pop_passed(1000)) {
    order.emplace_back(d->incident_id, d->kind);
  }
  CHECK(order == std::vector<std::pair<std::uint64_t, int>>{{2, 1}, {2, 2}, {7, 1}, {1, 3}});
  CHECK(q.size() == 0);
}

TEST_CASE("a deadline has passed only strictly after its due time") {
  DeadlineQueue q;
  q.arm({500, 9, 1});
  CHECK_FALSE(q.pop_passed(499));
  CHECK_FALSE(q.pop_passed(500));  // met exactly at the deadline is on time
  auto d = q.pop_passed(501);
  REQUIRE(d);
  CHECK(d->due == 500);
  CHECK(d->incident_id == 9);
  CHECK(d->kind == 1);
}

TEST_CASE("next() peeks the earliest without popping") {
  DeadlineQueue q;
  CHECK_FALSE(q.next());
  q.arm({42, 1, 1});
  q.arm({41, 5, 2});
  REQUIRE(q.next());
  CHECK(q.next()->due == 41);
  CHECK(q.size() == 2);
}

TEST_CASE("incident ids above 2^32 survive the key packing") {
  DeadlineQueue q;
  const std::uint64_t big = (std::uint64_t{1} << 40) + 3;
  q.arm({1, big, 3});
  auto d = q.pop_passed(2);
  REQUIRE(d);
  CHECK(d->incident_id == big);
  CHECK(d->kind == 3);
}

TEST_CASE("an entry costs 16 bytes, plus its share of the heap's chunks") {
  DeadlineQueue q;
  for (std::uint64_t i = 0; i < 1024 * 1024; ++i) {
    q.arm({static_cast<zonecall::sla::Millis>(i), i, 1});
  }
  const double per_entry = static_cast<double>(q.memory_bytes()) / q.size();
  CHECK(per_entry >= 16);
  CHECK(per_entry < 16.5);
}

TEST_CASE("interleaved arming and popping of many entries keeps the total order") {
  // Against a sorted reference: many ties on due (a tick's worth of
  // deadlines), arming while popping, and the heap shrinking through its
  // chunks and growing again.
  DeadlineQueue q;
  std::vector<std::tuple<zonecall::sla::Millis, std::uint64_t, int>> armed;
  std::vector<std::tuple<zonecall::sla::Millis, std::uint64_t, int>> popped;
  std::mt19937_64 random(42);
  zonecall::sla::Millis now = 0;
  std::uint64_t next_id = 1;
  for (int round = 0; round < 40; ++round) {
    const int arms = round < 20 ? 5000 : 500;  // grow, then drain
    for (int i = 0; i < arms; ++i) {
      const zonecall::sla::Millis due = now + static_cast<zonecall::sla::Millis>(random() % 200);
      const std::uint64_t id = next_id + random() % 50;
      const int kind = static_cast<int>(random() % 6) + 1;
      q.arm({due, id, static_cast<std::uint8_t>(kind)});
      armed.emplace_back(due, id, kind);
    }
    next_id += 40;
    now += 37;
    std::vector<std::tuple<zonecall::sla::Millis, std::uint64_t, int>> this_tick;
    while (auto d = q.pop_passed(now)) {
      CHECK(d->due < now);
      this_tick.emplace_back(d->due, d->incident_id, d->kind);
    }
    CHECK(std::is_sorted(this_tick.begin(), this_tick.end()));
    if (!popped.empty() && !this_tick.empty()) {
      CHECK(popped.back() <= this_tick.front());
    }
    popped.insert(popped.end(), this_tick.begin(), this_tick.end());
  }
  while (auto d = q.pop_passed(now + 1000)) {
    popped.emplace_back(d->due, d->incident_id, d->kind);
  }
  CHECK(q.size() == 0);
  std::sort(armed.begin(), armed.end());
  CHECK(popped == armed);  // everything armed came out once, in order
  CHECK(q.memory_bytes() <= 2 * 4096 * 16 + 64 * sizeof(void*));  // drained: chunks given back
}

TEST_CASE("a copied queue is independent of the original") {
  DeadlineQueue q;
  for (std::uint64_t i = 1; i <= 5000; ++i) {  // more than one chunk
    q.arm({static_cast<zonecall::sla::Millis>(i % 97), i, 1});
  }
  DeadlineQueue copy = q;
  REQUIRE(copy.size() == q.size());
  std::vector<std::uint64_t> from_copy;
  while (auto d = copy.pop_passed(1000)) {
    from_copy.push_back(d->incident_id);
  }
  CHECK(from_copy.size() == 5000);
  CHECK(q.size() == 5000);  // popping the copy left the original whole
  std::vector<std::uint64_t> from_original;
  while (auto d = q.pop_passed(1000)) {
    from_original.push_back(d->incident_id);
  }
  CHECK(from_original == from_copy);
}
