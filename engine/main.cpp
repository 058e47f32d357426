// zonecall: serve | replay | check-config | print-default-config | hash-token
#include <boost/asio/signal_set.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/audit/audit.hpp"
#include "engine/cli_args.hpp"
#include "engine/config/config.hpp"
#include "engine/log.hpp"
#include "engine/server.hpp"
#include "engine/client/client.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/postgres/pg.hpp"
#include "engine/token.hpp"
#include "sla/replay.hpp"

namespace {

using namespace zonecall;
using namespace zonecall::cli;

constexpr const char* kUsage = R"(zonecall: real-time incident dispatch with 1/5/15 SLA clocks

usage:
  zonecall serve [--config FILE] [--db PATH | --store URI [--pg-schema NAME]]
                 [--listen HOST:PORT]
                 [--synchronous full|normal] [--max-frame-bytes N]
                 [--max-send-queue-bytes N] [--idle-timeout-s N] [--max-db-mb N]
                 [--max-queued-writes N]
                 [--handshake-timeout-s N] [--requests-per-second N]
                 [--max-hello-failures N] [--hello-failure-delay-ms N]
                 [--max-connections N] [--max-connections-per-address N]
                 [--tls-cert PEM --tls-key PEM] [--insecure]
                 [--accept-broken-chain SEQ] [--log-level debug|info|warn|error]
                 [--advertise-url URL] [--leader-lease-ms N]
      Serve WebSocket clients at ws://HOST:PORT/v1/ws (default 127.0.0.1:8080,
      database ./zonecall.db, the embedded Jincheng topology). With a
      certificate and key, wss:// instead. Plain ws:// listens only on a
      loopback address unless --insecure is given. Refuses to start on a
      timeline whose hash chain is broken, naming the first broken seq;
      --accept-broken-chain SEQ serves on it if it first breaks exactly there.
      --store postgres://... keeps the timeline in PostgreSQL instead, in the
      schema --pg-schema (default public, created if missing; one street
      office per schema); --synchronous and --max-db-mb are SQLite's only.
      Any number of engines may serve one PostgreSQL timeline: one leads
      (writes, deadlines), the others stand by and take over when its
      database session ends or it is silent for --leader-lease-ms (default
      2000). --advertise-url ws://... is where clients are told the leader is
      (default: the listening address).
  zonecall replay [--db PATH | --store URI [--pg-schema NAME]]
      Verify the hash chain (naming its first broken link), re-run the whole
      timeline through the SLA state machine and report every event that
      differs from what the recorded policy dictates. Exit 0 if intact and
      none, 1 otherwise.
  zonecall audit [--db PATH | --store URI [--pg-schema NAME]] [--config FILE]
                 [--from DAY|MS] [--to DAY|MS]
                 [--zone Z] [--department D] [--category C]
                 [--format text|json|csv|html] [--out FILE] [--incident ID]
      Verify the hash chain and each row's integer columns, replay the
      timeline, and report the SLA figures and the two-level assessment (DAY
      is YYYY-MM-DD in the config's time_zone, default Asia/Shanghai).
      Read-only; safe while a server runs. Exit 0 when the timeline is intact
      and consistent, 1 when not, 3 when the report cannot be written.
  zonecall client [--url ws://HOST:PORT/v1/ws[,URL...]]... [--token TOKEN] [--json]
                  [--ca PEM] [--reconnect-s N]
      A staff console: reads commands from stdin (type help) and prints what
      the server says, one readable line each, or one JSON object with --json.
      Several servers (--url given again, or a comma-separated list) are tried
      in order; a standby's Welcome sends it to the leader_url it names if
      that URL is listed, else to the next listed URL. When the connection
      drops it reconnects (200 ms doubling to 2 s), signs in again, resends
      unanswered requests with their request ids and resumes `tail` from the
      last seq received. Exits 0 at quit or end of input once every request
      is answered, 1 if a request was refused or no leader was reached for
      --reconnect-s seconds (default 60; 0: never reconnect, and exit 1 when
      the connection ends).
  zonecall check-config FILE     Parse and validate a config; errors name the line.
  zonecall print-default-config  Print the embedded Jincheng config.
  zonecall hash-token TOKEN      Print the SHA-256 a config stores for a token.
)";

// The demo roster's tokens are "demo-<staff id>": print the ones that match.
void print_demo_tokens(const v1::Config& config) {
  std::cout << "Demo staff tokens (embedded default; replace them in any deployment):\n";
  for (const auto& s : config.staff()) {
    const std::string token = "demo-" + s.id();
    if (sha256_hex(token) == s.token_sha256()) {
      std::cout << "  " << token << "  " << v1::Role_Name(s.role())
                << (s.zone_id().empty() ? "" : " " + s.zone_id()) << "  " << s.name() << "\n";
    }
  }
  std::cout << std::flush;
}

// A server holds a descriptor per connection: use all the system allows.
void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int serve(Args args) {
  raise_descriptor_limit();
  ServerOptions options;
  const std::string config_path = take(args, "config", "");
  options.config = config_path.empty()
                       ? config::parse(config::default_config_text(), "embedded default")
                       : config::load_file(config_path);
  const Timeline timeline = take_timeline(args);
  options.db_path = timeline.location;
  options.pg_schema = timeline.pg_schema;
  const std::string listen = take(args, "listen", "127.0.0.1:8080");
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("--listen wants HOST:PORT, not '" + listen + "'");
  }
  options.address = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  options.port = port == "0" ? 0 : static_cast<unsigned short>(to_size(port, "port", 65535));
  if (timeline.postgres && (args.options.contains("synchronous") || args.options.contains("max-db-mb"))) {
    throw std::invalid_argument("--synchronous and --max-db-mb are for SQLite; PostgreSQL's durability is "
                                "its synchronous_commit setting (docs/postgres.md)");
  }
  const std::string sync = take(args, "synchronous", "full");
  if (sync != "full" && sync != "normal") {
    throw std::invalid_argument("--synchronous is full or normal");
  }
  options.synchronous_full = sync == "full";
  options.limits.max_frame_bytes =
      to_size(take(args, "max-frame-bytes", std::to_string(options.limits.max_frame_bytes)),
              "--max-frame-bytes", options.limits.hard_frame_bytes);
  options.limits.max_send_queue_bytes = to_size(
      take(args, "max-send-queue-bytes", std::to_string(options.limits.max_send_queue_bytes)),
      "--max-send-queue-bytes", std::size_t{1} << 30);
  options.limits.idle_timeout = std::chrono::seconds(to_size(
      take(args, "idle-timeout-s", std::to_string(options.limits.idle_timeout.count())),
      "--idle-timeout-s", 86400));
  options.limits.handshake_timeout = std::chrono::seconds(to_size(
      take(args, "handshake-timeout-s", std::to_string(options.limits.handshake_timeout.count())),
      "--handshake-timeout-s", 3600));
  options.limits.requests_per_second = static_cast<double>(to_size(
      take(args, "requests-per-second",
           std::to_string(static_cast<long>(options.limits.requests_per_second))),
      "--requests-per-second", 1'000'000));
  options.limits.request_burst = 2 * options.limits.requests_per_second;
  options.limits.max_hello_failures = static_cast<int>(to_size(
      take(args, "max-hello-failures", std::to_string(options.limits.max_hello_failures)),
      "--max-hello-failures", 1000));
  options.limits.hello_failure_delay = std::chrono::milliseconds(to_size(
      take(args, "hello-failure-delay-ms",
           std::to_string(options.limits.hello_failure_delay.count())),
      "--hello-failure-delay-ms", 60'000));
  options.limits.max_connections = to_size(
      take(args, "max-connections", std::to_string(options.limits.max_connections)),
      "--max-connections", std::size_t{1} << 20);
  options.limits.max_connections_per_address = to_size(
      take(args, "max-connections-per-address",
           std::to_string(options.limits.max_connections_per_address)),
      "--max-connections-per-address", std::size_t{1} << 20);
  const std::string max_db_mb = take(args, "max-db-mb", "");
  if (!max_db_mb.empty()) {
    // 4 KiB pages; at most 1 TiB.
    options.max_db_pages = static_cast<std::int64_t>(to_size(max_db_mb, "--max-db-mb", 1 << 20) * 256);
  }
  options.max_queued_writes = to_size(
      take(args, "max-queued-writes", std::to_string(options.max_queued_writes)),
      "--max-queued-writes", std::size_t{1} << 24);
  options.tls_cert_file = take(args, "tls-cert", "");
  options.tls_key_file = take(args, "tls-key", "");
  options.insecure = take(args, "insecure", "") == "yes";
  if (const std::string seq = take(args, "accept-broken-chain", ""); !seq.empty()) {
    options.accept_broken_chain_at = to_size(seq, "--accept-broken-chain", SIZE_MAX);
  }
  if (!timeline.postgres && (args.options.contains("advertise-url") || args.options.contains("leader-lease-ms"))) {
    throw std::invalid_argument("--advertise-url and --leader-lease-ms go with --store URI");
  }
  options.advertise_url = take(args, "advertise-url", "");
  if (!options.advertise_url.empty() && !options.advertise_url.starts_with("ws://") &&
      !options.advertise_url.starts_with("wss://")) {
    throw std::invalid_argument("--advertise-url must be a ws:// or wss:// URL");
  }
  // At least 200 ms: the lock's heartbeat runs every 100 ms.
  options.leader_lease = std::chrono::milliseconds(
      to_size(take(args, "leader-lease-ms", "2000"), "--leader-lease-ms", 600'000));
  if (options.leader_lease < std::chrono::milliseconds(200)) {
    throw std::invalid_argument("--leader-lease-ms must be at least 200");
  }
  const std::string level = take(args, "log-level", "info");
  log::set_min_level(level == "debug" ? log::Level::debug
                     : level == "warn"  ? log::Level::warn
                     : level == "error" ? log::Level::error
                                        : log::Level::info);
  reject_leftovers(args);

  const bool demo = config_path.empty();
  Server server(std::move(options));
  if (demo) {
    print_demo_tokens(config::parse(config::default_config_text(), "embedded default"));
  }
  std::cout << "zonecall listening on " << (server.tls() ? "wss://" : "ws://")
            << listen.substr(0, colon) << ":" << server.port()
            << "/v1/ws" << std::endl;

  // Signals are caught on their own io_context so the server's stays its own.
  boost::asio::io_context signal_io;
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) {
          return;
        }
        if (signal == SIGHUP) {
          if (config_path.empty()) {
            log::warn("config.reload_skipped", {{"reason", "serving the embedded default"}});
          } else {
            server.reload(config_path);  // logged either way; the old config stays on error
          }
          signals.async_wait(on_signal);
          return;
        }
        server.stop();
      };
  signals.async_wait(on_signal);
  std::thread signal_thread([&] { signal_io.run(); });
  server.run();
  signal_io.stop();
  signal_thread.join();
  return 0;
}

int replay(Args args) {
  const Timeline timeline = take_timeline(args);
  reject_leftovers(args);
  const auto report = audit::verify(*open_source(timeline.location, timeline.pg_schema));
  std::cout << audit::render_verdict(report, report.discrepancies_size()) << report.events()
            << " events replayed, " << report.discrepancies_size() << " discrepancies\n";
  return audit::clean(report) ? 0 : 1;
}

// A report that cannot be written (a full disk, a missing directory) must
// not pass for a clean audit: exit 3, naming the file.
int write_output(const std::string& path, const std::string& text, int status) {
  errno = 0;
  bool written = false;
  if (path.empty()) {
    written = static_cast<bool>(std::cout << text << std::flush);
  } else {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();  // the last buffer is written here: /dev/full fails only now
    written = !file.fail();
  }
  if (!written) {
    std::cerr << "zonecall: cannot write the report to " << (path.empty() ? "stdout" : path)
              << (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()) << "\n";
    return 3;
  }
  return status;
}

int audit_command(Args args) {
  const Timeline db = take_timeline(args);
  const std::string config_path = take(args, "config", "");
  const auto config = config_path.empty()
                          ? config::parse(config::default_config_text(), "embedded default")
                          : config::load_file(config_path);
  const SiteTime site(config.time_zone());
  report::AuditFilter filter;
  if (auto from = take(args, "from", ""); !from.empty()) {
    filter.from = audit::parse_time(site, from);
  }
  if (auto to = take(args, "to", ""); !to.empty()) {
    filter.to = audit::parse_time(site, to);
  }
  filter.zone_id = take(args, "zone", "");
  filter.department_id = take(args, "department", "");
  filter.category = take(args, "category", "");
  const std::string format = take(args, "format", "text");
  const std::string out_path = take(args, "out", "");
  const std::string incident = take(args, "incident", "");
  reject_leftovers(args);
  if (format != "text" && format != "json" && format != "csv" && format != "html") {
    throw std::invalid_argument("--format is text, json, csv or html");
  }
  const auto timeline = open_source(db.location, db.pg_schema);

  std::string output;
  int status = 0;
  if (!incident.empty()) {
    output = audit::incident_story(*timeline, to_size(incident, "--incident", std::size_t{1} << 60), site);
    if (output.empty()) {
      std::cerr << "zonecall: no incident " << incident << " in " << db.name << "\n";
      return 1;
    }
  } else {
    const auto report = audit::run(*timeline, audit::topology_for(config), filter);
    output = format == "json"   ? audit::render_json(report)
             : format == "csv"  ? audit::render_csv(report)
             : format == "html" ? audit::render_html(report)
                                : audit::render_text(report);
    status = audit::clean(report) ? 0 : 1;
  }
  return write_output(out_path, output, status);
}

}  // namespace

int client_command(Args args) {
  client::ClientOptions options;
  options.urls = {take(args, "url", options.urls.front())};
  options.reconnect_s = static_cast<int>(
      to_size_or_zero(take(args, "reconnect-s", std::to_string(options.reconnect_s)), "--reconnect-s", 86400));
  options.token = take(args, "token", "");
  options.json = take(args, "json", "") == "yes";
  options.ca_file = take(args, "ca", "");
  reject_leftovers(args);
  const int code = client::run_client(options);
  // The stdin reader may still be blocked on a terminal: leave at once.
  std::cout.flush();
  std::_Exit(code);
}

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "serve") {
      return serve(parse_args(argc, argv, 2));
    }
    if (command == "replay") {
      return replay(parse_args(argc, argv, 2));
    }
    if (command == "client") {
      return client_command(parse_args(argc, argv, 2));
    }
    if (command == "audit") {
      return audit_command(parse_args(argc, argv, 2));
    }
    if (command == "check-config" && argc == 3) {
      const auto c = config::load_file(argv[2]);
      std::cout << argv[2] << ": ok, " << c.zones_size() << " zones, " << c.staff_size()
                << " staff, " << c.categories_size() << " categories\n";
      return 0;
    }
    if (command == "print-default-config" && argc == 2) {
      std::cout << config::default_config_text();
      return 0;
    }
    if (command == "hash-token" && argc == 3) {
      std::cout << sha256_hex(argv[2]) << "\n";
      return 0;
    }
    std::cerr << kUsage;
    return 2;
  } catch (const config::ConfigError& e) {
    std::cerr << "zonecall: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "zonecall: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "zonecall: " << e.what() << "\n";
    return 1;
  }
}
