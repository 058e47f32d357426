// TLS: wss:// with a certificate the test makes itself, and the rule that
// plain ws:// stays on loopback unless --insecure says otherwise.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fstream>

#include "support/fixtures.hpp"
#include "support/tls_cert.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
ServerOptions tls_options(const TempDir& dir, const TlsFiles& files) {
  auto options = options_for(dir.file("zonecall.db"));
  options.tls_cert_file = files.cert;
  options.tls_key_file = files.key;
  return options;
}

// What a client that is not speaking TLS gets back from a TLS port: the
// connection ends without an HTTP answer.
std::string plain_http_to(unsigned short port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(request));
  std::string reply(256, '\0');
  boost::system::error_code ec;
  const auto n = socket.read_some(boost::asio::buffer(reply), ec);
  return ec ? std::string() : reply.substr(0, n);
}
}  // namespace

TEST_CASE("tls: a verified wss:// client signs in, reports and is acknowledged") {
  TempDir dir;
  const auto files = make_self_signed_certificate(dir.path().string());
  RunningServer server(tls_options(dir, files));
  REQUIRE(server.server().tls());

  WsClient grid(server.port(), WsClient::Mode::binary, "/v1/ws", files.cert);
  grid.hello("demo-z1-grid-1");
  auto reply = grid.request(report_msg("Z1", "sanitation"));
  REQUIRE(reply.has_ack());
  CHECK(reply.ack().incident_id() > 0);

  // The JSON mapping works the same over TLS.
  WsClient chief(server.port(), WsClient::Mode::json, "/v1/ws", files.cert);
  chief.hello("demo-z1-chief");
  auto view = chief.request(get_incident_msg(reply.ack().incident_id()));
  REQUIRE(view.has_incident());
  CHECK(view.incident().zone_id() == "Z1");
}

TEST_CASE("tls: plain clients get nothing from a TLS port, and TLS clients go on being served") {
  TempDir dir;
  const auto files = make_self_signed_certificate(dir.path().string());
  RunningServer server(tls_options(dir, files));

  CHECK_THROWS(WsClient(server.port()));  // a plain WebSocket handshake fails
  CHECK(plain_http_to(server.port()).find("HTTP/1.1") == std::string::npos);

  WsClient grid(server.port(), WsClient::Mode::binary, "/v1/ws", files.cert);
  CHECK(grid.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
}

TEST_CASE("tls: a client that trusts another certificate refuses the server") {
  TempDir dir;
  TempDir other;
  const auto files = make_self_signed_certificate(dir.path().string());
  const auto stranger = make_self_signed_certificate(other.path().string());
  RunningServer server(tls_options(dir, files));
  CHECK_THROWS(WsClient(server.port(), WsClient::Mode::binary, "/v1/ws", stranger.cert));
  // The server is unharmed by the failed handshake.
  WsClient grid(server.port(), WsClient::Mode::binary, "/v1/ws", files.cert);
  CHECK(grid.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
}

TEST_CASE("tls: a connection that never starts its TLS handshake is dropped after the timeout") {
  TempDir dir;
  const auto files = make_self_signed_certificate(dir.path().string());
  auto options = tls_options(dir, files);
  options.limits.handshake_timeout = std::chrono::seconds(1);
  RunningServer server(std::move(options));

  boost::asio::io_context io;
  boost::asio::ip::tcp::socket silent(io);
  silent.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  // Connections are accepted in order: once a later client is served, the
  // silent one's timeout is running.
  WsClient grid(server.port(), WsClient::Mode::binary, "/v1/ws", files.cert);
  CHECK(grid.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
  server.advance(999);
  char byte = 0;
  boost::system::error_code ec;
  silent.non_blocking(true);
  silent.read_some(boost::asio::buffer(&byte, 1), ec);
  CHECK(ec == boost::asio::error::would_block);  // still open, nothing sent
  silent.non_blocking(false);
  server.advance(1);
  silent.read_some(boost::asio::buffer(&byte, 1), ec);  // the server hangs up
  CHECK((ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset));
  CHECK(grid.request(list_msg()).has_incidents());  // the TLS client is still served
}

TEST_CASE("tls: the server refuses half a TLS configuration and unreadable files") {
  TempDir dir;
  const auto files = make_self_signed_certificate(dir.path().string());
  auto only_cert = options_for(dir.file("a.db"));
  only_cert.tls_cert_file = files.cert;
  CHECK_THROWS_WITH(Server(only_cert), Catch::Contains("both --tls-cert and --tls-key"));

  auto missing = options_for(dir.file("b.db"));
  missing.tls_cert_file = dir.file("nope.pem");
  missing.tls_key_file = files.key;
  CHECK_THROWS_WITH(Server(missing), Catch::Contains("--tls-cert " + dir.file("nope.pem")));

  auto wrong_key = options_for(dir.file("c.db"));
  std::ofstream(dir.file("junk-key.pem")) << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  wrong_key.tls_cert_file = files.cert;
  wrong_key.tls_key_file = dir.file("junk-key.pem");
  CHECK_THROWS_WITH(Server(wrong_key), Catch::Contains("--tls-key"));
}

TEST_CASE("tls: plain ws:// listens off loopback only when --insecure says so") {
  TempDir dir;
  auto exposed = options_for(dir.file("a.db"));
  exposed.address = "0.0.0.0";
  CHECK_THROWS_WITH(Server(exposed), Catch::Contains("refusing plain ws:// on 0.0.0.0"));

  exposed.insecure = true;
  RunningServer server(exposed);
  WsClient grid(server.port());  // 0.0.0.0 includes loopback
  CHECK(grid.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");

  // With TLS, any address is fine.
  const auto files = make_self_signed_certificate(dir.path().string());
  auto secured = options_for(dir.file("b.db"));
  secured.address = "0.0.0.0";
  secured.tls_cert_file = files.cert;
  secured.tls_key_file = files.key;
  RunningServer tls_server(secured);
  WsClient tls_grid(tls_server.port(), WsClient::Mode::binary, "/v1/ws", files.cert);
  CHECK(tls_grid.hello("demo-z1-grid-1").staff_id() == "z1-grid-1");
}
