#!/bin/bash
# admin.sh - issue 15 step 2: admin_http and DisconnectDevice cluster-wide (cluster_redis).
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server on a UNIX socket of the test's own, nodes A and B with cluster_redis and
# admin_http, and node C with admin_http alone; amtsim devices on A and B. Proves, with the
# real daemon and the real Redis, through node A's REST API: scope=cluster lists every device
# with the node holding it (paging across the whole list); GET of a device on B answers its
# directory entry with node B; DELETE of a device on B answers 202 naming node B, and B ends
# exactly that session (APF DISCONNECT reason 11 seen by the device, a new session in Redis
# after it reconnects); a stale disconnect-request (the old session) is ignored and logged;
# /api/v1/cluster on both nodes; /metrics with the mpsd_cluster_* families passes promtool; a
# node without cluster_redis answers 404 for /api/v1/cluster and for B's devices; admin_soap's
# DisconnectDevice on A ends a device held by B (when SOAP was built).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is missing"; exit 77; }
PROMTOOL=$(command -v promtool || true)

T=$((30 * SLOW))
start_redis

declare -A URL
# admin_soap's DisconnectDevice through the gSOAP client, when SOAP was built
SOAP_CLIENT="$top_builddir/tests/soap/admin_client"
[ -x "$SOAP_CLIENT" ] && [ -e "$MODDIR/admin_soap.so" ] || SOAP_CLIENT=""
start_node() { # start_node NAME CLUSTER(0|1)
    local n=$1 extra="[module admin_http]
Listen = 127.0.0.1:0"
    [ "$n" = A ] && [ -n "$SOAP_CLIENT" ] && extra="$extra

[module admin_soap]
Listen = 127.0.0.1:0"
    [ "$2" = 1 ] && extra="$extra

[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
LeaseSeconds = 6
HeartbeatSeconds = 1
RetryMax = 1s"
    CONTROL_SOCKET="$TMPD/control.$n" CONF_EXTRA="$extra" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT
    URL[$n]="http://127.0.0.1:$(ready_port admin_http)"
    [ "$n" = A ] && [ -n "$SOAP_CLIENT" ] && SOAP_URL="http://127.0.0.1:$(ready_port admin_soap)/"
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}

# code NODE [CURL-ARGS...] PATH: the HTTP status (body in $TMPD/b)
code() {
    local n=$1 path=${*: -1}
    shift
    curl -s -o "$TMPD/b" -w '%{http_code}' --max-time "$T" "${@:1:$#-1}" "${URL[$n]}$path" || true
}
expect_code() { # expect_code WANT WHAT NODE [CURL-ARGS...] PATH
    local want=$1 what=$2 got
    shift 2
    got=$(code "$@")
    [ "$got" = "$want" ] || fail "$what: status $got, expected $want: $(head -c 300 "$TMPD/b")"
}
jget() { # jget EXPR: a Python expression over the JSON in $TMPD/b (as j)
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
        "$TMPD/b" "$1"
}
expect_json() { # expect_json EXPR WANT WHAT
    local got
    got=$(jget "$1") || fail "$3: not JSON: $(head -c 300 "$TMPD/b")"
    [ "$got" = "$2" ] || fail "$3: $1 = '$got', expected '$2': $(head -c 400 "$TMPD/b")"
}
session_of() { entry "$1" "$2" session; } # session_of UUID FQDN
session_not() { local s; s=$(session_of "$1" "$2"); [ -n "$s" ] && [ "$s" != "$3" ]; }

start_node A 1
start_node B 1
start_node C 0
for n in A B; do wait_node_log $n "cluster: connected to redis unix:$SOCK as node node$n"; done

UA=11111111-2222-3333-4444-00000000a000
UB=11111111-2222-3333-4444-00000000b000
UD=11111111-2222-3333-4444-00000000d000
UE=11111111-2222-3333-4444-00000000e000
devices a A 'a%d.example.com' 2 $UA
devices b B 'b%d.example.com' 2 $UB
devices d B 'd%d.example.com' 1 $UD --reconnect
# e0 exits 0 once it got APF DISCONNECT reason 11, and only then
devices e B 'e%d.example.com' 1 $UE --expect-disconnect 11 --duration $((60 * SLOW))
SIM_E=$SIM_e
wait_for $((10 * SLOW)) "6 devices in redis" dev_keys_are 6
wait_node_log A "directory: 4 remote devices on 1 other node"
wait_node_log B "directory: 2 remote devices on 1 other node"

# ------------------------------------------------ the list, cluster-wide
expect_code 200 "local list" A /api/v1/devices
expect_json "j['total']" 2 "local list through A"
expect_json "'node' in j['devices'][0]" False "the local list is unchanged"
expect_code 200 "cluster list" A "/api/v1/devices?scope=cluster"
expect_json "j['total']" 6 "cluster list through A"
expect_json "sorted((d['fqdn'], d['node']) for d in j['devices'])" \
    "[('a0.example.com', 'nodeA'), ('a1.example.com', 'nodeA'), ('b0.example.com', 'nodeB'), ('b1.example.com', 'nodeB'), ('d0.example.com', 'nodeB'), ('e0.example.com', 'nodeB')]" \
    "cluster list: every device with its node"
expect_json "[d['local'] for d in j['devices']][:2]" "[True, True]" "local devices first"
expect_code 200 "cluster list, page 2" A "/api/v1/devices?scope=cluster&limit=3&offset=2"
expect_json "(j['total'], len(j['devices']), j['devices'][0]['node'], j['devices'][1]['local'])" \
    "(6, 3, 'nodeB', False)" "paging across local and remote devices"
expect_code 200 "cluster list, prefix" A "/api/v1/devices?scope=cluster&prefix=b"
expect_json "(j['total'], sorted(d['fqdn'] for d in j['devices']))" \
    "(2, ['b0.example.com', 'b1.example.com'])" "the prefix filter across the cluster"
expect_code 400 "bad scope" A "/api/v1/devices?scope=galaxy"
expect_code 200 "cluster scope on a node without the module" C "/api/v1/devices?scope=cluster"
expect_json "j['total']" 0 "node C lists its own (none)"
log "scope=cluster: 6 devices through A, each with its node; paging and filters across them"

# ------------------------------------------------ one remote device
expect_code 200 "GET b1 through A" A /api/v1/devices/b1.example.com
expect_json "(j['node'], j['local'], j['uuid'])" \
    "('nodeB', False, '11111111-2222-3333-4444-00000000b001')" "b1's directory entry"
expect_code 200 "GET b1 by UUID through A" A /api/v1/devices/11111111-2222-3333-4444-00000000b001
expect_json "j['fqdn']" b1.example.com "b1 by UUID"
expect_code 404 "GET b1 through C (no cluster module)" C /api/v1/devices/b1.example.com
expect_code 404 "GET unknown" A /api/v1/devices/nowhere.example.com
log "GET of a device on B through A: its entry with node nodeB"

# ------------------------------------------------ DELETE of a device on B through A
s_e=$(session_of $UE e0.example.com)
expect_code 202 "DELETE e0 through A" A -X DELETE /api/v1/devices/e0.example.com
expect_json "(j['node'], j['requested'], j['session'])" "('nodeB', True, $s_e)" "the 202 body"
bg_wait "$SIM_E" $((20 * SLOW)) || fail "e0 did not get APF DISCONNECT 11: $(cat "$TMPD/sim.e.out" "$TMPD/sim.e.err")"
wait_node_log B "cluster: node nodeA asked to disconnect $UE session $s_e: disconnected"
wait_node_log A "cluster: asked node nodeB to disconnect $UE session $s_e"
log "DELETE e0 through A: 202 naming nodeB; e0 got APF DISCONNECT 11 from B"

s_d=$(session_of $UD d0.example.com)
# through mpsctl on A's control socket when it was built (202: exit 0, "asked node nodeB")
MPSCTL="$top_builddir/contrib/mpsctl/mpsctl"
if [ -x "$MPSCTL" ]; then
    timeout "$T" "$MPSCTL" --socket "$TMPD/control.A" disconnect d0.example.com \
        >"$TMPD/ctl.out" 2>"$TMPD/ctl.err" || fail "mpsctl disconnect d0: exit $?: $(cat "$TMPD/ctl.err")"
    grep -q "^asked node nodeB to disconnect d0.example.com (.*session $s_d)" "$TMPD/ctl.out" ||
        fail "mpsctl disconnect d0: $(cat "$TMPD/ctl.out")"
    log "mpsctl disconnect d0 through A: $(cat "$TMPD/ctl.out")"
    # devices --cluster: every node's devices, NODE first; without it only A's own.
    timeout "$T" "$MPSCTL" --socket "$TMPD/control.A" devices --cluster >"$TMPD/ctl.out" \
        2>"$TMPD/ctl.err" || fail "mpsctl devices --cluster: exit $?: $(cat "$TMPD/ctl.err")"
    head -1 "$TMPD/ctl.out" | grep -q "^NODE  *FQDN  *UUID" ||
        fail "mpsctl devices --cluster: no NODE column: $(head -1 "$TMPD/ctl.out")"
    grep -q "^nodeB  *b0.example.com " "$TMPD/ctl.out" ||
        fail "mpsctl devices --cluster: b0 not listed on nodeB: $(cat "$TMPD/ctl.out")"
    grep -q "^nodeA  *a0.example.com " "$TMPD/ctl.out" ||
        fail "mpsctl devices --cluster: a0 not listed on nodeA: $(cat "$TMPD/ctl.out")"
    timeout "$T" "$MPSCTL" --socket "$TMPD/control.A" devices >"$TMPD/ctl.out" 2>&1 ||
        fail "mpsctl devices: $(cat "$TMPD/ctl.out")"
    ! grep -q "b0.example.com" "$TMPD/ctl.out" && head -1 "$TMPD/ctl.out" | grep -q "^FQDN" ||
        fail "mpsctl devices without --cluster: $(cat "$TMPD/ctl.out")"
    log "mpsctl devices --cluster through A lists both nodes' devices with a NODE column"
else
    expect_code 202 "DELETE d0 through A" A -X DELETE /api/v1/devices/d0.example.com
fi
wait_node_log B "cluster: node nodeA asked to disconnect $UD session $s_d: disconnected"
wait_for $((10 * SLOW)) "d0 registered again in a new session" session_not $UD d0.example.com "$s_d"
s_d2=$(session_of $UD d0.example.com)
for i in 0 1; do
    expect_code 200 "b$i still on B" B /api/v1/devices/b$i.example.com
done
log "DELETE d0: B ended session $s_d; d0 reconnected as session $s_d2; b0, b1 untouched"

# ------------------------------------------------ a stale request never ends a newer session
rcli PUBLISH mpsd:events "disconnect-request nodeB $s_d $UD tester" >/dev/null
wait_node_log B "cluster: node tester asked to disconnect $UD session $s_d: ignored, session $s_d2 holds it now"
rcli PUBLISH mpsd:events "disconnect-request nodeA 99999 $UD tester" >/dev/null
wait_node_log A "cluster: node tester asked to disconnect $UD session 99999: ignored, not connected here"
[ "$(session_of $UD d0.example.com)" = "$s_d2" ] || fail "the stale request changed d0's session"
sim_ready d 1 || fail "d0 is not forwarding after the stale request"
expect_code 200 "d0 still on B" B /api/v1/devices/d0.example.com
expect_json "j['session']" "$s_d2" "d0's session on B"
log "stale disconnect-request (session $s_d) ignored by B; d0 keeps session $s_d2"

# ------------------------------------------------ /api/v1/cluster and /metrics
expect_code 200 "cluster status A" A /api/v1/cluster
expect_json "(j['node'], j['redis_up'], j['remote_devices'], j['remote_nodes'], j['devices_by_node'])" \
    "('nodeA', True, 3, 1, {'nodeA': 2, 'nodeB': 3})" "A's cluster status (e0 is gone)"
expect_json "(j['counters']['disconnect_requests_sent'], j['counters']['disconnect_requests_received'])" \
    "(2, 1)" "A's disconnect counters"
expect_code 200 "cluster status B" B /api/v1/cluster
expect_json "(j['node'], j['remote_devices'], j['counters']['disconnect_requests_received'], j['counters']['disconnect_requests_acted'], j['counters']['disconnect_requests_ignored'])" \
    "('nodeB', 2, 3, 2, 1)" "B's cluster status and disconnect counters"
expect_code 404 "cluster status C" C /api/v1/cluster
expect_code 404 "DELETE b0 through C" C -X DELETE /api/v1/devices/b0.example.com
for n in A B C; do
    expect_code 200 "metrics $n" $n /metrics
    cp "$TMPD/b" "$TMPD/metrics.$n"
    if [ -n "$PROMTOOL" ]; then
        "$PROMTOOL" check metrics <"$TMPD/metrics.$n" >"$TMPD/promtool.out" 2>&1 ||
            fail "promtool check metrics ($n): $(head -5 "$TMPD/promtool.out")"
    fi
done
metric() { awk -v n="$1" '$1 == n { print $2; found=1 } END { if (!found) print "missing" }' "$2"; }
for m in mpsd_cluster_redis_up:1 mpsd_cluster_remote_devices:2 mpsd_cluster_remote_nodes:1 \
    'mpsd_cluster_disconnect_requests_total{what="acted"}:2' \
    'mpsd_cluster_disconnect_requests_total{what="ignored"}:1'; do
    got=$(metric "${m%:*}" "$TMPD/metrics.B")
    [ "$got" = "${m##*:}" ] || fail "node B: ${m%:*} = $got, expected ${m##*:}"
done
for m in mpsd_cluster_registrations_total mpsd_cluster_events_in_total mpsd_cluster_queue_depth \
    mpsd_cluster_queue_drops_total mpsd_cluster_superseded_total mpsd_cluster_events_garbled_total; do
    [ "$(metric $m "$TMPD/metrics.A")" != missing ] || fail "node A: no $m"
done
! grep -q '^mpsd_cluster_' "$TMPD/metrics.C" || fail "node C exports cluster metrics"
log "/api/v1/cluster on A and B, 404 on C; /metrics with mpsd_cluster_* $([ -n "$PROMTOOL" ] && echo "accepted by promtool" || echo "(promtool not installed)")"

# ------------------------------------------------ admin_soap's DisconnectDevice, cluster-wide
if [ -n "$SOAP_CLIENT" ]; then
    UF=11111111-2222-3333-4444-00000000f000
    devices f B 'f%d.example.com' 1 $UF --expect-disconnect 11 --duration $((60 * SLOW))
    wait_node_log A "directory: 4 remote devices on 1 other node"
    out=$(timeout "$T" "$SOAP_CLIENT" "$SOAP_URL" disconnect f0.example.com)
    [ "$out" = disconnected=true ] || fail "SOAP DisconnectDevice f0 through A: $out"
    bg_wait "$SIM_f" $((20 * SLOW)) || fail "f0 did not get APF DISCONNECT 11: $(cat "$TMPD/sim.f.out" "$TMPD/sim.f.err")"
    wait_node_log A "DisconnectDevice device f0.example.com: held by another node of the cluster, asked to disconnect it"
    wait_node_log B "cluster: node nodeA asked to disconnect $UF session [0-9]*: disconnected"
    out=$(timeout "$T" "$SOAP_CLIENT" "$SOAP_URL" disconnect nowhere.example.com)
    [ "$out" = disconnected=false ] || fail "SOAP DisconnectDevice of an unknown device: $out"
    log "admin_soap DisconnectDevice through A: f0 on B got APF DISCONNECT 11; an unknown device: false"
fi

for n in A B C; do
    MPSD_PID=${NPID[$n]} MPSD_LOG=${NLOG[$n]}
    stop_mpsd
done
log "PASS"
