#pragma once
// Test fixtures: a temporary directory, a test config, and a real server on
// 127.0.0.1:0 running on its own thread, on simulated time.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/config/config.hpp"
#include "engine/server.hpp"
#include "engine/simulated_time.hpp"
#include "sla/replay.hpp"

namespace zonecall::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  std::filesystem::path path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The Jincheng default plus a "drill" category with short clocks (300 ms /
// 600 ms / 900 ms), and a "drill-desk" department (token
// demo-dept-drill-desk) that must accept within 300 ms and be on site 600 ms
// after that. Short for the crash test, which runs the real binary on the
// real clock and must see a deadline pass; the in-process tests step
// simulated time past them, or past the default 1/5/15-minute clocks.
v1::Config test_config();
constexpr std::int64_t kDrillDiscoverMs = 300;
constexpr std::int64_t kDrillAcceptMs = 300;

// Port 0, the test config, and the given database file. The idle timeout is
// a day: simulated minutes pass in an instant, in which no test client could
// answer a ping (the idle timeout's own test sets it).
ServerOptions options_for(const std::string& db_path);

// Which clocks a RunningServer runs on. Simulated unless a test cannot step
// them: the `zonecall client` process of cli_test waits on the server in
// real time (the delay of a refused Hello), with no way for the test to call
// advance() meanwhile.
enum class Clocks { simulated, real };

class RunningServer {
 public:
  explicit RunningServer(ServerOptions options, Clocks clocks = Clocks::simulated);
  explicit RunningServer(const std::string& db_path, Clocks clocks = Clocks::simulated)
      : RunningServer(options_for(db_path), clocks) {}
  // On simulated time that the test keeps, say across a restart.
  RunningServer(ServerOptions options, SimulatedTime& time);
  RunningServer(const std::string& db_path, SimulatedTime& time)
      : RunningServer(options_for(db_path), time) {}
  ~RunningServer();
  unsigned short port() const { return server_->port(); }
  // Stops gracefully and waits; the state can then be inspected.
  void stop();
  const Server& server() const { return *server_; }
  std::future<std::string> reload(const std::string& path) { return server_->reload(path); }

  // Moves simulated time forward by `by` ms and returns once every timer due
  // on the way (deadlines, delays, timeouts) has run on the server's io
  // thread. What those handlers send (a breach committed, then pushed)
  // arrives over the network as usual.
  void advance(sla::Millis by);
  // The server's clock, in ms since the epoch.
  sla::Millis now() const { return time_->now(); }

 private:
  void start(ServerOptions options);

  std::unique_ptr<TimeSource> own_time_;
  TimeSource* time_ = nullptr;
  SimulatedTime* simulated_ = nullptr;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::future<void> stopped_;
};

// Polls GET /readyz until its body is `state` ("ready", "standby", ...);
// false if `limit` passed first. Real time: leadership runs on the real clock.
bool wait_for_readiness(unsigned short port, const std::string& state, std::chrono::milliseconds limit);

// Collects the server's log lines while it lives, to check what an operator
// would read.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  bool contains(const std::string& text) const;
  std::string lines() const;

 private:
  mutable std::mutex mutex_;
  std::string lines_;
};

// A small tmpfs mounted for the test (root only): a disk that can fill up and
// be made read-only. mounted() is false where mounting is not permitted.
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, std::size_t bytes);
  ~Tmpfs();
  bool mounted() const { return mounted_; }
  // Remounts read-only or read-write (fails with EBUSY while files are open
  // for writing).
  bool remount(bool read_only);

 private:
  std::string dir_;
  std::string size_option_;
  bool mounted_ = false;
};

// Raw SQL access to a timeline file, the way an operator would look at it.
std::int64_t count_rows(const std::string& db_path, const std::string& where = "1=1");
std::string integrity_check(const std::string& db_path);

// Replays a stored timeline with the policy versions the store recorded.
struct StoredReplay {
  explicit StoredReplay(const std::string& db_path);
  std::unique_ptr<sla::Replayer> replayer;
};

}  // namespace zonecall::testing
