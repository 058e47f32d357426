#pragma once
// A street office's schema in PostgreSQL, versioned like the SQLite file's:
// the schema_version table holds a row for each version it was brought to.
// Besides the timeline and the policy versions it holds the leader row
// (zonecall_leader) that fences group commits, and the function that checks it.
#include <cstdint>
#include <string>

#include "engine/store/postgres/pg.hpp"

namespace zonecall::pg {

// The version this binary writes.
inline constexpr int kSchemaVersion = 1;

// Whether the connection's schema exists (the read-only tools create nothing).
bool schema_exists(Connection& conn);

// The newest version recorded in the schema; 0 if it has no schema_version table.
int recorded_schema_version(Connection& conn);

// For the writer: creates the schema if it is missing and brings it to
// kSchemaVersion in one transaction, serialised against other engines doing
// the same. Throws StoreFailure on a schema newer than this binary, naming
// both versions.
void upgrade_schema(Connection& conn);

// For a reader: that StoreFailure on a newer schema.
void check_schema_readable(Connection& conn);

// Takes the leadership of the connection's timeline: in one transaction,
// the term goes to term + 1 (1 if none was taken yet) with `holder` and
// `now_ms` recorded, and the new term is returned. An UPDATE of the leader
// row waits for every group commit holding it FOR SHARE, so a commit under
// the old term either landed before or fails as fenced after.
std::int64_t take_leadership(Connection& conn, const std::string& holder, std::int64_t now_ms);

}  // namespace zonecall::pg
