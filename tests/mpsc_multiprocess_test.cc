// Real processes on a real segment: forked producers, the test process as
// the one consumer. Each producer's records must arrive complete, in order
// and intact, with each wait strategy.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support.h"

namespace shmring {
namespace {

constexpr auto kHang = std::chrono::seconds(120);

// Record: seq, producer, body length, then fill_payload(body, producer, seq).
struct Head {
  std::uint64_t seq;
  std::uint32_t producer;
  std::uint32_t len;
};
static_assert(sizeof(Head) == 16);

std::uint32_t body_len(std::uint32_t producer, std::uint64_t seq) {
  return static_cast<std::uint32_t>(
      (seq * 2654435761u + std::uint64_t{producer} * 40503u) % 57);
}

struct Shared {
  // Producers attached so far: each waits for all, so the consumer cannot
  // see end of stream before the last producer registered.
  std::atomic<int> attached{0};
};

int produce(Segment& seg, Shared& shared, std::uint32_t id, int producers,
            std::uint64_t records) {
  auto p = Producer::attach(seg);
  if (!p) {
    std::fprintf(stderr, "producer %u: %s\n", id, p.error().message.c_str());
    return 1;
  }
  // seq_cst: a counter every child reads; no data rides on it.
  shared.attached.fetch_add(1, std::memory_order_seq_cst);
  const auto deadline = std::chrono::steady_clock::now() + kHang;
  while (shared.attached.load(std::memory_order_seq_cst) < producers) {
    if (std::chrono::steady_clock::now() > deadline) return 2;
    ::usleep(1000);
  }
  for (std::uint64_t seq = 0; seq < records; ++seq) {
    const Head h{seq, id, body_len(id, seq)};
    auto r = p->reserve(sizeof h + h.len, kHang);
    if (!r) {
      std::fprintf(stderr, "producer %u: reserve: %s\n", id,
                   to_string(r.status));
      return 3;
    }
    std::memcpy(r.bytes.data(), &h, sizeof h);
    testing::fill_payload(r.bytes.subspan(sizeof h), id, seq);
    p->commit();
  }
  p->close();
  return 0;
}

void run(WaitStrategy wait, int producers, std::uint64_t records,
         std::uint64_t capacity) {
  INFO(producers << " producer processes x " << records << " records");
  const int segments_before = testing::own_segment_count();
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t received = 0;
  {
    testing::ScopedRing ring(
        {.kind = Kind::mpsc, .capacity = capacity, .wait = wait});
    Segment& seg = ring.segment();
    testing::SharedBlock<Shared> shared;
    auto c = Consumer::attach(seg);
    REQUIRE(c);
    testing::ChildGuard children;
    std::vector<pid_t> pids;
    pids.reserve(producers);
    for (int i = 0; i < producers; ++i) {
      pids.push_back(children.spawn([&seg, &shared, i, producers, records] {
        return produce(seg, *shared, static_cast<std::uint32_t>(i), producers,
                       records);
      }));
    }

    std::vector<std::uint64_t> next(producers, 0);
    std::vector<Record> batch(32);
    std::string error;
    Status end = Status::ok;
    while (error.empty()) {
      const PeekedBatch pb = c->peek_batch(batch, kHang);
      end = pb.status;
      if (end != Status::ok) break;
      const std::size_t n = pb.records.size();
      for (std::size_t i = 0; i < n && error.empty(); ++i) {
        const Record& rec = batch[i];
        Head h{};
        if (rec.size < sizeof h) {
          error = "short record";
          break;
        }
        std::memcpy(&h, rec.data, sizeof h);
        if (h.producer >= static_cast<std::uint32_t>(producers)) {
          error = "bad producer id";
        } else if (h.seq != next[h.producer]) {
          error = "producer " + std::to_string(h.producer) + ": seq " +
                  std::to_string(h.seq) + ", expected " +
                  std::to_string(next[h.producer]);
        } else if (h.len != body_len(h.producer, h.seq) ||
                   rec.size != sizeof h + h.len ||
                   !testing::check_payload(rec.bytes().subspan(sizeof h),
                                           h.producer, h.seq)) {
          error = "producer " + std::to_string(h.producer) + " seq " +
                  std::to_string(h.seq) + ": corrupt payload";
        } else {
          ++next[h.producer];
          ++received;
        }
      }
      c->release();
    }
    INFO("after " << received << " records: " << error);
    REQUIRE(error.empty());
    CHECK(end == Status::closed);
    for (int i = 0; i < producers; ++i) {
      INFO("producer " << i);
      CHECK(next[i] == records);
      const auto st = children.wait(pids[i], kHang);
      INFO("child " << st.describe());
      CHECK(st.exited);
      CHECK(st.code == 0);
    }
    CHECK(seg.info().producers_seen == static_cast<std::uint32_t>(producers));
    CHECK(seg.info().producers_died == 0);
    CHECK(seg.info().records_reclaimed == 0);
  }
  CHECK(received == records * producers);
  CHECK(testing::own_segment_count() == segments_before);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("%-9s %d processes x %llu records in %.2f s (%.2f M/s)\n",
              wait == WaitStrategy::futex       ? "futex"
              : wait == WaitStrategy::semaphore ? "semaphore"
                                                : "spin",
              producers, static_cast<unsigned long long>(records), secs,
              static_cast<double>(received) / secs / 1e6);
}

TEST_CASE("mpsc processes: 4 producers x 1M records, futex waits") {
  run(WaitStrategy::futex, 4, 1'000'000, 1 << 20);
}

TEST_CASE("mpsc processes: 4 producers, semaphore waits, small ring") {
  run(WaitStrategy::semaphore, 4, 250'000, 1 << 13);
}

TEST_CASE("mpsc processes: 4 producers, futex waits, small ring") {
  run(WaitStrategy::futex, 4, 250'000, 1 << 13);
}

}  // namespace
}  // namespace shmring
