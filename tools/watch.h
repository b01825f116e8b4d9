// `shm-ring watch`: every ring's rates, fill, lag, loss, peers and wait
// state, live, from read-only attachments (docs/tools.md, "shm-ring
// watch"). It never takes a role and never writes to a segment.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "tools/cli.h"

namespace shmring::tools {

struct WatchFlags {
  bool all = false;
  double interval = 1.0;  // seconds between reports
  long long count = 0;    // reports to print; 0: until a signal
  bool json = false;
};

// --all --interval --count --json (the address flags are the caller's).
void add_watch_flags(CLI::App& sub, WatchFlags& w);
// Runs the watch: one ring (`address`, or shmid `address.id` >= 0), or
// every ring with --all; `state_of` names a ring's state as `shm-ring ls`
// does. Returns the exit code (docs/tools.md).
int run_watch(const AddressFlags& address, const WatchFlags& w,
              std::string (*state_of)(const SegmentInfo&));

}  // namespace shmring::tools
