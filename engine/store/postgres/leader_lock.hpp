#pragma once
// Who leads the engines on one PostgreSQL timeline: whoever holds a session
// advisory lock, on a connection of its own. The lock ends with the session,
// so a killed engine's is released at once; a frozen or cut-off engine's
// session ends once it has been idle for the lease (idle_session_timeout:
// the server enforces it, whatever the engine's clock or state). The leader
// also gives the lock up itself once a heartbeat goes unanswered that long,
// so that it never goes on leading unheard. Holding the
// lock is not enough to write: the new leader also takes a term, which
// every group commit checks (TimelineStore::lead), so a deposed leader that
// has not noticed yet cannot commit.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace zonecall::pg {

struct LeaderLockOptions {
  std::string conninfo;
  std::string schema = "public";
  std::chrono::milliseconds lease{2000};  // a leader silent this long loses the lock
  std::chrono::milliseconds poll{100};    // a standby tries this often
};

class LeaderLock {
 public:
  struct Events {
    std::function<void()> acquired;
    // The lock's session ended (killed, timed out, the database went): some
    // other engine may lead now.
    std::function<void(const std::string& why)> lost;
    // While not leading: where the leader says it is ("" if none yet).
    std::function<void(const std::string& leader_url)> standing_by;
  };
  // The events run on the lock's thread; post them where they belong.
  LeaderLock(LeaderLockOptions options, Events events);
  ~LeaderLock();  // releases the lock (the session ends)
  // Gives the lock up (ending its session; reported as lost) and competes
  // again: the engine stepped down for a reason of its own (a fenced commit).
  void release();
  LeaderLock(const LeaderLock&) = delete;
  LeaderLock& operator=(const LeaderLock&) = delete;

 private:
  void run();

  LeaderLockOptions options_;
  Events events_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool release_ = false;
  std::thread thread_;
};

}  // namespace zonecall::pg
