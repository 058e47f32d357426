#include "engine/store/postgres/pg_source.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/store/postgres/pg_schema.hpp"

namespace zonecall {

namespace {
// Rows come a page at a time, so a year's timeline never sits in memory whole.
constexpr int kPageRows = 4096;

class PgCursor final : public RowCursor {
 public:
  PgCursor(pg::Connection& conn, ScanFields fields) : conn_(conn), fields_(fields) {
    conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    conn_.exec(fields.columns ? "DECLARE zc_scan NO SCROLL CURSOR FOR SELECT seq, payload, incident_id, "
                                "kind, at_ms, hash FROM timeline ORDER BY seq"
               : fields.links ? "DECLARE zc_scan NO SCROLL CURSOR FOR SELECT seq, payload, hash "
                                "FROM timeline ORDER BY seq"
                              : "DECLARE zc_scan NO SCROLL CURSOR FOR SELECT seq, payload "
                                "FROM timeline ORDER BY seq");
    open_ = true;
  }
  ~PgCursor() override {
    if (open_ && conn_.ok()) {
      PQclear(PQexec(conn_.get(), "ROLLBACK"));
    }
  }

  bool next(StoredRow& row) override {
    if (++row_ >= rows_) {
      if (!open_) {
        return false;
      }
      page_ = conn_.query("FETCH " + std::to_string(kPageRows) + " FROM zc_scan");
      rows_ = PQntuples(page_.get());
      row_ = 0;
      if (rows_ < kPageRows) {  // the last page: end the snapshot
        open_ = false;
        conn_.exec("COMMIT");
      }
      if (rows_ == 0) {
        return false;
      }
    }
    const PGresult* r = page_.get();
    row.seq = static_cast<std::uint64_t>(pg::get_int64(r, row_, 0));
    row.payload = pg::get_bytes(r, row_, 1);
    if (fields_.columns) {
      row.columns = RowColumns{pg::get_int64(r, row_, 2), pg::get_int64(r, row_, 3),
                               pg::get_int64(r, row_, 4), true};  // typed columns: always integers
      row.link = pg::get_bytes(r, row_, 5);
    } else if (fields_.links) {
      row.link = pg::get_bytes(r, row_, 2);
    }
    return true;
  }

 private:
  pg::Connection& conn_;
  const ScanFields fields_;
  pg::Result page_;
  int rows_ = 0;
  int row_ = -1;
  bool open_ = false;
};
}  // namespace

PgSource::PgSource(std::string conninfo, std::string schema)
    : conninfo_(std::move(conninfo)),
      schema_(std::move(schema)),
      conn_(std::make_unique<pg::Connection>(conninfo_, schema_)) {}

template <class Read>
auto PgSource::retrying(Read read) {
  if (!conn_ || !conn_->ok()) {
    conn_.reset();
    conn_ = std::make_unique<pg::Connection>(conninfo_, schema_);
  }
  try {
    return read(*conn_);
  } catch (const StoreFailure& e) {
    if (e.error().kind() != StoreError::Kind::connection_lost) {
      throw;
    }
  }
  conn_.reset();
  conn_ = std::make_unique<pg::Connection>(conninfo_, schema_);
  return read(*conn_);
}

std::unique_ptr<PgSource> PgSource::open_read_only(const std::string& conninfo, const std::string& schema) {
  auto source = std::make_unique<PgSource>(conninfo, schema);
  pg::Connection& conn = *source->conn_;
  if (!pg::schema_exists(conn) || pg::recorded_schema_version(conn) == 0) {
    throw std::invalid_argument("no zonecall timeline in schema " + schema + " of PostgreSQL " + conn.name());
  }
  pg::check_schema_readable(conn);
  return source;
}

std::unique_ptr<RowCursor> PgSource::scan(ScanFields fields) {
  return retrying([&](pg::Connection& conn) -> std::unique_ptr<RowCursor> {
    return std::make_unique<PgCursor>(conn, fields);
  });
}

std::map<std::uint32_t, std::string> PgSource::policy_versions() {
  return retrying([](pg::Connection& conn) {
    std::map<std::uint32_t, std::string> out;
    const auto r = conn.query("SELECT version::bigint, fingerprint FROM policy_versions ORDER BY version");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out.emplace(static_cast<std::uint32_t>(pg::get_int64(r.get(), i, 0)),
                  std::string(pg::get_bytes(r.get(), i, 1)));
    }
    return out;
  });
}

std::vector<v1::TimelineEvent> PgSource::incident_events(std::uint64_t incident_id) {
  return retrying([&](pg::Connection& conn) {
    const auto r = conn.query("SELECT payload FROM timeline WHERE incident_id = $1 ORDER BY seq",
                              std::move(pg::Params().int64(static_cast<std::int64_t>(incident_id))));
    std::vector<v1::TimelineEvent> out(static_cast<std::size_t>(PQntuples(r.get())));
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const auto bytes = pg::get_bytes(r.get(), i, 0);
      if (!out[i].ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        throw pg::Error(StoreError::Kind::corrupt,
                        "a row of incident " + std::to_string(incident_id) + " holds no readable event");
      }
    }
    return out;
  });
}

std::uint64_t PgSource::incident_id_bound() {
  // A row holds at least its 32-byte link and a payload, so the table's
  // size bounds the rows, whatever a forged seq or id says.
  const auto r = retrying([](pg::Connection& conn) {
    return conn.query(
        "SELECT greatest(0, least(coalesce((SELECT max(incident_id) FROM timeline), 0), "
        "coalesce((SELECT max(seq) FROM timeline), 0), pg_total_relation_size('timeline') / 64))::bigint");
  });
  return static_cast<std::uint64_t>(pg::get_int64(r.get(), 0, 0));
}

}  // namespace zonecall
