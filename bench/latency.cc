// Scenario 4: round trips through two shmring rings with each wait
// strategy, and through a pipe pair / AF_UNIX socketpair for context.
#include <string>
#include <vector>

#include "bench/peers/iceoryx.h"
#include "bench/peers/zmq.h"
#include "bench/pingpong.h"
#include "bench/scenarios.h"

namespace bench {

void run_latency(const Config& config, Report& report) {
  std::vector<Cell> cells;
  auto add = [&](const char* peer, const char* label, const char* note,
                 auto once) {
    add_pingpong_cells(cells, config, "latency", peer, label, note, kPingBytes,
                       once, placements(config));
  };
  using shmring::WaitStrategy;
  add("shmring-spin", "shmring, spinning (WaitStrategy::spin)",
      "two SPSC rings; reserve/commit, peek/release; waits spin then yield",
      run_pingpong<RingPingPong<WaitStrategy::spin>>);
  add("shmring-futex", "shmring, default (spin, yield, futex sleep)",
      "WaitStrategy::futex: spin 20 us, yield 50 us, then FUTEX_WAIT",
      run_pingpong<RingPingPong<WaitStrategy::futex>>);
  add("shmring-semaphore", "shmring, semaphore fallback",
      "WaitStrategy::semaphore: spin, yield, then interprocess_semaphore",
      run_pingpong<RingPingPong<WaitStrategy::semaphore>>);
  add("zmq-pair", "ZeroMQ ipc:// PAIR",
      "one PAIR socket each side, zmq_send / zmq_recv 64 B each way",
      run_pingpong<ZmqPingPong>);
  {
    const std::size_t before = cells.size();
    add("iceoryx", "iceoryx 2.0.3 publish/subscribe",
        "own iox-roudi per repetition; two topics, loan + memcpy + publish, "
        "take polled",
        iceoryx_latency_once);
    const std::string why = iceoryx_unavailable();
    for (std::size_t i = before; i < cells.size(); ++i)
      cells[i].row.skipped = why;
  }
  add("pipe", "pipe pair", "write(2) 64 B, read(2) 64 B each way",
      run_pingpong<FdPingPong<false>>);
  add("unix-seqpacket", "AF_UNIX SOCK_SEQPACKET",
      "one socketpair, write/read 64 B each way",
      run_pingpong<FdPingPong<true>>);
  run_cells(config, cells, report);
}

}  // namespace bench
