#!/usr/bin/env bash
# A ring removed under running tools, as `shm-ring rm`, `ipcrm` or
# systemd-logind's RemoveIPC=yes (which removes the user's segments and
# semaphore sets when the last session ends) do it. A removed segment stays
# mapped until its last detach, so a stream between attached ends finishes;
# a tool that needs a peer that can no longer come (no process attaches a
# removed ring) says "ring removed while in use" and exits:
#   shm-consume waiting for a producer: 3 (docs/tools.md, "ring removed");
#   shm-produce whose consumer is gone: 6 (peer died), also at the end of
#     its input when unread records would go with the ring.
# Every step is held by the test: the producers read fifos it writes, the
# consumers wait for producers that only the test starts.
#   removed_ring_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
K2=$(printf '0x%08x' $((KEY + 1)))
K3=$(printf '0x%08x' $((KEY + 2)))
K4=$(printf '0x%08x' $((KEY + 3)))
KEYS+=("$K2" "$K3" "$K4")
MESSAGE='ring removed while in use: by `shm-ring rm`, IPC_RMID, or systemd RemoveIPC'

# What RemoveIPC does: the segment and the semaphore set, by id.
remove_ipc() {
  local shmid semid
  shmid=$(ipcs -m | awk -v k="$1" '$1 == k { print $2 }')
  semid=$(ipcs -s | awk -v k="$1" '$1 == k { print $2 }')
  [ -n "$shmid" ] && [ -n "$semid" ] || fail "ring $1 has no segment or semaphore set"
  ipcrm -m "$shmid" -s "$semid"
}

# ---- 1. shm-consume waiting for its first producer; `shm-ring rm`.
"$CONSUME" --key "$KEY" --create > "$TMP/c1.out" 2> "$TMP/c1.err" &
c=$!
wait_attached "$KEY" 1
expect_exit 0 "" "$SHMRING" rm --key "$KEY"
expect_job_within 30 3 "$c" "shm-consume waiting for a producer, ring removed by shm-ring rm"
expect_grep "$MESSAGE" "$TMP/c1.err"
expect_grep "ring $KEY" "$TMP/c1.err"

# ---- 2. shm-consume --follow between streams; RemoveIPC.
"$CONSUME" --key "$K2" --create --follow > "$TMP/c2.out" 2> "$TMP/c2.err" &
c=$!
wait_attached "$K2" 1
echo "one stream" | "$PRODUCE" --key "$K2" --framing lines || fail "first stream"
wait_for_size "$TMP/c2.out" 11  # "one stream\n": read; now it waits for the next
remove_ipc "$K2"
expect_job_within 30 3 "$c" "shm-consume --follow between streams, ring removed like RemoveIPC"
expect_grep "$MESSAGE" "$TMP/c2.err"
[ "$(cat "$TMP/c2.out")" = "one stream" ] || fail "the first stream: '$(cat "$TMP/c2.out")'"

# ---- 3. shm-produce -w on a full ring whose consumer is gone; RemoveIPC.
seq 1 2000 | sed 's/^/line /' > "$TMP/lines"
"$SHMRING" create --key "$K3" --capacity 4K > /dev/null
"$CONSUME" --key "$K3" --count 1 > "$TMP/c3.out" &
c=$!
wait_attached "$K3" 1
source_open p3
"$PRODUCE" --key "$K3" --framing lines --wait-consumer < "$TMP/p3" 2> "$TMP/p3.err" &
p=$!
source_attach p3
source_feed "$TMP/lines" 0 7  # "line 1\n", for the consumer
expect_job_within 30 0 "$c" "consumer --count 1"
[ "$(cat "$TMP/c3.out")" = "line 1" ] || fail "consumer got '$(cat "$TMP/c3.out")'"
# The producer waits for input (the fifo) with the consumer gone.
remove_ipc "$K3"
source_feed "$TMP/lines" 7 "$(stat -c %s "$TMP/lines")"  # fills the ring
source_close
expect_job_within 30 6 "$p" "shm-produce -w, consumer gone, ring removed like RemoveIPC"
expect_grep "$MESSAGE" "$TMP/p3.err"
expect_grep "unread records (of [0-9]* committed) go with it" "$TMP/p3.err"

# ---- 4. shm-produce at the end of its input, records unread, ring removed
# with `shm-ring rm`: they would vanish with the ring.
"$SHMRING" create --key "$K4" --capacity 64K > /dev/null
"$CONSUME" --key "$K4" --count 1 > "$TMP/c4.out" &
c=$!
wait_attached "$K4" 1
source_open p4
"$PRODUCE" --key "$K4" --framing lines < "$TMP/p4" 2> "$TMP/p4.err" &
p=$!
source_attach p4
source_feed "$TMP/lines" 0 7
expect_job_within 30 0 "$c" "consumer --count 1"
expect_exit 0 "" "$SHMRING" rm --key "$K4"
source_feed "$TMP/lines" 7 71  # nine more lines, room for them
source_close
expect_job_within 30 6 "$p" "shm-produce at end of input, ring removed"
expect_grep "$MESSAGE" "$TMP/p4.err"
expect_grep "9 unread records (of 10 committed) go with it" "$TMP/p4.err"

# ---- 5. A stream between attached ends outlives the removal: exit 0.
"$SHMRING" create --key "$KEY" > /dev/null
"$CONSUME" --key "$KEY" > "$TMP/c5.out" 2> "$TMP/c5.err" &
c=$!
wait_attached "$KEY" 1
source_open p5
"$PRODUCE" --key "$KEY" --framing lines < "$TMP/p5" &
p=$!
source_attach p5
source_feed "$TMP/lines" 0 7
wait_attached "$KEY" 2
remove_ipc "$KEY"
source_feed "$TMP/lines" 7 71
source_close
expect_job_within 30 0 "$p" "producer of a removed ring with its consumer attached"
expect_job_within 30 0 "$c" "consumer of a removed ring with its producer attached"
[ "$(wc -l < "$TMP/c5.out")" -eq 10 ] || fail "the stream: $(wc -l < "$TMP/c5.out") lines, expected 10"

expect_no_leak
echo PASS
