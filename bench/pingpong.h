// Round-trip latency between two processes: child 0 (the pinger) sends,
// child 1 (the ponger) answers, the pinger times every round trip. Each
// mechanism is a class with the same shape as the peers in peers.h:
//
//   Mechanism(config)      parent, before fork
//   void ping_setup()      pinger, after fork (attach)
//   void round_trip()      pinger: one request and its answer
//   void ping_finish()     pinger: tell the ponger to stop
//   void pong(Child&)      ponger: answer until told to stop
//   void after_fork()      parent
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "bench/peer_common.h"
#include "bench/private_ring.h"
#include "ring/shmring.h"

namespace bench {

inline constexpr std::size_t kPingBytes = 64;  // as in iceoryx2's 64 B figure
inline constexpr std::size_t kMaxSamples = 4 << 20;

// A cheap timestamp for per-round-trip samples. Reading the clock costs
// tens of nanoseconds on a VM (clock_gettime ~40-50 ns here, rdtsc ~25 ns)
// and every sample pays it once; the raw limits pay it too, so ratios stay
// fair. Ticks are converted to ns by calibrating against steady_clock over
// the whole repetition (the TSC is constant-rate on x86-64 Linux hosts
// that report constant_tsc; elsewhere steady_clock is used directly).
inline std::uint64_t ticks() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
#endif
}

// Times round trips until stop; stores p50, p99, p99.9 and mean (ns) in
// result().values[0..3]. The first 5% (at most 1000) are warm-up.
template <class M>
void ping_loop(M& m, Child& child) {
  m.ping_setup();
  std::vector<std::uint32_t> samples;
  samples.reserve(kMaxSamples);
  child.ready_and_wait();
  const auto wall0 = Clock::now();
  const std::uint64_t tick0 = ticks();
  std::uint64_t prev = tick0;
  // At least a few round trips even if stop came first.
  while ((samples.size() < 16 || !child.stop_requested()) &&
         samples.size() < kMaxSamples) {
    m.round_trip();
    const std::uint64_t now = ticks();
    samples.push_back(static_cast<std::uint32_t>(
        std::min<std::uint64_t>(now - prev, UINT32_MAX)));
    prev = now;
  }
  const double ns_per_tick =
      static_cast<double>((Clock::now() - wall0).count()) /
      static_cast<double>(std::max<std::uint64_t>(1, ticks() - tick0));
  m.ping_finish();
  const std::size_t warm = std::min<std::size_t>(1000, samples.size() / 20);
  samples.erase(samples.begin(), samples.begin() + static_cast<long>(warm));
  auto& r = child.result();
  r.count = samples.size();
  if (samples.empty()) {
    r.fail("no round trips completed");
    return;
  }
  double sum = 0;
  for (auto s : samples) sum += s;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    const auto i = std::min(
        samples.size() - 1,
        static_cast<std::size_t>(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[i]) * ns_per_tick;
  };
  r.values[0] = at(0.50);
  r.values[1] = at(0.99);
  r.values[2] = at(0.999);
  r.values[3] = sum / static_cast<double>(samples.size()) * ns_per_tick;
  r.values[4] = ns_per_tick;
}

inline const std::vector<std::string>& latency_metrics() {
  static const std::vector<std::string> names = {"rtt_p50_ns", "rtt_p99_ns",
                                                 "rtt_p999_ns", "rtt_mean_ns"};
  return names;
}

template <class M>
RepOutcome run_pingpong(const Config& config, const Placement& pl) {
  RepOutcome out;
  try {
    M m(config);
    std::vector<ChildSpec> specs = {
        {pl.producer_cpu, [&](Child& c) { ping_loop(m, c); }},
        {pl.consumer_cpu, [&](Child& c) { m.pong(c); }},
    };
    RunResult r =
        run_children(specs, Mode::processes, seconds(config.latency_duration),
                     [&] { m.after_fork(); });
    if (!r.error.empty()) {
      out.error = r.error;
      return out;
    }
    const ChildResult& p = r.children[0];
    const auto& names = latency_metrics();
    for (std::size_t i = 0; i < names.size(); ++i)
      out.values[names[i]] = p.values[i];
    out.values["round_trips"] = static_cast<double>(p.count);
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

// Adds one cell per placement of a ping-pong row: id
// "<group>/<peer>/<placement>", the latency metrics and round_trips.
// `once(config, placement)` runs one repetition.
template <class Once>
void add_pingpong_cells(std::vector<Cell>& cells, const Config& config,
                        const char* group, const char* peer, const char* label,
                        const char* note, std::size_t size, Once once,
                        const std::vector<Placement>& pls) {
  for (const Placement& pl : pls) {
    Cell c;
    c.row.group = group;
    c.row.peer = peer;
    c.row.label = label;
    c.row.note = note;
    c.row.size = size;
    c.row.placement = pl.name;
    c.row.id = std::string(group) + "/" + peer + "/" + pl.name;
    c.metric_names = latency_metrics();
    c.metric_names.push_back("round_trips");
    c.once = [&config, pl, once] { return once(config, pl); };
    cells.push_back(std::move(c));
  }
}

// ------------------------------------------------------------ raw limits

// One shared cache line, both sides spinning: the pinger writes odd
// values, the ponger answers with the next even one.
class CachelinePingPong {
 public:
  struct Shared {
    alignas(128) std::atomic<std::uint64_t> line{0};
  };
  static constexpr std::uint64_t kQuit = ~0ULL;

  explicit CachelinePingPong(const Config&) {}
  void ping_setup() {}
  void round_trip() {
    // release / acquire: each store pairs with the other side's load.
    shared_->line.store(next_ + 1, std::memory_order_release);
    Backoff b;
    while (shared_->line.load(std::memory_order_acquire) != next_ + 2)
      b.pause();
    next_ += 2;
  }
  void ping_finish() { shared_->line.store(kQuit, std::memory_order_release); }
  void pong(Child& child) {
    child.ready_and_wait();
    std::uint64_t expect = 1;
    Backoff b;
    for (;;) {
      const std::uint64_t v = shared_->line.load(std::memory_order_acquire);
      if (v == kQuit) return;
      if (v != expect) {
        b.pause();
        continue;
      }
      b.reset();
      shared_->line.store(expect + 1, std::memory_order_release);
      expect += 2;
    }
  }
  void after_fork() {}

 private:
  SharedObject<Shared> shared_;
  std::uint64_t next_ = 0;
};

// A bare futex hand-off: every message is a store plus FUTEX_WAKE, every
// wait a FUTEX_WAIT at once (no spinning). Two words, one per direction.
class FutexPingPong {
 public:
  struct Shared {
    alignas(128) std::atomic<std::uint32_t> ping{0};
    alignas(128) std::atomic<std::uint32_t> pong{0};
  };
  static constexpr std::uint32_t kQuit = ~0u;

  explicit FutexPingPong(const Config&) {}
  void ping_setup() {}
  void round_trip() {
    ++seq_;
    if (seq_ == kQuit) seq_ = 1;
    // release: pairs with the ponger's acquire load of ping.
    shared_->ping.store(seq_, std::memory_order_release);
    futex_wake(&shared_->ping);
    for (;;) {
      // acquire: pairs with the ponger's release store of pong.
      const std::uint32_t v = shared_->pong.load(std::memory_order_acquire);
      if (v == seq_) return;
      futex_wait(&shared_->pong, v, std::chrono::milliseconds(100));
    }
  }
  void ping_finish() {
    shared_->ping.store(kQuit, std::memory_order_release);
    futex_wake(&shared_->ping);
  }
  void pong(Child& child) {
    child.ready_and_wait();
    std::uint32_t last = 0;
    for (;;) {
      const std::uint32_t v = shared_->ping.load(std::memory_order_acquire);
      if (v == kQuit) return;
      if (v == last) {
        futex_wait(&shared_->ping, v, std::chrono::milliseconds(100));
        continue;
      }
      last = v;
      shared_->pong.store(v, std::memory_order_release);
      futex_wake(&shared_->pong);
    }
  }
  void after_fork() {}

 private:
  SharedObject<Shared> shared_;
  std::uint32_t seq_ = 0;
};

// --------------------------------------------------------------- shmring

// Two SPSC rings, one per direction, 64-byte records; blocking reserve /
// peek with the ring's wait strategy (spin, futex = spin then sleep,
// semaphore).
template <shmring::WaitStrategy W>
class RingPingPong {
 public:
  explicit RingPingPong(const Config&) : there_(options()), back_(options()) {}
  static shmring::RingOptions options() {
    shmring::RingOptions o;
    o.capacity = 64 << 10;
    o.wait = W;
    return o;
  }
  void ping_setup() {
    prod_.emplace(attach_producer(there_.segment()));
    cons_.emplace(attach_consumer(back_.segment()));
  }
  void round_trip() {
    ++seq_;
    auto r = prod_->reserve(kPingBytes);
    check_status(r.status, "reserve");
    std::memcpy(r.bytes.data(), &seq_, 8);
    prod_->commit();
    shmring::Peeked p = cons_->peek();
    check_status(p.status, "peek");
    if (seq_of(p.record.data) != seq_) throw std::runtime_error("wrong answer");
    cons_->release();
  }
  void ping_finish() {
    prod_->close();
    cons_->close();
  }
  void pong(Child& child) {
    shmring::Consumer cons = attach_consumer(there_.segment());
    shmring::Producer prod = attach_producer(back_.segment());
    child.ready_and_wait();
    std::byte buf[kPingBytes];
    for (;;) {
      shmring::Peeked p = cons.peek();
      if (p.status == shmring::Status::closed) break;
      check_status(p.status, "peek");
      std::memcpy(buf, p.record.data, kPingBytes);
      cons.release();
      auto r = prod.reserve(kPingBytes);
      check_status(r.status, "reserve");
      std::memcpy(r.bytes.data(), buf, kPingBytes);
      prod.commit();
    }
    prod.close();
    cons.close();
  }
  void after_fork() {}

 private:
  PrivateRing there_;
  PrivateRing back_;
  std::optional<shmring::Producer> prod_;
  std::optional<shmring::Consumer> cons_;
  std::uint64_t seq_ = 0;
};

// ------------------------------------------------------- pipe and AF_UNIX

inline void read_exact(int fd, void* p, std::size_t n, bool* eof) {
  auto* c = static_cast<char*>(p);
  *eof = false;
  while (n > 0) {
    const ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error(errno_text("read"));
    if (r == 0) {
      *eof = true;
      return;
    }
    c += r;
    n -= static_cast<std::size_t>(r);
  }
}

// Two pipes (there and back) or one AF_UNIX SOCK_SEQPACKET socketpair.
template <bool kSocket>
class FdPingPong {
 public:
  explicit FdPingPong(const Config&) {
    if constexpr (kSocket) {
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, there_.fd) != 0) {
        throw std::runtime_error(errno_text("socketpair"));
      }
    } else {
      if (::pipe(there_.fd) != 0 || ::pipe(back_.fd) != 0) {
        throw std::runtime_error(errno_text("pipe"));
      }
    }
  }
  // Pinger writes to w_ and reads r_; the ponger the other way round.
  void ping_setup() {
    if constexpr (kSocket) {
      ::close(there_.fd[1]);
      there_.fd[1] = -1;
      w_ = r_ = there_.fd[0];
    } else {
      ::close(there_.fd[0]);
      ::close(back_.fd[1]);
      there_.fd[0] = back_.fd[1] = -1;
      w_ = there_.fd[1];
      r_ = back_.fd[0];
    }
  }
  void round_trip() {
    std::byte buf[kPingBytes] = {};
    write_all(w_, buf, kPingBytes);
    bool eof = false;
    read_exact(r_, buf, kPingBytes, &eof);
    if (eof) throw std::runtime_error("ponger hung up");
  }
  void ping_finish() {
    if constexpr (kSocket) ::shutdown(w_, SHUT_WR);
    ::close(w_);
  }
  void pong(Child& child) {
    int r, w;
    if constexpr (kSocket) {
      ::close(there_.fd[0]);
      r = w = there_.fd[1];
    } else {
      ::close(there_.fd[1]);
      ::close(back_.fd[0]);
      r = there_.fd[0];
      w = back_.fd[1];
    }
    child.ready_and_wait();
    std::byte buf[kPingBytes];
    for (;;) {
      bool eof = false;
      read_exact(r, buf, kPingBytes, &eof);
      if (eof) break;
      write_all(w, buf, kPingBytes);
    }
  }
  void after_fork() {
    there_.close_all();
    back_.close_all();
  }

 private:
  FdPair there_;
  FdPair back_;
  int w_ = -1, r_ = -1;
};

}  // namespace bench
