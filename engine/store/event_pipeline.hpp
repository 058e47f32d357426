#pragma once
// Every timeline event in seq order, scanned from any backend's
// TimelineSource and parsed on a thread of its own, and handed on in
// batches, so the caller folds or replays them in parallel:
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

#include "engine/store/hash_chain.hpp"
#include "engine/store/timeline_source.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

// Every event of a source in seq order, for `zonecall replay` and the
// tests; throws StoreFailure (corrupt) on a row that holds no readable event.
void read_all_events(TimelineSource& source, const std::function<void(const v1::TimelineEvent&)>& each);

class EventPipeline {
 public:
  enum class Mode {
    kTrust,        // a row that holds no readable event is an error
    kCheckHashes,  // recovery: kTrust, and the reading thread checks the seqs and
                   // the hash chain (not the columns, which need every row parsed)
    kCheckChain,   // the audit: check the chain and the columns; an unreadable
                   // row breaks it, and is skipped. The chain also breaks where a
                   // row's columns are not its event's.
  };
  // `source` must outlive this object, and nothing else may use it during
  // for_each, which scans it on another thread.
  EventPipeline(TimelineSource& source, Mode mode);
  ~EventPipeline();  // stops and joins the thread if for_each was left by a throw
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  class Row;
  // Calls `each` for every row in seq order, but for those the reading
  // thread found unreadable (kCheckChain: the verdict says so). Rethrows
  // what the reading thread threw (the source's StoreFailure); in kTrust and
  // kCheckHashes modes throws StoreFailure (corrupt) for an unreadable row.
  // (The audit checks the integer columns, not the actor: reading a text
  // column cost as much as the three integers together, bench/RESULTS.md.)
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
  void check_row(Batch& batch, std::size_t i, const RowColumns& columns, std::string_view link);
  // Breaks the chain at row i if its columns are not its event's.
  static void check_columns(ChainVerdict& verdict, const Batch& batch, std::size_t i,
                            const v1::TimelineEvent& event);
  std::unique_ptr<Batch> take_free();
  void finish_batch(std::unique_ptr<Batch> batch);  // hands it on, maybe parsed
  void hand_on(std::unique_ptr<Batch> batch);

  TimelineSource& source_;
  const Mode mode_;
  // The first break found: in verdict_ on the reading thread, in
  // found_by_consumer_ on the consumer's (the earlier seq wins at the end).
  ChainVerdict verdict_;
  ChainVerdict found_by_consumer_;  // in rows the reading thread left unparsed
  ChainVerifier chain_;

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
