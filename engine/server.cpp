#include "engine/server.hpp"

#include <boost/asio/post.hpp>

#include "engine/config/config.hpp"
#include "engine/log.hpp"
#include "engine/net/listener.hpp"
#include "engine/net/session.hpp"
#include "engine/store/postgres/pg.hpp"

namespace zonecall {

namespace {
// TLS 1.2 and later, with the certificate chain and key from PEM files.
std::unique_ptr<net::asio::ssl::context> make_tls_context(const ServerOptions& options) {
  namespace ssl = net::asio::ssl;
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  try {
    context->use_certificate_chain_file(options.tls_cert_file);
  } catch (const std::exception& e) {
    throw std::runtime_error("--tls-cert " + options.tls_cert_file +
                             ": not a readable PEM certificate chain (" + e.what() + ")");
  }
  try {
    context->use_private_key_file(options.tls_key_file, ssl::context::pem);
  } catch (const std::exception& e) {
    throw std::runtime_error("--tls-key " + options.tls_key_file +
                             ": not a readable PEM private key matching the certificate (" +
                             e.what() + ")");
  }
  return context;
}

// Where the timeline is, for the log: never a PostgreSQL URI, which may
// hold a password.
std::string store_location(const ServerOptions& options) {
  return pg::is_postgres_location(options.db_path)
             ? "PostgreSQL " + pg::describe(options.db_path) + ", schema " + options.pg_schema
             : options.db_path;
}
}  // namespace

Server::Server(ServerOptions options) : Server(std::move(options), nullptr) {}

Server::Server(ServerOptions options, TimeSource& time) : Server(std::move(options), &time) {}

Server::Server(ServerOptions options, TimeSource* time)
    : options_(check_transport(std::move(options))),
      time_(time != nullptr ? *time : real_time_),
      roster_(options_.config),
      store_(open_store(StoreOptions{options_.db_path, options_.synchronous_full,
                                     options_.busy_timeout_ms, options_.max_db_pages,
                                     options_.max_queued_writes, options_.pg_schema})) {
  if (!options_.tls_cert_file.empty()) {
    tls_ = make_tls_context(options_);  // before recovery: a bad file fails fast
  }
  const auto version =
      store_->record_policy_at_startup(config::policy_fingerprint(options_.config), time_.now());
  // Every version the timeline was written under judges its own incidents.
  for (const auto& [v, fingerprint] : store_->source().policy_versions()) {
    policies_.add(config::policy_from_fingerprint(fingerprint, v), false);
  }
  policies_.add(sla::Policy::from_config(options_.config, version), true);
  dispatcher_ = std::make_unique<Dispatcher>(
      io_, *store_, roster_, policies_, time_,
      SignInLimits{options_.limits.max_hello_failures, options_.limits.hello_failure_delay});
  const bool several_engines = pg::is_postgres_location(options_.db_path);
  dispatcher_->recover(options_.accept_broken_chain_at, several_engines);
  store_->start();
  context_ = std::make_unique<net::SessionContext>(net::SessionContext{
      .handler = *dispatcher_, .io = io_, .time = time_, .limits = options_.limits, .tls = tls_.get()});
  context_->metrics = [this] {
    std::string out =
        "# HELP zonecall_open_connections Open connections, signed in or not.\n"
        "# TYPE zonecall_open_connections gauge\n"
        "zonecall_open_connections " + std::to_string(context_->connections) + "\n";
    dispatcher_->render_metrics(out);
    store_->render_metrics(out);
    return out;
  };
  const net::tcp::endpoint endpoint(net::asio::ip::make_address(options_.address), options_.port);
  listener_ = std::make_shared<net::Listener>(io_, endpoint, *context_);
  port_ = listener_->port();
  if (several_engines) {
    start_leader_lock();
  }
  log::info("server.listening", {{"address", options_.address},
                                 {"port", std::to_string(port_)},
                                 {"tls", tls_ ? "on" : "off"},
                                 {"db", store_location(options_)},
                                 {"policy_version", std::to_string(version)}});
}

void Server::start_leader_lock() {
  const std::string holder =
      !options_.advertise_url.empty()
          ? options_.advertise_url
          : std::string(tls_ ? "wss://" : "ws://") + options_.address + ":" + std::to_string(port_) + "/v1/ws";
  dispatcher_->give_up_lock = [this] { leader_lock_->release(); };
  dispatcher_->on_step_down = [this] {
    for (auto& [id, weak] : context_->live) {
      if (auto session = weak.lock()) {
        session->close_for_restart();
      }
    }
  };
  // The lock's thread tells the io thread; the dispatcher does the rest.
  leader_lock_ = std::make_unique<pg::LeaderLock>(
      pg::LeaderLockOptions{options_.db_path, options_.pg_schema, options_.leader_lease},
      pg::LeaderLock::Events{
          [this, holder] { boost::asio::post(io_, [this, holder] { dispatcher_->take_over(holder); }); },
          [this](const std::string& why) {
            log::warn("leader.lock_lost", {{"error", why}});
            boost::asio::post(io_, [this, why] { dispatcher_->lock_lost(why); });
          },
          [this](const std::string& url) {
            boost::asio::post(io_, [this, url] { dispatcher_->leader_is(url); });
          }});
}

ServerOptions Server::check_transport(ServerOptions options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    throw std::invalid_argument("TLS needs both --tls-cert and --tls-key");
  }
  boost::system::error_code ec;
  const auto address = net::asio::ip::make_address(options.address, ec);
  if (ec) {
    throw std::invalid_argument("'" + options.address + "' is not an IP address to listen on");
  }
  // Tokens travel in Hello: in the clear they are safe only on this machine.
  if (options.tls_cert_file.empty() && !address.is_loopback() && !options.insecure) {
    throw std::invalid_argument(
        "refusing plain ws:// on " + options.address +
        ", which is not a loopback address: give --tls-cert and --tls-key, or pass --insecure "
        "if a proxy in front of zonecall terminates TLS");
  }
  return options;
}

Server::~Server() {
  leader_lock_.reset();  // its thread posts to io_
  // The writer's completions post to io_; stop it before anything they use goes.
  store_->stop();
}

void Server::run() {
  listener_->run();
  io_.run();
  store_->stop();
  log::info("server.stopped");
}

void Server::stop() {
  boost::asio::post(io_, [this] { begin_shutdown(); });
}

std::future<std::string> Server::reload(const std::string& config_path) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto result = done->get_future();
  auto refuse = [config_path, done](const std::string& error) {
    log::error("config.reload_refused", {{"file", config_path}, {"error", error}});
    done->set_value(error);
  };
  boost::asio::post(io_, [this, config_path, done, refuse] {
    std::shared_ptr<v1::Config> config;
    std::string fingerprint;
    try {
      config = std::make_shared<v1::Config>(config::load_file(config_path));
      fingerprint = config::policy_fingerprint(*config);
    } catch (const std::exception& e) {
      refuse(e.what());
      return;
    }
    // The new config applies once its policy version is recorded; the
    // recording goes through the store's queue, never blocking this thread.
    auto apply = [this, config_path, done, refuse, config](std::uint32_t version, const StoreError& error) {
      if (error) {
        refuse(error.message());
        return;
      }
      try {
        policies_.add(sla::Policy::from_config(*config, version), true);
        roster_ = Roster(*config);
      } catch (const std::exception& e) {
        refuse(e.what());
        return;
      }
      dispatcher_->roster_changed();
      options_.config = std::move(*config);
      log::info("config.reloaded", {{"file", config_path}, {"policy_version", std::to_string(version)}});
      done->set_value("");
    };
    store_->record_policy(fingerprint, time_.now(),
                          [this, apply](std::uint32_t version, const StoreError& error) {
                            boost::asio::post(io_, [apply, version, error] { apply(version, error); });
                          });
  });
  return result;
}

void Server::begin_shutdown() {
  if (shutdown_ != Shutdown::serving) {
    return;
  }
  shutdown_ = Shutdown::finishing_commits;
  log::info("server.stopping");
  listener_->stop();
  dispatcher_->stop();  // new commands get UNAVAILABLE; commits in flight finish
  grace_ = time_.make_timer(io_, [this] {
    if (shutdown_ == Shutdown::finishing_commits) {
      close_sessions();
    } else {
      finish_shutdown();
    }
  });
  grace_->arm_after(kShutdownGrace);
  dispatcher_->on_commits_drained([this] { close_sessions(); });
}

void Server::close_sessions() {
  if (shutdown_ != Shutdown::finishing_commits) {
    return;  // the grace period ran out first
  }
  shutdown_ = Shutdown::closing_sessions;
  grace_->arm_after(kShutdownGrace);
  context_->on_last_session_ended = [this] { finish_shutdown(); };
  for (auto& [id, weak] : context_->live) {
    if (auto session = weak.lock()) {
      session->close_for_restart();
    }
  }
  if (context_->live.empty()) {
    finish_shutdown();
  }
}

void Server::finish_shutdown() {
  if (shutdown_ != Shutdown::closing_sessions) {
    return;
  }
  shutdown_ = Shutdown::done;
  grace_->cancel();
  leader_lock_.reset();  // every commit is answered: a standby may lead now
  io_.stop();
}

}  // namespace zonecall
