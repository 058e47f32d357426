#pragma once
// A `zonecall serve` child process on a free port, for the tests that must
// kill, freeze or restart a real engine (crash_test, failover_test).
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace zonecall::testing {

// The test config (fixtures.hpp's test_config) written to `path`, for a
// child's --config; returns `path`.
std::string write_test_config(const std::string& path);

class ChildServer {
 public:
  // Runs `zonecall serve --listen 127.0.0.1:0` with `args` after it; stderr
  // goes to `log_path`. Returns once it listens.
  ChildServer(const std::vector<std::string>& args, const std::string& log_path);
  ~ChildServer();
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  // SIGTERM, then waits up to `limit`; the exit status, or -1 if it is still
  // running (then it is killed).
  int terminate(std::chrono::milliseconds limit);
  void kill_now();
  void signal(int sig);  // SIGSTOP, SIGCONT

 private:
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

// The port of the one engine that leads, once one does and the other stands
// by (by their /readyz); 0 if none does within `limit`.
unsigned short one_leader(const ChildServer& a, const ChildServer& b,
                          std::chrono::milliseconds limit = std::chrono::seconds(10));

}  // namespace zonecall::testing
