#!/bin/bash
# names.sh - who may hold a device name (issue 17, items 1 and 2): NameConflict, the names an
# auth plugin binds a credential to, RequireNameInCertificate, and the route falling back to
# the remaining holder.
# SPDX-License-Identifier: Apache-2.0
#
# Devices are apfclient.py claim sessions: they log in with a chosen account and UUID, ask
# tcpip-forward for a name on 16992 (HTTP, answering "apfclient NAME PATH TAG") and 16994
# (echo), and note every channel mpsd opens to them. Consoles: curl through the http_proxy
# (its answer's TAG says which device got the request) and test_console echo. Runs:
#   1  NameConflict default (replace-same-device): another account with another UUID, and
#      another account with the holder's UUID, get REQUEST_FAILURE and a rate-limited WARNING
#      naming both; consoles still reach the holder; the holder's own reconnect replaces it.
#   2  keep: even the holder's reconnect is refused while the holder lives.
#   3  latest: the newer registration takes the name; when it leaves, the name routes to the
#      first holder again (item 2: it was "502 device ... is not connected").
#   4  names bound to a credential by the auth plugin (test_auth names, and auth_file's third
#      field where this auth_file has it).
#   5  TLS VerifyClient = require: only the certificate's names (RequireNameInCertificate).
# A bystander device keeps an echo and an HTTP exchange going through every run.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed"
    exit 77
}
[ -e "$MODDIR/http_proxy.so" ] || fail "http_proxy.so is missing from $top_builddir/modules"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$((20 * SLOW))
TRACE_LEVELS="INFO|ERROR|WARNING" # the bystander's DEBUG lines would only bury the rest
printf 'otheruser:0th3r!\n' >>"$USERS"
U1=11111111222233334444000000000001 # hex as apfclient takes it; text below
U2=11111111222233334444000000000002
utext() { # utext HEX: the UUID's text (the first three groups read the same both ways here)
    echo "${1:0:8}-${1:8:4}-${1:12:4}-${1:16:4}-${1:20:12}"
}
HP=""

# start NAMECONFLICT [MORE-CONF]: mpsd with an http_proxy and the given policy, the bystander.
start() {
    CORE_EXTRA="${1:+NameConflict = $1}" CONF_EXTRA="[module http_proxy]
Listen = 127.0.0.1:0
${2:-}" write_conf
    start_mpsd
    HP=$(ready_port http_proxy)
    bystander_start "$HP"
}

# claim ID FQDN UUID USER PASS [MORE apfclient ARGS]: device ID logs in and asks for FQDN on
# 16992 and 16994, in the background; CLAIMED is what it got ("16992:ok 16994:ok", or refused).
declare -A DEV_PID DEV_UUID
claim() {
    local id=$1 fqdn=$2 uuid=$3 user=$4 pass=$5
    shift 5
    DEV_UUID[$id]=$(utext "$uuid")
    rm -f "$TMPD/$id.ready" "$TMPD/$id.leave"
    : >"$TMPD/$id.events"
    bg "$id" python3 "$APFCLIENT" --port "$AMT_PORT" claim --fqdn "$fqdn" --uuid "$uuid" \
        --user "$user" --password "$pass" --ports 16992,16994 --tag "$id" \
        --events "$TMPD/$id.events" --ready-file "$TMPD/$id.ready" \
        --trigger-file "$TMPD/$id.leave" --seconds $((120 * SLOW)) --timeout "$T" "$@"
    DEV_PID[$id]=$BG_PID
    wait_for $((10 * SLOW)) "device $id to log in and register $fqdn" _claimed "$id"
    CLAIMED=$(cat "$TMPD/$id.ready")
    log "device $id ($user, $(utext "$uuid")) asked for $fqdn: $CLAIMED"
}
_claimed() {
    [ -s "$TMPD/$1.ready" ] && return 0
    kill -0 "${DEV_PID[$1]}" 2>/dev/null ||
        fail "device $1 ended: $(cat "$TMPD/$1.out" "$TMPD/$1.err")"
    return 1
}
# leave ID RESULT: the device says goodbye (a keepalive, then closes); its result must be
# RESULT, and mpsd must have seen it go (its names are routed elsewhere from then on).
leave() {
    local gone="Intel remote client has disconnected.* \[uuid ${DEV_UUID[$1]}, " before
    before=$(grep -c "$gone" "$MPSD_LOG" || true)
    touch "$TMPD/$1.leave"
    bg_wait "${DEV_PID[$1]}" $((15 * SLOW)) || fail "device $1: $(cat "$TMPD/$1.err")"
    [ "$(cat "$TMPD/$1.out")" = "$2" ] || fail "device $1 ended with '$(cat "$TMPD/$1.out")'," \
        "expected '$2'"
    wait_for $((10 * SLOW)) "mpsd to see device $1 go" _gone_more "$gone" "$before"
    log "device $1 ended: $2"
}
_gone_more() { [ "$(grep -c "$1" "$MPSD_LOG" || true)" -gt "$2" ]; }
# who NAME: the TAG of the device that answered a GET for NAME through the http_proxy, or
# "STATUS BODY" when the proxy answered itself.
who() {
    local out code
    out=$(curl -sS --max-time "$T" -x "http://127.0.0.1:$HP" -o "$TMPD/who.body" \
        -w '%{http_code}' "http://$1:16992/who") || fail "curl through the proxy for $1: $out"
    code=$out
    if [ "$code" = 200 ]; then
        awk '{ print $NF }' "$TMPD/who.body"
    else
        echo "$code $(head -c 200 "$TMPD/who.body")"
    fi
}
expect_who() { # expect_who NAME ID WHY
    local got
    got=$(who "$1")
    [ "$got" = "$2" ] || fail "$3: a GET for $1 reached '$got', expected device $2"
    log "$3: a GET for $1 reached device $2"
}
# expect_echo NAME ID: an echo through test_console to NAME:16994 works and reached device ID.
expect_echo() {
    local before out
    before=$(grep -c '^open 16994$' "$TMPD/$2.events" || true)
    out=$(apf console-echo --device "$1" --dport 16994 --timeout "$T")
    [ "$out" = ok ] || fail "echo through test_console to $1: $out"
    [ "$(grep -c '^open 16994$' "$TMPD/$2.events" || true)" -gt "$before" ] ||
        fail "the echo to $1 did not go to device $2"
    log "echo through test_console to $1 reached device $2"
}
expect_claimed() { # expect_claimed WANT WHY
    [ "$CLAIMED" = "$1" ] || fail "$2: tcpip-forward answers '$CLAIMED', expected '$1'"
}

# ------------------------------------------------------------- 1. replace-same-device
start ""
claim A dev1.example.com "$U1" amtuser 'P@ssw0rd'
expect_claimed "16992:ok 16994:ok" "the first device"
expect_who dev1.example.com A "the holder"

# Another account, another UUID: refused, and the WARNING names both devices and accounts.
claim B dev1.example.com "$U2" otheruser '0th3r!'
expect_claimed "16992:refused 16994:refused" "another account and UUID"
wait_log "\[LM WARNING\] Intel remote client $(utext "$U2") (account otheruser) asked to register dev1\.example\.com, which device $(utext "$U1") (account amtuser, 127\.0\.0\.1:[0-9]*) holds: refused (NameConflict = replace-same-device)"
log "logged: $(grep -m 1 -o "Intel remote client $(utext "$U2") (account otheruser) asked.*" "$MPSD_LOG")"
expect_who dev1.example.com A "after another account's attempt"
expect_echo dev1.example.com A
[ ! -s "$TMPD/B.events" ] || fail "device B got channels: $(cat "$TMPD/B.events")"

# Another account with the holder's UUID (UUIDs are no secret): refused too, by name and UUID.
claim C dev1.example.com "$U1" otheruser '0th3r!'
expect_claimed "16992:refused 16994:refused" "another account with the holder's UUID"
wait_log "Intel remote client $(utext "$U1") (account otheruser) asked to register dev1\.example\.com, which device $(utext "$U1") (account amtuser, 127\.0\.0\.1:[0-9]*) holds: refused"
expect_who dev1.example.com A "after the UUID impostor"
expect_who "$(utext "$U1")" A "by UUID, with an impostor sharing it"
expect_echo dev1.example.com A
[ ! -s "$TMPD/C.events" ] || fail "device C got channels: $(cat "$TMPD/C.events")"
mpsd_stats
[ "$(stats_value "names refused")" = 4 ] || fail "names refused: $STATS"
log "statistics: names refused 4"

# The refusals are logged rate-limited: 100 more attempts from B's session write a few lines.
before=$(grep -c "asked to register dev1\.example\.com" "$MPSD_LOG")
out=$(apf claim --fqdn dev1.example.com --uuid "$U2" --user otheruser --password '0th3r!' \
    --ports "$(seq -s, 2001 2100)" --ready-file "$TMPD/many.ready" --seconds 0 --timeout "$T")
[ "$(tr ' ' '\n' <"$TMPD/many.ready" | grep -c ':refused$')" = 100 ] ||
    fail "100 attempts on a held name: $(head -c 300 "$TMPD/many.ready")"
lines=$(($(grep -c "asked to register dev1\.example\.com" "$MPSD_LOG") - before))
[ "$lines" -le 20 ] || fail "100 refused registrations wrote $lines WARNING lines"
log "100 refused registrations wrote $lines WARNING lines"
mpsd_stats
[ "$(stats_value "names refused")" = 104 ] || fail "names refused: $STATS"

# The same device reconnecting (same UUID, same account) replaces its stale tunnel.
claim A2 dev1.example.com "$U1" amtuser 'P@ssw0rd'
expect_claimed "16992:ok 16994:ok" "the holder's reconnect"
bg_wait "${DEV_PID[A]}" $((10 * SLOW)) || fail "the replaced tunnel A is still up"
[ "$(cat "$TMPD/A.out")" = "disconnect 11" ] || fail "device A ended with $(cat "$TMPD/A.out")"
wait_log "dev1\.example\.com, 127\.0\.0\.1:[0-9]*) replaced by a new connection from 127\.0\.0\.1:"
log "the old tunnel got DISCONNECT 11, replaced by the reconnect"
expect_who dev1.example.com A2 "after the reconnect"
expect_echo dev1.example.com A2
leave B ok
leave C ok
leave A2 ok
bystander_check
require_alive
stop_mpsd
# What the limiter held back is summarised at the latest at exit.
assert_log "similar lines suppressed in the last [0-9]* s, such as: Intel remote client $(utext "$U2") (account otheruser) asked to register dev1\.example\.com"

# -------------------------------------------------------------------------- 2. keep
start keep
claim A dev1.example.com "$U1" amtuser 'P@ssw0rd'
expect_claimed "16992:ok 16994:ok" "keep: the first device"
claim A2 dev1.example.com "$U1" amtuser 'P@ssw0rd'
expect_claimed "16992:refused 16994:refused" "keep: the same device again while it lives"
wait_log "asked to register dev1\.example\.com, which device $(utext "$U1") (account amtuser, 127\.0\.0\.1:[0-9]*) holds: refused (NameConflict = keep)"
expect_who dev1.example.com A "keep"
expect_echo dev1.example.com A
# Once the holder is gone, the name is free.
leave A ok
leave A2 ok
claim A3 dev1.example.com "$U1" amtuser 'P@ssw0rd'
expect_claimed "16992:ok 16994:ok" "keep: after the holder left"
expect_who dev1.example.com A3 "keep, after the holder left"
leave A3 ok
bystander_check
stop_mpsd

# ------------------------------------------------------------------------ 3. latest
start latest
claim A dev1.example.com "$U1" amtuser 'P@ssw0rd'
claim B dev1.example.com "$U2" otheruser '0th3r!'
expect_claimed "16992:ok 16994:ok" "latest: another device"
wait_log "Intel remote client $(utext "$U2") ([^,]*, 127\.0\.0\.1:[0-9]*) registered dev1\.example\.com, which device $(utext "$U1") (account amtuser, 127\.0\.0\.1:[0-9]*) had registered: routed here now (NameConflict = latest)"
expect_who dev1.example.com B "latest: the newer registration"
expect_echo dev1.example.com B
# Item 2: the newer holder leaves, the first one (still up and forwarding) gets the name back.
leave B ok
expect_who dev1.example.com A "latest, after the newer holder left"
expect_echo dev1.example.com A
leave A ok
out=$(who dev1.example.com)
[[ $out = "502 "* ]] || fail "no holder left: $out"
log "no holder left: $out"
bystander_check
stop_mpsd

# ----------------------------------------------------- 4. names bound to a credential
# auth_file first (unknown users go on), then test_auth, whose user "scoped" is bound to
# dev7.example.com, anything below fleet.example.com and one UUID.
U7=11111111222233334444000000000007
U8=11111111222233334444000000000008
write_conf
python3 - "$CONF" "$USERS" "$(utext "$U7")" <<'PY'
import sys
conf, users, u7 = sys.argv[1:]
text = open(conf).read().replace(
    "PluginParameters = file %s\n" % users,
    "PluginParameters = file %s unknown=next\nPlugin = test_auth\n"
    "PluginParameters = user scoped pass S-c0ped names dev7.example.com,*.fleet.example.com,%s\n"
    % (users, u7), 1)
open(conf, "w").write(text)
PY
printf '\n[module http_proxy]\nListen = 127.0.0.1:0\n' >>"$CONF"
start_mpsd
HP=$(ready_port http_proxy)
bystander_start "$HP"
claim S1 dev7.example.com "$U7" scoped S-c0ped
expect_claimed "16992:ok 16994:ok" "a name the credential lists"
claim S2 a.fleet.example.com "$U7" scoped S-c0ped
expect_claimed "16992:ok 16994:ok" "a name under a domain the credential lists"
claim S3 dev1.example.com "$U7" scoped S-c0ped
expect_claimed "16992:refused 16994:refused" "a name the credential does not list"
wait_log "Intel remote client $(utext "$U7") (account scoped) asked to register dev1\.example\.com, which its credential does not list (dev7\.example\.com,\*\.fleet\.example\.com,$(utext "$U7")): refused"
expect_who dev7.example.com S1 "the credential's own name"
out=$(who dev1.example.com)
[[ $out = "502 "* ]] || fail "a refused name is routed: $out"
# A UUID the credential does not list: the login itself is refused.
out=$(apf handshake --fqdn dev7.example.com --uuid "$U8" --user scoped --password S-c0ped \
    --timeout "$T")
[ "$out" = "disconnect 15" ] || fail "a credential bound to other UUIDs: $out"
wait_log "authentication FAILED for user 'scoped': the credential is bound to other device UUIDs"
log "a device with another UUID cannot use the bound credential: $out"
leave S1 ok
leave S2 ok
leave S3 ok
bystander_check

# auth_file's optional third field (user:password:names with PluginParameters names=on),
# where this build's auth_file has it.
if "$MPSD" --list-options "$MODDIR/auth_file.so" 2>&1 | grep -q 'names='; then
    stop_mpsd
    printf 'named:N@med:dev9.example.com\n' >>"$USERS"
    write_conf
    sed -i "s|^PluginParameters = file $USERS\$|& names=on|" "$CONF"
    printf '\n[module http_proxy]\nListen = 127.0.0.1:0\n' >>"$CONF"
    start_mpsd
    HP=$(ready_port http_proxy)
    bystander_start "$HP"
    claim N1 dev9.example.com "$U1" named 'N@med'
    expect_claimed "16992:ok 16994:ok" "auth_file: the name of the third field"
    claim N2 dev1.example.com "$U2" named 'N@med'
    expect_claimed "16992:refused 16994:refused" "auth_file: a name outside the third field"
    wait_log "(account named) asked to register dev1\.example\.com, which its credential does not list (dev9\.example\.com): refused"
    expect_who dev9.example.com N1 "auth_file: the listed name"
    leave N1 ok
    leave N2 ok
    bystander_check
else
    log "NOTE: this auth_file has no third field (no names=on in its PluginParameters):" \
        "auth_file's names not tested, test_auth's were"
fi
stop_mpsd

# ---------------------------------------------------- 5. RequireNameInCertificate (TLS)
command -v openssl >/dev/null 2>&1 || {
    log "PASS (without the TLS part: no openssl)"
    exit 0
}
make_certs
CERT=(--tls --tls-cert "$CERTS/devices/dev-cert.example.com.pem"
    --tls-key "$CERTS/devices/dev-cert.example.com.key")
CONF_EXTRA=$(
    tls_section "VerifyClient = require" "CAFile = $CERTS/ca.pem"
    tls_section "VerifyClient = require" "CAFile = $CERTS/ca.pem" "RequireNameInCertificate = no"
    printf '[module http_proxy]\nListen = 127.0.0.1:0\n'
) write_conf
start_mpsd
HP=$(ready_port http_proxy)
TLS_REQ=$(ready_port tls 1)
TLS_FREE=$(ready_port tls 2)
bystander_start "$HP"
assert_log "devices register only names their certificate carries"
U5=11111111222233334444000000000005
claim T1 other.example.com "$U5" amtuser x --port "$TLS_REQ" "${CERT[@]}"
expect_claimed "16992:refused 16994:refused" "a name not in the client certificate"
wait_log "Intel remote client $(utext "$U5") (account /CN=dev-cert\.example\.com) asked to register other\.example\.com, which its certificate does not list (dev-cert\.example\.com[^)]*): refused"
claim T2 dev-cert.example.com "$U5" amtuser x --port "$TLS_REQ" "${CERT[@]}"
expect_claimed "16992:ok 16994:ok" "the certificate's own name"
expect_who dev-cert.example.com T2 "the certificate's name"
# A device with the fleet password cannot take the name the certificate device holds.
claim P1 dev-cert.example.com "$U2" amtuser 'P@ssw0rd'
expect_claimed "16992:refused 16994:refused" "a password device on a certificate device's name"
wait_log "asked to register dev-cert\.example\.com, which device $(utext "$U5") (account /CN=dev-cert\.example\.com, 127\.0\.0\.1:[0-9]*) holds: refused"
expect_who dev-cert.example.com T2 "after the password device's attempt"
expect_echo dev-cert.example.com T2
# RequireNameInCertificate = no: any name.
claim T3 other.example.com "$U5" amtuser x --port "$TLS_FREE" "${CERT[@]}"
expect_claimed "16992:ok 16994:ok" "RequireNameInCertificate = no"
expect_who other.example.com T3 "a name outside the certificate, RequireNameInCertificate = no"
for d in T1 T2 P1 T3; do leave "$d" ok; done
bystander_check
require_alive
stop_mpsd
log "PASS"
