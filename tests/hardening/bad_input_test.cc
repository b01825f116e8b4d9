// The bad-input table at the library level, one TEST_CASE per row
// (docs/hardening.md lists them with the tools' exit codes). Each row
// asserts the Errc AND that the message names the problem, and that nothing
// is left behind among the segments this test made
// (testing::own_segment_count).
//
// The permission rows need a second user: permission_test.cc.
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/hardening/child_report.h"
#include "tests/support.h"

namespace shmring {
namespace {

using Catch::Matchers::Contains;
using testing::as_bytes;
using testing::as_string;

using hardening::ChildReport;
using hardening::report_error;
using hardening::test_key;
using hardening::tmpdir;

// A raw SysV segment, as another program would make it; removed on scope
// exit.
class RawSegment {
 public:
  RawSegment(key_t key, std::size_t size, int mode = 0600) {
    id_ = ::shmget(key, size, IPC_CREAT | IPC_EXCL | mode);
    if (id_ < 0) FAIL("shmget: " << std::strerror(errno));
    addr_ = static_cast<std::byte*>(::shmat(id_, nullptr, 0));
    if (addr_ == reinterpret_cast<std::byte*>(-1)) FAIL("shmat: " << std::strerror(errno));
  }
  ~RawSegment() {
    ::shmdt(addr_);
    ::shmctl(id_, IPC_RMID, nullptr);
  }
  int id() const { return id_; }
  std::byte* addr() const { return addr_; }

 private:
  int id_ = -1;
  std::byte* addr_ = nullptr;
};

// ----------------------------------------------------------- capacity rows

TEST_CASE("bad input: capacity 0, not a power of two, out of range") {
  const int before = testing::own_segment_count();
  for (std::uint64_t cap : {std::uint64_t{0}, std::uint64_t{1000},
                            std::uint64_t{128}, std::uint64_t{1} << 41}) {
    INFO("capacity " << cap);
    auto s = Segment::create_private({.capacity = cap});
    REQUIRE_FALSE(s);
    CHECK(s.error().code == Errc::invalid_argument);
    CHECK_THAT(s.error().message, Contains("capacity " + std::to_string(cap)));
    CHECK_THAT(s.error().message, Contains("power of two"));
  }
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("bad input: capacity beyond what the kernel allows is Errc::limit") {
  // 2^40 bytes is a valid ring size, but no machine here backs a 1 TiB
  // segment: shmget fails (EINVAL above SHMMAX, ENOMEM/ENOSPC above what
  // the kernel will account), and the message names the limits.
  const int before = testing::own_segment_count();
  auto s = Segment::create_private({.capacity = layout::kMaxCapacity});
  if (s) {
    // This machine really grants 1 TiB (overcommit_memory=1 and huge
    // SHMMAX/SHMALL): nothing to refuse. Clean up and say so.
    (void)s->remove();
    WARN("skipped: the kernel granted a 1 TiB segment here");
    return;
  }
  CHECK(s.error().code == Errc::limit);
  CHECK_THAT(s.error().message, Contains("kernel.shmmax="));
  CHECK_THAT(s.error().message, Contains("kernel.shmall="));
  // Whichever limit refused it is named, with what to do about it (a
  // sysctl for a SysV limit, a smaller capacity for memory).
  CHECK_THAT(s.error().message,
             Contains("sysctl -w kernel.") || Contains("not enough memory"));
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("bad input: a ring larger than SHMMAX names the limit") {
  // A child in a fresh IPC namespace lowers kernel.shmmax there (it is
  // per-namespace) and asks for more. Nothing on the host changes.
  testing::SharedBlock<ChildReport> report;
  testing::ChildGuard guard;
  // Exit 3: refused with EPERM/EACCES (not privileged here: a skip);
  // exit 4: any other errno (a failure). The message says which step.
  const pid_t pid = guard.spawn([&]() -> int {
    if (::unshare(CLONE_NEWIPC) != 0) {
      const int err = errno;
      std::snprintf(report->message, sizeof report->message,
                    "unshare(CLONE_NEWIPC): %s", std::strerror(err));
      return testing::not_permitted(err) ? 3 : 4;
    }
    const int fd = ::open("/proc/sys/kernel/shmmax", O_WRONLY);
    const char limit[] = "1048576\n";
    if (fd < 0 || ::write(fd, limit, sizeof limit - 1) !=
                      static_cast<ssize_t>(sizeof limit - 1)) {
      const int err = errno;
      std::snprintf(report->message, sizeof report->message,
                    "writing /proc/sys/kernel/shmmax: %s", std::strerror(err));
      if (fd >= 0) ::close(fd);
      return testing::not_permitted(err) || err == EACCES ? 3 : 4;
    }
    ::close(fd);
    report->stage = 1;
    auto s = Segment::create_private({.capacity = 1 << 21});
    if (s) {
      report->ok = true;
      (void)s->remove();
    } else {
      report_error(*report, s.error());
    }
    report->stage = 2;
    return 0;
  });
  const auto st = guard.wait(pid, std::chrono::seconds(60));
  REQUIRE(st.exited);
  if (st.code == 3) {
    testing::privileged_skip(std::string("lowering kernel.shmmax in a "
                                         "private IPC namespace: ") +
                             report->message);
    return;
  }
  if (st.code == 4) FAIL(report->message);
  REQUIRE(st.code == 0);
  REQUIRE(report->stage == 2);
  CHECK_FALSE(report->ok);
  CHECK(report->code == static_cast<int>(Errc::limit));
  CHECK_THAT(std::string(report->message), Contains("kernel.shmmax=1048576"));
  CHECK_THAT(std::string(report->message), Contains("sysctl -w kernel.shmmax"));
}

// ---------------------------------------------------------- kind and size

TEST_CASE("bad input: wrong kind") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto s = Segment::attach_id(ring.segment().id(), Kind::mpsc);
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::wrong_kind);
  CHECK_THAT(s.error().message, Contains("spsc ring, expected mpsc"));
}

TEST_CASE("bad input: a record larger than the ring is too_large, always") {
  for (Kind kind : {Kind::spsc, Kind::mpsc}) {
    testing::ScopedRing ring({.kind = kind, .capacity = 4096});
    auto p = Producer::attach(ring.segment());
    REQUIRE(p);
    const std::size_t max = p->max_record_size();
    CHECK(max == layout::max_payload(4096));
    const std::string big(max + 1, 'x');
    CHECK(p->try_reserve(max + 1).status == Status::too_large);
    CHECK(p->reserve(max + 1, std::chrono::milliseconds(1)).status ==
          Status::too_large);
    CHECK(p->try_write(as_bytes(big)) == Status::too_large);
    CHECK(p->write(as_bytes(big)) == Status::too_large);  // never blocks
    CHECK(p->try_reserve(std::size_t{1} << 40).status == Status::too_large);
    CHECK(std::string(to_string(Status::too_large)) ==
          "record larger than the ring accepts");
    // The largest record fits, even in a ring that wrapped.
    auto c = Consumer::attach(ring.segment());
    REQUIRE(c);
    const std::string fits(max, 'y');
    for (int i = 0; i < 3; ++i) {
      REQUIRE(p->try_write(as_bytes(fits)) == Status::ok);
      auto got = c->try_peek();
      REQUIRE(got);
      CHECK(as_string(got.record.bytes()) == fits);
      c->release();
    }
  }
}

// ------------------------------------------------------------------ roles

TEST_CASE("bad input: a second SPSC producer or consumer is role_taken") {
  testing::ScopedRing ring({.kind = Kind::spsc, .capacity = 4096});
  auto p = Producer::attach(ring.segment());
  auto c = Consumer::attach(ring.segment());
  REQUIRE(p);
  REQUIRE(c);
  const std::string pid = "(pid " + std::to_string(::getpid()) + ")";
  // Another process tries: it must be refused while we live.
  testing::SharedBlock<ChildReport> r1, r2;
  testing::ChildGuard guard;
  const pid_t child = guard.spawn([&]() -> int {
    auto seg = Segment::attach_id(ring.segment().id());
    if (!seg) return 5;
    auto p2 = Producer::attach(*seg);
    if (p2) r1->ok = true; else report_error(*r1, p2.error());
    auto c2 = Consumer::attach(*seg);
    if (c2) r2->ok = true; else report_error(*r2, c2.error());
    return 0;
  });
  const auto st = guard.wait(child, std::chrono::seconds(60));
  REQUIRE(st.exited);
  REQUIRE(st.code == 0);
  CHECK_FALSE(r1->ok);
  CHECK(r1->code == static_cast<int>(Errc::role_taken));
  CHECK_THAT(std::string(r1->message), Contains("already has a live producer " + pid));
  CHECK_FALSE(r2->ok);
  CHECK(r2->code == static_cast<int>(Errc::role_taken));
  CHECK_THAT(std::string(r2->message), Contains("already has a live consumer " + pid));
  // And the ring still works for the rightful owners.
  REQUIRE(p->try_write(as_bytes("still mine")) == Status::ok);
  auto got = c->try_peek();
  REQUIRE(got);
  CHECK(as_string(got.record.bytes()) == "still mine");
}

// ------------------------------------------------------------- ftok paths

TEST_CASE("bad input: a missing ftok path is not_found, naming the path") {
  const std::string path = tmpdir() + "/no/such/file";
  auto k = key_from_path(path, 'R');
  REQUIRE_FALSE(k);
  CHECK(k.error().code == Errc::not_found);
  CHECK_THAT(k.error().message, Contains(path));
  CHECK_THAT(k.error().message, Contains("No such file or directory"));
}

// -------------------------------------------------------- foreign segments

TEST_CASE("bad input: a segment another program created is not_shmring") {
  const int before = testing::own_segment_count();
  {
    // Too small to hold any ring.
    RawSegment small(test_key(3), 100);
    auto s = Segment::attach(test_key(3));
    REQUIRE_FALSE(s);
    CHECK(s.error().code == Errc::not_shmring);
    CHECK_THAT(s.error().message, Contains("too small to be a shmring ring"));
    CHECK_THAT(s.error().message, Contains("ftok collision"));
  }
  {
    // Big enough, but somebody else's bytes.
    RawSegment other(test_key(4), 64 * 1024);
    std::memcpy(other.addr(), "PostgreSQL shared buffers", 25);
    auto s = Segment::attach(test_key(4));
    REQUIRE_FALSE(s);
    CHECK(s.error().code == Errc::not_shmring);
    CHECK_THAT(s.error().message, Contains("not created by shmring"));
    // And `remove` refuses it unless forced.
    auto rm = Segment::remove(test_key(4));
    REQUIRE_FALSE(rm);
    CHECK(rm.error().code == Errc::not_shmring);
  }
  CHECK(testing::own_segment_count() == before);
}

TEST_CASE("bad input: a segment smaller than its header claims") {
  // A valid header for a 64 KiB ring, copied into a segment that only has
  // room for 256 bytes of data.
  testing::ScopedRing ring({.capacity = 65536});
  RawSegment small(test_key(5), layout::kDataOffset + 256);
  std::memcpy(small.addr(), shmring::detail::control(ring.segment()), layout::kDataOffset);
  auto s = Segment::attach(test_key(5));
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::size_mismatch);
  CHECK_THAT(s.error().message, Contains("capacity 65536"));
  CHECK_THAT(s.error().message,
             Contains("the kernel says it has " +
                      std::to_string(layout::kDataOffset + 256) + " bytes"));
}

TEST_CASE("bad input: version skew names both versions") {
  testing::ScopedRing ring({.capacity = 4096});
  shmring::detail::control(ring.segment())->version = layout::kLayoutVersion + 1;
  auto s = Segment::attach_id(ring.segment().id());
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::version_mismatch);
  CHECK_THAT(s.error().message,
             Contains("created by shmring layout v" +
                      std::to_string(layout::kLayoutVersion + 1) +
                      ", this is v" + std::to_string(layout::kLayoutVersion)));
}

TEST_CASE("bad input: a ring from another PID namespace is attached") {
  // Liveness is the kernel's role semaphores, not pids: peers in another
  // PID namespace (a container sharing the IPC namespace) are fine.
  testing::ScopedRing ring({.capacity = 4096});
  shmring::detail::control(ring.segment())->pid_namespace ^= 0x5a5a;
  auto s = Segment::attach_id(ring.segment().id());
  REQUIRE(s);
  auto c = Consumer::attach(*s);
  CHECK(c);
}

TEST_CASE("bad input: a ring whose semaphore set was removed by hand") {
  testing::ScopedRing ring({.capacity = 4096});
  const int semid = shmring::detail::sem_id(ring.segment());
  REQUIRE(semid >= 0);
  REQUIRE(::semctl(semid, 0, IPC_RMID) == 0);
  // Still attachable (for info and rm), but no role can be taken.
  auto s = Segment::attach_id(ring.segment().id());
  REQUIRE(s);
  CHECK(shmring::detail::sem_id(*s) == -1);
  CHECK_FALSE(s->info().sem_present);
  auto c = Consumer::attach(*s);
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::removed);
  CHECK_THAT(c.error().message, Contains("semaphore set"));
  CHECK_THAT(c.error().message, Contains("shm-ring rm"));
  auto p = Producer::attach(*s);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == Errc::removed);
}

TEST_CASE("bad input: a creator that died mid-create is not_ready") {
  // A zeroed shmring-sized segment: what a creator leaves if it dies
  // between shmget and publishing `state`. The attacher waits 2 s, then
  // gives up with advice.
  RawSegment zeroed(test_key(6), layout::kDataOffset + 4096);
  auto s = Segment::attach(test_key(6));
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::not_ready);
  CHECK_THAT(s.error().message, Contains("never initialised"));
  CHECK_THAT(s.error().message, Contains("shm-ring rm"));
}

// ----------------------------------------------------------------- keys

TEST_CASE("bad input: keys") {
  auto missing = Segment::attach(test_key(7));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::not_found);
  CHECK_THAT(missing.error().message, Contains("no ring with key"));
  for (const char* text : {"", "0", "-1", "0x1ffffffff", "12ab", "key"}) {
    INFO("key '" << text << "'");
    auto k = parse_key(text);
    REQUIRE_FALSE(k);
    CHECK(k.error().code == Errc::invalid_argument);
    CHECK_FALSE(k.error().message.empty());
  }
  auto k = Segment::create(test_key(8), {.capacity = 4096});
  REQUIRE(k);
  auto again = Segment::create(test_key(8), {.capacity = 4096});
  (void)k->remove();
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::exists);
  CHECK_THAT(again.error().message, Contains("shm-ring rm"));
}

// ---------------------------------------------------------------- removal

TEST_CASE("bad input: ring removed (IPC_RMID) while attached keeps working") {
  const int before = testing::own_segment_count();
  const key_t key = test_key(9);
  {
    auto seg = Segment::create(key, {.capacity = 4096});
    REQUIRE(seg);
    auto other = Segment::attach(key);  // a second process's mapping
    REQUIRE(other);
    auto p = Producer::attach(*seg);
    auto c = Consumer::attach(*other);
    REQUIRE(p);
    REQUIRE(c);
    CHECK_FALSE(seg->removed());
    REQUIRE(Segment::remove(key));  // what `shm-ring rm` does
    CHECK(seg->removed());
    CHECK(other->removed());
    CHECK(other->info().marked_for_removal);
    // Attached peers carry on; new ones cannot find it.
    for (int i = 0; i < 100; ++i) {
      REQUIRE(p->try_write(as_bytes("after rm " + std::to_string(i))) ==
              Status::ok);
      auto got = c->try_peek();
      REQUIRE(got);
      CHECK(as_string(got.record.bytes()) == "after rm " + std::to_string(i));
      c->release();
    }
    auto late = Segment::attach(key);
    REQUIRE_FALSE(late);
    CHECK(late.error().code == Errc::not_found);
    p->close();
    CHECK(c->try_peek().status == Status::closed);
    // Removing twice is fine.
    CHECK(seg->remove());
  }
  // The last detach destroyed it.
  CHECK(testing::own_segment_count() == before);
}

}  // namespace
}  // namespace shmring
