#pragma once
// A checkpoint's snapshot of the committed state (issue 16): what an
// IncidentBook needs to carry on from a seq without folding the events
// before it. Only the committed state goes in; pending events never do.
#include <stdexcept>

#include "sla/incident_book.hpp"
#include "zonecall/v1/checkpoint.pb.h"

namespace zonecall::sla {

// The BookSnapshot.format this build writes and reads.
inline constexpr std::uint32_t kSnapshotFormat = 1;

// A snapshot that cannot be restored: another format, or one that does not
// hold together. Recovery skips such a checkpoint and starts earlier.
class BadSnapshot : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

v1::BookSnapshot snapshot_of(const IncidentBook& book);

// Loads `snapshot` into `book`, which must be new and in bulk load
// (begin_bulk_load): fold the events after the snapshot's next_seq - 1
// next, then end_bulk_load(). Throws BadSnapshot.
void restore_snapshot(IncidentBook& book, const v1::BookSnapshot& snapshot);

}  // namespace zonecall::sla
