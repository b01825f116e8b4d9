// iceoryx 2.0.3 publish/subscribe as a shm-bench peer: the
// zero-copy middleware a user might pick instead of shmring. shm-bench
// starts its own iox-roudi (the broker every iceoryx process registers
// with) for each repetition and stops it afterwards; without iceoryx on the
// machine the rows say "skipped: iceoryx not installed".
//
// Each child registers its own runtime after the fork. The publisher waits
// for WAIT_FOR_SUBSCRIBER, the subscriber's queue BLOCK_PRODUCER, so no
// sample is dropped (the consumer checks every sequence number); the
// subscriber polls take() in a spin loop like the other spinning peers.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "bench/peer_common.h"
#include "bench/pingpong.h"

namespace bench {

// Empty if iceoryx can run here, else why not (for Row::skipped).
std::string iceoryx_unavailable();

// iox-roudi as a child process for the lifetime of the object, holding
// the machine-wide lock /tmp/shm-bench-iceoryx.lock meanwhile (RouDi is one
// per machine: another shm-bench's repetitions wait for it, up to 120 s).
class Roudi {
 public:
  Roudi();
  ~Roudi();
  Roudi(const Roudi&) = delete;
  Roudi& operator=(const Roudi&) = delete;

 private:
  int lock_fd_ = -1;
  pid_t pid_ = -1;
};

// Throughput: S-byte samples, loan + memcpy + publish; take + memcpy.
RepOutcome iceoryx_throughput_once(const Config& config, const Placement& pl,
                                   std::size_t size);
// Latency: 64-byte ping-pong over two topics.
RepOutcome iceoryx_latency_once(const Config& config, const Placement& pl);

}  // namespace bench
