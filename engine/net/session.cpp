#include "engine/net/session.hpp"

#include <type_traits>
#include <utility>

#include "engine/request_handler.hpp"
#include "engine/log.hpp"
#include "engine/net/board_assets.hpp"

namespace zonecall::net {

namespace {
constexpr const char* kWebSocketPath = "/v1/ws";
constexpr std::size_t kReadChunk = 16 * 1024;

// Quiet about the ordinary ways a connection ends.
bool is_ordinary_end(beast::error_code ec) {
  return ec == websocket::error::closed || ec == asio::error::operation_aborted ||
         ec == asio::error::eof || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == http::error::end_of_stream ||
         ec == asio::ssl::error::stream_truncated;
}
}  // namespace

// ---- connection limits -------------------------------------------------

std::optional<ConnectionSlot> ConnectionSlot::take(SessionContext& context, const std::string& address) {
  auto& from_address = context.connections_by_address[address];
  if (context.connections >= context.limits.max_connections ||
      from_address >= context.limits.max_connections_per_address) {
    if (from_address == 0) {
      context.connections_by_address.erase(address);
    }
    return std::nullopt;
  }
  ++context.connections;
  ++from_address;
  return ConnectionSlot(&context, address);
}

ConnectionSlot::ConnectionSlot(ConnectionSlot&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)), address_(std::move(other.address_)) {}

ConnectionSlot::~ConnectionSlot() {
  if (context_ == nullptr) {
    return;
  }
  --context_->connections;
  auto it = context_->connections_by_address.find(address_);
  if (it != context_->connections_by_address.end() && --it->second == 0) {
    context_->connections_by_address.erase(it);
  }
}

// ---- HTTP --------------------------------------------------------------

void start_session(tcp::socket socket, SessionContext& context, ConnectionSlot slot) {
  if (context.tls != nullptr) {
    std::make_shared<HttpSession<TlsStream>>(TlsStream(std::move(socket), *context.tls), context,
                                             std::move(slot))
        ->run();
  } else {
    std::make_shared<HttpSession<PlainStream>>(PlainStream(std::move(socket)), context,
                                               std::move(slot))
        ->run();
  }
}

template <class Stream>
HttpSession<Stream>::HttpSession(Stream stream, SessionContext& context, ConnectionSlot slot)
    : stream_(std::move(stream)),
      deadline_(context.time.make_timer(context.io, [this] { beast::get_lowest_layer(stream_).close(); })),
      context_(context), slot_(std::move(slot)) {}

template <class Stream>
void HttpSession<Stream>::run() {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // The TLS handshake gets the same bound as the WebSocket handshake, so a
    // client that connects and says nothing cannot hold a slot for long.
    deadline_->arm_after(context_.limits.handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](beast::error_code ec) {
                              if (ec) {
                                if (!is_ordinary_end(ec)) {
                                  log::debug("tls.handshake_failed", {{"error", ec.message()}});
                                }
                                return;  // the socket closes with the session
                              }
                              self->read_request();
                            });
  } else {
    read_request();
  }
}

template <class Stream>
void HttpSession<Stream>::shut_down() {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    deadline_->arm_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
  } else {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
}

template <class Stream>
void HttpSession<Stream>::read_request() {
  parser_.emplace();
  parser_->body_limit(context_.limits.max_http_body_bytes);
  // A request (the upgrade included) must arrive whole within the handshake
  // timeout: a client trickling its headers cannot hold a slot (slowloris).
  deadline_->arm_after(context_.limits.handshake_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                     self->on_request(ec);
                   });
}

template <class Stream>
void HttpSession<Stream>::on_request(beast::error_code ec) {
  if (ec) {
    if (!is_ordinary_end(ec)) {
      log::debug("http.read_failed", {{"error", ec.message()}});
    }
    shut_down();
    return;
  }
  auto request = parser_->release();
  const std::string target(request.target());
  if (websocket::is_upgrade(request)) {
    if (target != kWebSocketPath) {
      respond(http::status::not_found, "the WebSocket endpoint is /v1/ws\n", "text/plain");
      return;
    }
    deadline_->cancel();
    auto slot = std::move(*slot_);
    slot_.reset();
    std::make_shared<WebSocketSession<Stream>>(std::move(stream_), context_, std::move(slot))
        ->run(std::move(request));
    return;
  }
  if (request.method() != http::verb::get) {
    respond(http::status::method_not_allowed, "GET only\n", "text/plain");
    return;
  }
  // The board's own links may carry a query string (cache busting); ignore it.
  const std::string path = target.substr(0, target.find('?'));
  if (path == "/healthz") {
    respond(http::status::ok, "ok\n", "text/plain");
  } else if (path == "/readyz") {
    // Ready: recovery is done and the store takes writes.
    switch (context_.handler.readiness()) {
      case RequestHandler::Readiness::ready:
        respond(http::status::ok, "ready\n", "text/plain");
        break;
      case RequestHandler::Readiness::recovering:
        respond(http::status::service_unavailable, "recovering\n", "text/plain");
        break;
      case RequestHandler::Readiness::store_refusing_writes:
        respond(http::status::service_unavailable, "store refusing writes\n", "text/plain");
        break;
      case RequestHandler::Readiness::commit_in_doubt:
        respond(http::status::service_unavailable, "commit in doubt\n", "text/plain");
        break;
      case RequestHandler::Readiness::standby:
        respond(http::status::service_unavailable, "standby\n", "text/plain");
        break;
    }
  } else if (path == "/metrics") {
    respond(http::status::ok, context_.metrics ? context_.metrics() : std::string(),
            "text/plain; version=0.0.4; charset=utf-8");
  } else if (const BoardAsset* asset = find_board_asset(path)) {
    respond(http::status::ok, std::string(asset->body), asset->content_type);
  } else {
    respond(http::status::not_found, "not found\n", "text/plain");
  }
}

template <class Stream>
void HttpSession<Stream>::respond(http::status status, std::string body,
                                  std::string_view content_type) {
  response_ = std::make_shared<http::response<http::string_body>>(status, 11);
  response_->set(http::field::server, "zonecall");
  response_->set(http::field::content_type, content_type);
  // The board loads only its own files and talks only to this server.
  response_->set("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:");
  response_->set("X-Content-Type-Options", "nosniff");
  response_->keep_alive(parser_ && parser_->keep_alive());
  response_->body() = std::move(body);
  response_->prepare_payload();
  http::async_write(stream_, *response_,
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec || !self->response_->keep_alive()) {
                        self->shut_down();
                        return;
                      }
                      self->read_request();
                    });
}

// ---- WebSocket -----------------------------------------------------------

template <class Stream>
WebSocketSession<Stream>::WebSocketSession(Stream stream, SessionContext& context,
                                           ConnectionSlot slot)
    : ws_(std::move(stream)), context_(context), slot_(std::move(slot)),
      id_(context.next_session_id++),
      tokens_(context.limits.request_burst),
      refilled_(context.time.monotonic()),
      timer_(context.time.make_timer(context.io, [this] { on_timer(); })) {}

template <class Stream>
bool WebSocketSession<Stream>::within_rate() {
  const auto now = context_.time.monotonic();
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  tokens_ = std::min(context_.limits.request_burst,
                     tokens_ + elapsed * context_.limits.requests_per_second);
  if (tokens_ < 1) {
    return false;
  }
  tokens_ -= 1;
  return true;
}

template <class Stream>
void WebSocketSession<Stream>::run(http::request<http::string_body> upgrade) {
  ws_.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                 websocket::stream_base::none(), false});
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { quiet_ = false; });
  timer_->arm_after(context_.limits.handshake_timeout);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::server, "zonecall");
  }));
  ws_.read_message_max(context_.limits.hard_frame_bytes);
  ws_.async_accept(upgrade, [self = this->shared_from_this()](beast::error_code ec) {
    self->on_accept(ec);
  });
}

template <class Stream>
void WebSocketSession<Stream>::on_accept(beast::error_code ec) {
  if (ec) {
    return end(ec, "accept");
  }
  phase_ = Phase::open;
  timer_->arm_after(context_.limits.idle_timeout / 2);
  context_.live[id_] = this->weak_from_this();
  context_.handler.attach(this->shared_from_this());
  read_more();
}

template <class Stream>
void WebSocketSession<Stream>::read_more() {
  ws_.async_read_some(buffer_, kReadChunk,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                        self->on_read(ec, n);
                      });
}

template <class Stream>
void WebSocketSession<Stream>::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    return end(ec, "read");
  }
  quiet_ = false;
  // Read in chunks so an oversized message is discarded as it arrives
  // instead of being buffered whole.
  if (buffer_.size() > context_.limits.max_frame_bytes) {
    oversized_ = true;
    buffer_.consume(buffer_.size());
  }
  if (!ws_.is_message_done()) {
    return read_more();
  }
  encoding_ = ws_.got_text() ? Encoding::json : Encoding::binary;
  if (oversized_) {
    oversized_ = false;
    reject_frame(v1::TOO_LARGE, "frame exceeds " +
                                    std::to_string(context_.limits.max_frame_bytes) + " bytes");
  } else {
    on_message();
  }
  buffer_.consume(buffer_.size());
  if (!closing_) {
    read_more();
  }
}

template <class Stream>
void WebSocketSession<Stream>::on_message() {
  const auto data = buffer_.cdata();
  Decoded decoded = decode_client(
      std::string_view(static_cast<const char*>(data.data()), data.size()), encoding_);
  if (decoded.error) {
    // A frame that parsed keeps its request id in the error.
    reject_frame(decoded.error->code, decoded.error->message, decoded.message.request_id());
    return;
  }
  // Decoded first (a frame is at most max_frame_bytes), so that a client
  // pipelining writes learns which one was dropped.
  if (!within_rate()) {
    v1::ServerMessage m;
    m.set_request_id(decoded.message.request_id());
    m.mutable_error()->set_code(v1::RATE_LIMITED);
    m.mutable_error()->set_message(
        "more than " + std::to_string(static_cast<long>(context_.limits.requests_per_second)) +
        " requests per second on this connection");
    send(SharedMessage(std::move(m)), encoding_);
    return;
  }
  context_.handler.on_message(id_, std::move(decoded.message), encoding_);
}

template <class Stream>
void WebSocketSession<Stream>::reject_frame(v1::ErrorCode code, const std::string& message,
                                    std::uint64_t request_id) {
  v1::ServerMessage m;
  m.set_request_id(request_id);
  m.mutable_error()->set_code(code);
  m.mutable_error()->set_message(message);
  send(SharedMessage(std::move(m)), encoding_);
  if (++bad_frames_ >= context_.limits.max_bad_frames) {
    log::warn("ws.abuse", {{"session", std::to_string(id_)}});
    close(CloseCause::policy, "too many bad frames");
  }
}

template <class Stream>
void WebSocketSession<Stream>::send(const SharedMessage& message, std::optional<Encoding> reply_encoding) {
  if (closing_) {
    return;
  }
  const Encoding encoding = reply_encoding.value_or(encoding_);
  auto bytes = message.bytes(encoding);
  if (!queue_.fits(bytes->size(), context_.limits.max_send_queue_bytes)) {
    // Too slow a reader must not hold up anyone else; it resumes later.
    log::warn("ws.send_queue_overflow", {{"session", std::to_string(id_)},
                                         {"queued_bytes", std::to_string(queue_.bytes())}});
    context_.handler.on_send_queue_overflow();
    close(CloseCause::send_queue_overflow, "send queue overflow");
    return;
  }
  if (queue_.push({std::move(bytes), encoding == Encoding::binary})) {
    write_next();
  }
  above_drain_mark_ = above_drain_mark_ || queue_.bytes() > drain_mark();
}

template <class Stream>
void WebSocketSession<Stream>::write_next() {
  const auto& next = queue_.start_write();
  ws_.binary(next.binary);
  ws_.async_write(asio::buffer(*next.bytes),
                  [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                    self->on_write(ec, n);
                  });
}

template <class Stream>
void WebSocketSession<Stream>::on_write(beast::error_code ec, std::size_t) {
  queue_.finish_write();
  if (ec) {
    return end(ec, "write");
  }
  if (close_after_write_ && queue_.empty()) {
    auto reason = *close_after_write_;
    close_after_write_.reset();
    send_close(reason);
    return;
  }
  if (above_drain_mark_ && queue_.bytes() <= drain_mark()) {
    above_drain_mark_ = false;
    context_.handler.on_drained(id_);
  }
  if (!queue_.empty()) {
    write_next();
  }
}

template <class Stream>
void WebSocketSession<Stream>::close(CloseCause cause, const std::string& reason) {
  if (closing_ || ended_) {
    return;
  }
  closing_ = true;
  websocket::close_reason why(cause == CloseCause::restart ? websocket::close_code::service_restart
                                                           : websocket::close_code::policy_error,
                              reason);
  if (cause == CloseCause::send_queue_overflow) {
    queue_.drop_unsent();
  }
  if (!queue_.empty()) {
    close_after_write_ = why;
    return;
  }
  send_close(why);
}

template <class Stream>
void WebSocketSession<Stream>::send_close(const websocket::close_reason& why) {
  phase_ = Phase::closing;
  timer_->arm_after(context_.limits.handshake_timeout);
  ws_.async_close(why, [self = this->shared_from_this()](beast::error_code ec) {
    self->end(ec, "close");
  });
}

template <class Stream>
void WebSocketSession<Stream>::on_timer() {
  if (phase_ == Phase::open && !quiet_) {
    quiet_ = true;
    if (!ping_in_flight_) {
      ping_in_flight_ = true;
      ws_.async_ping({}, [self = this->shared_from_this()](beast::error_code) {
        self->ping_in_flight_ = false;
      });
    }
    timer_->arm_after(context_.limits.idle_timeout / 2);
    return;
  }
  // The handshake or the close took too long, or the client fell silent:
  // drop the TCP connection without a close frame (clients see 1006).
  beast::get_lowest_layer(ws_).close();
}

template <class Stream>
void WebSocketSession<Stream>::end(beast::error_code ec, const char* where) {
  if (ec && !is_ordinary_end(ec)) {
    log::debug("ws.ended", {{"session", std::to_string(id_)}, {"where", where},
                            {"error", ec.message()}});
  }
  if (ended_) {
    return;
  }
  ended_ = true;
  closing_ = true;
  timer_->cancel();
  queue_.drop_unsent();  // nothing more goes out
  context_.live.erase(id_);
  context_.handler.detach(id_);
  if (context_.live.empty() && context_.on_last_session_ended) {
    context_.on_last_session_ended();
  }
}

template class HttpSession<PlainStream>;
template class HttpSession<TlsStream>;
template class WebSocketSession<PlainStream>;
template class WebSocketSession<TlsStream>;

}  // namespace zonecall::net
