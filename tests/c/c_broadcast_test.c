/* Broadcast rings through the C API: two subscribers see every record; on
 * a drop-slow ring a lapped subscriber gets SHMRING_OVERRUN, then its lost
 * counters, then the oldest intact record. The lapping is deterministic:
 * the producer writes more than the capacity while the subscriber holds
 * still, in the same thread. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "tests/c/c_check.h"

/* Records of kRecord bytes, the first 4 holding their sequence number. */
enum { kRecord = 100 };

static void write_seq(shmring_producer* p, int from, int to) {
  char rec[kRecord];
  int i;
  memset(rec, 'x', sizeof rec);
  for (i = from; i < to; ++i) {
    memcpy(rec, &i, sizeof i);
    CHECK_RC(SHMRING_OK, shmring_write(p, rec, sizeof rec, LONG_NS));
  }
}

static int seq_of(const void* data) {
  int i;
  memcpy(&i, data, sizeof i);
  return i;
}

static void test_two_subscribers(void) {
  const key_t key = test_key(1);
  shmring_options o;
  shmring_ring* ring;
  shmring_ring* attached = NULL;
  shmring_subscriber* s[2] = {NULL, NULL};
  shmring_producer* p = NULL;
  shmring_consumer* c = (shmring_consumer*)1;
  shmring_record rec;
  int i, k;

  shmring_options_init(&o);
  o.kind = SHMRING_BROADCAST;
  o.capacity = 1 << 14;
  o.max_consumers = 2;
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  CHECK(shmring_ring_kind(ring) == SHMRING_BROADCAST);
  /* Attach by key, any kind. */
  CHECK_RC(SHMRING_OK, shmring_open(key, NULL, &attached));
  CHECK(shmring_ring_kind(attached) == SHMRING_BROADCAST);

  CHECK_RC(SHMRING_OK, shmring_subscriber_attach(ring, 0, &s[0]));
  CHECK_RC(SHMRING_OK, shmring_subscriber_attach(attached, SHMRING_RAW, &s[1]));
  {
    shmring_subscriber* third = (shmring_subscriber*)1;
    CHECK_RC(SHMRING_E_ROLE_TAKEN, shmring_subscriber_attach(ring, 0, &third));
    CHECK(third == NULL);
  }
  CHECK_RC(SHMRING_E_WRONG_KIND, shmring_consumer_attach(ring, &c));
  CHECK(c == NULL);

  CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));
  write_seq(p, 0, 10);
  shmring_producer_close(p);

  for (k = 0; k < 2; ++k) {
    for (i = 0; i < 10; ++i) {
      CHECK_RC(SHMRING_OK, shmring_subscriber_peek(s[k], LONG_NS, &rec));
      CHECK(rec.size == kRecord && seq_of(rec.data) == i);
      CHECK(shmring_subscriber_intact(s[k]) == 1);
      shmring_subscriber_release(s[k]);
    }
    CHECK_RC(SHMRING_CLOSED, shmring_subscriber_peek(s[k], LONG_NS, &rec));
    CHECK(shmring_subscriber_lost_records(s[k]) == 0);
    CHECK(shmring_subscriber_lost_bytes(s[k]) == 0);
    shmring_subscriber_close(s[k]);
  }
  shmring_close(attached);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

static void test_drop_slow_loss(void) {
  const key_t key = test_key(2);
  shmring_options o;
  shmring_ring* ring;
  shmring_subscriber* s = NULL;
  shmring_producer* p = NULL;
  shmring_record rec;
  char buf[kRecord];
  size_t size = 0;
  int next, delivered = 0;
  uint64_t lost;

  shmring_options_init(&o);
  o.kind = SHMRING_BROADCAST;
  o.overrun = SHMRING_OVERRUN_DROP_SLOW;
  o.capacity = 4096;
  ring = create_ring(key, &o);
  if (ring == NULL) return;
  CHECK_RC(SHMRING_OK, shmring_subscriber_attach(ring, 0, &s));
  CHECK_RC(SHMRING_OK, shmring_producer_attach(ring, 0, &p));

  /* 100 records of ~108 bytes into 4096: the producer laps the subscriber,
   * which holds still; drop-slow never waits for it. */
  write_seq(p, 0, 100);
  CHECK_RC(SHMRING_OVERRUN, shmring_subscriber_peek(s, 0, &rec));
  lost = shmring_subscriber_lost_records(s);
  CHECK(lost > 0 && lost < 100);
  CHECK(shmring_subscriber_lost_bytes(s) >= lost * kRecord);
  /* Then the oldest intact record, and every one after it. */
  next = (int)lost;
  while (shmring_subscriber_read(s, buf, sizeof buf, &size, 0) == SHMRING_OK) {
    CHECK(size == kRecord && seq_of(buf) == next);
    ++next;
    ++delivered;
  }
  CHECK(next == 100);
  CHECK((uint64_t)delivered + lost == 100);

  /* A record overwritten while it is read: intact says so, the next peek
   * reports the overrun, and the loss counts it. */
  write_seq(p, 100, 101);
  CHECK_RC(SHMRING_OK, shmring_subscriber_peek(s, LONG_NS, &rec));
  CHECK(seq_of(rec.data) == 100);
  write_seq(p, 101, 200); /* laps it again */
  CHECK(shmring_subscriber_intact(s) == 0);
  shmring_subscriber_release(s);
  CHECK_RC(SHMRING_OVERRUN, shmring_subscriber_peek(s, 0, &rec));
  CHECK(shmring_subscriber_lost_records(s) > lost);
  lost = shmring_subscriber_lost_records(s) - lost; /* of 100 .. 199 */
  next = 100 + (int)lost;
  delivered = 0;
  shmring_producer_close(p);
  while (shmring_subscriber_read(s, buf, sizeof buf, &size, 0) == SHMRING_OK) {
    CHECK(size == kRecord && seq_of(buf) == next);
    ++next;
    ++delivered;
  }
  CHECK(next == 200);
  CHECK((uint64_t)delivered + lost == 100);
  CHECK_RC(SHMRING_CLOSED, shmring_subscriber_peek(s, 0, &rec));
  shmring_subscriber_close(s);
  CHECK_RC(SHMRING_OK, shmring_remove(ring));
  shmring_close(ring);
  CHECK(gone(key));
}

int main(void) {
  test_two_subscribers();
  test_drop_slow_loss();
  return c_check_finish("c_broadcast_test");
}
