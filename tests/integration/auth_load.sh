#!/bin/bash
# auth_load.sh - a slow auth backend under load, and the per-address failure throttle.
# SPDX-License-Identifier: Apache-2.0
#
# 1. 1000 devices authenticate at once through test_auth with a 200 ms delay while 100
#    devices that are already connected keep their keepalives and a console's round trips
#    through one of their channels going: the loop must never wait for the backend.
# 2. Brute force from one address (PROXY protocol names it) is slowed more and more, while a
#    device from another address is not; a success clears the address's failures.
# 3. auth_file runs on the auth workers (MPS_F_BLOCKING, for its crypt(3) hashes): 1000
#    devices with clear or {SHA256} passwords get in as fast as with no authentication at
#    all, and yescrypt checks (about 20 ms each) leave a console's round trips alone.
. "$(dirname "$0")/lib.sh"

N_OLD=100
N_NEW=1000
WORKERS=50
BACKEND_MS=200
# 1000 checks of 200 ms, 50 at a time: 20 rounds, 4 s at the very least.
IDEAL_MS=$((N_NEW * BACKEND_MS / WORKERS))

if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((3 * (N_OLD + N_NEW))) ]; then
    echo "SKIP: $((3 * (N_OLD + N_NEW))) file descriptors are needed, the hard limit is" \
        "$(ulimit -Hn)"
    exit 77
fi
ulimit -n "$(ulimit -Hn)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# realm_conf PLUGIN_PARAMS [LINES...]: the AMT realm uses test_auth instead of auth_file.
realm_conf() {
    local params=$1
    shift
    python3 - "$CONF" "$params" "$@" <<'PY'
import sys
path, params, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
old = "Plugin = auth_file\nPluginParameters = file "
assert text.count(old) == 1, "write_conf's AMT realm changed"
head, tail = text.split(old)
tail = tail.split("\n", 1)[1]
text = head + "Plugin = test_auth\nPluginParameters = " + params + "\n" + \
    "".join(l + "\n" for l in extra) + tail
open(path, "w").write(text)
PY
}

# ---- 1. 1000 devices through a 200 ms backend next to 100 busy tunnels.
CORE_EXTRA="AuthWorkers = $WORKERS
KeepaliveOptions = always
KeepaliveInterval = 1s
KeepaliveReadTimeout = $((3 * SLOW))s
AuthTimeout = $((60 * SLOW))s" write_conf
realm_conf "user amtuser pass P@ssw0rd delay $BACKEND_MS" "MaxConcurrent = $WORKERS" \
    "Timeout = $((60 * SLOW))s"
# One line per device and channel would only slow the daemon (and a sanitizer build) down.
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd

# The first 100 go through the same slow backend (2 rounds), then keep their tunnels. They
# send keepalives every second; mpsd drops a tunnel silent for KeepaliveReadTimeout.
bg old "$AMTSIM" --port "$AMT_PORT" --count "$N_OLD" --fqdn 'old%d.example.com' \
    --ports 16992,16994 --keepalive 1 --ready-file "$TMPD/old.ready"
old=$BG_PID
old_ready() { [ "$(cat "$TMPD/old.ready" 2>/dev/null)" = "$N_OLD" ]; }
wait_for $((30 * SLOW)) "$N_OLD devices forwarding" old_ready
log "$N_OLD devices forwarding"

# A console keeps 64-byte round trips going through a channel of old0 until told to stop;
# it prints the number of round trips and the worst one in ms.
cat >"$TMPD/rtt.py" <<'PY'
import os, socket, sys, time
port, stop, ready, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=limit)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"old0.example.com 16994\n")
line = b""
while not line.endswith(b"\n"):
    c = s.recv(1)
    if not c:
        sys.exit("console: closed before OK")
    line += c
if line != b"OK\n":
    sys.exit("console: %r" % line)
n, worst, payload = 0, 0.0, bytes(range(64))
while True:
    t0 = time.monotonic()
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        b = s.recv(len(payload) - len(got))
        if not b:
            sys.exit("console: channel closed after %d round trips" % n)
        got += b
    if got != payload:
        sys.exit("console: echo differs after %d round trips" % n)
    worst = max(worst, time.monotonic() - t0)
    n += 1
    if n == 1:
        open(ready, "w").close()
    if os.path.exists(stop):
        break
    time.sleep(0.01)
print(n, int(worst * 1000))
PY
bg rtt python3 "$TMPD/rtt.py" "$CONSOLE_PORT" "$TMPD/rtt.stop" "$TMPD/rtt.ready" $((30 * SLOW))
rtt=$BG_PID
wait_for $((10 * SLOW)) "the console's first round trip" test -e "$TMPD/rtt.ready"

# The storm: 1000 devices connecting at once.
t0=$(now_ms)
bg new "$AMTSIM" --port "$AMT_PORT" --count "$N_NEW" --fqdn 'new%d.example.com' \
    --uuid-base 8c6a3b2e-5d1f-4e7a-9b0c-000000100000 --ports 16992,16994 --keepalive 1 \
    --exit-when-ready --quiet
new=$BG_PID
# Bound: the ideal 4 s, three times over, plus 10 s for 1000 connections and handshakes.
BOUND_S=$(((3 * IDEAL_MS / 1000 + 10) * SLOW))
bg_wait "$new" "$BOUND_S" || fail "the $N_NEW devices did not all reach forwarding within" \
    "${BOUND_S}s: $(tail -n 3 "$TMPD/new.out" "$TMPD/new.err")"
took=$(($(now_ms) - t0))
[ "$(cat "$TMPD/new.out")" = "ready $N_NEW" ] || fail "second amtsim: $(cat "$TMPD/new.out")"
log "$N_NEW devices forwarding after $took ms (ideal $IDEAL_MS ms, bound ${BOUND_S}s)"
# Faster than the backend allows would mean the checks did not go through it.
[ "$took" -ge $((IDEAL_MS - 200)) ] ||
    fail "$N_NEW checks of $BACKEND_MS ms on $WORKERS workers took only $took ms"

touch "$TMPD/rtt.stop"
bg_wait "$rtt" $((10 * SLOW)) || fail "console round trips: $(cat "$TMPD/rtt.err")"
read -r n_rtt worst_ms <"$TMPD/rtt.out" || fail "console round trips: no result"
log "console: $n_rtt round trips through old0 during the storm, the worst $worst_ms ms"
# At least one round trip per 100 ms of storm, each under 1 s (3 s under a sanitizer).
[ "$n_rtt" -ge $((took / 100 / SLOW)) ] || fail "only $n_rtt round trips in $took ms"
[ "$worst_ms" -lt $((1000 * SLOW)) ] || fail "a round trip took $worst_ms ms during the storm"

# The first 100 kept their tunnels the whole time.
old_ready || fail "the first devices: $(cat "$TMPD/old.ready") of $N_OLD still forwarding"
kill -0 "$old" 2>/dev/null || fail "the first amtsim died: $(tail -n 5 "$TMPD/old.err")"
kill -TERM "$old"
bg_wait "$old" $((10 * SLOW)) || fail "the first amtsim did not stop"
grep -q "^connected $N_OLD, forwarding $N_OLD, disconnected 0$" "$TMPD/old.out" ||
    fail "the first devices lost tunnels: $(cat "$TMPD/old.out")"
log "the first $N_OLD devices: $(head -n 1 "$TMPD/old.out")"
! log_has "KeepaliveReadTimeout" || fail "tunnels timed out: $(grep -m 3 KeepaliveReadTimeout \
    "$MPSD_LOG")"
! log_has "denied\|failed" || fail "an authentication failed: $(grep -m 3 "denied\|failed" \
    "$MPSD_LOG")"
require_alive
stop_mpsd

# ---- 2. The failure throttle, per source address. Every connection carries a PROXY header so
# that the devices seem to come from different addresses; one attempt per connection.
CORE_EXTRA="AMTProxyProtocol = true" write_conf
realm_conf "user amtuser pass P@ssw0rd delay $BACKEND_MS" "FailureWindow = 60s" \
    "FailureFree = 3" "FailureDelayMax = 2s"
start_mpsd
EVIL=198.51.100.7
GOOD=198.51.100.8

# The attempts run in one Python process: on a loaded machine starting Python can take
# seconds, more than the delays measured here. Each line: RESULT|MS, MS from connect to verdict.
# A step is SCENARIO@ADDRESS[@UUID]: the known-device lane trusts a (UUID, user) pair that
# logged in, so the failing attempts use UUIDs of their own (UUIDs are no secret, but the
# attacker here has none that logged in).
cat >"$TMPD/attempts.py" <<'PY'
import contextlib, io, sys, time
sys.path.insert(0, sys.argv[1])
import apfclient
common = sys.argv[2].split()
for step in sys.argv[3:]:
    scenario, addr, *uuid = step.split("@")
    out = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out):
        apfclient.main(common + ["--proxy", "v1", "--proxy-src", addr]
                       + (["--uuid", uuid[0]] if uuid else []) + [scenario])
    print("%s|%d" % (out.getvalue().strip(), (time.monotonic() - t0) * 1000), flush=True)
PY
EVIL2=198.51.100.9
DEVICE=00112233-4455-6677-8899-aabbccddeeff   # apfclient's default: the device that logs in
ROGUE=0badc0de-0000-4000-8000-000000000001    # the attacker's
OTHER=0badc0de-0000-4000-8000-000000000002    # a device that never logged in
W="wrong-password@$EVIL@$ROGUE"
W2="wrong-password@$EVIL2@$ROGUE"
out=$(python3 "$TMPD/attempts.py" "$(dirname "$APFCLIENT")" \
    "--port $AMT_PORT --wait $((20 * SLOW)) --timeout $((20 * SLOW))" \
    "$W" "$W" "$W" "$W" "$W" "$W" "$W" "handshake@$GOOD@$DEVICE" "wrong-password@$GOOD@$ROGUE" \
    "handshake@$EVIL@$OTHER" "$W" "$W2" "$W2" "$W2" "$W2" "$W2" "$W2" \
    "handshake@$EVIL2@$DEVICE") || fail "attempts: $out"
mapfile -t res <<<"$out"
[ "${#res[@]}" = 18 ] || fail "attempts: $out"
# step N WANT: the result of step N (from 1) is WANT; MS is how long it took.
step() {
    local r=${res[$1 - 1]}
    [ "${r%|*}" = "$2" ] || fail "step $1: got '${r%|*}', expected '$2' (all: ${res[*]})"
    MS=${r##*|}
}
declare -a took_ms
for i in 1 2 3 4 5 6 7; do
    step "$i" "disconnect 15"
    took_ms[i]=$MS
done
# What an attempt costs undelayed: the first three (FailureFree = 3). On a loaded machine one
# of them can take a few hundred ms more than another, so a delay is measured from the
# quickest of them (free_min) and "not delayed" allows for the slowest (free_max).
free_min=$(printf '%s\n' "${took_ms[@]:1:3}" | sort -n | head -n 1)
free_max=$(printf '%s\n' "${took_ms[@]:1:3}" | sort -n | tail -n 1)
log "wrong passwords from $EVIL took ${took_ms[*]} ms"
# Delays after failures 3, 4, 5, 6: 250, 500, 1000, 2000 ms (FailureDelayMax = 2s).
[ $((took_ms[5] - free_min)) -ge 400 ] ||
    fail "the 5th failure was not delayed (${took_ms[*]} ms)"
[ $((took_ms[7] - free_min)) -ge 1700 ] ||
    fail "the 7th failure was not delayed 2 s (${took_ms[*]} ms)"
wait_log "auth\[AMT\]: $EVIL: 3 failures in [0-9.]* m\?s: delaying its checks by 250 ms"
[ "$(grep -c "auth\[AMT\]: $EVIL: .*delaying its checks" "$MPSD_LOG")" = 1 ] ||
    fail "the throttle is not logged exactly once for $EVIL"

# Another address is not slowed down: the right password gets in at once, and its first
# failure is free.
step 8 ok
log "the right password from $GOOD: $MS ms"
[ "$MS" -lt $((free_max + 1000 * SLOW)) ] || fail "$GOOD was slowed down: $MS ms"
step 9 "disconnect 15"
[ "$MS" -lt $((free_max + 1000 * SLOW)) ] || fail "a first failure from $GOOD: $MS ms"

# The right password of a device that never logged in, from the throttled address, waits too
# (2 s), then clears the address's failures.
step 10 ok
log "the right password of a new device from $EVIL: $MS ms"
[ "$MS" -ge $((free_min + 1700)) ] || fail "the throttled address was not delayed: $MS ms"
step 11 "disconnect 15"
log "the next wrong password from $EVIL: $MS ms"
[ "$MS" -lt $((free_max + 1000 * SLOW)) ] || fail "the success did not clear $EVIL: $MS ms"

# A device that logged in before (its UUID and user, step 8) is known-good evidence the
# attacker lacks: from another throttled address it gets in without the address's delay.
for i in 12 13 14 15 16 17; do
    step "$i" "disconnect 15"
done
step 18 ok
log "the right password of a known device from the throttled $EVIL2: $MS ms"
log_has "auth\[AMT\]: $EVIL2: .*delaying its checks" || fail "$EVIL2 was not throttled"
assert_log "auth\[AMT\]: $EVIL2: known device: user \"amtuser\" in the fast lane"
[ "$MS" -lt $((free_max + 1000 * SLOW)) ] || fail "the known device waited $MS ms"

! log_has "$GOOD: .*delaying" || fail "$GOOD was throttled"
! grep -q "P@ssw0rd" "$MPSD_LOG" || fail "a password is in the log"
log "no password in the log"
require_alive
stop_mpsd

# ---- 3. auth_file on the workers. time_storm NAME: 1000 devices connect at once; MS is the
# time until all forward.
time_storm() {
    local t0
    t0=$(now_ms)
    bg "$1" "$AMTSIM" --port "$AMT_PORT" --count "$N_NEW" --fqdn "$1%d.example.com" \
        --exit-when-ready --quiet
    bg_wait "$BG_PID" $((60 * SLOW)) || fail "$1: $(tail -n 3 "$TMPD/$1.out" "$TMPD/$1.err")"
    MS=$(($(now_ms) - t0))
    [ "$(cat "$TMPD/$1.out")" = "ready $N_NEW" ] || fail "$1: $(cat "$TMPD/$1.out")"
}
AF_CORE="KeepaliveInterval = 30s"
# The same daemon settings each time; only the realm differs.
NO_AUTH=1 CORE_EXTRA="$AF_CORE" write_conf
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
time_storm none
ms_none=$MS
stop_mpsd
# user:password (as lib.sh writes it), then the same password as {SHA256}.
for kind in clear sha256; do
    if [ "$kind" = sha256 ]; then
        printf 'amtuser:{SHA256}%s\n' "$(printf 'P@ssw0rd' | sha256sum | cut -d' ' -f1)" >"$USERS"
    fi
    CORE_EXTRA="$AF_CORE" write_conf
    sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
    start_mpsd
    time_storm "$kind"
    eval "ms_$kind=\$MS"
    stop_mpsd
done
log "$N_NEW devices forwarding: no authentication $ms_none ms, auth_file clear $ms_clear ms," \
    "{SHA256} $ms_sha256 ms"
# The hop to a worker costs microseconds per check; allow for a loaded machine's noise.
for ms in "$ms_clear" "$ms_sha256"; do
    [ "$ms" -le $((2 * ms_none + 2000 * SLOW)) ] ||
        fail "auth_file slowed $N_NEW logins down: $ms ms against $ms_none ms without auth"
done

# yescrypt: 200 devices at about 20 ms a check, 8 workers, while the console keeps its round
# trips through old0 going (rtt.py from part 1).
N_Y=200
printf 'amtuser:%s\n' '$y$j9T$abcdefghijklmnopqrstu1$TqPKFIwKroa0mJX4rwhALaKbmacLKzF3Hp0I.C.aF64' \
    >"$USERS"
CORE_EXTRA="$AF_CORE" write_conf
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
assert_log "1 users from $USERS (1 crypt(3) hashes"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn old0.example.com --ports 16992,16994 \
    --quiet >/dev/null 2>&1 &
BG_PIDS+=("$!")
wait_log "started port forwarding to address old0.example.com:16994" $((10 * SLOW))
rm -f "$TMPD/rtt.stop" "$TMPD/rtt.ready"
bg rtt2 python3 "$TMPD/rtt.py" "$CONSOLE_PORT" "$TMPD/rtt.stop" "$TMPD/rtt.ready" $((30 * SLOW))
rtt2=$BG_PID
wait_for $((10 * SLOW)) "the console's first round trip" test -e "$TMPD/rtt.ready"
t0=$(now_ms)
bg yes "$AMTSIM" --port "$AMT_PORT" --count "$N_Y" --fqdn 'y%d.example.com' --exit-when-ready \
    --quiet
bg_wait "$BG_PID" $((60 * SLOW)) || fail "yescrypt: $(tail -n 3 "$TMPD/yes.out" "$TMPD/yes.err")"
ms_y=$(($(now_ms) - t0))
[ "$(cat "$TMPD/yes.out")" = "ready $N_Y" ] || fail "yescrypt: $(cat "$TMPD/yes.out")"
touch "$TMPD/rtt.stop"
bg_wait "$rtt2" $((10 * SLOW)) || fail "console round trips: $(cat "$TMPD/rtt2.err")"
read -r n_rtt worst_ms <"$TMPD/rtt2.out" || fail "console round trips: no result"
log "$N_Y yescrypt logins in $ms_y ms; console: $n_rtt round trips, the worst $worst_ms ms"
[ "$worst_ms" -lt $((500 * SLOW)) ] || fail "a round trip took $worst_ms ms during yescrypt checks"
require_alive
stop_mpsd
log "PASS"
