#include "engine/store/postgres/pg_schema.hpp"

namespace zonecall::pg {

namespace {
// What brings a schema from version N-1 to N, at index N-1. The columns are
// the SQLite file's; bigint where SQLite's INTEGER holds 64 bits.
constexpr const char* kUpgrades[kSchemaVersion] = {
    R"sql(
CREATE TABLE timeline (
  seq         bigint  PRIMARY KEY,   -- gap-free, in commit order
  incident_id bigint  NOT NULL,
  kind        integer NOT NULL,      -- TimelineEvent.kind field number
  at_ms       bigint  NOT NULL,      -- server time
  actor       text    NOT NULL,
  payload     bytea   NOT NULL,      -- the whole zonecall.v1.TimelineEvent
  hash        bytea   NOT NULL       -- sha256(previous hash || payload)
);
CREATE INDEX timeline_by_incident ON timeline(incident_id);
CREATE TABLE policy_versions (
  version      integer PRIMARY KEY,
  fingerprint  text    NOT NULL UNIQUE,  -- config::policy_fingerprint()
  first_use_ms bigint  NOT NULL
);
CREATE TABLE zonecall_leader (
  id       integer PRIMARY KEY CHECK (id = 1),
  term     bigint  NOT NULL,
  holder   text    NOT NULL,
  since_ms bigint
);
-- The fence: a group commit under `expected` runs this first, in its own
-- transaction. FOR SHARE holds the row until COMMIT, so a takeover's UPDATE
-- waits for the commit, and a commit after the takeover sees the new term.
CREATE FUNCTION zonecall_check_term(expected bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  current_term bigint;
BEGIN
  SELECT term INTO current_term FROM zonecall_leader WHERE id = 1 FOR SHARE;
  IF current_term IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'fenced: this engine writes under term %, but the current term is %',
      expected, coalesce(current_term::text, 'none')
      USING ERRCODE = 'ZCF01';
  END IF;
END
$$;
)sql",
};

// One lock for every schema upgrade in the database (an arbitrary key), so
// two engines starting at once do not both create the tables.
constexpr const char* kUpgradeLock = "SELECT pg_advisory_xact_lock(7468921533)";

void refuse_newer(Connection& conn, int version) {
  if (version > kSchemaVersion) {
    throw Error(StoreError::Kind::other,
                "the schema " + conn.schema() + " of PostgreSQL " + conn.name() + " has schema version " +
                    std::to_string(version) + ", newer than this zonecall knows (version " +
                    std::to_string(kSchemaVersion) + "): run the zonecall that wrote it, or a newer one");
  }
}
}  // namespace

bool schema_exists(Connection& conn) {
  return PQntuples(conn.query("SELECT 1 FROM pg_namespace WHERE nspname = $1",
                              std::move(Params().text(conn.schema())))
                       .get()) == 1;
}

int recorded_schema_version(Connection& conn) {
  const auto table = conn.query("SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL",
                                std::move(Params().text(conn.schema())));
  if (*PQgetvalue(table.get(), 0, 0) == 0) {  // binary bool: 0 or 1
    return 0;
  }
  const auto newest = conn.query("SELECT coalesce(max(version), 0)::bigint FROM schema_version");
  return static_cast<int>(get_int64(newest.get(), 0, 0));
}

void upgrade_schema(Connection& conn) {
  if (schema_exists(conn)) {
    const int version = recorded_schema_version(conn);
    refuse_newer(conn, version);
    if (version == kSchemaVersion) {
      return;  // takes no lock: a current schema starts at once
    }
  }
  Transaction tx(conn);
  conn.exec(kUpgradeLock);
  if (!schema_exists(conn)) {  // checked first: CREATE needs a right that using it does not
    char* ident = PQescapeIdentifier(conn.get(), conn.schema().c_str(), conn.schema().size());
    const std::string quoted = ident != nullptr ? ident : conn.schema();
    PQfreemem(ident);
    conn.exec("CREATE SCHEMA " + quoted);
  }
  int version = recorded_schema_version(conn);  // another engine may have upgraded it meanwhile
  refuse_newer(conn, version);
  conn.exec("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY)");
  for (int next = version + 1; next <= kSchemaVersion; ++next) {
    conn.exec(kUpgrades[next - 1]);
    conn.query("INSERT INTO schema_version(version) VALUES($1::bigint)", std::move(Params().int64(next)));
  }
  tx.commit();
}

void check_schema_readable(Connection& conn) { refuse_newer(conn, recorded_schema_version(conn)); }

std::int64_t take_leadership(Connection& conn, const std::string& holder, std::int64_t now_ms) {
  const auto r = conn.query(
      "INSERT INTO zonecall_leader(id, term, holder, since_ms) VALUES(1, 1, $1, $2) "
      "ON CONFLICT (id) DO UPDATE SET term = zonecall_leader.term + 1, holder = EXCLUDED.holder, "
      "since_ms = EXCLUDED.since_ms RETURNING term",
      std::move(Params().text(holder).int64(now_ms)));
  return get_int64(r.get(), 0, 0);
}

}  // namespace zonecall::pg
