#!/bin/bash
# admin_soap.sh - the SOAP management API (modules/admin_soap) driven by a gSOAP client built from
# soap/MpsAdmin.wsdl (tests/soap/admin_client) and an independent one (admin_client.py):
# 1000 devices listed, GetDevice, DisconnectDevice (the device sees DISCONNECT 11), statistics,
# subscriptions with and without notify_soap, hostile HTTP, basic authentication through the
# console realm, IdleTimeout, MaxConnections, and HTTPS through the tls module.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

CLIENT="$top_builddir/tests/soap/admin_client"
PYCLIENT="$top_srcdir/tests/integration/admin_client.py"
[ -x "$CLIENT" ] || fail "$CLIENT is missing (make check builds it)"
[ -e "$MODDIR/admin_soap.so" ] || fail "admin_soap.so is missing from $top_builddir/modules"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is needed"; exit 77; }

T=$((30 * SLOW))
AP="" URL="" # admin_soap's port and URL, from the ready file after each start (start_admin)

# start_admin: start_mpsd, then AP and URL from the ready file.
start_admin() {
    start_mpsd
    AP=$(ready_port admin_soap)
    URL="http://127.0.0.1:$AP/"
}
# admin_line ADDRESS: admin_soap's start line, and the core's "listening on" line naming the
# address of the ready file (port 0 resolved).
admin_line() {
    assert_log "SOAP management API, authentication "
    grep -qF "[admin_soap] listening on $1" "$MPSD_LOG" ||
        fail "no '[admin_soap] listening on $1' in the log"
    log "log has [admin_soap] listening on $1"
}

admin() { timeout "$T" "$CLIENT" "$URL" "$@"; }
pyadmin() { timeout "$T" python3 "$PYCLIENT" "$URL" "$@"; }
field() { # field NAME LINE: the value of NAME=... in a device line
    local f
    for f in $2; do
        case $f in "$1="*) echo "${f#*=}"; return ;; esac
    done
}
stat_of() { # stat_of NAME: the value from the gSOAP client's stats
    admin stats | sed -n "s/^$1=//p"
}

# raw FILE: send FILE's bytes to admin_soap, read until it closes; the status code on stdout,
# the whole answer in $TMPD/raw.out.
raw() {
    python3 - "$AP" "$1" "$TMPD/raw.out" "$T" <<'PY'
import socket, sys
port, path, out, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
data = open(path, "rb").read()
s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
try:
    s.sendall(data)
except OSError:
    pass  # the server may answer and close before it has read everything
got = b""
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    got += chunk
open(out, "wb").write(got)
line = got.split(b"\r\n", 1)[0].decode("latin-1")
print(line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none")
PY
}
expect_raw() { # expect_raw WANT WHAT FILE
    local got
    got=$(raw "$3")
    [ "$got" = "$1" ] || fail "$2: status $got, expected $1 ($(head -c 300 "$TMPD/raw.out"))"
    log "$2: $got"
}
envelope() { # envelope BODY-XML: a SOAP 1.1 envelope around it
    printf '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
    printf '<s:Body>%s</s:Body></s:Envelope>' "$1"
}
post() { # post BODY [HEADER-LINES]: a whole HTTP/1.1 POST with Connection: close
    printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n%sConnection: close\r\n' \
        "${2:-}"
    printf 'Content-Length: %d\r\n\r\n%s' "${#1}" "$1"
}

# ------------------------------------------------------------------- run A: 1000 devices
CONF_EXTRA="[module admin_soap]
Listen = 127.0.0.1:0

[module http_proxy]
Listen = 127.0.0.1:0" write_conf
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_admin
HP=$(ready_port http_proxy)
admin_line "127.0.0.1:$AP"

bg sim "$AMTSIM" --port "$AMT_PORT" --count 1000 --ports 16992,16993 --quiet \
    --ready-file "$TMPD/sim.ready"
all_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 1000 ]; }
wait_for $((60 * SLOW)) "1000 devices forwarding" all_ready
# A device of its own to disconnect later: it must see DISCONNECT 11 (by application).
bg victim "$AMTSIM" --port "$AMT_PORT" --fqdn victim.example.com \
    --uuid-base 22222222-3333-4444-5555-000000000000 --expect-disconnect 11 \
    --duration $((90 * SLOW)) --quiet
VICTIM_PID=$BG_PID
victim_up() { admin get victim.example.com | grep -q '^connected=true$'; }
wait_for $((20 * SLOW)) "victim.example.com connected" victim_up

# 1. The gSOAP client lists 1001 devices; a few are checked field by field.
start_ns=$(date +%s%N)
admin list >"$TMPD/list.c" || fail "admin_client list failed: $(tail -3 "$TMPD/list.c")"
end_ns=$(date +%s%N)
log "GetConnectedDevices of 1001 devices: $(((end_ns - start_ns) / 1000000)) ms (gSOAP client)"
[ "$(tail -n 1 "$TMPD/list.c")" = "count=1001" ] || fail "list: $(tail -n 1 "$TMPD/list.c")"
[ "$(grep -c '^fqdn=' "$TMPD/list.c")" = 1001 ] || fail "list: not 1001 device lines"
now=$(date +%s)
for i in 0 1 500 999; do
    line=$(grep "^fqdn=dev$i.example.com " "$TMPD/list.c") || fail "dev$i missing from the list"
    [ "$(field uuid "$line")" = "$(printf '8c6a3b2e-5d1f-4e7a-9b0c-%012x' "$i")" ] ||
        fail "dev$i: uuid in '$line'"
    [ "$(field ports "$line")" = 16992,16993 ] || fail "dev$i: ports in '$line'"
    case $(field peer "$line") in 127.0.0.1:[0-9]*) ;; *) fail "dev$i: peer in '$line'" ;; esac
    [ "$(field auth "$line")" = password ] || fail "dev$i: auth in '$line'"
    [ "$(field user "$line")" = amtuser ] || fail "dev$i: user in '$line'"
    connected=$(field connected "$line") lastseen=$(field lastseen "$line")
    [ $((now - connected)) -ge 0 ] && [ $((now - connected)) -le 60 ] ||
        fail "dev$i: connected $connected is not within the last minute (now $now)"
    [ "$lastseen" -ge "$connected" ] || fail "dev$i: lastseen before connected in '$line'"
    case $(field session "$line") in [1-9]*) ;; *) fail "dev$i: session in '$line'" ;; esac
done
log "dev0, dev1, dev500, dev999: fqdn, uuid, ports, peer, auth, user, times, session checked"
sessions=$(grep -o ' session=[0-9]*' "$TMPD/list.c" | sort -u | wc -l)
[ "$sessions" = 1001 ] || fail "sessions are not unique: $sessions distinct"

# The independent client sees the same devices (times aside: they move).
start_ns=$(date +%s%N)
pyadmin list >"$TMPD/list.py" || fail "admin_client.py list failed: $(tail -3 "$TMPD/list.py")"
end_ns=$(date +%s%N)
log "GetConnectedDevices of 1001 devices: $(((end_ns - start_ns) / 1000000)) ms (Python client)"
[ "$(tail -n 1 "$TMPD/list.py")" = "count=1001" ] || fail "py list: $(tail -n 1 "$TMPD/list.py")"
strip() { sed -E 's/ (connected|lastseen|keepalive)=[^ ]*//g' "$1" | sort; }
diff <(strip "$TMPD/list.c") <(strip "$TMPD/list.py") >"$TMPD/list.diff" ||
    fail "the two clients disagree: $(head -5 "$TMPD/list.diff")"
log "admin_client.py lists the same 1001 devices"

# 2. GetDevice: by FQDN (any case) and by UUID; an unknown name is not connected.
out=$(admin get DEV7.Example.COM)
[ "$(echo "$out" | head -n 1)" = connected=true ] || fail "get DEV7.Example.COM: $out"
dev7='^fqdn=dev7.example.com uuid=8c6a3b2e-5d1f-4e7a-9b0c-000000000007 ports=16992,16993 '
echo "$out" | grep -q "$dev7" ||
    fail "get dev7: $out"
out=$(admin get 8c6a3b2e-5d1f-4e7a-9b0c-000000000009)
echo "$out" | grep -q '^fqdn=dev9.example.com ' || fail "get by UUID: $out"
out=$(admin get nosuch.example.com)
[ "$out" = connected=false ] || fail "get nosuch.example.com: $out"
out=$(pyadmin get dev7.example.com)
[ "${out%%$'\n'*}" = connected=true ] || fail "py get dev7: $out"
log "GetDevice: by FQDN, by UUID, unknown"

# 3. DisconnectDevice: the victim gets DISCONNECT 11, the others stay.
victim_session=$(field session "$(admin get victim.example.com | tail -n 1)")
out=$(admin disconnect victim.example.com)
[ "$out" = disconnected=true ] || fail "disconnect victim.example.com: $out"
rc=0
bg_wait "$VICTIM_PID" $((20 * SLOW)) || rc=$?
[ "$rc" = 0 ] || fail "the victim did not get DISCONNECT 11 (amtsim status $rc: $(cat \
    "$TMPD/victim.err"))"
[ "$(cat "$TMPD/victim.out")" = "disconnected 1 11" ] || fail "victim: $(cat "$TMPD/victim.out")"
log "victim.example.com: $(cat "$TMPD/victim.out")"
assert_log "DisconnectDevice device victim.example.com (session $victim_session): disconnected"
gone() { [ "$(admin list | tail -n 1)" = count=1000 ]; }
wait_for $((10 * SLOW)) "the list down to 1000" gone
out=$(admin disconnect nosuch.example.com)
[ "$out" = disconnected=false ] || fail "disconnect nosuch.example.com: $out"
out=$(admin disconnect-session "$victim_session")
[ "$out" = disconnected=false ] || fail "disconnect of the gone session: $out"
# By session, through the independent client: exactly that tunnel.
s3=$(field session "$(admin get dev3.example.com | tail -n 1)")
out=$(pyadmin disconnect-session "$s3")
[ "$out" = disconnected=true ] || fail "py disconnect-session: $out"
dev3_gone() { [ "$(admin get dev3.example.com | head -n 1)" = connected=false ]; }
wait_for $((10 * SLOW)) "dev3 disconnected" dev3_gone
[ "$(admin list | tail -n 1)" = count=999 ] || fail "more than dev3 went away"
log "DisconnectDevice: by name (DISCONNECT 11 seen), unknown, gone session, by session"

# 4. Statistics move: 1001 tunnels opened, 2 closed, a console connection through http_proxy.
body=$(curl -sS --max-time "$T" -x "http://127.0.0.1:$HP" http://dev5.example.com:16992/stats)
case $body in "amtsim dev5.example.com "*) ;; *) fail "curl through http_proxy: $body" ;; esac
[ "$(stat_of DeviceConnectionsOpened)" = 1001 ] || fail "DeviceConnectionsOpened: $(admin stats)"
closed_two() { [ "$(stat_of DeviceConnectionsClosed)" -ge 2 ]; }
wait_for $((10 * SLOW)) "DeviceConnectionsClosed >= 2" closed_two
[ "$(stat_of DevicesConnected)" = 999 ] || fail "DevicesConnected: $(admin stats)"
[ "$(stat_of ConsoleConnectionsOpened)" -ge 1 ] || fail "ConsoleConnectionsOpened: $(admin stats)"
started=$(stat_of StartedAt)
[ $(($(date +%s) - started)) -le 600 ] || fail "StartedAt $started"
pyadmin stats >"$TMPD/stats.py" || fail "admin_client.py stats: $(cat "$TMPD/stats.py")"
grep -qx 'DeviceConnectionsOpened=1001' "$TMPD/stats.py" || fail "py stats: $(cat "$TMPD/stats.py")"
[ "$(grep -c = "$TMPD/stats.py")" = 16 ] || fail "py stats: not 16 fields"
log "GetStatistics: $(admin stats | tr '\n' ' ')"

# 7. Subscriptions: notify_soap is not loaded in this configuration (run D loads it).
for op in "subscribe http://127.0.0.1:9/x" "unsubscribe http://127.0.0.1:9/x" subscriptions; do
    rc=0
    out=$(admin $op) || rc=$?
    [ "$rc" = 1 ] && [ "$out" = "fault: notify_soap is not loaded" ] ||
        fail "$op without notify_soap: status $rc, $out"
done
log "Subscribe/Unsubscribe/GetSubscriptions: fault 'notify_soap is not loaded'"

# 6. Hostile HTTP: each gets its status and the connection closes; mpsd stays up.
printf 'this is not HTTP at all\r\n\r\n' >"$TMPD/req"
expect_raw 400 "not HTTP" "$TMPD/req"
{ printf 'POST / HTTP/1.1\r\nX-Big: '; head -c 9000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } \
    >"$TMPD/req"
expect_raw 431 "a 9000-byte header" "$TMPD/req"
printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n<x/>' >"$TMPD/req"
expect_raw 413 "Content-Length 100 MB" "$TMPD/req"
printf 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<x/>\r\n0\r\n\r\n' \
    >"$TMPD/req"
expect_raw 411 "chunked" "$TMPD/req"
printf 'DELETE / HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMPD/req"
expect_raw 405 "DELETE" "$TMPD/req"
printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' \
    >"$TMPD/req"
expect_raw 400 "two Content-Lengths" "$TMPD/req"
post '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><unclosed' \
    >"$TMPD/req"
expect_raw 500 "bad XML" "$TMPD/req"
grep -q '<faultstring>' "$TMPD/raw.out" || fail "bad XML: no SOAP fault: $(cat "$TMPD/raw.out")"
post "$(envelope '<m:NoSuchOperation xmlns:m="urn:mpsd:MpsAdmin:1"/>')" >"$TMPD/req"
expect_raw 500 "unknown operation" "$TMPD/req"
grep -q '<faultstring>' "$TMPD/raw.out" || fail "unknown operation: no SOAP fault"
post "$(envelope '<m:DisconnectDeviceRequest xmlns:m="urn:mpsd:MpsAdmin:1"/>')" >"$TMPD/req"
expect_raw 500 "DisconnectDevice without Device or Session" "$TMPD/req"
grep -q 'needs either Device or Session' "$TMPD/raw.out" || fail "no reason in the fault"
# Two pipelined requests in one write, then a third that closes: three answers, in order.
stats_rq=$(envelope '<GetStatisticsRequest xmlns="urn:mpsd:MpsAdmin:1"/>')
get_rq=$(envelope '<m:GetDeviceRequest xmlns:m="urn:mpsd:MpsAdmin:1">'\
'<m:Device>dev8.example.com</m:Device></m:GetDeviceRequest>')
{
    printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' "${#stats_rq}" "$stats_rq"
    printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' "${#get_rq}" "$get_rq"
    post "$stats_rq"
} >"$TMPD/req"
expect_raw 200 "three pipelined requests" "$TMPD/req"
[ "$(grep -o 'HTTP/1.1 200 OK' "$TMPD/raw.out" | wc -l)" = 3 ] || fail "pipelined: not 3 answers"
order=$(grep -o 'GetStatisticsResponse>\|GetDeviceResponse>' "$TMPD/raw.out" | uniq | tr '\n' ' ')
[ "$order" = "GetStatisticsResponse> GetDeviceResponse> GetStatisticsResponse> " ] ||
    fail "pipelined answers out of order: $order"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$T" "$URL")
[ "$code" = 405 ] || fail "GET: $code"
require_alive
[ "$(admin list | tail -n 1)" = count=999 ] || fail "list after the garbage"
log "hostile HTTP answered (400, 431, 413, 411, 405, 500 faults); pipelining in order; list works"
stop_mpsd

# ------------------------------------------------ run B: basic auth through the console realm
# 5. Authentication = auto with a console realm that wants credentials.
CONSOLE_AUTH=1 CONF_EXTRA="[module admin_soap]
Listen = 127.0.0.1:0" write_conf
start_admin
stats_body=$(envelope '<GetStatisticsRequest xmlns="urn:mpsd:MpsAdmin:1"/>')
status() { # status [CURL-OPTS]: HTTP status of a GetStatistics POST; headers in $TMPD/h
    curl -s -o /dev/null -D "$TMPD/h" -w '%{http_code}' --max-time "$T" \
        -H 'Content-Type: text/xml' --data "$stats_body" "$@" "$URL" || true
}
[ "$(status)" = 401 ] || fail "no credentials: $(status)"
grep -qi '^WWW-Authenticate: Basic realm="mpsd"' "$TMPD/h" || fail "401 without the challenge"
[ "$(status -u consoleuser:wrong)" = 401 ] || fail "wrong password: not 401"
[ "$(status -u consoleuser:C0nsole!)" = 200 ] || fail "right password: not 200"
rc=0
admin stats >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "gSOAP client without credentials: status $rc, expected 2 (HTTP 401)"
out=$(admin list --basic consoleuser:C0nsole! | tail -n 1)
[ "$out" = count=0 ] || fail "gSOAP client with credentials: $out"
out=$(pyadmin stats --basic consoleuser:C0nsole!)
[ "${out%%$'\n'*}" = DeviceConnectionsOpened=0 ] || fail "admin_client.py with credentials: $out"
out=$(pyadmin stats --basic consoleuser:nope || true)
[ "$out" = "http 401" ] || fail "admin_client.py with a wrong password: $out"
assert_log 'authentication failed for user "consoleuser"'
log "Authentication = auto with a realm: 401 without or with wrong credentials, 200 with right"
stop_mpsd

# Authentication = no: open even though the realm wants credentials; on every address, which
# is warned about. Also IdleTimeout and MaxConnections.
IDLE=$((2 * SLOW))
CONSOLE_AUTH=1 CONF_EXTRA="[module admin_soap]
Listen = 0.0.0.0:0
Authentication = no
IdleTimeout = ${IDLE}s
MaxConnections = 2" write_conf
start_admin
assert_log "management API on 0.0.0.0 port [0-9]* without authentication"
admin_line "0.0.0.0:$AP"
[ "$(status)" = 200 ] || fail "Authentication = no: $(status)"
log "Authentication = no: 200 without credentials"
# Half a request head, then silence: 408 after IdleTimeout.
printf 'POST / HTTP/1.1\r\nHost: x\r\n' >"$TMPD/req"
start=$SECONDS
expect_raw 408 "half a head, then nothing for ${IDLE}s" "$TMPD/req"
[ $((SECONDS - start)) -ge $((IDLE - 1)) ] || fail "408 came before IdleTimeout"
# Two keep-alive clients that got their answers hold both places: a third gets 503.
out=$(python3 - "$AP" "$stats_body" <<'PY'
import socket, sys
port, body = int(sys.argv[1]), sys.argv[2].encode()
req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
held = []
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    got = b""
    while b"</SOAP-ENV:Envelope>" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    print(got.split(b"\r\n", 1)[0].decode())
    held.append(s)
third = socket.create_connection(("127.0.0.1", port), timeout=30)
got = b""
while True:
    chunk = third.recv(65536)
    if not chunk:
        break
    got += chunk
print(got.split(b"\r\n", 1)[0].decode())
PY
)
[ "$out" = "HTTP/1.1 200 OK
HTTP/1.1 200 OK
HTTP/1.1 503 Service Unavailable" ] || fail "MaxConnections = 2: $out"
assert_log "MaxConnections (2) reached: 503"
log "MaxConnections = 2: the third client gets 503"
stop_mpsd

# Authentication = yes without a realm that checks credentials: mpsd does not start.
CONF_EXTRA="[module admin_soap]
Listen = 127.0.0.1:0
Authentication = yes" write_conf
rc=0
timeout $((20 * SLOW)) "$MPSD" -c "$CONF" >"$TMPD/yes.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "Authentication = yes without a realm: status $rc"
grep -q "Authentication = yes needs a console realm" "$TMPD/yes.log" ||
    fail "no reason logged: $(tail -3 "$TMPD/yes.log")"
log "Authentication = yes without a realm: start refused (status $rc)"

# ------------------------------------------- run C: HTTPS through [module tls] Serve = admin_soap
if command -v openssl >/dev/null 2>&1; then
    make_certs
    CONF_EXTRA="[module admin_soap]
SOAPListenIP = none

$(tls_section "Serve = admin_soap")" write_conf
    start_mpsd
    TP=$(ready_port tls)
    assert_log "\[admin_soap\] no listener of its own"
    out=$(curl -sS --max-time "$T" --cacert "$CERTS/ca.pem" -H 'Content-Type: text/xml' \
        --data "$stats_body" "https://127.0.0.1:$TP/") || fail "HTTPS GetStatistics: $out"
    echo "$out" | grep -q '<mpadm:DeviceConnectionsOpened>0</mpadm:DeviceConnectionsOpened>' ||
        fail "HTTPS GetStatistics: $out"
    log "HTTPS through the tls module (Serve = admin_soap): GetStatistics answered"
    stop_mpsd
else
    log "openssl missing: HTTPS through the tls module not tested"
fi

# ------------------------------------------------- run D: Subscribe/Unsubscribe with notify_soap
if [ -e "$MODDIR/notify_soap.so" ]; then
    LIST="$TMPD/NotificationList"
    STATE="$TMPD/notify_soap.state"
    : >"$LIST"
    # A subscriber nobody answers for: a port held, nothing listening on it.
    reserve_port NOBODY
    SUB="http://127.0.0.1:$NOBODY/subscriber"
    CONF_EXTRA="[module notify_soap]
NotificationList = $LIST
StateFile = $STATE

[module admin_soap]
Listen = 127.0.0.1:0" write_conf
    start_admin
    out=$(admin subscribe "$SUB") || fail "subscribe: $out"
    [ "$out" = "result=true message=subscribed" ] || fail "subscribe: $out"
    grep -qx "$SUB" "$STATE" || fail "the subscription is not in StateFile: $(cat "$STATE")"
    [ ! -s "$LIST" ] || fail "NotificationList was written: $(cat "$LIST")"
    assert_log "Subscribe $SUB"
    out=$(admin subscriptions)
    [ "$out" = "url=$SUB state=unknown queued=0 delivered=0 dropped=0
count=1" ] || fail "subscriptions: $out"
    rc=0
    out=$(admin subscribe "$SUB") || rc=$?
    [ "$rc" = 1 ] && case $out in "fault: "*already*) true ;; *) false ;; esac ||
        fail "second subscribe: status $rc, $out"
    rc=0
    out=$(admin subscribe ftp://example.com/x) || rc=$?
    [ "$rc" = 1 ] && case $out in "fault: "*URL*) true ;; *) false ;; esac ||
        fail "subscribe ftp://: status $rc, $out"
    out=$(admin unsubscribe "$SUB") || fail "unsubscribe: $out"
    [ "$out" = "result=true message=unsubscribed" ] || fail "unsubscribe: $out"
    ! grep -q "$SUB" "$STATE" || fail "still in StateFile after unsubscribe"
    rc=0
    out=$(admin unsubscribe "$SUB") || rc=$?
    [ "$rc" = 1 ] && case $out in "fault: "*) true ;; *) false ;; esac ||
        fail "second unsubscribe: status $rc, $out"
    [ "$(admin subscriptions)" = count=0 ] || fail "subscriptions after unsubscribe"
    assert_log "Unsubscribe $SUB"
    log "with notify_soap: subscribe, duplicate and bad URL faults, list, state file, unsubscribe"
    stop_mpsd
else
    log "notify_soap.so not built: only its absence (the fault) is tested"
fi
log "PASS"
