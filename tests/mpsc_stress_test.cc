// Many producer threads, one consumer thread, millions of records: each
// producer's records must arrive complete, in order and intact. Threads (not
// processes) so that ThreadSanitizer sees both sides of every access:
//   bazel test --config=tsan //tests:mpsc_stress_test
// Under TSan the counts are scaled down to keep the run short;
// //tests:mpsc_stress_long_test (manual) runs the full counts anywhere.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

#if defined(__SANITIZE_THREAD__) && !defined(SHMRING_STRESS_FULL_COUNTS)
// TSan costs 5-15x: the full counts took 140 s on 2 busy cores (load 10),
// too close to the 3-minute budget. A quarter still wraps the 1 MiB ring
// ~100 times and the tiny rings tens of thousands of times.
constexpr std::uint64_t kScale = 4;
#else
constexpr std::uint64_t kScale = 1;
#endif

// Only reached if the ring hangs; any wait in a healthy run is far shorter.
constexpr auto kHang = std::chrono::seconds(120);

// Record layout: fixed head, then `len` body bytes derived from the head.
struct Head {
  std::uint32_t producer;
  std::uint32_t len;
  std::uint64_t seq;
  std::uint64_t check;
};
static_assert(sizeof(Head) == 24);
constexpr std::uint64_t kAbortedSeq = ~0ULL;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 31;
  x *= 0x7fb5d329728ea185ULL;
  x ^= x >> 27;
  x *= 0x81dadef4bc2dd44dULL;
  x ^= x >> 33;
  return x;
}

// Body length of record `seq` of `producer`: deterministic, so a record
// delivered with the wrong length is caught even if its bytes are intact.
std::uint32_t body_len(std::uint32_t producer, std::uint64_t seq,
                       std::uint32_t max_body) {
  return static_cast<std::uint32_t>(mix((std::uint64_t{producer} << 40) ^ seq) %
                                    (max_body + 1));
}

std::uint64_t check_of(std::uint32_t producer, std::uint64_t seq,
                       std::uint32_t len) {
  return mix(mix(seq) ^ (std::uint64_t{producer} << 32 | len));
}

std::byte body_byte(std::uint64_t check, std::uint32_t i) {
  return static_cast<std::byte>((check >> ((i % 8) * 8)) ^
                                (std::uint64_t{i} * 131));
}

void encode(std::span<std::byte> out, std::uint32_t producer, std::uint64_t seq,
            std::uint32_t len) {
  const Head h{producer, len, seq, check_of(producer, seq, len)};
  std::memcpy(out.data(), &h, sizeof h);
  for (std::uint32_t i = 0; i < len; ++i) {
    out[sizeof h + i] = body_byte(h.check, i);
  }
}

struct Scenario {
  const char* name = "";
  std::uint32_t producers = 4;
  std::uint64_t records = 0;  // per producer
  std::uint64_t capacity = 1 << 20;
  std::uint32_t max_body = 40;
  // 1 in N reservations is filled with garbage and aborted (0: never).
  std::uint32_t abort_one_in = 0;
  // 1 in N reservations asks for up to 31 more bytes than it commits.
  std::uint32_t trim_one_in = 0;
  WaitStrategy wait = WaitStrategy::futex;
  std::size_t batch = 64;  // consumer peek_batch size
};

struct ProducerResult {
  std::uint64_t committed = 0;
  std::uint64_t aborted = 0;
  Status failure = Status::ok;
};

struct ConsumerResult {
  std::uint64_t records = 0;
  std::vector<std::uint64_t> next;  // per producer: next expected seq
  std::string error;                // first violation
  Status end = Status::ok;
};

void produce(Producer& p, std::uint32_t id, const Scenario& sc,
             ProducerResult& out) {
  std::uint64_t rng = mix(0x5eed0000ULL + id);
  auto random = [&rng] { return rng = mix(rng + 0x9e3779b97f4a7c15ULL); };
  for (std::uint64_t seq = 0; seq < sc.records;) {
    const std::uint32_t len = body_len(id, seq, sc.max_body);
    const bool abort = sc.abort_one_in != 0 && random() % sc.abort_one_in == 0;
    const std::size_t extra =
        sc.trim_one_in != 0 && random() % sc.trim_one_in == 0 ? random() % 32
                                                              : 0;
    auto r = p.reserve(sizeof(Head) + len + extra, kHang);
    if (!r) {
      out.failure = r.status;
      return;
    }
    if (abort) {
      // Looks like a record, but must never be delivered.
      encode(r.bytes, id, kAbortedSeq, len);
      p.abort();
      ++out.aborted;
      continue;
    }
    encode(r.bytes, id, seq, len);
    p.commit(sizeof(Head) + len);
    ++out.committed;
    ++seq;
  }
  p.close();
}

// Returns false (and sets out.error) on the first bad record.
bool verify(const Record& rec, const Scenario& sc, ConsumerResult& out) {
  auto fail = [&](const std::string& what) {
    out.error = what + " (record " + std::to_string(out.records) + ")";
    return false;
  };
  if (rec.size < sizeof(Head)) return fail("short record");
  Head h{};
  std::memcpy(&h, rec.data, sizeof h);
  if (h.producer >= sc.producers) return fail("bad producer id");
  if (h.seq == kAbortedSeq) return fail("an aborted record was delivered");
  std::uint64_t& next = out.next[h.producer];
  if (h.seq != next) {
    return fail("producer " + std::to_string(h.producer) + ": seq " +
                std::to_string(h.seq) + ", expected " + std::to_string(next));
  }
  if (h.len != body_len(h.producer, h.seq, sc.max_body) ||
      rec.size != sizeof(Head) + h.len) {
    return fail("wrong length");
  }
  if (h.check != check_of(h.producer, h.seq, h.len)) return fail("bad check");
  for (std::uint32_t i = 0; i < h.len; ++i) {
    if (rec.data[sizeof h + i] != body_byte(h.check, i)) {
      return fail("corrupt body byte " + std::to_string(i));
    }
  }
  ++next;
  ++out.records;
  return true;
}

void consume(Consumer& c, const Scenario& sc, ConsumerResult& out) {
  out.next.assign(sc.producers, 0);
  std::vector<Record> batch(sc.batch);
  for (;;) {
    const PeekedBatch pb = c.peek_batch(batch, kHang);
    const Status s = pb.status;
    const std::size_t n = pb.records.size();
    if (s != Status::ok) {
      out.end = s;
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!verify(batch[i], sc, out)) {
        out.end = Status::corrupt;
        // Producers blocked on the full ring get peer_dead at once instead
        // of waiting kHang for a consumer that stopped reading.
        c.close();
        return;
      }
    }
    c.release();
  }
}

void run(const Scenario& sc) {
  INFO("scenario " << sc.name << ": " << sc.producers << " x " << sc.records
                   << " records, capacity " << sc.capacity);
  const auto start = std::chrono::steady_clock::now();
  testing::ScopedRing ring(
      {.kind = Kind::mpsc, .capacity = sc.capacity, .wait = sc.wait});
  Segment& seg = ring.segment();
  // Every producer registers before any thread starts, so the consumer
  // cannot see end of stream before the last one attached.
  std::vector<Producer> producers;
  for (std::uint32_t i = 0; i < sc.producers; ++i) {
    auto p = Producer::attach(seg);
    REQUIRE(p);
    producers.push_back(std::move(p).value());
  }
  auto c = Consumer::attach(seg);
  REQUIRE(c);

  std::vector<ProducerResult> results(sc.producers);
  ConsumerResult consumed;
  std::thread consumer([&] { consume(*c, sc, consumed); });
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < sc.producers; ++i) {
    threads.emplace_back([&, i] { produce(producers[i], i, sc, results[i]); });
  }
  for (auto& t : threads) t.join();
  consumer.join();

  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::uint64_t aborted = 0;
  for (std::uint32_t i = 0; i < sc.producers; ++i) {
    INFO("producer " << i);
    CHECK(results[i].failure == Status::ok);
    CHECK(results[i].committed == sc.records);
    aborted += results[i].aborted;
  }
  INFO("consumer: " << consumed.error);
  REQUIRE(consumed.error.empty());
  CHECK(consumed.end == Status::closed);
  CHECK(consumed.records == sc.records * sc.producers);
  for (std::uint32_t i = 0; i < sc.producers; ++i) {
    CHECK(consumed.next[i] == sc.records);
  }
  if (sc.abort_one_in != 0) CHECK(aborted > 0);
  // Every producer closed: nothing was reaped or reclaimed.
  CHECK(shmring::detail::control(seg)->records_reclaimed.load() == 0);
  CHECK(shmring::detail::control(seg)->producers_died.load() == 0);
  CHECK(shmring::detail::control(seg)->producers_attached.load() == 0);
  std::printf(
      "%-28s %u x %llu records in %.2f s (%.2f M records/s), "
      "%llu aborted\n",
      sc.name, sc.producers, static_cast<unsigned long long>(sc.records), secs,
      static_cast<double>(sc.records * sc.producers) / secs / 1e6,
      static_cast<unsigned long long>(aborted));
}

TEST_CASE("mpsc stress: 4 producers x 2.5M records, 1 MiB ring") {
  run({.name = "4x2.5M futex", .records = 2'500'000 / kScale});
}

TEST_CASE("mpsc stress: tiny ring wraps constantly, trimmed commits") {
  run({.name = "tiny ring 512 B",
       .records = 150'000 / kScale,
       .capacity = 512,
       .max_body = 48,
       .trim_one_in = 4});
}

TEST_CASE("mpsc stress: random aborts among commits") {
  run({.name = "aborts 1 in 7",
       .records = 500'000 / kScale,
       .capacity = 1 << 14,
       .abort_one_in = 7,
       .trim_one_in = 5,
       .batch = 7});
}

TEST_CASE("mpsc stress: tiny ring with aborts, 8 producers") {
  run({.name = "tiny ring 256 B, 8 producers",
       .producers = 8,
       .records = 20'000 / kScale,
       .capacity = 256,
       .max_body = 24,
       .abort_one_in = 5,
       .trim_one_in = 3,
       .batch = 3});
}

TEST_CASE("mpsc stress: semaphore waits") {
  run({.name = "semaphore",
       .records = 250'000 / kScale,
       .capacity = 4096,
       .wait = WaitStrategy::semaphore});
}

TEST_CASE("mpsc stress: spin waits") {
  run({.name = "spin",
       .records = 100'000 / kScale,
       .capacity = 4096,
       .wait = WaitStrategy::spin});
}

}  // namespace
}  // namespace shmring
