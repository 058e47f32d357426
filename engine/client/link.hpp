#pragma once
// One WebSocket connection of `zonecall client` to one server URL: connects
// asynchronously (with a timeout, so an unreachable host is just a failed
// try), reads, and writes queued one at a time. The session above it decides
// what to send and where to go next.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

#include "engine/client/server_list.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::client {

class LinkHandler {
 public:
  virtual void on_open() = 0;
  virtual void on_message(const v1::ServerMessage& message) = 0;
  // The connection failed or ended; `opened` says whether on_open came first.
  virtual void on_end(const std::string& why, bool opened) = 0;

 protected:
  ~LinkHandler() = default;
};

class Link {
 public:
  // Starts connecting; the handler hears on_open or on_end. `tls` is used
  // for wss:// URLs only and must outlive the link.
  static std::shared_ptr<Link> open(boost::asio::io_context& io, const ServerUrl& url,
                                    boost::asio::ssl::context& tls, LinkHandler& handler);
  virtual ~Link() = default;
  virtual void send(std::string bytes) = 0;
  // Closes normally; on_end follows.
  virtual void close() = 0;
  // The handler hears nothing more; the connection is dropped.
  virtual void abandon() = 0;
};

}  // namespace zonecall::client
