// Queue<T>: a typed view of a ring for trivially copyable T. One record per
// element; no second implementation, just Producer/Consumer underneath.
#pragma once

#include <cstring>
#include <optional>
#include <type_traits>

#include "ring/ring.h"

namespace shmring {

template <class T>
class QueueWriter {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  explicit QueueWriter(Producer& producer) : p_(&producer) {}
  // Inline: the common case is try_reserve's fast path, a sizeof(T) copy
  // and commit's release store of tail (a cached head, no RMW, no fence).
  [[nodiscard]] Status try_push(const T& v) {
    Reservation r = p_->try_reserve(sizeof(T));
    if (!r) return r.status;
    std::memcpy(r.bytes.data(), &v, sizeof(T));
    p_->commit(sizeof(T));
    return Status::ok;
  }
  [[nodiscard]] Status push(const T& v, Timeout timeout = kForever) {
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
  Producer* p_;
};

template <class T>
class QueueReader {
  static_assert(std::is_trivially_copyable_v<T>,
                "Queue<T> copies T through shared memory bytewise");

 public:
  explicit QueueReader(Consumer& consumer) : c_(&consumer) {}
  // ok with *out filled, or why not. A record of the wrong size is corrupt.
  [[nodiscard]] Status try_pop(T* out) { return finish(c_->try_peek(), out); }
  [[nodiscard]] Status pop(T* out, Timeout timeout = kForever) {
    Peeked p = c_->try_peek();
    if (p.status == Status::would_block) p = c_->peek(timeout);
    return finish(p, out);
  }

 private:
  Status finish(const Peeked& p, T* out) {
    if (!p) return p.status;
    if (p.record.size != sizeof(T)) return Status::corrupt;
    std::memcpy(out, p.record.data, sizeof(T));
    c_->release();
    return Status::ok;
  }
  Consumer* c_;
};

}  // namespace shmring
