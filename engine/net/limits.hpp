#pragma once
// Per-connection limits, each with a safe default (listed in the README).
#include <chrono>
#include <cstddef>

namespace zonecall::net {

struct Limits {
  // A frame above this gets Error{TOO_LARGE}; the connection stays open.
  std::size_t max_frame_bytes = 64 * 1024;
  // Frames above this are not even read: the WebSocket closes with 1009.
  std::size_t hard_frame_bytes = 4 * 1024 * 1024;
  // A client whose unsent replies and pushes exceed this is closed with
  // policy_error; it resumes later from the timeline.
  std::size_t max_send_queue_bytes = 4 * 1024 * 1024;
  // Malformed or oversized frames before the connection closes.
  int max_bad_frames = 16;
  std::chrono::seconds handshake_timeout{10};
  // Pings go out after half of this; no answer for all of it closes.
  std::chrono::seconds idle_timeout{60};
  std::size_t max_http_body_bytes = 8 * 1024;
  // Open connections in all, and from one source address; beyond them a new
  // connection is closed at once.
  std::size_t max_connections = 20000;
  std::size_t max_connections_per_address = 1000;
  // Requests per connection: a token bucket refilled at this rate, holding
  // at most `request_burst`. Beyond it a request gets RATE_LIMITED.
  double requests_per_second = 1000;
  double request_burst = 2000;
  // Failed Hellos (wrong tokens) before the connection closes with
  // policy_error; each failure is answered only after a growing delay, so
  // guessing tokens is slow.
  int max_hello_failures = 5;
  std::chrono::milliseconds hello_failure_delay{250};
};

}  // namespace zonecall::net
