#include "engine/net/send_queue.hpp"

#include <cassert>

namespace zonecall::net {

bool SendQueue::push(Message message) {
  bytes_ += message.bytes->size();
  messages_.push_back(std::move(message));
  return !writing_;
}

const SendQueue::Message& SendQueue::start_write() {
  assert(!messages_.empty() && !writing_);
  writing_ = true;
  return messages_.front();
}

void SendQueue::finish_write() {
  assert(writing_);
  writing_ = false;
  bytes_ -= messages_.front().bytes->size();
  messages_.pop_front();
}

void SendQueue::drop_unsent() {
  // The message in flight stays: its buffer belongs to the write.
  const std::size_t keep = writing_ ? 1 : 0;
  while (messages_.size() > keep) {
    bytes_ -= messages_.back().bytes->size();
    messages_.pop_back();
  }
}

}  // namespace zonecall::net
