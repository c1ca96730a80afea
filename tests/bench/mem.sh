#!/bin/bash
# mem.sh - mpsd's memory: per idle TLS tunnel in a storm of devices, after they all left and
# in a second storm, and per TLS connection that has not finished its handshake.
# SPDX-License-Identifier: Apache-2.0
#
# `make bench-mem` runs this from a build directory after `make`; tests/bench/README.md
# ("Memory") says what is measured. Everything listens on 127.0.0.1, on ports the kernel
# picks; nothing needs root. Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   MPSD             the mpsd to measure ($top_builddir/mpsd; its build directory's modules)
#   MEM_DEVICES      devices per storm (19000; capped to the descriptor limit less 200: mpsd
#                    and amtsim each hold one descriptor per device)
#   MEM_RATE         amtsim --connect-rate of a storm (500)
#   MEM_IDLE_S       seconds the storm's devices stay idle (keepalive every 30 s) before the
#                    idle RSS is taken (90)
#   MEM_STORMS       storms per TLS version (2)
#   MEM_TLS_VERSIONS the devices' TLS versions, a fresh mpsd for each ("1.2 1.3": AMT firmware
#                    speaks TLS 1.2 (1.0 before AMT 12); amtsim's default is 1.3)
#   MEM_HALFOPEN     connections per half-open measurement (5000)
#   MEM_SKIP         phases to leave out: any of "storm halfopen"
#   MEM_REPORT       where the markdown report goes ($top_builddir/tests/bench/REPORT-MEM.md)
#   KEEP=1           keep the temp dir (configs, logs, raw results)
# Exit status: 0 done, 1 failure.

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=bench-mem
# shellcheck source-path=SCRIPTDIR source=memlib.sh
. "$BENCH_DIR/memlib.sh"

N=${MEM_DEVICES:-19000}
RATE=${MEM_RATE:-500}
IDLE_S=${MEM_IDLE_S:-90}
STORMS=${MEM_STORMS:-2}
VERSIONS=${MEM_TLS_VERSIONS:-1.2 1.3}
HALF=${MEM_HALFOPEN:-5000}
SKIP=${MEM_SKIP:-}
REPORT=${MEM_REPORT:-$top_builddir/tests/bench/REPORT-MEM.md}
LIMIT=$(ulimit -n)
[ "$N" -le $((LIMIT - 200)) ] || N=$((LIMIT - 200))
[ "$HALF" -le $((LIMIT - 200)) ] || HALF=$((LIMIT - 200))
# Generous: a storm's handshakes queue on one loop on a loaded 2-CPU machine, and half-open
# connections must outlive the measurement. MaxStartups: the half-open connections are all
# pending at once.
TLS_LINES="HandshakeTimeout = 300s
MaxStartups = 19800:30:19900"

skipped() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }

for f in "$MPSD" "$AMTSIM"; do
    [ -x "$f" ] || die "$f is missing: run make first"
done
"$AMTSIM" --help 2>&1 | grep -q -e '--tls-version' ||
    die "$AMTSIM has no --tls: the devices cannot speak TLS"

mem_tmpdir
make_pki
RESULTS=$TMPD/results.txt
: >"$RESULTS"

# devices NAME COUNT RATE [amtsim options]: amtsim --tls verifying the dev CA; pid in DEV_PID
devices() {
    local name=$1 count=$2 rate=$3
    shift 3
    next_uuid
    "$AMTSIM" --tls --tls-ca "$TMPD/tls/ca.pem" --port "$TLS_PORT" --count "$count" \
        --connect-rate "$rate" --uuid-base "$UUID" --fqdn "$name%d.mem.example" --quiet "$@" \
        >"$TMPD/$name.amtsim.out" 2>"$TMPD/$name.amtsim.log" &
    DEV_PID=$!
    PIDS+=("$DEV_PID")
}
devices_ready() { # READY_FILE COUNT
    alive "$DEV_PID" || die "amtsim exited: $(tail -n 5 "$TMPD"/*.amtsim.log)"
    file_is "$1" "$2"
}
stop_devices() {
    kill -TERM "$DEV_PID" 2>/dev/null || true
    wait "$DEV_PID" || die "amtsim exited with status $? on SIGTERM"
    ! grep -q '^anomalies' "$TMPD"/*.amtsim.out || die "amtsim saw unexpected APF"
}
# warm_up: 16 devices come and go, so OpenSSL's and libuv's one-time set-up is not counted
# per tunnel. Sets F0 (mpsd's sockets at rest) and REST (its RSS at rest).
warm_up() {
    F0=$(nsocks "$MPSD_PID")
    devices warm 16 0 --exit-when-ready --duration 60
    wait "$DEV_PID" || die "16 warm-up devices did not forward: $(cat "$TMPD/warm.amtsim.log")"
    wait_for 60 "mpsd to close the warm-up tunnels" socks_at_most "$MPSD_PID" "$F0"
    REST=$(settled_rss "$MPSD_PID")
}
per_kib() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.1f", (b - a) / n}'; }

# ------------------------------------------------------------------------- storms
# Per TLS version one mpsd; STORMS times N devices (two forwarded ports, keepalive every 30 s:
# amtsim's defaults) come up, stay idle for IDLE_S, and all leave at once.
if ! skipped storm; then
    for v in $VERSIONS; do
        write_mpsd_conf "storm$v" "$TLS_LINES"
        start_mpsd "storm$v"
        START=$(settled_rss "$MPSD_PID")
        START_ANON=$(anon_kib "$MPSD_PID")
        warm_up
        log "TLS $v: mpsd at start: $START KiB, at rest after 16 devices: $REST KiB"
        echo "phase=start tls=$v rss_kib=$START anon_kib=$START_ANON rest_kib=$REST" >>"$RESULTS"
        for storm in $(seq 1 "$STORMS"); do
            t0=$SECONDS
            devices "s$storm-$v" "$N" "$RATE" --tls-version "$v" --reconnect \
                --ready-file "$TMPD/s$storm-$v.ready"
            wait_for $((120 + N / 20)) "$N devices forwarding (TLS $v, storm $storm)" \
                devices_ready "$TMPD/s$storm-$v.ready" "$N"
            ramp=$((SECONDS - t0))
            up=$(settled_rss "$MPSD_PID")
            # idle: the devices' keepalives (every 30 s) are the only traffic
            peak=$up
            end=$((SECONDS + IDLE_S))
            while [ "$SECONDS" -lt "$end" ]; do
                sleep 5
                r=$(rss_kib "$MPSD_PID")
                [ "$r" -le "$peak" ] || peak=$r
            done
            idle=$(settled_rss "$MPSD_PID")
            idle_anon=$(anon_kib "$MPSD_PID")
            file_is "$TMPD/s$storm-$v.ready" "$N" || die "devices lost their tunnels while idle"
            fds=$(nfds "$MPSD_PID")
            stop_devices
            t1=$SECONDS
            wait_for 180 "mpsd to close $N tunnels" socks_at_most "$MPSD_PID" "$F0"
            gone_s=$((SECONDS - t1))
            # what the process holds 2 s and 10 s after the last tunnel closed
            sleep 2
            after2=$(rss_kib "$MPSD_PID")
            sleep 8
            after=$(rss_kib "$MPSD_PID")
            after_anon=$(anon_kib "$MPSD_PID")
            echo "phase=storm tls=$v storm=$storm devices=$N ramp_s=$ramp up_kib=$up" \
                "idle_kib=$idle peak_kib=$peak idle_anon_kib=$idle_anon fds=$fds" \
                "gone_s=$gone_s after2_kib=$after2 after_kib=$after after_anon_kib=$after_anon" \
                "per_tunnel_kib=$(per_kib "$REST" "$idle" "$N")" >>"$RESULTS"
            log "TLS $v storm $storm: $N devices up in ${ramp}s: $up KiB, idle ${IDLE_S}s:" \
                "$idle KiB ($(per_kib "$REST" "$idle" "$N") KiB/tunnel); all gone: $after2 KiB" \
                "after 2 s, $after KiB after 10 s"
        done
        stop_mpsd
    done
fi

# ---------------------------------------------------------------------- half-open
# Per mode a fresh mpsd (freed heap from an earlier phase would absorb the growth): HALF
# connections that sent nothing, half a ClientHello, or a whole one (the server's flight
# then waits for the client's).
if ! skipped halfopen; then
    for mode in none partial hello; do
        write_mpsd_conf "ho-$mode" "$TLS_LINES"
        start_mpsd "ho-$mode"
        warm_up
        python3 "$BENCH_DIR/halfopen.py" 127.0.0.1 "$TLS_PORT" "$HALF" "$mode" \
            >"$TMPD/ho-$mode.out" 2>&1 &
        ho=$!
        PIDS+=("$ho")
        ho_ready() {
            alive "$ho" || die "halfopen.py: $(cat "$TMPD/ho-$mode.out")"
            grep -q '^ready' "$TMPD/ho-$mode.out"
        }
        wait_for 120 "$HALF half-open connections ($mode)" ho_ready
        wait_for 60 "mpsd to hold $HALF connections" socks_at_least "$MPSD_PID" $((F0 + HALF))
        loaded=$(settled_rss "$MPSD_PID")
        echo "phase=halfopen mode=$mode conns=$HALF rest_kib=$REST loaded_kib=$loaded" \
            "per_conn_kib=$(per_kib "$REST" "$loaded" "$HALF")" \
            "sent=$(sed -n 's/^ready [0-9]* bytes \([0-9]*\) of.*/\1/p' "$TMPD/ho-$mode.out")" \
            >>"$RESULTS"
        log "half-open ($mode): $REST -> $loaded KiB, $(per_kib "$REST" "$loaded" "$HALF")" \
            "KiB per connection"
        kill -TERM "$ho"
        wait "$ho" || true
        wait_for 60 "mpsd to close the half-open connections" socks_at_most "$MPSD_PID" "$F0"
        # the handshakes the clients abandoned are logged as failures: expected here
        stop_mpsd 'TLS handshake with .* failed\|similar lines suppressed'
    done
fi

# -------------------------------------------------------------------------- report
python3 -B "$BENCH_DIR/mem_report.py" "$RESULTS" "$REPORT" \
    "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "machine=$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo |
        head -n 1), Linux $(uname -r)" \
    "mpsd=$("$MPSD" -V | head -n 1)" "openssl=$(openssl version)" \
    "commit=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')$(
        git -C "$top_srcdir" diff --quiet HEAD -- core modules 2>/dev/null ||
            echo ' (+ local changes)')" \
    "binary=$MPSD" "rate=$RATE" "idle_s=$IDLE_S" "fd_limit=$LIMIT"
log "report written to $REPORT"
