#include "engine/net/listener.hpp"

#include "engine/log.hpp"

namespace zonecall::net {

Listener::Listener(asio::io_context& io, const tcp::endpoint& endpoint, SessionContext& context)
    : io_(io), acceptor_(io), pause_(io), context_(context) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void Listener::run() { accept(); }

void Listener::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
  pause_.cancel();
}

void Listener::accept() {
  acceptor_.async_accept(io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->acceptor_.is_open()) {
      return;  // stopped; a connection accepted just before is dropped
    }
    if (ec) {
      // Out of descriptors and the like: pause rather than spin, then go on
      // accepting once others have closed.
      log::warn("listener.accept_failed", {{"error", ec.message()}});
      self->pause_.expires_after(std::chrono::milliseconds(100));
      self->pause_.async_wait([self](beast::error_code wait_ec) {
        if (!wait_ec && self->acceptor_.is_open()) {
          self->accept();
        }
      });
      return;
    }
    beast::error_code ignored;
    const auto peer = socket.remote_endpoint(ignored).address().to_string();
    if (auto slot = ConnectionSlot::take(self->context_, peer)) {
      start_session(std::move(socket), self->context_, std::move(*slot));
    } else {
      log::warn("listener.connection_refused", {{"address", peer}, {"reason", "connection limit"}});
      socket.close(ignored);
    }
    self->accept();
  });
}

}  // namespace zonecall::net
