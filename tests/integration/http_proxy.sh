#!/bin/bash
# http_proxy.sh - the http_proxy module, driven by curl and a raw client: forwarding, keep-alive,
# pipelining, 100 MB bodies, CONNECT, every error reply, console auth, IdleTimeout, 1000 consoles.
# SPDX-License-Identifier: Apache-2.0
#
# Run A (no console auth, IdleTimeout longer than any wait, so a close seen is never the idle
# timer's): amtsim's 100 devices (HTTP on 16992/16993, echo on
# 16994) plus a scripted device (httpclient.py device) registered as 10.99.0.7 whose web server
# answers oddly on purpose, and a decoy TCP listener on 127.0.0.1 that must never be reached.
# Run B (console auth, IdleTimeout 2s, MaxChannelsPerDevice 2): 407s, idle closes, 504, 503.
. "$(dirname "$0")/lib.sh"

if ! command -v curl >/dev/null 2>&1; then
    echo "SKIP: curl is needed"
    exit 77
fi
[ -e "$MODDIR/http_proxy.so" ] || fail "http_proxy.so is missing from $top_builddir/modules"

HTTPCLIENT="$top_srcdir/tests/integration/httpclient.py"
HP="" PROXY="" # http_proxy's port and URL: set_proxy after each start
T=$((30 * SLOW)) # bound of every network wait and transfer
SCRIPTED=10.99.0.7

uuid() { printf '8c6a3b2e-5d1f-4e7a-9b0c-%012x' "$1"; }
set_proxy() {
    HP=$(ready_port http_proxy)
    PROXY="http://127.0.0.1:$HP"
}
pcurl() { curl -sS --max-time "$T" -x "$PROXY" "$@"; }
hc() { python3 "$HTTPCLIENT" --port "$HP" --timeout "$T" "$@"; }
# code OPTS... URL: the HTTP status curl got (the CONNECT's when -p), body in $TMPD/body.
code() {
    local fmt='%{http_code}'
    case " $* " in *" -p "*) fmt='%{http_connect}' ;; esac
    curl -s --max-time "$T" -x "$PROXY" -o "$TMPD/body" -w "$fmt" "$@" || true
}
expect_code() { # expect_code WANT WHAT OPTS... URL
    local want=$1 what=$2 got
    shift 2
    got=$(code "$@")
    [ "$got" = "$want" ] || fail "$what: status $got, expected $want (body: $(head -c 200 \
        "$TMPD/body" 2>/dev/null))"
    log "$what: $got"
}
# expect_send FIRST_LINE WHAT send-args...: httpclient send's first line is FIRST_LINE
# ("STATUS close" also wants the response to say Connection: close). Output in SEND_OUT.
expect_send() {
    local want=$1 what=$2 out
    shift 2
    out=$(hc send "$@")
    [ "$(head -n 1 <<<"$out")" = "$want" ] || fail "$what: got '$out', expected '$want'"
    if [ "${want##* }" = close ] && ! grep -qx 'header: Connection: close' <<<"$out"; then
        fail "$what: closed without saying Connection: close: $out"
    fi
    log "$what: $(head -n 1 <<<"$out")"
    SEND_OUT=$out
}
opened() { grep -c "Channel between .* and management console .* opened" "$MPSD_LOG" || true; }
closed() { grep -c "Channel between .* and management console .* closed" "$MPSD_LOG" || true; }
channels_settled() { [ "$(opened)" = "$(closed)" ]; }
# opened_by PORT: channels opened for the console connection from local port PORT.
opened_by() { grep -c "management console 127\.0\.0\.1:$1 opened" "$MPSD_LOG" || true; }

# ------------------------------------------------------------------------------- run A
# The decoy: a listener on an allowed port of 127.0.0.1 that logs every connection it gets.
: >"$TMPD/decoy.log"
bg decoy python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("ready %d" % s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    with open(sys.argv[1], "a") as f:
        f.write("connection from %s:%d\n" % peer)
    c.close()
' "$TMPD/decoy.log"
decoy=$BG_PID
wait_port DECOY_PORT "$TMPD/decoy.out" "ready " "the decoy listener"
# AllowCONNECT must name mpsd's own two ports before it binds them: ports held for the test,
# which mpsd binds all the same (see reserve_port in lib.sh).
reserve_port AMT_HELD
reserve_port HP_HELD
CORE_LISTEN=127.0.0.1:$AMT_HELD CONF_EXTRA="[module http_proxy]
HttpListenIP = 127.0.0.1
HttpListenPort = $HP_HELD
AllowCONNECT = 16992 16993 16994 16995 623 664 5900 $DECOY_PORT $AMT_HELD $HP_HELD
IdleTimeout = $((2 * T))s" write_conf
start_mpsd
set_proxy
[ "$AMT_PORT" = "$AMT_HELD" ] && [ "$HP" = "$HP_HELD" ] ||
    fail "mpsd listens on $AMT_PORT and $HP, not on the ports held for it ($AMT_HELD, $HP_HELD)"
bg sim "$AMTSIM" --port "$AMT_PORT" --count 100 --ports 16992,16993,16994 --quiet \
    --ready-file "$TMPD/sim.ready"
sim=$BG_PID
bg scripted python3 "$HTTPCLIENT" device --amt-port "$AMT_PORT" --fqdn "$SCRIPTED" \
    --ports 16992 --seconds 600 --timeout "$T" --ready-file "$TMPD/scripted.ready"
scripted=$BG_PID
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 100 ]; }
wait_for $((30 * SLOW)) "100 amtsim devices forwarding" sim_ready
wait_for $((10 * SLOW)) "the scripted device" test -e "$TMPD/scripted.ready"

# 1. Absolute-URI requests: by FQDN (any case), by UUID, HEAD, a small POST, HTTP/1.0.
out=$(pcurl http://dev1.example.com:16992/wsman)
[ "$out" = "amtsim dev1.example.com $(uuid 1) /wsman" ] || fail "GET by FQDN: '$out'"
log "GET by FQDN: $out"
out=$(pcurl "http://$(uuid 3):16992/by-uuid?q=1")
[ "$out" = "amtsim dev3.example.com $(uuid 3) /by-uuid?q=1" ] || fail "GET by UUID: '$out'"
log "GET by UUID: $out"
out=$(pcurl http://DEV4.Example.COM:16992/upper)
[ "$out" = "amtsim dev4.example.com $(uuid 4) /upper" ] || fail "GET by upper-case FQDN: '$out'"
log "GET by upper-case FQDN"
out=$(pcurl -0 http://dev2.example.com:16992/http10)
[ "$out" = "amtsim dev2.example.com $(uuid 2) /http10" ] || fail "HTTP/1.0 GET: '$out'"
log "HTTP/1.0 GET"
out=$(pcurl -I http://dev1.example.com:16992/head | tr -d '\r')
get_body="amtsim dev1.example.com $(uuid 1) /head"
grep -q '^HTTP/1.1 200 OK$' <<<"$out" || fail "HEAD: $out"
grep -q "^Content-Length: $((${#get_body} + 1))\$" <<<"$out" ||
    fail "HEAD: no Content-Length of the GET body: $out"
grep -q '^Proxy-support: Session-Based-Authentication$' <<<"$out" ||
    fail "HEAD: no Proxy-support header: $out"
log "HEAD: 200 with the GET's Content-Length and Proxy-support"
# No body may follow a HEAD response: the next response on the connection must parse.
expect_send "200 then=200" "HEAD, then GET on the same connection" \
    --data 'HEAD http://dev1.example.com:16992/head HTTP/1.1\r\nHost: dev1.example.com:16992\r\n\r\n' \
    --then http://dev1.example.com:16992/after-head --then-expect ' /after-head'
out=$(pcurl --data-binary 'hello through the proxy' http://dev1.example.com:16992/post)
[ "$out" = "hello through the proxy" ] || fail "small POST: '$out'"
log "small POST echoed"

# What reaches the device: origin form, Host, no hop-by-hop or proxy credentials.
pcurl -o "$TMPD/seen" --proxy-user someone:secret -H 'Connection: X-Drop' -H 'X-Drop: 1' \
    -H 'Keep-Alive: 300' -H 'TE: trailers' -H 'X-Keep: 2' "http://$SCRIPTED:16992/echo-head" ||
    fail "GET to the scripted device failed"
tr -d '\r' <"$TMPD/seen" >"$TMPD/seen.txt"
head -n 1 "$TMPD/seen.txt" | grep -qx 'GET /echo-head HTTP/1.1' ||
    fail "request line at the device: $(head -n 1 "$TMPD/seen.txt")"
grep -qx "Host: $SCRIPTED:16992" "$TMPD/seen.txt" || fail "no Host at the device: $(cat "$TMPD/seen.txt")"
grep -qx 'X-Keep: 2' "$TMPD/seen.txt" || fail "X-Keep lost: $(cat "$TMPD/seen.txt")"
grep -qx 'Connection: keep-alive' "$TMPD/seen.txt" || fail "Connection: $(cat "$TMPD/seen.txt")"
if grep -qi '^\(proxy-authorization\|proxy-connection\|x-drop\|keep-alive\|te\):' "$TMPD/seen.txt"; then
    fail "hop-by-hop header reached the device: $(cat "$TMPD/seen.txt")"
fi
[ "$(grep -ci '^connection:' "$TMPD/seen.txt")" = 1 ] || fail "Connection headers: $(cat "$TMPD/seen.txt")"
log "the device got origin form, Host, no hop-by-hop headers, no Proxy-Authorization"
out=$(pcurl -D - -o /dev/null "http://$SCRIPTED:16992/hop" | tr -d '\r')
grep -q '^X-Public: yes$' <<<"$out" || fail "response header lost: $out"
if grep -qi '^\(x-private\|keep-alive\):' <<<"$out"; then
    fail "hop-by-hop response header passed on: $out"
fi
log "hop-by-hop response headers dropped"
expect_send "200 then=200" "100 Continue passed on" \
    --data "GET http://$SCRIPTED:16992/continue HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n" \
    --then "http://$SCRIPTED:16992/after-continue" --then-expect 'scripted /after-continue'
grep -qx 'interim: 100' <<<"$SEND_OUT" || fail "no 100 Continue: $SEND_OUT"
grep -qx 'body: final after 100' <<<"$SEND_OUT" || fail "final response: $SEND_OUT"

# 2. Keep-alive: one curl run, three URLs on one device: one connection, one channel.
out=$(pcurl -o "$TMPD/ka_#1" -w '%{num_connects} %{local_port}\n' \
    "http://dev5.example.com:16992/ka[1-3]")
[ "$(awk '{ n += $1 } END { print n }' <<<"$out")" = 1 ] || fail "keep-alive: connects $out"
[ "$(awk '{ print $2 }' <<<"$out" | sort -u | wc -l)" = 1 ] || fail "keep-alive: ports $out"
for i in 1 2 3; do
    [ "$(cat "$TMPD/ka_$i")" = "amtsim dev5.example.com $(uuid 5) /ka$i" ] ||
        fail "keep-alive body $i: $(cat "$TMPD/ka_$i")"
done
port=$(awk 'NR == 1 { print $2 }' <<<"$out")
[ "$(opened_by "$port")" = 1 ] || fail "keep-alive: $(opened_by "$port") channels for one device"
log "three requests to one device: one console connection, one channel"
# Two devices in one run: still one console connection, a channel each.
out=$(pcurl -o "$TMPD/two_#1" -w '%{num_connects} %{local_port}\n' \
    "http://dev{6,7}.example.com:16992/two")
[ "$(awk '{ n += $1 } END { print n }' <<<"$out")" = 1 ] || fail "two devices: connects $out"
port=$(awk 'NR == 1 { print $2 }' <<<"$out")
[ "$(cat "$TMPD/two_6")" = "amtsim dev6.example.com $(uuid 6) /two" ] || fail "dev6: $(cat "$TMPD/two_6")"
[ "$(cat "$TMPD/two_7")" = "amtsim dev7.example.com $(uuid 7) /two" ] || fail "dev7: $(cat "$TMPD/two_7")"
[ "$(opened_by "$port")" = 2 ] || fail "two devices: $(opened_by "$port") channels, expected 2"
assert_log "client dev6\.example\.com and management console 127\.0\.0\.1:$port opened"
assert_log "client dev7\.example\.com and management console 127\.0\.0\.1:$port opened"
log "two devices in one run: one console connection, two channels"

# 3. Pipelining: GET, POST with a body, GET in one send; answered in order.
out=$(hc pipeline --device dev8.example.com --uuid "$(uuid 8)")
[ "$out" = ok ] || fail "pipelining: $out"
log "three pipelined requests answered in order"

# 4. 100 MB both ways: Content-Length, chunked, and raw through CONNECT.
BIG=$((100 * 1024 * 1024))
head -c "$BIG" /dev/urandom >"$TMPD/big"
got=$(pcurl -o "$TMPD/big.cl" -w '%{http_code}' --data-binary @"$TMPD/big" \
    http://dev9.example.com:16992/big) || fail "100 MB POST: curl failed"
[ "$got" = 200 ] || fail "100 MB POST: status $got"
cmp -s "$TMPD/big" "$TMPD/big.cl" || fail "100 MB POST (Content-Length): the echo differs"
rm -f "$TMPD/big.cl"
log "100 MB POST with Content-Length echoed byte for byte"
got=$(pcurl -o "$TMPD/big.chunked" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$TMPD/big" http://dev10.example.com:16992/big) ||
    fail "100 MB chunked POST: curl failed"
[ "$got" = 200 ] || fail "100 MB chunked POST: status $got"
cmp -s "$TMPD/big" "$TMPD/big.chunked" || fail "100 MB POST (chunked): the echo differs"
rm -f "$TMPD/big.chunked" "$TMPD/big"
log "100 MB chunked POST echoed byte for byte"
out=$(hc connect-echo --target dev11.example.com:16994 --bytes "$BIG" --pipelined)
[ "$out" = ok ] || fail "100 MB through CONNECT: $out"
log "100 MB each way through CONNECT to 16994 (first bytes pipelined with the CONNECT)"
if [ "$SLOW" = 1 ]; then # sanitizer builds keep freed memory in quarantine
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$MPSD_PID/status")
    [ "$hwm" -lt $((64 * 1024)) ] || fail "mpsd peaked at $hwm kB: bodies were buffered"
    log "mpsd peak RSS ${hwm} kB after 400 MB of bodies"
fi

# 5. CONNECT to 16993 (amtsim speaks plain HTTP there): curl -p tunnels, then GETs.
got=$(pcurl -p -o "$TMPD/tunnel" -w '%{http_connect} %{http_code}' \
    http://dev12.example.com:16993/through-tunnel) || fail "CONNECT 16993: curl failed"
[ "$got" = "200 200" ] || fail "CONNECT 16993: $got"
[ "$(cat "$TMPD/tunnel")" = "amtsim dev12.example.com $(uuid 12) /through-tunnel" ] ||
    fail "CONNECT 16993: $(cat "$TMPD/tunnel")"
log "CONNECT to 16993 carries the console's own HTTP"

# 6. Errors.
expect_code 403 "port 22" http://dev1.example.com:22/
grep -q 22 "$TMPD/body" || fail "403 body does not name the port: $(cat "$TMPD/body")"
expect_code 403 "port 22 of an unknown device (policy first)" http://nosuch.example.com:22/
expect_code 403 "port 80 (the default)" http://dev1.example.com/
expect_code 403 "CONNECT to port 22" -p http://dev1.example.com:22/
expect_send "403 then=200" "403 keeps the connection" \
    --data 'GET http://dev1.example.com:22/ HTTP/1.1\r\nHost: dev1.example.com:22\r\n\r\n' \
    --then http://dev1.example.com:16992/after-403 --then-expect ' /after-403'
expect_code 502 "unknown device" http://nosuch.example.com:16992/wsman
[ "$(cat "$TMPD/body")" = "device nosuch.example.com is not connected" ] ||
    fail "502 body: $(cat "$TMPD/body")"
expect_code 502 "CONNECT to an unknown device" -p http://nosuch.example.com:16994/
expect_send "502 then=200" "502 (unknown device) keeps the connection" \
    --data 'GET http://nosuch.example.com:16992/ HTTP/1.1\r\nHost: nosuch.example.com:16992\r\n\r\n' \
    --then http://dev1.example.com:16992/after-502 --then-expect ' /after-502'
expect_code 502 "port the device does not forward" http://dev1.example.com:5900/
expect_code 502 "CONNECT to a port the device does not forward" -p http://dev1.example.com:5900/
expect_send "502 then=200" "502 (not forwarded) keeps the connection" \
    --data 'GET http://dev1.example.com:5900/ HTTP/1.1\r\nHost: dev1.example.com:5900\r\n\r\n' \
    --then http://dev1.example.com:16992/after-5900 --then-expect ' /after-5900'
expect_send "502 then=200" "channel lost before the response: 502, connection kept" \
    --data "GET http://$SCRIPTED:16992/lost HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n" \
    --then "http://$SCRIPTED:16992/after-lost" --then-expect 'scripted /after-lost'
expect_send "502 then=200" "channel lost inside the response head: 502, connection kept" \
    --data "GET http://$SCRIPTED:16992/partial HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n" \
    --then "http://$SCRIPTED:16992/after-partial" --then-expect 'scripted /after-partial'
expect_send "502 close" "malformed device response: 502 and close" \
    --data "GET http://$SCRIPTED:16992/malformed HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n"
rc=0
pcurl -o "$TMPD/cut" "http://$SCRIPTED:16992/cut" 2>/dev/null || rc=$?
[ "$rc" = 18 ] || fail "response cut short: curl exit $rc, expected 18 (partial transfer)"
[ "$(cat "$TMPD/cut")" = 0123456789 ] || fail "response cut short: got '$(cat "$TMPD/cut")'"
log "response cut short by the device: the console connection is closed after the 10 bytes"
expect_send "200 close" "body delimited by the channel's end" \
    --data "GET http://$SCRIPTED:16992/eof HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n"
grep -qx 'body: until the channel ends' <<<"$SEND_OUT" || fail "EOF-delimited body: $SEND_OUT"
expect_send "200 close" "device's Connection: close" \
    --data "GET http://$SCRIPTED:16992/close HTTP/1.1\r\nHost: $SCRIPTED:16992\r\n\r\n"
grep -qx 'body: closed' <<<"$SEND_OUT" || fail "Connection: close body: $SEND_OUT"

curl_direct=$(curl -s --max-time "$T" -o /dev/null -w '%{http_code}' "$PROXY/wsman" || true)
[ "$curl_direct" = 400 ] || fail "origin form from curl: $curl_direct"
log "origin form (the proxy asked as a server): 400"
expect_send "400 close" "origin form" --data 'GET /wsman HTTP/1.1\r\nHost: dev1.example.com:16992\r\n\r\n'
expect_send "400 close" "garbage (a TLS ClientHello)" \
    --data '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n'
expect_send "400 close" "https:// absolute URI" \
    --data 'GET https://dev1.example.com:16993/ HTTP/1.1\r\nHost: dev1.example.com:16993\r\n\r\n'
expect_send "400 close" "ftp:// absolute URI" \
    --data 'GET ftp://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\n\r\n'
expect_send "400 close" "user info in the URI" \
    --data 'GET http://u:p@dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com\r\n\r\n'
expect_send "400 close" "Content-Length and chunked" \
    --data 'POST http://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
expect_send "400 close" "bad chunk size" \
    --data 'POST http://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'
expect_send "400 close" "chunk data without its CRLF" \
    --data 'POST http://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n'
expect_send "400 close" "blank before a header colon" \
    --data 'POST http://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'
big_header=$(head -c 70000 /dev/zero | tr '\0' a)
expect_code 431 "70000-byte header" -H "X-Big: $big_header" http://dev1.example.com:16992/
many_headers=()
for i in $(seq 1 130); do many_headers+=(-H "X-H$i: v"); done
expect_code 431 "130 headers" "${many_headers[@]}" http://dev1.example.com:16992/
expect_send "431 close" "huge head from the raw client" \
    --data "GET http://dev1.example.com:16992/ HTTP/1.1\r\nX-Big: $big_header\r\n\r\n"
expect_send "505 close" "HTTP/2.0 request line" \
    --data 'GET http://dev1.example.com:16992/ HTTP/2.0\r\nHost: dev1.example.com:16992\r\n\r\n'

# Nothing but a device is ever connected to, even on an allowed port.
for target in "127.0.0.1:$DECOY_PORT" "localhost:$DECOY_PORT" "[::1]:$DECOY_PORT" "127.0.0.1:$HP" \
    "127.0.0.1:$AMT_PORT" "127.0.0.1:16992"; do
    expect_code 502 "not a device: $target" "http://$target/"
    expect_code 502 "CONNECT to not a device: $target" -p "http://$target/"
done
[ ! -s "$TMPD/decoy.log" ] || fail "mpsd connected to the decoy: $(cat "$TMPD/decoy.log")"
log "the decoy listener on 127.0.0.1:$DECOY_PORT was never connected to"
out=$(pcurl "http://$SCRIPTED:16992/by-ip")
[ "$out" = "scripted /by-ip" ] || fail "device registered as an IP text: '$out'"
log "a device registered as $SCRIPTED is reachable by that text"

# Log lines: each error at WARNING with the console's address and the request.
assert_log "\[LM WARNING\] \[http_proxy\] console 127\.0\.0\.1:[0-9]*: GET http://nosuch\.example\.com:16992/wsman: 502 device nosuch\.example\.com is not connected"
assert_log "\[LM DEBUG\] \[http_proxy\] console 127\.0\.0\.1:[0-9]*: GET http://dev1\.example\.com:16992"

# 7. 1000 console connections at once over the 100 devices, two requests each.
wait_for $((10 * SLOW)) "channels of the tests above to close" channels_settled
before=$(opened)
out=$(hc many --device 'dev%d.example.com' --devices 100 --conns 1000 --timeout $((60 * SLOW)))
[ "$out" = "ok 1000" ] || fail "1000 consoles: $out"
require_alive
opened_at_least() { [ "$(opened)" -ge "$1" ]; } # re-counted on every poll
wait_for $((10 * SLOW)) "1000 channel opens in the log" opened_at_least $((before + 1000))
[ "$(opened)" = $((before + 1000)) ] || fail "1000 consoles opened $(($(opened) - before)) channels"
wait_for $((30 * SLOW)) "all channels closed" channels_settled
log "1000 concurrent consoles, 2 requests each on 1000 channels; all channels closed"

kill -0 "$sim" 2>/dev/null || fail "amtsim died: $(tail -5 "$TMPD/sim.err")"
kill -0 "$scripted" 2>/dev/null || fail "the scripted device died: $(cat "$TMPD/scripted.out" \
    "$TMPD/scripted.err")"
kill -0 "$decoy" 2>/dev/null || fail "the decoy died: $(cat "$TMPD/decoy.err")"
stop_mpsd
for p in "$sim" "$scripted" "$decoy"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
done

# ------------------------------------------------------------------------------- run B
CONSOLE_AUTH=1 CORE_EXTRA="MaxChannelsPerDevice = 2" CONF_EXTRA="[module http_proxy]
Listen = 127.0.0.1:0
IdleTimeout = 2s" write_conf
start_mpsd
set_proxy
# dev0 for the checks one at a time, dev1 for the channel limit, dev2 for the idle tunnel.
bg sim "$AMTSIM" --port "$AMT_PORT" --count 3 --ports 16992,16993,16994 --quiet \
    --ready-file "$TMPD/sim.ready"
sim=$BG_PID
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 3 ]; }
wait_for $((20 * SLOW)) "3 amtsim devices forwarding" sim_ready
CRED=consoleuser:C0nsole!

# No IdleTimeout after CONNECT: a tunnel idle for more than twice IdleTimeout still echoes.
bg idle_tunnel python3 "$HTTPCLIENT" --port "$HP" --timeout "$T" connect-echo \
    --target dev2.example.com:16994 --auth "$CRED" --idle 5 --bytes 65536
idle_tunnel=$BG_PID

# 407 and the Proxy-Authenticate challenge; the right and the wrong password.
got=$(curl -s --max-time "$T" -x "$PROXY" -D "$TMPD/h407" -o /dev/null -w '%{http_code}' \
    http://dev0.example.com:16992/auth || true)
[ "$got" = 407 ] || fail "no credentials: status $got"
grep -q '^Proxy-Authenticate: Basic realm="mpsd"' "$TMPD/h407" ||
    fail "407 without the challenge: $(cat "$TMPD/h407")"
log "no credentials: 407 with Proxy-Authenticate: Basic realm=\"mpsd\""
out=$(pcurl --proxy-user "$CRED" http://dev0.example.com:16992/auth)
[ "$out" = "amtsim dev0.example.com $(uuid 0) /auth" ] || fail "with --proxy-user: '$out'"
log "with --proxy-user: 200"
expect_code 407 "wrong password" --proxy-user consoleuser:wrong http://dev0.example.com:16992/
expect_code 407 "unknown user" --proxy-user nobody:C0nsole! http://dev0.example.com:16992/
expect_code 407 "CONNECT without credentials" -p http://dev0.example.com:16993/
got=$(pcurl -p --proxy-user "$CRED" -o "$TMPD/tunnel" -w '%{http_connect} %{http_code}' \
    http://dev1.example.com:16993/auth-tunnel) || fail "CONNECT with credentials: curl failed"
[ "$got" = "200 200" ] || fail "CONNECT with credentials: $got"
[ "$(cat "$TMPD/tunnel")" = "amtsim dev1.example.com $(uuid 1) /auth-tunnel" ] ||
    fail "CONNECT with credentials: $(cat "$TMPD/tunnel")"
log "CONNECT with credentials: 200, tunnel works"
expect_send "407 then=200" "407 keeps the connection for the retry" \
    --data 'GET http://dev0.example.com:16992/a HTTP/1.1\r\nHost: dev0.example.com:16992\r\n\r\n' \
    --then http://dev0.example.com:16992/retry --then-auth "$CRED" --then-expect ' /retry'
expect_send "407 then=200" "malformed Proxy-Authorization: 407" \
    --data 'GET http://dev0.example.com:16992/a HTTP/1.1\r\nHost: dev0.example.com:16992\r\nProxy-Authorization: Basic !!!!\r\n\r\n' \
    --then http://dev0.example.com:16992/retry2 --then-auth "$CRED" --then-expect ' /retry2'
expect_send "407 close" "407 for a request with an unread body closes" \
    --data 'POST http://dev0.example.com:16992/a HTTP/1.1\r\nHost: dev0.example.com:16992\r\nContent-Length: 5\r\n\r\nhello'

# IdleTimeout = 2s: silent connection, idle after a response, slow head, stalled body.
AUTHZ="Proxy-Authorization: Basic $(printf %s "$CRED" | base64)"
check_idle() { # check_idle WHAT WANT_STATUS DATA (WANT_STATUS: a regex; - for no reply)
    local out secs
    out=$(hc idle --data "$3")
    [ "${out%% *}" = closed ] || fail "$1: $out"
    secs=${out#closed }
    secs=${secs%% *}
    [[ "${out##* }" =~ ^($2)$ ]] || fail "$1: $out, expected status $2"
    awk -v s="$secs" -v max=$((2 + 3 * SLOW)) 'BEGIN { exit !(s >= 1.5 && s <= max) }' ||
        fail "$1: closed after ${secs}s, IdleTimeout is 2s"
    log "$1: closed after ${secs}s, status ${out##* }"
}
check_idle "idle connection" - ""
check_idle "idle after a response" 200 \
    "GET http://dev0.example.com:16992/ HTTP/1.1\r\nHost: dev0.example.com:16992\r\n$AUTHZ\r\n\r\n"
# A head that stalls is the console's fault: 408, then close.
check_idle "slow head" 408 'GET http://dev0.example.com:16992/ HTTP/1.1\r\nX-Slow: '
check_idle "stalled request body" 504 \
    "POST http://dev0.example.com:16992/ HTTP/1.1\r\nHost: dev0.example.com:16992\r\n$AUTHZ\r\nContent-Length: 100\r\n\r\n0123456789"

# MaxChannelsPerDevice = 2: with two tunnels to dev1 held open, a third request gets 503.
bg hold python3 "$HTTPCLIENT" --port "$HP" --timeout "$T" hold --target dev1.example.com:16994 \
    --auth "$CRED" --conns 2 --seconds $((20 * SLOW)) --ready-file "$TMPD/hold.ready"
hold=$BG_PID
wait_for $((10 * SLOW)) "two tunnels to dev1" test -e "$TMPD/hold.ready"
expect_send "503 then=200" "channel limit: 503, connection kept" \
    --data "GET http://dev1.example.com:16992/ HTTP/1.1\r\nHost: dev1.example.com:16992\r\n$AUTHZ\r\n\r\n" \
    --then http://dev0.example.com:16992/after-503 --then-auth "$CRED" --then-expect ' /after-503'
kill "$hold" 2>/dev/null || true

bg_wait "$idle_tunnel" $((30 * SLOW)) || fail "idle tunnel client: $(cat "$TMPD/idle_tunnel.err")"
[ "$(cat "$TMPD/idle_tunnel.out")" = ok ] ||
    fail "CONNECT tunnel idle for 5 s: $(cat "$TMPD/idle_tunnel.out")"
log "a CONNECT tunnel idle for 5 s (IdleTimeout 2s) still echoes"

require_alive
kill -0 "$sim" 2>/dev/null || fail "amtsim died: $(tail -5 "$TMPD/sim.err")"
stop_mpsd
log "PASS"
