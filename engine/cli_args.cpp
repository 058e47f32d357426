#include "engine/cli_args.hpp"

#include <stdexcept>

#include "engine/store/open_store.hpp"
#include "engine/store/postgres/pg.hpp"

namespace zonecall::cli {

namespace {
// Options that take no value.
bool is_flag(const std::string& arg) { return arg == "--insecure" || arg == "--json"; }
}  // namespace

Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (is_flag(arg)) {
      a.options[arg.substr(2)] = "yes";
    } else if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        throw std::invalid_argument("option " + arg + " needs a value");
      }
      const std::string key = arg.substr(2);
      const std::string value = argv[++i];
      // `client --url A --url B` is `--url A,B`; for other options the last one counts.
      auto it = a.options.find(key);
      a.options[key] = key == "url" && it != a.options.end() ? it->second + "," + value : value;
    } else {
      a.positional.push_back(arg);
    }
  }
  return a;
}

std::string take(Args& a, const std::string& key, const std::string& fallback) {
  auto it = a.options.find(key);
  if (it == a.options.end()) {
    return fallback;
  }
  std::string v = it->second;
  a.options.erase(it);
  return v;
}

void reject_leftovers(const Args& a) {
  if (!a.options.empty()) {
    throw std::invalid_argument("unknown option --" + a.options.begin()->first);
  }
}

std::size_t to_size(const std::string& s, const char* what, std::size_t max) {
  try {
    std::size_t used = 0;
    auto v = std::stoull(s, &used);
    if (used == s.size() && v > 0 && v <= max) {
      return v;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(std::string(what) + " must be a number from 1 to " +
                              std::to_string(max) + ", not '" + s + "'");
}

std::size_t to_size_or_zero(const std::string& s, const char* what, std::size_t max) {
  if (s == "0") {
    return 0;
  }
  try {
    return to_size(s, what, max);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(std::string(what) + " must be a number from 0 to " + std::to_string(max) +
                                ", not '" + s + "'");
  }
}

Timeline take_timeline(Args& args) {
  const std::string db = take(args, "db", "");
  const std::string store = take(args, "store", "");
  const std::string schema = take(args, "pg-schema", "");
  if (!db.empty() && !store.empty()) {
    throw std::invalid_argument("give --db PATH (SQLite) or --store URI (PostgreSQL), not both");
  }
  if (pg::is_postgres_location(db)) {
    throw std::invalid_argument("--db is a SQLite file; give a PostgreSQL URI with --store");
  }
  if (store.empty()) {
    if (!schema.empty()) {
      throw std::invalid_argument("--pg-schema goes with --store URI");
    }
    const std::string path = db.empty() ? "zonecall.db" : db;
    return {path, StoreOptions::kDefaultPgSchema, false, path};
  }
  if (!pg::is_postgres_location(store)) {
    throw std::invalid_argument("--store wants a postgres:// or postgresql:// URI; a SQLite file is --db PATH");
  }
  Timeline t{store, schema, true, ""};
  try {
    // The office's schema: --pg-schema, or the string's search_path; both
    // may be given only if they agree.
    const std::string in_string = pg::schema_in_conninfo(store);
    if (!schema.empty() && !in_string.empty() && schema != in_string) {
      throw std::invalid_argument("--pg-schema " + schema + " and the connection string's search_path " +
                                  in_string + " name different schemas: give one");
    }
    if (t.pg_schema.empty() && !in_string.empty()) {
      t.pg_schema = in_string;
      try {
        pg::check_schema_name(in_string);
      } catch (const std::invalid_argument& e) {
        const std::string why = e.what();
        throw std::invalid_argument("--store: the connection string's search_path " +
                                    why.substr(std::string_view("--pg-schema ").size()));
      }
    }
    if (t.pg_schema.empty()) {
      t.pg_schema = StoreOptions::kDefaultPgSchema;
    }
    pg::check_schema_name(t.pg_schema);
    t.name = "PostgreSQL " + pg::describe(store) + ", schema " + t.pg_schema;
  } catch (const StoreFailure& e) {
    throw std::invalid_argument(std::string("--store: ") + e.what());
  }
  return t;
}

}  // namespace zonecall::cli
