#!/bin/bash
# registry.sh - issue 15 step 1: the cluster-wide device directory in Redis (cluster_redis).
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server on a UNIX socket of the test's own (no port is ever picked) and three mpsd
# nodes A, B, C with [module cluster_redis]; amtsim devices spread across them. Proves, with
# the real daemon and the real Redis: every device registered under the node that holds it;
# every node's directory knows the others' devices; kill -9 of a node: its devices reconnect
# to a survivor and supersede their entries there, its lease expires and the survivors drop
# it; a node still holding an older session of a device that moved cannot take it back
# (no flapping); FLUSHALL (Redis restarted empty): everything back within a heartbeat; Redis
# stopped: local devices still served, the outage logged, everything re-registered when it
# returns; garbled events on the channel: counted, logged, nothing crashes.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

LEASE=3

# ---------------------------------------------------------------- three nodes
start_node() { # start_node NAME
    local n=$1
    CONF_EXTRA="[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
LeaseSeconds = $LEASE
HeartbeatSeconds = 1
RetryMax = 1s" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT NCON[$n]=$CONSOLE_PORT
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}

start_redis
for n in A B C; do start_node $n; done
for n in A B C; do wait_node_log $n "cluster: connected to redis unix:$SOCK as node node$n"; done

devices a A 'a%d.example.com' 2 11111111-2222-3333-4444-00000000a000
devices b B 'b%d.example.com' 2 11111111-2222-3333-4444-00000000b000
devices c C 'c%d.example.com' 2 11111111-2222-3333-4444-00000000c000
wait_for $((10 * SLOW)) "6 devices in redis" dev_keys_are 6
for n in A B C; do
    for i in 0 1; do
        d="$(tr 'A-C' 'a-c' <<<"$n")$i.example.com"
        owner_is "$d" "node$n" || fail "$d: redis says node '$(owner "$d")', expected node$n"
    done
    wait_node_log $n "cluster: registered ${n,,}0.example.com (.*) on node node$n"
    rcli EXISTS "mpsd:node:node$n" | grep -qx 1 || fail "node$n has no lease key"
done
ua0=$(rcli GET mpsd:fqdn:a0.example.com)
ttl=$(rcli PTTL "mpsd:dev:$ua0:a0.example.com")
[ "$ttl" = -1 ] || fail "device key PTTL $ttl: entries live as long as their node's lease"
[ "$(rcli SISMEMBER mpsd:nodedevs:nodeA "$ua0:a0.example.com")" = 1 ] || fail "a0 is not in nodeA's set"
[ "$(rcli HEXISTS "mpsd:uuid:$ua0" a0.example.com)" = 1 ] || fail "a0 is not in its UUID's hash"
lttl=$(rcli PTTL mpsd:node:nodeA)
[ "$lttl" -gt 0 ] && [ "$lttl" -le $((LEASE * 1000)) ] || fail "lease PTTL $lttl, lease ${LEASE}s"
log "6 devices registered, each under its node and in its node's set (lease PTTL $lttl ms)"
for n in A B C; do wait_node_log $n "directory: 4 remote devices on 2 other nodes"; done
log "every node's directory holds the other nodes' 4 devices"

# ------------------------------------------------- kill -9 C: its devices move to A
UX=11111111-2222-3333-4444-00000000f000
devices x C 'x%d.example.com' 1 $UX # dies with C and does not come back
wait_for $((10 * SLOW)) "7 devices in redis" dev_keys_are 7
kill -KILL "${NPID[C]}"
wait "${NPID[C]}" 2>/dev/null || true
kill "$SIM_c" "$SIM_x" 2>/dev/null || true
t0=$SECONDS
devices c2 A 'c%d.example.com' 2 11111111-2222-3333-4444-00000000c000
wait_for $((5 * SLOW)) "c0 registered on node A" owner_is c0.example.com nodeA
wait_node_log A "registered c0.example.com (.*) on node nodeA, superseding node nodeC"
owner_is c1.example.com nodeA || fail "c1 is on '$(owner c1.example.com)', expected nodeA"
log "C's devices reconnected to A and superseded their entries ($((SECONDS - t0)) s)"
wait_for $((LEASE * 2 * SLOW + 2)) "node C's lease to expire" \
    sh -c "[ \"\$(redis-cli -s '$SOCK' EXISTS mpsd:node:nodeC)\" = 0 ]"
wait_node_log B "directory: 4 remote devices on 1 other node" $((LEASE * 2 * SLOW + 2))
wait_node_log A "directory: 2 remote devices on 1 other node" $((LEASE * 2 * SLOW + 2))
log "C's lease expired after $((SECONDS - t0)) s; survivors dropped node C"
# what C left behind (x0, which did not come back) is removed from Redis by a survivor
wait_for $((5 * SLOW)) "x0's entry removed" sh -c \
    "[ \"\$(redis-cli -s '$SOCK' EXISTS mpsd:dev:$UX:x0.example.com mpsd:fqdn:x0.example.com mpsd:nodedevs:nodeC mpsd:uuid:$UX)\" = 0 ]"
node_log_has A "cluster: node nodeC: 1 of its entries removed from redis" ||
    node_log_has B "cluster: node nodeC: 1 of its entries removed from redis" ||
    fail "no survivor logged the removal of node C's entries"
wait_for $((5 * SLOW)) "6 devices in redis" dev_keys_are 6
log "node C's own entries (x0) removed from redis by a survivor; C's moved devices kept"

# --------------------------- an older session still held elsewhere never takes it back
devices s B 's%d.example.com' 1 11111111-2222-3333-4444-00000000d000
wait_for $((5 * SLOW)) "s0 on node B" owner_is s0.example.com nodeB
devices s2 A 's%d.example.com' 1 11111111-2222-3333-4444-00000000d000
wait_for $((5 * SLOW)) "s0 on node A" owner_is s0.example.com nodeA
# B publishes no disconnect for the entry A took over: A's own event takes it out of A's cache
wait_node_log A "cluster: s0.example.com (.*) moved from node nodeB to this node" $((5 * SLOW))
# B still holds its (older) session; when B registers everything again (its lease found
# expired: forced here by deleting it), that registration is refused.
rcli DEL mpsd:node:nodeB >/dev/null
wait_node_log B "cluster: node nodeB's lease had expired in redis: registering every local device again"
wait_node_log B "s0.example.com (.*): node nodeA holds a newer session"
owner_is s0.example.com nodeA || fail "s0 flapped back to '$(owner s0.example.com)'"
log "the older session on B never took s0 back from A (B's registration refused)"

# ------------------------------------------------ Redis restarted empty: FLUSHALL
rcli FLUSHALL >/dev/null
t0=$(date +%s%N)
wait_for $((5 * SLOW)) "7 devices back after FLUSHALL" dev_keys_are 7
log "FLUSHALL: all 7 registrations back in $((($(date +%s%N) - t0) / 1000000)) ms (heartbeat 1 s)"
owner_is s0.example.com nodeA || fail "after FLUSHALL s0 is on '$(owner s0.example.com)'"
owner_is b1.example.com nodeB || fail "after FLUSHALL b1 is on '$(owner b1.example.com)'"

# ------------------------------------------------ Redis down, then back on the same socket
stop_redis
for n in A B; do wait_node_log $n "redis connection lost"; done
use_node B
expect_apf ok console-echo --device b0.example.com --dport 16994
log "redis down: node B still serves b0 to a console"
start_redis
for n in A B; do
    wait_for $((10 * SLOW)) "node $n reconnected" \
        sh -c "[ \$(grep -c 'cluster: connected to redis' '${NLOG[$n]}') -ge 2 ]"
done
for n in A B; do # events published before a node resubscribed would never reach it
    wait_for $((10 * SLOW)) "node $n resubscribed" \
        sh -c "[ \$(grep -c 'cluster: subscribed to mpsd:events' '${NLOG[$n]}') -ge 2 ]"
done
wait_for $((5 * SLOW)) "7 devices back after the restart" dev_keys_are 7
log "redis restarted: both nodes reconnected and re-registered all 7 devices"

# ------------------------------------------------ an event lost: the counts show it
# An entry of node B written without its event (as if A's subscriber had missed it): at the
# next heartbeats A finds B's count in Redis (its set) differ from its directory and rescans.
UL=11111111-2222-3333-4444-00000000e0e0
rcli HSET "mpsd:dev:$UL:lost0.example.com" uuid "$UL" fqdn lost0.example.com ports 16992 node nodeB session 999 \
    connected_ms "$(date +%s%3N)" peer 127.0.0.1:1 stamp "x" >/dev/null
rcli SET mpsd:fqdn:lost0.example.com "$UL" >/dev/null
rcli SADD mpsd:nodedevs:nodeB "$UL:lost0.example.com" >/dev/null
rcli HSET "mpsd:uuid:$UL" lost0.example.com nodeB >/dev/null
wait_node_log A "cluster: node nodeB holds [0-9]* entries in redis, this node's directory [0-9]*: rescanning" $((5 * SLOW))
use_node A
wait_for $((5 * SLOW)) "lost0 in A's directory" sh -c \
    "grep -q 'cluster: lost0.example.com ($UL) is on node nodeB' '$MPSD_LOG'"
rcli DEL "mpsd:dev:$UL:lost0.example.com" mpsd:fqdn:lost0.example.com "mpsd:uuid:$UL" >/dev/null
rcli SREM mpsd:nodedevs:nodeB "$UL:lost0.example.com" >/dev/null
log "an entry whose event was lost: A's heartbeat count check found it and rescanned"

# ------------------------------------------------ garbled events
rcli PUBLISH mpsd:events "connect nodeX notanumber u f - 1" >/dev/null
printf 'connect \001\377 %.0s' 1 | rcli -x PUBLISH mpsd:events >/dev/null
rcli PUBLISH mpsd:events "$(head -c 3000 /dev/zero | tr '\0' 'x')" >/dev/null
for n in A B; do wait_node_log $n "garbled event on mpsd:events ignored"; done
kill -0 "${NPID[A]}" && kill -0 "${NPID[B]}" || fail "a node died of a garbled event"
use_node A
expect_apf ok console-echo --device c1.example.com --dport 16994
log "garbled events logged; nodes alive and serving"

for n in A B; do
    use_node $n
    stop_mpsd
done
