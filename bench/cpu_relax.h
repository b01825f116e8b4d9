// A CPU-friendly pause for the spin loops of shm-bench's peers and limits.
#pragma once

namespace bench {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace bench
