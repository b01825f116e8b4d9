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
#include <utility>
#include <variant>

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

namespace {

// What a shmring_consumer or shmring_subscriber reads through: a
// StreamReader (the stream rules), or with SHMRING_RAW the library's
// Consumer or Subscriber.
struct RecordSource {
  std::shared_ptr<shmring::Segment> segment;  // outlives the reader
  std::optional<std::variant<shmring::StreamReader, shmring::Consumer,
                             shmring::Subscriber>>
      reader;
  // shmring_read with a too small buffer keeps the record here: it was
  // peeked (not released), and the next read or peek returns it again.
  bool held = false;
  shmring::Record held_record;

  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), *reader);
  }
  // The Subscriber underneath (broadcast rings), else nullptr.
  shmring::Subscriber* subscriber() {
    if (auto* s = std::get_if<shmring::StreamReader>(&*reader)) {
      return s->subscriber();
    }
    return std::get_if<shmring::Subscriber>(&*reader);
  }
};

}  // namespace

struct shmring_consumer {
  RecordSource src;
};

struct shmring_subscriber {
  RecordSource src;
};

struct shmring_queue_writer {
  std::shared_ptr<shmring::Segment> segment;  // outlives the writer
  std::optional<shmring::ByteQueueWriter> w;
};

struct shmring_queue_reader {
  std::shared_ptr<shmring::Segment> segment;  // outlives the reader
  std::optional<shmring::ByteQueueReader> r;
};

namespace {

thread_local std::string g_last_error;

// The codes are the C++ values (Status) and 20 + the C++ values (Errc), in
// order; code_of's switches (-Wswitch) catch an enumerator with no case.
static_assert(SHMRING_REMOVED == static_cast<int>(Status::removed));
static_assert(SHMRING_E_SYSTEM == 20 + static_cast<int>(Errc::system));
static_assert(SHMRING_SPSC == static_cast<int>(shmring::Kind::spsc) &&
              SHMRING_MPSC == static_cast<int>(shmring::Kind::mpsc) &&
              SHMRING_SLOTS == static_cast<int>(shmring::Kind::slots) &&
              SHMRING_BROADCAST == static_cast<int>(shmring::Kind::broadcast));
static_assert(SHMRING_OVERRUN_WAIT ==
                  static_cast<int>(shmring::Overrun::wait) &&
              SHMRING_OVERRUN_DROP_SLOW ==
                  static_cast<int>(shmring::Overrun::drop_slow));

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
    case Status::removed:
      return SHMRING_REMOVED;
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
int invalid(const std::string& what) { return fail(SHMRING_E_INVALID, what); }

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
  if (o.kind < SHMRING_ANY || o.kind > SHMRING_BROADCAST) {
    return invalid(
        "shmring_open: kind must be SHMRING_ANY, _SPSC, _MPSC, _SLOTS or "
        "_BROADCAST");
  }
  if (o.overrun != SHMRING_OVERRUN_WAIT &&
      o.overrun != SHMRING_OVERRUN_DROP_SLOW) {
    return invalid(
        "shmring_open: overrun must be SHMRING_OVERRUN_WAIT or "
        "SHMRING_OVERRUN_DROP_SLOW");
  }
  if (o.wait < SHMRING_WAIT_FUTEX || o.wait > SHMRING_WAIT_SPIN) {
    return invalid(
        "shmring_open: wait must be SHMRING_WAIT_FUTEX, "
        "_SEMAPHORE or _SPIN");
  }
  shmring::RingOptions ro;
  ro.kind = o.kind == SHMRING_ANY ? shmring::Kind::spsc
                                  : static_cast<shmring::Kind>(o.kind);
  ro.capacity = o.capacity;
  ro.wait = static_cast<shmring::WaitStrategy>(o.wait);
  ro.mode = o.mode;
  ro.max_producers = o.max_producers;
  ro.max_consumers = o.max_consumers;
  ro.overrun = static_cast<shmring::Overrun>(o.overrun);
  ro.slot_size = o.element_size;
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
  if ((*seg)->kind() == shmring::Kind::slots && o.element_size != 0 &&
      (*seg)->slot_size() != o.element_size) {
    return fail(shmring::Error{
        shmring::Errc::wrong_kind,
        "shmring_open: this slots ring holds " +
            std::to_string((*seg)->slot_size()) + "-byte elements, not " +
            std::to_string(o.element_size) + " (options.element_size)"});
  }
  auto ring = std::make_unique<shmring_ring>();
  ring->segment = std::make_shared<shmring::Segment>(std::move(*seg).value());
  *out = ring.release();
  return SHMRING_OK;
}

int peek_impl(RecordSource& src, int64_t timeout_ns, shmring::Record* out) {
  if (src.held) {
    src.held = false;
    *out = src.held_record;
    return SHMRING_OK;
  }
  const shmring::Peeked p = src.visit([&](auto& r) {
    return timeout_ns == 0 ? r.try_peek() : r.peek(timeout_of(timeout_ns));
  });
  if (p) {
    *out = p.record;
    return SHMRING_OK;
  }
  if (p.status == Status::corrupt) {
    const std::uint64_t at =
        src.visit([](auto& r) { return r.corrupt_offset(); });
    return fail(SHMRING_CORRUPT,
                "peek: ring corrupt at offset " + std::to_string(at));
  }
  if (p.status == Status::overrun) {
    const shmring::Subscriber* s = src.subscriber();
    if (s == nullptr) return outcome(p.status, "peek");
    return fail(SHMRING_OVERRUN,
                "peek: the producer lapped this subscriber; lost so far: " +
                    std::to_string(s->lost_records()) + " records, " +
                    std::to_string(s->lost_bytes()) + " bytes");
  }
  return outcome(p.status, "peek");
}

void release_impl(RecordSource& src) {
  src.held = false;
  src.visit([](auto& r) { r.release(); });
}

// Takes the consumer role (spsc, mpsc) or a cursor (broadcast), through a
// StreamReader unless `flags` is SHMRING_RAW.
int attach_source(shmring_ring* ring, int flags, bool broadcast,
                  RecordSource* src, const char* what) {
  if (ring == nullptr) return invalid(std::string(what) + ": ring is NULL");
  if ((flags & ~SHMRING_RAW) != 0) {
    return invalid(std::string(what) + ": unknown flags");
  }
  const shmring::Kind kind = ring->segment->kind();
  if ((kind == shmring::Kind::broadcast) != broadcast ||
      kind == shmring::Kind::slots) {
    const char* use =
        kind == shmring::Kind::broadcast ? "shmring_subscriber_attach"
        : kind == shmring::Kind::slots   ? "shmring_queue_reader_attach"
                                         : "shmring_consumer_attach";
    return fail(
        shmring::Error{Errc::wrong_kind, std::string(what) + ": this is a " +
                                             shmring::kind_name(kind) +
                                             " ring: read it with " + use});
  }
  src->segment = ring->segment;
  shmring::Segment& seg = *src->segment;
  if ((flags & SHMRING_RAW) == 0) {
    auto r = shmring::StreamReader::attach(seg);
    if (!r) return fail(r.error());
    src->reader.emplace(std::in_place_type<shmring::StreamReader>,
                        std::move(r).value());
  } else if (broadcast) {
    auto r = shmring::Subscriber::attach(seg);
    if (!r) return fail(r.error());
    src->reader.emplace(std::in_place_type<shmring::Subscriber>,
                        std::move(r).value());
  } else {
    auto r = shmring::Consumer::attach(seg);
    if (!r) return fail(r.error());
    src->reader.emplace(std::in_place_type<shmring::Consumer>,
                        std::move(r).value());
  }
  return SHMRING_OK;
}

int read_impl(RecordSource& src, void* buffer, size_t capacity, size_t* size,
              int64_t timeout_ns) {
  *size = 0;
  for (;;) {
    shmring::Record r;
    const int rc = peek_impl(src, timeout_ns, &r);
    if (rc != SHMRING_OK) return rc;
    *size = r.size;
    if (r.size > capacity) {
      src.held = true;
      src.held_record = r;
      return fail(SHMRING_E_BUFFER,
                  "read: the record has " + std::to_string(r.size) +
                      " bytes, the buffer " + std::to_string(capacity));
    }
    if (r.size != 0) std::memcpy(buffer, r.data, r.size);
    shmring::Subscriber* s = src.subscriber();
    // Drop-slow: the copy counts only if the record was intact meanwhile.
    const bool intact = s == nullptr || s->intact();
    release_impl(src);
    if (intact) return SHMRING_OK;
    *size = 0;  // torn: dropped; the next peek reports the overrun
  }
}

int fd_impl(RecordSource& src, int* fd) {
  *fd = -1;
  auto r = src.visit([](auto& h) { return h.wait_fd(); });
  if (!r) return fail(r.error());
  *fd = *r;
  return SHMRING_OK;
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
  o->overrun = SHMRING_OVERRUN_WAIT;
  o->max_consumers = 0;
  o->element_size = 0;
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

int shmring_ring_kind(const shmring_ring* ring) {
  return ring == nullptr ? 0 : static_cast<int>(ring->segment->kind());
}

size_t shmring_element_size(const shmring_ring* ring) {
  return ring == nullptr ? 0 : ring->segment->slot_size();
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

int shmring_consumer_attach_flags(shmring_ring* ring, int flags,
                                  shmring_consumer** consumer) {
  return guarded([&]() -> int {
    if (consumer == nullptr) return invalid("consumer_attach: out is NULL");
    *consumer = nullptr;
    auto h = std::make_unique<shmring_consumer>();
    const int rc =
        attach_source(ring, flags, false, &h->src, "consumer_attach");
    if (rc != SHMRING_OK) return rc;
    *consumer = h.release();
    return SHMRING_OK;
  });
}

int shmring_consumer_attach(shmring_ring* ring, shmring_consumer** consumer) {
  return shmring_consumer_attach_flags(ring, 0, consumer);
}

int shmring_peek(shmring_consumer* consumer, int64_t timeout_ns,
                 shmring_record* record) {
  return guarded([&]() -> int {
    if (consumer == nullptr || record == nullptr) {
      return invalid("shmring_peek: NULL handle or record");
    }
    shmring::Record r;
    const int rc = peek_impl(consumer->src, timeout_ns, &r);
    if (rc == SHMRING_OK) *record = {r.data, r.size, r.type};
    return rc;
  });
}

void shmring_release(shmring_consumer* consumer) {
  if (consumer != nullptr) release_impl(consumer->src);
}

int shmring_read(shmring_consumer* consumer, void* buffer, size_t capacity,
                 size_t* size, int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (consumer == nullptr || size == nullptr ||
        (buffer == nullptr && capacity != 0)) {
      return invalid("shmring_read: NULL handle, size or buffer");
    }
    return read_impl(consumer->src, buffer, capacity, size, timeout_ns);
  });
}

int shmring_consumer_fd(shmring_consumer* consumer, int* fd) {
  return guarded([&]() -> int {
    if (consumer == nullptr || fd == nullptr) {
      return invalid("shmring_consumer_fd: NULL handle or fd");
    }
    return fd_impl(consumer->src, fd);
  });
}

void shmring_consumer_close(shmring_consumer* consumer) { delete consumer; }

// ---- Subscriber.

int shmring_subscriber_attach(shmring_ring* ring, int flags,
                              shmring_subscriber** subscriber) {
  return guarded([&]() -> int {
    if (subscriber == nullptr) {
      return invalid("subscriber_attach: out is NULL");
    }
    *subscriber = nullptr;
    auto h = std::make_unique<shmring_subscriber>();
    const int rc =
        attach_source(ring, flags, true, &h->src, "subscriber_attach");
    if (rc != SHMRING_OK) return rc;
    *subscriber = h.release();
    return SHMRING_OK;
  });
}

int shmring_subscriber_peek(shmring_subscriber* subscriber, int64_t timeout_ns,
                            shmring_record* record) {
  return guarded([&]() -> int {
    if (subscriber == nullptr || record == nullptr) {
      return invalid("shmring_subscriber_peek: NULL handle or record");
    }
    shmring::Record r;
    const int rc = peek_impl(subscriber->src, timeout_ns, &r);
    if (rc == SHMRING_OK) *record = {r.data, r.size, r.type};
    return rc;
  });
}

void shmring_subscriber_release(shmring_subscriber* subscriber) {
  if (subscriber != nullptr) release_impl(subscriber->src);
}

int shmring_subscriber_intact(shmring_subscriber* subscriber) {
  if (subscriber == nullptr) return 1;
  return subscriber->src.subscriber()->intact() ? 1 : 0;
}

int shmring_subscriber_read(shmring_subscriber* subscriber, void* buffer,
                            size_t capacity, size_t* size, int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (subscriber == nullptr || size == nullptr ||
        (buffer == nullptr && capacity != 0)) {
      return invalid("shmring_subscriber_read: NULL handle, size or buffer");
    }
    return read_impl(subscriber->src, buffer, capacity, size, timeout_ns);
  });
}

int shmring_subscriber_fd(shmring_subscriber* subscriber, int* fd) {
  return guarded([&]() -> int {
    if (subscriber == nullptr || fd == nullptr) {
      return invalid("shmring_subscriber_fd: NULL handle or fd");
    }
    return fd_impl(subscriber->src, fd);
  });
}

uint64_t shmring_subscriber_lost_bytes(const shmring_subscriber* subscriber) {
  if (subscriber == nullptr) return 0;
  return const_cast<RecordSource&>(subscriber->src).subscriber()->lost_bytes();
}

uint64_t shmring_subscriber_lost_records(const shmring_subscriber* subscriber) {
  if (subscriber == nullptr) return 0;
  return const_cast<RecordSource&>(subscriber->src)
      .subscriber()
      ->lost_records();
}

void shmring_subscriber_close(shmring_subscriber* subscriber) {
  delete subscriber;
}

// ---- Queue.

int shmring_queue_writer_attach(shmring_ring* ring, int flags,
                                shmring_queue_writer** writer) {
  return guarded([&]() -> int {
    if (writer == nullptr) return invalid("queue_writer_attach: out is NULL");
    *writer = nullptr;
    if (ring == nullptr) return invalid("queue_writer_attach: ring is NULL");
    if ((flags & ~SHMRING_WAIT_FOR_CONSUMER) != 0) {
      return invalid("queue_writer_attach: unknown flags");
    }
    shmring::ProducerOptions po;
    po.wait_for_consumer = (flags & SHMRING_WAIT_FOR_CONSUMER) != 0;
    auto h = std::make_unique<shmring_queue_writer>();
    h->segment = ring->segment;
    auto w = shmring::ByteQueueWriter::attach(*h->segment, po);
    if (!w) return fail(w.error());
    h->w.emplace(std::move(w).value());
    *writer = h.release();
    return SHMRING_OK;
  });
}

int shmring_queue_push(shmring_queue_writer* writer, const void* element,
                       int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (writer == nullptr || element == nullptr) {
      return invalid("shmring_queue_push: NULL handle or element");
    }
    const std::span<const std::byte> e(static_cast<const std::byte*>(element),
                                       writer->w->element_size());
    const Status s = timeout_ns == 0
                         ? writer->w->try_push(e)
                         : writer->w->push(e, timeout_of(timeout_ns));
    return outcome(s, "queue push");
  });
}

int shmring_queue_try_push(shmring_queue_writer* writer, const void* element) {
  return shmring_queue_push(writer, element, 0);
}

void shmring_queue_writer_close(shmring_queue_writer* writer) { delete writer; }

int shmring_queue_reader_attach(shmring_ring* ring,
                                shmring_queue_reader** reader) {
  return guarded([&]() -> int {
    if (reader == nullptr) return invalid("queue_reader_attach: out is NULL");
    *reader = nullptr;
    if (ring == nullptr) return invalid("queue_reader_attach: ring is NULL");
    auto h = std::make_unique<shmring_queue_reader>();
    h->segment = ring->segment;
    auto r = shmring::ByteQueueReader::attach(*h->segment);
    if (!r) return fail(r.error());
    h->r.emplace(std::move(r).value());
    *reader = h.release();
    return SHMRING_OK;
  });
}

int shmring_queue_pop(shmring_queue_reader* reader, void* element,
                      int64_t timeout_ns) {
  return guarded([&]() -> int {
    if (reader == nullptr || element == nullptr) {
      return invalid("shmring_queue_pop: NULL handle or element");
    }
    const std::span<std::byte> e(static_cast<std::byte*>(element),
                                 reader->r->element_size());
    const Status s = timeout_ns == 0
                         ? reader->r->try_pop(e)
                         : reader->r->pop(e, timeout_of(timeout_ns));
    return outcome(s, "queue pop");
  });
}

int shmring_queue_try_pop(shmring_queue_reader* reader, void* element) {
  return shmring_queue_pop(reader, element, 0);
}

int shmring_queue_reader_fd(shmring_queue_reader* reader, int* fd) {
  return guarded([&]() -> int {
    if (reader == nullptr || fd == nullptr) {
      return invalid("shmring_queue_reader_fd: NULL handle or fd");
    }
    *fd = -1;
    auto r = reader->r->wait_fd();
    if (!r) return fail(r.error());
    *fd = *r;
    return SHMRING_OK;
  });
}

void shmring_queue_reader_close(shmring_queue_reader* reader) { delete reader; }

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
    case SHMRING_REMOVED:
      return "ring_removed";
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
