// Deadlines at scale: zonecall's DeadlineQueue (one heap, one OS timer in
// all) against the baseline of one asio::steady_timer per deadline.
// Figures: bytes per pending deadline and ns to arm one, each as a ratio to
// the baseline measured in the same run.
//
//   build/bench/deadline_bench [--deadlines N] [--runs R]
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>

#include "bench_util.hpp"
#include "sla/deadline_queue.hpp"

using namespace zonecall;

namespace {

struct Figures {
  double bytes_per_deadline;
  double ns_per_arm;
};

// Deadlines spread over 15 minutes, as for incidents reported over that span.
std::vector<sla::Millis> spread(std::size_t n) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<sla::Millis> within(0, 15 * sla::kMinute);
  std::vector<sla::Millis> due(n);
  for (auto& d : due) {
    d = 1'700'000'000'000 + within(random);
  }
  return due;
}

Figures measure_queue(const std::vector<sla::Millis>& due) {
  const auto start = std::chrono::steady_clock::now();
  sla::DeadlineQueue queue;
  for (std::size_t i = 0; i < due.size(); ++i) {
    queue.arm({due[i], i, static_cast<std::uint8_t>(1 + i % 3)});
  }
  const double elapsed = bench::seconds_since(start);
  // The heap's own accounting (capacity, so growth slack counts too).
  return {static_cast<double>(queue.memory_bytes()) / due.size(), elapsed * 1e9 / due.size()};
}

Figures measure_timers(const std::vector<sla::Millis>& due) {
  boost::asio::io_context io;
  const long rss_before = bench::rss_bytes();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<boost::asio::steady_timer>> timers;
  timers.reserve(due.size());
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < due.size(); ++i) {
    auto& t = timers.emplace_back(std::make_unique<boost::asio::steady_timer>(io));
    t->expires_at(now + std::chrono::milliseconds(due[i] - 1'700'000'000'000));
    t->async_wait([](const boost::system::error_code&) {});
  }
  const double elapsed = bench::seconds_since(start);
  const long rss_after = bench::rss_bytes();
  return {static_cast<double>(rss_after - rss_before) / due.size(), elapsed * 1e9 / due.size()};
}

}  // namespace

int main(int argc, char** argv) {
  bench::CommandLine args("deadline_bench [--deadlines N] [--runs R]", argc, argv, 1);
  const auto n = static_cast<std::size_t>(args.integer("--deadlines", 1'000'000, 1));
  const int runs = static_cast<int>(args.integer("--runs", 3, 1, 100));
  args.finish();
  const auto due = spread(n);
  std::vector<double> q_bytes, q_ns, t_bytes, t_ns;
  for (int r = 0; r < runs; ++r) {
    auto q = measure_queue(due);
    auto t = measure_timers(due);
    q_bytes.push_back(q.bytes_per_deadline);
    q_ns.push_back(q.ns_per_arm);
    t_bytes.push_back(t.bytes_per_deadline);
    t_ns.push_back(t.ns_per_arm);
  }
  auto qb = bench::summarize(q_bytes), qn = bench::summarize(q_ns);
  auto tb = bench::summarize(t_bytes), tn = bench::summarize(t_ns);
  std::printf("deadlines: %zu pending, %d runs (median [min, max])\n", n, runs);
  std::printf("  DeadlineQueue     bytes/deadline %7.1f [%.1f, %.1f]   ns/arm %7.1f [%.1f, %.1f]\n",
              qb.median, qb.min, qb.max, qn.median, qn.min, qn.max);
  std::printf("  baseline: timers  bytes/deadline %7.1f [%.1f, %.1f]   ns/arm %7.1f [%.1f, %.1f]\n",
              tb.median, tb.min, tb.max, tn.median, tn.min, tn.max);
  std::printf("  ratio to baseline: memory %.3f, arm time %.3f\n", qb.median / tb.median,
              qn.median / tn.median);
  return 0;
}
