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
#   6  (before 5's device) two machines sharing a UUID (one account) on nodes A and B with
#      their own FQDNs: both in the directory, each reached by name through every node, the
#      newest by the UUID through node C (entries are UUID and FQDN together); with a third on
#      node A, a cluster-wide DELETE of the first ends that machine's session only.
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

declare -A NADM
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
node_uuid() { entry "$1" "$2" node; } # node_uuid UUID FQDN
node_uuid_is() { [ "$(node_uuid "$1" "$2")" = "$3" ]; }
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
[ -z "$(rcli KEYS "mpsd:dev:$UX:*")" ] || fail "the refused device is in redis"
reaches B v0.example.com v0.example.com "$UV"
reaches A v0.example.com v0.example.com "$UV"
kill "$ATT_fq" 2>/dev/null || true
log "1: another account's device asking node B for v0's FQDN: refused, disconnected; consoles reach the victim"

# ------------------------------------------------ 2: another account's device, the UUID
attacker uu B x0.example.com "$UV"
wait_node_log B "cluster: device $UV (x0.example.com) session [0-9]* asked for UUID $UV, which device $UV (another account) holds on node nodeA session [0-9]*: refused"
node_uuid_is "$UV" v0.example.com nodeA || fail "redis has $UV on $(node_uuid "$UV" v0.example.com)"
[ -z "$(rcli KEYS "mpsd:dev:$UV:x0.example.com")" ] || fail "the refused device is in redis"
reaches B "$UV" v0.example.com "$UV"
reaches A "$UV" v0.example.com "$UV"
kill "$ATT_uu" 2>/dev/null || true
log "2: another account's device asking node B for the victim's UUID: refused; the UUID reaches the victim"

# ------------------------------------------------ 3: decided by the registration script
# A holder B has not heard of: node Z's entry written without its event, Z's lease alive.
UZ=11111111-2222-3333-4444-00000000d000
rcli SET mpsd:node:nodeZ "$(date +%s) -" PX $((120000 * SLOW)) >/dev/null
rcli HSET "mpsd:dev:$UZ:z0.example.com" uuid "$UZ" fqdn z0.example.com ports 16992 node nodeZ session 7 \
    connected_ms "$(date +%s%3N)" peer 127.0.0.1:1 stamp x acct 0123456789abcdef0123456789abcdef \
    >/dev/null
rcli SET mpsd:fqdn:z0.example.com "$UZ" >/dev/null
rcli SADD mpsd:nodedevs:nodeZ "$UZ:z0.example.com" >/dev/null
rcli HSET "mpsd:uuid:$UZ" z0.example.com nodeZ >/dev/null
before=$(node_log_count B "refused by the registration in redis")
attacker zf B z0.example.com "$UX"
wait_node_log B "cluster: device $UX (z0.example.com) session [0-9]* asked for FQDN z0.example.com, which device $UZ (another device) holds on node nodeZ session 7: refused"
kill "$ATT_zf" 2>/dev/null || true
attacker zu B y0.example.com "$UZ"
wait_node_log B "cluster: device $UZ (y0.example.com) session [0-9]* asked for UUID $UZ, which device $UZ (another account) holds on node nodeZ session 7: refused"
kill "$ATT_zu" 2>/dev/null || true
[ "$(node_log_count B "refused by the registration in redis")" -gt "$before" ] ||
    fail "no refusal came from the registration script"
node_uuid_is "$UZ" z0.example.com nodeZ || fail "node Z's entry was taken"
[ "$(rcli GET mpsd:fqdn:z0.example.com)" = "$UZ" ] || fail "node Z's FQDN was taken"
rcli DEL mpsd:node:nodeZ "mpsd:dev:$UZ:z0.example.com" mpsd:fqdn:z0.example.com mpsd:nodedevs:nodeZ \
    "mpsd:uuid:$UZ" >/dev/null
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

# ------------------------------------------------ 6: machines that share a UUID
# Some OEMs ship one UUID in many machines, provisioned under one account: an entry is a
# device by UUID and FQDN, so both are in the directory and reached by name through every node.
UP=11111111-2222-3333-4444-00000000e000
devices p A 'p%d.example.com' 1 $UP
devices q B 'q%d.example.com' 1 $UP
wait_for $((10 * SLOW)) "p0 and q0 in redis" sh -c \
    "[ \"\$(redis-cli -s '$SOCK' HGET mpsd:dev:$UP:p0.example.com node)\" = nodeA ] &&
     [ \"\$(redis-cli -s '$SOCK' HGET mpsd:dev:$UP:q0.example.com node)\" = nodeB ]"
wait_node_log C "cluster: p0.example.com ($UP) is on node nodeA"
wait_node_log C "cluster: q0.example.com ($UP) is on node nodeB"
for n in A B C; do
    reaches $n p0.example.com p0.example.com "$UP"
    reaches $n q0.example.com q0.example.com "$UP"
done
# by the shared UUID, through a node holding neither: the newest, as one node routes it
reaches C "$UP" q0.example.com "$UP"
# a third on node A (newest there): a cluster-wide DELETE of p0 through node C ends p0's
# session on A, not the one that routes the UUID on A
devices r A 'r%d.example.com' 1 $UP
wait_node_log C "cluster: r0.example.com ($UP) is on node nodeA"
s_p=$(entry "$UP" p0.example.com session)
st=$(curl -q -s -o "$TMPD/b" -w '%{http_code}' --max-time "$T" -X DELETE "${NADM[C]}/api/v1/devices/p0.example.com")
[ "$st" = 202 ] || fail "DELETE p0 through C: $st $(head -c 300 "$TMPD/b")"
wait_node_log A "cluster: node nodeC asked to disconnect $UP session $s_p: disconnected"
wait_for $((10 * SLOW)) "p0's entry gone" sh -c "[ -z \"\$(redis-cli -s '$SOCK' HGET mpsd:dev:$UP:p0.example.com node)\" ]"
[ "$(entry "$UP" r0.example.com node)" = nodeA ] || fail "r0 went with p0"
reaches C r0.example.com r0.example.com "$UP"
kill "$SIM_p" "$SIM_q" "$SIM_r" 2>/dev/null || true
wait_for $((10 * SLOW)) "p0 and q0 unregistered" sh -c \
    "[ -z \"\$(redis-cli -s '$SOCK' HKEYS mpsd:uuid:$UP)\" ]"
log "6: machines sharing a UUID under one account on two nodes: each reached by name through every node; a DELETE ends the one it names"

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
