// Shared helpers for the shmring tests, by topic: keys and leak checks;
// timing; skips; child processes; rings; payloads.
//
// The suite passes outside Bazel's sandbox too (--spawn_strategy=standalone,
// two runs at once, a container without namespaces): a test never counts or
// lists every segment on the machine, only the ones it made.
#pragma once

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ring/internal/segment_access.h"
#include "ring/shmring.h"

namespace shmring::testing {

// ---- Keys and leak checks: keys of this test process alone.
//
// The suite has one key scheme: 0x5e000000 | (pid & 0xffff) << 8 | n, i.e.
// the high byte 0x5e, then 16 bits of the pid of the process that owns the
// keys, then 8 bits it picks. The C++ tests use test_key(n); the shell tests
// lib.sh's KEY (n = 0) and KEY+n, or own_keys.sh's new_key (the next free
// n); the Python tests (python/tests) the same layout. Two processes that
// run at the same time have different pids, so they never share a key while
// pid_max <= 65536 (Linux's default is 32768); beyond that a collision is an
// "already exists" failure or, in new_key, a skipped key, never a silent
// share. .ci/run's host leak check covers 0x5d000000-0x5fffffff, which
// holds this range.
inline constexpr std::uint32_t kSuiteKeyPrefix = 0x5e000000;
inline constexpr std::uint32_t kSuiteKeyMask = 0xff000000;  // the high byte
// Key n (0..255; anything else fails the test) of this process's block.
key_t test_key(int n);

// SysV segments this test made and still exist (also marked for removal,
// still attached): those created by this process or a child it spawned
// (spawn/ChildGuard), and any under this process's test_key block. Read from
// /proc/sysvipc/shm. Compare it before and after, never a machine-wide count.
int own_segment_count();

// ---- Timing: the bounds the tests share, and CPU time.

// Generous bound for what should take milliseconds: hit only when
// something hangs.
inline constexpr std::chrono::seconds kHang{30};
// The library's promise: a dead producer's half-written record
// holds the consumer up for less than this.
inline constexpr std::chrono::seconds kReclaimBound{1};

// CPU time (user + system) process `pid` has used, from /proc/<pid>/stat
// (clock-tick resolution); -1 ns if it cannot be read.
std::chrono::nanoseconds process_cpu_time(pid_t pid);

// ---- Skips: a test the environment cannot run says so, never silently.

// Tests that need privileges (a second user, root, unshare, IPC_SET) call
// this when the environment refused them: `why` says what was refused and
// with which errno. Only "not permitted" may skip (EPERM, not being root, an
// unmapped uid); any other errno is a failure. The skip is printed (stderr,
// "PRIVILEGED TEST SKIPPED: ...") and, when SHMRING_REQUIRE_PRIVILEGED=1
// (.ci/run, which runs as root), it fails the test instead.
void privileged_skip(const std::string& why);
// errno values that mean "this environment does not permit it".
bool not_permitted(int err);
// Tests that need something this machine or build lacks and no privilege
// would give (no huge pages reserved, a kernel without membarrier, a TSan
// build) call this: printed on stderr as "ENVIRONMENT TEST SKIPPED: why"
// and as a Catch2 warning, so a skip is never silent. Not for EPERM: that
// is privileged_skip().
void environment_skip(const std::string& why);

// ---- Child processes: fork, rendezvous, kill, wait.
//
// A forked child must not use Catch2 macros (its assertion state is a copy
// the parent never sees): it reports through its exit code and stderr.

// Runs `body` in a forked child that _exits with its result; an escaped
// exception exits 99. Stdio is flushed first so buffered output is not
// duplicated.
pid_t spawn(const std::function<int()>& body);

struct ChildStatus {
  bool exited = false;  // normal exit: `code` is valid
  int code = -1;
  int signal = 0;          // killed by this signal
  bool timed_out = false;  // still running at the deadline (then killed)
  std::string describe() const;
};

// Waits for `pid` at most `timeout`; on timeout SIGKILLs and reaps it.
ChildStatus wait_child(pid_t pid, std::chrono::milliseconds timeout);

// SIGKILLs and reaps every child still registered when it goes out of
// scope, so a failing REQUIRE leaves no orphan behind.
class ChildGuard {
 public:
  ChildGuard() = default;
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard();
  pid_t spawn(const std::function<int()>& body);
  // The child was reaped by the caller (wait_child): forget it.
  void forget(pid_t pid);
  // wait_child(pid, timeout), then forget(pid).
  ChildStatus wait(pid_t pid, std::chrono::milliseconds timeout = kHang);
  // SIGKILLs a child that waits to be killed (park_until_killed), reaps it
  // and fails the test unless SIGKILL is what ended it.
  void kill_and_reap(pid_t pid);

 private:
  std::vector<pid_t> pids_;
};

// Child side: sleeps until the parent kills it, or gives up after a minute
// and returns 3, so a broken parent cannot leave it behind for long.
int park_until_killed();

// A one-way "I reached the point you wait for" channel from forked children
// to the parent: a pipe created before fork. Lets a test kill a child at an
// exact moment (e.g. between reserve and commit) instead of guessing with
// sleeps.
class Beacon {
 public:
  Beacon();
  Beacon(const Beacon&) = delete;
  Beacon& operator=(const Beacon&) = delete;
  ~Beacon();
  // Child side: one byte; async-signal-safe.
  void signal();
  // Parent side: true once a byte arrived, false after `timeout`.
  bool wait(std::chrono::milliseconds timeout);

 private:
  int fds_[2] = {-1, -1};
};

// One T in an anonymous MAP_SHARED mapping, shared with forked children
// (for counters and results; T must be usable from several processes, e.g.
// lock-free atomics).
template <class T>
class SharedBlock {
 public:
  SharedBlock() {
    void* p = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) FAIL("mmap: " << std::strerror(errno));
    value_ = new (p) T();
  }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  ~SharedBlock() {
    value_->~T();
    ::munmap(value_, sizeof(T));
  }
  T* operator->() { return value_; }
  T& operator*() { return *value_; }

 private:
  T* value_;
};

// ---- Rings: set-up, attaching, positions, wake-up handshakes.

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

// Attach or fail the test with the library's message.
Producer attach_producer(Segment& seg, ProducerOptions options = {});
Consumer attach_consumer(Segment& seg);
Subscriber attach_subscriber(Segment& seg);

// A child (children.spawn) that attaches a producer to `seg` (the mapping it
// inherited) and exits with body(producer); exit code 1, with the library's
// message on stderr, if the attach is refused. The producer closes when
// `body` returns.
pid_t spawn_producer(ChildGuard& children, Segment& seg,
                     std::function<int(Producer&)> body);

// Forces the ring's positions to `pos` (no producer or consumer attached),
// as a freshly created ring that has carried `pos` bytes.
void set_positions(Segment& segment, std::uint64_t pos);

// The wake-up handshakes a test runs in (wait.h,
// docs/design/ordering.md#the-wake-up-handshake):
//   membarrier:      every process registered membarrier (light wakers)
//   fallback:        every process without membarrier (seq_cst pairs)
//   child_fallback:  the ring is created in membarrier mode, then a child
//                    without membarrier joins (fallback_requested, then the
//                    parent acknowledges)
//   parent_fallback: the same with the roles swapped: the parent re-attaches
//                    without membarrier, the child acknowledges
enum class Handshake { membarrier, fallback, child_fallback, parent_fallback };
const char* to_string(Handshake h);
bool child_lacks_membarrier(Handshake h);
bool parent_lacks_membarrier(Handshake h);
// The WakeMode a ring must have reached after a run in handshake `h`.
layout::WakeMode settled_mode(Handshake h);

// Sets this process's membarrier use for the scope and restores it after.
class MembarrierScope {
 public:
  explicit MembarrierScope(bool enabled)
      : saved_(detail::process_has_membarrier()) {
    detail::set_membarrier_for_testing(enabled);
  }
  ~MembarrierScope() { detail::set_membarrier_for_testing(saved_); }
  MembarrierScope(const MembarrierScope&) = delete;
  MembarrierScope& operator=(const MembarrierScope&) = delete;

 private:
  bool saved_;
};

// ---- Payloads: deterministic record contents, and bytes <-> strings.

// Deterministic payload for sequence number `seq` of producer `producer`.
void fill_payload(std::span<std::byte> out, std::uint32_t producer,
                  std::uint64_t seq);
bool check_payload(std::span<const std::byte> in, std::uint32_t producer,
                   std::uint64_t seq);

// Like fill_payload/check_payload, but one hash per 8 bytes and memcpy'd
// words: the multi-process and stress tests push gigabytes through
// unoptimised (fastbuild) code. Prefix-stable: the first k bytes of a
// pattern do not depend on its length.
void fill_words(std::span<std::byte> out, std::uint64_t seq);
bool check_words(std::span<const std::byte> in, std::uint64_t seq);

// A 64-bit mixer (splitmix64's finaliser): the record lengths and types
// the stress and multi-process tests derive from a sequence number.
std::uint64_t mix64(std::uint64_t x);
// A sequence-stamped record: `seq` in its first 8 bytes when there is room,
// fill_words(seq) after them (or in all of a shorter record). A lost,
// repeated, reordered or torn record fails check_seq_record().
void fill_seq_record(std::span<std::byte> b, std::uint64_t seq);
bool check_seq_record(std::span<const std::byte> b, std::uint64_t seq);
// The sequence number a record of at least 8 bytes starts with; ~0 if it
// is shorter.
std::uint64_t seq_stamp(std::span<const std::byte> b);

std::span<const std::byte> as_bytes(const std::string& s);
std::string as_string(std::span<const std::byte> b);
// The next record as a string, released, or "<status>" if there is none:
// try_peek() for a zero timeout, else peek(t). A Subscriber's is checked
// with intact() first (a drop-slow ring's copy must be vouched for).
std::string next_record(Consumer& c, Timeout t = std::chrono::milliseconds(0));
std::string next_record(Subscriber& c,
                        Timeout t = std::chrono::milliseconds(0));

}  // namespace shmring::testing
