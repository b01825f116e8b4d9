// Seeded driver of the segment fuzzer (fuzz_core.h): thousands of generated
// programs with a fixed seed, then every file of tests/hardening/corpus/
// (libFuzzer's corpus and the regression cases of bugs it found).
//
// SHMRING_FUZZ_ITERATIONS=N overrides the number of generated programs;
// SHMRING_FUZZ_SEED=S the seed.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/hardening/fuzz_core.h"
#include "tests/hardening/fuzz_gen.h"
#include "tests/support.h"

namespace shmring::hardening {
namespace {

// A hung program would otherwise sit until Bazel's test timeout with no clue
// which input did it. One program takes milliseconds; 60 s means a hang.
constexpr unsigned kWatchdogSeconds = 60;
char g_current[256] = "?";
char g_hang_path[512] = "/tmp/fuzz-program.bin";
const std::vector<std::uint8_t>* g_program = nullptr;

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
struct sigaction g_previous[std::size(kCrashSignals)];

// Async-signal-safe: write(2)/open(2) only.
void save_program(const char* why) {
  (void)!::write(2, why, std::strlen(why));
  (void)!::write(2, g_current, std::strlen(g_current));
  if (g_program != nullptr) {
    const int fd = ::open(g_hang_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, g_program->data(), g_program->size());
      ::close(fd);
      const char saved[] = "; program saved to ";
      (void)!::write(2, saved, sizeof saved - 1);
      (void)!::write(2, g_hang_path, std::strlen(g_hang_path));
    }
  }
  (void)!::write(2, "\n", 1);
}

void on_alarm(int) {
  save_program("\nfuzz watchdog: a program hung: ");
  std::abort();
}

// Saves the crashing program, then lets Catch2's handler report the crash.
void on_crash(int sig) {
  save_program("\nfuzz: a program crashed: ");
  for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
    if (kCrashSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  }
  ::raise(sig);
}

struct Watchdog {
  Watchdog() {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);
    struct sigaction crash {};
    crash.sa_handler = on_crash;
    crash.sa_flags = SA_ONSTACK;
    for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
      ::sigaction(kCrashSignals[i], &crash, &g_previous[i]);
    }
    if (const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
      std::snprintf(g_hang_path, sizeof g_hang_path, "%s/fuzz-program.bin", dir);
    }
  }
  void arm(const std::string& what, const std::vector<std::uint8_t>& program) {
    std::snprintf(g_current, sizeof g_current, "%s", what.c_str());
    g_program = &program;
    ::alarm(kWatchdogSeconds);
  }
  ~Watchdog() {
    ::alarm(0);
    for (std::size_t i = 0; i < std::size(kCrashSignals); ++i) {
      ::sigaction(kCrashSignals[i], &g_previous[i], nullptr);
    }
    g_program = nullptr;
  }
};

std::string hex(const std::vector<std::uint8_t>& v) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto b : v) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

// Saves a failing program where Bazel keeps test outputs, ready to be copied
// into tests/hardening/corpus/ as a regression case.
void save_failure(const std::vector<std::uint8_t>& program, const std::string& name) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(program.data()),
             static_cast<std::streamsize>(program.size()));
  WARN("failing program saved to " << path);
}

// The leak checks below count the segments of the IPC namespace. Bazel's
// sandbox gives the test its own; run by hand, other processes' segments
// would come and go, so move into a private one when we may (root).
void private_ipc_namespace() {
  static const bool done = ::unshare(CLONE_NEWIPC) == 0;
  (void)done;
}

unsigned long env_or(const char* name, unsigned long dflt) {
  const char* v = std::getenv(name);
  return v ? std::strtoul(v, nullptr, 0) : dflt;
}

TEST_CASE("fuzz: seeded programs against mutated segments") {
  const unsigned long iterations = env_or("SHMRING_FUZZ_ITERATIONS", 10000);
  const unsigned long seed = env_or("SHMRING_FUZZ_SEED", 0x5eed);
  private_ipc_namespace();
  const int segments_before = testing::own_segment_count();
  std::mt19937_64 rng(seed);
  Watchdog dog;
  unsigned long intact = 0, refused = 0, corrupt = 0, delivered_intact = 0;
  for (unsigned long i = 0; i < iterations; ++i) {
    const auto program = generate_program(rng);
    dog.arm("seed " + std::to_string(seed) + " program " + std::to_string(i) +
            " (SHMRING_FUZZ_SEED=" + std::to_string(seed) + ")",
            program);
    const FuzzResult r = run_fuzz_input(program);
    if (!r.failure.empty()) {
      save_failure(program, "fuzz-failure-" + std::to_string(i) + ".bin");
      FAIL("program " << i << " (" << hex(program) << "): " << r.failure);
    }
    if (!r.mutated) {
      ++intact;
      delivered_intact += r.delivered;
    }
    if (!r.attached) ++refused;
    corrupt += r.corrupt_results > 0;
  }
  INFO("intact " << intact << ", refused at attach " << refused
                 << ", saw corrupt " << corrupt << ", delivered (intact) "
                 << delivered_intact);
  // The run must exercise each side: exact delivery on intact rings, refusal
  // at attach, and corruption detected after attach.
  if (iterations >= 1000) {
    CHECK(intact > iterations / 10);
    CHECK(delivered_intact > intact);
    CHECK(refused > iterations / 20);
    CHECK(corrupt > iterations / 100);
  }
  CHECK(testing::own_segment_count() == segments_before);
}

TEST_CASE("fuzz: corpus replay") {
  // Runfiles: the test runs in the workspace's runfiles root.
  // SHMRING_FUZZ_CORPUS=path replays another directory or a single file.
  const char* override_path = std::getenv("SHMRING_FUZZ_CORPUS");
  const std::filesystem::path dir =
      override_path ? override_path : "tests/hardening/corpus";
  REQUIRE(std::filesystem::exists(dir));
  std::vector<std::filesystem::path> paths;
  if (std::filesystem::is_directory(dir)) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      paths.push_back(e.path());
    }
  } else {
    paths.push_back(dir);
  }
  std::sort(paths.begin(), paths.end());
  private_ipc_namespace();
  const int segments_before = testing::own_segment_count();
  Watchdog dog;
  int files = 0;
  for (const auto& path : paths) {
    const std::filesystem::directory_entry entry(path);
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<std::uint8_t> program(
        (std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    dog.arm(entry.path().string(), program);
    const FuzzResult r = run_fuzz_input(program);
    INFO(entry.path().filename().string());
    CHECK(r.failure.empty());
    if (!r.failure.empty()) WARN(r.failure);
    ++files;
  }
  CHECK(files > 0);
  CHECK(testing::own_segment_count() == segments_before);
}

}  // namespace
}  // namespace shmring::hardening
