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
  [[nodiscard]] Status try_push(const T& v) {
    return p_->try_write(std::as_bytes(std::span<const T, 1>(&v, 1)));
  }
  [[nodiscard]] Status push(const T& v, Timeout timeout = kForever) {
    return p_->write(std::as_bytes(std::span<const T, 1>(&v, 1)), timeout);
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
    return finish(c_->peek(timeout), out);
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
