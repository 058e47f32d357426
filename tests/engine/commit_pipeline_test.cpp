// The commit pipeline's answers, when the store gives many at once (one
// transaction holding many batches): a restart's backlog, in slices, is
// answered a slice per turn, so a deadline that falls due meanwhile waits
// for one slice, not for all; the small answers of ingest go in one turn.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/dispatch/commit_pipeline.hpp"

using namespace zonecall;

namespace {
// Holds every append until release(), then answers them all in one go.
class HeldStore : public TimelineStore {
 public:
  TimelineSource& source() override { throw std::logic_error("not used"); }
  void record_policy(const std::string&, sla::Millis, PolicyDone done) override { done(1, std::nullopt); }
  void start() override {}
  void stop() override {}
  void append(Batch, AppendDone done) override { held_.push_back(std::move(done)); }
  bool has_room() const override { return true; }
  bool commit_in_doubt() const override { return false; }
  void read_incident(std::uint64_t, ReadDone done) override { done({}, std::nullopt); }
  void read_after(std::uint64_t, std::size_t, PageDone done) override { done({}, 0, std::nullopt); }
  void resume() override {}
  void lead(const std::string&, sla::Millis, LeadDone done) override { done(0, StoreError(StoreError::Kind::other, "not used")); }
  void render_metrics(std::string&) const override {}

  void release() {
    for (auto& done : held_) {
      done(std::nullopt);
    }
    held_.clear();
  }

 private:
  std::vector<AppendDone> held_;
};
}  // namespace

namespace {
// Appends `batches` batches of `events` empty events each and answers them
// all at once; a deadline falls due as the first answer is handled. Returns
// after how many batches the deadline ran.
long deadline_runs_after(int batches, std::size_t events) {
  boost::asio::io_context io;
  HeldStore store;
  sla::PolicyHistory policies;
  sla::IncidentBook book(&policies);
  std::vector<std::string> order;
  boost::asio::steady_timer deadline(io);
  CommitPipeline pipeline(io, store, book,
                          {.folded = [](const v1::TimelineEvent&) {},
                           .committed = [&](std::uint64_t batch, const auto&, bool) {
                             order.push_back("batch " + std::to_string(batch));
                             if (batch == 1) {
                               deadline.expires_at(boost::asio::steady_timer::clock_type::time_point::min());
                               deadline.async_wait([&](const boost::system::error_code&) {
                                 order.push_back("deadline");
                               });
                             }
                           },
                           .failed = [](const StoreError&) {}});
  std::vector<int> durable;
  for (int i = 1; i <= batches; ++i) {
    pipeline.submit(std::vector<v1::TimelineEvent>(events), [&durable, i](const StoreError& error) {
      REQUIRE_FALSE(error);
      durable.push_back(i);
    });
  }
  boost::asio::post(io, [&] { store.release(); });  // every answer posted in one burst
  io.run();

  REQUIRE(durable.size() == static_cast<std::size_t>(batches));
  for (int i = 0; i < batches; ++i) {
    CHECK(durable[i] == i + 1);  // still in append order
  }
  REQUIRE(order.size() == static_cast<std::size_t>(batches) + 1);
  CHECK_FALSE(pipeline.in_flight());
  return std::find(order.begin(), order.end(), "deadline") - order.begin();
}
}  // namespace

TEST_CASE("commit pipeline: a timer that falls due runs between answers the store gave at once") {
  // Twenty slices of a restart's backlog.
  const auto at = deadline_runs_after(20, CommitPipeline::kEventsPerTurn);
  INFO("the deadline ran after " << at << " of 20 batches");
  CHECK(at <= 2);  // the turn of batch 1, or of batch 2 already posted
}

TEST_CASE("commit pipeline: the small answers of one group commit are handled in one turn") {
  // A turn each would let the first clients' next requests reach the writer
  // alone, and the group commits shrink (bench/RESULTS.md).
  const auto at = deadline_runs_after(64, 2);
  INFO("the deadline ran after " << at << " of 64 batches");
  CHECK(at == 64);
}
