// Queue<T>: typed elements for trivially copyable T, over the one library.
//
// On a fixed-slot ring (Kind::slots, created with slot_size = sizeof(T)) an
// element is a bare T in a slot: the data path is rigtorp/SPSCQueue's (the
// producer copies into slot[tail mod n] and stores tail with release; the
// consumer copies out and stores head with release; each keeps a cached
// copy of the other's index and reloads it only when the ring looks full /
// empty), plus the ring's wake-up check (WaitPoint::publish: two relaxed
// loads). No record header, no out-of-line call per element.
//
// On a record ring (spsc, mpsc) Queue<T> still works: one record of
// sizeof(T) bytes per element (16 bytes for an 8-byte T), through
// Producer::try_reserve/commit and Consumer::try_peek/release.
//
// Either way the handles underneath are a Producer and a Consumer: roles,
// liveness, reaping of dead peers, end of stream (closed / peer_dead),
// blocking waits (spin, then futex) and Consumer::wait_fd() are theirs.
//
//   auto seg = Segment::create(key, {.kind = Kind::slots, .capacity = 1 << 20,
//                                    .slot_size = sizeof(Tick)});
//   auto w = QueueWriter<Tick>::attach(*seg);   // wrong_kind if the ring's
//   Status s = w->push(tick);                   // elements are not a Tick
#pragma once

#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "ring/ring.h"

namespace shmring {

namespace detail {
inline Error element_size_error(const char* who, const Segment& seg,
                                std::size_t size) {
  return Error{Errc::wrong_kind,
               std::string(who) + ": this slots ring holds " +
                   std::to_string(seg.slot_size()) + "-byte elements, but " +
                   who + "<T> has sizeof(T) = " + std::to_string(size) +
                   " (create the ring with slot_size = sizeof(T))"};
}
}  // namespace detail

template <class T>
class QueueWriter {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  // Takes the producer role on `segment` (Producer::attach_slots on a
  // slots ring, Producer::attach on a record ring). Errc::wrong_kind if
  // the slots ring's element size is not sizeof(T); the role errors of
  // Producer::attach otherwise.
  static Result<QueueWriter> attach(Segment& segment,
                                    ProducerOptions options = {}) {
    if (segment.kind() == Kind::slots && segment.slot_size() != sizeof(T)) {
      return detail::element_size_error("QueueWriter", segment, sizeof(T));
    }
    auto p = segment.kind() == Kind::slots
                 ? Producer::attach_slots(segment, sizeof(T), options)
                 : Producer::attach(segment, options);
    if (!p) return p.error();
    return QueueWriter(std::move(p).value());
  }

  // A view of a producer attached elsewhere (the caller keeps it alive).
  // On a slots producer whose element size is not sizeof(T) every push
  // returns Status::too_large: use attach() to have that refused up front.
  explicit QueueWriter(Producer& producer) : p_(&producer) { set_mode(); }

  QueueWriter(QueueWriter&& o) noexcept
      : own_(std::move(o.own_)),
        p_(own_ ? &*own_ : o.p_),
        mode_(o.mode_) {}
  QueueWriter& operator=(QueueWriter&&) = delete;

  Producer& producer() const { return *p_; }
  // Detaches (the last producer to close ends the stream). A view's close
  // closes the viewed producer.
  void close() { p_->close(); }

  // Inline. Slots: a cached-head compare, a sizeof(T) copy and the release
  // store of tail (no RMW, no fence). Records: try_reserve's fast path, the
  // copy and commit's release store.
  [[nodiscard]] Status try_push(const T& v) {
    if (mode_ == Mode::slots) {
      Status why;
      std::byte* s = p_->try_claim_slot(&why);
      if (s == nullptr) return why;
      std::memcpy(s, &v, sizeof(T));
      p_->publish_slot();
      return Status::ok;
    }
    if (mode_ == Mode::mismatch) return Status::too_large;
    Reservation r = p_->try_reserve(sizeof(T));
    if (!r) return r.status;
    std::memcpy(r.bytes.data(), &v, sizeof(T));
    p_->commit(sizeof(T));
    return Status::ok;
  }

  // Blocks while the ring is full (spin, then sleep), like reserve().
  [[nodiscard]] Status push(const T& v, Timeout timeout = kForever) {
    if (mode_ == Mode::slots) {
      for (;;) {
        Status why;
        if (std::byte* s = p_->try_claim_slot(&why)) {
          std::memcpy(s, &v, sizeof(T));
          p_->publish_slot();
          return Status::ok;
        }
        if (why != Status::would_block) return why;
        // ok once a slot is free: we are the only producer, so the claim
        // above then succeeds.
        why = p_->wait_slot(timeout);
        if (why != Status::ok) return why;
      }
    }
    if (mode_ == Mode::mismatch) return Status::too_large;
    Reservation r = p_->try_reserve(sizeof(T));
    if (!r) {
      if (r.status != Status::would_block) return r.status;
      r = p_->reserve(sizeof(T), timeout);
      if (!r) return r.status;
    }
    std::memcpy(r.bytes.data(), &v, sizeof(T));
    p_->commit(sizeof(T));
    return Status::ok;
  }

 private:
  enum class Mode { records, slots, mismatch };
  explicit QueueWriter(Producer&& owned)
      : own_(std::move(owned)), p_(&*own_) {
    set_mode();
  }
  void set_mode() {
    if (p_->slot_size() == 0) {
      mode_ = Mode::records;
    } else {
      mode_ = p_->slot_size() == sizeof(T) ? Mode::slots : Mode::mismatch;
    }
  }

  std::optional<Producer> own_;
  Producer* p_;
  Mode mode_ = Mode::records;
};

template <class T>
class QueueReader {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  // Takes the consumer role on `segment` (Consumer::attach_slots on a
  // slots ring, Consumer::attach on a record ring). Errc::wrong_kind if the
  // slots ring's element size is not sizeof(T).
  static Result<QueueReader> attach(Segment& segment) {
    if (segment.kind() == Kind::slots && segment.slot_size() != sizeof(T)) {
      return detail::element_size_error("QueueReader", segment, sizeof(T));
    }
    auto c = segment.kind() == Kind::slots
                 ? Consumer::attach_slots(segment, sizeof(T))
                 : Consumer::attach(segment);
    if (!c) return c.error();
    return QueueReader(std::move(c).value());
  }

  // A view of a consumer attached elsewhere (see QueueWriter's).
  explicit QueueReader(Consumer& consumer) : c_(&consumer) { set_mode(); }

  QueueReader(QueueReader&& o) noexcept
      : own_(std::move(o.own_)),
        c_(own_ ? &*own_ : o.c_),
        mode_(o.mode_) {}
  QueueReader& operator=(QueueReader&&) = delete;

  Consumer& consumer() const { return *c_; }
  void close() { c_->close(); }

  // ok with *out filled, or why not (would_block, closed, peer_dead, ...).
  // Records: a record of the wrong size is corrupt. On a drop-slow
  // broadcast ring: overrun when the producer lapped this reader, the
  // element being copied included (a torn copy is never ok); the lost
  // elements are counted in consumer().lost_records().
  [[nodiscard]] Status try_pop(T* out) {
    if (mode_ == Mode::slots) {
      Status why;
      const std::byte* s = c_->try_slot(&why);
      if (s == nullptr) return why;
      std::memcpy(out, s, sizeof(T));
      c_->release_slot();
      return Status::ok;
    }
    if (mode_ == Mode::mismatch) return Status::too_large;
    return finish(c_->try_peek(), out);
  }

  // Blocks while the ring is empty (spin, then sleep), like peek().
  [[nodiscard]] Status pop(T* out, Timeout timeout = kForever) {
    if (mode_ == Mode::slots) {
      for (;;) {
        Status why;
        if (const std::byte* s = c_->try_slot(&why)) {
          std::memcpy(out, s, sizeof(T));
          c_->release_slot();
          return Status::ok;
        }
        if (why != Status::would_block) return why;
        // ok once an element is there (we are the only consumer).
        why = c_->wait_slot(timeout);
        if (why != Status::ok) return why;
      }
    }
    if (mode_ == Mode::mismatch) return Status::too_large;
    Peeked p = c_->try_peek();
    if (p.status == Status::would_block) p = c_->peek(timeout);
    return finish(p, out);
  }

 private:
  enum class Mode { records, slots, mismatch };
  explicit QueueReader(Consumer&& owned) : own_(std::move(owned)), c_(&*own_) {
    set_mode();
  }
  void set_mode() {
    if (c_->slot_size() == 0) {
      mode_ = Mode::records;
    } else {
      mode_ = c_->slot_size() == sizeof(T) ? Mode::slots : Mode::mismatch;
    }
  }
  Status finish(const Peeked& p, T* out) {
    if (!p) return p.status;
    if (p.record.size != sizeof(T)) return Status::corrupt;
    std::memcpy(out, p.record.data, sizeof(T));
    if (!c_->intact()) {
      // Torn while copied (drop-slow only): dropped. The next peek finds
      // the lap, counts the loss and resumes at the oldest intact record;
      // report that overrun now rather than at the next pop.
      const Peeked q = c_->try_peek();
      if (q) return Status::corrupt;  // a lapped reader has no record next
      return Status::overrun;
    }
    c_->release();
    return Status::ok;
  }

  std::optional<Consumer> own_;
  Consumer* c_;
  Mode mode_ = Mode::records;
};

}  // namespace shmring
