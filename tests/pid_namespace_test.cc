// Liveness across PID namespaces once the ring's role semaphores are gone
// (the ring removed while in use): pid tokens decide then, and a token
// taken in another PID namespace proves nothing here. A producer that runs
// as pid 1 of its own PID namespace (with its own /proc, as in a container
// sharing our IPC namespace) holds an open record while the ring is
// removed; the consumer here must neither reclaim that record nor report
// end of stream, and nobody here may take the producer's slot over.
//
// Needs root (unshare(CLONE_NEWPID | CLONE_NEWNS), mounting a procfs):
// elsewhere privileged_skip().
//
// Control-block words are read relaxed: every update checked for was made
// by this thread (the consumer's reclaim or reap inside peek()) or never.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "tests/support.h"

namespace shmring {
namespace {

using std::chrono::milliseconds;
using testing::attach_consumer;
using testing::Beacon;
using testing::ChildGuard;
using testing::kHang;
using testing::ScopedRing;
using testing::SharedBlock;

constexpr std::uint32_t kPayload = 40;

// What the namespaced side reports before it signals the beacon: 0 ok (a
// record is reserved), else the step that failed; `err` its errno.
struct Outcome {
  std::atomic<int> step{0};
  std::atomic<int> err{0};
};
enum Step {
  kReserved = 0,
  kUnshare = 1,
  kMount = 2,
  kNotInit = 3,
  kAttach = 4,
  kReserve = 5,
  kFork = 6
};

// pid 1 of a fresh PID and mount namespace, with its own /proc, as
// `unshare --pid --fork --mount-proc` gives.
int in_new_namespace(Segment& seg, Outcome& out, Beacon& reserved, Beacon& go) {
  auto fail = [&](int step, int err) {
    // relaxed (both): published to the parent by the Beacon's pipe write.
    out.err.store(err, std::memory_order_relaxed);
    out.step.store(step, std::memory_order_relaxed);
    reserved.signal();
    return 10 + step;
  };
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0) {
    return fail(kMount, errno);
  }
  if (::getpid() != 1) return fail(kNotInit, 0);
  // If the test dies, so does this process (our parent is its child).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto p = Producer::attach(seg);
  if (!p) {
    std::fprintf(stderr, "namespaced producer: %s\n",
                 p.error().message.c_str());
    return fail(kAttach, 0);
  }
  auto r = p->reserve(kPayload, kHang);
  if (!r) return fail(kReserve, 0);
  testing::fill_payload(r.bytes, 7, 1);
  reserved.signal();  // step stays kReserved
  if (!go.wait(kHang)) return 20;
  p->commit();
  p->close();
  return 0;
}

// A token whose pid no process can have (above any pid_max): dead here.
constexpr ProcessToken kDeadToken = (ProcessToken{0x3ffffff0} << 32) | 1;

TEST_CASE("pid namespace: only a stamp of our namespace lets a token die") {
  const ProcessToken me = self_token();
  REQUIRE(me != 0);
  const std::uint64_t ns = pid_namespace_id();
  REQUIRE(ns != 0);
  REQUIRE(ns_stamp(me) >> 32 == ns);
  CHECK(ns_stamp(me) != ns_stamp(kDeadToken));
  // Our namespace: the pid decides.
  CHECK(alive(me, ns_stamp(me)));
  CHECK_FALSE(alive(kDeadToken, ns_stamp(kDeadToken)));
  // No stamp: judged here, as before stamps existed.
  CHECK_FALSE(alive(kDeadToken, 0));
  // Another namespace's token proves nothing here.
  const std::uint64_t other = ns_stamp(kDeadToken) ^ (std::uint64_t{1} << 32);
  CHECK(alive(kDeadToken, other));
  // A stamp an earlier holder left names another token: no proof either.
  CHECK(alive(kDeadToken, ns_stamp(me)));
  CHECK_FALSE(alive(0, ns_stamp(me)));
}

TEST_CASE(
    "pid namespace: a producer of another PID namespace is not judged dead "
    "once the role semaphores are gone") {
  ScopedRing ring({.kind = Kind::mpsc, .capacity = 4096, .max_producers = 1});
  Segment& seg = ring.segment();
  Consumer c = attach_consumer(seg);
  SharedBlock<Outcome> out;
  Beacon reserved;
  Beacon go;
  ChildGuard children;
  const pid_t pid = children.spawn([&] {
    if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
      // relaxed (both): published by the Beacon's pipe write.
      out->err.store(errno, std::memory_order_relaxed);
      out->step.store(kUnshare, std::memory_order_relaxed);
      reserved.signal();
      return 10 + kUnshare;
    }
    const pid_t init = ::fork();
    if (init < 0) {
      out->err.store(errno, std::memory_order_relaxed);
      out->step.store(kFork, std::memory_order_relaxed);
      reserved.signal();
      return 10 + kFork;
    }
    if (init == 0) _exit(in_new_namespace(seg, *out, reserved, go));
    int status = 0;
    while (::waitpid(init, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 30;
  });
  REQUIRE(reserved.wait(kHang));
  // relaxed (both): the Beacon's pipe orders the child's stores first.
  const int step = out->step.load(std::memory_order_relaxed);
  const int err = out->err.load(std::memory_order_relaxed);
  if (step != kReserved) {
    children.wait(pid);
    if ((step == kUnshare || step == kMount) && testing::not_permitted(err)) {
      testing::privileged_skip(std::string(step == kUnshare
                                               ? "unshare(CLONE_NEWPID | "
                                                 "CLONE_NEWNS): "
                                               : "mount proc: ") +
                               std::strerror(err));
      return;
    }
    FAIL("namespaced producer failed at step " << step << ": "
                                               << std::strerror(err));
  }

  // The ring removed while in use: its role semaphore set goes with it, so
  // pid tokens decide from now on.
  REQUIRE(seg.remove());

  // The producer holds an open record and runs: the consumer waits.
  const Peeked early = c.peek(milliseconds(500));
  INFO("peek while the namespaced producer holds its record: "
       << to_string(early.status));
  CHECK(early.status == Status::timed_out);
  CHECK(seg.info().records_reclaimed == 0);
  CHECK(seg.info().producers_died == 0);
  // Its slot (the only one) is not free for the taking.
  auto second = Producer::attach(seg);
  CHECK_FALSE(second);
  if (!second) CHECK(second.error().code == Errc::too_many_producers);
  if (second) second->close();

  // The producer's commit is delivered, then its close ends the stream.
  go.signal();
  const Peeked rec = c.peek(kHang);
  REQUIRE(rec);
  CHECK(rec.record.size == kPayload);
  CHECK(testing::check_payload(rec.record.bytes(), 7, 1));
  c.release();
  CHECK(c.peek(kHang).status == Status::closed);
  const auto st = children.wait(pid);
  INFO(st.describe());
  CHECK((st.exited && st.code == 0));
}

}  // namespace
}  // namespace shmring
