#pragma once
// A TCP proxy in front of PostgreSQL that can lose a COMMIT's answer: armed,
// it drops the first reply from the server that completes a COMMIT and cuts
// that connection, after the server has committed. The one way to make "the
// commit landed, but the client never heard" happen on cue.
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
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
  // `database_uri` (a postgresql://zonecall@127.0.0.1:PORT/DB of the test
  // cluster) reached through this proxy; `options` are more URI parameters.
  std::string uri_via(const std::string& database_uri, const std::string& options = "") const {
    return "postgresql://zonecall@127.0.0.1:" + std::to_string(port_) + "/" +
           database_uri.substr(database_uri.rfind('/') + 1) + "?sslmode=disable" + options;
  }
  // Runs `before_cut` on the proxy's thread after the answer is dropped and
  // before the connection is cut (a test kills the server there).
  void arm(std::function<void()> before_cut = nullptr) {
    before_cut_ = std::move(before_cut);
    armed_ = true;
  }
  int cuts() const { return cuts_; }  // connections cut so far
  // While set, new connections are closed at once: the server seems gone.
  void refuse_new(bool refuse) { refusing_ = refuse; }

 private:
  void accept_loop();
  void pump(int client);

  unsigned short server_port_;
  unsigned short port_ = 0;
  int listener_ = -1;
  std::function<void()> before_cut_;  // set before armed_, read after it
  std::atomic<bool> armed_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<int> cuts_{0};
  std::mutex mutex_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace zonecall::testing
