// The load generator: Beast WebSocket clients on one thread.
//
//   loadgen echo   --port P [--connections 256] [--seconds 10] [--size 150]
//   loadgen ingest --port P [--connections 256] [--seconds 10] [--token demo-command]
//                  [--rate R] [--zone Z] [--scrape-ms MS]
//   loadgen fanout --port P [--staff-per-zone 20] [--reporters 9] [--seconds 10]
//   loadgen idle   --port P --server-pid PID [--connections 10000] [--token demo-command]
//   loadgen write-config FILE     the default config plus 20 bench staff per zone
//
// Each load keeps one request in flight per connection and prints the
// request rate and latency percentiles (request to answer). With
// --scrape-ms, another thread GETs /metrics that often during ingest.
#include <google/protobuf/text_format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/config/config.hpp"
#include "bench_util.hpp"
#include "engine/net/beast.hpp"
#include "engine/token.hpp"
#include "zonecall/v1/wire.pb.h"

using namespace zonecall;
using namespace zonecall::net;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  unsigned short port = 0;
  int connections = 256;
  int seconds = 10;
  int size = 150;
  int staff_per_zone = 20;
  int reporters = 9;
  long server_pid = 0;
  double rate = 0;  // ingest: requests per second in all; 0: as fast as answered
  std::string zone;  // ingest: report in this zone only (zone staff); empty: Z1..Z9
  std::string token = "demo-command";
  int scrape_ms = 0;  // ingest: GET /metrics this often from another thread; 0: never
};

std::vector<double> g_latencies_us;

void raise_fd_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

long rss_kb(long pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

void report(const char* what, double seconds, std::size_t done) {
  auto& v = g_latencies_us;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * v.size()))];
  };
  std::printf("%s: %zu in %.1f s = %.0f /s; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", what, done,
              seconds, done / seconds, pct(50) / 1000, pct(99) / 1000, pct(99.9) / 1000);
}

// One WebSocket connection that sends a request and waits for its answer.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  using OnMessage = std::function<void(Conn&, const std::string&)>;
  Conn(asio::io_context& io, unsigned short port, OnMessage on_message)
      : ws_(io), port_(port), on_message_(std::move(on_message)) {}

  void start(std::function<void(Conn&)> ready) {
    ready_ = std::move(ready);
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) {
            std::cerr << "connect: " << ec.message() << "\n";
            return;
          }
          self->ws_.async_handshake("127.0.0.1", "/v1/ws", [self](beast::error_code ec2) {
            if (ec2) {
              std::cerr << "handshake: " << ec2.message() << "\n";
              return;
            }
            self->ws_.binary(true);
            self->read();
            self->ready_(*self);
          });
        });
  }
  void send(std::string bytes) {
    out_.push_back(std::move(bytes));
    if (out_.size() == 1) {
      write();
    }
  }
  void send(const v1::ClientMessage& m) { send(m.SerializeAsString()); }
  std::uint64_t next_id() { return (static_cast<std::uint64_t>(index) << 40) + ++counter_ + base; }

  int index = 0;
  std::uint64_t base = 0;
  Clock::time_point sent_at;

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        return;
      }
      const std::string data = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->on_message_(*self, data);
      self->read();
    });
  }
  void write() {
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
  unsigned short port_;
  OnMessage on_message_;
  std::function<void(Conn&)> ready_;
  beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  std::uint64_t counter_ = 0;
};

double elapsed_us(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

v1::ClientMessage hello(const std::string& token, std::uint64_t id) {
  v1::ClientMessage m;
  m.set_request_id(id);
  m.mutable_hello()->set_token(token);
  return m;
}

// Runs the loop until the deadline, then stops the io_context.
void run_for(asio::io_context& io, int seconds, bool& measuring, Clock::time_point& started) {
  asio::steady_timer warmup(io, std::chrono::milliseconds(500));
  asio::steady_timer end(io);
  warmup.async_wait([&](auto) {
    measuring = true;
    started = Clock::now();
    end.expires_after(std::chrono::seconds(seconds));
    end.async_wait([&](auto) { io.stop(); });
  });
  io.run();
}

int echo(const Options& o) {
  asio::io_context io{1};
  bool measuring = false;
  Clock::time_point started;
  std::size_t done = 0;
  const std::string payload(static_cast<std::size_t>(o.size), 'e');
  std::vector<std::shared_ptr<Conn>> conns;
  for (int i = 0; i < o.connections; ++i) {
    auto c = std::make_shared<Conn>(io, o.port, [&](Conn& conn, const std::string&) {
      if (measuring) {
        g_latencies_us.push_back(elapsed_us(conn.sent_at));
        ++done;
      }
      conn.sent_at = Clock::now();
      conn.send(payload);
    });
    c->start([&](Conn& conn) {
      conn.sent_at = Clock::now();
      conn.send(payload);
    });
    conns.push_back(c);
  }
  run_for(io, o.seconds, measuring, started);
  report("echo msgs", std::chrono::duration<double>(Clock::now() - started).count(), done);
  return 0;
}

// GETs /metrics every `every_ms` until `stop`, on its own connection each
// time, the way a Prometheus server scrapes; prints how many and how long.
class Scraper {
 public:
  Scraper(unsigned short port, int every_ms) {
    if (every_ms > 0) {
      thread_ = std::thread([this, port, every_ms] { run(port, every_ms); });
    }
  }
  ~Scraper() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
      std::sort(took_ms_.begin(), took_ms_.end());
      std::printf("metrics scrapes: %zu, each p50 %.2f ms, max %.2f ms\n", took_ms_.size(),
                  took_ms_.empty() ? 0.0 : took_ms_[took_ms_.size() / 2],
                  took_ms_.empty() ? 0.0 : took_ms_.back());
    }
  }

 private:
  void run(unsigned short port, int every_ms) {
    asio::io_context io;
    while (!stop_) {
      const auto start = Clock::now();
      beast::tcp_stream stream(io);
      stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
      request.set(http::field::host, "127.0.0.1");
      http::write(stream, request);
      beast::flat_buffer buffer;
      http::response<http::string_body> response;
      http::read(stream, buffer, response);
      took_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      std::this_thread::sleep_until(start + std::chrono::milliseconds(every_ms));
    }
  }
  std::atomic<bool> stop_{false};
  std::vector<double> took_ms_;
  std::thread thread_;
};

// Report, discover, respond, resolve, again; one request in flight.
int ingest(const Options& o) {
  const Scraper scraper(o.port, o.scrape_ms);
  asio::io_context io{1};
  bool measuring = false;
  Clock::time_point started;
  std::size_t done = 0;
  std::size_t errors = 0;
  const auto base = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count() / 1000);
  std::vector<std::shared_ptr<Conn>> conns;
  std::vector<int> step(static_cast<std::size_t>(o.connections), 0);
  std::vector<std::uint64_t> incident(static_cast<std::size_t>(o.connections), 0);
  std::size_t sent_total = 0;
  const auto paced_from = Clock::now();
  std::function<void(Conn&)> next = [&](Conn& conn) {
    // Pacing: past the allowed rate, try again in a millisecond.
    if (o.rate > 0 && static_cast<double>(sent_total) >=
                          o.rate * std::chrono::duration<double>(Clock::now() - paced_from).count()) {
      auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(1));
      timer->async_wait([timer, &next, c = conn.shared_from_this()](auto) { next(*c); });
      return;
    }
    ++sent_total;
    v1::ClientMessage m;
    m.set_request_id(conn.next_id());
    const auto i = static_cast<std::size_t>(conn.index - 1);
    switch (step[i]) {
      case 0: {
        auto* r = m.mutable_report();
        r->set_zone_id(o.zone.empty() ? "Z" + std::to_string(1 + conn.index % 9) : o.zone);
        r->set_category("sanitation");
        r->set_location("bench");
        break;
      }
      case 1:
        m.mutable_discover()->set_incident_id(incident[i]);
        break;
      case 2:
        m.mutable_respond()->set_incident_id(incident[i]);
        break;
      default:
        m.mutable_resolve()->set_incident_id(incident[i]);
    }
    conn.sent_at = Clock::now();
    conn.send(m);
  };
  for (int i = 0; i < o.connections; ++i) {
    auto c = std::make_shared<Conn>(io, o.port, [&](Conn& conn, const std::string& data) {
      v1::ServerMessage m;
      m.ParseFromString(data);
      if (m.request_id() == 0) {
        return;  // a push
      }
      const auto idx = static_cast<std::size_t>(conn.index - 1);
      if (m.has_welcome()) {
        next(conn);
        return;
      }
      if (!m.has_ack()) {
        if (errors++ == 0) {
          std::fprintf(stderr, "first error: %s\n", m.ShortDebugString().c_str());
        }
        step[idx] = 0;
        next(conn);
        return;
      }
      if (measuring) {
        g_latencies_us.push_back(elapsed_us(conn.sent_at));
        ++done;
      }
      if (step[idx] == 0) {
        incident[idx] = m.ack().incident_id();
      }
      step[idx] = (step[idx] + 1) % 4;
      next(conn);
    });
    c->index = i + 1;
    c->base = base;
    c->start([&](Conn& conn) { conn.send(hello(o.token, conn.next_id())); });
    conns.push_back(c);
  }
  run_for(io, o.seconds, measuring, started);
  report("ingest requests", std::chrono::duration<double>(Clock::now() - started).count(), done);
  if (errors > 0) {
    std::printf("errors: %zu\n", errors);
  }
  return errors == 0 ? 0 : 1;
}

// 20 on-duty staff per zone; reporters push new incidents. Latency: from the
// report to the last staff member's NEW alert.
int fanout(const Options& o) {
  asio::io_context io{1};
  bool measuring = false;
  Clock::time_point started;
  std::size_t done = 0;
  const auto base = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count() / 1000);
  std::map<std::uint64_t, Clock::time_point> sent;          // request id -> sent
  std::map<std::uint64_t, Clock::time_point> reported;      // incident -> sent
  std::map<std::uint64_t, std::pair<int, Clock::time_point>> alerts;  // incident -> count, last
  int on_duty = 0;
  std::vector<std::shared_ptr<Conn>> conns;
  auto complete = [&](std::uint64_t incident) {
    auto a = alerts.find(incident);
    auto r = reported.find(incident);
    if (a == alerts.end() || r == reported.end() || a->second.first < o.staff_per_zone) {
      return;
    }
    if (measuring) {
      g_latencies_us.push_back(std::chrono::duration<double, std::micro>(a->second.second - r->second).count());
      ++done;
    }
    alerts.erase(a);
    reported.erase(r);
  };
  const int staff_total = 9 * o.staff_per_zone;
  std::vector<std::shared_ptr<Conn>> reporters;
  auto send_report = [&](Conn& conn) {
    v1::ClientMessage m;
    m.set_request_id(conn.next_id());
    auto* r = m.mutable_report();
    r->set_zone_id("Z" + std::to_string(1 + conn.index % 9));
    r->set_category("sanitation");
    sent[m.request_id()] = Clock::now();
    conn.send(m);
  };
  for (int z = 1; z <= 9; ++z) {
    for (int k = 1; k <= o.staff_per_zone; ++k) {
      auto c = std::make_shared<Conn>(io, o.port, [&](Conn& conn, const std::string& data) {
        v1::ServerMessage m;
        m.ParseFromString(data);
        if (m.has_welcome()) {
          v1::ClientMessage duty;
          duty.set_request_id(conn.next_id());
          duty.mutable_set_duty()->set_on_duty(true);
          conn.send(duty);
        } else if (m.has_ack()) {
          if (++on_duty == staff_total) {
            for (auto& r : reporters) {
              send_report(*r);
            }
          }
        } else if (m.has_alert() && m.alert().reason() == v1::NEW) {
          auto& a = alerts[m.alert().incident().incident_id()];
          ++a.first;
          a.second = Clock::now();
          complete(m.alert().incident().incident_id());
        }
      });
      c->index = z * 1000 + k;
      c->base = base;
      const std::string token = "bench-z" + std::to_string(z) + "-" + std::to_string(k);
      c->start([&, token](Conn& conn) { conn.send(hello(token, conn.next_id())); });
      conns.push_back(c);
    }
  }
  for (int i = 0; i < o.reporters; ++i) {
    auto c = std::make_shared<Conn>(io, o.port, [&](Conn& conn, const std::string& data) {
      v1::ServerMessage m;
      m.ParseFromString(data);
      if (m.has_ack() && sent.count(m.request_id())) {
        reported[m.ack().incident_id()] = sent[m.request_id()];
        sent.erase(m.request_id());
        complete(m.ack().incident_id());
        send_report(conn);
      }
    });
    c->index = i + 1;
    c->base = base;
    c->start([&](Conn& conn) { conn.send(hello(o.token, conn.next_id())); });
    reporters.push_back(c);
  }
  run_for(io, o.seconds, measuring, started);
  report(("fan-out incidents (report to the last of " + std::to_string(o.staff_per_zone) + " alerts)").c_str(),
         std::chrono::duration<double>(Clock::now() - started).count(), done);
  return 0;
}

// N idle connections (signed in and subscribed to zonecall, or bare for the
// echo server): the server's RSS growth per connection.
int idle(const Options& o) {
  asio::io_context io{1};
  const long before = rss_kb(o.server_pid);
  int ready = 0;
  const bool bare = o.token.empty();
  const auto base = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count() / 1000);
  std::vector<std::shared_ptr<Conn>> conns;
  auto check_done = [&] {
    if (++ready == o.connections) {
      io.stop();
    }
  };
  for (int i = 0; i < o.connections; ++i) {
    auto c = std::make_shared<Conn>(io, o.port, [&](Conn& conn, const std::string& data) {
      v1::ServerMessage m;
      m.ParseFromString(data);
      if (m.has_welcome()) {
        v1::ClientMessage sub;
        sub.set_request_id(conn.next_id());
        sub.mutable_subscribe()->set_after_seq(m.welcome().last_seq());
        conn.send(sub);
      } else if (m.has_subscribed()) {
        check_done();
      }
    });
    c->index = i + 1;
    c->base = base;
    c->start([&, bare](Conn& conn) {
      if (bare) {
        check_done();
      } else {
        conn.send(hello(o.token, conn.next_id()));
      }
    });
    conns.push_back(c);
  }
  asio::steady_timer limit(io, std::chrono::seconds(120));
  limit.async_wait([&](auto) { io.stop(); });
  io.run();
  io.restart();
  io.run_for(std::chrono::seconds(1));  // let the server settle
  const long after = rss_kb(o.server_pid);
  std::printf("idle connections: %d ready of %d; server RSS %ld -> %ld KiB = %.0f bytes per connection\n", ready,
              o.connections, before, after, (after - before) * 1024.0 / std::max(1, ready));
  return ready == o.connections ? 0 : 1;
}

int write_config(const std::string& path) {
  auto config = config::parse(config::default_config_text(), "default");
  for (int z = 1; z <= 9; ++z) {
    for (int k = 1; k <= 20; ++k) {
      auto* s = config.add_staff();
      s->set_id("bench-z" + std::to_string(z) + "-" + std::to_string(k));
      s->set_name(s->id());
      s->set_role(v1::GRID_WORKER);
      s->set_zone_id("Z" + std::to_string(z));
      s->set_token_sha256(sha256_hex(s->id()));  // the token is the id
    }
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  std::ofstream(path) << text;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc < 2 ? "" : argv[1];
  if (mode == "write-config" && argc == 3) {
    return write_config(argv[2]);
  }
  bench::CommandLine args(
      "loadgen echo   --port P [--connections 256] [--seconds 10] [--size 150]\n"
      "       loadgen ingest --port P [--connections 256] [--seconds 10] [--token T] [--rate R] [--zone Z]\n"
      "                      [--scrape-ms MS]\n"
      "       loadgen fanout --port P [--staff-per-zone 20] [--reporters 9] [--seconds 10]\n"
      "       loadgen idle   --port P --server-pid PID [--connections 10000] [--token T]\n"
      "       loadgen write-config FILE",
      argc, argv, 2);
  if (mode != "echo" && mode != "ingest" && mode != "fanout" && mode != "idle") {
    args.fail(mode == "write-config" ? "write-config takes one FILE" : "unknown mode '" + mode + "'");
  }
  Options o;
  o.port = static_cast<unsigned short>(args.integer("--port", 0, 1, 65535));
  if (o.port == 0) {
    args.fail("--port is required");
  }
  if (mode != "idle") {
    o.seconds = static_cast<int>(args.integer("--seconds", o.seconds, 1, 3600));
  }
  if (mode == "echo") {
    o.connections = static_cast<int>(args.integer("--connections", o.connections, 1, 100'000));
    o.size = static_cast<int>(args.integer("--size", o.size, 1, 1 << 20));
  } else if (mode == "ingest") {
    o.connections = static_cast<int>(args.integer("--connections", o.connections, 1, 100'000));
    o.token = args.text("--token", o.token);
    o.rate = args.number("--rate", o.rate);
    o.zone = args.text("--zone", o.zone);
    o.scrape_ms = static_cast<int>(args.integer("--scrape-ms", o.scrape_ms, 0, 600'000));
  } else if (mode == "fanout") {
    o.staff_per_zone = static_cast<int>(args.integer("--staff-per-zone", o.staff_per_zone, 1, 10'000));
    o.reporters = static_cast<int>(args.integer("--reporters", o.reporters, 1, 10'000));
  } else if (mode == "idle") {
    o.connections = static_cast<int>(args.integer("--connections", 10'000, 1, 100'000));
    o.token = args.text("--token", o.token);
    o.server_pid = static_cast<long>(args.integer("--server-pid", 0, 1));
    if (o.server_pid == 0) {
      args.fail("--server-pid is required");
    }
  }
  args.finish();
  raise_fd_limit();
  if (mode == "echo") return echo(o);
  if (mode == "ingest") return ingest(o);
  if (mode == "fanout") return fanout(o);
  return idle(o);
}
