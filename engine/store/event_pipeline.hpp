#pragma once
// Every timeline event in seq order, read and parsed on a thread of its own
// and handed on in batches, so the caller folds or replays them in parallel:
// recovery and the audit spend about as long reading as folding
// (bench/RESULTS.md, benchmarks 4 and 6). The audit also has it check the
// hash chain and the seqs on that thread, and leaves clock events unparsed:
// the replay matches most of them by their bytes alone.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <google/protobuf/arena.h>

#include "engine/store/sqlite.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// What the chain check found: intact, or the first place it breaks. It
// also breaks where a row's integer columns are not the event it holds: the
// live engine finds an incident's events by incident_id, and auditors query
// kind and at_ms.
struct ChainVerdict {
  bool intact = true;
  std::uint64_t first_broken_seq = 0;
  std::string problem;
  std::uint64_t rows = 0;
};

class EventPipeline {
 public:
  enum class Mode {
    kTrust,        // a row that holds no readable event is an error
    kCheckHashes,  // recovery: kTrust, and the reading thread checks the seqs and
                   // the hash chain (not the columns, which need every row parsed)
    kCheckChain,   // the audit: check the chain and the columns; an unreadable
                   // row breaks it, and is skipped
  };
  // `db` must outlive this object, and nothing else may use it during
  // for_each, which reads it on another thread.
  EventPipeline(sqlite::Database& db, Mode mode);
  ~EventPipeline();  // stops and joins the thread if for_each was left by a throw
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  class Row;
  // The integer columns a timeline row repeats from its event, for queries.
  // (The actor column is not checked: reading a text column cost as much as
  // the three integers together, bench/RESULTS.md.)
  struct RowColumns {
    std::int64_t incident_id;
    std::int64_t kind;
    std::int64_t at_ms;
    bool integers;  // all three stored as INTEGER
  };
  // Calls `each` for every row in seq order, but for those the reading
  // thread found unreadable (kCheckChain: the verdict says so). Rethrows
  // what the reading thread threw: a database error, or in kTrust mode
  // sqlite::Error (SQLITE_CORRUPT) for an unreadable row.
  void for_each(const std::function<void(Row&)>& each);
  // The chain check's finding (kCheckChain), valid once for_each returned.
  const ChainVerdict& verdict() const { return verdict_; }

 private:
  // Rows, parsed into an arena that is reset when the batch is reused, so no
  // event costs a malloc or a free. The reader parses when it checks the
  // chain (the audit's replay is the heavier half), but for clock events,
  // which the consumer parses only if it must (Row::event()); otherwise the
  // consumer parses, unless it is behind (see finish_batch()).
  struct Batch {
    google::protobuf::Arena arena;
    std::vector<std::uint64_t> seqs;             // each row's seq column
    std::string stored;                          // the rows' bytes, back to back
    std::vector<std::size_t> ends;               // where each row's bytes end
    // If the reading thread parsed (some of) the batch, one per row: the
    // event, or null when unreadable or, with `left`, not parsed yet.
    std::vector<const v1::TimelineEvent*> events;
    std::vector<bool> left;                      // kCheckChain: left for the consumer
    std::vector<RowColumns> columns;             // kCheckChain: each row's
    std::string_view row(std::size_t i) const;  // row i's stored bytes
    void clear();
  };
  static constexpr std::size_t kBatchRows = 4096;
  static constexpr std::size_t kBatches = 4;  // in flight between the threads

  void read();  // the thread's body
  void stop();  // ask the thread to finish, and join it
  static const v1::TimelineEvent* parse(Batch& batch, std::string_view payload);  // null: unreadable
  // parse() of row i, and its seq and columns checked against the event's
  // (kCheckChain).
  static const v1::TimelineEvent* parse_checked(ChainVerdict& verdict, Batch& batch, std::size_t i);
  // Appends a row to the batch; in kTrust mode, parsed by the consumer, or
  // by finish_batch() if the consumer is behind.
  void add_row(Batch& batch, std::uint64_t seq, std::string_view payload);
  // kCheckChain: checks row i (the one just added), and parses it unless it
  // is a clock event by its kind column.
  void check_row(Batch& batch, std::size_t i, const RowColumns& columns, std::string_view hash);
  // The seq and hash-chain part of check_row.
  void check_link(std::uint64_t seq, std::string_view payload, std::string_view hash);
  // Breaks the chain at row i if its columns are not its event's.
  static void check_columns(ChainVerdict& verdict, const Batch& batch, std::size_t i,
                            const v1::TimelineEvent& event);
  // Records the first break found: in verdict_ on the reading thread, in
  // found_by_consumer_ on the consumer's (the earlier seq wins at the end).
  static void broken(ChainVerdict& verdict, std::uint64_t seq, std::string problem);
  std::unique_ptr<Batch> take_free();
  void finish_batch(std::unique_ptr<Batch> batch);  // hands it on, maybe parsed
  void hand_on(std::unique_ptr<Batch> batch);

  sqlite::Database& db_;
  const Mode mode_;
  ChainVerdict verdict_;
  ChainVerdict found_by_consumer_;  // in rows the reading thread left unparsed
  std::uint64_t expected_seq_ = 1;
  std::string previous_hash_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Batch>> free_;
  std::deque<std::unique_ptr<Batch>> full_;
  bool done_ = false;       // the reader has handed on its last batch
  bool stopping_ = false;   // the consumer has gone: stop reading
  std::exception_ptr failure_;
  std::thread thread_;
};

// One row as for_each hands it on.
class EventPipeline::Row {
 public:
  std::uint64_t seq() const { return batch_.seqs[i_]; }
  std::string_view stored() const { return batch_.row(i_); }
  // The row's event, parsed now if the reading thread left it; null if the
  // row holds none (the verdict then says so).
  const v1::TimelineEvent* event();
  // The consumer knows the row's event by other means (the row's bytes are
  // this event's, serialized): checks the row's seq and columns against it,
  // as event() would. A row the reading thread parsed was checked there.
  void identified_as(const v1::TimelineEvent& event);

 private:
  friend class EventPipeline;
  Row(EventPipeline& pipeline, Batch& batch, std::size_t i, const v1::TimelineEvent* event,
      bool parsed)
      : pipeline_(pipeline), batch_(batch), i_(i), event_(event), parsed_(parsed) {}
  EventPipeline& pipeline_;
  Batch& batch_;
  std::size_t i_;
  const v1::TimelineEvent* event_;
  bool parsed_;
};

}  // namespace zonecall
