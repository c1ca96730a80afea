#!/bin/bash
# link_protocol.sh - cluster_link's listener against a peer that holds the key but does not
# keep to the protocol (tests/cluster/linkclient.py plays the other node).
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server and one node with cluster_redis and cluster_link; amtsim devices on it.
# Proves, with the real daemon: a peer with the key reaches a device byte-exact (200 kB echo)
# and an unknown device is refused with OPEN_FAIL ENOENT; a wrong MAC, an unknown frame type,
# DATA beyond the granted window, a second OPEN of an open channel and a frame for a channel
# that was never opened each end that link (logged), never the node; 300 OPENs at once are
# each answered; pings are answered; a console through the node's own SOCKS5 still works
# after all of it, and the node stops with status 0 (no leak under ASan).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
for m in cluster_link socks5; do
    [ -e "$MODDIR/$m.so" ] || { echo "SKIP: $m was not built"; exit 77; }
done

LINKCLIENT="$top_srcdir/tests/cluster/linkclient.py"
T=$((20 * SLOW))
start_redis
KEY="$TMPD/cluster.key"
openssl rand -hex 32 >"$KEY"
chmod 600 "$KEY"

CONF_EXTRA="[module cluster_redis]
Server = unix:$SOCK
NodeId = nodeA
HeartbeatSeconds = 1

[module cluster_link]
Listen = 127.0.0.1:0
SharedKeyFile = $KEY

[module socks5]
Listen = 127.0.0.1:0" write_conf "$TMPD/mps.conf"
start_mpsd "$TMPD/mps.conf"
NPID[A]=$MPSD_PID NLOG[A]=$MPSD_LOG NAMT[A]=$AMT_PORT
LINK_PORT=$(ready_port cluster_link)
S5_PORT=$(ready_port socks5)
UA=11111111-2222-3333-4444-00000000a000
devices a A 'a%d.example.com' 2 $UA

lc() { python3 "$LINKCLIENT" --port "$LINK_PORT" --key "$KEY" --timeout "$T" "$@" || true; }
expect_lc() { # expect_lc RESULT ARGS...
    local want=$1 got
    shift
    got=$(lc "$@")
    [ "$got" = "$want" ] || fail "linkclient $*: '$got', expected '$want'"
    log "linkclient $*: $got"
}

expect_lc ok --expect-node nodeA --device a0.example.com echo
expect_lc ok --device "$(uuid_of $UA 1)" echo
wait_node_log A "cluster link: node nodeX's console 192.0.2.7:40000 reaches device a0.example.com port 16994 here"
expect_lc "fail 2" --device a0.example.com unknown
wait_node_log A "cluster link: node nodeX's console 192.0.2.7:40000 -> device nowhere.example.com port 16994: refused: the device is not connected here"
expect_lc pong ping
got=$(lc --device a1.example.com many-opens)
case "$got" in "answered 300 ok "*) ;; *) fail "300 OPENs: '$got'" ;; esac
log "300 OPENs at once: $got"

expect_lc closed wrong-mac
wait_node_log A "cluster link: link from 127.0.0.1:[0-9]* (node nodeX) refused: it does not hold the cluster key"
expect_lc closed --device a0.example.com overrun
wait_node_log A "link from node nodeX: channel 1: [0-9]* bytes beyond the window"
expect_lc closed --device a0.example.com dup-open
wait_node_log A "link from node nodeX: unexpected OPEN for channel 1"
expect_lc closed bad-frame
wait_node_log A "link from node nodeX: malformed frame"
expect_lc closed unknown-chan
wait_node_log A "link from node nodeX: frame 13 for channel 77, which is not open"

use_node A
require_alive
out=$(python3 "$top_srcdir/tests/integration/socks5client.py" --port "$S5_PORT" --timeout "$T" \
    echo --device a1.example.com --dport 16994 --bytes 5000 || true)
[ "$out" = ok ] || fail "a console after the misbehaving peers: $out"
log "after every misbehaving link the node serves a console"
stop_mpsd
