#!/bin/bash
# rest.sh - the REST benchmark: mpsd's CPU time to answer GET /api/v1/devices?limit=10000 for
# 10,000 simulated devices (admin_http), next to admin_soap's GetConnectedDevices for the same
# devices in the same run, and the memory an idle event subscriber costs.
# SPDX-License-Identifier: Apache-2.0
#
# `make bench-rest` runs this from a build directory after `make`; README.md in this directory
# ("REST benchmark") says what is measured. Everything listens on 127.0.0.1, on ports the
# kernel picks; nothing needs root. Environment (all optional):
#   top_builddir, top_srcdir  set by make; by hand they default to . and two levels above this
#   BENCH_REST_DEVICES      simulated devices (10000; at most the descriptor limit - 500)
#   BENCH_REST_ROUNDS       samples per API, the report takes the median (7)
#   BENCH_REST_BATCH        requests per sample (5): mpsd's CPU time is read from
#                           /proc/PID/stat in clock ticks (10 ms), so a sample spans several
#   BENCH_REST_SUBSCRIBERS  idle event subscribers for the memory figure (1000)
#   BENCH_REST_REPORT       where the markdown report goes ($top_builddir/tests/bench/REPORT-REST.md)
#   BENCH_STRICT=1          exit 1 when the REST list misses its target (100 ms)
#   KEEP=1                  keep the temp dir
# Exit status: 0 done, 1 failure, 2 missing tools.

set -eu

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_NAME=bench-rest
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$BENCH_DIR/common.sh"

N=${BENCH_REST_DEVICES:-10000}
ROUNDS=${BENCH_REST_ROUNDS:-7}
BATCH=${BENCH_REST_BATCH:-5}
SUBS=${BENCH_REST_SUBSCRIBERS:-1000}
REPORT=${BENCH_REST_REPORT:-$top_builddir/tests/bench/REPORT-REST.md}
TARGET_MS=100
REST_SO=$top_builddir/modules/admin_http/.libs/admin_http.so
SOAP_SO=$top_builddir/modules/admin_soap/.libs/admin_soap.so

for t in curl python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "$BENCH_NAME: $t is needed" >&2; exit 2; }
done
for f in "$MPSD" "$AMTSIM" "$REST_SO"; do
    [ -e "$f" ] || die "$f is missing: run make first (admin_http needs jansson)"
done
LIMIT=$(ulimit -n)
[ "$N" -le $((LIMIT - 500)) ] || N=$((LIMIT - 500))

bench_tmpdir
MODDIR=$TMPD/modules
mkdir -p "$MODDIR"
ln -s "$REST_SO" "$MODDIR/"
HAVE_SOAP=0
if [ -e "$SOAP_SO" ]; then
    ln -s "$SOAP_SO" "$MODDIR/"
    HAVE_SOAP=1
fi

CONF=$TMPD/mps.conf
{
    mpsd_conf_head "$TMPD/ready" "$TMPD/mpsd.log" "ControlSocket = none
TraceLevels = INFO|ERROR|WARNING"
    echo "[module admin_http]"
    echo "Listen = 127.0.0.1:0"
    echo "MaxConnections = $((SUBS + 100))"
    echo "MaxEventSubscribers = $((SUBS + 10))"
    if [ "$HAVE_SOAP" = 1 ]; then
        echo "[module admin_soap]"
        echo "Listen = 127.0.0.1:0"
    fi
} >"$CONF"
run_mpsd "$CONF" "$TMPD/mpsd.out" "$TMPD/mpsd.log" "mpsd to start"
AMT_PORT=$(ready_port core)
REST_PORT=$(ready_port admin_http)
[ "$HAVE_SOAP" = 0 ] || SOAP_PORT=$(ready_port admin_soap)

log "starting $N devices"
"$AMTSIM" --port "$AMT_PORT" --count "$N" --connect-rate 2000 --fqdn 'bench%d.example.com' \
    --keepalive 0 --quiet --ready-file "$TMPD/sim.ready" >"$TMPD/amtsim.out" 2>&1 &
PIDS+=("$!")
wait_for 300 "$N devices forwarding" file_is "$TMPD/sim.ready" "$N"

# ticks PID: utime + stime of PID (every thread) in clock ticks, from /proc/PID/stat.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
HZ=$(getconf CLK_TCK)

# Memory per idle event subscriber: mpsd's RSS before and after SUBS of them subscribed. First,
# while the heap holds only the devices: a list's megabytes, once freed, would leave room that
# new subscribers fill without the RSS moving.
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
rss0=$(rss_kb "$MPSD_PID")
python3 - "$REST_PORT" "$SUBS" "$TMPD/subs.ready" "$TMPD/subs.stop" >"$TMPD/subs.out" 2>&1 <<'PY' &
import os, socket, sys, time
port, n, ready, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    # the head, then the greeting comment (": mpsd events after id N") that ends in a blank line
    while b"\r\n\r\n" not in got or b"\n\n" not in got.split(b"\r\n\r\n", 1)[1]:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    socks.append(s)
open(ready, "w").write("%d\n" % len(socks))
while not os.path.exists(stop):
    time.sleep(0.2)
PY
SUBS_PID=$!
PIDS+=("$SUBS_PID")
wait_for 120 "$SUBS subscribers" file_is "$TMPD/subs.ready" "$SUBS"
sleep 1
rss1=$(rss_kb "$MPSD_PID")
touch "$TMPD/subs.stop"
wait "$SUBS_PID" 2>/dev/null || true

REST_URL="http://127.0.0.1:$REST_PORT/api/v1/devices?limit=10000"
SOAP_BODY='<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetConnectedDevicesRequest xmlns="urn:mpsd:MpsAdmin:1"/></soap:Body></soap:Envelope>'
request() { # request rest|soap OUT
    if [ "$1" = rest ]; then
        curl -sS --max-time 60 -o "$2" "$REST_URL"
    else
        curl -sS --max-time 60 -o "$2" -H 'Content-Type: text/xml; charset=utf-8' \
            --data "$SOAP_BODY" "http://127.0.0.1:$SOAP_PORT/"
    fi
}
# Each answer must name every device once, so neither API is timed on a short answer.
for api in rest $([ "$HAVE_SOAP" = 1 ] && echo soap); do
    request "$api" "$TMPD/$api.out"
    got=$(grep -o 'bench[0-9]*\.example\.com' "$TMPD/$api.out" | sort -u | wc -l)
    [ "$got" = "$N" ] || die "$api: $got devices in the answer, expected $N"
    log "$api answer: $(wc -c <"$TMPD/$api.out") bytes, $got devices"
done

RESULTS=$TMPD/results
: >"$RESULTS"
timing_start
for ((r = 1; r <= ROUNDS; r++)); do
    for api in $(rotated "$r" rest $([ "$HAVE_SOAP" = 1 ] && echo soap)); do
        t0=$(ticks "$MPSD_PID") c0=$(cpu_ms "$MPSD_PID") w0=$(date +%s%N)
        for ((b = 1; b <= BATCH; b++)); do
            request "$api" "$TMPD/$api.out"
        done
        t1=$(ticks "$MPSD_PID") c1=$(cpu_ms "$MPSD_PID") w1=$(date +%s%N)
        echo "$api $(((t1 - t0) * 1000 / HZ)) $((c1 - c0)) $(((w1 - w0) / 1000000)) $BATCH" \
            >>"$RESULTS"
    done
done
timing_end

# Nothing in the run should have made mpsd complain (start-up notices about the descriptor
# limit and running as root aside).
if grep -v -e 'file descriptor limit' -e 'running as root' "$TMPD/mpsd.log" |
    grep -q -e '\[LM ERROR\]' -e '\[LM WARNING\]'; then
    die "mpsd logged errors or warnings: $(grep -e 'ERROR\]' -e 'WARNING\]' "$TMPD/mpsd.log" | head -n 5)"
fi

python3 - "$RESULTS" "$REPORT" "$N" "$HZ" "$rss0" "$rss1" "$SUBS" "$TARGET_MS" \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)" \
    "$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$LOAD_BEFORE" "$LOAD_AFTER" "$(wc -c <"$TMPD/rest.out")" \
    "$([ "$HAVE_SOAP" = 1 ] && wc -c <"$TMPD/soap.out" || echo 0)" <<'PY'
import statistics, sys
(results, report, n, hz, rss0, rss1, subs, target, date, machine, commit, load0, load1,
 rest_bytes, soap_bytes) = sys.argv[1:]
rows = {}
for line in open(results):
    api, stat_ms, sched_ms, wall_ms, batch = line.split()
    b = int(batch)
    rows.setdefault(api, []).append((int(stat_ms) / b, int(sched_ms) / b, int(wall_ms) / b))
def med(api, i):
    return statistics.median(r[i] for r in rows[api])
rest = med("rest", 0)
met = rest < float(target)
out = ["<!-- REPORT-REST.md - written by tests/bench/rest.sh (make bench-rest); do not edit. -->",
       "<!-- targets: %s -->" % ("met" if met else "missed"),
       "# REST benchmark: listing %s devices" % n, "",
       "%s; %s; commit %s; load %s before, %s after." % (date, machine, commit, load0, load1), "",
       "mpsd's CPU time (all threads) per request, the median of %d samples of several requests "
       "each: `/proc/PID/stat` utime+stime (clock ticks of %s ms) and, as a cross-check with "
       "nanosecond resolution, the sum of `/proc/PID/task/*/schedstat`. Wall time is curl's whole "
       "request, transfer included." % (len(rows["rest"]), 1000 // int(hz)), "",
       "| API | answer bytes | CPU ms (stat) | CPU ms (schedstat) | wall ms |",
       "|---|---:|---:|---:|---:|"]
names = {"rest": "admin_http GET /api/v1/devices?limit=10000",
         "soap": "admin_soap GetConnectedDevices"}
sizes = {"rest": rest_bytes, "soap": soap_bytes}
for api in ("rest", "soap"):
    if api in rows:
        out.append("| %s | %s | %.1f | %.1f | %.1f |" % (names[api], sizes[api], med(api, 0),
                                                      med(api, 1), med(api, 2)))
out.append("")
out.append("Target: under %s ms of CPU for the REST list: **%s** (%.1f ms)." %
           (target, "met" if met else "missed", rest))
if "soap" in rows:
    out.append("")
    out.append("REST / SOAP CPU ratio: %.2f (stat), %.2f (schedstat)." %
               (rest / med("soap", 0) if med("soap", 0) else float("nan"),
                med("rest", 1) / med("soap", 1) if med("soap", 1) else float("nan")))
else:
    out.append("")
    out.append("admin_soap was not built (gSOAP missing): no comparison.")
per = (int(rss1) - int(rss0)) / int(subs)
out += ["", "## Event subscribers", "",
        "mpsd's RSS with %s devices: %s kB before, %s kB with %s idle `GET /api/v1/events` "
        "subscribers: **%.1f kB per subscriber** (the connection, its stream and admin_http's "
        "state; kernel socket buffers are not in RSS)." % (n, rss0, rss1, subs, per), ""]
open(report, "w").write("\n".join(out))
print("\n".join(out))
PY
log "report written to $REPORT"
if [ "${BENCH_STRICT:-0}" = 1 ] && grep -q '^<!-- targets: missed -->' "$REPORT"; then
    die "the REST list missed its target (BENCH_STRICT=1)"
fi
