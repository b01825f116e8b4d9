// The whole public surface of //ring.
#pragma once

#include "ring/layout.h"    // IWYU pragma: export
#include "ring/liveness.h"  // IWYU pragma: export
#include "ring/queue.h"     // IWYU pragma: export
#include "ring/ring.h"      // IWYU pragma: export
#include "ring/segment.h"   // IWYU pragma: export
#include "ring/status.h"    // IWYU pragma: export
#include "ring/version.h"   // IWYU pragma: export
#include "ring/wait.h"      // IWYU pragma: export
#include "ring/wait_fd.h"   // IWYU pragma: export
