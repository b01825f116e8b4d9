// Runs `shm-bench --smoke --json FILE` and checks the report: exit status
// 0, every scenario row present (each peer x size x placement), no row
// failed, every measured value positive and ordered where it must be
// (p50 <= p99 <= p99.9, min <= median <= max). Timing values are never
// compared against thresholds.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

std::string tmpdir() {
  const char* t = std::getenv("TEST_TMPDIR");  // NOLINT(concurrency-mt-unsafe)
  return t && *t ? t : "/tmp";
}

// Runs shm-bench with `args`; returns its exit status (-1: did not exit).
int run_bench(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"bench/shm-bench"};
  all.insert(all.end(), args.begin(), args.end());
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.reserve(all.size() + 1);
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

json load(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

bool both_cpus_usable() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
}

std::vector<std::string> expected_ids() {
  const std::vector<std::string> two =
      both_cpus_usable() ? std::vector<std::string>{"pinned", "unpinned"}
                         : std::vector<std::string>{"unpinned"};
  std::vector<std::string> ids = {"limits/timer"};
  for (const char* block : {"4096", "65536", "67108864"}) {
    ids.push_back(std::string("limits/memcpy/") + block + "/" +
                  (both_cpus_usable() ? "pinned" : "unpinned"));
  }
  for (const auto& pl : two) ids.push_back("limits/cacheline-pingpong/" + pl);
  for (const auto& pl : two) ids.push_back("limits/futex-pingpong/" + pl);
  if (both_cpus_usable()) ids.push_back("limits/futex-pingpong/same-cpu");
  for (const char* size : {"8", "64", "512", "4096", "65536"}) {
    for (const char* peer :
         {"shmring", "shmring-per-record", "shmring-queue", "fixed-ring-limit",
          "lockfree-spsc-shm", "lockfree-spsc-threads",
          "readerwriterqueue-threads", "zmq-push-pull", "boost-message-queue",
          "pipe", "unix-stream", "unix-seqpacket"}) {
      for (const auto& pl : two) {
        ids.push_back(std::string("throughput/") + peer + "/" + size + "/" +
                      pl);
      }
    }
  }
  for (const char* peer : {"shmring-spin", "shmring-futex", "shmring-semaphore",
                           "zmq-pair", "pipe", "unix-seqpacket"}) {
    for (const auto& pl : two)
      ids.push_back(std::string("latency/") + peer + "/" + pl);
  }
  for (const char* n : {"1p", "2p", "4p", "2p-one-stopped"}) {
    for (const auto& pl : two)
      ids.push_back(std::string("mpsc/shmring-mpsc/") + n + "/" + pl);
  }
  // Two threads of one process on the headline placement only.
  for (const char* peer : {"shmring-queue", "shmring-batched", "lockfree-spsc",
                           "readerwriterqueue", "rigtorp-design-limit"}) {
    ids.push_back(std::string("rigtorp/") + peer + "/threads-" + two.front());
  }
  ids.push_back("idle/shmring-futex");
  ids.push_back("idle/shmring-semaphore");
  for (const char* peer : {"shm-produce+shm-consume", "cat|cat", "dd|dd"}) {
    for (const auto& pl : two)
      ids.push_back(std::string("tools/") + peer + "/" + pl);
  }
  return ids;
}

void check_metric(const std::string& id, const std::string& name,
                  const json& m) {
  INFO(id << " " << name);
  const double median = m.at("median"), lo = m.at("min"), hi = m.at("max");
  CHECK(lo <= median);
  CHECK(median <= hi);
  CHECK(m.at("samples").size() >= 1);
  if (name == "cpu_percent") {
    CHECK(lo >= 0.0);
  } else {
    CHECK(lo > 0.0);
  }
}

}  // namespace

TEST_CASE("shm-bench --smoke reports every scenario") {
#if defined(SHMRING_TSAN)
  // Under --config=tsan every peer (Boost, moodycamel, ZeroMQ, iceoryx,
  // pipes, sockets) runs instrumented: the smoke run takes well over this
  // test's 300 s (measured: still in the throughput group at the timeout),
  // and it checks the harness, not shmring's synchronisation, which the
  // ring tests check under TSan. Skipped visibly; the argument test below
  // still runs.
  std::fprintf(stderr,
               "ENVIRONMENT TEST SKIPPED: shm-bench --smoke under TSan (a "
               "benchmark of third-party peers; run it without "
               "--config=tsan)\n");
  WARN("ENVIRONMENT TEST SKIPPED: shm-bench --smoke under TSan");
  return;
#endif
  const std::string out = tmpdir() + "/smoke.json";
  REQUIRE(run_bench({"--smoke", "--json", out, "--tools-dir", "tools"}) == 0);
  const json report = load(out);

  CHECK(report.at("tool") == "shm-bench");
  CHECK(report.at("machine").at("online_cpus").get<int>() >= 1);
  CHECK(report.at("config").at("smoke") == true);

  std::map<std::string, json> rows;
  for (const auto& r : report.at("rows")) {
    const std::string id = r.at("id");
    INFO(id);
    CHECK(rows.count(id) == 0);  // ids are unique
    rows[id] = r;
  }
  for (const auto& id : expected_ids()) {
    INFO("expected row " << id);
    REQUIRE(rows.count(id) == 1);
    const json& r = rows[id];
    CHECK(r.at("ok") == true);
    CHECK_FALSE(r.contains("skipped"));
    const json& metrics = r.at("metrics");
    REQUIRE(!metrics.empty());
    for (const auto& [name, m] : metrics.items()) check_metric(id, name, m);
    if (metrics.contains("rtt_p50_ns")) {
      CHECK(metrics["rtt_p50_ns"]["median"].get<double>() <=
            metrics["rtt_p99_ns"]["median"].get<double>());
      CHECK(metrics["rtt_p99_ns"]["median"].get<double>() <=
            metrics["rtt_p999_ns"]["median"].get<double>());
    }
    // (bytes_per_s / records_per_s == size holds by construction in
    // throughput.cc, so it is not checked here: it could not fail.)
  }
}

namespace {

// Runs `cmd` through the shell; returns its stdout (exit status in *status).
std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// The line of the rendered targets table that starts with `prefix`.
std::string target_line(const std::string& table, const std::string& prefix) {
  const std::string key = "| " + prefix;
  const auto at = table.find(key);
  if (at == std::string::npos) return "";
  return table.substr(at, table.find('\n', at) - at);
}

}  // namespace

TEST_CASE("shm-bench --smoke ZeroMQ and MPSC rows reach the targets table") {
#if defined(SHMRING_TSAN)
  std::fprintf(stderr,
               "ENVIRONMENT TEST SKIPPED: shm-bench --smoke under TSan (see "
               "above)\n");
  WARN("ENVIRONMENT TEST SKIPPED: shm-bench --smoke under TSan");
  return;
#endif
  // Only the rows these targets are computed from, and the same code that
  // renders docs/benchmarks.md (scripts/plot_bench.py --targets).
  const std::string out = tmpdir() + "/smoke-targets.json";
  REQUIRE(run_bench({"--smoke", "--reps", "2", "--only", "throughput,mpsc",
                     "--sizes", "8", "--peers",
                     "shmring,shmring-per-record,zmq-push-pull,shmring-mpsc",
                     "--json", out}) == 0);
  int status = -1;
  const std::string table =
      run_capture("python3 scripts/plot_bench.py --targets " + out, &status);
  INFO(table);
  REQUIRE(status == 0);
  for (const char* prefix :
       {"(12) 8 B msgs/s: shmring (batched) / ZeroMQ ipc PUSH/PULL",
        "(13) MPSC 1 producer / SPSC commit() per record",
        "(13) MPSC 2 producers / 1 producer",
        "(13) MPSC 4 producers / 1 producer",
        "(13) MPSC, 1 of 2 producers SIGSTOPped"}) {
    const std::string line = target_line(table, prefix);
    INFO("target " << prefix << ": " << line);
    REQUIRE(!line.empty());
    // Measured in this run: a ratio and a verdict, never "not measured"
    // (a verdict, not a reason's text: those may say what was not measured).
    CHECK(line.find("x <sub>") != std::string::npos);
    CHECK(line.find("| - |") == std::string::npos);
    CHECK(line.find("| not measured (") == std::string::npos);
    const bool verdict = line.find("| met |") != std::string::npos ||
                         line.find("| noisy") != std::string::npos ||
                         line.find("| **missed** (") != std::string::npos ||
                         line.find("| (context) would") != std::string::npos;
    CHECK(verdict);
  }
}

TEST_CASE("shm-bench refuses bad arguments with status 2") {
  CHECK(run_bench({"--only", "nonsense"}) != 0);
  CHECK(run_bench({"--sizes", "7"}) != 0);
  CHECK(run_bench({"--ring-bytes", "5000"}) == 2);
}
