// Process identity that survives pid reuse: a token is the pid and the low
// 32 bits of the process start time (clock ticks since boot, from
// /proc/<pid>/stat). A recycled pid has another start time, so a token of a
// dead process never looks alive again.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace shmring {

using ProcessToken = std::uint64_t;  // 0 means "nobody"

// The calling process's token (cached after the first call; fork-safe).
ProcessToken self_token();

// The token of `pid`, or 0 if it does not exist or is a zombie.
ProcessToken token_of(pid_t pid);

inline pid_t token_pid(ProcessToken t) { return static_cast<pid_t>(t >> 32); }

// False only with proof of death: the pid is gone, a zombie, or now names a
// process with another start time. A process /proc will not show us counts
// as alive.
bool alive(ProcessToken t);

// Identity (inode) of this process's PID namespace, 0 if unknown. Tokens
// only mean something between processes of one PID namespace.
std::uint64_t pid_namespace_id();

// ---- Tokens across PID namespaces.
//
// A ring is shared by every process of its IPC namespace, whatever their
// PID namespaces (a container's pid 1 and ours are different processes).
// So every registration stores, next to its token, a stamp of the PID
// namespace the token was taken in: the namespace's inode in the high 32
// bits (nsfs inode numbers are 32-bit) and a 32-bit fingerprint of the
// token in the low ones, so a stamp an earlier holder of the slot left
// behind is never read as the current holder's. 0: no stamp (a
// registration by a build without stamps, or no /proc/self/ns/pid).

// The stamp of `t`, a token taken in the calling process's PID namespace;
// 0 if the namespace is unknown.
std::uint64_t ns_stamp(ProcessToken t);

// alive(t) for a registration stamped `stamp`: a token taken in another PID
// namespace, or whose stamp names another token, is alive (unknown): its
// pid names nothing here, so it can prove no death. Stamp 0: alive(t).
bool alive(ProcessToken t, std::uint64_t stamp);

// ---- Role semaphores: the liveness the kernel guarantees.
//
// Each role of a ring owns one semaphore of the ring's SysV set. Its holder
// raised it to 1 with SEM_UNDO; the kernel undoes that when the holder's
// process exits (every thread gone, exit(), a signal, kill -9), and only
// then: a main thread that calls pthread_exit() while others run keeps it
// held, a recycled pid cannot take it over, and pids play no part, so the
// answer is the same in every PID namespace that shares the IPC namespace.
// A fork()ed child inherits no SEM_UNDO state (the parent's death releases
// the role); an exec()ed image keeps it until that process exits.
enum class RoleState { free, held, unknown };

// Atomically: if semaphore `num` is 0, make it 1 with SEM_UNDO. False if
// it was held (EAGAIN); *err is set to errno on any other failure.
bool take_role(int semid, int num, int* err);
// Drops the hold (op -1 with SEM_UNDO, which also cancels the undo).
void drop_role(int semid, int num);
// held / free; unknown if the set is gone or unreadable (EIDRM, EINVAL,
// EACCES): callers fall back to the pid token.
RoleState role_state(int semid, int num);
// The pid (in the caller's PID namespace, 0 if none there) that last
// operated on the semaphore: the holder while it is held.
pid_t role_pid(int semid, int num);

}  // namespace shmring
