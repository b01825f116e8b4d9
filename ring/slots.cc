// The fixed-slot kind (Kind::slots): attach, and the slow paths behind the
// inline slot fast paths in ring/internal/handles.h (a full or empty ring, end
// of stream, corruption, waiting). Roles, liveness, reaping and end of stream
// are the record rings' own (roles.cc): a slots ring is an SPSC ring whose data
// ring is an array of elements. Ordering: docs/design/slots.md#data-path.
// The wake-up handshake: a seq_cst load below that is "the re-check" of
// data_ready or space_ready is the waiter's half of the Dekker pair whose
// proof is written once, in docs/design/ordering.md#the-wake-up-handshake and
// WaitPoint::publish (ring/internal/wait.h); the comments here only say which
// pair.
#include <optional>
#include <string>

#include "ring/internal/roles.h"
#include "ring/internal/segment_access.h"
#include "ring/internal/wait_fd.h"
#include "ring/internal/wait_loop.h"
#include "ring/names.h"
#include "ring/queue.h"
#include "ring/ring.h"

namespace shmring {

using detail::wait_loop;

namespace {

// Errc::wrong_kind unless `seg` is a slots ring of `element_size` bytes.
std::optional<Error> check_slots(const Segment& seg, std::size_t element_size,
                                 const char* role) {
  if (seg.kind() != Kind::slots) {
    return Error{Errc::wrong_kind,
                 std::string("ring ") + hex_key(seg.key()) + " is a " +
                     kind_name(seg.kind()) +
                     " ring, not a slots ring: " + role +
                     "<T> takes fixed-size elements of a slots ring; "
                     "use Producer/Consumer (or Subscriber) for records"};
  }
  if (seg.slot_size() != element_size) {
    return Error{Errc::wrong_kind,
                 "ring " + hex_key(seg.key()) + " holds " +
                     std::to_string(seg.slot_size()) + "-byte elements, but " +
                     role +
                     "<T> has sizeof(T) = " + std::to_string(element_size) +
                     " (create the ring with slot_size = sizeof(T))"};
  }
  return std::nullopt;
}

// The Segment's validated copies (a peer may rewrite the header).
detail::SlotCursor cursor_of(const Segment& seg) {
  std::byte* data = detail::ring_data(seg);
  return {.at = data,
          .begin = data,
          .end = data + seg.slot_count() * seg.slot_size(),
          .count = seg.slot_count(),
          .size = seg.slot_size()};
}

}  // namespace

Error detail::records_on_slots(const Segment& seg) {
  return Error{Errc::wrong_kind,
               "ring " + hex_key(seg.key()) + " is a slots ring (fixed " +
                   std::to_string(seg.slot_size()) +
                   "-byte elements, no records): use QueueWriter<T> / "
                   "QueueReader<T> (ring/queue.h) with sizeof(T) = " +
                   std::to_string(seg.slot_size()) +
                   ", or a spsc/mpsc ring for records"};
}

namespace detail {

// ================================ writer ===================================

Result<SlotWriter> SlotWriter::attach(Segment& segment,
                                      std::size_t element_size,
                                      ProducerOptions options) {
  if (auto e = check_slots(segment, element_size, "QueueWriter")) return *e;
  auto g = take(segment);
  if (!g) return g.error();
  return SlotWriter(segment, *g, options);
}

SlotWriter::SlotWriter(Segment& segment, const Grant& grant,
                       ProducerOptions options)
    : ProducerRole(segment, grant, options), slots_(cursor_of(segment)) {
  // acquire: pairs with the head store in SlotReader::release; head first
  // (docs/design/ordering.md#a-new-handle-resumes).
  cached_head_ = cb_->head.load(std::memory_order_acquire);
  // acquire: pairs with the previous writer's tail store (SlotWriter::publish)
  tail_ = cb_->tail.load(std::memory_order_acquire);
  // A pair no correct ring has is a peer's scribble.
  broken_ = !layout::slot_positions_sane(cached_head_, tail_, slots_.count);
  room_ = broken_ ? 0 : slots_.count;
  slots_.seek(tail_);  // where the previous writer stopped
}

SlotRef SlotWriter::claim_slow() {
  if (closed_) return {Status::closed, nullptr};
  if (broken_) return {Status::corrupt, nullptr};
  // seq_cst: space_ready re-check; pairs with SlotReader::release.
  cached_head_ = cb_->head.load(std::memory_order_seq_cst);
  if (!layout::slot_positions_sane(cached_head_, tail_, slots_.count)) {
    broken_ = true;
    room_ = 0;
    return {Status::corrupt, nullptr};
  }
  if (tail_ - cached_head_ < slots_.count) return {Status::ok, slots_.at};
  return {Status::would_block, nullptr};  // full
}

Status SlotWriter::wait(Timeout timeout) {
  if (closed_) return Status::closed;
  return wait_loop<SlotRef>(
             space_ready_, timeout, [&] { return try_claim(); },
             [&] { return consumer_role_status(); })
      .status;
}

void SlotWriter::close() {
  if (closed_) return;
  closed_ = true;
  room_ = 0;                         // the fast path now fails: closed
  if (!owns_registration()) return;  // inherited through fork()
  leave();
}

// ================================ reader ===================================

Result<SlotReader> SlotReader::attach(Segment& segment,
                                      std::size_t element_size) {
  if (auto e = check_slots(segment, element_size, "QueueReader")) return *e;
  auto t = take(segment);
  if (!t) return t.error();
  return SlotReader(segment, *t);
}

SlotReader::SlotReader(Segment& segment, ProcessToken token)
    : ConsumerRole(segment, token), slots_(cursor_of(segment)) {
  // acquire: pairs with the previous reader's head store (SlotReader::release)
  head_ = tail_ = cb_->head.load(std::memory_order_acquire);
  slots_.seek(head_);
  room_ = slots_.count;
}

SlotRef SlotReader::scan() {
  if (closed_) return {Status::closed, nullptr};
  for (int pass = 0; pass < 2; ++pass) {
    // seq_cst: data_ready re-check; pairs with SlotWriter::publish.
    // Validated before it is cached.
    const std::uint64_t t = cb_->tail.load(std::memory_order_seq_cst);
    if (!layout::slot_positions_sane(head_, t, slots_.count)) {
      corrupt_at_ = static_cast<std::uint64_t>(slots_.at - data_);
      return {Status::corrupt, nullptr};
    }
    tail_ = t;
    if (t != head_) return {Status::ok, slots_.at};
    if (pass == 1) break;
    // Empty: has the stream ended? would_block while a writer may still
    // publish; once every one has left, its last tail store came before
    // its slot was freed (seq_cst CAS), so the second load sees the final
    // tail.
    const Status s = producers_gone();
    if (s != Status::ok) return {s, nullptr};
  }
  return {how_stream_ended(), nullptr};
}

SlotRef SlotReader::get_slow() {
  return scan_and_arm([&] { return scan(); });
}

Status SlotReader::wait(Timeout timeout) {
  if (closed_) return Status::closed;
  // Between sleeps, reap dead writers so end of stream (peer_dead)
  // follows a kill -9 within about one slice.
  return wait_loop<SlotRef>(
             data_ready_, timeout, [&] { return try_get(); },
             [&] {
               reap_now();
               return Status::ok;
             })
      .status;
}

void SlotReader::close() {
  const bool ours = begin_close();
  tail_ = head_;  // the fast path now fails: closed
  room_ = 0;      // and so does its reload
  if (ours) leave();
}

std::uint64_t SlotReader::size_guess() const {
  // relaxed: a guess for progress displays.
  const std::uint64_t t = cb_->tail.load(std::memory_order_relaxed);
  return t - head_ <= slots_.count ? (t - head_) * slots_.size : 0;
}

}  // namespace detail
}  // namespace shmring
