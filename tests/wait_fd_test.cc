// Consumer::wait_fd(): an eventfd an event loop can wait on (ring/internal/wait_fd.h).
// Level-triggered readiness, end of stream, a dead producer, epoll next to a
// socket, a producer in another process, and the idle CPU cost.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::as_bytes;
using testing::as_string;
using testing::attach_consumer;
using testing::attach_producer;
using testing::ChildGuard;
using testing::ScopedRing;

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

// try_peek() until would_block, releasing; the payloads, concatenated.
std::string drain(Consumer& c) {
  std::string out;
  for (;;) {
    Peeked p = c.try_peek();
    if (!p) {
      REQUIRE(p.status == Status::would_block);
      return out;
    }
    out += as_string(p.record.bytes());
    c.release();
  }
}

// c's wait fd, armed: drained once (nothing waits yet), so it is readable
// only once a record or an end comes.
int armed_fd(Consumer& c) {
  auto fd = c.wait_fd();
  REQUIRE(fd);
  REQUIRE(*fd >= 0);
  CHECK(drain(c).empty());
  CHECK_FALSE(readable(*fd, 100));
  return *fd;
}

TEST_CASE("wait_fd: readable while records wait, clear once drained") {
  ScopedRing ring({});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  auto fd = c.wait_fd();
  REQUIRE(fd);
  REQUIRE(*fd >= 0);
  auto again = c.wait_fd();  // one fd per consumer
  REQUIRE(again);
  CHECK(*again == *fd);

  CHECK(drain(c).empty());  // arms the helper: not readable any more
  CHECK_FALSE(readable(*fd, 100));

  REQUIRE(p.write(as_bytes("one")) == Status::ok);
  REQUIRE(p.write(as_bytes("two")) == Status::ok);
  REQUIRE(readable(*fd, 5000));
  // Level-triggered: one record read, one left: still readable.
  Peeked first = c.try_peek();
  REQUIRE(first);
  CHECK(as_string(first.record.bytes()) == "one");
  c.release();
  CHECK(readable(*fd, 0));
  CHECK(drain(c) == "two");
  CHECK_FALSE(readable(*fd, 100));

  // Many rounds: no lost wake-up between a drain and the next publish.
  for (int i = 0; i < 2000; ++i) {
    const std::string rec = std::to_string(i);
    REQUIRE(p.write(as_bytes(rec)) == Status::ok);
    REQUIRE(readable(*fd, 5000));
    REQUIRE(drain(c) == rec);
  }
}

TEST_CASE("wait_fd: MPSC, readable only once a claimed record commits") {
  RingOptions o;
  o.kind = Kind::mpsc;
  ScopedRing ring(o);
  Producer a = attach_producer(ring.segment());
  Producer b = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  const int fd = armed_fd(c);
  // A claims first and holds its reservation; B commits behind it.
  auto ra = a.reserve(8);
  REQUIRE(ra);
  REQUIRE(b.write(as_bytes("b")) == Status::ok);
  // B's commit wakes the helper (a spurious readiness: records come in
  // claim order and A's busy record blocks B's). try_peek() finds nothing
  // and re-arms the fd.
  REQUIRE(readable(fd, 5000));
  CHECK(drain(c).empty());
  CHECK_FALSE(readable(fd, 100));
  std::memcpy(ra.bytes.data(), "a", 1);
  a.commit(1);
  REQUIRE(readable(fd, 5000));
  CHECK(drain(c) == "ab");
  CHECK_FALSE(readable(fd, 100));
}

TEST_CASE("wait_fd: end of stream stays readable") {
  ScopedRing ring({});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  const int fd = armed_fd(c);
  REQUIRE(p.write(as_bytes("last")) == Status::ok);
  p.close();
  REQUIRE(readable(fd, 5000));
  Peeked r = c.try_peek();
  REQUIRE(r);
  c.release();
  CHECK(c.try_peek().status == Status::closed);
  CHECK(readable(fd, 0));
  CHECK(readable(fd, 0));  // still: level-triggered at the end
}

TEST_CASE("wait_fd: a killed producer makes it readable (peer_dead)") {
  ScopedRing ring({});
  Consumer c = attach_consumer(ring.segment());
  testing::Beacon attached;
  ChildGuard children;
  const pid_t child = children.spawn([&] {
    Segment seg = ring.attach_again();
    auto prod = Producer::attach(seg);
    if (!prod) return 1;
    attached.signal();
    return testing::park_until_killed();
  });
  REQUIRE(attached.wait(10s));
  const int fd = armed_fd(c);
  children.kill_and_reap(child);
  REQUIRE(readable(fd, 5000));  // the helper reaps within ~a slice
  CHECK(c.try_peek().status == Status::peer_dead);
}

TEST_CASE("wait_fd: epoll next to a socket, producer in another process") {
  ScopedRing ring({});
  Consumer c = attach_consumer(ring.segment());
  auto fd = c.wait_fd();
  REQUIRE(fd);
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered, the default
  ev.data.fd = *fd;
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, *fd, &ev) == 0);
  ev.data.fd = sv[0];
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);

  // The child sends 100 records and 100 socket bytes, interleaved, then
  // closes its producer (end of stream).
  constexpr int kRounds = 100;
  ChildGuard children;
  const pid_t child = children.spawn([&] {
    Segment seg = ring.attach_again();
    auto prod = Producer::attach(seg);
    if (!prod) return 1;
    for (int i = 0; i < kRounds; ++i) {
      const std::string rec = "r" + std::to_string(i);
      if (prod->write(as_bytes(rec)) != Status::ok) return 2;
      const char b = 's';
      if (::write(sv[1], &b, 1) != 1) return 3;
      if (i % 10 == 0) std::this_thread::sleep_for(1ms);
    }
    prod->close();
    return 0;
  });

  int records = 0, socket_bytes = 0;
  bool ended = false;
  std::string expected_next = "r0";
  while (!ended || socket_bytes < kRounds) {
    epoll_event got[4];
    const int n = ::epoll_wait(ep, got, 4, 10000);
    REQUIRE(n > 0);  // never a 10 s silence
    for (int i = 0; i < n; ++i) {
      if (got[i].data.fd == sv[0]) {
        char buf[64];
        const ssize_t r = ::read(sv[0], buf, sizeof buf);
        REQUIRE(r > 0);
        socket_bytes += static_cast<int>(r);
        continue;
      }
      REQUIRE(got[i].data.fd == *fd);
      for (;;) {
        Peeked p = c.try_peek();
        if (p.status == Status::would_block) break;
        if (p.status == Status::closed) {
          ended = true;
          REQUIRE(::epoll_ctl(ep, EPOLL_CTL_DEL, *fd, nullptr) == 0);
          break;
        }
        REQUIRE(p);
        REQUIRE(as_string(p.record.bytes()) == expected_next);
        c.release();
        ++records;
        expected_next = "r" + std::to_string(records);
      }
    }
  }
  CHECK(records == kRounds);
  CHECK(socket_bytes == kRounds);
  const auto st = children.wait(child, 10s);
  CHECK(st.exited);
  CHECK(st.code == 0);
  ::close(ep);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("wait_fd: idle costs under 1% of a CPU") {
  ScopedRing ring({});
  Producer p = attach_producer(ring.segment());
  Consumer c = attach_consumer(ring.segment());
  const int fd = armed_fd(c);
  const auto cpu0 = testing::process_cpu_time(::getpid());
  const auto wall0 = std::chrono::steady_clock::now();
  CHECK_FALSE(readable(fd, 2000));  // 2 s idle, helper armed
  const auto wall = std::chrono::steady_clock::now() - wall0;
  const auto cpu = testing::process_cpu_time(::getpid()) - cpu0;
  REQUIRE(cpu0.count() >= 0);
  const double wall_ms =
      std::chrono::duration<double, std::milli>(wall).count();
  INFO("idle CPU " << cpu.count() / 1e6 << " ms over " << wall_ms << " ms");
  CHECK(cpu * 100 < wall);
  // Still works after the idle period.
  REQUIRE(p.write(as_bytes("late")) == Status::ok);
  REQUIRE(readable(fd, 5000));
  CHECK(drain(c) == "late");
}

TEST_CASE("wait_fd: survives a move, readable after close, futex only") {
  ScopedRing ring({});
  Producer p = attach_producer(ring.segment());
  std::optional<Consumer> c(attach_consumer(ring.segment()));
  const int fd = armed_fd(*c);
  Consumer moved(std::move(*c));
  c.reset();
  REQUIRE(p.write(as_bytes("x")) == Status::ok);
  REQUIRE(readable(fd, 5000));
  CHECK(drain(moved) == "x");
  CHECK_FALSE(readable(fd, 50));
  moved.close();
  CHECK(readable(fd, 0));
  CHECK_FALSE(moved.wait_fd());

  for (WaitStrategy w : {WaitStrategy::semaphore, WaitStrategy::spin}) {
    RingOptions o;
    o.wait = w;
    ScopedRing other(o);
    Consumer oc = attach_consumer(other.segment());
    auto r = oc.wait_fd();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
  }
}

// By hand (hidden, prints figures, asserts only that it ran):
//   bazel run -c opt //tests:wait_fd_test -- "[.latency]"
// Round trips main -> echo thread -> main, where the echo thread waits for
// each record either in a blocking peek() or in epoll_wait() on wait_fd().
// Median microseconds per round trip, both modes in one run.
double median_round_trip_us(bool use_fd, int rounds) {
  ScopedRing to_echo({}), to_main({});
  Producer ping = attach_producer(to_echo.segment());
  Consumer back = attach_consumer(to_main.segment());
  std::thread echo([&] {
    Consumer in = attach_consumer(to_echo.segment());
    Producer out = attach_producer(to_main.segment());
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (use_fd) {
      auto fd = in.wait_fd();
      REQUIRE(fd);
      ::epoll_ctl(ep, EPOLL_CTL_ADD, *fd, &ev);
    }
    for (int i = 0; i < rounds; ++i) {
      Peeked p;
      if (use_fd) {
        while (!(p = in.try_peek())) {
          if (p.status != Status::would_block) return;
          epoll_event got;
          ::epoll_wait(ep, &got, 1, -1);
        }
      } else {
        p = in.peek();
        if (!p) return;
      }
      const std::uint64_t v = p.record.size;
      in.release();
      (void)out.write(as_bytes(std::string(v, 'x')));
    }
    ::close(ep);
  });
  std::vector<double> us;
  for (int i = 0; i < rounds; ++i) {
    std::this_thread::sleep_for(200us);  // let the echo side go to sleep
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(ping.write(as_bytes("12345678")) == Status::ok);
    Peeked r = back.peek(10s);
    REQUIRE(r);
    back.release();
    us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - t0)
                     .count());
  }
  echo.join();
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

TEST_CASE("wait_fd: wake-up latency against a blocking peek", "[.latency]") {
  const int rounds = 2000;
  const double peek_us = median_round_trip_us(false, rounds);
  const double fd_us = median_round_trip_us(true, rounds);
  std::printf("median round trip, echo sleeping in peek(): %.1f us\n", peek_us);
  std::printf(
      "median round trip, echo sleeping in epoll on wait_fd(): "
      "%.1f us (%.2fx)\n",
      fd_us, fd_us / peek_us);
  CHECK(fd_us > 0);
}

}  // namespace
}  // namespace shmring
