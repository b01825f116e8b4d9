// The SysV resources of a ring outside its mapping, as the kernel's limits
// see them: the role semaphore set (created with the segment, counted to
// tell shmring's from a foreign one) and the messages that name the limit
// that refused a segment (kernel.shmmax/shmall/shmmni, committed memory,
// huge pages), with the sysctl that raises it. Private to //ring
// (segment.cc, segment_info.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "ring/status.h"

namespace shmring {

// shmget refused a `size`-byte segment with `err` (EINVAL, ENOSPC or
// ENOMEM): the limit that applies and how to raise it.
Error limit_error(int err, std::uint64_t size, const std::string& name);

// shmget(SHM_HUGETLB) refused a `size`-byte segment of `huge`-byte pages
// with `err`: the huge-page reservation or the permission it lacks.
Error huge_page_error(int err, std::uint64_t size, std::uint64_t huge,
                      const std::string& name);

// A segment with key `name` exists already (a create lost to it).
Error exists_error(const std::string& name);

// Bytes per huge page (0: this kernel has none).
std::uint64_t huge_page_bytes();

// True if segment `shmid` is marked for removal (IPC_RMID: `shm-ring rm`,
// systemd RemoveIPC) or gone. One IPC_STAT.
bool shm_removed(int shmid);

// True if segment `shmid` is marked for removal and no other process has
// it mapped: no role can be taken in it any more but through a mapping of
// this process (shmat refuses a removed segment; mappings that existed,
// such as a forked child's, can still take roles). One IPC_STAT, and
// /proc/self/maps once the segment is removed.
bool shm_orphaned(int shmid);

// The number of semaphores in set `semid`, -1 if it does not exist; its key
// in *key if asked.
int sem_count(int semid, key_t* key = nullptr);

// Creates the ring's role semaphore set under the segment's key (the sem
// and shm key spaces are separate, so `ipcs -s` shows it next to the
// segment), all zero, with the segment's mode. The caller just won the
// exclusive create of the segment under `key`, so a set already there is a
// leftover of a creator that died mid-create: replaced.
Result<int> create_sem_set(key_t key, unsigned mode, const std::string& name);

}  // namespace shmring
