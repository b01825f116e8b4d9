/* The C API in one program: create a ring, write a record by copy and one
 * in place, wait for them with poll() on the consumer's fd, read them
 * zero-copy, see end of stream, remove the ring. Error handling is the
 * same everywhere: a code, and shmring_last_error() for the message. */
#define _POSIX_C_SOURCE 200809L /* poll(), getpid() under -std=c11 */

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ring/shmring_c.h"

static int check(int rc, const char* what) {
  if (rc != SHMRING_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, shmring_last_error(),
            shmring_strerror(rc));
  }
  return rc;
}

int main(void) {
  const shmring_key_t key = (shmring_key_t)(0x5eed0000 | (getpid() & 0xffff));
  shmring_options options;
  shmring_ring* ring = NULL;
  shmring_producer* producer = NULL;
  shmring_consumer* consumer = NULL;
  shmring_record record;
  struct pollfd ready;
  void* room = NULL;
  int rc;

  /* Attaching a ring that does not exist: a code and a message. */
  rc = shmring_open(key, NULL, &ring);
  printf("attach before create: %s\n", shmring_strerror(rc));

  shmring_options_init(&options);
  options.open = SHMRING_CREATE;
  options.capacity = 1 << 16;
  if (check(shmring_open(key, &options, &ring), "open")) return 1;
  if (check(shmring_producer_attach(ring, 0, &producer), "producer") ||
      check(shmring_consumer_attach(ring, &consumer), "consumer")) {
    return 1;
  }
  ready.events = POLLIN;
  if (check(shmring_consumer_fd(consumer, &ready.fd), "fd")) return 1;
  shmring_peek(consumer, 0, &record); /* would_block: the fd is now clear */

  check(shmring_write(producer, "copied", 6, SHMRING_FOREVER), "write");
  if (check(shmring_reserve(producer, 64, SHMRING_FOREVER, &room), "reserve")) {
    return 1;
  }
  memcpy(room, "in place", 8);
  shmring_commit(producer, 8, 0); /* 64 reserved, 8 used */
  shmring_producer_close(producer); /* end of stream after these two */

  while (poll(&ready, 1, 10000) == 1) {
    rc = shmring_peek(consumer, 0, &record);
    if (rc == SHMRING_WOULD_BLOCK) continue;
    if (rc == SHMRING_CLOSED) {
      printf("end of stream\n");
      break;
    }
    if (check(rc, "peek")) return 1;
    printf("record: %.*s\n", (int)record.size, (const char*)record.data);
    shmring_release(consumer);
  }
  shmring_consumer_close(consumer);
  check(shmring_remove(ring), "remove");
  shmring_close(ring);
  return 0;
}
