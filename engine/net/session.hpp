#pragma once
// Connections: an HTTP session that answers health checks and upgrades
// /v1/ws to a WebSocket session. Each WebSocket session has its own bounded
// send queue with exactly one write in flight. All run on the io thread.
// Both come in two flavours of one code: over plain TCP and over TLS.
// session.cpp runs past 400 lines: both sessions, their two stream flavours
// and the connection limits share its stream helpers and its explicit
// instantiations, which a split would have to repeat.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string_view>
#include <memory>
#include <string>
#include <unordered_map>

#include "engine/client_session.hpp"
#include "engine/request_handler.hpp"
#include "engine/net/beast.hpp"
#include "engine/net/limits.hpp"
#include "engine/net/send_queue.hpp"
#include "engine/time_source.hpp"

namespace zonecall::net {

// What every session shares: the request handler, the io_context and the
// time source (for the rate limit and the timeouts), the limits, the TLS
// context (null when serving plain ws://), and the live WebSocket sessions
// (for shutdown).
struct SessionContext {
  RequestHandler& handler;
  asio::io_context& io;
  TimeSource& time;
  Limits limits;
  asio::ssl::context* tls = nullptr;
  // Renders GET /metrics (set by the server, which sees every part).
  std::function<std::string()> metrics{};
  std::uint64_t next_session_id = 1;
  std::unordered_map<std::uint64_t, std::weak_ptr<ClientSession>> live{};
  // Called each time the last of `live` has ended (shutdown waits on it).
  std::function<void()> on_last_session_ended{};
  // Open connections, in all and by source address (see ConnectionSlot).
  std::size_t connections = 0;
  std::unordered_map<std::string, std::size_t> connections_by_address{};
};

// One open connection counted against the limits, for as long as it lives;
// it moves from the HTTP session to the WebSocket session on upgrade.
class ConnectionSlot {
 public:
  // Empty when the limits are reached.
  static std::optional<ConnectionSlot> take(SessionContext& context, const std::string& address);
  ConnectionSlot(ConnectionSlot&& other) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ~ConnectionSlot();

 private:
  ConnectionSlot(SessionContext* context, std::string address)
      : context_(context), address_(std::move(address)) {}
  SessionContext* context_;
  std::string address_;
};

// Starts the HTTP session for a freshly accepted connection: over TLS when
// the context has one.
void start_session(tcp::socket socket, SessionContext& context, ConnectionSlot slot);

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream stream, SessionContext& context, ConnectionSlot slot);
  void run();

 private:
  void read_request();
  void on_request(beast::error_code ec);
  void respond(http::status status, std::string body, std::string_view content_type);
  // Ends the connection: a TCP half-close, or a TLS close_notify.
  void shut_down();

  Stream stream_;
  // The handshake timeout, and the bound on a TLS close_notify: closes the socket.
  std::unique_ptr<Timer> deadline_;
  beast::flat_buffer buffer_;
  SessionContext& context_;
  std::optional<ConnectionSlot> slot_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
};

// Why a WebSocket session closes. It decides the close code and what becomes
// of the queued messages: a reader too slow loses its backlog; any other
// close first sends what is queued (say, the error that explains it).
enum class CloseCause { policy, send_queue_overflow, restart };

// A subscription's backlog waits while more than this is queued (or half
// the send queue's limit, if that is less).
inline constexpr std::size_t kDrainMarkBytes = 512 * 1024;

template <class Stream>
class WebSocketSession final : public ClientSession,
                               public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  WebSocketSession(Stream stream, SessionContext& context, ConnectionSlot slot);
  void run(http::request<http::string_body> upgrade);

  std::uint64_t id() const override { return id_; }
  void send(const SharedMessage& message, std::optional<Encoding> reply_encoding) override;
  std::size_t queued_bytes() const override { return queue_.bytes(); }
  std::size_t drain_mark() const override {
    return std::min(kDrainMarkBytes, context_.limits.max_send_queue_bytes / 2);
  }
  void close_for_policy(const std::string& reason) override { close(CloseCause::policy, reason); }
  void close_for_restart() override { close(CloseCause::restart, "server shutting down"); }
  // Closes with the cause's code and the reason once the writes it keeps are done.
  void close(CloseCause cause, const std::string& reason);

 private:
  void on_accept(beast::error_code ec);
  void read_more();
  void on_read(beast::error_code ec, std::size_t bytes);
  void on_message();
  // Takes a token from the request-rate bucket; false when it is empty.
  bool within_rate();
  void reject_frame(v1::ErrorCode code, const std::string& message, std::uint64_t request_id = 0);
  void write_next();
  void on_write(beast::error_code ec, std::size_t bytes);
  // Sends the close frame; the peer's must come within the handshake timeout.
  void send_close(const websocket::close_reason& why);
  // The handshake or close timeout, or the idle timeout's next tick.
  void on_timer();
  void end(beast::error_code ec, const char* where);

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  SessionContext& context_;
  ConnectionSlot slot_;
  std::uint64_t id_;
  Encoding encoding_ = Encoding::binary;  // that of the client's latest frame, for pushes
  bool oversized_ = false;                // the message being read is over the limit
  int bad_frames_ = 0;
  SendQueue queue_;
  bool above_drain_mark_ = false;  // on_drained is due when the queue falls to the mark
  bool closing_ = false;
  std::optional<websocket::close_reason> close_after_write_;
  // The request-rate token bucket.
  double tokens_ = 0;
  MonotonicTime refilled_;
  // The timeouts, kept here rather than by Beast so that they run on the
  // time source. Every half idle timeout the server pings; a client that
  // sent nothing since the previous ping, not even its pong, is dropped.
  enum class Phase { handshake, open, closing };
  Phase phase_ = Phase::handshake;
  std::unique_ptr<Timer> timer_;
  bool quiet_ = false;  // nothing heard since the last ping
  bool ping_in_flight_ = false;
  bool ended_ = false;
};

}  // namespace zonecall::net
