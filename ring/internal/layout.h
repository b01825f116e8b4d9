// The shared-memory layout of a shmring segment. This file is an ABI between
// processes: every offset and size below is asserted, and no other file may
// copy a layout constant. Bump kLayoutVersion on any change.
//
//   offset 0      ControlBlock (identity, hot indices each on its own
//                 128-byte line, wait words, semaphores, role table,
//                 then the wake-up handshake line at 2944; 3072 bytes)
//   4096          broadcast rings only: BroadcastBlock (consumer cursors)
//   data_offset   data ring: `capacity` bytes (power of two), records;
//                 4096, or 8192 for broadcast rings (data_offset(kind))
//
// Every role (the consumer, each producer slot) also owns one semaphore of
// a SysV semaphore set created with the ring (ControlBlock::sem_id): its
// holder keeps it at 1 with SEM_UNDO, so the kernel releases it when the
// holder exits, however it exits. That is the liveness proof (liveness.h).
//
// Record rings (spsc, mpsc, broadcast): a record is an 8-byte header
// followed by its payload, padded to a multiple of 8 bytes (its "span").
// Records never straddle the end of the ring: a producer that would
// straddle writes a padding record to the end and starts its record at
// offset 0. Readers find records by their headers, not by the tail: the
// word after the last committed record is 0 (spsc and broadcast: the
// producer writes that 0 before it publishes; mpsc: the consumer zeroes
// what it releases), so a header is the one line a record moves
// (docs/design/ordering.md#one-line-per-record).
//
// Fixed-slot rings (Kind::slots): the data ring is an array of
// slot_count(capacity, slot_size) elements of `slot_size` bytes each, no
// headers; head and tail count elements, not bytes (element i lives at
// offset (i mod slot_count) * slot_size). One producer, one consumer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ring/kinds.h"

namespace shmring {

namespace layout {

inline constexpr std::uint64_t kMagic = 0x474e495252484d53ULL;  // "SHMRRING" LE
inline constexpr std::uint32_t kLayoutVersion = 3;
inline constexpr std::size_t kLine = 128;  // two 64-byte lines: defeats the
                                           // adjacent-line prefetcher pairing
inline constexpr std::size_t kMaxProducers = 64;
inline constexpr std::uint64_t kMinCapacity = 256;
inline constexpr std::uint64_t kMaxCapacity = 1ULL << 40;
inline constexpr std::size_t kRecordAlign = 8;
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kSemaphoreBytes = 64;  // room for a boost
                                                    // interprocess_semaphore

enum class State : std::uint32_t { initializing = 0, ready = 1 };

// ControlBlock::flags (informational; written by the creator).
inline constexpr std::uint32_t kFlagHugePages = 1;  // SHM_HUGETLB segment

// How wakers of this ring order their publication against a sleeper's
// announcement (docs/design/ordering.md#the-wake-up-handshake). Sticky:
// it only ever grows.
//   membarrier: every attacher registered MEMBARRIER_CMD_REGISTER_GLOBAL_
//     EXPEDITED; wakers may use the light path (release store, relaxed
//     load) because sleepers pay membarrier(GLOBAL_EXPEDITED).
//   fallback_requested: an attacher without membarrier set it before it did
//     anything else; every waker that sees it uses the seq_cst path, but a
//     light publication that read `membarrier` just before may still be in
//     flight, so that attacher's sleeps stay short until
//   fallback: a membarrier process issued membarrier(GLOBAL_EXPEDITED) after
//     seeing fallback_requested: every earlier light publication is ordered
//     before anything that reads this value.
enum class WakeMode : std::uint32_t {
  membarrier = 0,
  fallback_requested = 1,
  fallback = 2
};
enum class LastExit : std::uint32_t { none = 0, closed = 1, died = 2 };

// No claim in progress (Slot::intent).
inline constexpr std::uint64_t kNoIntent = ~0ULL;

// A producer or consumer registration: 0 = free, else a ProcessToken
// (pid << 32 | low 32 bits of the process start time, see liveness.h). The
// registration is live while the role's semaphore is held (see above).
struct alignas(32) Slot {
  std::atomic<std::uint64_t> owner;
  // Incremented each time the slot is claimed; MPSC busy headers carry its
  // low 26 bits (owner_tag below).
  std::atomic<std::uint32_t> generation;
  std::uint32_t reserved;
  // MPSC: the tail value this producer is trying to claim from (stored
  // before its CAS on tail), kNoIntent after attach. Names the owner of a
  // claim whose header is still 0 (docs/design/mpsc.md#reading).
  std::atomic<std::uint64_t> intent;
  // The PID namespace stamp of `owner` (ns_stamp(), liveness.h): stored by
  // the registrant before its owner CAS. In what v2 rings reserved (0 in
  // every ring, and left 0 by builds without stamps: then `owner` is judged
  // in the reader's namespace, as those builds did).
  std::atomic<std::uint64_t> pid_ns;
};
static_assert(sizeof(Slot) == 32);

// A sleeping side: `seq` is the futex word (bumped on every wake-up);
// `waiters` is non-zero while someone may sleep (a flag for futex waits, a
// count for the semaphore fallback), so a waker makes no syscall otherwise.
struct WaitWord {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> waiters;
};
static_assert(sizeof(WaitWord) == 8);

// The handshake state (see WakeMode and docs/design.md).
struct WakeControl {
  std::atomic<std::uint32_t> mode;  // WakeMode
  // Non-zero once a process that may publish with the light path (it has
  // membarrier) created a handle on this ring. Sticky.
  std::atomic<std::uint32_t> light_joined;
};
static_assert(sizeof(WakeControl) == 8);

struct ControlBlock {
  // ---- line 0: identity. Written by the creator before `state` is
  // published with a release store; immutable afterwards.
  std::uint64_t magic;
  std::uint32_t version;
  Kind kind;
  std::uint64_t capacity;      // bytes in the data ring, power of two
  std::uint64_t segment_size;  // bytes the creator asked shmget for
  std::uint64_t data_offset;   // where the data ring starts
  std::uint32_t max_producers;
  WaitStrategy wait_strategy;
  std::uint32_t flags;
  std::int32_t creator_pid;
  std::uint64_t creator_token;
  std::atomic<std::uint32_t> state;  // release: pairs with attach's acquire
  // The ring's SysV semaphore set: semaphore 0 is the consumer's, 1 + i
  // producer slot i's (kSemCount in all). Same key as the segment.
  std::int32_t sem_id;
  // Inode of the creator's PID namespace: creator_token means something
  // only there (`shm-ring info`). Each registration has its own stamp
  // (Slot::pid_ns): a ring is shared across PID namespaces.
  std::uint64_t pid_namespace;
  // ==== the fixed-slot kind, in line 0's former padding: the
  // element size of a Kind::slots ring, 0 for record rings (which is what
  // every v2 ring created before it reads here).
  std::uint32_t slot_size;
  std::uint32_t reserved0;
  std::uint8_t pad0[kLine - 88];

  // ---- line 1: written by the consumer only.
  // Position (monotonic byte count, compared modulo 2^64) of the first
  // unreleased byte.
  alignas(kLine) std::atomic<std::uint64_t> head;
  // MPSC: where the release in progress ends. The consumer stores it, then
  // zeroes [head, release_to), then stores head = release_to; a consumer
  // taking over a dead one finishes the zeroing (ring.cc,
  // Consumer::zero_released()).
  std::atomic<std::uint64_t> release_to;
  std::uint8_t pad1[kLine - 16];

  // ---- line 2: written by producers only.
  // Position one past the last claimed byte. SPSC, broadcast: everything
  // before it is committed; stored after each batch's headers, so records
  // of a producer killed in between may lie past it (the next producer
  // walks them). MPSC: claimed by a CAS; every claim below it has a header
  // (0 while its claimer has not written it yet, busy, or committed).
  alignas(kLine) std::atomic<std::uint64_t> tail;
  std::uint8_t pad2[kLine - 8];

  // ---- line 3: the consumer sleeps here waiting for data.
  alignas(kLine) WaitWord data_ready;
  std::uint8_t pad3[kLine - 8];

  // ---- line 4: producers sleep here waiting for space.
  alignas(kLine) WaitWord space_ready;
  std::uint8_t pad4[kLine - 8];

  // ---- line 5: lifecycle (cold).
  alignas(kLine) Slot consumer;
  std::atomic<std::uint32_t> producers_attached;  // informational: a kill
                                                  // between slot CAS and
                                                  // this count skews it;
                                                  // end of stream scans
                                                  // the slots instead
  std::atomic<std::uint32_t> producers_seen;      // ever attached (sticky)
  std::atomic<std::uint32_t> producers_died;      // reaped dead producers
  std::atomic<std::uint32_t> consumers_seen;      // ever attached (sticky)
  std::atomic<std::uint32_t> consumers_died;
  std::atomic<std::uint32_t> records_reclaimed;  // dead producers' records
  std::atomic<std::uint32_t> last_exit;          // LastExit of the latest
                                                 // producer to leave
  std::uint8_t pad5[kLine - 60];

  // ---- line 6: semaphore fallback (WaitStrategy::semaphore).
  alignas(kLine) std::uint8_t data_sem[kSemaphoreBytes];
  std::uint8_t space_sem[kSemaphoreBytes];

  // ---- producer registrations.
  alignas(kLine) Slot producers[kMaxProducers];

  // ==== layout v2 (the wake-up handshake): line 23 (offset 2944,
  // right after the producer slots). Read by every waker on every
  // publication (relaxed), written a few times in the ring's life, so it
  // sits on a line of its own that stays shared.
  alignas(kLine) WakeControl wake;
  std::uint8_t pad_v2[kLine - sizeof(WakeControl)];
  // ==== end of the v2 wake-up fields.
};

static_assert(offsetof(ControlBlock, magic) == 0);
static_assert(offsetof(ControlBlock, version) == 8);
static_assert(offsetof(ControlBlock, kind) == 12);
static_assert(offsetof(ControlBlock, capacity) == 16);
static_assert(offsetof(ControlBlock, segment_size) == 24);
static_assert(offsetof(ControlBlock, data_offset) == 32);
static_assert(offsetof(ControlBlock, max_producers) == 40);
static_assert(offsetof(ControlBlock, wait_strategy) == 44);
static_assert(offsetof(ControlBlock, flags) == 48);
static_assert(offsetof(ControlBlock, creator_pid) == 52);
static_assert(offsetof(ControlBlock, creator_token) == 56);
static_assert(offsetof(ControlBlock, state) == 64);
static_assert(offsetof(ControlBlock, sem_id) == 68);
static_assert(offsetof(ControlBlock, pid_namespace) == 72);
static_assert(offsetof(ControlBlock, slot_size) == 80);
static_assert(offsetof(ControlBlock, head) == 1 * kLine);
static_assert(offsetof(ControlBlock, release_to) == 1 * kLine + 8);
static_assert(offsetof(ControlBlock, tail) == 2 * kLine);
static_assert(offsetof(ControlBlock, data_ready) == 3 * kLine);
static_assert(offsetof(ControlBlock, space_ready) == 4 * kLine);
static_assert(offsetof(ControlBlock, consumer) == 5 * kLine);
static_assert(offsetof(ControlBlock, producers_attached) == 5 * kLine + 32);
static_assert(offsetof(ControlBlock, last_exit) == 5 * kLine + 56);
static_assert(offsetof(ControlBlock, data_sem) == 6 * kLine);
static_assert(offsetof(ControlBlock, space_sem) == 6 * kLine + 64);
static_assert(offsetof(ControlBlock, producers) == 7 * kLine);
static_assert(offsetof(Slot, intent) == 16);
static_assert(offsetof(Slot, pid_ns) == 24);
static_assert(offsetof(ControlBlock, wake) == 23 * kLine);
static_assert(offsetof(ControlBlock, wake) ==
              7 * kLine + kMaxProducers * sizeof(Slot));
static_assert(offsetof(ControlBlock, wake.mode) == 23 * kLine);
static_assert(offsetof(ControlBlock, wake.light_joined) == 23 * kLine + 4);
static_assert(sizeof(ControlBlock) == 24 * kLine);
static_assert(sizeof(ControlBlock) == 3072);

// Semaphores in a ring's set: the consumer's, then one per producer slot.
inline constexpr int kSemCount = 1 + static_cast<int>(kMaxProducers);
constexpr int consumer_sem() { return 0; }
constexpr int producer_sem(std::uint32_t slot) {
  return 1 + static_cast<int>(slot);
}
// The cross-process protocol relies on these being plain lock-free words.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);

// Page-aligned start of the data ring.
inline constexpr std::uint64_t kDataOffset = 4096;
static_assert(kDataOffset >= sizeof(ControlBlock));

// ---- Broadcast rings (Kind::broadcast; docs/design/broadcast.md#layout).
// One producer (producer slot 0), up to kMaxConsumers consumers, each
// with its own cursor on its own 128-byte line in the page after the
// control block; the data ring starts one page later, page-aligned as
// for the other kinds. ControlBlock::head is the producer's published
// low-water mark (the minimum live cursor it last computed: informational,
// `shm-ring info`); each consumer releases into its own cursor instead.
inline constexpr std::uint32_t kMaxConsumers = 16;
inline constexpr std::uint64_t kBroadcastOffset = 4096;
inline constexpr std::uint64_t kBroadcastDataOffset = 8192;

// One consumer's registration and position. `owner` follows the Slot
// rules (0 free, 1 free after a death, else a ProcessToken; live while
// the cursor's role semaphore, cursor_sem(i), is held). `position` is the
// consumer's released position: the producer never writes at or past
// position + capacity while the cursor is registered.
struct alignas(kLine) Cursor {
  std::atomic<std::uint64_t> owner;
  std::atomic<std::uint64_t> position;
  std::atomic<std::uint32_t> generation;  // bumped on every take-over
  std::uint32_t reserved;
  // Overrun::drop_slow: bytes this registration lost to the producer
  // lapping it (written by the consumer; informational).
  std::atomic<std::uint64_t> lost;
  // The PID namespace stamp of `owner`, as Slot::pid_ns (in what was this
  // line's padding).
  std::atomic<std::uint64_t> pid_ns;
  std::uint8_t pad[kLine - 40];
};
static_assert(sizeof(Cursor) == kLine);

struct BroadcastBlock {
  // ---- line 0: identity, written by the creator before ControlBlock::
  // state is published (release); immutable afterwards.
  std::uint32_t max_consumers;  // 1..kMaxConsumers
  Overrun overrun;
  std::uint8_t pad0[kLine - 8];
  // ---- line 1: written by the producer only (Overrun::drop_slow).
  // The end of the span the producer is about to write, stored before it
  // writes a byte there (agrona's tail intent counter): a record at p is
  // intact while tail_intent - p <= capacity; a consumer checks that after
  // it read the record (docs/design/broadcast.md#never-a-torn-record).
  alignas(kLine) std::atomic<std::uint64_t> tail_intent;
  // A seqlock (odd while the producer writes) over two snapshots, each a
  // record boundary with the payload bytes and records committed before it:
  // the oldest record not yet overwritten (where a lapped consumer
  // resumes), and a published tail (where a consumer starts). 4n between
  // writes, 4n + 1 while `oldest` is written, 4n + 3 while `start` is: a
  // producer killed inside a write leaves the one it finished named.
  std::atomic<std::uint64_t> snap_seq;
  std::atomic<std::uint64_t> oldest;
  std::atomic<std::uint64_t> oldest_payload;
  std::atomic<std::uint64_t> oldest_records;
  std::atomic<std::uint64_t> start;
  std::atomic<std::uint64_t> start_payload;
  std::atomic<std::uint64_t> start_records;
  std::uint8_t pad1[kLine - 64];
  // ---- lines 2..17: one cursor per consumer.
  Cursor cursors[kMaxConsumers];
};
static_assert(offsetof(BroadcastBlock, overrun) == 4);
static_assert(offsetof(BroadcastBlock, tail_intent) == kLine);
static_assert(offsetof(BroadcastBlock, start_records) == kLine + 56);
static_assert(offsetof(BroadcastBlock, cursors) == 2 * kLine);
static_assert(offsetof(Cursor, position) == 8);
static_assert(offsetof(Cursor, lost) == 24);
static_assert(offsetof(Cursor, pid_ns) == 32);
static_assert(sizeof(BroadcastBlock) == 18 * kLine);
static_assert(kBroadcastOffset >= sizeof(ControlBlock));
static_assert(kBroadcastOffset + sizeof(BroadcastBlock) <=
              kBroadcastDataOffset);
static_assert(kBroadcastDataOffset % 4096 == 0);

// Cursor i's role semaphore: the one after producer slot 0's (a broadcast
// ring has one producer; semaphore 0, the single consumer's, is unused).
constexpr int cursor_sem(std::uint32_t i) { return 2 + static_cast<int>(i); }
static_assert(cursor_sem(kMaxConsumers - 1) < kSemCount);

// Where the data ring starts for a ring of `kind`.
constexpr std::uint64_t data_offset(Kind kind) {
  return kind == Kind::broadcast ? kBroadcastDataOffset : kDataOffset;
}

// ---- Record header: one 64-bit word, so committing a record is a single
// release store (MPSC) and the consumer reads it with a single acquire load.
//
//   bits  0..31  span: header + payload + alignment slack, multiple of 8;
//                its low 3 bits are reused as flags (span & ~7 is the span)
//                bit 0: busy (MPSC: claimed, not yet committed)
//                bit 1: padding (skip `span` bytes, deliver nothing)
//   committed records and padding:
//   bits 32..34  slack: span - 8 - payload length (0..7)
//   bits 35..47  type: 13 bits for the application
//   busy records (length and type are not known before commit):
//   bits 32..63  owner tag: (slot generation mod 2^26) << 6 | slot index
inline constexpr std::uint64_t kBusy = 1;
inline constexpr std::uint64_t kPadding = 2;
inline constexpr std::uint32_t kMaxType = (1u << 13) - 1;
inline constexpr std::uint32_t kGenerationBits = 26;

struct Header {
  std::uint32_t span;  // flags cleared
  bool busy;
  bool padding;
  std::uint32_t length;  // payload bytes (0 while busy)
  std::uint16_t type;
  std::uint32_t owner;  // owner tag while busy, else 0
};

constexpr std::uint64_t align_up(std::uint64_t n) {
  return (n + kRecordAlign - 1) & ~std::uint64_t{kRecordAlign - 1};
}

constexpr std::uint64_t span_for(std::uint64_t payload) {
  return align_up(kHeaderSize + payload);
}

// A committed record (flags 0) or padding (kPadding).
constexpr std::uint64_t encode(std::uint32_t span, std::uint32_t length,
                               std::uint16_t type, std::uint64_t flags) {
  const std::uint64_t slack = span - kHeaderSize - length;
  return std::uint64_t{span} | flags | (slack << 32) |
         (std::uint64_t{type & kMaxType} << 35);
}

// A claimed, not yet committed record of `owner`.
constexpr std::uint64_t encode_busy(std::uint32_t span, std::uint32_t owner) {
  return std::uint64_t{span} | kBusy | (std::uint64_t{owner} << 32);
}

constexpr Header decode(std::uint64_t w) {
  Header h{};
  h.span = static_cast<std::uint32_t>(w) & ~std::uint32_t{7};
  h.busy = (w & kBusy) != 0;
  h.padding = (w & kPadding) != 0;
  if (h.busy) {
    h.owner = static_cast<std::uint32_t>(w >> 32);
    return h;
  }
  const auto slack = static_cast<std::uint32_t>((w >> 32) & 7);
  h.length = h.span >= kHeaderSize + slack ? h.span - kHeaderSize - slack : 0;
  h.type = static_cast<std::uint16_t>((w >> 35) & kMaxType);
  return h;
}

constexpr std::uint64_t padding_word(std::uint32_t span) {
  return encode(span, span - kHeaderSize, 0, kPadding);
}

// Record headers are read and written as atomics: in MPSC rings the consumer
// reads a header while its producer may be committing it. Each access names
// its own order.
inline std::atomic_ref<std::uint64_t> header_at(std::byte* data,
                                                std::uint64_t off) {
  return std::atomic_ref<std::uint64_t>(
      *reinterpret_cast<std::uint64_t*>(data + off));
}

// Names one registration of a producer slot: the slot index and the slot's
// generation (bumped on every claim), so a record or lock of a departed
// owner is never mistaken for one of the slot's next owner. 2^26 claims of
// one slot while a dead record waits would be needed to alias.
constexpr std::uint32_t owner_tag(std::uint32_t slot, std::uint32_t gen) {
  return ((gen & ((1u << kGenerationBits) - 1)) << 6) | (slot & 0x3f);
}
constexpr std::uint32_t tag_slot(std::uint32_t tag) { return tag & 0x3f; }
constexpr std::uint32_t tag_generation(std::uint32_t tag) { return tag >> 6; }

static_assert(decode(encode(16, 8, 5, 0)).length == 8);
static_assert(decode(encode(16, 1, 5, 0)).length == 1);
static_assert(decode(encode(16, 1, kMaxType, 0)).type == kMaxType);
static_assert(decode(encode_busy(16, 0xffffffffu)).busy);
static_assert(decode(encode_busy(16, 0xffffffffu)).owner == 0xffffffffu);
static_assert(decode(encode_busy(24, 7)).span == 24);
static_assert(decode(padding_word(64)).padding);
static_assert(decode(padding_word(64)).span == 64);
static_assert(span_for(0) == 8 && span_for(1) == 16 && span_for(8) == 16);
static_assert(kMaxProducers <= 64, "owner tag keeps 6 bits of slot index");

// True if head/tail read from the segment can be those of a correct ring:
// aligned, tail at most a ring ahead of head. Positions are compared modulo
// 2^64 everywhere (a difference, never `a < b`), so a position near 2^64
// behaves like any other.
constexpr bool positions_sane(std::uint64_t head, std::uint64_t tail,
                              std::uint64_t capacity) {
  return ((head | tail) & (kRecordAlign - 1)) == 0 && tail - head <= capacity;
}

// ---- Fixed-slot rings (Kind::slots).
//
// Largest element: half the ring, so a ring holds at least two.
constexpr std::uint64_t max_slot_size(std::uint64_t capacity) {
  return capacity / 2 < 0xffffffffULL ? capacity / 2 : 0xffffffffULL;
}
// Elements a ring of `capacity` bytes holds (the tail of the data ring
// beyond slot_count * slot_size is unused).
constexpr std::uint64_t slot_count(std::uint64_t capacity,
                                   std::uint64_t slot_size) {
  return slot_size == 0 ? 0 : capacity / slot_size;
}
// True if element positions read from the segment can be those of a correct
// slots ring: tail at most `count` elements ahead of head (modulo 2^64).
constexpr bool slot_positions_sane(std::uint64_t head, std::uint64_t tail,
                                   std::uint64_t count) {
  return tail - head <= count;
}
static_assert(slot_count(256, 12) == 21 && slot_count(1 << 20, 4) == 1 << 18);

// True if `pos` lies in [from, to) modulo 2^64.
constexpr bool in_window(std::uint64_t from, std::uint64_t pos,
                         std::uint64_t to) {
  return pos - from < to - from;
}

// The largest record a ring of `capacity` bytes accepts. Half the ring
// guarantees that a record always fits once the ring drains, wherever the
// wrap point falls (see docs/design/layout.md#why-half-the-ring).
constexpr std::uint64_t max_span(std::uint64_t capacity) {
  return capacity / 2 < 0xfffffff8ULL ? capacity / 2 : 0xfffffff8ULL;
}
constexpr std::uint64_t max_payload(std::uint64_t capacity) {
  return max_span(capacity) - kHeaderSize;
}

}  // namespace layout
}  // namespace shmring
