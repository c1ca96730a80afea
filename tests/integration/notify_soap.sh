#!/bin/bash
# notify_soap.sh - notify_soap against real subscribers: the gSOAP one built from the project's
# WSDL (tests/soap/notify_subscriber) and an independent Python one (notify_subscriber.py):
# every field of CONNECTED/DISCONNECTED, KeepConnection=false drops the tunnel, bad subscribers
# do not slow 1000 devices, 8 subscribers at most, basic auth, the bounded queue, SIGHUP, and
# run-time subscriptions kept in StateFile over a NotificationList that is never written.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

SUB="$top_builddir/tests/soap/notify_subscriber"
PYSUB="$top_srcdir/tests/integration/notify_subscriber.py"
[ -x "$SUB" ] || fail "$SUB is missing (configure with gSOAP; make check builds it)"
[ -e "$MODDIR/notify_soap.so" ] || fail "notify_soap.so is missing from $MODDIR"

MPS_ADDR=mps.notify.example
UUID_BASE=4a3b2c1d-1111-2222-3333-000000000000
LIST="$TMPD/NotificationList"
STATE="$TMPD/notify_soap.state"

# start_sub NAME VAR MODE [ARGS]: the gSOAP subscriber, logging to $TMPD/NAME.log, on a port
# it picks (port 0) and reports: VAR is set to it.
start_sub() {
    local name=$1 var=$2
    shift 2
    : >"$TMPD/$name.log"
    bg "$name" "$SUB" 0 "$@" --log "$TMPD/$name.log"
    wait_port "$var" "$TMPD/$name.out" "ready " "subscriber $name"
}
# start_pysub NAME VAR MODE [ARGS]: the Python subscriber, the same way.
start_pysub() {
    local name=$1 var=$2
    shift 2
    : >"$TMPD/$name.log"
    bg "$name" python3 "$PYSUB" 0 "$@" --log "$TMPD/$name.log"
    wait_port "$var" "$TMPD/$name.out" "ready " "subscriber $name"
}
url() { echo "http://127.0.0.1:$1/notify"; }

# notify_conf [OPTION LINES...]: write_conf with a [module notify_soap] section on $LIST and
# $STATE, then $MORE_SECTIONS if set.
notify_conf() {
    local extra
    extra=$(printf '[module notify_soap]\nNotificationList = %s\nStateFile = %s\nMpsAddress = %s\n' \
        "$LIST" "$STATE" "$MPS_ADDR")
    extra+=$(printf '\nMpsHttpPort = 18080\nMpsSocksPort = 18090')
    local l
    for l in "$@"; do
        extra+=$'\n'"$l"
    done
    CONF_EXTRA="$extra${MORE_SECTIONS:-}" write_conf
}

count() { grep -c -e "$2" "$TMPD/$1.log" 2>/dev/null || true; }
has_count() { [ "$(count "$1" "$2")" -ge "$3" ]; }
wait_count() { # wait_count NAME PATTERN N [TIMEOUT]
    wait_for "${4:-$((10 * SLOW))}" "$3 lines /$2/ in $1.log" has_count "$1" "$2" "$3"
}
log_count() { grep -c -e "$1" "$MPSD_LOG" || true; }
sim_ready() { [ "$(cat "$TMPD/$1.ready" 2>/dev/null)" = "$2" ]; }

# A subscriber that refuses every connection: a port held, nothing listening on it.
reserve_port P_REFUSE

# ---------------------------------------------------------------- 1. every field, both ways
start_sub gsoap P_GSOAP keep
start_pysub py P_PY keep
printf '# subscribers\n\n%s\n%s\n' "$(url "$P_PY")" "$(url "$P_GSOAP")" >"$LIST"
# WantReply = first: the Python subscriber (first in the file) is asked, the other one not.
notify_conf "WantReply = first"
start_mpsd
assert_log "notifying 2 subscribers from $LIST"
bg sim3 "$AMTSIM" --port "$AMT_PORT" --count 3 --fqdn 'nd%d.example.com' \
    --uuid-base "$UUID_BASE" --ports 16994,623,16993,16992 --quiet --ready-file "$TMPD/sim3.ready"
sim3=$BG_PID
wait_for $((20 * SLOW)) "3 devices forwarding" sim_ready sim3 3
wait_count gsoap "^state=0" 3
wait_count py "^state=0" 3
kill -TERM "$sim3"
wait_count gsoap "^state=1" 3
wait_count py "^state=1" 3
for i in 0 1 2; do
    uuid="${UUID_BASE%?}$i"
    for s in gsoap py; do
        want=0
        [ "$s" = py ] && want=1
        for state in 0 1; do
            [ "$state" = 1 ] && want=0
            line="state=$state fqdn=nd$i.example.com ports=16992,16993 uuid=$uuid"
            line+=" mps=$MPS_ADDR http=18080 socks=18090 wantreply=$want auth=-"
            grep -qxF "$line" "$TMPD/$s.log" ||
                fail "$s did not get '$line'; it got: $(cat "$TMPD/$s.log")"
        done
        # CONNECTED before DISCONNECTED for the device.
        first=$(grep -n "fqdn=nd$i\.example" "$TMPD/$s.log" | head -n 1)
        case $first in *state=0*) ;; *) fail "$s: nd$i's first notification: $first" ;; esac
    done
done
[ "$(count gsoap .)" = 6 ] || fail "gsoap got $(count gsoap .) notifications, not 6"
[ "$(count py .)" = 6 ] || fail "py got $(count py .) notifications, not 6"
log "both subscribers got CONNECTED then DISCONNECTED for 3 devices, every field as expected"
stop_mpsd

# ------------------------------------------------- 2. KeepConnection=false drops the tunnel
start_sub drop P_DROP drop
printf '%s\n%s\n' "$(url "$P_DROP")" "$(url "$P_GSOAP")" >"$LIST"
notify_conf "WantReply = all"
start_mpsd
out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn drop.example.com \
    --expect-disconnect 11 --duration $((20 * SLOW)) --quiet 2>&1) ||
    fail "the device was not dropped with DISCONNECT 11: $out"
log "WantReply=all, drop subscriber: device got $out"
wait_log "dropping drop.example.com .*subscriber $(url "$P_DROP") answered KeepConnection=false"
assert_log "subscriber $(url "$P_DROP") answered KeepConnection=false"
grep -q "^state=0 fqdn=drop.example.com .* wantreply=1" "$TMPD/drop.log" ||
    fail "the drop subscriber was not asked: $(cat "$TMPD/drop.log")"
stop_mpsd

# WantReply = none: the same subscriber's false is not heeded.
notify_conf "WantReply = none"
start_mpsd
bg simkeep "$AMTSIM" --port "$AMT_PORT" --fqdn kept.example.com --quiet \
    --ready-file "$TMPD/simkeep.ready"
simkeep=$BG_PID
wait_for $((20 * SLOW)) "kept.example.com forwarding" sim_ready simkeep 1
wait_count drop "^state=0 fqdn=kept.example.com .* wantreply=0" 1
answered="CONNECTED kept.example.com (WantReply false): KeepConnection false"
wait_log "notified $(url "$P_DROP"): $answered"
# The answer is in; a drop would follow within milliseconds. Give it a generous second.
sleep 1
sim_ready simkeep 1 || fail "WantReply=none: the device was dropped anyway"
[ "$(log_count "dropping kept.example.com")" = 0 ] || fail "WantReply=none: mpsd dropped"
log "WantReply=none: KeepConnection=false is not heeded"
stop_mpsd
kill "$simkeep" 2>/dev/null || true

# DropWhen = all: one false beside one true keeps the device.
notify_conf "WantReply = all" "DropWhen = all"
start_mpsd
bg simall "$AMTSIM" --port "$AMT_PORT" --fqdn all.example.com --quiet \
    --ready-file "$TMPD/simall.ready"
simall=$BG_PID
wait_for $((20 * SLOW)) "all.example.com forwarding" sim_ready simall 1
wait_log "notified $(url "$P_DROP"): CONNECTED all.example.com (WantReply true): KeepConnection false"
wait_log "notified $(url "$P_GSOAP"): CONNECTED all.example.com (WantReply true): KeepConnection true"
sleep 1 # as above: a drop would follow the last answer within milliseconds
sim_ready simall 1 || fail "DropWhen=all: dropped although one subscriber answered true"
[ "$(log_count "dropping all.example.com")" = 0 ] || fail "DropWhen=all: mpsd dropped"
log "DropWhen=all: one KeepConnection=false among two answers keeps the device"
stop_mpsd
kill "$simall" 2>/dev/null || true

# ReplyFailure = drop: an asked subscriber that cannot be reached counts as false.
printf '%s\n%s\n' "$(url "$P_GSOAP")" "$(url "$P_REFUSE")" >"$LIST"
notify_conf "WantReply = all" "ReplyFailure = drop" "Retries = 0" "Timeout = 2s"
start_mpsd
out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn fail.example.com \
    --expect-disconnect 11 --duration $((20 * SLOW)) --quiet 2>&1) ||
    fail "ReplyFailure=drop: the device was not dropped: $out"
wait_log "dropping fail.example.com .*$(url "$P_REFUSE") (no answer)"
log "ReplyFailure=drop: an unreachable asked subscriber drops the device ($out)"
# ... and with the default (keep) the same unreachable subscriber drops nothing.
stop_mpsd
notify_conf "WantReply = all" "Retries = 0" "Timeout = 2s"
start_mpsd
bg simfk "$AMTSIM" --port "$AMT_PORT" --fqdn failkeep.example.com --quiet \
    --ready-file "$TMPD/simfk.ready"
simfk=$BG_PID
wait_for $((20 * SLOW)) "failkeep.example.com forwarding" sim_ready simfk 1
wait_log "notified $(url "$P_GSOAP"): CONNECTED failkeep.example.com"
wait_log "subscriber $(url "$P_REFUSE") unreachable"
sleep 1
sim_ready simfk 1 || fail "ReplyFailure=keep: the device was dropped"
[ "$(log_count "dropping failkeep.example.com")" = 0 ] || fail "ReplyFailure=keep: mpsd dropped"
log "ReplyFailure=keep: an unreachable asked subscriber drops nothing"
stop_mpsd
kill "$simfk" 2>/dev/null || true

# -------------------------------------- 3. hanging and refusing subscribers vs 1000 devices
# time_1000 NAME: 1000 devices NAME0.example... connect and stay (amtsim's PID in SIM_PID);
# MS = milliseconds until all forward.
time_1000() {
    local start end
    start=$(date +%s%N)
    bg "$1" "$AMTSIM" --port "$AMT_PORT" --count 1000 --fqdn "$1%d.example" --quiet \
        --ready-file "$TMPD/$1.ready"
    SIM_PID=$BG_PID
    wait_for $((90 * SLOW)) "1000 devices forwarding" sim_ready "$1" 1000
    end=$(date +%s%N)
    MS=$(((end - start) / 1000000))
}
FAST="Timeout = 1s"$'\n'"Retries = 1"$'\n'"RetryDelay = 200ms"
printf '%s\n' "$(url "$P_GSOAP")" >"$LIST"
notify_conf "$FAST"
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
time_1000 base
ms_good=$MS
wait_count gsoap "^state=0 fqdn=base" 1000 $((60 * SLOW))
kill "$SIM_PID"
wait_count gsoap "^state=1 fqdn=base" 1000 $((60 * SLOW))
stop_mpsd
start_sub hang P_HANG hang
printf '%s\n%s\n%s\n' "$(url "$P_HANG")" "$(url "$P_REFUSE")" "$(url "$P_GSOAP")" >"$LIST"
notify_conf "$FAST"
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
time_1000 bad
ms_bad=$MS
log "1000 devices forwarding: ${ms_good} ms with a good subscriber, ${ms_bad} ms with a" \
    "hanging and a refusing one beside it"
[ "$ms_bad" -le $((2 * ms_good + 10000)) ] ||
    fail "bad subscribers slowed 1000 connects: ${ms_bad} ms > 2 x ${ms_good} ms + 10 s"
wait_count gsoap "^state=0 fqdn=bad" 1000 $((60 * SLOW))
log "the good subscriber got 1000 CONNECTED beside the bad ones"
wait_log "subscriber $(url "$P_HANG") unreachable" $((20 * SLOW))
wait_log "subscriber $(url "$P_REFUSE") unreachable"
for p in "$P_HANG" "$P_REFUSE"; do
    n=$(log_count "subscriber $(url "$p") unreachable")
    [ "$n" = 1 ] || fail "$(url "$p"): $n unreachable lines, not 1"
done
log "one unreachable line per bad subscriber"
kill "$SIM_PID"
wait_count gsoap "^state=1 fqdn=bad" 1000 $((60 * SLOW))
stop_mpsd

# ---------------------------------------------------- 4. nine entries in the file, 8 used
{
    echo "# nine subscribers and some noise"
    for i in 1 2 3 4 5 6 7; do echo "$(url "$P_REFUSE")/unused$i"; done
    echo "ftp://127.0.0.1/not-a-subscriber"
    echo "$(url "$P_REFUSE")/unused1"
    echo "  $(url "$P_GSOAP")  "
    echo "$(url "$P_PY")"
} >"$LIST"
notify_conf "$FAST" "ConnectDelay = 0"
out=$("$MPSD" -t -c "$CONF" 2>&1) || fail "mpsd -t: $out"
grep -q "NotificationList $LIST: 8 subscribers" <<<"$out" || fail "mpsd -t: $out"
log "mpsd -t: NotificationList $LIST: 8 subscribers"
: >"$TMPD/gsoap.log"
: >"$TMPD/py.log"
start_mpsd
assert_log "notifying 8 subscribers"
assert_log "$LIST:12: $(url "$P_PY") ignored: at most 8 subscribers"
assert_log "$LIST:9: not an http:// or https:// URL: ignored"
assert_log "$LIST:10: $(url "$P_REFUSE")/unused1 listed twice: ignored"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn nine.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device nine.example did not forward"
wait_count gsoap "^state=0 fqdn=nine.example" 1
wait_count gsoap "^state=1 fqdn=nine.example" 1
[ "$(count py .)" = 0 ] || fail "the 9th subscriber got notifications: $(cat "$TMPD/py.log")"
log "the 8th entry is notified, the 9th is not"
stop_mpsd

# -------------------------------------------------------------------- 5. basic auth
start_sub auth P_AUTH keep --basic notifier:s3cret
printf '%s\n%s\n' "$(url "$P_AUTH")" "$(url "$P_PY")" >"$LIST"
AUTH=("NeedNotificationAuthentication = true" "Username = notifier")
notify_conf "$FAST" "${AUTH[@]}" "Password = s3cret"
start_mpsd
assert_log "subscriber $(url "$P_AUTH"): plain http://, the notification password crosses"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn auth.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device auth.example did not forward"
wait_count auth "^state=0 fqdn=auth.example .* auth=notifier$" 1
wait_count py "^state=0 fqdn=auth.example .* auth=notifier$" 1
log "basic auth: both subscribers saw auth=notifier"
stop_mpsd
notify_conf "$FAST" "${AUTH[@]}" "Password = wrong"
start_mpsd
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn auth2.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device auth2.example did not forward"
wait_count auth "^refused auth=notifier" 1
wait_log "subscriber $(url "$P_AUTH") unreachable: HTTP status 401"
[ "$(count auth "fqdn=auth2")" = 0 ] || fail "the wrong password was accepted"
log "wrong password: refused by the subscriber, mpsd logs the 401"
stop_mpsd

# ------------------------------------------------------------------ 6. the bounded queue
# The hanging subscriber of part 3 is still running.
printf '%s\n' "$(url "$P_HANG")" >"$LIST"
# ConnectDelay 0: each CONNECTED is queued inside its event, before the device forwards.
notify_conf "Timeout = 2s" "Retries = 0" "QueueLimit = 10" "ConnectDelay = 0"
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
bg sim50 "$AMTSIM" --port "$AMT_PORT" --count 50 --fqdn 'q%d.example' --quiet \
    --ready-file "$TMPD/sim50.ready"
sim50=$BG_PID
wait_for $((30 * SLOW)) "50 devices forwarding" sim_ready sim50 50
wait_log "subscriber $(url "$P_HANG"): queue full (QueueLimit 10): dropping the oldest events"
n=$(log_count "queue full")
[ "$n" = 1 ] || fail "$n queue-full lines, not 1"
log "QueueLimit 10, hanging subscriber, 50 devices: one dropping line"
kill "$sim50" 2>/dev/null || true
stop_mpsd
# At exit the count of what the episode dropped is logged once.
assert_log "subscriber $(url "$P_HANG"): [0-9]* events dropped (queue full)"
[ "$(log_count "events dropped")" = 1 ] || fail "more than one dropped-count line"

# --------------------------------------------------------------------- 7. SIGHUP
printf '# reload test\n%s\n' "$(url "$P_GSOAP")" >"$LIST"
notify_conf "$FAST" "ConnectDelay = 0"
: >"$TMPD/py.log"
start_mpsd
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn before.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device before.example did not forward"
wait_count gsoap "^state=1 fqdn=before.example" 1
printf '# reload test\n%s\n%s\n' "$(url "$P_GSOAP")" "$(url "$P_PY")" >"$LIST"
kill -HUP "$MPSD_PID"
wait_log "2 subscribers (1 added, 0 removed)"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn after.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device after.example did not forward"
wait_count py "^state=0 fqdn=after.example" 1
wait_count gsoap "^state=0 fqdn=after.example" 1
[ "$(count py "before.example")" = 0 ] || fail "py got events from before it was added"
log "SIGHUP: the added subscriber receives"
# A list that cannot be read keeps the running one.
mv "$LIST" "$LIST.gone"
kill -HUP "$MPSD_PID"
wait_log "reload: keeping the 2 subscribers"
require_alive
stop_mpsd

# ------------------------------------------------------------------ 8. https subscribers
# Verified against CAFile (certificate for localhost); the same subscriber is unreachable
# when CAFile names another CA.
# EC keys: quick to make on a loaded machine (lib.sh's make_certs makes a dozen RSA ones).
CERTS="$TMPD/certs"
mkdir -p "$CERTS"
o="$TMPD/openssl.log"
for ca in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$CERTS/$ca.key" -out "$CERTS/$ca.pem" -subj "/CN=notify test $ca" \
        -addext basicConstraints=critical,CA:true >"$o" 2>&1 || fail "$ca: $(cat "$o")"
done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$CERTS/server.key" -out "$CERTS/server.csr" -subj /CN=localhost >"$o" 2>&1 ||
    fail "server CSR: $(cat "$o")"
printf 'basicConstraints=CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n' \
    >"$CERTS/server.ext"
openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
    -CAcreateserial -days 2 -extfile "$CERTS/server.ext" -out "$CERTS/server.pem" >"$o" 2>&1 ||
    fail "server certificate: $(cat "$o")"
start_pysub tls P_TLS keep --tls "$CERTS/server.pem" "$CERTS/server.key"
TLS_URL="https://localhost:$P_TLS/notify"
printf '%s\n' "$TLS_URL" >"$LIST"
notify_conf "$FAST" "ConnectDelay = 0" "CAFile = $CERTS/ca.pem"
start_mpsd
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn tls.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device tls.example did not forward"
wait_count tls "^state=1 fqdn=tls.example" 1
stop_mpsd
log "https:// subscriber verified against CAFile: notified"
notify_conf "$FAST" "ConnectDelay = 0" "CAFile = $CERTS/other-ca.pem"
start_mpsd
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn tls2.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device tls2.example did not forward"
wait_log "subscriber $TLS_URL unreachable: TLS"
[ "$(count tls "tls2.example")" = 0 ] || fail "notified over TLS that should not verify"
stop_mpsd
log "https:// subscriber with a certificate from another CA: unreachable (TLS)"

# ------------------------------------------ 9. run-time subscriptions (through admin_soap)
# notify_soap's interface is reached by admin_soap's Subscribe/Unsubscribe; curl is the console.
if [ ! -e "$MODDIR/admin_soap.so" ]; then
    log "admin_soap.so not built: run-time subscriptions not tested"
    log "PASS"
    exit 0
fi
admin() { # admin Subscribe|Unsubscribe URL: the SOAP answer
    curl -s -m $((20 * SLOW)) -H 'Content-Type: text/xml; charset=utf-8' \
        -H "SOAPAction: \"urn:mpsd:MpsAdmin:1/$1\"" "http://127.0.0.1:$P_ADMIN/" --data \
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">
<s:Body><m:${1}Request xmlns:m=\"urn:mpsd:MpsAdmin:1\"><m:Url>$2</m:Url></m:${1}Request>
</s:Body></s:Envelope>" || true
}
expect_admin() { # expect_admin PATTERN OP URL
    local out
    out=$(admin "$2" "$3")
    grep -q "$1" <<<"$out" || fail "$2 $3: no /$1/ in: $out"
    log "$2 $3: /$1/"
}
printf '# the admin'"'"'s file\n%s\n' "$(url "$P_GSOAP")" >"$LIST"
cp "$LIST" "$TMPD/list.orig"
rm -f "$STATE"
MORE_SECTIONS=$'\n\n[module admin_soap]\nListen = 127.0.0.1:0' \
    notify_conf "$FAST" "ConnectDelay = 0"
: >"$TMPD/py.log"
start_mpsd
P_ADMIN=$(ready_port admin_soap)
list_unchanged() {
    cmp -s "$LIST" "$TMPD/list.orig" || fail "NotificationList was written: $(cat "$LIST")"
}
state_entries() { grep -v '^#' "$STATE" | tr '\n' ' '; }
expect_admin "<[a-z]*:Result>true<" Subscribe "$(url "$P_PY")"
list_unchanged
[ "$(state_entries)" = "$(url "$P_PY") " ] || fail "StateFile after Subscribe: $(cat "$STATE")"
log "Subscribe: kept in StateFile, NotificationList untouched"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn runtime.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device runtime.example did not forward"
wait_count py "^state=1 fqdn=runtime.example" 1
log "the subscriber added at run time is notified"
expect_admin "already subscribed" Subscribe "$(url "$P_PY")"
expect_admin "not an http:// or https:// URL" Subscribe "ftp://127.0.0.1/x"
# Unsubscribing an entry of NotificationList is recorded as its removal.
expect_admin "<[a-z]*:Result>true<" Unsubscribe "$(url "$P_GSOAP")"
list_unchanged
[ "$(state_entries)" = "$(url "$P_PY") -$(url "$P_GSOAP") " ] ||
    fail "StateFile after Unsubscribe: $(cat "$STATE")"
expect_admin "is not subscribed" Unsubscribe "$(url "$P_GSOAP")"
# StateFile cannot be written (its .tmp is a directory): the change is refused and not made.
mkdir "$STATE.tmp"
expect_admin "Is a directory" Subscribe "$(url "$P_GSOAP")"
rmdir "$STATE.tmp"
[ "$(state_entries)" = "$(url "$P_PY") -$(url "$P_GSOAP") " ] ||
    fail "StateFile after a failed write: $(cat "$STATE")"
for i in 1 2 3 4 5 6 7; do
    expect_admin "<[a-z]*:Result>true<" Subscribe "$(url "$P_REFUSE")/n$i"
done
expect_admin "at most 8 subscribers" Subscribe "$(url "$P_REFUSE")/n8"
: >"$TMPD/gsoap.log"
timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn runtime2.example --exit-when-ready \
    --quiet >/dev/null 2>&1 || fail "device runtime2.example did not forward"
wait_count py "^state=1 fqdn=runtime2.example" 1
[ "$(count gsoap .)" = 0 ] || fail "the unsubscribed subscriber is still notified"
log "the unsubscribed subscriber is no longer notified"
kill -HUP "$MPSD_PID"
wait_log "8 subscribers (0 added, 0 removed)"
stop_mpsd
list_unchanged
# A restart reads NotificationList, then StateFile: the same 8, the removed entry still gone.
# admin_soap listens on a new port (port 0 again): nothing needs the old one.
start_mpsd
P_ADMIN=$(ready_port admin_soap)
assert_log "notifying 8 subscribers from $LIST; run-time changes in $STATE (8 added, 1 removed)"
expect_admin "<[a-z]*:Result>true<" Unsubscribe "$(url "$P_REFUSE")/n7"
# Subscribing a removed NotificationList entry again only drops its removal.
expect_admin "<[a-z]*:Result>true<" Subscribe "$(url "$P_GSOAP")"
grep -q "$(url "$P_GSOAP")" "$STATE" && fail "StateFile repeats a NotificationList entry: $(cat "$STATE")"
stop_mpsd
list_unchanged
log "after a restart: NotificationList plus StateFile; NotificationList never written"

# ------------------------------------- 10. the reference's defaults (seed 003, section 7.1)
# No MpsAddress, MpsHttpPort, MpsSocksPort or WantReply. The notification names the MPS as
# consoles reach it: the http_proxy listener's address ("MpsAddress  MPS IP address") and
# port, the socks5 listener's port, as bound (port 0 here). Every subscriber is asked
# ("Subscribers respond with a parameter indicating whether the connection should be
# maintained or dropped"), and one KeepConnection=false drops the device ("if false, the MPS
# drops the connection").
if [ -e "$MODDIR/http_proxy.so" ] && [ -e "$MODDIR/socks5.so" ]; then
    : >"$TMPD/py.log"
    : >"$TMPD/drop.log"
    printf '%s\n' "$(url "$P_PY")" >"$LIST"
    CONF_EXTRA=$(printf '[module notify_soap]\nNotificationList = %s\nStateFile =\n%s\n' \
        "$LIST" "ConnectDelay = 0")$'\n\n[module http_proxy]\nListen = 127.0.0.1:0\n\n[module socks5]\nListen = 127.0.0.1:0' \
        write_conf
    start_mpsd
    HP=$(ready_port http_proxy)
    S5=$(ready_port socks5)
    assert_log "MpsAddress the http_proxy listener's address, HTTP the http_proxy listener's, SOCKS the socks5 listener's; WantReply all"
    bg simref "$AMTSIM" --port "$AMT_PORT" --fqdn ref.example.com --quiet \
        --ready-file "$TMPD/simref.ready"
    simref=$BG_PID
    wait_for $((20 * SLOW)) "ref.example.com forwarding" sim_ready simref 1
    wait_count py "^state=0 fqdn=ref.example.com " 1
    line=$(grep "^state=0 fqdn=ref.example.com " "$TMPD/py.log")
    case $line in
    *" mps=127.0.0.1 http=$HP socks=$S5 wantreply=1 "*) ;;
    *) fail "defaults: expected mps=127.0.0.1 http=$HP socks=$S5 wantreply=1: $line" ;;
    esac
    log "defaults: MpsAddress 127.0.0.1, MpsHttpPort $HP, MpsSocksPort $S5 (the bound ports), WantReply true"
    # A keeping subscriber keeps the device.
    wait_log "notified $(url "$P_PY"): CONNECTED ref.example.com (WantReply true): KeepConnection true"
    sim_ready simref 1 || fail "defaults: a KeepConnection=true answer dropped the device"
    kill "$simref" 2>/dev/null || true
    # A subscriber answering false drops the next device, with no WantReply configured.
    printf '%s\n%s\n' "$(url "$P_PY")" "$(url "$P_DROP")" >"$LIST"
    kill -HUP "$MPSD_PID"
    wait_log "\[notify_soap\] 2 subscribers"
    out=$(timeout $((30 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --fqdn refdrop.example.com \
        --expect-disconnect 11 --duration $((20 * SLOW)) --quiet 2>&1) ||
        fail "defaults: the device was not dropped with DISCONNECT 11: $out"
    wait_log "dropping refdrop.example.com .*subscriber $(url "$P_DROP") answered KeepConnection=false"
    grep -q "^state=0 fqdn=refdrop.example.com .* wantreply=1" "$TMPD/drop.log" ||
        fail "defaults: the drop subscriber was not asked: $(cat "$TMPD/drop.log")"
    log "defaults: KeepConnection=false from a subscriber drops the device ($out)"
    stop_mpsd
else
    log "10. skipped: http_proxy or socks5 not built"
fi
log "PASS"
