#include "ring/stream.h"

#include <time.h>

#include <atomic>
#include <chrono>
#include <optional>

#include "ring/internal/layout.h"
#include "ring/internal/segment_access.h"
#include "ring/internal/wait.h"
#include "ring/internal/wait_fd.h"

namespace shmring {
namespace {

// How often a reader waiting for a producer looks at producers_seen. No
// wake-up reaches a consumer when a producer attaches, so it polls, like
// shm-consume always did.
constexpr std::chrono::milliseconds kProducerPoll{20};

// Sleeps kProducerPoll, or less if a signal arrives (nanosleep returns
// EINTR; a handler calling shmring::interrupt() then makes this false).
bool nap() {
  if (interrupt_requested()) return false;
  struct timespec ts {};
  ts.tv_nsec = std::chrono::nanoseconds(kProducerPoll).count();
  ::nanosleep(&ts, nullptr);
  return !interrupt_requested();
}

}  // namespace

// The StreamReader's loads of the role counters are seq_cst
// (docs/design/liveness.md#streams-and-the-role-counters).

Result<StreamReader> StreamReader::attach(Segment& segment,
                                          StreamOptions options) {
  const layout::ControlBlock* cb = detail::control(segment);
  // Read before our own attach bumps consumers_seen.
  // seq_cst: pairs with the increments in ConsumerRole::take.
  const std::uint32_t consumers_before =
      cb->consumers_seen.load(std::memory_order_seq_cst);
  // seq_cst: pairs with the increment in ProducerRole::take.
  const std::uint32_t producers_before =
      cb->producers_seen.load(std::memory_order_seq_cst);
  // Between streams: an earlier consumer read a stream of an earlier
  // producer to its end (no producer attached, drained).
  // seq_cst (all three): a snapshot, not a proof (liveness.md, as above).
  const bool awaiting_stream =
      consumers_before > 0 && producers_before > 0 &&
      cb->producers_attached.load(std::memory_order_seq_cst) == 0 &&
      // A broadcast consumer starts at the tail: always drained.
      (segment.kind() == Kind::broadcast ||
       cb->head.load(std::memory_order_seq_cst) ==
           cb->tail.load(std::memory_order_seq_cst));
  const std::uint32_t stream_base =
      consumers_before == 0 ? 0 : producers_before;
  if (segment.kind() == Kind::broadcast) {
    auto s = Subscriber::attach(segment);
    if (!s) return s.error();
    return StreamReader(segment, Reader(std::move(s).value()), options,
                        producers_before, stream_base, awaiting_stream);
  }
  auto c = Consumer::attach(segment);
  if (!c) return c.error();
  return StreamReader(segment, Reader(std::move(c).value()), options,
                      producers_before, stream_base, awaiting_stream);
}

StreamReader::StreamReader(Segment& segment, Reader reader,
                           StreamOptions options,
                           std::uint32_t producers_before,
                           std::uint32_t stream_base, bool awaiting_stream)
    : segment_(&segment),
      reader_(std::move(reader)),
      options_(options),
      producers_before_(producers_before),
      stream_base_(stream_base),
      awaiting_stream_(awaiting_stream) {}

std::uint32_t StreamReader::producers_seen() const {
  // seq_cst: pairs with the increment in ProducerRole::take.
  return detail::control(*segment_)->producers_seen.load(
      std::memory_order_seq_cst);
}

std::uint32_t StreamReader::producers_missing() const {
  const std::uint32_t seen = producers_seen() - stream_base_;
  return seen >= options_.producers ? 0 : options_.producers - seen;
}

void StreamReader::release() {
  std::visit([](auto& r) { r.release(); }, reader_);
}

std::uint64_t StreamReader::corrupt_offset() const {
  return std::visit([](const auto& r) { return r.corrupt_offset(); }, reader_);
}

PeekedBatch StreamReader::peek_batch(std::span<Record> out, Timeout timeout) {
  // When this call's wait for a producer gives up; set at its first end of
  // stream.
  std::optional<Deadline> idle_deadline;
  for (;;) {
    const PeekedBatch b = std::visit(
        [&](auto& r) { return r.peek_batch(out, timeout); }, reader_);
    const Status st = b.status;
    if (st == Status::ok) {
      awaiting_stream_ = false;
      return b;
    }
    if (st != Status::closed && st != Status::peer_dead) {
      waiting_for_producer_ = false;
      return b;
    }
    // The end of a stream: is it the one this reader waits for?
    if (awaiting_producer()) {
      if (role().nothing_can_come()) {
        if (std::optional<PeekedBatch> b = last_look(out)) return *b;
        continue;  // a producer came and went: its stream's end
      }
      if (!idle_deadline) idle_deadline = Deadline::after(timeout);
      if (idle_deadline->passed()) {
        waiting_for_producer_ = true;
        return {Status::timed_out, {}};
      }
      if (!nap()) return {Status::interrupted, {}};
      continue;
    }
    if (!options_.follow) return b;
    awaiting_stream_ = true;
    producers_before_ = producers_seen();
    if (st == Status::peer_dead) return b;  // said once; the next call follows
  }
}

std::optional<PeekedBatch> StreamReader::last_look(std::span<Record> out) {
  // A producer that came (and left) before the removal was seen: its
  // records first; removed only if none came.
  const PeekedBatch b =
      std::visit([&](auto& r) { return r.try_peek_batch(out); }, reader_);
  if (b.status == Status::ok) {
    awaiting_stream_ = false;
    return b;
  }
  if (awaiting_producer()) return PeekedBatch{Status::removed, {}};
  return std::nullopt;
}

detail::ConsumerRole& StreamReader::role() {
  return std::visit([](auto& r) -> detail::ConsumerRole& { return r; },
                    reader_);
}

bool StreamReader::awaiting_producer() const {
  const bool new_stream = producers_seen() != producers_before_;
  return (awaiting_stream_ && !new_stream) || producers_missing() > 0;
}

PeekedBatch StreamReader::try_peek_batch(std::span<Record> out) {
  for (;;) {
    const PeekedBatch b =
        std::visit([&](auto& r) { return r.try_peek_batch(out); }, reader_);
    const Status st = b.status;
    if (st == Status::ok) {
      awaiting_stream_ = false;
      return b;
    }
    if (st != Status::closed && st != Status::peer_dead) return b;
    if (awaiting_producer()) {
      if (role().nothing_can_come()) {
        if (std::optional<PeekedBatch> b = last_look(out)) return *b;
        continue;  // a producer came and went: its stream's end
      }
      if (role().arm_while([&] { return awaiting_producer(); })) {
        return {Status::would_block, {}};
      }
      continue;  // a producer came meanwhile: look again
    }
    if (!options_.follow) return b;
    awaiting_stream_ = true;
    producers_before_ = producers_seen();
    if (st == Status::peer_dead) return b;  // said once; the next call follows
  }
}

Peeked StreamReader::try_peek() {
  Record rec;
  const PeekedBatch b = try_peek_batch({&rec, 1});
  return {b.status, b ? b.records[0] : Record{}};
}

Peeked StreamReader::peek(Timeout timeout) {
  Record rec;
  const PeekedBatch b = peek_batch({&rec, 1}, timeout);
  return {b.status, b ? b.records[0] : Record{}};
}

Result<int> StreamReader::wait_fd() {
  return std::visit([](auto& r) { return r.wait_fd(); }, reader_);
}

}  // namespace shmring
