// Millions of records from a producer thread to a consumer thread in one
// process, so ThreadSanitizer (`bazel test --config=tsan`) sees every access
// to the ring: ordered, checksummed, through a tiny ring (constant wrapping
// and blocking) and a larger one, mixing commit, commit_deferred + flush,
// trimmed commits and aborts, with futex and semaphore waits.
//
// Record counts: 5,000,000 over the four runs, in plain (unoptimised,
// fastbuild) and in sanitizer builds alike: the sanitizer configs compile
// with -O1, which pays for their instrumentation here (~15 s under TSan on
// 2 cores). The environment variable SHMRING_STRESS_RECORDS sets the count
// of every run (the manual spsc_stress_long_test target: 50,000,000 each).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::uint64_t record_count(std::uint64_t dflt) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  if (const char* env = std::getenv("SHMRING_STRESS_RECORDS")) {
    const std::uint64_t n = std::strtoull(env, nullptr, 10);
    if (n > 0) return n;
  }
  return dflt;
}

using testing::mix64;

// Record `seq`: its length and type follow from seq; the sequence number
// fills the first 8 bytes when there is room, a hash pattern the rest.
struct Format {
  std::size_t max_len;
  std::size_t length(std::uint64_t seq) const {
    // Mostly small records (the ring machinery is under test, not memcpy),
    // now and then one up to max_len.
    const std::uint64_t h = mix64(seq);
    return (h & 15) == 0 ? (h >> 8) % (max_len + 1) : (h >> 8) % 49;
  }
  static std::uint16_t type(std::uint64_t seq) {
    return static_cast<std::uint16_t>((seq * 7) & layout::kMaxType);
  }
};

bool check_record(const Record& r, std::uint64_t seq, const Format& f) {
  if (r.size != f.length(seq) || r.type != Format::type(seq)) return false;
  return testing::check_seq_record(r.bytes(), seq);
}

// The first error either thread met; threads stop at the first.
class Failure {
 public:
  void set(std::string what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (what_.empty()) what_ = std::move(what);
    // release: pairs with failed()'s acquire.
    failed_.store(true, std::memory_order_release);
  }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string what() {
    std::lock_guard<std::mutex> lock(mu_);
    return what_;
  }

 private:
  std::mutex mu_;
  std::string what_;
  std::atomic<bool> failed_{false};
};

struct Stats {
  std::uint64_t deferred = 0;
  std::uint64_t aborted = 0;
  std::uint64_t trimmed = 0;
  std::uint64_t try_full = 0;  // try_reserve found the ring full
  std::uint64_t batches = 0;
  std::uint64_t max_batch = 0;
};

void producer_loop(Producer& p, std::uint64_t n, const Format& f,
                   Failure& failure, Stats& st) {
  std::mt19937_64 rng(42);
  for (std::uint64_t seq = 0; seq < n && !failure.failed(); ++seq) {
    const std::size_t len = f.length(seq);
    const std::uint64_t dice = rng() % 64;
    // A trimmed commit reserves more than it uses.
    const std::size_t extra =
        dice < 4 ? std::min<std::size_t>(rng() % 64, p.max_record_size() - len)
                 : 0;
    Reservation r;
    if (dice % 8 == 5) {
      // try_reserve first: a full ring is reported, not waited for.
      r = p.try_reserve(len + extra);
      if (r.status == Status::would_block) {
        ++st.try_full;
        r = p.reserve(len + extra, 60s);
      }
    } else {
      r = p.reserve(len + extra, 60s);
    }
    if (!r) {
      failure.set("producer: reserve of record " + std::to_string(seq) + ": " +
                  to_string(r.status));
      return;
    }
    if (dice == 63) {
      // Scribble and abort: nothing may be delivered, and the same sequence
      // number is written again.
      std::memset(r.bytes.data(), 0xab, r.bytes.size());
      p.abort();
      ++st.aborted;
      --seq;
      continue;
    }
    testing::fill_seq_record(r.bytes.first(len), seq);
    if (extra != 0) {
      std::memset(r.bytes.data() + len, 0xcd, extra);  // never delivered
      ++st.trimmed;
    }
    if (dice >= 48 && dice < 60) {
      p.commit_deferred(len, Format::type(seq));
      ++st.deferred;
      if (dice == 59) p.flush();
    } else {
      p.commit(len, Format::type(seq));
    }
  }
  p.close();  // publishes any deferred records, then end of stream
}

void consumer_loop(Consumer& c, std::uint64_t n, const Format& f,
                   Failure& failure, Stats& st) {
  std::uint64_t expected = 0;
  std::vector<Record> batch(64);
  std::mt19937_64 rng(7);
  while (!failure.failed()) {
    std::size_t count = 0;
    Status s;
    const auto dice = rng() % 4;
    if (dice == 0) {
      Peeked one = c.try_peek();
      if (one.status == Status::would_block) one = c.peek(60s);
      s = one.status;
      if (one) {
        batch[0] = one.record;
        count = 1;
      }
    } else {
      const std::size_t want = dice == 1 ? 1 + rng() % 4 : batch.size();
      const PeekedBatch pb =
          c.peek_batch(std::span<Record>(batch).first(want), 60s);
      s = pb.status;
      count = pb.records.size();
    }
    if (s == Status::closed) {
      if (expected != n) {
        failure.set("consumer: end of stream after " +
                    std::to_string(expected) + " of " + std::to_string(n) +
                    " records");
      }
      return;
    }
    if (s != Status::ok) {
      failure.set("consumer: after " + std::to_string(expected) +
                  " records: " + to_string(s));
      return;
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (!check_record(batch[i], expected, f)) {
        failure.set("consumer: record " + std::to_string(expected) +
                    " is wrong (size " + std::to_string(batch[i].size) +
                    ", type " + std::to_string(batch[i].type) + ")");
        return;
      }
      ++expected;
    }
    ++st.batches;
    st.max_batch = std::max<std::uint64_t>(st.max_batch, count);
    c.release();
  }
}

struct Run {
  WaitStrategy wait;
  std::uint64_t capacity;
  std::size_t max_len;
  std::uint64_t records;  // unless SHMRING_STRESS_RECORDS says otherwise
};

void stress(const Run& run) {
  const std::uint64_t n = record_count(run.records);
  CAPTURE(static_cast<int>(run.wait), run.capacity, n);
  const int before = testing::own_segment_count();
  {
    testing::ScopedRing ring({.capacity = run.capacity, .wait = run.wait});
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    // A second mapping for the consumer, as another process would have.
    Segment seg2 = ring.attach_again();
    auto c = Consumer::attach(seg2);
    REQUIRE(c);
    const Format f{
        std::min<std::size_t>(run.max_len, p->max_record_size() - 64)};
    Failure failure;
    Stats pst, cst;
    const auto t0 = Clock::now();
    std::thread consumer([&] { consumer_loop(*c, n, f, failure, cst); });
    std::thread producer([&] { producer_loop(*p, n, f, failure, pst); });
    producer.join();
    consumer.join();
    const double secs =
        std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf(
        "stress: wait=%d ring=%llu records=%llu in %.2f s (%.2f M/s); "
        "deferred %llu, aborted %llu, trimmed %llu, try-full %llu, "
        "consumer batches %llu (max %llu)\n",
        static_cast<int>(run.wait),
        static_cast<unsigned long long>(run.capacity),
        static_cast<unsigned long long>(n), secs,
        static_cast<double>(n) / secs / 1e6,
        static_cast<unsigned long long>(pst.deferred),
        static_cast<unsigned long long>(pst.aborted),
        static_cast<unsigned long long>(pst.trimmed),
        static_cast<unsigned long long>(pst.try_full),
        static_cast<unsigned long long>(cst.batches),
        static_cast<unsigned long long>(cst.max_batch));
    INFO(failure.what());
    REQUIRE_FALSE(failure.failed());
    // The mixes really happened.
    CHECK(pst.deferred > 0);
    CHECK(pst.aborted > 0);
    CHECK(pst.trimmed > 0);
    const SegmentInfo info = ring.segment().info();
    CHECK(info.head == info.tail);  // drained
  }
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("stress: tiny ring, futex waits") {
  stress({WaitStrategy::futex, 4096, 1000, 2000000});
}

TEST_CASE("stress: tiny ring, semaphore waits") {
  stress({WaitStrategy::semaphore, 4096, 1000, 1000000});
}

TEST_CASE("stress: 1 MiB ring, futex waits") {
  stress({WaitStrategy::futex, 1 << 20, 4000, 1000000});
}

TEST_CASE("stress: 1 MiB ring, semaphore waits") {
  stress({WaitStrategy::semaphore, 1 << 20, 4000, 1000000});
}

}  // namespace
}  // namespace shmring
