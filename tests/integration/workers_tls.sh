#!/bin/bash
# workers_tls.sh - [core] Workers = N with the tls module: the connections of a [module tls]
# listener with Serve = apf handed round-robin to the event loops (loop 0 accepts, the next loop
# in turn runs the handshake and the device's tunnel), consoles on loop 0 reaching them,
# handshake failures on every loop, a certificate reload that every loop's new handshakes use,
# and a SIGTERM with handshakes pending on every loop.
# SPDX-License-Identifier: Apache-2.0
#
# As in workers.sh, where a device lands is not guessed: every device connects alone, and the
# per-loop counts of a SIGUSR1 ("loop K: D devices, T tunnels") before and after show the loop
# whose count grew by one. The TLS listener is the only one the test connects devices to, and
# nothing else connects to it, so its Nth connection (from 1) is loop (N-1) mod 2's: the
# test counts them (NCONN) and checks each device's loop against that count, which also shows
# that connections the test cannot see on the loop lines (refused handshakes, s_client) took
# their turns. One daemon, Workers = 2, consoles socks5 + http_proxy (plain, loop 0) and an
# HTTPS proxy ([module tls] Serve = http_proxy, which stays on loop 0), HandshakeTimeout 60 s:
#   1  16 amtsim devices over TLS (chain verified against the test CA), one at a time:
#      alternating 0,1,0,1...; SIGUSR1: 8 devices on each loop, 16 in the statistics line.
#   2  every device through the http_proxy (GET, a 6 KB WS-Man POST echoed byte-exact) and
#      SOCKS5 (curl GET, a 20000-byte echo); a device of each loop through the HTTPS proxy;
#      1 MiB both ways through SOCKS5 and through the http_proxy to a device of each loop, all
#      at the same time, byte-exact.
#   3  three refused handshakes in a row (an HTTP request, 64 bytes of garbage, an HTTP
#      request: loops 0, 1, 0 by the count), each closed by mpsd and logged as the tls
#      module's WARNING naming its source port and first bytes; no tunnel on any loop; then a
#      device lands on loop 1 (the three took their turns) and is reached.
#   4  the certificate and key files replaced by a certificate with another CN, SIGHUP, the
#      reload line: two s_client connections before present the old subject, two after the new
#      one (a pair lands on both loops); two devices that require the new name (amtsim
#      --tls-name) reach forwarding, one on each loop; the 17 devices of before are still
#      forwarding on their loops and answer through SOCKS5.
#   5  four TCP connections to the TLS port that send nothing (two on each loop), accepted by
#      mpsd (ss shows them as its descriptors), then SIGTERM: exit 0 within 10 s (30 under a
#      sanitizer, bounded by stop_mpsd's 20 s: HandshakeTimeout is 60 s), the four closed by
#      mpsd, the per-loop lines and the tls counters at exit, no "handles left open", no ERROR.
# WORKERS_TLS_PLUMBING=1 turns the checks of where TLS devices land into NOTE lines (for an
# mpsd whose TLS devices all stay on loop 0: the test's own plumbing); it then ends in FAIL.
# Under ASan (SLOW=3) nothing changes but the waits; the test never runs valgrind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers_lib.sh"

# ------------------------------------------------------------------- the daemon's wording
# Kept here, in one place, so a change of the log lines is a change of these lines.
STARTED_RE="Workers = 2: 2 event loops"
# The tls module's WARNING on a failed handshake (tls.sh), for one source port.
failed_re() { # failed_re PORT FIRST_BYTES
    echo "\[tls\] TLS handshake with 127\.0\.0\.1:$1 failed: .*; no TLS ClientHello: first bytes $2"
}
# The tls module's INFO line after a good reload (a fixed string: the paths have dots).
reload_line() { echo "reload: certificate and key re-read from $TLSD/cert.pem and $TLSD/key.pem"; }
RELOAD_BAD="reload: keeping the certificate in use"
# At stop, one per [module tls]: N handshakes completed, M failed.
TLS_STOP_SED='s/.*\[tls\] \([0-9]*\) handshakes completed, \([0-9]*\) failed.*/\1 \2/p'

# --------------------------------------------------------------------------------- setup
for t in openssl curl ss; do
    command -v "$t" >/dev/null 2>&1 || {
        echo "SKIP: $t is needed"
        exit 77
    }
done
for m in tls socks5 http_proxy; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
if ! "$AMTSIM" --help 2>&1 | grep -q -e "--tls-name"; then
    echo "SKIP: $AMTSIM has no --tls-name"
    exit 77
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
# This test writes its own Workers line (lib.sh would add a second one).
unset MPSD_TEST_WORKERS

S5CLIENT="$top_srcdir/tests/integration/socks5client.py"
T=$((30 * SLOW))
TRACE_LEVELS="INFO|ERROR|WARNING"
W=2
PLUMBING=${WORKERS_TLS_PLUMBING:-0}
NOTES=0

# loop_fail MSG: where a TLS device landed is wrong (what Workers adds for the tls module);
# with WORKERS_TLS_PLUMBING=1 a NOTE, counted, and the test ends in FAIL.
loop_fail() {
    if [ "$PLUMBING" = 1 ]; then
        log "NOTE (plumbing): $*"
        NOTES=$((NOTES + 1))
        return 0
    fi
    fail "$@"
}

make_certs
# The listener's certificate and key in files of their own: step 4 replaces them.
TLSD="$TMPD/tls"
mkdir -p "$TLSD"
cp "$CERTS/server-chain.pem" "$TLSD/cert.pem"
cp "$CERTS/server.key" "$TLSD/key.pem"
subject_of() { openssl x509 -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
OLD_SUBJECT=$(subject_of <"$TLSD/cert.pem")
NEW_CN=reloaded.example.com

CONF_EXTRA=$(
    TLS_CERT="$TLSD/cert.pem" TLS_KEY="$TLSD/key.pem" tls_section "Serve = apf" \
        "HandshakeTimeout = 60s"
    tls_section "Serve = http_proxy"
    printf '[module socks5]\nListen = 127.0.0.1:0\n\n[module http_proxy]\nListen = 127.0.0.1:0\n'
)
CORE_EXTRA="Workers = $W" write_conf
start_mpsd
TLS_PORT=$(ready_port tls 1)
HTTPS_PORT=$(ready_port tls 2)
SP=$(ready_port socks5)
HP=$(ready_port http_proxy)
assert_log "$STARTED_RE"
assert_log "\[tls\] listening on 127\.0\.0\.1:$TLS_PORT"
assert_log "\[tls\] serving apf with "
assert_log "\[tls\] serving http_proxy with "
NCONN=0 # connections made to the TLS device listener so far

# ------------------------------------------------------------------- per-loop statistics
# loop_stats, read_loop_lines, loops_text, placed: workers_lib.sh.
loops_reset
# unchanged WHAT: no loop's devices or tunnels changed since the previous loop_stats.
unchanged() {
    [ "${LD[*]}" = "${PD[*]}" ] && [ "${LT[*]}" = "${PT[*]}" ] ||
        fail "$1: the loops went from ${PD[*]} devices, ${PT[*]} tunnels to $(loops_text)"
}

# ----------------------------------------------------------------------- devices, consoles
declare -A DEV_LOOP SIM_PID
# sim_up I: devI forwards; fails at once when its amtsim has exited (a failed handshake).
sim_up() {
    [ "$(cat "$TMPD/sim$1.ready" 2>/dev/null)" = 1 ] && return 0
    kill -0 "${SIM_PID[$1]}" 2>/dev/null ||
        fail "amtsim of dev$1 exited: $(cat "$TMPD/sim$1.out" "$TMPD/sim$1.err")"
    return 1
}
# device I [AMTSIM ARGS]: amtsim device devI.example.com (HTTP on 16992, echo on 16994) over
# TLS, the chain verified against the test CA, alone on a new connection to the TLS listener;
# waits until it forwards, sets DEV_LOOP[I] from the loop lines and checks it is the turn of
# that connection.
device() {
    local i=$1 want=$((NCONN % W))
    shift
    bg "sim$i" "$AMTSIM" --port "$TLS_PORT" --tls --tls-ca "$CERTS/ca.pem" \
        --fqdn "dev$i.example.com" --uuid-base "$(uuid "$i")" --ports 16992,16994 \
        --keepalive 5 --ready-file "$TMPD/sim$i.ready" "$@"
    SIM_PID[$i]=$BG_PID
    NCONN=$((NCONN + 1))
    wait_for $((20 * SLOW)) "dev$i forwarding over TLS" sim_up "$i"
    loop_stats
    placed "dev$i"
    DEV_LOOP[$i]=$LOOP_OF
    [ "$LOOP_OF" = "$want" ] || loop_fail "dev$i (connection $NCONN to the TLS listener) is on" \
        "loop $LOOP_OF, not $want (round robin from loop 0)"
}
# reach I: workers_lib.sh.

# ================================================ 1. 16 TLS devices, one at a time: 8 and 8
N=16
for ((i = 0; i < N; i++)); do
    device "$i"
done
order=""
for ((i = 0; i < N; i++)); do order+="${DEV_LOOP[$i]}"; done
log "16 TLS devices forwarding, one connection at a time; their loops in order: $order"
loop_stats
[ "$LD_SUM" = "$N" ] || fail "the loops' devices sum to $LD_SUM, not $N: $(loops_text)"
for ((k = 0; k < W; k++)); do
    [ "${LD[k]}" = $((N / W)) ] ||
        loop_fail "loop $k holds ${LD[k]} TLS devices, not $((N / W)): $(loops_text)"
done
[ "$(stats_value "now")" = "$N" ] || fail "the statistics line's devices now: $STATS"
log "SIGUSR1: $(loops_text) (sum $LD_SUM)"

# ============================================ 2. every device through the consoles, byte-exact
for ((i = 0; i < N; i++)); do
    reach "$i"
done
log "every TLS device: GET and a WS-Man POST (6 KB, echoed byte-exact) through the" \
    "http_proxy, GET and a 20000-byte echo through SOCKS5"
# A and B: the first device of loop 0 and of loop 1 (dev0 and dev1 by the count).
A="" B=""
for ((i = 0; i < N; i++)); do
    [ -n "$A" ] || [ "${DEV_LOOP[$i]}" != 0 ] || A=$i
    [ -n "$B" ] || [ "${DEV_LOOP[$i]}" != 1 ] || B=$i
done
[ -n "$A" ] || fail "no device on loop 0: $order"
if [ -z "$B" ]; then
    loop_fail "no device on loop 1: $order"
    B=1
fi
for d in $A $B; do
    fqdn="dev$d.example.com"
    out=$(curl -q -sS --max-time "$T" --proxy "https://127.0.0.1:$HTTPS_PORT" \
        --proxy-cacert "$CERTS/ca.pem" "http://$fqdn:16992/via-https-proxy" 2>&1) ||
        fail "curl through the HTTPS proxy to $fqdn: $out"
    [ "$out" = "amtsim $fqdn $(uuid "$d") /via-https-proxy" ] ||
        fail "the HTTPS proxy's answer from $fqdn: $out"
done
log "the HTTPS proxy (tls Serve = http_proxy) reaches dev$A (loop ${DEV_LOOP[$A]}) and" \
    "dev$B (loop ${DEV_LOOP[$B]})"

# 1 MiB both ways through SOCKS5 and through the http_proxy, to a device of each loop, all at
# the same time (the device's 32 KiB window paces each console).
MIB=$((1024 * 1024))
head -c "$MIB" /dev/urandom >"$TMPD/mib"
declare -A BULK_PID POST_PID
for d in $A $B; do
    bg "bulk$d" python3 "$S5CLIENT" bulk --port "$SP" --timeout "$T" \
        --device "dev$d.example.com" --dport 16994 --bytes "$MIB" --seed "$d"
    BULK_PID[$d]=$BG_PID
    bg "post$d" curl -q -sS --max-time "$T" -x "http://127.0.0.1:$HP" --data-binary "@$TMPD/mib" \
        -H 'Content-Type: application/octet-stream' -o "$TMPD/mib.$d" \
        "http://dev$d.example.com:16992/big"
    POST_PID[$d]=$BG_PID
done
for d in $A $B; do
    bg_wait "${BULK_PID[$d]}" "$T" || fail "SOCKS5 1 MiB to dev$d: $(cat "$TMPD/bulk$d.err")"
    out=$(cat "$TMPD/bulk$d.out")
    [ "${out%% *}" = ok ] || fail "SOCKS5 1 MiB both ways to dev$d (loop ${DEV_LOOP[$d]}): $out"
    bg_wait "${POST_PID[$d]}" "$T" || fail "1 MiB POST to dev$d: $(cat "$TMPD/post$d.err")"
    cmp -s "$TMPD/mib" "$TMPD/mib.$d" || fail "the 1 MiB POST to dev$d came back different"
    log "dev$d (loop ${DEV_LOOP[$d]}): 1 MiB both ways through SOCKS5 ($out) and through" \
        "the http_proxy, byte-exact"
done
require_alive

# ============================================ 3. refused handshakes on both loops, then a device
# raw_tls http|garbage: one connection to the TLS listener sending an HTTP request or 64
# bytes 00 01 .. 3f, reading until mpsd closes it; prints "PORT closed|reset BYTES_READ" (PORT:
# its source port) or "PORT timeout BYTES_READ".
raw_tls() {
    python3 -c '
import socket, sys
port, kind, t = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=t)
me = s.getsockname()[1]
if kind == "http":
    s.sendall(b"GET /index.htm HTTP/1.1\r\nHost: dev0.example.com:16992\r\n\r\n")
else:
    s.sendall(bytes(range(64)))
n, how = 0, "closed"
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        n += len(b)
except socket.timeout:
    how = "timeout"
except ConnectionResetError:
    how = "reset"
print(me, how, n)
' "$TLS_PORT" "$1" "$T"
}
loop_stats
for kind in http garbage http; do
    turn=$((NCONN % W))
    read -r port how got < <(raw_tls "$kind") || fail "raw_tls $kind did not run"
    NCONN=$((NCONN + 1))
    case $how in
    closed | reset) ;;
    *) fail "$kind bytes to the TLS listener (connection $NCONN, loop $turn by the count):" \
        "not closed within $T s ($how, $got bytes read)" ;;
    esac
    first="47 45 54 20 (plain text: not TLS)"
    [ "$kind" = http ] || first="00 01 02 03"
    wait_log "$(failed_re "$port" "$first")"
    log "$kind bytes from port $port (connection $NCONN: loop $turn by the count): $how" \
        "by mpsd after $got bytes; logged: $(grep -m 1 -o "TLS handshake with 127\.0\.0\.1:$port failed: .*" "$MPSD_LOG")"
done
require_alive
loop_stats
unchanged "the three refused handshakes"
device 16
reach 16
log "after them dev16 (connection $NCONN: loop $(((NCONN - 1) % W)) if the refused ones took" \
    "their turns) landed on loop ${DEV_LOOP[16]} and answers through both consoles"

# ============================================================== 4. certificate reload
# served_subject: the subject of the certificate one new connection to the TLS listener gets
# (s_client, the chain verified against the test CA) into SUBJ.
served_subject() {
    local out
    out=$(s_client "$TLS_PORT" -CAfile "$CERTS/ca.pem")
    NCONN=$((NCONN + 1))
    grep -aq "Verify return code: 0 (ok)" <<<"$out" ||
        fail "s_client (connection $NCONN): the chain did not verify: $(tail -n 20 <<<"$out")"
    SUBJ=$(subject_of <<<"$out")
}
for _ in 1 2; do
    turn=$((NCONN % W))
    served_subject
    [ "$SUBJ" = "$OLD_SUBJECT" ] ||
        fail "before the reload, s_client (loop $turn by the count) got '$SUBJ', not '$OLD_SUBJECT'"
done
log "before the reload two s_client connections (loops 0 and 1 by the count) got $OLD_SUBJECT"

tls_issue server "$NEW_CN" 30 "$CERTS/reloaded"
cat "$CERTS/reloaded.pem" "$CERTS/ca.pem" >"$TLSD/cert.pem.new"
cp "$CERTS/reloaded.key" "$TLSD/key.pem.new"
NEW_SUBJECT=$(subject_of <"$TLSD/cert.pem.new")
[ "$NEW_SUBJECT" != "$OLD_SUBJECT" ] || fail "the new certificate has the old subject"
mv "$TLSD/key.pem.new" "$TLSD/key.pem"
mv "$TLSD/cert.pem.new" "$TLSD/cert.pem"
reloads() { grep -cF -e "$(reload_line)" "$MPSD_LOG" || true; }
reloaded() { [ "$(reloads)" -gt "$1" ]; }
before=$(reloads)
kill -HUP "$MPSD_PID"
wait_for $((10 * SLOW)) "the tls module's reload line" reloaded "$before"
! grep -qF -e "$RELOAD_BAD" "$MPSD_LOG" || fail "the reload kept the old certificate:" \
    "$(grep -F -e "$RELOAD_BAD" "$MPSD_LOG")"
log "SIGHUP: $(grep -F -e "$(reload_line)" "$MPSD_LOG" | tail -n 1 | sed 's/^\[[^]]*\] //')"
for _ in 1 2; do
    turn=$((NCONN % W))
    served_subject
    [ "$SUBJ" = "$NEW_SUBJECT" ] ||
        fail "after the reload, s_client (loop $turn by the count) got '$SUBJ', not '$NEW_SUBJECT'"
done
log "after it two s_client connections (loops 0 and 1 by the count) got $NEW_SUBJECT"
# Devices that accept only the new name: each one's handshake is seen on the loop lines.
device 17 --tls-name "$NEW_CN"
device 18 --tls-name "$NEW_CN"
[ "${DEV_LOOP[17]}" != "${DEV_LOOP[18]}" ] || loop_fail "dev17 and dev18 (consecutive" \
    "connections) are both on loop ${DEV_LOOP[17]}"
log "dev17 (loop ${DEV_LOOP[17]}) and dev18 (loop ${DEV_LOOP[18]}) verified the new" \
    "certificate for $NEW_CN and forward"
# The devices of before kept their tunnels.
loop_stats
[ "$LD_SUM" = $((N + 3)) ] && [ "$LT_SUM" = $((N + 3)) ] ||
    fail "after the reload the loops hold $(loops_text), not $((N + 3)) devices"
for ((i = 0; i <= N; i++)); do
    kill -0 "${SIM_PID[$i]}" 2>/dev/null || fail "amtsim of dev$i exited: $(cat "$TMPD/sim$i.out")"
    [ "$(cat "$TMPD/sim$i.ready")" = 1 ] || fail "dev$i no longer forwards after the reload"
done
for d in $A $B 16; do
    out=$(s5 echo --device "dev$d.example.com" --dport 16994 --bytes 20000 --seed "$d")
    [ "$out" = ok ] || fail "SOCKS5 echo to dev$d after the reload: $out"
done
log "the 17 devices of before still forward ($(loops_text)); dev$A, dev$B and dev16 echo" \
    "through SOCKS5"

# ===================================================== 5. SIGTERM with handshakes pending
# Four connections that send nothing and wait for mpsd to close them: "ports P1 P2 P3 P4"
# once connected, then "closed N" when all N were closed by mpsd (EOF or reset), or
# "open K" if K were still open after the test's limit.
bg holder python3 -c '
import select, socket, sys, time
port, t = int(sys.argv[1]), float(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=t) for _ in range(4)]
print("ports", " ".join(str(s.getsockname()[1]) for s in socks), flush=True)
open_ = list(socks)
end = time.monotonic() + t
while open_ and time.monotonic() < end:
    ready, _, _ = select.select(open_, [], [], 1.0)
    for s in ready:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            open_.remove(s)
print("open %d" % len(open_) if open_ else "closed %d" % len(socks), flush=True)
' "$TLS_PORT" $((120 * SLOW))
HOLDER=$BG_PID
holder_ports() { grep -q '^ports ' "$TMPD/holder.out" 2>/dev/null; }
wait_for $((10 * SLOW)) "the four silent connections" holder_ports
HOLD_PORTS=$(sed -n 's/^ports //p' "$TMPD/holder.out")
turns=""
for p in $HOLD_PORTS; do
    turns+="$((NCONN % W))"
    NCONN=$((NCONN + 1))
done
# Accepted: each is a descriptor of mpsd (not left in the listen queue).
accepted() {
    local p out
    out=$(ss -Htnp state established "( sport = :$TLS_PORT )" 2>/dev/null) || return 1
    for p in $HOLD_PORTS; do
        grep -q "127\.0\.0\.1:$p .*pid=$MPSD_PID," <<<"$out" || return 1
    done
}
wait_for $((10 * SLOW)) "mpsd to accept the four silent connections" accepted
[ "$(wc -l <"$TMPD/holder.out")" = 1 ] ||
    fail "a silent connection was closed before the stop: $(cat "$TMPD/holder.out")"
loop_stats
log "four silent connections accepted (ports $HOLD_PORTS, loops $turns by the count), none" \
    "closed; $(loops_text)"
before_l=$(grep -c -e "$LOOP_RE" "$MPSD_LOG" || true)
stop_mpsd
[ "$STOP_SECONDS" -le $((10 * SLOW)) ] ||
    fail "mpsd took $STOP_SECONDS s to exit with handshakes pending (HandshakeTimeout 60 s)"
log "mpsd exited 0 in $STOP_SECONDS s with the four handshakes pending (loops $turns by the" \
    "count)"
bg_wait "$HOLDER" $((10 * SLOW)) || fail "the silent connections' holder: $(cat "$TMPD/holder.err")"
[ "$(tail -n 1 "$TMPD/holder.out")" = "closed 4" ] ||
    fail "the silent connections after the stop: $(cat "$TMPD/holder.out")"
! grep -q "handles left open" "$MPSD_LOG" ||
    fail "at exit: $(grep "handles left open" "$MPSD_LOG")"
! grep -q '\[LM ERROR\]' "$MPSD_LOG" || fail "ERROR lines: $(grep '\[LM ERROR\]' "$MPSD_LOG")"
[ "$(grep -c -e "$LOOP_RE" "$MPSD_LOG")" -ge $((before_l + W)) ] ||
    fail "no per-loop lines at exit: $(tail -n 5 "$MPSD_LOG")"
read_loop_lines "$(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n "$W")"
log "at exit: $(loops_text); no handles left open, no ERROR line"
# The tls counters (both sections): every device handshake and the three refused ones.
ok=0 bad=0
while read -r o f; do
    ok=$((ok + o))
    bad=$((bad + f))
done < <(sed -n "$TLS_STOP_SED" "$MPSD_LOG")
[ "$ok" -ge $((N + 3)) ] && [ "$bad" -ge 3 ] || fail "the tls counters at exit: $ok completed," \
    "$bad failed (at least $((N + 3)) devices and 3 refused): $(grep '\[tls\] [0-9]* handshakes' "$MPSD_LOG")"
log "tls at exit: $ok handshakes completed, $bad failed"
for ((i = 0; i <= N + 2; i++)); do kill "${SIM_PID[$i]}" 2>/dev/null || true; done

if [ "$PLUMBING" = 1 ]; then
    fail "plumbing run (WORKERS_TLS_PLUMBING=1): $NOTES checks of where TLS devices land noted"
fi
log "PASS"
