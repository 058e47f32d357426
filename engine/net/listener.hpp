#pragma once
// Accepts TCP connections and starts an HTTP session (plain or TLS) on each.
#include <boost/asio/steady_timer.hpp>

#include <memory>

#include "engine/net/beast.hpp"
#include "engine/net/session.hpp"

namespace zonecall::net {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Binds at once (throws on failure), so the port is known before run().
  Listener(asio::io_context& io, const tcp::endpoint& endpoint, SessionContext& context);
  void run();
  void stop();
  unsigned short port() const { return port_; }

 private:
  void accept();

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer pause_;  // after an accept error (e.g. out of descriptors)
  SessionContext& context_;
  unsigned short port_ = 0;
};

}  // namespace zonecall::net
