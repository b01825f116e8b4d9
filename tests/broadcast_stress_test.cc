// A broadcast ring between threads of one process, so ThreadSanitizer
// (`bazel test --config=tsan`) sees every access: one producer thread,
// three consumer threads checking every record (order, length, type,
// contents), a tiny ring (constant wrapping and blocking on the slowest
// consumer) and a larger one, mixing commit, commit_deferred + flush and
// aborts; a fourth consumer attaches and detaches over and over and checks
// that each attachment sees a gap-free, in-order run of records.
//
// Record counts: 400,000 per run by default (two runs, futex and
// semaphore); SHMRING_STRESS_RECORDS overrides it (the manual
// broadcast_stress_long_test target).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;

std::uint64_t record_count(std::uint64_t dflt) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  if (const char* env = std::getenv("SHMRING_STRESS_RECORDS")) {
    const std::uint64_t n = std::strtoull(env, nullptr, 10);
    if (n > 0) return n;
  }
  return dflt;
}

using testing::mix64;

// Mostly small records, now and then one up to max_len; at least 8 bytes
// so every record carries its sequence number.
std::size_t length_of(std::uint64_t seq, std::size_t max_len) {
  const std::uint64_t h = mix64(seq);
  return 8 + ((h & 15) == 0 ? (h >> 8) % (max_len - 7) : (h >> 8) % 41);
}
std::uint16_t type_of(std::uint64_t seq) {
  return static_cast<std::uint16_t>((seq * 7) & layout::kMaxType);
}

bool check(const Record& r, std::uint64_t seq, std::size_t max_len) {
  if (r.size != length_of(seq, max_len) || r.type != type_of(seq)) {
    return false;
  }
  return testing::check_seq_record(r.bytes(), seq);
}

void run(std::uint64_t capacity, WaitStrategy wait, std::uint64_t n) {
  RingOptions o;
  o.kind = Kind::broadcast;
  o.capacity = capacity;
  o.wait = wait;
  o.max_consumers = 4;
  testing::ScopedRing ring(o);
  Segment& seg = ring.segment();
  const std::size_t max_len = std::min<std::size_t>(
      1000, layout::max_payload(capacity) / 2);

  std::vector<Subscriber> steady;
  for (int i = 0; i < 3; ++i) steady.push_back(testing::attach_subscriber(seg));
  std::atomic<bool> failed{false};
  std::atomic<bool> done{false};
  std::vector<std::uint64_t> received(3, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      Subscriber& c = steady[i];
      std::uint64_t seq = 0;
      std::vector<Record> batch(1 + 5 * i);
      for (;;) {
        const PeekedBatch pb = c.peek_batch(batch, 30s);
        const Status s = pb.status;
        const std::size_t got = pb.records.size();
        if (s == Status::closed) break;
        if (s != Status::ok) {
          std::fprintf(stderr, "consumer %d: %s\n", i, to_string(s));
          failed = true;
          return;
        }
        for (std::size_t k = 0; k < got; ++k) {
          if (!check(batch[k], seq, max_len)) {
            std::fprintf(stderr, "consumer %d: record %llu wrong\n", i,
                         static_cast<unsigned long long>(seq));
            failed = true;
            return;
          }
          ++seq;
        }
        c.release();
      }
      received[i] = seq;
    });
  }
  // The fourth consumer comes and goes: each attachment must see a
  // contiguous, in-order run starting after it attached.
  std::atomic<std::uint64_t> rejoins{0};
  threads.emplace_back([&] {
    std::mt19937_64 rng(42);
    while (!done.load() && !failed.load()) {
      auto c = Subscriber::attach(seg);
      if (!c) {
        std::fprintf(stderr, "rejoiner: %s\n", c.error().message.c_str());
        failed = true;
        return;
      }
      ++rejoins;
      std::uint64_t expect = ~0ULL;
      const std::uint64_t take = rng() % 2000;
      for (std::uint64_t k = 0; k < take; ++k) {
        Peeked got = c->peek(30s);
        if (!got) {
          if (got.status != Status::closed) failed = true;
          return;
        }
        const std::uint64_t s = testing::seq_stamp(got.record.bytes());
        if ((expect != ~0ULL && s != expect) || !check(got.record, s, max_len)) {
          std::fprintf(stderr, "rejoiner: record %llu after %llu\n",
                       static_cast<unsigned long long>(s),
                       static_cast<unsigned long long>(expect));
          failed = true;
          return;
        }
        expect = s + 1;
        c->release();
      }
      c->close();
    }
  });

  {
    Producer p = testing::attach_producer(seg);
    std::mt19937_64 rng(7);
    for (std::uint64_t seq = 0; seq < n && !failed.load();) {
      const std::size_t len = length_of(seq, max_len);
      Reservation r = p.reserve(len, 30s);
      if (!r) {
        std::fprintf(stderr, "producer: %s\n", to_string(r.status));
        failed = true;
        break;
      }
      const std::uint64_t pick = rng() % 16;
      if (pick == 0) {  // abort: nothing is delivered
        p.abort();
        continue;
      }
      std::memcpy(r.bytes.data(), &seq, 8);
      testing::fill_words(r.bytes.subspan(8), seq);
      if (pick < 6) {
        p.commit_deferred(len, type_of(seq));
        if (pick == 1) p.flush();
      } else {
        p.commit(len, type_of(seq));
      }
      ++seq;
    }
  }  // close: end of stream for every consumer
  done = true;
  for (auto& t : threads) t.join();
  REQUIRE_FALSE(failed.load());
  for (int i = 0; i < 3; ++i) CHECK(received[i] == n);
  CHECK(rejoins.load() > 0);
}

TEST_CASE("broadcast stress: tiny ring, futex", "[broadcast][stress]") {
  run(4096, WaitStrategy::futex, record_count(400000));
}

TEST_CASE("broadcast stress: 64 KiB ring, semaphore", "[broadcast][stress]") {
  run(1 << 16, WaitStrategy::semaphore, record_count(400000));
}

}  // namespace
}  // namespace shmring
