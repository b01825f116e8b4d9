#!/usr/bin/env bash
# Beyond one host: a 64 MiB stream from one ring to another through socat
# over TCP on 127.0.0.1, byte-exact, with --framing bytes and --framing
# length (frames keep their boundaries across the hop):
#
#   shm-produce -> ring A -> shm-consume | socat - TCP:127.0.0.1:PORT
#   socat TCP-LISTEN:PORT - | shm-produce -> ring B -> shm-consume > out
#
# Skips (exit 0, with a message) where socat is not installed.
#   socat_test.sh PRODUCE CONSUME RING
source "$(dirname "$0")/lib.sh" "$1" "$2" "$3"
if ! command -v socat >/dev/null; then
  echo "SKIPPED: socat is not installed (scripts/setup installs it)"
  exit 0
fi
KEY_B=$(printf '0x%08x' $(( KEY + 1 )))
KEYS+=("$KEY_B")
MIB=64

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --framing length input: frames of random sizes (0 .. 64 KiB) up to 64 MiB.
length_frames() {
  python3 - "$1" "$MIB" <<'PY'
import os, random, struct, sys
rng = random.Random(15)
total, limit = 0, int(sys.argv[2]) << 20
with open(sys.argv[1], "wb") as f:
    while total < limit:
        n = rng.choice((0, 1, 8, rng.randrange(65536), rng.randrange(4096)))
        f.write(struct.pack("<I", n) + os.urandom(n))
        total += 4 + n
PY
}

for framing in bytes length; do
  log "$MIB MiB, --framing $framing: ring $KEY -> socat/TCP -> ring $KEY_B"
  if [ "$framing" = bytes ]; then
    head -c "$((MIB << 20))" /dev/urandom >"$TMP/in"
  else
    length_frames "$TMP/in"
  fi
  port=$(free_port)

  # Receiving side: listener -> shm-produce -> ring B -> shm-consume.
  "$CONSUME" --key "$KEY_B" --create --framing "$framing" >"$TMP/out" &
  consumer_b=$!
  socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" - |
    "$PRODUCE" --key "$KEY_B" --create --framing "$framing" &
  producer_b=$!
  # Listening before the client starts: its retries (100, 50 ms apart)
  # give up after 5 s, a start-up a loaded machine can exceed.
  wait_listening "$port"

  # Sending side: shm-produce -> ring A -> shm-consume -> socat client.
  "$PRODUCE" --key "$KEY" --create --framing "$framing" <"$TMP/in" &
  producer_a=$!
  "$CONSUME" --key "$KEY" --create --framing "$framing" |
    socat -u - "TCP:127.0.0.1:$port,retry=100,interval=0.05" &
  sender=$!

  wait "$producer_a" || fail "$framing: shm-produce (ring A) exited $?"
  wait "$sender" || fail "$framing: shm-consume | socat exited $?"
  wait "$producer_b" || fail "$framing: socat | shm-produce (ring B) exited $?"
  wait "$consumer_b" || fail "$framing: shm-consume (ring B) exited $?"
  cmp "$TMP/in" "$TMP/out" || fail "$framing: the stream through socat differs"
  log "$framing: $(stat -c %s "$TMP/out") bytes byte-exact"
  "$SHMRING" rm --key "$KEY" >/dev/null
  "$SHMRING" rm --key "$KEY_B" >/dev/null
done
expect_no_leak
echo PASS
