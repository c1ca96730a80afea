#!/bin/bash
# sentinel.sh - issue 15: cluster_redis finds its master through Redis Sentinel and follows a
# failover.
# SPDX-License-Identifier: Apache-2.0
#
# A Redis master, its replica and one sentinel (quorum 1, down after 1 s); two mpsd nodes A
# and B with `Sentinels =` (B lists a sentinel that is down first, and reaches the live one over
# IPv6 where the machine has ::1), two amtsim devices on each. Proves, with the real daemon,
# the real Redis and the real Sentinel: both nodes connect to the master the sentinel names and
# register there; the replica gets the writes. The replica is then made to lose them (as a
# replica that had not caught up would: FLUSHALL on it, a writable replica's writes stay local)
# and the master is killed with -9: the sentinel promotes the replica, both nodes reconnect to it
# as it names it, and every device is registered there again; each node's directory still has
# the other node's two devices. The old master back as a replica of the new one: a node whose
# Server names it gets READONLY, drops the connection with that reason and backs off (no
# "refused a registration" loop). `mpsd -t` rejects a bad Sentinels list with the reason.
# Nodes stop with status 0.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"

LEASE=3

# ------------------------------------------------------------ mpsd -t checks the list
bad_sentinels() { # bad_sentinels LIST EXPECTED-REASON
    CONF_EXTRA="[module cluster_redis]
Sentinels = $1" write_conf "$TMPD/bad.conf"
    local rc=0 out
    out=$("$MPSD" -t -c "$TMPD/bad.conf" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "mpsd -t accepted Sentinels = $1"
    grep -q -e "Sentinels: .*$2" <<<"$out" || fail "mpsd -t on Sentinels = $1: $out"
}
bad_sentinels "127.0.0.1:26379 ::1:26379" '"::1:26379": an IPv6 address goes in brackets'
bad_sentinels "127.0.0.1:99999" '"127.0.0.1:99999": the port must be 1 to 65535'
bad_sentinels "[::1:26379" '"\[::1:26379": no closing bracket'
bad_sentinels "host/x:1" 'bad character in the host'
CONF_EXTRA="[module cluster_redis]
Sentinels = 127.0.0.1:26379, [::1]:26380 sentinel.example.com" write_conf "$TMPD/good.conf"
"$MPSD" -t -c "$TMPD/good.conf" >"$TMPD/good.out" 2>&1 || fail "mpsd -t refused a good list: $(cat "$TMPD/good.out")"
log "mpsd -t: bad Sentinels lists refused with their reason, a good one accepted"

# ------------------------------------------------- master, replica, sentinel
# Sentinel and replication know servers only by TCP address, and redis-server cannot listen on
# a port of its own choosing and tell it (--port 0 means no TCP at all), so the master's,
# the replica's and the sentinel's ports must be named before they listen: lib.sh's
# reserve_port holds them for the test (redis-server binds them through SO_REUSEADDR). DEAD is
# a sentinel address nothing listens on.
reserve_port MPORT
reserve_port RPORT
reserve_port SPORT
reserve_port DEAD
V6=127.0.0.1 V6NAME=127.0.0.1
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then V6=::1 V6NAME="[::1]"; fi

MSOCK="$TMPD/master.sock" RSOCK="$TMPD/replica.sock"
start_server() { # start_server NAME PORT SOCKET [ARGS...]: its PID in SRV_NAME
    local name=$1 port=$2 sock=$3
    shift 3
    mkdir -p "$TMPD/$name"
    rm -f "$sock"
    redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$sock" --save '' \
        --appendonly no --dir "$TMPD/$name" "$@" >>"$TMPD/$name.log" 2>&1 &
    eval "SRV_$name=\$!"
    BG_PIDS+=("$!")
    wait_for $((10 * SLOW)) "redis-server $name" sh -c \
        "[ \"\$(redis-cli -s '$sock' PING 2>/dev/null)\" = PONG ]"
}
start_server master "$MPORT" "$MSOCK"
start_server replica "$RPORT" "$RSOCK" --replicaof 127.0.0.1 "$MPORT" --replica-read-only no
wait_for $((10 * SLOW)) "the replica in sync" sh -c \
    "redis-cli -s '$RSOCK' INFO replication | grep -q 'master_link_status:up'"

cat >"$TMPD/sentinel.conf" <<EOF
port $SPORT
bind 127.0.0.1 $([ "$V6" = ::1 ] && echo ::1)
dir $TMPD
sentinel monitor mpsd 127.0.0.1 $MPORT 1
sentinel down-after-milliseconds mpsd 1000
sentinel failover-timeout mpsd 5000
EOF
redis-server "$TMPD/sentinel.conf" --sentinel >"$TMPD/sentinel.log" 2>&1 &
SENTINEL_PID=$!
BG_PIDS+=("$SENTINEL_PID")
sentinel_ready() {
    kill -0 "$SENTINEL_PID" 2>/dev/null || {
        echo "SKIP: redis-server --sentinel does not run here: $(tail -n 3 "$TMPD/sentinel.log")"
        exit 77
    }
    redis-cli -p "$SPORT" -h 127.0.0.1 SENTINEL get-master-addr-by-name mpsd 2>/dev/null |
        grep -qx "$MPORT"
}
wait_for $((10 * SLOW)) "the sentinel monitoring the master" sentinel_ready
log "master :$MPORT, replica :$RPORT, sentinel :$SPORT"

# --------------------------------------------------------------- two nodes
start_node() { # start_node NAME SENTINELS
    CONF_EXTRA="[module cluster_redis]
Sentinels = $2
NodeId = node$1
LeaseSeconds = $LEASE
HeartbeatSeconds = 1
RetryMax = 1s" write_conf "$TMPD/mps.$1.conf"
    start_mpsd "$TMPD/mps.$1.conf"
    NPID[$1]=$MPSD_PID NLOG[$1]=$MPSD_LOG NAMT[$1]=$AMT_PORT NCON[$1]=$CONSOLE_PORT
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}
start_node A "127.0.0.1:$SPORT"
start_node B "127.0.0.1:$DEAD $V6NAME:$SPORT"
M1="127.0.0.1:$MPORT" M2="127.0.0.1:$RPORT"
wait_node_log A "connected to redis master $M1 (named by sentinel 127.0.0.1:$SPORT for \"mpsd\") as node nodeA"
wait_node_log B "connected to redis master $M1 (named by sentinel \\$V6NAME:$SPORT for \"mpsd\") as node nodeB"
log "both nodes found the master $M1 through the sentinel (B past a sentinel that is down)"

SOCK=$MSOCK # cluster_lib's dev_keys and owner read the master
devices a A 'a%d.example.com' 2 11111111-2222-3333-4444-00000000a000
devices b B 'b%d.example.com' 2 11111111-2222-3333-4444-00000000b000
wait_for $((10 * SLOW)) "4 devices in the master" dev_keys_are 4
owner_is a1.example.com nodeA || fail "a1 is on '$(owner a1.example.com)' in the master"
owner_is b1.example.com nodeB || fail "b1 is on '$(owner b1.example.com)' in the master"
for n in A B; do wait_node_log $n "directory: 2 remote devices on 1 other node"; done
SOCK=$RSOCK
wait_for $((10 * SLOW)) "4 devices in the replica" dev_keys_are 4
log "4 devices registered in the master, replicated, each directory has the other's 2"

# ------------------------------------- the replica loses the writes; the master dies
redis-cli -s "$RSOCK" FLUSHALL >/dev/null
dev_keys_are 0 || fail "the replica still has $(dev_keys) devices after FLUSHALL"
t0=$(date +%s%N)
ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
kill -KILL "$SRV_master"
wait "$SRV_master" 2>/dev/null || true
wait_for $((20 * SLOW)) "the sentinel to promote the replica" \
    grep -q "+switch-master mpsd 127.0.0.1 $MPORT 127.0.0.1 $RPORT" "$TMPD/sentinel.log"
t_switch=$(ms)
for n in A B; do
    wait_node_log $n "redis connection lost" $((5 * SLOW))
    wait_node_log $n "connected to redis master $M2 (named by sentinel .*) as node node$n" \
        $((20 * SLOW))
done
t_conn=$(ms)
wait_for $((10 * SLOW)) "4 devices registered again in the new master" dev_keys_are 4
t_reg=$(ms)
owner_is a0.example.com nodeA || fail "a0 is on '$(owner a0.example.com)' in the new master"
owner_is b0.example.com nodeB || fail "b0 is on '$(owner b0.example.com)' in the new master"
[ "$(redis-cli -s "$RSOCK" EXISTS mpsd:node:nodeA mpsd:node:nodeB)" = 2 ] ||
    fail "the nodes' leases are not in the new master"
log "kill -9 of the master: promoted after $t_switch ms, both nodes on $M2 after $t_conn ms," \
    "all 4 devices registered again after $t_reg ms"
last_directory_is() { [ "$(grep 'cluster: directory:' "${NLOG[$1]}" | tail -n 1 | sed 's/.*directory: //')" = "$2" ]; }
for n in A B; do
    wait_for $((10 * SLOW)) "node $n's directory" last_directory_is $n "2 remote devices on 1 other node"
    ! node_log_has $n "redis refused a registration" || fail "node $n: a registration was refused"
done
log "each directory still has the other node's 2 devices"

# ------------------------ a Server that is a replica: READONLY drops the connection
start_server old "$MPORT" "$MSOCK" --replicaof 127.0.0.1 "$RPORT"
CONF_EXTRA="[module cluster_redis]
Server = unix:$MSOCK
NodeId = nodeC
LeaseSeconds = $LEASE
HeartbeatSeconds = 1
RetryMax = 4s" write_conf "$TMPD/mps.C.conf"
start_mpsd "$TMPD/mps.C.conf"
NPID[C]=$MPSD_PID NLOG[C]=$MPSD_LOG
wait_node_log C "redis connection lost: unix:$MSOCK is a replica now (READONLY You can't write"
t0=$(date +%s%N)
# reconnects after 1 s, then 2 s (RetryMax 4 s): the third drop comes 3 s after the first
wait_for $((10 * SLOW)) "node C's third READONLY drop" sh -c \
    "[ \$(grep -c 'is a replica now (READONLY' '${NLOG[C]}') -ge 3 ]"
t_three=$(ms)
[ "$t_three" -ge 2500 ] || fail "node C dropped the replica 3 times in $t_three ms: no backoff"
! node_log_has C "redis refused a registration" || fail "node C counted READONLY as a refusal"
log "a Server that is a replica: READONLY drops the connection, backing off (3rd drop after" \
    "$t_three ms more)"
stop_mpsd

for n in A B; do
    use_node $n
    stop_mpsd
done
