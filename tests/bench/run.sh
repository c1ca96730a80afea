#!/bin/bash
# run.sh - the relay benchmark: mpsd (SOCKS5, HTTP CONNECT) next to HAProxy in TCP mode, same run.
# SPDX-License-Identifier: Apache-2.0
#
# `make bench` runs this from a build directory after `make`; README.md in this directory says
# what is measured and how to read the report. Everything listens on 127.0.0.1, on ports the
# kernel picks; nothing needs root. Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   BENCH_ROUNDS      rounds; each measures every path once, the report takes medians (3)
#   BENCH_MIB         MiB echoed per throughput measurement (256)
#   BENCH_CONNS       connections of the parallel throughput test (8)
#   BENCH_LAT_COUNT   counted round trips per latency measurement (20000)
#   BENCH_LAT_CONNS   connections of the concurrent latency test (32)
#   BENCH_DEVICES     amtsim devices; concurrent connections go to different devices (32)
#   BENCH_AMTSIM_ARGS device options (--max-data 16384 --window 65536: see README.md)
#   BENCH_MPSD_CORE   extra [core] lines for mps.conf (e.g. "ChannelWindow = 262144")
#   BENCH_REPORT      where the markdown report goes ($top_builddir/tests/bench/REPORT.md)
#   BENCH_STRICT=1    exit 1 when mpsd misses a target (default: report only)
#   KEEP=1            keep the temp dir (configs, logs, raw results)
# Exit status: 0 done (targets met or not, unless BENCH_STRICT), 1 failure, 2 missing tools.

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$BENCH_DIR/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
top_builddir=$(cd "$top_builddir" && pwd)

ROUNDS=${BENCH_ROUNDS:-3}
MIB=${BENCH_MIB:-256}
CONNS=${BENCH_CONNS:-8}
LAT_COUNT=${BENCH_LAT_COUNT:-20000}
LAT_CONNS=${BENCH_LAT_CONNS:-32}
DEVICES=${BENCH_DEVICES:-32}
AMTSIM_ARGS=${BENCH_AMTSIM_ARGS:---max-data 16384 --window 65536}
REPORT=${BENCH_REPORT:-$top_builddir/tests/bench/REPORT.md}

MPSD=$top_builddir/mpsd
AMTSIM=$top_builddir/contrib/amtsim/amtsim
RELAYBENCH=$top_builddir/tests/bench/relaybench
ECHOD=$top_builddir/tests/bench/echod
SOCKS5_SO=$top_builddir/modules/socks5/.libs/socks5.so
HTTP_SO=$top_builddir/modules/http_proxy/.libs/http_proxy.so

log() { echo "bench: $*"; }
die() {
    echo "bench: FAIL: $*" >&2
    exit 1
}

if ! command -v haproxy >/dev/null 2>&1; then
    echo "bench: haproxy is not installed; the benchmark compares mpsd with it." >&2
    echo "bench: install it with: apt-get install haproxy   (the service need not run)" >&2
    exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "bench: python3 is needed (ports, report)" >&2
    exit 2
fi
for f in "$MPSD" "$AMTSIM" "$RELAYBENCH" "$ECHOD" "$SOCKS5_SO"; do
    [ -e "$f" ] || die "$f is missing: run make first (socks5 and amtsim must not be disabled)"
done
HAVE_CONNECT=0
[ -e "$HTTP_SO" ] && HAVE_CONNECT=1

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mpsd-bench.XXXXXX")
PIDS=()
cleanup() {
    local rc=$? p
    set +e
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
        echo "bench: logs and raw results kept in $TMPD"
    else
        rm -rf "$TMPD"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Free ports, chosen by the kernel, all bound at once so they differ (as in lib.sh).
free_ports() {
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
' "$1"
}
{ read -r AMT_PORT; read -r SOCKS_PORT; read -r HTTP_PORT; read -r HAPROXY_PORT
    read -r HAPROXY1_PORT; } < <(free_ports 5)

# wait_for TIMEOUT_S WHAT CMD [ARGS]: poll CMD every 50 ms until it succeeds, or fail.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local end=$((SECONDS + timeout))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || die "timed out after ${timeout}s waiting for $what"
        sleep 0.05
    done
}
alive() { kill -0 "$1" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
file_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
log_has() { grep -q -e "$2" "$1" 2>/dev/null; }
# CPU time of a process and all its threads, in ms (schedstat: ns on CPU, per thread).
cpu_ms() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {printf "%d", ns / 1e6}'
}

# ------------------------------------------------------------------------ the endpoints
"$ECHOD" --port 0 --port-file "$TMPD/echod.port" >"$TMPD/echod.log" 2>&1 &
ECHOD_PID=$!
PIDS+=("$ECHOD_PID")
wait_for 10 "echod to listen" test -s "$TMPD/echod.port"
ECHO_PORT=$(cat "$TMPD/echod.port")

# start_haproxy NAME PORT [NBTHREAD]: HAProxy relaying TCP from PORT to echod, as mpsd relays to
# a device. Sets HAPROXY_PID. Without NBTHREAD HAProxy runs as packaged: a thread per CPU.
start_haproxy() {
    local name=$1 port=$2 threads=${3:-}
    {
        echo "# generated by tests/bench/run.sh"
        echo "global"
        echo "    maxconn 4096"
        [ -z "$threads" ] || echo "    nbthread $threads"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 5s"
        echo "    timeout client 120s"
        echo "    timeout server 120s"
        echo "listen relay"
        echo "    bind 127.0.0.1:$port"
        echo "    server echod 127.0.0.1:$ECHO_PORT"
    } >"$TMPD/$name.cfg"
    haproxy -c -q -f "$TMPD/$name.cfg" >"$TMPD/$name-check.log" 2>&1 ||
        die "haproxy rejects the generated $name.cfg: $(cat "$TMPD/$name-check.log")"
    haproxy -f "$TMPD/$name.cfg" -db >"$TMPD/$name.log" 2>&1 &
    HAPROXY_PID=$!
    PIDS+=("$HAPROXY_PID")
    wait_for 10 "haproxy to listen on $port" listening "$port"
    alive "$HAPROXY_PID" || die "haproxy exited: $(cat "$TMPD/$name.log")"
}
start_haproxy haproxy "$HAPROXY_PORT"
HAPROXY_DEFAULT_PID=$HAPROXY_PID
start_haproxy haproxy-1t "$HAPROXY1_PORT" 1
HAPROXY_1T_PID=$HAPROXY_PID
HAPROXY_THREADS=$(sed -n 's/^Threads:[[:space:]]*//p' /proc/"$HAPROXY_DEFAULT_PID"/status)

MODDIR=$TMPD/modules
mkdir -p "$MODDIR"
ln -s "$SOCKS5_SO" "$MODDIR/socks5.so"
[ "$HAVE_CONNECT" = 0 ] || ln -s "$HTTP_SO" "$MODDIR/http_proxy.so"
# Defaults everywhere but the ports: no device or console authentication (it happens once per
# connection, outside the measured time, and needs the auth_file plugin).
{
    echo "# generated by tests/bench/run.sh"
    echo "[core]"
    echo "AMTListenIP = 127.0.0.1"
    echo "AMTListenPort = $AMT_PORT"
    echo "ModulePath = $MODDIR"
    echo "LogFile = $TMPD/mpsd.log"
    [ -z "${BENCH_MPSD_CORE:-}" ] || printf '%s\n' "$BENCH_MPSD_CORE"
    echo "[AMT_Authenticate]"
    echo "NeedAuthentication = false"
    echo "[Socks_Authenticate]"
    echo "NeedAuthentication = false"
    echo "[module socks5]"
    echo "SocksListenPort = $SOCKS_PORT"
    if [ "$HAVE_CONNECT" = 1 ]; then
        echo "[module http_proxy]"
        echo "HttpListenPort = $HTTP_PORT"
    fi
} >"$TMPD/mps.conf"
"$MPSD" -c "$TMPD/mps.conf" >"$TMPD/mpsd.out" 2>&1 &
MPSD_PID=$!
PIDS+=("$MPSD_PID")
mpsd_listening() {
    alive "$MPSD_PID" || die "mpsd exited during startup: $(cat "$TMPD/mpsd.out" "$TMPD/mpsd.log")"
    log_has "$TMPD/mpsd.log" "listening for Intel AMT devices"
}
wait_for 10 "mpsd to start" mpsd_listening
wait_for 10 "the socks5 listener" listening "$SOCKS_PORT"
[ "$HAVE_CONNECT" = 0 ] || wait_for 10 "the http_proxy listener" listening "$HTTP_PORT"

# shellcheck disable=SC2086 # AMTSIM_ARGS is a list of options
"$AMTSIM" --port "$AMT_PORT" --count "$DEVICES" --fqdn 'dev%d.bench' --ports 16994 --quiet \
    --ready-file "$TMPD/amtsim.ready" $AMTSIM_ARGS >"$TMPD/amtsim.out" 2>"$TMPD/amtsim.log" &
AMTSIM_PID=$!
PIDS+=("$AMTSIM_PID")
amtsim_ready() {
    alive "$AMTSIM_PID" || die "amtsim exited: $(cat "$TMPD/amtsim.log")"
    file_is "$TMPD/amtsim.ready" "$DEVICES"
}
wait_for 30 "$DEVICES amtsim devices to forward" amtsim_ready
log "echod :$ECHO_PORT, haproxy :$HAPROXY_PORT and :$HAPROXY1_PORT, mpsd socks5 :$SOCKS_PORT" \
    "$([ "$HAVE_CONNECT" = 1 ] && echo "http :$HTTP_PORT") with $DEVICES amtsim devices"

# ------------------------------------------------------------------------- the paths
# path name -> relaybench mode and address, the relay's pid, the echo endpoint's pid
PATHS=(direct haproxy haproxy-1t mpsd-socks5)
# connection i goes to device i modulo DEVICES: concurrent connections use different tunnels
DEVICE_TARGET="--target dev%d.bench:16994 --spread $DEVICES"
[ "$HAVE_CONNECT" = 0 ] || PATHS+=(mpsd-connect)
path_args() {
    case $1 in
    direct) echo "--direct 127.0.0.1:$ECHO_PORT" ;;
    haproxy) echo "--direct 127.0.0.1:$HAPROXY_PORT" ;;
    haproxy-1t) echo "--direct 127.0.0.1:$HAPROXY1_PORT" ;;
    mpsd-socks5) echo "--socks5 127.0.0.1:$SOCKS_PORT $DEVICE_TARGET" ;;
    mpsd-connect) echo "--connect 127.0.0.1:$HTTP_PORT $DEVICE_TARGET" ;;
    esac
}
path_relay_pid() {
    case $1 in
    direct) echo "" ;;
    haproxy) echo "$HAPROXY_DEFAULT_PID" ;;
    haproxy-1t) echo "$HAPROXY_1T_PID" ;;
    *) echo "$MPSD_PID" ;;
    esac
}
path_endpoint_pid() {
    case $1 in
    mpsd-*) echo "$AMTSIM_PID" ;;
    *) echo "$ECHOD_PID" ;;
    esac
}
# test name -> relaybench options
test_args() {
    case $1 in
    tput1) echo "--test throughput --conns 1 --mib $MIB" ;;
    tputN) echo "--test throughput --conns $CONNS --mib $MIB" ;;
    lat1) echo "--test latency --lat-conns 1 --count $LAT_COUNT --warmup 1000" ;;
    latN) echo "--test latency --lat-conns $LAT_CONNS --count $((LAT_COUNT * 2)) --warmup 100" ;;
    esac
}
TESTS=(tput1 tputN lat1 latN)

RESULTS=$TMPD/results.txt
: >"$RESULTS"
# measure ROUND PATH TEST: one relaybench run; its result line, prefixed with the round, path,
# test and the CPU the relay and the echo endpoint used meanwhile, goes to RESULTS.
measure() {
    local round=$1 path=$2 test=$3 relay endpoint r0=0 e0 r1=0 e1 out rc=0
    relay=$(path_relay_pid "$path")
    endpoint=$(path_endpoint_pid "$path")
    [ -z "$relay" ] || r0=$(cpu_ms "$relay")
    e0=$(cpu_ms "$endpoint")
    # shellcheck disable=SC2046 # word splitting of the option lists is intended
    out=$("$RELAYBENCH" $(path_args "$path") $(test_args "$test") --label "$path" --quiet \
        --timeout 60 2>"$TMPD/relaybench.err") || rc=$?
    [ "$rc" = 0 ] || die "$path $test (round $round): $(cat "$TMPD/relaybench.err")"
    [ -z "$relay" ] || r1=$(cpu_ms "$relay")
    e1=$(cpu_ms "$endpoint")
    echo "round=$round path=$path test=$test relay_cpu_ms=$((r1 - r0))" \
        "endpoint_cpu_ms=$((e1 - e0)) $out" >>"$RESULTS"
    printf '  %-12s %-6s %s\n' "$path" "$test" \
        "$(echo "$out" | sed -e 's/.*mibps=\([0-9.]*\).*/\1 MiB\/s/' \
            -e 's/.* p50_us=\([0-9.]*\).* p99_us=\([0-9.]*\).*/p50 \1 us, p99 \2 us/')"
}

# Warm-up, not counted: every path carries echoed bytes once (and is checked) before timing.
for p in "${PATHS[@]}"; do
    # shellcheck disable=SC2046
    "$RELAYBENCH" $(path_args "$p") --label "$p" --quiet --timeout 60 --conns "$CONNS" \
        --mib 16 --lat-conns "$LAT_CONNS" --count 2000 --warmup 10 >/dev/null \
        2>"$TMPD/relaybench.err" || die "warm-up through $p: $(cat "$TMPD/relaybench.err")"
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    # Paths rotate from round to round, so drift in the machine's load hits each one alike.
    n=${#PATHS[@]}
    for test in "${TESTS[@]}"; do
        for i in $(seq 0 $((n - 1))); do
            measure "$round" "${PATHS[$(((i + round - 1) % n))]}" "$test"
        done
    done
done
ELAPSED=$((SECONDS - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------- stop and check
alive "$MPSD_PID" || die "mpsd died during the benchmark: $(tail -n 20 "$TMPD/mpsd.log")"
kill -TERM "$AMTSIM_PID"
rc=0
wait "$AMTSIM_PID" || rc=$?
[ "$rc" = 0 ] || die "amtsim exited with status $rc: $(tail -n 20 "$TMPD/amtsim.log")"
if grep -q '^anomalies' "$TMPD/amtsim.out"; then
    die "amtsim saw unexpected APF from mpsd: $(cat "$TMPD/amtsim.out" "$TMPD/amtsim.log")"
fi
kill -TERM "$MPSD_PID"
rc=0
wait "$MPSD_PID" || rc=$?
[ "$rc" = 0 ] || die "mpsd exited with status $rc after SIGTERM: $(tail -n 20 "$TMPD/mpsd.log")"
# Nothing in the run should have made mpsd complain (the fd-limit notice at start aside).
if grep -v 'file descriptor limit' "$TMPD/mpsd.log" | grep -q -e '\[LM ERROR\]' -e '\[LM WARNING\]'
then
    die "mpsd logged errors or warnings: $(grep -e 'ERROR\]' -e 'WARNING\]' "$TMPD/mpsd.log" |
        head -n 5)"
fi

# ------------------------------------------------------------------------- report
mkdir -p "$(dirname "$REPORT")"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
python3 "$BENCH_DIR/report.py" "$RESULTS" "$REPORT" \
    "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "machine=$(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)" \
    "haproxy=$(haproxy -v 2>/dev/null | head -n 1)" \
    "haproxy_threads=$HAPROXY_THREADS" \
    "mpsd=$("$MPSD" -V 2>/dev/null | head -n 1)" \
    "libuv=$(pkg-config --modversion libuv 2>/dev/null || echo '?')" \
    "commit=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')$(
        git -C "$top_srcdir" diff --quiet HEAD -- core modules 2>/dev/null ||
            echo ' (+ local changes)')" \
    "rounds=$ROUNDS" "mib=$MIB" "conns=$CONNS" "lat_count=$LAT_COUNT" "lat_conns=$LAT_CONNS" \
    "devices=$DEVICES" "amtsim_args=$AMTSIM_ARGS" "mpsd_core=${BENCH_MPSD_CORE:-}" \
    "elapsed=${ELAPSED}" "load=$LOAD_BEFORE -> $LOAD_AFTER" "connect=$HAVE_CONNECT"
log "report written to $REPORT"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q '^<!-- targets: missed -->' "$REPORT"; then
    die "mpsd missed a target (BENCH_STRICT=1)"
fi
