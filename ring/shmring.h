// The whole public surface of //ring. (The headers of //ring:internal that
// these include for their inline parts, ring/internal/layout.h, ring/internal/wait.h and
// ring/internal/liveness.h, are not API: ring/BUILD.)
#pragma once

#include "ring/deadline.h"  // IWYU pragma: export
#include "ring/names.h"    // IWYU pragma: export
#include "ring/queue.h"    // IWYU pragma: export
#include "ring/ring.h"     // IWYU pragma: export
#include "ring/segment.h"  // IWYU pragma: export
#include "ring/status.h"   // IWYU pragma: export
#include "ring/stream.h"   // IWYU pragma: export
#include "ring/version.h"  // IWYU pragma: export
