#include "ring/names.h"

#include <cstdio>

namespace shmring {

std::string hex_key(key_t key) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(key));
  return buf;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::spsc:
      return "spsc";
    case Kind::mpsc:
      return "mpsc";
    case Kind::slots:
      return "slots";
    case Kind::broadcast:
      return "broadcast";
  }
  return "unknown";
}

const char* wait_name(WaitStrategy w) {
  switch (w) {
    case WaitStrategy::futex:
      return "futex";
    case WaitStrategy::semaphore:
      return "semaphore";
    case WaitStrategy::spin:
      return "spin";
  }
  return "unknown";
}

const char* handshake_name(layout::WakeMode m) {
  switch (m) {
    case layout::WakeMode::membarrier:
      return "membarrier";
    case layout::WakeMode::fallback_requested:
      return "fallback-requested";
    case layout::WakeMode::fallback:
      return "fallback";
  }
  return "unknown";
}

std::uint32_t layout_version() { return layout::kLayoutVersion; }

std::uint64_t max_record_size(std::uint64_t capacity) {
  return layout::max_payload(capacity);
}

}  // namespace shmring
