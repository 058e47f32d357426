#include "engine/store/postgres/leader_lock.hpp"

#include <memory>
#include <utility>

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

void LeaderLock::run() {
  std::unique_ptr<Connection> conn;
  bool held = false;
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
        conn = std::make_unique<Connection>(options_.conninfo, options_.schema);
        conn->exec("SET idle_session_timeout = " + std::to_string(options_.lease.count()));
      }
      if (!held) {
        // One key per street office (schema): offices in one database lead apart.
        const auto r = conn->query(
            "SELECT pg_try_advisory_lock(hashtext('zonecall.leader'), hashtext(current_schema())), "
            "coalesce((SELECT holder FROM zonecall_leader WHERE id = 1), '')");
        held = get_bytes(r.get(), 0, 0) == std::string_view("\1", 1);
        const std::string leader(get_bytes(r.get(), 0, 1));
        if (held) {
          last_leader = "\n";
          events_.acquired();
        } else if (leader != last_leader) {
          last_leader = leader;
          events_.standing_by(leader);
        }
      } else {
        conn->exec("SELECT 1");  // the heartbeat that keeps the session, and the lock
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
