// AF_UNIX socketpair (SOCK_STREAM, SOCK_SEQPACKET) as a shm-bench
// throughput peer.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>

#include "bench/harness.h"
#include "bench/peer_common.h"

namespace bench {

// AF_UNIX socketpair: SOCK_STREAM reads like a pipe; SOCK_SEQPACKET keeps
// boundaries, so the reader takes one recv(2) per record.
template <std::size_t S, int Type>
class UnixPeer {
 public:
  explicit UnixPeer(const Config&) {
    if (::socketpair(AF_UNIX, Type, 0, p_.fd) != 0) {
      throw std::runtime_error(errno_text("socketpair"));
    }
  }
  void produce(Child& child) {
    ::close(p_.fd[0]);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      if constexpr (Type == SOCK_SEQPACKET) {
        for (;;) {
          const ssize_t w = ::send(p_.fd[1], &src, S, 0);
          if (w == static_cast<ssize_t>(S)) break;
          if (w < 0 && errno == EINTR) continue;
          throw std::runtime_error(errno_text("send"));
        }
      } else {
        write_all(p_.fd[1], &src, S);
      }
    });
    ::shutdown(p_.fd[1], SHUT_WR);
    ::close(p_.fd[1]);
  }
  void consume(Child& child) {
    ::close(p_.fd[1]);
    if constexpr (Type == SOCK_SEQPACKET) {
      alignas(64) Msg<S> dst{};
      SeqCheck check;
      const auto t0 = child.ready_and_wait();
      for (;;) {
        const ssize_t n = ::recv(p_.fd[0], &dst, S, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(errno_text("recv"));
        if (n == 0) break;  // the producer shut down
        if (n != static_cast<ssize_t>(S)) ++check.errors;
        keep(dst);  // the whole copy must happen, not just its first 8 bytes
        check(seq_of(&dst));
      }
      finish_consumer(child, t0, check, S);
    } else {
      consume_stream<S>(p_.fd[0], child);
    }
  }
  void after_fork() { p_.close_all(); }

 private:
  FdPair p_;
};

}  // namespace bench
