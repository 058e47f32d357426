#pragma once
// The console's side of a `zonecall client` run: typed lines in, server
// messages out, and which server to be connected to. It survives its
// connections: after a drop it reconnects (to the leader, following
// standbys), signs in again, sends again what was unanswered (same request
// ids, so a write is answered once) and resubscribes from its cursor.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "engine/client/client.hpp"
#include "engine/client/link.hpp"
#include "engine/client/server_list.hpp"
#include "engine/site_time.hpp"

namespace zonecall::client {

class Console : private LinkHandler {
 public:
  // Between tries: short, so a failover costs little, doubling so a server
  // that is down is not hammered; back to the first after a sign-in.
  static constexpr std::chrono::milliseconds kFirstBackoff{200};
  static constexpr std::chrono::milliseconds kMostBackoff{2000};

  Console(boost::asio::io_context& io, const ClientOptions& options);
  void start();
  // Called on the io thread for each typed line. Like a shell, a line is
  // sent once the previous request has its answer, so output follows input.
  void on_line(const std::string& line);
  // End of input: leave once every request is answered, unless tailing.
  void on_end_of_input();
  int exit_code() const { return exit_code_; }

 private:
  void on_open() override;
  void on_message(const v1::ServerMessage& m) override;
  void on_end(const std::string& why, bool opened) override;

  void connect(std::size_t index);
  void became_ready();
  void hop(std::size_t next, const std::string& why);
  void retry(std::size_t next);
  void subscribe();
  void pump();
  void linger();
  void execute(const std::string& line);
  void quit();
  void print(const v1::ServerMessage& m);
  bool event_in_zone(const v1::TimelineEvent& e);
  void print_local(const std::string& text);
  std::uint64_t fresh_id() { return ++next_request_id_; }
  static std::string serialized(const v1::ClientMessage& m);

  boost::asio::io_context& io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  const ClientOptions& options_;
  std::vector<ServerUrl> urls_;
  boost::asio::ssl::context tls_;
  std::shared_ptr<Link> link_;
  std::size_t current_ = 0;
  bool connected_ = false;     // link_ is open
  bool ready_ = false;         // ...and signed in to a leader (or no token to sign in with)
  bool ever_ready_ = false;
  std::size_t failed_tries_ = 0;  // with reconnect_s 0
  int hops_ = 0;                  // tries since the last ready connection
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point give_up_at_;
  boost::asio::steady_timer retry_timer_;

  std::deque<std::string> lines_;  // typed, not yet sent
  bool end_of_input_ = false;
  std::map<std::uint64_t, std::string> pending_;  // unanswered requests, serialized
  std::map<std::uint64_t, std::string> zone_of_;
  // Request ids must be new for this staff member even across runs (a reused
  // one is a retry): start from the clock.
  std::uint64_t next_request_id_;
  std::string token_;                // the last Hello's, to sign in again
  std::uint64_t hello_request_ = 0;  // 0 until a Hello is sent
  std::uint64_t subscribe_request_ = 0;  // the unanswered Subscribe, if any
  bool signed_in_ = false;
  std::uint64_t cursor_ = 0;    // the newest seq received (or Welcome.last_seq before a Subscribe)
  bool cursor_held_ = false;    // a Subscribe was sent from cursor_: later Welcomes leave it
  std::string tail_zone_;
  bool tailing_ = false;
  SiteTime site_;  // UTC until the Welcome names the site's zone
  bool quitting_ = false;
  bool closing_ = false;
  boost::asio::steady_timer linger_timer_;
  bool lingering_ = false;
  std::chrono::steady_clock::time_point leave_by_;
  int exit_code_ = 0;
};

}  // namespace zonecall::client
