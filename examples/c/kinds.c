/* The C API's other kinds: a broadcast ring whose every record both of
 * its subscribers read, and a slots ring of fixed-size elements (a struct,
 * copied in and out). Both rings are removed at the end. */
#define _POSIX_C_SOURCE 200809L /* getpid() under -std=c11 */

#include <stdio.h>
#include <unistd.h>

#include "ring/shmring_c.h"

static int check(int rc, const char* what) {
  if (rc != SHMRING_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, shmring_last_error(),
            shmring_strerror(rc));
  }
  return rc;
}

struct point {
  double x, y;
};

static int broadcast(shmring_key_t key) {
  shmring_options options;
  shmring_ring* ring = NULL;
  shmring_subscriber* subscribers[2] = {NULL, NULL};
  shmring_producer* producer = NULL;
  char buf[64];
  size_t size = 0;
  int i, rc;

  shmring_options_init(&options);
  options.open = SHMRING_CREATE;
  options.kind = SHMRING_BROADCAST;
  options.capacity = 1 << 16;
  options.overrun = SHMRING_OVERRUN_WAIT; /* or _DROP_SLOW */
  if (check(shmring_open(key, &options, &ring), "open")) return 1;
  /* A subscriber sees what is written after it attached. */
  for (i = 0; i < 2; ++i) {
    if (check(shmring_subscriber_attach(ring, 0, &subscribers[i]), "sub")) {
      return 1;
    }
  }
  if (check(shmring_producer_attach(ring, 0, &producer), "producer")) return 1;
  check(shmring_write(producer, "tick 1", 6, SHMRING_FOREVER), "write");
  check(shmring_write(producer, "tick 2", 6, SHMRING_FOREVER), "write");
  shmring_producer_close(producer);

  for (i = 0; i < 2; ++i) {
    while ((rc = shmring_subscriber_read(subscribers[i], buf, sizeof buf,
                                         &size, 0)) == SHMRING_OK) {
      printf("subscriber %d: %.*s\n", i, (int)size, buf);
    }
    /* On a drop-slow ring: SHMRING_OVERRUN, then read on. */
    printf("subscriber %d: %s, lost %llu\n", i, shmring_strerror(rc),
           (unsigned long long)shmring_subscriber_lost_records(
               subscribers[i]));
    shmring_subscriber_close(subscribers[i]);
  }
  check(shmring_remove(ring), "remove");
  shmring_close(ring);
  return 0;
}

static int slots(shmring_key_t key) {
  shmring_options options;
  shmring_ring* ring = NULL;
  shmring_queue_writer* writer = NULL;
  shmring_queue_reader* reader = NULL;
  struct point p;
  int i, rc;

  shmring_options_init(&options);
  options.open = SHMRING_CREATE;
  options.kind = SHMRING_SLOTS;
  options.capacity = 1 << 16;
  options.element_size = sizeof(struct point);
  if (check(shmring_open(key, &options, &ring), "open")) return 1;
  if (check(shmring_queue_writer_attach(ring, 0, &writer), "writer") ||
      check(shmring_queue_reader_attach(ring, &reader), "reader")) {
    return 1;
  }
  for (i = 1; i <= 3; ++i) {
    p.x = i;
    p.y = i * 0.5;
    check(shmring_queue_push(writer, &p, SHMRING_FOREVER), "push");
  }
  shmring_queue_writer_close(writer);
  while ((rc = shmring_queue_pop(reader, &p, SHMRING_FOREVER)) ==
         SHMRING_OK) {
    printf("point %.1f %.1f\n", p.x, p.y);
  }
  printf("queue: %s\n", shmring_strerror(rc));
  shmring_queue_reader_close(reader);
  check(shmring_remove(ring), "remove");
  shmring_close(ring);
  return 0;
}

int main(void) {
  const shmring_key_t key = (shmring_key_t)(0x5eee0000 | (getpid() & 0xffff));
  if (broadcast(key) != 0) return 1;
  return slots(key + 0x10000);
}
