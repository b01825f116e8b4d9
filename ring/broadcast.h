// Subscriber: one of up to max_consumers readers of a broadcast ring, each
// of which sees every record the ring's Producer writes (ring/ring.h). The
// subscriber holds a cursor of its own; the producer's space is the
// slowest live cursor (Overrun::wait) or it never waits (Overrun::drop_slow,
// where a lapped subscriber loses records and counts them here).
//
//   auto s = Subscriber::attach(segment);
//   for (;;) {
//     auto p = s->peek();
//     if (p.status == Status::overrun) continue;  // lost_records() grew
//     if (!p) break;                              // closed, peer_dead, ...
//     use(p.record.bytes());                      // drop-slow: copy it out,
//     if (s->intact()) commit_use();              // then check it
//     s->release();
//   }
#pragma once

#include <cstdint>

#include "ring/internal/handles.h"  // the engine and inline fast paths
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring {

// The record calls (try_peek / peek, batches, release, read, wait_fd,
// close) are Consumer's (detail::RecordReader). On a drop-slow ring a peek
// may also return Status::overrun (no record): the producer lapped this
// subscriber; the loss is counted and the next peek delivers the oldest
// intact record.
class Subscriber : public detail::RecordReader {
 public:
  // Takes a free cursor of a broadcast ring (a dead subscriber's is taken
  // over); the subscriber starts at the producer's tail: it sees what is
  // committed after it attached. Errc::role_taken if every cursor is held
  // by a live subscriber; Errc::wrong_kind on any other kind.
  static Result<Subscriber> attach(Segment& segment);

  Subscriber(Subscriber&&) noexcept = default;
  Subscriber& operator=(Subscriber&&) = delete;

  // The cursor this subscriber holds (0 .. max_consumers - 1).
  int cursor() const { return cursor_index(); }

  // Overrun::drop_slow: a peeked record may be overwritten while it is
  // read. Call intact() after reading the records peeked since the last
  // intact() (or release()) and before using what was read. true: they
  // were intact while read and count as delivered. false: some were torn;
  // they are dropped (counted as lost at the next peek, which returns
  // overrun). release() checks records intact() has not vouched for, so a
  // torn record is never counted as delivered. Always true on a wait ring.
  [[nodiscard]] bool intact() { return !lossy_ || intact_lossy(); }
  // Payload bytes and records the producer committed that this subscriber
  // never delivered (drop-slow; 0 on a wait ring).
  std::uint64_t lost_bytes() const { return RecordReader::lost_bytes(); }
  std::uint64_t lost_records() const { return RecordReader::lost_records(); }

 private:
  explicit Subscriber(RecordReader&& r) : RecordReader(std::move(r)) {}
};

}  // namespace shmring
