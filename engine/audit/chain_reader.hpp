#pragma once
// The audit's first stage, on a thread of its own: read every timeline row,
// check the hash chain and the seqs, and parse each event, handing them on in
// batches. The replay, the audit's other half, then runs on the caller's
// thread in parallel (a year's audit spends about as long in each half,
// bench/RESULTS.md, benchmark 6).
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

#include "engine/store/timeline_reader.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall::audit {

// What the chain check found: intact, or the first place it breaks.
struct ChainVerdict {
  bool intact = true;
  std::uint64_t first_broken_seq = 0;
  std::string problem;
  std::uint64_t rows = 0;
};

class ChainReader {
 public:
  // `reader` must outlive this object; for_each reads it on another thread.
  explicit ChainReader(TimelineReader& reader);
  ~ChainReader();  // stops and joins the thread if for_each was left by a throw
  ChainReader(const ChainReader&) = delete;
  ChainReader& operator=(const ChainReader&) = delete;

  // Calls `each` for every readable event in seq order, with its stored
  // bytes; a row that holds no readable event breaks the chain and is
  // skipped. Rethrows what the reading thread threw (a database error).
  void for_each(const std::function<void(const v1::TimelineEvent&, std::string_view stored)>& each);
  // Valid once for_each returned.
  const ChainVerdict& verdict() const { return verdict_; }

 private:
  // Rows parsed into an arena that is reset when the batch is reused, so no
  // event costs a malloc or a free.
  struct Batch {
    google::protobuf::Arena arena;
    std::string stored;                          // the rows' bytes, back to back
    std::vector<std::size_t> ends;               // where each row's bytes end
    std::vector<const v1::TimelineEvent*> events;  // null: not readable
    void clear();
  };
  static constexpr std::size_t kBatchRows = 4096;
  static constexpr std::size_t kBatches = 4;  // in flight between the threads

  void read();  // the thread's body
  void stop();  // ask the thread to finish, and join it
  void check_row(Batch& batch, std::uint64_t seq, std::string_view payload, std::string_view hash);
  void broken(std::uint64_t seq, std::string problem);
  std::unique_ptr<Batch> take_free();
  void hand_on(std::unique_ptr<Batch> batch);

  TimelineReader& reader_;
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

}  // namespace zonecall::audit
