// The whole public surface of //ring: the headers in ring/ (ring/internal/
// is not API; the public headers include some of it for their inline fast
// paths only).
//   segment.h    Segment: create, attach, remove, inspect a ring
//   ring.h       Producer, Consumer: records on spsc and mpsc rings
//   broadcast.h  Subscriber: a reader of a broadcast ring
//   queue.h      QueueWriter<T>, QueueReader<T>: fixed-slot rings
//   stream.h     StreamReader: a reader with the tools' stream rules
//   record.h     Record, Reservation, Peeked, PeekedBatch: what data calls
//                take and give
//   status.h, kinds.h, deadline.h, names.h, version.h: the vocabulary
#pragma once

#include "ring/broadcast.h"  // IWYU pragma: export
#include "ring/deadline.h"   // IWYU pragma: export
#include "ring/kinds.h"      // IWYU pragma: export
#include "ring/names.h"      // IWYU pragma: export
#include "ring/queue.h"      // IWYU pragma: export
#include "ring/record.h"     // IWYU pragma: export
#include "ring/ring.h"       // IWYU pragma: export
#include "ring/segment.h"    // IWYU pragma: export
#include "ring/status.h"     // IWYU pragma: export
#include "ring/stream.h"     // IWYU pragma: export
#include "ring/version.h"    // IWYU pragma: export
