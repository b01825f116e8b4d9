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

}  // namespace shmring
