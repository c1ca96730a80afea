#!/bin/bash
# soak.sh - mpsd for half an hour under churn: TLS devices that leave and come back, console
# requests through both proxies, SIGHUP reloads; RSS and descriptors sampled into a CSV.
# SPDX-License-Identifier: Apache-2.0
#
# `make soak` runs this from a build directory after `make`; tests/bench/README.md ("Soak")
# says what it checks. Everything listens on 127.0.0.1, on ports the kernel picks; nothing
# needs root. Not part of `make check` or CI. Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   MPSD             the mpsd to run ($top_builddir/mpsd; its build directory's modules)
#   SOAK_MINUTES     how long the devices churn (30)
#   SOAK_DEVICES     devices (10000; capped to the descriptor limit less 500)
#   SOAK_RATE        amtsim --connect-rate at the start (500)
#   SOAK_CHURN       sessions ended per second, each device back 1 s later (5: every device
#                    about once in half an hour)
#   SOAK_HUP_S       seconds between SIGHUPs (180)
#   SOAK_SAMPLE_S    seconds between samples (10)
#   SOAK_REPORT      where the markdown report goes ($top_builddir/tests/bench/REPORT-SOAK.md);
#                    the samples go next to it, as soak.csv
#   KEEP=1           keep the temp dir (configs, logs)
# Exit status: 0 done (the report says whether RSS stayed flat), 1 failure (mpsd died, exited
# non-zero, or devices could not come up).

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=soak
# shellcheck source-path=SCRIPTDIR source=memlib.sh
. "$BENCH_DIR/memlib.sh"

MINUTES=${SOAK_MINUTES:-30}
N=${SOAK_DEVICES:-10000}
RATE=${SOAK_RATE:-500}
CHURN=${SOAK_CHURN:-5}
HUP_S=${SOAK_HUP_S:-180}
SAMPLE_S=${SOAK_SAMPLE_S:-10}
REPORT=${SOAK_REPORT:-$top_builddir/tests/bench/REPORT-SOAK.md}
CSV=$(dirname "$REPORT")/soak.csv
LIMIT=$(ulimit -n)
[ "$N" -le $((LIMIT - 500)) ] || N=$((LIMIT - 500))

for f in "$MPSD" "$AMTSIM"; do
    [ -x "$f" ] || die "$f is missing: run make first"
done
command -v curl >/dev/null 2>&1 || die "curl is needed for the console traffic"
"$AMTSIM" --help 2>&1 | grep -q -e '--churn' || die "$AMTSIM has no --churn (rebuild amtsim)"

mem_tmpdir
make_pki
mkdir -p "$(dirname "$REPORT")"

# ------------------------------------------------------------------------- mpsd
write_mpsd_conf soak
start_mpsd soak
START_RSS=$(settled_rss "$MPSD_PID")
START_FDS=$(nfds "$MPSD_PID")
F0=$(nsocks "$MPSD_PID")
log "mpsd $MPSD_PID: TLS on $TLS_PORT, socks5 on $SOCKS_PORT, http_proxy on $HTTP_PORT;" \
    "$START_RSS KiB, $START_FDS descriptors"

# ---------------------------------------------------------------------- devices
next_uuid
"$AMTSIM" --tls --tls-ca "$TMPD/tls/ca.pem" --port "$TLS_PORT" --count "$N" \
    --connect-rate "$RATE" --uuid-base "$UUID" --fqdn 'dev%d.soak.example' --reconnect \
    --churn "$CHURN" --ready-file "$TMPD/devices.ready" \
    >"$TMPD/amtsim.out" 2>"$TMPD/amtsim.log" &
DEV_PID=$!
PIDS+=("$DEV_PID")
ready_count() { cat "$TMPD/devices.ready" 2>/dev/null || echo 0; }
# With churn, a few devices are always between sessions: most of them is enough.
most_ready() {
    alive "$DEV_PID" || die "amtsim exited: $(tail -n 5 "$TMPD/amtsim.log")"
    alive "$MPSD_PID" || die "mpsd died: $(tail -n 5 "$MPSD_LOG")"
    [ "$(ready_count)" -ge $((N * 99 / 100)) ]
}
wait_for $((120 + N / 20)) "$N devices forwarding" most_ready
log "$(ready_count) of $N devices forwarding"

# ---------------------------------------------------------------------- consoles
# One console at a time, back to back: GET through the HTTP proxy, GET through SOCKS5, and a
# 64 KiB POST echoed by the device, each to a random device (one that is between sessions
# answers 502 or a SOCKS refusal: counted, not an error).
head -c 65536 /dev/urandom >"$TMPD/body.bin"
# one_console KIND: "KIND RESULT" on stdout: the HTTP status, curl-exit-N when there was none
# (97: SOCKS refused, the device was between sessions), or mismatch when an echo differs
one_console() {
    local url code rc=0
    url=http://dev$(((RANDOM * 32768 + RANDOM) % N)).soak.example:16992/soak
    case $1 in
    http) code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -x "http://127.0.0.1:$HTTP_PORT" "$url") || rc=$? ;;
    socks) code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        --socks5-hostname "127.0.0.1:$SOCKS_PORT" "$url") || rc=$? ;;
    post)
        code=$(curl -s -o "$TMPD/echo.bin" -w '%{http_code}' --max-time 10 -H 'Expect:' \
            -H 'Content-Type: application/octet-stream' --data-binary "@$TMPD/body.bin" \
            -x "http://127.0.0.1:$HTTP_PORT" "$url") || rc=$?
        [ "$code" != 200 ] || cmp -s "$TMPD/echo.bin" "$TMPD/body.bin" || code=mismatch
        ;;
    esac
    [ "$rc" = 0 ] || [ "$code" != 000 ] || code=curl-exit-$rc
    echo "$1 $code"
}
consoles() {
    while :; do
        one_console http
        one_console socks
        one_console post
        sleep 0.2
    done >>"$TMPD/console.codes" 2>/dev/null
}
consoles &
CONSOLE_PID=$!
PIDS+=("$CONSOLE_PID")
console_counts() { # ok other: answered 200 (and echoed intact), and everything else
    local ok all
    ok=$(grep -c ' 200$' "$TMPD/console.codes" 2>/dev/null || true)
    all=$(wc -l <"$TMPD/console.codes" 2>/dev/null || echo 0)
    echo "${ok:-0} $((all - ${ok:-0}))"
}

# ---------------------------------------------------------------------- samples
echo "t_s,rss_kib,anon_kib,fds,devices,console_ok,console_other,hups" >"$CSV"
HUPS=0
T0=$SECONDS
END=$((T0 + MINUTES * 60))
NEXT_HUP=$((T0 + HUP_S))
sample() {
    alive "$MPSD_PID" || die "mpsd died: $(tail -n 20 "$MPSD_LOG")"
    alive "$DEV_PID" || die "amtsim exited: $(tail -n 5 "$TMPD/amtsim.log")"
    local c
    c=$(console_counts)
    echo "$((SECONDS - T0)),$(rss_kib "$MPSD_PID"),$(anon_kib "$MPSD_PID"),$(nfds "$MPSD_PID")," \
        "$(ready_count),${c% *},${c#* },$HUPS" | tr -d ' ' >>"$CSV"
}
log "churning for $MINUTES min: $CHURN sessions ended a second, SIGHUP every ${HUP_S}s," \
    "a sample every ${SAMPLE_S}s into $CSV"
while [ "$SECONDS" -lt "$END" ]; do
    sample
    if [ "$SECONDS" -ge "$NEXT_HUP" ]; then
        kill -HUP "$MPSD_PID"
        HUPS=$((HUPS + 1))
        NEXT_HUP=$((NEXT_HUP + HUP_S))
    fi
    sleep "$SAMPLE_S"
done
sample
kill "$CONSOLE_PID" 2>/dev/null || true
wait "$CONSOLE_PID" 2>/dev/null || true

# ------------------------------------------------------------------------- end
kill -TERM "$DEV_PID"
wait "$DEV_PID" || die "amtsim exited with status $? on SIGTERM"
CHURNED=$(sed -n 's/^churned //p' "$TMPD/amtsim.out")
CONNECTED=$(sed -n 's/^connected \([0-9]*\),.*/\1/p' "$TMPD/amtsim.out")
wait_for 180 "mpsd to close every tunnel" socks_at_most "$MPSD_PID" "$F0"
sleep 10
AFTER_RSS=$(rss_kib "$MPSD_PID")
AFTER_FDS=$(nfds "$MPSD_PID")
log "all devices gone: $AFTER_RSS KiB, $AFTER_FDS descriptors"
# A console asking for a device between sessions is told so, with a warning: expected here.
WARNINGS=$(grep -e '\[LM ERROR\]' -e '\[LM WARNING\]' "$MPSD_LOG" |
    grep -v -e 'file descriptor limit' -e 'is not connected$' -e 'device not connected$' ||
    true)
grep -q '^anomalies' "$TMPD/amtsim.out" && die "amtsim saw unexpected APF: $(
    cat "$TMPD/amtsim.out")"
rc=0
kill -TERM "$MPSD_PID"
wait "$MPSD_PID" || rc=$?
[ "$rc" = 0 ] || die "mpsd exited with status $rc on SIGTERM: $(tail -n 5 "$MPSD_LOG")"
printf '%s\n' "$WARNINGS" | sed '/^$/d' | cut -c1-300 | head -n 20 >"$TMPD/warnings.txt"

python3 -B "$BENCH_DIR/soak_report.py" "$CSV" "$REPORT" \
    "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "machine=$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
        head -n 1), Linux $(uname -r)" \
    "mpsd=$("$MPSD" -V | head -n 1)" "openssl=$(openssl version)" \
    "commit=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')$(
        git -C "$top_srcdir" diff --quiet HEAD -- core modules 2>/dev/null ||
            echo ' (+ local changes)')" \
    "minutes=$MINUTES" "devices=$N" "rate=$RATE" "churn=$CHURN" "hup_s=$HUP_S" \
    "sample_s=$SAMPLE_S" "start_rss=$START_RSS" "start_fds=$START_FDS" \
    "after_rss=$AFTER_RSS" "after_fds=$AFTER_FDS" "churned=${CHURNED:-0}" \
    "connected=${CONNECTED:-0}" "warnings=$(grep -c . "$TMPD/warnings.txt" || true)" \
    "warnings_file=$TMPD/warnings.txt" "load=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "consoles=$(awk '{print $1 "/" $2}' "$TMPD/console.codes" | sort | uniq -c |
        awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}')"
log "report written to $REPORT"
