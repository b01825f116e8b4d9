// Scenario 1: what the machine allows. memcpy bandwidth of one thread, and
// the round trip of a cache line / a futex hand-off between two processes.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/pingpong.h"
#include "bench/scenarios.h"

namespace bench {
namespace {

// Copies a `block`-byte buffer into another for `duration`, in a child
// pinned to the producer CPU. Buffers are touched first (no page faults in
// the measurement); a 64 MiB block streams through DRAM, 4 KiB / 64 KiB
// blocks stay in cache.
RepOutcome memcpy_once(const Config& config, std::size_t block) {
  RepOutcome out;
  const int cpu = cpu_usable(config.producer_cpu) ? config.producer_cpu : -1;
  std::vector<ChildSpec> specs = {
      {cpu, [&](Child& child) {
         std::unique_ptr<std::byte[]> src(new std::byte[block]);
         std::unique_ptr<std::byte[]> dst(new std::byte[block]);
         std::memset(src.get(), 1, block);
         std::memset(dst.get(), 2, block);
         const auto t0 = child.ready_and_wait();
         std::uint64_t copies = 0;
         do {
           std::memcpy(dst.get(), src.get(), block);
           clobber();
           ++copies;
         } while (!child.stop_requested());
         child.result().bytes = copies * block;
         child.result().ns = (Clock::now() - t0).count();
       }}};
  RunResult r = run_children(specs, Mode::processes, seconds(config.duration));
  if (!r.error.empty()) {
    out.error = r.error;
    return out;
  }
  const auto& c = r.children[0];
  out.values["bytes_per_s"] =
      static_cast<double>(c.bytes) / (static_cast<double>(c.ns) / 1e9);
  return out;
}

// What one timestamp costs (every latency sample pays one).
RepOutcome timer_once() {
  RepOutcome out;
  constexpr int kReads = 1 << 20;
  std::uint64_t sink = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < kReads; ++i) sink += ticks();
  auto t1 = Clock::now();
  for (int i = 0; i < kReads; ++i) {
    sink += static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  }
  auto t2 = Clock::now();
  keep(sink);
  out.values["tick_read_ns"] = static_cast<double>((t1 - t0).count()) / kReads;
  out.values["clock_read_ns"] = static_cast<double>((t2 - t1).count()) / kReads;
  return out;
}

}  // namespace

void run_limits(const Config& config, Report& report) {
  std::vector<Cell> cells;
  {
    Cell c;
    c.row.group = "limits";
    c.row.peer = "timer";
    c.row.label = "cost of one timestamp";
    c.row.note =
        "tick_read: rdtsc (what each latency sample pays); "
        "clock_read: steady_clock::now()";
    c.row.placement = "unpinned";
    c.row.id = "limits/timer";
    c.metric_names = {"tick_read_ns", "clock_read_ns"};
    c.once = [] { return timer_once(); };
    cells.push_back(std::move(c));
  }
  for (std::size_t block :
       {std::size_t{4096}, std::size_t{65536}, std::size_t{64} << 20}) {
    Cell c;
    c.row.group = "limits";
    c.row.peer = "memcpy";
    c.row.label = "memcpy, one thread";
    c.row.size = block;
    c.row.placement = cpu_usable(config.producer_cpu) ? "pinned" : "unpinned";
    c.row.note = block >= (1u << 20) ? "64 MiB buffers: DRAM bandwidth"
                                     : "cache-resident block";
    c.row.id = "limits/memcpy/" + std::to_string(block) + "/" + c.row.placement;
    c.metric_names = {"bytes_per_s"};
    c.once = [&config, block] { return memcpy_once(config, block); };
    cells.push_back(std::move(c));
  }

  auto add_pingpong = [&](const char* peer, const char* label, const char* note,
                          auto once, const std::vector<Placement>& pls) {
    add_pingpong_cells(cells, config, "limits", peer, label, note, 0, once,
                       pls);
  };
  std::vector<Placement> futex_pls = placements(config);
  if (cpu_usable(config.producer_cpu)) {
    futex_pls.push_back({"same-cpu", config.producer_cpu, config.producer_cpu});
  }
  add_pingpong("cacheline-pingpong", "cache-line ping-pong (spinning)",
               "one shared 64-byte line, both processes spin",
               run_pingpong<CachelinePingPong>, placements(config));
  add_pingpong("futex-pingpong", "futex ping-pong (bare hand-off)",
               "store + FUTEX_WAKE, FUTEX_WAIT at once; no spinning",
               run_pingpong<FutexPingPong>, futex_pls);
  run_cells(config, cells, report);
}

}  // namespace bench
