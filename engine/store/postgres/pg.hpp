#pragma once
// A thin RAII layer over libpq: a connection that is closed with its owner,
// results that are cleared with theirs, parameters and results in binary,
// and failures thrown as pg::Error, a StoreFailure whose kind comes from the
// SQLSTATE (or from the connection having gone).
#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/store/store_error.hpp"

namespace zonecall::pg {

// The store error kind of a SQLSTATE (null: none, as for libpq's own
// errors), given whether the connection is still up.
StoreError::Kind error_kind(const char* sqlstate, bool connection_bad);

// The SQLSTATE the fence check raises (schema.cpp): `fenced`.
inline constexpr const char* kFencedState = "ZCF01";

class Error : public StoreFailure {
 public:
  Error(StoreError::Kind kind, const std::string& what) : StoreFailure(StoreError(kind, what)) {}
};

// Whether a store location names PostgreSQL: a postgres:// or
// postgresql:// URI. Everything else is a SQLite path.
bool is_postgres_location(std::string_view location);

// The database a connection string names, for messages, with no password:
// "database zonecall on 127.0.0.1:5432 as alice". Throws Error (other)
// naming what libpq found wrong with it.
std::string describe(const std::string& conninfo);

// The schema a connection string selects through its `options`
// (options=-csearch_path=NAME, the libpq way), or "" if it selects none.
// Throws Error (other) for a string libpq cannot parse, or a search_path of
// several schemas.
std::string schema_in_conninfo(const std::string& conninfo);

// A schema name zonecall accepts (--pg-schema): lower-case letters, digits
// and _, not starting with a digit or pg_, at most 63 bytes. Throws
// std::invalid_argument naming the rule.
void check_schema_name(const std::string& schema);

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Parameters in binary, with their types, for PQexecParams and friends.
class Params {
 public:
  Params& int64(std::int64_t value);
  Params& bytes(std::string_view value);  // bytea
  Params& text(std::string_view value);
  // A one-dimensional array (element type int8, text or bytea) built by ArrayParam.
  Params& array(std::string value, Oid array_type);
  int size() const { return static_cast<int>(values_.size()); }
  const Oid* types() const { return types_.data(); }
  const char* const* values();
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& add(std::string value, Oid type);
  std::vector<std::string> values_;
  std::vector<const char*> pointers_;
  std::vector<Oid> types_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// The binary wire form of a one-dimensional array, element by element.
class ArrayParam {
 public:
  ArrayParam(Oid element_type, std::size_t count);
  void add_int64(std::int64_t value);
  void add_bytes(std::string_view value);
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

inline constexpr Oid kInt8 = 20, kBytea = 17, kText = 25;
inline constexpr Oid kInt8Array = 1016, kByteaArray = 1001, kTextArray = 1009;

// A binary result's values.
std::int64_t get_int64(const PGresult* r, int row, int column);  // int2, int4 or int8
std::string_view get_bytes(const PGresult* r, int row, int column);

class Connection {
 public:
  // Connects and sets the search path to `schema` (check_schema_name), so
  // every unqualified name is the street office's. Throws Error:
  // connection_lost when the server cannot be reached, other for a bad string.
  Connection(const std::string& conninfo, const std::string& schema);
  // The same, with defaults of our own for libpq options (connect_timeout,
  // tcp_user_timeout, ...) that the connection string may override.
  Connection(const std::string& conninfo, const std::string& schema,
             const std::vector<std::pair<std::string, std::string>>& defaults);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* get() const { return conn_.get(); }
  bool ok() const { return PQstatus(conn_.get()) == CONNECTION_OK; }
  const std::string& name() const { return name_; }  // describe()'s, for messages
  const std::string& schema() const { return schema_; }

  // A statement without parameters or rows wanted (SET, BEGIN, DDL).
  void exec(const std::string& sql);
  // A statement with binary parameters and results; throws on failure.
  Result query(const std::string& sql, Params params = {});
  // query() of one statement without parameters, that gives up once
  // `deadline` passes with no answer: it throws Error (connection_lost), and
  // the connection must be closed. For where no answer has to mean a
  // decision, as a leader's heartbeat does.
  Result query_by(const std::string& sql, std::chrono::steady_clock::time_point deadline);
  void prepare(const char* name, const std::string& sql, int params, const Oid* types);
  // The Error for a failed result (or, with null, the connection's last).
  Error error(const PGresult* r, std::string_view doing) const;

 private:
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
  std::string name_;
  std::string schema_;
};

// BEGIN here, ROLLBACK in the destructor unless committed; never throws there.
class Transaction {
 public:
  Transaction(Connection& conn, const char* begin = "BEGIN");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& conn_;
  bool open_ = true;
};

}  // namespace zonecall::pg
