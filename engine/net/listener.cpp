#include "engine/net/listener.hpp"

#include "engine/log.hpp"

namespace zonecall::net {

Listener::Listener(asio::io_context& io, const tcp::endpoint& endpoint, SessionContext& context)
    : io_(io), acceptor_(io), context_(context) {
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
}

void Listener::accept() {
  acceptor_.async_accept(io_, [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        return;  // stopped
      }
      // Out of descriptors and the like: keep accepting, others may close.
      log::warn("listener.accept_failed", {{"error", ec.message()}});
    } else {
      std::make_shared<HttpSession>(std::move(socket), self->context_)->run();
    }
    if (self->acceptor_.is_open()) {
      self->accept();
    }
  });
}

}  // namespace zonecall::net
