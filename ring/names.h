// How the library's values read in messages and listings: the one spelling
// of a key, a kind, a wait strategy and a wake-up handshake, shared by the
// library's own error messages and the tools (docs/tools.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "ring/internal/layout.h"

namespace shmring {

// 0x5eed -> "0x00005eed".
std::string hex_key(key_t key);
// "spsc", "mpsc".
const char* kind_name(Kind k);
// "futex", "semaphore", "spin".
const char* wait_name(WaitStrategy w);
// "membarrier", "fallback-requested", "fallback" (SegmentInfo::wake_mode).
const char* handshake_name(layout::WakeMode m);

// The shared-memory layout version this build reads and writes (a ring of
// another version is refused with Errc::version_mismatch).
std::uint32_t layout_version();
// The largest record a ring of `capacity` bytes takes: what
// Producer::max_record_size() returns on it.
std::uint64_t max_record_size(std::uint64_t capacity);

}  // namespace shmring
