#!/bin/bash
# mpsctl.sh - the admin client mpsctl against the real daemon: over the core's control socket
# ([core] ControlSocket, served to admin_http) and over admin_http's REST port with bearer
# tokens. devices (table, --json, filters), show, disconnect (the device sees DISCONNECT 11),
# stats, reload, events (a device connecting and leaving), health, and the exit statuses
# scripts rely on: 1 not connected, 2 usage, 3 unreachable, 4 refused credentials.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

MPSCTL="$top_builddir/contrib/mpsctl/mpsctl"
[ -x "$MPSCTL" ] || fail "$MPSCTL is missing (configure found libcurl and jansson: make)"
if [ ! -e "$top_builddir/modules/admin_http/admin_http.la" ]; then
    echo "SKIP: modules/admin_http is not built (the server side of mpsctl)"
    exit 77
fi

T=$((30 * SLOW))
SOCK="$TMPD/control"
ADMIN_TOKEN="mpsctl-admin-$$-$RANDOM$RANDOM"
READ_TOKEN="mpsctl-read-$$-$RANDOM$RANDOM"
{
    echo "# name scopes sha256"
    echo "ops admin $(printf %s "$ADMIN_TOKEN" | sha256sum | cut -d' ' -f1)"
    echo "viewer read $(printf %s "$READ_TOKEN" | sha256sum | cut -d' ' -f1)"
} >"$TMPD/tokens"
printf '%s\n' "$ADMIN_TOKEN" >"$TMPD/admin.token"

# ctl ARGS: mpsctl over the control socket; its output in $TMPD/ctl.out and .err, its exit
# status in RC (the test goes on whatever it is).
ctl() {
    RC=0
    timeout "$T" "$MPSCTL" --socket "$SOCK" "$@" >"$TMPD/ctl.out" 2>"$TMPD/ctl.err" || RC=$?
}
# expect_rc WANT WHAT ARGS...: mpsctl ARGS (no socket added) exits with WANT.
expect_rc() {
    local want=$1 what=$2 rc=0
    shift 2
    timeout "$T" "$MPSCTL" "$@" >"$TMPD/rc.out" 2>"$TMPD/rc.err" || rc=$?
    [ "$rc" = "$want" ] || fail "$what: exit status $rc, expected $want: $(cat "$TMPD/rc.err")"
    log "$what: exit status $rc ($(head -n 1 "$TMPD/rc.err"))"
}
ok() { # ok WHAT ARGS: ctl ARGS must succeed
    local what=$1
    shift
    ctl "$@"
    [ "$RC" = 0 ] || fail "$what: exit status $RC: $(cat "$TMPD/ctl.err")"
}
# json_count: the number of elements of the JSON array in $TMPD/ctl.out.
json_count() {
    python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$TMPD/ctl.out"
}
count_is() { ctl devices --json && [ "$RC" = 0 ] && [ "$(json_count)" = "$1" ]; }

# lib.sh's write_conf adds [core] ControlSocket = $CONTROL_SOCKET for admin_http.
CONTROL_SOCKET=$SOCK CONF_EXTRA="[module admin_http]
Listen = 127.0.0.1:0
TokenFile = $TMPD/tokens" write_conf
start_mpsd
AH=$(ready_port admin_http)
URL="http://127.0.0.1:$AH"
wait_for $((10 * SLOW)) "the control socket $SOCK" test -S "$SOCK"

# 1. No device yet: the table is its header alone, the JSON an empty array.
ok "devices (none)" devices
[ "$(wc -l <"$TMPD/ctl.out")" = 1 ] || fail "devices with none: $(cat "$TMPD/ctl.out")"
head -n 1 "$TMPD/ctl.out" | grep -Eq '^FQDN +UUID +PEER +PORTS +AUTH +TLS +CONNECTED +CHANNELS +RX +TX$' ||
    fail "table header: $(head -n 1 "$TMPD/ctl.out")"
ok "devices --json (none)" devices --json
[ "$(json_count)" = 0 ] || fail "devices --json with none: $(cat "$TMPD/ctl.out")"
log "no devices: the header alone, []"

# 2. Five devices and a victim to disconnect; an events follower started before them.
bg events "$MPSCTL" --socket "$SOCK" events
EVENTS_PID=$BG_PID
bg events_json "$MPSCTL" --socket "$SOCK" events --json
EVENTS_JSON_PID=$BG_PID
bg sim "$AMTSIM" --port "$AMT_PORT" --count 5 --ports 16992,16993 --quiet \
    --ready-file "$TMPD/sim.ready"
bg victim "$AMTSIM" --port "$AMT_PORT" --fqdn victim.example.com --ports 16992 \
    --uuid-base 22222222-3333-4444-5555-000000000000 --expect-disconnect 11 \
    --duration $((90 * SLOW)) --quiet
VICTIM_PID=$BG_PID
wait_for $((20 * SLOW)) "6 devices listed" count_is 6

ok "devices" devices
[ "$(wc -l <"$TMPD/ctl.out")" = 7 ] || fail "devices: not a header and 6 rows: $(cat "$TMPD/ctl.out")"
for i in 0 4; do
    row=$(grep "^dev$i.example.com " "$TMPD/ctl.out") || fail "dev$i is not in the table"
    # shellcheck disable=SC2086 # the row's words are the fields
    set -- $row
    [ "$2" = "$(printf '8c6a3b2e-5d1f-4e7a-9b0c-%012x' "$i")" ] || fail "dev$i UUID: $row"
    case $3 in 127.0.0.1:[0-9]*) ;; *) fail "dev$i PEER: $row" ;; esac
    [ "$4" = 16992,16993 ] && [ "$5" = password ] && [ "$6" = - ] || fail "dev$i: $row"
    case $7 in [0-9]s | [0-9][0-9]s | [0-9]m[0-9]*s) ;; *) fail "dev$i CONNECTED: $row" ;; esac
    [ "$8" = 0 ] || fail "dev$i CHANNELS: $row"
    case $9 in [1-9]*B) ;; *) fail "dev$i RX: $row" ;; esac
done
log "devices: 6 rows; dev0 and dev4 field by field: $(grep '^dev0\.' "$TMPD/ctl.out")"

ok "devices --json" devices --json
python3 - "$TMPD/ctl.out" <<'PY' || fail "devices --json: the objects are not right"
import json, sys
devs = json.load(open(sys.argv[1]))
assert len(devs) == 6, len(devs)
names = sorted(d["fqdn"] for d in devs)
assert names == ["dev%d.example.com" % i for i in range(5)] + ["victim.example.com"], names
for d in devs:
    assert isinstance(d["session"], int) and d["auth_method"] == "password", d
    assert d["user"] == "amtuser" and d["tls_version"] is None, d
    assert d["ports"] == ([16992] if d["fqdn"].startswith("victim") else [16992, 16993]), d
    assert d["bytes_from_device"] > 0 and d["bytes_to_device"] > 0, d
assert len({d["session"] for d in devs}) == 6
PY
ok "devices --prefix dev3" devices --json --prefix dev3
[ "$(json_count)" = 1 ] || fail "--prefix dev3: $(cat "$TMPD/ctl.out")"
ok "devices --port 16993" devices --json --port 16993
[ "$(json_count)" = 5 ] || fail "--port 16993 (not the victim): $(json_count)"
ok "devices --since 1h" devices --json --since 1h
[ "$(json_count)" = 6 ] || fail "--since 1h: $(json_count)"
ok "devices --since (future)" devices --json --since $(($(date +%s) + 3600))
[ "$(json_count)" = 0 ] || fail "--since an hour ahead: $(json_count)"
log "devices --json: 6 objects checked; --prefix 1, --port 5, --since 6 and 0"

# 3. show: by FQDN (any case) and by UUID; an unknown name is exit status 1.
ok "show DEV2" show DEV2.example.COM
grep -qx 'fqdn: *dev2.example.com' "$TMPD/ctl.out" || fail "show: $(cat "$TMPD/ctl.out")"
grep -qx 'uuid: *8c6a3b2e-5d1f-4e7a-9b0c-000000000002' "$TMPD/ctl.out" || fail "show uuid"
grep -qx 'ports: *16992,16993' "$TMPD/ctl.out" || fail "show ports"
ok "show by UUID" show 8c6a3b2e-5d1f-4e7a-9b0c-000000000003 --json
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["fqdn"] == "dev3.example.com"' \
    "$TMPD/ctl.out" || fail "show --json by UUID: $(cat "$TMPD/ctl.out")"
expect_rc 1 "show nosuch.example.com" --socket "$SOCK" show nosuch.example.com
grep -q '^mpsctl: nosuch.example.com: .*(HTTP 404)$' "$TMPD/rc.err" || fail "show: $(cat "$TMPD/rc.err")"

# 4. disconnect: the victim gets DISCONNECT 11; an unknown name is exit status 1.
ok "disconnect victim" disconnect victim.example.com
grep -q '^disconnected victim.example.com (fqdn victim.example.com, uuid 22222222-' \
    "$TMPD/ctl.out" || fail "disconnect: $(cat "$TMPD/ctl.out")"
grep -q 'reconnects' "$TMPD/ctl.err" || fail "disconnect: no note that AMT reconnects"
rc=0
bg_wait "$VICTIM_PID" $((20 * SLOW)) || rc=$?
[ "$rc" = 0 ] && [ "$(cat "$TMPD/victim.out")" = "disconnected 1 11" ] ||
    fail "the victim did not get DISCONNECT 11 (status $rc: $(cat "$TMPD/victim.out" \
        "$TMPD/victim.err"))"
log "victim.example.com: $(cat "$TMPD/victim.out")"
wait_for $((10 * SLOW)) "5 devices listed" count_is 5
expect_rc 1 "disconnect nosuch.example.com" --socket "$SOCK" disconnect nosuch.example.com

# 5. events: a device connecting and leaving reaches both followers.
bg late "$AMTSIM" --port "$AMT_PORT" --fqdn late.example.com --ports 16992 \
    --uuid-base 33333333-3333-4444-5555-000000000000 --expect-disconnect 11 \
    --duration $((90 * SLOW)) --quiet
LATE_PID=$BG_PID
ev_has() { grep -Eq "$1" "$TMPD/events.out"; }
wait_for $((20 * SLOW)) "a connected event" ev_has \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z connected late.example.com 33333333-3333-4444-5555-000000000000 127.0.0.1:[0-9]+ 16992$'
ok "disconnect late" disconnect late.example.com
bg_wait "$LATE_PID" $((20 * SLOW)) || fail "late.example.com did not get DISCONNECT 11"
wait_for $((20 * SLOW)) "a disconnected event" ev_has \
    ' disconnected late.example.com 33333333-3333-4444-5555-000000000000 '
ev_has 'disconnected victim.example.com' || fail "no event for the victim: $(cat "$TMPD/events.out")"
json_ev() {
    python3 - "$TMPD/events_json.out" <<'PY'
import json, sys
seen = set()
for line in open(sys.argv[1]):
    d = json.loads(line)
    seen.add((d["event"], d["fqdn"]))
sys.exit(0 if {("connected", "late.example.com"), ("disconnected", "late.example.com")} <= seen
         else 1)
PY
}
wait_for $((10 * SLOW)) "events --json: late.example.com in and out" json_ev
for p in "$EVENTS_PID" "$EVENTS_JSON_PID"; do
    kill -INT "$p"
    rc=0
    bg_wait "$p" $((10 * SLOW)) || rc=$?
    [ "$rc" = 0 ] || fail "events did not exit 0 on SIGINT (status $rc)"
done
log "events: $(grep -c . "$TMPD/events.out") lines, e.g. $(grep late "$TMPD/events.out" | head -n 1)"

# 6. stats and health.
ok "stats" stats
grep -Eq '^devices_opened +[0-9]+' "$TMPD/ctl.out" || fail "stats: $(cat "$TMPD/ctl.out")"
grep -q '^realm AMT$' "$TMPD/ctl.out" || fail "stats: no realm AMT: $(cat "$TMPD/ctl.out")"
ok "stats --json" stats --json
python3 - "$TMPD/ctl.out" <<'PY' || fail "stats --json: $(cat "$TMPD/ctl.out")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["devices_opened"] == 7 and s["devices_now"] == 5, s
assert [r["name"] for r in s["realms"]] == ["AMT", "console"], s["realms"]
PY
ok "health" health
[ "$(cat "$TMPD/ctl.out")" = ready ] || fail "health: $(cat "$TMPD/ctl.out")"
log "stats: 7 opened, 5 now, realms AMT and console; health: ready"

# 7. reload: requested, and the daemon reloads.
ok "reload" reload
[ "$(cat "$TMPD/ctl.out")" = "reload requested" ] || fail "reload: $(cat "$TMPD/ctl.out")"
wait_log "reloading"
log "reload: requested and logged"

# 8. The REST port with bearer tokens: the admin token, the same from a file, a wrong one, a
# read-only one that may list but not disconnect, none at all.
expect_rc 0 "--url with the admin token" --url "$URL" --token "$ADMIN_TOKEN" devices --json
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TMPD/rc.out")" = 5 ] ||
    fail "--url devices: $(cat "$TMPD/rc.out")"
expect_rc 0 "--url --token-file" --url "$URL/" --token-file "$TMPD/admin.token" stats
MPSCTL_TOKEN=$READ_TOKEN expect_rc 0 "--url, read token from MPSCTL_TOKEN" --url "$URL" health
expect_rc 4 "--url with a wrong token" --url "$URL" --token wrong-token devices
grep -q '(HTTP 401)' "$TMPD/rc.err" || fail "wrong token: $(cat "$TMPD/rc.err")"
expect_rc 4 "--url without a token" --url "$URL" devices
expect_rc 4 "disconnect with a read token" --url "$URL" --token "$READ_TOKEN" disconnect dev0.example.com
grep -q '(HTTP 403)' "$TMPD/rc.err" || fail "read token: $(cat "$TMPD/rc.err")"
count_is 5 || fail "the read token disconnected something"

# 9. Exit statuses without a daemon to ask, and usage errors.
expect_rc 3 "a missing socket" --socket "$TMPD/no-such-socket" devices
grep -q '^mpsctl: cannot reach mpsd' "$TMPD/rc.err" || fail "missing socket: $(cat "$TMPD/rc.err")"
expect_rc 2 "an unknown command" --socket "$SOCK" frobnicate
expect_rc 2 "show without a name" --socket "$SOCK" show
expect_rc 2 "--port 0" --socket "$SOCK" devices --port 0
expect_rc 2 "stats --prefix" --socket "$SOCK" stats --prefix dev
expect_rc 0 "--help" --help
expect_rc 0 "help devices" help devices
require_alive

stop_mpsd
expect_rc 3 "the daemon stopped" --socket "$SOCK" devices
log "exit statuses: 1 not connected, 2 usage, 3 unreachable, 4 refused credentials"
