// Deterministic wrap-around of the SPSC record ring. testing::set_positions
// starts a fresh ring at a chosen byte position, so the wrap point, the
// padding record and 32/40-bit position boundaries fall exactly where a test
// wants them. Every operation is checked against a small reference model of
// the byte ring (placement, padding, fullness, head and tail), and the
// model's answers are backed by hand-computed cases.
#include <algorithm>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using layout::span_for;
using testing::check_payload;
using testing::fill_payload;

constexpr std::uint64_t kHeader = layout::kHeaderSize;

// What the ring does, written as plainly as possible. Positions are the same
// monotonic byte counts the ring uses; an entry is a record or a padding
// record in ring order.
class Model {
 public:
  struct Entry {
    std::uint64_t pos;
    std::uint64_t span;
    bool padding;
    std::uint32_t size;
    std::uint16_t type;
    std::uint64_t seq;
    std::uint64_t end() const { return pos + span; }
  };

  Model(std::uint64_t capacity, std::uint64_t pos)
      : cap_(capacity), head_(pos), read_(pos), tail_(pos), published_(pos) {}

  std::uint64_t max_size() const { return cap_ / 2 - kHeader; }

  Status reserve(std::size_t size, std::uint64_t seq) {
    if (size > max_size()) return Status::too_large;
    if (reserved_) abort();
    const std::uint64_t span = span_for(size);
    const std::uint64_t off = tail_ % cap_;
    const std::uint64_t pad = off + span > cap_ ? cap_ - off : 0;
    // The record, its padding and the 0 word the producer keeps after it.
    if (tail_ + pad + span + kHeader - head_ > cap_) {
      published_ = tail_;  // a full ring publishes deferred records
      return Status::would_block;
    }
    if (pad != 0) {
      pending_.push_back({tail_, pad, true, 0, 0, 0});
      tail_ += pad;
    }
    reserved_ = true;
    res_pos_ = tail_;
    res_size_ = size;
    res_seq_ = seq;
    return Status::ok;
  }

  void commit_deferred(std::size_t used, std::uint16_t type) {
    if (!reserved_) return;
    used = std::min(used, res_size_);
    pending_.push_back({res_pos_, span_for(used), false,
                        static_cast<std::uint32_t>(used), type, res_seq_});
    tail_ = res_pos_ + span_for(used);
    reserved_ = false;
  }
  void commit(std::size_t used, std::uint16_t type) {
    commit_deferred(used, type);
    flush();
  }
  void flush() { published_ = tail_; }
  // A padding record written by the aborted reservation stays: it is
  // published with the next record.
  void abort() {
    if (!reserved_) return;
    reserved_ = false;
    tail_ = res_pos_;
  }

  std::optional<Entry> peek() {
    for (;;) {
      if (pending_.empty() || pending_.front().end() > published_) {
        return std::nullopt;
      }
      const Entry e = pending_.front();
      pending_.pop_front();
      const bool nothing_outstanding = read_ == head_;
      read_ = e.end();
      if (e.padding) {
        if (nothing_outstanding) head_ = read_;
        continue;
      }
      return e;
    }
  }
  void release() { head_ = read_; }

  std::uint64_t head() const { return head_; }
  std::uint64_t published() const { return published_; }
  std::uint64_t reserved_pos() const { return res_pos_; }
  bool reserved() const { return reserved_; }

 private:
  std::uint64_t cap_;
  std::uint64_t head_, read_, tail_, published_;
  std::deque<Entry> pending_;  // committed (maybe unpublished), not peeked
  bool reserved_ = false;
  std::uint64_t res_pos_ = 0;
  std::size_t res_size_ = 0;
  std::uint64_t res_seq_ = 0;
};

// A ring started at `pos` with one producer and one consumer, driven in
// lockstep with the model. Every call REQUIREs that both agree.
class Harness {
 public:
  Harness(std::uint64_t capacity, std::uint64_t pos)
      : ring_({.kind = Kind::spsc, .capacity = capacity}),
        seg_(&ring_.segment()),
        model_(capacity, pos),
        cap_(capacity),
        start_(pos) {
    testing::set_positions(ring_.segment(), pos);
    auto p = Producer::attach(ring_.segment());
    REQUIRE(p);
    producer_.emplace(std::move(p).value());
    auto c = Consumer::attach(ring_.segment());
    REQUIRE(c);
    consumer_.emplace(std::move(c).value());
    check_positions();
  }

  Producer& producer() { return *producer_; }
  Consumer& consumer() { return *consumer_; }
  Model& model() { return model_; }
  Segment& segment() { return *seg_; }
  std::uint64_t max_size() const { return model_.max_size(); }
  std::uint64_t start() const { return start_; }
  std::byte* at(std::uint64_t pos) const {
    return ring_data() + (pos & (cap_ - 1));
  }

  // try_reserve; on success the payload is filled from `seq_`.
  Status reserve(std::size_t size) {
    const std::uint64_t seq = next_seq_++;
    const Status want = model_.reserve(size, seq);
    Reservation r = producer_->try_reserve(size);
    INFO("reserve(" << size << ") at tail " << tail());
    REQUIRE(r.status == want);
    if (r) {
      REQUIRE(r.bytes.size() == size);
      REQUIRE(r.bytes.data() == at(model_.reserved_pos()) + kHeader);
      fill_payload(r.bytes, 0, seq);
    }
    check_positions();
    return r.status;
  }
  void commit(std::size_t used, std::uint16_t type = 0) {
    producer_->commit(used, type);
    model_.commit(used, type);
    check_positions();
  }
  void commit_deferred(std::size_t used, std::uint16_t type = 0) {
    producer_->commit_deferred(used, type);
    model_.commit_deferred(used, type);
    check_positions();
  }
  void flush() {
    producer_->flush();
    model_.flush();
    check_positions();
  }
  void abort() {
    producer_->abort();
    model_.abort();
    check_positions();
  }
  // reserve + commit of a full record; returns the reserve status.
  Status write(std::size_t size, std::uint16_t type = 0) {
    const Status s = reserve(size);
    if (s == Status::ok) commit(size, type);
    return s;
  }

  // try_peek; checks the record against the model. nullopt: would_block.
  std::optional<Record> peek() {
    const auto want = model_.peek();
    Peeked got = consumer_->try_peek();
    check_positions();
    if (!want) {
      REQUIRE(got.status == Status::would_block);
      return std::nullopt;
    }
    REQUIRE(got.status == Status::ok);
    check_record(got.record, *want);
    return got.record;
  }
  // try_peek_batch of up to `n`; checks every record against the model.
  std::size_t peek_batch(std::size_t n) {
    std::vector<Record> out(n);
    const PeekedBatch got = consumer_->try_peek_batch(out);
    const Status s = got.status;
    const std::size_t count = got.records.size();
    // The records are the front of the span passed in.
    if (count > 0) REQUIRE(got.records.data() == out.data());
    std::size_t expect = 0;
    for (; expect < n; ++expect) {
      const auto want = model_.peek();
      if (!want) break;
      REQUIRE(expect < count);
      check_record(out[expect], *want);
    }
    REQUIRE(count == expect);
    REQUIRE(s == (n == 0 || count > 0 ? Status::ok : Status::would_block));
    check_positions();
    return count;
  }
  void release() {
    consumer_->release();
    model_.release();
    check_positions();
  }
  // peek + release of exactly one record, which must be there.
  void read_one() {
    REQUIRE(peek());
    release();
  }

  std::uint64_t tail() const { return shmring::detail::control(*seg_)->tail.load(); }
  std::uint64_t head() const { return shmring::detail::control(*seg_)->head.load(); }
  void check_positions() const {
    REQUIRE(tail() == model_.published());
    REQUIRE(head() == model_.head());
  }

 private:
  std::byte* ring_data() const { return shmring::detail::ring_data(*seg_); }
  void check_record(const Record& r, const Model::Entry& want) const {
    INFO("record seq " << want.seq << " at position " << want.pos);
    REQUIRE(r.data == at(want.pos) + kHeader);
    REQUIRE(r.size == want.size);
    REQUIRE(r.type == want.type);
    // Records never straddle the end of the ring.
    REQUIRE(r.data + r.size <= ring_data() + cap_);
    REQUIRE(check_payload(r.bytes(), 0, want.seq));
  }

  testing::ScopedRing ring_;
  Segment* seg_;
  Model model_;
  std::uint64_t cap_;
  std::uint64_t start_;
  std::optional<Producer> producer_;
  std::optional<Consumer> consumer_;
  std::uint64_t next_seq_ = 1;
};

// Start positions where the wrap goes wrong in a careless ring: the ends of
// the data area, the middle, several laps in, and just below 2^32 and 2^40
// so a position truncated to 32 bits (or kept in a too-narrow field) breaks.
std::vector<std::uint64_t> interesting_positions(std::uint64_t cap) {
  std::vector<std::uint64_t> v = {
      0,
      8,
      16,
      cap - 8,
      cap - 16,
      cap - kHeader,
      cap - 2 * kHeader - 8,
      cap / 2 - 8,
      cap / 2,
      cap / 2 + 8,
      (cap - 1) & ~std::uint64_t{7},
      3 * cap - 24,
      (1ULL << 32) - cap - 24,
      (1ULL << 32) - 8,
      (1ULL << 32) + cap / 2,
      (1ULL << 40) - cap - 24,
      (1ULL << 40) - 8,
      (1ULL << 40) + cap - 8,
      (1ULL << 62) - 8,
  };
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::vector<std::size_t> interesting_sizes(std::uint64_t cap) {
  const std::size_t max = cap / 2 - kHeader;
  std::vector<std::size_t> v = {0,           1,       7,       8,       9,
                                15,          16,      17,      55,      cap / 8,
                                cap / 4 - 8, cap / 4, max - 8, max - 1, max};
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

TEST_CASE("records survive the wrap from every interesting position") {
  const std::uint64_t cap = GENERATE(256, 4096);
  const std::uint64_t pos =
      GENERATE_COPY(from_range(interesting_positions(cap)));
  CAPTURE(cap, pos);
  for (const std::size_t size : interesting_sizes(cap)) {
    CAPTURE(size);
    Harness h(cap, pos);
    // Three laps of the ring, one record in flight at a time.
    const std::uint64_t records = 3 * cap / span_for(size) + 3;
    for (std::uint64_t i = 0; i < records; ++i) {
      REQUIRE(h.write(size, static_cast<std::uint16_t>(i & layout::kMaxType)) ==
              Status::ok);
      h.read_one();
      REQUIRE_FALSE(h.peek());
    }
    // The ring went round: the wrap point was crossed at least twice.
    CHECK(h.tail() / cap >= pos / cap + 2);
    CHECK(h.tail() > pos);
  }
}

TEST_CASE("the ring is full at exactly the right fill, from every position") {
  const std::uint64_t cap = GENERATE(256, 4096);
  const std::uint64_t pos =
      GENERATE_COPY(from_range(interesting_positions(cap)));
  CAPTURE(cap, pos);
  for (const std::size_t size : interesting_sizes(cap)) {
    CAPTURE(size);
    Harness h(cap, pos);
    // Fill: the model says when it must stop; the harness REQUIREs that the
    // ring stops at the same record.
    std::uint64_t count = 0;
    while (h.write(size) == Status::ok) ++count;
    // Independent of the model: a full ring has no room for the record,
    // but is not emptier than one record (plus its padding) from full.
    const std::uint64_t used = h.tail() - h.head();
    const std::uint64_t off = h.tail() % cap;
    const std::uint64_t pad = off + span_for(size) > cap ? cap - off : 0;
    CHECK(used + pad + span_for(size) + kHeader > cap);
    CHECK(used + 2 * span_for(size) + kHeader > cap);  // padding < span
    CHECK(count >= 1);
    // Release one record: exactly the model's answer for one more.
    h.read_one();
    while (h.write(size) == Status::ok) ++count;
    // Drain in order.
    while (h.peek()) h.release();
    h.release();
    CHECK(h.head() == h.tail());
    // Empty again: a maximum record fits wherever the wrap falls.
    REQUIRE(h.write(h.max_size()) == Status::ok);
    h.read_one();
  }
}

TEST_CASE("hand-computed fills") {
  SECTION("256 bytes from 0: fifteen 8-byte records and an empty one") {
    // 8 bytes always stay for the 0 word after the last record.
    Harness h(256, 0);
    for (int i = 0; i < 15; ++i) REQUIRE(h.write(8) == Status::ok);
    CHECK(h.write(8) == Status::would_block);
    CHECK(h.write(0) == Status::ok);  // span 8: 240..247, 0 word at 248
    CHECK(h.tail() == 248);
    CHECK(h.write(0) == Status::would_block);
    h.read_one();
    // 8 bytes to the end: padding 8, then the record at 0 with its 0 word
    // needs 16 + 8 of the 16 bytes freed there.
    CHECK(h.write(8) == Status::would_block);
    CHECK(h.write(0) == Status::ok);  // 248..255, 0 word at offset 0
    CHECK(h.write(0) == Status::ok);  // 0..7, 0 word at 8
    CHECK(h.write(0) == Status::would_block);
  }
  SECTION("256 bytes from 248: padding of 8, then fifteen records") {
    Harness h(256, 248);
    REQUIRE(h.write(8) == Status::ok);
    // The first record could not start at 248 (16 > 8 bytes left): padding
    // to the end, record at offset 0.
    CHECK(h.tail() == 256 + 16);
    for (int i = 0; i < 14; ++i) REQUIRE(h.write(8) == Status::ok);
    CHECK(h.tail() == 256 + 15 * 16);
    CHECK(h.write(8) == Status::would_block);
    // Bytes 240..247 are free but keep the 0 word (248..255 hold the
    // unreleased padding): not even a zero-length record fits.
    CHECK(h.write(0) == Status::would_block);
  }
  SECTION("256 bytes: thirty-one zero-length records") {
    Harness h(256, 1ULL << 32);
    for (int i = 0; i < 31; ++i) REQUIRE(h.write(0) == Status::ok);
    CHECK(h.write(0) == Status::would_block);
    for (int i = 0; i < 31; ++i) {
      auto r = h.peek();
      REQUIRE(r);
      CHECK(r->size == 0);
    }
    h.release();
    CHECK(h.head() == (1ULL << 32) + 248);
  }
  SECTION("a max record after a half-ring padding") {
    // 4096-byte ring at offset 2056: the largest record (span 2048) does
    // not fit before the end, so 2040 bytes of padding go first.
    Harness h(4096, 4096 * 5 + 2056);
    REQUIRE(h.write(h.max_size()) == Status::ok);
    CHECK(h.tail() == 4096 * 6 + 2048);
    auto r = h.peek();
    REQUIRE(r);
    CHECK(r->data == shmring::detail::ring_data(h.segment()) + kHeader);
    h.release();
    CHECK(h.head() == h.tail());
  }
}

TEST_CASE("the empty ring: would_block, then timed_out") {
  const std::uint64_t pos = GENERATE(0ULL, 248ULL, (1ULL << 40) - 8);
  Harness h(256, pos);
  CHECK_FALSE(h.peek());
  std::vector<Record> out(4);
  const PeekedBatch none = h.consumer().try_peek_batch(out);
  CHECK(none.status == Status::would_block);
  CHECK(none.records.empty());
  CHECK(h.consumer().peek(std::chrono::milliseconds(1)).status ==
        Status::timed_out);
  CHECK(h.consumer().size_guess() == 0);
  // Releasing nothing changes nothing.
  h.release();
  CHECK(h.head() == pos);
}

TEST_CASE("abort delivers nothing and the space is reused") {
  const std::uint64_t cap = 256;
  const std::uint64_t pos =
      GENERATE_COPY(from_range(interesting_positions(cap)));
  CAPTURE(pos);
  for (const std::size_t size : interesting_sizes(cap)) {
    CAPTURE(size);
    Harness h(cap, pos);
    REQUIRE(h.reserve(size) == Status::ok);
    std::byte* first = h.at(h.model().reserved_pos());
    h.abort();
    CHECK_FALSE(h.peek());
    CHECK(h.tail() == pos);  // nothing published
    // The same record goes to the same place.
    REQUIRE(h.reserve(size) == Status::ok);
    CHECK(h.at(h.model().reserved_pos()) == first);
    h.commit(size, 7);
    auto r = h.peek();
    REQUIRE(r);
    CHECK(r->type == 7);
    h.release();
    // Fill to the last record, abort it, and it still fits after.
    while (h.write(size) == Status::ok) {
    }
    while (h.peek()) {
    }
    h.release();
    std::uint64_t n = 0;
    while (h.reserve(size) == Status::ok) {
      h.abort();
      REQUIRE(h.reserve(size) == Status::ok);
      h.commit(size);
      ++n;
    }
    CHECK(n >= 1);
    while (h.peek()) h.release();
  }
}

TEST_CASE("an aborted padded reservation then close: consumer sees closed") {
  Harness h(256, 248);
  REQUIRE(h.reserve(40) == Status::ok);  // padding 248..255, record at 0
  h.abort();
  h.producer().close();
  // The padding was published by close(); the consumer skips it and finds
  // the end of the stream, not a record.
  Peeked p = h.consumer().try_peek();
  CHECK(p.status == Status::closed);
}

TEST_CASE("trimmed commit delivers the used bytes and returns the rest") {
  const std::uint64_t cap = 4096;
  const std::uint64_t pos =
      GENERATE_COPY(from_range(interesting_positions(cap)));
  CAPTURE(pos);
  Harness h(cap, pos);
  for (const std::size_t used : {std::size_t{0}, std::size_t{1}, std::size_t{8},
                                 std::size_t{9}, std::size_t{2039}}) {
    CAPTURE(used);
    bool outstanding = false;
    for (int i = 0; i < 6; ++i) {
      // The largest record, 16 bytes less beside an outstanding one (its
      // span and the 0 word after the new one).
      REQUIRE(h.reserve(h.max_size() - (outstanding ? 16 : 0)) == Status::ok);
      const std::uint64_t at = h.model().reserved_pos();
      h.commit(used, 3);
      // Only span_for(used) bytes were claimed (the harness also checks the
      // tail against the model).
      CHECK(h.tail() == at + span_for(used));
      auto r = h.peek();
      REQUIRE(r);
      CHECK(r->size == used);
      // Keep a small record outstanding across the next reservation.
      outstanding = i % 2 == 0 && used <= 100;
      if (!outstanding) h.release();
    }
    h.release();
  }
  // commit(more than reserved) is clamped to the reservation.
  REQUIRE(h.reserve(5) == Status::ok);
  h.commit(100);
  auto r = h.peek();
  REQUIRE(r);
  CHECK(r->size == 5);
}

TEST_CASE("a record larger than the ring accepts is too_large") {
  for (const std::uint64_t cap : {256ULL, 4096ULL, 1ULL << 20}) {
    CAPTURE(cap);
    Harness h(cap, cap - 8);
    const std::size_t max = cap / 2 - kHeader;
    CHECK(h.producer().max_record_size() == max);
    CHECK(h.consumer().max_record_size() == max);
    CHECK(h.producer().try_reserve(max + 1).status == Status::too_large);
    CHECK(h.producer().try_reserve(cap).status == Status::too_large);
    CHECK(h.producer().try_reserve(SIZE_MAX).status == Status::too_large);
    CHECK(h.producer().reserve(max + 1, std::chrono::seconds(10)).status ==
          Status::too_large);
    std::vector<std::byte> big(max + 1);
    CHECK(h.producer().try_write(big) == Status::too_large);
    CHECK(h.producer().write(big) == Status::too_large);  // no wait: never fits
    h.check_positions();                                  // nothing moved
    REQUIRE(h.write(max) == Status::ok);
    h.read_one();
  }
}

TEST_CASE("a maximum record fits an empty ring at every offset") {
  const std::uint64_t cap = 256;
  for (std::uint64_t off = 0; off < cap; off += 8) {
    for (const std::uint64_t lap : {0ULL, 7ULL, (1ULL << 32) / cap}) {
      CAPTURE(off, lap);
      Harness h(cap, lap * cap + off);
      REQUIRE(h.write(h.max_size()) == Status::ok);
      h.read_one();
      REQUIRE(h.write(h.max_size()) == Status::ok);
      h.read_one();
    }
  }
}

TEST_CASE("zero-length records are delivered with size 0") {
  const std::uint64_t pos = GENERATE(0ULL, 248ULL, 4088ULL, (1ULL << 32) - 8);
  Harness h(256, pos);
  CHECK(h.producer().try_write({}, 42) == Status::ok);
  h.model().reserve(0, 0);
  h.model().commit(0, 42);
  REQUIRE(h.reserve(0) == Status::ok);
  h.commit(0, 43);
  auto a = h.peek();
  REQUIRE(a);
  CHECK(a->size == 0);
  CHECK(a->type == 42);
  CHECK(a->bytes().empty());
  auto b = h.peek();
  REQUIRE(b);
  CHECK(b->size == 0);
  CHECK(b->type == 43);
  h.release();
  CHECK(h.head() == pos + 16);
}

TEST_CASE("the type field round-trips") {
  Harness h(4096, 4096 - 24);
  for (const std::uint16_t type :
       {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{2},
        std::uint16_t{255}, std::uint16_t{4096},
        std::uint16_t{layout::kMaxType}}) {
    for (const std::size_t size : {0, 3, 16, 1000}) {
      CAPTURE(type, size);
      REQUIRE(h.write(size, type) == Status::ok);
      auto r = h.peek();
      REQUIRE(r);
      CHECK(r->type == type);
      h.release();
    }
  }
}

TEST_CASE("batch peek, one release") {
  const std::uint64_t pos =
      GENERATE(0ULL, 200ULL, 4096ULL - 40, (1ULL << 40) - 8);
  CAPTURE(pos);
  Harness h(4096, pos);
  // Fill the ring.
  std::uint64_t written = 0;
  while (h.write(100) == Status::ok) ++written;
  REQUIRE(written > 10);
  // Peek all in batches without releasing: the producer stays blocked.
  std::uint64_t peeked = h.peek_batch(3);
  CHECK(peeked == 3);
  CHECK(h.write(100) == Status::would_block);
  // try_peek continues after the batch, not at its start.
  REQUIRE(h.peek());
  ++peeked;
  while (peeked < written) peeked += h.peek_batch(64);
  CHECK(peeked == written);
  CHECK(h.peek_batch(8) == 0);
  CHECK(h.write(100) == Status::would_block);  // nothing released yet
  // One release returns everything.
  h.release();
  CHECK(h.head() == h.tail());
  std::uint64_t again = 0;
  while (h.write(100) == Status::ok) ++again;
  CHECK(again >= written - 1);
  // Blocking batch: ok at once with data; an empty span is ok with 0.
  std::vector<Record> out(1000);
  const PeekedBatch got =
      h.consumer().peek_batch(out, std::chrono::seconds(10));
  REQUIRE(got.status == Status::ok);
  CHECK(got.records.size() == again);
  CHECK(got.records.data() == out.data());
  for (const Record& r : got.records) CHECK(r.size == 100);
  const PeekedBatch empty = h.consumer().peek_batch(std::span<Record>());
  CHECK(empty.status == Status::ok);
  CHECK(empty.records.empty());
}

TEST_CASE("deferred commits are invisible until flushed") {
  const std::uint64_t pos = GENERATE(0ULL, 4096ULL - 16, (1ULL << 32) - 8);
  CAPTURE(pos);
  Harness h(4096, pos);

  SECTION("flush publishes the batch") {
    for (int i = 0; i < 3; ++i) {
      REQUIRE(h.reserve(50) == Status::ok);
      h.commit_deferred(50, static_cast<std::uint16_t>(i));
    }
    CHECK(h.tail() == pos);
    CHECK_FALSE(h.peek());
    h.flush();
    for (int i = 0; i < 3; ++i) {
      auto r = h.peek();
      REQUIRE(r);
      CHECK(r->type == i);
    }
  }
  SECTION("commit publishes the deferred records before it") {
    REQUIRE(h.reserve(50) == Status::ok);
    h.commit_deferred(50);
    REQUIRE(h.reserve(60) == Status::ok);
    h.commit_deferred(10);  // trimmed, deferred
    CHECK_FALSE(h.peek());
    REQUIRE(h.write(70) == Status::ok);
    REQUIRE(h.peek());
    auto r = h.peek();
    REQUIRE(r);
    CHECK(r->size == 10);
    REQUIRE(h.peek());
  }
  SECTION("a full ring publishes deferred records") {
    std::uint64_t n = 0;
    while (h.reserve(300) == Status::ok) {
      h.commit_deferred(300);
      ++n;
    }
    // The would_block published them: the consumer cannot wait for records
    // the producer is sitting on while the producer waits for it.
    std::uint64_t got = 0;
    while (h.peek()) ++got;
    CHECK(got == n);
  }
  SECTION("close publishes deferred records, then end of stream") {
    REQUIRE(h.reserve(5) == Status::ok);
    h.commit_deferred(5);
    h.model().flush();
    h.producer().close();
    REQUIRE(h.peek());
    CHECK(h.consumer().try_peek().status == Status::closed);
  }
  SECTION("a blocking reserve that need not wait leaves them deferred") {
    REQUIRE(h.reserve(5) == Status::ok);
    h.commit_deferred(5);
    const std::uint64_t before = h.tail();
    auto r = h.producer().reserve(6, std::chrono::seconds(10));
    REQUIRE(r);
    CHECK(h.tail() == before);  // still one batch, not yet published
    h.producer().abort();
    h.flush();
    REQUIRE(h.peek());
  }
}

// Random operations from every offset of a small ring and from the
// interesting positions of a bigger one, each checked against the model.
void random_walk(std::uint64_t cap, std::uint64_t pos, std::uint32_t seed,
                 int steps) {
  CAPTURE(cap, pos, seed);
  Harness h(cap, pos);
  std::mt19937 rng(seed);
  auto pick = [&](std::uint32_t n) {
    return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng);
  };
  const std::size_t max = h.max_size();
  auto random_size = [&]() -> std::size_t {
    switch (pick(8)) {
      case 0:
        return 0;
      case 1:
        return 1 + pick(9);
      case 2:
        return max;
      case 3:
        return max - pick(16);
      case 4:
        return pick(static_cast<std::uint32_t>(max + 1));
      case 5:
        return max + 1 + pick(8);  // too large
      default:
        return pick(64);
    }
  };
  std::uint64_t records = 0;
  for (int step = 0; step < steps; ++step) {
    const auto op = pick(100);
    if (op < 40) {
      const std::size_t size = random_size();
      if (h.reserve(size) != Status::ok) continue;
      const auto how = pick(10);
      const auto type = static_cast<std::uint16_t>(pick(layout::kMaxType + 1));
      if (how < 6) {
        h.commit(size, type);
      } else if (how < 7) {
        h.commit(pick(static_cast<std::uint32_t>(size + 1)), type);
      } else if (how < 9) {
        h.commit_deferred(size, type);
      } else {
        h.abort();
      }
      ++records;
    } else if (op < 45) {
      h.flush();
    } else if (op < 75) {
      (void)h.peek();
    } else if (op < 90) {
      h.release();
    } else {
      (void)h.peek_batch(pick(8));
    }
  }
  CHECK(records > 0);
}

TEST_CASE("random operations agree with the model at every offset") {
  for (std::uint64_t off = 0; off < 256; off += 8) {
    random_walk(256, off, static_cast<std::uint32_t>(off + 1), 3000);
    random_walk(256, (1ULL << 32) - 256 + off,
                static_cast<std::uint32_t>(off + 1000), 1000);
  }
  for (const std::uint64_t pos : interesting_positions(4096)) {
    random_walk(4096, pos, static_cast<std::uint32_t>(pos), 5000);
  }
}

}  // namespace
}  // namespace shmring
