// What a ping-pong through two rings of shmring's record format costs at
// best: 8-byte headers, 64-byte payloads (72-byte spans), tail and head
// indices on their own lines, a relaxed waiter-flag load after each tail
// store (shmring's asymmetric wake check), and nothing else: no lifecycle,
// no liveness, no sleeping. Both processes pinned (CPUs 0 and 1).
//
//   g++ -O2 -std=c++20 scripts/rtt_limit.cc -o /tmp/rtt_limit
//   /tmp/rtt_limit MODE [ROUND_TRIPS] [PAYLOAD_BYTES]
//
// MODE 0: the consumer polls tail, then reads the header (shmring's SPSC
//         protocol). MODE 1: the consumer polls the record header itself
//         (a lap tag in bits 48..63; the producer zeroes the next header
//         word before it commits). MODE 2: the raw cache-line ping-pong
//         (one shared word), the limit shm-bench compares with.
// Prints the round trip's p50 and p99 after a 5% warm-up.
// Used for docs/benchmarks.md, "What limits the hot path", item 4.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>
#include <chrono>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
using u64 = std::uint64_t;
constexpr u64 CAP = 64 << 10;
struct alignas(128) Line { std::atomic<u64> v{0}; };
struct Ring {
  Line tail; Line head; Line waiters;
  alignas(4096) unsigned char data[CAP];
};
static inline std::atomic_ref<u64> word(Ring* r, u64 off) { return std::atomic_ref<u64>(*reinterpret_cast<u64*>(r->data + off)); }
u64 SPAN = 72; u64 PAY = 64;
int mode;  // 0 = tail polling, 1 = header polling (lap tag + zero next)
struct Prod { Ring* r; u64 tail = 0, cached_head = 0;
  void push(const void* p) {
    u64 off = tail % CAP;
    if (off + SPAN > CAP) { // pad
      u64 pad = CAP - off;
      word(r, off).store(pad | 2 | ((tail / CAP) << 48), std::memory_order_release);
      tail += pad; off = 0;
    }
    while (tail + SPAN - cached_head > CAP) cached_head = r->head.v.load(std::memory_order_acquire);
    std::memcpy(r->data + off + 8, p, PAY);
    if (mode == 1) {
      u64 nx = tail + SPAN;
      if (nx - cached_head < CAP) { u64 noff = nx % CAP; if (noff + 8 <= CAP) word(r, noff).store(0, std::memory_order_relaxed); }
    }
    word(r, off).store(SPAN | ((tail / CAP) << 48), std::memory_order_release);
    tail += SPAN;
    r->tail.v.store(tail, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (r->waiters.v.load(std::memory_order_relaxed)) std::abort();
  }
};
struct Cons { Ring* r; u64 read = 0, cached_tail = 0;
  const unsigned char* peek() {
    for (;;) {
      if (mode == 0) {
        if (read == cached_tail) { cached_tail = r->tail.v.load(std::memory_order_acquire); if (read == cached_tail) continue; }
        u64 off = read % CAP; u64 w = word(r, off).load(std::memory_order_acquire);
        if (w & 2) { read += w & 0xffffffff & ~7ull; continue; }
        return r->data + off + 8;
      } else {
        u64 off = read % CAP; u64 w = word(r, off).load(std::memory_order_acquire);
        if (w == 0 || (w >> 48) != ((read / CAP) & 0xffff)) { __builtin_ia32_pause(); continue; }
        if (w & 2) { read += w & 0xffffffff & ~7ull; continue; }
        return r->data + off + 8;
      }
    }
  }
  void release() { read += SPAN; r->head.v.store(read, std::memory_order_release); }
};
void pin(int c) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(c, &s); sched_setaffinity(0, sizeof s, &s); }
int main(int argc, char** argv) {
  mode = atoi(argv[1]); long n = argc > 2 ? atol(argv[2]) : 1000000; if (argc > 3) { PAY = atol(argv[3]); SPAN = (PAY + 8 + 7) & ~7ul; }
  if (mode == 2) { auto* l = (Line*)mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0); new (l) Line;
    if (fork() == 0) { pin(1); for (u64 e = 1; e < 2*(u64)n; e += 2) { while (l->v.load(std::memory_order_acquire) != e) __builtin_ia32_pause(); l->v.store(e+1, std::memory_order_release);} _exit(0);}
    pin(0); std::vector<double> t; for (long i = 0; i < n; ++i) { auto t0 = std::chrono::steady_clock::now(); l->v.store(2*i+1, std::memory_order_release); while (l->v.load(std::memory_order_acquire) != (u64)(2*i+2)) __builtin_ia32_pause();
      t.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count()); }
    wait(nullptr); std::sort(t.begin(), t.end()); printf("mode 2 p50 %.0f ns p99 %.0f ns\n", t[t.size()/2], t[t.size()*99/100]); return 0; }
  Ring* a = (Ring*)mmap(0, sizeof(Ring), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
  Ring* b = (Ring*)mmap(0, sizeof(Ring), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
  new (a) Ring; new (b) Ring;
  if (fork() == 0) { pin(1); Cons c{a}; Prod p{b}; unsigned char buf[64];
    for (long i = 0; i < n; ++i) { auto* d = c.peek(); memcpy(buf, d, PAY); c.release(); p.push(buf); } _exit(0); }
  pin(0); Prod p{a}; Cons c{b}; unsigned char buf[64] = {}; std::vector<double> s; s.reserve(n);
  for (long i = 0; i < n; ++i) { auto t0 = std::chrono::steady_clock::now(); memcpy(buf, &i, 8); p.push(buf); auto* d = c.peek(); long j; memcpy(&j, d, 8); if (j != i) std::abort(); c.release();
    s.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count()); }
  wait(nullptr); std::sort(s.begin() + n/20, s.end()); std::vector<double> t(s.begin()+n/20, s.end()); std::sort(t.begin(), t.end());
  printf("mode %d p50 %.0f ns p99 %.0f ns\n", mode, t[t.size()/2], t[t.size()*99/100]);
}
