#!/bin/bash
# relay_cluster.sh - a console's SOCKS5 round trip and echo throughput to a device held by the
# node it connects to, next to the same to a device held by another node (cluster_link, issue
# 15), in the same run.
# SPDX-License-Identifier: Apache-2.0
#
# `make bench-relay` runs this from a build directory after `make`; tests/bench/README.md
# ("Relay across nodes") says what is measured. One redis-server on a UNIX socket of the run's
# own, two mpsd nodes A and B (cluster_redis, cluster_link, socks5, admin_http; every listener
# on 127.0.0.1 port 0, the bound ports read from each node's ReadyFile), amtsim devices on
# each. relaybench connects to A's SOCKS5 only: to A's own devices (same node) and to B's
# (relayed over the A -> B link). Needs redis-server, redis-cli, openssl, curl and python3.
# Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   BENCH_ROUNDS      rounds; each measures both paths once, the report takes medians (3)
#   BENCH_MIB         MiB echoed per throughput measurement (256)
#   BENCH_CONNS       connections of the parallel throughput test (8)
#   BENCH_LAT_COUNT   counted round trips per latency measurement (20000)
#   BENCH_LAT_CONNS   connections of the concurrent latency test (32)
#   BENCH_DEVICES     amtsim devices on each node; concurrent connections go to different
#                     devices (32)
#   BENCH_AMTSIM_ARGS device options (--max-data 16384 --window 65536, as `make bench`)
#   BENCH_REPORT      the markdown report ($top_builddir/tests/bench/REPORT-RELAY.md)
#   BENCH_HOP=0       skip the reference path through a plain TCP hop (HAProxy, nbthread 1)
#                     in front of node A (measured when haproxy is installed)
#   BENCH_STRICT=1    exit 1 when the latency target is missed (default: report only)
#   KEEP=1            keep the temp dir (configs, logs, raw results)
# Exit status: 0 done (target met or not, unless BENCH_STRICT), 1 failure, 2 missing tools.

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=bench-relay
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$BENCH_DIR/common.sh"

ROUNDS=${BENCH_ROUNDS:-3}
MIB=${BENCH_MIB:-256}
CONNS=${BENCH_CONNS:-8}
LAT_COUNT=${BENCH_LAT_COUNT:-20000}
LAT_CONNS=${BENCH_LAT_CONNS:-32}
DEVICES=${BENCH_DEVICES:-32}
AMTSIM_ARGS=${BENCH_AMTSIM_ARGS:---max-data 16384 --window 65536}
REPORT=${BENCH_REPORT:-$top_builddir/tests/bench/REPORT-RELAY.md}

for t in redis-server redis-cli openssl curl python3; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "$BENCH_NAME: $t is missing (Debian: apt-get install redis-server openssl curl python3)" >&2
        exit 2
    fi
done
SO_DIR=$top_builddir/modules
for f in "$MPSD" "$AMTSIM" "$RELAYBENCH" "$SOCKS5_SO"; do
    [ -e "$f" ] || die "$f is missing: run make first (socks5 and amtsim must not be disabled)"
done
for m in cluster_redis cluster_link admin_http; do
    [ -e "$SO_DIR/$m/.libs/$m.so" ] ||
        die "$SO_DIR/$m/.libs/$m.so is missing: run make first (cluster_redis needs libhiredis-dev)"
done

HOP=${BENCH_HOP:-1}
command -v haproxy >/dev/null 2>&1 || HOP=0

bench_tmpdir
MODDIR=$TMPD/modules
mkdir -p "$MODDIR"
ln -s "$SOCKS5_SO" "$MODDIR/socks5.so"
for m in cluster_redis cluster_link admin_http; do
    ln -s "$SO_DIR/$m/.libs/$m.so" "$MODDIR/$m.so"
done

# ------------------------------------------------------------------------- redis
SOCK=$TMPD/redis.sock
redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no --dir "$TMPD" \
    >"$TMPD/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
redis_ready() {
    alive "$REDIS_PID" || die "redis-server exited: $(cat "$TMPD/redis.log")"
    [ -S "$SOCK" ] && [ "$(redis-cli -s "$SOCK" PING 2>/dev/null)" = PONG ]
}
wait_for 20 "redis-server on $SOCK" redis_ready

# ------------------------------------------------------------------------- nodes
KEY=$TMPD/cluster.key
openssl rand -hex 32 >"$KEY"
chmod 600 "$KEY"
declare -A NPID NLOG NSOCKS NADMIN NAMT SIMPID
# start_node NAME: mpsd node NAME at mps.conf's defaults but the ports, no authentication
# (common.sh's mpsd_conf_head) and the cluster modules; no control socket, as two nodes would
# share the default path.
start_node() {
    local n=$1
    {
        mpsd_conf_head "$TMPD/node$n.ready" "$TMPD/node$n.log" "ControlSocket = none"
        cat <<EOF
[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
HeartbeatSeconds = 1
[module cluster_link]
Listen = 127.0.0.1:0
SharedKeyFile = $KEY
[module socks5]
Listen = 127.0.0.1:0
[module admin_http]
Listen = 127.0.0.1:0
Auth = off
EOF
    } >"$TMPD/node$n.conf"
    run_mpsd "$TMPD/node$n.conf" "$TMPD/node$n.out" "$TMPD/node$n.log" "node $n to start"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG
    NAMT[$n]=$(ready_port core)
    NSOCKS[$n]=$(ready_port socks5)
    NADMIN[$n]=$(ready_port admin_http)
    ready_port cluster_link >/dev/null
}
start_node A
start_node B

# devices NODE FQDN UUID_BASE: DEVICES amtsim devices on NODE, until every one forwards.
devices() {
    local n=$1
    # shellcheck disable=SC2086 # AMTSIM_ARGS is a list of options
    "$AMTSIM" --port "${NAMT[$n]}" --count "$DEVICES" --fqdn "$2" --uuid-base "$3" \
        --ports 16994 --quiet --ready-file "$TMPD/amtsim$n.ready" $AMTSIM_ARGS \
        >"$TMPD/amtsim$n.out" 2>"$TMPD/amtsim$n.log" &
    SIMPID[$n]=$!
    PIDS+=("$!")
    wait_for 30 "$DEVICES amtsim devices on node $n to forward" amtsim_ready "$n"
}
amtsim_ready() {
    alive "${SIMPID[$1]}" || die "amtsim of node $1 exited: $(cat "$TMPD/amtsim$1.log")"
    file_is "$TMPD/amtsim$1.ready" "$DEVICES"
}
devices A 'a%d.bench' 11111111-2222-3333-4444-0000000a0000
devices B 'b%d.bench' 11111111-2222-3333-4444-0000000b0000

# cluster NODE EXPR: a Python expression over NODE's /api/v1/cluster (j; c its links member)
cluster() {
    curl -q -sf --max-time 10 "http://127.0.0.1:${NADMIN[$1]}/api/v1/cluster" |
        python3 -c 'import json, sys
j = json.load(sys.stdin)
c = j.get("links") or {}
print(eval(sys.argv[1]))' "$2"
}
a_knows_b() {
    log_has "${NLOG[A]}" "directory: $DEVICES remote devices on 1 other node" ||
        [ "$(cluster A "j['remote_devices']" 2>/dev/null)" = "$DEVICES" ]
}
wait_for 60 "node A's directory to hold node B's $DEVICES devices" a_knows_b
log "redis on $SOCK; node A socks5 :${NSOCKS[A]}, node B :${NSOCKS[B]}; $DEVICES amtsim" \
    "devices on each; A knows B's"

# The reference: the same-node path with one more process and TCP hop in it, a relay that does
# nothing but copy bytes (HAProxy in TCP mode on one thread, like mpsd's one event loop) in
# front of node A's SOCKS5: what one more hop costs on this machine, next to what the link's
# costs.
HOP_PID=""
if [ "$HOP" = 1 ]; then
    reserve_port HOP_PORT
    {
        echo "# generated by $BENCH_SCRIPT"
        echo "global"
        echo "    maxconn 4096"
        echo "    nbthread 1"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 5s"
        echo "    timeout client 120s"
        echo "    timeout server 120s"
        echo "listen hop"
        echo "    bind 127.0.0.1:$HOP_PORT"
        echo "    server nodeA 127.0.0.1:${NSOCKS[A]}"
    } >"$TMPD/hop.cfg"
    run_haproxy hop "$HOP_PORT" "$TMPD/hop.log"
    HOP_PID=$HAPROXY_PID
fi

# ------------------------------------------------------------------------- the paths
PATHS=(local relayed)
[ "$HOP" = 0 ] || PATHS=(local hop relayed)
path_target() {
    case $1 in
    local | hop) echo "a%d.bench:16994" ;;
    relayed) echo "b%d.bench:16994" ;;
    esac
}
path_socks() {
    case $1 in
    hop) echo "127.0.0.1:$HOP_PORT" ;;
    *) echo "127.0.0.1:${NSOCKS[A]}" ;;
    esac
}
test_args() {
    case $1 in
    tput1) echo "--test throughput --conns 1 --mib $MIB" ;;
    tputN) echo "--test throughput --conns $CONNS --mib $MIB" ;;
    lat1) echo "--test latency --lat-conns 1 --count $LAT_COUNT --warmup 1000" ;;
    latN) echo "--test latency --lat-conns $LAT_CONNS --count $((LAT_COUNT * 2)) --warmup 100" ;;
    esac
}
TESTS=(lat1 latN tput1 tputN)
# link_counts: the payload node B's links carried so far (both ways), the frames B sent and
# the writes that carried them
link_counts() { cluster B "'%d %d %d' % (c['bytes_in'] + c['bytes_out'], c['frames_out'], c['writes'])"; }

RESULTS=$TMPD/results.txt
: >"$RESULTS"
# measure ROUND PATH TEST: one relaybench run through A's SOCKS5; its result line, prefixed
# with the round, path, test, the CPU each mpsd and each amtsim used meanwhile and the bytes
# node B's link carried meanwhile, goes to RESULTS.
measure() {
    local round=$1 path=$2 test=$3 p out rc=0 l0 l1 h0=0 h1=0 b0 f0 w0 b1 f1 w1
    local -A c0 c1
    for p in "${NPID[A]}" "${NPID[B]}" "${SIMPID[A]}" "${SIMPID[B]}"; do c0[$p]=$(cpu_ms "$p"); done
    [ -z "$HOP_PID" ] || h0=$(cpu_ms "$HOP_PID")
    l0=$(link_counts) || die "node B's /api/v1/cluster did not answer"
    read -r b0 f0 w0 <<<"$l0"
    # shellcheck disable=SC2046 # word splitting of the option list is intended
    out=$("$RELAYBENCH" --socks5 "$(path_socks "$path")" --target "$(path_target "$path")" \
        --spread "$DEVICES" $(test_args "$test") --label "$path" --quiet --timeout 60 \
        2>"$TMPD/relaybench.err") || rc=$?
    [ "$rc" = 0 ] || die "$path $test (round $round): $(cat "$TMPD/relaybench.err")"
    for p in "${NPID[A]}" "${NPID[B]}" "${SIMPID[A]}" "${SIMPID[B]}"; do c1[$p]=$(cpu_ms "$p"); done
    [ -z "$HOP_PID" ] || h1=$(cpu_ms "$HOP_PID")
    l1=$(link_counts) || die "node B's /api/v1/cluster did not answer"
    read -r b1 f1 w1 <<<"$l1"
    local dev=${SIMPID[A]}
    [ "$path" != relayed ] || dev=${SIMPID[B]}
    echo "round=$round path=$path test=$test" \
        "a_cpu_ms=$((c1[${NPID[A]}] - c0[${NPID[A]}]))" \
        "b_cpu_ms=$((c1[${NPID[B]}] - c0[${NPID[B]}]))" \
        "dev_cpu_ms=$((c1[$dev] - c0[$dev]))" "hop_cpu_ms=$((h1 - h0))" "link_bytes=$((b1 - b0))" \
        "link_frames=$((f1 - f0)) link_writes=$((w1 - w0)) $out" >>"$RESULTS"
    printf '  %-8s %-6s %s %s\n' "$path" "$test" \
        "$(echo "$out" | sed -e 's/.*mibps=\([0-9.]*\).*/\1 MiB\/s/' \
            -e 's/.* p50_us=\([0-9.]*\).* p99_us=\([0-9.]*\).*/p50 \1 us, p99 \2 us/')" \
        "(link $((b1 - b0)) bytes)"
}

# Warm-up, not counted: every path carries echoed bytes once (and is checked), which also
# brings A's link to B up before anything is timed.
for p in "${PATHS[@]}"; do
    "$RELAYBENCH" --socks5 "$(path_socks "$p")" --target "$(path_target "$p")" \
        --spread "$DEVICES" --label "$p" --quiet --timeout 60 --conns "$CONNS" --mib 16 \
        --lat-conns "$LAT_CONNS" --count 2000 --warmup 10 >/dev/null \
        2>"$TMPD/relaybench.err" || die "warm-up through $p: $(cat "$TMPD/relaybench.err")"
done
LINKS_BEFORE=$(cluster B "'served=%d bytes_in=%d bytes_out=%d' % (c['served'], c['bytes_in'], c['bytes_out'])")

measure_rounds
LINKS_AFTER=$(cluster B "'served=%d bytes_in=%d bytes_out=%d up=%d failed=%d serve_refused=%d frames_out=%d writes=%d' % (c['served'], c['bytes_in'], c['bytes_out'], c['up'], c['failed'], c['serve_refused'], c['frames_out'], c['writes'])")
ROUTED_A=$(cluster A "'routed=%d route_failed=%d' % (c['routed'], c['route_failed'])")

# ------------------------------------------------------------------- stop and check
declare -A NLINES
for n in A B; do
    alive "${NPID[$n]}" || die "node $n died during the benchmark: $(tail -n 20 "${NLOG[$n]}")"
    NLINES[$n]=$(wc -l <"${NLOG[$n]}")
done
for n in A B; do
    kill -TERM "${SIMPID[$n]}"
    rc=0
    wait "${SIMPID[$n]}" || rc=$?
    [ "$rc" = 0 ] || die "amtsim of node $n exited with status $rc: $(tail -n 20 "$TMPD/amtsim$n.log")"
    if grep -q '^anomalies' "$TMPD/amtsim$n.out"; then
        die "amtsim of node $n saw unexpected APF: $(cat "$TMPD/amtsim$n.out" "$TMPD/amtsim$n.log")"
    fi
done
for n in A B; do
    kill -TERM "${NPID[$n]}"
    rc=0
    wait "${NPID[$n]}" || rc=$?
    [ "$rc" = 0 ] || die "node $n exited with status $rc after SIGTERM: $(tail -n 20 "${NLOG[$n]}")"
done
# Nothing may have made a node complain, but for the start's notices (running as root, which
# the bench may) and, once the nodes stop, B hearing A's end of their link close.
for n in A B; do
    {
        head -n "${NLINES[$n]}" "${NLOG[$n]}"
        tail -n +"$((NLINES[$n] + 1))" "${NLOG[$n]}" | grep -v 'the other end closed the link$'
    } | grep -v 'running as root (AllowRoot = true)' >"$TMPD/node$n.checked" || true
    check_mpsd_log "$TMPD/node$n.checked"
done

# ------------------------------------------------------------------------- report
write_report relay_report.py \
    "libuv=$(pkg-config --modversion libuv 2>/dev/null || echo '?')" \
    "redis=$(redis-server --version | head -n 1)" \
    "rounds=$ROUNDS" "mib=$MIB" "conns=$CONNS" "lat_count=$LAT_COUNT" "lat_conns=$LAT_CONNS" \
    "devices=$DEVICES" "amtsim_args=$AMTSIM_ARGS" "elapsed=${ELAPSED}" \
    "load=$LOAD_BEFORE -> $LOAD_AFTER" "links_before=$LINKS_BEFORE" "links_after=$LINKS_AFTER" \
    "routed_a=$ROUTED_A" "hop=$HOP"
