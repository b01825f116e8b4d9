/* The lecture's reader, on shmring's C API: prints "You wrote: <line>" for
 * every record, stops after "end", removes the ring (the lecture's
 * shmctl(IPC_RMID)) and exits 0.
 *
 *   shm_rd PATH        PATH: any existing file; the key is ftok(PATH, 'R')
 *
 * Where the lecture's reader spins on `written_by_you`, this one sleeps in
 * shmring_peek() until a record arrives, and reads it in place (zero copy).
 * Either program may start first. Ctrl-C removes the ring too.
 * Exit codes: 0 after "end", 1 ring error or the writer left without "end",
 * 2 usage, 130 interrupted. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ring/shmring_c.h"

static void on_signal(int sig) {
  (void)sig;
  shmring_interrupt(); /* async-signal-safe: blocking calls return */
}

int main(int argc, char** argv) {
  shmring_options options;
  shmring_ring* ring = NULL;
  shmring_consumer* consumer = NULL;
  int running = 1;
  int status = 0;

  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH\n", argv[0]);
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  shmring_options_init(&options);
  options.open = SHMRING_ATTACH_OR_CREATE;
  options.kind = SHMRING_SPSC;
  if (shmring_open_path(argv[1], 'R', &options, &ring) != SHMRING_OK ||
      shmring_consumer_attach(ring, &consumer) != SHMRING_OK) {
    fprintf(stderr, "shm_rd: %s\n", shmring_last_error());
    if (ring != NULL) shmring_close(ring);
    return 1;
  }

  while (running) {
    shmring_record record;
    const int rc = shmring_peek(consumer, SHMRING_FOREVER, &record);
    if (rc != SHMRING_OK) {
      if (rc == SHMRING_INTERRUPTED) {
        status = 130;
      } else {
        fprintf(stderr, "shm_rd: %s\n",
                rc == SHMRING_CLOSED ? "the writer left without \"end\""
                                     : shmring_last_error());
        status = 1;
      }
      break;
    }
    printf("You wrote: %.*s\n", (int)record.size, (const char*)record.data);
    fflush(stdout);
    if (record.size == 3 && memcmp(record.data, "end", 3) == 0) running = 0;
    shmring_release(consumer);
  }

  shmring_consumer_close(consumer);
  if (shmring_remove(ring) != SHMRING_OK) { /* the lecture's IPC_RMID */
    fprintf(stderr, "shm_rd: %s\n", shmring_last_error());
    status = status != 0 ? status : 1;
  }
  shmring_close(ring);
  return status;
}
