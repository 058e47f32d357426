#include "engine/client/console.hpp"

#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "engine/client/commands.hpp"
#include "engine/printable.hpp"

namespace zonecall::client {

namespace asio = boost::asio;

namespace {
// At the end of input, once every request is answered, the pushes those
// requests caused (they follow their answers) still get printed: the client
// leaves after this long without a message, or this long at most.
constexpr std::chrono::milliseconds kQuietBeforeLeaving{250};
constexpr std::chrono::milliseconds kMostBeforeLeaving{2000};

// The site's time zone, or UTC where this machine's tzdata lacks it.
SiteTime site_time(const std::string& name) {
  try {
    return SiteTime(name.empty() ? kDefaultTimeZone : name);
  } catch (const std::invalid_argument&) {
    return SiteTime();
  }
}

}  // namespace

std::string Console::serialized(const v1::ClientMessage& m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

Console::Console(asio::io_context& io, const ClientOptions& options)
    : io_(io),
      work_(io.get_executor()),
      options_(options),
      urls_(parse_server_urls(options.urls)),
      tls_(asio::ssl::context::tls_client),
      backoff_(kFirstBackoff),
      retry_timer_(io),
      next_request_id_(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::system_clock::now().time_since_epoch())
                                                      .count()) *
                       1000),
      token_(options.token),
      linger_timer_(io) {
  if (options.ca_file.empty()) {
    tls_.set_default_verify_paths();
  } else {
    tls_.load_verify_file(options.ca_file);
  }
}

void Console::start() {
  give_up_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(options_.reconnect_s);
  if (!token_.empty()) {
    v1::ClientMessage hello;
    hello.mutable_hello()->set_token(token_);
    hello_request_ = fresh_id();
    hello.set_request_id(hello_request_);
    pending_[hello_request_] = serialized(hello);
  }
  connect(0);
}

void Console::on_message(const v1::ServerMessage& m) {
  const std::string& url = urls_[current_].text;
  if (m.has_welcome() && m.request_id() == hello_request_) {
    const auto& w = m.welcome();
    if (w.standby()) {
      return hop(next_after_welcome(urls_, current_, w),
                 url + " is a standby" + (w.leader_url().empty() ? "" : " (leader: " + printable(w.leader_url()) + ")"));
    }
    if (hops_ > 0) {
      print_local("connected to " + url);
      hops_ = 0;
    }
    pending_.erase(hello_request_);
    signed_in_ = true;
    site_ = site_time(w.time_zone());
    if (!cursor_held_) {
      cursor_ = w.last_seq();  // `tail` follows from now on
    }
    print(m);
    return became_ready();
  }
  // A server that became a standby after our Hello: the request was not
  // executed, so it stays pending for the next server.
  if (m.has_error() && m.error().code() == v1::UNAVAILABLE && m.error().message().rfind("standby:", 0) == 0 &&
      pending_.contains(m.request_id())) {
    return hop((current_ + 1) % urls_.size(), url + " is a " + printable(m.error().message()));
  }
  if (m.has_event()) {
    cursor_ = std::max(cursor_, m.event().seq());
    if (!tail_zone_.empty() && !event_in_zone(m.event())) {
      return;
    }
  }
  if (m.has_subscribed()) {
    cursor_ = std::max(cursor_, m.subscribed().caught_up_seq());
  }
  if (m.has_alert() && !tail_zone_.empty() && m.alert().incident().zone_id() != tail_zone_) {
    return;
  }
  if (m.has_error() && m.request_id() != 0) {
    exit_code_ = 1;  // scripted use: any refused request fails the run
  }
  print(m);
  pending_.erase(m.request_id());
  if (m.request_id() == subscribe_request_) {
    subscribe_request_ = 0;  // answered: a reconnect subscribes afresh
  }
  if (m.has_error() && m.request_id() == hello_request_ && (!signed_in_ || !ready_)) {
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

void Console::on_line(const std::string& line) {
  lines_.push_back(line);
  pump();
}

void Console::on_end_of_input() {
  end_of_input_ = true;
  pump();
}

void Console::pump() {
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
void Console::linger() {
  if (!lingering_) {
    lingering_ = true;
    leave_by_ = std::chrono::steady_clock::now() + kMostBeforeLeaving;
  }
  linger_timer_.expires_at(std::min(std::chrono::steady_clock::now() + kQuietBeforeLeaving, leave_by_));
  linger_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      quit();
    }
  });
}

void Console::execute(const std::string& line) {
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
      subscribe_request_ = 0;  // a new tail replaces the subscription
      return subscribe();
    case Command::Kind::request:
      break;
  }
  const std::uint64_t id = fresh_id();
  command.message.set_request_id(id);
  if (command.message.has_hello()) {
    hello_request_ = id;
    token_ = command.message.hello().token();
  }
  pending_[id] = serialized(command.message);
  // Before the first sign-in a typed Hello goes out at once; the rest wait
  // for a ready connection, then go out in became_ready().
  if (ready_ || (connected_ && command.message.has_hello())) {
    link_->send(pending_[id]);
  }
}

void Console::quit() {
  quitting_ = true;
  if (!pending_.empty() || closing_) {
    return;
  }
  retry_timer_.cancel();
  if (link_ && connected_) {
    closing_ = true;
    link_->close();  // on_end stops the io
    return;
  }
  if (link_) {
    link_->abandon();
  }
  io_.stop();
}

void Console::print(const v1::ServerMessage& m) {
  if (options_.json) {
    std::string json;
    google::protobuf::util::MessageToJsonString(m, &json);
    std::cout << json << std::endl;
  } else {
    std::cout << describe(m, site_) << std::endl;
  }
}

// Timeline events name an incident; its zone comes from its report.
bool Console::event_in_zone(const v1::TimelineEvent& e) {
  if (e.has_reported()) {
    zone_of_[e.incident_id()] = e.reported().zone_id();
  }
  auto it = zone_of_.find(e.incident_id());
  return it != zone_of_.end() && it->second == tail_zone_;
}

void Console::print_local(const std::string& text) {
  if (options_.json) {
    std::cerr << text << std::endl;
  } else {
    std::cout << text << std::endl;
  }
}

}  // namespace zonecall::client
