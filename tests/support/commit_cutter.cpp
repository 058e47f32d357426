#include "commit_cutter.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>

namespace zonecall::testing {

namespace {
sockaddr_in loopback(unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A CommandComplete message ('C') whose tag is COMMIT.
bool completes_commit(std::string_view bytes) {
  return bytes.find(std::string_view("COMMIT\0", 7)) != std::string_view::npos;
}
}  // namespace

CommitCutter::CommitCutter(unsigned short server_port) : server_port_(server_port) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(0);
  socklen_t length = sizeof a;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_, 16) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    throw std::runtime_error("CommitCutter: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

CommitCutter::~CommitCutter() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  ::close(listener_);
  std::lock_guard lock(mutex_);
  for (auto& t : pumps_) {
    t.join();
  }
}

void CommitCutter::accept_loop() {
  for (;;) {
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0 || stopping_) {
      if (client >= 0) {
        ::close(client);
      }
      return;
    }
    if (refusing_) {
      ::close(client);
      continue;
    }
    std::lock_guard lock(mutex_);
    pumps_.emplace_back([this, client] { pump(client); });
  }
}

void CommitCutter::pump(int client) {
  const int server = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto a = loopback(server_port_);
  if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(client);
    if (server >= 0) {
      ::close(server);
    }
    return;
  }
  char buf[65536];
  while (!stopping_) {
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(fds, 2, 100) <= 0) {
      continue;
    }
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        done = true;
        break;
      }
      const bool from_server = i == 1;
      if (from_server && completes_commit({buf, static_cast<std::size_t>(n)}) && armed_.exchange(false)) {
        ++cuts_;  // the server has committed; the client never hears it
        if (before_cut_) {
          before_cut_();
        }
        done = true;
        break;
      }
      const int to = from_server ? client : server;
      for (ssize_t sent = 0; sent < n;) {
        const auto w = ::write(to, buf + sent, static_cast<std::size_t>(n - sent));
        if (w <= 0) {
          done = true;
          break;
        }
        sent += w;
      }
    }
    if (done) {
      break;
    }
  }
  ::close(client);
  ::close(server);
}

}  // namespace zonecall::testing
