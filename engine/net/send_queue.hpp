#pragma once
// A session's outgoing messages and their byte count, kept exact on every
// path: the dispatcher pages subscriptions by queued_bytes(). No I/O here;
// the session starts a write for front() and reports when it is done.
#include <cstddef>
#include <deque>
#include <memory>
#include <string>

namespace zonecall::net {

class SendQueue {
 public:
  struct Message {
    std::shared_ptr<const std::string> bytes;
    bool binary = true;
  };

  // Whether a message of this size may be queued: a single large one may go
  // out on an empty queue; only a backlog beyond the limit means the reader
  // is too slow.
  bool fits(std::size_t size, std::size_t limit) const {
    return messages_.empty() || bytes_ + size <= limit;
  }
  // Queues it; true when no write is in flight, so one should start.
  bool push(Message message);
  // The message to write next; it stays queued (and counted) while written.
  const Message& start_write();
  // The write of the front message ended, sent or failed.
  void finish_write();
  // Drops every message not being written now.
  void drop_unsent();

  bool empty() const { return messages_.empty(); }
  bool writing() const { return writing_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::deque<Message> messages_;
  std::size_t bytes_ = 0;
  bool writing_ = false;
};

}  // namespace zonecall::net
