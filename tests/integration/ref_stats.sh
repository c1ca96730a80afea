#!/bin/bash
# ref_stats.sh - the reference MPS's statistics report (seed 002, Appendix B) from mpsd's log:
# contrib/mpsd-stats after a scripted session (10 devices, 5 console sessions through SOCKS5
# and the HTTP proxy, 2 wrong passwords, 1 blocked UDP alert) prints exactly its counts, and
# the live counters (SIGUSR1's line, admin_http's /api/v1/stats) agree.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

if ! command -v curl >/dev/null 2>&1; then
    echo "SKIP: curl is needed"
    exit 77
fi
for m in socks5 http_proxy admin_http; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
STATS_TOOL="$top_srcdir/contrib/mpsd-stats"
T=$((30 * SLOW))

# The tool's pure parts first: line kinds, suppressed lines, window, rotation, exact text.
python3 "$top_srcdir/tests/unit/test_mpsd_stats.py" "$STATS_TOOL" 2>"$TMPD/unit.err" ||
    fail "test_mpsd_stats.py: $(cat "$TMPD/unit.err")"
log "mpsd-stats unit tests: $(tail -n 3 "$TMPD/unit.err" | tr '\n' ' ')"

# UDP alerts may go to 127.0.0.1:9 only; the device's alert goes to port 162 (not listed).
LIST="$TMPD/AuthorizedServersList"
echo "127.0.0.1:9" >"$LIST"
MPSD_LOGFILE="$TMPD/MPS.log"
CONSOLE_AUTH=1 TRACE_LEVELS="INFO|ERROR|WARNING" CORE_EXTRA="LogFile = $MPSD_LOGFILE
AuthorizedServersList = $LIST" CONF_EXTRA="[module socks5]
Listen = 127.0.0.1:0

[module http_proxy]
Listen = 127.0.0.1:0

[module admin_http]
Listen = none" write_conf
start_mpsd
S5=$(ready_port socks5)
HP=$(ready_port http_proxy)
[ -s "$MPSD_LOGFILE" ] || fail "nothing in the LogFile $MPSD_LOGFILE"

count() { grep -c -e "$1" "$MPSD_LOGFILE" || true; }
_count_is() { [ "$(count "$1")" = "$2" ]; }
# wait_count PATTERN N WHAT: the log has exactly N lines matching PATTERN (at least, then exactly).
wait_count() {
    wait_for "$T" "$3" _count_is "$1" "$2"
}
ready_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }

# ---- 10 devices log in: 7 that will say DISCONNECT, 2 that will vanish, 1 that sends an alert
bg sim_a "$AMTSIM" --port "$AMT_PORT" --count 7 --fqdn 'a%d.example.com' \
    --uuid-base 11111111-2222-3333-4444-000000000000 --ports 16992 --keepalive 0 \
    --ready-file "$TMPD/a.ready" --quiet
SIM_A=$BG_PID
bg sim_b "$AMTSIM" --port "$AMT_PORT" --count 2 --fqdn 'b%d.example.com' \
    --uuid-base 11111111-2222-3333-5555-000000000000 --ports 16992 --keepalive 0 \
    --ready-file "$TMPD/b.ready" --quiet
SIM_B=$BG_PID
wait_for "$T" "7 devices a* forwarding" ready_is "$TMPD/a.ready" 7
wait_for "$T" "2 devices b* forwarding" ready_is "$TMPD/b.ready" 2
# The tenth logs in, sends a UDP alert the filter blocks, and drops its connection.
expect_apf sent udp-alert --target 127.0.0.1 --tport 162 --bytes 64 --seed 5 \
    --fqdn alert.example.com
wait_log "UDP alert for 127.0.0.1:162: dropped (not an authorized server)"
wait_log "\[alert.example.com\] Intel remote client has disconnected unexpectedly"
wait_count "is now connected\." 10 "10 devices logged in"
log "10 devices logged in; one UDP alert blocked"

# ---- 2 wrong passwords: a device's and a console's
out=$(timeout "$T" "$AMTSIM" --port "$AMT_PORT" --pass wrong --fqdn wrong.example.com \
    --uuid-base 11111111-2222-3333-6666-000000000000 --expect-disconnect 15 --quiet) ||
    fail "amtsim with a wrong password: $out"
wait_log "authentication FAILED for user 'amtuser'"
rc=0
curl -sS --max-time "$T" -x "socks5h://consoleuser:wrong@127.0.0.1:$S5" \
    "http://a0.example.com:16992/denied" >/dev/null 2>"$TMPD/denied.err" || rc=$?
[ "$rc" != 0 ] || fail "a wrong SOCKS password was accepted"
wait_log 'auth\[console\]: user "consoleuser" from .* denied'
log "a wrong device password and a wrong SOCKS password refused"

# ---- 5 console sessions: 3 through SOCKS5, 2 through the HTTP proxy
session() { # session PROXY_URL DEVICE PATH
    local got
    got=$(curl -sS --max-time "$T" -x "$1" "http://$2:16992$3") ||
        fail "console session to $2 through $1 failed"
    case "$got" in
    "amtsim $2 "*" $3") ;;
    *) fail "console session to $2: got '$got'" ;;
    esac
}
session "socks5h://consoleuser:C0nsole!@127.0.0.1:$S5" a0.example.com /s1
session "socks5h://consoleuser:C0nsole!@127.0.0.1:$S5" a1.example.com /s2
session "socks5h://consoleuser:C0nsole!@127.0.0.1:$S5" b0.example.com /s3
session "http://consoleuser:C0nsole!@127.0.0.1:$HP" a2.example.com /h1
session "http://consoleuser:C0nsole!@127.0.0.1:$HP" b1.example.com /h2
wait_count "management console has shutdown" 5 "5 console channels closed"
log "5 console sessions, each channel closed"

# ---- the devices go: 7 say DISCONNECT (amtsim's exit), 2 vanish (SIGKILL)
kill -TERM "$SIM_A"
bg_wait "$SIM_A" "$T" || true
kill -KILL "$SIM_B"
bg_wait "$SIM_B" "$T" || true
wait_count "\] Intel remote client has disconnected (DISCONNECT 11 " 7 "7 orderly disconnects"
wait_count "\] Intel remote client has disconnected unexpectedly (" 3 "3 unexpected shutdowns"
log "7 devices disconnected, 3 shut down unexpectedly"

# ---- the report, from the LogFile, over the last 10 minutes
"$STATS_TOOL" "$MPSD_LOGFILE" 0 10 >"$TMPD/report" 2>"$TMPD/report.err" ||
    fail "mpsd-stats failed: $(cat "$TMPD/report.err")"
sed 's/^/  /' "$TMPD/report"
head -n 1 "$TMPD/report" | grep -Eq '^Report period: 0 hours [0-9] minutes \(.* - .*\)$' ||
    fail "report period: $(head -n 1 "$TMPD/report")"
cat >"$TMPD/want" <<'EOT'
Number of Intel clients connections opened: 10
Number of Intel clients connections closed: 7
Number of Intel management-console opened: 5
Number of Intel management-console closed: 5
Number of Intel AMT authentication failure: 1
Number of Socks authentication failure: 1
Number of non-filtered (blocked) UDP connections: 1
Number of non-filtered (blocked) TCP connections: 0
Number of connection errors: 3
Number of general errors: 0
EOT
tail -n +2 "$TMPD/report" | diff -u "$TMPD/want" - >"$TMPD/report.diff" ||
    fail "the report differs: $(cat "$TMPD/report.diff")"
log "mpsd-stats prints the expected report"
# A window before anything happened counts nothing (the lines are older than 0 minutes).
"$STATS_TOOL" "$MPSD_LOGFILE" 0 0 | tail -n +2 | grep -v ': 0$' >"$TMPD/empty" || true
[ ! -s "$TMPD/empty" ] || fail "an empty window counted: $(cat "$TMPD/empty")"

# ---- the live counters agree: SIGUSR1's line and admin_http's JSON
mpsd_stats
devs=$(sed -n 's/.*Intel client connections opened \([0-9]*\), closed \([0-9]*\), shut down unexpectedly \([0-9]*\);.*/\1 \2 \3/p' <<<"$STATS")
cons=$(sed -n 's/.*management console connections opened \([0-9]*\), closed \([0-9]*\);.*/\1 \2/p' <<<"$STATS")
[ "$devs" = "10 7 3" ] && [ "$cons" = "5 5" ] ||
    fail "statistics line: devices '$devs', want '10 7 3'; consoles '$cons', want '5 5': $STATS"
for pair in "AMT authentication failures:1" "SOCKS authentication failures:1" "blocked UDP:1" \
    "blocked TCP:0" "connection errors:3" "general errors:0"; do
    v=$(stats_value "${pair%%:*}")
    [ "$v" = "${pair#*:}" ] || fail "statistics line: ${pair%%:*} $v, want ${pair#*:}: $STATS"
done
log "SIGUSR1 statistics agree"
wait_for "$T" "the control socket" test -S "$TMPD/control"
curl -sS --max-time "$T" --unix-socket "$TMPD/control" http://localhost/api/v1/stats \
    >"$TMPD/stats.json" || fail "GET /api/v1/stats over the control socket failed"
python3 - "$TMPD/stats.json" <<'PY' || fail "/api/v1/stats: $(cat "$TMPD/stats.json")"
import json, sys
s = json.load(open(sys.argv[1]))
want = dict(devices_opened=10, devices_closed=7, devices_lost=3, consoles_opened=5,
            consoles_closed=5, amt_auth_failures=1, console_auth_failures=1, udp_blocked=1,
            tcp_blocked=0, connection_errors=3, general_errors=0, devices_now=0)
bad = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
assert not bad, bad
PY
log "/api/v1/stats agrees (devices_lost 3)"
require_alive
stop_mpsd
