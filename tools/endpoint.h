// The run that shm-produce and shm-consume share: the flags both take, the
// ring they open, and the --stats-json report written however the run ends.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "tools/cli.h"
#include "tools/stats.h"

namespace shmring::tools {

// --create ... --timeout --remove-on-exit: the flags of both endpoints
// before their own.
void add_endpoint_flags(CLI::App& app, RingFlags& ring);

class Endpoint {
 public:
  explicit Endpoint(const RingFlags& ring) : flags_(ring) {}

  // Opens the ring the flags name (open_ring); once open, its identity goes
  // into the report. Valid until run_endpoint returns.
  Segment& open();
  const Segment* segment() const { return ring_ ? &ring_->segment : nullptr; }

  Counters counters;
  // The report's "end" if a Failure ends the run; empty: "timeout" for
  // exit 8, else "error".
  std::string failure_end;
  // More fields for the report (e.g. a broadcast consumer's losses).
  nlohmann::json extra_stats = nlohmann::json::object();

 private:
  const RingFlags& flags_;
  std::optional<OpenedRing> ring_;
};

// Installs the signal handlers and runs `body`, which opens the ring, moves
// the data and returns the report's "end"; a Failure is printed and becomes
// the exit code. Either way --stats-json is written, after everything the
// body holds (its role on the ring) was released.
int run_endpoint(const RingFlags& ring, const ReportFlags& report,
                 const std::function<std::string(Endpoint&)>& body);

}  // namespace shmring::tools
