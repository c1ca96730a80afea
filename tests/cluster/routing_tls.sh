#!/bin/bash
# routing_tls.sh - issue 15: inter-node links over mutual TLS with a cluster CA.
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server on a UNIX socket of the test's own; nodes A and B whose links are accepted
# by a [module tls] (VerifyClient = require, the test CA) in front of cluster_link
# (Listen = none, Advertise = @tls) and dialled through the same instance (Tls = yes,
# Serve = cluster_link); amtsim devices on each. Proves, with the real daemon, the real Redis and the
# project's SOCKS5 client: the published link address is the TLS listener's; consoles through
# each node reach the other's devices byte-exact (echo, 4 MB bulk both ways) over links whose
# TLS handshakes both ends count; node C, whose certificate comes from another CA, is refused
# at the TLS handshake (logged by the accepting node, C's consoles get 0x04); node D, which
# dials in plain TCP, and a stranger speaking HTTP are refused by the TLS listener, D's
# consoles get 0x04; a client without a certificate is refused; every node stops with
# status 0 (no leak under ASan).
. "$(dirname "$0")/../integration/lib.sh"

. "$(dirname "$0")/cluster_lib.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl is missing"; exit 77; }
for m in cluster_link socks5 tls; do
    [ -e "$MODDIR/$m.so" ] || { echo "SKIP: $m was not built"; exit 77; }
done

T=$((30 * SLOW))
start_redis

KEY="$TMPD/cluster.key"
openssl rand -hex 32 >"$KEY"
chmod 600 "$KEY"
make_certs
for n in A B D; do
    tls_issue node "node$n" 30 "$CERTS/node$n"
    cat "$CERTS/node$n.pem" "$CERTS/ca.pem" >"$CERTS/node$n-chain.pem"
done
# C: a node certificate from a CA the cluster does not trust (C itself trusts the cluster's).
tls_issue node nodeC 30 "$CERTS/nodeC" other-ca
cat "$CERTS/nodeC.pem" "$CERTS/other-ca.pem" >"$CERTS/nodeC-chain.pem"

declare -A NLINK
start_node() { # start_node NAME yes|no: links dialled through TLS or in plain TCP
    local n=$1 tls=$2
    local dial="Tls = yes"
    [ "$tls" = yes ] || dial=""
    CONF_EXTRA="[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
LeaseSeconds = 6
HeartbeatSeconds = 1
RetryMax = 1s

[module cluster_link]
Listen = none
Advertise = @tls
$dial
SharedKeyFile = $KEY
ConnectTimeout = $((2 * SLOW))s
OpenTimeout = $((5 * SLOW))s

[module tls]
Listen = 127.0.0.1:0
Serve = cluster_link
Certificate = $CERTS/node$n-chain.pem
PrivateKey = $CERTS/node$n.key
CAFile = $CERTS/ca.pem
VerifyClient = require
Profile = modern
HeadTimeout = $((2 * SLOW))s

[module socks5]
Listen = 127.0.0.1:0" write_conf "$TMPD/mps.$n.conf"
    start_mpsd "$TMPD/mps.$n.conf"
    NPID[$n]=$MPSD_PID NLOG[$n]=$MPSD_LOG NAMT[$n]=$AMT_PORT
    NS5[$n]=$(ready_port socks5)
    NLINK[$n]=$(ready_addr tls)
    BG_PIDS+=("$MPSD_PID")
    MPSD_PID=""
}

start_node A yes
start_node B yes
for n in A B; do
    wait_node_log $n "cluster link: node node$n: other nodes reach its devices through ${NLINK[$n]}"
    [ "$(rcli GET "mpsd:node:node$n" | cut -d' ' -f2)" = "${NLINK[$n]}" ] ||
        fail "node $n's lease: '$(rcli GET "mpsd:node:node$n")', expected link ${NLINK[$n]}"
done
log "Advertise = @tls: each node publishes its TLS listener (${NLINK[A]}, ${NLINK[B]})"

devices a A 'a%d.example.com' 2 11111111-2222-3333-4444-00000000a000
devices b B 'b%d.example.com' 2 11111111-2222-3333-4444-00000000b000
wait_for $((10 * SLOW)) "4 devices in redis" dev_keys_are 4
for n in A B; do wait_node_log $n "directory: 2 remote devices on 1 other node"; done

# ------------------------------------------------ byte-exact both ways over mutual TLS
expect_s5 "ok" A echo --device b0.example.com --dport 16994 --bytes 60000 --pipelined --seed 3
expect_s5 "ok eof" B echo --device a1.example.com --dport 16994 --bytes 7000 --half-close
t0=$SECONDS
for route in "A b1" "B a0"; do
    set -- $route
    out=$(s5 "$1" bulk --device "$2.example.com" --dport 16994 --bytes $((4 * 1024 * 1024)) --seed 5)
    [ "${out%% *}" = ok ] || fail "4 MB echo through $1 to $2: $out"
done
log "echo, half-close and 4 MB each way byte-exact through A -> B and B -> A in $((SECONDS - t0)) s"
wait_node_log A "cluster link: link to node nodeB (${NLINK[B]}) is up"
wait_node_log B "cluster link: link from node nodeA (127.0.0.1:[0-9]*) is up"
wait_node_log B "cluster link: link to node nodeA (${NLINK[A]}) is up"
log "links up both ways, each dialled to the other's TLS listener"

# ------------------------------------------------ node C: a certificate of another CA
start_node C yes
wait_node_log C "directory: 4 remote devices on 2 other nodes"
expect_s5 "reply 0x04 closed" C request --device b0.example.com --dport 16994
wait_node_log B "\[tls\] TLS handshake with 127.0.0.1:[0-9]* failed: client certificate rejected: \(unable to get local issuer certificate\|self-signed certificate in certificate chain\)"
wait_node_log C "cluster link: link to node nodeB at ${NLINK[B]}: .*\(certificate\|handshake\)"
log "node C (certificate of another CA): refused at B's TLS handshake (logged), C's console got 0x04"

# ------------------------------------------------ node D dials in plain TCP; a stranger
start_node D no
wait_node_log D "directory: 4 remote devices on 2 other nodes"
expect_s5 "reply 0x04 closed" D request --device a0.example.com --dport 16994
wait_node_log D "cluster link: link to node nodeA at ${NLINK[A]}: \\(no handshake within\\|the other end closed the link during the handshake\\)"
# D sends nothing (it waits for the HELLO the TLS listener never sends): a silent connection.
wait_node_log A "\[tls\] 127.0.0.1:[0-9]* closed before sending anything"
printf 'GET / HTTP/1.0\r\n\r\n' | python3 -c '
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=10)
s.sendall(sys.stdin.buffer.read())
try:
    print(len(s.recv(100)))
except OSError:
    print(0)' "${NLINK[A]}" >"$TMPD/stranger.out" 2>&1 || true
wait_node_log A "\[tls\] TLS handshake with 127.0.0.1:[0-9]* failed: .*(plain text: not TLS)"
# No client certificate at all (a TLS client that is not a node).
openssl s_client -connect "${NLINK[A]}" -CAfile "$CERTS/ca.pem" -noservername </dev/null \
    >"$TMPD/nocert.out" 2>&1 || true
wait_node_log A "\[tls\] TLS handshake with 127.0.0.1:[0-9]* failed: .*peer did not return a certificate"
log "plain TCP dial (node D: 0x04), HTTP and a TLS client without certificate: refused by A's TLS listener, logged"

# ------------------------------------------------ still working; then a clean stop
expect_s5 "ok" B echo --device a0.example.com --dport 16994 --bytes 5000 --seed 9
for n in A B C D; do
    use_node $n
    stop_mpsd
done
for n in A B; do
    hs=$(sed -n 's/.*\[tls\] \([0-9]*\) handshakes completed.*/\1/p' "${NLOG[$n]}")
    [ "${hs:-0}" -ge 2 ] || fail "node $n's tls section completed ${hs:-0} handshakes (2 expected: one dialled, one accepted)"
done
log "A and B each completed their link handshakes in TLS (accepted and dialled)"
