// Scenario 5: 1, 2 and 4 producer processes into one consumer on an MPSC
// ring, 8-byte records. Pinned: every producer on the producer CPU, the
// consumer on the consumer CPU (so 2 and 4 producers time-share one CPU,
// as they would on this 2-core machine anyway); unpinned: the kernel
// places them.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/peer_common.h"
#include "bench/private_ring.h"
#include "bench/scenarios.h"

namespace bench {
namespace {

constexpr std::size_t kRecord = 8;
constexpr int kProducerShift = 56;  // producer index in the top byte

// Stops the calling process with SIGSTOP for 20 ms of every 40 ms, at
// whatever it is doing (inside a claim too), from a forked helper, until
// stop() (after which it is never left stopped: every SIGSTOP is followed
// by a SIGCONT before the helper checks the flag again).
class Stopper {
 public:
  Stopper() {
    void* m = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::runtime_error("mmap");
    done_ = new (m) std::atomic<int>(0);
    const pid_t target = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      // acquire: pairs with stop()'s release store.
      while (done_->load(std::memory_order_acquire) == 0) {
        ::kill(target, SIGSTOP);
        ::usleep(20000);
        ::kill(target, SIGCONT);
        ::usleep(20000);
      }
      ::_exit(0);
    }
  }
  void stop() {
    // release: the helper exits at its next check.
    done_->store(1, std::memory_order_release);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }

 private:
  std::atomic<int>* done_ = nullptr;
  pid_t pid_ = -1;
};

RepOutcome mpsc_once(const Config& config, const Placement& pl, int producers,
                     bool one_stopped = false) {
  RepOutcome out;
  try {
    shmring::RingOptions o;
    o.kind = shmring::Kind::mpsc;
    o.capacity = config.ring_bytes;
    PrivateRing ring(o);
    std::vector<ChildSpec> specs;
    specs.reserve(static_cast<std::size_t>(producers) + 1);
    for (int i = 0; i < producers; ++i) {
      specs.push_back({pl.producer_cpu, [&, i](Child& child) {
                         shmring::Producer p = attach_producer(ring.segment());
                         std::optional<Stopper> stopper;
                         if (one_stopped && i == producers - 1)
                           stopper.emplace();
                         const std::uint64_t tag = std::uint64_t(i)
                                                   << kProducerShift;
                         produce_loop<kRecord>(child, [&](std::uint64_t seq) {
                           auto r = p.try_reserve(kRecord);
                           if (!r) {
                             r = p.reserve(kRecord);
                             check_status(r.status, "reserve");
                           }
                           const std::uint64_t v = tag | seq;
                           std::memcpy(r.bytes.data(), &v, kRecord);
                           p.commit();
                         });
                         if (stopper) stopper->stop();
                         p.close();
                       }});
    }
    specs.push_back(
        {pl.consumer_cpu, [&](Child& child) {
           shmring::Consumer c = attach_consumer(ring.segment());
           std::vector<shmring::Record> recs(config.batch);
           std::vector<SeqCheck> checks(static_cast<std::size_t>(producers));
           std::uint64_t total = 0, bad = 0;
           const auto t0 = child.ready_and_wait();
           for (;;) {
             std::size_t n = 0;
             if (!next_batch(c, recs, &n)) break;
             for (std::size_t k = 0; k < n; ++k) {
               std::uint64_t v;
               std::memcpy(&v, recs[k].data, kRecord);
               const auto who = static_cast<std::size_t>(v >> kProducerShift);
               if (recs[k].size != kRecord || who >= checks.size()) {
                 ++bad;
                 continue;
               }
               checks[who](v & ((std::uint64_t{1} << kProducerShift) - 1));
             }
             total += n;
             c.release();
           }
           auto& r = child.result();
           r.ns = (Clock::now() - t0).count();
           r.count = total;
           r.errors = bad;
           for (const auto& ch : checks) r.errors += ch.errors;
           c.close();
         }});
    const RunResult r =
        run_children(specs, Mode::processes, seconds(config.duration));
    out = stream_rates(r, kRecord);
    if (out.error.empty() && one_stopped) {
      // What the producers that are never stopped got through.
      const double secs = static_cast<double>(r.children.back().ns) / 1e9;
      std::uint64_t others = 0;
      for (int i = 0; i + 1 < producers; ++i) others += r.children[i].count;
      out.values["others_records_per_s"] = static_cast<double>(others) / secs;
    }
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

}  // namespace

void run_mpsc(const Config& config, Report& report) {
  std::vector<Cell> cells;
  for (int producers : {1, 2, 4}) {
    for (const Placement& pl : placements(config)) {
      Cell c;
      c.row.group = "mpsc";
      c.row.peer = "shmring-mpsc";
      c.row.label = "shmring MPSC, " + std::to_string(producers) + " producer" +
                    (producers > 1 ? "s" : "");
      c.row.note =
          "try_reserve + memcpy + commit per record (CAS claim); consumer "
          "try_peek_batch + one release per batch";
      c.row.size = kRecord;
      c.row.producers = producers;
      c.row.placement = pl.name;
      c.row.id =
          "mpsc/shmring-mpsc/" + std::to_string(producers) + "p/" + pl.name;
      c.metric_names = {"records_per_s"};
      c.once = [&config, pl, producers] {
        return mpsc_once(config, pl, producers);
      };
      cells.push_back(std::move(c));
    }
  }
  // Lock-freedom, measured: one of two producers is stopped (SIGSTOP) for
  // 20 ms of every 40 ms wherever it is, inside claims too; the other's
  // rate is what a claim lock would take away.
  for (const Placement& pl : placements(config)) {
    Cell c;
    c.row.group = "mpsc";
    c.row.peer = "shmring-mpsc";
    c.row.label = "shmring MPSC with one producer stopped";
    c.row.note =
        "2 producers, one SIGSTOPped 20 ms of every 40 ms (also inside "
        "claims; the consumer then waits for it in order); "
        "others_records_per_s: the running producer's records";
    c.row.size = kRecord;
    c.row.producers = 2;
    c.row.placement = pl.name;
    c.row.id = "mpsc/shmring-mpsc/2p-one-stopped/" + pl.name;
    c.metric_names = {"records_per_s", "others_records_per_s"};
    c.once = [&config, pl] { return mpsc_once(config, pl, 2, true); };
    cells.push_back(std::move(c));
  }
  run_cells(config, cells, report);
}

}  // namespace bench
