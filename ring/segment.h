// A System V shared-memory segment holding one ring: create (exclusive),
// attach (validated), remove. The mapping is detached when the Segment is
// destroyed; the segment itself outlives every process until removed
// (remove(), `shm-ring rm`, or ipcrm), exactly like any SysV segment.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ring/internal/layout.h"
#include "ring/status.h"

namespace shmring {

namespace detail {
struct SegmentAccess;
}  // namespace detail

// A SysV key from ftok(path, proj); not_found if the path does not exist.
Result<key_t> key_from_path(const std::string& path, int proj);

// Parses "0x5eed" (hex) or "24301" (decimal).
Result<key_t> parse_key(const std::string& text);

struct RingOptions {
  Kind kind = Kind::spsc;
  std::uint64_t capacity = 1 << 20;  // bytes, power of two
  WaitStrategy wait = WaitStrategy::futex;
  unsigned mode = 0600;             // permission bits of the segment
  std::uint32_t max_producers = 0;  // 0: 1 for spsc/slots, kMaxProducers
                                    // for mpsc
  // Kind::slots only (and required there): the element size in bytes,
  // 1 .. capacity / 2. Fixed for the ring's life; QueueWriter<T> and
  // QueueReader<T> refuse a ring whose element size is not sizeof(T).
  std::uint32_t slot_size = 0;
  // Back the segment with huge pages (shmget SHM_HUGETLB); the segment is
  // rounded up to a whole number of them. Errc::limit, naming
  // /proc/sys/vm/nr_hugepages, when the machine has none free.
  bool hugepages = false;
  // Broadcast rings (Kind::broadcast): how many consumers may attach at
  // once (0: kMaxConsumers) and what the producer does when the slowest
  // would be overwritten.
  std::uint32_t max_consumers = 0;
  Overrun overrun = Overrun::wait;
};

// What Segment::attach_or_create asks of a ring: attach to the one under
// the key if it matches every expectation given (else Errc::wrong_kind for
// kind or wait strategy, Errc::size_mismatch for capacity; nullopt accepts
// any), else create it with `options` if `create` (else Errc::not_found).
// A lost create race attaches to the winner's ring.
struct AttachOrCreate {
  RingOptions options;
  bool create = true;
  std::optional<Kind> expect_kind;
  std::optional<std::uint64_t> expect_capacity;
  std::optional<WaitStrategy> expect_wait;
  std::optional<std::uint32_t> expect_slot_size;  // slots rings' element size
};

// Validates options without touching the system: capacity power of two in
// [kMinCapacity, kMaxCapacity], max_producers, mode.
Result<Ok> validate(const RingOptions& options);

// What `shm-ring info` shows: a snapshot, stale the moment it is taken.
struct SegmentInfo {
  key_t key = 0;
  int shmid = -1;
  Kind kind = Kind::spsc;
  std::uint32_t version = 0;
  std::uint64_t capacity = 0;
  std::uint64_t segment_size = 0;
  WaitStrategy wait = WaitStrategy::futex;
  std::uint32_t max_producers = 0;
  std::uint32_t slot_size = 0;   // Kind::slots: element bytes; else 0
  std::uint64_t slot_count = 0;  // Kind::slots: elements the ring holds
  bool hugepages = false;        // created with SHM_HUGETLB
  layout::WakeMode wake_mode = layout::WakeMode::membarrier;  // handshake
  pid_t creator_pid = 0;
  bool creator_alive = false;
  std::uint64_t head = 0;
  std::uint64_t tail = 0;
  std::uint64_t used_bytes = 0;  // tail - head, a guess while peers run
                                 // (slots: elements * slot_size)
  pid_t consumer_pid = 0;        // 0: none
  bool consumer_alive = false;
  struct Producer {
    int slot;
    pid_t pid;
    bool alive;
  };
  std::vector<Producer> producers;
  std::uint32_t producers_seen = 0;
  std::uint32_t producers_died = 0;
  std::uint32_t consumers_seen = 0;
  std::uint32_t records_reclaimed = 0;
  unsigned mode = 0;
  uid_t owner_uid = 0;
  std::uint64_t attach_count = 0;  // shm_nattch
  bool marked_for_removal = false;
  int sem_id = -1;           // the ring's role semaphore set (ipcs -s)
  bool sem_present = false;  // false: removed by hand, liveness degraded
  // Broadcast rings: every registered cursor (consumer) and its position;
  // lag = tail - position (bytes it has not released yet).
  std::uint32_t max_consumers = 0;
  Overrun overrun = Overrun::wait;
  struct Cursor {
    int slot;
    pid_t pid;
    bool alive;
    std::uint64_t position;
    std::uint64_t lag;
    std::uint64_t lost;  // drop-slow: bytes lost to overruns
  };
  std::vector<Cursor> cursors;
};

// A cheap sample of a ring's moving counters for rate displays (`shm-ring
// watch`): a few loads from the mapping, no syscall, nothing written. Stale
// the moment it is taken; positions are those of SegmentInfo.
struct RingCounters {
  std::uint64_t head = 0;  // bytes (slots: elements); broadcast: the
                           // producer's published low-water mark
  std::uint64_t tail = 0;
  // A consumer (producer) has registered to sleep for data (space): the
  // waiters word of its wait line is non-zero. False while it spins or runs.
  bool consumer_waiting = false;
  bool producer_waiting = false;
  // Broadcast rings: every registered cursor.
  struct Cursor {
    int slot;
    pid_t pid;
    std::uint32_t generation;  // bumped on every take-over of the cursor
    std::uint64_t position;
    std::uint64_t lost;  // drop-slow: payload bytes lost to overruns
  };
  std::vector<Cursor> cursors;
  // Overrun::drop_slow: the producer's published tail snapshot (a record
  // boundary) with the payload bytes and records it committed before it,
  // cumulative; `published` is false if the snapshot could not be read
  // consistently (the producer was writing it).
  bool published = false;
  std::uint64_t published_pos = 0;
  std::uint64_t published_payload = 0;
  std::uint64_t published_records = 0;
  // The positions read are ones a correct ring can have (aligned, tail at
  // most a ring ahead of head; broadcast: of every cursor unless drop-slow).
  // A ring that moves between the loads may fail this once: only a
  // repeated false means corrupt.
  bool sane = true;
};

// What Segment::walk_records() found between a position and the tail.
struct RecordWalk {
  std::uint64_t from = 0;
  std::uint64_t end = 0;      // where the walk stopped (a record boundary)
  std::uint64_t records = 0;  // committed records in [from, end) (padding
                              // is not a record)
  std::uint64_t payload = 0;  // their payload bytes
  bool reached_to = false;    // end is the `to` asked for
  // Every header read was one no peer could have rewritten (released and
  // then overwritten, or zeroed on MPSC) before the walk ended: the counts
  // are exact. False: discard them (a reader passed `from` meanwhile, or
  // `from` is more than a ring behind the tail).
  bool intact = false;
  // Intact, yet a header no correct peer writes was found.
  bool corrupt = false;
};

class Segment {
 public:
  // Exclusive create; Errc::exists if the key is taken.
  static Result<Segment> create(key_t key, const RingOptions& options);
  // A segment only this process (and its forked children) can find; for
  // tests. The caller still removes it.
  static Result<Segment> create_private(const RingOptions& options);
  // Attach and validate magic, version, kind (if given) and sizes.
  static Result<Segment> attach(key_t key,
                                std::optional<Kind> expect = std::nullopt);
  // Attach by shmid (as `ipcs -m` lists it).
  static Result<Segment> attach_id(int shmid,
                                   std::optional<Kind> expect = std::nullopt);
  // The same, mapped read-only (shmat SHM_RDONLY; read permission is
  // enough): for looking only (info(), counters(), walk_records()); a
  // write through it faults, so Producer and Consumer refuse it
  // (Errc::permission_denied).
  static Result<Segment> attach_read_only(
      key_t key, std::optional<Kind> expect = std::nullopt);
  static Result<Segment> attach_id_read_only(
      int shmid, std::optional<Kind> expect = std::nullopt);
  // Attach if it exists and matches kind and capacity, else create.
  static Result<Segment> attach_or_create(key_t key,
                                          const RingOptions& options);
  // The same, spelled out (AttachOrCreate below); *created says which.
  static Result<Segment> attach_or_create(key_t key, const AttachOrCreate& how,
                                          bool* created = nullptr);
  // Marks the segment under `key` for removal (IPC_RMID); it disappears
  // once the last process detaches. Refuses non-shmring segments unless
  // `force`.
  static Result<Ok> remove(key_t key, bool force = false);

  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;
  ~Segment();

  // Marks this segment for removal (IPC_RMID) and removes its semaphore
  // set. The mapping stays valid.
  Result<Ok> remove();
  // True once the segment was marked for removal by anyone.
  bool removed() const;

  key_t key() const { return key_; }
  int id() const { return shmid_; }
  // The identity validated at create/attach, copied into process memory: a
  // peer can rewrite the header at any time, and sizing our accesses from a
  // live read would let it steer them out of bounds.
  Kind kind() const { return kind_; }
  std::uint64_t capacity() const { return capacity_; }
  WaitStrategy wait_strategy() const { return wait_; }
  // Kind::slots: the element size and how many elements the ring holds
  // (validated copies, like kind()); 0 for record rings.
  std::uint32_t slot_size() const { return slot_size_; }
  std::uint64_t slot_count() const { return slot_count_; }
  SegmentInfo info() const;
  // True if mapped by attach_read_only()/attach_id_read_only().
  bool read_only() const;
  // The moving counters, cheaply (no syscall): see RingCounters.
  RingCounters counters() const;
  // Walks the committed record headers from `from` (a record boundary: a
  // reader's released position, or where an earlier walk ended) toward the
  // tail, counting records and payload bytes. Stops at `to` (if given), at
  // the tail, at an uncommitted MPSC claim, or after `max_steps` headers.
  // Read-only; exact when intact (see RecordWalk). Slots rings have no
  // headers (their positions count elements): never intact.
  RecordWalk walk_records(std::uint64_t from, std::optional<std::uint64_t> to,
                          std::uint64_t max_steps) const;
  // Bytes committed or claimed and not yet released (tail - head; 0 if
  // those are inconsistent): a display snapshot while peers run.
  std::uint64_t used_bytes() const;

  // Whether segment `shmid` of `size` bytes starts like a ring (size and
  // magic), from a read-only look at its first word: cheap, no validation
  // (attach_id does that); true if it cannot be looked at, so that
  // attach_id says why.
  static bool looks_like_ring(int shmid, std::uint64_t size);
  // Removes the role semaphore set of segment `shmid`: `semid`, or if -1 the
  // set under the segment's key if it has a ring's size. Best effort, for
  // removing a segment by hand (shm-ring rm); remove() does it itself.
  static void remove_role_semaphores(int shmid, int semid = -1);

  // Records between the consumer's released position and the producers'
  // tail (committed, or claimed on MPSC), counted by walking their headers;
  // nullopt if the positions or headers are inconsistent or the walk would
  // take more than 2^24 steps. Exact when no peer is running (e.g. after
  // the consumer has gone), a snapshot otherwise. Read-only.
  std::optional<std::uint64_t> unread_records() const;

  // Broadcast rings: max_consumers and overrun as validated at attach.
  std::uint32_t max_consumers() const { return max_consumers_; }
  Overrun overrun() const { return overrun_; }

  // Internal: the mapping type is private to segment.cc.
  struct Mapping;
  Segment(std::unique_ptr<Mapping> m, key_t key, int shmid);

 private:
  // The handles' view of the mapping (ring/internal/segment_access.h).
  friend struct detail::SegmentAccess;

  std::shared_ptr<Mapping> mapping_;
  layout::ControlBlock* control_ = nullptr;
  std::byte* data_ = nullptr;
  key_t key_ = 0;
  int shmid_ = -1;
  Kind kind_ = Kind::spsc;
  std::uint64_t capacity_ = 0;
  WaitStrategy wait_ = WaitStrategy::futex;
  std::uint32_t slot_size_ = 0;
  std::uint64_t slot_count_ = 0;
  int sem_id_ = -1;
  layout::BroadcastBlock* broadcast_ = nullptr;
  std::uint32_t max_consumers_ = 0;
  Overrun overrun_ = Overrun::wait;
};

}  // namespace shmring
