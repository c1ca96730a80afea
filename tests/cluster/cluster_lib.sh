#!/bin/bash
# cluster_lib.sh - what the cluster tests share, on top of tests/integration/lib.sh: their own
# redis-server on a UNIX socket (no port is ever picked), per-node log checks, amtsim device
# groups dialling a node, and the directory as Redis holds it.
# SPDX-License-Identifier: Apache-2.0
#
# A test sources lib.sh, then this; it keeps its nodes in the associative arrays NPID, NLOG,
# NAMT and (when they run socks5) NS5, declared here, under names such as A, B, C.

for t in redis-server redis-cli; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "SKIP: $t is missing (apt-get install redis-server)"
        exit 77
    fi
done
[ -e "$MODDIR/cluster_redis.so" ] || {
    echo "SKIP: cluster_redis was not built (libhiredis-dev)"
    exit 77
}

declare -A NPID NLOG NAMT NS5 NCON NHP
# use_node NAME: lib.sh's helpers (log checks, apf, stop_mpsd) act on node NAME
use_node() {
    MPSD_PID=${NPID[$1]} MPSD_LOG=${NLOG[$1]} AMT_PORT=${NAMT[$1]}
    [ -z "${NCON[$1]:-}" ] || CONSOLE_PORT=${NCON[$1]}
}
# via NODE KIND URL: the body curl gets through NODE's http proxy (KIND http, port NHP) or
# SOCKS5 (socks, port NS5), every wait bounded by T
via() {
    local n=$1 kind=$2 url=$3
    if [ "$kind" = http ]; then
        curl -q -sS --max-time "$T" -x "http://127.0.0.1:${NHP[$n]}" "$url"
    else
        curl -q -sS --max-time "$T" --socks5-hostname "127.0.0.1:${NS5[$n]}" "$url"
    fi
}
# bad_conf EXPECTED-REASON OPTION-LINES...: `mpsd -t` refuses a [module cluster_redis] of
# those lines, saying EXPECTED-REASON
bad_conf() {
    local want=$1 rc=0 out
    shift
    CONF_EXTRA="[module cluster_redis]
$(printf '%s\n' "$@")" write_conf "$TMPD/bad.conf"
    out=$("$MPSD" -t -c "$TMPD/bad.conf" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "mpsd -t accepted: $*"
    grep -q -e "$want" <<<"$out" || fail "mpsd -t on '$*': $out"
}
SOCK="$TMPD/redis.sock"
REDIS_PID=""
rcli() { redis-cli -s "$SOCK" "$@"; }
redis_ready() { [ -S "$SOCK" ] && [ "$(rcli PING 2>/dev/null)" = PONG ]; }
start_redis() { # on the same socket each time: the nodes reconnect to it
    rm -f "$SOCK"
    redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no --dir "$TMPD" \
        >>"$TMPD/redis.log" 2>&1 &
    REDIS_PID=$!
    BG_PIDS+=("$REDIS_PID")
    wait_for $((10 * SLOW)) "redis-server on $SOCK" redis_ready
}
stop_redis() {
    kill -TERM "$REDIS_PID"
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
}

node_log_has() { grep -q -e "$2" "${NLOG[$1]}"; }
wait_node_log() { wait_for "${3:-$((10 * SLOW))}" "node $1: /$2/" node_log_has "$1" "$2"; }
node_log_count() { grep -c -e "$2" "${NLOG[$1]}" || true; }

# devices NAME NODE FQDN_PATTERN COUNT UUID_BASE [AMTSIM-ARGS...]: amtsim devices dialling
# NODE, all forwarding when it returns; their PID in SIM_NAME.
sim_ready() { [ "$(cat "$TMPD/sim.$1.ready" 2>/dev/null)" = "$2" ]; }
devices() {
    local name=$1 node=$2 fq=$3 count=$4 base=$5
    shift 5
    bg "sim.$name" "$AMTSIM" --port "${NAMT[$node]}" --fqdn "$fq" --count "$count" \
        --uuid-base "$base" --keepalive 5 --ready-file "$TMPD/sim.$name.ready" "$@"
    eval "SIM_$name=\$BG_PID"
    wait_for $((20 * SLOW)) "devices $name forwarding" sim_ready "$name" "$count"
}
# uuid_of BASE INDEX: the UUID amtsim gives device INDEX of a group (the base's last bytes + i)
uuid_of() {
    printf '%s%03x' "${1%???}" $((0x${1: -3} + $2))
}

dev_keys() { rcli --scan --pattern 'mpsd:dev:*' | wc -l; }
# entry UUID FQDN FIELD: a field of the device's entry (entries are keyed by UUID and FQDN)
entry() { rcli HGET "mpsd:dev:$1:$2" "$3"; }
dev_keys_are() { [ "$(dev_keys)" = "$1" ]; }
# owner FQDN: the node Redis has for the device (through its fqdn key)
owner() {
    local uuid
    uuid=$(rcli GET "mpsd:fqdn:$1")
    [ -n "$uuid" ] && rcli HGET "mpsd:dev:$uuid:$1" node
}
owner_is() { [ "$(owner "$1")" = "$2" ]; }

# s5 NODE SCENARIO [ARGS]: the project's SOCKS5 client against NODE's socks5 (NS5; every
# network wait bounded by T); its result line.
S5CLIENT="$top_srcdir/tests/integration/socks5client.py"
s5() {
    local n=$1
    shift
    python3 "$S5CLIENT" --port "${NS5[$n]}" --timeout "$T" "$@" || true
}
expect_s5() { # expect_s5 RESULT NODE SCENARIO [ARGS]
    local want=$1 got
    shift
    got=$(s5 "$@")
    [ "$got" = "$want" ] || fail "socks5 via node $1 ($*): got '$got', expected '$want'"
}
