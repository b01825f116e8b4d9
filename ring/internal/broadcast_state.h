// A broadcast ring's per-handle state (not API): the producer's cursor
// scan and drop-slow accounting (FanOut, held by Producer), and a
// subscriber's cursor and loss accounting (CursorState, held by the
// RecordReader behind Subscriber). The protocol: docs/design/broadcast.md.
#pragma once

#include <cstdint>

#include "ring/internal/layout.h"
#include "ring/internal/wait.h"

namespace shmring::detail {

// A record boundary with the payload bytes and records committed before
// it, cumulative since the ring was created.
struct Snapshot {
  std::uint64_t pos = 0;
  std::uint64_t payload = 0;
  std::uint64_t records = 0;
};

struct FanOut {
  layout::BroadcastBlock* bb;
  std::uint32_t max_consumers;  // cursors to scan (validated snapshot)
  std::uint32_t full_polls = 0;
  Clock::time_point last_reap{};
  // Overrun::drop_slow: the producer never waits. `counted`: a published
  // record boundary; `oldest`: the first record not yet overwritten.
  bool lossy;
  Snapshot counted;
  Snapshot oldest;
  // The highest tail intent announced on this ring (ours, or at attach a
  // predecessor's that fits our tail): what we store never goes below it.
  std::uint64_t intent = 0;
};

struct CursorState {
  layout::BroadcastBlock* bb;
  int index;  // our cursor, 0 .. max_consumers - 1
  // Overrun::drop_slow: the producers' tail as last seen (the reader's
  // cached tail stays at its read position so the inline fast path always
  // defers to the slow one), the end of the records intact() has vouched
  // for (`valid`, between head and read), payload bytes and records
  // committed before read and before valid, and what was lost.
  std::uint64_t lossy_tail = 0;
  std::uint64_t valid = 0;
  std::uint64_t payload_before_read = 0;
  std::uint64_t records_before_read = 0;
  std::uint64_t payload_at_valid = 0;
  std::uint64_t records_at_valid = 0;
  std::uint64_t lost_bytes = 0;
  std::uint64_t lost_records = 0;
};

}  // namespace shmring::detail
