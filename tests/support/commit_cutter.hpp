#pragma once
// A TCP proxy in front of PostgreSQL that can lose a COMMIT's answer: armed,
// it drops the first reply from the server that completes a COMMIT and cuts
// that connection, after the server has committed. The one way to make "the
// commit landed, but the client never heard" happen on cue.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace zonecall::testing {

class CommitCutter {
 public:
  explicit CommitCutter(unsigned short server_port);  // listens on 127.0.0.1, any port
  ~CommitCutter();
  CommitCutter(const CommitCutter&) = delete;
  CommitCutter& operator=(const CommitCutter&) = delete;

  unsigned short port() const { return port_; }
  void arm() { armed_ = true; }
  int cuts() const { return cuts_; }  // connections cut so far

 private:
  void accept_loop();
  void pump(int client);

  unsigned short server_port_;
  unsigned short port_ = 0;
  int listener_ = -1;
  std::atomic<bool> armed_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> cuts_{0};
  std::mutex mutex_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace zonecall::testing
