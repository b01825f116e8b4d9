// The role protocol (internal): who holds the producer slots and the
// consumer role, how a holder is known to be alive, and how dead holders
// are reaped. Roles are SysV semaphores taken with SEM_UNDO (liveness.h);
// the slot words in the control block name the registration. Proofs and
// the crash table: docs/design/liveness.md and docs/design/crash-tables.md.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "ring/internal/layout.h"
#include "ring/internal/liveness.h"
#include "ring/internal/segment_access.h"
#include "ring/segment.h"
#include "ring/status.h"

namespace shmring::detail {

// max_producers bounds loops over the slot table; a peer may have rewritten
// it since attach validated it, so never trust it past the table's end.
inline std::uint32_t producer_slots(const layout::ControlBlock* cb) {
  return std::min<std::uint32_t>(cb->max_producers, layout::kMaxProducers);
}

// Owner-word values that are not a ProcessToken (a token's pid half is
// never 0): the slot is free and its last holder closed / died.
inline constexpr ProcessToken kFreeClosed = 0;
inline constexpr ProcessToken kFreeDied = 1;
inline bool registered(ProcessToken t) { return t > kFreeDied; }

// True while the registration `t` in role semaphore `num` runs; `pid_ns`
// is the stamp word stored next to `t` (layout.h, Slot::pid_ns).
bool role_alive(int semid, int num, ProcessToken t,
                const std::atomic<std::uint64_t>& pid_ns);
// True while the producer named by an MPSC owner tag (slot + generation)
// still holds its slot and runs.
bool owner_alive(const layout::ControlBlock* cb, int semid, std::uint32_t tag);
// True if any producer slot is held (by a live or a not yet reaped dead
// producer); seq_cst loads (see roles.cc).
bool any_producer_registered(const layout::ControlBlock* cb);
// Frees the slots of dead producers; returns how many.
int reap_dead_producers(layout::ControlBlock* cb, int semid);

// The error for a ring whose role semaphore set is gone.
Error roles_gone(const Segment& seg);
// The error for taking a role through a read-only Segment.
Error read_only_role(const Segment& seg, const char* role);
// Takes over a slot whose role semaphore we hold; returns what was there.
ProcessToken take_slot(std::atomic<ProcessToken>& owner, ProcessToken me);
// Degraded registration by pid token (a removed ring whose set went with
// it); false if a live process holds the slot. `pid_ns` is the slot's
// stamp word.
bool take_slot_by_token(std::atomic<ProcessToken>& owner,
                        std::atomic<std::uint64_t>& pid_ns, ProcessToken me,
                        ProcessToken* was);
// Stores our PID namespace stamp in a slot whose role semaphore we hold,
// before the owner CAS that registers `me`.
void stamp_slot(std::atomic<std::uint64_t>& pid_ns, ProcessToken me);
// The error for the record API's attach on a slots ring.
Error records_on_slots(const Segment& seg);  // slots.cc

// True if roles are taken by pid token (see take_slot_by_token).
inline bool degraded(const Segment& seg) {
  return detail::sem_id(seg) < 0 && seg.removed();
}

}  // namespace shmring::detail
