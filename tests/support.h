// Shared helpers for the shmring tests: a ring that removes itself, and a
// leak check on the (per-test, sandboxed) IPC namespace.
#pragma once

#include <sys/ipc.h>
#include <sys/shm.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "ring/shmring.h"

namespace shmring::testing {

// Number of SysV segments in this IPC namespace (shmctl SHM_INFO).
int segment_count();

// A private segment holding a ring, marked for removal in the destructor.
class ScopedRing {
 public:
  explicit ScopedRing(RingOptions options);
  ~ScopedRing();
  Segment& segment() { return *segment_; }
  // A second mapping of the same segment, as another process would have.
  Segment attach_again() const;

 private:
  std::optional<Segment> segment_;
};

// Deterministic payload for sequence number `seq` of producer `producer`.
void fill_payload(std::span<std::byte> out, std::uint32_t producer,
                  std::uint64_t seq);
bool check_payload(std::span<const std::byte> in, std::uint32_t producer,
                   std::uint64_t seq);

std::span<const std::byte> as_bytes(const std::string& s);
std::string as_string(std::span<const std::byte> b);

// Forces the ring's positions to `pos` (no producer or consumer attached),
// as a freshly created ring that has carried `pos` bytes.
void set_positions(Segment& segment, std::uint64_t pos);

}  // namespace shmring::testing
