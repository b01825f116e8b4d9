// shm-consume: ring -> stdout. Writes each record straight from the ring
// (the one copy is the kernel's, into the pipe or file), releases a batch
// only after write(2) took all of it, and exits 0 at end of stream.
// See docs/tools.md.
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "tools/cli.h"
#include "tools/framing.h"
#include "tools/stats.h"

namespace shmring::tools {
namespace {

struct Options {
  RingFlags ring;
  ReportFlags report;
  std::string framing = "auto";
  std::int64_t count = -1;
  bool follow = false;
  std::uint32_t producers = 0;  // --producers: 0 = any
};

constexpr std::size_t kBatch = 256;  // records per peek_batch/writev/release
static_assert(2 * kBatch <= IOV_MAX);

enum class WriteResult { ok, failed, interrupted };

// Writes every iovec, retrying short writes, EINTR (a first terminating
// signal lets the batch finish, so what was written can be released) and
// EAGAIN (a non-blocking stdout). A second signal abandons the batch.
WriteResult write_all(iovec* iov, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::writev(STDOUT_FILENO, iov, static_cast<int>(n));
    if (w < 0) {
      if (errno == EINTR) {
        if (signal_count() >= 2) return WriteResult::interrupted;
        continue;
      }
      if (errno == EAGAIN) {
        struct pollfd pfd {
          STDOUT_FILENO, POLLOUT, 0
        };
        (void)::poll(&pfd, 1, 100);
        if (signal_count() >= 2) return WriteResult::interrupted;
        continue;
      }
      return WriteResult::failed;
    }
    auto left = static_cast<std::size_t>(w);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return WriteResult::ok;
}

class Writer {
 public:
  explicit Writer(Framing f) : framing_(f), iov_{}, prefix_{} {}

  // Writes records [0, n) in one writev (two iovecs per record at most).
  WriteResult write(const Record* recs, std::size_t n) {
    static char newline = '\n';
    std::size_t k = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const Record& r = recs[i];
      auto* data = const_cast<std::byte*>(r.data);
      switch (mode(r.type)) {
        case Mode::frame:
          prefix_[i] = le32(r.size);
          iov_[k++] = {&prefix_[i], 4};
          iov_[k++] = {data, r.size};
          break;
        case Mode::line:
          iov_[k++] = {data, r.size};
          iov_[k++] = {&newline, 1};
          break;
        case Mode::raw:
          if (r.size != 0) iov_[k++] = {data, r.size};
          break;
      }
    }
    return write_all(iov_.data(), k);
  }

  // Bytes a record becomes on stdout.
  std::uint64_t out_size(const Record& r) const {
    switch (mode(r.type)) {
      case Mode::frame:
        return r.size + 4ULL;
      case Mode::line:
        return r.size + 1ULL;
      case Mode::raw:
        return r.size;
    }
    return r.size;
  }

 private:
  enum class Mode { raw, line, frame };

  Mode mode(std::uint16_t type) const {
    switch (framing_) {
      case Framing::bytes:
        return Mode::raw;
      case Framing::length:
        return Mode::frame;
      case Framing::lines:
        return type == kTypePartialLine ? Mode::raw : Mode::line;
      case Framing::automatic:
        break;
    }
    if (type == kTypeLine) return Mode::line;
    if (type == kTypeFrame) return Mode::frame;
    return Mode::raw;
  }

  static std::array<std::byte, 4> le32(std::uint32_t v) {
    return {std::byte(v & 0xff), std::byte((v >> 8) & 0xff),
            std::byte((v >> 16) & 0xff), std::byte(v >> 24)};
  }

  Framing framing_;
  std::array<iovec, 2 * kBatch> iov_;
  std::array<std::array<std::byte, 4>, kBatch> prefix_;
};

int consume(const Options& o) {
  install_signal_handlers();
  Counters counters;
  const auto start = std::chrono::steady_clock::now();
  std::optional<OpenedRing> ring;
  int code = kExitOk;
  std::string end = "end_of_stream";
  // Broadcast rings: payload bytes and records overruns took (drop-slow).
  std::uint64_t lost_bytes = 0;
  std::optional<std::uint64_t> lost_records;
  try {
    ring.emplace(open_ring(o.ring));
    Segment& seg = ring->segment;
    const std::string name = "ring " + hex_key(seg.key());
    const auto* cb = seg.control();

    // Between streams: a ring whose last stream was already read to its
    // end by an earlier consumer (drained, no producer attached). Like a
    // reader opening a FIFO, wait for the next producer rather than report
    // that old end of stream again. All seq_cst: pairs with the
    // producers' attach/close updates (ring.cc, end_status()).
    const std::uint32_t consumers_before =
        cb->consumers_seen.load(std::memory_order_seq_cst);
    std::uint32_t producers_before =
        cb->producers_seen.load(std::memory_order_seq_cst);
    bool awaiting_stream =
        consumers_before > 0 && producers_before > 0 &&
        cb->producers_attached.load(std::memory_order_seq_cst) == 0 &&
        // A broadcast consumer starts at the tail: always drained.
        (seg.kind() == Kind::broadcast ||
         cb->head.load(std::memory_order_seq_cst) ==
             cb->tail.load(std::memory_order_seq_cst));

    // --producers N: the stream needs N producers. They are counted from
    // the ring's creation on a ring no consumer has read yet (producers may
    // start first), else from this consumer's attach.
    const std::uint32_t stream_base = consumers_before == 0 ? 0 : producers_before;
    auto producers_missing = [&]() -> std::uint32_t {
      // seq_cst: like producers_before above, pairs with the increment in
      // Producer::attach (ring.cc).
      const std::uint32_t seen =
          cb->producers_seen.load(std::memory_order_seq_cst) - stream_base;
      return seen >= o.producers ? 0 : o.producers - seen;
    };

    auto c = Consumer::attach(seg);
    if (!c) fail(c.error());
    // Only a consumer that got its role changes the ring on its way out.
    RemoveOnExit remover(seg, o.ring.remove_on_exit);
    Progress progress(o.report, counters, seg);
    Writer writer(framing_from(o.framing));
    const Timeout timeout = timeout_of(o.ring);
    std::optional<Deadline> idle;  // while waiting for a new stream
    std::uint64_t left =
        o.count < 0 ? UINT64_MAX : static_cast<std::uint64_t>(o.count);
    std::array<Record, kBatch> recs;
    // A drop-slow broadcast ring's producer may overwrite a record while
    // we read it: copy the batch out, check it is intact, only then write
    // it (a torn record is never written).
    const bool lossy = seg.kind() == Kind::broadcast &&
                       seg.overrun() == Overrun::drop_slow;
    std::vector<std::byte> copy;

    while (left > 0) {
      std::size_t n = 0;
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, left));
      const Status st =
          c->peek_batch(std::span(recs.data(), want), &n, timeout);
      if (seg.kind() == Kind::broadcast) {
        lost_bytes = c->lost_bytes();
        lost_records = c->lost_records();
      }
      if (st == Status::overrun) continue;  // counted in lost_bytes()
      if (st == Status::ok && lossy) {
        std::size_t total = 0;
        for (std::size_t i = 0; i < n; ++i) total += recs[i].size;
        copy.resize(total);
        std::size_t at = 0;
        for (std::size_t i = 0; i < n; ++i) {
          if (recs[i].size != 0) {
            std::memcpy(copy.data() + at, recs[i].data, recs[i].size);
          }
          recs[i].data = copy.data() + at;
          at += recs[i].size;
        }
        if (!c->intact()) continue;  // torn: dropped, counted as lost
      }
      if (st == Status::ok) {
        awaiting_stream = false;
        idle.reset();
        const WriteResult w = writer.write(recs.data(), n);
        if (w == WriteResult::failed) {
          const int err = errno;
          fail(kExitBrokenOutput, "writing stdout: " + errno_text(err) + "; " +
                                      std::to_string(n) +
                                      " unwritten records stay in " + name +
                                      " for the next consumer");
        }
        if (w == WriteResult::interrupted) {
          fail(signal_exit_code(), signal_text() + " twice while writing; " +
                                       std::to_string(n) + " records stay in " +
                                       name);
        }
        std::uint64_t bytes = 0;
        for (std::size_t i = 0; i < n; ++i) bytes += writer.out_size(recs[i]);
        c->release();  // only now: everything in the batch reached stdout
        counters.add(n, bytes);
        left -= n;
        if (caught_signal() != 0) fail(signal_exit_code(), signal_text());
        continue;
      }
      if (st == Status::closed || st == Status::peer_dead) {
        const bool new_stream =
            cb->producers_seen.load(std::memory_order_seq_cst) !=
            producers_before;
        const std::uint32_t missing = producers_missing();
        if ((awaiting_stream && !new_stream) || missing > 0) {
          if (!idle) idle.emplace(timeout);
          if (idle->passed()) {
            end = "timeout";
            fail(kExitTimeout,
                 "timed out after " + seconds_text(o.ring.timeout) +
                     " waiting for " +
                     (missing > 0 ? std::to_string(missing) + " more of the " +
                                        std::to_string(o.producers) +
                                        " producers (--producers)"
                                  : std::string("a producer")) +
                     " on " + name);
          }
          if (!nap(std::chrono::milliseconds(20))) {
            fail(signal_exit_code(), signal_text());
          }
          continue;
        }
        if (st == Status::peer_dead) {
          if (!o.follow) {
            end = "producer_died";
            fail(kExitPeerDead,
                 "the producer of " + name +
                     " died before closing the stream; everything it "
                     "committed was written");
          }
          print_error("the producer of " + name + " died; following");
        }
        if (!o.follow) break;  // end of stream
        awaiting_stream = true;
        producers_before = cb->producers_seen.load(std::memory_order_seq_cst);
        continue;
      }
      switch (st) {
        case Status::timed_out:
          end = "timeout";
          fail(kExitTimeout, "timed out after " + seconds_text(o.ring.timeout) +
                                 " waiting for data on " + name);
        case Status::interrupted:
          fail(signal_exit_code(), signal_text());
        case Status::corrupt:
          fail(kExitCorrupt, name + " is corrupt at offset " +
                                 std::to_string(c->corrupt_offset()) +
                                 "; remove it with `shm-ring rm`");
        default:
          fail(kExitInternal,
               std::string("unexpected ring status: ") + to_string(st));
      }
    }
    end = left == 0 ? "count" : "end_of_stream";
  } catch (const Failure& f) {
    print_error(f.what());
    code = f.code;
    if (end == "end_of_stream") end = "error";
  }
  nlohmann::json stats =
      stats_json(counters, ring ? &ring->segment : nullptr, start, code, end);
  if (lost_records) {  // a broadcast ring: what overruns took
    stats["lost_bytes"] = lost_bytes;
    stats["lost_records"] = *lost_records;
  }
  write_stats(o.report, stats);
  return code;
}

}  // namespace
}  // namespace shmring::tools

// CLI11 throws only on a malformed App definition: a bug, let it abort.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  using namespace shmring::tools;
  Options o;  // outlives the App, whose options point into it
  CLI::App app{
      "Copy records from a shmring ring to stdout, like cat across processes. "
      "Exits 0 at end of stream (every producer closed, ring drained).",
      "shm-consume"};
  set_common(app);
  add_create_flags(app, o.ring);
  add_lifetime_flags(app, o.ring);
  app.add_option("-f,--framing", o.framing,
                 "auto (default): as each producer framed it; bytes: payloads "
                 "as is; lines: each record plus '\\n'; length: [u32 "
                 "little-endian length][payload]")
      ->check(CLI::IsMember({"auto", "bytes", "lines", "length"}));
  app.add_option("-n,--count", o.count, "Stop after N records")
      ->check(kNonNegative);
  app.add_flag("-F,--follow", o.follow,
               "At end of stream keep waiting for the next producer (like "
               "tail -f); stop with Ctrl-C");
  app.add_option("--producers", o.producers,
                 "End of stream needs N producers: wait until N have "
                 "attached (and all have closed), e.g. for N concurrent "
                 "MPSC producers that may start late")
      ->check(CLI::Range(1u, 1000000u))
      ->excludes("--follow");
  add_report_flags(app, o.report);
  return run_tool(app, argc, argv, [&] { return consume(o); });
}
