// The engine's time sources: SimulatedTime fires its timers as a test moves
// it, in order, at their instants, on their io thread; RealTimeSource's
// timers keep the same promises on Asio.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "engine/simulated_time.hpp"

using namespace zonecall;
using namespace std::chrono_literals;

namespace {
constexpr sla::Millis kStart = 1'700'000'000'000;

// An io_context running on its own thread, as the server's does.
struct IoThread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
      boost::asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
  // Runs f on the io thread and waits for it.
  template <class F>
  void run(F f) {
    std::promise<void> done;
    boost::asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().get();
  }
};

// What fired: a name and the clocks as its handler saw them.
struct Firing {
  std::string name;
  sla::Millis wall;
  MonotonicTime monotonic;
  std::thread::id thread;
  bool operator==(const Firing&) const = default;
};
}  // namespace

TEST_CASE("simulated time: timers fire in order, each at its instant, on the io thread") {
  SimulatedTime time(kStart);
  IoThread io;
  const auto origin = time.monotonic();
  std::vector<Firing> fired;
  auto timer = [&](const std::string& name) {
    return time.make_timer(io.io, [&, name] {
      fired.push_back({name, time.now(), time.monotonic(), std::this_thread::get_id()});
    });
  };
  auto deadline = timer("deadline at +300");
  auto delay = timer("delay of 100");
  auto early = timer("deadline at +200");
  auto tie = timer("delay of 200, armed after");
  io.run([&] {
    deadline->arm_at(kStart + 300);
    delay->arm_after(100ms);
    early->arm_at(kStart + 200);
    tie->arm_after(200ms);
  });
  CHECK(deadline->armed());

  time.advance(250);  // from the test's thread
  const auto on_io = io.thread.get_id();
  REQUIRE(fired.size() == 3);
  CHECK(fired[0] == Firing{"delay of 100", kStart + 100, origin + 100ms, on_io});
  CHECK(fired[1] == Firing{"deadline at +200", kStart + 200, origin + 200ms, on_io});
  CHECK(fired[2] == Firing{"delay of 200, armed after", kStart + 200, origin + 200ms, on_io});
  CHECK(time.now() == kStart + 250);
  CHECK(deadline->armed());
  CHECK_FALSE(delay->armed());

  time.advance(49);
  CHECK(fired.size() == 3);  // a wall deadline fires once the clock reads it, not before
  time.advance(1);
  REQUIRE(fired.size() == 4);
  CHECK(fired[3] == Firing{"deadline at +300", kStart + 300, origin + 300ms, on_io});
}

TEST_CASE("simulated time: a cancelled, re-armed or destroyed timer does not fire its old arm") {
  SimulatedTime time(kStart);
  IoThread io;
  std::vector<std::string> fired;
  auto cancelled = time.make_timer(io.io, [&] { fired.push_back("cancelled"); });
  auto rearmed = time.make_timer(io.io, [&] { fired.push_back("rearmed at " + std::to_string(time.now() - kStart)); });
  auto destroyed = time.make_timer(io.io, [&] { fired.push_back("destroyed"); });
  io.run([&] {
    cancelled->arm_after(10ms);
    rearmed->arm_after(10ms);
    destroyed->arm_at(kStart + 10);
    cancelled->cancel();
    rearmed->arm_after(30ms);  // replaces the first arm
    destroyed.reset();
  });
  CHECK_FALSE(cancelled->armed());
  time.advance(100);
  CHECK(fired == std::vector<std::string>{"rearmed at 30"});
}

TEST_CASE("simulated time: a timer armed by a handler fires in the same advance when due in it") {
  SimulatedTime time(kStart);
  IoThread io;
  std::vector<sla::Millis> ticks;
  std::unique_ptr<Timer> every_100;
  every_100 = time.make_timer(io.io, [&] {
    ticks.push_back(time.now() - kStart);
    every_100->arm_after(100ms);  // a handler may re-arm its own timer
  });
  // One that destroys itself from its handler.
  std::unique_ptr<Timer> once;
  once = time.make_timer(io.io, [&] { once.reset(); });
  io.run([&] {
    every_100->arm_after(100ms);
    once->arm_after(150ms);
  });
  time.advance(350);
  CHECK(ticks == std::vector<sla::Millis>{100, 200, 300});
  CHECK(once == nullptr);
  time.advance(50);
  CHECK(ticks == std::vector<sla::Millis>{100, 200, 300, 400});
}

TEST_CASE("simulated time: advance() on the io thread runs the handlers there, in the call") {
  SimulatedTime time(kStart);
  IoThread io;
  std::vector<sla::Millis> fired;
  auto timer = time.make_timer(io.io, [&] { fired.push_back(time.now()); });
  std::vector<sla::Millis> fired_within;
  io.run([&] {
    timer->arm_after(5ms);
    time.advance(10);
    fired_within = fired;
  });
  CHECK(fired_within == std::vector<sla::Millis>{kStart + 5});
}

TEST_CASE("simulated time: an instant already reached fires without time moving") {
  SimulatedTime time(kStart);
  IoThread io;
  std::promise<sla::Millis> fired;
  auto timer = time.make_timer(io.io, [&] { fired.set_value(time.now()); });
  io.run([&] { timer->arm_at(kStart - 1); });
  auto at = fired.get_future();
  REQUIRE(at.wait_for(5s) == std::future_status::ready);
  CHECK(at.get() == kStart);
}

TEST_CASE("simulated time: the wall clock set back delays wall deadlines, not monotonic delays") {
  SimulatedTime time(kStart);
  IoThread io;
  std::vector<std::string> fired;
  auto deadline = time.make_timer(io.io, [&] { fired.push_back("deadline"); });
  auto delay = time.make_timer(io.io, [&] { fired.push_back("delay"); });
  io.run([&] {
    deadline->arm_at(kStart + 100);
    delay->arm_after(100ms);
  });
  const auto monotonic = time.monotonic();
  time.set_now(kStart - 1000);  // the operator sets the clock back a second
  CHECK(time.now() == kStart - 1000);
  CHECK(time.monotonic() == monotonic);
  CHECK(fired.empty());
  time.advance(100);
  CHECK(fired == std::vector<std::string>{"delay"});
  time.set_now(kStart + 100);  // forward: as advance()
  CHECK(fired == std::vector<std::string>{"delay", "deadline"});
  CHECK(time.monotonic() == monotonic + 1100ms);
}

TEST_CASE("real time: timers fire on the io thread, and not after cancel") {
  RealTimeSource time;
  IoThread io;
  std::promise<std::thread::id> fired;
  std::vector<std::string> cancelled_fired;
  auto timer = time.make_timer(io.io, [&] { fired.set_value(std::this_thread::get_id()); });
  auto cancelled = time.make_timer(io.io, [&] { cancelled_fired.push_back("cancelled"); });
  const auto before = time.monotonic();
  io.run([&] {
    cancelled->arm_after(1ms);
    cancelled->cancel();
    timer->arm_after(2ms);
  });
  auto on = fired.get_future();
  REQUIRE(on.wait_for(5s) == std::future_status::ready);
  CHECK(on.get() == io.thread.get_id());
  CHECK(time.monotonic() - before >= 2ms);
  io.run([] {});
  CHECK(cancelled_fired.empty());

  std::promise<sla::Millis> at_deadline;
  auto deadline = time.make_timer(io.io, [&] { at_deadline.set_value(time.now()); });
  const sla::Millis due = time.now() + 2;
  io.run([&] { deadline->arm_at(due); });
  auto at = at_deadline.get_future();
  REQUIRE(at.wait_for(5s) == std::future_status::ready);
  CHECK(at.get() >= due);
}
