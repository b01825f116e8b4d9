// shm-bench: shmring against its peers and the machine's limits, in one run.
//
//   shm-bench                       every scenario, table on stdout
//   shm-bench --json out.json       ... and the full results as JSON
//   shm-bench --smoke               every scenario for a few milliseconds
//   shm-bench --only latency,mpsc   some groups
//
// Build with -c opt. scripts/bench runs it and renders docs/benchmarks.md.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/harness.h"
#include "bench/scenarios.h"
#include "ring/version.h"

#if defined(SHMRING_TSAN)
// TSan builds only (--config=tsan). moodycamel::ReaderWriterQueue (a peer,
// not shmring) orders its queue with atomic_thread_fence, which TSan does
// not model; its own TSan annotations are only enabled where
// __has_feature(thread_sanitizer) exists (clang, not GCC 12), so TSan
// reports its fence-ordered accesses as races. Suppress exactly that
// peer's reports; everything of shmring's stays checked.
extern "C" const char* __tsan_default_suppressions() {
  return "race:moodycamel::ReaderWriterQueue\n";
}
#endif

namespace {

int run(int argc, char** argv) {
  bench::Config config;
  std::string json_path;
  bool no_unpinned = false;

  CLI::App app{
      "shm-bench: shmring against pipes, sockets, Boost queues and "
      "the machine's limits, process to process"};
  app.set_version_flag("--version",
                       std::string("shm-bench (shmring) ") + SHMRING_VERSION);
  app.add_option("--json", json_path,
                 "Write every row (with all samples) as JSON");
  app.add_flag(
      "--smoke", config.smoke,
      "Run every scenario for a few milliseconds (checks, not numbers)");
  app.add_option("--reps", config.reps, "Repetitions per row")
      ->check(CLI::Range(1, 1000));
  app.add_option("--duration", config.duration,
                 "Seconds per throughput repetition")
      ->check(CLI::Range(0.001, 60.0));
  app.add_option("--latency-duration", config.latency_duration,
                 "Seconds per latency repetition")
      ->check(CLI::Range(0.001, 60.0));
  app.add_option("--idle-seconds", config.idle_seconds,
                 "How long the idle consumer waits")
      ->check(CLI::Range(0.01, 60.0));
  app.add_option(
         "--only", config.only,
         "Groups to run: limits, throughput, latency, mpsc, idle, tools, "
         "rigtorp, broadcast")
      ->delimiter(',')
      ->check(CLI::IsMember({"limits", "throughput", "latency", "mpsc", "idle",
                             "tools", "rigtorp", "broadcast"}));
  app.add_option("--peers", config.peers,
                 "Only the rows of these peers (the `peer` field of the JSON, "
                 "e.g. shmring,zmq-push-pull); default: every peer")
      ->delimiter(',');
  app.add_option("--sizes", config.sizes,
                 "Record sizes for the throughput group")
      ->delimiter(',')
      ->check(CLI::IsMember({8, 64, 512, 4096, 65536}));
  app.add_option(
         "--ring-bytes", config.ring_bytes,
         "Capacity of shmring rings and of message_queue (bytes, power of two)")
      ->check(CLI::Range(std::uint64_t{1} << 12, std::uint64_t{1} << 30));
  app.add_option("--batch", config.batch,
                 "Records per flush / per peek_batch in the batched rows")
      ->check(CLI::Range(1, 4096));
  app.add_option("--producer-cpu", config.producer_cpu,
                 "CPU of the producer when pinned");
  app.add_option("--consumer-cpu", config.consumer_cpu,
                 "CPU of the consumer when pinned");
  app.add_flag("--no-unpinned", no_unpinned, "Skip the unpinned variants");
  app.add_option("--tools-dir", config.tools_dir,
                 "Directory holding shm-produce and shm-consume (tools group)");
  app.add_option("--e2e-bytes", config.e2e_bytes,
                 "File size for the tools group")
      ->check(CLI::Range(std::uint64_t{1} << 16, std::uint64_t{1} << 36));
  app.add_option(
      "--e2e-file", config.e2e_file,
      "Use this file for the tools group (default: a temporary one)");
  app.add_flag("-v,--verbose", config.verbose, "Progress on stderr");
  CLI11_PARSE(app, argc, argv);

  config.unpinned = !no_unpinned;
  if ((config.ring_bytes & (config.ring_bytes - 1)) != 0) {
    std::fprintf(stderr, "shm-bench: --ring-bytes must be a power of two\n");
    return 2;
  }
  if (config.smoke) {
    if (app.count("--reps") == 0) config.reps = 1;
    if (app.count("--duration") == 0) config.duration = 0.01;
    if (app.count("--latency-duration") == 0) config.latency_duration = 0.01;
    if (app.count("--idle-seconds") == 0) config.idle_seconds = 0.05;
    if (app.count("--e2e-bytes") == 0) config.e2e_bytes = 4 << 20;
  }

  bench::init_affinity();
  bench::Report report(config);
  struct Group {
    const char* name;
    void (*run)(const bench::Config&, bench::Report&);
  };
  const Group groups[] = {
      {"limits", bench::run_limits},   {"throughput", bench::run_throughput},
      {"latency", bench::run_latency}, {"mpsc", bench::run_mpsc},
      {"idle", bench::run_idle},       {"tools", bench::run_tools},
      {"rigtorp", bench::run_rigtorp}, {"broadcast", bench::run_broadcast},
  };
  for (const Group& g : groups) {
    if (!config.wants(g.name)) continue;
    std::fprintf(stderr, "shm-bench: %s\n", g.name);
    g.run(config, report);
  }

  if (!json_path.empty()) {
    std::vector<std::string> args(argv, argv + argc);
    std::ofstream out(json_path);
    out << report.to_json(args).dump(1) << "\n";
    if (!out) {
      std::fprintf(stderr, "shm-bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  const int failed = report.failures();
  if (failed > 0) {
    std::fprintf(stderr, "shm-bench: %d row(s) failed\n", failed);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "shm-bench: %s\n", ex.what());
    return 1;
  }
}
