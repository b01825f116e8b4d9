// Scenario 7: the CPU a consumer burns while blocked on an empty ring (a
// producer is attached but sends nothing), per wait strategy.
#include <time.h>

#include <string>
#include <thread>
#include <vector>

#include "bench/private_ring.h"
#include "bench/scenarios.h"

namespace bench {
namespace {

std::int64_t process_cpu_ns() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

RepOutcome idle_once(const Config& config, shmring::WaitStrategy wait) {
  RepOutcome out;
  try {
    shmring::RingOptions o;
    o.wait = wait;
    o.capacity = 64 << 10;
    PrivateRing ring(o);
    const auto idle = seconds(config.idle_seconds);
    const int cpu = cpu_usable(config.consumer_cpu) ? config.consumer_cpu : -1;
    std::vector<ChildSpec> specs = {
        {-1,
         [&](Child& child) {
           shmring::Producer p = attach_producer(ring.segment());
           child.ready_and_wait();
           while (!child.stop_requested()) {
             std::this_thread::sleep_for(std::chrono::milliseconds(10));
           }
           p.close();
         }},
        {cpu,
         [&](Child& child) {
           shmring::Consumer c = attach_consumer(ring.segment());
           const auto t0 = child.ready_and_wait();
           const std::int64_t cpu0 = process_cpu_ns();
           shmring::Peeked p = c.peek(idle);
           const std::int64_t cpu1 = process_cpu_ns();
           auto& r = child.result();
           r.ns = (Clock::now() - t0).count();
           r.cpu_ns = cpu1 - cpu0;
           if (p.status != shmring::Status::timed_out) {
             r.fail(std::string("peek returned ") +
                    shmring::to_string(p.status));
           }
           c.close();
         }},
    };
    // The producer child waits for stop; give the consumer its full wait.
    RunResult r = run_children(specs, Mode::processes,
                               idle + std::chrono::milliseconds(50));
    if (!r.error.empty()) {
      out.error = r.error;
      return out;
    }
    const ChildResult& c = r.children[1];
    out.values["cpu_percent"] =
        100.0 * static_cast<double>(c.cpu_ns) / static_cast<double>(c.ns);
  } catch (const std::exception& ex) {
    out.error = ex.what();
  }
  return out;
}

}  // namespace

void run_idle(const Config& config, Report& report) {
  std::vector<Cell> cells;
  using shmring::WaitStrategy;
  const std::pair<WaitStrategy, const char*> strategies[] = {
      {WaitStrategy::futex, "shmring-futex"},
      {WaitStrategy::semaphore, "shmring-semaphore"}};
  for (const auto& [wait, peer] : strategies) {
    Cell c;
    c.row.group = "idle";
    c.row.peer = peer;
    c.row.label = std::string("idle consumer, ") + peer;
    c.row.note =
        "Consumer::peek(timeout) on an empty ring with a live "
        "producer attached; CPU time of the consumer process / wall";
    c.row.placement = cpu_usable(config.consumer_cpu) ? "pinned" : "unpinned";
    c.row.id = std::string("idle/") + peer;
    c.metric_names = {"cpu_percent"};
    c.once = [&config, wait = wait] { return idle_once(config, wait); };
    cells.push_back(std::move(c));
  }
  run_cells(config, cells, report);
}

}  // namespace bench
