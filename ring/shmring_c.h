/* shmring's C API: a lock-free ring buffer in a System V shared-memory
 * segment, usable from C11 (and from any language with a C FFI).
 *
 * Every function that can fail returns an int: SHMRING_OK (0) or one of the
 * codes below. shmring_strerror(code) names a code; shmring_last_error()
 * gives the message of the last failure in the calling thread (which key,
 * which limit, what to do). Handles are opaque; none is shared between
 * threads at the same time. Producers and consumers keep their ring alive:
 * shmring_close() on the ring may come before or after closing them.
 *
 *   shmring_ring* ring;
 *   shmring_options o;
 *   shmring_options_init(&o);
 *   o.open = SHMRING_ATTACH_OR_CREATE;
 *   if (shmring_open_path("somefile3", 'R', &o, &ring) != SHMRING_OK)
 *     fprintf(stderr, "%s\n", shmring_last_error());
 *
 * Kinds: spsc and mpsc rings carry records (shmring_producer,
 * shmring_consumer); broadcast rings carry records every subscriber sees
 * (shmring_producer, shmring_subscriber); slots rings carry fixed-size
 * elements (shmring_queue_writer, shmring_queue_reader).
 *
 * See docs/c.md. The C++ API is ring/shmring.h; these codes map its
 * shmring::Status (1-8) and shmring::Errc (20-33) one to one, in order.
 */
#ifndef SHMRING_C_H
#define SHMRING_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A System V IPC key (key_t, an int on Linux), as ftok() returns. Spelled
 * as int so this header needs no POSIX feature macros under -std=c11. */
typedef int shmring_key_t;

typedef struct shmring_ring shmring_ring;
typedef struct shmring_producer shmring_producer;
typedef struct shmring_consumer shmring_consumer;
typedef struct shmring_subscriber shmring_subscriber;
typedef struct shmring_queue_writer shmring_queue_writer;
typedef struct shmring_queue_reader shmring_queue_reader;

enum shmring_code {
  SHMRING_OK = 0,
  /* Outcomes of reserve / write / peek / read (shmring::Status). */
  SHMRING_WOULD_BLOCK = 1, /* timeout 0 only: full (producer) / empty */
  SHMRING_TIMED_OUT = 2,   /* the timeout expired */
  SHMRING_TOO_LARGE = 3,   /* larger than the ring's largest record */
  SHMRING_CLOSED = 4,      /* consumer: end of stream; or a closed handle */
  SHMRING_PEER_DEAD = 5,   /* producer: consumer gone; consumer: producer
                              died */
  SHMRING_INTERRUPTED = 6, /* a signal, or shmring_interrupt() */
  SHMRING_CORRUPT = 7,     /* the segment holds values no peer writes */
  SHMRING_OVERRUN = 8,     /* drop-slow broadcast: the producer lapped the
                              subscriber (see its lost counters) */
  SHMRING_REMOVED = 9,     /* consumer: the ring was removed (`shm-ring rm`,
                              IPC_RMID, systemd RemoveIPC) and no producer
                              is attached: nothing more can come */
  /* Set-up errors (shmring::Errc). */
  SHMRING_E_NOT_FOUND = 20,
  SHMRING_E_EXISTS = 21,
  SHMRING_E_PERMISSION = 22,
  SHMRING_E_INVALID = 23, /* also: a NULL handle or out pointer */
  SHMRING_E_NOT_SHMRING = 24,
  SHMRING_E_VERSION = 25,
  SHMRING_E_WRONG_KIND = 26,
  SHMRING_E_SIZE_MISMATCH = 27,
  SHMRING_E_NOT_READY = 28,
  SHMRING_E_ROLE_TAKEN = 29,
  SHMRING_E_TOO_MANY_PRODUCERS = 30,
  SHMRING_E_REMOVED = 31,
  SHMRING_E_LIMIT = 32,
  SHMRING_E_SYSTEM = 33,
  /* C API only. */
  SHMRING_E_NO_MEMORY = 40,
  SHMRING_E_BUFFER = 41 /* shmring_read: buffer too small (record kept) */
};

/* Timeouts in nanoseconds: 0 tries once (SHMRING_WOULD_BLOCK), a negative
 * value waits for ever. */
#define SHMRING_FOREVER ((int64_t)-1)

enum shmring_kind {
  SHMRING_ANY = 0,      /* attach: whatever is there */
  SHMRING_SPSC = 1,     /* records, one producer, one consumer */
  SHMRING_MPSC = 2,     /* records, up to max_producers producers */
  SHMRING_SLOTS = 3,    /* fixed-size elements (element_size bytes) */
  SHMRING_BROADCAST = 4 /* records every subscriber sees */
};
/* Broadcast rings: what the producer does when the slowest subscriber
 * would be overwritten. */
enum shmring_overrun {
  SHMRING_OVERRUN_WAIT = 0,     /* wait for it (the default) */
  SHMRING_OVERRUN_DROP_SLOW = 1 /* never wait: a lapped subscriber loses
                                   records and counts them */
};
enum shmring_wait {
  SHMRING_WAIT_FUTEX = 1,
  SHMRING_WAIT_SEMAPHORE = 2,
  SHMRING_WAIT_SPIN = 3
};
enum shmring_open_mode {
  SHMRING_ATTACH = 0,          /* the ring must exist */
  SHMRING_CREATE = 1,          /* exclusive: SHMRING_E_EXISTS if taken */
  SHMRING_ATTACH_OR_CREATE = 2 /* either side may start first */
};

typedef struct shmring_options {
  int open;               /* enum shmring_open_mode; default ATTACH */
  int kind;               /* enum shmring_kind; ANY: attach whatever is
                             there, create SPSC. Attach: SHMRING_E_WRONG_KIND
                             if the ring is of another kind */
  uint64_t capacity;      /* bytes, power of two; default 1 MiB */
  int wait;               /* enum shmring_wait (create only); default futex */
  unsigned mode;          /* permission bits (create only); default 0600 */
  uint32_t max_producers; /* 0: 1 for SPSC, 64 for MPSC */
  /* Broadcast rings (create only). */
  int overrun;            /* enum shmring_overrun; default WAIT */
  uint32_t max_consumers; /* subscribers at once; 0: the most (64) */
  /* Slots rings: the element size in bytes, 1 .. capacity / 2; required
   * to create one. Attach: 0 accepts any, else SHMRING_E_WRONG_KIND unless
   * the ring's elements have this size. */
  uint32_t element_size;
} shmring_options;

/* The defaults above. */
void shmring_options_init(shmring_options* options);

/* Opens the ring under a SysV key, or under ftok(path, proj_id), of any
 * kind. `options` may be NULL (attach, any kind). SHMRING_E_INVALID for an
 * unknown open mode, kind, wait or overrun. */
int shmring_open(shmring_key_t key, const shmring_options* options,
                 shmring_ring** ring);
int shmring_open_path(const char* path, int proj_id,
                      const shmring_options* options, shmring_ring** ring);
/* Marks the segment for removal (IPC_RMID); it disappears when the last
 * process detaches. The handle stays usable. */
int shmring_remove(shmring_ring* ring);
/* Removes the ring under `key` without opening a handle. */
int shmring_remove_key(shmring_key_t key);
/* Drops this handle (the mapping goes when no producer/consumer uses it). */
void shmring_close(shmring_ring* ring);
shmring_key_t shmring_key(const shmring_ring* ring);
uint64_t shmring_capacity(const shmring_ring* ring);
/* The largest record: half the capacity, minus its header (record
 * kinds). */
size_t shmring_max_record_size(const shmring_ring* ring);
/* The ring's kind (enum shmring_kind); 0 for NULL. */
int shmring_ring_kind(const shmring_ring* ring);
/* Slots rings: the element size in bytes; 0 for other kinds and NULL. */
size_t shmring_element_size(const shmring_ring* ring);

/* ---- Producer: spsc, mpsc and broadcast rings. */
/* Flags for shmring_producer_attach and shmring_queue_writer_attach: on a
 * full ring whose consumer is gone, wait for a new one instead of
 * SHMRING_PEER_DEAD. */
enum { SHMRING_WAIT_FOR_CONSUMER = 1 };
/* SHMRING_E_ROLE_TAKEN if a one-producer ring has a live producer,
 * SHMRING_E_TOO_MANY_PRODUCERS if every MPSC slot is held,
 * SHMRING_E_WRONG_KIND on a slots ring (shmring_queue_writer_attach). On a
 * broadcast ring every subscriber sees what it writes; on a drop-slow one
 * it never waits for them. */
int shmring_producer_attach(shmring_ring* ring, int flags,
                            shmring_producer** producer);
/* Room for `size` bytes at *data, writable until commit or abort. */
int shmring_reserve(shmring_producer* producer, size_t size, int64_t timeout_ns,
                    void** data);
/* Publishes the reservation trimmed to `used` bytes; `type` is 13 bits the
 * application may use (0 if unsure). */
void shmring_commit(shmring_producer* producer, size_t used, uint16_t type);
void shmring_abort(shmring_producer* producer);
/* reserve + memcpy + commit. */
int shmring_write(shmring_producer* producer, const void* data, size_t size,
                  int64_t timeout_ns);
/* Detaches (the last producer's close is the consumer's end of stream) and
 * frees the handle. */
void shmring_producer_close(shmring_producer* producer);

/* ---- Consumer: spsc and mpsc rings. */
typedef struct shmring_record {
  const void* data; /* valid until shmring_release() */
  size_t size;
  uint16_t type;
} shmring_record;

/* Flags for shmring_consumer_attach_flags and shmring_subscriber_attach.
 * By default a consumer (and a subscriber) follows the stream rules of
 * shm-consume (docs/tools.md, "Streams"): attached between streams (an
 * earlier consumer read the last stream to its end and no producer is
 * attached) it waits for the next producer -- peek answers
 * SHMRING_WOULD_BLOCK or SHMRING_TIMED_OUT and the fd stays unreadable --
 * instead of reporting the old end of stream at once. SHMRING_RAW gives
 * the library's own behaviour: SHMRING_CLOSED whenever no producer is
 * attached and the ring is drained. */
enum { SHMRING_RAW = 1 };

/* Takes the consumer role with the stream rules (flags 0).
 * SHMRING_E_ROLE_TAKEN if a live consumer holds it (a dead one's is taken
 * over: reading resumes at its last released position);
 * SHMRING_E_WRONG_KIND on broadcast rings (shmring_subscriber_attach) and
 * slots rings (shmring_queue_reader_attach). */
int shmring_consumer_attach(shmring_ring* ring, shmring_consumer** consumer);
/* The same with flags: 0 or SHMRING_RAW. */
int shmring_consumer_attach_flags(shmring_ring* ring, int flags,
                                  shmring_consumer** consumer);
/* The next record, zero-copy. SHMRING_CLOSED at end of stream;
 * SHMRING_PEER_DEAD if the last producer died instead of closing;
 * SHMRING_REMOVED (within about 250 ms) if, while it waits for a producer,
 * the ring is removed and no other process maps it: none can attach it
 * then (the fd turns readable for it). A timeout applies to each wait: for
 * data, and (stream rules) for a producer. */
int shmring_peek(shmring_consumer* consumer, int64_t timeout_ns,
                 shmring_record* record);
/* Gives every peeked record's space back to producers. */
void shmring_release(shmring_consumer* consumer);
/* peek + copy + release. SHMRING_E_BUFFER if the record is larger than
 * `capacity`: *size says how large, and the next read or peek returns the
 * same record again. */
int shmring_read(shmring_consumer* consumer, void* buffer, size_t capacity,
                 size_t* size, int64_t timeout_ns);
/* A file descriptor for poll/epoll/select: readable when a record is
 * available or the stream ended; level-triggered (stays readable until a
 * peek with timeout 0 answers SHMRING_WOULD_BLOCK). Readable when first
 * made, until such a peek; may be readable spuriously, never stuck. With
 * the stream rules it stays unreadable between streams until a producer
 * writes or closes. Owned by the consumer: do not close it. Futex rings
 * only (else SHMRING_E_INVALID). */
int shmring_consumer_fd(shmring_consumer* consumer, int* fd);
/* Detaches (records peeked but not released come again to the next
 * consumer) and frees the handle. */
void shmring_consumer_close(shmring_consumer* consumer);

/* ---- Subscriber: broadcast rings. Each subscriber sees every record
 * committed after it attached. */

/* Takes a free cursor (a dead subscriber's is taken over), with the stream
 * rules unless flags is SHMRING_RAW. SHMRING_E_ROLE_TAKEN if every cursor
 * (max_consumers) is held by a live subscriber; SHMRING_E_WRONG_KIND on any
 * other kind. */
int shmring_subscriber_attach(shmring_ring* ring, int flags,
                              shmring_subscriber** subscriber);
/* As shmring_peek. On a drop-slow ring also SHMRING_OVERRUN (no record):
 * the producer lapped this subscriber; the loss is added to the lost
 * counters and the next peek delivers the oldest intact record. A record
 * peeked there may be overwritten while it is read: copy it, then check
 * shmring_subscriber_intact() before using the copy. */
int shmring_subscriber_peek(shmring_subscriber* subscriber, int64_t timeout_ns,
                            shmring_record* record);
/* Gives the peeked records' space back (wait rings: the producer may
 * overwrite it). A torn record is never counted as delivered. */
void shmring_subscriber_release(shmring_subscriber* subscriber);
/* 1 if the records peeked since the last intact or release call were intact
 * while read (they count as delivered), 0 if some were torn (they are
 * dropped and counted as lost; the next peek answers SHMRING_OVERRUN).
 * Always 1 on a wait ring and for NULL. */
int shmring_subscriber_intact(shmring_subscriber* subscriber);
/* peek + copy + intact check + release, as shmring_read. A torn copy is
 * not returned: the call answers SHMRING_OVERRUN (counters updated). */
int shmring_subscriber_read(shmring_subscriber* subscriber, void* buffer,
                            size_t capacity, size_t* size, int64_t timeout_ns);
/* As shmring_consumer_fd. */
int shmring_subscriber_fd(shmring_subscriber* subscriber, int* fd);
/* Payload bytes and records the producer committed that this subscriber
 * lost to overruns (drop-slow; 0 on a wait ring and for NULL). */
uint64_t shmring_subscriber_lost_bytes(const shmring_subscriber* subscriber);
uint64_t shmring_subscriber_lost_records(const shmring_subscriber* subscriber);
/* Frees the cursor and the handle. */
void shmring_subscriber_close(shmring_subscriber* subscriber);

/* ---- Queue: slots rings, fixed-size elements of shmring_element_size()
 * bytes. No stream rules: the reader sees end of stream as the library
 * reports it (no producer attached, drained). */

/* Takes the producer role. Flags: 0 or SHMRING_WAIT_FOR_CONSUMER.
 * SHMRING_E_WRONG_KIND on other kinds, SHMRING_E_ROLE_TAKEN if a live
 * writer holds it. */
int shmring_queue_writer_attach(shmring_ring* ring, int flags,
                                shmring_queue_writer** writer);
/* Copies one element (element_size bytes from `element`) into the ring,
 * waiting while it is full: SHMRING_OK, SHMRING_TIMED_OUT, SHMRING_PEER_DEAD
 * (the reader is gone), SHMRING_INTERRUPTED, SHMRING_CORRUPT. */
int shmring_queue_push(shmring_queue_writer* writer, const void* element,
                       int64_t timeout_ns);
/* shmring_queue_push that never waits: SHMRING_WOULD_BLOCK when full. */
int shmring_queue_try_push(shmring_queue_writer* writer, const void* element);
/* Detaches (the reader sees end of stream once it has read all) and frees
 * the handle. */
void shmring_queue_writer_close(shmring_queue_writer* writer);

/* Takes the consumer role (a dead reader's is taken over: reading resumes
 * after its last element). SHMRING_E_WRONG_KIND on other kinds,
 * SHMRING_E_ROLE_TAKEN if a live reader holds it. */
int shmring_queue_reader_attach(shmring_ring* ring,
                                shmring_queue_reader** reader);
/* Copies the next element into `element` (element_size bytes, written only
 * on SHMRING_OK), waiting while the ring is empty: SHMRING_CLOSED /
 * SHMRING_PEER_DEAD at end of stream, SHMRING_TIMED_OUT,
 * SHMRING_INTERRUPTED, SHMRING_CORRUPT; SHMRING_REMOVED if the ring is
 * removed before any writer attached. */
int shmring_queue_pop(shmring_queue_reader* reader, void* element,
                      int64_t timeout_ns);
/* shmring_queue_pop that never waits: SHMRING_WOULD_BLOCK when empty. */
int shmring_queue_try_pop(shmring_queue_reader* reader, void* element);
/* As shmring_consumer_fd (a try_pop answering SHMRING_WOULD_BLOCK clears
 * it). */
int shmring_queue_reader_fd(shmring_queue_reader* reader, int* fd);
void shmring_queue_reader_close(shmring_queue_reader* reader);

/* ---- Process-wide. */
/* Every blocking call returns SHMRING_INTERRUPTED. Async-signal-safe. */
void shmring_interrupt(void);
void shmring_clear_interrupt(void);
/* A constant name for a code, e.g. "would_block", "not_found". */
const char* shmring_strerror(int code);
/* The message of the calling thread's last failure ("" if none). Valid
 * until its next call into the API. */
const char* shmring_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* SHMRING_C_H */
