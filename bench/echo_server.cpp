// Baselines B1 and B2: a bare Beast WebSocket echo server, small and
// obviously correct. With --commit, each message is first appended as a row
// to a SQLite WAL table by one writer thread doing group commit, and echoed
// only after COMMIT (B2), with the same synchronous setting as zonecall.
// With --commit-pg, the same on PostgreSQL as zonecall's writer does it (B4,
// pg_echo_commit.hpp).
//
//   build/bench/echo_server [--port P] [--commit DB] [--synchronous full|normal]
//                           [--commit-pg URI]
#include <boost/asio/post.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "bench_util.hpp"
#include "pg_echo_commit.hpp"
#include "engine/net/beast.hpp"
#include "engine/store/sqlite/sqlite.hpp"

using namespace zonecall::net;
namespace sqlite = zonecall::sqlite;

namespace {

class Session;

// B2's and B4's writer: everything queued since the last commit, in one
// transaction, which `commit` makes on this writer's thread.
class GroupCommit {
 public:
  using Commit = std::function<void(const std::vector<std::string_view>&)>;
  GroupCommit(asio::io_context& io, Commit commit) : io_(io), commit_(std::move(commit)) {
    thread_ = std::thread([this] { run(); });
  }
  ~GroupCommit() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void append(std::shared_ptr<Session> s, std::string payload) {
    {
      std::lock_guard lock(mutex_);
      queue_.emplace_back(std::move(s), std::move(payload));
    }
    wake_.notify_one();
  }

 private:
  void run();
  asio::io_context& io_;
  Commit commit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::shared_ptr<Session>, std::string>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, GroupCommit* commit) : ws_(std::move(socket)), commit_(commit) {}
  void run() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (!ec) {
        self->read();
      }
    });
  }
  void echo(std::string payload) {
    out_.push_back(std::move(payload));
    if (out_.size() == 1) {
      write();
    }
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        return;
      }
      std::string payload = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (self->commit_ != nullptr) {
        self->commit_->append(self, std::move(payload));
      } else {
        self->echo(std::move(payload));
      }
      self->read();
    });
  }
  void write() {
    ws_.binary(true);
    ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        return;
      }
      self->out_.pop_front();
      if (!self->out_.empty()) {
        self->write();
      }
    });
  }
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  GroupCommit* commit_;
  std::deque<std::string> out_;
};

void GroupCommit::run() {
  std::vector<std::string_view> payloads;
  for (;;) {
    std::deque<std::pair<std::shared_ptr<Session>, std::string>> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;
      }
      batch.swap(queue_);
    }
    payloads.clear();
    for (const auto& item : batch) {
      payloads.push_back(item.second);
    }
    commit_(payloads);
    for (auto& [session, payload] : batch) {
      asio::post(io_, [s = std::move(session), p = std::move(payload)]() mutable { s->echo(std::move(p)); });
    }
  }
}

// B2: SQLite in WAL mode, synchronous as zonecall's --synchronous.
GroupCommit::Commit sqlite_commit(const std::string& path, bool full) {
  auto db = std::make_shared<sqlite::Database>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  db->exec("PRAGMA journal_mode=WAL");
  db->exec(full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  db->exec("CREATE TABLE IF NOT EXISTS echo(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)");
  auto insert = std::make_shared<sqlite::Statement>(*db, "INSERT INTO echo(payload) VALUES(?)");
  return [db, insert](const std::vector<std::string_view>& payloads) {
    db->exec("BEGIN IMMEDIATE");
    for (const auto payload : payloads) {
      insert->bind_blob(1, payload);
      insert->step();
      insert->reset();
    }
    db->exec("COMMIT");
  };
}

void accept(tcp::acceptor& acceptor, GroupCommit* commit) {
  acceptor.async_accept([&acceptor, commit](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      std::make_shared<Session>(std::move(socket), commit)->run();
    }
    accept(acceptor, commit);
  });
}

}  // namespace

int main(int argc, char** argv) {
  zonecall::bench::CommandLine args(
      "echo_server [--port P] [--commit DB] [--synchronous full|normal] [--commit-pg URI]",
                                    argc, argv, 1);
  const auto port = static_cast<unsigned short>(args.integer("--port", 0, 0, 65535));
  const std::string db = args.text("--commit", "");
  const std::string synchronous = args.text("--synchronous", "full");
  if (synchronous != "full" && synchronous != "normal") {
    args.fail("--synchronous is full or normal, not '" + synchronous + "'");
  }
  const bool full = synchronous == "full";
  const std::string pg_uri = args.text("--commit-pg", "");
  if (!db.empty() && !pg_uri.empty()) {
    args.fail("give --commit or --commit-pg, not both");
  }
  args.finish();
  asio::io_context io{1};
  std::unique_ptr<GroupCommit> commit;
  if (!db.empty()) {
    commit = std::make_unique<GroupCommit>(io, sqlite_commit(db, full));
  } else if (!pg_uri.empty()) {
    auto pg = std::make_shared<zonecall::bench::PgEchoCommit>(pg_uri);
    commit = std::make_unique<GroupCommit>(io, [pg](const auto& payloads) { pg->commit(payloads); });
  }
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  acceptor.set_option(asio::socket_base::reuse_address(true));
  std::cout << "echo listening on ws://127.0.0.1:" << acceptor.local_endpoint().port() << "/" << std::endl;
  accept(acceptor, commit.get());
  io.run();
}
