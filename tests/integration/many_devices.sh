#!/bin/bash
# many_devices.sh - 1000 simultaneous devices, routing to the last one, and MaxConnections.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

# Trace at INFO only: 1000 devices at DEBUG is mostly log writing.
write_conf
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd

# 1000 devices connect at once and all reach forwarding within 60 s.
start=$SECONDS
out=$(timeout 60 "$AMTSIM" --port "$AMT_PORT" --count 1000 --exit-when-ready --quiet) ||
    fail "1000 devices did not all forward within 60 s: $out"
[ "$out" = "ready 1000" ] || fail "amtsim --count 1000 printed '$out'"
log "1000 devices forwarding after $((SECONDS - start)) s (amtsim --exit-when-ready)"
require_alive

# Again, staying connected, and reach the last one through the console.
bg sim "$AMTSIM" --port "$AMT_PORT" --count 1000 --ports 16992,16994 --quiet \
    --ready-file "$TMPD/sim.ready"
all_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 1000 ]; }
wait_for $((60 * SLOW)) "1000 devices forwarding" all_ready
out=$(apf console-echo --device dev999.example.com --dport 16994 --bytes 65536)
[ "$out" = ok ] || fail "console pipe to dev999.example.com:16994: $out"
log "console pipe to dev999.example.com:16994 echoes 64 KiB"
out=$(apf console-echo --device dev0.example.com --dport 16994 --bytes 65536)
[ "$out" = ok ] || fail "console pipe to dev0.example.com:16994: $out"
log "console pipe to dev0.example.com:16994 echoes 64 KiB"
require_alive
stop_mpsd
kill "$BG_PID" 2>/dev/null || true

# MaxConnections = 10: ten devices in, the next ten turned away with DISCONNECT 12.
CORE_EXTRA="MaxConnections = 10" write_conf
start_mpsd
bg sim10 "$AMTSIM" --port "$AMT_PORT" --count 10 --quiet --ready-file "$TMPD/sim10.ready"
ten_ready() { [ "$(cat "$TMPD/sim10.ready" 2>/dev/null)" = 10 ]; }
wait_for $((20 * SLOW)) "10 devices forwarding" ten_ready
out=$(timeout 20 "$AMTSIM" --port "$AMT_PORT" --count 10 --fqdn extra%d.example.com \
    --uuid-base 11111111-2222-3333-4444-000000000000 --expect-disconnect 12 --quiet) ||
    fail "devices 11-20 were not all refused with DISCONNECT 12: $out"
[ "$out" = "disconnected 10 12" ] || fail "devices 11-20: $out"
log "devices 11-20: $out"
expect_apf "disconnect 12" handshake --fqdn extra.example.com
assert_log "refused: MaxConnections (10) reached"
# The ten admitted devices are unaffected.
out=$(apf console-echo --device dev9.example.com --dport 16994 --bytes 4096)
[ "$out" = ok ] || fail "console pipe to dev9 with MaxConnections reached: $out"
log "admitted devices still reachable"
stop_mpsd
log "PASS"
