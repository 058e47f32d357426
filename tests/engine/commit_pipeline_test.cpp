// The commit pipeline's answers, when the store gives many at once (one
// transaction holding many batches, as after a restart's backlog): each is
// handled in its own turn, so a deadline that falls due meanwhile waits for
// one batch, not for all of them.
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

TEST_CASE("commit pipeline: a timer that falls due runs between answers the store gave at once") {
  boost::asio::io_context io;
  HeldStore store;
  sla::PolicyHistory policies;
  sla::IncidentBook book(&policies);
  std::vector<std::string> order;
  CommitPipeline pipeline(io, store, book,
                          {.folded = [](const v1::TimelineEvent&) {},
                           .committed = [&](std::uint64_t batch, const auto&, bool) {
                             order.push_back("batch " + std::to_string(batch));
                           },
                           .failed = [](const StoreError&) {}});
  constexpr int kBatches = 20;
  std::vector<int> durable;
  for (int i = 1; i <= kBatches; ++i) {
    pipeline.submit({}, [&durable, i](const StoreError& error) {
      REQUIRE_FALSE(error);
      durable.push_back(i);
    });
  }
  boost::asio::steady_timer deadline(io);
  boost::asio::post(io, [&] {
    deadline.expires_at(boost::asio::steady_timer::clock_type::time_point::min());  // already due
    deadline.async_wait([&](const boost::system::error_code&) { order.push_back("deadline"); });
    store.release();  // twenty answers posted in one burst
  });
  io.run();

  REQUIRE(durable.size() == kBatches);
  for (int i = 0; i < kBatches; ++i) {
    CHECK(durable[i] == i + 1);  // still in append order
  }
  REQUIRE(order.size() == kBatches + 1);
  const auto at = std::find(order.begin(), order.end(), "deadline") - order.begin();
  INFO("the deadline ran after " << at << " of " << kBatches << " batches");
  CHECK(at <= 2);
  CHECK_FALSE(pipeline.in_flight());
}
