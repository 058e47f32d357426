// The operations surface over HTTP: health, readiness, metrics, the board's
// files; a slow reader closed by its bounded send queue; and a graceful stop,
// which waits on events and, for clients that never answer, its grace period.
#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <future>
#include <thread>

#include "engine/store/sqlite/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

// A masked binary client frame (mask key 0, so the payload goes as is).
std::string client_frame(const v1::ClientMessage& m) {
  std::string payload;
  m.SerializeToString(&payload);
  std::string frame = "\x82";
  if (payload.size() < 126) {
    frame += static_cast<char>(0x80 | payload.size());
  } else {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  }
  frame += std::string(4, '\0');
  return frame + payload;
}
}  // namespace

TEST_CASE("ops: health, readiness, the board's embedded files, and refusals") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  CHECK(http_get(server.port(), "/healthz").status == 200);
  auto ready = http_get(server.port(), "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");

  auto page = http_get(server.port(), "/");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("/board.js") != std::string::npos);
  auto script = http_get(server.port(), "/board.js?v=2");
  CHECK(script.status == 200);
  CHECK(script.content_type == "text/javascript; charset=utf-8");
  CHECK(script.body.find("/v1/ws") != std::string::npos);
  CHECK(http_get(server.port(), "/board.css").content_type == "text/css; charset=utf-8");
  CHECK(http_get(server.port(), "/secrets").status == 404);
}

TEST_CASE("ops: /readyz is 503 while the store refuses writes, 200 once a commit succeeds") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  auto options = options_for(db);
  options.busy_timeout_ms = 50;
  RunningServer server(options);
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  {
    sqlite::Database other(db, SQLITE_OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    CHECK(grid.request(report_msg("Z1", "fire")).error().code() == v1::INTERNAL);
    auto refusing = http_get(server.port(), "/readyz");
    CHECK(refusing.status == 503);
    CHECK(refusing.body == "store refusing writes\n");
    CHECK(has_line(http_get(server.port(), "/metrics").body, "zonecall_ready 0"));
    other.exec("ROLLBACK");
  }
  REQUIRE(grid.request(report_msg("Z1", "fire")).has_ack());
  CHECK(http_get(server.port(), "/readyz").status == 200);
  const auto metrics = http_get(server.port(), "/metrics").body;
  CHECK(has_line(metrics, "zonecall_ready 1"));
  CHECK(has_line(metrics, "zonecall_commit_failures_total 1"));
}

TEST_CASE("ops: /readyz says recovering until the deadlines overdue at start-up are durable") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  constexpr int kIncidents = 40;
  SimulatedTime time;  // one clock across the restart
  {
    RunningServer server(db, time);
    WsClient reporter(server.port());
    reporter.hello("demo-reporter");
    for (int i = 0; i < kIncidents; ++i) {
      REQUIRE(reporter.request(report_msg("Z1", "drill")).has_ack());
    }
  }
  const auto breached = "kind = 12";
  REQUIRE(count_rows(db, breached) == 0);
  // Down for longer than every drill clock (900 ms): all of them are overdue.
  time.advance(3 * kDrillDiscoverMs + 200);

  // Another process holds the write lock, so the overdue breaches cannot commit yet.
  sqlite::Database other(db, SQLITE_OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  RunningServer server(db, time);
  auto recovering = http_get(server.port(), "/readyz");
  CHECK(recovering.status == 503);
  CHECK(recovering.body == "recovering\n");
  CHECK(has_line(http_get(server.port(), "/metrics").body, "zonecall_ready 0"));
  other.exec("ROLLBACK");

  // A command sent now is ordered after the breaches.
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  const auto ack = grid.request(discover_msg(1));
  REQUIRE(ack.has_ack());
  CHECK(count_rows(db, breached) >= kIncidents);
  CHECK(count_rows(db, "kind = 12 AND seq > " + std::to_string(ack.ack().seq())) == 0);
  auto ready = http_get(server.port(), "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
}

TEST_CASE("ops: /metrics counts connections, open incidents, stage times, breaches and commits") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient grid(server.port());
  grid.hello_on_duty("demo-z1-grid-1");
  WsClient command(server.port(), WsClient::Mode::json);
  command.hello("demo-command");

  // One incident through its whole life, one left open, one that breaches.
  const auto done = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();
  REQUIRE(grid.request(discover_msg(done)).has_ack());
  REQUIRE(grid.request(respond_msg(done)).has_ack());
  REQUIRE(grid.request(resolve_msg(done)).has_ack());
  REQUIRE(grid.request(report_msg("Z1", "sanitation")).has_ack());
  const auto drill = grid.request(report_msg("Z1", "drill")).ack().incident_id();
  // Past the drill's discover deadline: its breach is pushed to the zone.
  server.advance(kDrillDiscoverMs + 1);
  bool breached = false;
  while (!breached) {
    auto push = grid.next_push();
    REQUIRE(push);
    breached = push->has_alert() && push->alert().reason() == v1::BREACHED &&
               push->alert().incident().incident_id() == drill;
  }

  auto reply = http_get(server.port(), "/metrics");
  REQUIRE(reply.status == 200);
  CHECK(reply.content_type == "text/plain; version=0.0.4; charset=utf-8");
  const auto& m = reply.body;
  INFO(m);
  CHECK(has_line(m, "zonecall_open_connections 3"));  // this scrape's own included
  CHECK(has_line(m, "zonecall_connections{role=\"GRID_WORKER\"} 1"));
  CHECK(has_line(m, "zonecall_connections{role=\"COMMUNITY_COMMAND\"} 1"));
  CHECK(has_line(m, "zonecall_open_incidents{zone=\"Z1\",state=\"REPORTED\"} 2"));
  CHECK(m.find("state=\"RESOLVED\"") == std::string::npos);  // open ones only
  for (const char* stage : {"DISCOVER", "RESPOND", "RESOLVE"}) {
    CHECK(has_line(m, std::string("zonecall_stage_time_seconds_count{zone=\"Z1\",stage=\"") +
                          stage + "\"} 1"));
    CHECK(has_line(m, std::string("zonecall_stage_time_seconds_bucket{zone=\"Z1\",stage=\"") +
                          stage + "\",le=\"15\"} 1"));
  }
  CHECK(has_line(m, "zonecall_breaches_total{stage=\"DISCOVER\"} 1"));
  CHECK(m.find("zonecall_escalations_total{rung=\"AT_REPORT\"}") != std::string::npos);
  CHECK(m.find("zonecall_commit_batch_events_count ") != std::string::npos);
  CHECK(m.find("zonecall_commit_seconds_bucket{le=\"+Inf\"} ") != std::string::npos);
  CHECK(has_line(m, "zonecall_send_queue_overflows_total 0"));
}

TEST_CASE("ops: a reader that falls behind is closed with policy_error; others never wait") {
  TempDir dir;
  auto options = options_for(dir.file("zonecall.db"));
  options.limits.max_send_queue_bytes = 8 * 1024;
  // The 4000 reports below take no simulated time: the bucket must hold them.
  options.limits.request_burst = 10'000;
  RunningServer server(options);

  // The slow reader: a tiny receive buffer, signed in as command and
  // subscribed, then never reads.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket slow(io);
  slow.open(boost::asio::ip::tcp::v4());
  slow.set_option(boost::asio::socket_base::receive_buffer_size(4096));
  slow.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  boost::asio::write(slow, boost::asio::buffer(std::string(
      "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")));
  boost::asio::streambuf head;
  boost::asio::read_until(slow, head, "\r\n\r\n");
  auto hello = hello_msg("demo-command");
  hello.set_request_id(1);
  auto subscribe = subscribe_msg(0);
  subscribe.set_request_id(2);
  boost::asio::write(slow, boost::asio::buffer(client_frame(hello) + client_frame(subscribe)));

  // Meanwhile a grid worker reports; every request is answered.
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  auto report = report_msg("Z1", "sanitation");
  report.mutable_report()->set_description(std::string(2000, 'x'));
  // Enough to fill the kernel's socket buffers (megabytes on loopback) and
  // then the 8 KiB queue.
  for (int i = 0; i < 4000; ++i) {
    REQUIRE(grid.request(report).has_ack());
  }

  // The slow reader finds, after what it was sent, a close frame: 1008 and
  // the reason.
  const std::string close_frame = std::string("\x03\xf0") + "send queue overflow";
  std::string received(boost::asio::buffers_begin(head.data()), boost::asio::buffers_end(head.data()));
  char buf[65536];
  boost::system::error_code ec;
  while (!ec && received.find(close_frame) == std::string::npos) {
    const auto n = slow.read_some(boost::asio::buffer(buf), ec);
    received.append(buf, n);
  }
  INFO("received " << received.size() << " bytes, ended with " << ec.message());
  REQUIRE(received.find(close_frame) != std::string::npos);
  // It never answers the close frame: once the handshake timeout has passed,
  // the server drops the connection.
  server.advance(std::chrono::milliseconds(options.limits.handshake_timeout).count());
  while (!ec) {
    slow.read_some(boost::asio::buffer(buf), ec);
  }
  CHECK((ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset));
  CHECK(has_line(http_get(server.port(), "/metrics").body, "zonecall_send_queue_overflows_total 1"));

  // It comes back and resumes from its cursor (here, the start): every
  // event is there, in order, without a gap.
  WsClient back(server.port());
  back.hello("demo-command");
  back.send(subscribe_msg(0));
  std::uint64_t expected = 1;
  for (;;) {
    auto m = back.receive();
    REQUIRE(m);
    if (m->has_subscribed()) {
      CHECK(m->subscribed().caught_up_seq() == expected - 1);
      break;
    }
    if (m->has_event()) {
      REQUIRE(m->event().seq() == expected);
      ++expected;
    }
  }
  CHECK(expected > 4000);
}

TEST_CASE("ops: a graceful stop waits for the commit in flight and the clients' close, not for a clock") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);  // the default 5 s busy timeout
  WsClient grid(server.port());
  grid.hello("demo-z1-grid-1");
  // Another process holds the write lock: the report's commit waits for it.
  sqlite::Database other(db, SQLITE_OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  auto report = report_msg("Z1", "sanitation");
  report.set_request_id(WsClient::fresh_request_id());
  grid.send(report);
  REQUIRE(grid.request(list_msg()).has_incidents());  // the report is decided, its commit queued
  const auto before = server.now();
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  // Once the stop has begun, new requests are refused; the commit still
  // holds it, and this client stays open.
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    refused = grid.request(list_msg()).error().code() == v1::UNAVAILABLE;
  }
  REQUIRE(refused);
  CHECK(stopped.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  other.exec("ROLLBACK");
  auto ack = grid.receive();
  REQUIRE(ack);
  CHECK(ack->request_id() == report.request_id());
  CHECK(ack->has_ack());
  CHECK_FALSE(grid.receive());  // then the close, which this client answers
  CHECK(grid.close_code() == 1012);
  CHECK(grid.close_reason() == "server shutting down");
  REQUIRE(stopped.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(server.now() == before);  // no grace period used
  CHECK(count_rows(db, "kind = 10") == 1);
}

TEST_CASE("ops: a client that never answers its close frame holds a stop for the grace period only") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket mute(io);
  mute.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  boost::asio::write(mute, boost::asio::buffer(std::string(
      "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")));
  boost::asio::streambuf received;
  boost::asio::read_until(mute, received, "\r\n\r\n");

  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  // Nothing was in flight: the close frame comes at once, 1012 and the reason.
  const std::string close_frame = std::string("\x03\xf4") + "server shutting down";
  boost::asio::read_until(mute, received, close_frame);
  // It never answers. The stop waits for it, but not beyond the grace period.
  const auto grace = std::chrono::milliseconds(Server::kShutdownGrace).count();
  server.advance(grace - 1);
  CHECK(stopped.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  server.advance(1);
  CHECK(stopped.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
}
