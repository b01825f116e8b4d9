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
 * See docs/c.md. The C++ API is ring/shmring.h; these codes map its
 * shmring::Status (1-7) and shmring::Errc (20-33) one to one.
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
  SHMRING_OVERRUN = 8,     /* a broadcast producer lapped the consumer */
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

enum shmring_kind { SHMRING_ANY = 0, SHMRING_SPSC = 1, SHMRING_MPSC = 2 };
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
                             there, create SPSC */
  uint64_t capacity;      /* bytes, power of two; default 1 MiB */
  int wait;               /* enum shmring_wait (create only); default futex */
  unsigned mode;          /* permission bits (create only); default 0600 */
  uint32_t max_producers; /* 0: 1 for SPSC, 64 for MPSC */
} shmring_options;

/* The defaults above. */
void shmring_options_init(shmring_options* options);

/* Opens the ring under a SysV key, or under ftok(path, proj_id). `options`
 * may be NULL (attach, any kind). */
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
/* The largest record: half the capacity, minus its header. */
size_t shmring_max_record_size(const shmring_ring* ring);

/* ---- Producer. */
enum { SHMRING_WAIT_FOR_CONSUMER = 1 }; /* flags for producer_attach */
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

/* ---- Consumer. */
typedef struct shmring_record {
  const void* data; /* valid until shmring_release() */
  size_t size;
  uint16_t type;
} shmring_record;

int shmring_consumer_attach(shmring_ring* ring, shmring_consumer** consumer);
/* The next record, zero-copy. SHMRING_CLOSED at end of stream. */
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
 * peek with timeout 0 answers SHMRING_WOULD_BLOCK). Owned by the consumer:
 * do not close it. Futex rings only. */
int shmring_consumer_fd(shmring_consumer* consumer, int* fd);
void shmring_consumer_close(shmring_consumer* consumer);

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
