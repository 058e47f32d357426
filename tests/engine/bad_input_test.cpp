// Malformed frames, unknown messages and oversized frames get typed errors
// while the server goes on serving everyone else.
#include <catch2/catch.hpp>

#include <map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <thread>

#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
ServerOptions small_limits(const std::string& db) {
  auto options = options_for(db);
  options.limits.max_frame_bytes = 1024;
  options.limits.hard_frame_bytes = 64 * 1024;
  options.limits.max_bad_frames = 6;
  return options;
}

v1::Error error_of(WsClient& client) {
  auto reply = client.receive();
  REQUIRE(reply);
  INFO(reply->ShortDebugString());
  REQUIRE(reply->has_error());
  return reply->error();
}
}  // namespace

TEST_CASE("engine: bad frames get typed errors and the connection keeps working") {
  TempDir dir;
  RunningServer server(small_limits(dir.file("zonecall.db")));
  WsClient client(server.port());
  WsClient bystander(server.port(), WsClient::Mode::json);
  bystander.hello_on_duty("demo-z1-grid-2");

  SECTION("malformed protobuf") {
    client.send_raw(std::string("\xff\xff\xff\xff", 4), false);
    auto e = error_of(client);
    CHECK(e.code() == v1::BAD_REQUEST);
    CHECK(e.message().find("protobuf") != std::string::npos);
  }
  SECTION("malformed JSON") {
    client.send_raw("{\"hello\": {\"token\": ", true);
    auto e = error_of(client);
    CHECK(e.code() == v1::BAD_REQUEST);
    CHECK(e.message().find("JSON") != std::string::npos);
  }
  SECTION("malformed JSON with Chinese text: the error is one clean line (fuzz regression)") {
    // The parser's own message quotes the input cut at a byte count, which
    // split 很 and made the error invalid UTF-8.
    client.send_raw(R"({"requesdId":"7*,"feedback":{"incid:"很快 quick"}})", true);
    auto e = error_of(client);
    CHECK(e.code() == v1::BAD_REQUEST);
    CHECK(e.message().rfind("malformed JSON frame: ", 0) == 0);
    CHECK(e.message().find('\n') == std::string::npos);
  }
  SECTION("an unknown message type in JSON") {
    client.send_raw(R"({"requestId": "7", "launchRockets": {}})", true);
    CHECK(error_of(client).code() == v1::BAD_REQUEST);
  }
  SECTION("an unknown message type in protobuf (field 99)") {
    // request_id = 7, then field 99 as an empty length-delimited body.
    client.send_raw(std::string("\x08\x07\x9a\x06\x00", 5), false);
    auto e = error_of(client);
    CHECK(e.code() == v1::BAD_REQUEST);
    CHECK(e.message().find("unknown") != std::string::npos);
  }
  SECTION("an envelope with no body") {
    client.send_raw(R"({"requestId": "8"})", true);
    CHECK(error_of(client).code() == v1::BAD_REQUEST);
  }
  SECTION("a wrongly typed JSON field") {
    client.send_raw(R"({"report": {"severity": "APOCALYPTIC"}})", true);
    CHECK(error_of(client).code() == v1::BAD_REQUEST);
  }
  SECTION("an oversized frame") {
    client.send_raw(std::string(5000, 'x'), false);
    auto e = error_of(client);
    CHECK(e.code() == v1::TOO_LARGE);
    CHECK(e.message().find("1024") != std::string::npos);
  }
  SECTION("an oversized frame in JSON is answered in JSON") {
    WsClient json(server.port(), WsClient::Mode::json);
    json.send_raw(std::string(3000, ' '), true);
    CHECK(error_of(json).code() == v1::TOO_LARGE);
  }
  // The same connection still works afterwards, and so does everyone else.
  CHECK(client.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
  CHECK(client.request(report_msg("Z1", "sanitation")).has_ack());
  auto push = bystander.next_push();
  REQUIRE(push);
  CHECK(push->alert().reason() == v1::NEW);
}

TEST_CASE("engine: a text field beyond its limit is a BAD_REQUEST naming the field") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));  // default 64 KiB frames
  WsClient json(server.port(), WsClient::Mode::json);
  json.hello("demo-command");
  json.send_raw(R"({"requestId": "5", "report": {"zoneId": "Z1", "category": "noise", "description": ")" +
                    std::string(3000, 'x') + R"("}})",
                true);
  auto e = error_of(json);
  CHECK(e.code() == v1::BAD_REQUEST);
  CHECK(e.message().find("description") != std::string::npos);
  CHECK(count_rows(dir.file("zonecall.db")) == 0);
}

TEST_CASE("engine: repeated abuse closes the connection with policy_error") {
  TempDir dir;
  RunningServer server(small_limits(dir.file("zonecall.db")));
  WsClient abuser(server.port());
  for (int i = 0; i < 6; ++i) {
    abuser.send_raw("garbage", false);
  }
  int errors = 0;
  while (auto m = abuser.receive()) {
    CHECK(m->error().code() == v1::BAD_REQUEST);
    ++errors;
  }
  CHECK(errors == 6);
  CHECK(abuser.closed());
  CHECK(abuser.close_code() == 1008);  // policy_error
  CHECK(abuser.close_reason() == "too many bad frames");

  WsClient fine(server.port());
  CHECK(fine.hello("demo-command").role() == v1::COMMUNITY_COMMAND);
}

TEST_CASE("engine: a frame above the hard limit closes with 1009, others unaffected") {
  TempDir dir;
  RunningServer server(small_limits(dir.file("zonecall.db")));
  // By hand: a binary frame whose header announces 100 KiB (over the 64 KiB
  // hard limit), followed by only a little of it. The server refuses it on
  // the header alone. (Sending all 100 KiB races the close: unread bytes at
  // the server turn its close into a TCP reset on loopback.)
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket huge(io);
  huge.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  boost::asio::write(huge, boost::asio::buffer(std::string(
      "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")));
  boost::asio::streambuf head;
  boost::asio::read_until(huge, head, "\r\n\r\n");
  head.consume(head.size());  // nothing else was sent yet
  const unsigned char frame[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x90, 0x00,  // 102,400 bytes
                                 0, 0, 0, 0,                                     // mask key 0
                                 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
  boost::asio::write(huge, boost::asio::buffer(frame, sizeof frame));
  std::string received;
  char buf[256];
  boost::system::error_code ec;
  while (!ec) {
    received.append(buf, huge.read_some(boost::asio::buffer(buf), ec));
  }
  // A close frame: opcode 8, then the code 1009 (0x03F1), message too big.
  REQUIRE(received.size() >= 4);
  CHECK(static_cast<unsigned char>(received[0]) == 0x88);
  CHECK(static_cast<unsigned char>(received[2]) == 0x03);
  CHECK(static_cast<unsigned char>(received[3]) == 0xF1);

  WsClient fine(server.port());
  CHECK(fine.hello("demo-command").role() == v1::COMMUNITY_COMMAND);
}

TEST_CASE("engine: HTTP health endpoints and unknown paths") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  // A WebSocket upgrade to another path is refused.
  CHECK_THROWS(WsClient(server.port(), WsClient::Mode::binary, "/nope"));
}

TEST_CASE("engine: repeated wrong tokens are answered slowly, then the connection is closed") {
  TempDir dir;
  auto options = options_for(dir.file("zonecall.db"));
  options.limits.max_hello_failures = 3;
  options.limits.hello_failure_delay = std::chrono::milliseconds(100);
  RunningServer server(options);
  WsClient guesser(server.port());
  for (int failures = 1; failures <= 3; ++failures) {
    auto guess = hello_msg("demo-guess-" + std::to_string(failures));
    guess.set_request_id(WsClient::fresh_request_id());
    guesser.send(guess);
    // Answered only after failures × the delay: until then, a request sent
    // after the guess is answered first.
    CHECK(guesser.request(list_msg()).error().code() == v1::UNAUTHENTICATED);
    server.advance(100 * failures - 1);
    CHECK(guesser.request(list_msg()).error().code() == v1::UNAUTHENTICATED);
    CHECK(guesser.pushes_waiting() == 0);
    server.advance(1);
    auto reply = guesser.receive();
    REQUIRE(reply);
    CHECK(reply->request_id() == guess.request_id());
    CHECK(reply->error().code() == v1::UNAUTHENTICATED);
  }
  CHECK_FALSE(guesser.receive());
  CHECK(guesser.closed());
  CHECK(guesser.close_code() == 1008);
  CHECK(guesser.close_reason() == "too many failed sign-ins");
  // A right token on a new connection still works.
  WsClient staff(server.port());
  CHECK(staff.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
}

TEST_CASE("engine: a connection over its request rate gets RATE_LIMITED, others are unaffected") {
  TempDir dir;
  auto options = options_for(dir.file("zonecall.db"));
  options.limits.requests_per_second = 5;
  options.limits.request_burst = 5;
  RunningServer server(options);
  WsClient flood(server.port());
  // In no time at all, the burst is answered and the rest refused.
  auto send_and_count = [&flood](int requests) {
    for (int i = 0; i < requests; ++i) {
      flood.send(list_msg());
    }
    int limited = 0;
    for (int i = 0; i < requests; ++i) {
      auto m = flood.receive();
      REQUIRE(m);
      limited += m->has_error() && m->error().code() == v1::RATE_LIMITED ? 1 : 0;
    }
    return limited;  // the others were processed (UNAUTHENTICATED)
  };
  CHECK(send_and_count(30) == 25);
  // The bucket refills at 5 per second: 400 ms bring 2 more.
  server.advance(400);
  CHECK(send_and_count(5) == 3);
  server.advance(10'000);  // never beyond the burst
  CHECK(send_and_count(10) == 5);
  WsClient calm(server.port());
  CHECK(calm.hello("demo-command").role() == v1::COMMUNITY_COMMAND);
}

TEST_CASE("engine: an error about a frame that parsed echoes its request_id; one that did not has 0") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  WsClient client(server.port());
  auto m = report_msg("Z1", "sanitation");
  m.set_request_id(41);
  m.mutable_report()->set_description(std::string(2049, 'x'));
  client.send(m);
  auto too_long = client.receive();
  REQUIRE(too_long);
  CHECK(too_long->request_id() == 41);
  CHECK(too_long->error().message() == "zonecall.v1.Report.description is longer than 2048 bytes");
  // request_id 7, then a body of 5 bytes announced and missing.
  client.send_raw(std::string("\x08\x07\x9a\x06\x05", 5), false);
  auto broken = client.receive();
  REQUIRE(broken);
  CHECK(broken->request_id() == 0);
  CHECK(broken->error().code() == v1::BAD_REQUEST);
}

TEST_CASE("engine: RATE_LIMITED echoes the request_id of the request it dropped") {
  TempDir dir;
  auto options = options_for(dir.file("zonecall.db"));
  options.limits.requests_per_second = 5;
  options.limits.request_burst = 5;
  RunningServer server(options);
  WsClient staff(server.port());
  staff.hello("demo-z1-grid-1");
  // Pipelined writes (a duty change pushes nothing): every one gets exactly
  // one reply under its own id, the dropped ones too.
  std::map<std::uint64_t, int> replies;
  for (int i = 0; i < 20; ++i) {
    auto m = duty_msg(true);
    m.set_request_id(WsClient::fresh_request_id());
    replies[m.request_id()] = 0;
    staff.send(m);
  }
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto m = staff.receive();
    REQUIRE(m);
    INFO(m->ShortDebugString());
    CHECK((m->has_ack() || m->error().code() == v1::RATE_LIMITED));
    limited += m->has_error() ? 1 : 0;
    REQUIRE(replies.count(m->request_id()) == 1);
    ++replies[m->request_id()];
  }
  CHECK(limited == 16);  // beyond the burst of 5, of which the Hello took one
  for (const auto& [id, count] : replies) {
    CHECK(count == 1);
  }
}

TEST_CASE("engine: connections beyond the per-address limit are closed at once") {
  TempDir dir;
  auto options = options_for(dir.file("zonecall.db"));
  options.limits.max_connections_per_address = 3;
  RunningServer server(options);
  auto a = std::make_unique<WsClient>(server.port());
  WsClient b(server.port());
  WsClient c(server.port());
  CHECK_THROWS(WsClient(server.port()));  // the fourth: closed before the handshake
  CHECK(b.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
  a.reset();  // one leaves, so one more may come
  std::unique_ptr<WsClient> d;
  for (int attempt = 0; attempt < 100 && !d; ++attempt) {
    try {
      d = std::make_unique<WsClient>(server.port());
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the server has not seen the close yet
    }
  }
  REQUIRE(d);
  CHECK(d->hello("demo-command").role() == v1::COMMUNITY_COMMAND);
}
