// The readers' tail bound (docs/design/ordering.md, "Bounding records by a
// tail loaded once a lap") never refuses a correct ring: adversarial but
// legal schedules, one thread driving every handle. Tightening the bound by
// 8 bytes makes this fail at once (e.g. "step 1947 status ring corrupt").
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ring/internal/segment_access.h"
#include "tests/support.h"

namespace shmring {
namespace {

using testing::attach_consumer;
using testing::attach_producer;

struct Reader {
  detail::RecordReader* r;
  std::uint64_t next = 0;  // seq expected
  std::uint64_t held = 0;  // records peeked, not released
};

// A correct ring driven through a random schedule: writes of every size up
// to the maximum (aligned ones too), deferred batches, readers that hold
// records, a reader that sees a batch's headers before its tail store (the
// tail rolled back to its value before the last publication), and
// producers that die between a batch's header and its tail store (the
// next one walks). No reader may ever say corrupt.
void drive(Kind kind, std::uint64_t capacity, std::uint64_t start,
           std::uint32_t seed, int steps) {
  CAPTURE(static_cast<int>(kind), capacity, start, seed);
  testing::ScopedRing ring(
      {.kind = kind,
       .capacity = capacity,
       .max_consumers = kind == Kind::broadcast ? 2u : 1u});
  Segment& seg = ring.segment();
  auto* cb = detail::control(seg);
  testing::set_positions(seg, start);
  std::mt19937 rng(seed);
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  std::optional<Consumer> cons;
  std::vector<Subscriber> subs;
  std::vector<Reader> readers;
  if (kind == Kind::broadcast) {
    subs.push_back(testing::attach_subscriber(seg));
    subs.push_back(testing::attach_subscriber(seg));
    for (auto& s : subs) readers.push_back({&s});
  } else {
    cons.emplace(attach_consumer(seg));
    readers.push_back({&*cons});
  }
  std::optional<Producer> p;
  p.emplace(attach_producer(seg));
  const bool spsc_like = kind != Kind::mpsc;
  const std::uint64_t max = p->max_record_size();
  std::uint64_t seq = 0;
  std::uint64_t stale_tail = cb->tail.load(std::memory_order_relaxed);
  std::uint64_t corrupt = 0;
  // A producer call that may publish: the tail before it is what a reader
  // may still see while it reads what the call published.
  auto publishing = [&](auto&& call) {
    const std::uint64_t before = cb->tail.load(std::memory_order_relaxed);
    call();
    if (cb->tail.load(std::memory_order_relaxed) != before) {
      stale_tail = before;
    }
  };
  for (int step = 0; step < steps && corrupt == 0; ++step) {
    const std::uint64_t a = pick(0, 99);
    if (a < 45) {
      std::uint64_t size = 0;
      const std::uint64_t s = pick(0, 2);
      size = s == 0 ? max : s == 1 ? pick(8, 40) : pick(8, max);
      std::size_t align = 8;
      if (pick(0, 4) == 0) {
        align = pick(0, 1) ? 16 : 64;
        if (size + align - 8 > max) size = max - (align - 8);
      }
      Reservation r;
      publishing([&] { r = p->try_reserve(size, align); });
      if (r.status == Status::would_block) continue;
      REQUIRE(r.status == Status::ok);
      testing::fill_seq_record(r.bytes, seq++);
      if (pick(0, 1)) {
        publishing([&] { p->commit(size); });
      } else {
        p->commit_deferred(size);
      }
    } else if (a < 52) {
      publishing([&] { p->flush(); });
    } else if (a < 85) {
      Reader& rd = readers[pick(0, readers.size() - 1)];
      const bool stale = spsc_like && pick(0, 1);
      const std::uint64_t real = cb->tail.load(std::memory_order_relaxed);
      if (stale) cb->tail.store(stale_tail, std::memory_order_relaxed);
      const std::uint64_t n = pick(1, 8);
      for (std::uint64_t i = 0; i < n; ++i) {
        const Peeked got = rd.r->try_peek();
        if (got.status == Status::would_block) break;
        if (got.status != Status::ok) {
          UNSCOPED_INFO("step " << step << " status " << to_string(got.status)
                                << " stale " << stale << " tail " << real
                                << " stale_tail " << stale_tail);
          ++corrupt;
          break;
        }
        REQUIRE(testing::check_seq_record(got.record.bytes(), rd.next));
        ++rd.next;
        ++rd.held;
      }
      if (stale) cb->tail.store(real, std::memory_order_relaxed);
    } else if (a < 97) {
      Reader& rd = readers[pick(0, readers.size() - 1)];
      rd.r->release();
      rd.held = 0;
    } else if (spsc_like) {
      // The producer dies between its last batch's header and its tail
      // store; the next one walks the batch.
      publishing([&] { p->flush(); });
      p->close();
      cb->tail.store(stale_tail, std::memory_order_relaxed);
      p.reset();
      p.emplace(attach_producer(seg));
    }
  }
  CHECK(corrupt == 0);
  std::uint64_t got = 0;
  for (auto& rd : readers) got += rd.next;
  CHECK(got > 0);
}

TEST_CASE("the tail bound never refuses a correct ring") {
  const std::uint64_t starts[] = {0, (~std::uint64_t{0} - 4096) & ~7ULL,
                                  ~std::uint64_t{0} - 7,
                                  (std::uint64_t{1} << 63) - 8};
  for (Kind kind : {Kind::spsc, Kind::broadcast, Kind::mpsc}) {
    for (std::uint64_t cap : {256ULL, 4096ULL}) {
      for (std::uint64_t start : starts) {
        for (std::uint32_t seed = 1; seed <= 6; ++seed) {
          drive(kind, cap, start, seed, 20000);
        }
      }
    }
  }
}

}  // namespace
}  // namespace shmring
