#include "engine/store/sqlite/schema.hpp"

namespace zonecall::sqlite {

namespace {
// What brings a file from version N-1 to N, at index N-1. Version 1 is the
// schema zonecall wrote before the version table, hence IF NOT EXISTS: the
// same statements create a new file and leave those files' tables alone.
constexpr const char* kUpgrades[kSchemaVersion] = {
    R"sql(
CREATE TABLE IF NOT EXISTS timeline (
  seq         INTEGER PRIMARY KEY,   -- gap-free, in commit order
  incident_id INTEGER NOT NULL,
  kind        INTEGER NOT NULL,      -- TimelineEvent.kind field number
  at_ms       INTEGER NOT NULL,      -- server time
  actor       TEXT    NOT NULL,
  payload     BLOB    NOT NULL,      -- the whole zonecall.v1.TimelineEvent
  hash        BLOB    NOT NULL       -- sha256(previous hash || payload)
);
CREATE INDEX IF NOT EXISTS timeline_by_incident ON timeline(incident_id);
CREATE TABLE IF NOT EXISTS policy_versions (
  version      INTEGER PRIMARY KEY,
  fingerprint  TEXT    NOT NULL UNIQUE,  -- config::policy_fingerprint()
  first_use_ms INTEGER NOT NULL
);
)sql",
};

void refuse_newer(int version, const std::string& path) {
  if (version > kSchemaVersion) {
    throw StoreFailure(StoreError(
        StoreError::Kind::other,
        "the database " + path + " has schema version " + std::to_string(version) +
            ", newer than this zonecall knows (version " + std::to_string(kSchemaVersion) +
            "): run the zonecall that wrote it, or a newer one"));
  }
}
}  // namespace

int recorded_schema_version(Database& db) {
  Statement table(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
  if (!table.step()) {
    return 0;
  }
  Statement newest(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
  newest.step();
  return static_cast<int>(newest.column_int64(0));
}

void upgrade_schema(Database& db, const std::string& path) {
  int version = recorded_schema_version(db);
  refuse_newer(version, path);
  if (version == kSchemaVersion) {
    return;
  }
  Transaction tx(db);
  version = recorded_schema_version(db);  // another process may have upgraded it meanwhile
  refuse_newer(version, path);
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)");
  Statement record(db, "INSERT INTO schema_version(version) VALUES(?)");
  for (int next = version + 1; next <= kSchemaVersion; ++next) {
    db.exec(kUpgrades[next - 1]);
    record.bind(1, static_cast<std::int64_t>(next));
    record.step();
    record.reset();
  }
  tx.commit();
}

void check_schema_readable(Database& db, const std::string& path) {
  refuse_newer(recorded_schema_version(db), path);
}

}  // namespace zonecall::sqlite
