#include "engine/store/event_pipeline.hpp"

#include "engine/store/store_error.hpp"
#include "sla/replay.hpp"

namespace zonecall {

namespace {
struct Stopped {};  // thrown inside the row loop to leave it early
}  // namespace

void read_all_events(TimelineSource& source, const std::function<void(const v1::TimelineEvent&)>& each) {
  EventPipeline events(source, EventPipeline::Mode::kTrust);
  events.for_each([&](EventPipeline::Row& row) { each(*row.event()); });  // kTrust: never null
}

std::string_view EventPipeline::Batch::row(std::size_t i) const {
  const std::size_t begin = i == 0 ? 0 : ends[i - 1];
  return std::string_view(stored).substr(begin, ends[i] - begin);
}

void EventPipeline::Batch::clear() {
  events.clear();  // before the arena that owns them
  left.clear();
  columns.clear();
  arena.Reset();
  seqs.clear();
  stored.clear();
  ends.clear();
}

EventPipeline::EventPipeline(TimelineSource& source, Mode mode) : source_(source), mode_(mode) {
  for (std::size_t i = 0; i < kBatches; ++i) {
    free_.push_back(std::make_unique<Batch>());
  }
}

EventPipeline::~EventPipeline() { stop(); }

void EventPipeline::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void EventPipeline::add_row(Batch& batch, std::uint64_t seq, std::string_view payload) {
  ++verdict_.rows;
  batch.seqs.push_back(seq);
  batch.stored.append(payload);
  batch.ends.push_back(batch.stored.size());
}

void EventPipeline::check_row(Batch& batch, std::size_t i, const RowColumns& columns,
                              std::string_view link) {
  const std::uint64_t seq = batch.seqs[i];
  batch.columns.push_back(columns);
  chain_.check(seq, batch.row(i), link, verdict_);
  if (!columns.integers) {
    verdict_.broken(seq, "row " + std::to_string(seq) + " holds a column that is not an integer");
  }
  // The kind column only decides who parses; whoever does checks the
  // columns against the event (a lying kind column included).
  const bool leave = !sla::is_command_kind(columns.kind);
  batch.left.push_back(leave);
  batch.events.push_back(leave ? nullptr : parse_checked(verdict_, batch, i));
}

const v1::TimelineEvent* EventPipeline::parse_checked(ChainVerdict& verdict, Batch& batch, std::size_t i) {
  const std::uint64_t seq = batch.seqs[i];
  const v1::TimelineEvent* event = parse(batch, batch.row(i));
  if (event == nullptr) {
    verdict.broken(seq, "seq " + std::to_string(seq) + " holds no readable event");
  } else if (event->seq() != seq) {
    verdict.broken(seq, "row " + std::to_string(seq) + " holds the event of seq " +
                            std::to_string(event->seq()));
  } else {
    check_columns(verdict, batch, i, *event);
  }
  return event;
}

void EventPipeline::check_columns(ChainVerdict& verdict, const Batch& batch, std::size_t i,
                                  const v1::TimelineEvent& event) {
  const RowColumns& columns = batch.columns[i];
  const auto says = [&](const char* column, std::int64_t value, std::int64_t truth) {
    verdict.broken(batch.seqs[i], "row " + std::to_string(batch.seqs[i]) + "'s " + column +
                                      " column says " + std::to_string(value) + ", its event " +
                                      std::to_string(truth));
  };
  if (columns.incident_id != static_cast<std::int64_t>(event.incident_id())) {
    says("incident_id", columns.incident_id, static_cast<std::int64_t>(event.incident_id()));
  } else if (columns.kind != event.kind_case()) {
    says("kind", columns.kind, event.kind_case());
  } else if (columns.at_ms != event.at_ms()) {
    says("at_ms", columns.at_ms, event.at_ms());
  }
}

const v1::TimelineEvent* EventPipeline::Row::event() {
  if (!parsed_) {
    parsed_ = true;
    event_ = parse_checked(pipeline_.found_by_consumer_, batch_, i_);
  }
  return event_;
}

void EventPipeline::Row::identified_as(const v1::TimelineEvent& event) {
  if (parsed_) {
    return;  // the reading thread parsed and checked it
  }
  parsed_ = true;
  event_ = &event;
  if (event.seq() != seq()) {
    pipeline_.found_by_consumer_.broken(
        seq(), "row " + std::to_string(seq()) + " holds the event of seq " + std::to_string(event.seq()));
    return;
  }
  check_columns(pipeline_.found_by_consumer_, batch_, i_, event);
}

const v1::TimelineEvent* EventPipeline::parse(Batch& batch, std::string_view payload) {
  auto* event = google::protobuf::Arena::CreateMessage<v1::TimelineEvent>(&batch.arena);
  return event->ParseFromArray(payload.data(), static_cast<int>(payload.size())) ? event : nullptr;
}

std::unique_ptr<EventPipeline::Batch> EventPipeline::take_free() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return stopping_ || !free_.empty(); });
  if (stopping_) {
    throw Stopped{};
  }
  auto batch = std::move(free_.front());
  free_.pop_front();
  lock.unlock();
  // Cleared here, by the thread that filled it: most strings its events own
  // were allocated by this thread (the consumer's, of rows it parsed itself,
  // are few).
  batch->clear();
  return batch;
}

void EventPipeline::hand_on(std::unique_ptr<Batch> batch) {
  {
    std::lock_guard lock(mutex_);
    full_.push_back(std::move(batch));
  }
  changed_.notify_all();
}

void EventPipeline::finish_batch(std::unique_ptr<Batch> batch) {
  bool consumer_behind = false;
  {
    std::lock_guard lock(mutex_);
    consumer_behind = !full_.empty();
  }
  if (mode_ != Mode::kCheckChain && consumer_behind) {
    // The consumer still has batches to fold, so this thread would only wait
    // for a free one: parse this batch meanwhile. Which side is slower
    // depends on how fast fresh memory arrives for the fold (page zeroing
    // varied recovery by a factor of two, bench/RESULTS.md).
    for (std::size_t i = 0; i < batch->seqs.size(); ++i) {
      batch->events.push_back(parse(*batch, batch->row(i)));
    }
  }
  hand_on(std::move(batch));
}

void EventPipeline::read() {
  try {
    auto batch = take_free();
    const bool check = mode_ == Mode::kCheckChain;
    const bool hashes = mode_ == Mode::kCheckHashes;
    // Recovery trusts the columns, so it reads only what it folds and the links.
    const auto rows = source_.scan(ScanFields{check || hashes, check});
    StoredRow row;
    while (rows->next(row)) {
      add_row(*batch, row.seq, row.payload);
      if (hashes) {
        chain_.check(row.seq, batch->row(batch->seqs.size() - 1), row.link, verdict_);
      }
      if (check) {
        check_row(*batch, batch->seqs.size() - 1, row.columns, row.link);
      }
      if (batch->seqs.size() == kBatchRows) {
        finish_batch(std::move(batch));
        batch = take_free();
      }
    }
    if (!batch->seqs.empty()) {
      finish_batch(std::move(batch));
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

void EventPipeline::for_each(const std::function<void(Row&)>& each) {
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
    const bool parsed = batch->events.size() == batch->seqs.size();
    for (std::size_t i = 0; i < batch->seqs.size(); ++i) {
      const bool left = parsed && mode_ == Mode::kCheckChain && batch->left[i];
      const v1::TimelineEvent* event = parsed ? batch->events[i] : nullptr;
      if (mode_ != Mode::kCheckChain) {
        event = parsed ? event : parse(*batch, batch->row(i));
        if (event == nullptr || event->seq() != batch->seqs[i]) {
          throw StoreFailure(StoreError(StoreError::Kind::corrupt,
                                        "timeline row seq " + std::to_string(batch->seqs[i]) +
                                            " does not hold a readable event"));
        }
      }
      if (event != nullptr || left) {
        Row row(*this, *batch, i, event, !left);
        each(row);
        if (!row.parsed_) {
          row.event();  // a row the consumer passed over is still checked
        }
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
  // Of the two threads' first breaks, the earlier seq is the chain's first.
  if (!found_by_consumer_.intact &&
      (verdict_.intact || found_by_consumer_.first_broken_seq < verdict_.first_broken_seq)) {
    verdict_.intact = false;
    verdict_.first_broken_seq = found_by_consumer_.first_broken_seq;
    verdict_.problem = found_by_consumer_.problem;
  }
}

}  // namespace zonecall
