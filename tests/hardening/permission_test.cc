// The permission rows of the bad-input table. They need two users: we run as
// root (which bypasses SysV permission checks), create the segment, and a
// forked child drops to nobody (65534) to try it. Bazel's sandbox maps only
// root into its user namespace, so this target is tagged no-sandbox (see
// BUILD). Each test first moves this process into a private IPC namespace
// (unshare(CLONE_NEWIPC), root only), so the host's segments are never
// touched; should that fail, every segment here is still removed by a
// scope guard and the keys carry our pid.
#include <sched.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/hardening/child_report.h"
#include "tests/support.h"

namespace shmring {
namespace {

using Catch::Matchers::Contains;
using hardening::ChildReport;
using hardening::kNobody;
using hardening::report_error;
using hardening::test_key;

// Once per process: a private IPC namespace, inherited by the children.
// Without one (not permitted here) the host's is used: every key here is
// this process's own and every segment is removed by a scope guard, so that
// is safe and not a skip. Any other errno is a failure.
void private_ipc_namespace() {
  static const int err = ::unshare(CLONE_NEWIPC) == 0 ? 0 : errno;
  if (err != 0 && !testing::not_permitted(err)) {
    FAIL("unshare(CLONE_NEWIPC): " << std::strerror(err));
  }
  if (err != 0) WARN("no private IPC namespace (EPERM): using the host's");
}

struct RemoveOnExit {
  Segment& s;
  ~RemoveOnExit() { (void)s.remove(); }
};

// as_nobody() already printed why (testing::privileged_skip).
#define SKIP_UNLESS_TWO_USERS(report) \
  if (!(report)) return

TEST_CASE("permissions: another user's 0600 segment is permission_denied") {
  private_ipc_namespace();
  const key_t key = test_key(1);
  auto seg = Segment::create(key, {.capacity = 4096});
  REQUIRE(seg);
  RemoveOnExit guard{*seg};
  CHECK(seg->info().mode == 0600);  // the default mode
  CHECK(seg->info().owner_uid == ::geteuid());
  const int shmid = seg->id();

  const auto by_key = hardening::as_nobody([&](ChildReport& r) {
    auto s = Segment::attach(key);
    if (s) r.ok = true; else report_error(r, s.error());
  });
  SKIP_UNLESS_TWO_USERS(by_key);
  CHECK_FALSE(by_key->ok);
  CHECK(by_key->code == static_cast<int>(Errc::permission_denied));
  CHECK_THAT(std::string(by_key->message), Contains("Permission denied"));

  const auto by_id = hardening::as_nobody([&](ChildReport& r) {
    auto s = Segment::attach_id(shmid);
    if (s) r.ok = true; else report_error(r, s.error());
  });
  REQUIRE(by_id);
  CHECK_FALSE(by_id->ok);
  CHECK(by_id->code == static_cast<int>(Errc::permission_denied));
  CHECK_THAT(std::string(by_id->message),
             Contains("shmid " + std::to_string(shmid)));
  CHECK_THAT(std::string(by_id->message), Contains("Permission denied"));
}

TEST_CASE("permissions: --mode widens on request, 0400 is refused") {
  private_ipc_namespace();
  // The 0600 floor is enforced at create (a ring is useless read-only).
  auto bad = Segment::create_private({.capacity = 4096, .mode = 0400});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::invalid_argument);
  CHECK_THAT(bad.error().message, Contains("0600"));

  // A wider mode, when asked for, lets the other user in.
  const key_t key = test_key(2);
  auto seg = Segment::create(key, {.capacity = 4096, .mode = 0666});
  REQUIRE(seg);
  RemoveOnExit guard{*seg};
  CHECK(seg->info().mode == 0666);
  const auto r = hardening::as_nobody([&](ChildReport& rep) {
    auto s = Segment::attach(key);
    if (!s) return report_error(rep, s.error());
    auto p = Producer::attach(*s);
    if (!p) return report_error(rep, p.error());
    rep.ok = p->try_write(testing::as_bytes("from nobody")) == Status::ok;
  });
  SKIP_UNLESS_TWO_USERS(r);
  CHECK(r->ok);
  auto c = Consumer::attach(*seg);
  REQUIRE(c);
  auto got = c->try_peek();
  REQUIRE(got);
  CHECK(testing::as_string(got.record.bytes()) == "from nobody");
}

TEST_CASE("permissions: a mode 0400 segment cannot be attached read-write") {
  private_ipc_namespace();
  // A segment whose mode was changed to 0400 afterwards (shmctl IPC_SET),
  // owned by the very user who tries: its owner may read but not write.
  const key_t key = test_key(3);
  auto seg = Segment::create(key, {.capacity = 4096});
  REQUIRE(seg);
  RemoveOnExit guard{*seg};
  if (::geteuid() != 0) {
    testing::privileged_skip("giving a segment to nobody needs root");
    return;
  }
  struct shmid_ds ds {};
  REQUIRE(::shmctl(seg->id(), IPC_STAT, &ds) == 0);
  ds.shm_perm.uid = kNobody;
  ds.shm_perm.mode = 0400;
  if (::shmctl(seg->id(), IPC_SET, &ds) != 0) {
    const int err = errno;
    if (!testing::not_permitted(err)) {
      FAIL("shmctl(IPC_SET, uid 65534): " << std::strerror(err));
    }
    testing::privileged_skip(std::string("shmctl(IPC_SET, uid 65534): ") +
                             std::strerror(err));
    return;
  }
  const SegmentInfo info = seg->info();  // what `shm-ring info` shows
  CHECK(info.mode == 0400);
  CHECK(info.owner_uid == kNobody);
  const auto r = hardening::as_nobody([&](ChildReport& rep) {
    auto s = Segment::attach(key);
    if (s) rep.ok = true; else report_error(rep, s.error());
  });
  SKIP_UNLESS_TWO_USERS(r);
  CHECK_FALSE(r->ok);
  CHECK(r->code == static_cast<int>(Errc::permission_denied));
  CHECK_THAT(std::string(r->message), Contains("Permission denied"));
}

TEST_CASE("permissions: an ftok path we may not see is permission_denied") {
  private_ipc_namespace();
  // root's 0700 directory; another user cannot stat what is inside. (The
  // library never uses privileges to look at a user's path: it stats it as
  // the caller.)
  const std::string dir = hardening::tmpdir() + "/hardening-private-" +
                          std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::string d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  REQUIRE(::chmod(dir.c_str(), 0700) == 0);
  const std::string file = dir + "/ring.key";
  std::ofstream(file) << "key\n";
  REQUIRE(key_from_path(file, 'R'));  // its owner can
  const auto r = hardening::as_nobody([&](ChildReport& rep) {
    auto k = key_from_path(file, 'R');
    if (k) rep.ok = true; else report_error(rep, k.error());
  });
  SKIP_UNLESS_TWO_USERS(r);
  CHECK_FALSE(r->ok);
  CHECK(r->code == static_cast<int>(Errc::permission_denied));
  CHECK_THAT(std::string(r->message), Contains(file));
  CHECK_THAT(std::string(r->message), Contains("Permission denied"));
}

}  // namespace
}  // namespace shmring
