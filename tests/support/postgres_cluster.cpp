#include "postgres_cluster.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

namespace zonecall::testing {

namespace postgres_tools {

namespace {
constexpr uid_t kNobody = 65534;
}  // namespace

std::string bin(const std::string& program) { return "/usr/lib/postgresql/15/bin/" + program; }

std::string as_postgres_user() { return ::geteuid() == 0 ? "runuser -u nobody -- " : ""; }

void create_owned_directory(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  if (::geteuid() == 0 && ::chown(dir.c_str(), kNobody, kNobody) != 0) {
    throw std::runtime_error("PostgresCluster: cannot hand " + dir.string() + " to nobody");
  }
}

unsigned short free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("PostgresCluster: no free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

void run(const std::string& command, const std::filesystem::path& log) {
  // Descriptors 3-9 closed: a server must not hold what the test inherited
  // (a build lock's flock, a listening socket) for as long as it runs.
  const std::string line =
      "exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- && " + as_postgres_user() + command + " >>" + log.string() + " 2>&1";
  if (std::system(line.c_str()) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    throw std::runtime_error("PostgresCluster: `" + command + "` failed:\n" + text.str());
  }
}

// A process that outlives this one just long enough to run `shell` if this
// process dies without its destructors (a crash, ctest's kill at a
// timeout): it waits for the end of a pipe whose other end only this
// process holds (close-on-exec: no child inherits it).
void clean_up_at_death(const std::string& shell) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return;
  }
  const std::string script = "cat >/dev/null; " + shell;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();  // out of our process group, which `timeout` signals as one
    ::dup2(fds[0], 0);  // dup2 clears close-on-exec on stdin
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);  // ctest waits for whoever holds the test's output open
    ::dup2(null, 2);
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);  // the write end stays open, unused, until this process ends
}

}  // namespace postgres_tools

namespace {
using namespace postgres_tools;
}  // namespace

PostgresCluster& PostgresCluster::shared() {
  static PostgresCluster cluster;
  return cluster;
}

PostgresCluster::PostgresCluster() {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path() / ("zonecall-pg-" + std::to_string(rd()));
  create_owned_directory(dir_);
  create_owned_directory(dir_ / "socket");
  // First of all: a kill during initdb or pg_ctl start leaves nothing either
  // (a postmaster that started after the stop finds its directory gone and
  // shuts itself down within a minute).
  clean_up_at_death("sleep 1; " + as_postgres_user() + bin("pg_ctl") + " -D " + (dir_ / "data").string() +
                    " -m immediate -w stop >/dev/null 2>&1; rm -rf " + dir_.string());
  const auto log = dir_ / "setup.log";
  run(bin("initdb") + " -D " + (dir_ / "data").string() + " -U zonecall --auth=trust -E UTF8 --no-locale", log);
  port_ = free_port();
  run(bin("pg_ctl") + " -D " + (dir_ / "data").string() + " -l " + (dir_ / "server.log").string() +
          " -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " +
          (dir_ / "socket").string() + " -c fsync=on -c max_connections=200\" start",
      log);
  started_ = true;
}

PostgresCluster::~PostgresCluster() {
  if (started_) {
    try {
      run(bin("pg_ctl") + " -D " + (dir_ / "data").string() + " -m immediate -w stop", dir_ / "setup.log");
    } catch (const std::exception&) {
      // Removing the directory below still leaves nothing behind but a process.
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PostgresCluster::uri(const std::string& name) const {
  return "postgresql://zonecall@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

std::string PostgresCluster::fresh_database() {
  const std::string name = "test_" + std::to_string(++databases_);
  sql(uri("postgres"), "CREATE DATABASE " + name);
  return uri(name);
}

std::string PostgresCluster::sql(const std::string& uri, const std::string& sql) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(uri.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("PostgresCluster: cannot connect: " + std::string(PQerrorMessage(conn.get())));
  }
  std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql.c_str()), PQclear);
  const auto status = PQresultStatus(r.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PostgresCluster: " + sql + ": " + PQresultErrorMessage(r.get()));
  }
  return PQntuples(r.get()) > 0 && PQnfields(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : "";
}

}  // namespace zonecall::testing
