#!/bin/bash
# socks5.sh - the socks5 console module with the real mpsd, amtsim devices, curl and a raw client.
# SPDX-License-Identifier: Apache-2.0
#
# Three daemon runs: (A) defaults - curl, lookups, echo, pipelining, half-close, every refusal,
# 100 MB both ways, 1000 concurrent consoles; (B) HandshakeTimeout = 1s - silent consoles, a
# device that never answers CHANNEL_OPEN (0x06), oversized pipelining, no open proxy; (C)
# console authentication through auth_file (RFC 1929).
. "$(dirname "$0")/lib.sh"

S5CLIENT="$top_srcdir/tests/integration/socks5client.py"
[ -e "$MODDIR/socks5.so" ] || fail "$top_builddir/modules/socks5/.libs/socks5.so is missing"
command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed (the real console)"
    exit 77
}
# curl as the console, nothing else: no ~/.curlrc, no proxy or no_proxy from the environment.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
# 1000 consoles: mpsd and the client each need over 1000 descriptors.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 2500 ] ||
    fail "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)): 1000 consoles need about 2500"

SOCKS_PORT="" # set after each start from the ready file
T=$((30 * SLOW)) # bound of every network wait of the clients
UUID_BASE=8c6a3b2e-5d1f-4e7a-9b0c-000000000000

# s5 SCENARIO [ARGS]: run the raw client against the SOCKS5 port; prints its result line.
s5() {
    python3 "$S5CLIENT" --port "$SOCKS_PORT" --timeout "$T" "$@" || true
}

# expect_s5 RESULT SCENARIO [ARGS]: the client's result line is exactly RESULT.
expect_s5() {
    local want=$1 got
    shift
    got=$(s5 "$@")
    [ "$got" = "$want" ] || fail "socks5client $*: got '$got', expected '$want'"
    log "socks5client $1 ${*:2}: $got"
}

# hex TEXT: TEXT (printf %b escapes allowed) as hex digits, for the raw client.
hex() {
    printf '%b' "$1" | od -An -tx1 | tr -d ' \n'
}

# curl_s5 ARGS: curl through the SOCKS5 port (ARGS choose --socks5 or --socks5-hostname).
curl_s5() {
    curl -q -sS --max-time "$T" "$@"
}

# socks5_conf TIMEOUT [MORE]: the test config with a [module socks5] section listening on
# 127.0.0.1:0 (HandshakeTimeout when TIMEOUT is not empty, then the MORE lines). S5_LISTEN_IP
# and S5_LISTEN_PORT: the older SocksListenIP and SocksListenPort instead of Listen.
socks5_conf() {
    local listen="Listen = 127.0.0.1:0"
    if [ -n "${S5_LISTEN_IP:-}" ]; then
        listen="SocksListenIP = $S5_LISTEN_IP"$'\n'"SocksListenPort = $S5_LISTEN_PORT"
    fi
    CONF_EXTRA=$(printf '[module socks5]\n%s\n%s%s' "$listen" "${1:+HandshakeTimeout = $1
}" "${2:-}")
    write_conf
}

# start_socks5: start_mpsd, then SOCKS_PORT from the ready file.
start_socks5() {
    start_mpsd
    SOCKS_PORT=$(ready_port socks5)
}

# start_sim NAME COUNT FQDN PORTS UUID_BASE: amtsim devices in the background, forwarding;
# SIM_PID[NAME] is the process.
declare -A SIM_PID
start_sim() {
    local name=$1 count=$2
    bg "$name" "$AMTSIM" --port "$AMT_PORT" --count "$count" --fqdn "$3" --ports "$4" \
        --uuid-base "$5" --quiet --ready-file "$TMPD/$name.ready"
    SIM_PID[$name]=$BG_PID
    wait_for $((20 * SLOW)) "$count $name devices forwarding" \
        grep -qxs "$count" "$TMPD/$name.ready"
}

# stats: SIGUSR1, then STAT_OPENED / STAT_CLOSED from the new statistics line.
STAT_LINES=0
stats_newer() { [ "$(grep -c 'statistics: ' "$MPSD_LOG")" -gt "$STAT_LINES" ]; }
stats() {
    STAT_LINES=$(grep -c 'statistics: ' "$MPSD_LOG" || true)
    kill -USR1 "$MPSD_PID"
    wait_for $((10 * SLOW)) "a statistics line" stats_newer
    local line
    line=$(grep 'statistics: ' "$MPSD_LOG" | tail -n 1)
    STAT_OPENED=$(sed -n 's/.*console connections opened \([0-9]*\), closed [0-9]*;.*/\1/p' \
        <<<"$line")
    STAT_CLOSED=$(sed -n 's/.*console connections opened [0-9]*, closed \([0-9]*\);.*/\1/p' \
        <<<"$line")
    if [ -z "$STAT_OPENED" ] || [ -z "$STAT_CLOSED" ]; then
        fail "cannot read statistics: $line"
    fi
}

# ================================================ option values that stop mpsd at startup
# check_bad_option TIMEOUT MORE PATTERN: mpsd exits with status 1 and logs PATTERN.
check_bad_option() {
    local rc=0 what=$2
    [ -z "$1" ] || what="HandshakeTimeout = $1"
    socks5_conf "$1" "$2"
    bg badrun "$MPSD" -c "$CONF"
    bg_wait "$BG_PID" $((10 * SLOW)) || rc=$?
    [ "$rc" = 1 ] || fail "mpsd with '$what': exit status $rc, expected 1"
    grep -q -e "$3" "$TMPD/badrun.err" ||
        fail "mpsd with '$what' did not log /$3/: $(cat "$TMPD/badrun.err")"
    log "mpsd refuses '$what': $(grep -m 1 -e "$3" "$TMPD/badrun.err" | sed 's/^\[[^]]*\] //')"
}
check_bad_option "" "AllowedPorts = 16992 abc" 'AllowedPorts: "abc" is not a port number'
check_bad_option "" "AllowedPorts = 16992,0" 'AllowedPorts: "0" is not a port number'
check_bad_option "" "AllowedPorts = 65536" 'AllowedPorts: "65536" is not a port number'
check_bad_option "" "AllowedPorts = 16992;16993" 'AllowedPorts: "16992;16993" is not a port'
check_bad_option "" 'AllowedPorts = " , "' "AllowedPorts: lists no port"
# mpsd -t finds them too, with file:line.
"$MPSD" -t -c "$CONF" >"$TMPD/t.out" 2>&1 && fail "mpsd -t accepted 'AllowedPorts = \" , \"'"
grep -q "mps.conf:[0-9]*: AllowedPorts: lists no port" "$TMPD/t.out" ||
    fail "mpsd -t did not name file:line: $(cat "$TMPD/t.out")"
log "mpsd -t: $(grep -m 1 AllowedPorts "$TMPD/t.out")"
check_bad_option 0 "" "HandshakeTimeout must be between 1ms and 24h, got 0ms"

# A host name as SocksListenIP is resolved once at start (as the reference MPS does): a name
# that resolves listens on its address(es). The older key has no port 0: a reserved port.
reserve_port NAMED_PORT
S5_LISTEN_IP=localhost S5_LISTEN_PORT=$NAMED_PORT socks5_conf ""
start_mpsd
named=$(ready_addr socks5)
named+=$(awk '$1 == "socks5" && ++n > 1 { printf " %s", $2 }' "$READY_FILE")
for a in $named; do
    case $a in
    "127.0.0.1:$NAMED_PORT" | "[::1]:$NAMED_PORT") ;;
    *) fail "SocksListenIP = localhost: listening on $a, expected 127.0.0.1 or [::1]:$NAMED_PORT" ;;
    esac
    grep -qF "[socks5] listening on $a" "$MPSD_LOG" || fail "no '[socks5] listening on $a'"
done
stop_mpsd
log "SocksListenIP = localhost: started, listened on $named (ready file and log)"
# A name that does not resolve (.invalid never does, at once) stops mpsd, naming file:line.
S5_LISTEN_IP=no-such-host.invalid S5_LISTEN_PORT=$NAMED_PORT socks5_conf ""
line=$(grep -n '^SocksListenIP = no-such-host\.invalid$' "$CONF" | cut -d: -f1)
rc=0
bg badrun "$MPSD" -c "$CONF"
bg_wait "$BG_PID" $((10 * SLOW)) || rc=$?
[ "$rc" = 1 ] ||
    fail "mpsd with 'SocksListenIP = no-such-host.invalid': exit status $rc, expected 1"
grep -q "mps\.conf:$line: .*no-such-host\.invalid" "$TMPD/badrun.err" ||
    fail "mpsd with an unresolvable SocksListenIP did not log mps.conf:$line and the name:" \
        "$(cat "$TMPD/badrun.err")"
log "mpsd refuses 'SocksListenIP = no-such-host.invalid':" \
    "$(grep -m 1 "no-such-host" "$TMPD/badrun.err" | sed 's/^\[[^]]*\] //')"

# ======================================================================= run A: defaults
socks5_conf ""
# Per-connection DEBUG lines for 1000+ consoles only slow a sanitizer build down.
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_socks5
start_sim sim 100 'dev%d.example.com' 16992,16994 "$UUID_BASE"
start_sim only16992 1 'only16992-%d.example.com' 16992 8c6a3b2e-5d1f-4e7a-9b0c-0000000a0000

# --- 1. curl: remote name resolution by FQDN and by UUID; local resolution (IPv4 ATYP).
body=$(curl_s5 --socks5-hostname "127.0.0.1:$SOCKS_PORT" http://dev1.example.com:16992/wsman) ||
    fail "curl --socks5-hostname dev1.example.com:16992 failed"
[ "$body" = "amtsim dev1.example.com 8c6a3b2e-5d1f-4e7a-9b0c-000000000001 /wsman" ] ||
    fail "curl by FQDN: body '$body'"
log "curl --socks5-hostname by FQDN: $body"
body=$(curl_s5 --socks5-hostname "127.0.0.1:$SOCKS_PORT" \
    http://8c6a3b2e-5d1f-4e7a-9b0c-000000000007:16992/by-uuid) ||
    fail "curl --socks5-hostname by UUID failed"
[ "$body" = "amtsim dev7.example.com 8c6a3b2e-5d1f-4e7a-9b0c-000000000007 /by-uuid" ] ||
    fail "curl by UUID: body '$body'"
log "curl --socks5-hostname by UUID: $body"
assert_log "CONNECT dev1.example.com:16992 established"

# No device registered 127.0.0.1: an IPv4 request must not reach anything.
if curl_s5 --socks5 "127.0.0.1:$SOCKS_PORT" http://127.0.0.1:16992/ >"$TMPD/curl.out" 2>&1; then
    fail "curl --socks5 to 127.0.0.1:16992 succeeded with no such device: $(cat "$TMPD/curl.out")"
fi
log "curl --socks5 127.0.0.1:16992 with no such device fails: $(tail -n 1 "$TMPD/curl.out")"
expect_s5 "reply 0x04 closed" request --atyp ipv4 --device 127.0.0.1 --dport 16992
expect_s5 "reply 0x04 closed" request --atyp ipv6 --device ::1 --dport 16992
# Devices whose registered "FQDN" is an IP text: 127.0.0.0, 127.0.0.1 and ::0, ::1.
start_sim ipv4 2 '127.0.0.%d' 16992,16994 8c6a3b2e-5d1f-4e7a-9b0c-0000000b0000
start_sim ipv6 2 '::%d' 16992 8c6a3b2e-5d1f-4e7a-9b0c-0000000c0000
body=$(curl_s5 --socks5 "127.0.0.1:$SOCKS_PORT" http://127.0.0.1:16992/ipv4) ||
    fail "curl --socks5 to the device registered as 127.0.0.1 failed"
[ "$body" = "amtsim 127.0.0.1 8c6a3b2e-5d1f-4e7a-9b0c-0000000b0001 /ipv4" ] ||
    fail "curl --socks5 127.0.0.1: body '$body'"
log "curl --socks5 (IPv4 ATYP) to the device named 127.0.0.1: $body"
body=$(curl_s5 --socks5 "127.0.0.1:$SOCKS_PORT" 'http://[::1]:16992/ipv6') ||
    fail "curl --socks5 to the device registered as ::1 failed"
[ "$body" = "amtsim ::1 8c6a3b2e-5d1f-4e7a-9b0c-0000000c0001 /ipv6" ] ||
    fail "curl --socks5 [::1]: body '$body'"
log "curl --socks5 (IPv6 ATYP) to the device named ::1: $body"
expect_s5 "reply 0x00 echo ok" request --atyp ipv4 --device 127.0.0.1 --dport 16994 --bytes 4096

# --- 2. raw client: echo, pipelining, half-close.
expect_s5 "reply 0x00 echo ok" request --device dev2.example.com --dport 16994 --bytes 5000
expect_s5 "ok" echo --device dev2.example.com --dport 16994 --bytes 6000 --pipelined
expect_s5 "ok" echo --device DEV3.EXAMPLE.COM --dport 16994 --bytes 60000 --pipelined --seed 3
expect_s5 "ok eof" echo --device dev4.example.com --dport 16994 --bytes 7000 --half-close
# A console that half-closes before reading (nc -N, HTTP/1.0 scripts) still gets the answer
# the device sent before it saw the channel's CLOSE.
expect_s5 "ok eof" echo --device dev4.example.com --dport 16994 --bytes 3000 --eof-first
assert_log "CONNECT dev2.example.com:16994 established (6000 bytes pipelined)"
# The console's EOF reaches the device (as CHANNEL_CLOSE: APF has no half-close) after every
# byte sent before it, also when it came before the reply; a device that records what it
# gets shows it, and the console's origin address it was told.
bg rec python3 "$S5CLIENT" device --mode record --amt-port "$AMT_PORT" --timeout "$T" \
    --fqdn rec.example.com --uuid 5a5a5a5a-0000-0000-0000-0000000000aa --ports 16994 \
    --seconds $((600 * SLOW)) --ready-file "$TMPD/rec.ready" --log-file "$TMPD/rec.log"
rec_pid=$BG_PID
wait_for $((10 * SLOW)) "the recording device" test -e "$TMPD/rec.ready"
seed=10
for how in --half-close --pipelined --early-eof; do
    seed=$((seed + 1))
    out=$(s5 send --device rec.example.com --dport 16994 --bytes 5000 --seed $seed \
        ${how#--half-close})
    case $out in
    "sent 5000 sha256 "*" eof") ;;
    *) fail "send 5000 bytes then SHUT_WR ($how): $out" ;;
    esac
    sha=$(cut -d ' ' -f 4 <<<"$out")
    wait_for $((10 * SLOW)) "the device to get 5000 bytes then CLOSE ($how)" \
        grep -q ": 5000 bytes sha256 $sha, closed by the server" "$TMPD/rec.log"
    origin=$(grep ": 5000 bytes sha256 $sha," "$TMPD/rec.log" |
        sed 's/^channel [0-9]* from \([^ ]*\): .*/\1/')
    assert_log "console $origin: CONNECT rec.example.com:16994 established"
    log "half-close $how: the device got all 5000 bytes from $origin, then the close"
done

# --- 3. every refusal; each closes the connection after its reply.
expect_s5 "reply 0x04 closed" request --device nosuch.example.com --dport 16994
expect_s5 "reply 0x04 closed" request --device 8c6a3b2e-5d1f-4e7a-9b0c-0000deadbeef --dport 16994
expect_s5 "reply 0x05 closed" request --device only16992-0.example.com --dport 16994
expect_s5 "reply 0x05 closed" request --device ::1 --atyp ipv6 --dport 16994
expect_s5 "reply 0x02 closed" request --device dev1.example.com --dport 22
expect_s5 "reply 0x02 closed" request --device dev1.example.com --dport 80
# Policy first: a port outside AllowedPorts does not reveal whether the device exists.
expect_s5 "reply 0x02 closed" request --device nosuch.example.com --dport 22
expect_s5 "reply 0x02 closed" request --device nosuch.example.com --dport 80
expect_s5 "reply 0x07 closed" request --device dev1.example.com --dport 16994 --cmd 2
expect_s5 "reply 0x07 closed" request --device dev1.example.com --dport 16994 --cmd 3
expect_s5 "reply 0x07 closed" request --device dev1.example.com --dport 16994 --cmd 0x09
expect_s5 "reply 0x08 closed" request --atyp 5 --device-hex 7f000001 --dport 16994
# A name that is no device name (NUL, space) must not match a prefix of itself.
expect_s5 "reply 0x04 closed" request --device-hex "$(hex dev1.example.com)00" --dport 16994
expect_s5 "reply 0x04 closed" request --device "dev1.example.com x" --dport 16994
expect_s5 "reply 0x04 closed" request --device "" --dport 16994
# Offered methods without "no authentication" (GSSAPI only) while none is required: 0xFF.
expect_s5 "method 0xff closed" request --methods 1 --device dev1.example.com
# Not SOCKS5: closed without a single byte of reply.
expect_s5 "closed" raw --hex 04013e807f00000100  # SOCKS4 CONNECT
expect_s5 "closed" raw --hex "$(hex 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')"
expect_s5 "closed" raw --hex 160301002e  # a TLS ClientHello's first bytes
# A malformed request (version 4 after a good greeting): method answer, then closed.
expect_s5 "got 0500" raw --hex 050100040100500a000001
assert_log "refused (reply 0x04): device not connected"
assert_log "refused (reply 0x05): the device does not forward this port"
assert_log "nosuch.example.com:22 refused (reply 0x02): port 22 is not in AllowedPorts"
assert_log "refused (reply 0x07): command 0x02 is not supported"
assert_log "refused (reply 0x08): unknown address type"
assert_log "(invalid name):16994 refused (reply 0x04): the name is not a device name"
assert_log "not a SOCKS5 client: closed"
assert_log "malformed SOCKS5 request: closed"
assert_log "offers no acceptable authentication method"
require_alive
expect_s5 "reply 0x00 echo ok" request --device dev6.example.com --dport 16994 --bytes 2048
log "a good console is still served after the refusals"

# --- 5. 100 MB of random data both ways at once, compared by SHA-256.
t0=$SECONDS
out=$(s5 bulk --device dev8.example.com --dport 16994 --bytes $((100 * 1024 * 1024)) --seed 8)
[ "${out%% *}" = ok ] || fail "100 MB echo: $out"
log "100 MB echoed byte for byte in $((SECONDS - t0)) s: $out"

# --- 6. 1000 concurrent consoles over the 100 devices, all open at the same time.
stats
open_before=$((STAT_OPENED - STAT_CLOSED))
opened_before=$STAT_OPENED
bg multi python3 "$S5CLIENT" --port "$SOCKS_PORT" --timeout "$T" multi \
    --device 'dev%d.example.com' --devices 100 --conns 1000 --dport 16994 --bytes 1024 \
    --ready-file "$TMPD/multi.ready" --trigger-file "$TMPD/multi.go" --wait $((60 * SLOW))
multi=$BG_PID
multi_ready() {
    [ -e "$TMPD/multi.ready" ] && return 0
    kill -0 "$multi" 2>/dev/null || fail "multi client ended early: $(cat "$TMPD/multi.out" \
        "$TMPD/multi.err")"
    return 1
}
wait_for $((90 * SLOW)) "1000 consoles established and echoed" multi_ready
stats
[ $((STAT_OPENED - STAT_CLOSED - open_before)) -ge 1000 ] ||
    fail "statistics while 1000 consoles are held: opened $STAT_OPENED, closed $STAT_CLOSED"
log "while held: channels opened $STAT_OPENED, closed $STAT_CLOSED (1000 open at once)"
touch "$TMPD/multi.go"
bg_wait "$multi" $((60 * SLOW)) || fail "multi client: $(cat "$TMPD/multi.out" "$TMPD/multi.err")"
out=$(cat "$TMPD/multi.out")
[ "${out%% (*}" = "ok 1000" ] || fail "1000 concurrent consoles: $out"
log "1000 concurrent consoles: $out"
all_closed() {
    stats
    [ $((STAT_OPENED - STAT_CLOSED)) -eq "$open_before" ]
}
wait_for $((30 * SLOW)) "the 1000 channels closed" all_closed
[ $((STAT_OPENED - opened_before)) -eq 1000 ] ||
    fail "expected 1000 more channels, statistics say $((STAT_OPENED - opened_before))"
log "afterwards: channels opened $STAT_OPENED, closed $STAT_CLOSED"
[ "$(grep -c 'CONNECT dev[0-9]*\.example\.com:16994 established' "$MPSD_LOG")" -ge 1000 ] ||
    fail "fewer than 1000 'established' lines"
for s in "${!SIM_PID[@]}"; do
    kill -0 "${SIM_PID[$s]}" 2>/dev/null || fail "amtsim $s died: $(tail -n 5 "$TMPD/$s.err")"
done
require_alive
expect_s5 "reply 0x00 echo ok" request --device dev9.example.com --dport 16994 --bytes 1024
stop_mpsd
bg_wait "$rec_pid" $((20 * SLOW)) ||
    fail "recording device: $(cat "$TMPD/rec.out" "$TMPD/rec.err")"
[ "$(cat "$TMPD/rec.out")" = "opens 3 disconnect 11" ] ||
    fail "recording device: $(cat "$TMPD/rec.out"), expected 'opens 3 disconnect 11'"
kill "${SIM_PID[@]}" 2>/dev/null || true
SIM_PID=()

# ================================================== run B: HandshakeTimeout = 1s, no open proxy
# A local TCP server on a port in AllowedPorts: mpsd must never connect to it, by any name.
bg trap python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, peer = s.accept()
    print("accepted %s:%d" % peer, flush=True)
    c.close()
' "$TMPD/trap.port"
trap_pid=$BG_PID
wait_for $((10 * SLOW)) "the trap listener" test -s "$TMPD/trap.port"
TRAP_PORT=$(cat "$TMPD/trap.port")
socks5_conf 1s "AllowedPorts = 16992, 16994 $TRAP_PORT"
start_socks5
start_sim simb 1 'b%d.example.com' 16992,16994 8c6a3b2e-5d1f-4e7a-9b0c-0000000d0000
bg mute python3 "$S5CLIENT" device --mode mute --amt-port "$AMT_PORT" --timeout "$T" \
    --fqdn mute.example.com --ports 16994 --seconds $((120 * SLOW)) \
    --ready-file "$TMPD/mute.ready" --count-file "$TMPD/mute.count"
mute=$BG_PID
wait_for $((10 * SLOW)) "the mute device" test -e "$TMPD/mute.ready"

# Silent consoles are closed by HandshakeTimeout (1 s), not at once, and within a few s.
# check_silent ANSWER [--hex BYTES]: what the server answers (or "") before it closes.
check_silent() {
    local want=$1 out secs
    shift
    out=$(s5 silent "$@" --timeout $((10 * SLOW)))
    case $out in
    "closed "*) [ -z "$want" ] || fail "silent console $*: $out, expected '$want' first" ;;
    "got "*" closed "*) [ "${out% closed *}" = "$want" ] || fail "silent console $*: $out" ;;
    *) fail "silent console ${*:-(nothing sent)}: $out" ;;
    esac
    secs=${out##* }
    # 0.8 s allows for timer granularity; the upper bound is "a few seconds".
    python3 -c "import sys; sys.exit(not 0.8 <= float(sys.argv[1]) <= 3.0 * $SLOW)" "$secs" ||
        fail "silent console ${*:-(nothing sent)}: $out, expected a close after about 1 s"
    log "silent console ${*:-(nothing sent)}: $out"
}
check_silent ""
check_silent "" --hex 05                     # half a greeting
check_silent "got 0500" --hex 050100         # greeting, then no request
check_silent "got 0500" --hex 0501000501     # greeting and a partial request
check_silent "got 0502" --hex 05010201       # method 2 chosen, then half an auth message
assert_log "SOCKS negotiation not completed within 1000 ms: closed"

# A device that never answers the channel open: 0x06 after HandshakeTimeout.
expect_s5 "reply 0x06 closed" request --device mute.example.com --dport 16994
assert_log "refused (reply 0x06): the device did not answer within 1000 ms"
wait_for $((10 * SLOW)) "the mute device's CHANNEL_OPEN" grep -qx 1 "$TMPD/mute.count"

# More than 64 KiB pipelined before the reply: the method answer, then closed without a reply
# (the channel open is pending at the mute device, so the reply cannot come first).
expect_s5 "got 0500" raw --hex "0501000501000310$(hex mute.example.com)4262" --fill $((128 * 1024))
assert_log "sent more than 65536 bytes before its reply: closed"
# Just under the limit is kept (then the channel open times out: 0x06).
expect_s5 "reply 0x06" echo --device mute.example.com --dport 16994 --bytes 60000 --pipelined

# Not an open proxy: the trap's port is allowed, but no device has that name.
expect_s5 "reply 0x04 closed" request --atyp ipv4 --device 127.0.0.1 --dport "$TRAP_PORT"
expect_s5 "reply 0x04 closed" request --device 127.0.0.1 --dport "$TRAP_PORT"
expect_s5 "reply 0x04 closed" request --device localhost --dport "$TRAP_PORT"
expect_s5 "reply 0x02 closed" request --device b0.example.com --dport 16993
[ ! -s "$TMPD/trap.out" ] || fail "mpsd connected to a local server: $(cat "$TMPD/trap.out")"
log "no connection reached the local server on allowed port $TRAP_PORT"
require_alive
expect_s5 "reply 0x00 echo ok" request --device b0.example.com --dport 16994 --bytes 1024
# Stop with the mute device's channel opens still pending: a clean exit all the same.
stop_mpsd
bg_wait "$mute" $((20 * SLOW)) || fail "mute device: $(cat "$TMPD/mute.out" "$TMPD/mute.err")"
[ "$(cat "$TMPD/mute.out")" = "opens 3 disconnect 11" ] ||
    fail "mute device: $(cat "$TMPD/mute.out"), expected 'opens 3 disconnect 11'"
log "mute device: $(cat "$TMPD/mute.out")"
kill "${SIM_PID[@]}" "$trap_pid" 2>/dev/null || true
SIM_PID=()

# ============================================= run C: console authentication (RFC 1929)
CONSOLE_AUTH=1 socks5_conf ""
start_socks5
start_sim simc 2 'c%d.example.com' 16992,16994 8c6a3b2e-5d1f-4e7a-9b0c-0000000e0000
body=$(curl_s5 --socks5-hostname "127.0.0.1:$SOCKS_PORT" --proxy-user 'consoleuser:C0nsole!' \
    http://c1.example.com:16992/auth) || fail "curl with the right credentials failed"
[ "$body" = "amtsim c1.example.com 8c6a3b2e-5d1f-4e7a-9b0c-0000000e0001 /auth" ] ||
    fail "curl with credentials: body '$body'"
log "curl --proxy-user consoleuser:C0nsole!: $body"
body=$(curl_s5 -x "socks5h://consoleuser:C0nsole%21@127.0.0.1:$SOCKS_PORT" \
    http://c0.example.com:16992/url) || fail "curl with credentials in the proxy URL failed"
[ "${body#amtsim c0.example.com }" != "$body" ] || fail "curl socks5h://user:pass@: '$body'"
if curl_s5 --socks5-hostname "127.0.0.1:$SOCKS_PORT" --proxy-user 'consoleuser:wrong' \
    http://c1.example.com:16992/ >"$TMPD/curl.out" 2>&1; then
    fail "curl with a wrong password succeeded: $(cat "$TMPD/curl.out")"
fi
log "curl with a wrong password fails: $(tail -n 1 "$TMPD/curl.out")"
if curl_s5 --socks5-hostname "127.0.0.1:$SOCKS_PORT" http://c1.example.com:16992/ \
    >"$TMPD/curl.out" 2>&1; then
    fail "curl without credentials succeeded: $(cat "$TMPD/curl.out")"
fi
log "curl without credentials fails: $(tail -n 1 "$TMPD/curl.out")"
expect_s5 "auth 0x01 closed" request --methods 0,2 --user consoleuser --password wrong \
    --device c1.example.com
expect_s5 "auth 0x01 closed" request --methods 2 --user nobody --password 'C0nsole!' \
    --device c1.example.com
expect_s5 "method 0xff closed" request --methods 0 --device c1.example.com
expect_s5 "reply 0x00 echo ok" request --methods 0,2 --user consoleuser --password 'C0nsole!' \
    --device c1.example.com --dport 16994 --bytes 4096
# Greeting, auth, request and data in one send().
expect_s5 "ok" echo --methods 2 --user consoleuser --password 'C0nsole!' \
    --device c0.example.com --dport 16994 --bytes 5000 --pipelined
# A NUL in the user name is refused (status 0x01), not cut to "consoleuser".
expect_s5 "got 05020101" raw --hex "0501020110$(hex consoleuser)007878787808$(hex 'C0nsole!')"
assert_log "user \"consoleuser\" denied"
assert_log "user \"nobody\" denied"
assert_log "offers no acceptable authentication method (username/password required): closed"
assert_log "malformed username/password message: closed"
assert_log "established as \"consoleuser\""
require_alive
stop_mpsd
kill "${SIM_PID[@]}" 2>/dev/null || true
log "PASS"
