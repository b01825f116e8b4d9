// The handles' access to a Segment's mapping: the control block, the
// broadcast cursor page, the data ring, the role semaphore set and a
// reference that keeps the mapping alive after the Segment object is gone.
// Not API: the library and its tests (which rewrite the layout on purpose).
#pragma once

#include <memory>

#include "ring/internal/layout.h"
#include "ring/segment.h"

namespace shmring::detail {

struct SegmentAccess {
  static layout::ControlBlock* control(const Segment& s) { return s.control_; }
  static layout::BroadcastBlock* broadcast(const Segment& s) {
    return s.broadcast_;
  }
  static std::byte* data(const Segment& s) { return s.data_; }
  static int sem_id(const Segment& s) { return s.sem_id_; }
  static std::shared_ptr<const void> mapping_ref(const Segment& s) {
    return s.mapping_;
  }
};

// The control block (offset 0 of the mapping).
inline layout::ControlBlock* control(const Segment& s) {
  return SegmentAccess::control(s);
}
// Broadcast rings: the cursor page; nullptr for other kinds.
inline layout::BroadcastBlock* broadcast_block(const Segment& s) {
  return SegmentAccess::broadcast(s);
}
// The data ring (page-aligned).
inline std::byte* ring_data(const Segment& s) { return SegmentAccess::data(s); }
// The role semaphore set validated at attach; -1 if it is missing (then
// the handles refuse to attach with Errc::removed).
inline int sem_id(const Segment& s) { return SegmentAccess::sem_id(s); }
// Keeps the mapping alive for handles that outlive the Segment object.
inline std::shared_ptr<const void> mapping_ref(const Segment& s) {
  return SegmentAccess::mapping_ref(s);
}

}  // namespace shmring::detail
