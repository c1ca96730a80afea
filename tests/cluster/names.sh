#!/bin/bash
# names.sh - [core] NameConflict across the nodes of a cluster: a device account cannot take
# another account's device name or UUID by dialling another node.
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server, nodes A and B with cluster_redis, cluster_link, socks5 and http_proxy
# (NameConflict at its default, replace-same-device), node C with NameConflict = latest.
# Devices are amtsim instances with their own accounts (amtuser, otheruser); amtsim answers
# HTTP on 16992 with "amtsim FQDN UUID PATH", so a console sees which device it reached.
#   1  victim v0 (amtuser) on A; otheruser's device asks B for v0's FQDN: refused and
#      disconnected by B from its directory; Redis still routes v0 to A; consoles through A
#      and B reach the victim.
#   2  otheruser's device asks B for the victim's UUID (another FQDN): refused likewise;
#      the UUID still reaches the victim through both nodes.
#   3  the same refusals decided by the registration script, for a holder B's directory has
#      not heard of yet (an entry written to Redis without its event), by FQDN and by UUID.
#   4  the victim's own account and UUID on B (the device moved): registered, superseding A.
#   5  NameConflict = latest (node C): the newest registration takes the name, as the
#      reference MPS did.
# Counters: mpsd_cluster_names_refused_total on B. Every node stops cleanly.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is missing"; exit 77; }
for m in cluster_link socks5 http_proxy admin_http; do
    [ -e "$MODDIR/$m.so" ] || { echo "SKIP: $m was not built"; exit 77; }
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$((20 * SLOW))
printf 'otheruser:0th3r!\n' >>"$USERS"
start_redis
KEY="$TMPD/cluster.key"
openssl rand -hex 32 >"$KEY"
chmod 600 "$KEY"

declare -A NHP NADM
start_node() { # start_node NAME [NAMECONFLICT]
    local n=$1
    CORE_EXTRA="${2:+NameConflict = $2}" CONF_EXTRA="[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
LeaseSeconds = 6
HeartbeatSeconds = 1
RetryMax = 1s

[module cluster_link]
Listen = 127.0.0.1:0
SharedKeyFile = $KEY

[module socks5]
Listen = 127.0.0.1:0

[module http_proxy]
Listen = 127.0.0.1:0

[module admin_http]
Listen = 127.0.0.1:0" CONTROL_SOCKET="$TMPD/control.$n" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT
    NS5[$n]=$(ready_port socks5)
    NHP[$n]=$(ready_port http_proxy)
    NADM[$n]="http://127.0.0.1:$(ready_port admin_http)"
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}
use_node() { MPSD_PID=${NPID[$1]} MPSD_LOG=${NLOG[$1]} AMT_PORT=${NAMT[$1]}; }
via() { # via NODE http|socks URL: the body a console gets through NODE
    local n=$1 kind=$2 url=$3
    if [ "$kind" = http ]; then
        curl -q -sS --max-time "$T" -x "http://127.0.0.1:${NHP[$n]}" "$url"
    else
        curl -q -sS --max-time "$T" --socks5-hostname "127.0.0.1:${NS5[$n]}" "$url"
    fi
}
# reaches NODE HOST WANT_FQDN WANT_UUID: through both of NODE's proxies HOST answers as that
# device
reaches() {
    local n=$1 host=$2 want="amtsim $3 $4 /who" got kind
    for kind in http socks; do
        got=$(via "$n" $kind "http://$host:16992/who") || fail "node $n ($kind) -> $host: curl failed"
        [ "$got" = "$want" ] || fail "node $n ($kind) -> $host: '$got', expected '$want'"
    done
}
# attacker NAME NODE FQDN UUID [AMTSIM-ARGS]: one amtsim device of otheruser dialling NODE
attacker() {
    local name=$1 node=$2 fq=$3 uuid=$4
    shift 4
    bg "att.$name" "$AMTSIM" --port "${NAMT[$node]}" --fqdn "$fq" --count 1 --uuid-base "$uuid" \
        --user otheruser --pass '0th3r!' --keepalive 5 "$@"
    eval "ATT_$name=\$BG_PID"
}
node_uuid() { rcli HGET "mpsd:dev:$1" node; }
node_uuid_is() { [ "$(node_uuid "$1")" = "$2" ]; }
refused_on() { # refused_on NODE COUNT: NODE has logged COUNT refusals (at least)
    [ "$(node_log_count "$1" 'cluster: device .* refused.*NameConflict = replace-same-device')" -ge "$2" ]
}

start_node A
start_node B
UV=11111111-2222-3333-4444-00000000a000 # the victim
UX=11111111-2222-3333-4444-00000000f000 # otheruser's own UUID
devices v A 'v%d.example.com' 1 $UV
wait_for $((10 * SLOW)) "v0 in redis" owner_is v0.example.com nodeA
wait_node_log B "cluster: v0.example.com ($UV) is on node nodeA"
reaches A v0.example.com v0.example.com "$UV"
reaches B v0.example.com v0.example.com "$UV"

# ------------------------------------------------ 1: another account's device, the FQDN
attacker fq B v0.example.com "$UX"
wait_node_log B "cluster: device $UX (v0.example.com) session [0-9]* asked for FQDN v0.example.com, which device $UV (another device) holds on node nodeA session [0-9]*: refused (NameConflict = replace-same-device), disconnecting it"
wait_node_log B "disconnect.*its FQDN is held by another device on node nodeA"
owner_is v0.example.com nodeA || fail "redis routes v0.example.com to $(owner v0.example.com)"
[ -z "$(rcli HGET "mpsd:dev:$UX" node)" ] || fail "the refused device is in redis"
reaches B v0.example.com v0.example.com "$UV"
reaches A v0.example.com v0.example.com "$UV"
kill "$ATT_fq" 2>/dev/null || true
log "1: another account's device asking node B for v0's FQDN: refused, disconnected; consoles reach the victim"

# ------------------------------------------------ 2: another account's device, the UUID
attacker uu B x0.example.com "$UV"
wait_node_log B "cluster: device $UV (x0.example.com) session [0-9]* asked for UUID $UV, which device $UV (another account) holds on node nodeA session [0-9]*: refused"
node_uuid_is "$UV" nodeA || fail "redis has $UV on $(node_uuid "$UV")"
[ "$(rcli HGET "mpsd:dev:$UV" fqdn)" = v0.example.com ] || fail "the victim's entry changed"
reaches B "$UV" v0.example.com "$UV"
reaches A "$UV" v0.example.com "$UV"
kill "$ATT_uu" 2>/dev/null || true
log "2: another account's device asking node B for the victim's UUID: refused; the UUID reaches the victim"

# ------------------------------------------------ 3: decided by the registration script
# A holder B has not heard of: node Z's entry written without its event, Z's lease alive.
UZ=11111111-2222-3333-4444-00000000d000
rcli SET mpsd:node:nodeZ "$(date +%s) -" PX $((120000 * SLOW)) >/dev/null
rcli HSET "mpsd:dev:$UZ" uuid "$UZ" fqdn z0.example.com ports 16992 node nodeZ session 7 \
    connected_ms "$(date +%s%3N)" peer 127.0.0.1:1 stamp x acct 0123456789abcdef0123456789abcdef \
    >/dev/null
rcli SET mpsd:fqdn:z0.example.com "$UZ" >/dev/null
rcli SADD mpsd:nodedevs:nodeZ "$UZ" >/dev/null
before=$(node_log_count B "refused by the registration in redis")
attacker zf B z0.example.com "$UX"
wait_node_log B "cluster: device $UX (z0.example.com) session [0-9]* asked for FQDN z0.example.com, which device $UZ (another device) holds on node nodeZ session 7: refused"
kill "$ATT_zf" 2>/dev/null || true
attacker zu B y0.example.com "$UZ"
wait_node_log B "cluster: device $UZ (y0.example.com) session [0-9]* asked for UUID $UZ, which device $UZ (another account) holds on node nodeZ session 7: refused"
kill "$ATT_zu" 2>/dev/null || true
[ "$(node_log_count B "refused by the registration in redis")" -gt "$before" ] ||
    fail "no refusal came from the registration script"
node_uuid_is "$UZ" nodeZ || fail "node Z's entry was taken"
[ "$(rcli GET mpsd:fqdn:z0.example.com)" = "$UZ" ] || fail "node Z's FQDN was taken"
rcli DEL mpsd:node:nodeZ "mpsd:dev:$UZ" mpsd:fqdn:z0.example.com mpsd:nodedevs:nodeZ >/dev/null
log "3: refusals decided in redis for a holder node B's directory did not know (FQDN and UUID)"

# ------------------------------------------------ counters
metric=$(curl -q -sS --max-time "$T" "${NADM[B]}/metrics" | sed -n 's/^mpsd_cluster_names_refused_total \([0-9]*\)$/\1/p')
[ -n "$metric" ] && [ "$metric" -ge 4 ] || fail "mpsd_cluster_names_refused_total on B: '$metric', expected 4 or more"

# ------------------------------------------------ 4: the same device moving is not a conflict
devices m B 'v%d.example.com' 1 $UV
wait_for $((10 * SLOW)) "v0 moved to B" owner_is v0.example.com nodeB
wait_node_log B "cluster: registered v0.example.com ($UV) on node nodeB, superseding node nodeA"
reaches B v0.example.com v0.example.com "$UV"
log "4: the victim's own account on node B supersedes its entry on A (a device that moved)"

# ------------------------------------------------ 5: NameConflict = latest
start_node C latest
wait_node_log C "cluster: v0.example.com ($UV) is on node nodeB"
attacker lt C v0.example.com "$UX"
wait_for $((10 * SLOW)) "latest: C's device takes v0" owner_is v0.example.com nodeC
[ "$(node_log_count C 'cluster: device .* refused')" = 0 ] || fail "node C (latest) refused a name"
reaches C v0.example.com v0.example.com "$UX"
kill "$ATT_lt" 2>/dev/null || true
log "5: NameConflict = latest: the newest registration takes the name (the reference behaviour)"

for n in A B C; do
    use_node $n
    stop_mpsd
done
