#pragma once
// Every timeline event in seq order, read and parsed on a thread of its own
// and handed on in batches, so the caller folds or replays them in parallel:
// recovery and the audit spend about as long reading as folding
// (bench/RESULTS.md, benchmarks 4 and 6). The audit also has it check the
// hash chain and the seqs on that thread.
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

// What the chain check found: intact, or the first place it breaks.
struct ChainVerdict {
  bool intact = true;
  std::uint64_t first_broken_seq = 0;
  std::string problem;
  std::uint64_t rows = 0;
};

class EventPipeline {
 public:
  enum class Mode {
    kTrust,       // recovery: a row that holds no readable event is an error
    kCheckChain,  // the audit: check the chain; such a row breaks it, and is skipped
  };
  // `db` must outlive this object, and nothing else may use it during
  // for_each, which reads it on another thread.
  EventPipeline(sqlite::Database& db, Mode mode);
  ~EventPipeline();  // stops and joins the thread if for_each was left by a throw
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  // Calls `each` for every readable event in seq order, with its stored
  // bytes. Rethrows what the reading thread threw: a database error, or in
  // kTrust mode sqlite::Error (SQLITE_CORRUPT) for an unreadable row.
  void for_each(const std::function<void(const v1::TimelineEvent&, std::string_view stored)>& each);
  // The chain check's finding (kCheckChain), valid once for_each returned.
  const ChainVerdict& verdict() const { return verdict_; }

 private:
  // Rows, parsed into an arena that is reset when the batch is reused, so no
  // event costs a malloc or a free. The reader parses when it checks the
  // chain (the audit's replay is the heavier half); otherwise the consumer
  // parses, unless it is behind (see finish_batch()).
  struct Batch {
    google::protobuf::Arena arena;
    std::vector<std::uint64_t> seqs;             // each row's seq column
    std::string stored;                          // the rows' bytes, back to back
    std::vector<std::size_t> ends;               // where each row's bytes end
    std::vector<const v1::TimelineEvent*> events;  // if parsed here, one per row; null: not readable
    std::string_view row(std::size_t i) const;  // row i's stored bytes
    void clear();
  };
  static constexpr std::size_t kBatchRows = 4096;
  static constexpr std::size_t kBatches = 4;  // in flight between the threads

  void read();  // the thread's body
  void stop();  // ask the thread to finish, and join it
  static const v1::TimelineEvent* parse(Batch& batch, std::string_view payload);  // null: unreadable
  void check_row(Batch& batch, std::uint64_t seq, std::string_view payload, std::string_view hash);
  void broken(std::uint64_t seq, std::string problem);
  std::unique_ptr<Batch> take_free();
  void finish_batch(std::unique_ptr<Batch> batch);  // hands it on, maybe parsed
  void hand_on(std::unique_ptr<Batch> batch);

  sqlite::Database& db_;
  const Mode mode_;
  ChainVerdict verdict_;
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

}  // namespace zonecall
