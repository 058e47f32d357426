#include "support/ack_cutter.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "zonecall/v1/wire.pb.h"

namespace zonecall::testing {

namespace {
sockaddr_in loopback(unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

bool write_all(int fd, const char* data, std::size_t n) {
  for (std::size_t sent = 0; sent < n;) {
    const auto w = ::write(fd, data + sent, n - sent);
    if (w <= 0) {
      return false;
    }
    sent += static_cast<std::size_t>(w);
  }
  return true;
}

// The length of the first whole WebSocket frame in `b` (server frames are
// not masked), or 0 while it is incomplete; `payload` is where its payload starts.
std::size_t frame_length(const std::string& b, std::size_t& payload) {
  if (b.size() < 2) {
    return 0;
  }
  std::size_t length = static_cast<unsigned char>(b[1]) & 0x7f;
  payload = 2;
  if (length >= 126) {
    const std::size_t bytes = length == 126 ? 2 : 8;
    if (b.size() < 2 + bytes) {
      return 0;
    }
    length = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
      length = (length << 8) | static_cast<unsigned char>(b[2 + i]);
    }
    payload += bytes;
  }
  return b.size() >= payload + length ? payload + length : 0;
}
}  // namespace

AckCutter::AckCutter(unsigned short server_port) : server_port_(server_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(0);
  socklen_t length = sizeof a;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_, 16) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    throw std::runtime_error("AckCutter: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

AckCutter::~AckCutter() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  ::close(listener_);
  std::lock_guard lock(mutex_);
  for (auto& t : pumps_) {
    t.join();
  }
}

void AckCutter::accept_loop() {
  for (;;) {
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0 || stopping_) {
      if (client >= 0) {
        ::close(client);
      }
      return;
    }
    ++connections_;
    std::lock_guard lock(mutex_);
    pumps_.emplace_back([this, client] { pump(client); });
  }
}

// Client bytes go through as they come; server bytes go through whole
// frames at a time (after the HTTP upgrade), so an Ack can be held back.
void AckCutter::pump(int client) {
  const int server = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto a = loopback(server_port_);
  if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(client);
    if (server >= 0) {
      ::close(server);
    }
    return;
  }
  std::string from_server;
  bool upgraded = false;
  char buf[65536];
  bool done = false;
  while (!stopping_ && !done) {
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(fds, 2, 100) <= 0) {
      continue;
    }
    for (int i = 0; i < 2 && !done; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        done = true;
        break;
      }
      if (i == 0) {
        done = !write_all(server, buf, static_cast<std::size_t>(n));
        continue;
      }
      from_server.append(buf, static_cast<std::size_t>(n));
      if (!upgraded) {
        const auto end = from_server.find("\r\n\r\n");
        if (end == std::string::npos) {
          continue;
        }
        upgraded = true;
        done = !write_all(client, from_server.data(), end + 4);
        from_server.erase(0, end + 4);
      }
      std::size_t payload = 0;
      for (std::size_t length; !done && (length = frame_length(from_server, payload)) > 0;) {
        v1::ServerMessage m;
        if (m.ParseFromArray(from_server.data() + payload, static_cast<int>(length - payload)) && m.has_ack() &&
            armed_.exchange(false)) {
          ++cuts_;  // committed, answered, and never heard
          done = true;
          break;
        }
        done = !write_all(client, from_server.data(), length);
        from_server.erase(0, length);
      }
    }
  }
  ::close(client);
  ::close(server);
}

}  // namespace zonecall::testing
