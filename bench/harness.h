// The measuring harness of shm-bench: configuration, statistics, the report
// (table + JSON), CPU pinning and the fork/thread runner every
// cross-process scenario goes through.
//
// A run of one scenario repetition:
//   parent: sets up the channel (segment, pipe, socket, queue) and forks the
//           children (or starts threads); each child pins itself, attaches
//           its end AFTER the fork, says ready and sleeps on `go`;
//   parent: releases `go` (futex wake), sleeps for the duration, raises
//           `stop`, reaps the children (killing them after a generous
//           grace period) and reads their results from shared memory.
// The parent sleeps while children run, so on a 2-core machine it costs
// nothing; children never spin on the start line (they futex-wait) so the
// parent always gets a CPU to start them.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/cpu_relax.h"

namespace bench {

using Clock = std::chrono::steady_clock;

struct Config {
  int reps = 5;                   // repetitions per row (>= 5 for real runs)
  double duration = 0.25;         // seconds per throughput repetition
  double latency_duration = 0.4;  // seconds per latency repetition
  double idle_seconds = 2.0;      // how long the idle consumer waits
  bool smoke = false;             // tiny durations: checks it works, no more
  bool unpinned = true;           // also run the unpinned variants
  int producer_cpu = 0;           // headline placement
  int consumer_cpu = 1;
  std::vector<std::size_t> sizes = {8, 64, 512, 4096, 65536};
  std::uint64_t ring_bytes = 1 << 20;  // byte budget of every queue peer
  std::size_t batch = 64;          // records per flush (batched shmring rows)
  std::vector<std::string> only;   // scenario groups to run; empty = all
  std::vector<std::string> peers;  // row peers to run; empty = all
  std::string tools_dir;           // where shm-produce / shm-consume live
  std::uint64_t e2e_bytes = 1ULL << 30;
  std::string e2e_file;  // default: a file under $TMPDIR
  bool verbose = false;

  bool wants(const std::string& group) const;
  bool wants_peer(const std::string& peer) const;
};

// Median, quartiles and range of a set of repetitions.
struct Stats {
  double median = 0, min = 0, max = 0, q1 = 0, q3 = 0, mean = 0;
  std::vector<double> samples;
};
Stats summarize(std::vector<double> samples);
// The q-quantile (0..1) of sorted values, linear interpolation.
double quantile(const std::vector<double>& sorted, double q);

// One line of the report. `metrics` keeps insertion order.
struct Row {
  std::string id;         // unique: group/peer/size/placement
  std::string group;      // limits, throughput, latency, mpsc, idle, tools
  std::string peer;       // machine name of the mechanism
  std::string label;      // what the table shows
  std::size_t size = 0;   // record / block size in bytes (0: n/a)
  std::string placement;  // pinned, unpinned, same-cpu, threads-pinned ...
  int producers = 0;      // MPSC rows
  std::string note;
  std::string skipped;  // non-empty: not measured here, and why
  std::vector<std::pair<std::string, Stats>> metrics;
  std::string error;  // non-empty: the row failed (still reported)

  const Stats* metric(const std::string& name) const;
};

class Report {
 public:
  explicit Report(const Config& config) : config_(config) {}
  void add(Row row);  // prints the row to stdout as it arrives
  nlohmann::json to_json(const std::vector<std::string>& argv) const;
  const std::vector<Row>& rows() const { return rows_; }
  int failures() const;

 private:
  const Config& config_;
  std::vector<Row> rows_;
};

// ----------------------------------------------------------------------------
// Placement.

// True if this process may run on `cpu` (it is in the initial affinity mask).
bool cpu_usable(int cpu);
// Pins the calling thread to `cpu`; -1 restores the initial mask.
bool pin_to(int cpu);
// Remembers the initial affinity mask; call once at start.
void init_affinity();

// Where each child of a two-sided scenario runs.
struct Placement {
  std::string name;  // "pinned" / "unpinned"
  int producer_cpu;  // -1: unpinned
  int consumer_cpu;
};
// The headline placement first, then (if configured) unpinned.
std::vector<Placement> placements(const Config& config);

// ----------------------------------------------------------------------------
// Shared memory for coordination: anonymous MAP_SHARED, inherited by fork.

void* map_shared(std::size_t bytes);
void unmap_shared(void* p, std::size_t bytes);

template <class T>
class SharedObject {
 public:
  template <class... A>
  explicit SharedObject(A&&... args)
      : p_(new (map_shared(sizeof(T))) T(std::forward<A>(args)...)) {}
  ~SharedObject() {
    p_->~T();
    unmap_shared(p_, sizeof(T));
  }
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  T* get() const { return p_; }

 private:
  T* p_;
};

// ----------------------------------------------------------------------------
// Futex on a shared (non-private) word: the waiters are other processes.

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                std::chrono::nanoseconds timeout);
void futex_wake(std::atomic<std::uint32_t>* word);

// A spin-wait step for the peers that have no blocking call (Boost.Lockfree,
// the fixed-slot ring): pause, and yield every 1024 misses so an unpinned
// pair that lands on one CPU still makes progress.
struct Backoff {
  unsigned misses = 0;
  void pause() {
    if ((++misses & 1023) == 0) {
      ::sched_yield();
    } else {
      cpu_relax();
    }
  }
  void reset() { misses = 0; }
};

// Keeps the compiler from dropping a computation or a copy: `v` escapes
// and all memory may be read, so a copy into `v` must be complete even if
// the program only looks at part of it (without this, GCC turns a
// consumer's 4 KiB pop-into-a-local into an 8-byte load).
template <class T>
inline void keep(const T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}
inline void clobber() { asm volatile("" : : : "memory"); }

// ----------------------------------------------------------------------------
// The runner.

inline constexpr int kMaxChildren = 8;

// What a child reports back through shared memory.
struct ChildResult {
  std::uint64_t count = 0;  // records moved / round trips
  std::uint64_t bytes = 0;
  std::int64_t ns = 0;       // the child's measured wall time
  std::int64_t cpu_ns = 0;   // CPU time of the measured phase (idle)
  std::uint64_t errors = 0;  // sequence / checksum mismatches
  double values[8] = {};     // scenario-specific (latency percentiles)
  char message[160] = {};    // why it failed
  void fail(const std::string& why);
  bool failed() const { return message[0] != 0; }
};

struct alignas(128) Control {
  alignas(128) std::atomic<std::uint32_t> ready{0};
  alignas(128) std::atomic<std::uint32_t> go{0};
  alignas(128) std::atomic<std::uint32_t> stop{0};
  alignas(128) ChildResult result[kMaxChildren];
};

// Handed to each child (process or thread).
class Child {
 public:
  Child(Control* control, int index) : control_(control), index_(index) {}
  // Says ready and sleeps until the parent starts the run. Returns the start
  // time as this child saw it.
  Clock::time_point ready_and_wait();
  bool stop_requested() const {
    // relaxed: a flag; nothing is published through it.
    return control_->stop.load(std::memory_order_relaxed) != 0;
  }
  ChildResult& result() { return control_->result[index_]; }
  int index() const { return index_; }

 private:
  Control* control_;
  int index_;
};

struct ChildSpec {
  int cpu = -1;  // -1: not pinned
  std::function<void(Child&)> body;
};

enum class Mode { processes, threads };

struct RunResult {
  std::string error;  // non-empty: the run failed (timeout, crash, error)
  std::vector<ChildResult> children;
  std::vector<std::int64_t> child_cpu_ns;  // from wait4 (processes only)
};

// Runs `children` once: start together, stop after `duration` (children
// may also end on their own, e.g. a fixed number of round trips). A child
// still running `grace` after stop is killed and the run fails.
// `after_fork` runs in the parent once the children exist (processes mode),
// e.g. to close its copies of pipe ends so that EOF can happen.
RunResult run_children(const std::vector<ChildSpec>& children, Mode mode,
                       std::chrono::nanoseconds duration,
                       const std::function<void()>& after_fork = {},
                       std::chrono::seconds grace = std::chrono::seconds(20));

std::chrono::nanoseconds seconds(double s);

// One row under measurement: `once` runs one repetition and returns the
// values of `metric_names` (or an error).
struct RepOutcome {
  std::string error;
  std::map<std::string, double> values;
};
struct Cell {
  Row row;
  std::vector<std::string> metric_names;
  std::function<RepOutcome()> once;
};
// The outcome of a producers -> consumer run: the last child consumed, in
// order, what all the others produced. Fails (error) if the run failed, if
// the consumer saw records out of order, if counts differ or nothing
// moved; otherwise records_per_s and bytes_per_s of the consumer's time.
// `noun` names what moved in the messages ("records", "samples").
RepOutcome stream_rates(const RunResult& run, std::size_t record_bytes,
                        const std::string& noun = "records");

// Runs config.reps repetitions of every cell, interleaved (rep 1 of each
// cell, then rep 2 ...) so that load from other processes on a shared
// machine spreads over all rows instead of biasing one; then reports them.
void run_cells(const Config& config, std::vector<Cell>& cells, Report& report);

// "what: strerror(errno)".
std::string errno_text(const char* what);

// Unique names for named kernel objects (message queues, files).
std::string unique_name(const std::string& stem);

}  // namespace bench
