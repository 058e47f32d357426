#pragma once
// B5: a raw scan of a PostgreSQL timeline, every column of every row,
// through a binary cursor 4,096 rows a fetch in one REPEATABLE READ READ
// ONLY transaction, as zonecall's own reader fetches (pg_source.cpp).
#include <cstdint>
#include <string>

#include "bench_util.hpp"
#include "engine/store/postgres/pg.hpp"

namespace zonecall::bench {

inline double raw_pg_scan_rows_per_s(const std::string& uri, std::uint64_t& rows) {
  pg::Connection conn(uri, "public");
  const auto started = std::chrono::steady_clock::now();
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  conn.exec("DECLARE scan NO SCROLL CURSOR FOR SELECT seq, incident_id, kind, at_ms, actor, payload, hash FROM timeline ORDER BY seq");
  rows = 0;
  std::uint64_t bytes = 0;
  for (;;) {
    const auto page = conn.query("FETCH 4096 FROM scan");
    const int n = PQntuples(page.get());
    for (int i = 0; i < n; ++i) {
      bytes += static_cast<std::uint64_t>(pg::get_int64(page.get(), i, 0) + pg::get_int64(page.get(), i, 1) +
                                          pg::get_int64(page.get(), i, 2) + pg::get_int64(page.get(), i, 3)) +
               pg::get_bytes(page.get(), i, 4).size() + pg::get_bytes(page.get(), i, 5).size() +
               pg::get_bytes(page.get(), i, 6).size();
    }
    rows += static_cast<std::uint64_t>(n);
    if (n == 0) {
      break;
    }
  }
  conn.exec("COMMIT");
  const double s = seconds_since(started);
  if (bytes == 0) {
    std::printf("(empty)\n");
  }
  return static_cast<double>(rows) / s;
}

}  // namespace zonecall::bench
