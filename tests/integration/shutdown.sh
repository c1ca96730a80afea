#!/bin/bash
# shutdown.sh - SIGTERM with devices and consoles connected: DISCONNECT 11, exit 0, no leak.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

run_shutdown() {
    rm -f "$TMPD"/*.ready "$TMPD"/*.out "$TMPD"/*.err # from the previous run
    write_conf
    start_mpsd
    bg sim "$AMTSIM" --port "$AMT_PORT" --count 10 --ports 16992,16994 --keepalive 0 --quiet \
        --ready-file "$TMPD/sim.ready"
    local sim=$BG_PID
    sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 10 ]; }
    wait_for $((20 * SLOW)) "10 devices forwarding" sim_ready
    # A device of our own that reports how the server ended its session.
    bg holder python3 "$APFCLIENT" --port "$AMT_PORT" hold --fqdn holder.example.com \
        --seconds $((60 * SLOW)) --ready-file "$TMPD/holder.ready"
    local holder=$BG_PID
    wait_for $((10 * SLOW)) "the holding device" test -e "$TMPD/holder.ready"
    # Two consoles with open pipes into devices.
    local c1 c2
    bg console1 python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-open \
        --device dev1.example.com --dport 16994 --seconds $((60 * SLOW)) \
        --ready-file "$TMPD/console1.ready"
    c1=$BG_PID
    bg console2 python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-open \
        --device dev2.example.com --dport 16992 --seconds $((60 * SLOW)) \
        --ready-file "$TMPD/console2.ready"
    c2=$BG_PID
    console_open() { [ -e "$TMPD/console1.ready" ] && [ -e "$TMPD/console2.ready" ]; }
    wait_for $((10 * SLOW)) "two console pipes" console_open

    stop_mpsd
    [ "$STOP_SECONDS" -le 10 ] || fail "shutdown took $STOP_SECONDS s"
    bg_wait "$holder" $((10 * SLOW)) || true
    [ "$(cat "$TMPD/holder.out")" = "disconnect 11" ] ||
        fail "device was told '$(cat "$TMPD/holder.out")', expected 'disconnect 11'"
    log "devices got DISCONNECT 11 (BY_APPLICATION)"
    grep -q "has stopped" "$MPSD_LOG" || fail "no 'has stopped' line in the log"
    bg_wait "$c1" $((10 * SLOW)) || true
    bg_wait "$c2" $((10 * SLOW)) || true
    grep -q "^OK" "$TMPD/console1.out" || fail "console 1: $(cat "$TMPD/console1.out")"
    grep -q "^OK" "$TMPD/console2.out" || fail "console 2: $(cat "$TMPD/console2.out")"
    log "console pipes were open and ended with the daemon"
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
}

run_shutdown
log "clean shutdown in $STOP_SECONDS s"

# The same under valgrind: every handle closed, nothing leaked. Sanitizer builds already check
# leaks with LeakSanitizer and cannot run under valgrind.
if [ "${MPSD_NO_VALGRIND:-0}" = 1 ]; then
    log "valgrind run skipped (MPSD_NO_VALGRIND=1, sanitizer build)"
elif ! command -v valgrind >/dev/null; then
    log "valgrind run skipped: valgrind not installed"
else
    MPSD_VALGRIND=1
    SLOW=$((SLOW * 3))
    run_shutdown
    log "valgrind: no errors, no leaks"
fi
log "PASS"
