// ZeroMQ over ipc:// as a shm-bench peer: PUSH/PULL for throughput, PAIR
// for the ping-pong.
#pragma once

#include <zmq.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

#include "bench/harness.h"
#include "bench/peer_common.h"
#include "bench/pingpong.h"

namespace bench {

// How long a ZeroMQ send, receive or end-of-stream acknowledgement may
// block before the row fails with a message saying which one: well inside
// the harness's grace period (run_children's 20 s), so a lost message is
// a reported failure of its row, never a stuck benchmark.
inline constexpr int kZmqTimeoutMs = 10000;

// A context and socket of this process. Each child makes its own after the
// fork (the parent never creates a ZeroMQ context: its I/O threads and
// their mailboxes do not survive fork()).
//
// The end of a stream is never left to ZMQ_LINGER. With libzmq 4.3.4
// (Debian 12), a PUSH socket's zmq_close() + zmq_ctx_term() returned within
// 0.3-0.8 ms despite a 5 s ZMQ_LINGER, and the PULL side, waiting 3 s more,
// was 400-2,500 records short, the end-of-stream message among them (the
// old hang). Where libzmq loses them was not traced; libzmq issues #1264
// and #4660 report the same. So the sender of an end-of-stream message
// (PUSH/PULL and PAIR) keeps its socket open until the receiver confirms it
// through shared memory (ZmqEndAck); only then does it close, with linger 0
// on both sides.
class ZmqSocket {
 public:
  ZmqSocket(int type, const std::string& endpoint, bool bind) {
    ctx_ = zmq_ctx_new();
    if (ctx_ == nullptr) throw std::runtime_error("zmq_ctx_new failed");
    sock_ = zmq_socket(ctx_, type);
    if (sock_ == nullptr) throw std::runtime_error(error("zmq_socket"));
    const int zero = 0;
    set(ZMQ_LINGER, zero);
    set(ZMQ_SNDTIMEO, kZmqTimeoutMs);
    set(ZMQ_RCVTIMEO, kZmqTimeoutMs);
    // Queue only on completed connections: a send before the peer has
    // bound waits instead of filling a pipe to a peer not yet there.
    const int one = 1;
    set(ZMQ_IMMEDIATE, one);
    const int rc = bind ? zmq_bind(sock_, endpoint.c_str())
                        : zmq_connect(sock_, endpoint.c_str());
    if (rc != 0)
      throw std::runtime_error(error(bind ? "zmq_bind" : "zmq_connect"));
  }
  ~ZmqSocket() {
    if (sock_ != nullptr) zmq_close(sock_);
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
  }
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;
  void send(const void* p, std::size_t n) {
    while (zmq_send(sock_, p, n, 0) < 0) {
      if (zmq_errno() == EAGAIN)
        throw std::runtime_error(timed_out("zmq_send"));
      if (zmq_errno() != EINTR) throw std::runtime_error(error("zmq_send"));
    }
  }
  // Bytes of the message (truncated to n). Throws on error and when no
  // message came within kZmqTimeoutMs.
  int recv(void* p, std::size_t n) {
    for (;;) {
      const int r = zmq_recv(sock_, p, n, 0);
      if (r >= 0) return r;
      if (zmq_errno() == EAGAIN)
        throw std::runtime_error(timed_out("zmq_recv"));
      if (zmq_errno() != EINTR) throw std::runtime_error(error("zmq_recv"));
    }
  }
  static std::string error(const char* what) {
    return std::string(what) + ": " + zmq_strerror(zmq_errno());
  }

 private:
  void set(int option, int value) {
    if (zmq_setsockopt(sock_, option, &value, sizeof value) != 0) {
      throw std::runtime_error(error("zmq_setsockopt"));
    }
  }
  static std::string timed_out(const char* what) {
    return std::string(what) + ": nothing moved in " +
           std::to_string(kZmqTimeoutMs / 1000) +
           " s (peer gone or a message lost)";
  }

  void* ctx_ = nullptr;
  void* sock_ = nullptr;
};

// Under /tmp, not $TMPDIR: an ipc:// path must fit sun_path (108 bytes),
// which a test sandbox's TMPDIR may not. unique_name has our pid in it.
inline std::string zmq_endpoint(const char* stem) {
  return std::string("ipc:///tmp/") + unique_name(stem);
}

// The receiver's "I have your end-of-stream message", in MAP_SHARED memory
// made by the parent before the fork (see ZmqSocket for why the sender must
// wait for it before closing).
class ZmqEndAck {
 public:
  // Receiver, after the end-of-stream message.
  void confirm() {
    // release: pairs with wait()'s acquire load; nothing else is published
    // through it (the records went through ZeroMQ).
    word_->store(1, std::memory_order_release);
    futex_wake(word_.get());
  }
  // Sender, after sending the end-of-stream message and before closing.
  void wait() {
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(kZmqTimeoutMs);
    // acquire: pairs with confirm()'s release store.
    while (word_->load(std::memory_order_acquire) == 0) {
      if (Clock::now() > deadline) {
        throw std::runtime_error(
            "the receiver did not confirm the end of stream in " +
            std::to_string(kZmqTimeoutMs / 1000) + " s");
      }
      futex_wait(word_.get(), 0, std::chrono::milliseconds(100));
    }
  }

 private:
  SharedObject<std::atomic<std::uint32_t>> word_{0u};
};

// PUSH (producer, connects) -> PULL (consumer, binds): one zmq_send /
// zmq_recv of S bytes per record; a 1-byte message ends the stream.
// Default high-water marks (1000 messages each side).
template <std::size_t S>
class ZmqPushPullPeer {
 public:
  explicit ZmqPushPullPeer(const Config&) : endpoint_(zmq_endpoint("zmq")) {}
  void produce(Child& child) {
    // Connect once the consumer has bound (its socket file exists).
    const std::string path = endpoint_.substr(6);
    for (int i = 0; i < 10000 && ::access(path.c_str(), F_OK) != 0; ++i) {
      ::usleep(1000);
    }
    ZmqSocket s(ZMQ_PUSH, endpoint_, false);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      s.send(&src, S);
    });
    const char end = 0;
    s.send(&end, 1);
    end_ack_.wait();  // only then may the socket close
  }
  void consume(Child& child) {
    ZmqSocket s(ZMQ_PULL, endpoint_, true);
    alignas(64) Msg<S> dst{};
    SeqCheck check;
    const auto t0 = child.ready_and_wait();
    for (;;) {
      const int n = s.recv(&dst, S);
      if (n != static_cast<int>(S)) break;
      keep(dst);
      check(seq_of(&dst));
    }
    finish_consumer(child, t0, check, S);
    end_ack_.confirm();
  }
  void after_fork() {}
  ~ZmqPushPullPeer() { ::unlink(endpoint_.substr(6).c_str()); }

 private:
  std::string endpoint_;
  ZmqEndAck end_ack_;
};

// PAIR ping-pong: kPingBytes there and back per round trip.
class ZmqPingPong {
 public:
  explicit ZmqPingPong(const Config&) : endpoint_(zmq_endpoint("zmq-pair")) {}
  ~ZmqPingPong() { ::unlink(endpoint_.substr(6).c_str()); }
  void ping_setup() { s_.emplace(ZMQ_PAIR, endpoint_, false); }
  void round_trip() {
    std::byte buf[kPingBytes] = {};
    s_->send(buf, kPingBytes);
    if (s_->recv(buf, kPingBytes) != static_cast<int>(kPingBytes)) {
      throw std::runtime_error("zmq ponger sent a short message");
    }
  }
  void ping_finish() {
    const char end = 0;
    s_->send(&end, 1);
    end_ack_.wait();  // only then may the socket close
    s_.reset();
  }
  void pong(Child& child) {
    ZmqSocket s(ZMQ_PAIR, endpoint_, true);
    child.ready_and_wait();
    std::byte buf[kPingBytes];
    for (;;) {
      const int n = s.recv(buf, kPingBytes);
      if (n != static_cast<int>(kPingBytes)) break;
      s.send(buf, kPingBytes);
    }
    end_ack_.confirm();
  }
  void after_fork() {}

 private:
  std::string endpoint_;
  std::optional<ZmqSocket> s_;
  ZmqEndAck end_ack_;
};

}  // namespace bench
