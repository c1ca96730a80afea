#!/bin/bash
# channels.sh - console traffic through APF channels: HTTP, bulk echo, lookup, errors, windows.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

write_conf
# Per-channel DEBUG lines for 200+ channels only slow a sanitizer build down.
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd

# 20 amtsim devices dev0..dev19, HTTP on 16992 and echo on 16994.
bg sim "$AMTSIM" --port "$AMT_PORT" --count 20 --ports 16992,16994 --quiet \
    --ready-file "$TMPD/sim.ready"
sim=$BG_PID
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 20 ]; }
wait_for $((20 * SLOW)) "20 devices forwarding" sim_ready
T=$((60 * SLOW)) # bound of each bulk transfer's network waits

# HTTP GET to the device's web server.
out=$(apf console-http --device dev0.example.com --dport 16992 --timeout "$T")
grep -q "^HTTP/1\.1 200 .*| amtsim dev0\.example\.com" <<<"$out" || fail "GET: $out"
log "GET through a channel: $out"

# A 20 MB POST body echoed back byte for byte (sha256 compared in apfclient).
out=$(apf console-http --device dev1.example.com --dport 16992 --post-bytes $((20 * 1024 * 1024)) \
    --timeout "$T")
[ "$out" = ok ] || fail "20 MB POST: $out"
log "20 MB POST echoed byte for byte"

# 50 MB raw echo on 16994, sent and received concurrently.
out=$(apf console-echo --device dev2.example.com --dport 16994 --bytes $((50 * 1024 * 1024)) \
    --timeout "$T")
[ "$out" = ok ] || fail "50 MB echo: $out"
log "50 MB echoed byte for byte in both directions"

# Lookup by UUID text (amtsim's device 3: base UUID + 3) and by FQDN in upper case.
out=$(apf console-echo --device 8c6a3b2e-5d1f-4e7a-9b0c-000000000003 --dport 16994)
[ "$out" = ok ] || fail "lookup by UUID: $out"
log "device found by UUID text"
out=$(apf console-echo --device DEV4.EXAMPLE.COM --dport 16994)
[ "$out" = ok ] || fail "lookup by upper-case FQDN: $out"
log "device found by upper-case FQDN"

# Refusals.
out=$(apf console-open --device nosuch.example.com --dport 16994)
[ "$out" = "ERR offline" ] || fail "unknown device: $out"
log "unknown device: $out"
out=$(apf console-open --device dev0.example.com --dport 5900)
[ "$out" = "ERR not-forwarded" ] || fail "port 5900: $out"
log "not forwarded port: $out"

# 200 concurrent pipes over the 20 devices, 64 KiB each.
out=$(apf console-multi --device dev%d.example.com --devices 20 --conns 200 --dport 16994 \
    --bytes 65536 --timeout "$T")
[ "$out" = "ok 200" ] || fail "200 concurrent pipes: $out"
log "200 concurrent pipes across 20 devices: $out"

# Window overrun: a device that ignores our window is cut off (DISCONNECT 2), alone. The
# console pipe to it never reads, so the daemon stops granting window.
bg overrun python3 "$APFCLIENT" --port "$AMT_PORT" window-overrun --fqdn overrun.example.com \
    --ports 16994 --uuid 000000000000000000000000000000aa --wait $((20 * SLOW)) \
    --ready-file "$TMPD/overrun.ready"
overrun=$BG_PID
wait_for $((10 * SLOW)) "the overrunning device" test -e "$TMPD/overrun.ready"
bg opener python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-open \
    --device overrun.example.com --dport 16994 --seconds $((20 * SLOW)) \
    --ready-file "$TMPD/opener.ready"
opener=$BG_PID
wait_for $((10 * SLOW)) "the console pipe to the overrunning device" test -e "$TMPD/opener.ready"
[ "$(head -n 1 "$TMPD/opener.out")" = OK ] ||
    fail "console to the overrunning device: $(cat "$TMPD/opener.out")"
bg_wait "$overrun" $((30 * SLOW)) || fail "window-overrun client: $(cat "$TMPD/overrun.out" \
    "$TMPD/overrun.err")"
[ "$(cat "$TMPD/overrun.out")" = "disconnect 2" ] ||
    fail "window overrun: '$(cat "$TMPD/overrun.out")', expected 'disconnect 2'"
log "window overrun: disconnect 2"
assert_log "overran the window of channel"
kill "$opener" 2>/dev/null || true
out=$(apf console-echo --device dev5.example.com --dport 16994 --bytes 65536)
[ "$out" = ok ] || fail "other devices after the overrun: $out"
log "other devices unaffected"
kill -0 "$sim" 2>/dev/null || fail "amtsim died: $(tail -5 "$TMPD/sim.err")"
require_alive
stop_mpsd
log "PASS"
