#include "ws_client.hpp"

#include <google/protobuf/util/json_util.h>

#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "engine/net/beast.hpp"

namespace zonecall::testing {

using namespace zonecall::net;

struct WsClient::Impl {
  asio::io_context io;
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  // Exactly one of the two is open.
  std::optional<websocket::stream<beast::tcp_stream>> plain;
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> tls;
  beast::flat_buffer buffer;

  template <class F>
  decltype(auto) with_ws(F&& f) {
    if (tls) {
      return f(*tls);
    }
    return f(*plain);
  }
};

WsClient::WsClient(unsigned short port, Mode mode, const std::string& path)
    : WsClient(port, mode, path, std::string()) {}

WsClient::WsClient(unsigned short port, Mode mode, const std::string& path,
                   const std::string& trusted_cert_file)
    : impl_(std::make_unique<Impl>()), mode_(mode) {
  const std::string host = "127.0.0.1";
  const tcp::endpoint endpoint(asio::ip::make_address(host), port);
  if (trusted_cert_file.empty()) {
    impl_->plain.emplace(impl_->io);
  } else {
    // Verify the server against the given certificate, as a browser would
    // against its trust store, including the address it was issued for.
    impl_->ssl.load_verify_file(trusted_cert_file);
    impl_->tls.emplace(impl_->io, impl_->ssl);
    impl_->tls->next_layer().set_verify_mode(asio::ssl::verify_peer);
    impl_->tls->next_layer().set_verify_callback(asio::ssl::host_name_verification(host));
  }
  impl_->with_ws([&](auto& ws) {
    auto& lowest = beast::get_lowest_layer(ws);
    lowest.expires_after(kTimeout);
    lowest.connect(endpoint);
    if constexpr (!std::is_same_v<std::decay_t<decltype(ws.next_layer())>, beast::tcp_stream>) {
      ws.next_layer().handshake(asio::ssl::stream_base::client);
    }
    lowest.expires_never();
    ws.handshake(host + ":" + std::to_string(port), path);
    ws.binary(mode == Mode::binary);
  });
}

WsClient::~WsClient() {
  beast::error_code ec;
  impl_->with_ws([&](auto& ws) { beast::get_lowest_layer(ws).socket().close(ec); });
}

void WsClient::send_in(Mode mode, v1::ClientMessage message) {
  std::string bytes;
  if (mode == Mode::binary) {
    message.SerializeToString(&bytes);
  } else {
    google::protobuf::util::MessageToJsonString(message, &bytes);
  }
  request_was_text_[message.request_id()] = mode == Mode::json;
  send_raw(bytes, mode == Mode::json);
}

void WsClient::send_raw(std::string_view bytes, bool text) {
  mixed_ = mixed_ || (text != (mode_ == Mode::json));
  last_sent_text_ = text;
  impl_->with_ws([&](auto& ws) {
    ws.text(text);
    ws.write(asio::buffer(bytes.data(), bytes.size()));
    ws.binary(mode_ == Mode::binary);
  });
}

std::optional<v1::ServerMessage> WsClient::receive(std::chrono::milliseconds timeout) {
  if (closed_) {
    return std::nullopt;
  }
  return impl_->with_ws([&](auto& ws) -> std::optional<v1::ServerMessage> {
    impl_->buffer.clear();
    bool done = false;
    beast::error_code result;
    ws.async_read(impl_->buffer, [&](beast::error_code ec, std::size_t) {
      done = true;
      result = ec;
    });
    impl_->io.restart();
    impl_->io.run_for(timeout);
    if (!done) {
      // Give up on this connection: a test that waits this long has failed.
      beast::error_code ignored;
      beast::get_lowest_layer(ws).socket().close(ignored);
      impl_->io.restart();
      impl_->io.run_for(std::chrono::milliseconds(100));
      closed_ = true;
      timed_out_ = true;
      return std::nullopt;
    }
    if (result) {
      closed_ = true;
      close_code_ = ws.reason().code;
      close_reason_ = std::string(ws.reason().reason.c_str());
      return std::nullopt;
    }
    const auto data = impl_->buffer.cdata();
    const std::string bytes(static_cast<const char*>(data.data()), data.size());
    v1::ServerMessage m;
    const bool ok = ws.got_text() ? google::protobuf::util::JsonStringToMessage(bytes, &m).ok()
                                  : m.ParseFromString(bytes);
    if (!ok) {
      throw std::runtime_error("the server sent an unparsable message");
    }
    auto asked = request_was_text_.find(m.request_id());
    const bool expect_text = m.request_id() != 0 && asked != request_was_text_.end()
                                 ? asked->second
                                 : last_sent_text_;
    const bool checkable = m.request_id() != 0 || !mixed_;
    if (checkable && expect_text != ws.got_text()) {
      throw std::runtime_error("the server answered in the other encoding");
    }
    return m;
  });
}

v1::ServerMessage WsClient::request(v1::ClientMessage message) {
  if (message.request_id() == 0) {
    message.set_request_id(fresh_request_id());
  }
  const auto id = message.request_id();
  send(std::move(message));
  for (;;) {
    auto m = receive();
    if (!m) {
      throw std::runtime_error("no reply to request " + std::to_string(id));
    }
    if (m->request_id() == id) {
      return *m;
    }
    pushes_.push_back(std::move(*m));
  }
}

std::optional<v1::ServerMessage> WsClient::next_push(std::chrono::milliseconds timeout) {
  if (!pushes_.empty()) {
    auto m = std::move(pushes_.front());
    pushes_.pop_front();
    return m;
  }
  return receive(timeout);
}

v1::Welcome WsClient::hello(const std::string& token) {
  auto reply = request(hello_msg(token));
  if (!reply.has_welcome()) {
    throw std::runtime_error("hello refused: " + reply.ShortDebugString());
  }
  return reply.welcome();
}

std::uint64_t WsClient::fresh_request_id() {
  // Seeded from the clock, so runs against one database do not collide either.
  static std::atomic<std::uint64_t> next{static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count())};
  return ++next;
}

v1::Welcome WsClient::hello_on_duty(const std::string& token) {
  auto welcome = hello(token);
  auto reply = request(duty_msg(true));
  if (!reply.has_ack()) {
    throw std::runtime_error("could not go on duty: " + reply.ShortDebugString());
  }
  return welcome;
}

HttpReply http_get(unsigned short port, const std::string& target) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(WsClient::kTimeout);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {static_cast<int>(response.result_int()),
          std::string(response[http::field::content_type]), response.body()};
}

v1::ClientMessage duty_msg(bool on_duty) {
  v1::ClientMessage m;
  m.mutable_set_duty()->set_on_duty(on_duty);
  return m;
}

v1::ClientMessage subscribe_msg(std::uint64_t after_seq) {
  v1::ClientMessage m;
  m.mutable_subscribe()->set_after_seq(after_seq);
  return m;
}

v1::ClientMessage zone_call_msg(std::uint64_t incident_id, const std::string& department,
                                const std::string& reason) {
  v1::ClientMessage m;
  auto* c = m.mutable_zone_call();
  c->set_incident_id(incident_id);
  c->set_department_id(department);
  c->set_reason(reason);
  return m;
}

v1::ClientMessage accept_msg(std::uint64_t incident_id) {
  v1::ClientMessage m;
  m.mutable_department_accept()->set_incident_id(incident_id);
  return m;
}

v1::ClientMessage on_site_msg(std::uint64_t incident_id) {
  v1::ClientMessage m;
  m.mutable_department_on_site()->set_incident_id(incident_id);
  return m;
}

v1::ClientMessage decline_msg(std::uint64_t incident_id, const std::string& reason) {
  v1::ClientMessage m;
  m.mutable_department_decline()->set_incident_id(incident_id);
  m.mutable_department_decline()->set_reason(reason);
  return m;
}

v1::ClientMessage hello_msg(const std::string& token) {
  v1::ClientMessage m;
  m.mutable_hello()->set_token(token);
  return m;
}

v1::ClientMessage report_msg(const std::string& zone, const std::string& category,
                             v1::Severity severity) {
  v1::ClientMessage m;
  auto* r = m.mutable_report();
  r->set_zone_id(zone);
  r->set_category(category);
  r->set_severity(severity);
  r->set_location("compound C1, building 3");
  r->set_description("test incident");
  return m;
}

v1::ClientMessage discover_msg(std::uint64_t incident_id, const std::string& note) {
  v1::ClientMessage m;
  m.mutable_discover()->set_incident_id(incident_id);
  m.mutable_discover()->set_note(note);
  return m;
}

v1::ClientMessage respond_msg(std::uint64_t incident_id, const std::string& note) {
  v1::ClientMessage m;
  m.mutable_respond()->set_incident_id(incident_id);
  m.mutable_respond()->set_note(note);
  return m;
}

v1::ClientMessage resolve_msg(std::uint64_t incident_id, const std::string& note) {
  v1::ClientMessage m;
  m.mutable_resolve()->set_incident_id(incident_id);
  m.mutable_resolve()->set_note(note);
  return m;
}

v1::ClientMessage get_incident_msg(std::uint64_t incident_id) {
  v1::ClientMessage m;
  m.mutable_get_incident()->set_incident_id(incident_id);
  return m;
}

v1::ClientMessage list_msg(const std::string& zone) {
  v1::ClientMessage m;
  m.mutable_list_incidents()->set_zone_id(zone);
  return m;
}

}  // namespace zonecall::testing
