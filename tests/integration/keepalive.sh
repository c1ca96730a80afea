#!/bin/bash
# keepalive.sh - keepalives both ways, the probe of a silent tunnel, dead-tunnel detection,
# and when KEEPALIVE_OPTIONS_REQUEST is sent.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

# Short timers so the test takes seconds: probe after 1 s of silence, dead after 2 s.
CORE_EXTRA="KeepaliveInterval = 1s
KeepaliveReadTimeout = 2s"
write_conf
start_mpsd

# The device's KEEPALIVE_REQUEST is answered with the same cookie.
expect_apf ok keepalive --fqdn ka0.example.com

# A device that goes silent is probed, then cut off with DISCONNECT 16 (CONNECTION_TIMED_OUT)
# about KeepaliveReadTimeout after its last message.
out=$(apf silent --fqdn ka1.example.com --wait $((10 * SLOW)))
case "$out" in
"probe disconnect 16 "*) ;;
*) fail "silent device: '$out', expected 'probe disconnect 16 SECONDS'" ;;
esac
secs=${out##* }
awk -v s="$secs" -v slow="$SLOW" 'BEGIN { exit !(s >= 1.5 && s <= 4 * slow) }' ||
    fail "silent device cut off after $secs s, expected about 2 s"
log "silent device probed, then DISCONNECT 16 after $secs s"
assert_log "sent nothing within KeepaliveReadTimeout"

# A device that keeps sending keepalives stays up well past the read timeout.
out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn 'live%d.example.com' \
    --keepalive 1 --duration 6 2>&1) || fail "amtsim with keepalives: $out"
grep -q "forwarding 1, disconnected 0" <<<"$out" || fail "live device was dropped: $out"
log "device sending keepalives every 1 s survived 6 s: $out"

# KeepaliveOptions = auto (default): sent only to a device that forwards 5900, as the
# field-proven servers do; never to one that does not. The daemon logs the device's
# KEEPALIVE_OPTIONS_REPLY ("will send keepalives every N s") at DEBUG, naming the device.
options_answered() { log_has "($1, [^)]*) will send keepalives every"; }
timeout $((10 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn 'kvm%d.example.com' \
    --ports 16992,5900 --keepalive 0 --duration 1 --verbose >"$TMPD/kvm.out" 2>&1 || true
timeout $((10 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn 'nokvm%d.example.com' \
    --ports 16992,16994 --keepalive 0 --duration 1 >"$TMPD/nokvm.out" 2>&1 || true
options_answered kvm0.example.com ||
    fail "no KEEPALIVE_OPTIONS exchange with a device forwarding 5900: $(cat "$TMPD/kvm.out")"
if options_answered nokvm0.example.com; then
    fail "KEEPALIVE_OPTIONS_REQUEST sent to a device without 5900 (KeepaliveOptions = auto)"
fi
log "KeepaliveOptions auto: sent for 5900 only"
# The device sees the daemon's proposal: KeepaliveInterval and KeepaliveReadTimeout in seconds.
grep -q "keepalive options: interval 1 s, timeout 2 s" "$TMPD/kvm.out" ||
    fail "the device did not get KEEPALIVE_OPTIONS_REQUEST(1 s, 2 s): $(cat "$TMPD/kvm.out")"
log "device forwarding 5900 received KEEPALIVE_OPTIONS_REQUEST (1 s, 2 s)"
require_alive
stop_mpsd

# KeepaliveOptions = never: not even for 5900.
CORE_EXTRA="KeepaliveOptions = never"
write_conf
start_mpsd
timeout $((10 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --ports 16992,5900 --keepalive 0 \
    --duration 1 >"$TMPD/never.out" 2>&1 || true
grep -q "forwarding 1" "$TMPD/never.out" || fail "device did not forward: $(cat "$TMPD/never.out")"
if options_answered dev0.example.com; then
    fail "KEEPALIVE_OPTIONS_REQUEST sent with KeepaliveOptions = never"
fi
log "KeepaliveOptions never: not sent"
stop_mpsd

# KeepaliveOptions = always: sent to every device, with the default timers (30 s, 180 s).
CORE_EXTRA="KeepaliveOptions = always"
write_conf
start_mpsd
out=$(timeout $((10 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --ports 16992 --keepalive 0 \
    --duration 1 --verbose 2>&1) || fail "amtsim with KeepaliveOptions = always: $out"
grep -q "keepalive options: interval 30 s, timeout 180 s" <<<"$out" ||
    fail "KeepaliveOptions = always sent no KEEPALIVE_OPTIONS_REQUEST(30 s, 180 s): $out"
wait_log "(dev0.example.com, [^)]*) will send keepalives every 30 s (read timeout 180 s)"
log "KeepaliveOptions always: sent without 5900, with the defaults"
stop_mpsd
log "PASS"
