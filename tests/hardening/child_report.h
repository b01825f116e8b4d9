// Helpers shared by the bad-input tests: results reported by a forked child
// (which must not use Catch2 macros), and running a body as user nobody.
#pragma once

#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "tests/support.h"

namespace shmring::hardening {

inline constexpr uid_t kNobody = 65534;

// Keys unique to this test process (the suite's range, tests/support.h).
using testing::test_key;

inline std::string tmpdir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d ? d : "/tmp";
}

// What a child reports back through shared memory.
struct ChildReport {
  int stage = 0;    // 0: not reached, 1: running the body, 2: done
  bool ok = false;  // the operation succeeded
  int code = -1;    // Errc when !ok
  char message[512] = {};
};

inline void report_error(ChildReport& r, const Error& e) {
  r.ok = false;
  r.code = static_cast<int>(e.code);
  std::snprintf(r.message, sizeof r.message, "%s", e.message.c_str());
}

// Runs `body(report)` in a child that has become nobody (65534). Returns
// nullopt, after testing::privileged_skip() said why, only if this process
// may not switch users: not root, setgroups/setgid/setuid refused with
// EPERM, or EINVAL from setgid/setuid (65534 is not mapped in this user
// namespace, like Bazel's sandbox). Any other failure fails the test.
template <class Body>
std::optional<ChildReport> as_nobody(Body body) {
  if (::geteuid() != 0) {
    testing::privileged_skip("running a child as nobody needs root (euid " +
                             std::to_string(::geteuid()) + ")");
    return std::nullopt;
  }
  testing::SharedBlock<ChildReport> report;
  testing::ChildGuard guard;
  const pid_t pid = guard.spawn([&]() -> int {
    const char* step = "setgroups";
    bool ok = ::setgroups(0, nullptr) == 0;
    if (ok) { step = "setgid(65534)"; ok = ::setgid(kNobody) == 0; }
    if (ok) { step = "setuid(65534)"; ok = ::setuid(kNobody) == 0; }
    if (!ok) {
      const int err = errno;
      std::snprintf(report->message, sizeof report->message, "%s: %s", step,
                    std::strerror(err));
      report->code = err;
      const bool unmapped = err == EINVAL && std::strcmp(step, "setgroups") != 0;
      return testing::not_permitted(err) || unmapped ? 3 : 4;
    }
    report->stage = 1;
    body(*report);
    report->stage = 2;
    return 0;
  });
  const auto st = testing::wait_child(pid, std::chrono::seconds(60));
  guard.forget(pid);
  INFO("child: " << st.describe());
  REQUIRE(st.exited);
  if (st.code == 3) {
    testing::privileged_skip(std::string("cannot become nobody: ") +
                             report->message);
    return std::nullopt;
  }
  if (st.code == 4) FAIL("becoming nobody failed: " << report->message);
  REQUIRE(st.code == 0);
  REQUIRE(report->stage == 2);
  return *report;
}

}  // namespace shmring::hardening
