#!/bin/bash
# tls.sh - the TLS benchmark: mpsd's tls module next to stunnel4 and HAProxy (one thread)
# terminating the same TLS in front of mpsd's plain AMT port, in one run.
# SPDX-License-Identifier: Apache-2.0
#
# `make bench-tls` runs this from a build directory after `make`; README.md in this directory
# ("TLS benchmark") says what is measured and how to read REPORT-TLS.md. Everything listens on
# 127.0.0.1, on ports the kernel picks; nothing needs root, but stunnel4 and haproxy must be
# installed. Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   BENCH_ROUNDS       rounds of the handshake and throughput measurements; medians (3)
#   BENCH_HS_DEVICES   devices per handshake measurement (2000)
#   BENCH_HS_RATE      amtsim --connect-rate of a handshake measurement (10000: a burst)
#   BENCH_TLS_VERSIONS protocol versions the handshake rate is measured with ("1.2 1.3")
#   BENCH_MIB          MiB echoed per throughput measurement (256)
#   BENCH_CONNS        channels (connections, one device each) of the parallel throughput (8)
#   BENCH_IDLE         idle tunnels of the memory measurement (10000; stunnel and HAProxy need
#                      two descriptors per tunnel, so they get the largest count that fits)
#   BENCH_IDLE_RATE    amtsim --connect-rate while the idle tunnels come up (500)
#   BENCH_SETUPS       which setups, in order ("mpsd stunnel haproxy")
#   BENCH_SKIP         phases to leave out: any of "rss handshake throughput"
#   BENCH_REPORT       where the markdown report goes ($top_builddir/tests/bench/REPORT-TLS.md)
#   BENCH_STRICT=1     exit 1 when mpsd misses a target (default: report only)
#   KEEP=1             keep the temp dir (configs, logs, raw results)
# Exit status: 0 done (targets met or not, unless BENCH_STRICT), 1 failure, 2 missing tools.

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=bench-tls
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$BENCH_DIR/common.sh"

ROUNDS=${BENCH_ROUNDS:-3}
HS_DEVICES=${BENCH_HS_DEVICES:-2000}
HS_RATE=${BENCH_HS_RATE:-10000}
TLS_VERSIONS=${BENCH_TLS_VERSIONS:-1.2 1.3}
MIB=${BENCH_MIB:-256}
CONNS=${BENCH_CONNS:-8}
IDLE=${BENCH_IDLE:-10000}
IDLE_RATE=${BENCH_IDLE_RATE:-500}
SETUPS=${BENCH_SETUPS:-mpsd stunnel haproxy}
SKIP=${BENCH_SKIP:-}
REPORT=${BENCH_REPORT:-$top_builddir/tests/bench/REPORT-TLS.md}
AMTSIM_ARGS="--max-data 16384 --window 65536" # as in run.sh: see README.md
# The suite every setup is pinned to (the issue's): full handshakes with an RSA-2048 key.
CIPHERS12=ECDHE-RSA-AES128-GCM-SHA256
SUITES13=TLS_AES_128_GCM_SHA256

TLS_SO=$top_builddir/modules/tls/.libs/tls.so

skipped() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }

missing=
for tool in haproxy stunnel4 openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "bench-tls: missing:$missing; the benchmark compares mpsd with stunnel4 and HAProxy." >&2
    echo "bench-tls: install with: apt-get install stunnel4 haproxy openssl python3" >&2
    echo "bench-tls: (the services need not run: the benchmark starts its own instances)" >&2
    exit 2
fi
for f in "$MPSD" "$AMTSIM" "$RELAYBENCH" "$SOCKS5_SO" "$TLS_SO"; do
    [ -e "$f" ] || die "$f is missing: run make and make tests/bench/relaybench first"
done
"$AMTSIM" --help 2>&1 | grep -q -e '--tls-version' ||
    die "$AMTSIM has no --tls: the devices cannot speak TLS (rebuild amtsim)"

bench_tmpdir

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/"$1"/status; }
nfds() { find /proc/"$1"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fds_at_most() { [ "$(nfds "$1")" -le "$2" ]; }
fds_at_least() { [ "$(nfds "$1")" -ge "$2" ]; }
now_ms() { date +%s%3N; }
# stop PID NAME [SIGNAL]: SIGTERM (or SIGNAL) and reap; a non-zero status fails the run.
stop() {
    local rc=0
    kill -"${3:-TERM}" "$1" 2>/dev/null || true
    wait "$1" || rc=$?
    [ "$rc" = 0 ] || die "$2 exited with status $rc after SIGTERM"
}

# ------------------------------------------------------------------ certificate
# One RSA-2048 key and self-signed certificate for every terminator (devices do not verify:
# AMT's trust anchors are out of scope here, and verification costs the client alike).
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=mps.bench" \
    -keyout "$TMPD/server.key" -out "$TMPD/server.pem" >"$TMPD/openssl.log" 2>&1 ||
    die "openssl req: $(cat "$TMPD/openssl.log")"
cat "$TMPD/server.pem" "$TMPD/server.key" >"$TMPD/haproxy.pem"

# ------------------------------------------------------------------ the processes
MODDIR=$TMPD/modules
mkdir -p "$MODDIR"
ln -s "$SOCKS5_SO" "$MODDIR/socks5.so"
ln -s "$TLS_SO" "$MODDIR/tls.so"

# start_mpsd NAME: mpsd with its plain AMT port, the tls module (resumption off, the suites
# above) and socks5; defaults otherwise, no authentication (as run.sh). Sets MPSD_PID,
# AMT_PORT (plain), TLS_PORT, SOCKS_PORT.
start_mpsd() {
    local name=$1
    {
        mpsd_conf_head "$TMPD/$name.ready" "$TMPD/$name.log"
        echo "[module tls]"
        echo "Listen = 127.0.0.1:0"
        echo "Certificate = $TMPD/server.pem"
        echo "PrivateKey = $TMPD/server.key"
        echo "Ciphers = $CIPHERS12"
        echo "Ciphersuites = $SUITES13"
        echo "SessionCache = off"
        # stunnel and HAProxy give a handshake as long as their idle timeouts: under a burst
        # the queue of handshakes can exceed mpsd's default 10 s
        echo "HandshakeTimeout = 120s"
        echo "[module socks5]"
        echo "Listen = 127.0.0.1:0"
    } >"$TMPD/$name.conf"
    run_mpsd "$TMPD/$name.conf" "$TMPD/$name.out" "$TMPD/$name.log" "mpsd ($name) to start"
    AMT_PORT=$(ready_port core)
    TLS_PORT=$(ready_port tls)
    SOCKS_PORT=$(ready_port socks5)
    # A connection to each listener before anything is measured: the loop's first TCP stream
    # makes libuv open its spare descriptor (/dev/null, kept for EMFILE), and the phases wait
    # for mpsd's descriptor count to come back to the one they start from.
    listening "$TLS_PORT" || die "mpsd's TLS listener refuses connections"
    listening "$SOCKS_PORT" || die "mpsd's socks5 listener refuses connections"
}
# stop_mpsd: SIGTERM; it must exit 0 and have logged no warning (the fd-limit notice aside).
stop_mpsd() {
    stop "$MPSD_PID" mpsd
    check_mpsd_log "$MPSD_LOG"
}

# start_stunnel NAME MAXCONN: stunnel4 in the foreground accepting TLS, connecting to mpsd's
# plain port. Sets STUNNEL_PID and STUNNEL_PORT.
start_stunnel() {
    local name=$1
    reserve_port STUNNEL_PORT
    {
        echo "; generated by $BENCH_SCRIPT"
        echo "foreground = yes"
        echo "pid ="
        echo "output = $TMPD/$name-term.log"
        echo "debug = 4"
        echo "[amt]"
        echo "accept = 127.0.0.1:$STUNNEL_PORT"
        echo "connect = 127.0.0.1:$AMT_PORT"
        echo "cert = $TMPD/server.pem"
        echo "key = $TMPD/server.key"
        echo "ciphers = $CIPHERS12"
        echo "ciphersuites = $SUITES13"
        # resumption off: no tickets, and a one-entry cache the devices never hit (they offer
        # no session)
        echo "options = NO_TICKET"
        echo "sessionCacheSize = 1"
        echo "TIMEOUTidle = 3600"
    } >"$TMPD/$name.cfg"
    stunnel4 "$TMPD/$name.cfg" >"$TMPD/$name-term.out" 2>&1 &
    STUNNEL_PID=$!
    PIDS+=("$STUNNEL_PID")
    wait_for 10 "stunnel to listen on $STUNNEL_PORT" stunnel_up
}
stunnel_up() {
    alive "$STUNNEL_PID" || die "stunnel exited: $(cat "$TMPD"/*stunnel*-term.*)"
    listening "$STUNNEL_PORT"
}

# start_haproxy NAME MAXCONN: HAProxy with one thread, TCP mode, TLS on the bind line,
# relaying to mpsd's plain port. Sets HAPROXY_PID and HAPROXY_PORT.
start_haproxy() {
    local name=$1 maxconn=$2
    reserve_port HAPROXY_PORT
    {
        echo "# generated by $BENCH_SCRIPT"
        echo "global"
        echo "    nbthread 1"
        echo "    maxconn $maxconn"
        echo "    tune.ssl.cachesize 0"
        echo "    ssl-default-bind-ciphers $CIPHERS12"
        echo "    ssl-default-bind-ciphersuites $SUITES13"
        echo "defaults"
        echo "    mode tcp"
        echo "    maxconn $maxconn"
        echo "    timeout connect 5s"
        echo "    timeout client 3600s"
        echo "    timeout server 3600s"
        echo "listen amt"
        echo "    bind 127.0.0.1:$HAPROXY_PORT ssl crt $TMPD/haproxy.pem no-tls-tickets"
        echo "    server mpsd 127.0.0.1:$AMT_PORT"
    } >"$TMPD/$name.cfg"
    run_haproxy "$name" "$HAPROXY_PORT" "$TMPD/$name-term.log"
}

# setup_port SETUP / setup_pid SETUP: where a setup's devices connect, and its terminator.
setup_port() {
    case $1 in
    mpsd) echo "$TLS_PORT" ;;
    stunnel) echo "$STUNNEL_PORT" ;;
    haproxy) echo "$HAPROXY_PORT" ;;
    esac
}
setup_pid() {
    case $1 in
    mpsd) echo "" ;;
    stunnel) echo "$STUNNEL_PID" ;;
    haproxy) echo "$HAPROXY_PID" ;;
    esac
}

# stop_term SETUP PID: HAProxy exits 0 on SIGUSR1 (soft stop) once its connections are gone
# (SIGTERM kills it: 143). stunnel 5.68 may crash (SIGSEGV) on SIGTERM after thousands of
# connections: that is noted in the report, not a failure of mpsd's run.
stop_term() {
    local rc=0
    case $1 in
    haproxy) stop "$2" haproxy USR1 ;;
    stunnel)
        kill -TERM "$2" 2>/dev/null || true
        wait "$2" || rc=$?
        [ "$rc" = 0 ] || {
            log "  note: stunnel exited with status $rc on SIGTERM"
            echo "phase=note setup=stunnel stop_status=$rc" >>"$RESULTS"
        }
        ;;
    esac
}

RESULTS=$TMPD/results.txt
: >"$RESULTS"
UUID_SEQ=0
# next_uuid: a fresh --uuid-base in UUID for every amtsim run, so no device of one run is
# mistaken for a device of another (or of an earlier one mpsd may still be tearing down).
next_uuid() {
    UUID_SEQ=$((UUID_SEQ + 1))
    UUID=$(printf '8c6a3b2e-5d1f-4e7a-9b0c-%04x00000000' "$UUID_SEQ")
}

# ------------------------------------------------------------- memory per idle tunnel
# Per setup, fresh processes (mpsd keeps freed heap for reuse, so an earlier phase would hide
# growth): the RSS at rest after 16 tunnels came and went (OpenSSL's and libuv's one-time
# set-up is not per tunnel), then with N idle tunnels forwarding two ports each.
settled_rss() { # PID: VmRSS once two samples 500 ms apart agree within 1%
    local a b
    a=$(rss_kib "$1")
    while :; do
        sleep 0.5
        b=$(rss_kib "$1")
        [ $((b > a ? b - a : a - b)) -gt $((a / 100)) ] || break
        a=$b
    done
    echo "$b"
}
run_devices() { # NAME PORT COUNT RATE [amtsim options]: amtsim --tls, its pid in DEV_PID
    local name=$1 port=$2 count=$3 rate=$4
    shift 4
    next_uuid
    "$AMTSIM" --tls --tls-version 1.2 --tls-ciphers "$CIPHERS12" --port "$port" \
        --count "$count" --connect-rate "$rate" --uuid-base "$UUID" \
        --fqdn "$name%d.bench" --keepalive 0 --quiet "$@" \
        >"$TMPD/$name.amtsim.out" 2>"$TMPD/$name.amtsim.log" &
    DEV_PID=$!
    PIDS+=("$DEV_PID")
}
devices_ready() { # READY_FILE COUNT
    alive "$DEV_PID" || die "amtsim exited: $(tail -n 5 "$TMPD"/*.amtsim.log)"
    file_is "$1" "$2"
}
measure_rss() {
    local setup=$1 n=$IDLE pid tport m0 t0=0 m1 t1=0 f0 start
    # stunnel and HAProxy hold two descriptors per tunnel, so the limit caps them below 10,000:
    # HAProxy at (limit - its own) / 2, stunnel at the "Clients allowed" it derives from the
    # limit (limit * 125 / 256); rounded down to hundreds.
    local lim cap=$n
    lim=$(ulimit -Hn)
    case $setup in
    haproxy) cap=$(((lim - 100) / 2 / 100 * 100)) ;;
    stunnel) cap=$((lim * 125 / 256 / 100 * 100)) ;;
    esac
    [ "$cap" -ge "$n" ] || n=$cap
    start_mpsd "rss-$setup"
    case $setup in
    stunnel) start_stunnel "rss-stunnel" ;;
    haproxy) start_haproxy "rss-haproxy" $((n + 50)) ;;
    esac
    tport=$(setup_port "$setup")
    pid=$(setup_pid "$setup")
    f0=$(nfds "$MPSD_PID")
    run_devices "rss0-$setup" "$tport" 16 0 --exit-when-ready --duration 60
    wait "$DEV_PID" || die "16 warm-up devices through $setup did not forward: $(
        cat "$TMPD/rss0-$setup.amtsim.log")"
    wait_for 60 "mpsd to close the warm-up tunnels" fds_at_most "$MPSD_PID" "$f0"
    m0=$(settled_rss "$MPSD_PID")
    [ -z "$pid" ] || t0=$(settled_rss "$pid")
    start=$SECONDS
    run_devices "rss-$setup" "$tport" "$n" "$IDLE_RATE" --ports 16992,16994 --reconnect \
        --ready-file "$TMPD/rss-$setup.ready"
    # stunnel completes fewer than 100 handshakes/s on a loaded 2-CPU machine
    wait_for $((120 + n / 20)) "$n idle tunnels through $setup" \
        devices_ready "$TMPD/rss-$setup.ready" "$n"
    m1=$(settled_rss "$MPSD_PID")
    [ -z "$pid" ] || t1=$(settled_rss "$pid")
    # The devices are still all there once measured (a tunnel lost meanwhile would flatter).
    file_is "$TMPD/rss-$setup.ready" "$n" || die "$setup lost tunnels while measuring"
    local threads=0
    [ -z "$pid" ] || threads=$(sed -n 's/^Threads:[[:space:]]*//p' /proc/"$pid"/status)
    echo "phase=rss setup=$setup tunnels=$n mpsd_rss0_kib=$m0 mpsd_rss1_kib=$m1" \
        "term_rss0_kib=$t0 term_rss1_kib=$t1 mpsd_fds=$(nfds "$MPSD_PID")" \
        "term_threads=$threads ramp_s=$((SECONDS - start))" >>"$RESULTS"
    log "  $setup: $n idle tunnels: mpsd $m0 -> $m1 KiB$([ -z "$pid" ] ||
        echo ", $setup $t0 -> $t1 KiB")"
    stop "$DEV_PID" amtsim
    wait_for 120 "mpsd to close $n tunnels" fds_at_most "$MPSD_PID" "$f0"
    [ -z "$pid" ] || stop_term "$setup" "$pid"
    stop_mpsd
}
if ! skipped rss; then
    log "memory: $IDLE idle TLS tunnels per setup (fresh processes each)"
    for s in $SETUPS; do
        measure_rss "$s"
    done
fi

# ----------------------------------------------------- handshakes and throughput
# One mpsd for every setup, stunnel and HAProxy in front of its plain port; the setups rotate
# from round to round so drift in the machine's load falls on each alike.
start_mpsd shared
for s in $SETUPS; do
    case $s in
    stunnel) start_stunnel stunnel ;;
    haproxy) start_haproxy haproxy 4096 ;;
    esac
done
F_IDLE=$(nfds "$MPSD_PID")

# handshakes ROUND SETUP VERSION: HS_DEVICES devices at HS_RATE, the time until all of them
# forward (TCP + TLS + APF to the forwarding state), and the CPU each process used meanwhile.
handshakes() {
    local round=$1 setup=$2 v=$3 pid tport m0 t0=0 m1 t1=0 a b rc=0 ciphers=
    tport=$(setup_port "$setup")
    pid=$(setup_pid "$setup")
    [ "$v" != 1.2 ] || ciphers="--tls-ciphers $CIPHERS12"
    m0=$(cpu_ms "$MPSD_PID")
    [ -z "$pid" ] || t0=$(cpu_ms "$pid")
    next_uuid
    a=$(now_ms)
    # shellcheck disable=SC2086 # ciphers is empty or an option and its value
    "$AMTSIM" --tls --tls-version "$v" $ciphers --port "$tport" --count "$HS_DEVICES" \
        --connect-rate "$HS_RATE" --uuid-base "$UUID" --fqdn "hs$round$setup%d.bench" \
        --ports 16992 --keepalive 0 --exit-when-ready --duration 120 \
        >"$TMPD/hs.out" 2>"$TMPD/hs.log" &
    DEV_PID=$!
    PIDS+=("$DEV_PID")
    wait "$DEV_PID" || rc=$?
    b=$(now_ms)
    [ "$rc" = 0 ] || die "$HS_DEVICES devices through $setup (TLS $v, round $round): $(
        head -n 5 "$TMPD/hs.log")"
    grep -q "^ready $HS_DEVICES" "$TMPD/hs.out" || die "amtsim: $(cat "$TMPD/hs.out")"
    m1=$(cpu_ms "$MPSD_PID")
    [ -z "$pid" ] || t1=$(cpu_ms "$pid")
    echo "phase=hs round=$round setup=$setup tls=$v devices=$HS_DEVICES ms=$((b - a))" \
        "mpsd_cpu_ms=$((m1 - m0)) term_cpu_ms=$((t1 - t0))" \
        "rate=$(awk -v n="$HS_DEVICES" -v ms="$((b - a))" 'BEGIN {printf "%.1f", n * 1000 / ms}')" \
        >>"$RESULTS"
    printf '  %-8s TLS %s %6d handshakes/s\n' "$setup" "$v" $((HS_DEVICES * 1000 / (b - a)))
    # the devices left at exit: wait until mpsd (and the terminator) let go of them all
    wait_for 120 "mpsd to close the tunnels of the handshake run" fds_at_most "$MPSD_PID" \
        "$F_IDLE"
}

# throughput devices: per setup 8 devices forwarding the echo port, for the whole phase
if ! skipped throughput; then
    for s in $SETUPS; do
        # shellcheck disable=SC2086 # AMTSIM_ARGS is a list of options
        run_devices "tp$s" "$(setup_port "$s")" "$CONNS" 0 --ports 16994 \
            --ready-file "$TMPD/tp$s.ready" $AMTSIM_ARGS
        eval "TP_PID_$s=$DEV_PID"
        wait_for 30 "$CONNS devices through $s" devices_ready "$TMPD/tp$s.ready" "$CONNS"
    done
    F_IDLE=$(nfds "$MPSD_PID")
fi
# tput ROUND SETUP CONNS: relaybench through mpsd's socks5 into CONNS channels of the setup's
# devices (one device each), every byte echoed and compared.
tput() {
    local round=$1 setup=$2 conns=$3 pid dpid m0 t0=0 e0 m1 t1=0 e1 out rc=0
    pid=$(setup_pid "$setup")
    dpid=$(eval echo "\$TP_PID_$setup")
    m0=$(cpu_ms "$MPSD_PID")
    [ -z "$pid" ] || t0=$(cpu_ms "$pid")
    e0=$(cpu_ms "$dpid")
    out=$("$RELAYBENCH" --socks5 "127.0.0.1:$SOCKS_PORT" --target "tp$setup%d.bench:16994" \
        --spread "$CONNS" --test throughput --conns "$conns" --mib "$MIB" --label "$setup" \
        --quiet --timeout 120 2>"$TMPD/relaybench.err") || rc=$?
    [ "$rc" = 0 ] || die "throughput through $setup (round $round): $(cat "$TMPD/relaybench.err")"
    m1=$(cpu_ms "$MPSD_PID")
    [ -z "$pid" ] || t1=$(cpu_ms "$pid")
    e1=$(cpu_ms "$dpid")
    echo "phase=tput round=$round setup=$setup conns=$conns mpsd_cpu_ms=$((m1 - m0))" \
        "term_cpu_ms=$((t1 - t0)) dev_cpu_ms=$((e1 - e0)) $out" >>"$RESULTS"
    printf '  %-8s %d channel(s) %s\n' "$setup" "$conns" \
        "$(echo "$out" | sed -e 's/.*mibps=\([0-9.]*\).*/\1 MiB\/s/')"
}

if ! skipped throughput; then
    # warm-up, not counted: every setup carries echoed bytes once
    for s in $SETUPS; do
        "$RELAYBENCH" --socks5 "127.0.0.1:$SOCKS_PORT" --target "tp$s%d.bench:16994" \
            --spread "$CONNS" --test throughput --conns "$CONNS" --mib 16 --quiet \
            --timeout 60 >/dev/null 2>"$TMPD/relaybench.err" ||
            die "warm-up through $s: $(cat "$TMPD/relaybench.err")"
    done
fi

timing_start
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    if ! skipped handshake; then
        for v in $TLS_VERSIONS; do
            # shellcheck disable=SC2086 # SETUPS is a list of names
            for s in $(rotated "$round" $SETUPS); do
                handshakes "$round" "$s" "$v"
            done
        done
    fi
    if ! skipped throughput; then
        for c in 1 "$CONNS"; do
            # shellcheck disable=SC2086 # SETUPS is a list of names
            for s in $(rotated "$round" $SETUPS); do
                tput "$round" "$s" "$c"
            done
        done
    fi
done
timing_end

# ------------------------------------------------------------------ stop and check
alive "$MPSD_PID" || die "mpsd died during the benchmark: $(tail -n 20 "$MPSD_LOG")"
if ! skipped throughput; then
    for s in $SETUPS; do
        p=$(eval echo "\$TP_PID_$s")
        stop "$p" "amtsim ($s)"
        ! grep -q '^anomalies' "$TMPD/tp$s.amtsim.out" ||
            die "amtsim ($s) saw unexpected APF: $(cat "$TMPD/tp$s.amtsim.out")"
    done
fi
for s in $SETUPS; do
    p=$(setup_pid "$s")
    [ -z "$p" ] || stop_term "$s" "$p"
done
stop_mpsd

# ------------------------------------------------------------------------- report
write_report tls_report.py \
    "stunnel=$(stunnel4 -version 2>&1 | grep -m1 '^stunnel')" \
    "stunnel_threading=$(stunnel4 -version 2>&1 | sed -n 's/.*Threading:\([A-Z]*\).*/\1/p')" \
    "openssl=$(openssl version)" \
    "rounds=$ROUNDS" "hs_devices=$HS_DEVICES" "hs_rate=$HS_RATE" "mib=$MIB" "conns=$CONNS" \
    "idle=$IDLE" "fd_limit=$(ulimit -Hn)" "elapsed=$ELAPSED" \
    "load=$LOAD_BEFORE -> $LOAD_AFTER"
