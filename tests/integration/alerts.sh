#!/bin/bash
# alerts.sh - device-initiated traffic: UDP alerts (udp-send-to) and direct-tcpip channels,
# behind [core] FilterUnauthorizedServers / AuthorizedServersList; the list's errors and reload.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

T=$((30 * SLOW))

# A UDP receiver on a port of its own choosing: one line "LENGTH SHA256" per datagram into
# $TMPD/NAME.rx, after a first line "ready PORT"; VAR is set to the port.
udp_receiver() { # udp_receiver NAME VAR
    bg "udp-$1" python3 -c '
import hashlib, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1], "a") as out:
    out.write("ready %d\n" % s.getsockname()[1])
    out.flush()
    while True:
        data, _ = s.recvfrom(70000)
        out.write(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n")
        out.flush()
' "$TMPD/$1.rx"
    wait_port "$2" "$TMPD/$1.rx" "ready " "UDP receiver $1" 10
}
# What apfclient sends for --seed S --bytes N, as the receiver records it.
payload_line() {
    python3 -c 'import hashlib, random, sys
d = random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2]))
print(len(d), hashlib.sha256(d).hexdigest())' "$1" "$2"
}
datagrams() { grep -vc ready "$TMPD/$1.rx" || true; }
has_datagram() { grep -qx "$2" "$TMPD/$1.rx"; }

udp_receiver ok UDP_OK
udp_receiver later UDP_LATER

# A TCP echo server for the direct-tcpip channels (IPv4 only: "localhost" may resolve to ::1
# first, and mpsd must then fall back to 127.0.0.1).
bg echo python3 -c '
import socket, sys, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print("ready %d" % srv.getsockname()[1], flush=True)
def echo(c):
    with c:
        while True:
            b = c.recv(65536)
            if not b:
                return
            c.sendall(b)
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
'
wait_port ECHO_PORT "$TMPD/echo.out" "ready " "echo server" 10
# A port nothing listens on: a direct-tcpip channel there fails to connect.
reserve_port DEAD_PORT

LIST="$TMPD/AuthorizedServersList"
cat >"$LIST" <<EOT
# servers the devices may reach
127.0.0.1:$UDP_OK
LocalHost:$ECHO_PORT   # a name: matched as asked for, then resolved
127.0.0.1:$DEAD_PORT
EOT

# ---------------------------------------------------------------- a bad list fails the start
BAD="$TMPD/bad-list"
printf '# fine\n127.0.0.1:%s\nno-port.example.com\n' "$UDP_OK" >"$BAD"
CORE_EXTRA="AuthorizedServersList = $BAD" write_conf "$TMPD/bad.conf"
rc=0
out=$("$MPSD" -t -c "$TMPD/bad.conf" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "mpsd -t accepted a bad AuthorizedServersList"
grep -q "$BAD:3: " <<<"$out" || fail "mpsd -t did not name $BAD:3: $out"
log "mpsd -t: $out"
rc=0
timeout $((20 * SLOW)) "$MPSD" -c "$TMPD/bad.conf" >"$TMPD/bad.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "mpsd started with a bad list (status $rc)"
grep -q "$BAD:3: " "$TMPD/bad.log" || fail "the start error does not name $BAD:3"
log "a bad list fails the start (status $rc) naming $BAD:3"
CORE_EXTRA="AuthorizedServersList = $LIST" write_conf "$TMPD/good.conf"
"$MPSD" -t -c "$TMPD/good.conf" >/dev/null 2>&1 || fail "mpsd -t refused the good list"

# ------------------------------------------------------------------------- filtering on
CORE_EXTRA="AuthorizedServersList = $LIST" write_conf
start_mpsd
assert_log "3 authorized servers"

# UDP alert to a listed server: the exact bytes arrive.
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_OK" --bytes 1200 --seed 11
want=$(payload_line 11 1200)
wait_for $((10 * SLOW)) "the alert at the receiver" has_datagram ok "$want"
wait_log "sent a 1200-byte UDP alert to 127.0.0.1:$UDP_OK: forwarded"
log "UDP alert received byte for byte"

# Not listed (a listed host on another port, and a name): dropped, counted, logged.
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_LATER" --bytes 100 --seed 12
expect_apf sent udp-alert --target elsewhere.example.com --tport "$UDP_OK" --bytes 100 --seed 13
wait_log "UDP alert for 127.0.0.1:$UDP_LATER: dropped (not an authorized server)"
wait_log "UDP alert for elsewhere.example.com:$UDP_OK: dropped"

# direct-tcpip: 1 MiB through an allowed echo server (windows refilled many times), asked
# for by name in another case.
out=$(apf direct --target localhost --tport "$ECHO_PORT" --bytes $((1024 * 1024)) \
    --timeout "$T")
[ "$out" = "echo 1048576" ] || fail "direct-tcpip echo: $out"
log "direct-tcpip: 1 MiB echoed through the channel"
wait_log "and authorized server localhost:$ECHO_PORT opened (direct-tcpip"
wait_log "and authorized server localhost:$ECHO_PORT closed"
expect_apf "open-failure 1" direct --target 127.0.0.1 --tport "$ECHO_PORT"
wait_log "direct-tcpip channel to 127.0.0.1:$ECHO_PORT: refused (not an authorized server)"
expect_apf "open-failure 2" direct --target 127.0.0.1 --tport "$DEAD_PORT"
wait_log "direct-tcpip channel to 127.0.0.1:$DEAD_PORT: connect failed"

# Nothing reached the unlisted receiver; the statistics count what was blocked.
[ "$(datagrams later)" = 0 ] || fail "a blocked alert was delivered"
[ "$(datagrams ok)" = 1 ] || fail "the listed receiver got $(datagrams ok) datagrams, want 1"
kill -USR1 "$MPSD_PID"
wait_log "statistics:"
grep "statistics:" "$MPSD_LOG" | tail -1 | grep -Eq "UDP[a-z ]* 2[;, ]" ||
    fail "statistics do not count 2 blocked alerts: $(grep statistics: "$MPSD_LOG" | tail -1)"
log "statistics count the blocked alerts"

# SIGHUP with an extended list: the new target is allowed at once.
echo "127.0.0.1:$UDP_LATER" >>"$LIST"
kill -HUP "$MPSD_PID"
wait_log "reload: 4 authorized servers"
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_LATER" --bytes 64 --seed 14
wait_for $((10 * SLOW)) "the alert after the reload" has_datagram later "$(payload_line 14 64)"
log "SIGHUP: the added server receives alerts"
# A broken list on SIGHUP: logged, the previous list stays.
echo "not a host:port line" >>"$LIST"
kill -HUP "$MPSD_PID"
wait_log "keeping the previous authorized servers"
assert_log "$LIST:6: "
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_LATER" --bytes 65 --seed 15
wait_for $((10 * SLOW)) "the alert after a bad reload" has_datagram later "$(payload_line 15 65)"
log "SIGHUP with a bad list keeps the previous one"
require_alive
stop_mpsd

# ------------------------------------------------------------------------ filtering off
CORE_EXTRA="FilterUnauthorizedServers = false" write_conf
start_mpsd
assert_log "FilterUnauthorizedServers is false"
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_LATER" --bytes 300 --seed 16
wait_for $((10 * SLOW)) "an unlisted alert with filtering off" \
    has_datagram later "$(payload_line 16 300)"
out=$(apf direct --target 127.0.0.1 --tport "$ECHO_PORT" --bytes 5000 --timeout "$T")
[ "$out" = "echo 5000" ] || fail "direct-tcpip with filtering off: $out"
log "filtering off: unlisted targets are reached"
stop_mpsd

# ------------------------------------------------- the default: filtering on, no list
write_conf
start_mpsd
assert_log "0 authorized servers (AuthorizedServersList not set)"
expect_apf sent udp-alert --target 127.0.0.1 --tport "$UDP_OK" --bytes 10 --seed 17
expect_apf "open-failure 1" direct --target localhost --tport "$ECHO_PORT"
wait_log "UDP alert for 127.0.0.1:$UDP_OK: dropped"
[ "$(datagrams ok)" = 1 ] || fail "an alert left with the default configuration"
log "default configuration: nothing leaves"
stop_mpsd
log "PASS"
