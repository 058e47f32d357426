#pragma once
// A throwaway PostgreSQL 15 cluster for the tests: initdb and pg_ctl from
// /usr/lib/postgresql/15/bin in a temporary directory, run as nobody when
// the tests run as root (CI does; PostgreSQL refuses root), listening on
// 127.0.0.1 at a free port with its socket inside that directory, fsync on.
// One per test process, started on first use, stopped and removed at exit;
// each test takes a fresh database of its own.
#include <filesystem>
#include <string>

namespace zonecall::testing {

// The parts every throwaway cluster needs (this one, ReplicatedPostgres).
namespace postgres_tools {
// A program of Debian's PostgreSQL 15.
std::string bin(const std::string& program);
// "runuser -u nobody -- " when we are root (PostgreSQL refuses root), else "".
std::string as_postgres_user();
// A directory PostgreSQL, running as that user, may write.
void create_owned_directory(const std::filesystem::path& dir);
// Runs a shell command as that user, its output appended to `log`; throws
// with the log if it fails.
void run(const std::string& command, const std::filesystem::path& log);
// A loopback port the kernel calls free now.
unsigned short free_port();
// Runs `shell` (stopping servers, removing their directory) once this
// process has ended, however it ended.
void clean_up_at_death(const std::string& shell);
}  // namespace postgres_tools

class PostgresCluster {
 public:
  // The process's cluster, started on first call; throws if it cannot start.
  static PostgresCluster& shared();
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  unsigned short port() const { return port_; }
  // A new, empty database, as a URI zonecall accepts (--store).
  std::string fresh_database();
  // The URI of database `name` on this cluster.
  std::string uri(const std::string& name) const;
  // Runs `sql` on the database at `uri` as the cluster's superuser; the
  // first value of the last result ("" if none). Throws on error.
  static std::string sql(const std::string& uri, const std::string& sql);

 private:
  PostgresCluster();
  std::filesystem::path dir_;
  unsigned short port_ = 0;
  int databases_ = 0;
  bool started_ = false;
};

}  // namespace zonecall::testing
