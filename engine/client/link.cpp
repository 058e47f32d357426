#include "engine/client/link.hpp"

#include <deque>
#include <type_traits>

#include "engine/net/beast.hpp"
#include "engine/printable.hpp"

namespace zonecall::client {

using namespace zonecall::net;

namespace {

// A host that does not answer is a failed try, not a hang.
constexpr std::chrono::seconds kConnectTimeout{5};
// A leader that vanished without closing (a dead machine) is noticed by
// pings: one after 10 s of silence, the end after 10 s more.
constexpr std::chrono::seconds kIdle{20};

template <class Stream>
class LinkImpl : public Link, public std::enable_shared_from_this<LinkImpl<Stream>> {
 public:
  template <class... StreamArgs>
  LinkImpl(asio::io_context& io, const ServerUrl& url, LinkHandler& handler, StreamArgs&&... args)
      : url_(url), resolver_(io), ws_(std::forward<StreamArgs>(args)...), handler_(&handler) {}

  void start() {
    resolver_.async_resolve(url_.host, url_.port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              self->on_resolved(ec, r);
                            });
  }

  void send(std::string bytes) override {
    outbox_.push_back(std::move(bytes));
    if (outbox_.size() == 1 && opened_) {
      write_next();
    }
  }

  void close() override {
    if (!opened_) {
      beast::get_lowest_layer(ws_).close();  // the pending step fails: on_end
      return;
    }
    closing_ = true;
    if (outbox_.empty()) {
      start_close();
    }
  }

  void abandon() override {
    handler_ = nullptr;
    beast::get_lowest_layer(ws_).close();
  }

 private:
  void on_resolved(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec) {
      return end("cannot resolve " + url_.host + ": " + ec.message());
    }
    beast::get_lowest_layer(ws_).expires_after(kConnectTimeout);
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = this->shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
          if (ec) {
            return self->end("cannot connect: " + ec.message());
          }
          self->on_connected();
        });
  }

  void on_connected() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      ws_.next_layer().set_verify_mode(asio::ssl::verify_peer);
      ws_.next_layer().set_verify_callback(asio::ssl::host_name_verification(url_.host));
      ws_.next_layer().async_handshake(asio::ssl::stream_base::client,
                                       [self = this->shared_from_this()](beast::error_code ec) {
                                         if (ec) {
                                           return self->end("TLS handshake failed: " + ec.message());
                                         }
                                         self->upgrade();
                                       });
    } else {
      upgrade();
    }
  }

  void upgrade() {
    ws_.async_handshake(url_.host + ":" + url_.port, url_.path,
                        [self = this->shared_from_this()](beast::error_code ec) {
                          if (ec) {
                            return self->end("WebSocket handshake failed: " + ec.message());
                          }
                          self->on_open();
                        });
  }

  void on_open() {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{kConnectTimeout, kIdle, true});
    ws_.binary(true);
    opened_ = true;
    if (handler_ != nullptr) {
      handler_->on_open();
    }
    if (!outbox_.empty()) {
      write_next();
    }
    read();
  }

  void write_next() {
    ws_.async_write(asio::buffer(outbox_.front()),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) {
                        return;  // the read side reports the end
                      }
                      self->outbox_.pop_front();
                      if (!self->outbox_.empty()) {
                        self->write_next();
                      } else if (self->closing_) {
                        self->start_close();
                      }
                    });
  }

  void start_close() {
    ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
  }

  void read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        const auto& reason = self->ws_.reason().reason;
        return self->end("connection ended: " + ec.message() +
                         (reason.empty() ? "" : " (" + printable(reason.c_str()) + ")"));
      }
      v1::ServerMessage m;
      const auto data = self->buffer_.cdata();
      const bool parsed = m.ParseFromArray(data.data(), static_cast<int>(data.size()));
      self->buffer_.consume(self->buffer_.size());
      if (parsed && self->handler_ != nullptr) {
        self->handler_->on_message(m);  // may abandon this link
      }
      if (self->handler_ != nullptr) {
        self->read();
      }
    });
  }

  void end(const std::string& why) {
    if (handler_ != nullptr) {
      auto* handler = std::exchange(handler_, nullptr);
      handler->on_end(why, opened_);
    }
  }

  ServerUrl url_;
  tcp::resolver resolver_;
  websocket::stream<Stream> ws_;
  LinkHandler* handler_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  bool opened_ = false;
  bool closing_ = false;
};

}  // namespace

std::shared_ptr<Link> Link::open(asio::io_context& io, const ServerUrl& url, asio::ssl::context& tls,
                                 LinkHandler& handler) {
  if (url.tls) {
    auto link = std::make_shared<LinkImpl<TlsStream>>(io, url, handler, io, tls);
    link->start();
    return link;
  }
  auto link = std::make_shared<LinkImpl<PlainStream>>(io, url, handler, io);
  link->start();
  return link;
}

}  // namespace zonecall::client
