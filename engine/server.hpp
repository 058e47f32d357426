#pragma once
// Wires one engine together: config, store, dispatcher, listener, and the
// io_context they run on. Used by `zonecall serve` and by the tests.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "engine/config/roster.hpp"
#include "engine/dispatcher.hpp"
#include "engine/net/limits.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/postgres/leader_lock.hpp"
#include "engine/time_source.hpp"
#include "sla/policy.hpp"

namespace zonecall {

namespace net {
class Listener;
struct SessionContext;
}  // namespace net
}  // namespace zonecall
namespace boost::asio::ssl {
class context;
}
namespace zonecall {

struct ServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;  // 0: any free port (tests)
  std::string db_path = "zonecall.db";  // or a PostgreSQL URI (--store)
  std::string pg_schema = StoreOptions::kDefaultPgSchema;  // --pg-schema
  v1::Config config;           // already parsed and validated
  bool synchronous_full = true;
  int busy_timeout_ms = 5000;  // how long a commit waits for a locked database
  std::int64_t max_db_pages = 0;  // 0: no cap on the database size
  std::size_t max_queued_writes = StoreOptions::kDefaultMaxQueuedWrites;
  net::Limits limits;
  // PEM files: with both, every connection is TLS (wss://, https://).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Without TLS the server listens only on a loopback address, unless this
  // says plain ws:// on the network is intended.
  bool insecure = false;
  // Serve on a timeline whose hash chain first breaks at this seq (the
  // operator has seen the break); any other break still stops start-up.
  std::optional<std::uint64_t> accept_broken_chain_at;
  // On PostgreSQL (several engines, one leader): the URL this engine tells
  // standbys' clients to use when it leads (--advertise-url); empty: the
  // listening address (ws:// or wss://, then /v1/ws).
  std::string advertise_url;
  // A leader whose lock session is silent this long loses it (--leader-lease-ms).
  std::chrono::milliseconds leader_lease{2000};
};

class Server {
 public:
  // How long each phase of a graceful stop may take: the commits in flight,
  // then the clients' close handshakes.
  static constexpr std::chrono::seconds kShutdownGrace{5};

  // Opens the store, records the policy version, recovers the state and
  // binds the port. Throws on failure (bad database, port in use). Runs on
  // the system's clocks, or on the given time source (tests: SimulatedTime).
  explicit Server(ServerOptions options);
  Server(ServerOptions options, TimeSource& time);
  ~Server();

  unsigned short port() const { return port_; }
  bool tls() const { return tls_ != nullptr; }
  std::uint32_t policy_version() const { return policies_.current().version(); }
  // The live state; read it only when run() is not running.
  const Dispatcher& dispatcher() const { return *dispatcher_; }
  // Serves until stop(); fires overdue deadlines first.
  void run();
  // Thread-safe. Stops accepting, lets in-flight commits finish and answer,
  // closes every client with service_restart, then run() returns.
  void stop();
  // Thread-safe (SIGHUP). Loads a new roster, topology and policy from the
  // file without dropping a connection; staff already signed in stay signed
  // in. A bad file is refused, the old config stays in force, and the error
  // (naming the line) is logged and returned.
  std::future<std::string> reload(const std::string& config_path);

 private:
  // Refuses a TLS half-configured, and plain ws:// off loopback unless asked.
  static ServerOptions check_transport(ServerOptions options);
  Server(ServerOptions options, TimeSource* time);
  // A graceful stop: each phase ends on its event (the last commit in flight
  // answered, the last client gone) or when its grace period runs out.
  void begin_shutdown();
  void close_sessions();
  void finish_shutdown();
  // Several engines on one PostgreSQL timeline: compete for the lead.
  void start_leader_lock();

  ServerOptions options_;
  boost::asio::io_context io_{1};
  RealTimeSource real_time_;
  TimeSource& time_;  // real_time_ unless the caller gave one
  Roster roster_;
  std::unique_ptr<TimelineStore> store_;
  sla::PolicyHistory policies_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<net::SessionContext> context_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::shared_ptr<net::Listener> listener_;
  std::unique_ptr<pg::LeaderLock> leader_lock_;  // PostgreSQL only
  unsigned short port_ = 0;
  enum class Shutdown { serving, finishing_commits, closing_sessions, done };
  Shutdown shutdown_ = Shutdown::serving;
  std::unique_ptr<Timer> grace_;
};

}  // namespace zonecall
