// StreamReader for event loops: try_peek / try_peek_batch never wait, and
// wait_fd() follows the stream rules (ring/stream.h): between streams it
// stays unreadable until a producer writes or closes, where a Consumer's fd
// stays readable at the old end of stream.
#include <poll.h>

#include <array>
#include <string>

#include "ring/names.h"
#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::as_bytes;
using testing::as_string;
using testing::attach_producer;
using testing::ChildGuard;
using testing::ScopedRing;

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

constexpr int kLong = 5000;  // ms: only a failure waits this long

// A ring whose one stream ("old") a reader read to its end and left: the
// next reader attaches between streams.
void finished_stream(Segment& seg) {
  auto first = StreamReader::attach(seg);  // broadcast: attach before writing
  REQUIRE(first);
  {
    Producer p = attach_producer(seg);
    REQUIRE(p.write(as_bytes("old")) == Status::ok);
    p.close();
  }
  Peeked old = first->try_peek();
  REQUIRE(old);
  CHECK(as_string(old.record.bytes()) == "old");
  first->release();
  CHECK(first->try_peek().status == Status::closed);
}

Kind any_kind() { return GENERATE(Kind::spsc, Kind::mpsc, Kind::broadcast); }

// finished_stream(), then a reader attached between streams.
Result<StreamReader> attach_between_streams(Segment& seg) {
  finished_stream(seg);
  auto r = StreamReader::attach(seg);
  REQUIRE(r);
  return r;
}

TEST_CASE("between streams: would_block, an unreadable fd, then the records") {
  const Kind kind = any_kind();
  CAPTURE(kind_name(kind));
  ScopedRing ring({.kind = kind, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = attach_between_streams(seg);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
  std::array<Record, 4> recs;
  CHECK(r->try_peek_batch(recs).status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
  CHECK(r->peek(1ms).status == Status::timed_out);
  CHECK(r->waiting_for_producer());

  // An attach alone brings nothing to read.
  Producer p = attach_producer(seg);
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));

  REQUIRE(p.write(as_bytes("new")) == Status::ok);
  REQUIRE(readable(*fd, kLong));
  Peeked got = r->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "new");
  r->release();
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));

  p.close();
  REQUIRE(readable(*fd, kLong));
  CHECK(r->try_peek().status == Status::closed);
  CHECK(readable(*fd, 0));  // level-triggered: the end stays readable
  CHECK(r->try_peek().status == Status::closed);
}

TEST_CASE("between streams: a producer that closes with no record ends it") {
  const Kind kind = any_kind();
  CAPTURE(kind_name(kind));
  ScopedRing ring({.kind = kind, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = attach_between_streams(seg);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
  attach_producer(seg).close();
  REQUIRE(readable(*fd, kLong));
  CHECK(r->try_peek().status == Status::closed);
  CHECK(readable(*fd, 0));
}

TEST_CASE("between streams: a producer in another process wakes the fd") {
  ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = attach_between_streams(seg);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));

  ChildGuard children;
  const pid_t child = testing::spawn_producer(children, seg, [](Producer& p) {
    return p.write(as_bytes("from the child")) == Status::ok ? 0 : 2;
  });
  std::string got;
  Status st = Status::would_block;
  // Each wake-up: drain until would_block, as an event loop does.
  while (st != Status::closed) {
    REQUIRE(readable(*fd, kLong));
    for (;;) {
      Peeked p = r->try_peek();
      st = p.status;
      if (!p) break;
      got += as_string(p.record.bytes());
      r->release();
    }
    REQUIRE((st == Status::would_block || st == Status::closed));
  }
  CHECK(got == "from the child");
  const auto status = children.wait(child);
  CHECK(status.exited);
  CHECK(status.code == 0);
}

TEST_CASE("a reader that saw its stream start reports its end at once") {
  const Kind kind = any_kind();
  CAPTURE(kind_name(kind));
  ScopedRing ring({.kind = kind, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = attach_between_streams(seg);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  Producer p = attach_producer(seg);
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
  p.close();
  REQUIRE(readable(*fd, kLong));
  CHECK(r->try_peek().status == Status::closed);
  CHECK(r->peek(1ms).status == Status::closed);
}

TEST_CASE("try_peek with follow: each end of stream waits for the next") {
  ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = StreamReader::attach(seg, {.follow = true});
  REQUIRE(r);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  for (const char* text : {"one", "two"}) {
    CAPTURE(text);
    CHECK(r->try_peek().status == Status::would_block);
    CHECK_FALSE(readable(*fd, 0));
    Producer p = attach_producer(seg);
    REQUIRE(p.write(as_bytes(text)) == Status::ok);
    p.close();
    REQUIRE(readable(*fd, kLong));
    Peeked got = r->try_peek();
    REQUIRE(got);
    CHECK(as_string(got.record.bytes()) == text);
    r->release();
  }
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
}

TEST_CASE("try_peek with StreamOptions::producers: the end waits for N") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = StreamReader::attach(seg, {.producers = 2});
  REQUIRE(r);
  auto fd = r->wait_fd();
  REQUIRE(fd);
  attach_producer(seg).close();
  REQUIRE(readable(*fd, kLong));
  CHECK(r->try_peek().status == Status::would_block);
  CHECK_FALSE(readable(*fd, 0));
  CHECK(r->producers_missing() == 1);
  attach_producer(seg).close();
  REQUIRE(readable(*fd, kLong));
  CHECK(r->try_peek().status == Status::closed);
}

}  // namespace
}  // namespace shmring
