#include "ring/internal/liveness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shmring {
namespace {

// Reads state and starttime (field 22) of /proc/<pid>/stat without stdio
// allocation. The comm field may contain spaces and ')', so parse after the
// last ')'.
bool read_stat(pid_t pid, char* state, std::uint64_t* start) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return false;
  p += 2;
  *state = *p;
  // Fields after comm: 3=state ... 22=starttime, i.e. 19 spaces after state.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return false;
    ++p;
  }
  *start = std::strtoull(p, nullptr, 10);
  return true;
}

ProcessToken make_token(pid_t pid, std::uint64_t start) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(pid)) << 32) |
         (start & 0xffffffffULL);
}

}  // namespace

ProcessToken token_of(pid_t pid) {
  char state = 0;
  std::uint64_t start = 0;
  if (pid <= 0 || !read_stat(pid, &state, &start)) return 0;
  if (state == 'Z' || state == 'X' || state == 'x') return 0;
  return make_token(pid, start);
}

ProcessToken self_token() {
  // Cached per pid so a forked child computes its own.
  static std::atomic<std::uint64_t> cached{0};
  // relaxed: a cache of an immutable fact; a race computes the same value.
  ProcessToken t = cached.load(std::memory_order_relaxed);
  if (t != 0 && token_pid(t) == ::getpid()) return t;
  t = token_of(::getpid());
  // relaxed: as the load above.
  cached.store(t, std::memory_order_relaxed);
  return t;
}

bool alive(ProcessToken t) {
  if (t == 0) return false;
  const pid_t pid = token_pid(t);
  if (pid <= 0) return false;
  // Only proof of death counts as death: reclaiming a live peer's records
  // would corrupt the ring, waiting on a dead one only delays it.
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  char state = 0;
  std::uint64_t start = 0;
  // Exists but /proc hides it (hidepid) or it exited this instant: alive
  // for now; the next check decides.
  if (!read_stat(pid, &state, &start)) return true;
  if (state == 'Z' || state == 'X' || state == 'x') return false;
  return make_token(pid, start) == t;  // else: pid reused by another process
}

std::uint64_t pid_namespace_id() {
  // Not cached: a child of unshare(CLONE_NEWPID) may reuse its parent's pid
  // in the new namespace, so nothing cheap tells a stale cache apart.
  struct stat st {};
  if (::stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_ino);
}

std::uint64_t ns_stamp(ProcessToken t) {
  const std::uint64_t ns = pid_namespace_id();
  if (ns == 0 || ns > 0xffffffffULL) return 0;
  const auto fingerprint =
      static_cast<std::uint32_t>((t * 0x9e3779b97f4a7c15ULL) >> 32);
  return (ns << 32) | fingerprint;
}

bool alive(ProcessToken t, std::uint64_t stamp) {
  if (t == 0) return false;
  // Another namespace's token (or a stamp of another registration): only
  // proof of death counts as death, and its pid proves nothing here.
  if (stamp != 0 && stamp != ns_stamp(t)) return true;
  return alive(t);
}

bool take_role(int semid, int num, int* err) {
  *err = 0;
  // Both operations apply atomically or not at all: wait-for-zero (fails
  // at once with IPC_NOWAIT if held), then +1 with SEM_UNDO.
  sembuf ops[2] = {};
  ops[0].sem_num = static_cast<unsigned short>(num);
  ops[0].sem_op = 0;
  ops[0].sem_flg = IPC_NOWAIT;
  ops[1].sem_num = static_cast<unsigned short>(num);
  ops[1].sem_op = 1;
  ops[1].sem_flg = IPC_NOWAIT | SEM_UNDO;
  for (;;) {
    if (::semop(semid, ops, 2) == 0) return true;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) *err = errno;
    return false;
  }
}

void drop_role(int semid, int num) {
  sembuf op{};
  op.sem_num = static_cast<unsigned short>(num);
  op.sem_op = -1;
  op.sem_flg = IPC_NOWAIT | SEM_UNDO;
  // A set removed meanwhile (EIDRM/EINVAL) has nothing left to release.
  while (::semop(semid, &op, 1) != 0 && errno == EINTR) {
  }
}

RoleState role_state(int semid, int num) {
  if (semid < 0) return RoleState::unknown;
  const int v = ::semctl(semid, num, GETVAL);
  if (v < 0) return RoleState::unknown;
  return v > 0 ? RoleState::held : RoleState::free;
}

pid_t role_pid(int semid, int num) {
  if (semid < 0) return 0;
  const int p = ::semctl(semid, num, GETPID);
  return p > 0 ? static_cast<pid_t>(p) : 0;
}

}  // namespace shmring
