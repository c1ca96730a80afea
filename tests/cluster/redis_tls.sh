#!/bin/bash
# redis_tls.sh - issue 15: TLS to Redis (cluster_redis Tls = yes).
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server whose only TCP port speaks TLS (tls-auth-clients yes, the test CA) and a
# UNIX socket for the test's own redis-cli. Proves, with the real daemon and the real Redis:
# `mpsd -t` refuses Tls on a UNIX socket and a certificate without its key; nodes A (Server by
# IP address) and B (by name) register their devices and learn each other's over TLS only
# (commands, heartbeats and the events subscription: the server has no plain TCP port); a
# node that does not trust Redis's CA, one that expects another name and one without a client
# certificate never connect and say why (the certificate refused, the name, the alert), while
# still serving their own devices; a node that finds the master through a sentinel, the
# sentinel and the master both over TLS; Redis restarted on the same port: both nodes reconnect
# over TLS and register everything again; every node stops with status 0 (no leaked pump
# thread, SSL object or descriptor under ASan).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl is missing"; exit 77; }

# ------------------------------------------------------------ mpsd -t checks the options
make_certs
tls_issue client nodeA 30 "$CERTS/nodeA"
bad_conf "Tls = yes needs a TCP Server" "Server = unix:$SOCK" "Tls = yes"
bad_conf "TlsCertFile and TlsKeyFile go together" "Server = 127.0.0.1:1" "Tls = yes" \
    "TlsCAFile = $CERTS/ca.pem" "TlsCertFile = $CERTS/nodeA.pem"
bad_conf "TlsCAFile $CERTS/garbage.pem" "Server = 127.0.0.1:1" "Tls = yes" \
    "TlsCAFile = $CERTS/garbage.pem"
log "mpsd -t: Tls on a UNIX socket, a certificate without its key, a bad CA file refused"

# ------------------------------------------------------------ Redis with TLS only
# redis-server listens on TCP only by port number: reserve_port holds one for the test
# (redis-server binds it through SO_REUSEADDR), so a restart gets it back.
reserve_port TPORT
tls_issue client nodeB 30 "$CERTS/nodeB"
# the server's certificate serves the sentinel's client side too (serverAuth and clientAuth)
tls_issue node localhost 30 "$CERTS/redis"
start_tls_redis() {
    rm -f "$SOCK"
    redis-server --port 0 --tls-port "$TPORT" --bind 127.0.0.1 --unixsocket "$SOCK" \
        --tls-cert-file "$CERTS/redis.pem" --tls-key-file "$CERTS/redis.key" \
        --tls-ca-cert-file "$CERTS/ca.pem" --tls-auth-clients yes \
        --save '' --appendonly no --dir "$TMPD" >>"$TMPD/redis.log" 2>&1 &
    REDIS_PID=$!
    BG_PIDS+=("$REDIS_PID")
    wait_for $((10 * SLOW)) "redis-server (TLS port $TPORT)" tls_redis_ready
}
tls_redis_ready() { # a redis-server built without TLS refuses the options and exits
    kill -0 "$REDIS_PID" 2>/dev/null || {
        tail -n 3 "$TMPD/redis.log" | grep -q -i 'tls' ||
            fail "redis-server exited: $(tail -n 3 "$TMPD/redis.log")"
        echo "SKIP: redis-server does not run with TLS here: $(tail -n 2 "$TMPD/redis.log")"
        exit 77
    }
    redis_ready
}
start_tls_redis

start_node() { # start_node NAME SERVER-HOST [OPTION-LINES...]
    local n=$1 host=$2
    shift 2
    CONF_EXTRA="[module cluster_redis]
Server = $host:$TPORT
NodeId = node$n
LeaseSeconds = 3
HeartbeatSeconds = 1
RetryMax = 1s
ConnectTimeout = $((2 * SLOW))s
Tls = yes
$(printf '%s\n' "$@")" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT NCON[$n]=$CONSOLE_PORT
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}

start_node A 127.0.0.1 "TlsCAFile = $CERTS/ca.pem" "TlsCertFile = $CERTS/nodeA.pem" \
    "TlsKeyFile = $CERTS/nodeA.key"
start_node B localhost "TlsCAFile = $CERTS/ca.pem" "TlsCertFile = $CERTS/nodeB.pem" \
    "TlsKeyFile = $CERTS/nodeB.key"
wait_node_log A "cluster: connected to redis 127.0.0.1:$TPORT as node nodeA"
wait_node_log B "cluster: connected to redis localhost:$TPORT as node nodeB"
devices a A 'a%d.example.com' 2 11111111-2222-3333-4444-00000000a000
devices b B 'b%d.example.com' 2 11111111-2222-3333-4444-00000000b000
wait_for $((10 * SLOW)) "4 devices in redis" dev_keys_are 4
for d in a0 a1; do owner_is $d.example.com nodeA || fail "$d is on '$(owner $d.example.com)'"; done
for d in b0 b1; do owner_is $d.example.com nodeB || fail "$d is on '$(owner $d.example.com)'"; done
# the events subscription runs over TLS too: each node learns the other's devices from it
for n in A B; do wait_node_log $n "directory: 2 remote devices on 1 other node"; done
[ "$(rcli CLIENT LIST | grep -c 'addr=127.0.0.1')" -ge 4 ] ||
    fail "fewer than 4 TCP clients (worker and subscriber of each node): $(rcli CLIENT LIST)"
log "nodes A (by address) and B (by name) registered their devices and learnt each other's over TLS"

# ------------------------------------------------------------ refused, with the reason
start_node W 127.0.0.1 "TlsCAFile = $CERTS/other-ca.pem" "TlsCertFile = $CERTS/nodeA.pem" \
    "TlsKeyFile = $CERTS/nodeA.key"
wait_node_log W "redis 127.0.0.1:$TPORT unreachable: TLS: the server's certificate is refused: .*(name 127.0.0.1)"
start_node N 127.0.0.1 "TlsCAFile = $CERTS/ca.pem" "TlsCertFile = $CERTS/nodeA.pem" \
    "TlsKeyFile = $CERTS/nodeA.key" "TlsServerName = redis.example.com"
wait_node_log N "unreachable: TLS: the server's certificate is refused: .*(name redis.example.com)"
start_node K 127.0.0.1 "TlsCAFile = $CERTS/ca.pem"
wait_node_log K "TLS connection to redis failed: .*certificate required\|unreachable: TLS handshake: .*certificate"
devices k K 'k%d.example.com' 1 11111111-2222-3333-4444-00000000f000
use_node K
expect_apf ok console-echo --device k0.example.com --dport 16994
for n in W N K; do
    node_log_has $n "cluster: connected to redis" && fail "node $n connected to redis"
done
dev_keys_are 4 || fail "a refused node wrote to redis: $(rcli KEYS 'mpsd:dev:*')"
for n in W N K; do
    use_node $n
    stop_mpsd
    unset "NPID[$n]"
done
log "an untrusted CA, another name, no client certificate: refused with the reason, local devices served"

# ------------------------------------------------------------ Sentinel over TLS
reserve_port SPORT
cat >"$TMPD/sentinel.conf" <<EOF
port 0
tls-port $SPORT
bind 127.0.0.1
dir $TMPD
tls-cert-file $CERTS/redis.pem
tls-key-file $CERTS/redis.key
tls-ca-cert-file $CERTS/ca.pem
tls-auth-clients yes
tls-replication yes
sentinel monitor mpsd 127.0.0.1 $TPORT 1
EOF
redis-server "$TMPD/sentinel.conf" --sentinel >"$TMPD/sentinel.log" 2>&1 &
SENTINEL_PID=$!
BG_PIDS+=("$SENTINEL_PID")
sentinel_ready() {
    kill -0 "$SENTINEL_PID" 2>/dev/null || fail "the sentinel died: $(tail -n 3 "$TMPD/sentinel.log")"
    redis-cli --tls --cacert "$CERTS/ca.pem" --cert "$CERTS/redis.pem" --key "$CERTS/redis.key" \
        -h 127.0.0.1 -p "$SPORT" SENTINEL get-master-addr-by-name mpsd 2>/dev/null | grep -qx "$TPORT"
}
wait_for $((10 * SLOW)) "the sentinel (TLS port $SPORT) monitoring the master" sentinel_ready
start_node S 127.0.0.1 "Sentinels = 127.0.0.1:$SPORT" "TlsCAFile = $CERTS/ca.pem" \
    "TlsCertFile = $CERTS/nodeA.pem" "TlsKeyFile = $CERTS/nodeA.key"
wait_node_log S "connected to redis master 127.0.0.1:$TPORT (named by sentinel 127.0.0.1:$SPORT for \"mpsd\") as node nodeS"
devices s S 's%d.example.com' 1 11111111-2222-3333-4444-00000000e000
wait_for $((10 * SLOW)) "s0 registered by node S" owner_is s0.example.com nodeS
use_node S
stop_mpsd
unset "NPID[S]"
kill "$SIM_s" 2>/dev/null || true
wait_for $((10 * SLOW)) "s0 unregistered" dev_keys_are 4
log "through a sentinel over TLS: the master it names reached over TLS, s0 registered"

# ------------------------------------------------------------ Redis restarted empty
kill -TERM "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
for n in A B; do wait_node_log $n "redis connection lost"; done
start_tls_redis
for n in A B; do
    wait_for $((10 * SLOW)) "node $n reconnected" \
        sh -c "[ \$(grep -c 'cluster: connected to redis' '${NLOG[$n]}') -ge 2 ]"
done
wait_for $((10 * SLOW)) "4 devices back after the restart" dev_keys_are 4
log "redis restarted on the same port: both nodes reconnected over TLS and registered everything"

for n in A B; do
    use_node $n
    stop_mpsd
    unset "NPID[$n]"
done
log "every node stopped with status 0"
