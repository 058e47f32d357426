#include "fixtures.hpp"

#include <sys/mount.h>

#include "engine/log.hpp"

#include <cstdio>
#include <future>
#include <random>

#include "engine/store/event_pipeline.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "engine/token.hpp"
#include "engine/store/postgres/pg.hpp"
#include "support/ws_client.hpp"
#include <catch2/catch.hpp>
#include <thread>

namespace zonecall::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("zonecall-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

v1::Config test_config() {
  auto config = config::parse(config::default_config_text(), "embedded default");
  auto* drill = config.add_categories();
  drill->set_id("drill");
  drill->set_name("test drill with short clocks");
  drill->set_default_severity(v1::NORMAL);
  drill->mutable_budgets()->set_discover_ms(kDrillDiscoverMs);
  drill->mutable_budgets()->set_respond_ms(2 * kDrillDiscoverMs);
  drill->mutable_budgets()->set_resolve_ms(3 * kDrillDiscoverMs);
  // A department whose limits a test can watch pass.
  auto* desk = config.add_departments();
  desk->set_id("drill-desk");
  desk->set_name("test department with short limits");
  desk->set_accept_limit_ms(kDrillAcceptMs);
  desk->set_on_site_limit_ms(2 * kDrillAcceptMs);
  auto* member = config.add_staff();
  member->set_id("dept-drill-desk");
  member->set_name("drill desk member");
  member->set_role(v1::DEPARTMENT);
  member->set_department_id("drill-desk");
  member->set_token_sha256(sha256_hex("demo-dept-drill-desk"));
  return config;
}

ServerOptions options_for(const std::string& db_path) {
  ServerOptions options;
  options.port = 0;
  options.db_path = db_path;
  options.config = test_config();
  options.limits.idle_timeout = std::chrono::hours(24);
  return options;
}

RunningServer::RunningServer(ServerOptions options, Clocks clocks) {
  if (clocks == Clocks::simulated) {
    auto simulated = std::make_unique<SimulatedTime>();
    simulated_ = simulated.get();
    own_time_ = std::move(simulated);
  } else {
    own_time_ = std::make_unique<RealTimeSource>();
  }
  time_ = own_time_.get();
  start(std::move(options));
}

RunningServer::RunningServer(ServerOptions options, SimulatedTime& time)
    : time_(&time), simulated_(&time) {
  start(std::move(options));
}

void RunningServer::start(ServerOptions options) {
  const bool postgres = pg::is_postgres_location(options.db_path);
  server_ = std::make_unique<Server>(std::move(options), *time_);
  std::packaged_task<void()> run([this] { server_->run(); });
  stopped_ = run.get_future();
  thread_ = std::thread(std::move(run));
  if (postgres) {
    // It starts as a standby; alone on its timeline it leads within moments.
    REQUIRE(wait_for_readiness(port(), "ready", std::chrono::seconds(10)));
  }
}

bool wait_for_readiness(unsigned short port, const std::string& state, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    try {
      if (http_get(port, "/readyz").body == state + "\n") {
        return true;
      }
    } catch (const std::exception&) {
      // not listening yet, or closing: ask again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

RunningServer::~RunningServer() { stop(); }

void RunningServer::stop() {
  if (!thread_.joinable()) {
    return;
  }
  server_->stop();
  // A stop ends on events: the last commit answered, the last client gone.
  // A client that never answers its close frame holds it until the grace
  // periods run out, which on simulated time is when the test says so.
  if (simulated_ != nullptr && stopped_.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    std::fprintf(stderr, "RunningServer: the stop waited on its grace periods (a client did not "
                         "answer its close); moving simulated time past them\n");
    simulated_->advance(2 * std::chrono::milliseconds(Server::kShutdownGrace).count());
  }
  thread_.join();
  stopped_.get();  // rethrows what run() threw
}

void RunningServer::advance(sla::Millis by) {
  if (simulated_ == nullptr) {
    throw std::logic_error("advance(): this server runs on the real clock");
  }
  simulated_->advance(by);
}

std::int64_t count_rows(const std::string& db_path, const std::string& where) {
  sqlite::Database db(db_path, SQLITE_OPEN_READONLY);
  sqlite::Statement q(db, ("SELECT COUNT(*) FROM timeline WHERE " + where).c_str());
  q.step();
  return q.column_int64(0);
}

std::string integrity_check(const std::string& db_path) {
  sqlite::Database db(db_path, SQLITE_OPEN_READONLY);
  sqlite::Statement q(db, "PRAGMA integrity_check");
  q.step();
  return std::string(q.column_text(0));
}

StoredReplay::StoredReplay(const std::string& db_path) {
  const auto timeline = open_source(db_path);
  replayer = std::make_unique<sla::Replayer>(config::policy_history(timeline->policy_versions()));
  read_all_events(*timeline, [&](const v1::TimelineEvent& e) { replayer->feed(e); });
  replayer->finish();
}

LogCapture::LogCapture() {
  log::also_send_to([this](std::string_view line) {
    std::lock_guard lock(mutex_);
    lines_.append(line);
  });
}

LogCapture::~LogCapture() { log::also_send_to(nullptr); }

bool LogCapture::contains(const std::string& text) const {
  std::lock_guard lock(mutex_);
  return lines_.find(text) != std::string::npos;
}

std::string LogCapture::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

Tmpfs::Tmpfs(const std::string& dir, std::size_t bytes)
    : dir_(dir), size_option_("size=" + std::to_string(bytes)) {
  std::filesystem::create_directories(dir_);
  mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, size_option_.c_str()) == 0;
}

Tmpfs::~Tmpfs() {
  if (mounted_) {
    ::umount2(dir_.c_str(), MNT_DETACH);
  }
}

bool Tmpfs::remount(bool read_only) {
  const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
  return ::mount("tmpfs", dir_.c_str(), "tmpfs", flags, size_option_.c_str()) == 0;
}

}  // namespace zonecall::testing
