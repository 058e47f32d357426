#pragma once
// A throwaway PostgreSQL 15 primary with one streaming replica, for the
// database failover test: both in one temporary directory, run as nobody
// when the tests run as root, on free 127.0.0.1 ports. The replica is the
// primary's synchronous standby (synchronous_standby_names 'FIRST 1
// (replica1)', synchronous_commit on), so a COMMIT returns only once the
// replica has flushed it: what the primary acknowledged survives its loss.
#include <chrono>
#include <filesystem>
#include <string>

namespace zonecall::testing {

class ReplicatedPostgres {
 public:
  // Starts both and waits until the replica streams as the synchronous
  // standby; throws if either cannot start.
  ReplicatedPostgres();
  ~ReplicatedPostgres();
  ReplicatedPostgres(const ReplicatedPostgres&) = delete;
  ReplicatedPostgres& operator=(const ReplicatedPostgres&) = delete;

  unsigned short primary_port() const { return primary_port_; }
  unsigned short replica_port() const { return replica_port_; }
  // A new, empty database, created on the primary and already on the replica.
  std::string fresh_database();
  // The libpq multi-host URI of database `name` on both servers, taking
  // whichever accepts writes: what every engine is given in production.
  std::string uri(const std::string& name) const;
  // The URI of `name` on one server only.
  std::string uri_at(unsigned short port, const std::string& name) const;

  enum class Node { primary, replica };
  // A server's machine lost: SIGKILL to its postmaster and every one of its
  // processes at once, so nothing more is flushed, sent or said goodbye.
  // (The kernel still closes their sockets, which a lost machine would not.)
  // Returns, once they are dead, the instant the signals went out.
  std::chrono::steady_clock::time_point kill(Node node);
  // Starts a killed server again, as it was (crash recovery).
  void start_again(Node node);
  // What Patroni does next: `pg_ctl promote` on the replica, waiting until
  // it accepts writes. It has no synchronous standby of its own then.
  void promote_replica();
  // The primary's sync_state for the replica ("sync" when all is well).
  std::string replica_sync_state() const;

 private:
  void start(Node node);
  bool& running(Node node) { return node == Node::primary ? primary_running_ : replica_running_; }
  std::filesystem::path data_dir(Node node) const { return dir_ / (node == Node::primary ? "primary" : "replica"); }
  std::filesystem::path dir_;
  unsigned short primary_port_ = 0;
  unsigned short replica_port_ = 0;
  int databases_ = 0;
  bool primary_running_ = false;
  bool replica_running_ = false;
};

}  // namespace zonecall::testing
