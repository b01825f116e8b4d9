// The segment fuzzer's core, shared by two drivers: a seeded Catch2 test
// (fuzz_test.cc, runs in `bazel test //...` and under the sanitizer configs)
// and a libFuzzer target (fuzz_main.cc, built by scripts/fuzz with clang).
//
// One input is a small program (see Op below):
//   1. a scenario header (kScenarioBytes) picks kind, wait strategy,
//      capacity, start position, how many records a builder producer writes
//      (and a builder consumer reads) into a fresh private segment, and
//      which kind the attacher expects;
//   2. leading mutation ops overwrite control-block words, record headers or
//      payload bytes through a "hostile" mapping;
//   3. Segment::attach_id + Consumer::attach + Producer::attach on a second
//      mapping, as another process would;
//   4. the remaining ops interleave try_peek/release/peek(timeout)/reserve/
//      commit/abort/close/re-attach with further mutations (a peer that
//      scribbles while we run);
//   5. every producer closes and the consumer drains, bounded.
// Properties checked: results are valid enum values; every record and
// reservation handed out lies inside the ring; a drain ends within
// capacity/8 records; sanitizers see no bad access; and, when the program
// mutated nothing, the ring behaves exactly (no corrupt result, every
// committed record delivered once, in order, byte-exact, then end of stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace shmring::hardening {

// Opcodes of the fuzz program; an op byte is taken modulo kOpCount.
enum Op : std::uint8_t {
  kSetField,       // u8 field, value          control-block word
  kSetHeader,      // u8 record index, value   header of the n-th record
  kSetHeaderAt,    // u16 offset, value        any 8-aligned ring word
  kSetDataByte,    // u16 offset, u8 byte      any ring byte
  kPeek,           //                          try_peek
  kRelease,        //                          release
  kPeekWait,       // u8 microseconds          peek(timeout)
  kPeekBatch,      // u8 n                     try_peek_batch
  kRead,           //                          read(timeout 0)
  kReserveCommit,  // u8 who, u16 size, u16 used, u8 flags
  kReserveAbort,   // u8 who, u16 size
  kReserveWait,    // u8 who, u16 size, u8 microseconds
  kWrite,          // u8 who, u16 size         try_write
  kFlush,          // u8 who
  kProducerCycle,  // u8 who                   close + attach again
  kConsumerCycle,  //                          close + attach again
  kInfo,           //                          Segment::info()
  kOpCount
};

inline bool is_mutation(std::uint8_t op) {
  return op % kOpCount <= kSetDataByte;
}

// Values: a selector byte below kSpecialValues names an interesting value
// relative to the word being replaced (0, ~0, capacity, cur+8, misaligned,
// a live or a dead process token, ...); any other selector is followed by
// 8 raw bytes.
inline constexpr std::uint8_t kSpecialValues = 40;

// Scenario header length (bytes before the first op).
inline constexpr std::size_t kScenarioBytes = 5;

struct FuzzResult {
  std::string failure;  // empty: every property held
  bool mutated = false;
  bool attached = false;   // Segment::attach_id succeeded
  int corrupt_results = 0; // Status::corrupt seen
  std::uint64_t delivered = 0;
};

// Runs one program. Never leaks a segment: the segment is marked for removal
// (IPC_RMID) right after it is created; mappings keep it alive until return.
FuzzResult run_fuzz_input(std::span<const std::uint8_t> input);

}  // namespace shmring::hardening
