#!/bin/bash
# workers.sh - [core] Workers = N: device connections of the core's listener handed round-robin
# to N event loops, consoles (socks5, http_proxy, test_console, admin_http) on loop 0 reaching
# devices on every loop, one name table for the process, admin APIs seeing every loop, and a
# clean SIGTERM with traffic on every loop.
# SPDX-License-Identifier: Apache-2.0
#
# Where each device lands is not guessed from the accept order: every device connects alone,
# and the per-loop counts of a SIGUSR1 ("loop K: D devices, T tunnels") before and after show
# the loop whose count grew by one. Runs:
#   0  mpsd -t refuses Workers = 0, 65 and many naming file:line; accepts 1, 64 and auto.
#   1  Workers = 2, socks5 + http_proxy + admin_http, 16 amtsim devices connected one by one:
#      the start line, placement alternating 0,1,0,1..., the loop lines summing to 16; every
#      device through the http_proxy (GET and a WS-Man POST echoed byte-exact) and SOCKS5 (curl
#      GET, 64 consoles echoing at once; the SOCKS5 consoles of loop-1 devices moved there);
#      1 MiB both ways through SOCKS5 and through the
#      http_proxy on a device of each loop at the same time; REST: 16 listed, devices_now 16,
#      DELETE of a loop-1 device (loop 1's count drops, the device got DISCONNECT 11), the
#      device back on a new connection; SIGTERM while a SOCKS5 transfer runs to a device on
#      each loop: exit 0, no sanitizer report, the per-loop lines at exit.
#   2  names across loops (NeedAuthentication with two accounts of auth_file): X holds
#      x.example.com; Y (another account and UUID) asks for it on two connections, one on
#      each loop: both refused, WARNING naming X, X still reached; X's reconnect (same UUID
#      and account) lands on the other loop and replaces the old session (DISCONNECT 11).
#   3  Workers = auto: the start line with the CPU count, 4 devices, a console round trip
#      to each.
#   4  a device on loop 1 that speaks first (amtsim --greeting): its SOCKS5 consoles get the
#      greeting, then their echo, through the pair; none moves.
# WORKERS_PLUMBING=1 runs the scenarios against an mpsd without the Workers key (no Workers
# line, no loop checks) to exercise the test's own plumbing; it always ends in FAIL.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers_lib.sh"

# ------------------------------------------------------------------- the daemon's wording
# Kept here, in one place, so a change of the log lines is a change of these lines.
# The INFO line at start with N > 1 (an ERE-free grep -e pattern).
started_re() { echo "Workers = $1: $1 event loops"; }
# mpsd -t on a bad value: FILE:LINE: then a message naming the key.
bad_workers_re() { echo "mps\.conf:$1: .*Workers"; }
# NameConflict across loops (as on one loop: names.sh).
refused_re() { # refused_re ASKER_UUID HOLDER_UUID FQDN
    echo "\[LM WARNING\] Intel remote client $1 (account otheruser) asked to register ${3//./\\.}, which device $2 (account amtuser, 127\.0\.0\.1:[0-9]*) holds: refused (NameConflict = replace-same-device)"
}
replaced_re() { echo "${1//./\\.}, 127\.0\.0\.1:[0-9]*) replaced by a new connection from 127\.0\.0\.1:"; }

# --------------------------------------------------------------------------------- setup
command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed"
    exit 77
}
for m in socks5 http_proxy admin_http; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

S5CLIENT="$top_srcdir/tests/integration/socks5client.py"
RESTCLIENT="$top_srcdir/tests/integration/rest_client.py"
T=$((30 * SLOW))
TRACE_LEVELS="INFO|ERROR|WARNING"
W=2 # the loops of the running daemon
HP="" SP="" AH="" URL=""

# Does this mpsd know Workers at all? (An unknown [core] key is refused by mpsd -t.)
HAVE_W=1
CORE_EXTRA="Workers = 2" write_conf "$TMPD/probe.conf"
if ! "$MPSD" -t -c "$TMPD/probe.conf" >"$TMPD/probe.out" 2>&1; then
    if [ "${WORKERS_PLUMBING:-0}" = 1 ]; then
        HAVE_W=0
        W=1
        log "NOTE: this mpsd refuses 'Workers = 2' ($(head -n 1 "$TMPD/probe.out")):" \
            "plumbing only, one loop, no loop checks; the test ends in FAIL"
    else
        fail "mpsd -t refuses 'Workers = 2': $(cat "$TMPD/probe.out")"
    fi
fi

# workers_conf N [CONF_EXTRA]: the configuration with Workers = N (none in plumbing mode).
workers_conf() {
    local n=$1
    [ "$HAVE_W" = 1 ] || n=""
    CORE_EXTRA="${n:+Workers = $n}" CONF_EXTRA="${2:-}" write_conf
}
CONSOLES="[module socks5]
Listen = 127.0.0.1:0

[module http_proxy]
Listen = 127.0.0.1:0

[module admin_http]
Listen = 127.0.0.1:0"

# start_workers N: start the daemon (Workers = N was written), read the console ports, check
# the start line.
start_workers() {
    start_mpsd
    SP=$(_ready_find socks5 1)
    SP=${SP##*:}
    HP=$(_ready_find http_proxy 1)
    HP=${HP##*:}
    AH=$(_ready_find admin_http 1)
    AH=${AH##*:}
    URL="http://127.0.0.1:$AH"
    if [ "$HAVE_W" = 1 ] && [ "$1" -gt 1 ]; then
        assert_log "$(started_re "$1")"
    fi
    W=$1
    [ "$HAVE_W" = 1 ] || W=1
    loops_reset
}

# ------------------------------------------------------------------- per-loop statistics
# loop_stats, read_loop_lines, loops_text, placed: workers_lib.sh.
# loops_settle WHAT PRED: a device leaving is counted when its loop has closed it, a moment
# after the device got its DISCONNECT: repeat loop_stats until PRED (a command reading PD and
# PT, the counts before, and LD and LT) holds. PD and PT stay the counts of the first report.
loops_settle() {
    local what=$1 end=$((SECONDS + 10 * SLOW)) first_d first_t
    shift
    loop_stats
    first_d=("${PD[@]}")
    first_t=("${PT[@]}")
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || fail "$what: before ${first_d[*]} devices," \
            "${first_t[*]} tunnels; now $(loops_text)"
        sleep 0.1
        loop_stats
        PD=("${first_d[@]}")
        PT=("${first_t[@]}")
    done
}

# ----------------------------------------------------------------------- devices, consoles
declare -A DEV_LOOP SIM_PID
# device I [AMTSIM ARGS]: amtsim device devI.example.com (HTTP on 16992, echo on 16994) alone
# on a new connection; waits until it forwards and sets DEV_LOOP[I] from the loop lines.
device() {
    local i=$1
    shift
    bg "sim$i" "$AMTSIM" --port "$AMT_PORT" --fqdn "dev$i.example.com" --uuid-base "$(uuid "$i")" \
        --ports 16992,16994 --keepalive 5 --ready-file "$TMPD/sim$i.ready" "$@"
    SIM_PID[$i]=$BG_PID
    wait_for $((20 * SLOW)) "dev$i forwarding" grep -qxs 1 "$TMPD/sim$i.ready"
    loop_stats
    placed "dev$i"
    DEV_LOOP[$i]=$LOOP_OF
}

rest() { curl -q -s --max-time "$T" -o "$TMPD/b" -w '%{http_code}' "$@"; }
jget() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$TMPD/b" "$1"
}

# ====================================================================== 0. mpsd -t
for v in 0 65 many -1 2x; do
    CORE_EXTRA="Workers = $v" write_conf
    line=$(grep -n "^Workers = $v\$" "$CONF" | cut -d: -f1)
    rc=0
    "$MPSD" -t -c "$CONF" >"$TMPD/t.out" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "mpsd -t accepted 'Workers = $v'"
    [ "$HAVE_W" = 0 ] && continue
    grep -q -e "$(bad_workers_re "$line")" "$TMPD/t.out" ||
        fail "mpsd -t on 'Workers = $v' did not name mps.conf:$line: $(cat "$TMPD/t.out")"
    log "mpsd -t: $(grep -m 1 -e "$(bad_workers_re "$line")" "$TMPD/t.out" | sed 's/^\[[^]]*\] //')"
done
if [ "$HAVE_W" = 1 ]; then
    for v in 1 64 auto; do
        CORE_EXTRA="Workers = $v" write_conf
        "$MPSD" -t -c "$CONF" >"$TMPD/t.out" 2>&1 || fail "mpsd -t refused 'Workers = $v':" \
            "$(cat "$TMPD/t.out")"
    done
    log "mpsd -t accepts Workers = 1, 64 and auto"
fi

# ====================================================== 1. Workers = 2, 16 devices, consoles
workers_conf 2 "$CONSOLES"
start_workers 2
N=16
for ((i = 0; i < N; i++)); do
    device "$i"
done
order=""
for ((i = 0; i < N; i++)); do order+="${DEV_LOOP[$i]}"; done
log "16 devices forwarding, one connection at a time; their loops in order: $order"
loop_stats
[ "$LD_SUM" = "$N" ] || fail "the loops' devices sum to $LD_SUM, not $N: $(loops_text)"
if [ "$HAVE_W" = 1 ]; then
    for ((k = 0; k < W; k++)); do
        [ "${LD[k]}" -gt 0 ] || fail "loop $k has no device: $(loops_text)"
    done
    # Round robin, connection 1 to loop 0: device i (the i+1th connection) on loop i mod W.
    for ((i = 0; i < N; i++)); do
        [ "${DEV_LOOP[$i]}" = $((i % W)) ] ||
            fail "dev$i (connection $((i + 1))) is on loop ${DEV_LOOP[$i]}, not $((i % W)): $order"
    done
    log "SIGUSR1: $(loops_text) (round robin, sum $LD_SUM)"
fi
[ "$(stats_value "now")" = "$N" ] || fail "the statistics line's devices now: $STATS"

# 2. Every device through both consoles; then all at once through SOCKS5.
for ((i = 0; i < N; i++)); do
    reach "$i"
done
log "every device: GET and a WS-Man POST (6 KB, echoed byte-exact) through the http_proxy," \
    "GET and a 20000-byte echo through SOCKS5"
out=$(s5 multi --device 'dev%d.example.com' --devices "$N" --conns $((4 * N)) --bytes 8192)
[ "${out%% *}" = ok ] || fail "64 SOCKS5 consoles at once to the 16 devices: $out"
log "64 SOCKS5 consoles at once, 4 a device, each echoing 8 KiB: $out"
# A SOCKS5 console answered before its device sent anything moves to the device's loop
# (workers_move.c): at least the 32 of those 64 whose device is on loop 1.
if [ "$HAVE_W" = 1 ]; then
    loop_stats
    moved=$(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n 1 | sed -n 's/.* \([0-9]*\) consoles moved here.*/\1/p')
    [ "${moved:-0}" -ge $((2 * N)) ] ||
        fail "consoles moved to loop 1: '${moved}', expected at least $((2 * N)): $(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n 1)"
    log "SIGUSR1: $moved consoles moved to loop 1 (their sockets, spliced to the channel there)"
fi

# 1 MiB both ways, through SOCKS5 and through the http_proxy, to a device of each loop, all at
# the same time (the device's 32 KiB window paces each console).
A=0 B=1 # devices on loops 0 and 1 (checked above)
MIB=$((1024 * 1024))
head -c "$MIB" /dev/urandom >"$TMPD/mib"
for d in $A $B; do
    bg "bulk$d" python3 "$S5CLIENT" bulk --port "$SP" --timeout "$T" \
        --device "dev$d.example.com" --dport 16994 --bytes "$MIB" --seed "$d"
    BULK_PID[d]=$BG_PID
    bg "post$d" curl -q -sS --max-time "$T" -x "http://127.0.0.1:$HP" --data-binary "@$TMPD/mib" \
        -H 'Content-Type: application/octet-stream' -o "$TMPD/mib.$d" \
        "http://dev$d.example.com:16992/big"
    POST_PID[d]=$BG_PID
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

# 3. REST: every loop's devices; DELETE of a device on loop 1; it comes back.
rest "$URL/api/v1/devices?limit=1000" >"$TMPD/code" || true
[ "$(cat "$TMPD/code")" = 200 ] || fail "GET /api/v1/devices: $(cat "$TMPD/code") $(head -c 200 "$TMPD/b")"
# They connected one at a time, dev0 first: oldest first (the API's order) is dev0..dev15.
jget '" ".join(d["fqdn"].split(".")[0] for d in j["devices"])' >"$TMPD/got"
for ((i = 0; i < N; i++)); do printf 'dev%d ' "$i"; done | sed 's/ $/\n/' >"$TMPD/want"
[ "$(sort <(tr ' ' '\n' <"$TMPD/want"))" = "$(sort <(tr ' ' '\n' <"$TMPD/got"))" ] ||
    fail "the REST list is not the 16 devices: $(cat "$TMPD/got")"
cmp -s "$TMPD/want" "$TMPD/got" || fail "the REST list has the 16 devices but not oldest first" \
    "(they connected one at a time, dev0 first, loops $order): $(cat "$TMPD/got")"
[ "$(jget 'j["total"]')" = "$N" ] || fail "REST total: $(jget 'j["total"]')"
timeout "$T" python3 "$RESTCLIENT" "$URL" list --page 5 >"$TMPD/list.py" ||
    fail "rest_client list: $(tail -n 3 "$TMPD/list.py")"
[ "$(head -n 1 "$TMPD/list.py")" = "count=$N" ] || fail "rest_client list: $(head -n 1 "$TMPD/list.py")"
[ "$(rest "$URL/api/v1/stats")" = 200 ] || fail "GET /api/v1/stats: $(head -c 200 "$TMPD/b")"
[ "$(jget 'j["devices_now"]')" = "$N" ] || fail "stats devices_now: $(head -c 400 "$TMPD/b")"
log "REST: the list has all 16 devices (curl, and rest_client paging 5 at a time), devices_now 16"

V=1 # on loop 1 (checked above)
[ "${DEV_LOOP[$V]}" = $((W - 1)) ] || [ "$HAVE_W" = 0 ] || fail "dev$V is not on loop 1"
[ "$(rest "$URL/api/v1/devices/dev$V.example.com")" = 200 ] || fail "GET dev$V: $(cat "$TMPD/b")"
session=$(jget 'j["session"]')
loop_stats
[ "$(rest -X DELETE "$URL/api/v1/devices/dev$V.example.com")" = 200 ] ||
    fail "DELETE dev$V: $(head -c 200 "$TMPD/b")"
[ "$(jget 'j["disconnected"], j["session"]')" = "(True, $session)" ] ||
    fail "DELETE dev$V answered $(cat "$TMPD/b")"
gone() { [ "$(rest "$URL/api/v1/devices/dev$V.example.com")" = 404 ]; }
wait_for $((10 * SLOW)) "dev$V gone from the REST API" gone
wait_for $((10 * SLOW)) "amtsim to see dev$V disconnected" grep -qxs 0 "$TMPD/sim$V.ready"
kill -TERM "${SIM_PID[$V]}"
bg_wait "${SIM_PID[$V]}" $((10 * SLOW)) || fail "amtsim of dev$V did not stop"
grep -q "disconnected 1" "$TMPD/sim$V.out" || fail "dev$V: $(cat "$TMPD/sim$V.out" "$TMPD/sim$V.err")"
assert_log "DELETE device dev$V\.example\.com (session $session): disconnected"
one_less_on_1() {
    [ "$LD_SUM" = $((N - 1)) ] && [ "$LT_SUM" = $((N - 1)) ] || return 1
    [ "$HAVE_W" = 0 ] || { [ "${LD[1]}" = $((PD[1] - 1)) ] && [ "${LD[0]}" = "${PD[0]}" ] &&
        [ "${LT[1]}" = $((PT[1] - 1)) ] && [ "${LT[0]}" = "${PT[0]}" ]; }
}
loops_settle "loop 1 to count one device less after the DELETE of dev$V" one_less_on_1
out=$(s5 echo --device "dev$V.example.com" --dport 16994 --bytes 100)
[[ $out = "reply 0x04"* ]] || fail "dev$V still reached after DELETE: $out"
log "DELETE of dev$V (loop 1, session $session): gone from the list and the loop lines" \
    "($(loops_text)); SOCKS5 to it: $out"
device "$V"
log "dev$V back on a new connection, on loop ${DEV_LOOP[$V]}"
reach "$V"
[ "$(rest "$URL/api/v1/devices/dev$V.example.com")" = 200 ] || fail "GET dev$V after its return"
[ "$(jget 'j["session"]')" != "$session" ] || fail "dev$V back with the same session"

# 5. SIGTERM while a SOCKS5 transfer runs to a device on each loop.
BIG=$((2 * 1024 * 1024 * 1024))
established() { [ "$(grep -c "CONNECT dev$1\.example\.com:16994 established" "$MPSD_LOG")" -gt "$2" ]; }
bytes_to_devices() { rest "$URL/api/v1/stats" >/dev/null && jget 'j["bytes_to_devices"]'; }
bytes_moved() { [ "$(bytes_to_devices)" -gt $(($1 + 8 * MIB)) ]; }
b0=$(bytes_to_devices)
for d in $A $B; do
    before=$(grep -c "CONNECT dev$d\.example\.com:16994 established" "$MPSD_LOG" || true)
    bg "long$d" python3 "$S5CLIENT" bulk --port "$SP" --timeout "$T" \
        --device "dev$d.example.com" --dport 16994 --bytes "$BIG" --seed "$d"
    LONG_PID[d]=$BG_PID
    wait_for $((10 * SLOW)) "the long transfer to dev$d" established "$d" "$before"
done
wait_for $((20 * SLOW)) "8 MiB more sent to devices" bytes_moved "$b0"
loop_stats
log "SIGTERM with transfers running to dev$A and dev$B: $(loops_text)"
before_l=$(grep -c -e "$LOOP_RE" "$MPSD_LOG" || true)
stop_mpsd
log "mpsd exited 0 in ${STOP_SECONDS} s with a transfer on each loop"
for d in $A $B; do
    bg_wait "${LONG_PID[$d]}" $((10 * SLOW)) || true
    out=$(cat "$TMPD/long$d.out")
    [ "${out%% *}" != ok ] || fail "a 2 GiB transfer finished before the stop: $out"
    log "the transfer to dev$d ended: $out"
done
if [ "$HAVE_W" = 1 ]; then
    [ "$(grep -c -e "$LOOP_RE" "$MPSD_LOG")" -ge $((before_l + W)) ] ||
        fail "no per-loop lines at exit: $(tail -n 5 "$MPSD_LOG")"
    read_loop_lines "$(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n "$W")"
    log "at exit: $(loops_text)"
fi
for ((i = 0; i < N; i++)); do kill "${SIM_PID[$i]}" 2>/dev/null || true; done

# ========================================================== 2. names across loops
printf 'otheruser:0th3r!\n' >>"$USERS"
UX=11111111222233334444000000000001 # hex as apfclient takes it
UY=11111111222233334444000000000002
utext() { echo "${1:0:8}-${1:8:4}-${1:12:4}-${1:16:4}-${1:20:12}"; }
declare -A DEV_PID
# claim ID FQDN UUID USER PASS: a scripted device (names.sh's) asks for FQDN on 16992 and 16994
# on a new connection; CLAIMED is its answer, DEV_LOOP[ID] its loop.
claim() {
    local id=$1 fqdn=$2 uuid=$3 user=$4 pass=$5
    rm -f "$TMPD/$id.ready" "$TMPD/$id.leave"
    : >"$TMPD/$id.events"
    bg "$id" python3 "$APFCLIENT" --port "$AMT_PORT" claim --fqdn "$fqdn" --uuid "$uuid" \
        --user "$user" --password "$pass" --ports 16992,16994 --tag "$id" \
        --events "$TMPD/$id.events" --ready-file "$TMPD/$id.ready" \
        --trigger-file "$TMPD/$id.leave" --seconds $((120 * SLOW)) --timeout "$T"
    DEV_PID[$id]=$BG_PID
    wait_for $((10 * SLOW)) "device $id to log in and register $fqdn" test -s "$TMPD/$id.ready"
    CLAIMED=$(cat "$TMPD/$id.ready")
}
who() { # who NAME: the TAG of the device that answered a GET through the http_proxy
    local code
    code=$(pcurl -o "$TMPD/who.body" -w '%{http_code}' "http://$1:16992/who") ||
        fail "curl through the proxy for $1"
    if [ "$code" = 200 ]; then awk '{ print $NF }' "$TMPD/who.body"; else echo "$code"; fi
}
expect_reached() { # expect_reached NAME ID WHY: the http_proxy, SOCKS5 and test_console
    local got before out
    got=$(who "$1")
    [ "$got" = "$2" ] || fail "$3: a GET for $1 reached '$got', expected $2"
    before=$(grep -c '^open 16994$' "$TMPD/$2.events" || true)
    out=$(apf console-echo --device "$1" --dport 16994 --timeout "$T")
    [ "$out" = ok ] || fail "$3: test_console echo to $1: $out"
    out=$(s5 echo --device "$1" --dport 16994 --bytes 3000)
    [ "$out" = ok ] || fail "$3: SOCKS5 echo to $1: $out"
    [ "$(grep -c '^open 16994$' "$TMPD/$2.events" || true)" -ge $((before + 2)) ] ||
        fail "$3: the echoes to $1 did not go to $2"
    log "$3: $1 reached device $2 (http_proxy, test_console, SOCKS5)"
}

workers_conf 2 "$CONSOLES"
start_workers 2
loop_stats
claim X x.example.com "$UX" amtuser 'P@ssw0rd'
[ "$CLAIMED" = "16992:ok 16994:ok" ] || fail "X asked for x.example.com: $CLAIMED"
loop_stats
placed X
DEV_LOOP[X]=$LOOP_OF
log "X (amtuser, $(utext "$UX")) holds x.example.com on loop ${DEV_LOOP[X]}"
expect_reached x.example.com X "the holder"
other_loop=""
for y in Y1 Y2; do
    claim "$y" x.example.com "$UY" otheruser '0th3r!'
    [ "$CLAIMED" = "16992:refused 16994:refused" ] ||
        fail "$y (another account and UUID) asked for x.example.com: $CLAIMED"
    loop_stats
    placed "$y"
    DEV_LOOP[$y]=$LOOP_OF
    [ "$LOOP_OF" = "${DEV_LOOP[X]}" ] || other_loop=$y
    log "$y (otheruser, $(utext "$UY")) on loop $LOOP_OF: refused"
    [ ! -s "$TMPD/$y.events" ] || fail "$y got channels: $(cat "$TMPD/$y.events")"
done
[ "$HAVE_W" = 0 ] || [ -n "$other_loop" ] ||
    fail "neither Y connection landed on another loop than X (${DEV_LOOP[X]})"
wait_log "$(refused_re "$(utext "$UY")" "$(utext "$UX")" x.example.com)"
log "logged: $(grep -m 1 -o "Intel remote client $(utext "$UY") (account otheruser) asked.*" "$MPSD_LOG")"
[ "$(stats_value "names refused")" = 4 ] || fail "names refused: $STATS"
expect_reached x.example.com X "after the refusals on both loops"

# X's reconnect (same UUID and account) on the next connection: the other loop, replacing X.
claim X2 x.example.com "$UX" amtuser 'P@ssw0rd'
[ "$CLAIMED" = "16992:ok 16994:ok" ] || fail "X's reconnect: $CLAIMED"
bg_wait "${DEV_PID[X]}" $((10 * SLOW)) || fail "the replaced session X is still up"
[ "$(cat "$TMPD/X.out")" = "disconnect 11" ] || fail "X ended with '$(cat "$TMPD/X.out")'"
wait_log "$(replaced_re x.example.com)"
# X left its loop, X2 joined another: that loop +1, X's -1, in devices and in tunnels.
x=${DEV_LOOP[X]}
x2=""
moved() {
    local k
    x2=""
    for ((k = 0; k < W; k++)); do
        [ "$k" = "$x" ] && continue
        [ "${LD[k]}" = $((PD[k] + 1)) ] && [ "${LT[k]}" = $((PT[k] + 1)) ] && x2=$k
    done
    [ -n "$x2" ] && [ "${LD[x]}" = $((PD[x] - 1)) ] && [ "${LT[x]}" = $((PT[x] - 1)) ]
}
if [ "$HAVE_W" = 1 ]; then
    loops_settle "X2 on another loop than X ($x), X gone from it" moved
    DEV_LOOP[X2]=$x2
    log "X2 on loop $x2 replaced X on loop $x: X got DISCONNECT 11"
fi
expect_reached x.example.com X2 "after the reconnect"
for y in Y1 Y2 X2; do
    touch "$TMPD/$y.leave"
    bg_wait "${DEV_PID[$y]}" $((15 * SLOW)) || fail "device $y: $(cat "$TMPD/$y.err")"
    [ "$(cat "$TMPD/$y.out")" = ok ] || fail "device $y ended with '$(cat "$TMPD/$y.out")'"
done
require_alive
stop_mpsd

# ================================================================== 3. Workers = auto
CPUS=$(nproc)
workers_conf auto "$CONSOLES"
start_workers "$CPUS"
for ((i = 0; i < 4; i++)); do
    device "$i"
done
loop_stats
[ "$LD_SUM" = 4 ] || fail "Workers = auto: the loops hold $LD_SUM devices, not 4: $(loops_text)"
for ((i = 0; i < 4; i++)); do
    out=$(s5 echo --device "dev$i.example.com" --dport 16994 --bytes 5000 --seed "$i")
    [ "$out" = ok ] || fail "Workers = auto: SOCKS5 echo to dev$i: $out"
done
log "Workers = auto ($CPUS CPUs): $(loops_text); a SOCKS5 echo to each of the 4 devices"
stop_mpsd

# ============================================ 4. a device that speaks first, on loop 1
# Its console cannot move (the device's bytes are in the pair before the splice): it stays on
# loop 0 and crosses through the pair, and the greeting arrives before the echo, byte-exact.
if [ "$HAVE_W" = 1 ]; then
    GREETING="HELLO from a device that speaks first"
    workers_conf 2 "$CONSOLES"
    start_workers 2
    device 20
    device 21 --greeting "$GREETING"
    [ "${DEV_LOOP[21]}" = 1 ] || fail "dev21 is on loop ${DEV_LOOP[21]}, not 1: $(loops_text)"
    for ((k = 0; k < 3; k++)); do
        out=$(s5 echo --device dev21.example.com --dport 16994 --bytes 30000 --seed "$k" \
            --expect-first "$GREETING")
        [ "$out" = ok ] || fail "SOCKS5 to dev21, which speaks first: $out"
    done
    out=$(s5 echo --device dev20.example.com --dport 16994 --bytes 30000)
    [ "$out" = ok ] || fail "SOCKS5 echo to dev20: $out"
    loop_stats
    moved=$(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n 1 |
        sed -n 's/.* \([0-9]*\) consoles moved here.*/\1/p')
    [ "${moved:-x}" = 0 ] || fail "consoles moved to loop 1: '$moved', expected 0 (dev21 spoke first)"
    log "dev21 on loop 1 speaks first: 3 SOCKS5 consoles got its greeting, then a 30000-byte" \
        "echo, through the pair (0 consoles moved); $(loops_text)"
    stop_mpsd
fi

if [ "$HAVE_W" = 0 ]; then
    fail "plumbing run only (WORKERS_PLUMBING=1): this mpsd has no Workers key"
fi
log "PASS"
