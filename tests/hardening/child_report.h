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

// A key unlikely to collide with other tests run outside the sandbox.
inline key_t test_key(int n) {
  return static_cast<key_t>(0x7e500000 | ((::getpid() & 0xfff) << 4) | (n & 15));
}

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
// nullopt if this process cannot switch users (not root, or a user namespace
// without that uid, like Bazel's sandbox): callers then skip with a WARN.
template <class Body>
std::optional<ChildReport> as_nobody(Body body) {
  if (::geteuid() != 0) return std::nullopt;
  testing::SharedBlock<ChildReport> report;
  testing::ChildGuard guard;
  const pid_t pid = guard.spawn([&]() -> int {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 ||
        ::setuid(kNobody) != 0) {
      return 3;
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
  if (st.code == 3) return std::nullopt;
  REQUIRE(st.code == 0);
  REQUIRE(report->stage == 2);
  return *report;
}

}  // namespace shmring::hardening
