// What the data calls take and give: records, reservations, and the one
// result shape ({Status, what the call got}) every data call returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ring/deadline.h"
#include "ring/status.h"

namespace shmring {

inline constexpr Timeout kForever = Timeout::max();

// A committed record, valid until the reader's next release().
struct Record {
  const std::byte* data = nullptr;
  std::uint32_t size = 0;
  std::uint16_t type = 0;
  std::span<const std::byte> bytes() const { return {data, size}; }
};

// The data calls' one result shape: a Status and what the call got (empty
// unless status is ok).
struct Reservation {
  Status status = Status::would_block;
  std::span<std::byte> bytes;  // exactly the size asked for
  explicit operator bool() const { return status == Status::ok; }
};

struct Peeked {
  Status status = Status::would_block;
  Record record;
  explicit operator bool() const { return status == Status::ok; }
};

struct PeekedBatch {
  Status status = Status::would_block;
  std::span<Record> records;  // the filled front of the span passed in
  explicit operator bool() const { return status == Status::ok; }
};

struct ProducerOptions {
  // On a full ring whose consumer is gone (detached or dead), keep waiting
  // for a new consumer instead of returning Status::peer_dead.
  bool wait_for_consumer = false;
};

}  // namespace shmring
