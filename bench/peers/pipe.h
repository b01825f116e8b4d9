// pipe(2) as a shm-bench throughput peer.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <stdexcept>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// pipe(2), one write(2) per record; the reader reads 64 KiB at a time
// (the kindest reader a byte stream allows). Default 64 KiB pipe buffer.
template <std::size_t S>
class PipePeer {
 public:
  explicit PipePeer(const Config&) {
    if (::pipe(p_.fd) != 0) throw std::runtime_error(errno_text("pipe"));
  }
  void produce(Child& child) {
    ::close(p_.fd[0]);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      write_all(p_.fd[1], &src, S);
    });
    ::close(p_.fd[1]);
  }
  void consume(Child& child) {
    ::close(p_.fd[1]);
    consume_stream<S>(p_.fd[0], child);
  }
  void after_fork() { p_.close_all(); }

 private:
  FdPair p_;
};

}  // namespace bench
