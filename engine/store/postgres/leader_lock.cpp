#include "engine/store/postgres/leader_lock.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/log.hpp"
#include "engine/store/postgres/pg.hpp"

namespace zonecall::pg {

LeaderLock::LeaderLock(LeaderLockOptions options, Events events)
    : options_(std::move(options)), events_(std::move(events)), thread_([this] { run(); }) {}

void LeaderLock::release() {
  {
    std::lock_guard lock(mutex_);
    release_ = true;
  }
  wake_.notify_all();
}

LeaderLock::~LeaderLock() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

namespace {
using Clock = std::chrono::steady_clock;

// No call on the lock's connection may wait past the lease: not the connect
// (whole seconds, 2 at least, as libpq counts them), not a send the network
// swallows (tcp_user_timeout), not an answer (query_by).
std::vector<std::pair<std::string, std::string>> lock_connection_defaults(std::chrono::milliseconds lease) {
  const auto seconds = std::max<std::int64_t>(2, (lease.count() + 999) / 1000);
  return {{"connect_timeout", std::to_string(seconds)},
          {"tcp_user_timeout", std::to_string(lease.count())}};
}
}  // namespace

void LeaderLock::run() {
  std::unique_ptr<Connection> conn;
  bool held = false;
  // The server keeps the lock at least until then: its session ends only
  // after a lease idle, counted from after our last answered query was sent.
  Clock::time_point held_until;
  std::string last_failure;
  std::string last_leader = "\n";  // none told yet
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const bool release = std::exchange(release_, false);
    lock.unlock();
    if ((release || (conn && !conn->ok())) && held) {
      // Its session ends with the connection: say so, whoever asked.
      conn.reset();
      held = false;
      events_.lost(release ? "given up after a fenced commit" : "the lock connection went");
    }
    try {
      if (!conn || !conn->ok()) {
        conn = std::make_unique<Connection>(options_.conninfo, options_.schema,
                                            lock_connection_defaults(options_.lease));
        conn->query_by("SET idle_session_timeout = " + std::to_string(options_.lease.count()),
                       Clock::now() + options_.lease);
      }
      const auto sent = Clock::now();
      if (!held) {
        // One key per street office (schema): offices in one database lead apart.
        const auto r = conn->query_by(
            "SELECT pg_try_advisory_lock(hashtext('zonecall.leader'), hashtext(current_schema())), "
            "coalesce((SELECT holder FROM zonecall_leader WHERE id = 1), '')",
            sent + options_.lease);
        held = get_bytes(r.get(), 0, 0) == std::string_view("\1", 1);
        const std::string leader(get_bytes(r.get(), 0, 1));
        if (held) {
          held_until = sent + options_.lease;
          last_leader = "\n";
          events_.acquired();
        } else if (leader != last_leader) {
          last_leader = leader;
          events_.standing_by(leader);
        }
      } else {
        // The heartbeat that keeps the session, and the lock. Unanswered
        // when the lease may have run out, the lock may be another's now.
        conn->query_by("SELECT 1", held_until);
        held_until = sent + options_.lease;
      }
      last_failure.clear();
    } catch (const std::exception& e) {
      conn.reset();
      if (held) {
        held = false;
        events_.lost(e.what());
      } else if (last_failure != e.what()) {
        last_failure = e.what();  // logged once, not every poll
        log::warn("leader.lock_unreachable", {{"error", e.what()}});
      }
    }
    lock.lock();
    wake_.wait_for(lock, options_.poll, [this] { return stopping_ || release_; });
  }
}

}  // namespace zonecall::pg
