/* The MPSC claim / commit / abort / reclaim protocol and the consumer's
 * release-and-zero (docs/design/mpsc.md; the model: #model-checking),
 * for spin -a.
 *
 * P producers make K claims each (producers 1.. make K1 if it is
 * defined) on a ring of C words; a record is a
 * header word (span 1) or a header and one payload word (span 2); a claim
 * that would straddle the end writes a padding header first. A span-1
 * claim may be aligned (reserve(size, align) with align > 8: here its
 * header must sit at an odd word, as a real aligned payload's header sits
 * 8 bytes before a multiple of the alignment): it may need a padding
 * record (the gap) before its header, written after the busy header and
 * before the wrap padding. A span-2 claim may be committed trimmed
 * (commit(used) with a shorter span: its second word becomes a padding
 * record, stored before the commit header). Any producer
 * may die (kill -9) before any of its steps; the consumer may die once, at
 * any step of a release, and is replaced (at-least-once takeover). The
 * consumer may hold several records and release them together (peek,
 * peek, ..., release: one zeroing of [head, read)); it releases what it
 * holds before it sleeps, as peek_batch + release does, and padding at
 * once when it holds nothing.
 *
 * The consumer polls headers (RecordReader::try_peek_scan): it loads the
 * word at its read position r (taken as 0 when r - head == C: everything
 * peeked, nothing released, the ring full to the word, so the word at r
 * is its own oldest record's header) and loads tail only at a 0 word:
 * tail past r is a claim whose header is not written yet, tail == r the
 * end of what is claimed. It keeps the tail it last loaded (ct,
 * cached_tail_): a record must end within C - 1 words of it, reloading
 * it first (docs/design/ordering.md#bounding-records-by-a-tail-loaded-once-a-lap).
 *
 * Checked (assertions and end states):
 *  - invariant Z: a successful claim covers only 0 words;
 *  - nothing delivered torn (a span-2 record's payload is its own), and
 *    the records a consumer holds are still intact when it releases them;
 *  - nothing delivered twice, unless a consumer was replaced;
 *  - the library's corruption checks never fire on this correct ring: a
 *    header read is a header, its record ends within the ring, within C
 *    words of head and (after a reload) within C - 1 words of the tail,
 *    and the tail loaded at a 0 word is never below r;
 *  - every committed record is delivered;
 *  - no state blocks the ring forever (invalid end states), including a
 *    consumer asleep on the futex-style handshake while its condition
 *    holds (the sleeper can only be woken by a waker, or by the death of
 *    the owner it waits for: the real consumer's 50 ms slice).
 * Sequentially consistent: the weak-memory argument is in
 * docs/design/mpsc.md#proof-sketch and docs/design/ordering.md.
 */
#ifndef P
#define P 2
#endif
#ifndef K
#define K 2
#endif
#ifndef K1
#define K1 K   /* claims of producers 1.. (producer 0 makes K) */
#endif
#define C 4
#define NIDS (K + (P - 1) * K1 + 1)
#define NOINT 255

#define BUSY(p, s) (10 + (p) * 3 + (s))
#define ISBUSY(x) ((x) >= 10 && (x) < 50)
#define BOWNER(x) (((x) - 10) / 3)
#define BSPAN(x) (((x) - 10) % 3)
#define PADW(s) (50 + (s))
#define ISPAD(x) ((x) > 50 && (x) < 100)
#define PSPAN(x) ((x) - 50)
#define COMMITW(s, i) (100 + (s) * 10 + (i))
#define ISCOMMIT(x) ((x) >= 100 && (x) < 200)
#define CSPAN(x) (((x) - 100) / 10)
#define CID(x) (((x) - 100) % 10)
#define DATA(i) (200 + (i))
#define NCLAIMS (p == 0 -> K : K1)  /* a Producer's claims */
#define ID (p == 0 -> c + 1 : K + (p - 1) * K1 + c + 1)  /* its current one */

byte w[C];             /* the ring's words */
byte tail, head, release_to;
byte intent[P];
bool live[P];          /* role semaphore held */
byte committed[NIDS];
byte delivered[NIDS];
bool takeover;         /* a consumer was replaced */
byte seq;              /* data_ready futex word */
bool waiters;
byte gone;             /* producers closed or dead */
byte deaths;           /* producers dead: a sleeper's 50 ms slice notices */

/* invariant Z: the words of a claim [t, t + n) are 0 when its CAS wins */
#define Z(t, n, i) ((n) <= (i) || w[((t) + (i)) % C] == 0)
#define CLAIM_ZERO(t, n) assert(Z(t, n, 0) && Z(t, n, 1) && Z(t, n, 2) && Z(t, n, 3))

#if P == 2
#define LIVE_INTENT(r) ((live[0] && intent[0] == (r)) || (live[1] && intent[1] == (r)))
#else
#define LIVE_INTENT(r) ((live[0] && intent[0] == (r)) || (live[1] && intent[1] == (r)) || (live[2] && intent[2] == (r)))
#endif

inline wake() {
  if
  :: waiters -> waiters = 0; seq++
  :: else -> skip
  fi
}

/* Every step is one option of an if whose other option is dying (goto
 * dead): no stored state between the choice and the step. */
proctype Producer(byte p) {
  byte c, t, off, pad, gap, need, s, pos, h;
  bool a;
  do
  :: c < NCLAIMS ->
    /* span 1, span 1 aligned, or span 2: aligned claims keep gap + span
     * within half the ring, as the real size + align - 8 <=
     * max_record_size() rule does */
    if :: s = 1 :: atomic { s = 1; a = 1 } :: s = 2 fi;
retry:
    if :: t = tail :: goto dead fi;  /* step 0: space check */
    d_step {
      h = head;
      off = t % C;
      if :: a && off % 2 == 0 -> gap = 1 :: else -> gap = 0 fi;
      if
      :: off + gap + s > C -> pad = C - off; gap = a  /* from word 0 */
      :: else -> pad = 0
      fi;
      need = pad + gap + s
    };
    if
    :: t + need - h > C ->
      /* full: withdraw any intent of a lost CAS (a live producer waiting
       * for space must not name a position), then sleep until head moves
       * (the space_ready wait; abstracted) */
      intent[p] = NOINT;
      (head != h || tail != t);
      goto retry
    :: t + need - h <= C -> intent[p] = t  /* step 1 */
    :: t + need - h <= C -> goto dead
    fi;
    if                       /* step 2: the CAS */
    :: atomic {
         tail == t -> tail = t + need; CLAIM_ZERO(t, need);
         pos = (t + pad + gap) % C
       }
    :: atomic { tail != t -> skip }; goto retry
    :: goto dead
    fi;
    if :: w[pos] = BUSY(p, s) :: goto dead fi;  /* step 3 */
    if
    :: gap > 0 -> if :: w[(t + pad) % C] = PADW(gap) :: goto dead fi
    :: else -> skip
    fi;
    if
    :: pad > 0 -> if :: w[off] = PADW(pad) :: goto dead fi
    :: else -> skip
    fi;
    /* headers written: the intent is done */
    if :: intent[p] = NOINT :: goto dead fi;
    if                       /* the payload */
    :: s == 2 -> if :: w[pos + 1] = DATA(ID) :: goto dead fi
    :: else -> skip
    fi;
    if
    :: atomic { w[pos] = COMMITW(s, ID); committed[ID] = 1 }
    :: s == 2 ->             /* trimmed commit: the rest becomes padding */
      if :: w[pos + 1] = PADW(1) :: goto dead fi;
      if :: atomic { w[pos] = COMMITW(1, ID); committed[ID] = 1 } :: goto dead fi
    :: w[pos] = PADW(s)      /* abort */
    :: goto dead
    fi;
    wake();
    /* forget the claim's locals */
    d_step { c++; t = 0; off = 0; pad = 0; gap = 0; need = 0; s = 0; pos = 0; h = 0; a = 0 }
  :: else -> break
  od;
  atomic { live[p] = 0; gone++; c = 0 };
  wake();
  goto finish;
dead:
  /* forget the locals: a dead process is one state */
  atomic {
    live[p] = 0; gone++; deaths++;
    c = 0; t = 0; off = 0; pad = 0; gap = 0; need = 0; s = 0; pos = 0; h = 0; a = 0
  };
finish:
  skip
}

/* The consumer's release of [head, r), the records it holds (inside
 * Consumer: its locals). The holder reads them up to here, so they must be
 * intact; then release_to, the zeroing (the consumer may die before any
 * zero store, once), head. */
inline release() {
  d_step {
    z = head;
    do
    :: z != r ->
      e = w[z % C];
      if
      :: ISCOMMIT(e) -> q = CSPAN(e);
        assert(q == 1 || w[(z + 1) % C] == DATA(CID(e)))
      :: ISPAD(e) -> q = PSPAN(e)
      :: else -> assert(false)  /* a held record was overwritten */
      fi;
      assert(z + q <= r);
      z = z + q
    :: else -> break
    od;
    e = 0; q = 0
  };
  release_to = r;
  z = head;  /* zero the whole batch */
  do
  :: z != r ->
    if :: !crashed -> crashed = 1; takeover = 1; goto restart :: skip fi;
    w[z % C] = 0; z++
  :: else -> break
  od;
  /* invariant Z as head is published: the space it frees is 0 */
  atomic {
    z = head;
    do :: z != r -> assert(w[z % C] == 0); z++ :: else -> break od;
    head = r
  }
}

proctype Consumer() {
  byte r, x, e, q, s, sd, z, d;
  byte ct;               /* the tail as last loaded (cached_tail_) */
  bool crashed = 0;
restart:
  /* a predecessor died mid-release: finish its zeroing */
  if
  :: release_to != head ->
    z = head;
    do
    :: z != release_to -> w[z % C] = 0; z++
    :: else -> break
    od;
    head = release_to
  :: else -> skip
  fi;
  d_step { r = head; ct = head };
loop:
  /* the header at r; everything peeked and nothing released (the ring
   * full to the byte): the word at r is our own oldest record's, so 0 */
  atomic {
    if :: r - head == C -> x = 0 :: else -> x = w[r % C] fi;
    /* a header: the library's bounds (each failure would be "corrupt" on
     * this correct ring): a record ends within the ring and within C
     * words of head */
    if
    :: x == 0 -> skip
    :: ISBUSY(x) -> sd = BSPAN(x)
    :: ISPAD(x) -> sd = PSPAN(x)
    :: ISCOMMIT(x) -> sd = CSPAN(x)
    :: else -> assert(false)  /* a payload word taken for a header */
    fi;
    assert(x == 0 || (sd > 0 && r % C + sd <= C && r + sd - head <= C))
  };
  if
  :: x == 0 ->
    /* nothing committed at r: only now the tail (a tail below r would
     * be corrupt) */
    d_step { ct = tail; assert(ct >= r) };
    if
    :: ct == r ->
      /* nothing claimed at r */
      if
      :: r != head -> release(); goto loop  /* the batch ends: release it */
      :: else -> skip
      fi;
      if
      :: gone == P ->
        /* every producer left (end_status): the word, then the tail, once
         * more; nothing else runs now, so one step */
        if
        :: w[r % C] == 0 && tail == r -> goto drained
        :: else -> goto loop
        fi
      :: else ->
        /* sleep on data_ready: announce, re-check, sleep */
        d_step { s = seq; d = deaths };
        waiters = 1;
        if
        :: d_step { w[r % C] != 0 || tail != r || gone == P -> waiters = 0; s = 0; d = 0 }
        :: d_step { seq != s || deaths != d -> waiters = 0; s = 0; d = 0 }
        fi;
        goto loop
      fi
    :: else -> skip
    fi;
    /* a claim below tail whose header is not written yet */
    if
    :: LIVE_INTENT(r) ->
      if
      :: r != head -> release(); goto loop  /* never sleep holding records */
      :: else -> skip
      fi;
      s = seq;
      waiters = 1;
      if
      :: d_step { w[r % C] != 0 -> waiters = 0; s = 0 }
      :: d_step { seq != s || !LIVE_INTENT(r) -> waiters = 0; s = 0 }
      fi;
      goto loop
    :: else -> skip
    fi;
    /* no live registration names r: the claimer died before its header;
     * the run ends at the ring's end or the tail as loaded at latest */
    e = r + (C - r % C);
    if :: ct < e -> e = ct :: else -> skip fi;
    atomic {
      q = 0;
      do
      :: q < P ->
        if :: intent[q] != NOINT && intent[q] > r && intent[q] < e -> e = intent[q]
           :: else -> skip fi;
        q++
      :: else -> break
      od
    };
    q = r + 1;
    do
    :: q < e && w[q % C] != 0 -> e = q
    :: q < e && w[q % C] == 0 -> q++
    :: else -> break
    od;
    atomic {
      if :: w[r % C] == 0 -> w[r % C] = PADW(e - r) :: else -> skip fi;
      e = 0; q = 0
    };
    goto loop
  :: else -> skip
  fi;
  /* and within C - 1 words of the tail as last loaded, reloading it
   * first (tail_bound_holds): after the reload it always is */
  if
  :: r + sd - ct > C - 1 -> d_step { ct = tail; assert(r + sd - ct <= C - 1) }
  :: else -> skip
  fi;
  if
  :: atomic { ISBUSY(x) -> sd = 0 };
    if
    :: live[BOWNER(x)] ->
      if
      :: r != head -> x = 0; release(); goto loop  /* never sleep holding records */
      :: else -> skip
      fi;
      s = seq;
      waiters = 1;
      if
      :: d_step { w[r % C] != x -> waiters = 0; s = 0; x = 0 }
      :: d_step { seq != s || !live[BOWNER(x)] -> waiters = 0; s = 0; x = 0 }
      fi
    :: else ->
      d_step { if :: w[r % C] == x -> w[r % C] = PADW(BSPAN(x)) :: else -> skip fi; x = 0 }
    fi;
    goto loop
  :: d_step {
       ISPAD(x) ->
       assert(r + sd <= tail);
       e = (r == head);  /* nothing held: give it back at once */
       r = r + sd; x = 0; sd = 0
     }
  :: d_step {
       ISCOMMIT(x) ->
       assert(r + sd <= tail);
       if :: sd == 2 -> assert(w[(r + 1) % C] == DATA(CID(x))) :: else -> skip fi;
       assert(delivered[CID(x)] == 0 || takeover);
       delivered[CID(x)]++;
       e = 2;
       r = r + sd; x = 0; sd = 0
     }
  fi;
  if
  :: e != 1 -> e = 0      /* hold it and peek on: a batch */
  :: e != 0 -> release()  /* padding with nothing held, or a record */
  fi;
  goto loop;
drained:
  /* every committed record came */
  atomic {
    q = 1;
    do
    :: q < NIDS -> assert(committed[q] == 0 || delivered[q] > 0); q++
    :: else -> break
    od
  }
}

init {
  byte i;
  atomic {
    /* start anywhere near the end of the ring: claims wrap, with padding */
    if :: tail = 2 :: tail = 3 fi;
    head = tail;
    release_to = tail;
    i = 0;
    do
    :: i < P -> intent[i] = NOINT; live[i] = 1; run Producer(i); i++
    :: else -> break
    od;
    run Consumer()
  }
}
