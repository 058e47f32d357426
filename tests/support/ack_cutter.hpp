#pragma once
// A TCP proxy in front of a zonecall server that can lose an Ack: armed, it
// drops the first Ack the server sends and cuts that connection, after the
// server has committed the write. The way to make "the write landed, but the
// client never heard" happen on cue for `zonecall client`'s retry.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zonecall::testing {

class AckCutter {
 public:
  explicit AckCutter(unsigned short server_port);  // listens on 127.0.0.1, any port
  ~AckCutter();
  AckCutter(const AckCutter&) = delete;
  AckCutter& operator=(const AckCutter&) = delete;

  unsigned short port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/v1/ws"; }
  void arm() { armed_ = true; }
  int cuts() const { return cuts_; }
  int connections() const { return connections_; }

 private:
  void accept_loop();
  void pump(int client);

  unsigned short server_port_;
  unsigned short port_ = 0;
  int listener_ = -1;
  std::atomic<bool> armed_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> cuts_{0};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace zonecall::testing
