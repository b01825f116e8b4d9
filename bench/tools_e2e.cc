// Scenario 6: the command-line tools end to end on a file in the page
// cache, against the shell's own pipes:
//   shm-consume --key K --create ... > /dev/null  &  shm-produce --key K < file
//   cat file | cat > /dev/null
//   dd if=file bs=64K | dd of=/dev/null bs=64K
// Each side is pinned to its own CPU (the headline), and unpinned. The time
// runs from the first fork to the last exit, so process start-up counts
// the same for everyone.
#include <fcntl.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/harness.h"
#include "bench/scenarios.h"
#include "ring/shmring.h"

namespace bench {
namespace {

constexpr std::uint64_t kToolRing = 4 << 20;

bool executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  std::string p = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t end = p.find(':', start);
    const std::string dir = p.substr(
        start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = dir;
    candidate += '/';
    candidate += name;
    if (!dir.empty() && executable(candidate)) return candidate;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

// Writes `bytes` of pseudo-random data unless the file already has that
// size, then reads it once so it sits in the page cache.
std::string prepare_file(const std::string& path, std::uint64_t bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 ||
      static_cast<std::uint64_t>(st.st_size) != bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return errno_text(("open " + path).c_str());
    std::vector<std::uint64_t> chunk((1 << 20) / 8);
    std::mt19937_64 rng(42);
    for (std::uint64_t done = 0; done < bytes;) {
      for (auto& w : chunk) w = rng();
      const std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(bytes - done, chunk.size() * 8));
      if (::write(fd, chunk.data(), n) != static_cast<ssize_t>(n)) {
        ::close(fd);
        return errno_text(("write " + path).c_str());
      }
      done += n;
    }
    ::close(fd);
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno_text(("open " + path).c_str());
  std::vector<char> buf(1 << 20);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
  return "";
}

struct Stage {
  std::vector<std::string> argv;
  int cpu = -1;
  int in = -1;   // fd for stdin (-1: /dev/null)
  int out = -1;  // fd for stdout (-1: /dev/null)
};

pid_t spawn(const Stage& s, const std::vector<int>& close_in_child) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (s.cpu >= 0) pin_to(s.cpu);
  const int devnull = ::open("/dev/null", O_RDWR);
  ::dup2(s.in >= 0 ? s.in : devnull, 0);
  ::dup2(s.out >= 0 ? s.out : devnull, 1);
  for (int fd : close_in_child) ::close(fd);
  std::vector<char*> argv;
  for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// Runs the stages; returns the wall time in ns, or an error.
std::string run_stages(std::vector<Stage> stages, bool pipe_between,
                       const std::function<void()>& between, std::int64_t* ns) {
  int p[2] = {-1, -1};
  if (pipe_between) {
    if (::pipe(p) != 0) return errno_text("pipe");
    stages[0].out = p[1];
    stages[1].in = p[0];
  }
  const auto t0 = Clock::now();
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    std::vector<int> to_close;
    if (pipe_between) to_close = {p[0], p[1]};
    pids.push_back(spawn(stages[i], to_close));
    if (i == 0 && between) between();
  }
  if (pipe_between) {
    ::close(p[0]);
    ::close(p[1]);
  }
  std::string error;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  for (std::size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pids[i], &status, WNOHANG);
      if (r == pids[i]) break;
      if (Clock::now() > deadline) {
        for (pid_t q : pids) ::kill(q, SIGKILL);
        ::waitpid(pids[i], &status, 0);
        if (error.empty()) error = "timed out after 120 s";
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (error.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      error =
          stages[i].argv[0] + " failed (status " + std::to_string(status) + ")";
    }
  }
  *ns = (Clock::now() - t0).count();
  return error;
}

key_t fresh_key() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()));
  for (;;) {
    const key_t k = static_cast<key_t>(0x5b000000u | (rng() & 0xffffffu));
    if (::shmget(k, 0, 0) < 0 && errno == ENOENT) return k;
  }
}

}  // namespace

void run_tools(const Config& config, Report& report) {
  const std::string produce =
      config.tools_dir.empty() ? "" : config.tools_dir + "/shm-produce";
  const std::string consume =
      config.tools_dir.empty() ? "" : config.tools_dir + "/shm-consume";
  const bool have_tools =
      !produce.empty() && executable(produce) && executable(consume);
  const std::string cat = find_in_path("cat");
  const std::string dd = find_in_path("dd");

  const bool own_file = config.e2e_file.empty();
  std::string file = config.e2e_file;
  if (own_file) {
    // getenv: shm-bench is single-threaded here.
    const char* tmp =
        std::getenv("TEST_TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    if (!tmp || !*tmp)
      tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    file = std::string(tmp && *tmp ? tmp : "/tmp") + "/" +
           unique_name("shm-bench-e2e") + ".bin";
  }
  const std::string prep = prepare_file(file, config.e2e_bytes);

  std::vector<Cell> cells;
  auto add = [&](const char* peer, const char* label, const char* note,
                 const std::function<RepOutcome(const Placement&)>& once,
                 const std::string& skipped) {
    for (const Placement& pl : placements(config)) {
      Cell c;
      c.row.group = "tools";
      c.row.peer = peer;
      c.row.label = label;
      c.row.note = note;
      c.row.size = config.e2e_bytes;
      c.row.placement = pl.name;
      c.row.id = std::string("tools/") + peer + "/" + pl.name;
      c.row.skipped = skipped;
      if (!prep.empty()) c.row.error = prep;
      c.metric_names = {"bytes_per_s"};
      c.once = [once, pl] { return once(pl); };
      cells.push_back(std::move(c));
    }
  };
  auto rate = [&](std::int64_t ns) {
    return static_cast<double>(config.e2e_bytes) /
           (static_cast<double>(ns) / 1e9);
  };

  add(
      "shm-produce+shm-consume", "shm-produce < file, shm-consume > /dev/null",
      "consumer creates a 4 MiB ring (--create --remove-on-exit), producer "
      "attaches; default framing (bytes), default wait",
      [&](const Placement& pl) {
        RepOutcome out;
        const key_t key = fresh_key();
        char kbuf[32];
        std::snprintf(kbuf, sizeof kbuf, "0x%x", static_cast<unsigned>(key));
        const int in = ::open(file.c_str(), O_RDONLY);
        if (in < 0) {
          out.error = errno_text("open");
          return out;
        }
        const std::string cap = std::to_string(kToolRing);
        std::vector<Stage> stages = {
            {{consume, "--key", kbuf, "--create", "--capacity", cap,
              "--remove-on-exit"},
             pl.consumer_cpu,
             -1,
             -1},
            {{produce, "--key", kbuf, "--create", "--capacity", cap},
             pl.producer_cpu,
             in,
             -1},
        };
        // The producer starts once the consumer's ring exists, so it never
        // races it for creation.
        auto wait_for_ring = [&] {
          const auto until = Clock::now() + std::chrono::seconds(10);
          while (::shmget(key, 0, 0) < 0 && Clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
          }
        };
        std::int64_t ns = 0;
        out.error = run_stages(stages, false, wait_for_ring, &ns);
        ::close(in);
        (void)shmring::Segment::remove(key, /*force=*/false);
        if (out.error.empty()) out.values["bytes_per_s"] = rate(ns);
        return out;
      },
      have_tools ? ""
                 : "shm-produce / shm-consume not found (pass --tools-dir)");

  add(
      "cat|cat", "cat file | cat > /dev/null", "coreutils cat on both sides",
      [&](const Placement& pl) {
        RepOutcome out;
        std::vector<Stage> stages = {{{cat, file}, pl.producer_cpu, -1, -1},
                                     {{cat}, pl.consumer_cpu, -1, -1}};
        std::int64_t ns = 0;
        out.error = run_stages(stages, true, {}, &ns);
        if (out.error.empty()) out.values["bytes_per_s"] = rate(ns);
        return out;
      },
      cat.empty() ? "cat not found" : "");

  add(
      "dd|dd", "dd if=file bs=64K | dd of=/dev/null bs=64K",
      "coreutils dd on both sides, 64 KiB blocks",
      [&](const Placement& pl) {
        RepOutcome out;
        std::vector<Stage> stages = {
            {{dd, "if=" + file, "bs=64K", "status=none"},
             pl.producer_cpu,
             -1,
             -1},
            {{dd, "of=/dev/null", "bs=64K", "status=none"},
             pl.consumer_cpu,
             -1,
             -1}};
        std::int64_t ns = 0;
        out.error = run_stages(stages, true, {}, &ns);
        if (out.error.empty()) out.values["bytes_per_s"] = rate(ns);
        return out;
      },
      dd.empty() ? "dd not found" : "");

  run_cells(config, cells, report);
  if (own_file) ::unlink(file.c_str());
}

}  // namespace bench
