// Segment set-up and its refusals: create / attach / remove by key, every
// way an attach can go wrong (each a specific Errc and a message naming the
// problem), option validation, and SPSC role enforcement with takeover of a
// dead producer or consumer. Every test checks that the IPC namespace holds
// as many segments at its end as at its start.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "tests/support.h"

namespace shmring {
namespace {

using testing::own_segment_count;

// Keys unique to this process (the suite's range, tests/support.h).
using testing::test_key;

// Removes whatever segment is under `key` when it goes out of scope: a
// failing REQUIRE must not leak.
class KeyCleanup {
 public:
  explicit KeyCleanup(key_t key) : key_(key) {}
  ~KeyCleanup() {
    const int id = ::shmget(key_, 0, 0);
    if (id >= 0) ::shmctl(id, IPC_RMID, nullptr);
  }

 private:
  key_t key_;
};

// A raw SysV segment made with shmget, for attach targets shmring did not
// create. Removed and detached on scope exit.
class RawSegment {
 public:
  RawSegment(key_t key, std::size_t size) {
    id_ = ::shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
    if (id_ < 0) FAIL("shmget: " << std::strerror(errno));
    void* p = ::shmat(id_, nullptr, 0);
    if (p ==
        reinterpret_cast<void*>(-1)) {  // NOLINT(performance-no-int-to-ptr)
      ::shmctl(id_, IPC_RMID, nullptr);
      FAIL("shmat: " << std::strerror(errno));
    }
    addr_ = static_cast<std::byte*>(p);
    size_ = size;
  }
  ~RawSegment() {
    ::shmdt(addr_);
    ::shmctl(id_, IPC_RMID, nullptr);
  }
  std::byte* data() { return addr_; }
  std::size_t size() const { return size_; }
  int id() const { return id_; }

 private:
  int id_ = -1;
  std::byte* addr_ = nullptr;
  std::size_t size_ = 0;
};

// A valid control block, copied out of a real ring.
std::vector<std::byte> valid_header(RingOptions options) {
  testing::ScopedRing ring(options);
  const auto* p = reinterpret_cast<const std::byte*>(shmring::detail::control(ring.segment()));
  return std::vector<std::byte>(p, p + layout::kDataOffset);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST_CASE("create, attach and remove by key") {
  const int before = own_segment_count();
  const key_t key = test_key(1);
  KeyCleanup cleanup(key);
  {
    auto made = Segment::create(key, {.capacity = 8192});
    REQUIRE(made);
    CHECK(made->key() == key);
    CHECK(made->capacity() == 8192);
    CHECK(made->kind() == Kind::spsc);
    CHECK(own_segment_count() == before + 1);

    auto again = Segment::attach(key);
    REQUIRE(again);
    CHECK(again->id() == made->id());
    CHECK(again->capacity() == 8192);
    CHECK(again->wait_strategy() == WaitStrategy::futex);
    // Both mappings see the same bytes.
    shmring::detail::ring_data(*made)[100] = std::byte{0x5a};
    CHECK(shmring::detail::ring_data(*again)[100] == std::byte{0x5a});

    auto typed = Segment::attach(key, Kind::spsc);
    REQUIRE(typed);
    auto by_id = Segment::attach_id(made->id());
    REQUIRE(by_id);
    CHECK(by_id->key() == key);

    const SegmentInfo info = made->info();
    CHECK(info.key == key);
    CHECK(info.capacity == 8192);
    CHECK(info.segment_size == layout::kDataOffset + 8192);
    CHECK(info.mode == 0600);
    CHECK(info.creator_pid == ::getpid());
    CHECK(info.creator_alive);
    CHECK(info.attach_count == 4);
    CHECK_FALSE(info.marked_for_removal);

    CHECK_FALSE(made->removed());
    REQUIRE(Segment::remove(key));
    CHECK(made->removed());
    // Marked for removal: the key no longer finds it, the mappings live on.
    auto gone = Segment::attach(key);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code == Errc::not_found);
    CHECK(shmring::detail::ring_data(*again)[100] == std::byte{0x5a});
    // Removing twice through a handle is harmless.
    CHECK(made->remove());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("exclusive create refuses an existing key") {
  const int before = own_segment_count();
  const key_t key = test_key(2);
  KeyCleanup cleanup(key);
  {
    auto first = Segment::create(key, {});
    REQUIRE(first);
    auto second = Segment::create(key, {});
    REQUIRE_FALSE(second);
    CHECK(second.error().code == Errc::exists);
    CHECK(contains(second.error().message, "already exists"));
    REQUIRE(first->remove());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("attach to a missing key or shmid is not_found") {
  const int before = own_segment_count();
  auto r = Segment::attach(test_key(3));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::not_found);
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", static_cast<unsigned>(test_key(3)));
  CHECK(contains(r.error().message, hex));
  auto by_id = Segment::attach_id(0x7ffffff0);
  REQUIRE_FALSE(by_id);
  CHECK(by_id.error().code == Errc::not_found);
  auto rm = Segment::remove(test_key(3));
  REQUIRE_FALSE(rm);
  CHECK(rm.error().code == Errc::not_found);
  CHECK(own_segment_count() == before);
}

TEST_CASE("a segment whose size disagrees with its header is size_mismatch") {
  const int before = own_segment_count();
  const auto header = valid_header({.capacity = 4096});
  for (const std::size_t size :
       {layout::kDataOffset + 8192, layout::kDataOffset + 2048,
        layout::kDataOffset + 4096 + 1}) {
    CAPTURE(size);
    const key_t key = test_key(4);
    {
      RawSegment raw(key, size);
      std::memcpy(raw.data(), header.data(), header.size());
      auto r = Segment::attach(key);
      REQUIRE_FALSE(r);
      CHECK(r.error().code == Errc::size_mismatch);
      // The message names both sizes.
      CHECK(contains(r.error().message, std::to_string(size)));
      CHECK(contains(r.error().message,
                     std::to_string(layout::kDataOffset + 4096)));
      auto by_id = Segment::attach_id(raw.id());
      REQUIRE_FALSE(by_id);
      CHECK(by_id.error().code == Errc::size_mismatch);
    }
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("a segment too small for any ring is not_shmring") {
  const int before = own_segment_count();
  {
    RawSegment raw(test_key(5), 100);
    auto r = Segment::attach(test_key(5));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::not_shmring);
    CHECK(contains(r.error().message, "too small"));
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("a segment full of garbage is not_shmring") {
  const int before = own_segment_count();
  std::mt19937_64 rng(GENERATE(1, 2, 3, 4, 5));
  {
    RawSegment raw(test_key(6), layout::kDataOffset + 4096);
    for (std::size_t i = 0; i < raw.size(); i += 8) {
      const std::uint64_t v = rng();
      std::memcpy(raw.data() + i, &v, 8);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto r = Segment::attach(test_key(6));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::not_shmring);
    CHECK(contains(r.error().message, "not created by shmring"));
    // Refused at once, not after the not-ready grace period.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("a header with a valid magic but nonsense fields is refused") {
  const int before = own_segment_count();
  const auto header = valid_header({.capacity = 4096});
  const std::size_t size = layout::kDataOffset + 4096;
  auto patched = [&](auto patch) {
    RawSegment raw(test_key(7), size);
    std::memcpy(raw.data(), header.data(), header.size());
    patch(reinterpret_cast<layout::ControlBlock*>(raw.data()));
    auto r = Segment::attach(test_key(7));
    REQUIRE_FALSE(r);
    return r.error();
  };
  CHECK(patched([](auto* cb) { cb->kind = static_cast<Kind>(9); }).code ==
        Errc::not_shmring);
  CHECK(patched([](auto* cb) { cb->capacity = 4000; }).code ==
        Errc::size_mismatch);
  CHECK(patched([](auto* cb) { cb->capacity = 1ULL << 41; }).code ==
        Errc::size_mismatch);
  CHECK(patched([](auto* cb) { cb->data_offset = 2048; }).code ==
        Errc::size_mismatch);
  CHECK(patched([](auto* cb) { cb->max_producers = 2; }).code ==
        Errc::not_shmring);
  CHECK(patched([](auto* cb) { cb->max_producers = 0; }).code ==
        Errc::not_shmring);
  CHECK(patched([](auto* cb) {
          cb->wait_strategy = static_cast<WaitStrategy>(0);
        }).code == Errc::not_shmring);
  CHECK(patched([](auto* cb) {
          cb->state.store(7, std::memory_order_relaxed);
        }).code == Errc::not_shmring);
  CHECK(patched([](auto* cb) { cb->magic ^= 1; }).code == Errc::not_shmring);
  CHECK(own_segment_count() == before);
}

TEST_CASE("a zeroed segment (creator died mid-create) is not_ready") {
  const int before = own_segment_count();
  {
    RawSegment raw(test_key(8), layout::kDataOffset + 4096);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = Segment::attach(test_key(8));
    const auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::not_ready);
    CHECK(contains(r.error().message, "never initialised"));
    // It gives a creator at work a grace period before refusing.
    CHECK(waited >= std::chrono::milliseconds(500));
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("an attacher waits for a creator that finishes late") {
  const int before = own_segment_count();
  const auto header = valid_header({.capacity = 4096});
  {
    RawSegment raw(test_key(9), layout::kDataOffset + 4096);
    auto* cb = reinterpret_cast<layout::ControlBlock*>(raw.data());
    // Identity in place, `state` still initializing: a creator at work.
    std::memcpy(raw.data(), header.data(), header.size());
    // relaxed: the creator thread starts after it (thread start orders).
    cb->state.store(0, std::memory_order_relaxed);
    std::thread creator([cb] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      cb->state.store(static_cast<std::uint32_t>(layout::State::ready),
                      std::memory_order_release);
    });
    auto r = Segment::attach(test_key(9));
    creator.join();
    REQUIRE(r);
    CHECK(r->capacity() == 4096);
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("the wrong ring kind is wrong_kind") {
  const int before = own_segment_count();
  const key_t key = test_key(10);
  KeyCleanup cleanup(key);
  {
    auto made = Segment::create(key, {.kind = Kind::mpsc, .capacity = 4096});
    REQUIRE(made);
    auto r = Segment::attach(key, Kind::spsc);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::wrong_kind);
    CHECK(contains(r.error().message, "mpsc"));
    CHECK(contains(r.error().message, "spsc"));
    auto by_id = Segment::attach_id(made->id(), Kind::spsc);
    REQUIRE_FALSE(by_id);
    CHECK(by_id.error().code == Errc::wrong_kind);
    CHECK(Segment::attach(key, Kind::mpsc));
    REQUIRE(made->remove());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("another layout version is version_mismatch, naming both") {
  const int before = own_segment_count();
  const key_t key = test_key(11);
  KeyCleanup cleanup(key);
  {
    auto made = Segment::create(key, {.capacity = 4096});
    REQUIRE(made);
    shmring::detail::control(*made)->version = layout::kLayoutVersion + 41;
    auto r = Segment::attach(key);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::version_mismatch);
    INFO(r.error().message);
    CHECK(contains(r.error().message,
                   "v" + std::to_string(layout::kLayoutVersion + 41)));
    CHECK(contains(r.error().message,
                   "v" + std::to_string(layout::kLayoutVersion)));
    REQUIRE(made->remove());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("remove refuses a segment shmring did not create unless forced") {
  const int before = own_segment_count();
  {
    RawSegment raw(test_key(12), 100);
    auto r = Segment::remove(test_key(12));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::not_shmring);
    CHECK(Segment::remove(test_key(12), /*force=*/true));
    CHECK_FALSE(Segment::remove(test_key(12), true));
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("key_from_path and parse_key") {
  SECTION("ftok of a missing path is not_found") {
    auto r = key_from_path("/nonexistent/shmring/path", 'R');
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::not_found);
    CHECK(contains(r.error().message, "/nonexistent/shmring/path"));
  }
  SECTION("ftok of an existing path, and bad project ids") {
    const char* dir = std::getenv("TEST_TMPDIR");
    const std::string path = dir != nullptr ? dir : "/tmp";
    auto k = key_from_path(path, 'R');
    REQUIRE(k);
    CHECK(*k == ::ftok(path.c_str(), 'R'));
    auto k2 = key_from_path(path, 'S');
    REQUIRE(k2);
    CHECK(*k2 != *k);
    for (const int proj : {0, -1, 256}) {
      auto bad = key_from_path(path, proj);
      REQUIRE_FALSE(bad);
      CHECK(bad.error().code == Errc::invalid_argument);
    }
  }
  SECTION("parse_key") {
    auto hex = parse_key("0x5eed");
    REQUIRE(hex);
    CHECK(*hex == 0x5eed);
    auto dec = parse_key("24301");
    REQUIRE(dec);
    CHECK(*dec == 24301);
    auto top = parse_key("0xffffffff");
    REQUIRE(top);
    CHECK(static_cast<std::uint32_t>(*top) == 0xffffffffu);
    for (const char* bad : {"", "0", "0x0", "-1", "0x100000000", "12abc", "key",
                            "0x", "99999999999999999999999"}) {
      CAPTURE(bad);
      auto r = parse_key(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().code == Errc::invalid_argument);
      CHECK_FALSE(r.error().message.empty());
    }
  }
}

TEST_CASE("attach_or_create") {
  const int before = own_segment_count();
  const key_t key = test_key(13);
  KeyCleanup cleanup(key);
  {
    auto a = Segment::attach_or_create(key, {.capacity = 4096});
    REQUIRE(a);
    CHECK(own_segment_count() == before + 1);
    auto b = Segment::attach_or_create(key, {.capacity = 4096});
    REQUIRE(b);
    CHECK(b->id() == a->id());
    CHECK(own_segment_count() == before + 1);
    auto c = Segment::attach_or_create(key, {.capacity = 8192});
    REQUIRE_FALSE(c);
    CHECK(c.error().code == Errc::size_mismatch);
    CHECK(contains(c.error().message, "4096"));
    CHECK(contains(c.error().message, "8192"));
    auto d =
        Segment::attach_or_create(key, {.kind = Kind::mpsc, .capacity = 4096});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == Errc::wrong_kind);
    REQUIRE(a->remove());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("invalid ring options are invalid_argument and create nothing") {
  const int before = own_segment_count();
  KeyCleanup cleanup(test_key(14));
  const RingOptions bad[] = {
      {.capacity = 0},
      {.capacity = 1000},
      {.capacity = 4097},
      {.capacity = 128},  // below kMinCapacity
      {.capacity = (1ULL << 40) + 4096},
      {.capacity = 1ULL << 41},
      {.capacity = 3ULL << 40},
      {.mode = 0400},
      {.mode = 0200},
      {.mode = 0066},
      {.mode = 01600},
      {.kind = static_cast<Kind>(0)},
      {.kind = static_cast<Kind>(3)},
      {.wait = static_cast<WaitStrategy>(0)},
      {.wait = static_cast<WaitStrategy>(4)},
      {.kind = Kind::spsc, .max_producers = 2},
      {.kind = Kind::mpsc, .max_producers = 65},
  };
  for (const RingOptions& o : bad) {
    CAPTURE(o.capacity, o.mode, static_cast<int>(o.kind),
            static_cast<int>(o.wait), o.max_producers);
    const auto e = validate(o);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == Errc::invalid_argument);
    CHECK_FALSE(e.error().message.empty());
    auto r = Segment::create_private(o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    auto k = Segment::create(test_key(14), o);
    REQUIRE_FALSE(k);
    CHECK(k.error().code == Errc::invalid_argument);
  }
  auto cap_msg = validate({.capacity = 1000});
  REQUIRE_FALSE(cap_msg);
  CHECK(contains(cap_msg.error().message, "1000"));
  CHECK(contains(cap_msg.error().message, "power of two"));
  // The limits themselves are accepted.
  CHECK(validate({.capacity = layout::kMinCapacity}));
  CHECK(validate({.capacity = layout::kMaxCapacity}));
  CHECK(validate({.mode = 0666}));
  CHECK(validate({.kind = Kind::mpsc, .max_producers = 64}));
  CHECK(own_segment_count() == before);
}

TEST_CASE("the mode is applied to the segment") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096, .mode = 0640});
    CHECK(ring.segment().info().mode == 0640);
    struct shmid_ds ds {};
    REQUIRE(::shmctl(ring.segment().id(), IPC_STAT, &ds) == 0);
    CHECK((ds.shm_perm.mode & 0777) == 0640);
  }
  CHECK(own_segment_count() == before);
}

// ---- Roles.

TEST_CASE("an SPSC ring admits one producer and one consumer") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096});
    auto p1 = Producer::attach(ring.segment());
    REQUIRE(p1);
    auto p2 = Producer::attach(ring.segment());
    REQUIRE_FALSE(p2);
    CHECK(p2.error().code == Errc::role_taken);
    CHECK(contains(p2.error().message, std::to_string(::getpid())));

    auto c1 = Consumer::attach(ring.segment());
    REQUIRE(c1);
    auto c2 = Consumer::attach(ring.segment());
    REQUIRE_FALSE(c2);
    CHECK(c2.error().code == Errc::role_taken);
    CHECK(contains(c2.error().message, std::to_string(::getpid())));

    // Another mapping of the segment changes nothing: the role is the ring's.
    Segment other = ring.attach_again();
    CHECK(Producer::attach(other).error().code == Errc::role_taken);
    CHECK(Consumer::attach(other).error().code == Errc::role_taken);

    // Closed roles are free again.
    p1->close();
    c1->close();
    auto p3 = Producer::attach(other);
    REQUIRE(p3);
    auto c3 = Consumer::attach(other);
    REQUIRE(c3);
    const SegmentInfo info = ring.segment().info();
    CHECK(info.producers_seen == 2);
    CHECK(info.consumers_seen == 2);
    CHECK(info.producers.size() == 1);
    CHECK(info.consumer_pid == ::getpid());
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("a live role held by another process is refused") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096});
    testing::ChildGuard children;
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const int id = ring.segment().id();
    const pid_t child = children.spawn([&] {
      auto seg = Segment::attach_id(id);
      if (!seg) return 2;
      auto p = Producer::attach(*seg);
      auto c = Consumer::attach(*seg);
      if (!p || !c) return 3;
      char x = 1;
      if (::write(ready[1], &x, 1) != 1) return 4;
      ::pause();  // until killed
      return 0;
    });
    char x;
    REQUIRE(::read(ready[0], &x, 1) == 1);
    ::close(ready[0]);
    ::close(ready[1]);
    auto p = Producer::attach(ring.segment());
    REQUIRE_FALSE(p);
    CHECK(p.error().code == Errc::role_taken);
    CHECK(contains(p.error().message, std::to_string(child)));
    auto c = Consumer::attach(ring.segment());
    REQUIRE_FALSE(c);
    CHECK(c.error().code == Errc::role_taken);
    CHECK(contains(c.error().message, std::to_string(child)));
    // Killed -9: both roles can be taken over.
    ::kill(child, SIGKILL);
    const auto st = children.wait(child, std::chrono::seconds(30));
    CHECK(st.signal == SIGKILL);
    auto p2 = Producer::attach(ring.segment());
    REQUIRE(p2);
    auto c2 = Consumer::attach(ring.segment());
    REQUIRE(c2);
    const SegmentInfo info = ring.segment().info();
    CHECK(info.producers_died == 1);
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE("a killed consumer's role is taken over while it is still a zombie") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096});
    testing::ChildGuard children;
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = children.spawn([&] {
      auto c = Consumer::attach(ring.segment());
      if (!c) return 3;
      char x = 1;
      if (::write(ready[1], &x, 1) != 1) return 4;
      ::pause();
      return 0;
    });
    char x;
    REQUIRE(::read(ready[0], &x, 1) == 1);
    ::close(ready[0]);
    ::close(ready[1]);
    REQUIRE(Consumer::attach(ring.segment()).error().code == Errc::role_taken);
    ::kill(child, SIGKILL);
    // Not reaped yet: a zombie holds no role either.
    siginfo_t info;
    REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info,
                     WEXITED | WNOWAIT) == 0);
    auto c = Consumer::attach(ring.segment());
    REQUIRE(c);
    (void)children.wait(child, std::chrono::seconds(30));
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE(
    "a consumer that exits without closing is taken over, resuming at "
    "its last release") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096});
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    for (std::uint16_t i = 0; i < 10; ++i) {
      std::vector<std::byte> rec(20, std::byte{static_cast<unsigned char>(i)});
      REQUIRE(p->try_write(rec, i) == Status::ok);
    }
    testing::ChildGuard children;
    // The child reads records 0..3, releases after 0..2, peeks 3 and 4 and
    // exits without release() or close().
    const pid_t child = children.spawn([&] {
      auto c = Consumer::attach(ring.segment());
      if (!c) return 3;
      for (std::uint16_t i = 0; i < 5; ++i) {
        Peeked r = c->try_peek();
        if (!r || r.record.type != i) return 10 + i;
        if (i == 2) c->release();
      }
      ::_exit(0);  // no destructors: the role is left held
    });
    const auto st = children.wait(child, std::chrono::seconds(30));
    REQUIRE(st.exited);
    REQUIRE(st.code == 0);
    auto c = Consumer::attach(ring.segment());
    REQUIRE(c);
    // Records 3 and 4 were peeked but never released: they come again.
    for (std::uint16_t i = 3; i < 10; ++i) {
      Peeked r = c->try_peek();
      REQUIRE(r);
      CHECK(r.record.type == i);
      CHECK(r.record.size == 20);
      c->release();
    }
    CHECK(c->try_peek().status == Status::would_block);
  }
  CHECK(own_segment_count() == before);
}

TEST_CASE(
    "a producer that exits without closing is taken over and the "
    "stream continues") {
  const int before = own_segment_count();
  {
    testing::ScopedRing ring({.capacity = 4096});
    auto c = Consumer::attach(ring.segment());
    REQUIRE(c);
    testing::ChildGuard children;
    const pid_t child = children.spawn([&] {
      auto p = Producer::attach(ring.segment());
      if (!p) return 3;
      for (std::uint16_t i = 0; i < 5; ++i) {
        std::vector<std::byte> rec(9, std::byte{1});
        if (p->try_write(rec, i) != Status::ok) return 4;
      }
      // An open, uncommitted reservation dies with the process.
      auto r = p->try_reserve(30);
      if (!r) return 5;
      ::_exit(0);
    });
    const auto st = children.wait(child, std::chrono::seconds(30));
    REQUIRE(st.exited);
    REQUIRE(st.code == 0);
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    std::vector<std::byte> rec(9, std::byte{2});
    REQUIRE(p->try_write(rec, 5) == Status::ok);
    for (std::uint16_t i = 0; i < 6; ++i) {
      Peeked r = c->try_peek();
      REQUIRE(r);
      CHECK(r.record.type == i);
      CHECK(r.record.size == 9);
    }
    c->release();
    CHECK(c->try_peek().status == Status::would_block);
    p->close();
    CHECK(c->try_peek().status == Status::closed);
  }
  CHECK(own_segment_count() == before);
}

}  // namespace
}  // namespace shmring

// ---- Huge pages.

namespace shmring {
namespace {

std::string read_file_text(const char* path) {
  std::ifstream in(path);
  std::string s;
  in >> s;
  return s;
}

bool write_file_text(const char* path, const std::string& text) {
  std::ofstream out(path);
  out << text << "\n";
  out.flush();
  return static_cast<bool>(out);
}

TEST_CASE("a huge-page ring works, or the error names nr_hugepages") {
  const char* kNr = "/proc/sys/vm/nr_hugepages";
  const int before = own_segment_count();
  RingOptions o{.capacity = 1 << 16, .hugepages = true};
  auto made = Segment::create_private(o);
  if (!made && made.error().code == Errc::permission_denied) {
    // SHM_HUGETLB needs CAP_IPC_LOCK (or vm.hugetlb_shm_group).
    testing::privileged_skip("huge-page segment refused (EPERM): " +
                             made.error().message);
    return;
  }
  // As root (CI) reserve two huge pages for the test, then restore.
  std::string saved;
  if (!made && made.error().code == Errc::limit && ::geteuid() == 0) {
    saved = read_file_text(kNr);
    const long n = std::strtol(saved.c_str(), nullptr, 10);
    errno = 0;
    if (!saved.empty() && write_file_text(kNr, std::to_string(n + 2))) {
      made = Segment::create_private(o);
    } else {
      const int err = errno;
      saved.clear();
      if (testing::not_permitted(err)) {
        testing::privileged_skip(std::string("root cannot write ") + kNr +
                                 " (EPERM) to reserve huge pages");
        return;
      }
    }
  }
  struct Restore {
    const char* path;
    std::string value;
    ~Restore() {
      if (!value.empty()) write_file_text(path, value);
    }
  } restore{kNr, saved};
  if (!made) {
    // No huge pages on this machine (none reserved, and we are not root or
    // the kernel could not reserve them): the error must say how to fix it.
    CHECK(made.error().code == Errc::limit);
    CHECK_THAT(made.error().message,
               Catch::Contains("/proc/sys/vm/nr_hugepages"));
    testing::environment_skip("no free huge pages (" + std::string(kNr) + "=" +
                     read_file_text(kNr) +
                     (::geteuid() == 0 ? ", reserving 2 more failed"
                                       : "; as root the test reserves 2") +
                     "): " + made.error().message);
    CHECK(own_segment_count() == before);
    return;
  }
  {
    Segment seg = std::move(made).value();
    struct Remove {
      Segment& s;
      ~Remove() { (void)s.remove(); }
    } remove{seg};
    const SegmentInfo info = seg.info();
    CHECK(info.hugepages);
    CHECK(info.segment_size % (2u << 20) == 0);  // whole huge pages (x86-64)
    auto again = Segment::attach_id(seg.id());
    REQUIRE(again);
    auto p = Producer::attach(seg);
    auto c = Consumer::attach(*again);
    REQUIRE(p);
    REQUIRE(c);
    for (std::uint64_t i = 0; i < 10000; ++i) {
      REQUIRE(p->write(std::as_bytes(std::span<const std::uint64_t, 1>(&i, 1)),
                       std::chrono::seconds(1)) == Status::ok);
      Peeked got = c->peek(std::chrono::seconds(1));
      REQUIRE(got);
      std::uint64_t v = 0;
      std::memcpy(&v, got.record.data, 8);
      REQUIRE(v == i);
      c->release();
    }
  }
  CHECK(own_segment_count() == before);
}

}  // namespace
}  // namespace shmring
