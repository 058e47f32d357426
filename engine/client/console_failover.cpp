// Console: which server to be connected to. Tries the URLs in order,
// follows a standby to its leader, reconnects with a back-off, and on
// reaching a leader sends again what the last connection left unanswered.
#include "engine/client/console.hpp"

namespace zonecall::client {

void Console::connect(std::size_t index) {
  current_ = index;
  link_ = Link::open(io_, urls_[index], tls_, *this);
}

void Console::on_open() {
  connected_ = true;
  if (!token_.empty()) {
    if (!pending_.contains(hello_request_)) {  // signed in before: again, on this connection
      v1::ClientMessage hello;
      hello.mutable_hello()->set_token(token_);
      hello_request_ = fresh_id();
      hello.set_request_id(hello_request_);
      pending_[hello_request_] = serialized(hello);
    }
    link_->send(pending_[hello_request_]);
    return;
  }
  if (hops_ > 0) {
    print_local("connected to " + urls_[current_].text);
    hops_ = 0;
  }
  became_ready();  // nobody to sign in as: this server will do
}

// A leader took us (or there is no token to ask with): send what waits.
void Console::became_ready() {
  ready_ = true;
  ever_ready_ = true;
  backoff_ = kFirstBackoff;
  give_up_at_ = std::chrono::steady_clock::time_point::max();
  for (const auto& [id, bytes] : pending_) {
    if (id != hello_request_ && id != subscribe_request_) {
      link_->send(bytes);  // unanswered when the last connection dropped: same id, answered once
    }
  }
  if (tailing_) {
    subscribe();
  }
  pump();
}

void Console::subscribe() {
  v1::ClientMessage m;
  m.mutable_subscribe()->set_after_seq(cursor_);
  subscribe_request_ = subscribe_request_ != 0 ? subscribe_request_ : fresh_id();
  m.set_request_id(subscribe_request_);
  pending_[subscribe_request_] = serialized(m);
  if (ready_) {
    cursor_held_ = true;
    link_->send(pending_[subscribe_request_]);
  }
}

void Console::on_end(const std::string& why, bool opened) {
  link_.reset();
  const bool was_ready = ready_;
  connected_ = ready_ = false;
  if (quitting_ && (closing_ || pending_.empty())) {
    io_.stop();
    return;
  }
  if (was_ready) {
    give_up_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(options_.reconnect_s);
  }
  const bool again = options_.reconnect_s > 0;
  print_local(urls_[current_].text + ": " + why + (again && opened ? "; reconnecting" : ""));
  retry((current_ + 1) % urls_.size());
}

void Console::hop(std::size_t next, const std::string& why) {
  print_local(why + "; trying " + urls_[next].text);
  if (link_) {
    link_->abandon();
    link_.reset();
  }
  connected_ = ready_ = false;
  retry(next);
}

void Console::retry(std::size_t next) {
  if (options_.reconnect_s == 0) {
    if (ever_ready_ || ++failed_tries_ >= urls_.size()) {
      exit_code_ = 1;
      io_.stop();
    } else {
      connect(next);
    }
    return;
  }
  if (std::chrono::steady_clock::now() >= give_up_at_) {
    print_local("no leader reached within " + std::to_string(options_.reconnect_s) + " s; giving up");
    exit_code_ = 1;
    io_.stop();
    return;
  }
  ++hops_;
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([this, next](boost::system::error_code ec) {
    if (!ec) {
      connect(next);
    }
  });
  backoff_ = std::min(backoff_ * 2, kMostBackoff);
}

}  // namespace zonecall::client
