#include "postgres_replicas.hpp"

#include <signal.h>

#include <cstdio>
#include <chrono>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "postgres_cluster.hpp"

namespace zonecall::testing {

namespace {
using namespace postgres_tools;
using std::chrono::steady_clock;

// A process's state and parent from /proc; state 0 when it is gone.
struct ProcStat {
  char state = 0;
  int ppid = 0;
};
ProcStat proc_stat(const std::filesystem::path& proc_dir) {
  std::ifstream in(proc_dir / "stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');  // the command may hold spaces
  ProcStat out;
  if (close == std::string::npos || std::sscanf(stat.c_str() + close + 1, " %c %d", &out.state, &out.ppid) != 2) {
    return {};
  }
  return out;
}

// Dead once gone or a zombie: whoever inherited it may never reap it.
bool alive(pid_t pid) {
  const char state = proc_stat("/proc/" + std::to_string(pid)).state;
  return state != 0 && state != 'Z';
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos && proc_stat(entry.path()).ppid == parent) {
      out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
  }
  return out;
}

void append_line(const std::filesystem::path& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  out << line << "\n";
  if (!out) {
    throw std::runtime_error("ReplicatedPostgres: cannot write " + file.string());
  }
}
}  // namespace

ReplicatedPostgres::ReplicatedPostgres() {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path() / ("zonecall-pgha-" + std::to_string(rd()));
  create_owned_directory(dir_);
  create_owned_directory(dir_ / "socket");
  const std::string stop = as_postgres_user() + bin("pg_ctl") + " -m immediate -w stop -D ";
  clean_up_at_death("sleep 1; " + stop + data_dir(Node::primary).string() + " >/dev/null 2>&1; " + stop +
                    data_dir(Node::replica).string() + " >/dev/null 2>&1; rm -rf " + dir_.string());
  const auto log = dir_ / "setup.log";
  run(bin("initdb") + " -D " + data_dir(Node::primary).string() + " -U zonecall --auth=trust -E UTF8 --no-locale",
      log);
  primary_port_ = free_port();
  do {
    replica_port_ = free_port();
  } while (replica_port_ == primary_port_);
  start(Node::primary);
  // initdb's pg_hba.conf already trusts replication from 127.0.0.1.
  run(bin("pg_basebackup") + " -h 127.0.0.1 -p " + std::to_string(primary_port_) + " -U zonecall -D " +
          data_dir(Node::replica).string() + " -X stream -c fast",
      log);
  append_line(data_dir(Node::replica) / "postgresql.conf",
              "primary_conninfo = 'host=127.0.0.1 port=" + std::to_string(primary_port_) +
                  " user=zonecall application_name=replica1'");
  append_line(data_dir(Node::replica) / "standby.signal", "");
  start(Node::replica);
  // Only now, and only on the primary: a replica that inherited it would,
  // once promoted, wait for a standby it does not have at every COMMIT.
  append_line(data_dir(Node::primary) / "postgresql.conf", "synchronous_standby_names = 'FIRST 1 (replica1)'");
  append_line(data_dir(Node::primary) / "postgresql.conf", "synchronous_commit = on");
  run(bin("pg_ctl") + " -D " + data_dir(Node::primary).string() + " reload", log);
  const auto until = steady_clock::now() + std::chrono::seconds(30);
  while (replica_sync_state() != "sync") {
    if (steady_clock::now() > until) {
      throw std::runtime_error("ReplicatedPostgres: the replica did not become the synchronous standby");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void ReplicatedPostgres::start(Node node) {
  const unsigned short port = node == Node::primary ? primary_port_ : replica_port_;
  const std::string server_log = data_dir(node).string() + ".log";
  try {
    run(bin("pg_ctl") + " -D " + data_dir(node).string() + " -l " + server_log +
            " -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port) + " -k " +
            (dir_ / "socket").string() + " -c fsync=on -c max_connections=200\" start",
        dir_ / "setup.log");
  } catch (const std::exception& e) {
    std::ifstream in(server_log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    throw std::runtime_error(std::string(e.what()) + "\nserver log:\n" + text);
  }
  running(node) = true;
}

void ReplicatedPostgres::start_again(Node node) {
  // The socket's lock file names the killed postmaster too (see kill()).
  const unsigned short port = node == Node::primary ? primary_port_ : replica_port_;
  std::filesystem::remove(dir_ / "socket" / (".s.PGSQL." + std::to_string(port) + ".lock"));
  start(node);
}

ReplicatedPostgres::~ReplicatedPostgres() {
  for (const Node node : {Node::primary, Node::replica}) {
    if (running(node)) {
      try {
        run(bin("pg_ctl") + " -D " + data_dir(node).string() + " -m immediate -w stop", dir_ / "setup.log");
      } catch (const std::exception&) {
        // Removing the directory still leaves nothing but a process, which ends itself.
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string ReplicatedPostgres::uri(const std::string& name) const {
  return "postgresql://zonecall@127.0.0.1:" + std::to_string(primary_port_) + ",127.0.0.1:" +
         std::to_string(replica_port_) + "/" + name + "?target_session_attrs=read-write&connect_timeout=2";
}

std::string ReplicatedPostgres::uri_at(unsigned short port, const std::string& name) const {
  return "postgresql://zonecall@127.0.0.1:" + std::to_string(port) + "/" + name;
}

std::string ReplicatedPostgres::fresh_database() {
  const std::string name = "failover_" + std::to_string(++databases_);
  PostgresCluster::sql(uri_at(primary_port_, "postgres"), "CREATE DATABASE " + name);
  // synchronous_commit = on waits for the replica's flush, not its replay:
  // wait until it shows the database, so that either server can be asked.
  const auto until = steady_clock::now() + std::chrono::seconds(30);
  while (PostgresCluster::sql(uri_at(replica_port_, "postgres"),
                              "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") != "1") {
    if (steady_clock::now() > until) {
      throw std::runtime_error("ReplicatedPostgres: the replica never showed database " + name);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return name;
}

std::chrono::steady_clock::time_point ReplicatedPostgres::kill(Node node) {
  std::ifstream pid_file(data_dir(node) / "postmaster.pid");
  pid_t postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0) {
    throw std::runtime_error("ReplicatedPostgres: no postmaster.pid to kill");
  }
  auto victims = children_of(postmaster);
  // The postmaster first, so that it restarts nothing; then all the rest.
  victims.insert(victims.begin(), postmaster);
  for (const pid_t pid : victims) {
    ::kill(pid, SIGKILL);
  }
  const auto signalled = steady_clock::now();
  running(node) = false;
  const auto until = steady_clock::now() + std::chrono::seconds(10);
  for (const pid_t pid : victims) {
    while (alive(pid)) {
      if (steady_clock::now() > until) {
        throw std::runtime_error("ReplicatedPostgres: process " + std::to_string(pid) +
                                 " outlived SIGKILL");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Its pid may live on as a zombie nobody reaps, which pg_ctl would take
  // for a server still running (to stop, or to refuse to start beside).
  std::filesystem::remove(data_dir(node) / "postmaster.pid");
  return signalled;
}

void ReplicatedPostgres::promote_replica() {
  run(bin("pg_ctl") + " -D " + data_dir(Node::replica).string() + " -w -t 60 promote", dir_ / "setup.log");
}

std::string ReplicatedPostgres::replica_sync_state() const {
  return PostgresCluster::sql(uri_at(primary_port_, "postgres"),
                              "SELECT coalesce((SELECT sync_state FROM pg_stat_replication "
                              "WHERE application_name = 'replica1'), '')");
}

}  // namespace zonecall::testing
