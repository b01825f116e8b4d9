#include "tools/endpoint.h"

namespace shmring::tools {

void add_endpoint_flags(CLI::App& app, RingFlags& ring) {
  add_create_flags(app, ring);
  add_lifetime_flags(app, ring);
}

Segment& Endpoint::open() {
  ring_.emplace(open_ring(flags_));
  return ring_->segment;
}

int run_endpoint(const RingFlags& ring, const ReportFlags& report,
                 const std::function<std::string(Endpoint&)>& body) {
  install_signal_handlers();
  const auto start = std::chrono::steady_clock::now();
  Endpoint ep(ring);
  int code = kExitOk;
  std::string end;
  try {
    end = body(ep);
  } catch (const Failure& f) {
    print_error(f.what());
    code = f.code;
    end = !ep.failure_end.empty() ? ep.failure_end
          : code == kExitTimeout  ? "timeout"
                                  : "error";
  }
  nlohmann::json stats =
      stats_json(ep.counters, ep.segment(), start, code, end);
  stats.update(ep.extra_stats);
  write_stats(report, stats);
  return code;
}

}  // namespace shmring::tools
