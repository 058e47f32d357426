#pragma once
// The timeline file's schema, versioned: the schema_version table holds a
// row for each version the file was brought to. Files written before the
// table existed hold version 1's tables without it.
#include <string>

#include "engine/store/sqlite/sqlite.hpp"

namespace zonecall::sqlite {

// The version this binary writes.
inline constexpr int kSchemaVersion = 1;

// The newest version recorded in the file; 0 if it has no schema_version
// table (a new file, or one written before the table existed).
int recorded_schema_version(Database& db);

// For the writer: brings the file to kSchemaVersion in one transaction,
// creating its tables if it is new. Takes no write lock when the file is
// current, so a server starts while another connection holds the lock.
// Throws StoreFailure on a file newer than this binary, naming both versions.
void upgrade_schema(Database& db, const std::string& path);

// For a read-only reader: throws that StoreFailure on a file newer than this
// binary; an older one is read as it is.
void check_schema_readable(Database& db, const std::string& path);

}  // namespace zonecall::sqlite
