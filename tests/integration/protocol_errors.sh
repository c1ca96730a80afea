#!/bin/bash
# protocol_errors.sh - malformed device input ends only that tunnel, with the right DISCONNECT.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

write_conf
start_mpsd

# Bystanders that must survive every error below: an amtsim device with a console pipe open
# to its echo port, and an apfclient device holding its tunnel.
bg sim "$AMTSIM" --port "$AMT_PORT" --fqdn echo%d.example.com --ports 16994 \
    --ready-file "$TMPD/sim.ready"
sim=$BG_PID
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 1 ]; }
wait_for $((10 * SLOW)) "amtsim forwarding" sim_ready
bg holder python3 "$APFCLIENT" --port "$AMT_PORT" hold --seconds $((40 * SLOW)) \
    --fqdn holder.example.com --uuid 00000000000000000000000000000042 \
    --ready-file "$TMPD/holder.ready"
holder=$BG_PID
bg pipe python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-hold --device echo0.example.com \
    --dport 16994 --seconds $((40 * SLOW)) --ready-file "$TMPD/pipe.ready" \
    --trigger-file "$TMPD/pipe.go"
pipe=$BG_PID
wait_for $((10 * SLOW)) "the held device" test -e "$TMPD/holder.ready"
wait_for $((10 * SLOW)) "the console pipe" test -e "$TMPD/pipe.ready"
log "bystanders up: amtsim device with a console pipe, apfclient hold"

# Each error, its expected verdict, and the log line that must say why.
expect_apf "disconnect 2" no-version
assert_log "sent SERVICE_REQUEST before PROTOCOLVERSION"
expect_apf "disconnect 8" bad-version
assert_log "speaks APF 2\.0"
expect_apf "disconnect 2" unknown-type --type 7
assert_log "disconnected by mpsd: 2 PROTOCOL_ERROR: .*type"
expect_apf eof truncated
assert_log "connection error before logging in: connection closed without DISCONNECT"
expect_apf "disconnect 2" huge-length --field data
expect_apf "disconnect 2" huge-length --field name
# garbage: random bytes; the daemon may answer DISCONNECT 2 or just close.
out=$(apf garbage --bytes 4096 --expect "disconnect 2|eof")
[ "$out" = ok ] || fail "garbage: $out"
log "apfclient garbage: disconnect 2 or eof"
expect_apf ok unknown-global
require_alive

# 50 garbage clients at once.
out=$(apf garbage --parallel 50 --bytes 2048 --expect "disconnect 2|eof")
[ "$out" = "ok 50" ] || fail "50 parallel garbage clients: $out"
log "50 parallel garbage clients: $out"
require_alive

# One protocol-error line per error: 2 huge-length, 1 unknown type, 1 no-version, plus 51
# garbage clients, at least the ones answered with DISCONNECT 2.
n=$(grep -c "disconnected by mpsd: 2 PROTOCOL_ERROR" "$MPSD_LOG" || true)
[ "$n" -ge 4 ] || fail "only $n protocol-error log lines"
log "$n 'disconnected by mpsd: 2 PROTOCOL_ERROR' log lines"
assert_log "disconnected by mpsd: 8 PROTOCOL_VERSION_NOT_SUPPORTED"

# The bystanders are unharmed: the pipe still echoes, the held tunnel answers a keepalive.
touch "$TMPD/pipe.go"
bg_wait "$pipe" $((10 * SLOW)) || fail "console pipe client failed: $(cat "$TMPD/pipe.out")"
[ "$(cat "$TMPD/pipe.out")" = ok ] || fail "console pipe after the errors: $(cat "$TMPD/pipe.out")"
log "console pipe still echoes"
kill -0 "$sim" 2>/dev/null || fail "amtsim died: $(cat "$TMPD/sim.err")"
require_alive
stop_mpsd
bg_wait "$holder" 10 || true
[ "$(cat "$TMPD/holder.out")" = "disconnect 11" ] ||
    fail "held device: '$(cat "$TMPD/holder.out")', expected it to survive until shutdown"
log "held device survived until shutdown (disconnect 11)"
log "PASS"
