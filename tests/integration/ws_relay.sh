#!/bin/bash
# ws_relay.sh - the ws_relay module (WebSocket relay for browser consoles) with the real mpsd,
# amtsim devices and wsclient.py (a raw RFC 6455 client).
# SPDX-License-Identifier: Apache-2.0
#
# Runs: (A) Auth = off: handshakes good and bad, MeshCommander's webrelay.ashx, the refusals
# (403, 404, 502), 100 MB both ways, hostile frames and their close codes, ping, close,
# fragments, text, SOL on 16994, idle connections' memory, 1001 at shutdown; (B) Basic through
# the console realm and tokens from TokenFile (header and ?token=, scopes, HUP reload, a bad
# file kept out); (C) HeadTimeout and IdleTimeout of 1 s, a small MaxFrameSize, AllowOrigin;
# (D) wss:// through the tls module (Serve = ws_relay).
. "$(dirname "$0")/lib.sh"

WSCLIENT="$top_srcdir/tests/integration/wsclient.py"
[ -e "$MODDIR/ws_relay.so" ] || fail "$top_builddir/modules/ws_relay/.libs/ws_relay.so is missing"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

T=$((30 * SLOW)) # bound of every network wait of the client
WS_PORT=""
UUID_BASE=8c6a3b2e-5d1f-4e7a-9b0c-000000000000
DEV=dev0.example.com

# ws SCENARIO [ARGS]: wsclient.py against the relay; prints its result line.
ws() {
    python3 "$WSCLIENT" --port "$WS_PORT" --timeout "$T" "$@" || true
}

# expect_ws RESULT SCENARIO [ARGS]: the client's result line is exactly RESULT.
expect_ws() {
    local want=$1 got
    shift
    got=$(ws "$@")
    local what="$*"
    [ "${#what}" -le 160 ] || what="${what:0:160}..."
    [ "$got" = "$want" ] || fail "wsclient $what: got '$got', expected '$want'"
    log "wsclient $what: $got"
}

# relay_conf [LINES...]: the test configuration with a [module ws_relay] on 127.0.0.1:0.
relay_conf() {
    CONF_EXTRA=$(
        echo "[module ws_relay]"
        echo "Listen = 127.0.0.1:0"
        local l
        for l in "$@"; do
            echo "$l"
        done
        printf '%s' "${RELAY_EXTRA:-}"
    )
    write_conf
}

start_relay() {
    start_mpsd
    WS_PORT=$(ready_port ws_relay)
}

# start_sim NAME COUNT FQDN PORTS UUID_BASE: amtsim devices in the background, forwarding.
start_sim() {
    local name=$1 count=$2
    bg "$name" "$AMTSIM" --port "$AMT_PORT" --count "$count" --fqdn "$3" --ports "$4" \
        --uuid-base "$5" --quiet --max-data 16384 --window 262144 \
        --ready-file "$TMPD/$name.ready"
    wait_for $((20 * SLOW)) "$count $name devices forwarding" \
        grep -qxs "$count" "$TMPD/$name.ready"
}

# rss_kb: the daemon's resident set size in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$MPSD_PID/status"; }

# ================================================================ A. Auth = off
NO_AUTH=1 TRACE_LEVELS="INFO|ERROR|WARNING" relay_conf "Auth = off"
start_relay
assert_log "\[ws_relay\] WebSocket relay, authorization off"
start_sim sim 2 'dev%d.example.com' 16992,16994 "$UUID_BASE"
start_sim only 1 'only16992.example.com' 16992 8c6a3b2e-5d1f-4e7a-9b0c-000000000100

# --- A.1 the handshake (RFC 6455 4.2): the accept key, the subprotocol, every refusal.
expect_ws "101" handshake
expect_ws "101" handshake --path "/relay/${UUID_BASE%000}001/16994"
expect_ws "101 protocol binary" handshake --protocol "binary, base64" --protocol other
expect_ws "400" handshake --no-key
expect_ws "400" handshake --no-key --header "Sec-WebSocket-Key: c2hvcnQ="
expect_ws "400" handshake --header "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
expect_ws "426 version=13" handshake --version 8
expect_ws "404" handshake --path /
expect_ws "404" handshake --path /relay/$DEV
expect_ws "404" handshake --path /relay/$DEV/16994/more
expect_ws "400" handshake --path /relay/$DEV/0
expect_ws "400" handshake --path "/relay/bad%20name/16994"
expect_ws "403" handshake --path /relay/$DEV/22
expect_ws "403" handshake --path /relay/nosuchdevice.example.com/22
expect_ws "404" handshake --path /relay/nosuchdevice.example.com/16994
expect_ws "502" handshake --path /relay/only16992.example.com/16994
expect_ws "405 allow=GET" raw --text "POST /relay/$DEV/16994 HTTP/1.1\r\nHost: x\r\n\r\n"
expect_ws "426" raw --text "GET /relay/$DEV/16994 HTTP/1.1\r\nHost: x\r\n\r\n"
expect_ws "505" raw --text "GET /relay/$DEV/16994 HTTP/1.0\r\nHost: x\r\n\r\n"
expect_ws "400" raw --text "this is not HTTP\r\n\r\n"
long=$(head -c 20000 /dev/zero | tr '\0' a)
expect_ws "431" raw --text "GET /relay/$DEV/16994 HTTP/1.1\r\nX: $long\r\n\r\n"
# MeshCommander's URL (p=2: a redirection session, tls=0: bytes as they are).
expect_ws "sol ok" sol --path "/webrelay.ashx?p=2&host=$DEV&port=16994&tls=0"
expect_ws "sol ok" sol --path "/mc/webrelay.ashx?host=$DEV&port=16994&p=2&tls=0&tls1only=0"
expect_ws "501" handshake --path "/webrelay.ashx?p=2&host=$DEV&port=16994&tls=1"
expect_ws "501" handshake --path "/webrelay.ashx?p=2&host=$DEV&port=16994&serverauth=1&user=a"
expect_ws "400" handshake --path "/webrelay.ashx?p=2&port=16994"
expect_ws "400" handshake --path "/webrelay.ashx?p=7&host=$DEV&port=16994"
expect_ws "400" handshake --path "/webrelay.ashx?host=$DEV&host=other&port=16994"
assert_log "console 127.0.0.1:[0-9]*: 501 tls=1 asks the relay to speak TLS to Intel AMT"
assert_log "console 127.0.0.1:[0-9]*: 404 device nosuchdevice.example.com is not connected"
assert_log "console 127.0.0.1:[0-9]*: 502 device only16992.example.com does not forward port 16994"

# --- A.2 a console reaches SOL on 16994 (amtsim echoes there), by name and by the relay path.
expect_ws "sol ok" sol
assert_log "relay $DEV:16994 as anonymous open"
# Every close says why in its log line (a browser that vanished too).
wait_log "relay $DEV:16994 as anonymous closed (0): the browser left without a close frame"

# --- A.3 control frames, the close handshake, fragments, text.
expect_ws "pong ok echo ok" ping --payload "ping payload"
expect_ws "pong ok echo ok" ping --payload ""
expect_ws "close 1000 eof" close --code 1000
expect_ws "close 4000 eof" close --code 4000
wait_log "relay $DEV:16994 as anonymous closed (4000): the browser closed; "
expect_ws "close none eof" close --code 0
expect_ws "ok" fragments
expect_ws "ok binary" text --payload "h\u00e9llo, text frames are relayed as bytes"

# --- A.4 hostile frames: the right close code, then the end of the stream.
for k in unmasked opcode fragctl rsv longctl cont newdata badclose msb; do
    expect_ws "close 1002 eof" hostile --kind "$k"
done
expect_ws "close 1009 eof" hostile --kind oversized --max-frame 1048576
expect_ws "close 1007 eof" hostile --kind badutf8
assert_log "unmasked frame from the client: closed with 1002"
require_alive

# --- A.5 100 MB each way at once, byte for byte (SHA-256), big frames.
t0=$SECONDS
out=$(ws bulk --bytes $((100 * 1024 * 1024)) --frame $((1024 * 1024)) --seed 7)
[ "${out%% *}" = ok ] || fail "100 MB through the relay: $out"
[[ $out = *" close 1000" ]] || fail "100 MB through the relay: no close handshake: $out"
log "100 MB both ways in $((SECONDS - t0)) s: $out"
# Small frames too (64 KiB, the browser's usual), over the second device.
out=$(ws bulk --path /relay/dev1.example.com/16994 --bytes $((8 * 1024 * 1024)) --frame 65536)
[ "${out%% *}" = ok ] || fail "8 MB in 64 KiB frames: $out"
log "8 MB in 64 KiB frames: $out"

# --- A.6 backpressure: a browser that sends 64 MiB and reads nothing is stopped (the device's
# echo fills the browser's direction, the channel's window closes, the device stops reading),
# and mpsd's memory does not follow what the browser pushes.
rss0=$(rss_kb)
rm -f "$TMPD/stall.ready" "$TMPD/stall.stop"
bg stall python3 "$WSCLIENT" --port "$WS_PORT" --timeout "$T" stall --bytes $((64 << 20)) \
    --frame 65536 --ready-file "$TMPD/stall.ready" --stop-file "$TMPD/stall.stop"
stall=$BG_PID
wait_for $((60 * SLOW)) "the sender to stall" test -e "$TMPD/stall.ready"
stalled=$(cat "$TMPD/stall.ready")
rss1=$(rss_kb)
touch "$TMPD/stall.stop"
bg_wait "$stall" $((60 * SLOW)) || fail "stall: $(cat "$TMPD/stall.err")"
out=$(cat "$TMPD/stall.out")
[ "${out% *}" = "ok stalled at" ] || fail "stall: $out"
log "a browser that does not read stalls after $((stalled >> 10)) KiB sent; mpsd RSS $rss0 -> $rss1 KiB"
[ "$stalled" -lt $((32 << 20)) ] || fail "the sender was not stopped before 32 MiB ($stalled)"
[ $((rss1 - rss0)) -lt $((8192 * SLOW)) ] || fail "RSS grew by $((rss1 - rss0)) KiB while stalled"

# --- A.7 memory per idle relayed connection: 1000 open WebSockets, RSS before and while held.
N=1000
before=$(rss_kb)
rm -f "$TMPD/hold.ready" "$TMPD/hold.stop"
bg hold python3 "$WSCLIENT" --port "$WS_PORT" --timeout $((120 * SLOW)) hold --conns $N \
    --ready-file "$TMPD/hold.ready" --stop-file "$TMPD/hold.stop"
hold=$BG_PID
wait_for $((120 * SLOW)) "$N WebSockets open" test -e "$TMPD/hold.ready"
held=$(rss_kb)
per=$(((held - before) * 1024 / N))
log "RSS $before KiB before, $held KiB with $N idle relays: $per bytes per relayed connection"
echo "$per" >"$TMPD/per-connection"
touch "$TMPD/hold.stop"
bg_wait "$hold" $((60 * SLOW)) || fail "holding $N WebSockets: $(cat "$TMPD/hold.err")"
[ "$(cat "$TMPD/hold.out")" = "held $N" ] || fail "hold: $(cat "$TMPD/hold.out")"
# The bound covers the core's TCP stream and channel and the module's connection; a sanitizer
# build pads every allocation.
[ "$per" -lt $((16384 * SLOW)) ] || fail "$per bytes per idle relayed connection"

# --- A.8 shutdown with a WebSocket open: the browser hears 1001.
opened() { grep -c "relay $DEV:16994 as anonymous open" "$MPSD_LOG" || true; }
opened_more() { [ "$(opened)" -gt "$1" ]; }
opened_before=$(opened)
bg idle python3 "$WSCLIENT" --port "$WS_PORT" --timeout "$T" idle
idle=$BG_PID
wait_for $((10 * SLOW)) "the idle relay open" opened_more "$opened_before"
stop_mpsd
bg_wait "$idle" $((10 * SLOW)) || fail "the idle client did not end"
grep -q "^close 1001 after" "$TMPD/idle.out" || fail "at shutdown: $(cat "$TMPD/idle.out")"
log "at shutdown the browser heard: $(cat "$TMPD/idle.out")"
for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true

# ================================================================ B. authorization
TOKENS="$TMPD/tokens"
tok_relay="relay-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tok_read="read-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tok_admin="admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tok_new="new-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
{
    echo "# ws_relay test tokens"
    echo "console relay $(digest "$tok_relay")"
    echo "grafana read $(digest "$tok_read")"
    echo "ops admin $(digest "$tok_admin")"
} >"$TOKENS"
CONSOLE_AUTH=1 NO_AUTH=1 relay_conf "TokenFile = $TOKENS"
start_relay
assert_log "\[ws_relay\] 3 tokens from $TOKENS"
start_sim sim 1 'dev%d.example.com' 16992,16994 "$UUID_BASE"

expect_ws "401 challenge=Basic,Bearer" handshake
expect_ws "sol ok" sol --basic consoleuser:C0nsole!
expect_ws "401 challenge=Basic,Bearer" handshake --basic consoleuser:wrong
expect_ws "401 challenge=Basic,Bearer" handshake --header "Authorization: Digest x=1"
expect_ws "sol ok" sol --bearer "$tok_relay"
expect_ws "sol ok" sol --bearer "$tok_admin"
expect_ws "401 challenge=Basic,Bearer" handshake --bearer "$tok_relay-x"
expect_ws "403" handshake --bearer "$tok_read"
expect_ws "sol ok" sol --path "/relay/$DEV/16994?token=$tok_relay"
expect_ws "sol ok" sol --path "/webrelay.ashx?p=2&host=$DEV&port=16994&tls=0&token=$tok_relay"
expect_ws "401 challenge=Basic,Bearer" handshake --path "/relay/$DEV/16994?token=wrong"
expect_ws "403" handshake --path "/relay/$DEV/16994?token=$tok_read"
# Authorization comes before the policy and the lookup: nothing is told to a stranger.
expect_ws "401 challenge=Basic,Bearer" handshake --path /relay/nosuch.example.com/22
expect_ws "403" handshake --path /relay/nosuch.example.com/22 --bearer "$tok_relay"
assert_log 'relay dev0.example.com:16994 as token "console" open'
assert_log 'relay dev0.example.com:16994 as user "consoleuser" open'
assert_log '403 token "grafana" does not have the relay scope'
for t in "$tok_relay" "$tok_read" "$tok_admin"; do
    ! grep -q -e "$t" "$MPSD_LOG" || fail "a token appears in the log"
done
log "no token appears in the log"

# HUP: a new file takes effect; a bad one is refused with its line and the old one stays.
echo "newcomer relay $(digest "$tok_new")" >"$TOKENS.new"
mv "$TOKENS.new" "$TOKENS"
kill -HUP "$MPSD_PID"
wait_log "\[ws_relay\] reload: 1 tokens from $TOKENS"
expect_ws "sol ok" sol --bearer "$tok_new"
expect_ws "401 challenge=Basic,Bearer" handshake --bearer "$tok_relay"
printf 'newcomer relay %s\nbroken relay nothex\n' "$(digest "$tok_new")" >"$TOKENS.new"
mv "$TOKENS.new" "$TOKENS"
kill -HUP "$MPSD_PID"
wait_log "\[ws_relay\] TokenFile $TOKENS:2: the digest is not 64 hex digits"
wait_log "\[ws_relay\] reload: keeping the 1 tokens loaded before"
expect_ws "sol ok" sol --bearer "$tok_new"
stop_mpsd
for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true

# A TokenFile with a bad line stops the start, naming the line.
printf 'ok relay %s\nbad\n' "$(digest "$tok_new")" >"$TOKENS"
NO_AUTH=1 relay_conf "TokenFile = $TOKENS"
rc=0
"$MPSD" -c "$CONF" >"$TMPD/badstart.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "mpsd started with a bad TokenFile"
grep -q "TokenFile $TOKENS:2: too few fields" "$TMPD/badstart.log" ||
    fail "bad TokenFile at start: $(cat "$TMPD/badstart.log")"
log "a bad TokenFile stops the start: $(grep -m1 TokenFile "$TMPD/badstart.log")"
# Auth = on with nothing to check credentials against is refused.
NO_AUTH=1 relay_conf "Auth = on"
rc=0
"$MPSD" -c "$CONF" >"$TMPD/badstart.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "Auth = on needs a TokenFile" "$TMPD/badstart.log" ||
    fail "Auth = on without a way to check: $(cat "$TMPD/badstart.log")"
# An AllowOrigin entry with a path can never match what a browser sends: refused by mpsd -t.
NO_AUTH=1 relay_conf "Auth = off" "AllowOrigin = https://console.example/app"
rc=0
"$MPSD" -t -c "$CONF" >"$TMPD/badstart.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q 'AllowOrigin: "https://console.example/app" is not an origin' \
    "$TMPD/badstart.log" || fail "AllowOrigin with a path: $(cat "$TMPD/badstart.log")"
log "mpsd -t refuses an AllowOrigin entry with a path"

# ================================================================ C. timeouts, MaxFrameSize, AllowOrigin
NO_AUTH=1 relay_conf "Auth = off" "HeadTimeout = 1s" "IdleTimeout = 1s" "MaxFrameSize = 1000" \
    "AllowOrigin = https://console.example:8443, http://console.example"
start_relay
start_sim sim 1 'dev%d.example.com' 16992,16994 "$UUID_BASE"
# Pages of listed origins (scheme and host in any case) and programs that send no Origin get
# through; another site's page is refused before anything else is looked at.
expect_ws "sol ok" sol
expect_ws "sol ok" sol --origin "HTTPS://Console.Example:8443"
expect_ws "sol ok" sol --origin ""
expect_ws "403" handshake --origin "https://evil.example"
expect_ws "403" handshake --origin "https://console.example"
expect_ws "400" handshake --header "Origin: http://console.example"
wait_log "origin https://evil.example is not in AllowOrigin"
expect_ws "close 1009 eof" hostile --kind oversized --max-frame 1000
expect_ws "pong ok echo ok" ping --payload "$(head -c 125 /dev/zero | tr '\0' p)"
out=$(ws idle)
[ "$out" = "close 1000 after 1" ] || fail "IdleTimeout = 1s: $out"
log "IdleTimeout = 1s: $out"
t0=$(date +%s%N)
out=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /relay/dev0.example.com/16994 HTTP/1.1\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())' "$WS_PORT")
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$out" = "HTTP/1.1 408 Request Timeout" ] || fail "HeadTimeout: $out"
[ "$ms" -ge 900 ] && [ "$ms" -lt $((5000 * SLOW)) ] || fail "HeadTimeout = 1s answered after $ms ms"
log "HeadTimeout = 1s: '$out' after $ms ms"
stop_mpsd
for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true

# ================================================================ D. wss:// (tls, Serve = ws_relay)
if command -v openssl >/dev/null 2>&1; then
    make_certs
    RELAY_EXTRA=$(printf '\n%s' "$(tls_section "Serve = ws_relay")")
    NO_AUTH=1 relay_conf "Auth = off"
    start_relay
    WSS_PORT=$(ready_port tls)
    assert_log "\[tls\] serving ws_relay"
    start_sim sim 1 'dev%d.example.com' 16992,16994 "$UUID_BASE"
    out=$(python3 "$WSCLIENT" --port "$WSS_PORT" --timeout "$T" --tls --cafile "$CERTS/ca.pem" \
        --host localhost sol || true)
    [ "$out" = "sol ok" ] || fail "wss://: $out"
    out=$(python3 "$WSCLIENT" --port "$WSS_PORT" --timeout "$T" --tls bulk \
        --bytes $((16 * 1024 * 1024)) || true)
    [ "${out%% *}" = ok ] || fail "16 MB over wss://: $out"
    log "wss:// through the tls module: sol ok, 16 MB: $out"
    stop_mpsd
fi
log "PASS"
