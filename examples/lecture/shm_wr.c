/* The lecture's writer, on shmring's C API: reads lines from stdin and
 * writes one record per line until a line "end" (which it sends too).
 *
 *   shm_wr PATH        PATH: any existing file; the key is ftok(PATH, 'R')
 *
 * Where the lecture's writer polls a `written_by_you` flag and copies into
 * one 2 KiB buffer, this one blocks in shmring_write() while the ring is
 * full and never overwrites a line the reader has not taken. Either program
 * may start first: both attach the ring or create it.
 * Exit codes: 0 done, 1 ring error, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring/shmring_c.h"

/* One line without its newline, any length; NULL at end of input. */
static char* read_line(size_t* len) {
  size_t cap = BUFSIZ;
  size_t n = 0;
  char* line = malloc(cap);
  if (line == NULL) return NULL;
  while (fgets(line + n, (int)(cap - n), stdin) != NULL) {
    n += strlen(line + n);
    if (n > 0 && line[n - 1] == '\n') {
      line[--n] = '\0';
      *len = n;
      return line;
    }
    if (n + 1 == cap) { /* no newline yet: grow and read on */
      char* bigger = realloc(line, cap * 2);
      if (bigger == NULL) break;
      line = bigger;
      cap *= 2;
    }
  }
  if (n > 0 && !ferror(stdin)) { /* a last line without a newline */
    *len = n;
    return line;
  }
  free(line);
  return NULL;
}

int main(int argc, char** argv) {
  shmring_options options;
  shmring_ring* ring = NULL;
  shmring_producer* producer = NULL;
  int running = 1;
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH\n", argv[0]);
    return 2;
  }
  shmring_options_init(&options);
  options.open = SHMRING_ATTACH_OR_CREATE; /* the lecture's IPC_CREAT */
  options.kind = SHMRING_SPSC;
  rc = shmring_open_path(argv[1], 'R', &options, &ring);
  if (rc != SHMRING_OK) {
    fprintf(stderr, "shm_wr: %s\n", shmring_last_error());
    return 1;
  }
  rc = shmring_producer_attach(ring, 0, &producer);
  shmring_close(ring); /* the producer keeps the ring mapped */
  if (rc != SHMRING_OK) {
    fprintf(stderr, "shm_wr: %s\n", shmring_last_error());
    return 1;
  }

  while (running) {
    size_t len = 0;
    char* line = read_line(&len);
    if (line == NULL) { /* end of input without "end": say it for the user */
      line = malloc(4);
      if (line == NULL) break;
      memcpy(line, "end", 4);
      len = 3;
    }
    rc = shmring_write(producer, line, len, SHMRING_FOREVER);
    if (rc != SHMRING_OK) {
      fprintf(stderr, "shm_wr: %s\n", shmring_last_error());
      free(line);
      shmring_producer_close(producer);
      return 1;
    }
    if (len == 3 && memcmp(line, "end", 3) == 0) running = 0;
    free(line);
  }
  shmring_producer_close(producer); /* the lecture's shmdt */
  return 0;
}
