#include "support/fake_standby.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "engine/net/beast.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::testing {

using namespace zonecall::net;

FakeStandby::FakeStandby(std::string leader_url, bool welcome_says_standby)
    : leader_url_(std::move(leader_url)), welcome_says_standby_(welcome_says_standby) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listener_, 16) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    throw std::runtime_error("FakeStandby: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeStandby::~FakeStandby() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
  {
    std::lock_guard lock(mutex_);
    if (current_ >= 0) {
      ::shutdown(current_, SHUT_RDWR);  // wakes a blocked read
    }
  }
  thread_.join();
  ::close(listener_);
}

void FakeStandby::serve() {
  while (!stopping_) {
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) {
      return;
    }
    {
      std::lock_guard lock(mutex_);
      current_ = fd;
    }
    serve_one(fd);
    std::lock_guard lock(mutex_);
    current_ = -1;
  }
}

void FakeStandby::serve_one(int fd) {
  asio::io_context io;
  beast::error_code ec;
  tcp::socket socket(io);
  socket.assign(tcp::v4(), fd, ec);
  websocket::stream<tcp::socket> ws(std::move(socket));
  ws.accept(ec);
  ws.binary(true);
  while (!ec) {
    beast::flat_buffer buffer;
    ws.read(buffer, ec);
    v1::ClientMessage in;
    if (ec || !in.ParseFromArray(buffer.cdata().data(), static_cast<int>(buffer.size()))) {
      break;
    }
    v1::ServerMessage out;
    out.set_request_id(in.request_id());
    if (in.has_hello()) {
      ++hellos_;
      auto* w = out.mutable_welcome();
      w->set_staff_id("z1-grid-1");
      w->set_name("Fake standby");
      w->set_role(v1::GRID_WORKER);
      w->set_zone_id("Z1");
      w->set_standby(welcome_says_standby_);
      w->set_leader_url(welcome_says_standby_ ? leader_url_ : "");
    } else {
      ++refusals_;
      out.mutable_error()->set_code(v1::UNAVAILABLE);
      out.mutable_error()->set_message("standby: the leader is at " + leader_url_);
    }
    std::string bytes;
    out.SerializeToString(&bytes);
    ws.write(asio::buffer(bytes), ec);
  }
  // The socket closes with `ws`.
}

}  // namespace zonecall::testing
