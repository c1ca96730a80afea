#!/bin/bash
# shutdown.sh - SIGTERM with devices and console pipes: DISCONNECT 11, exit 0, no leaks.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

write_conf

# shutdown_round LABEL: 10 devices (9 amtsim + 1 apfclient hold), 2 open console pipes,
# SIGTERM; every device gets DISCONNECT 11, pipes are closed, the daemon exits 0 in 10 s.
shutdown_round() {
    local label=$1 t=$SLOW
    [ "${MPSD_VALGRIND:-0}" = 1 ] && t=4
    start_mpsd
    bg sim "$AMTSIM" --port "$AMT_PORT" --count 9 --ports 16992,16994 \
        --ready-file "$TMPD/sim.ready"
    local sim=$BG_PID
    nine() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 9 ]; }
    wait_for $((20 * t)) "9 amtsim devices forwarding" nine
    rm -f "$TMPD"/*.ready
    bg holder python3 "$APFCLIENT" --port "$AMT_PORT" hold --seconds $((60 * t)) \
        --fqdn holder.example.com --ready-file "$TMPD/holder.ready"
    local holder=$BG_PID
    bg pipe1 python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-hold \
        --device dev0.example.com --dport 16994 --seconds $((60 * t)) --timeout $((10 * t)) \
        --ready-file "$TMPD/pipe1.ready"
    local pipe1=$BG_PID
    bg pipe2 python3 "$APFCLIENT" --cport "$CONSOLE_PORT" console-hold \
        --device dev8.example.com --dport 16994 --seconds $((60 * t)) --timeout $((10 * t)) \
        --ready-file "$TMPD/pipe2.ready"
    local pipe2=$BG_PID
    for f in holder pipe1 pipe2; do
        wait_for $((20 * t)) "$f" test -e "$TMPD/$f.ready"
    done
    log "$label: 10 devices and 2 console pipes up; SIGTERM"

    stop_mpsd
    [ "$STOP_SECONDS" -lt 10 ] || fail "$label: mpsd took $STOP_SECONDS s to exit"
    log "$label: mpsd exited 0 after ${STOP_SECONDS}s"
    tail -n 1 "$MPSD_LOG" | grep -q "has stopped" ||
        fail "$label: the log does not end with 'has stopped': $(tail -n 1 "$MPSD_LOG")"

    bg_wait "$holder" 10 || true
    [ "$(cat "$TMPD/holder.out")" = "disconnect 11" ] ||
        fail "$label: apfclient hold got '$(cat "$TMPD/holder.out")', expected 'disconnect 11'"
    local n
    n=$(grep -c "DISCONNECT 11" "$TMPD/sim.err" || true)
    [ "$n" = 9 ] || fail "$label: $n of 9 amtsim devices report DISCONNECT 11: $(cat "$TMPD/sim.err")"
    log "$label: all 10 devices got DISCONNECT 11"
    for p in pipe1 pipe2; do
        bg_wait "${!p}" 10 || true
        [ "$(cat "$TMPD/$p.out")" = eof ] || fail "$label: console $p: '$(cat "$TMPD/$p.out")'"
    done
    log "$label: both console pipes were closed"
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
}

shutdown_round plain

if ! command -v valgrind >/dev/null 2>&1; then
    log "SKIP: valgrind is missing for the leak check"
    exit 77
fi
# Under ASan the leak check is the sanitizer's; valgrind cannot run a sanitized binary.
if [ "$SLOW" -gt 1 ] || [ "${MPSD_NO_VALGRIND:-0}" = 1 ]; then
    log "sanitizer build: the valgrind round is left to the plain build"
    log "PASS"
    exit 0
fi
MPSD_VALGRIND=1 shutdown_round valgrind
log "PASS"
