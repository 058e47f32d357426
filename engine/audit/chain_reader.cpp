#include "engine/audit/chain_reader.hpp"

#include "engine/token.hpp"

namespace zonecall::audit {

namespace {
struct Stopped {};  // thrown inside the row loop to leave it early
}  // namespace

void ChainReader::Batch::clear() {
  events.clear();  // before the arena that owns them
  arena.Reset();
  stored.clear();
  ends.clear();
}

ChainReader::ChainReader(TimelineReader& reader) : reader_(reader) {
  for (std::size_t i = 0; i < kBatches; ++i) {
    free_.push_back(std::make_unique<Batch>());
  }
}

ChainReader::~ChainReader() { stop(); }

void ChainReader::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ChainReader::broken(std::uint64_t seq, std::string problem) {
  if (verdict_.intact) {
    verdict_.intact = false;
    verdict_.first_broken_seq = seq;
    verdict_.problem = std::move(problem);
  }
}

void ChainReader::check_row(Batch& batch, std::uint64_t seq, std::string_view payload,
                            std::string_view hash) {
  ++verdict_.rows;
  if (seq != expected_seq_) {
    broken(expected_seq_, seq > expected_seq_ ? "events " + std::to_string(expected_seq_) + ".." +
                                                    std::to_string(seq - 1) + " are missing"
                                              : "seq " + std::to_string(seq) + " out of order");
  }
  expected_seq_ = seq + 1;
  if (sha256_chain(previous_hash_, payload) != hash) {
    broken(seq, "the hash of seq " + std::to_string(seq) +
                    " does not match its content and the previous link");
  }
  previous_hash_.assign(hash);  // go on from the stored link
  auto* event = google::protobuf::Arena::CreateMessage<v1::TimelineEvent>(&batch.arena);
  if (!event->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    broken(seq, "seq " + std::to_string(seq) + " holds no readable event");
    event = nullptr;
  } else if (event->seq() != seq) {
    broken(seq, "row " + std::to_string(seq) + " holds the event of seq " + std::to_string(event->seq()));
  }
  batch.stored.append(payload);
  batch.ends.push_back(batch.stored.size());
  batch.events.push_back(event);
}

std::unique_ptr<ChainReader::Batch> ChainReader::take_free() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return stopping_ || !free_.empty(); });
  if (stopping_) {
    throw Stopped{};
  }
  auto batch = std::move(free_.front());
  free_.pop_front();
  lock.unlock();
  // Cleared here, by the thread that filled it: the strings its events own
  // were allocated by this thread, and freeing them here keeps malloc's
  // arenas thread-local.
  batch->clear();
  return batch;
}

void ChainReader::hand_on(std::unique_ptr<Batch> batch) {
  {
    std::lock_guard lock(mutex_);
    full_.push_back(std::move(batch));
  }
  changed_.notify_all();
}

void ChainReader::read() {
  try {
    auto batch = take_free();
    reader_.for_each_row([&](std::uint64_t seq, std::string_view payload, std::string_view hash) {
      check_row(*batch, seq, payload, hash);
      if (batch->events.size() == kBatchRows) {
        hand_on(std::move(batch));
        batch = take_free();
      }
    });
    if (!batch->events.empty()) {
      hand_on(std::move(batch));
    }
  } catch (const Stopped&) {
  } catch (...) {
    std::lock_guard lock(mutex_);
    failure_ = std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  changed_.notify_all();
}

void ChainReader::for_each(
    const std::function<void(const v1::TimelineEvent&, std::string_view stored)>& each) {
  thread_ = std::thread([this] { read(); });
  while (true) {
    std::unique_ptr<Batch> batch;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return done_ || !full_.empty(); });
      if (full_.empty()) {
        break;  // done, and every batch consumed
      }
      batch = std::move(full_.front());
      full_.pop_front();
    }
    std::size_t begin = 0;
    for (std::size_t i = 0; i < batch->events.size(); ++i) {
      const std::string_view stored(batch->stored.data() + begin, batch->ends[i] - begin);
      begin = batch->ends[i];
      if (batch->events[i] != nullptr) {
        each(*batch->events[i], stored);
      }
    }
    {
      std::lock_guard lock(mutex_);
      free_.push_back(std::move(batch));
    }
    changed_.notify_all();
  }
  thread_.join();
  if (failure_) {
    std::rethrow_exception(failure_);
  }
}

}  // namespace zonecall::audit
