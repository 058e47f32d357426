#include "engine/client/client.hpp"

#include <boost/asio/post.hpp>

#include <iostream>
#include <thread>

#include "engine/client/console.hpp"

namespace zonecall::client {

int run_client(const ClientOptions& options) {
  boost::asio::io_context io;
  Console console(io, options);  // throws on a bad --url or --ca before anything starts
  console.start();
  // stdin may be a terminal, a pipe or a file; a plain thread reads it all.
  std::thread input([&io, &console] {
    for (std::string line; std::getline(std::cin, line);) {
      boost::asio::post(io, [&console, line] { console.on_line(line); });
    }
    boost::asio::post(io, [&console] { console.on_end_of_input(); });
  });
  input.detach();  // blocked in getline when the console is done
  io.run();
  return console.exit_code();
}

}  // namespace zonecall::client
