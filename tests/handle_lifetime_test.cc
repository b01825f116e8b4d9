// A handle outlives its Segment object: ring.h promises that producers,
// consumers, queue handles, their close() and the consumer's wait_fd()
// stay safe after the Segment they were attached through is destroyed
// (they hold the mapping). Run under --config=asan to see any access to
// the destroyed object.
#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "ring/shmring.h"
#include "tests/support.h"

namespace shmring {
namespace {

using std::chrono::milliseconds;
using testing::as_bytes;
using testing::as_string;
using testing::attach_consumer;
using testing::attach_producer;
using testing::kHang;
using testing::next_record;

constexpr std::uint64_t kCap = 4096;

Segment make(const RingOptions& o) {
  auto made = Segment::create_private(o);
  REQUIRE(made);
  return std::move(made).value();
}

struct Case {
  const char* name;
  RingOptions options;
};

// Every kind that moves records.
const Case kRecordKinds[] = {
    {"spsc", {.kind = Kind::spsc, .capacity = kCap}},
    {"mpsc", {.kind = Kind::mpsc, .capacity = kCap}},
    {"broadcast wait", {.kind = Kind::broadcast, .capacity = kCap}},
    {"broadcast drop_slow",
     {.kind = Kind::broadcast,
      .capacity = kCap,
      .overrun = Overrun::drop_slow}},
};

// The reader of a record ring: a Subscriber on a broadcast ring, else a
// Consumer.
template <class Reader>
Reader attach_reader(Segment& seg) {
  auto r = Reader::attach(seg);
  if (!r) FAIL("attach: " << r.error().message);
  return std::move(r).value();
}

template <class Reader>
void handles_outlive_segment(const Case& k) {
  auto seg = std::make_unique<Segment>(make(k.options));
  Reader c = attach_reader<Reader>(*seg);
  Producer p = attach_producer(*seg);
  REQUIRE(p.try_write(as_bytes("one")) == Status::ok);
  REQUIRE(seg->remove());
  seg.reset();  // the handles keep the mapping
  REQUIRE(p.try_write(as_bytes("two")) == Status::ok);
  if (k.options.overrun == Overrun::wait) {
    // A full ring: the producer rescans cursors and reaps.
    std::string big(1000, 'x');
    for (int i = 0; i < 8; ++i) (void)p.try_write(as_bytes(big));
  }
  CHECK(next_record(c) == "one");
  CHECK(next_record(c) == "two");
  while (c.try_peek().status == Status::ok) c.release();
  p.close();
  CHECK(c.peek(kHang).status != Status::ok);
  c.close();
}  // destructors after the Segment's

template <class Reader>
void close_after_segment(const Case& k) {
  auto seg = std::make_unique<Segment>(make(k.options));
  std::optional<Reader> c(attach_reader<Reader>(*seg));
  std::optional<Producer> p(attach_producer(*seg));
  REQUIRE(p->try_write(as_bytes("kept")) == Status::ok);
  REQUIRE(seg->remove());
  seg.reset();
  c.reset();  // close() frees the role (a broadcast cursor)
  p.reset();
}

TEST_CASE("lifetime: record handles outlive their Segment, every kind") {
  for (const Case& k : kRecordKinds) {
    SECTION(k.name) {
      if (k.options.kind == Kind::broadcast) {
        handles_outlive_segment<Subscriber>(k);
      } else {
        handles_outlive_segment<Consumer>(k);
      }
    }
  }
}

TEST_CASE("lifetime: close() and destructors after the Segment is gone") {
  for (const Case& k : kRecordKinds) {
    SECTION(k.name) {
      if (k.options.kind == Kind::broadcast) {
        close_after_segment<Subscriber>(k);
      } else {
        close_after_segment<Consumer>(k);
      }
    }
  }
}

TEST_CASE("lifetime: queue handles on a slots ring outlive their Segment") {
  auto seg = std::make_unique<Segment>(
      make({.kind = Kind::slots, .capacity = kCap, .slot_size = sizeof(int)}));
  auto w = QueueWriter<int>::attach(*seg);
  auto r = QueueReader<int>::attach(*seg);
  REQUIRE(w);
  REQUIRE(r);
  REQUIRE(w->try_push(1) == Status::ok);
  REQUIRE(seg->remove());
  seg.reset();
  REQUIRE(w->try_push(2) == Status::ok);
  Popped<int> v = r->pop(kHang);
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 1);
  v = r->pop(kHang);
  REQUIRE(v.status == Status::ok);
  CHECK(v.value == 2);
  w->close();
  CHECK(r->pop(kHang).status == Status::closed);
}

// The wait_fd() helper thread reaps dead producers once per sleep slice
// while it watches: after the Segment is gone it must go on using only
// what the consumer holds.
template <class Reader>
void wait_fd_outlives_segment(Kind kind) {
  auto seg = std::make_unique<Segment>(make({.kind = kind, .capacity = kCap}));
  Reader c = attach_reader<Reader>(*seg);
  Producer p = attach_producer(*seg);
  auto fd = c.wait_fd();
  REQUIRE(fd);
  CHECK(c.try_peek().status == Status::would_block);  // arms the helper
  REQUIRE(seg->remove());
  seg.reset();
  // Several sleep slices: the helper wakes and reaps in each.
  pollfd pfd{*fd, POLLIN, 0};
  CHECK(::poll(&pfd, 1, 200) == 0);
  REQUIRE(p.try_write(as_bytes("after")) == Status::ok);
  REQUIRE(::poll(&pfd, 1, static_cast<int>(milliseconds(kHang).count())) == 1);
  CHECK(next_record(c) == "after");
  p.close();
  CHECK(c.peek(kHang).status == Status::closed);
}

TEST_CASE("lifetime: wait_fd() and its helper thread outlive the Segment") {
  wait_fd_outlives_segment<Consumer>(Kind::spsc);
  wait_fd_outlives_segment<Consumer>(Kind::mpsc);
  wait_fd_outlives_segment<Subscriber>(Kind::broadcast);
}

TEST_CASE("lifetime: wait_fd() first asked for after the Segment is gone") {
  auto seg =
      std::make_unique<Segment>(make({.kind = Kind::spsc, .capacity = kCap}));
  Consumer c = attach_consumer(*seg);
  Producer p = attach_producer(*seg);
  REQUIRE(seg->remove());
  seg.reset();
  auto fd = c.wait_fd();
  REQUIRE(fd);
  REQUIRE(p.try_write(as_bytes("late")) == Status::ok);
  pollfd pfd{*fd, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, static_cast<int>(milliseconds(kHang).count())) == 1);
  CHECK(next_record(c) == "late");
}

}  // namespace
}  // namespace shmring
