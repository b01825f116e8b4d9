// The peers of issue 12 that a user would pick instead of shmring:
// moodycamel::ReaderWriterQueue (threads) and ZeroMQ over ipc:// (PUSH/PULL
// for throughput, PAIR for the ping-pong), with the same shape as peers.h
// and pingpong.h, doing the same work per record.
#pragma once

#include <readerwriterqueue/readerwriterqueue.h>
#include <zmq.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "tools/bench/peers.h"
#include "tools/bench/pingpong.h"

namespace bench {

// ============================================== moodycamel ReaderWriterQueue

// ReaderWriterQueue<Msg<S>> sized to the same byte budget; try_enqueue
// never allocates (a full queue says no), so it is a bounded SPSC queue
// like the others. Threads only: its blocks live on the heap.
template <std::size_t S>
class RwqPeer {
 public:
  using Queue = moodycamel::ReaderWriterQueue<Msg<S>>;
  explicit RwqPeer(const Config&)
      : queue_(std::make_unique<Queue>(kQueueBytes / S)) {}
  void produce(Child& child) {
    alignas(64) Msg<S> src = source_record<S>();
    Backoff backoff;
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      while (!queue_->try_enqueue(src)) backoff.pause();
    });
    // release: pairs with the consumer's acquire; every enqueue before it
    // is visible once done is.
    done_.store(1, std::memory_order_release);
  }
  void consume(Child& child) {
    alignas(64) Msg<S> dst{};
    SeqCheck check;
    Backoff backoff;
    const auto t0 = child.ready_and_wait();
    for (;;) {
      if (queue_->try_dequeue(dst)) {
        keep(dst);
        check(seq_of(&dst));
        continue;
      }
      // acquire: pairs with the producer's release store of done.
      if (done_.load(std::memory_order_acquire) != 0) {
        if (queue_->try_dequeue(dst)) {
          keep(dst);
          check(seq_of(&dst));
          continue;
        }
        break;
      }
      backoff.pause();
    }
    finish_consumer(child, t0, check, S);
  }
  void after_fork() {}

 private:
  std::unique_ptr<Queue> queue_;
  alignas(128) std::atomic<std::uint32_t> done_{0};
};

// ======================================================= ZeroMQ, ipc://

// A context and socket of this process (each child makes its own after the
// fork: a ZeroMQ context must not cross fork()).
class ZmqSocket {
 public:
  // `linger`: a sender keeps its queued messages until delivered on close
  // (the end-of-stream message must arrive); a receiver drops them.
  ZmqSocket(int type, const std::string& endpoint, bool bind,
            bool linger = false) {
    ctx_ = zmq_ctx_new();
    if (ctx_ == nullptr) throw std::runtime_error("zmq_ctx_new failed");
    sock_ = zmq_socket(ctx_, type);
    if (sock_ == nullptr) throw std::runtime_error(error("zmq_socket"));
    // Bounded: a receiver that died must not hang the sender past the
    // harness's grace period.
    const int ms = linger ? 5000 : 0;
    zmq_setsockopt(sock_, ZMQ_LINGER, &ms, sizeof ms);
    // Queue only on completed connections: a send before the peer has
    // bound waits instead of filling a pipe to a peer not yet there.
    const int one = 1;
    zmq_setsockopt(sock_, ZMQ_IMMEDIATE, &one, sizeof one);
    const int rc = bind ? zmq_bind(sock_, endpoint.c_str())
                        : zmq_connect(sock_, endpoint.c_str());
    if (rc != 0) throw std::runtime_error(error(bind ? "zmq_bind" : "zmq_connect"));
  }
  ~ZmqSocket() {
    if (sock_ != nullptr) zmq_close(sock_);
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
  }
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;
  void send(const void* p, std::size_t n) {
    while (zmq_send(sock_, p, n, 0) < 0) {
      if (zmq_errno() != EINTR) throw std::runtime_error(error("zmq_send"));
    }
  }
  // Bytes of the message (truncated to n), or -1 on error.
  int recv(void* p, std::size_t n) {
    for (;;) {
      const int r = zmq_recv(sock_, p, n, 0);
      if (r >= 0) return r;
      if (zmq_errno() != EINTR) throw std::runtime_error(error("zmq_recv"));
    }
  }
  static std::string error(const char* what) {
    return std::string(what) + ": " + zmq_strerror(zmq_errno());
  }

 private:
  void* ctx_ = nullptr;
  void* sock_ = nullptr;
};

// Under /tmp, not $TMPDIR: an ipc:// path must fit sun_path (108 bytes),
// which a test sandbox's TMPDIR may not. unique_name has our pid in it.
inline std::string zmq_endpoint(const char* stem) {
  return std::string("ipc:///tmp/") + unique_name(stem);
}

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
    ZmqSocket s(ZMQ_PUSH, endpoint_, false, true);
    alignas(64) Msg<S> src = source_record<S>();
    produce_loop<S>(child, [&](std::uint64_t seq) {
      set_seq(src, seq);
      s.send(&src, S);
    });
    const char end = 0;
    s.send(&end, 1);
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
  }
  void after_fork() {}
  ~ZmqPushPullPeer() { ::unlink(endpoint_.substr(6).c_str()); }

 private:
  std::string endpoint_;
};

// PAIR ping-pong: kPingBytes there and back per round trip.
class ZmqPingPong {
 public:
  explicit ZmqPingPong(const Config&) : endpoint_(zmq_endpoint("zmq-pair")) {}
  ~ZmqPingPong() { ::unlink(endpoint_.substr(6).c_str()); }
  void ping_setup() { s_.emplace(ZMQ_PAIR, endpoint_, false, true); }
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
  }
  void after_fork() {}

 private:
  std::string endpoint_;
  std::optional<ZmqSocket> s_;
};

}  // namespace bench
