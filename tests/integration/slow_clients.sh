#!/bin/bash
# slow_clients.sh - clients that trickle their request head or handshake (issue 17, item 3):
# every listener cuts them at HeadTimeout however much progress they make.
# SPDX-License-Identifier: Apache-2.0
#
# One daemon with HeadTimeout = 2s on every listener: [core] (the device listener, AuthTimeout
# as it was called), tls, socks5, http_proxy and admin_soap; IdleTimeout stays at its default
# (60 s, 30 s), so a connection cut within a few seconds was cut by HeadTimeout. Each slow
# client sends one byte every half second (four times what it needs to keep an idle timer
# alive): before HeadTimeout it kept an http_proxy or admin_soap connection forever. Then 64
# slow clients from four addresses (admin_soap's defaults: 64 connections, 16 per source,
# MaxStartups 32:30:64) take admin_soap, and a legitimate call works once they are cut; a
# second admin_soap with MaxConnections = 4 answers a proper 503 when full. A bystander
# device's echo and HTTP exchange keep going throughout.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed (the tls listener)"
    exit 77
}
for m in http_proxy admin_soap socks5 tls; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
python3 - <<'PY' || { echo "SKIP: cannot connect from 127.0.0.11 (loopback is not 127/8 here)"; exit 77; }
import socket
s = socket.socket()
s.bind(("127.0.0.11", 0))
s.close()
PY

TRACE_LEVELS="INFO|ERROR|WARNING" # the bystander's DEBUG lines would only bury the rest
HEAD=2 # seconds
make_certs
CORE_EXTRA="HeadTimeout = ${HEAD}s" CONF_EXTRA="$(tls_section "HeadTimeout = ${HEAD}s")
[module socks5]
Listen = 127.0.0.1:0
HeadTimeout = ${HEAD}s

[module http_proxy]
Listen = 127.0.0.1:0
HeadTimeout = ${HEAD}s

[module admin_soap]
Listen = 127.0.0.1:0
HeadTimeout = ${HEAD}s

[module admin_soap]
Listen = 127.0.0.1:0
MaxConnections = 4
MaxStartups = 100:30:200
HeadTimeout = 120s" write_conf
start_mpsd
TLS_P=$(ready_port tls)
S5_P=$(ready_port socks5)
HP=$(ready_port http_proxy)
AP=$(ready_port admin_soap 1)
AP_SMALL=$(ready_port admin_soap 2)
bystander_start "$HP"

# trickle WHAT PORT SEND [hostile ARGS]: one slow client; TRICKLED is its result line.
trickle() {
    local what=$1 port=$2 send=$3
    shift 3
    bystander_mark
    TRICKLED=$(hostile trickle --port "$port" --send "$send" --interval 0.5 \
        --wait $((10 * SLOW)) "$@")
    log "$what, one byte every 0.5 s: $TRICKLED"
    bystander_wait 1
}
# cut_in_time WHAT REPLY: the slow client was closed between HeadTimeout (less 0.2 s of clock
# skew between the two processes) and HeadTimeout plus 2 s (6 s on a sanitizer build), after
# it had sent 4 bytes or more (progress did not save it), having received REPLY (a regex).
cut_in_time() {
    local what=$1 want=$2 closed min max sent replies
    closed=$(sed -n 's/.*closed=\([0-9]*\) .*/\1/p' <<<"$TRICKLED")
    min=$(sed -n 's/.* min=\([0-9.]*\) .*/\1/p' <<<"$TRICKLED")
    max=$(sed -n 's/.* max=\([0-9.]*\) .*/\1/p' <<<"$TRICKLED")
    sent=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' <<<"$TRICKLED")
    replies=${TRICKLED#* replies=}
    [ "$closed" = 1 ] || fail "$what: not cut: $TRICKLED"
    python3 -c "import sys; sys.exit(not ($HEAD - 0.2 <= $min and $max <= $HEAD + 2 * $SLOW))" ||
        fail "$what: cut after $min s, expected about $HEAD s ($TRICKLED)"
    [ "$sent" -ge 4 ] || fail "$what: cut before it made progress ($TRICKLED)"
    [[ $replies =~ ^($want)$ ]] || fail "$what: answered '$replies', expected /$want/"
    log "$what: cut after $max s and $sent bytes, answered '$replies'"
}

# ---- one slow client per listener
trickle http_proxy "$HP" \
    'GET http://bystander.example.com:16992/slow HTTP/1.1\r\nHost: bystander.example.com\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n'
cut_in_time http_proxy "HTTP/1\.1 408 Request Timeout"
wait_log "\[http_proxy\] console 127\.0\.0\.1:[0-9]*: request: 408 no complete request head within 2000 ms"

trickle admin_soap "$AP" \
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n'
cut_in_time admin_soap "HTTP/1\.1 408 Request Timeout"

trickle socks5 "$S5_P" \
    '\x05\x01\x00\x05\x01\x00\x03\x40aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x41\xa2'
cut_in_time socks5 "hex 0500" # the method choice, then nothing
wait_log "\[socks5\] .*SOCKS negotiation not completed within 2000 ms: closed"

trickle tls "$TLS_P" @clienthello
cut_in_time tls "-"
wait_log "\[tls\] TLS handshake with 127\.0\.0\.1:[0-9]* failed: no handshake within 2000 ms"

trickle "device listener" "$AMT_PORT" @apf --apf
cut_in_time "device listener" "PROTOCOLVERSION,DISCONNECT 16"
wait_log "disconnected by mpsd: 16 CONNECTION_TIMED_OUT"
assert_log "did not authenticate within AuthTimeout"

# ---- 64 slow clients from four addresses take admin_soap (its defaults: 64 connections, 16
# per source, MaxStartups 32:30:64); all are cut, and then a legitimate call works.
python3 "$HOSTILE" --timeout $((10 * SLOW)) trickle --port "$AP" \
    --source 127.0.0.11,127.0.0.12,127.0.0.13,127.0.0.14 --conns 64 --interval 0.5 \
    --wait $((10 * SLOW)) \
    --send 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n' \
    >"$TMPD/slow64.out" 2>"$TMPD/slow64.err" &
slow64=$!
BG_PIDS+=("$slow64")
bystander_mark
bystander_wait 2 # while they trickle
bg_wait "$slow64" $((30 * SLOW)) || fail "64 slow clients: $(cat "$TMPD/slow64.err")"
TRICKLED=$(cat "$TMPD/slow64.out")
log "64 slow clients: $TRICKLED"
[[ $TRICKLED = "closed=64 open=0 "* ]] || fail "64 slow clients: not all cut: $TRICKLED"
max=$(sed -n 's/.* max=\([0-9.]*\) .*/\1/p' <<<"$TRICKLED")
python3 -c "import sys; sys.exit(not $max <= $HEAD + 3 * $SLOW)" ||
    fail "64 slow clients: the last was cut after $max s"
# The clients saw their connections closed; mpsd counts one until it has read the client's
# own close too: until then a call may still be dropped (MaxStartups), never for long.
admin_call() {
    ADMIN_OUT=$(timeout $((30 * SLOW)) python3 "$top_srcdir/tests/integration/admin_client.py" \
        "http://127.0.0.1:$AP/" stats 2>&1) && grep -q '^Tunnels=1$' <<<"$ADMIN_OUT"
}
wait_for $((10 * SLOW)) "a legitimate admin call to work after the slow clients" admin_call
log "a legitimate admin call after 64 slow clients: answered ($(grep '^Tunnels=' <<<"$ADMIN_OUT"))"
mpsd_stats
log "MaxStartups dropped $(stats_value "by MaxStartups") of them, limits $(stats_value "by limits")"

# ---- MaxConnections reached: the busy reply is a whole HTTP 503 (admin_soap number 2).
hold_file=$TMPD/hold.status
bg holders python3 "$HOSTILE" --timeout $((10 * SLOW)) hold --port "$AP_SMALL" --conns 4 \
    --status-file "$hold_file" --trigger-file "$TMPD/holders.stop" --seconds $((60 * SLOW))
holders=$BG_PID
wait_for $((10 * SLOW)) "4 idle connections to admin_soap 2" grep -qs '^conns 4 open 4 ' "$hold_file"
out=$(hostile probe --port "$AP_SMALL" --until-close --wait $((5 * SLOW)))
[ "$out" = "HTTP/1.1 503 Service Unavailable closed" ] || fail "5th connection: '$out'"
log "a 5th connection to a full admin_soap: $out"
wait_log "\[admin_soap\] connection from 127\.0\.0\.1:[0-9]* refused: MaxConnections (4) reached: 503"
touch "$TMPD/holders.stop"
bg_wait "$holders" $((10 * SLOW)) || fail "holders did not stop"
bystander_check
require_alive
stop_mpsd
log "PASS"
