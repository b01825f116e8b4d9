// Fault injection on an MPSC ring: 4 producer processes and 1 consumer
// process run flat out while the test SIGKILLs one of them per round and
// starts a replacement. Kill points:
//   - a producer at a random moment (inside reserve, commit, a wait, ...);
//   - a producer between reserve and commit, with a half-written record: the
//     child stops there, tells the parent through a pipe, and is killed;
//   - a producer at a chosen step of its lock-free claim (test hook
//     detail::claim_hook): before its intent, before its CAS on tail, after
//     the CAS with no header written, between the busy header and the
//     padding of a wrapping claim, after the headers;
//   - the consumer at a random moment;
//   - the consumer between peek and release.
// At the end every committed record must have been delivered, in order per
// producer, intact; duplicates are allowed only where the design allows them
// (records a dead consumer peeked but had not released; a record a killed
// producer committed just before it could note so, which its replacement
// sends again), and every other duplicate is an error.
//
// Rounds: SHMRING_FAULT_ROUNDS (compile time, 100 by default; the manual
// //tests:fault_long_test target uses 1000), overridden by the FAULT_ROUNDS
// environment variable; the seed by FAULT_SEED. The same again with
// semaphore waits, a quarter of the rounds.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "tests/support.h"

#ifndef SHMRING_FAULT_ROUNDS
#define SHMRING_FAULT_ROUNDS 100
#endif

namespace shmring {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::kHang;
using testing::kReclaimBound;
using testing::park_until_killed;

constexpr int kProducers = 4;
constexpr std::uint64_t kCapacity = 1 << 14;  // small: producers often wait
constexpr std::uint32_t kMaxBody = 100;
// Records the consumer must deliver after each restart before the next
// round: the ring demonstrably runs again.
constexpr std::uint64_t kProgress = 200;

// ---- Per-producer delivery cursor: (next seq, producer incarnation),
// packed so that one atomic store publishes it and integer order is the
// lexicographic order.
constexpr int kIncBits = 24;
std::uint64_t pack(std::uint64_t next, std::uint32_t inc) {
  return next << kIncBits | inc;
}
std::uint64_t next_of(std::uint64_t c) { return c >> kIncBits; }
std::uint32_t inc_of(std::uint64_t c) {
  return static_cast<std::uint32_t>(c & ((1u << kIncBits) - 1));
}

// All state shared between the test and its children: an anonymous
// MAP_SHARED mapping made before any fork. Every field is a lock-free
// atomic because a child may be killed between any two instructions.
struct ProducerState {
  // Records committed so far by this producer's incarnations: stored after
  // commit() returns, so a replacement starts at the first seq that may not
  // have been committed.
  std::atomic<std::uint64_t> committed{0};
  // Parent: 1 stop between reserve and commit; 2 stop after commit(),
  // before noting it in `committed` (the replacement re-sends that record).
  std::atomic<int> hold{0};
  std::atomic<std::uint64_t> held_offset{0};  // ring offset of that header
  std::atomic<int> hold_step{-1};  // parent: stop at this claim step
};

struct ConsumerState {
  // Written by the current consumer incarnation only.
  std::atomic<std::uint64_t> seen[kProducers];  // highest cursor delivered
  std::atomic<std::uint64_t> rel[kProducers];   // cursor at the last release
  std::atomic<int> releasing{0};                // rel[] may be mid-update
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> replayed{0};  // takeover re-deliveries
  std::atomic<std::uint64_t> resent{0};    // producer restart re-sends
  std::atomic<std::uint64_t> uncertain{0};
  std::atomic<std::uint64_t> held_records{0};
  std::atomic<int> hold{0};  // parent: stop between peek and release
};

struct Shared {
  ProducerState producers[kProducers];
  ConsumerState consumer;
  std::atomic<int> stop{0};
  // 0: no child failed; 1: one claimed `error` and is writing it; 2: the
  // message is complete.
  std::atomic<int> failed{0};
  char error[512] = {};
};

// A child records why it failed (the first one only); the parent reports it.
int child_fail(Shared& sh, int code, const char* fmt, auto... args) {
  int none = 0;
  // relaxed: the claim only picks the one writer; the store of 2 publishes.
  if (sh.failed.compare_exchange_strong(none, 1, std::memory_order_relaxed)) {
    std::snprintf(sh.error, sizeof sh.error, fmt, args...);
    // release: pairs with fail_on_child_error's acquire (the message).
    sh.failed.store(2, std::memory_order_release);
  }
  return code;
}

// ---- Records: head, then fill_payload(body, producer, seq).
struct Head {
  std::uint32_t producer;
  std::uint32_t inc;
  std::uint64_t seq;
  std::uint32_t len;
  std::uint32_t check;
};
static_assert(sizeof(Head) == 24);

std::uint32_t body_len(std::uint32_t producer, std::uint64_t seq) {
  return static_cast<std::uint32_t>(
      (seq * 2654435761u + std::uint64_t{producer} * 97u) % (kMaxBody + 1));
}

std::uint32_t head_check(const Head& h) {
  std::uint64_t x =
      h.seq * 0x9e3779b97f4a7c15ULL ^
      (std::uint64_t{h.producer} << 40 | std::uint64_t{h.inc} << 8) ^ h.len;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  return static_cast<std::uint32_t>(x >> 32);
}

// The child's claim hook: stop at the step the parent asked for, announce
// it, and wait to be killed. Globals: a hook is a plain function pointer.
ProducerState* g_hold_state = nullptr;
testing::Beacon* g_hold_beacon = nullptr;

void hold_at_claim_step(detail::ClaimStep step) {
  // relaxed: the parent sets it and waits on the beacon.
  if (g_hold_state->hold_step.load(std::memory_order_relaxed) !=
      static_cast<int>(step)) {
    return;
  }
  g_hold_state->hold_step.store(-1, std::memory_order_relaxed);
  g_hold_beacon->signal();
  ::_exit(park_until_killed());
}

int producer_main(Segment& seg, Shared& sh, testing::Beacon& beacon, int id,
                  std::uint32_t inc) {
  ProducerState& me = sh.producers[id];
  g_hold_state = &me;
  g_hold_beacon = &beacon;
  // relaxed: this child is single-threaded.
  detail::claim_hook.store(&hold_at_claim_step, std::memory_order_relaxed);
  // wait_for_consumer: the consumer dies and comes back all the time.
  auto p = Producer::attach(seg, ProducerOptions{.wait_for_consumer = true});
  if (!p) {
    return child_fail(sh, 10, "producer %d: attach: %s", id,
                      p.error().message.c_str());
  }
  // acquire: pairs with the release store of a previous incarnation (seen
  // through the parent's waitpid anyway).
  std::uint64_t seq = me.committed.load(std::memory_order_acquire);
  std::minstd_rand rng(static_cast<unsigned>(id * 7919 + inc));
  // acquire: pairs with the parent's release store of stop.
  while (sh.stop.load(std::memory_order_acquire) == 0) {
    Head h{static_cast<std::uint32_t>(id), inc, seq, body_len(id, seq), 0};
    h.check = head_check(h);
    auto r = p->reserve(sizeof h + h.len, milliseconds(100));
    if (r.status == Status::timed_out) continue;
    if (!r) {
      return child_fail(sh, 11, "producer %d: reserve: %s", id,
                        to_string(r.status));
    }
    std::memcpy(r.bytes.data(), &h, sizeof h);
    auto body = r.bytes.subspan(sizeof h);
    // relaxed: the parent sets it and waits on the beacon.
    const int hold = me.hold.load(std::memory_order_relaxed);
    if (hold == 1) {
      me.hold.store(0, std::memory_order_relaxed);
      // Half a record, as if killed while writing it: if it were ever
      // delivered its payload check would fail.
      testing::fill_payload(body.first(body.size() / 2), id, seq);
      for (auto& b : body.subspan(body.size() / 2)) b = std::byte{0xa5};
      me.held_offset.store(
          static_cast<std::uint64_t>(r.bytes.data() - shmring::detail::ring_data(seg)) -
              layout::kHeaderSize,
          std::memory_order_relaxed);
      beacon.signal();  // the pipe write publishes held_offset
      return park_until_killed();
    }
    testing::fill_payload(body, id, seq);
    if (rng() % 64 == 0) {  // aborted records are never delivered
      p->abort();
      continue;
    }
    p->commit();
    if (hold == 2) {
      // Killed after commit, before noting it: the record is in the ring
      // and `committed` says it may not be, so the next incarnation sends
      // seq again (the consumer counts it as re-sent).
      me.hold.store(0, std::memory_order_relaxed);
      beacon.signal();
      return park_until_killed();
    }
    // release: the parent's final check reads it after reaping us.
    me.committed.store(seq + 1, std::memory_order_release);
    ++seq;
  }
  p->close();
  return 0;
}

int consumer_main(Segment& seg, Shared& sh, testing::Beacon& beacon) {
  ConsumerState& cs = sh.consumer;
  auto c = Consumer::attach(seg);
  if (!c) {
    return child_fail(sh, 20, "consumer: attach: %s",
                      c.error().message.c_str());
  }
  // The ring resumes at the last released position, which rel[] recorded
  // unless the previous consumer died while updating it: then the true
  // position is somewhere between rel[] and seen[] for each producer.
  // relaxed: every field below is written by one consumer at a time and
  // read by the next after the parent reaped the previous (waitpid orders).
  const bool uncertain = cs.releasing.load(std::memory_order_relaxed) != 0;
  if (uncertain) cs.uncertain.fetch_add(1, std::memory_order_relaxed);
  std::array<std::uint64_t, kProducers> cursor{};
  std::array<bool, kProducers> first{};
  for (int i = 0; i < kProducers; ++i) {
    cursor[i] = cs.rel[i].load(std::memory_order_relaxed);
    first[i] = true;
  }
  std::array<Record, 16> batch;
  for (;;) {
    const PeekedBatch pb = c->peek_batch(batch, milliseconds(100));
    const Status s = pb.status;
    const std::size_t n = pb.records.size();
    if (s == Status::timed_out) continue;
    if (s == Status::closed) {
      // acquire: pairs with the parent's release store of stop.
      if (sh.stop.load(std::memory_order_acquire) != 0) break;
      ::usleep(1000);  // between a producer's death and its replacement
      continue;
    }
    if (s != Status::ok) {
      return child_fail(sh, 21, "consumer: peek: %s", to_string(s));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Record& rec = batch[i];
      Head h{};
      if (rec.size < sizeof h) {
        return child_fail(sh, 22, "consumer: short record (%u bytes)",
                          rec.size);
      }
      std::memcpy(&h, rec.data, sizeof h);
      if (h.producer >= kProducers || h.check != head_check(h) ||
          h.len != body_len(h.producer, h.seq) ||
          rec.size != sizeof h + h.len ||
          !testing::check_payload(rec.bytes().subspan(sizeof h), h.producer,
                                  h.seq)) {
        return child_fail(sh, 23,
                          "consumer: corrupt record (producer %u seq %llu)",
                          h.producer, static_cast<unsigned long long>(h.seq));
      }
      const int p = static_cast<int>(h.producer);
      const std::uint64_t cur = cursor[p];
      const std::uint64_t seen = cs.seen[p].load(std::memory_order_relaxed);
      // In order: the next seq, or the same seq again from a later
      // incarnation (re-sent because its predecessor died between commit
      // and noting it).
      bool ok = (h.seq == next_of(cur) && h.inc >= inc_of(cur)) ||
                (h.seq + 1 == next_of(cur) && h.inc > inc_of(cur));
      if (!ok && first[p] && uncertain) {
        const std::uint64_t rel = cs.rel[p].load(std::memory_order_relaxed);
        ok = h.seq + 1 >= next_of(rel) && h.seq <= next_of(seen);
      }
      if (!ok) {
        return child_fail(
            sh, 24,
            "consumer: producer %d: got seq %llu (incarnation %u), expected "
            "seq %llu (incarnation >= %u); highest delivered %llu",
            p, static_cast<unsigned long long>(h.seq), h.inc,
            static_cast<unsigned long long>(next_of(cur)), inc_of(cur),
            static_cast<unsigned long long>(next_of(seen)));
      }
      first[p] = false;
      cursor[p] = pack(h.seq + 1, h.inc);
      if (cursor[p] > seen) {
        if (h.seq + 1 == next_of(seen)) {
          cs.resent.fetch_add(1, std::memory_order_relaxed);
        }
        cs.seen[p].store(cursor[p], std::memory_order_relaxed);
      } else {
        cs.replayed.fetch_add(1, std::memory_order_relaxed);
      }
    }
    cs.delivered.fetch_add(n, std::memory_order_relaxed);
    if (cs.hold.exchange(0, std::memory_order_relaxed) != 0) {
      cs.held_records.fetch_add(n, std::memory_order_relaxed);
      beacon.signal();  // die holding n peeked, unreleased records
      return park_until_killed();
    }
    cs.releasing.store(1, std::memory_order_relaxed);
    c->release();
    for (int i = 0; i < kProducers; ++i) {
      cs.rel[i].store(cursor[i], std::memory_order_relaxed);
    }
    cs.releasing.store(0, std::memory_order_relaxed);
  }
  // End of stream: every record delivered to a dead consumer came again.
  for (int i = 0; i < kProducers; ++i) {
    if (cursor[i] != cs.seen[i].load(std::memory_order_relaxed)) {
      return child_fail(sh, 25,
                        "consumer: producer %d: stream ended at seq %llu but "
                        "seq %llu was delivered before a takeover",
                        i, static_cast<unsigned long long>(next_of(cursor[i])),
                        static_cast<unsigned long long>(next_of(
                            cs.seen[i].load(std::memory_order_relaxed))));
    }
  }
  return 0;
}

// getenv: read before any child or thread exists.
// FAULT_ROUNDS must be a whole number >= 0: "abc" or "10x" is an error,
// not zero rounds and a pass.
int rounds_from_env() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* s = std::getenv("FAULT_ROUNDS")) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 1000000) {
      FAIL("FAULT_ROUNDS='" << s << "' is not a number of rounds (0..1000000)");
    }
    return static_cast<int>(v);
  }
  return SHMRING_FAULT_ROUNDS;
}

unsigned seed_from_env() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* s = std::getenv("FAULT_SEED")) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno != 0 || v > 0xffffffffUL) {
      FAIL("FAULT_SEED='" << s << "' is not a 32-bit number");
    }
    return static_cast<unsigned>(v);
  }
  return 20261126;
}

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class FaultRun {
 public:
  FaultRun(Segment& seg, Shared& sh) : seg_(seg), sh_(sh) {}

  void start() {
    for (int i = 0; i < kProducers; ++i) start_producer(i);
    start_consumer();
  }

  void start_producer(int id) {
    const std::uint32_t inc = ++incarnation_[id];
    producer_pid_[id] = children_.spawn(
        [this, id, inc] { return producer_main(seg_, sh_, beacon_, id, inc); });
  }

  void start_consumer() {
    consumer_pid_ =
        children_.spawn([this] { return consumer_main(seg_, sh_, beacon_); });
  }

  void kill_and_reap(pid_t pid) {
    REQUIRE(::kill(pid, SIGKILL) == 0);
    const auto st = children_.wait(pid, kHang);
    INFO("child " << pid << " " << st.describe() << "; " << sh_.error);
    // A child that exited by itself before the kill landed failed.
    REQUIRE(st.signal == SIGKILL);
  }

  void fail_on_child_error() {
    // acquire: pairs with child_fail's release store of 2 (the message).
    int failed = sh_.failed.load(std::memory_order_acquire);
    // A message being written takes microseconds; a writer killed meanwhile
    // leaves 1 for good.
    for (int i = 0; failed == 1 && i < 1000; ++i) {
      ::usleep(1000);
      failed = sh_.failed.load(std::memory_order_acquire);
    }
    if (failed == 2) FAIL(sh_.error);
    if (failed != 0) FAIL("a child failed; its message was never completed");
  }

  // Waits until the consumer delivered kProgress more records and, after a
  // producer restart, that producer committed again.
  void await_progress(int restarted_producer) {
    const auto start = Clock::now();
    // relaxed: progress counters, polled; no data is read through them.
    const std::uint64_t d0 =
        sh_.consumer.delivered.load(std::memory_order_relaxed);
    const std::uint64_t c0 =
        restarted_producer >= 0
            ? sh_.producers[restarted_producer].committed.load(
                  std::memory_order_relaxed)
            : 0;
    for (;;) {
      fail_on_child_error();
      const bool delivered = sh_.consumer.delivered.load(
                                 std::memory_order_relaxed) >= d0 + kProgress;
      const bool committed = restarted_producer < 0 ||
                             sh_.producers[restarted_producer].committed.load(
                                 std::memory_order_relaxed) > c0;
      if (delivered && committed) break;
      if (Clock::now() - start > kHang) {
        FAIL("no progress for "
             << ms(Clock::now() - start) << " ms after a restart (delivered "
             << sh_.consumer.delivered.load(std::memory_order_relaxed) - d0
             << ")");
      }
      ::usleep(200);
    }
    max_progress_ = std::max(max_progress_, Clock::now() - start);
  }

  void kill_producer_at_random(int id) {
    kill_and_reap(producer_pid_[id]);
    start_producer(id);
    ++producer_random_;
    await_progress(id);
  }

  void kill_producer_between_reserve_and_commit(int id,
                                                Clock::duration linger) {
    ProducerState& ps = sh_.producers[id];
    ps.hold.store(1, std::memory_order_relaxed);
    INFO("producer " << id << " never reached its hold point");
    REQUIRE(beacon_.wait(kHang));
    // relaxed: the beacon's pipe ordered the child's stores before this.
    const std::uint64_t off = ps.held_offset.load(std::memory_order_relaxed);
    REQUIRE(off + layout::kHeaderSize <= kCapacity);
    std::atomic_ref<std::uint64_t> header(
        *reinterpret_cast<std::uint64_t*>(shmring::detail::ring_data(seg_) + off));
    // acquire: pairs with the consumer's reclaim CAS.
    const std::uint64_t busy = header.load(std::memory_order_acquire);
    REQUIRE(layout::decode(busy).busy);
    // While its owner lives the record stays busy, however long it takes
    // (the consumer looks at a stalled record's owner every 10 ms, or
    // after each sleep slice when nothing else wakes it).
    std::this_thread::sleep_for(linger);
    INFO("a live producer's record was reclaimed");
    REQUIRE(header.load(std::memory_order_acquire) == busy);
    kill_and_reap(producer_pid_[id]);
    const auto dead_at = Clock::now();
    // The dead producer cannot change its header; only the consumer's
    // reclaim can (after which the space may be reused).
    while (header.load(std::memory_order_acquire) == busy) {
      fail_on_child_error();
      if (Clock::now() - dead_at > kHang) {
        FAIL("the dead producer's busy record was never reclaimed");
      }
      ::usleep(200);
    }
    max_reclaim_ = std::max(max_reclaim_, Clock::now() - dead_at);
    start_producer(id);
    ++producer_held_;
    await_progress(id);
  }

  void kill_producer_after_commit(int id) {
    sh_.producers[id].hold.store(2, std::memory_order_relaxed);
    INFO("producer " << id << " never reached its after-commit hold point");
    REQUIRE(beacon_.wait(kHang));
    kill_and_reap(producer_pid_[id]);
    start_producer(id);
    ++producer_resend_;
    await_progress(id);
  }

  // Stops a producer at `step` of a claim, lets the others run for
  // `linger`, kills it: whatever the step, the ring recovers by itself.
  void kill_producer_at_claim_step(int id, int step, Clock::duration linger) {
    ProducerState& ps = sh_.producers[id];
    ps.hold_step.store(step, std::memory_order_relaxed);
    INFO("producer " << id << " never reached claim step " << step);
    REQUIRE(beacon_.wait(kHang));
    std::this_thread::sleep_for(linger);
    kill_and_reap(producer_pid_[id]);
    start_producer(id);
    ++claim_kills_[step];
    await_progress(id);
  }

  void kill_consumer_at_random() {
    kill_and_reap(consumer_pid_);
    start_consumer();
    ++consumer_random_;
    await_progress(-1);
  }

  void kill_consumer_between_peek_and_release() {
    sh_.consumer.hold.store(1, std::memory_order_relaxed);
    INFO("the consumer never reached its hold point");
    REQUIRE(beacon_.wait(kHang));
    kill_and_reap(consumer_pid_);
    start_consumer();
    ++consumer_held_;
    await_progress(-1);
  }

  void finish() {
    // release: pairs with the children's acquire loads of stop.
    sh_.stop.store(1, std::memory_order_release);
    for (int i = 0; i < kProducers; ++i) expect_exit(producer_pid_[i]);
    expect_exit(consumer_pid_);
  }

  void expect_exit(pid_t pid) {
    const auto st = children_.wait(pid, kHang);
    INFO("child " << pid << " " << st.describe() << "; " << sh_.error);
    REQUIRE(st.exited);
    REQUIRE(st.code == 0);
  }

  // After finish(): every child is reaped, so relaxed reads see it all.
  void report(int rounds, Clock::duration elapsed) const {
    const ConsumerState& cs = sh_.consumer;
    std::printf(
        "%d rounds in %.1f s: producers killed %d at random + %d between "
        "reserve and commit + %d after a commit, before noting it + "
        "%d/%d/%d/%d/%d at claim steps 0-4; consumer killed %d at random + "
        "%d between peek and release\n"
        "delivered %llu records: %llu re-delivered after a takeover "
        "(%llu held by killed consumers), %llu re-sent by a restarted "
        "producer; %u busy records reclaimed; %llu restarts during a "
        "release\n"
        "max reclaim after a kill %.1f ms; max time to progress after a "
        "restart %.1f ms\n",
        rounds, std::chrono::duration<double>(elapsed).count(),
        producer_random_, producer_held_, producer_resend_, claim_kills_[0],
        claim_kills_[1], claim_kills_[2], claim_kills_[3], claim_kills_[4],
        consumer_random_, consumer_held_,
        static_cast<unsigned long long>(
            cs.delivered.load(std::memory_order_relaxed)),
        static_cast<unsigned long long>(
            cs.replayed.load(std::memory_order_relaxed)),
        static_cast<unsigned long long>(
            cs.held_records.load(std::memory_order_relaxed)),
        static_cast<unsigned long long>(
            cs.resent.load(std::memory_order_relaxed)),
        shmring::detail::control(seg_)->records_reclaimed.load(std::memory_order_relaxed),
        static_cast<unsigned long long>(
            cs.uncertain.load(std::memory_order_relaxed)),
        ms(max_reclaim_), ms(max_progress_));
  }

  Segment& seg_;
  Shared& sh_;
  testing::ChildGuard children_;
  testing::Beacon beacon_;
  pid_t producer_pid_[kProducers] = {};
  std::uint32_t incarnation_[kProducers] = {};
  pid_t consumer_pid_ = 0;
  int producer_random_ = 0, producer_held_ = 0, producer_resend_ = 0;
  int claim_kills_[detail::kClaimSteps] = {};
  int consumer_random_ = 0, consumer_held_ = 0;
  Clock::duration max_reclaim_{0}, max_progress_{0};
};

void run_faults(WaitStrategy wait, int rounds, unsigned seed) {
  INFO("FAULT_SEED=" << seed << " FAULT_ROUNDS=" << rounds);
  REQUIRE(rounds >= 0);
  const int segments_before = testing::own_segment_count();
  const auto started = Clock::now();
  {
    testing::ScopedRing ring(
        {.kind = Kind::mpsc, .capacity = kCapacity, .wait = wait});
    Segment& seg = ring.segment();
    testing::SharedBlock<Shared> shared;
    Shared& sh = *shared;
    FaultRun run(seg, sh);
    run.start();
    run.await_progress(-1);

    std::mt19937 rng(seed);
    for (int round = 0; round < rounds; ++round) {
      CAPTURE(round);
      // Let everyone run a little: the kill lands wherever they are.
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 10000));
      const int victim = static_cast<int>(rng() % kProducers);
      const unsigned mode = rng() % 100;
      if (round == 0 || mode < 10) {
        // Round 0 always: the re-send path runs in every run.
        run.kill_producer_after_commit(victim);
      } else if (mode < 35) {
        run.kill_producer_at_random(victim);
      } else if (mode < 48) {
        run.kill_producer_between_reserve_and_commit(
            victim, std::chrono::milliseconds(rng() % 150));
      } else if (mode < 60) {
        // Step 3 exists only in wrapping claims: rarer, and always hit.
        const int step = static_cast<int>(rng() % detail::kClaimSteps);
        run.kill_producer_at_claim_step(victim, step,
                                        std::chrono::milliseconds(rng() % 50));
      } else if (mode < 80) {
        run.kill_consumer_at_random();
      } else {
        run.kill_consumer_between_peek_and_release();
      }
    }
    run.finish();
    run.fail_on_child_error();
    // The children are reaped: relaxed reads see everything they wrote.

    // Every record any incarnation committed was delivered: the consumer
    // checked there was no gap, and the highest one matches.
    for (int i = 0; i < kProducers; ++i) {
      INFO("producer " << i);
      CHECK(next_of(sh.consumer.seen[i].load(std::memory_order_relaxed)) ==
            sh.producers[i].committed.load(std::memory_order_relaxed));
      CHECK(sh.producers[i].committed.load(std::memory_order_relaxed) > 0);
    }
    // A consumer killed holding n peeked records makes n come again.
    CHECK(sh.consumer.replayed.load(std::memory_order_relaxed) >=
          sh.consumer.held_records.load(std::memory_order_relaxed));
    // Each producer killed between reserve and commit left one busy record.
    CHECK(shmring::detail::control(seg)->records_reclaimed.load(std::memory_order_relaxed) >=
          static_cast<std::uint32_t>(run.producer_held_));
    // Each producer killed after a commit, before noting it, makes its
    // replacement send that record again, and the consumer sees it as a
    // re-send; beyond those only a random kill can land in that window.
    CHECK(sh.consumer.resent.load(std::memory_order_relaxed) >=
          static_cast<std::uint64_t>(run.producer_resend_));
    CHECK(sh.consumer.resent.load(std::memory_order_relaxed) <=
          static_cast<std::uint64_t>(run.producer_random_ +
                                     run.producer_resend_));
    if (rounds > 0) CHECK(run.producer_resend_ > 0);
    INFO("max reclaim " << ms(run.max_reclaim_) << " ms");
    CHECK(run.max_reclaim_ < kReclaimBound);
    std::printf("%s waits: ",
                wait == WaitStrategy::futex ? "futex" : "semaphore");
    run.report(rounds, Clock::now() - started);
  }
  CHECK(testing::own_segment_count() == segments_before);
}

TEST_CASE("fault injection: kill -9 producers and the consumer, restart") {
  run_faults(WaitStrategy::futex, rounds_from_env(), seed_from_env());
}

// A killed waker may have taken the sleepers' registration without posting
// the semaphore; the sleeper must still notice within its slice.
TEST_CASE("fault injection with semaphore waits") {
  const int rounds = rounds_from_env();
  run_faults(WaitStrategy::semaphore, rounds == 0 ? 0 : std::max(1, rounds / 4),
             seed_from_env() + 1);
}

}  // namespace
}  // namespace shmring
