/* Checks for the C API's C tests (tests/c/, the .c files): every failed check
 * prints where and the API's last error; main() returns c_check_finish(). Keys
 * are unique to the process (its pid) and to `n`. */
#ifndef SHMRING_TESTS_C_CHECK_H
#define SHMRING_TESTS_C_CHECK_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "ring/shmring_c.h"

static int failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, \
              __LINE__, #cond, shmring_last_error());                        \
      ++failures;                                                            \
    }                                                                        \
  } while (0)

#define CHECK_RC(want, expr)                                                \
  do {                                                                      \
    int rc_ = (expr);                                                       \
    if (rc_ != (want)) {                                                    \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s; %s\n",      \
              __FILE__, __LINE__, #expr, rc_, shmring_strerror(rc_), #want, \
              shmring_last_error());                                        \
      ++failures;                                                           \
    }                                                                       \
  } while (0)

/* Waits for data or an end in tests: only a failure waits this long. */
#define LONG_NS ((int64_t)10000000000LL)
#define LONG_MS 10000

static inline key_t test_key(int n) {
  /* The suite's key scheme (tests/support.h): 0x5e, 16 bits of our pid,
   * 8 bits of n. */
  return (key_t)(0x5e000000 | ((getpid() & 0xffff) << 8) | (n & 0xff));
}

static inline int gone(key_t key) {
  return shmget(key, 0, 0) < 0 && errno == ENOENT;
}

static inline int readable(int fd, int timeout_ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

/* Creates a ring of `kind` (exclusive) with the other options as given. */
static inline shmring_ring* create_ring(key_t key, shmring_options* o) {
  shmring_ring* ring = NULL;
  o->open = SHMRING_CREATE;
  CHECK_RC(SHMRING_OK, shmring_open(key, o, &ring));
  return ring;
}

static inline int c_check_finish(const char* name) {
  if (failures != 0) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

#endif /* SHMRING_TESTS_C_CHECK_H */
