// Scenario 8: rigtorp/SPSCQueue's own benchmark method, for
// shmring's Queue<int>, shmring records (batched), Boost.Lockfree
// spsc_queue<int> and moodycamel ReaderWriterQueue<int>. Two threads of one
// process, pinned to the producer and consumer CPUs; every queue gets the
// same 1 MiB storage budget (shmring: a 1 MiB slots ring of int elements;
// the batched row: a 1 MiB record ring, 16 bytes per 8-byte record).
//
//   throughput: the producer pushes 0 .. N-1 (N = 10 M), spinning while
//               full; the consumer pops them in order, checking each.
//               ops/s = N / time from the first push to the last pop.
//   RTT:        two queues; the pinger pushes i into q1 and spins until it
//               pops the answer from q2; the ponger answers each. Mean
//               round trip = total time / round trips.
// This is what src/SPSCQueueBenchmark.cpp in rigtorp/SPSCQueue does; only
// the queues and the counts (RTT: 1 M round trips, not 10 M) differ.
#include <readerwriterqueue/readerwriterqueue.h>

#include <algorithm>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "bench/harness.h"
#include "bench/private_ring.h"
#include "bench/scenarios.h"
#include "ring/shmring.h"

namespace bench {
namespace {

constexpr std::size_t kBudget = 1 << 20;
// Two cache lines: the unit the adjacent-line prefetcher moves, so state
// written by one thread is kept this far from the other thread's.
constexpr std::size_t kLinePair = 128;

// ---- The three queues behind one push/pop shape (spinning, like rigtorp).

class ShmringQueue {
 public:
  ShmringQueue() {
    // The fixed-slot kind: kBudget / sizeof(int) int slots, no headers.
    shmring::RingOptions o;
    o.kind = shmring::Kind::slots;
    o.capacity = kBudget;
    o.slot_size = sizeof(int);
    auto seg = shmring::Segment::create_private(o);
    if (!seg) throw std::runtime_error(seg.error().message);
    seg_.emplace(std::move(seg).value());
    (void)seg_->remove();  // gone once we detach
    auto w = shmring::QueueWriter<int>::attach(*seg_);
    auto r = shmring::QueueReader<int>::attach(*seg_);
    if (!w || !r) throw std::runtime_error("cannot attach the ring's ends");
    w_.emplace(std::move(w).value());
    r_.emplace(std::move(r).value());
  }
  void push(int v) {
    while (w_->try_push(v) != shmring::Status::ok) cpu_relax();
  }
  int pop() {
    for (;;) {
      const shmring::Popped<int> p = r_->try_pop();
      if (p) return p.value;
      cpu_relax();
    }
  }

 private:
  std::optional<shmring::Segment> seg_;
  // Each thread's handle on its own cache lines (kLinePair): no line
  // holds both threads' private state.
  alignas(kLinePair) std::optional<shmring::QueueWriter<int>> w_;
  alignas(kLinePair) std::optional<shmring::QueueReader<int>> r_;
};

// shmring records on a private spsc ring: each int an 8-byte record,
// try_reserve + commit_deferred, published by flush() every `batch`
// records (and when the ring is full); the reader takes up to `batch`
// records with try_peek_batch and releases them all once it has popped
// the last of them.
class ShmringBatched {
 public:
  explicit ShmringBatched(const Config& config)
      : ring_(shmring::RingOptions{.capacity = kBudget}),
        w_{attach_producer(ring_.segment()),
           std::max<std::size_t>(1, config.batch)},
        r_{attach_consumer(ring_.segment()),
           std::vector<shmring::Record>(w_.batch)} {}
  void push(int v) {
    shmring::Reservation r = w_.p.try_reserve(sizeof(std::int64_t));
    while (!r) {
      cpu_relax();
      r = w_.p.try_reserve(sizeof(std::int64_t));
    }
    const std::int64_t w = v;
    std::memcpy(r.bytes.data(), &w, sizeof w);
    w_.p.commit_deferred(sizeof w);
    if (++w_.pending == w_.batch) flush();
  }
  // Publishes what push() deferred: the end of a run, and each ping-pong
  // message (one in flight: no batch ever fills).
  void flush() {
    w_.p.flush();
    w_.pending = 0;
  }
  int pop() {
    if (r_.next == r_.got) {
      if (r_.got != 0) r_.c.release();  // the whole batch, popped
      r_.next = r_.got = 0;
      for (;;) {
        const shmring::PeekedBatch b = r_.c.try_peek_batch(r_.recs);
        if (b) {
          r_.got = b.records.size();
          break;
        }
        // Nothing else can come from a ring whose producer is alive in this
        // process unless it is corrupt: then stop loudly.
        if (b.status != shmring::Status::would_block) {
          check_status(b.status, "try_peek_batch");
        }
        cpu_relax();
      }
    }
    const shmring::Record& rec = r_.recs[r_.next++];
    std::int64_t w = -1;  // a wrong size pops -1: never the expected int
    if (rec.size == sizeof w) std::memcpy(&w, rec.data, sizeof w);
    return static_cast<int>(w);
  }

 private:
  // Each thread's state on its own cache lines (kLinePair): a line that
  // held the writer's count and the reader's position would move between
  // the CPUs on every record.
  struct alignas(kLinePair) Writer {
    shmring::Producer p;
    std::size_t batch;
    std::size_t pending = 0;  // committed since the last flush
  };
  struct alignas(kLinePair) Reader {
    shmring::Consumer c;
    std::vector<shmring::Record> recs;
    std::size_t next = 0;  // recs[next .. got): peeked, not yet popped
    std::size_t got = 0;
  };
  PrivateRing ring_;
  Writer w_;
  Reader r_;
};

class LockfreeQueue {
 public:
  LockfreeQueue() : q_(kBudget / sizeof(int)) {}
  void push(int v) {
    while (!q_.push(v)) cpu_relax();
  }
  int pop() {
    int v;
    while (!q_.pop(v)) cpu_relax();
    return v;
  }

 private:
  boost::lockfree::spsc_queue<int> q_;  // runtime capacity, heap storage
};

class RwqQueue {
 public:
  RwqQueue() : q_(kBudget / sizeof(int)) {}
  void push(int v) {
    while (!q_.try_enqueue(v)) cpu_relax();
  }
  int pop() {
    int v;
    while (!q_.try_dequeue(v)) cpu_relax();
    return v;
  }

 private:
  moodycamel::ReaderWriterQueue<int> q_;
};

// The limit: rigtorp/SPSCQueue's algorithm written out here (rigtorp's
// code is not packaged for Debian): capacity + 1 slots with padding on
// both ends, the two indices on their own cache lines, each side caching
// the other's index and reloading it (acquire) only when it looks full or
// empty; a release store of its own index per element. No lifecycle, no
// wake-up, no shared memory: what a Queue<int> could cost at best.
class RigtorpDesignQueue {
 public:
  RigtorpDesignQueue()
      : capacity_(kBudget / sizeof(int) + 1),
        slots_(new int[capacity_ + 2 * kPadding]) {}
  void push(int v) {
    // relaxed: only this thread writes writeIdx_.
    const std::size_t w = write_idx_.load(std::memory_order_relaxed);
    std::size_t next = w + 1;
    if (next == capacity_) next = 0;
    // acquire: pairs with pop()'s release store of read_idx_.
    while (next == read_idx_cache_) {
      read_idx_cache_ = read_idx_.load(std::memory_order_acquire);
      if (next == read_idx_cache_) cpu_relax();
    }
    slots_[w + kPadding] = v;
    // release: pairs with pop()'s acquire load of write_idx_.
    write_idx_.store(next, std::memory_order_release);
  }
  int pop() {
    // relaxed: only this thread writes read_idx_.
    const std::size_t r = read_idx_.load(std::memory_order_relaxed);
    // acquire: pairs with push()'s release store of write_idx_.
    while (r == write_idx_cache_) {
      write_idx_cache_ = write_idx_.load(std::memory_order_acquire);
      if (r == write_idx_cache_) cpu_relax();
    }
    const int v = slots_[r + kPadding];
    std::size_t next = r + 1;
    if (next == capacity_) next = 0;
    // release: pairs with push()'s acquire load of read_idx_.
    read_idx_.store(next, std::memory_order_release);
    return v;
  }

 private:
  static constexpr std::size_t kLine = 64;
  static constexpr std::size_t kPadding = (kLine - 1) / sizeof(int) + 1;
  const std::size_t capacity_;
  const std::unique_ptr<int[]> slots_;
  alignas(kLine) std::atomic<std::size_t> write_idx_{0};
  alignas(kLine) std::size_t read_idx_cache_ = 0;
  alignas(kLine) std::atomic<std::size_t> read_idx_{0};
  alignas(kLine) std::size_t write_idx_cache_ = 0;
};

template <class Q>
std::unique_ptr<Q> make_queue(const Config& config) {
  if constexpr (std::is_constructible_v<Q, const Config&>) {
    return std::make_unique<Q>(config);
  } else {
    return std::make_unique<Q>();
  }
}

// Publishes what a batching queue has deferred; nothing for the others.
template <class Q>
void flush(Q& q) {
  if constexpr (requires { q.flush(); }) q.flush();
}

template <class Q>
RepOutcome run_once(const Config& config, const Placement& pl) {
  RepOutcome out;
  const int n = config.smoke ? 100000 : 10000000;
  const int rtt_n = config.smoke ? 10000 : 1000000;
  try {
    {
      auto q = make_queue<Q>(config);
      bool bad = false;
      std::thread consumer([&] {
        pin_to(pl.consumer_cpu);
        for (int i = 0; i < n; ++i) {
          if (q->pop() != i) bad = true;
        }
      });
      pin_to(pl.producer_cpu);
      const auto t0 = Clock::now();
      for (int i = 0; i < n; ++i) q->push(i);
      flush(*q);
      consumer.join();
      const auto t1 = Clock::now();
      if (bad) {
        out.error = "values out of order";
        pin_to(-1);
        return out;
      }
      out.values["ops_per_s"] =
          n / std::chrono::duration<double>(t1 - t0).count();
    }
    {
      auto q1 = make_queue<Q>(config);
      auto q2 = make_queue<Q>(config);
      std::thread ponger([&] {
        pin_to(pl.consumer_cpu);
        for (int i = 0; i < rtt_n; ++i) {
          q2->push(q1->pop());
          flush(*q2);
        }
      });
      pin_to(pl.producer_cpu);
      const auto t0 = Clock::now();
      bool bad = false;
      for (int i = 0; i < rtt_n; ++i) {
        q1->push(i);
        flush(*q1);
        if (q2->pop() != i) bad = true;
      }
      const auto t1 = Clock::now();
      ponger.join();
      if (bad) out.error = "round trip answered the wrong value";
      out.values["rtt_mean_ns"] =
          std::chrono::duration<double, std::nano>(t1 - t0).count() / rtt_n;
    }
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  pin_to(-1);
  return out;
}

}  // namespace

void run_rigtorp(const Config& config, Report& report) {
  std::vector<Cell> cells;
  auto add = [&](const char* peer, const char* label, const char* note,
                 auto once) {
    // The method pins both threads: the headline placement only.
    for (const Placement& pl : {placements(config).front()}) {
      Cell c;
      c.row.group = "rigtorp";
      c.row.peer = peer;
      c.row.label = label;
      c.row.note = note;
      c.row.size = sizeof(int);
      c.row.placement = "threads-" + pl.name;
      c.row.id = std::string("rigtorp/") + peer + "/" + c.row.placement;
      c.metric_names = {"ops_per_s", "rtt_mean_ns"};
      c.once = [&config, pl, once] { return once(config, pl); };
      cells.push_back(std::move(c));
    }
  };
  add("shmring-queue", "shmring QueueWriter/QueueReader<int>",
      "a 1 MiB private slots ring (262144 int slots), try_push / try_pop "
      "spinning",
      run_once<ShmringQueue>);
  add("shmring-batched", "shmring records, batched",
      "a 1 MiB private spsc record ring, each int an 8-byte record: "
      "try_reserve + commit_deferred, flush() every --batch records; "
      "try_peek_batch of up to --batch records, release() per batch; RTT: "
      "flush() after each message (one in flight)",
      run_once<ShmringBatched>);
  add("lockfree-spsc", "Boost.Lockfree spsc_queue<int>",
      "runtime capacity 262144 ints (1 MiB), push / pop spinning",
      run_once<LockfreeQueue>);
  add("readerwriterqueue", "moodycamel ReaderWriterQueue<int>",
      "initial capacity 262144 ints (1 MiB), try_enqueue / try_dequeue "
      "spinning (never allocates)",
      run_once<RwqQueue>);
  add("rigtorp-design-limit", "rigtorp/SPSCQueue's algorithm (limit)",
      "rigtorp::SPSCQueue's design written out in shm-bench (not its code): "
      "262145 int slots, padded indices, cached opposite index",
      run_once<RigtorpDesignQueue>);
  run_cells(config, cells, report);
}

}  // namespace bench
