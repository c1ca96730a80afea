#!/bin/bash
# redis_cluster.sh - issue 15: the directory on a Redis Cluster (cluster_redis Cluster = yes).
# SPDX-License-Identifier: Apache-2.0
#
# Six redis-servers in cluster mode (three masters, three replicas, redis-cli --cluster
# create) on ports the test holds. Proves, with the real daemon and the real Redis Cluster:
# `mpsd -t` refuses Cluster with Sentinels, with a UNIX socket and with a Prefix that has no
# hash tag; nodes A and B given a list of cluster nodes whose first one is down find the
# master of the directory's slot through the next one, register their devices (every key in
# the slot of {mpsd}) and learn each other's; that master killed -9: its replica is promoted,
# both nodes follow the slot to it, register everything again, and a device that connects
# afterwards reaches the other node's directory; the old master back as a replica takes the
# slot back (CLUSTER FAILOVER): the nodes' writes get MOVED and they follow it; node B killed
# -9: node A removes its entries with the cleanup script once its lease is gone; node A stops
# with status 0.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

# ------------------------------------------------------------ mpsd -t checks the options
bad_conf "Cluster = yes and Sentinels exclude each other" "Cluster = yes" \
    "Sentinels = 127.0.0.1:26379"
bad_conf "a Redis Cluster is reached over TCP" "Cluster = yes" "Server = unix:$SOCK"
bad_conf "with Cluster = yes it must hold a hash tag" "Cluster = yes" "Server = 127.0.0.1:1" \
    "Prefix = fleet:"
bad_conf "the port must be 1 to 65535" "Cluster = yes" "Server = 127.0.0.1:1 127.0.0.1:99999"
log "mpsd -t: Cluster with Sentinels, a UNIX socket, a Prefix without a hash tag, a bad port refused"

# ------------------------------------------------------------ the Redis Cluster
# Cluster nodes listen on TCP only, and each has a bus port: reserve_port holds both
# (redis-server binds them through SO_REUSEADDR).
declare -A RPORT RBUS RPID
for i in 1 2 3 4 5 6; do
    reserve_port "RPORT[$i]"
    reserve_port "RBUS[$i]"
done
reserve_port DEAD # a node of the list that is down: nothing ever listens there
start_cluster_node() {
    local i=$1
    mkdir -p "$TMPD/r$i"
    redis-server --port "${RPORT[$i]}" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-port "${RBUS[$i]}" --cluster-config-file "$TMPD/r$i/nodes.conf" \
        --cluster-node-timeout 1000 --cluster-replica-validity-factor 0 \
        --repl-diskless-sync-delay 0 --save '' --appendonly no --dir "$TMPD/r$i" \
        >>"$TMPD/redis.$i.log" 2>&1 &
    RPID[$i]=$!
    BG_PIDS+=("${RPID[$i]}")
}
cli() { redis-cli -p "$1" "${@:2}"; }
ping_ok() { [ "$(cli "$1" PING 2>/dev/null)" = PONG ]; }
state_ok() { cli "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'; }
for i in 1 2 3 4 5 6; do start_cluster_node $i; done
for i in 1 2 3 4 5 6; do wait_for $((10 * SLOW)) "redis cluster node $i" ping_ok "${RPORT[$i]}"; done
redis-cli --cluster create $(for i in 1 2 3 4 5 6; do printf '127.0.0.1:%s ' "${RPORT[$i]}"; done) \
    --cluster-replicas 1 --cluster-yes >"$TMPD/cluster-create.log" 2>&1 ||
    fail "redis-cli --cluster create: $(tail -n 5 "$TMPD/cluster-create.log")"
for i in 1 2 3 4 5 6; do wait_for $((20 * SLOW)) "cluster state ok on node $i" state_ok "${RPORT[$i]}"; done
# every replica in sync with its master, so that a master killed later has one to fail over to
synced() { # synced PORT: a master, or a replica whose link to its master is up
    local info
    info=$(cli "$1" INFO replication 2>/dev/null | tr -d '\r')
    grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}
for i in 1 2 3 4 5 6; do wait_for $((20 * SLOW)) "replication on node $i" synced "${RPORT[$i]}"; done
log "a Redis Cluster of three masters and three replicas"
# ccli: redis-cli following the cluster's redirections
ccli() { redis-cli -c -p "${RPORT[2]}" "$@"; }
# dev_in_cluster UUID FQDN NODE: the device's entry names NODE
dev_in_cluster() { [ "$(ccli HGET "{mpsd}:dev:$1:$2" node 2>/dev/null)" = "$3" ]; }

start_node() { # start_node NAME
    local n=$1
    CONF_EXTRA="[module cluster_redis]
Cluster = yes
Server = 127.0.0.1:$DEAD 127.0.0.1:${RPORT[2]} 127.0.0.1:${RPORT[1]}
NodeId = node$n
LeaseSeconds = 4
HeartbeatSeconds = 1
RetryMax = 1s
ConnectTimeout = $((2 * SLOW))s" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}
CONNECTED="connected to redis cluster master 127.0.0.1:[0-9]* (serving the slot of {mpsd}:, named by node 127.0.0.1:[0-9]*) as node"

start_node A
start_node B
for n in A B; do wait_node_log $n "$CONNECTED node$n"; done
# past the node that is down, to one of the two others
grep -q "named by node 127.0.0.1:$DEAD" "${NLOG[A]}" && fail "a node named by the dead one"
MASTER=$(grep -o 'connected to redis cluster master 127.0.0.1:[0-9]*' "${NLOG[A]}" | head -n 1)
MASTER=${MASTER##*:}
slot=$(cli "${RPORT[2]}" CLUSTER KEYSLOT '{mpsd}:node')
[ "$(cli "$MASTER" CLUSTER COUNTKEYSINSLOT "$slot")" -ge 1 ] ||
    fail "the master $MASTER the nodes found does not hold the slot $slot's keys"
UA=11111111-2222-3333-4444-00000000a000
UB=11111111-2222-3333-4444-00000000b000
devices a A 'a%d.example.com' 2 $UA
devices b B 'b%d.example.com' 2 $UB
for d in "$(uuid_of $UA 0) a0 nodeA" "$(uuid_of $UA 1) a1 nodeA" "$(uuid_of $UB 0) b0 nodeB" \
    "$(uuid_of $UB 1) b1 nodeB"; do
    set -- $d
    wait_for $((10 * SLOW)) "$2 in the cluster" dev_in_cluster "$1" "$2.example.com" "$3"
done
[ "$(ccli GET '{mpsd}:fqdn:b1.example.com')" = "$(uuid_of $UB 1)" ] || fail "b1's FQDN key"
wait_node_log A "directory: 2 remote devices on 1 other node"
wait_node_log B "directory: 2 remote devices on 1 other node"
log "nodes A and B found the slot's master ($MASTER) past a dead node, registered and learned each other's devices"

# ------------------------------------------------------------ failover of the slot's master
for i in 1 2 3 4 5 6; do [ "${RPORT[$i]}" = "$MASTER" ] && dead=$i; done
kill -9 "${RPID[$dead]}"
wait "${RPID[$dead]}" 2>/dev/null || true
reconnected() { [ "$(node_log_count "$1" "$CONNECTED")" -ge 2 ]; }
for n in A B; do wait_for $((30 * SLOW)) "node $n on the promoted master" reconnected $n; done
for n in A B; do
    grep "$CONNECTED" "${NLOG[$n]}" | tail -n 1 | grep -q "master 127.0.0.1:$MASTER " &&
        fail "node $n reconnected to the dead master"
done
for d in "$(uuid_of $UA 0) a0 nodeA" "$(uuid_of $UA 1) a1 nodeA" "$(uuid_of $UB 0) b0 nodeB" \
    "$(uuid_of $UB 1) b1 nodeB"; do
    set -- $d
    wait_for $((10 * SLOW)) "$2 in the cluster after the failover" dev_in_cluster "$1" "$2.example.com" "$3"
done
devices c A 'c%d.example.com' 1 11111111-2222-3333-4444-00000000c000
wait_node_log B "cluster: c0.example.com (11111111-2222-3333-4444-00000000c000) is on node nodeA"
log "the slot's master killed -9: both nodes followed the slot to the promoted replica; entries and events work there"

# ------------------------------------------------------------ a manual failover: MOVED
# The killed node comes back as the promoted one's replica, then takes the slot back
# (CLUSTER FAILOVER): the master the nodes use becomes a replica without closing their
# connections, answers their next write with MOVED, and they must follow.
start_cluster_node "$dead"
wait_for $((10 * SLOW)) "node $dead back" ping_ok "${RPORT[$dead]}"
is_replica_synced() { cli "$1" INFO replication 2>/dev/null | tr -d '\r' | grep -q '^master_link_status:up'; }
wait_for $((20 * SLOW)) "node $dead a replica in sync" is_replica_synced "${RPORT[$dead]}"
# A manual failover may time out on a loaded machine (the replica must catch up and win a
# vote within a few node timeouts): it is asked again until the node is the master.
is_master() { [ "$(cli "$1" ROLE 2>/dev/null | head -n 1)" = master ]; }
for attempt in 1 2 3 4 5; do
    [ "$(cli "${RPORT[$dead]}" CLUSTER FAILOVER FORCE)" = OK ] || fail "CLUSTER FAILOVER refused"
    until_master=$((SECONDS + 5 * SLOW))
    until is_master "${RPORT[$dead]}" || [ "$SECONDS" -ge "$until_master" ]; do sleep 0.1; done
    is_master "${RPORT[$dead]}" && break
done
is_master "${RPORT[$dead]}" || fail "node $dead never took its slot back (CLUSTER FAILOVER)"
for n in A B; do
    wait_node_log $n "no longer serves the directory's slot (MOVED\|is a replica now (READONLY" $((20 * SLOW))
    wait_for $((20 * SLOW)) "node $n back on 127.0.0.1:$MASTER" sh -c \
        "grep 'connected to redis cluster master' '${NLOG[$n]}' | tail -n 1 | grep -q 'master 127.0.0.1:$MASTER '"
done
devices d B 'd%d.example.com' 1 11111111-2222-3333-4444-00000000d000
wait_node_log A "cluster: d0.example.com (11111111-2222-3333-4444-00000000d000) is on node nodeB"
dev_in_cluster "$(uuid_of $UA 0)" a0.example.com nodeA || fail "a0 lost in the manual failover"
log "a manual failover back: both nodes got MOVED and followed the slot; registrations go on"

# ------------------------------------------------------------ a node dies: the cleanup
# The cleanup script takes no declared keys and reads the gone node's set: it runs on the
# slot's master only because every key it touches carries the tag.
kill -9 "${NPID[B]}"
wait "${NPID[B]}" 2>/dev/null || true
kill "$SIM_b" "$SIM_d" 2>/dev/null || true
wait_node_log A "cluster: node nodeB: [0-9]* of its entries removed from redis" $((20 * SLOW))
gone_from_cluster() { [ -z "$(ccli HGET "{mpsd}:dev:$1:$2" node 2>/dev/null)" ]; }
wait_for $((10 * SLOW)) "b0 removed" gone_from_cluster "$(uuid_of $UB 0)" b0.example.com
[ -z "$(ccli GET '{mpsd}:fqdn:b0.example.com')" ] || fail "b0's FQDN key left behind"
dev_in_cluster "$(uuid_of $UA 0)" a0.example.com nodeA || fail "node A's entries went with node B's"
log "node B killed -9: node A removed its entries from the cluster once its lease was gone"

use_node A
stop_mpsd
