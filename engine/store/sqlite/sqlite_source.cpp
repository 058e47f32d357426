#include "engine/store/sqlite/sqlite_source.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/store/sqlite/schema.hpp"

namespace zonecall {

namespace {
// A file: URI for a path (RFC 3986 escapes for what SQLite would read as
// query or fragment).
std::string file_uri(const std::string& path) {
  std::string out = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

bool on_read_only_filesystem(const std::string& path) {
  struct statvfs fs {};
  return statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0;
}

// A WAL reader must create the -shm file, which a read-only filesystem (a
// copy handed over on read-only media) forbids. Without a WAL to read, the
// main file holds every commit, and SQLite may read it as immutable; with
// a WAL but no -shm, immutable would silently drop the WAL's commits.
std::string reading_uri(const std::string& path) {
  if (!on_read_only_filesystem(path)) {
    return file_uri(path);
  }
  std::error_code ec;
  const auto wal = std::filesystem::file_size(path + "-wal", ec);
  if (ec || wal == 0) {
    return file_uri(path) + "?immutable=1";
  }
  if (!std::filesystem::exists(path + "-shm")) {
    throw sqlite::Error(SQLITE_CANTOPEN, "the database " + path +
                                             " is on a read-only filesystem with a -wal file but no -shm "
                                             "file: copy all three files, or checkpoint it before copying");
  }
  return file_uri(path);  // SQLite reads a WAL through a read-only -shm
}

// Every row in seq order, with the columns asked for.
class SqliteCursor final : public RowCursor {
 public:
  SqliteCursor(sqlite::Database& db, ScanFields fields)
      : fields_(fields),
        rows_(db, fields.columns ? "SELECT seq, payload, incident_id, kind, at_ms, hash "
                                   "FROM timeline ORDER BY seq"
                  : fields.links ? "SELECT seq, payload, hash FROM timeline ORDER BY seq"
                                 : "SELECT seq, payload FROM timeline ORDER BY seq") {}

  bool next(StoredRow& row) override {
    if (!rows_.step()) {
      return false;
    }
    row.seq = static_cast<std::uint64_t>(rows_.column_int64(0));
    row.payload = rows_.column_blob(1);
    if (fields_.columns) {
      // A real, text or blob value would read back converted, and still
      // not match the engine's integer queries.
      row.columns = RowColumns{
          rows_.column_int64(2), rows_.column_int64(3), rows_.column_int64(4),
          rows_.column_is_integer(2) && rows_.column_is_integer(3) && rows_.column_is_integer(4)};
      row.link = rows_.column_blob(5);
    } else if (fields_.links) {
      row.link = rows_.column_blob(2);
    }
    return true;
  }

 private:
  const ScanFields fields_;
  sqlite::Statement rows_;
};
}  // namespace

SqliteSource::SqliteSource(std::unique_ptr<sqlite::Database> owned)
    : owned_(std::move(owned)), db_(*owned_) {}

std::unique_ptr<SqliteSource> SqliteSource::open_read_only(const std::string& path) {
  auto db = std::make_unique<sqlite::Database>(reading_uri(path), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
  sqlite3_busy_timeout(db->handle(), 5000);
  // Read the file through a memory map rather than a read() per page: the
  // audit reads every page once, and the copies were a tenth of its reading
  // thread. Only here, for the read-only tools: with a map, a disk error
  // arrives as a signal instead of an error code, which the server must not risk.
  db->exec("PRAGMA mmap_size = 17179869184");  // up to 16 GiB
  sqlite::check_schema_readable(*db, path);
  return std::unique_ptr<SqliteSource>(new SqliteSource(std::move(db)));
}

std::unique_ptr<RowCursor> SqliteSource::scan(ScanFields fields) {
  return std::make_unique<SqliteCursor>(db_, fields);
}

std::vector<v1::TimelineEvent> SqliteSource::incident_events(std::uint64_t incident_id) {
  std::vector<v1::TimelineEvent> out;
  sqlite::Statement q(db_, "SELECT payload FROM timeline WHERE incident_id = ? ORDER BY seq");
  q.bind(1, static_cast<std::int64_t>(incident_id));
  while (q.step()) {
    const auto bytes = q.column_blob(0);
    if (!out.emplace_back().ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      throw sqlite::Error(SQLITE_CORRUPT, "a row of incident " + std::to_string(incident_id) +
                                              " holds no readable event");
    }
  }
  return out;
}

std::uint64_t SqliteSource::incident_id_bound() {
  // One max() per query: SQLite answers a lone max() from the index, but
  // scans the table for two. count(*) would be exact, but reads a whole
  // index (2 s for a year).
  auto one = [&](const char* sql) {
    sqlite::Statement q(db_, sql);
    return q.step() ? std::max<std::int64_t>(0, q.column_int64(0)) : 0;
  };
  // A row holds at least its 32-byte link and a payload, so the file's size
  // bounds the rows, whatever a forged seq or id says.
  constexpr std::int64_t kMinRowBytes = 64;
  const std::int64_t rows_that_fit =
      one("PRAGMA page_count") * one("PRAGMA page_size") / kMinRowBytes;
  return static_cast<std::uint64_t>(std::min({one("SELECT max(incident_id) FROM timeline"),
                                              one("SELECT max(seq) FROM timeline"),
                                              rows_that_fit}));
}

std::map<std::uint32_t, std::string> SqliteSource::policy_versions() {
  std::map<std::uint32_t, std::string> out;
  sqlite::Statement q(db_, "SELECT version, fingerprint FROM policy_versions ORDER BY version");
  while (q.step()) {
    out.emplace(static_cast<std::uint32_t>(q.column_int64(0)), std::string(q.column_text(1)));
  }
  return out;
}

}  // namespace zonecall
