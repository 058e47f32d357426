// The session's send queue: its byte count (which the dispatcher pages
// subscriptions by) stays exact on every path, an overflow close included.
#include <catch2/catch.hpp>

#include "engine/net/send_queue.hpp"

using zonecall::net::SendQueue;

namespace {
SendQueue::Message message(std::size_t size) {
  return {std::make_shared<const std::string>(size, 'x'), true};
}
}  // namespace

TEST_CASE("send queue: an overflow close drops the backlog and its bytes; the count returns to 0") {
  SendQueue queue;
  CHECK(queue.push(message(100)));  // starts a write
  queue.start_write();
  CHECK_FALSE(queue.push(message(200)));
  CHECK_FALSE(queue.push(message(300)));
  CHECK(queue.bytes() == 600);
  CHECK_FALSE(queue.fits(500, 1000));
  CHECK(queue.fits(400, 1000));

  queue.drop_unsent();  // what a send-queue overflow close does
  CHECK(queue.bytes() == 100);  // only the write in flight is left
  queue.finish_write();
  CHECK(queue.empty());
  CHECK(queue.bytes() == 0);
}

TEST_CASE("send queue: a failed write and the end of the session leave nothing counted") {
  SendQueue queue;
  queue.push(message(10));
  queue.start_write();
  queue.push(message(20));
  queue.finish_write();  // the write failed
  CHECK(queue.bytes() == 20);
  CHECK_FALSE(queue.writing());
  queue.drop_unsent();  // the session ends
  CHECK(queue.empty());
  CHECK(queue.bytes() == 0);
  CHECK(queue.fits(1 << 30, 1));  // one large message may go out on an empty queue
}
