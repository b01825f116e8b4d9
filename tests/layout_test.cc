// The control block is an ABI between processes: print and check it.
#include <cstdio>

#include "tests/support.h"

namespace shmring {
namespace {

using layout::ControlBlock;

TEST_CASE("control block offsets are the documented ones") {
  std::printf(
      "sizeof(ControlBlock)=%zu head=%zu tail=%zu release_to=%zu "
      "data_ready=%zu space_ready=%zu consumer=%zu producers=%zu "
      "wake=%zu data_offset=%llu\n",
      sizeof(ControlBlock), offsetof(ControlBlock, head),
      offsetof(ControlBlock, tail), offsetof(ControlBlock, release_to),
      offsetof(ControlBlock, data_ready), offsetof(ControlBlock, space_ready),
      offsetof(ControlBlock, consumer), offsetof(ControlBlock, producers),
      offsetof(ControlBlock, wake),
      static_cast<unsigned long long>(layout::kDataOffset));
  // Hot indices each own a 128-byte pair of lines.
  CHECK(offsetof(ControlBlock, head) % 128 == 0);
  CHECK(offsetof(ControlBlock, tail) - offsetof(ControlBlock, head) >= 128);
  // The consumer's release_to shares head's line (one writer), not tail's.
  CHECK(offsetof(ControlBlock, release_to) / 128 ==
        offsetof(ControlBlock, head) / 128);
  CHECK(offsetof(ControlBlock, data_ready) - offsetof(ControlBlock, tail) >=
        128);
  CHECK(layout::kLayoutVersion == 3);
  CHECK(offsetof(ControlBlock, data_ready) % 128 == 0);
  CHECK(offsetof(ControlBlock, space_ready) % 128 == 0);
  CHECK(alignof(ControlBlock) == 128);
  // The handshake line follows the producer slots, on a line
  // of its own (read by every waker, written a few times per ring).
  CHECK(offsetof(ControlBlock, wake) % 128 == 0);
  CHECK(offsetof(ControlBlock, wake) ==
        offsetof(ControlBlock, producers) +
            layout::kMaxProducers * sizeof(layout::Slot));
  CHECK(sizeof(ControlBlock) - offsetof(ControlBlock, wake) == 128);
  CHECK(sizeof(ControlBlock) <= layout::kDataOffset);
  CHECK(layout::kDataOffset % 4096 == 0);
  // Slots rings: the element size sits in line 0 (identity, written once
  // by the creator), in what is padding on record rings.
  std::printf("slot_size=%zu\n", offsetof(ControlBlock, slot_size));
  CHECK(offsetof(ControlBlock, slot_size) == 80);
  CHECK(offsetof(ControlBlock, slot_size) + 8 <= offsetof(ControlBlock, head));
}

TEST_CASE("registration stamps sit in what layout v2 reserved") {
  // Slot::pid_ns and Cursor::pid_ns (the PID namespace stamp of each
  // registration) took a reserved word and padding: every other offset and
  // size stays.
  CHECK(sizeof(layout::Slot) == 32);
  CHECK(offsetof(layout::Slot, intent) == 16);
  CHECK(offsetof(layout::Slot, pid_ns) == 24);
  CHECK(sizeof(layout::Cursor) == 128);
  CHECK(offsetof(layout::Cursor, lost) == 24);
  CHECK(offsetof(layout::Cursor, pid_ns) == 32);
  CHECK(offsetof(ControlBlock, producers) == 7 * 128);
  CHECK(offsetof(ControlBlock, wake) == 23 * 128);
}

TEST_CASE("record header round-trips every field") {
  for (std::uint32_t len : {0u, 1u, 7u, 8u, 9u, 4095u, 1u << 20}) {
    const auto span = static_cast<std::uint32_t>(layout::span_for(len));
    const auto h = layout::decode(layout::encode(span, len, 1234, 0));
    CHECK(h.span == span);
    CHECK(h.length == len);
    CHECK(h.type == 1234);
    CHECK_FALSE(h.busy);
    CHECK_FALSE(h.padding);
    // A busy header carries the full 32-bit owner tag instead.
    const std::uint32_t tag = layout::owner_tag(63, (1u << 26) - 1);
    const auto b = layout::decode(layout::encode_busy(span, tag));
    CHECK(b.busy);
    CHECK(b.span == span);
    CHECK(b.owner == tag);
    CHECK(layout::tag_slot(b.owner) == 63);
    CHECK(layout::tag_generation(b.owner) == (1u << 26) - 1);
  }
  const auto pad = layout::decode(layout::padding_word(4096));
  CHECK(pad.padding);
  CHECK(pad.span == 4096);
  // Generations wrap only after 2^26 claims of one slot.
  CHECK(layout::owner_tag(5, 1) != layout::owner_tag(5, 1 + 1024));
  CHECK(layout::owner_tag(5, 1) == layout::owner_tag(5, 1 + (1u << 26)));
}

TEST_CASE("positions are sane only aligned, ordered and a ring apart") {
  CHECK(layout::positions_sane(0, 0, 4096));
  CHECK(layout::positions_sane(8, 4104, 4096));
  CHECK_FALSE(layout::positions_sane(8, 4112, 4096));  // more than a ring
  CHECK_FALSE(layout::positions_sane(16, 8, 4096));    // tail behind head
  CHECK_FALSE(layout::positions_sane(4, 4, 4096));     // misaligned
  CHECK_FALSE(layout::positions_sane(0, 4092, 4096));
}

TEST_CASE("a created segment is published ready with its identity") {
  testing::ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096});
  auto* cb = shmring::detail::control(ring.segment());
  CHECK(cb->magic == layout::kMagic);
  CHECK(cb->version == layout::kLayoutVersion);
  CHECK(cb->kind == Kind::mpsc);
  CHECK(cb->capacity == 4096);
  CHECK(cb->segment_size == layout::kDataOffset + 4096);
  CHECK(cb->max_producers == layout::kMaxProducers);
  CHECK(cb->state.load() == static_cast<std::uint32_t>(layout::State::ready));
  CHECK(reinterpret_cast<std::uintptr_t>(cb) % 4096 == 0);
}

}  // namespace
}  // namespace shmring
