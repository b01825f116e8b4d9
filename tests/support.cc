#include "tests/support.h"

#include <cstring>

namespace shmring::testing {

int segment_count() {
  struct shm_info info;
  const int r = ::shmctl(0, SHM_INFO, reinterpret_cast<struct shmid_ds*>(&info));
  REQUIRE(r >= 0);
  return info.used_ids;
}

ScopedRing::ScopedRing(RingOptions options) {
  auto s = Segment::create_private(options);
  if (!s) FAIL("create_private: " << s.error().message);
  segment_.emplace(std::move(s).value());
}

ScopedRing::~ScopedRing() {
  if (segment_) (void)segment_->remove();
}

Segment ScopedRing::attach_again() const {
  auto s = Segment::attach_id(segment_->id());
  if (!s) FAIL("attach_id: " << s.error().message);
  return std::move(s).value();
}

namespace {
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
}  // namespace

void fill_payload(std::span<std::byte> out, std::uint32_t producer,
                  std::uint64_t seq) {
  std::uint64_t state = mix((std::uint64_t{producer} << 48) ^ seq);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % 8 == 0) state = mix(state + i);
    out[i] = static_cast<std::byte>(state >> ((i % 8) * 8));
  }
}

bool check_payload(std::span<const std::byte> in, std::uint32_t producer,
                   std::uint64_t seq) {
  std::uint64_t state = mix((std::uint64_t{producer} << 48) ^ seq);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (i % 8 == 0) state = mix(state + i);
    if (in[i] != static_cast<std::byte>(state >> ((i % 8) * 8))) return false;
  }
  return true;
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void set_positions(Segment& segment, std::uint64_t pos) {
  auto* cb = segment.control();
  cb->head.store(pos);
  cb->tail.store(pos);
}

}  // namespace shmring::testing
