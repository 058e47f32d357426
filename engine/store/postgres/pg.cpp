#include "engine/store/postgres/pg.hpp"

#include <arpa/inet.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

#include "engine/log.hpp"

namespace zonecall::pg {

StoreError::Kind error_kind(const char* sqlstate, bool connection_bad) {
  if (connection_bad) {
    return StoreError::Kind::connection_lost;
  }
  const std::string_view s = sqlstate != nullptr ? sqlstate : "";
  if (s == kFencedState) {
    return StoreError::Kind::fenced;
  }
  if (s.starts_with("53")) {  // 53100 disk_full, out of memory, too many connections
    return StoreError::Kind::full;
  }
  if (s == "55P03" || s == "40P01" || s == "40001") {  // lock timeout, deadlock, serialization
    return StoreError::Kind::locked;
  }
  if (s.starts_with("08") || s.starts_with("57P")) {  // connection; shutdown, terminated
    return StoreError::Kind::connection_lost;
  }
  if (s == "XX001" || s == "XX002") {  // data or index corrupted
    return StoreError::Kind::corrupt;
  }
  return StoreError::Kind::other;
}

bool is_postgres_location(std::string_view location) {
  return location.starts_with("postgres://") || location.starts_with("postgresql://");
}

namespace {
std::vector<std::string> split_commas(const std::string& list) {
  std::vector<std::string> out{""};
  for (char c : list) {
    if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// "h1:p1, h2:p2": a multi-host string pairs its hosts and ports in order,
// one port standing for all; an empty one is the default.
std::string servers(const std::string& hosts, const std::string& ports) {
  const auto host_list = split_commas(hosts);
  const auto port_list = split_commas(ports);
  std::string out;
  for (std::size_t i = 0; i < host_list.size(); ++i) {
    const std::string& port = port_list.size() == 1 ? port_list[0] : i < port_list.size() ? port_list[i] : "";
    out += (i > 0 ? ", " : "") + (host_list[i].empty() ? std::string("the local socket") : host_list[i]) +
           ":" + (port.empty() ? std::string("5432") : port);
  }
  return out;
}
}  // namespace

namespace {
// The options a connection string gives, by keyword; throws Error (other)
// naming what libpq found wrong, never echoing the string.
std::map<std::string, std::string> parse_conninfo(const std::string& conninfo) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &message);
  if (options == nullptr) {
    // Never echo the string: it may hold a password.
    std::string why = message != nullptr ? message : "out of memory";
    PQfreemem(message);
    while (!why.empty() && why.back() == '\n') {
      why.pop_back();
    }
    throw Error(StoreError::Kind::other, "the PostgreSQL connection string is not valid: " + why);
  }
  std::map<std::string, std::string> given;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') {
      given[o->keyword] = o->val;
    }
  }
  PQconninfoFree(options);
  return given;
}
}  // namespace

std::string schema_in_conninfo(const std::string& conninfo) {
  const auto given = parse_conninfo(conninfo);
  const auto options = given.find("options");
  if (options == given.end()) {
    return "";
  }
  // The server's command-line forms: -c name=value, -cname=value, --name=value.
  std::string schema;
  std::istringstream words(options->second);
  std::string word;
  bool after_c = false;
  while (words >> word) {
    std::string setting;
    if (after_c) {
      setting = word;
    } else if (word.starts_with("--")) {
      setting = word.substr(2);
    } else if (word.starts_with("-c") && word.size() > 2) {
      setting = word.substr(2);
    }
    after_c = word == "-c";
    if (!setting.starts_with("search_path=")) {
      continue;
    }
    schema = setting.substr(std::string_view("search_path=").size());
    if (schema.find(',') != std::string::npos) {
      throw Error(StoreError::Kind::other,
                  "the PostgreSQL connection string's search_path names several schemas; a street office is "
                  "one schema: give search_path=NAME or --pg-schema NAME");
    }
  }
  return schema;
}

std::string describe(const std::string& conninfo) {
  auto given = parse_conninfo(conninfo);
  // libpq checks the port only when it connects, and then says so as a
  // failure to connect: check it here, where it reads as the string's fault.
  if (given.contains("port") && given["port"].find_first_not_of("0123456789,") != std::string::npos) {
    throw Error(StoreError::Kind::other, "the PostgreSQL connection string is not valid: the port '" +
                                             given["port"] + "' is not a number");
  }
  auto value = [&](const char* key, const char* fallback) {
    auto it = given.find(key);
    return it != given.end() ? it->second : std::string(fallback);
  };
  std::string out = "database " + value("dbname", "(the user's)") + " on " +
                    servers(value("host", ""), value("port", ""));
  if (given.contains("user")) {
    out += " as " + given["user"];
  }
  return out;
}

void check_schema_name(const std::string& schema) {
  bool good = !schema.empty() && schema.size() <= 63 && !(schema[0] >= '0' && schema[0] <= '9') &&
              !schema.starts_with("pg_");
  for (char c : schema) {
    good = good && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!good) {
    throw std::invalid_argument("--pg-schema '" + schema +
                                "': a schema name is lower-case letters, digits and _, "
                                "not starting with a digit or pg_, at most 63 bytes");
  }
}

Params& Params::add(std::string value, Oid type) {
  lengths_.push_back(static_cast<int>(value.size()));
  values_.push_back(std::move(value));
  types_.push_back(type);
  formats_.push_back(1);
  return *this;
}

Params& Params::int64(std::int64_t value) {
  std::string b(8, '\0');
  const std::uint64_t v = static_cast<std::uint64_t>(value);
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<char>(v >> (56 - 8 * i));
  }
  return add(std::move(b), kInt8);
}

Params& Params::bytes(std::string_view value) { return add(std::string(value), kBytea); }
Params& Params::text(std::string_view value) { return add(std::string(value), kText); }
Params& Params::array(std::string value, Oid array_type) { return add(std::move(value), array_type); }

const char* const* Params::values() {
  pointers_.clear();
  for (const auto& v : values_) {
    pointers_.push_back(v.data());
  }
  return pointers_.data();
}

namespace {
void put32(std::string& out, std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  out.append(reinterpret_cast<const char*>(&n), 4);
}
}  // namespace

ArrayParam::ArrayParam(Oid element_type, std::size_t count) {
  put32(bytes_, 1);  // dimensions
  put32(bytes_, 0);  // no nulls
  put32(bytes_, element_type);
  put32(bytes_, static_cast<std::uint32_t>(count));
  put32(bytes_, 1);  // lower bound
}

void ArrayParam::add_int64(std::int64_t value) {
  put32(bytes_, 8);
  const std::uint64_t v = static_cast<std::uint64_t>(value);
  put32(bytes_, static_cast<std::uint32_t>(v >> 32));
  put32(bytes_, static_cast<std::uint32_t>(v));
}

void ArrayParam::add_bytes(std::string_view value) {
  put32(bytes_, static_cast<std::uint32_t>(value.size()));
  bytes_.append(value);
}

std::int64_t get_int64(const PGresult* r, int row, int column) {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, column));
  const int n = PQgetlength(r, row, column);
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v = (v << 8) | p[i];
  }
  if (n > 0 && n < 8 && (p[0] & 0x80) != 0) {  // sign-extend int2 and int4
    v |= ~std::uint64_t{0} << (8 * n);
  }
  return static_cast<std::int64_t>(v);
}

std::string_view get_bytes(const PGresult* r, int row, int column) {
  return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
}

namespace {
void log_notice(void*, const char* message) {
  std::string m = message;
  while (!m.empty() && m.back() == '\n') {
    m.pop_back();
  }
  log::warn("store.pg_notice", {{"message", m}});
}
}  // namespace

Connection::Connection(const std::string& conninfo, const std::string& schema)
    : Connection(conninfo, schema, {}) {}

Connection::Connection(const std::string& conninfo, const std::string& schema,
                       const std::vector<std::pair<std::string, std::string>>& defaults)
    : conn_(nullptr, PQfinish), name_(describe(conninfo)), schema_(schema) {
  check_schema_name(schema);
  // Options before the expanded dbname are overridden by the string's own.
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [key, value] : defaults) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.insert(keys.end(), {"dbname", "fallback_application_name", nullptr});
  values.insert(values.end(), {conninfo.c_str(), "zonecall", nullptr});
  conn_.reset(PQconnectdbParams(keys.data(), values.data(), 1));
  if (conn_ == nullptr) {
    throw Error(StoreError::Kind::other, "cannot connect to " + name_ + ": out of memory");
  }
  if (!ok()) {
    std::string why = PQerrorMessage(conn_.get());
    while (!why.empty() && why.back() == '\n') {
      why.pop_back();
    }
    throw Error(StoreError::Kind::connection_lost, "cannot connect to PostgreSQL (" + name_ + "): " + why);
  }
  PQsetNoticeProcessor(conn_.get(), log_notice, nullptr);
  char* ident = PQescapeIdentifier(conn_.get(), schema.c_str(), schema.size());
  const std::string quoted = ident != nullptr ? ident : schema;
  PQfreemem(ident);
  exec("SET client_min_messages = warning");
  exec("SET search_path TO " + quoted);
}

Error Connection::error(const PGresult* r, std::string_view doing) const {
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string why = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn_.get());
  if (why.empty()) {
    why = PQerrorMessage(conn_.get());
  }
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  return Error(error_kind(state, !ok()), std::string(doing) + ": " + why);
}

void Connection::exec(const std::string& sql) {
  Result r(PQexec(conn_.get(), sql.c_str()));
  if (!r || (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK)) {
    throw error(r.get(), sql);
  }
}

Result Connection::query(const std::string& sql, Params params) {
  Result r(PQexecParams(conn_.get(), sql.c_str(), params.size(), params.types(), params.values(),
                        params.lengths(), params.formats(), 1));
  if (!r || (PQresultStatus(r.get()) != PGRES_COMMAND_OK && PQresultStatus(r.get()) != PGRES_TUPLES_OK)) {
    throw error(r.get(), sql);
  }
  return r;
}

Result Connection::query_by(const std::string& sql, std::chrono::steady_clock::time_point deadline) {
  PGconn* c = conn_.get();
  // Binary results, as query()'s; a small statement is sent at once.
  if (PQsendQueryParams(c, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1) == 0) {
    throw error(nullptr, sql);
  }
  Result last;
  for (;;) {
    while (PQisBusy(c) != 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{PQsocket(c), POLLIN, 0};
      const int ready = left.count() > 0 ? poll(&fd, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready == 0) {
        throw Error(StoreError::Kind::connection_lost, sql + ": no answer from " + name_ + " in time");
      }
      if (PQconsumeInput(c) == 0) {
        throw error(nullptr, sql);
      }
    }
    Result r(PQgetResult(c));
    if (!r) {
      break;
    }
    last = std::move(r);
  }
  if (!last || (PQresultStatus(last.get()) != PGRES_COMMAND_OK && PQresultStatus(last.get()) != PGRES_TUPLES_OK)) {
    throw error(last.get(), sql);
  }
  return last;
}

void Connection::prepare(const char* name, const std::string& sql, int params, const Oid* types) {
  Result r(PQprepare(conn_.get(), name, sql.c_str(), params, types));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    throw error(r.get(), "prepare " + sql);
  }
}

Transaction::Transaction(Connection& conn, const char* begin) : conn_(conn) { conn_.exec(begin); }

Transaction::~Transaction() {
  if (open_ && conn_.ok()) {
    PQclear(PQexec(conn_.get(), "ROLLBACK"));
  }
}

void Transaction::commit() {
  open_ = false;
  conn_.exec("COMMIT");
}

}  // namespace zonecall::pg
