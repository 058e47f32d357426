#include "engine/store/timeline_reader.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/store/event_pipeline.hpp"

namespace zonecall {

void read_all_events(sqlite::Database& db, const std::function<void(const v1::TimelineEvent&)>& each) {
  EventPipeline events(db, EventPipeline::Mode::kTrust);
  events.for_each([&](EventPipeline::Row& row) { each(*row.event()); });  // kTrust: never null
}

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
}  // namespace

TimelineReader::TimelineReader(const std::string& path)
    : db_(reading_uri(path), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI) {
  sqlite3_busy_timeout(db_.handle(), 5000);
  // Read the file through a memory map rather than a read() per page: the
  // audit reads every page once, and the copies were a tenth of its reading
  // thread. Only here, a read-only tool: with a map, a disk error arrives as
  // a signal instead of an error code, which the server must not risk.
  db_.exec("PRAGMA mmap_size = 17179869184");  // up to 16 GiB
}

void TimelineReader::for_each_event(const std::function<void(const v1::TimelineEvent&)>& each) {
  read_all_events(db_, each);
}

std::vector<v1::TimelineEvent> TimelineReader::incident_events(std::uint64_t incident_id) {
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

std::map<std::uint32_t, std::string> TimelineReader::policy_versions() {
  return read_policy_versions(db_);
}

std::uint64_t TimelineReader::incident_id_bound() {
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

std::map<std::uint32_t, std::string> read_policy_versions(sqlite::Database& db) {
  std::map<std::uint32_t, std::string> out;
  sqlite::Statement q(db, "SELECT version, fingerprint FROM policy_versions ORDER BY version");
  while (q.step()) {
    out.emplace(static_cast<std::uint32_t>(q.column_int64(0)), std::string(q.column_text(1)));
  }
  return out;
}

}  // namespace zonecall
