// Totals, the live --progress line and the --stats-json report of
// shm-produce and shm-consume.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "ring/shmring.h"

namespace shmring::tools {

// Written by the main thread only; the progress thread reads them for
// display. relaxed everywhere: nothing is published through them, a
// slightly stale number on a progress line is fine.
struct Counters {
  std::atomic<std::uint64_t> records{0};
  std::atomic<std::uint64_t> bytes{0};
  void add(std::uint64_t r, std::uint64_t b) {
    records.store(records.load(std::memory_order_relaxed) + r,
                  std::memory_order_relaxed);
    bytes.store(bytes.load(std::memory_order_relaxed) + b,
                std::memory_order_relaxed);
  }
};

struct ReportFlags {
  std::string progress;    // "", "auto", "always", "never"
  std::string stats_json;  // "", "-" (stderr) or a file name
};

// --progress[=auto|always|never] and --stats-json[=FILE].
void add_report_flags(CLI::App& app, ReportFlags& f);

// A background thread that redraws one stderr line (records, bytes, rate,
// ring fill) every 250 ms, if --progress asked for it and stderr is a TTY
// (or --progress=always). Terminating signals are blocked in that thread so
// they keep interrupting the main thread's read/write/wait.
class Progress {
 public:
  Progress(const ReportFlags& flags, const Counters& counters,
           const Segment& segment);
  ~Progress();  // stops the thread and ends the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  void loop();
  void draw(bool final);

  const Counters& counters_;
  const Segment& segment_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_at_;
  std::uint64_t last_bytes_ = 0;
  bool enabled_ = false;
  bool stop_ = false;  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

// Ring fill in percent, from the shared indices: a guess while peers run.
double fill_percent(const Segment& segment);

// The common part of --stats-json: tool, ring, totals, rate, exit code.
nlohmann::json stats_json(const Counters& counters, const Segment* segment,
                          std::chrono::steady_clock::time_point start,
                          int exit_code, const std::string& end);

// Writes `j` as one line to stderr ("-") or the file --stats-json named.
void write_stats(const ReportFlags& flags, const nlohmann::json& j);

}  // namespace shmring::tools
