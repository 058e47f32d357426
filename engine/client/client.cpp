#include "engine/client/client.hpp"

#include <google/protobuf/util/json_util.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <iostream>
#include <regex>
#include <set>
#include <thread>

#include "engine/client/commands.hpp"
#include "engine/net/beast.hpp"
#include "engine/printable.hpp"

namespace zonecall::client {

using namespace zonecall::net;

namespace {

// At the end of input, once every request is answered, the pushes those
// requests caused (they follow their answers) still get printed: the client
// leaves after this long without a message, or this long at most.
constexpr std::chrono::milliseconds kQuietBeforeLeaving{250};
constexpr std::chrono::milliseconds kMostBeforeLeaving{2000};

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;
};

Url parse_url(const std::string& url) {
  static const std::regex form(R"(^(wss?)://([^/:]+):([0-9]+)(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, form)) {
    throw std::invalid_argument("--url wants ws://HOST:PORT/v1/ws or wss://..., not '" + url + "'");
  }
  return {m[1] == "wss", m[2], m[3], m[4].matched ? std::string(m[4]) : "/v1/ws"};
}

// The site's time zone, or UTC where this machine's tzdata lacks it.
SiteTime site_time(const std::string& name) {
  try {
    return SiteTime(name.empty() ? kDefaultTimeZone : name);
  } catch (const std::invalid_argument&) {
    return SiteTime();
  }
}

// One connection: reads on the io thread, writes queued one at a time;
// stdin is read on the caller's thread and handed over by post().
template <class Stream>
class Session {
 public:
  Session(asio::io_context& io, Stream stream, const ClientOptions& options)
      : io_(io), ws_(std::move(stream)), options_(options), linger_timer_(io) {}

  void start() {
    ws_.binary(true);
    read();
  }
  websocket::stream<Stream>& ws() { return ws_; }

  // Called on the io thread for each typed line. Like a shell, a line is
  // sent once the previous request has its answer, so output follows input.
  void on_line(const std::string& line) {
    lines_.push_back(line);
    pump();
  }

  // End of input: leave once every request is answered, unless tailing.
  void on_end_of_input() {
    end_of_input_ = true;
    pump();
  }
  int exit_code() const { return exit_code_; }

 private:
  void pump() {
    while (pending_.empty() && !lines_.empty() && !quitting_) {
      const std::string line = std::move(lines_.front());
      lines_.pop_front();
      execute(line);
    }
    if (end_of_input_ && lines_.empty() && !tailing_ && pending_.empty() && !quitting_) {
      linger();
    }
  }

  // Leaves after a quiet moment (see kQuietBeforeLeaving); every message
  // that arrives meanwhile starts the quiet time again.
  void linger() {
    if (!lingering_) {
      lingering_ = true;
      leave_by_ = std::chrono::steady_clock::now() + kMostBeforeLeaving;
    }
    linger_timer_.expires_at(std::min(std::chrono::steady_clock::now() + kQuietBeforeLeaving, leave_by_));
    linger_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) {
        quit();
      }
    });
  }

  void execute(const std::string& line) {
    Command command;
    try {
      command = parse_command(line);
    } catch (const std::exception& e) {
      print_local(e.what());
      return;
    }
    switch (command.kind) {
      case Command::Kind::nothing:
        return;
      case Command::Kind::help:
        print_local(kHelp);
        return;
      case Command::Kind::quit:
        quit();
        return;
      case Command::Kind::tail:
        tail_zone_ = command.zone;
        tailing_ = true;
        command.message.mutable_subscribe()->set_after_seq(last_seq_);
        break;
      case Command::Kind::request:
        break;
    }
    command.message.set_request_id(++next_request_id_);
    pending_.insert(next_request_id_);
    if (command.message.has_hello()) {
      hello_request_ = next_request_id_;
    }
    std::string bytes;
    command.message.SerializeToString(&bytes);
    send(std::move(bytes));
  }

  void quit() {
    quitting_ = true;
    if (pending_.empty() && !closing_) {
      closing_ = true;
      ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
    }
  }

  void send(std::string bytes) {
    outbox_.push_back(std::move(bytes));
    if (outbox_.size() == 1) {
      write_next();
    }
  }
  void write_next() {
    ws_.async_write(asio::buffer(outbox_.front()), [this](beast::error_code ec, std::size_t) {
      if (ec) {
        return;  // the read side reports the end
      }
      outbox_.pop_front();
      if (!outbox_.empty()) {
        write_next();
      }
    });
  }

  void read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        if (!quitting_) {
          print_local("connection ended: " + ec.message() +
                      (ws_.reason().reason.empty() ? "" : " (" + printable(ws_.reason().reason.c_str()) + ")"));
          exit_code_ = 1;
        }
        io_.stop();
        return;
      }
      v1::ServerMessage m;
      const auto data = buffer_.cdata();
      if (m.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
        on_message(m);
      }
      buffer_.consume(buffer_.size());
      read();
    });
  }

  void on_message(const v1::ServerMessage& m) {
    if (m.has_welcome()) {
      last_seq_ = m.welcome().last_seq();
      signed_in_ = true;
      site_ = site_time(m.welcome().time_zone());
    }
    if (m.has_event()) {
      last_seq_ = std::max(last_seq_, m.event().seq());
      if (!tail_zone_.empty() && !event_in_zone(m.event())) {
        return;
      }
    }
    if (m.has_alert() && !tail_zone_.empty() && m.alert().incident().zone_id() != tail_zone_) {
      return;
    }
    if (m.has_error() && m.request_id() != 0) {
      exit_code_ = 1;  // scripted use: any refused request fails the run
    }
    if (options_.json) {
      std::string json;
      google::protobuf::util::MessageToJsonString(m, &json);
      std::cout << json << std::endl;
    } else {
      std::cout << describe(m, site_) << std::endl;
    }
    pending_.erase(m.request_id());
    if (m.has_error() && hello_request_ != 0 && m.request_id() == hello_request_ && !signed_in_) {
      lines_.clear();  // every further command would be refused too
      quit();
    } else if (quitting_ && pending_.empty()) {
      quit();
    } else if (lingering_) {
      linger();
    } else {
      pump();
    }
  }

  // Timeline events name an incident; its zone comes from its report.
  bool event_in_zone(const v1::TimelineEvent& e) {
    if (e.has_reported()) {
      zone_of_[e.incident_id()] = e.reported().zone_id();
    }
    auto it = zone_of_.find(e.incident_id());
    return it != zone_of_.end() && it->second == tail_zone_;
  }

  void print_local(const std::string& text) {
    if (options_.json) {
      std::cerr << text << std::endl;
    } else {
      std::cout << text << std::endl;
    }
  }

  asio::io_context& io_;
  websocket::stream<Stream> ws_;
  const ClientOptions& options_;
  beast::flat_buffer buffer_;
  std::deque<std::string> outbox_;
  std::deque<std::string> lines_;  // typed, not yet sent
  bool end_of_input_ = false;
  std::set<std::uint64_t> pending_;
  std::map<std::uint64_t, std::string> zone_of_;
  // Request ids must be new for this staff member even across runs (a reused
  // one is a retry): start from the clock.
  std::uint64_t next_request_id_ =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) *
      1000;
  std::uint64_t last_seq_ = 0;
  std::string tail_zone_;
  SiteTime site_;  // UTC until the Welcome names the site's zone
  bool tailing_ = false;
  bool quitting_ = false;
  bool closing_ = false;
  std::uint64_t hello_request_ = 0;  // 0 until a Hello is sent
  bool signed_in_ = false;
  asio::steady_timer linger_timer_;
  bool lingering_ = false;
  std::chrono::steady_clock::time_point leave_by_;
  int exit_code_ = 0;
};

template <class Stream>
int serve_terminal(asio::io_context& io, Session<Stream>& session, const ClientOptions& options) {
  session.start();
  if (!options.token.empty()) {
    session.on_line("hello " + options.token);
  }
  // stdin may be a terminal, a pipe or a file; a plain thread reads it all.
  std::thread input([&io, &session] {
    for (std::string line; std::getline(std::cin, line);) {
      asio::post(io, [&session, line] { session.on_line(line); });
    }
    asio::post(io, [&session] { session.on_end_of_input(); });
  });
  input.detach();  // blocked in getline when the server ends the session
  io.run();
  return session.exit_code();
}

}  // namespace

int run_client(const ClientOptions& options) {
  const Url url = parse_url(options.url);
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(url.host, url.port);
  const std::string host = url.host + ":" + url.port;
  if (!url.tls) {
    beast::tcp_stream stream(io);
    stream.connect(endpoints);
    Session<beast::tcp_stream> session(io, std::move(stream), options);
    session.ws().handshake(host, url.path);
    return serve_terminal(io, session, options);
  }
  asio::ssl::context tls(asio::ssl::context::tls_client);
  if (options.ca_file.empty()) {
    tls.set_default_verify_paths();
  } else {
    tls.load_verify_file(options.ca_file);
  }
  TlsStream stream(io, tls);
  stream.set_verify_mode(asio::ssl::verify_peer);
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
  beast::get_lowest_layer(stream).connect(endpoints);
  stream.handshake(asio::ssl::stream_base::client);
  Session<TlsStream> session(io, std::move(stream), options);
  session.ws().handshake(host, url.path);
  return serve_terminal(io, session, options);
}

}  // namespace zonecall::client
