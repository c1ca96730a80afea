#!/bin/bash
# routing.sh - issue 15 step 3: consoles reach every device of the cluster through any node
# (cluster_link over cluster_redis's directory).
# SPDX-License-Identifier: Apache-2.0
#
# One redis-server on a UNIX socket of the test's own, three nodes A, B, C with cluster_redis,
# cluster_link (links on 127.0.0.1 port 0, a shared key), socks5 and http_proxy; amtsim
# devices on each. Proves, with the real daemon, the real Redis, curl and the project's SOCKS5
# client: every device answers byte-exact, as itself, through every node's SOCKS5 and HTTP
# proxy; 16 MB both ways through a link with end-to-end flow control (SHA-256 compared); a
# port the device does not forward is refused by the console's node (0x05); the routing and
# the relays are logged on both nodes; a node with the wrong key is refused by the others and
# its consoles get "host unreachable" (0x04) and a 502 naming why, never a hang; a node
# stopped (SIGSTOP: a partition) gives 0x04 / 504 within OpenTimeout and the link is declared
# dead by keepalive; after SIGCONT routing works again; Redis stopped: routing goes on from the
# directories, Redis restarted empty: everything back; kill -9 of a node: its devices,
# reconnected to a survivor, are reached through the third node as the same devices; every
# node stops cleanly (no leak under ASan).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is missing"; exit 77; }
for m in cluster_link socks5 http_proxy admin_http; do
    [ -e "$MODDIR/$m.so" ] || { echo "SKIP: $m was not built"; exit 77; }
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$((30 * SLOW))
start_redis

KEY="$TMPD/cluster.key"
openssl rand -hex 32 >"$KEY"
chmod 600 "$KEY"
OPEN_TIMEOUT=$((3 * SLOW))

declare -A NADM
PROMTOOL=$(command -v promtool || true)
start_node() { # start_node NAME [KEYFILE]
    local n=$1 key=${2:-$KEY}
    CONF_EXTRA="[module cluster_redis]
Server = unix:$SOCK
NodeId = node$n
LeaseSeconds = 6
HeartbeatSeconds = 1
RetryMax = 1s

[module cluster_link]
Listen = 127.0.0.1:0
SharedKeyFile = $key
ConnectTimeout = $((2 * SLOW))s
OpenTimeout = ${OPEN_TIMEOUT}s
Keepalive = 500ms

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

hp_code() { # hp_code NODE URL: the status through NODE's http proxy (body in $TMPD/b)
    curl -q -s -o "$TMPD/b" -w '%{http_code}' --max-time "$T" -x "http://127.0.0.1:${NHP[$1]}" \
        "$2" || true
}

start_node A
start_node B
start_node C
for n in A B C; do
    wait_node_log $n "cluster link: node node$n: other nodes reach its devices through 127.0.0.1:"
done

UA=11111111-2222-3333-4444-00000000a000
UB=11111111-2222-3333-4444-00000000b000
UC=11111111-2222-3333-4444-00000000c000
US=11111111-2222-3333-4444-00000000e000
devices a A 'a%d.example.com' 2 $UA
devices b B 'b%d.example.com' 2 $UB --reconnect
devices c C 'c%d.example.com' 2 $UC
devices s B 's%d.example.com' 1 $US --ports 16992 # forwards 16992 only
wait_for $((10 * SLOW)) "7 devices in redis" dev_keys_are 7
for n in A B C; do wait_node_log $n "directory: [45] remote devices on 2 other nodes"; done
wait_for $((10 * SLOW)) "every directory complete" sh -c \
    "grep -q 'directory: 5 remote devices on 2 other nodes' '${NLOG[A]}' &&
     grep -q 'directory: 4 remote devices on 2 other nodes' '${NLOG[B]}' &&
     grep -q 'directory: 5 remote devices on 2 other nodes' '${NLOG[C]}'"

# ------------------------------------------------ every device through every node
checked=0
for n in A B C; do
    for d in a:$UA b:$UB c:$UC; do
        p=${d%%:*} base=${d#*:}
        for i in 0 1; do
            fq="$p$i.example.com"
            want="amtsim $fq $(uuid_of "$base" $i) /wsman/$n"
            for kind in http socks; do
                got=$(via $n $kind "http://$fq:16992/wsman/$n") ||
                    fail "node $n ($kind) -> $fq: curl failed"
                [ "$got" = "$want" ] || fail "node $n ($kind) -> $fq: '$got', expected '$want'"
                checked=$((checked + 1))
            done
        done
    done
done
log "$checked requests: each of 6 devices answered as itself through every node's http proxy and SOCKS5"
wait_node_log A "cluster link: console 127.0.0.1:[0-9]* reaches device b0.example.com port 16992 on node nodeB"
wait_node_log B "cluster link: node nodeA's console 127.0.0.1:[0-9]* reaches device $(uuid_of $UB 0) port 16992 here"
wait_node_log A "cluster link: link to node nodeB (127.0.0.1:[0-9]*) is up"
wait_node_log B "cluster link: link from node nodeA (127.0.0.1:[0-9]*) is up"
n_links=$(grep -c "cluster link: link to node nodeB (.*) is up" "${NLOG[A]}")
[ "$n_links" = 1 ] || fail "node A opened $n_links links to B for 8 channels (one expected)"
log "routing logged on both ends; one persistent link from A to B carried every channel"

# ------------------------------------------------ bytes: echo, half-close, 16 MB both ways
expect_s5 "ok" A echo --device b1.example.com --dport 16994 --bytes 60000 --pipelined --seed 3
expect_s5 "ok eof" C echo --device a0.example.com --dport 16994 --bytes 7000 --half-close
t0=$SECONDS
out=$(s5 A bulk --device c1.example.com --dport 16994 --bytes $((16 * 1024 * 1024)) --seed 8)
[ "${out%% *}" = ok ] || fail "16 MB echo through A to c1 on C: $out"
log "16 MB echoed byte for byte through A -> C in $((SECONDS - t0)) s: $out"
# concurrent consoles on one link
pids=()
for i in $(seq 1 12); do
    s5 B echo --device "a$((i % 2)).example.com" --dport 16994 --bytes $((20000 + i)) \
        --seed "$i" >"$TMPD/par.$i" &
    pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq 1 12); do
    [ "$(cat "$TMPD/par.$i")" = ok ] || fail "parallel console $i through B: $(cat "$TMPD/par.$i")"
done
log "12 concurrent consoles through B to A's devices: all byte-exact"

# ------------------------------------------------ counted: /api/v1/cluster and /metrics
links_json() { # links_json NODE EXPR: a Python expression over /api/v1/cluster's links (l)
    curl -q -s --max-time "$T" "${NADM[$1]}/api/v1/cluster" |
        python3 -c 'import json,sys; l=json.load(sys.stdin)["links"]; print(eval(sys.argv[1]))' "$2"
}
got=$(links_json B "(l['served'] >= 9, l['routed'] >= 20, l['accepted'] >= 2, l['dialled'] >= 2, l['bytes_in'] > 0, l['bytes_out'] > 0, l['up'] >= 3, 0 < l['writes'] <= l['frames_out'])")
[ "$got" = "(True, True, True, True, True, True, True, True)" ] || fail "node B's link counters: $got ($(curl -s "${NADM[B]}/api/v1/cluster"))"
[ "$(links_json A "l['routed'] >= 10 and l['route_failed'] == 0")" = True ] ||
    fail "node A's link counters: $(links_json A l)"
curl -q -s --max-time "$T" "${NADM[A]}/metrics" >"$TMPD/metrics.A"
grep -q '^mpsd_cluster_link_channels_total{what="routed"} [1-9]' "$TMPD/metrics.A" ||
    fail "no routed channels in A's /metrics: $(grep cluster_link "$TMPD/metrics.A")"
grep -q '^mpsd_cluster_links_up [1-9]' "$TMPD/metrics.A" || fail "no links up in A's /metrics"
grep -q '^mpsd_cluster_link_writes_total [1-9]' "$TMPD/metrics.A" ||
    fail "no link writes in A's /metrics: $(grep cluster_link "$TMPD/metrics.A")"
if [ -n "$PROMTOOL" ]; then
    "$PROMTOOL" check metrics <"$TMPD/metrics.A" >"$TMPD/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$TMPD/promtool.out")"
fi
log "counted: A routed $(links_json A "l['routed']") channels, B served $(links_json B "l['served']"); /metrics has the mpsd_cluster_link* families${PROMTOOL:+ (promtool clean)}"

# ------------------------------------------------ policy and refusals
expect_s5 "reply 0x05 closed" A request --device s0.example.com --dport 16994
body=$(via A http http://s0.example.com:16992/only) || fail "s0:16992 through A"
[ "$body" = "amtsim s0.example.com $(uuid_of $US 0) /only" ] || fail "s0 through A: $body"
expect_s5 "reply 0x04 closed" A request --device nowhere.example.com --dport 16994
log "a port the remote device does not forward: 0x05; an unknown device: 0x04; its forwarded port works"

# ------------------------------------------------ a node with the wrong key
BADKEY="$TMPD/bad.key"
openssl rand -hex 32 >"$BADKEY"
chmod 600 "$BADKEY"
start_node D "$BADKEY"
wait_node_log D "directory: 7 remote devices on 3 other nodes"
expect_s5 "reply 0x04 closed" D request --device b0.example.com --dport 16994
code=$(hp_code D http://b0.example.com:16992/x)
[ "$code" = 502 ] || fail "node D (wrong key) -> b0: HTTP $code, expected 502"
grep -q "cluster node holding the device cannot be reached" "$TMPD/b" ||
    fail "node D's 502 does not say why: $(cat "$TMPD/b")"
wait_node_log B "cluster link: link from 127.0.0.1:[0-9]* (node nodeD) refused: it does not hold the cluster key"
wait_node_log D "cluster link: link to node nodeB at .*: the other end closed the link during the handshake"
log "a node with another key: refused by B (logged), its consoles get 0x04 and 502 at once"
# a stranger on the link port: not a byte of channel traffic, a refusal logged
use_node B
LINK_B=$(rcli GET mpsd:node:nodeB | cut -d' ' -f2)
[ -n "$LINK_B" ] || fail "node B's lease carries no link address"
curl -q -s --max-time $((5 * SLOW)) "http://$LINK_B/" >"$TMPD/stranger.out" 2>&1 || true
wait_node_log B "link from 127.0.0.1:[0-9]* (node ?) refused: .*frame"
log "a stranger speaking HTTP to B's link port: refused, logged"

# ------------------------------------------------ partition: node C stops answering
kill -STOP "${NPID[C]}"
t0=$(date +%s%N)
expect_s5 "reply 0x04 closed" A request --device c0.example.com --dport 16994
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt $(((OPEN_TIMEOUT + 5 * SLOW) * 1000)) ] || fail "the partitioned request took $ms ms"
code=$(hp_code B http://c1.example.com:16992/p)
[ "$code" = 504 ] || [ "$code" = 502 ] || fail "B -> c1 during the partition: HTTP $code"
wait_node_log A "cluster link: link to node nodeC at .*: nothing heard for"
log "partition (C stopped): SOCKS5 0x04 after $ms ms, HTTP $code; keepalive declared A's link dead"
kill -CONT "${NPID[C]}"
wait_for $((15 * SLOW)) "c0 through A again" sh -c \
    "[ \"\$(curl -q -s --max-time 5 -x http://127.0.0.1:${NHP[A]} http://c0.example.com:16992/back)\" = \
       'amtsim c0.example.com $(uuid_of $UC 0) /back' ]"
log "C resumed: A reaches c0 again over a new link"

# ------------------------------------------------ Redis down, then back empty
stop_redis
for n in A C; do wait_node_log $n "redis connection lost"; done
body=$(via A socks http://c1.example.com:16992/redis-down) || fail "c1 through A with redis down"
[ "$body" = "amtsim c1.example.com $(uuid_of $UC 1) /redis-down" ] || fail "redis down: '$body'"
log "redis down: A still routes to c1 on C from its directory"
start_redis
wait_for $((10 * SLOW)) "7 devices back in the new redis" dev_keys_are 7
wait_for $((10 * SLOW)) "node links back in the leases" sh -c \
    "redis-cli -s '$SOCK' GET mpsd:node:nodeB | grep -q ' 127.0.0.1:'"
# Redis holding B's entries is not C's directory holding them: C's scan on reconnecting may
# precede B's registrations, and their events precede C's new subscription; the rescan that
# follows the subscription brings them in. Wait for C to route, not for Redis.
wait_for $((10 * SLOW)) "C to route to b0 on B after redis came back" sh -c \
    "[ \"\$(curl -q -s --max-time 5 -x http://127.0.0.1:${NHP[C]} http://b0.example.com:16992/redis-back)\" = \
       'amtsim b0.example.com $(uuid_of $UB 0) /redis-back' ]"
log "redis restarted empty: registrations and link addresses back, C routes to b0 on B"

# ------------------------------------------------ kill -9 of node B: its devices move to C
kill -9 "${NPID[B]}"
wait "${NPID[B]}" 2>/dev/null || true
kill "$SIM_b" 2>/dev/null || true
wait "$SIM_b" 2>/dev/null || true
expect_s5 "reply 0x04 closed" A request --device b0.example.com --dport 16994
devices b2 C 'b%d.example.com' 2 $UB
wait_for $((10 * SLOW)) "b0 and b1 now on node C" sh -c \
    "[ \"\$(redis-cli -s '$SOCK' HGET mpsd:dev:$(uuid_of $UB 0):b0.example.com node)\" = nodeC ] &&
     [ \"\$(redis-cli -s '$SOCK' HGET mpsd:dev:$(uuid_of $UB 1):b1.example.com node)\" = nodeC ]"
# A learns each moved device from its own registration event: wait for both, in any order
for i in 0 1; do
    wait_for $((10 * SLOW)) "A reaches b$i on C" sh -c \
        "[ \"\$(curl -q -s --max-time 5 -x http://127.0.0.1:${NHP[A]} http://b$i.example.com:16992/moved)\" = \
           'amtsim b$i.example.com $(uuid_of $UB $i) /moved' ]"
done
expect_s5 "ok" A echo --device b0.example.com --dport 16994 --bytes 5000
log "kill -9 of B: while gone 0x04; its devices reconnected to C and are reached through A as themselves"

for n in A C D; do
    use_node $n
    stop_mpsd
done
