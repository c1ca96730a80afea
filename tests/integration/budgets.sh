#!/bin/bash
# budgets.sh - connection budgets of every listener kind (issue 17, item 4): AllowFrom and
# DenyFrom, MaxConnectionsPerSource, MaxConnections and its busy reply, MaxStartups, the
# descriptor share kept for devices, accepting paused (and resumed) when descriptors run out,
# and IPv6.
# SPDX-License-Identifier: Apache-2.0
#
# Linux routes all of 127.0.0.0/8 to lo: 127.0.0.1 is the bystander (an amtsim device, an echo
# through test_console and GETs through a second http_proxy, all along), 127.0.0.2 to .7 are
# other sources. The five listener kinds: [core] (plain APF), tls (APF over TLS), socks5,
# http_proxy and admin_soap. Runs:
#   A  AllowFrom/DenyFrom and MaxConnectionsPerSource = 2 on all five (and ::1 where the
#      machine has it): refusals before a byte is read, logged and counted exactly, other
#      sources served, a source's count given back when its connections close.
#   B  MaxConnections: the device listener answers APF DISCONNECT 12, the HTTP ones a 503,
#      the others close; served again once connections close.
#   C  MaxStartups = 4:50:8: 30 half-open connections leave at most 8 pending, the rest
#      dropped and counted; established sessions untouched; the listener serves again after.
#   D  ulimit -n 256: a console flood holds at most ConsoleDescriptorShare (25%) of the
#      descriptors and 40 devices still connect; then the limit is lowered under the running
#      daemon until accept() fails: accepting pauses (logged, rate-limited, counted) and
#      resumes after the flood closes.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: curl and openssl are needed"
    exit 77
}
for m in http_proxy admin_soap socks5 tls; do
    [ -e "$MODDIR/$m.so" ] || fail "$m.so is missing from $top_builddir/modules"
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
python3 - <<'PY' || { echo "SKIP: cannot connect from 127.0.0.2 (loopback is not 127/8 here)"; exit 77; }
import socket
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.close()
PY
HAVE_V6=0
python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null &&
    HAVE_V6=1

TRACE_LEVELS="INFO|ERROR|WARNING" # the bystander's DEBUG lines would only bury the rest
T=$((20 * SLOW))
make_certs
KINDS="core tls socks5 http_proxy admin_soap"
declare -A PORT

# conf_all LINES: a configuration with the five kinds, each with LINES and EXTRA[KIND], and a
# second http_proxy for the bystander; then start it and the bystander.
declare -A EXTRA
conf_all() {
    local lines=$1
    CORE_EXTRA="$lines
${EXTRA[core]:-}" CONF_EXTRA="$(tls_section "$lines" "${EXTRA[tls]:-}")
[module socks5]
Listen = 127.0.0.1:0
$lines
${EXTRA[socks5]:-}

[module http_proxy]
Listen = 127.0.0.1:0
$lines
${EXTRA[http_proxy]:-}

[module admin_soap]
Listen = ${ADMIN_LISTEN:-127.0.0.1:0}
$lines
${EXTRA[admin_soap]:-}

[module http_proxy]
Listen = 127.0.0.1:0" write_conf
    start_mpsd
    PORT[core]=$AMT_PORT
    PORT[tls]=$(ready_port tls)
    PORT[socks5]=$(ready_port socks5)
    PORT[http_proxy]=$(ready_port http_proxy 1)
    PORT[admin_soap]=$(ready_port admin_soap)
    BYSTANDER_HP=$(ready_port http_proxy 2)
    bystander_start "$BYSTANDER_HP"
}

# serve_try KIND SOURCE: a complete, legitimate exchange with listener KIND from SOURCE;
# status 0 if it worked, else 1 with what happened in SERVED.
serve_try() {
    local kind=$1 src=$2 p=${PORT[$1]} out
    case $kind in
    core) out=$(apf handshake --source "$src" --uuid 8c6a3b2e5d1f4e7a9b0c00000000b00${src##*.} \
        --fqdn "legit-${src##*.}.example.com" --timeout "$T") ;;
    tls) out=$(python3 -W ignore::DeprecationWarning "$APFCLIENT" --port "$p" --tls handshake \
        --source "$src" --uuid 8c6a3b2e5d1f4e7a9b0c00000000c00${src##*.} \
        --fqdn "legit-tls-${src##*.}.example.com" --timeout "$T" 2>/dev/null || true) ;;
    socks5) out=$(curl -sS --max-time "$T" --interface "$src" --socks5-hostname "127.0.0.1:$p" \
        "http://$BYSTANDER_FQDN:16992/legit" 2>&1 || true) ;;
    http_proxy) out=$(curl -sS --max-time "$T" --interface "$src" -x "http://127.0.0.1:$p" \
        "http://$BYSTANDER_FQDN:16992/legit" 2>&1 || true) ;;
    admin_soap) out=$(curl -sS --max-time "$T" --interface "$src" "http://127.0.0.1:$p/" \
        -H 'Content-Type: text/xml; charset=utf-8' \
        -H 'SOAPAction: "urn:mpsd:MpsAdmin:1/GetStatistics"' \
        -d '<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><GetStatisticsRequest xmlns="urn:mpsd:MpsAdmin:1"/></Body></Envelope>' \
        2>&1 || true) ;;
    esac
    SERVED=$(head -c 300 <<<"$out")
    case $kind:$out in
    core:ok | tls:ok | socks5:"amtsim $BYSTANDER_FQDN "*" /legit" | \
        http_proxy:"amtsim $BYSTANDER_FQDN "*" /legit" | admin_soap:*"<"*"Tunnels>"*) return 0 ;;
    esac
    return 1
}
# serve KIND SOURCE: serve_try, or fail the test.
serve() {
    serve_try "$@" || fail "$1 from $2: a legitimate exchange failed: $SERVED"
}
# serve_again KIND SOURCE: once connections were closed by the client, the listener serves
# again as soon as it has seen them close (a connection made before may still be refused:
# counters can move meanwhile).
serve_again() {
    wait_for $((10 * SLOW)) "$1 to serve $2 again" serve_try "$@"
}

# refused KIND SOURCE WHY: a connection from SOURCE is closed before a byte is exchanged, and
# the refusal is logged with WHY (a regex).
refused() {
    local kind=$1 src=$2 why=$3 out
    out=$(hostile probe --port "${PORT[$kind]}" --source "$src" --wait $((5 * SLOW)))
    [ "$out" = closed ] || fail "$kind from $src: '$out', expected the connection refused ($why)"
    wait_log "\[$kind\] connection from ${src//./\\.}:[0-9]* refused: $why"
}

# hold NAME KIND SOURCE N [ARGS]: N connections from SOURCE to KIND, kept open in the
# background until release NAME; HELD is their status file.
declare -A HOLD_PID
hold() {
    local name=$1 kind=$2 src=$3 n=$4 apf=()
    shift 4
    [ "$kind" = core ] && apf=(--apf)
    rm -f "$TMPD/$name.status" "$TMPD/$name.release"
    bg "$name" python3 "$HOSTILE" --timeout "$T" hold --port "${PORT[$kind]}" --source "$src" \
        --conns "$n" "${apf[@]}" --status-file "$TMPD/$name.status" \
        --ready-file "$TMPD/$name.ready" --trigger-file "$TMPD/$name.release" \
        --seconds $((120 * SLOW)) "$@"
    HOLD_PID[$name]=$BG_PID
    wait_for $((20 * SLOW)) "$n connections of $name opened" test -e "$TMPD/$name.ready"
    HELD=$TMPD/$name.status
}
held() { cat "$HELD"; }
release() {
    touch "$TMPD/$1.release"
    bg_wait "${HOLD_PID[$1]}" $((20 * SLOW)) || fail "$1 did not stop: $(cat "$TMPD/$1.err")"
}

# ---------------------------------------------------------- A. ACLs and per-source caps
# HeadTimeout: the silent connections held below must not be cut meanwhile.
ACL="AllowFrom = 127.0.0.1 127.0.0.3 127.0.0.4 127.0.0.5 ::1
DenyFrom = 127.0.0.3
MaxConnectionsPerSource = 2
HeadTimeout = 120s"
if [ "$HAVE_V6" = 1 ]; then
    CORE_LISTEN="127.0.0.1:0 [::1]:0" conf_all "$ACL"
else
    conf_all "$ACL"
fi
bystander_mark
for k in $KINDS; do
    refused "$k" 127.0.0.2 "not in AllowFrom"
    refused "$k" 127.0.0.3 "in DenyFrom"
    hold "pin-$k" "$k" 127.0.0.4 2
    if [ "$k" = core ]; then
        grep -qx "conns 2 open 2 closed 0 data 2" "$HELD" || fail "core from 127.0.0.4: $(held)"
    fi
    refused "$k" 127.0.0.4 "MaxConnectionsPerSource (2) reached"
    serve "$k" 127.0.0.5 # another source is served meanwhile
    grep -q "^conns 2 open 2 " "$HELD" || fail "$k: the two connections of 127.0.0.4: $(held)"
    release "pin-$k"
    log "$k: 127.0.0.2 (not in AllowFrom) and 127.0.0.3 (DenyFrom wins) refused; 127.0.0.4" \
        "held 2, its third refused, 127.0.0.5 served"
done
bystander_wait 1
mpsd_stats
acl=$(stats_value "refused by ACL")
limits=$(stats_value "by limits")
[ "$acl" = 10 ] && [ "$limits" = 5 ] ||
    fail "counters: refused by ACL $acl, by limits $limits; expected 10 and 5 ($STATS)"
log "counted: refused by ACL $acl, by limits $limits"
for k in $KINDS; do
    serve_again "$k" 127.0.0.4 # its count was given back when its two closed
done
log "127.0.0.4 is served again on every listener once its connections closed"

if [ "$HAVE_V6" = 1 ]; then
    # ::1 is allowed on the device listener: a device connects over IPv6.
    V6_ADDR=$(ready_addr core 2)
    [ "$V6_ADDR" = "[::1]:${V6_ADDR##*:}" ] || fail "the second core listener is $V6_ADDR"
    out=$(python3 "$APFCLIENT" --host ::1 --port "${V6_ADDR##*:}" handshake \
        --uuid 8c6a3b2e5d1f4e7a9b0c00000000d001 --fqdn v6.example.com --timeout "$T" || true)
    [ "$out" = ok ] || fail "a device over ::1: $out"
    assert_log "started port forwarding to address v6\.example\.com:16992 \[uuid [^,]*, fqdn v6\.example\.com, peer \[::1\]:[0-9]*\]"
    log "a device connected over $V6_ADDR"
fi
bystander_check
require_alive
stop_mpsd

if [ "$HAVE_V6" = 1 ]; then
    # An IPv6 source in DenyFrom (admin_soap listening on ::1 too).
    EXTRA[admin_soap]="DenyFrom = ::1"
    ADMIN_LISTEN="127.0.0.1:0 [::1]:0" conf_all ""
    EXTRA=()
    V6_ADMIN=$(ready_port admin_soap 2)
    out=$(hostile probe --host ::1 --port "$V6_ADMIN" --wait $((5 * SLOW)))
    [ "$out" = closed ] || fail "admin_soap from ::1 (DenyFrom ::1): '$out'"
    wait_log "\[admin_soap\] connection from \[::1\]:[0-9]* refused: in DenyFrom"
    serve admin_soap 127.0.0.1
    log "IPv6: admin_soap on [::1] refuses ::1 (DenyFrom), serves 127.0.0.1"
    bystander_check
    stop_mpsd
else
    log "NOTE: no ::1 on this machine: the IPv6 part is skipped"
fi

# ------------------------------------------------------------------ B. MaxConnections
# The bystander's device counts on [core]: 1 + 2 held = 3.
EXTRA=([core]="MaxConnections = 3" [tls]="MaxConnections = 2" [socks5]="MaxConnections = 2"
    [http_proxy]="MaxConnections = 2" [admin_soap]="MaxConnections = 2")
conf_all "HeadTimeout = 120s"
EXTRA=()
declare -A BUSY=([core]="DISCONNECT 12 closed" [tls]=closed [socks5]=closed
    [http_proxy]="HTTP/1.1 503 Service Unavailable closed"
    [admin_soap]="HTTP/1.1 503 Service Unavailable closed")
for k in $KINDS; do
    apf=()
    [ "$k" = core ] && apf=(--apf)
    hold "full-$k" "$k" 127.0.0.6 2
    out=$(hostile probe --port "${PORT[$k]}" --source 127.0.0.7 "${apf[@]}" --until-close \
        --wait $((5 * SLOW)))
    [ "$out" = "${BUSY[$k]}" ] || fail "$k at MaxConnections: '$out', expected '${BUSY[$k]}'"
    wait_log "\[$k\] connection from 127\.0\.0\.7:[0-9]* refused: MaxConnections ([23]) reached"
    case $k in
    core)
        # A device pipelining its version and auth request at once, as AMT does.
        out=$(hostile probe --port "${PORT[$k]}" --send @apf --apf --until-close \
            --wait $((5 * SLOW)))
        [ "$out" = "DISCONNECT 12 closed" ] || fail "core at MaxConnections, pipelined: '$out'"
        ;;
    http_proxy | admin_soap)
        # curl sends its request at once: it still reads the 503.
        url="http://127.0.0.1:${PORT[$k]}/" proxy=()
        if [ "$k" = http_proxy ]; then
            url="http://$BYSTANDER_FQDN:16992/" proxy=(-x "http://127.0.0.1:${PORT[$k]}")
        fi
        code=$(curl -s --max-time "$T" "${proxy[@]}" -o /dev/null -w '%{http_code}' -d x "$url" ||
            true)
        [ "$code" = 503 ] || fail "curl to $k at MaxConnections: status $code"
        ;;
    esac
    release "full-$k"
    serve_again "$k" 127.0.0.7
    log "$k at MaxConnections: $out; served again once the connections closed"
done
bystander_wait 1
assert_log "\[http_proxy\] connection from 127\.0\.0\.7:[0-9]* refused: MaxConnections (2) reached: 503"
bystander_check
require_alive
stop_mpsd

# --------------------------------------------------------------------- C. MaxStartups
# 30 half-open connections per listener: the first 4 always pass, from 4 pending on a new one
# is dropped with 50% chance rising to 100% at 8. HeadTimeout is long: nothing is cut here.
N=30
conf_all "MaxStartups = 4:50:8
HeadTimeout = 120s"
i=0
for k in $KINDS; do
    i=$((i + 1))
    src=127.0.0.$((10 + i)) # a source per kind: the refusal lines are limited per source
    mpsd_stats
    before=$(stats_value "by MaxStartups")
    hold "half-$k" "$k" "$src" "$N"
    startups_settled() { # the client has seen at least N - 8 closes
        local c
        c=$(sed -n 's/.* closed \([0-9]*\) .*/\1/p' "$HELD")
        [ "${c:-0}" -ge $((N - 8)) ]
    }
    wait_for $((10 * SLOW)) "$k: all but 8 of $N half-open connections dropped" startups_settled
    mpsd_stats
    dropped=$(($(stats_value "by MaxStartups") - before))
    [ "$dropped" -ge $((N - 8)) ] && [ "$dropped" -le $((N - 4)) ] ||
        fail "$k: MaxStartups dropped $dropped of $N, expected $((N - 8)) to $((N - 4))"
    startups_seen() { grep -q "^conns $N open $((N - dropped)) closed $dropped " "$HELD"; }
    wait_for $((10 * SLOW)) "$k: the client to see the $dropped closes" startups_seen
    wait_log "\[$k\] connection from ${src//./\\.}:[0-9]* refused: MaxStartups: [4-8] connections pending (4:50:8)"
    # Established sessions are untouched; a listener of another kind serves meanwhile.
    bystander_wait 1
    other=core
    [ "$k" = core ] && other=tls
    serve "$other" 127.0.0.5
    release "half-$k"
    serve_again "$k" 127.0.0.5
    log "$k: $N half-open connections: $dropped dropped, $((N - dropped)) kept pending;" \
        "$other served meanwhile, $k again afterwards"
done
bystander_check
require_alive
stop_mpsd

# --------------------------------------------------------------- D. descriptors (ulimit)
MPSD_NOFILE=256
CONF_EXTRA="[module socks5]
Listen = 127.0.0.1:0
HeadTimeout = 120s

[module http_proxy]
Listen = 127.0.0.1:0" write_conf
start_mpsd
unset MPSD_NOFILE
PORT[socks5]=$(ready_port socks5)
BYSTANDER_HP=$(ready_port http_proxy)
bystander_start "$BYSTANDER_HP"
limit=$(awk '/^Max open files/ { print $4 }' "/proc/$MPSD_PID/limits")
[ "$limit" = 256 ] || fail "mpsd's descriptor limit is $limit, not 256"
# 200 consoles from one source: they get ConsoleDescriptorShare (25%) of what is left after
# the daemon's reserve, the rest are refused at once, and devices still connect.
hold flood socks5 127.0.0.6 200
fds_settled() {
    local o
    o=$(sed -n 's/.* open \([0-9]*\) .*/\1/p' "$HELD")
    [ "${o:-200}" -le 64 ]
}
wait_for $((10 * SLOW)) "the console flood to be cut to its share" fds_settled
wait_log "\[socks5\] connection from 127\.0\.0\.6:[0-9]* refused: console and admin connections hold [0-9]* of the [0-9]* descriptors they may use"
share=$(grep -m 1 -o 'console and admin connections hold [0-9]* of the [0-9]* descriptors' "$MPSD_LOG")
log "console flood under ulimit -n 256: $(held); $share"
cap=$(sed -n 's/.* of the \([0-9]*\) descriptors/\1/p' <<<"$share")
[ "$cap" -le 64 ] || fail "consoles may hold $cap of 256 descriptors"
out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --count 40 --fqdn 'crowd%d.example.com' \
    --uuid-base 8c6a3b2e-5d1f-4e7a-9b0c-00000000e000 --exit-when-ready --duration $((30 * SLOW)) \
    --quiet) || fail "40 devices during the console flood: $out"
log "40 devices connected during the console flood: $out"
bystander_wait 1
release flood
serve_again socks5 127.0.0.6
log "the flooding source is served again once its connections closed"

# Descriptors run out all the same (here: the limit lowered under the running daemon, as a
# descriptor leak elsewhere would): accept() fails, accepting pauses, resumes and pauses
# again while the flood waits in the backlog, logged rate-limited; it resumes for good once
# the flood is gone.
mpsd_stats
paused_before=$(stats_value "accepting paused")
open_fds=$(find "/proc/$MPSD_PID/fd" -mindepth 1 | wc -l)
python3 -c 'import resource, sys
pid, soft = int(sys.argv[1]), int(sys.argv[2])
resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]))' \
    "$MPSD_PID" $((open_fds + 8))
log "mpsd holds $open_fds descriptors; its limit is now $((open_fds + 8))"
hold emfile socks5 127.0.0.6 40
wait_log "\[socks5\] accept failed: Too many open files ([0-9]* device and [0-9]* console connections open): accepting paused for 250 ms"
bystander_mark
bystander_wait 2 # established sessions keep working while accepting is paused
pauses_enough() {
    mpsd_stats
    [ $(($(stats_value "accepting paused") - paused_before)) -ge 24 ]
}
wait_for $((30 * SLOW)) "accepting to pause 24 times" pauses_enough
paused=$(($(stats_value "accepting paused") - paused_before))
lines=$(grep -c "accept failed: Too many open files" "$MPSD_LOG" || true)
resumed=$(grep -c "accepting connections again" "$MPSD_LOG" || true)
log "accepting paused $paused times: $lines 'accept failed' lines, $resumed 'accepting again' lines"
[ "$lines" -le 20 ] || fail "$paused pauses wrote $lines lines: not rate-limited"
[ "$resumed" -le 21 ] || fail "$paused pauses wrote $resumed 'accepting connections again' lines"
release emfile
resumed_now() { # accepting works: a new console gets its answer
    [ "$(curl -s --max-time 5 --socks5-hostname "127.0.0.1:${PORT[socks5]}" \
        "http://$BYSTANDER_FQDN:16992/after" 2>/dev/null | awk '{ print $NF }')" = /after ]
}
wait_for $((10 * SLOW)) "accepting to resume after the flood" resumed_now
out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --count 1 --fqdn 'late%d.example.com' \
    --uuid-base 8c6a3b2e-5d1f-4e7a-9b0c-00000000f000 --exit-when-ready --quiet) ||
    fail "a device after the flood: $out"
log "accepting resumed: a console and a device are served again"
bystander_check
require_alive
stop_mpsd
# What the limiter held back is summarised at exit.
assert_log "similar lines suppressed in the last [0-9]* s, such as: \[socks5\] accept failed: Too many open files"

# ---------------------------------------------- E. a device's own connections (ulimit)
# A logged-in device opening direct-tcpip channels to an authorized server makes mpsd open
# a socket each. They count with the consoles' share: however many it asks for, the device
# listener keeps the descriptors other devices need to connect.
bg holder python3 -c '
import socket, sys, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
print("ready %d" % s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)  # accepted and kept: the connection stays open
'
wait_port HOLDER_PORT "$TMPD/holder.out" "ready " "the holding server"
printf '127.0.0.1:%s\n' "$HOLDER_PORT" >"$TMPD/authorized"
MPSD_NOFILE=256
NO_AUTH=1 CORE_EXTRA="AuthorizedServersList = $TMPD/authorized" write_conf
start_mpsd
unset MPSD_NOFILE
rm -f "$TMPD/direct.ready"
bg direct python3 "$APFCLIENT" --port "$AMT_PORT" --timeout $((20 * SLOW)) --fqdn opener.example.com \
    --uuid 8c6a3b2e5d1f4e7a9b0c0000000d0000 direct-hold --target 127.0.0.1 --tport "$HOLDER_PORT" \
    --conns 260 --seconds $((120 * SLOW)) --ready-file "$TMPD/direct.ready"
wait_for $((60 * SLOW)) "260 direct-tcpip opens answered" test -e "$TMPD/direct.ready"
got=$(head -n 1 "$TMPD/direct.out")
log "one device asked for 260 direct-tcpip connections under ulimit -n 256: $got"
held_n=$(awk '{ print $2 }' <<<"$got")
refused_n=$(awk '{ print $4 }' <<<"$got")
[ "$refused_n" -gt 0 ] && [ "$held_n" -le 64 ] ||
    fail "direct-tcpip connections are not held to the consoles' share: $got"
assert_log "a device's direct-tcpip connection refused: console and outbound connections hold"
out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --count 20 --fqdn 'after%d.example.com' \
    --uuid-base 8c6a3b2e-5d1f-4e7a-9b0c-00000000d100 --exit-when-ready \
    --duration $((30 * SLOW)) --quiet) || fail "devices while one holds its connections: $out"
log "20 devices connected while it holds them: $out"
! log_has "accept failed: Too many open files" || fail "the device listener ran out of descriptors"
require_alive
stop_mpsd
log "PASS"
