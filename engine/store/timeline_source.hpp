#pragma once
// A stored timeline, read: the streaming scan that recovery, `zonecall
// replay` and the audit walk (through EventPipeline, which reads it on a
// thread of its own), and the few lookups they need besides. Every backend
// implements it; read-only ones come from open_source() (open_store.hpp),
// and a store's own from TimelineStore::source().
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// The values a row repeats from its event so that queries need not parse
// it: the live engine finds an incident's events by incident_id, auditors
// query kind and at_ms. The audit checks them against the event.
struct RowColumns {
  std::int64_t incident_id = 0;
  std::int64_t kind = 0;  // TimelineEvent.kind field number
  std::int64_t at_ms = 0;
  bool integers = true;   // all three stored as integers (SQLite's columns hold any type)
};

// Which parts of each row a scan reads: reading less is faster, and
// recovery needs only the events and their links.
struct ScanFields {
  bool links = false;    // StoredRow::link
  bool columns = false;  // StoredRow::columns
};

// One stored event. The views stay valid until the cursor moves on.
struct StoredRow {
  std::uint64_t seq = 0;
  std::string_view payload;  // the serialized v1::TimelineEvent, as stored
  std::string_view link;     // its hash-chain link (ScanFields::links)
  RowColumns columns;        // ScanFields::columns
};

class RowCursor {
 public:
  virtual ~RowCursor() = default;
  // The next row in seq order; false after the last. Throws StoreFailure.
  virtual bool next(StoredRow& row) = 0;
};

class TimelineSource {
 public:
  virtual ~TimelineSource() = default;
  // Every stored row in seq order. One thread at a time uses a source and
  // its cursor (EventPipeline's reading thread, while the caller waits).
  virtual std::unique_ptr<RowCursor> scan(ScanFields fields) = 0;
  // Every policy version recorded: version -> fingerprint
  // (config::policy_fingerprint).
  virtual std::map<std::uint32_t, std::string> policy_versions() = 0;
  // One incident's events in seq order; throws StoreFailure (corrupt) on
  // one it cannot read.
  virtual std::vector<v1::TimelineEvent> incident_events(std::uint64_t incident_id) = 0;
  // How many incident ids the timeline can hold, for reserving memory: its
  // highest id, capped by what its storage could hold, so that a forged id
  // cannot inflate it. Needs no scan.
  virtual std::uint64_t incident_id_bound() = 0;
};

}  // namespace zonecall
