#pragma once
// A stand-in for an engine that is a standby, until the engine itself can be
// one without PostgreSQL: a WebSocket server on 127.0.0.1 that answers Hello
// with a Welcome saying `standby` and naming a leader_url, and every other
// request with UNAVAILABLE "standby: ...", as docs/protocol.md says a
// standby does. One connection at a time, which is all `zonecall client` uses.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace zonecall::testing {

class FakeStandby {
 public:
  // welcome_says_standby false: a server that became a standby after the
  // client signed in (its Welcome said leader; its answers now refuse).
  explicit FakeStandby(std::string leader_url, bool welcome_says_standby = true);
  ~FakeStandby();
  FakeStandby(const FakeStandby&) = delete;
  FakeStandby& operator=(const FakeStandby&) = delete;

  unsigned short port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/v1/ws"; }
  int hellos() const { return hellos_; }
  int refusals() const { return refusals_; }  // requests answered UNAVAILABLE

 private:
  void serve();
  void serve_one(int fd);

  std::string leader_url_;
  bool welcome_says_standby_;
  unsigned short port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> hellos_{0};
  std::atomic<int> refusals_{0};
  std::mutex mutex_;
  int current_ = -1;  // the connection being served, to cut at the end
  std::thread thread_;
};

}  // namespace zonecall::testing
