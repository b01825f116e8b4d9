/* The C API (ring/shmring_c.h), driven from plain C11: compiled with
 * -std=c11 -pedantic -Werror so the header stays C-clean. Every check
 * prints what failed and the test exits 1; keys follow the suite's scheme
 * (tests/c/c_check.h) and every ring is removed (checked with shmget at
 * the end). */
#define _POSIX_C_SOURCE 200809L

#include "ring/shmring_c.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/c/c_check.h"

static shmring_ring* create(key_t key, int kind, uint64_t capacity) {
  shmring_options o;
  shmring_ring* ring = NULL;
  shmring_options_init(&o);
  o.open = SHMRING_CREATE;
  o.kind = kind;
  o.capacity = capacity;
  CHECK_RC(SHMRING_OK, shmring_open(key, &o, &ring));
  return ring;
}

static void test_open_errors(void) {
  shmring_ring* ring = (shmring_ring*)1;
  shmring_options o;
  const key_t key = test_key(1);
  CHECK_RC(SHMRING_E_NOT_FOUND, shmring_open(key, NULL, &ring));
  CHECK(ring == NULL);
  CHECK(strlen(shmring_last_error()) > 0);
  CHECK_RC(SHMRING_E_NOT_FOUND,
           shmring_open_path("/nonexistent/shmring/path", 'R', NULL, &ring));

  shmring_options_init(&o);
  CHECK(o.open == SHMRING_ATTACH && o.kind == SHMRING_ANY);
  CHECK(o.capacity == 1u << 20 && o.mode == 0600);
  o.open = SHMRING_CREATE;
  o.capacity = 1000; /* not a power of two */
  CHECK_RC(SHMRING_E_INVALID, shmring_open(key, &o, &ring));
  o.capacity = 4096;
  o.kind = 7;
  CHECK_RC(SHMRING_E_INVALID, shmring_open(key, &o, &ring));
  CHECK_RC(SHMRING_E_INVALID, shmring_open(key, NULL, NULL));

  ring = create(key, SHMRING_SPSC, 4096);
  if (ring == NULL) return;
  CHECK(shmring_key(ring) == key);
  CHECK(shmring_capacity(ring) == 4096);
  CHECK(shmring_max_record_size(ring) > 0 &&
        shmring_max_record_size(ring) < 4096);
  o.kind = SHMRING_SPSC;
  {
    shmring_ring* again = NULL;
    CHECK_RC(SHMRING_E_EXISTS, shmring_open(key, &o, &again));
    o.open = SHMRING_ATTACH;
    o.kind = SHMRING_MPSC;
    CHECK_RC(SHMRING_E_WRONG_KIND, shmring_open(key, &o, &again));
    o.open = SHMRING_ATTACH_OR_CREATE;
    o.kind = SHMRING_SPSC;
    o.capacity = 8192;
    CHECK_RC(SHMRING_E_SIZE_MISMATCH, shmring_open(key, &o, &again));
    o.capacity = 4096;
    CHECK_RC(SHMRING_OK, shmring_open(key, &o, &again));
    shmring_close(again);
  }
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

static void test_round_trip(void) {
  const key_t key = test_key(2);
  shmring_ring* ring = create(key, SHMRING_SPSC, 4096);
  shmring_producer* p = NULL;
  shmring_producer* p2 = NULL;
  shmring_consumer* c = NULL;
  shmring_record rec;
  void* buf = NULL;
  char out[64];
  size_t n = 0;
  int fd = -1;
  struct pollfd pfd;
  if (ring == NULL) return;

  CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));
  CHECK_RC(SHMRING_E_ROLE_TAKEN, shmring_producer_attach(ring, 0, &p2));
  CHECK_RC(SHMRING_E_INVALID, shmring_producer_attach(ring, 8, &p2));
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  if (p == NULL || c == NULL) return;
  /* The ring handle may go first: producer and consumer keep it mapped. */
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);

  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_peek(c, 0, &rec));
  CHECK_RC(SHMRING_TIMED_OUT, shmring_peek(c, 1000000, &rec));
  CHECK_RC(SHMRING_OK, shmring_consumer_fd(c, &fd));
  CHECK(fd >= 0);
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_peek(c, 0, &rec)); /* arms the fd */
  pfd.fd = fd;
  pfd.events = POLLIN;
  CHECK(poll(&pfd, 1, 50) == 0);

  /* Zero-copy: reserve, fill, commit trimmed; and an aborted one. */
  CHECK_RC(SHMRING_OK, shmring_reserve(p, 100, SHMRING_FOREVER, &buf));
  CHECK(buf != NULL);
  if (buf != NULL) memcpy(buf, "hello", 5);
  shmring_commit(p, 5, 7);
  CHECK_RC(SHMRING_OK, shmring_reserve(p, 10, 0, &buf));
  shmring_abort(p);
  CHECK_RC(SHMRING_OK, shmring_write(p, "world, a longer one", 19, 0));
  CHECK_RC(SHMRING_TOO_LARGE, shmring_write(p, out, 5000, 0));

  CHECK(poll(&pfd, 1, 5000) == 1);
  CHECK_RC(SHMRING_OK, shmring_peek(c, SHMRING_FOREVER, &rec));
  CHECK(rec.size == 5 && rec.type == 7 && memcmp(rec.data, "hello", 5) == 0);
  shmring_release(c);
  /* A too small buffer keeps the record for the next read. */
  CHECK_RC(SHMRING_E_BUFFER, shmring_read(c, out, 4, &n, 0));
  CHECK(n == 19);
  CHECK_RC(SHMRING_OK, shmring_read(c, out, sizeof out, &n, 0));
  CHECK(n == 19 && memcmp(out, "world, a longer one", 19) == 0);
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_read(c, out, sizeof out, &n, 0));
  CHECK(poll(&pfd, 1, 50) == 0);

  /* Fill the ring: would_block / timed_out for the producer. */
  {
    int rc;
    int records = 0;
    while ((rc = shmring_write(p, out, 60, 0)) == SHMRING_OK) ++records;
    CHECK_RC(SHMRING_WOULD_BLOCK, rc);
    CHECK(records > 10);
    CHECK_RC(SHMRING_TIMED_OUT, shmring_write(p, out, 60, 1000000));
    for (; records > 0; --records) {
      CHECK_RC(SHMRING_OK, shmring_read(c, out, sizeof out, &n, 0));
    }
  }

  /* interrupt(): a blocking peek returns at once. */
  shmring_interrupt();
  CHECK_RC(SHMRING_INTERRUPTED, shmring_peek(c, SHMRING_FOREVER, &rec));
  shmring_clear_interrupt();

  shmring_producer_close(p);
  CHECK(poll(&pfd, 1, 5000) == 1);
  CHECK_RC(SHMRING_CLOSED, shmring_peek(c, SHMRING_FOREVER, &rec));
  shmring_consumer_close(c);
  CHECK(gone(key));
}

/* A producer in a forked child, found by ftok path; the parent reads. */
static void test_cross_process_path(void) {
  char path[] = "/tmp/shmring_c_api_testXXXXXX";
  const int tmp = mkstemp(path);
  shmring_options o;
  shmring_ring* ring = NULL;
  shmring_consumer* c = NULL;
  pid_t child;
  int status = 0;
  int i;
  key_t key;
  CHECK(tmp >= 0);
  if (tmp < 0) return;
  close(tmp);
  key = ftok(path, 'R');
  shmring_options_init(&o);
  o.open = SHMRING_ATTACH_OR_CREATE;
  o.kind = SHMRING_MPSC;
  CHECK_RC(SHMRING_OK, shmring_open_path(path, 'R', &o, &ring));
  if (ring == NULL) return;
  CHECK(shmring_key(ring) == key);
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  fflush(NULL);
  child = fork();
  if (child == 0) {
    shmring_ring* r = NULL;
    shmring_producer* p = NULL;
    char line[32];
    if (shmring_open_path(path, 'R', NULL, &r) != SHMRING_OK) _exit(2);
    if (shmring_producer_attach(r, 0, &p) != SHMRING_OK) _exit(3);
    shmring_close(r);
    for (i = 0; i < 1000; ++i) {
      const int len = snprintf(line, sizeof line, "line %d", i);
      if (shmring_write(p, line, (size_t)len, SHMRING_FOREVER) != SHMRING_OK)
        _exit(4);
    }
    shmring_producer_close(p);
    _exit(0);
  }
  CHECK(child > 0);
  for (i = 0; i < 1000; ++i) {
    char want[32];
    char got[32];
    size_t n = 0;
    const int len = snprintf(want, sizeof want, "line %d", i);
    CHECK_RC(SHMRING_OK, shmring_read(c, got, sizeof got, &n, 10000000000LL));
    if (n != (size_t)len || memcmp(got, want, n) != 0) {
      CHECK(!"record out of order or damaged");
      break;
    }
  }
  {
    size_t n = 0;
    char got[32];
    CHECK_RC(SHMRING_CLOSED,
             shmring_read(c, got, sizeof got, &n, 10000000000LL));
  }
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  shmring_consumer_close(c);
  shmring_close(ring);
  CHECK_RC(SHMRING_OK, shmring_remove_key(key));
  CHECK_RC(SHMRING_E_NOT_FOUND, shmring_remove_key(key));
  CHECK(gone(key));
  unlink(path);
}

/* A producer on a full ring whose consumer left: PEER_DEAD, unless it
 * asked to wait for the next consumer (then its timeout applies). */
static void test_consumer_gone(void) {
  const key_t key = test_key(4);
  shmring_ring* ring = create(key, SHMRING_SPSC, 4096);
  shmring_producer* p = NULL;
  shmring_consumer* c = NULL;
  char buf[100] = {0};
  int rc;
  if (ring == NULL) return;
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  shmring_consumer_close(c); /* a consumer came and went */
  CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));
  while ((rc = shmring_write(p, buf, sizeof buf, 0)) == SHMRING_OK) {
  }
  CHECK_RC(SHMRING_WOULD_BLOCK, rc);
  CHECK_RC(SHMRING_PEER_DEAD,
           shmring_write(p, buf, sizeof buf, SHMRING_FOREVER));
  shmring_producer_close(p);
  CHECK_RC(SHMRING_OK,
           shmring_producer_attach(ring, SHMRING_WAIT_FOR_CONSUMER, &p));
  CHECK_RC(SHMRING_TIMED_OUT, shmring_write(p, buf, sizeof buf, 100000000));
  shmring_producer_close(p);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

static void test_names(void) {
  int a, b;
  static const int codes[] = {SHMRING_OK,
                              SHMRING_WOULD_BLOCK,
                              SHMRING_TIMED_OUT,
                              SHMRING_TOO_LARGE,
                              SHMRING_CLOSED,
                              SHMRING_PEER_DEAD,
                              SHMRING_INTERRUPTED,
                              SHMRING_CORRUPT,
                              SHMRING_E_NOT_FOUND,
                              SHMRING_E_EXISTS,
                              SHMRING_E_PERMISSION,
                              SHMRING_E_INVALID,
                              SHMRING_E_NOT_SHMRING,
                              SHMRING_E_VERSION,
                              SHMRING_E_WRONG_KIND,
                              SHMRING_E_SIZE_MISMATCH,
                              SHMRING_E_NOT_READY,
                              SHMRING_E_ROLE_TAKEN,
                              SHMRING_E_TOO_MANY_PRODUCERS,
                              SHMRING_E_REMOVED,
                              SHMRING_E_LIMIT,
                              SHMRING_E_SYSTEM,
                              SHMRING_E_NO_MEMORY,
                              SHMRING_E_BUFFER};
  const int count = (int)(sizeof codes / sizeof codes[0]);
  for (a = 0; a < count; ++a) {
    CHECK(strcmp(shmring_strerror(codes[a]), "unknown") != 0);
    for (b = a + 1; b < count; ++b) {
      CHECK(strcmp(shmring_strerror(codes[a]), shmring_strerror(codes[b])) !=
            0);
    }
  }
  CHECK(strcmp(shmring_strerror(999), "unknown") == 0);
}

int main(void) {
  test_open_errors();
  test_round_trip();
  test_cross_process_path();
  test_consumer_gone();
  test_names();
  return c_check_finish("c_api_test");
}
