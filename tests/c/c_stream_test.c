/* The stream rules through the C API (spsc and mpsc rings): a consumer
 * attached between streams waits for the next producer -- peek answers
 * WOULD_BLOCK / TIMED_OUT and its fd stays unreadable -- where SHMRING_RAW
 * reports the old end of stream at once. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/c/c_check.h"

/* A child that writes "line 0" .. "line <n-1>" and closes; exit 0 if all
 * were written. */
static pid_t spawn_writer(shmring_ring* ring, int n) {
  const pid_t pid = fork();
  if (pid == 0) {
    shmring_producer* p = NULL;
    char line[32];
    int i;
    int ok = shmring_producer_attach(ring, 0, &p) == SHMRING_OK;
    for (i = 0; ok && i < n; ++i) {
      const int len = snprintf(line, sizeof line, "line %d", i);
      ok = shmring_write(p, line, (size_t)len, LONG_NS) == SHMRING_OK;
    }
    if (p != NULL) shmring_producer_close(p);
    _exit(ok ? 0 : 1);
  }
  CHECK(pid > 0);
  return pid;
}

static void test_fresh_consumer_waits(int kind, int n) {
  const key_t key = test_key(kind);
  shmring_options o;
  shmring_ring* ring;
  shmring_consumer* c = NULL;
  shmring_record rec;
  char buf[64];
  size_t size = 0;
  int fd = -1, got = 0, status = 0, rc;
  pid_t child;

  shmring_options_init(&o);
  o.kind = kind;
  o.capacity = 4096;
  ring = create_ring(key, &o);
  if (ring == NULL) return;

  /* One stream, read to its end by a first consumer. */
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  child = spawn_writer(ring, 3);
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  while (shmring_read(c, buf, sizeof buf, &size, LONG_NS) == SHMRING_OK) {
    ++got;
  }
  CHECK(got == 3);
  CHECK_RC(SHMRING_CLOSED, shmring_peek(c, 0, &rec));
  shmring_consumer_close(c);

  /* Raw: the library's own answer, the old end at once. */
  CHECK_RC(SHMRING_OK, shmring_consumer_attach_flags(ring, SHMRING_RAW, &c));
  CHECK_RC(SHMRING_CLOSED, shmring_peek(c, 0, &rec));
  shmring_consumer_close(c);

  /* The stream rules: wait for the next producer. */
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  CHECK_RC(SHMRING_OK, shmring_consumer_fd(c, &fd));
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_peek(c, 0, &rec));
  CHECK(!readable(fd, 0));
  CHECK_RC(SHMRING_TIMED_OUT, shmring_peek(c, 1000000, &rec));
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_read(c, buf, sizeof buf, &size, 0));
  CHECK(!readable(fd, 0));

  /* A producer in another process: the fd wakes, every record, the end. */
  child = spawn_writer(ring, n);
  got = 0;
  for (;;) {
    if (!readable(fd, LONG_MS)) {
      CHECK(!"the fd never became readable");
      break;
    }
    while ((rc = shmring_read(c, buf, sizeof buf, &size, 0)) == SHMRING_OK) {
      char want[32];
      const int len = snprintf(want, sizeof want, "line %d", got);
      CHECK(size == (size_t)len && memcmp(buf, want, size) == 0);
      ++got;
    }
    if (rc != SHMRING_WOULD_BLOCK) break;
  }
  CHECK_RC(SHMRING_CLOSED, rc);
  CHECK(got == n);
  CHECK(readable(fd, 0)); /* the end stays readable */
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  shmring_consumer_close(c);

  CHECK_RC(SHMRING_E_INVALID, shmring_consumer_attach_flags(ring, 4, &c));
  CHECK(c == NULL);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

/* The stream rules end a stream a consumer saw start as the library does. */
static void test_stream_it_saw_start(void) {
  const key_t key = test_key(10);
  shmring_options o;
  shmring_ring* ring;
  shmring_consumer* c = NULL;
  shmring_producer* p = NULL;
  shmring_record rec;

  shmring_options_init(&o);
  o.capacity = 4096;
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_peek(c, 0, &rec));
  shmring_producer_close(p);
  CHECK_RC(SHMRING_CLOSED, shmring_peek(c, LONG_NS, &rec));
  shmring_consumer_close(c);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

/* A ring removed (shm-ring rm, systemd RemoveIPC) while its reader waits
 * for a producer: none can attach a removed ring, so the reader says
 * SHMRING_REMOVED instead of waiting for ever, and its fd wakes for it.
 * `between_streams`: a stream was read to its end first, else no producer
 * ever came. */
static void test_removed_while_waiting(int kind, int between_streams) {
  const key_t key = test_key(20 + kind * 2 + between_streams);
  shmring_options o;
  shmring_ring* ring;
  shmring_consumer* c = NULL;
  shmring_record rec;
  int fd = -1;

  shmring_options_init(&o);
  o.kind = kind;
  o.capacity = 4096;
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  if (between_streams) {
    shmring_producer* p = NULL;
    CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
    CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));
    CHECK_RC(SHMRING_OK, shmring_write(p, "x", 1, LONG_NS));
    shmring_producer_close(p);
    CHECK_RC(SHMRING_OK, shmring_peek(c, LONG_NS, &rec));
    shmring_release(c);
    CHECK_RC(SHMRING_CLOSED, shmring_peek(c, LONG_NS, &rec));
    shmring_consumer_close(c);
  }
  CHECK_RC(SHMRING_OK, shmring_consumer_attach(ring, &c));
  CHECK_RC(SHMRING_OK, shmring_consumer_fd(c, &fd));
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_peek(c, 0, &rec));
  CHECK(!readable(fd, 0));
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  CHECK(readable(fd, LONG_MS));
  CHECK_RC(SHMRING_REMOVED, shmring_peek(c, 0, &rec));
  CHECK(readable(fd, 0)); /* and it stays readable */
  CHECK_RC(SHMRING_REMOVED, shmring_peek(c, LONG_NS, &rec));
  shmring_consumer_close(c);
  shmring_close(ring);
  CHECK(gone(key));
}

int main(void) {
  test_fresh_consumer_waits(SHMRING_SPSC, 1000);
  test_fresh_consumer_waits(SHMRING_MPSC, 1000);
  test_stream_it_saw_start();
  test_removed_while_waiting(SHMRING_SPSC, 0);
  test_removed_while_waiting(SHMRING_SPSC, 1);
  test_removed_while_waiting(SHMRING_MPSC, 1);
  return c_check_finish("c_stream_test");
}
