/* Slots rings through the C API: fixed-size elements pushed and popped by
 * copy, full and empty, the reader's fd, end of stream, a writer in
 * another process, and the kind and size checks. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/c/c_check.h"

typedef struct tick {
  int32_t seq;
  int32_t price;
  int32_t volume;
} tick;

static tick tick_of(int32_t i) {
  tick t;
  t.seq = i;
  t.price = 1000 + i;
  t.volume = -i;
  return t;
}

static int same(const tick* a, const tick* b) {
  return a->seq == b->seq && a->price == b->price && a->volume == b->volume;
}

static void test_round_trip(void) {
  const key_t key = test_key(1);
  shmring_options o;
  shmring_ring* ring;
  shmring_queue_writer* w = NULL;
  shmring_queue_reader* r = NULL;
  tick t, got;
  int fd = -1, n = 0, i, status = 0;
  int attached[2];
  char byte;
  pid_t child;

  shmring_options_init(&o);
  o.kind = SHMRING_SLOTS;
  o.capacity = 4096;
  o.element_size = sizeof(tick);
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  CHECK(shmring_ring_kind(ring) == SHMRING_SLOTS);
  CHECK(shmring_element_size(ring) == sizeof(tick));

  CHECK_RC(SHMRING_OK, shmring_queue_reader_attach(ring, &r));
  CHECK_RC(SHMRING_OK, shmring_queue_reader_fd(r, &fd));
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_queue_try_pop(r, &got));
  CHECK(!readable(fd, 0));
  CHECK_RC(SHMRING_TIMED_OUT, shmring_queue_pop(r, &got, 1000000));

  /* In this process: fill it, then empty it. */
  CHECK_RC(SHMRING_OK, shmring_queue_writer_attach(ring, 0, &w));
  for (;;) {
    t = tick_of(n);
    if (shmring_queue_try_push(w, &t) != SHMRING_OK) break;
    ++n;
  }
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_queue_try_push(w, &t));
  CHECK_RC(SHMRING_TIMED_OUT, shmring_queue_push(w, &t, 1000000));
  CHECK(n > 0 && (size_t)n * sizeof(tick) <= 4096);
  CHECK(readable(fd, LONG_MS));
  for (i = 0; i < n; ++i) {
    t = tick_of(i);
    CHECK_RC(SHMRING_OK, shmring_queue_try_pop(r, &got));
    CHECK(same(&got, &t));
  }
  CHECK_RC(SHMRING_WOULD_BLOCK, shmring_queue_try_pop(r, &got));
  CHECK(!readable(fd, 0));
  shmring_queue_writer_close(w);
  CHECK(readable(fd, LONG_MS));
  CHECK_RC(SHMRING_CLOSED, shmring_queue_try_pop(r, &got));

  /* A writer in another process, more elements than the ring holds. A
   * queue reader has no stream rules: until the writer has attached it
   * would see the last writer's end, so the child says when it has. */
  CHECK(pipe(attached) == 0);
  child = fork();
  if (child == 0) {
    shmring_queue_writer* cw = NULL;
    int ok = shmring_queue_writer_attach(ring, 0, &cw) == SHMRING_OK;
    ok = write(attached[1], "a", 1) == 1 && ok;
    for (i = 0; ok && i < 10000; ++i) {
      t = tick_of(i);
      ok = shmring_queue_push(cw, &t, LONG_NS) == SHMRING_OK;
    }
    if (cw != NULL) shmring_queue_writer_close(cw);
    _exit(ok ? 0 : 1);
  }
  CHECK(child > 0);
  close(attached[1]);
  CHECK(read(attached[0], &byte, 1) == 1);
  close(attached[0]);
  for (i = 0; i < 10000; ++i) {
    const int rc = shmring_queue_pop(r, &got, LONG_NS);
    t = tick_of(i);
    CHECK_RC(SHMRING_OK, rc);
    if (rc != SHMRING_OK) break;
    CHECK(same(&got, &t));
  }
  CHECK_RC(SHMRING_CLOSED, shmring_queue_pop(r, &got, LONG_NS));
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  shmring_queue_reader_close(r);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

static void test_kinds_and_sizes(void) {
  const key_t key = test_key(2);
  const key_t spsc_key = test_key(3);
  shmring_options o;
  shmring_ring* ring;
  shmring_ring* spsc;
  shmring_ring* again = (shmring_ring*)1;
  shmring_queue_writer* w = (shmring_queue_writer*)1;
  shmring_queue_reader* r = (shmring_queue_reader*)1;
  shmring_producer* p = (shmring_producer*)1;
  shmring_consumer* c = (shmring_consumer*)1;

  shmring_options_init(&o);
  o.kind = SHMRING_SLOTS;
  o.capacity = 4096;
  o.open = SHMRING_CREATE;
  ring = (shmring_ring*)1;
  CHECK_RC(SHMRING_E_INVALID, shmring_open(key, &o, &ring)); /* no size */
  CHECK(ring == NULL);
  o.element_size = 24;
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  o.open = SHMRING_ATTACH;
  o.element_size = 12;
  CHECK_RC(SHMRING_E_WRONG_KIND, shmring_open(key, &o, &again));
  CHECK(again == NULL);
  o.element_size = 0; /* any */
  CHECK_RC(SHMRING_OK, shmring_open(key, &o, &again));
  CHECK(shmring_element_size(again) == 24);
  shmring_close(again);

  CHECK_RC(SHMRING_E_WRONG_KIND, shmring_producer_attach(ring, 0, &p));
  CHECK(p == NULL);
  CHECK_RC(SHMRING_E_WRONG_KIND, shmring_consumer_attach(ring, &c));
  CHECK(c == NULL);
  CHECK_RC(SHMRING_E_INVALID, shmring_queue_writer_attach(ring, 8, &w));

  shmring_options_init(&o);
  o.capacity = 4096;
  spsc = create_ring(spsc_key, &o);
  if (spsc != NULL) {
    CHECK(shmring_element_size(spsc) == 0);
    CHECK_RC(SHMRING_E_WRONG_KIND, shmring_queue_writer_attach(spsc, 0, &w));
    CHECK(w == NULL);
    CHECK_RC(SHMRING_E_WRONG_KIND, shmring_queue_reader_attach(spsc, &r));
    CHECK(r == NULL);
    CHECK_RC(SHMRING_OK, shmring_remove(spsc));
    shmring_close(spsc);
  }
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
  CHECK(gone(spsc_key));
}

int main(void) {
  test_round_trip();
  test_kinds_and_sizes();
  return c_check_finish("c_slots_test");
}
