#pragma once
// A real WebSocket client for the engine tests (binary or JSON frames).
// Beast stays inside ws_client.cpp so that test files compile quickly.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "zonecall/v1/wire.pb.h"

namespace zonecall::testing {

class WsClient {
 public:
  enum class Mode { binary, json };
  static constexpr std::chrono::milliseconds kTimeout{5000};

  explicit WsClient(unsigned short port, Mode mode = Mode::binary, const std::string& path = "/v1/ws");
  // Over TLS (wss://), trusting only the given PEM certificate, which must
  // be valid for 127.0.0.1. Throws if the TLS or WebSocket handshake fails.
  WsClient(unsigned short port, Mode mode, const std::string& path,
           const std::string& trusted_cert_file);
  ~WsClient();

  void send(v1::ClientMessage message) { send_in(mode_, std::move(message)); }
  // One message in the given encoding, whatever this client's mode.
  void send_in(Mode mode, v1::ClientMessage message);
  void send_raw(std::string_view bytes, bool text);
  // The next message from the server, or nothing if none came in time or the
  // connection closed.
  std::optional<v1::ServerMessage> receive(std::chrono::milliseconds timeout = kTimeout);
  // Sends (assigning a request_id if it has none) and returns the reply;
  // pushes that arrive first are kept for next_push().
  v1::ServerMessage request(v1::ClientMessage message);
  std::optional<v1::ServerMessage> next_push(std::chrono::milliseconds timeout = kTimeout);
  std::size_t pushes_waiting() const { return pushes_.size(); }

  v1::Welcome hello(const std::string& token);
  // Request ids are unique across every client of the test process: the
  // engine treats a staff member's reused id as a retry.
  static std::uint64_t fresh_request_id();
  // Signs in and goes on duty: alerts go to on-duty staff.
  v1::Welcome hello_on_duty(const std::string& token);
  // Whether the server closed the connection, and its close code.
  bool closed() const { return closed_; }
  // Whether this client gave up waiting (and closed the connection itself).
  bool timed_out() const { return timed_out_; }
  int close_code() const { return close_code_; }
  std::string close_reason() const { return close_reason_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Mode mode_;
  std::deque<v1::ServerMessage> pushes_;
  bool last_sent_text_ = false;  // pushes come in this encoding...
  bool mixed_ = false;           // ...unless the client has used both
  std::map<std::uint64_t, bool> request_was_text_;  // replies in their request's
  bool closed_ = false;
  bool timed_out_ = false;
  int close_code_ = 0;
  std::string close_reason_;
};

// A plain HTTP/1.1 GET to 127.0.0.1 (health, metrics, the board).
struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};
HttpReply http_get(unsigned short port, const std::string& target);

// Builders for client messages.
v1::ClientMessage hello_msg(const std::string& token);
v1::ClientMessage report_msg(const std::string& zone, const std::string& category,
                             v1::Severity severity = v1::SEVERITY_UNSPECIFIED);
v1::ClientMessage discover_msg(std::uint64_t incident_id, const std::string& note = "");
v1::ClientMessage respond_msg(std::uint64_t incident_id, const std::string& note = "");
v1::ClientMessage resolve_msg(std::uint64_t incident_id, const std::string& note = "");
v1::ClientMessage get_incident_msg(std::uint64_t incident_id);
v1::ClientMessage list_msg(const std::string& zone = "");
v1::ClientMessage duty_msg(bool on_duty);
v1::ClientMessage subscribe_msg(std::uint64_t after_seq);
v1::ClientMessage zone_call_msg(std::uint64_t incident_id, const std::string& department,
                                const std::string& reason = "beyond our authority");
v1::ClientMessage accept_msg(std::uint64_t incident_id);
v1::ClientMessage on_site_msg(std::uint64_t incident_id);
v1::ClientMessage decline_msg(std::uint64_t incident_id, const std::string& reason);

}  // namespace zonecall::testing
