#include "tools/stats.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "tools/cli.h"

namespace shmring::tools {

using Clock = std::chrono::steady_clock;

void add_report_flags(CLI::App& app, ReportFlags& f) {
  app.add_flag("--progress{auto}", f.progress,
               "Live line on stderr: records, bytes, rate, ring fill. Only "
               "when stderr is a terminal, unless --progress=always")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  app.add_flag("--stats-json{-}", f.stats_json,
               "At exit, print totals as one JSON line to stderr, or to FILE "
               "with --stats-json=FILE");
}

double fill_percent(const Segment& segment) {
  return 100.0 * static_cast<double>(segment.used_bytes()) /
         static_cast<double>(segment.capacity());
}

Progress::Progress(const ReportFlags& flags, const Counters& counters,
                   const Segment& segment)
    : counters_(counters), segment_(segment), start_(Clock::now()) {
  last_at_ = start_;
  enabled_ = flags.progress == "always" ||
             (flags.progress == "auto" && ::isatty(STDERR_FILENO) == 1);
  if (!enabled_) return;
  // The thread inherits the mask in force when it is created: block the
  // terminating signals around its creation so only the main thread gets
  // them (and its blocking calls return EINTR).
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  sigaddset(&block, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &block, &old);
  thread_ = std::thread([this] { loop(); });
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Progress::~Progress() {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  draw(true);
}

void Progress::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(250),
                       [this] { return stop_; })) {
    draw(false);
  }
}

void Progress::draw(bool final) {
  const auto now = Clock::now();
  const std::uint64_t records =
      counters_.records.load(std::memory_order_relaxed);
  const std::uint64_t bytes = counters_.bytes.load(std::memory_order_relaxed);
  double rate;
  if (final) {
    const double secs = std::chrono::duration<double>(now - start_).count();
    rate = secs > 0 ? static_cast<double>(bytes) / secs : 0;
  } else {
    const double secs = std::chrono::duration<double>(now - last_at_).count();
    rate = secs > 0 ? static_cast<double>(bytes - last_bytes_) / secs : 0;
  }
  last_at_ = now;
  last_bytes_ = bytes;
  char line[256];
  std::snprintf(line, sizeof line,
                "\r%s: %llu records, %s, %s/s, ring %s %.0f%% full\033[K%s",
                tool_name().c_str(), static_cast<unsigned long long>(records),
                human_bytes(static_cast<double>(bytes)).c_str(),
                human_bytes(rate).c_str(), hex_key(segment_.key()).c_str(),
                fill_percent(segment_), final ? "\n" : "");
  // One write(2): the line is never torn by another thread's output.
  const ssize_t n = ::write(STDERR_FILENO, line, std::strlen(line));
  (void)n;
}

nlohmann::json stats_json(const Counters& counters, const Segment* segment,
                          Clock::time_point start, int exit_code,
                          const std::string& end) {
  const double secs =
      std::chrono::duration<double>(Clock::now() - start).count();
  const auto records = counters.records.load(std::memory_order_relaxed);
  const auto bytes = counters.bytes.load(std::memory_order_relaxed);
  nlohmann::json j;
  j["tool"] = tool_name();
  if (segment != nullptr) {
    j["key"] = hex_key(segment->key());
    j["shmid"] = segment->id();
    j["kind"] = kind_name(segment->kind());
    j["capacity"] = segment->capacity();
  }
  j["records"] = records;
  j["bytes"] = bytes;
  j["seconds"] = secs;
  j["bytes_per_second"] = secs > 0 ? static_cast<double>(bytes) / secs : 0.0;
  j["records_per_second"] =
      secs > 0 ? static_cast<double>(records) / secs : 0.0;
  j["end"] = end;
  j["exit_code"] = exit_code;
  return j;
}

void write_stats(const ReportFlags& flags, const nlohmann::json& j) {
  if (flags.stats_json.empty()) return;
  if (flags.stats_json == "-") {
    std::cerr << j.dump() << std::endl;
    return;
  }
  std::ofstream out(flags.stats_json);
  out << j.dump() << "\n";
  if (!out)
    print_error("cannot write --stats-json file '" + flags.stats_json + "'");
}

}  // namespace shmring::tools
