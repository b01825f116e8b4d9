// Broadcast rings with Overrun::drop_slow
// (docs/design/broadcast.md#drop-slow-the-producer-never-waits): the
// producer never waits; a consumer it lapped
// gets Status::overrun once, counts exactly what it lost (payload bytes
// and records), resumes at the oldest intact record and never delivers a
// torn one (intact() after reading; release() checks it too).
//
// Single-process cases drive the producer and consumers step by step; the
// multi-process case runs a fast producer against two slow consumer
// processes and checks every record they deliver. (No thread stress under
// TSan: a lapped reader racing the producer's overwrite is this policy's
// design, detected after the fact, and TSan would rightly report it.)
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::ChildGuard;
using testing::ScopedRing;
using testing::SharedBlock;
using testing::wait_child;

RingOptions lossy_options(std::uint64_t capacity, std::uint32_t consumers) {
  RingOptions o;
  o.kind = Kind::broadcast;
  o.capacity = capacity;
  o.max_consumers = consumers;
  o.overrun = Overrun::drop_slow;
  return o;
}

using testing::mix64;

// Record `seq`: 8..max_len bytes, seq first, a pattern of seq after.
std::size_t length_of(std::uint64_t seq, std::size_t max_len) {
  return 8 + mix64(seq) % (max_len - 7);
}
// max_len 0: fixed 56-byte records.
bool check(const Record& r, std::uint64_t seq, std::size_t max_len) {
  const std::size_t len = max_len == 0 ? 56 : length_of(seq, max_len);
  return r.size == len && testing::check_seq_record(r.bytes(), seq);
}

Status write(Producer& p, std::uint64_t seq, std::size_t len) {
  Reservation r = p.try_reserve(len);
  if (!r) return r.status;
  testing::fill_seq_record(r.bytes, seq);
  p.commit(len);
  return Status::ok;
}

// Drains `c` (try_peek until would_block), checking order and contents;
// returns records delivered and adds their payload to *payload.
struct Drained {
  std::uint64_t records = 0;
  std::uint64_t payload = 0;
  int overruns = 0;
  std::uint64_t next = 0;  // seq after the last delivered one
  bool ok = true;
};
void drain(Subscriber& c, std::size_t max_len, Drained* d) {
  for (;;) {
    Peeked got = c.try_peek();
    if (got.status == Status::overrun) {
      ++d->overruns;
      continue;
    }
    if (!got) return;
    // Everything taken before intact() (the producer may overwrite the
    // record at any moment after it).
    const std::uint64_t s = testing::seq_stamp(got.record.bytes());
    const std::uint64_t size = got.record.size;
    const bool good = check(got.record, s, max_len);
    if (!c.intact()) continue;  // torn while we looked: dropped
    if (!good || s < d->next) {
      d->ok = false;
      return;
    }
    d->next = s + 1;
    ++d->records;
    d->payload += size;
    c.release();
  }
}

TEST_CASE("drop-slow: the producer never waits; a lapped consumer counts "
          "its loss exactly", "[broadcast][overrun]") {
  constexpr std::uint64_t kCap = 4096;
  const std::size_t max_len = GENERATE(std::size_t{56}, std::size_t{500});
  CAPTURE(max_len);
  ScopedRing ring(lossy_options(kCap, 2));
  Segment& seg = ring.segment();
  CHECK(seg.overrun() == Overrun::drop_slow);
  Subscriber fast = testing::attach_subscriber(seg);
  Subscriber slow = testing::attach_subscriber(seg);
  Producer p = testing::attach_producer(seg);
  Drained f, s;
  std::uint64_t total_payload = 0;
  constexpr std::uint64_t kRecords = 5000;
  for (std::uint64_t seq = 0; seq < kRecords; ++seq) {
    // Never blocks, whatever the consumers do.
    const std::size_t len = max_len == 56 ? 56 : length_of(seq, max_len);
    REQUIRE(write(p, seq, len) == Status::ok);
    total_payload += len;
    if (seq % 4 == 0) drain(fast, max_len == 56 ? 0 : max_len, &f);
    // The slow one looks only now and then: lapped many times.
    if (seq % 997 == 0) drain(slow, max_len == 56 ? 0 : max_len, &s);
  }
  p.close();
  drain(fast, max_len == 56 ? 0 : max_len, &f);
  drain(slow, max_len == 56 ? 0 : max_len, &s);
  for (Subscriber* c : {&fast, &slow}) {
    CHECK(c->try_peek().status == Status::closed);
  }
  CHECK(f.ok);
  CHECK(s.ok);
  CHECK(s.overruns > 0);
  // Exact: every record and every payload byte either delivered or lost.
  CHECK(f.records + fast.lost_records() == kRecords);
  CHECK(f.payload + fast.lost_bytes() == total_payload);
  CHECK(s.records + slow.lost_records() == kRecords);
  CHECK(s.payload + slow.lost_bytes() == total_payload);
  CHECK(slow.lost_records() > kRecords / 2);
  // shm-ring info shows the loss of each cursor.
  const SegmentInfo info = seg.info();
  REQUIRE(info.cursors.size() == 2);
  CHECK(info.overrun == Overrun::drop_slow);
}

TEST_CASE("drop-slow: a record overwritten while held is never delivered",
          "[broadcast][overrun]") {
  constexpr std::uint64_t kCap = 4096;
  ScopedRing ring(lossy_options(kCap, 1));
  Segment& seg = ring.segment();
  Subscriber c = testing::attach_subscriber(seg);
  Producer p = testing::attach_producer(seg);
  REQUIRE(write(p, 0, 56) == Status::ok);
  REQUIRE(write(p, 1, 56) == Status::ok);
  Peeked got = c.try_peek();
  REQUIRE(got);
  CHECK(testing::seq_stamp(got.record.bytes()) == 0);
  // The producer laps the held record (a ring and a bit later).
  for (std::uint64_t seq = 2; seq < 2 + kCap / 64 + 2; ++seq) {
    REQUIRE(write(p, seq, 56) == Status::ok);
  }
  const std::uint64_t written = 2 + kCap / 64 + 2;
  SECTION("intact() says so and drops it") {
    CHECK_FALSE(c.intact());
  }
  SECTION("release() drops it too: it is not counted as delivered") {
    c.release();
  }
  Peeked next = c.try_peek();
  CHECK(next.status == Status::overrun);
  // Record 0 counts as lost, not delivered.
  std::uint64_t delivered = 0;
  std::uint64_t expect = ~0ULL;
  for (;;) {
    Peeked r = c.try_peek();
    if (!r) {
      CHECK(r.status == Status::would_block);
      break;
    }
    REQUIRE(c.intact());
    if (expect != ~0ULL) CHECK(testing::seq_stamp(r.record.bytes()) == expect);
    expect = testing::seq_stamp(r.record.bytes()) + 1;
    ++delivered;
    c.release();
  }
  CHECK(expect == written);
  CHECK(delivered + c.lost_records() == written);
  CHECK(c.lost_bytes() == 56 * c.lost_records());
  // The oldest intact record: a ring holds 64 such records, minus the one
  // the producer was about to overwrite when the consumer looked.
  CHECK(delivered >= kCap / 64 - 2);
}

TEST_CASE("drop-slow: a late consumer starts near the tail, with exact counts",
          "[broadcast][overrun]") {
  ScopedRing ring(lossy_options(4096, 2));
  Segment& seg = ring.segment();
  Producer p = testing::attach_producer(seg);
  // No consumer: the producer writes anyway (it never waits).
  for (std::uint64_t seq = 0; seq < 500; ++seq) {
    REQUIRE(write(p, seq, length_of(seq, 100)) == Status::ok);
  }
  Subscriber c = testing::attach_subscriber(seg);
  for (std::uint64_t seq = 500; seq < 510; ++seq) {
    REQUIRE(write(p, seq, length_of(seq, 100)) == Status::ok);
  }
  p.close();
  Drained d;
  drain(c, 100, &d);
  CHECK(d.ok);
  CHECK(d.overruns == 0);
  CHECK(c.lost_records() == 0);
  // It gets everything after it attached (and at most the records since
  // the producer's last reserve before that).
  CHECK(d.next == 510);
  CHECK(d.records >= 10);
  CHECK(d.records <= 11);
}

// What the consumer delivered and lost in a drain that must see no
// corrupt ring: seq-stamped 56-byte records in order, other sizes counted.
struct Tally {
  std::uint64_t records = 0;
  std::uint64_t payload = 0;
  int overruns = 0;
  std::uint64_t next_seq = 0;
  bool ok = true;
  std::uint64_t lost_bytes = 0;  // as seen after each overrun: never less
  bool monotone = true;
};
void tally(Subscriber& c, Tally* t) {
  int overruns_in_a_row = 0;
  for (;;) {
    Peeked got = c.try_peek();
    if (got.status == Status::overrun) {
      // Twice in a row only while holding records; we hold none.
      if (++overruns_in_a_row > 1) {
        UNSCOPED_INFO("overrun twice in a row");
        t->ok = false;
        return;
      }
      ++t->overruns;
      if (c.lost_bytes() < t->lost_bytes) t->monotone = false;
      t->lost_bytes = c.lost_bytes();
      continue;
    }
    overruns_in_a_row = 0;
    if (got.status == Status::would_block || got.status == Status::closed) {
      return;
    }
    if (!got) {
      UNSCOPED_INFO("peek: " << to_string(got.status));
      t->ok = false;
      return;
    }
    const std::uint64_t size = got.record.size;
    const std::uint64_t s = testing::seq_stamp(got.record.bytes());
    const bool good = size != 56 || check(got.record, s, 0);
    if (!c.intact()) continue;
    if (size == 56) {
      if (!good || s < t->next_seq) {
        t->ok = false;
        return;
      }
      t->next_seq = s + 1;
    }
    ++t->records;
    t->payload += size;
    c.release();
  }
}

TEST_CASE(
    "drop-slow: a record torn by a reservation later trimmed or "
    "aborted is never vouched intact",
    "[broadcast][overrun]") {
  // The consumer holds record 2 (position 128) of a 4096-byte ring. The
  // producer, a ring later, reserves 1000 bytes at 4096 (its intent: 5104)
  // and writes all of them, which tears records 0..15 of the previous lap,
  // record 2 among them. Then the reservation shrinks (commit(8)) or goes
  // (abort(), or the producer leaves with it open and a new one attaches),
  // and an aligned reservation follows that ends at 4168: an intent of
  // 4168 would vouch for record 2 (4168 - 128 <= 4096).
  constexpr std::uint64_t kCap = 4096;
  const char* how = GENERATE("trim", "abort", "leave");
  CAPTURE(how);
  ScopedRing ring(lossy_options(kCap, 1));
  Segment& seg = ring.segment();
  Subscriber c = testing::attach_subscriber(seg);
  std::optional<Producer> p(testing::attach_producer(seg));
  std::uint64_t records = 0;
  std::uint64_t payload = 0;
  auto write_seqs = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t seq = from; seq < to; ++seq) {
      REQUIRE(write(*p, seq, 56) == Status::ok);
      ++records;
      payload += 56;
    }
  };
  write_seqs(0, 3);
  std::uint64_t delivered = 0;
  std::uint64_t delivered_payload = 0;
  for (std::uint64_t seq = 0; seq < 2; ++seq) {
    Peeked got = c.try_peek();
    REQUIRE(got);
    REQUIRE(check(got.record, seq, 0));
    REQUIRE(c.intact());
    c.release();
    ++delivered;
    delivered_payload += 56;
  }
  Peeked held = c.try_peek();
  REQUIRE(held);
  REQUIRE(testing::seq_stamp(held.record.bytes()) == 2);
  // The rest of the lap, to 4096; the 0 word after it overwrites record
  // 0's header (delivered already).
  write_seqs(3, kCap / 64);

  Reservation big = p->try_reserve(1000);
  REQUIRE(big);
  std::memset(big.bytes.data(), 0xab, big.bytes.size());
  if (std::string(how) == "trim") {
    p->commit(8);
    ++records;
    payload += 8;
  } else if (std::string(how) == "abort") {
    p->abort();
  } else {
    p.reset();  // closes with the reservation open
    p.emplace(testing::attach_producer(seg));
  }
  Reservation aligned = p->try_reserve(8, 64);
  REQUIRE(aligned);
  std::memset(aligned.bytes.data(), 0xcd, aligned.bytes.size());
  p->commit(8);
  ++records;
  payload += 8;

  // Record 2's bytes are 0xab now: it must not count as delivered.
  CHECK_FALSE(c.intact());
  Peeked next = c.try_peek();
  CHECK(next.status == Status::overrun);
  Tally t;
  t.next_seq = 3;
  tally(c, &t);
  CHECK(t.ok);
  CHECK(t.records > 0);
  CHECK(delivered + t.records + c.lost_records() == records);
  CHECK(delivered_payload + t.payload + c.lost_bytes() == payload);
}

TEST_CASE(
    "drop-slow: a record torn by a producer killed mid-reservation "
    "is never vouched intact by its successor's wrapping reservation",
    "[broadcast][overrun][process]") {
  // The consumer holds record 67 (position 4288). A producer process
  // reserves 1000 bytes at 8064 (offset 3968): a wrapping one, padding to
  // 8192 and the record after it, intent 9200; it writes all of it, which
  // tears positions 4104..5104, and is killed before it commits. Its
  // successor starts at the published tail, 8064, and makes a wrapping
  // reservation of 128 bytes: it ends at 8328, and an intent of 8328
  // would vouch for record 67 (8328 - 4288 <= 4096).
  constexpr std::uint64_t kCap = 4096;
  ScopedRing ring(lossy_options(kCap, 1));
  Segment& seg = ring.segment();
  Subscriber c = testing::attach_subscriber(seg);
  std::uint64_t delivered = 0;
  std::uint64_t delivered_payload = 0;
  {
    Producer p1 = testing::attach_producer(seg);
    for (std::uint64_t seq = 0; seq < 68; ++seq) {
      REQUIRE(write(p1, seq, 56) == Status::ok);
      if (seq == 67) break;
      Peeked got = c.try_peek();
      REQUIRE(got);
      REQUIRE(check(got.record, seq, 0));
      REQUIRE(c.intact());
      c.release();
      ++delivered;
      delivered_payload += 56;
    }
    for (std::uint64_t seq = 68; seq < 126; ++seq) {
      REQUIRE(write(p1, seq, 56) == Status::ok);
    }
  }
  Peeked held = c.try_peek();
  REQUIRE(held);
  REQUIRE(testing::seq_stamp(held.record.bytes()) == 67);

  testing::Beacon written;
  ChildGuard kids;
  const pid_t pid = testing::spawn_producer(kids, seg, [&written](Producer& p) {
    Reservation r = p.try_reserve(1000);
    if (!r) return 2;
    std::memset(r.bytes.data(), 0xab, r.bytes.size());
    written.signal();
    return testing::park_until_killed();
  });
  REQUIRE(written.wait(testing::kHang));
  kids.kill_and_reap(pid);

  Producer p2 = testing::attach_producer(seg);
  Reservation wrap = p2.try_reserve(128);
  REQUIRE(wrap);
  std::memset(wrap.bytes.data(), 0xcd, wrap.bytes.size());
  p2.commit();

  CHECK_FALSE(c.intact());
  Peeked next = c.try_peek();
  CHECK(next.status == Status::overrun);
  Tally t;
  t.next_seq = 68;
  tally(c, &t);
  CHECK(t.ok);
  CHECK(t.records > 0);
  CHECK(delivered + t.records + c.lost_records() == 127);
  CHECK(delivered_payload + t.payload + c.lost_bytes() == 126 * 56 + 128);
}

// Runs `call` in a forked child (it inherits the handles and the mapping)
// and returns its exit code; a call that does not return within 10 s
// fails the test (the child is killed) instead of hanging the suite.
int bounded(const std::function<int()>& call) {
  ChildGuard kids;
  const pid_t pid = kids.spawn(call);
  const auto st = kids.wait(pid, 10s);
  INFO(st.describe());
  CHECK_FALSE(st.timed_out);
  REQUIRE(st.exited);
  return st.code;
}

TEST_CASE(
    "drop-slow hostile: a tail far ahead over ring-sized padding is "
    "answered at once, never walked",
    "[broadcast][overrun][hostile]") {
  // A peer moves the tail 2^62 bytes ahead and writes a padding record
  // that spans the whole ring at the consumer's offset: each pass over it
  // would advance one ring, 2^50 passes.
  constexpr std::uint64_t kCap = 4096;
  ScopedRing ring(lossy_options(kCap, 1));
  Segment& seg = ring.segment();
  Subscriber c = testing::attach_subscriber(seg);
  Producer p = testing::attach_producer(seg);
  // A lap in two halves, drained after each (a lap at once would
  // overwrite record 0's header with the 0 word after record 63).
  Drained d;
  for (std::uint64_t seq = 0; seq < kCap / 64; ++seq) {
    REQUIRE(write(p, seq, 56) == Status::ok);
    if (seq == kCap / 128) drain(c, 0, &d);
  }
  drain(c, 0, &d);
  REQUIRE(d.overruns == 0);
  REQUIRE(d.records == kCap / 64);  // at 4096: offset 0, nothing unread
  const std::uint64_t at = kCap;
  Segment peer = ring.attach_again();
  auto* cb = shmring::detail::control(peer);
  auto* bb = shmring::detail::broadcast_block(peer);
  layout::header_at(shmring::detail::ring_data(peer), 0).store(layout::padding_word(kCap));
  const std::uint64_t far = at + (std::uint64_t{1} << 62);
  cb->tail.store(far);
  SECTION("the intent left where it was: not a lap, corrupt") {
    CHECK(bounded([&] { return static_cast<int>(c.try_peek().status); }) ==
          static_cast<int>(Status::corrupt));
  }
  SECTION("the intent a ring ahead (the padding passes its check): corrupt") {
    bb->tail_intent.store(at + kCap);
    CHECK(bounded([&] { return static_cast<int>(c.try_peek().status); }) ==
          static_cast<int>(Status::corrupt));
  }
  SECTION("the intent as far as the tail: a lap, resynchronised at once") {
    bb->tail_intent.store(far);
    // The producer's snapshot is not ahead of us: "look again".
    CHECK(bounded([&] { return static_cast<int>(c.try_peek().status); }) ==
          static_cast<int>(Status::would_block));
    SECTION("and a snapshot the peer points far ahead too") {
      bb->snap_seq.store(bb->snap_seq.load() + 2);
      bb->oldest.store(far - kCap);
      CHECK(bounded([&] {
              // overrun, then at most a ring of padding up to the tail.
              Peeked first = c.try_peek();
              if (first.status != Status::overrun) return 100;
              return static_cast<int>(c.try_peek().status);
            }) == static_cast<int>(Status::would_block));
    }
  }
}

TEST_CASE(
    "drop-slow hostile: a producer attaching to scribbled intent and "
    "snapshots starts at its tail",
    "[broadcast][overrun][hostile]") {
  constexpr std::uint64_t kCap = 4096;
  ScopedRing ring(lossy_options(kCap, 1));
  Segment& seg = ring.segment();
  Subscriber c = testing::attach_subscriber(seg);
  Segment peer = ring.attach_again();
  auto* bb = shmring::detail::broadcast_block(peer);
  const std::uint64_t t = shmring::detail::control(peer)->tail.load();
  for (auto& w : {&bb->tail_intent, &bb->oldest, &bb->start}) {
    w->store(t + (std::uint64_t{1} << 62));
  }
  for (auto& w : {&bb->oldest_payload, &bb->oldest_records, &bb->start_payload,
                  &bb->start_records}) {
    w->store(~0ULL - 5);
  }
  SECTION("snapshots even") {}
  SECTION("snapshots odd, as a producer killed while writing them") {
    bb->snap_seq.store(bb->snap_seq.load() | 1);
  }
  SECTION("snapshots odd, killed in the start snapshot") {
    bb->snap_seq.store(bb->snap_seq.load() | 3);
  }
  CHECK(bounded([&] {
          // No Catch2 in the child: it answers with its exit code.
          auto p = Producer::attach(seg);
          if (!p) return 1;
          for (std::uint64_t seq = 0; seq < 100; ++seq) {
            if (write(*p, seq, 56) != Status::ok) return 2;
          }
          p->close();
          std::uint64_t last = ~0ULL;
          for (;;) {
            Peeked got = c.try_peek();
            if (got.status == Status::overrun) continue;
            if (!got) {
              if (got.status != Status::closed) return 3;
              return last == 99 ? 0 : 4;  // it got the newest record
            }
            const std::uint64_t s = testing::seq_stamp(got.record.bytes());
            if (c.intact()) last = s;
            c.release();
          }
        }) == 0);
}

// A consumer reads 300 records of a first producer, which then leaves;
// `between` changes the snapshots as a death or a peer would; a second
// producer writes 300 more while the consumer does not read, so it is
// lapped, then it drains.
struct Restart {
  Tally before;  // the first producer's records
  Tally after;   // the rest
  std::uint64_t lost_records = 0;
  std::uint64_t lost_bytes = 0;
};
Restart restart_and_lap(
    const std::function<void(layout::BroadcastBlock*)>& between) {
  ScopedRing ring(lossy_options(4096, 1));
  Segment& seg = ring.segment();
  Segment peer = ring.attach_again();
  Subscriber c = testing::attach_subscriber(seg);
  Restart r;
  r.after.next_seq = 300;
  std::uint64_t seq = 0;
  {
    Producer p1 = testing::attach_producer(seg);
    for (; seq < 300; ++seq) {
      REQUIRE(write(p1, seq, 56) == Status::ok);
      if (seq % 8 == 0) tally(c, &r.before);
    }
    tally(c, &r.before);
  }
  REQUIRE(r.before.ok);
  REQUIRE(r.before.records == 300);
  REQUIRE(c.lost_records() == 0);
  between(shmring::detail::broadcast_block(peer));
  {
    Producer p2 = testing::attach_producer(seg);
    for (; seq < 600; ++seq) REQUIRE(write(p2, seq, 56) == Status::ok);
  }
  tally(c, &r.after);
  CHECK(c.try_peek().status == Status::closed);
  r.lost_records = c.lost_records();
  r.lost_bytes = c.lost_bytes();
  return r;
}

TEST_CASE(
    "drop-slow: a producer that died inside its snapshot write is "
    "continued exactly by the next",
    "[broadcast][overrun]") {
  // The seqlock's odd value says where the writer was: in the oldest
  // snapshot (..01) or in the start snapshot (..11). The fields it was
  // writing are torn (a position new, its counts old).
  const char* where = GENERATE("oldest", "start");
  CAPTURE(where);
  const Restart r = restart_and_lap([&](layout::BroadcastBlock* bb) {
    const std::uint64_t s = bb->snap_seq.load();
    REQUIRE(s % 2 == 0);
    if (std::string(where) == "oldest") {
      bb->snap_seq.store(s + 1);
      bb->oldest.store(bb->oldest.load() + 64);
    } else {
      bb->snap_seq.store(s + 3);
      bb->start.store(bb->start.load() - 64);
    }
  });
  CHECK(r.after.ok);
  CHECK(r.after.monotone);
  CHECK(r.after.overruns == 1);
  CHECK(r.lost_records <= 300);
  CHECK(r.lost_bytes <= 300 * 56);
  // Exact: every record either delivered or counted lost.
  CHECK(r.before.records + r.after.records + r.lost_records == 600);
  CHECK(r.before.payload + r.after.payload + r.lost_bytes == 600 * 56);
}

TEST_CASE(
    "drop-slow: counts a producer restarted below the consumer's "
    "never make its loss go backwards or wrap",
    "[broadcast][overrun]") {
  // The snapshots say 0 records so far (a peer, or a producer that could
  // not continue the counts): the second producer counts from there.
  const Restart r = restart_and_lap([](layout::BroadcastBlock* bb) {
    bb->snap_seq.store(bb->snap_seq.load() + 2);
    bb->oldest.store(bb->start.load());
    for (auto* w : {&bb->oldest_payload, &bb->oldest_records,
                    &bb->start_payload, &bb->start_records}) {
      w->store(0);
    }
  });
  CHECK(r.after.ok);
  CHECK(r.after.monotone);
  CHECK(r.after.overruns == 1);
  // Unknown, so not counted: never a wrapped difference.
  CHECK(r.lost_records <= 300);
  CHECK(r.lost_bytes <= 300 * 56);
  CHECK(r.before.records + r.after.records + r.lost_records <= 600);
  CHECK(r.before.payload + r.after.payload + r.lost_bytes <= 600 * 56);
}

// ---------------------------------------------------------------------------

struct Shared {
  std::atomic<std::uint64_t> delivered[2];
  std::atomic<std::uint64_t> payload[2];
  std::atomic<std::uint64_t> lost_records[2];
  std::atomic<std::uint64_t> lost_bytes[2];
  std::atomic<std::uint64_t> torn_dropped[2];
  std::atomic<int> attached{0};
};

constexpr std::size_t kMpMax = 700;

int slow_consumer(int shmid, int id, Shared* sh) {
  auto seg = Segment::attach_id(shmid, Kind::broadcast);
  if (!seg) return 2;
  auto c = Subscriber::attach(*seg);
  if (!c) return 3;
  sh->attached.fetch_add(1);
  std::uint64_t next = 0;
  std::uint64_t n = 0;
  std::vector<Record> batch(8);
  for (;;) {
    const PeekedBatch pb = c->peek_batch(batch, 30s);
    const Status st = pb.status;
    const std::size_t got = pb.records.size();
    if (st == Status::overrun) continue;
    if (st == Status::closed) break;
    if (st != Status::ok) {
      std::fprintf(stderr, "consumer %d: %s\n", id, to_string(st));
      return 4;
    }
    // Everything we need from the records is taken before intact(): after
    // it, the producer may overwrite them at any moment.
    bool all_good = true;
    std::uint64_t seqs[8];
    std::uint64_t sizes[8];
    for (std::size_t i = 0; i < got; ++i) {
      seqs[i] = testing::seq_stamp(batch[i].bytes());
      sizes[i] = batch[i].size;
      if (!check(batch[i], seqs[i], kMpMax)) all_good = false;
    }
    if (!c->intact()) {  // torn while read: dropped, never delivered
      sh->torn_dropped[id].fetch_add(1);
      continue;
    }
    if (!all_good) {
      std::fprintf(stderr, "consumer %d: an intact batch failed its check\n", id);
      return 5;
    }
    for (std::size_t i = 0; i < got; ++i) {
      const std::uint64_t s = seqs[i];
      if (s < next) {
        std::fprintf(stderr, "consumer %d: record %llu after %llu\n", id,
                     static_cast<unsigned long long>(s),
                     static_cast<unsigned long long>(next));
        return 6;
      }
      next = s + 1;
      sh->payload[id].fetch_add(sizes[i]);
    }
    n += got;
    c->release();
    // Slow: a pause every few batches, so the producer laps us.
    if (n % (64 * (id + 1)) < got) std::this_thread::sleep_for(1ms);
  }
  sh->delivered[id].store(n);
  sh->lost_records[id].store(c->lost_records());
  sh->lost_bytes[id].store(c->lost_bytes());
  return 0;
}

TEST_CASE("drop-slow: a fast producer and two slow consumer processes",
          "[broadcast][overrun][process]") {
  ScopedRing ring(lossy_options(1 << 14, 2));
  const int shmid = ring.segment().id();
  SharedBlock<Shared> sh;
  ChildGuard kids;
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    pids.push_back(kids.spawn([=, &sh] { return slow_consumer(shmid, i, &*sh); }));
  }
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (sh->attached.load() < 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(sh->attached.load() == 2);
  constexpr std::uint64_t kRecords = 200000;
  std::uint64_t total_payload = 0;
  {
    Producer p = testing::attach_producer(ring.segment());
    for (std::uint64_t seq = 0; seq < kRecords; ++seq) {
      const std::size_t len = length_of(seq, kMpMax);
      Reservation r = p.reserve(len, 10s);
      REQUIRE(r);
      testing::fill_seq_record(r.bytes, seq);
      p.commit(len);
      total_payload += len;
    }
  }
  for (int i = 0; i < 2; ++i) {
    const auto st = wait_child(pids[i], 60s);
    kids.forget(pids[i]);
    CAPTURE(i, st.describe());
    REQUIRE(st.exited);
    REQUIRE(st.code == 0);
    CHECK(sh->delivered[i].load() + sh->lost_records[i].load() == kRecords);
    CHECK(sh->payload[i].load() + sh->lost_bytes[i].load() == total_payload);
    UNSCOPED_INFO("consumer " << i << ": delivered " << sh->delivered[i].load()
                              << ", lost " << sh->lost_records[i].load()
                              << " records, dropped " << sh->torn_dropped[i].load()
                              << " torn batches");
  }
  CHECK(sh->lost_records[0].load() + sh->lost_records[1].load() > 0);
}

}  // namespace
}  // namespace shmring
