// A generator of well-formed fuzz programs (see fuzz_core.h) for the seeded
// Catch2 driver and for seeding the libFuzzer corpus. Random bytes are valid
// programs too; this one just spends its bytes where they matter: it emits
// exactly the operands each op reads, prefers special values, and makes a
// share of the programs mutation-free so the exact-delivery properties run.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tests/hardening/fuzz_core.h"

namespace shmring::hardening {

inline std::vector<std::uint8_t> generate_program(std::mt19937_64& rng) {
  std::vector<std::uint8_t> out;
  auto byte = [&] { return static_cast<std::uint8_t>(rng()); };
  auto chance = [&](unsigned percent) { return rng() % 100 < percent; };
  auto put16 = [&](std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
  };
  auto put_value = [&] {
    if (chance(80)) {
      out.push_back(static_cast<std::uint8_t>(rng() % kSpecialValues));
      return;
    }
    out.push_back(0xff);
    std::uint64_t v = rng();
    if (chance(50)) v &= 0xffff;  // small numbers are the interesting ones
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto size16 = [&] {
    // Mostly small records, some up to and beyond the largest.
    return static_cast<std::uint16_t>(chance(70) ? rng() % 64 : rng() % 40000);
  };
  auto put_op = [&](Op op) {
    out.push_back(static_cast<std::uint8_t>(op));
    switch (op) {
      case kSetField:
      case kSetHeader:
        out.push_back(byte());
        put_value();
        break;
      case kSetHeaderAt:
        put16(static_cast<std::uint16_t>(rng()));
        put_value();
        break;
      case kSetDataByte:
        put16(static_cast<std::uint16_t>(rng()));
        out.push_back(byte());
        break;
      case kPeekWait:
      case kPeekBatch:
      case kFlush:
      case kProducerCycle:
        out.push_back(byte());
        break;
      case kReserveCommit:
        out.push_back(byte());
        put16(size16());
        put16(static_cast<std::uint16_t>(rng()));
        out.push_back(byte());
        break;
      case kReserveAbort:
      case kWrite:
        out.push_back(byte());
        put16(size16());
        break;
      case kReserveWait:
        out.push_back(byte());
        put16(size16());
        out.push_back(byte());
        break;
      default:
        break;
    }
  };
  // Scenario; its last byte selects the kind attach expects (rarely the
  // wrong one: that ends the program at attach).
  for (std::size_t i = 0; i + 1 < kScenarioBytes; ++i) out.push_back(byte());
  out.push_back(static_cast<std::uint8_t>(chance(5) ? 2 : rng() % 2));
  const bool mutate = chance(70);
  // Prologue mutations: before anyone attaches.
  if (mutate) {
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      put_op(static_cast<Op>(rng() % (kSetDataByte + 1)));
    }
  }
  // Body.
  const int ops = 4 + static_cast<int>(rng() % 40);
  for (int i = 0; i < ops; ++i) {
    if (mutate && chance(15)) {
      put_op(static_cast<Op>(rng() % (kSetDataByte + 1)));
    } else {
      put_op(static_cast<Op>(kPeek + rng() % (kOpCount - kPeek)));
    }
  }
  return out;
}

}  // namespace shmring::hardening
