#!/bin/bash
# admin_http.sh - the REST API (modules/admin_http) driven with curl and an independent client
# (rest_client.py, Python's http.client): every endpoint; 1000 devices listed and paged (each
# exactly once); filters; DELETE (the device sees DISCONNECT 11); the event stream with 100
# churning devices (connect before disconnect, ids increasing, counts exact); a subscriber
# that never reads is dropped; /metrics through promtool while devices churn; hostile HTTP;
# authentication off, Basic through the console realm, bearer tokens and their scopes, the
# TokenFile reloaded on SIGHUP; /readyz 503 while the console realm's backend fails; HTTPS
# through the tls module.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

PYCLIENT="$top_srcdir/tests/integration/rest_client.py"
[ -e "$MODDIR/admin_http.so" ] || fail "admin_http.so is missing from $top_builddir/modules"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is needed"; exit 77; }
PROMTOOL=$(command -v promtool || true)

T=$((30 * SLOW))
AH="" URL="" # admin_http's port and URL, from the ready file after each start

start_rest() {
    start_mpsd
    AH=$(ready_port admin_http)
    URL="http://127.0.0.1:$AH"
}
py() { timeout "$T" python3 "$PYCLIENT" "$URL" "$@"; }
# code [CURL-ARGS...] PATH: the HTTP status of a request (headers in $TMPD/h, body $TMPD/b)
code() {
    local path=${*: -1}
    curl -s -o "$TMPD/b" -D "$TMPD/h" -w '%{http_code}' --max-time "$T" "${@:1:$#-1}" \
        "$URL$path" || true
}
expect_code() { # expect_code WANT WHAT [CURL-ARGS...] PATH
    local want=$1 what=$2 got
    shift 2
    got=$(code "$@")
    [ "$got" = "$want" ] || fail "$what: status $got, expected $want: $(head -c 300 "$TMPD/b")"
    log "$what: $got"
}
jget() { # jget EXPR: evaluate a Python expression over the JSON in $TMPD/b (as j)
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$TMPD/b" "$1"
}
metric() { # metric NAME-WITH-LABELS FILE: the value of that sample
    awk -v n="$1" '$1 == n { print $2; found=1 } END { if (!found) print "missing" }' "$2"
}
promcheck() { # promcheck FILE: promtool accepts the exposition
    [ -n "$PROMTOOL" ] || return 0
    "$PROMTOOL" check metrics <"$1" >"$TMPD/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(head -5 "$TMPD/promtool.out")"
}

# raw FILE: send FILE's bytes to admin_http, read until it closes; the first status code on
# stdout, the whole answer in $TMPD/raw.out.
raw() {
    python3 - "$AH" "$1" "$TMPD/raw.out" "$T" <<'PY'
import socket, sys
port, path, out, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
try:
    s.sendall(open(path, "rb").read())
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

# ------------------------------------------------------------ run A: no authentication, 1000 devices
CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
EventBuffer = 65536
EventKeepalive = 1s" write_conf
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_rest
assert_log "REST management API, authentication off"
grep -qF "[admin_http] listening on 127.0.0.1:$AH" "$MPSD_LOG" || fail "no listening line"

# Two subscribers before the devices come: one reads everything, one never reads.
bg events python3 "$PYCLIENT" "$URL" events "$TMPD/events.txt" "$TMPD/events.stop"
EVENTS_PID=$BG_PID
bg slow python3 "$PYCLIENT" "$URL" hold-events "$TMPD/slow.txt"
subscribed() { grep -q '^subscribed$' "$TMPD/events.txt" 2>/dev/null &&
    grep -q '^subscribed$' "$TMPD/slow.txt" 2>/dev/null; }
wait_for $((10 * SLOW)) "two event subscribers" subscribed
rss_before=$(awk '/^VmRSS/ {print $2}' "/proc/$MPSD_PID/status")

# Sixteen ports each: every tcpip-forward after the first is an event (ports_changed), 16,000 of
# them, about 8 MB, enough to fill the kernel's socket buffers (up to 4 MB on loopback) in
# front of the subscriber that never reads, and then EventBuffer.
PORTS=16992,16993$(for p in $(seq 17001 17014); do printf ',%s' "$p"; done)
bg sim "$AMTSIM" --port "$AMT_PORT" --count 1000 --ports "$PORTS" --quiet \
    --ready-file "$TMPD/sim.ready"
all_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = 1000 ]; }
wait_for $((60 * SLOW)) "1000 devices forwarding" all_ready
bg victim "$AMTSIM" --port "$AMT_PORT" --fqdn victim.example.com \
    --uuid-base 22222222-3333-4444-5555-000000000000 --expect-disconnect 11 \
    --duration $((90 * SLOW)) --quiet
VICTIM_PID=$BG_PID
victim_up() { [ "$(code /api/v1/devices/victim.example.com)" = 200 ]; }
wait_for $((20 * SLOW)) "victim.example.com connected" victim_up

# The subscriber that never reads was dropped.
wait_log "event subscriber dropped: [0-9]* bytes unread (EventBuffer 65536)" $((20 * SLOW))
touch "$TMPD/slow.txt.read"
wait_for $((20 * SLOW)) "the slow subscriber to see its stream end" grep -q '^closed after' \
    "$TMPD/slow.txt"
rss_after=$(awk '/^VmRSS/ {print $2}' "/proc/$MPSD_PID/status")
log "slow subscriber dropped ($(tail -n 1 "$TMPD/slow.txt")); RSS ${rss_before} -> ${rss_after} kB with 1001 devices"
curl -s --max-time "$T" "$URL/metrics" >"$TMPD/m0"
[ "$(metric mpsd_event_subscribers_dropped_total "$TMPD/m0")" = 1 ] ||
    fail "dropped subscribers: $(grep event_subscribers "$TMPD/m0")"
[ "$(metric mpsd_event_subscribers "$TMPD/m0")" = 1 ] || fail "subscribers: $(grep event_ "$TMPD/m0")"

# 1. Health, readiness, the OpenAPI document.
expect_code 200 "GET /healthz" /healthz
[ "$(jget 'j["status"]')" = ok ] || fail "healthz: $(cat "$TMPD/b")"
expect_code 200 "GET /readyz" /readyz
[ "$(jget 'j["status"]')" = ready ] || fail "readyz: $(cat "$TMPD/b")"
expect_code 200 "GET /api/v1/openapi.json" /api/v1/openapi.json
[ "$(jget 'j["openapi"][:2] + " " + str(len(j["paths"]))')" = "3. 10" ] ||
    fail "openapi.json: $(head -c 200 "$TMPD/b")"
cmp -s "$TMPD/b" "$top_srcdir/modules/admin_http/openapi.json" ||
    fail "the served openapi.json is not the one in the tree"

# 2. The list: 1001 devices through the independent client, 97 a page, each exactly once.
py list --page 97 >"$TMPD/list.py" || fail "rest_client list: $(tail -3 "$TMPD/list.py")"
[ "$(head -n 1 "$TMPD/list.py")" = count=1001 ] || fail "list: $(head -n 1 "$TMPD/list.py")"
{ for i in $(seq 0 999); do echo "dev$i.example.com"; done; echo victim.example.com; } |
    sort >"$TMPD/want"
tail -n +2 "$TMPD/list.py" | awk '{print $1}' | sort >"$TMPD/got"
diff "$TMPD/want" "$TMPD/got" >/dev/null || fail "paged list differs: $(diff "$TMPD/want" \
    "$TMPD/got" | head -5)"
log "rest_client.py paged 1001 devices, 97 a page: each exactly once, oldest first"
start_ns=$(date +%s%N)
expect_code 200 "GET /api/v1/devices?limit=10000" "/api/v1/devices?limit=10000"
end_ns=$(date +%s%N)
[ "$(jget 'len(j["devices"]), j["total"], j["offset"], j["limit"]')" = "(1001, 1001, 0, 10000)" ] ||
    fail "limit=10000: $(jget 'len(j["devices"]), j["total"]')"
log "1001 devices in one answer: $(((end_ns - start_ns) / 1000000)) ms (curl)"
jget '[d for d in j["devices"] if d["fqdn"] == "dev7.example.com"][0]' >"$TMPD/dev7"
python3 - "$TMPD/dev7" <<'PY' || fail "dev7's fields: $(cat "$TMPD/dev7")"
import ast, sys, time, datetime
d = ast.literal_eval(open(sys.argv[1]).read())
assert d["uuid"] == "8c6a3b2e-5d1f-4e7a-9b0c-000000000007", d
assert d["ports"] == [16992, 16993] + list(range(17001, 17015)), d
assert d["peer"].startswith("127.0.0.1:"), d
assert d["user"] == "amtuser" and d["auth_method"] == "password" and d["identity"] is None, d
assert d["tls_version"] is None and d["tls_cipher"] is None, d
assert isinstance(d["session"], int) and d["session"] > 0, d
t = datetime.datetime.strptime(d["connected_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
age = time.time() - t.replace(tzinfo=datetime.timezone.utc).timestamp()
assert 0 <= age < 600, d
assert d["last_seen"] >= d["connected_at"], d
for k in ("channels_open", "bytes_from_device", "bytes_to_device"):
    assert isinstance(d[k], int) or d[k] is None, d
PY
log "dev7: uuid, ports, peer, user, auth_method, TLS, session, times checked"
# Filters.
expect_code 200 "prefix=DEV99" "/api/v1/devices?prefix=DEV99&limit=0"
[ "$(jget 'j["total"], len(j["devices"])')" = "(11, 0)" ] || fail "prefix: $(cat "$TMPD/b")"
expect_code 200 "port=16993" "/api/v1/devices?port=16993&limit=5"
[ "$(jget 'j["total"], len(j["devices"])')" = "(1000, 5)" ] || fail "port: $(head -c 200 "$TMPD/b")"
expect_code 200 "since=2100-01-01T00:00:00Z" "/api/v1/devices?since=2100-01-01T00:00:00Z"
[ "$(jget 'j["total"]')" = 0 ] || fail "since future: $(head -c 200 "$TMPD/b")"
expect_code 200 "since=epoch 0" "/api/v1/devices?since=0&offset=1000"
[ "$(jget 'j["total"], [d["fqdn"] for d in j["devices"]]')" = "(1001, ['victim.example.com'])" ] ||
    fail "since=0&offset=1000: $(head -c 300 "$TMPD/b")"
for bad in "limit=10001" "port=0" "port=x" "foo=1" "since=yesterday" "limit=1&limit=2" "prefix=%zz"; do
    expect_code 400 "bad parameter $bad" "/api/v1/devices?$bad"
    [ -n "$(jget 'j["error"]')" ] || fail "400 without an error message"
done

# 3. One device: by FQDN in any case, by UUID, by session; unknown is 404.
expect_code 200 "GET DEV7 by name" /api/v1/devices/DEV7.Example.COM
[ "$(jget 'j["fqdn"]')" = dev7.example.com ] || fail "by name: $(cat "$TMPD/b")"
s7=$(jget 'j["session"]')
expect_code 200 "GET by UUID" /api/v1/devices/8c6a3b2e-5d1f-4e7a-9b0c-000000000009
[ "$(jget 'j["fqdn"]')" = dev9.example.com ] || fail "by UUID: $(cat "$TMPD/b")"
expect_code 200 "GET by session" "/api/v1/devices/$s7"
[ "$(jget 'j["fqdn"]')" = dev7.example.com ] || fail "by session: $(cat "$TMPD/b")"
expect_code 404 "GET unknown" /api/v1/devices/nosuch.example.com
[ "$(jget 'j["error"]')" = "no such device connected" ] || fail "404 body: $(cat "$TMPD/b")"
out=$(py get /api/v1/devices/dev7.example.com)
case $out in "200 {"*'"fqdn": "dev7.example.com"'*) ;; *) fail "py get: $out" ;; esac

# 4. DELETE: the victim gets DISCONNECT 11; unknown is 404; by session through Python.
victim_session=$(py get /api/v1/devices/victim.example.com | sed 's/.*"session": \([0-9]*\).*/\1/')
expect_code 200 "DELETE victim" -X DELETE /api/v1/devices/victim.example.com
[ "$(jget 'j["disconnected"], j["session"], j["fqdn"]')" = "(True, $victim_session, 'victim.example.com')" ] ||
    fail "DELETE answer: $(cat "$TMPD/b")"
rc=0
bg_wait "$VICTIM_PID" $((20 * SLOW)) || rc=$?
[ "$rc" = 0 ] && [ "$(cat "$TMPD/victim.out")" = "disconnected 1 11" ] ||
    fail "the victim did not get DISCONNECT 11 ($rc): $(cat "$TMPD/victim.out" "$TMPD/victim.err")"
log "victim.example.com: $(cat "$TMPD/victim.out")"
assert_log "DELETE device victim.example.com (session $victim_session): disconnected"
expect_code 404 "DELETE unknown" -X DELETE /api/v1/devices/nosuch.example.com
expect_code 404 "DELETE the gone session" -X DELETE "/api/v1/devices/$victim_session"
s3=$(py get /api/v1/devices/dev3.example.com | sed 's/.*"session": \([0-9]*\).*/\1/')
out=$(py status DELETE "/api/v1/devices/$s3")
[ "$out" = 200 ] || fail "py DELETE by session: $out"
dev3_gone() { [ "$(code /api/v1/devices/dev3.example.com)" = 404 ]; }
wait_for $((10 * SLOW)) "dev3 disconnected" dev3_gone
total999() { [ "$(code '/api/v1/devices?limit=0')" = 200 ] && [ "$(jget 'j["total"]')" = 999 ]; }
wait_for $((10 * SLOW)) "999 devices listed" total999

# 5. Statistics, reload.
expect_code 200 "GET /api/v1/stats" /api/v1/stats
python3 - "$TMPD/b" <<'PY' || fail "stats: $(head -c 400 "$TMPD/b")"
import json, sys
s = json.load(open(sys.argv[1]))
for k in ("devices_opened devices_closed consoles_opened consoles_closed amt_auth_failures "
          "console_auth_failures udp_blocked tcp_blocked udp_forwarded tcp_forwarded "
          "connection_errors general_errors devices_now tunnels_now consoles_now started_ms "
          "refused_acl refused_limit refused_startups accept_paused names_refused "
          "bytes_from_devices bytes_to_devices auth_waiting auth_running throttled_sources "
          "uptime_seconds").split():
    assert isinstance(s[k], int), k
assert s["devices_opened"] == 1001 and s["devices_now"] == 999, s
assert s["devices_closed"] == 2, s
assert len(s["tunnels_by_tls"]) == 4 and s["started_at"].endswith("Z"), s
assert [r["name"] for r in s["realms"]] in ([], ["AMT", "console"]), s["realms"]
for r in s["realms"]:
    for k in ("required ok deny error timeout throttled refused waiting_now running_now "
              "errors_in_row last_error plugins").split():
        assert k in r, (k, r)
PY
log "stats: every field; devices_opened 1001, devices_now 999, devices_closed 2"
expect_code 202 "POST /api/v1/reload" -X POST /api/v1/reload
[ "$(jget 'j["reload"]')" = requested ] || fail "reload: $(cat "$TMPD/b")"
wait_log "reloading (requested through the module API)"

# 6. Churn: 100 devices coming and going; the subscriber gets each connect before its
# disconnect, ids increasing (rest_client checks), counts exact; /metrics meanwhile.
opened_before=$(code /api/v1/stats >/dev/null; jget 'j["devices_opened"]')
log_lines_before=$(wc -l <"$MPSD_LOG")
bg churn "$AMTSIM" --port "$AMT_PORT" --count 100 --fqdn 'churn%d.example.com' \
    --uuid-base 33333333-3333-4444-5555-000000000000 --churn 40 --reconnect \
    --duration $((6 * SLOW)) --quiet
CHURN_PID=$BG_PID
for i in 1 2 3 4 5; do
    curl -s --max-time "$T" "$URL/metrics" >"$TMPD/m$i"
    promcheck "$TMPD/m$i"
    n=$(metric mpsd_devices_connected "$TMPD/m$i")
    sum=$(awk '$1 ~ /^mpsd_device_tunnels\{/ {s += $2} END {print s+0}' "$TMPD/m$i")
    [ "$n" = "$sum" ] && [ "$n" -ge 999 ] && [ "$n" -le 1099 ] ||
        fail "scrape $i during churn: devices_connected $n, sum of device_tunnels $sum"
    sleep 0.5
done
log "5 scrapes during churn: promtool $([ -n "$PROMTOOL" ] && echo accepts them || echo is not installed); devices_connected = sum of device_tunnels, within 999..1099"
bg_wait "$CHURN_PID" $((30 * SLOW)) || fail "the churning amtsim did not end: $(cat "$TMPD/churn.err")"
wait_for $((20 * SLOW)) "the churned devices gone" total999
curl -s --max-time "$T" "$URL/metrics" >"$TMPD/m6"
promcheck "$TMPD/m6"
[ "$(metric mpsd_devices_connected "$TMPD/m6")" = 999 ] ||
    fail "devices_connected after churn: $(metric mpsd_devices_connected "$TMPD/m6")"
expect_code 200 "stats after churn" /api/v1/stats
opened=$(($(jget 'j["devices_opened"]') - opened_before))
# A churned session can log in (devices_opened) and be ended before it registers a name: no
# connected event is owed for it. The log names those by UUID instead of an FQDN.
unnamed=$(tail -n "+$((log_lines_before + 1))" "$MPSD_LOG" |
    grep -c '\[33333333-3333-4444-5555-[0-9a-f]*\] Intel remote client has disconnected' || true)
# Every disconnect is an event before the registry forgets the device, and this subscriber
# reads as fast as they come: its file has them all once the list shows 999.
touch "$TMPD/events.stop"
bg_wait "$EVENTS_PID" $((10 * SLOW)) || fail "the subscriber failed: $(cat "$TMPD/events.err")"
python3 - "$TMPD/events.txt" "$opened" "$unnamed" <<'PY' || fail "event stream check failed"
import sys
lines = [l.split() for l in open(sys.argv[1]) if l[0].isdigit()]
opened = int(sys.argv[2]) - int(sys.argv[3])
state = {}
conn = disc = 0
for ev_id, ev, fqdn, session in lines:
    if not fqdn.startswith("churn"):
        continue
    if ev == "connected":
        assert session not in state, ("connected twice", session)
        state[session] = "up"
        conn += 1
    elif ev == "disconnected":
        assert state.get(session) == "up", ("disconnect before connect", session)
        state[session] = "down"
        disc += 1
    elif ev == "ports_changed":
        assert state.get(session) == "up", ("ports_changed outside a session", session)
assert conn == opened, (conn, opened)
assert disc == conn, (disc, conn)
assert all(v == "down" for v in state.values())
devs = [l for l in lines if l[2].startswith("dev") and l[1] == "connected"]
assert len(devs) == 1000, len(devs)
victim = [l[1] for l in lines if l[2] == "victim.example.com"]
assert victim[0] == "connected" and victim[-1] == "disconnected", victim
print("churn: %d sessions, each connected then disconnected; %d events in all" % (conn, len(lines)))
PY
log "events: $opened churn sessions, each connected before disconnected, ids increasing"

# 7. Hostile HTTP: each gets its status; mpsd stays up.
{ printf 'GET /healthz HTTP/1.1\r\nX-Big: '; head -c 9000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } \
    >"$TMPD/req"
expect_raw 431 "a 9000-byte header" "$TMPD/req"
printf 'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\nxx' >"$TMPD/req"
expect_raw 413 "Content-Length 100 MB" "$TMPD/req"
printf 'this is not HTTP at all\r\n\r\n' >"$TMPD/req"
expect_raw 400 "not HTTP" "$TMPD/req"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n' >"$TMPD/req"
expect_raw 400 "a header without a colon" "$TMPD/req"
printf 'FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMPD/req"
expect_raw 501 "unknown method FOO" "$TMPD/req"
printf 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n' >"$TMPD/req"
expect_raw 505 "HTTP/2.0 request line" "$TMPD/req"
out=$(py status PUT /api/v1/devices)
[ "$out" = "405 GET, HEAD" ] || fail "PUT /api/v1/devices: $out"
out=$(py status POST /api/v1/devices/dev1.example.com)
[ "$out" = "405 GET, HEAD, DELETE" ] || fail "POST on a device: $out"
out=$(py status GET /api/v1/reload)
[ "$out" = "405 POST" ] || fail "GET /api/v1/reload: $out"
expect_code 404 "GET /nosuch" /nosuch
expect_code 400 "a bad escape in a device name" /api/v1/devices/%zz
printf 'HEAD /api/v1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$TMPD/req"
expect_raw 200 "HEAD /api/v1/stats" "$TMPD/req"
grep -qa '^Content-Length: [1-9]' "$TMPD/raw.out" && [ "$(tail -c 4 "$TMPD/raw.out" | od -An -c | tr -d ' ')" = '\r\n\r\n' ] ||
    fail "HEAD: a body or no length: $(cat "$TMPD/raw.out")"
# Three pipelined requests in one write, the last closing: three answers in order.
{
    printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
    printf 'GET /api/v1/devices/dev8.example.com HTTP/1.1\r\nHost: x\r\n\r\n'
    printf 'GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
} >"$TMPD/req"
expect_raw 200 "three pipelined requests" "$TMPD/req"
order=$(grep -ao '"status":"ok"\|"fqdn":"dev8.example.com"\|"status":"ready"' "$TMPD/raw.out" |
    tr '\n' ' ')
[ "$order" = '"status":"ok" "fqdn":"dev8.example.com" "status":"ready" ' ] ||
    fail "pipelined answers out of order: $order"
# HTTP/1.0 without keep-alive: one answer, then the connection closes.
printf 'GET /healthz HTTP/1.0\r\n\r\n' >"$TMPD/req"
expect_raw 200 "HTTP/1.0" "$TMPD/req"
grep -qi '^Connection: close' "$TMPD/raw.out" || fail "HTTP/1.0: no Connection: close"
require_alive
total999 || fail "the list after the garbage"
log "hostile HTTP answered (431, 413, 400, 501, 505, 405 with Allow, 404); pipelining in order"
stop_mpsd

# ------------------------------------------------- run B: Basic through the console realm, tokens
tok() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
ADMIN_TOKEN=admin-$RANDOM$RANDOM READ_TOKEN=read-$RANDOM$RANDOM RELAY_TOKEN=relay-$RANDOM
TOKENS="$TMPD/tokens"
{
    echo "# name scopes sha256"
    echo "ops admin $(tok "$ADMIN_TOKEN")"
    echo
    echo "grafana read $(tok "$READ_TOKEN")"
    echo "relay relay $(tok "$RELAY_TOKEN")"
} >"$TOKENS"
CONSOLE_AUTH=1 CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
TokenFile = $TOKENS" write_conf
start_rest
assert_log "REST management API, authentication required, 3 tokens"
out=$(py status GET /api/v1/stats)
[ "$out" = "401 Basic,Bearer" ] || fail "no credentials: $out"
expect_code 401 "GET /metrics without credentials" /metrics
expect_code 200 "GET /healthz without credentials (probes)" /healthz
expect_code 401 "GET /readyz without credentials" /readyz
expect_code 200 "Basic, right password" -u consoleuser:C0nsole! /api/v1/stats
expect_code 401 "Basic, wrong password" -u consoleuser:wrong /api/v1/stats
assert_log 'authentication failed for user "consoleuser"'
out=$(py --basic consoleuser:C0nsole! list)
[ "$out" = count=0 ] || fail "rest_client with Basic: $out"
[ "$(py --basic consoleuser:nope status GET /api/v1/stats)" = "401 Basic,Bearer" ] ||
    fail "rest_client with a wrong password"
bearer() { echo "Authorization: Bearer $1"; }
expect_code 200 "admin token GET" -H "$(bearer "$ADMIN_TOKEN")" /api/v1/stats
expect_code 404 "admin token DELETE (no such device)" -X DELETE -H "$(bearer "$ADMIN_TOKEN")" \
    /api/v1/devices/nosuch.example.com
expect_code 401 "a wrong token" -H "$(bearer "wrong-$ADMIN_TOKEN")" /api/v1/stats
assert_log "unknown bearer token"
expect_code 200 "read token GET /metrics" -H "$(bearer "$READ_TOKEN")" /metrics
promcheck "$TMPD/b"
expect_code 403 "read token DELETE" -X DELETE -H "$(bearer "$READ_TOKEN")" \
    /api/v1/devices/nosuch.example.com
expect_code 403 "read token POST /api/v1/reload" -X POST -H "$(bearer "$READ_TOKEN")" \
    /api/v1/reload
[ "$(py --token "$READ_TOKEN" status POST /api/v1/reload)" = 403 ] || fail "py read token reload"
expect_code 403 "relay-only token GET" -H "$(bearer "$RELAY_TOKEN")" /api/v1/devices
# The core's control socket (mpsctl's way in): admin without credentials.
out=$(curl -sS --max-time "$T" --unix-socket "$TMPD/control" -o /dev/null -w '%{http_code}' \
    -X DELETE http://localhost/api/v1/devices/nosuch.example.com) || fail "control socket: $out"
[ "$out" = 404 ] || fail "DELETE through the control socket without credentials: $out"
out=$(curl -sS --max-time "$T" --unix-socket "$TMPD/control" http://localhost/api/v1/devices)
[ "$out" = '{"total":0,"offset":0,"limit":100,"devices":[]}' ] || fail "control socket list: $out"
log "control socket: admin scope without credentials (DELETE reached its 404, the list answered)"
# Two reloads pipelined in one write: the second finds the first pending (409).
{
    printf 'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$ADMIN_TOKEN"
    printf 'Content-Length: 0\r\n\r\n'
    printf 'POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n' "$ADMIN_TOKEN"
    printf 'Content-Length: 0\r\nConnection: close\r\n\r\n'
} >"$TMPD/req"
expect_raw 202 "two pipelined reloads" "$TMPD/req"
[ "$(grep -ao '^HTTP/1.1 [0-9]*' "$TMPD/raw.out" | tr '\n' ' ')" = "HTTP/1.1 202 HTTP/1.1 409 " ] ||
    fail "pipelined reloads: $(grep -a '^HTTP' "$TMPD/raw.out")"
wait_log "reloading (requested through the module API)"
# The TokenFile on SIGHUP: a bad file keeps the old tokens and names file:line.
cp "$TOKENS" "$TOKENS.good"
printf 'ops admin %s\nbroken line\n' "$(tok "$ADMIN_TOKEN")" >"$TOKENS"
kill -HUP "$MPSD_PID"
wait_log "TokenFile: $TOKENS:2: "
wait_log "TokenFile not reloaded: keeping the 3 tokens"
expect_code 200 "read token after a bad reload" -H "$(bearer "$READ_TOKEN")" /api/v1/stats
NEW_TOKEN=new-$RANDOM$RANDOM
printf 'newops admin %s\n' "$(tok "$NEW_TOKEN")" >"$TOKENS"
kill -HUP "$MPSD_PID"
wait_log "TokenFile reloaded: 1 tokens"
expect_code 202 "the new token" -X POST -H "$(bearer "$NEW_TOKEN")" /api/v1/reload
expect_code 401 "a token of the old file" -H "$(bearer "$READ_TOKEN")" /api/v1/stats
log "TokenFile: a bad file kept the old tokens (file:line logged), a good one replaced them"
stop_mpsd

# Auth = on with neither a realm that checks nor a TokenFile: the start is refused.
CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
Auth = on" write_conf
rc=0
timeout $((20 * SLOW)) "$MPSD" -c "$CONF" >"$TMPD/on.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "Auth = on without credentials: status $rc"
grep -q "Auth = on needs a TokenFile or a console realm" "$TMPD/on.log" ||
    fail "no reason logged: $(tail -3 "$TMPD/on.log")"
log "Auth = on without a realm or tokens: start refused (status $rc)"

# A token file with tokens but no console realm: Basic is refused, tokens work.
printf 'ops admin %s\n' "$(tok "$ADMIN_TOKEN")" >"$TOKENS"
CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
TokenFile = $TOKENS" write_conf
start_rest
expect_code 401 "Basic without a console realm that checks" -u anyone:anything /api/v1/stats
grep -q 'console realm that checks them' "$TMPD/b" || fail "401 body: $(cat "$TMPD/b")"
expect_code 200 "token without a console realm" -H "$(bearer "$ADMIN_TOKEN")" /api/v1/stats
stop_mpsd

# ---------------------------------------- run C: /readyz 503 while the console realm's backend fails
if [ -e "$top_builddir/plugins/auth_soap/.libs/auth_soap.so" ]; then
    ln -sf "$top_builddir/plugins/auth_soap/.libs/auth_soap.so" "$MODDIR/auth_soap.so"
    reserve_port DEAD
    CONSOLE_AUTH=1 CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
TokenFile = $TOKENS
ReadyAuthErrors = 3" write_conf
    sed -i -e "/^\[Socks_Authenticate\]/,/^\[/ s|^Plugin = auth_file\$|Plugin = auth_soap|" \
        -e "/^\[Socks_Authenticate\]/,/^\[/ s|^PluginParameters = file .*|PluginParameters = -target http://127.0.0.1:$DEAD/x -timeout 3|" \
        "$CONF"
    grep -q "^Plugin = auth_soap" "$CONF" || fail "no auth_soap line in $CONF"
    start_rest
    AUTHZ=$(bearer "$ADMIN_TOKEN")
    expect_code 200 "readyz before any failure" -H "$AUTHZ" /readyz
    for i in 1 2 3; do
        expect_code 503 "Basic check $i against a dead backend" -u consoleuser:C0nsole! /api/v1/stats
    done
    expect_code 503 "readyz after 3 backend errors" -H "$AUTHZ" /readyz
    [ "$(jget 'j["status"]')" = "not ready" ] || fail "readyz: $(cat "$TMPD/b")"
    jget 'j["reasons"][0]' | grep -q "^realm console: the last 3 checks failed" ||
        fail "readyz reasons: $(cat "$TMPD/b")"
    log "readyz: $(jget 'j["reasons"][0]')"
    expect_code 200 "metrics" -H "$AUTHZ" /metrics
    promcheck "$TMPD/b"
    [ "$(metric 'mpsd_auth_backend_errors_in_row{realm="console"}' "$TMPD/b")" = 3 ] ||
        fail "errors_in_row metric: $(grep errors_in_row "$TMPD/b")"
    grep -q '^mpsd_auth_results_total{realm="console",plugin="auth_soap\[Socks_Authenticate\]",result="error"} 3$' \
        "$TMPD/b" || fail "auth results metric: $(grep auth_results "$TMPD/b")"
    grep -q '^mpsd_auth_latency_seconds_count{realm="console"} 3$' "$TMPD/b" ||
        fail "latency histogram: $(grep latency_seconds_count "$TMPD/b")"
    stop_mpsd
else
    log "auth_soap.so not built: /readyz with a failing backend not tested"
fi

# ------------------------------------------------ run D: HTTPS through [module tls] Serve = admin_http
if command -v openssl >/dev/null 2>&1; then
    make_certs
    CONF_EXTRA="[module admin_http]
Listen = none

$(tls_section "Serve = admin_http")" write_conf
    start_mpsd
    TP=$(ready_port tls)
    out=$(curl -sS --max-time "$T" --cacert "$CERTS/ca.pem" "https://127.0.0.1:$TP/healthz") ||
        fail "HTTPS healthz: $out"
    [ "$out" = '{"status":"ok"}' ] || fail "HTTPS healthz: $out"
    out=$(curl -sS --max-time "$T" --cacert "$CERTS/ca.pem" \
        "https://127.0.0.1:$TP/api/v1/devices") || fail "HTTPS devices: $out"
    [ "$out" = '{"total":0,"offset":0,"limit":100,"devices":[]}' ] || fail "HTTPS devices: $out"
    # A plain HTTP request to the TLS port fails its handshake: counted by reason.
    curl -s --max-time "$T" "http://127.0.0.1:$TP/healthz" >/dev/null 2>&1 || true
    curl -sS --max-time "$T" --cacert "$CERTS/ca.pem" "https://127.0.0.1:$TP/metrics" \
        >"$TMPD/mtls" || fail "HTTPS metrics"
    promcheck "$TMPD/mtls"
    # (the instance label holds a blank: the value is the last field)
    ok=$(awk '/^mpsd_tls_handshakes_total[{]instance="/ {print $NF}' "$TMPD/mtls")
    nt=$(awk '/^mpsd_tls_handshake_failures_total[{].*reason="not_tls"[}]/ {print $NF}' \
        "$TMPD/mtls")
    [ "${ok:-0}" -ge 3 ] && [ "$nt" = 1 ] || fail "TLS metrics: $(grep mpsd_tls "$TMPD/mtls")"
    log "TLS metrics: $(grep -c '^mpsd_tls' "$TMPD/mtls") samples, the plain request counted as not_tls"
    log "HTTPS through the tls module (Serve = admin_http): healthz and devices answered"
    stop_mpsd
else
    log "openssl missing: HTTPS through the tls module not tested"
fi
log "PASS"
