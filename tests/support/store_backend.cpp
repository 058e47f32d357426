#include "store_backend.hpp"

#include <libpq-fe.h>

#include <stdexcept>

#include "engine/store/sqlite/sqlite.hpp"
#include "support/postgres_cluster.hpp"

namespace zonecall::testing {

const char* backend_name(Backend backend) { return backend == Backend::sqlite ? "SQLite" : "PostgreSQL"; }

TestTimeline::TestTimeline(Backend backend)
    : backend_(backend),
      location_(backend == Backend::sqlite ? dir_.file("t.db") : PostgresCluster::shared().fresh_database()) {
}

std::int64_t TestTimeline::value(const std::string& sql) const {
  if (backend_ == Backend::postgres) {
    const std::string v = PostgresCluster::sql(location_, sql);
    return v.empty() ? -1 : std::stoll(v);
  }
  sqlite::Database file(location_, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, sql.c_str());
  return q.step() ? q.column_int64(0) : -1;
}

void TestTimeline::exec(const std::string& sql) const {
  if (backend_ == Backend::postgres) {
    PostgresCluster::sql(location_, sql);
    return;
  }
  sqlite::Database file(location_, SQLITE_OPEN_READWRITE);
  file.exec(sql.c_str());
}

namespace {
class SqliteLock final : public TestTimeline::Lock {
 public:
  explicit SqliteLock(const std::string& path) : db_(path, SQLITE_OPEN_READWRITE) {
    db_.exec("BEGIN IMMEDIATE");
  }
  ~SqliteLock() override { release(); }
  void release() override {
    if (held_) {
      held_ = false;
      db_.exec("ROLLBACK");
    }
  }

 private:
  sqlite::Database db_;
  bool held_ = true;
};

class PgLock final : public TestTimeline::Lock {
 public:
  explicit PgLock(const std::string& uri) : conn_(PQconnectdb(uri.c_str()), PQfinish) {
    PQclear(PQexec(conn_.get(), "BEGIN"));
    PGresult* r = PQexec(conn_.get(), "LOCK TABLE timeline, policy_versions IN EXCLUSIVE MODE");
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
      throw std::runtime_error("PgLock: " + std::string(PQerrorMessage(conn_.get())));
    }
  }
  ~PgLock() override { release(); }
  void release() override {
    if (held_) {
      held_ = false;
      PQclear(PQexec(conn_.get(), "ROLLBACK"));
    }
  }

 private:
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
  bool held_ = true;
};
}  // namespace

std::unique_ptr<TestTimeline::Lock> TestTimeline::lock() const {
  if (backend_ == Backend::postgres) {
    return std::make_unique<PgLock>(location_);
  }
  return std::make_unique<SqliteLock>(location_);
}

std::string TestTimeline::locked_message() const {
  return backend_ == Backend::sqlite ? "database is locked" : "lock timeout";
}

}  // namespace zonecall::testing
