#!/bin/bash
# log_flood.sh - clients that make mpsd log (issue 17, item 5): every line a remote peer can
# trigger goes through one rate limiter (per source and message kind, and per kind across
# sources), what it holds back is reported as "N similar lines suppressed", and the log file
# is rotated by default.
# SPDX-License-Identifier: Apache-2.0
#
# admin_soap refuses 127.0.0.2 and 127.0.5.0/24 (DenyFrom). Floods, each a few seconds of
# connections as fast as a client makes them: one address against admin_soap (before the
# limiter: one WARNING per connection, 446,598 lines in 40 s in the issue), 254 rotating
# addresses against it, garbage and bare connects on the device listener, malformed requests
# to the http_proxy. Asserted: at most 20 lines per source and kind and 200 per kind in a
# minute; every refusal accounted for (lines written plus the suppressed counts the lines and
# the summaries report equal the refusal counter); the summaries are written (at the latest
# at exit: the limiter flushes them every minute and when the log closes); the log stays
# small. A bystander device's echo and HTTP exchange keep going throughout.
. "$(dirname "$0")/lib.sh"

for m in http_proxy admin_soap; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
python3 - <<'PY' || { echo "SKIP: cannot connect from 127.0.5.1 (loopback is not 127/8 here)"; exit 77; }
import socket
s = socket.socket()
s.bind(("127.0.5.1", 0))
s.close()
PY

TRACE_LEVELS="INFO|ERROR|WARNING" # the defaults: what a production log holds
FLOOD_S=3 # seconds of each flood: thousands of connections even under a sanitizer
BURST=20      # LOG_PEER_BURST: lines per source and kind in a minute (core/log.h)
KIND_MAX=200  # LOG_PEER_KIND_MAX: lines per kind in a minute, every source together
ROTATING=$(python3 -c 'print(",".join("127.0.5.%d" % i for i in range(1, 255)))')

# LogFileMaxSize has a default: the log file is rotated unless told otherwise.
dflt=$("$MPSD" --list-options core | awk '$1 == "LogFileMaxSize" { print $3 }')
[ "$dflt" = 10240 ] || fail "LogFileMaxSize defaults to '$dflt', expected 10240 (KiB)"
log "LogFileMaxSize defaults to $dflt KiB"

CONF_EXTRA="[module admin_soap]
Listen = 127.0.0.1:0
DenyFrom = 127.0.0.2 127.0.5.0/24

[module http_proxy]
Listen = 127.0.0.1:0" write_conf
start_mpsd
AP=$(ready_port admin_soap)
HP=$(ready_port http_proxy)
bystander_start "$HP"
t_first=$SECONDS

# flood NAME HOSTILE-ARGS...: a hammer in the background while the bystander works through it;
# FLOODED is its result ("connections N closed C").
flood() {
    local name=$1
    shift
    bg "$name" python3 "$HOSTILE" --timeout $((10 * SLOW)) hammer --seconds "$FLOOD_S" \
        --parallel 4 --wait $((5 * SLOW)) "$@"
    local pid=$BG_PID
    bystander_mark
    bystander_wait 2
    bg_wait "$pid" $((FLOOD_S + 30 * SLOW)) || fail "flood $name: $(cat "$TMPD/$name.err")"
    FLOODED=$(cat "$TMPD/$name.out")
    log "flood $name: $FLOODED"
}
count() { grep -c -e "$1" "$MPSD_LOG" || true; }

# ---- one address, refused by admin_soap
flood one --port "$AP" --source 127.0.0.2
read -r _ n_one _ c_one <<<"$FLOODED"
[ "$n_one" = "$c_one" ] || fail "not every connection from 127.0.0.2 was refused: $FLOODED"
[ "$n_one" -ge 200 ] || fail "only $n_one connections in $FLOOD_S s: no flood"
one=$(count "\[admin_soap\] connection from 127\.0\.0\.2:[0-9]* refused: in DenyFrom")
log "$n_one refused connections from one address: $one lines"
[ "$one" -ge 1 ] && [ "$one" -le "$BURST" ] || fail "$n_one refusals wrote $one lines"

# ---- 254 rotating addresses: the cap per kind holds
flood rotating --port "$AP" --source "$ROTATING"
read -r _ n_rot _ c_rot <<<"$FLOODED"
[ "$n_rot" = "$c_rot" ] || fail "not every rotating connection was refused: $FLOODED"
rot=$(count "\[admin_soap\] connection from 127\.0\.5\.[0-9]*:[0-9]* refused: in DenyFrom")
log "$n_rot refused connections from 254 addresses: $rot lines"
most=$(grep -o "\[admin_soap\] connection from 127\.0\.5\.[0-9]*:" "$MPSD_LOG" | sort | uniq -c |
    sort -rn | awk 'NR == 1 { print $1 }')

# ---- the device listener: garbage, and connections closed before logging in
flood garbage --port "$AMT_PORT" --source 127.0.0.3 --send '\x07junkjunk'
garbage=$(count "Intel remote client unknown (no FQDN yet, 127\.0\.0\.3:[0-9]*) disconnected by mpsd: 2 PROTOCOL_ERROR: unknown message type 7")
log "devices sending garbage: $garbage lines"
flood bare --port "$AMT_PORT" --source 127.0.0.3
# The client resets its connections (no TIME_WAIT for thousands of them), a FIN would do the
# same: each ends as "connection error before logging in", one kind with the garbage ones.
bare=$(count "Intel remote client [^ ]* (127\.0\.0\.3:[0-9]*) connection error before logging in: ")
log "connections closed before logging in: $bare lines"

# ---- malformed requests to the http_proxy (origin form: 400)
flood http --port "$HP" --source 127.0.0.4 --send 'GET /x HTTP/1.1\r\nHost: y\r\n\r\n'
http=$(count "\[http_proxy\] console 127\.0\.0\.4:[0-9]*: request: 400 this is a proxy")
log "malformed requests to the http_proxy: $http lines"

bystander_check
mpsd_stats
acl=$(stats_value "refused by ACL")
[ "$acl" = $((n_one + n_rot)) ] || fail "refused by ACL $acl, the clients saw $((n_one + n_rot))"
require_alive
stop_mpsd
windows=$(((SECONDS - t_first) / 60 + 1)) # limiter windows the floods may have spanned
log "the floods spanned at most $windows minute(s) of the limiter"
for v in garbage http; do
    [ "${!v}" -ge 1 ] && [ "${!v}" -le $((BURST * windows)) ] ||
        fail "$v: ${!v} lines, expected 1 to $((BURST * windows))"
done
[ "$bare" -ge 1 ] && [ "$bare" -le $((2 * BURST * windows)) ] ||
    fail "bare connections: $bare lines, expected 1 to $((2 * BURST * windows))"
[ "$most" -le $((BURST * windows)) ] || fail "one rotating address wrote $most lines"
[ $((one + rot)) -le $((KIND_MAX * windows)) ] ||
    fail "$((one + rot)) refusal lines: over the cap of $KIND_MAX per kind and minute"

# Every refusal is accounted for: written, or counted by a later line's suffix or a summary.
suffixes=$(grep -o "refused: in DenyFrom ([0-9]* similar lines\? suppressed)" "$MPSD_LOG" |
    awk '{ n += substr($4, 2) } END { print n + 0 }')
summaries=$(grep -o "[0-9]* similar lines\? suppressed in the last [0-9]* s, such as: \[admin_soap\] connection from" \
    "$MPSD_LOG" | awk '{ n += $1 } END { print n + 0 }')
log "refusals: $((one + rot)) lines written, $suffixes and $summaries reported suppressed," \
    "$acl counted"
[ $((one + rot + suffixes + summaries)) = "$acl" ] ||
    fail "$((one + rot)) lines + $suffixes + $summaries suppressed != $acl refusals"
assert_log "similar lines suppressed in the last [0-9]* s, such as: Intel remote client unknown (no FQDN yet, 127\.0\.0\.3:[0-9]*) disconnected by mpsd: 2 PROTOCOL_ERROR"
assert_log "similar lines suppressed in the last [0-9]* s, such as: \[http_proxy\] console 127\.0\.0\.4:[0-9]*: request: 400 "
total=$((n_one + n_rot))
size=$(wc -c <"$MPSD_LOG")
log "the log holds $(wc -l <"$MPSD_LOG") lines, $size bytes after $total refused connections" \
    "and three more floods"
[ "$size" -lt $((512 * 1024)) ] || fail "the log grew to $size bytes"
log "PASS"
