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
      // A signal that cuts a write short (some bytes taken) returns a count,
      // not EINTR: the second one is seen here or never.
      if (signal_count() >= 2) return WriteResult::interrupted;
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

// Copies the ring's stream to stdout, batch by batch: each batch is
// released only after write(2) took all of it. StreamReader decides when
// the stream ends (--producers, --follow, a ring between streams); this
// says what each ending means for the user.
class Reader {
 public:
  Reader(const Options& o, Endpoint& ep, StreamReader& r)
      : o_(o),
        ep_(ep),
        r_(r),
        name_("ring " + hex_key(r.segment().key())),
        writer_(framing_from(o.framing)),
        timeout_(timeout_of(o.ring)),
        subscriber_(r.subscriber()),
        lossy_(subscriber_ != nullptr &&
               r.segment().overrun() == Overrun::drop_slow) {
    if (subscriber_) {  // the report always says what overruns took
      ep_.extra_stats["lost_bytes"] = 0;
      ep_.extra_stats["lost_records"] = 0;
    }
  }

  // The report's "end".
  std::string run() {
    std::uint64_t left =
        o_.count < 0 ? UINT64_MAX : static_cast<std::uint64_t>(o_.count);
    while (left > 0) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, left));
      const PeekedBatch b = peek(std::span(recs_.data(), want));
      const Status st = b.status;
      const std::size_t n = b.records.size();
      if (subscriber_) {
        ep_.extra_stats["lost_bytes"] = subscriber_->lost_bytes();
        ep_.extra_stats["lost_records"] = subscriber_->lost_records();
      }
      if (st == Status::overrun) continue;  // counted in lost_bytes()
      if (st == Status::ok && lossy_ && !copy_intact(n)) {
        continue;  // torn: dropped, counted as lost
      }
      if (st == Status::ok) {
        write_batch(n);
        left -= n;
      } else if (st == Status::closed) {
        return "end_of_stream";
      } else if (st == Status::peer_dead && o_.follow) {
        print_error("the producer of " + name_ + " died; following");
      } else {
        stream_failed(st);
      }
    }
    return "count";
  }

 private:
  PeekedBatch peek(std::span<Record> out) {
    return r_.peek_batch(out, timeout_);
  }

  void write_batch(std::size_t n) {
    const WriteResult w = writer_.write(recs_.data(), n);
    if (w == WriteResult::failed) {
      const int err = errno;
      fail(kExitBrokenOutput, "writing stdout: " + errno_text(err) + "; " +
                                  std::to_string(n) +
                                  " unwritten records stay in " + name_ +
                                  " for the next consumer");
    }
    if (w == WriteResult::interrupted) {
      fail(Status::interrupted, signal_text() + " twice while writing; " +
                                    std::to_string(n) + " records stay in " +
                                    name_);
    }
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) bytes += writer_.out_size(recs_[i]);
    r_.release();  // only now: everything in the batch reached stdout
    ep_.counters.add(n, bytes);
    if (caught_signal() != 0) fail(Status::interrupted, signal_text());
  }

  [[noreturn]] void stream_failed(Status st) {
    switch (st) {
      case Status::removed:
        // A producer still attached may finish its stream; StreamReader
        // says removed only when none is.
        ep_.failure_end = "ring_removed";
        fail(st, std::string(to_string(st)) + ": " + name_ +
                     " (a new ring under the same key is another ring); see "
                     "docs/hardening.md, \"Where rings vanish\"");
      case Status::peer_dead:
        ep_.failure_end = "producer_died";
        fail(st, "the producer of " + name_ +
                     " died before closing the stream; everything it "
                     "committed was written");
      case Status::timed_out:
        fail(st, "timed out after " + seconds_text(o_.ring.timeout) +
                     " waiting for " + awaited() + " on " + name_);
      case Status::interrupted:
        fail(st, signal_text());
      case Status::corrupt:
        fail(st, name_ + " is corrupt at offset " +
                     std::to_string(r_.corrupt_offset()) +
                     "; remove it with `shm-ring rm`");
      default:
        fail(kExitInternal,
             std::string("unexpected ring status: ") + to_string(st));
    }
  }

  // What a timeout waited for.
  std::string awaited() const {
    if (!r_.waiting_for_producer()) return "data";
    const std::uint32_t missing = r_.producers_missing();
    if (missing == 0) return "a producer";
    return std::to_string(missing) + " more of the " +
           std::to_string(o_.producers) + " producers (--producers)";
  }

  // A drop-slow broadcast ring's producer may overwrite a record while we
  // read it: copy the batch out, check that it is intact, and only then
  // write it (a torn record is never written). False if it was torn.
  bool copy_intact(std::size_t n) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) total += recs_[i].size;
    copy_.resize(total);
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (recs_[i].size != 0) {
        std::memcpy(copy_.data() + at, recs_[i].data, recs_[i].size);
      }
      recs_[i].data = copy_.data() + at;
      at += recs_[i].size;
    }
    return subscriber_->intact();
  }

  const Options& o_;
  Endpoint& ep_;
  StreamReader& r_;
  const std::string name_;
  Writer writer_;
  const Timeout timeout_;
  std::array<Record, kBatch> recs_;
  Subscriber* const subscriber_;  // broadcast rings; else nullptr
  const bool lossy_;              // drop-slow: copy_intact() every batch
  std::vector<std::byte> copy_;   // copy_intact()'s copy
};

std::string consume(const Options& o, Endpoint& ep) {
  Segment& seg = ep.open();
  StreamOptions so;
  so.producers = o.producers;
  so.follow = o.follow;
  auto r = StreamReader::attach(seg, so);
  if (!r) fail(r.error());
  // Only a consumer that got its role changes the ring on its way out.
  RemoveOnExit remover(seg, o.ring.remove_on_exit);
  Progress progress(o.report, ep.counters, seg);
  return Reader(o, ep, *r).run();
}

void add_flags(CLI::App& app, Options& o) {
  add_endpoint_flags(app, o.ring);
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
}

int run(const Options& o) {
  return run_endpoint(o.ring, o.report,
                      [&](Endpoint& ep) { return consume(o, ep); });
}

}  // namespace
}  // namespace shmring::tools

// CLI11 throws only on a malformed App definition: a bug, let it abort.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  using namespace shmring::tools;
  return tool_main<Options>(
      argc, argv, "shm-consume",
      "Copy records from a shmring ring to stdout, like cat across processes. "
      "Exits 0 at end of stream (every producer closed, ring drained).",
      add_flags, run);
}
