// The scenario groups of shm-bench, one function each; every function adds
// its rows to the report. The numbers match the sections of
// docs/benchmarks.md.
#pragma once

#include "bench/harness.h"

namespace bench {

// 1. Limits: memcpy bandwidth; cache-line and futex ping-pong between two
//    processes.
void run_limits(const Config& config, Report& report);
// 2 + 3. Throughput of every peer at every record size, process to process.
void run_throughput(const Config& config, Report& report);
// 4. Round-trip latency through two rings (spin, futex, semaphore) and
//    through pipe / AF_UNIX for context.
void run_latency(const Config& config, Report& report);
// 5. MPSC: 1, 2, 4 producer processes into one consumer.
void run_mpsc(const Config& config, Report& report);
// 6. The tools end to end against cat | cat and dd | dd.
void run_tools(const Config& config, Report& report);
// 7. CPU used by a consumer blocked on an empty ring.
void run_idle(const Config& config, Report& report);
// 8. rigtorp/SPSCQueue's benchmark method (threads): shmring Queue<int>,
//    Boost.Lockfree, moodycamel ReaderWriterQueue.
void run_rigtorp(const Config& config, Report& report);
// 9. Broadcast: 1, 2, 3 consumers on one broadcast ring vs tee into as many
//    SPSC rings.
void run_broadcast(const Config& config, Report& report);

}  // namespace bench
