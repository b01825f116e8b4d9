// shm-produce: stdin -> ring. Like `cat` into a shared-memory ring; its
// exit (or close) is the consumer's end of stream. See docs/tools.md.
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "tools/cli.h"
#include "tools/endpoint.h"
#include "tools/framing.h"
#include "tools/stats.h"

namespace shmring::tools {
namespace {

struct Options {
  RingFlags ring;
  ReportFlags report;
  std::string framing = "bytes";
  std::string chunk;  // bytes framing: largest record; empty = automatic
  bool wait_consumer = false;
};

// Reserves space on behalf of the framings: the waiting policy (timeouts,
// a consumer that has not started yet, a consumer that is gone) and the
// translation of every non-ok Status into a Failure with its exit code.
class Sender {
 public:
  Sender(Producer& p, const Options& o, Counters& c)
      : p_(p),
        timeout_(timeout_of(o.ring)),
        timeout_s_(o.ring.timeout),
        wait_consumer_(o.wait_consumer),
        counters_(c),
        consumer_at_start_(p.consumer_alive()),
        consumers_seen_at_start_(p.consumers_seen()) {}

  // A writable span of exactly `n` bytes; blocks while the ring is full.
  std::span<std::byte> reserve(std::size_t n) {
    Reservation r = p_.try_reserve(n);  // fast path: no flush, no clock
    if (r) return r.bytes;
    if (r.status != Status::would_block) give_up(r.status);
    const Deadline deadline = Deadline::after(timeout_);
    for (;;) {
      // In slices: a full ring whose consumer is gone and that is marked
      // for removal can never drain (nobody can attach), even under
      // --wait-consumer.
      r = p_.reserve(n, std::min<Timeout>(deadline.left(), kSlice));
      if (r) return r.bytes;
      if (r.status == Status::timed_out && !deadline.passed()) {
        if (consumer_gone_for_good()) give_up(Status::peer_dead);
        continue;
      }
      if (r.status == Status::peer_dead && no_consumer_yet()) {
        wait_for_first_consumer(deadline);
        continue;
      }
      give_up(r.status);
    }
  }

  [[noreturn]] void give_up(Status s) {
    const std::string ring = "ring " + hex_key(p_.segment().key());
    const std::uint64_t committed =
        counters_.records.load(std::memory_order_relaxed);
    const std::string kept =
        std::to_string(committed) +
        (committed == 1 ? " record was" : " records were") + " committed";
    switch (s) {
      case Status::timed_out:
        if (!p_.consumer_alive()) {
          fail(s, "timed out after " + seconds_text(timeout_s_) +
                      " waiting for a consumer on " + ring +
                      " (the ring is full)");
        }
        fail(s, "timed out after " + seconds_text(timeout_s_) +
                    " waiting for space in " + ring +
                    " (is the consumer keeping up?)");
      case Status::peer_dead: {
        // The consumer is gone: the walk counts exactly what it left.
        const std::optional<std::uint64_t> unread =
            p_.segment().unread_records();
        const std::string left =
            unread ? std::to_string(*unread) +
                         (*unread == 1 ? " unread record" : " unread records")
                   : "the unread records";
        if (p_.segment().removed()) {
          fail(s, std::string(to_string(Errc::removed)) + ": the consumer of " +
                      ring +
                      " is gone and the ring is marked for removal, so no "
                      "consumer can attach any more; " +
                      left + " (of " + std::to_string(committed) +
                      " committed) go with it when this producer detaches");
        }
        fail(s, "the consumer of " + ring +
                    " is gone (exited or died) and the ring is full; " + left +
                    " (of " + std::to_string(committed) +
                    " committed) stay in the ring for the next consumer. Use "
                    "--wait-consumer to wait for a new one");
      }
      case Status::interrupted:
        fail(s, signal_text() + "; " + kept);
      case Status::corrupt:
        fail(s, ring + " is corrupt (head/tail out of range)");
      case Status::too_large:
        fail(s, "record larger than the ring accepts");
      default:
        fail(kExitInternal,
             std::string("unexpected ring status: ") + to_string(s));
    }
  }

 private:
  // Like a writer opening a FIFO: a producer that started while no consumer
  // was attached waits for one instead of taking the previous consumer's
  // departure (a ring left from an earlier session) as its own.
  bool no_consumer_yet() const {
    return !wait_consumer_ && !consumer_at_start_ &&
           p_.consumers_seen() == consumers_seen_at_start_;
  }

  // No consumer, and none can come: the ring is marked for removal.
  bool consumer_gone_for_good() const {
    return !p_.consumer_alive() && p_.segment().removed();
  }

 public:
  // At the end of the input: records no consumer can read any more would
  // vanish with the ring (removed while in use, e.g. by systemd's
  // RemoveIPC) when this producer detaches; say so instead of exit 0.
  void check_unread_kept() {
    if (!consumer_gone_for_good()) return;
    const std::optional<std::uint64_t> unread = p_.segment().unread_records();
    if (unread && *unread == 0) return;
    give_up(Status::peer_dead);
  }

 private:
  void wait_for_first_consumer(const Deadline& deadline) {
    while (no_consumer_yet() && !p_.consumer_alive()) {
      if (p_.segment().removed()) give_up(Status::peer_dead);
      if (deadline.passed()) {
        fail(Status::timed_out, "timed out after " + seconds_text(timeout_s_) +
                                    " waiting for a consumer on ring " +
                                    hex_key(p_.segment().key()));
      }
      if (!nap(std::chrono::milliseconds(20))) give_up(Status::interrupted);
    }
  }

  static constexpr Timeout kSlice = std::chrono::milliseconds(250);

  Producer& p_;
  Timeout timeout_;
  double timeout_s_;
  bool wait_consumer_;
  Counters& counters_;
  bool consumer_at_start_;
  std::uint32_t consumers_seen_at_start_;
};

// read(2) that retries EINTR unless a terminating signal arrived. Returns
// -1 with errno EINTR in that case.
ssize_t read_some(void* buf, std::size_t n) {
  for (;;) {
    const ssize_t r = ::read(STDIN_FILENO, buf, n);
    if (r >= 0 || errno != EINTR || caught_signal() != 0) return r;
  }
}

// Waits until stdin has data or EOF, so an MPSC producer never holds a
// reservation (a busy record that stalls the consumer for every producer)
// while its input is idle.
void wait_readable(Sender& s) {
  struct pollfd pfd {
    STDIN_FILENO, POLLIN, 0
  };
  for (;;) {
    if (::poll(&pfd, 1, -1) >= 0) return;
    if (errno != EINTR) return;  // let read(2) report it
    if (caught_signal() != 0) s.give_up(Status::interrupted);
  }
}

[[noreturn]] void read_failed(Sender& s) {
  if (errno == EINTR) s.give_up(Status::interrupted);
  fail(kExitBadInput, "reading stdin: " + errno_text(errno));
}

// --framing bytes: each read(2) lands straight in a reservation (the one
// copy) and becomes one record, trimmed to what was read.
void produce_bytes(Producer& p, Sender& s, Counters& counters,
                   std::size_t chunk) {
  const bool mpsc = p.segment().kind() == Kind::mpsc;
  for (;;) {
    if (mpsc) wait_readable(s);
    const std::span<std::byte> buf = s.reserve(chunk);
    const ssize_t n = read_some(buf.data(), buf.size());
    if (n > 0) {
      p.commit(static_cast<std::size_t>(n), kTypeBytes);
      counters.add(1, static_cast<std::uint64_t>(n));
      // What was read is committed; a signal ends the stream after it.
      if (caught_signal() != 0) s.give_up(Status::interrupted);
      continue;
    }
    p.abort();
    if (n == 0) return;  // EOF
    read_failed(s);
  }
}

// --framing lines: one record per line, without its '\n' (the consumer
// restores it). A line is always one whole record, so lines of concurrent
// producers on an MPSC ring never interleave. Lines are cut in a private
// buffer and copied into the ring: a second copy, the price of framing.
void produce_lines(Producer& p, Sender& s, Counters& counters) {
  const std::size_t max = p.max_record_size();
  std::vector<char> buf(std::size_t{64} * 1024);
  std::size_t begin = 0, end = 0;
  std::uint64_t line_no = 0;

  auto emit = [&](std::size_t len, std::uint16_t type) {
    const std::span<std::byte> r = s.reserve(len);
    if (len != 0) std::memcpy(r.data(), buf.data() + begin, len);
    // Deferred: published at the next flush (below) or when reserve has to
    // wait, so a burst of short lines costs one publication.
    p.commit_deferred(len, type);
    counters.add(1, type == kTypeLine ? len + 1 : len);  // stdin bytes
  };
  auto too_long = [&](std::size_t len) {
    fail(kExitTooLarge,
         "line " + std::to_string(line_no + 1) + " is " +
             (len > max ? "longer than" : "at least") +
             " the largest record ring " + hex_key(p.segment().key()) +
             " takes (" + std::to_string(max) +
             " bytes, half its capacity minus 8); use a bigger --capacity or "
             "--framing bytes");
  };

  std::size_t scanned = 0;
  for (;;) {
    while (const void* nl =
               std::memchr(buf.data() + scanned, '\n', end - scanned)) {
      const auto at =
          static_cast<std::size_t>(static_cast<const char*>(nl) - buf.data());
      const std::size_t len = at - begin;
      if (len > max) too_long(len);
      emit(len, kTypeLine);
      ++line_no;
      begin = scanned = at + 1;
    }
    scanned = end;
    if (end - begin > max) too_long(end - begin);
    p.flush();  // before read(2) may block: the consumer sees every line

    if (begin == end) {
      begin = end = scanned = 0;
    } else if (end == buf.size()) {
      if (begin > 0) {
        std::memmove(buf.data(), buf.data() + begin, end - begin);
        end -= begin;
        scanned -= begin;
        begin = 0;
      }
      if (end == buf.size()) {  // one line fills the buffer: grow it
        buf.resize(std::min(buf.size() * 2, max + std::size_t{64} * 1024));
      }
    }
    const ssize_t n = read_some(buf.data() + end, buf.size() - end);
    if (n > 0) {
      end += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {  // EOF: a last line without '\n' is still a record
      if (end > begin) emit(end - begin, kTypePartialLine);
      p.flush();
      return;
    }
    if (errno == EINTR && end > begin) {
      fail(Status::interrupted, signal_text() + "; the unfinished line " +
                                    std::to_string(line_no + 1) + " (" +
                                    std::to_string(end - begin) +
                                    " bytes) was dropped");
    }
    read_failed(s);
  }
}

// Buffered stdin for --framing length: small frames come from a buffer,
// large payloads are read straight into their reservation.
class Input {
 public:
  explicit Input(Sender& s) : s_(s), buf_(std::size_t{64} * 1024) {}

  // Reads up to n bytes; fewer only at EOF.
  std::size_t read_full(std::byte* dst, std::size_t n) {
    std::size_t got = take(dst, n);
    while (got < n) {
      const std::size_t want = n - got;
      ssize_t r;
      if (want >= buf_.size() / 2) {
        r = read_some(dst + got, want);  // big: no detour through buf_
        if (r > 0) got += static_cast<std::size_t>(r);
      } else {
        r = read_some(buf_.data(), buf_.size());
        if (r > 0) {
          pos_ = 0;
          len_ = static_cast<std::size_t>(r);
          got += take(dst + got, want);
        }
      }
      if (r == 0) return got;
      if (r < 0) read_failed(s_);
    }
    return got;
  }

 private:
  std::size_t take(std::byte* dst, std::size_t n) {
    const std::size_t k = std::min(n, len_ - pos_);
    if (k != 0) std::memcpy(dst, buf_.data() + pos_, k);
    pos_ += k;
    return k;
  }

  Sender& s_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0, len_ = 0;
};

// --framing length: input is [u32 little-endian length][payload]...; each
// frame becomes one record.
void produce_length(Producer& p, Sender& s, Counters& counters) {
  const std::size_t max = p.max_record_size();
  Input in(s);
  for (std::uint64_t frame = 1;; ++frame) {
    std::byte hdr[4];
    const std::size_t h = in.read_full(hdr, 4);
    if (h == 0) return;  // EOF between frames: the clean end
    if (h < 4) {
      fail(kExitBadInput, "input ends inside the length prefix of frame " +
                              std::to_string(frame) + " (" + std::to_string(h) +
                              " of 4 bytes)");
    }
    const std::uint32_t len = std::to_integer<std::uint32_t>(hdr[0]) |
                              std::to_integer<std::uint32_t>(hdr[1]) << 8 |
                              std::to_integer<std::uint32_t>(hdr[2]) << 16 |
                              std::to_integer<std::uint32_t>(hdr[3]) << 24;
    if (len > max) {
      fail(kExitTooLarge,
           "frame " + std::to_string(frame) + " is " + std::to_string(len) +
               " bytes, larger than the largest record ring " +
               hex_key(p.segment().key()) + " takes (" + std::to_string(max) +
               " bytes); use a bigger --capacity");
    }
    const std::span<std::byte> r = s.reserve(len);
    const std::size_t got = in.read_full(r.data(), len);
    if (got < len) {
      p.abort();
      fail(kExitBadInput, "input ends inside frame " + std::to_string(frame) +
                              ": its prefix says " + std::to_string(len) +
                              " bytes, only " + std::to_string(got) +
                              " follow");
    }
    p.commit(len, kTypeFrame);
    counters.add(1, len + 4ULL);  // stdin bytes, prefix included
  }
}

// --chunk, checked before anything is attached (a bad value is a usage
// error whatever the ring); 0 when not given.
std::uint64_t chunk_flag(const Options& o) {
  if (o.chunk.empty()) return 0;
  const auto v = parse_size(o.chunk);
  if (!v || *v == 0) {
    fail(kExitUsage, "--chunk '" + o.chunk + "' is not a size > 0");
  }
  return *v;
}

std::size_t chunk_size(const Options& o, std::uint64_t chunk,
                       const Producer& p) {
  const std::size_t max = p.max_record_size();
  if (chunk != 0) {
    if (chunk > max) {
      fail(kExitTooLarge, "--chunk " + o.chunk +
                              " is larger than the largest record this ring "
                              "takes (" +
                              std::to_string(max) + " bytes)");
    }
    return static_cast<std::size_t>(chunk);
  }
  // An eighth of the ring keeps several records in flight; a read(2) of more
  // than 1 MiB buys nothing.
  const std::uint64_t cap = p.segment().capacity();
  const std::uint64_t want =
      std::max<std::uint64_t>(4096, std::min<std::uint64_t>(cap / 8, 1 << 20));
  return static_cast<std::size_t>(std::min<std::uint64_t>(want, max));
}

std::string produce(const Options& o, Endpoint& ep) {
  const std::uint64_t chunk = chunk_flag(o);
  Segment& seg = ep.open();
  ProducerOptions po;
  po.wait_for_consumer = o.wait_consumer;
  auto p = Producer::attach(seg, po);
  if (!p) fail(p.error());
  // Only a producer that got its role changes the ring on its way out.
  RemoveOnExit remover(seg, o.ring.remove_on_exit);
  Sender sender(*p, o, ep.counters);
  Progress progress(o.report, ep.counters, seg);
  const Framing f = framing_from(o.framing);
  if (f == Framing::lines) {
    produce_lines(*p, sender, ep.counters);
  } else if (f == Framing::length) {
    produce_length(*p, sender, ep.counters);
  } else {
    produce_bytes(*p, sender, ep.counters, chunk_size(o, chunk, *p));
  }
  sender.check_unread_kept();
  p->close();  // the consumer's end of stream
  return "end_of_input";
}

void add_flags(CLI::App& app, Options& o) {
  add_endpoint_flags(app, o.ring);
  app.add_option("-f,--framing", o.framing,
                 "bytes: chunks as read (default); lines: one record per "
                 "line; length: [u32 little-endian length][payload] frames")
      ->check(CLI::IsMember({"bytes", "lines", "length"}));
  app.add_option("--chunk", o.chunk,
                 "bytes framing: largest record (default: capacity/8, at "
                 "least 4K, at most 1M and max record size)");
  app.add_flag("-w,--wait-consumer", o.wait_consumer,
               "On a full ring whose consumer is gone, wait for a new consumer "
               "instead of exiting 6");
  add_report_flags(app, o.report);
}

int run(const Options& o) {
  return run_endpoint(o.ring, o.report,
                      [&](Endpoint& ep) { return produce(o, ep); });
}

}  // namespace
}  // namespace shmring::tools

// CLI11 throws only on a malformed App definition: a bug, let it abort.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  using namespace shmring::tools;
  return tool_main<Options>(
      argc, argv, "shm-produce",
      "Copy stdin into a shmring ring, like cat across processes. Its exit is "
      "the consumer's end of stream.",
      add_flags, run);
}
