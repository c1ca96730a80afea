#!/bin/bash
# abi.sh - module ABI 1.1 as a module author meets it: a module built against 1.0 loads and
# works unchanged, a descriptor larger than its minor defines is refused with one line naming
# the section, what a module leaves behind at fini is closed and reported, and every module
# the project builds exports exactly its mps_module_NAME symbol.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

# Each built module and plugin exports one symbol, mps_module_<its name> (the rest is
# hidden by -export-symbols-regex, so two modules cannot clash over a helper's name).
if command -v nm >/dev/null 2>&1; then
    checked=0
    for so in "$top_builddir"/modules/*/.libs/*.so "$top_builddir"/plugins/*/.libs/*.so; do
        [ -e "$so" ] || continue
        name=$(basename "$so" .so)
        exports=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWGSi]$/ { print $3 }' | sort)
        [ "$exports" = "mps_module_$name" ] ||
            fail "$so exports '$(tr '\n' ' ' <<<"$exports")', not just mps_module_$name"
        checked=$((checked + 1))
    done
    [ "$checked" -ge 3 ] || fail "found only $checked built modules to check"
    log "$checked modules export exactly mps_module_NAME"
else
    log "nm missing: export lists not checked"
fi

# A descriptor larger than ABI 1.1 defines: refused by mpsd -t with one line naming the
# configuration line of its section.
write_conf
printf '\n[module test_big_desc]\n' >>"$CONF"
line=$(grep -n '^\[module test_big_desc\]' "$CONF" | cut -d: -f1)
rc=0
"$MPSD" -t -c "$CONF" >"$TMPD/big.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "mpsd -t accepted test_big_desc"
grep -q "$CONF:$line: \[module test_big_desc\] .*test_big_desc.so: descriptor size [0-9]* is larger than ABI 1\.[0-9]* defines" \
    "$TMPD/big.out" || fail "mpsd -t on test_big_desc said: $(cat "$TMPD/big.out")"
log "oversized descriptor refused: $(grep -o 'descriptor size.*' "$TMPD/big.out")"

# A 1.0 module (1.0 descriptor and option layouts, api->listen, one-shot timer) next to
# test_leaky, which leaves a timer and its accepted connections behind on purpose.
CONF_EXTRA='[module test_minor0]
ListenPort = 0

[module test_leaky]'
write_conf
start_mpsd
M0_PORT=$(ready_port test_minor0)
LEAKY_PORT=$(ready_port test_leaky)
wait_log "test_minor0: timer fired"

bg sim "$AMTSIM" --port "$AMT_PORT" --count 1 --ports 16994 --quiet --ready-file "$TMPD/sim.ready"
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 1 ]; }
wait_for $((10 * SLOW)) "the device forwarding" sim_ready

out=$(python3 "$APFCLIENT" --port "$AMT_PORT" --cport "$M0_PORT" console-echo \
    --device dev0.example.com --dport 16994 --bytes 1048576 || true)
[ "$out" = ok ] || fail "echo through the 1.0 module: $out"
log "a module built against ABI 1.0 relays 1 MiB to a device and back"
out=$(python3 "$APFCLIENT" --port "$AMT_PORT" --cport "$M0_PORT" console-open \
    --device nosuch.example.com --dport 16994 || true)
[ "$out" = "ERR offline" ] || fail "unknown device through the 1.0 module: $out"

# Two connections test_leaky takes and never closes.
python3 - "$LEAKY_PORT" <<'PY' &
import socket, sys, time
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(2)]
time.sleep(600)
PY
BG_PIDS+=("$!")
wait_log "test_leaky: accepted 2"

stop_mpsd
assert_log "test_minor0: stopped after 1 timer(s) fired"
assert_log "WARNING.*\[test_leaky\] left behind at fini: 2 streams, 1 timers"
if grep "left behind at fini" "$MPSD_LOG" | grep -v test_leaky; then
    fail "an instance other than test_leaky left something behind"
fi
log "what test_leaky left behind was closed and reported in one line"
