// The public pieces the tools are built on: StreamReader's stream
// lifecycle (between streams, StreamOptions::producers and follow),
// Producer::consumers_seen(), attach_or_create's explicit expectations, and
// the names. shm-consume/shm-produce exercise the same through tests/e2e
// (no_data_loss_test, recipes_test); these pin the library's contract.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::as_bytes;
using testing::as_string;

constexpr Timeout kShort = 100ms;

// One producer's whole stream: attach, write `text`, close.
void stream_of(Segment& seg, const std::string& text) {
  auto p = Producer::attach(seg);
  REQUIRE(p);
  REQUIRE(p->write(as_bytes(text)) == Status::ok);
  p->close();
}

// The next batch's first record, released.
std::string next(StreamReader& r, Status* st, Timeout timeout = kShort) {
  std::array<Record, 4> recs;
  const PeekedBatch b = r.peek_batch(recs, timeout);
  *st = b.status;
  if (*st != Status::ok) return {};
  REQUIRE_FALSE(b.records.empty());
  std::string s = as_string(b.records[0].bytes());
  r.release();
  return s;
}

// Writes one stream and reads it to its end with a Consumer that then
// leaves: the ring is between streams.
void stream_read_to_its_end(Segment& seg, const std::string& text) {
  stream_of(seg, text);
  auto c = Consumer::attach(seg);
  REQUIRE(c);
  REQUIRE(c->peek(kShort));
  c->release();
  REQUIRE(c->peek(kShort).status == Status::closed);
}

TEST_CASE("a reader attached between streams waits for the next producer") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  stream_read_to_its_end(seg, "old");
  // A plain Consumer reports the old stream's end again...
  {
    auto c = Consumer::attach(seg);
    REQUIRE(c);
    CHECK(c->peek(kShort).status == Status::closed);
  }
  // ...a StreamReader waits (up to its timeout) for a new one.
  auto r = StreamReader::attach(seg);
  REQUIRE(r);
  Status st{};
  CHECK(next(*r, &st).empty());
  CHECK(st == Status::timed_out);
  CHECK(r->waiting_for_producer());
  stream_of(seg, "new");
  CHECK(next(*r, &st) == "new");
  CHECK(st == Status::ok);
  next(*r, &st);
  CHECK(st == Status::closed);
}

TEST_CASE("each peek_batch waits its whole timeout for a producer") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  stream_read_to_its_end(seg, "old");
  auto r = StreamReader::attach(seg);  // between streams
  REQUIRE(r);
  constexpr Timeout kWait = 200ms;
  std::array<Record, 4> recs;
  for (int call = 0; call < 3; ++call) {
    INFO("call " << call);
    const auto start = std::chrono::steady_clock::now();
    CHECK(r->peek_batch(recs, kWait).status == Status::timed_out);
    // A lower bound only: a loaded machine may take longer, never less.
    CHECK(std::chrono::steady_clock::now() - start >= kWait);
    CHECK(r->waiting_for_producer());
  }
  stream_of(seg, "new");
  Status st{};
  CHECK(next(*r, &st) == "new");
}

TEST_CASE("a reader of a fresh ring reads the stream that started before it") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  stream_of(ring.segment(), "early");
  auto r = StreamReader::attach(ring.segment());
  REQUIRE(r);
  Status st{};
  CHECK(next(*r, &st) == "early");
  next(*r, &st);
  CHECK(st == Status::closed);
}

TEST_CASE("a StreamReader reads a broadcast ring through a Subscriber") {
  testing::ScopedRing ring({.kind = Kind::broadcast, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = StreamReader::attach(seg);
  REQUIRE(r);
  CHECK(&r->segment() == &seg);
  REQUIRE(r->subscriber() != nullptr);
  CHECK(r->subscriber()->cursor() == 0);
  CHECK(seg.info().cursors.size() == 1);
  stream_of(seg, "cast");  // the subscriber starts at the tail: attach first
  Status st{};
  CHECK(next(*r, &st) == "cast");
  CHECK(r->subscriber()->intact());
  CHECK(r->subscriber()->lost_records() == 0);
  next(*r, &st);
  CHECK(st == Status::closed);
  // Other kinds have no subscriber.
  testing::ScopedRing spsc({.kind = Kind::spsc, .capacity = 4096});
  auto plain = StreamReader::attach(spsc.segment());
  REQUIRE(plain);
  CHECK(plain->subscriber() == nullptr);
}

TEST_CASE("StreamOptions::producers: the end waits for N producers") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  stream_of(seg, "first");  // counted: no consumer has read this ring yet
  auto r = StreamReader::attach(seg, {.producers = 2});
  REQUIRE(r);
  Status st{};
  CHECK(next(*r, &st) == "first");
  CHECK(r->producers_missing() == 1);
  next(*r, &st);
  CHECK(st == Status::timed_out);
  CHECK(r->waiting_for_producer());
  stream_of(seg, "second");
  CHECK(r->producers_missing() == 0);
  CHECK(next(*r, &st) == "second");
  next(*r, &st);
  CHECK(st == Status::closed);
}

TEST_CASE("StreamOptions::follow: an end of stream is followed by the next") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  Segment& seg = ring.segment();
  auto r = StreamReader::attach(seg, {.follow = true});
  REQUIRE(r);
  stream_of(seg, "one");
  Status st{};
  CHECK(next(*r, &st) == "one");
  next(*r, &st);  // the end of stream "one": never closed under follow
  CHECK(st == Status::timed_out);
  CHECK(r->waiting_for_producer());
  stream_of(seg, "two");
  CHECK(next(*r, &st) == "two");
  // A data timeout while a producer is attached says so.
  auto p = Producer::attach(seg);
  REQUIRE(p);
  next(*r, &st);
  CHECK(st == Status::timed_out);
  CHECK_FALSE(r->waiting_for_producer());
}

TEST_CASE("a StreamReader waiting for a producer returns interrupted") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  stream_of(ring.segment(), "x");
  auto r = StreamReader::attach(ring.segment(), {.producers = 2});
  REQUIRE(r);
  Status st{};
  CHECK(next(*r, &st) == "x");
  // Drained and closed, one producer short: the wait for a producer (not
  // Consumer::peek's) must notice the interrupt, even without a timeout.
  interrupt();
  next(*r, &st, kForever);
  clear_interrupt();
  CHECK(st == Status::interrupted);
}

TEST_CASE("a reader waiting for a producer on a removed ring says removed") {
  // No producer can attach a removed ring (`shm-ring rm`, systemd
  // RemoveIPC): every reader kind stops waiting, even without a timeout.
  SECTION("a consumer of a ring no producer came to") {
    testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
    Consumer c = testing::attach_consumer(ring.segment());
    CHECK(c.try_peek().status == Status::would_block);
    REQUIRE(ring.segment().remove());
    CHECK(c.peek(kForever).status == Status::removed);
  }
  SECTION("a subscriber") {
    testing::ScopedRing ring({.kind = Kind::broadcast, .capacity = 4096});
    Subscriber s = testing::attach_subscriber(ring.segment());
    REQUIRE(ring.segment().remove());
    CHECK(s.peek(kForever).status == Status::removed);
  }
  SECTION("a queue reader") {
    testing::ScopedRing ring(
        {.kind = Kind::slots, .capacity = 4096, .slot_size = 8});
    auto q = QueueReader<std::uint64_t>::attach(ring.segment());
    REQUIRE(q);
    REQUIRE(ring.segment().remove());
    CHECK(q->pop(kForever).status == Status::removed);
  }
  SECTION("a StreamReader between streams, and under follow") {
    testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
    stream_of(ring.segment(), "x");
    const bool follow = GENERATE(false, true);
    Status st{};
    if (!follow) {  // one reader reads the stream, another attaches after
      auto first = StreamReader::attach(ring.segment());
      REQUIRE(first);
      CHECK(next(*first, &st) == "x");
      CHECK(next(*first, &st) == "");
      CHECK(st == Status::closed);
    }
    auto r = StreamReader::attach(ring.segment(), {.follow = follow});
    REQUIRE(r);
    if (follow) CHECK(next(*r, &st) == "x");
    CHECK(r->try_peek().status == Status::would_block);
    REQUIRE(ring.segment().remove());
    next(*r, &st, kForever);
    CHECK(st == Status::removed);
  }
  SECTION("not while another process maps the ring: it may still attach") {
    // A private ring's pattern (shm-bench): remove it at once, then fork;
    // the child attaches through the mapping it inherited.
    testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
    Consumer c = testing::attach_consumer(ring.segment());
    REQUIRE(ring.segment().remove());
    testing::SharedBlock<std::atomic<int>> go;
    testing::ChildGuard children;
    const pid_t pid = children.spawn([&] {
      while (go->load() == 0) std::this_thread::sleep_for(1ms);
      auto p = Producer::attach(ring.segment());
      if (!p) {
        std::fprintf(stderr, "Producer::attach: %s\n",
                     p.error().message.c_str());
        return 1;
      }
      if (p->write(as_bytes("after")) != Status::ok) return 2;
      p->close();
      return 0;
    });
    // Longer than kRemovedCheck: the removal is looked at more than once.
    CHECK(c.peek(600ms).status == Status::timed_out);
    c.close();
    auto r = StreamReader::attach(ring.segment());
    REQUIRE(r);
    Status st{};
    CHECK(next(*r, &st, 600ms) == "");
    CHECK(st == Status::timed_out);
    go->store(1);
    CHECK(next(*r, &st, kForever) == "after");
    const testing::ChildStatus child = children.wait(pid);
    CHECK(child.exited);
    CHECK(child.code == 0);
  }
  SECTION("a producer attached may still finish its stream") {
    testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
    auto r = StreamReader::attach(ring.segment());
    REQUIRE(r);
    Producer p = testing::attach_producer(ring.segment());
    REQUIRE(ring.segment().remove());
    Status st{};
    CHECK(next(*r, &st, 300ms) == "");
    CHECK(st == Status::timed_out);
    REQUIRE(p.write(as_bytes("late")) == Status::ok);
    p.close();
    CHECK(next(*r, &st) == "late");
    CHECK(next(*r, &st) == "");
    CHECK(st == Status::closed);
  }
}

TEST_CASE("Producer::consumers_seen counts consumers, gone ones included") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  CHECK(p->consumers_seen() == 0);
  {
    auto c = Consumer::attach(ring.segment());
    REQUIRE(c);
    CHECK(p->consumers_seen() == 1);
  }
  CHECK(p->consumers_seen() == 1);  // sticky: it came, even if it left
  auto c = Consumer::attach(ring.segment());
  REQUIRE(c);
  CHECK(p->consumers_seen() == 2);
}

TEST_CASE("attach_or_create with explicit expectations") {
  const key_t key = testing::test_key(1);
  struct Cleanup {
    key_t key;
    ~Cleanup() { (void)Segment::remove(key, true); }
  } cleanup{key};
  AttachOrCreate how;
  how.options = {.capacity = 4096, .wait = WaitStrategy::futex};
  how.create = false;
  bool created = true;
  auto none = Segment::attach_or_create(key, how, &created);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == Errc::not_found);
  CHECK_FALSE(created);

  how.create = true;
  auto made = Segment::attach_or_create(key, how, &created);
  REQUIRE(made);
  CHECK(created);
  // Nothing expected: any existing ring will do.
  how.options.capacity = 8192;
  auto any = Segment::attach_or_create(key, how, &created);
  REQUIRE(any);
  CHECK_FALSE(created);
  CHECK(any->capacity() == 4096);

  how.expect_capacity = 8192;
  auto cap = Segment::attach_or_create(key, how);
  REQUIRE_FALSE(cap);
  CHECK(cap.error().code == Errc::size_mismatch);
  how.expect_capacity.reset();
  how.expect_wait = WaitStrategy::semaphore;
  auto wait = Segment::attach_or_create(key, how);
  REQUIRE_FALSE(wait);
  CHECK(wait.error().code == Errc::wrong_kind);
  CHECK(wait.error().message.find("wait strategy futex") != std::string::npos);
  how.expect_wait.reset();
  how.expect_kind = Kind::mpsc;
  auto kind = Segment::attach_or_create(key, how);
  REQUIRE_FALSE(kind);
  CHECK(kind.error().code == Errc::wrong_kind);
}

TEST_CASE("names, deadlines and the errno mapping") {
  CHECK(hex_key(0x5eed) == "0x00005eed");
  CHECK(std::string(kind_name(Kind::mpsc)) == "mpsc");
  CHECK(std::string(wait_name(WaitStrategy::semaphore)) == "semaphore");
  CHECK(os_error(ENOENT, "x").code == Errc::not_found);
  CHECK(os_error(EPERM, "x").code == Errc::permission_denied);
  CHECK(os_error(EIDRM, "x").code == Errc::removed);
  CHECK(os_error(EIO, "x").code == Errc::system);
  CHECK(os_error(EACCES, "cannot open x").message ==
        "cannot open x: Permission denied");
  CHECK(Deadline::after(kForever).forever());
  CHECK(Deadline::after(kForever).left() == kForever);
  const auto now = Deadline::Clock::now();
  const Deadline d = Deadline::from(now, 10ms);
  CHECK_FALSE(d.passed(now));
  CHECK(d.passed(now + 10ms));
  CHECK(d.left(now) == 10ms);
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto p = Producer::attach(ring.segment());
  REQUIRE(p);
  CHECK(max_record_size(4096) == p->max_record_size());
}

}  // namespace
}  // namespace shmring
