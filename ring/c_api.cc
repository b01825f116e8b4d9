// The C API (ring/shmring_c.h) on the public C++ API. No exception leaves
// it: every entry point catches and answers a code.
#include "ring/shmring_c.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "ring/shmring.h"

using shmring::Errc;
using shmring::Status;

static_assert(std::is_same_v<key_t, shmring_key_t>,
              "shmring_key_t must be the platform's key_t");

struct shmring_ring {
  std::shared_ptr<shmring::Segment> segment;
};

struct shmring_producer {
  std::shared_ptr<shmring::Segment> segment;  // outlives the Producer
  std::optional<shmring::Producer> p;
};

struct shmring_consumer {
  std::shared_ptr<shmring::Segment> segment;
  std::optional<shmring::Consumer> c;
  // shmring_read with a too small buffer keeps the record here: it was
  // peeked (not released), and the next read or peek returns it again.
  bool held = false;
  shmring::Record held_record;
};

namespace {

thread_local std::string g_last_error;

int code_of(Status s) {
  switch (s) {
    case Status::ok:
      return SHMRING_OK;
    case Status::would_block:
      return SHMRING_WOULD_BLOCK;
    case Status::timed_out:
      return SHMRING_TIMED_OUT;
    case Status::too_large:
      return SHMRING_TOO_LARGE;
    case Status::closed:
      return SHMRING_CLOSED;
    case Status::peer_dead:
      return SHMRING_PEER_DEAD;
    case Status::interrupted:
      return SHMRING_INTERRUPTED;
    case Status::corrupt:
      return SHMRING_CORRUPT;
    case Status::overrun:
      return SHMRING_OVERRUN;
  }
  return SHMRING_E_SYSTEM;
}

int code_of(Errc e) {
  switch (e) {
    case Errc::not_found:
      return SHMRING_E_NOT_FOUND;
    case Errc::exists:
      return SHMRING_E_EXISTS;
    case Errc::permission_denied:
      return SHMRING_E_PERMISSION;
    case Errc::invalid_argument:
      return SHMRING_E_INVALID;
    case Errc::not_shmring:
      return SHMRING_E_NOT_SHMRING;
    case Errc::version_mismatch:
      return SHMRING_E_VERSION;
    case Errc::wrong_kind:
      return SHMRING_E_WRONG_KIND;
    case Errc::size_mismatch:
      return SHMRING_E_SIZE_MISMATCH;
    case Errc::not_ready:
      return SHMRING_E_NOT_READY;
    case Errc::role_taken:
      return SHMRING_E_ROLE_TAKEN;
    case Errc::too_many_producers:
      return SHMRING_E_TOO_MANY_PRODUCERS;
    case Errc::removed:
      return SHMRING_E_REMOVED;
    case Errc::limit:
      return SHMRING_E_LIMIT;
    case Errc::system:
      return SHMRING_E_SYSTEM;
  }
  return SHMRING_E_SYSTEM;
}

int fail(int code, std::string message) {
  g_last_error = std::move(message);
  return code;
}
int fail(const shmring::Error& e) { return fail(code_of(e.code), e.message); }
// An operation's outcome; ok clears nothing (last_error is "last failure").
int outcome(Status s, const char* what) {
  if (s == Status::ok) return SHMRING_OK;
  return fail(code_of(s), std::string(what) + ": " + shmring::to_string(s));
}
int invalid(const char* what) {
  return fail(SHMRING_E_INVALID, std::string(what));
}

shmring::Timeout timeout_of(std::int64_t ns) {
  if (ns < 0) return shmring::kForever;
  return std::chrono::nanoseconds(ns);
}

// Runs `body`, turning an escaped exception into a code.
template <class F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SHMRING_E_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(SHMRING_E_SYSTEM, e.what());
  } catch (...) {
    return fail(SHMRING_E_SYSTEM, "unknown C++ exception");
  }
}

int open_key(shmring_key_t key, const shmring_options* options,
             shmring_ring** out) {
  if (out == nullptr) return invalid("shmring_open: ring is NULL");
  *out = nullptr;
  shmring_options o;
  shmring_options_init(&o);
  if (options != nullptr) o = *options;
  if (o.kind < SHMRING_ANY || o.kind > SHMRING_MPSC) {
    return invalid("shmring_open: kind must be SHMRING_ANY, _SPSC or _MPSC");
  }
  if (o.wait < SHMRING_WAIT_FUTEX || o.wait > SHMRING_WAIT_SPIN) {
    return invalid(
        "shmring_open: wait must be SHMRING_WAIT_FUTEX, "
        "_SEMAPHORE or _SPIN");
  }
  shmring::RingOptions ro;
  ro.kind = o.kind == SHMRING_MPSC ? shmring::Kind::mpsc : shmring::Kind::spsc;
  ro.capacity = o.capacity;
  ro.wait = static_cast<shmring::WaitStrategy>(o.wait);
  ro.mode = o.mode;
  ro.max_producers = o.max_producers;
  std::optional<shmring::Kind> expect;
  if (o.kind != SHMRING_ANY) expect = ro.kind;

  std::optional<shmring::Result<shmring::Segment>> seg;
  switch (o.open) {
    case SHMRING_ATTACH:
      seg.emplace(shmring::Segment::attach(key, expect));
      break;
    case SHMRING_CREATE:
      seg.emplace(shmring::Segment::create(key, ro));
      break;
    case SHMRING_ATTACH_OR_CREATE:
      seg.emplace(shmring::Segment::attach_or_create(key, ro));
      break;
    default:
      return invalid(
          "shmring_open: open must be SHMRING_ATTACH, _CREATE or "
          "_ATTACH_OR_CREATE");
  }
  if (!*seg) return fail(seg->error());
  if ((*seg)->kind() == shmring::Kind::slots) {
    // Fixed-size elements have no record framing to hand out.
    return fail(shmring::Error{
        shmring::Errc::wrong_kind,
        "shmring_open: this is a slots ring (fixed-size elements of " +
            std::to_string((*seg)->slot_size()) +
            " bytes for C++ QueueWriter/QueueReader<T>); the C API moves "
            "records and opens spsc and mpsc rings only"});
  }
  if ((*seg)->kind() == shmring::Kind::broadcast) {
    // A drop-slow producer overwrites records while they are read; the C
    // API has no check of a copy against that (Subscriber::intact).
    const bool lossy = (*seg)->overrun() == shmring::Overrun::drop_slow;
    return fail(shmring::Error{
        shmring::Errc::wrong_kind,
        std::string("shmring_open: this is a ") +
            (lossy ? "drop-slow broadcast ring (its producer overwrites "
                     "records a slow consumer may be reading)"
                   : "broadcast ring") +
            "; the C API opens spsc and mpsc rings only: read it from C++ "
            "(Subscriber) or with shm-consume"});
  }
  auto ring = std::make_unique<shmring_ring>();
  ring->segment = std::make_shared<shmring::Segment>(std::move(*seg).value());
  *out = ring.release();
  return SHMRING_OK;
}

int peek_impl(shmring_consumer* consumer, int64_t timeout_ns,
              shmring::Record* out) {
  if (consumer->held) {
    consumer->held = false;
    *out = consumer->held_record;
    return SHMRING_OK;
  }
  shmring::Peeked p = timeout_ns == 0
                          ? consumer->c->try_peek()
                          : consumer->c->peek(timeout_of(timeout_ns));
  if (p) {
    *out = p.record;
    return SHMRING_OK;
  }
  if (p.status == Status::corrupt) {
    return fail(SHMRING_CORRUPT,
                "peek: ring corrupt at offset " +
                    std::to_string(consumer->c->corrupt_offset()));
  }
  return outcome(p.status, "peek");
}

}  // namespace

extern "C" {

void shmring_options_init(shmring_options* o) {
  if (o == nullptr) return;
  const shmring::RingOptions d;
  o->open = SHMRING_ATTACH;
  o->kind = SHMRING_ANY;
  o->capacity = d.capacity;
  o->wait = SHMRING_WAIT_FUTEX;
  o->mode = d.mode;
  o->max_producers = 0;
}

int shmring_open(shmring_key_t key, const shmring_options* options,
                 shmring_ring** ring) {
  return guarded([&]() -> int { return open_key(key, options, ring); });
}

int shmring_open_path(const char* path, int proj_id,
                      const shmring_options* options, shmring_ring** ring) {
  return guarded([&]() -> int {
    if (ring != nullptr) *ring = nullptr;
    if (path == nullptr) return invalid("shmring_open_path: path is NULL");
    auto key = shmring::key_from_path(path, proj_id);
    if (!key) return fail(key.error());
    return open_key(*key, options, ring);
  });
}

int shmring_remove(shmring_ring* ring) {
  return guarded([&]() -> int {
    if (ring == nullptr) return invalid("shmring_remove: ring is NULL");
    auto r = ring->segment->remove();
    return r ? SHMRING_OK : fail(r.error());
  });
}

int shmring_remove_key(shmring_key_t key) {
  return guarded([&]() -> int {
    auto r = shmring::Segment::remove(key);
    return r ? SHMRING_OK : fail(r.error());
  });
}

void shmring_close(shmring_ring* ring) { delete ring; }

shmring_key_t shmring_key(const shmring_ring* ring) {
  return ring == nullptr ? 0 : ring->segment->key();
}

uint64_t shmring_capacity(const shmring_ring* ring) {
  return ring == nullptr ? 0 : ring->segment->capacity();
}

size_t shmring_max_record_size(const shmring_ring* ring) {
  return ring == nullptr ? 0
                         : shmring::max_record_size(ring->segment->capacity());
}

// ---- Producer.

int shmring_producer_attach(shmring_ring* ring, int flags,
                            shmring_producer** producer) {
  return guarded([&]() -> int {
    if (producer == nullptr) return invalid("producer_attach: out is NULL");
    *producer = nullptr;
    if (ring == nullptr) return invalid("producer_attach: ring is NULL");
    if ((flags & ~SHMRING_WAIT_FOR_CONSUMER) != 0) {
      return invalid("producer_attach: unknown flags");
    }
    shmring::ProducerOptions po;
    po.wait_for_consumer = (flags & SHMRING_WAIT_FOR_CONSUMER) != 0;
    auto h = std::make_unique<shmring_producer>();
    h->segment = ring->segment;
    auto p = shmring::Producer::attach(*h->segment, po);
    if (!p) return fail(p.error());
    h->p.emplace(std::move(p).value());
    *producer = h.release();
    return SHMRING_OK;
  });
}

int shmring_reserve(shmring_producer* producer, size_t size, int64_t timeout_ns,
                    void** data) {
  return guarded([&]() -> int {
    if (data == nullptr) return invalid("shmring_reserve: data is NULL");
    *data = nullptr;
    if (producer == nullptr) return invalid("shmring_reserve: NULL handle");
    shmring::Reservation r =
        timeout_ns == 0 ? producer->p->try_reserve(size)
                        : producer->p->reserve(size, timeout_of(timeout_ns));
    if (r) *data = r.bytes.data();
    return outcome(r.status, "reserve");
  });
}

void shmring_commit(shmring_producer* producer, size_t used, uint16_t type) {
  if (producer != nullptr) producer->p->commit(used, type);
}

void shmring_abort(shmring_producer* producer) {
  if (producer != nullptr) producer->p->abort();
}

int shmring_write(shmring_producer* producer, const void* data, size_t size,
                  int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (producer == nullptr) return invalid("shmring_write: NULL handle");
    if (data == nullptr && size != 0)
      return invalid("shmring_write: NULL data");
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(data),
                                           size);
    const Status s = timeout_ns == 0
                         ? producer->p->try_write(bytes)
                         : producer->p->write(bytes, timeout_of(timeout_ns));
    return outcome(s, "write");
  });
}

void shmring_producer_close(shmring_producer* producer) { delete producer; }

// ---- Consumer.

int shmring_consumer_attach(shmring_ring* ring, shmring_consumer** consumer) {
  return guarded([&]() -> int {
    if (consumer == nullptr) return invalid("consumer_attach: out is NULL");
    *consumer = nullptr;
    if (ring == nullptr) return invalid("consumer_attach: ring is NULL");
    auto h = std::make_unique<shmring_consumer>();
    h->segment = ring->segment;
    auto c = shmring::Consumer::attach(*h->segment);
    if (!c) return fail(c.error());
    h->c.emplace(std::move(c).value());
    *consumer = h.release();
    return SHMRING_OK;
  });
}

int shmring_peek(shmring_consumer* consumer, int64_t timeout_ns,
                 shmring_record* record) {
  return guarded([&]() -> int {
    if (consumer == nullptr || record == nullptr) {
      return invalid("shmring_peek: NULL handle or record");
    }
    shmring::Record r;
    const int rc = peek_impl(consumer, timeout_ns, &r);
    if (rc == SHMRING_OK) {
      record->data = r.data;
      record->size = r.size;
      record->type = r.type;
    }
    return rc;
  });
}

void shmring_release(shmring_consumer* consumer) {
  if (consumer == nullptr) return;
  consumer->held = false;
  consumer->c->release();
}

int shmring_read(shmring_consumer* consumer, void* buffer, size_t capacity,
                 size_t* size, int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (consumer == nullptr || size == nullptr ||
        (buffer == nullptr && capacity != 0)) {
      return invalid("shmring_read: NULL handle, size or buffer");
    }
    *size = 0;
    shmring::Record r;
    const int rc = peek_impl(consumer, timeout_ns, &r);
    if (rc != SHMRING_OK) return rc;
    *size = r.size;
    if (r.size > capacity) {
      consumer->held = true;
      consumer->held_record = r;
      return fail(SHMRING_E_BUFFER,
                  "read: the record has " + std::to_string(r.size) +
                      " bytes, the buffer " + std::to_string(capacity));
    }
    if (r.size != 0) std::memcpy(buffer, r.data, r.size);
    consumer->c->release();
    return SHMRING_OK;
  });
}

int shmring_consumer_fd(shmring_consumer* consumer, int* fd) {
  return guarded([&]() -> int {
    if (consumer == nullptr || fd == nullptr) {
      return invalid("shmring_consumer_fd: NULL handle or fd");
    }
    *fd = -1;
    auto r = consumer->c->wait_fd();
    if (!r) return fail(r.error());
    *fd = *r;
    return SHMRING_OK;
  });
}

void shmring_consumer_close(shmring_consumer* consumer) { delete consumer; }

// ---- Process-wide.

void shmring_interrupt(void) { shmring::interrupt(); }
void shmring_clear_interrupt(void) { shmring::clear_interrupt(); }

const char* shmring_strerror(int code) {
  switch (code) {
    case SHMRING_OK:
      return "ok";
    case SHMRING_WOULD_BLOCK:
      return "would_block";
    case SHMRING_TIMED_OUT:
      return "timed_out";
    case SHMRING_TOO_LARGE:
      return "too_large";
    case SHMRING_CLOSED:
      return "closed";
    case SHMRING_PEER_DEAD:
      return "peer_dead";
    case SHMRING_INTERRUPTED:
      return "interrupted";
    case SHMRING_CORRUPT:
      return "corrupt";
    case SHMRING_OVERRUN:
      return "overrun";
    case SHMRING_E_NOT_FOUND:
      return "not_found";
    case SHMRING_E_EXISTS:
      return "exists";
    case SHMRING_E_PERMISSION:
      return "permission_denied";
    case SHMRING_E_INVALID:
      return "invalid_argument";
    case SHMRING_E_NOT_SHMRING:
      return "not_shmring";
    case SHMRING_E_VERSION:
      return "version_mismatch";
    case SHMRING_E_WRONG_KIND:
      return "wrong_kind";
    case SHMRING_E_SIZE_MISMATCH:
      return "size_mismatch";
    case SHMRING_E_NOT_READY:
      return "not_ready";
    case SHMRING_E_ROLE_TAKEN:
      return "role_taken";
    case SHMRING_E_TOO_MANY_PRODUCERS:
      return "too_many_producers";
    case SHMRING_E_REMOVED:
      return "removed";
    case SHMRING_E_LIMIT:
      return "limit";
    case SHMRING_E_SYSTEM:
      return "system";
    case SHMRING_E_NO_MEMORY:
      return "no_memory";
    case SHMRING_E_BUFFER:
      return "buffer_too_small";
    default:
      return "unknown";
  }
}

const char* shmring_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
