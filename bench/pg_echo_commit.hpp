#pragma once
// B4's commit: what zonecall's PostgreSQL writer does for a group, with
// nothing of zonecall's own. One transaction per group in one pipelined
// round trip (BEGIN, one multi-row INSERT from unnest of arrays, COMMIT,
// Sync), rows of seq, the frame as payload and a 32-byte sha256 chain link.
// synchronous_commit is whatever the cluster has, as for zonecall.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/store/postgres/pg.hpp"

namespace zonecall::bench {

class PgEchoCommit {
 public:
  // Connects to `uri` and creates the table `echo` anew; throws pg::Error.
  explicit PgEchoCommit(const std::string& uri);
  // Commits one row per payload; throws pg::Error if the COMMIT did not succeed.
  void commit(const std::vector<std::string_view>& payloads);

 private:
  std::unique_ptr<pg::Connection> conn_;
  std::int64_t next_seq_ = 1;
  std::string link_;
};

}  // namespace zonecall::bench
