#!/bin/bash
# lib.sh - shared setup for the integration tests: temp dir, config, start/stop of the real mpsd.
# SPDX-License-Identifier: Apache-2.0
#
# Sourced by every tests/integration/*.sh. Environment:
#   top_builddir, top_srcdir  set by automake's harness; by hand they default to /work/main/build
#                             and the directory two levels above this file
#   KEEP=1                    keep the temp dir (its path is printed)
#   MPSD_VALGRIND=1           run the daemon under valgrind (leaks are errors)
#   AMTSIM                    amtsim binary (default $top_builddir/contrib/amtsim/amtsim)
#   MPSD_NOFILE               start_mpsd runs the daemon under ulimit -n MPSD_NOFILE
#   MPSD_LOGFILE              the LogFile the test's conf names: start_mpsd and the log
#                             checks read it (MPSD_LOG) instead of the daemon's stderr
# Exit statuses follow automake: 0 pass, 1 fail, 77 skip.
#
# Ports. No test picks a port by binding one and releasing it: under load another program takes
# it in between (issue 17). Instead:
#   - mpsd's listeners bind port 0 (write_conf: Listen = 127.0.0.1:0 in [core] and
#     [module test_console]; a test's own sections do the same) and mpsd writes what it bound
#     to its ReadyFile ("LABEL ADDRESS" a line; write_conf names a fresh one). start_mpsd waits
#     for that file and sets AMT_PORT (label core) and CONSOLE_PORT (label test_console).
#   - ready_port LABEL [N] prints the port of the Nth (default first) listener labelled LABEL:
#     core, or a module's name; the Nth line of a module is its Nth listening socket, in the
#     order of the [module NAME] sections and of the addresses in each Listen. ready_addr
#     prints the whole ADDRESS (127.0.0.1:40123, [::1]:40125). Assign them (P=$(ready_port tls
#     2)): set -e ends the test when the listener is missing, which it cannot do for a $(...)
#     inside another command's arguments.
#   - a server of the test's own binds port 0 and reports what it got on a line of its output;
#     wait_port VAR FILE PREFIX WHAT waits for the whole line PREFIX<port> and sets VAR.
#   - reserve_port VAR holds a port of 127.0.0.1 (and ::1) for the rest of the test: bound with
#     SO_REUSEADDR, never listening. Connections to it are refused; programs asking for any
#     free port never get it; a server that sets SO_REUSEADDR (mpsd, gSOAP, Python's
#     http.server) can still bind it and listen. For a port nothing may listen on, for a server
#     stopped and started again on the same port behind one daemon, and for a port a
#     configuration must name before the listener exists.

set -eu

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$LIB_DIR/../.." && pwd)}"
# shellcheck source=../ports.sh
. "$LIB_DIR/../ports.sh"
: "${top_builddir:=/work/main/build}"
export top_srcdir top_builddir

MPSD="$top_builddir/mpsd"
AMTSIM="${AMTSIM:-$top_builddir/contrib/amtsim/amtsim}"
APFCLIENT="$top_srcdir/tests/integration/apfclient.py"
HOSTILE="$top_srcdir/tests/integration/hostile.py"
TEST_NAME=$(basename "$0" .sh)

if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed for the integration tests"
    exit 77
fi
for f in "$MPSD" "$AMTSIM" "$top_builddir/plugins/auth_file/.libs/auth_file.so"; do
    if [ ! -x "$f" ] && [ ! -f "$f" ]; then
        echo "FAIL: $f is missing (build first: make && make check builds the test modules)"
        exit 1
    fi
done

# A sanitizer build is several times slower: scale the generous waits, not the tight ones.
SLOW=1
if grep -q '^SAN_CFLAGS = .*-fsanitize' "$top_builddir/Makefile" 2>/dev/null; then
    SLOW=3
fi

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mpsd-$TEST_NAME.XXXXXX")
MPSD_PID=""
MPSD_LOG="$TMPD/mpsd.log"
MPSD_RUNS=0
BG_PIDS=()

cleanup() {
    local rc=$?
    set +e
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    if [ -n "$MPSD_PID" ] && kill -0 "$MPSD_PID" 2>/dev/null; then
        kill -KILL "$MPSD_PID" 2>/dev/null
        wait "$MPSD_PID" 2>/dev/null
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $TMPD"
    else
        rm -rf "$TMPD"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Module dir: the auth plugin, every built module and test module, found through ModulePath.
MODDIR="$TMPD/modules"
mkdir -p "$MODDIR"
ln -s "$top_builddir/plugins/auth_file/.libs/auth_file.so" "$MODDIR/auth_file.so"
for so in "$top_builddir"/tests/modules/.libs/test_*.so "$top_builddir"/modules/*/.libs/*.so; do
    [ -e "$so" ] && ln -s "$so" "$MODDIR/$(basename "$so")"
done
if [ ! -e "$MODDIR/test_console.so" ]; then
    echo "FAIL: $top_builddir/tests/modules/.libs/test_console.so is missing" \
        "(make tests/modules/test_console.la)"
    exit 1
fi

USERS="$TMPD/amt-users.txt"
printf 'amtuser:P@ssw0rd\n' >"$USERS"
CONSOLE_USERS="$TMPD/console-users.txt"
printf 'consoleuser:C0nsole!\n' >"$CONSOLE_USERS"

# Set by start_mpsd from the ready file (see Ports above).
AMT_PORT=""
CONSOLE_PORT=""
READY_FILE=""
READY_FILES=0
CONF="$TMPD/mps.conf"

log() { echo "$TEST_NAME: $*"; }

fail() {
    echo "FAIL: $TEST_NAME: $*"
    if [ -s "$MPSD_LOG" ]; then
        echo "---- last 40 lines of $MPSD_LOG"
        tail -n 40 "$MPSD_LOG"
        echo "----"
    fi
    exit 1
}

# write_conf [FILE]: the test configuration. CORE_EXTRA: more [core] lines; NO_AUTH=1: no
# device authentication; CONSOLE_AUTH=1: consoles authenticate through auth_file with
# $CONSOLE_USERS (consoleuser:C0nsole!); CONF_EXTRA: appended at the end (more sections);
# TRACE_LEVELS: the TraceLevels (default INFO|ERROR|WARNING|DEBUG).
# CORE_LISTEN, CONSOLE_LISTEN: the Listen of [core] and of [module test_console] (default
# 127.0.0.1:0). Each call names a new ReadyFile, on line 4 ([core] is line 2, Listen line 3).
write_conf() {
    local file=${1:-$CONF}
    READY_FILES=$((READY_FILES + 1))
    {
        echo "# generated by $TEST_NAME"
        echo "[core]"
        echo "Listen = ${CORE_LISTEN:-127.0.0.1:0}"
        echo "ReadyFile = $TMPD/ready.$READY_FILES"
        echo "ModulePath = $MODDIR"
        echo "TraceLevels = ${TRACE_LEVELS:-INFO|ERROR|WARNING|DEBUG}"
        if [ -n "${CORE_EXTRA:-}" ]; then
            printf '%s\n' "$CORE_EXTRA"
        fi
        # The whole suite can run with device tunnels on several loops (docs/workers.md).
        if [ -n "${MPSD_TEST_WORKERS:-}" ]; then
            echo "Workers = $MPSD_TEST_WORKERS"
        fi
        # admin_http serves the control socket; the default path is shared by every daemon.
        case "${CONF_EXTRA:-}" in
        *"[module admin_http]"*) echo "ControlSocket = ${CONTROL_SOCKET:-$TMPD/control}" ;;
        esac
        # Tests run as whoever runs them, root in CI (mpsd refuses root without it).
        echo "AllowRoot = true"
        echo
        echo "[AMT_Authenticate]"
        if [ "${NO_AUTH:-0}" = 1 ]; then
            echo "NeedAuthentication = false"
        else
            echo "NeedAuthentication = true"
            echo "Plugin = auth_file"
            echo "PluginParameters = file $USERS"
        fi
        echo
        echo "[Socks_Authenticate]"
        if [ "${CONSOLE_AUTH:-0}" = 1 ]; then
            echo "NeedAuthentication = true"
            echo "Plugin = auth_file"
            echo "PluginParameters = file $CONSOLE_USERS"
        else
            echo "NeedAuthentication = false"
        fi
        echo
        echo "[module test_console]"
        echo "Listen = ${CONSOLE_LISTEN:-127.0.0.1:0}"
        if [ -n "${CONF_EXTRA:-}" ]; then
            echo
            printf '%s\n' "$CONF_EXTRA"
        fi
    } >"$file"
}

# wait_for TIMEOUT_S WHAT CMD [ARGS]: poll CMD every 50 ms until it succeeds, or fail.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    local end=$((SECONDS + timeout))
    until "$@"; do
        if [ "$SECONDS" -ge "$end" ]; then
            fail "timed out after ${timeout}s waiting for $what"
        fi
        sleep 0.05
    done
}

mpsd_alive() { [ -n "$MPSD_PID" ] && kill -0 "$MPSD_PID" 2>/dev/null; }

log_has() { grep -q -e "$1" "$MPSD_LOG" 2>/dev/null; }

# wait_log PATTERN [TIMEOUT]: the daemon log gets a line matching PATTERN.
wait_log() {
    wait_for "${2:-$((5 * SLOW))}" "log line /$1/" log_has "$1"
}

assert_log() {
    log_has "$1" || fail "log has no line matching /$1/"
    log "log has /$1/"
}

# start_mpsd [CONF]: start the daemon in the background and wait until it listens: its
# ReadyFile (named in CONF's [core]; removed first, so a file of an earlier run never counts) is
# written and the start line is logged (it follows the file: tests check that line at once).
# Sets AMT_PORT and CONSOLE_PORT from the ready file (empty when there is no such listener).
start_mpsd() {
    local conf=${1:-$CONF}
    [ -f "$conf" ] || write_conf
    READY_FILE=$(sed -n 's/^ReadyFile *= *//p' "$conf" | tail -n 1)
    [ -n "$READY_FILE" ] || fail "start_mpsd: $conf has no ReadyFile (tests read the ports there)"
    rm -f "$READY_FILE"
    MPSD_RUNS=$((MPSD_RUNS + 1))
    MPSD_LOG="$TMPD/mpsd.$MPSD_RUNS.log"
    local timeout=$((10 * SLOW))
    if [ "${MPSD_VALGRIND:-0}" = 1 ]; then
        timeout=30
        valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --error-exitcode=99 -q "$MPSD" -c "$conf" >"$MPSD_LOG" 2>&1 &
    elif [ -n "${MPSD_NOFILE:-}" ]; then
        # A descriptor limit of its own (soft and hard: mpsd cannot raise it), for the budget
        # tests; the exec keeps the PID.
        (ulimit -n "$MPSD_NOFILE" && exec "$MPSD" -c "$conf") >"$MPSD_LOG" 2>&1 &
    else
        "$MPSD" -c "$conf" >"$MPSD_LOG" 2>&1 &
    fi
    MPSD_PID=$!
    # MPSD_LOGFILE: the conf's LogFile; stderr (above) keeps only what precedes it.
    MPSD_LOG=${MPSD_LOGFILE:-$MPSD_LOG}
    local end=$((SECONDS + timeout))
    until [ -e "$READY_FILE" ] && log_has "listening for Intel AMT devices"; do
        if ! kill -0 "$MPSD_PID" 2>/dev/null; then
            local rc=0
            wait "$MPSD_PID" || rc=$?
            MPSD_PID=""
            fail "mpsd exited with status $rc during startup"
        fi
        if [ "$SECONDS" -ge "$end" ]; then
            fail "mpsd did not start listening within ${timeout}s"
        fi
        sleep 0.05
    done
    AMT_PORT=$(_ready_find core 1)
    AMT_PORT=${AMT_PORT##*:}
    CONSOLE_PORT=$(_ready_find test_console 1)
    CONSOLE_PORT=${CONSOLE_PORT##*:}
    log "mpsd started (pid $MPSD_PID): $(tr '\n' ',' <"$READY_FILE" | sed 's/,$//; s/,/, /g')"
}

# _ready_find LABEL N: the address of the Nth LABEL line of the ready file; nothing if none.
_ready_find() {
    awk -v label="$1" -v n="$2" '$1 == label && ++seen == n { print $2; exit }' \
        "$READY_FILE" 2>/dev/null || true
}

# ready_addr LABEL [N]: the ADDRESS of the Nth (default first) listener LABEL of the running
# daemon's ready file, e.g. 127.0.0.1:40123 or [::1]:40125; fails the test when there is none.
ready_addr() {
    local addr
    addr=$(_ready_find "$1" "${2:-1}")
    if [ -z "$addr" ]; then
        # On stderr: the caller is usually a $(...) that would swallow the message.
        fail "no listener '$1' number ${2:-1} in the ready file $READY_FILE:" \
            "$(tr '\n' ';' <"$READY_FILE" 2>/dev/null)" >&2
    fi
    echo "$addr"
}

# ready_port LABEL [N]: the port of that listener (see ready_addr).
ready_port() {
    local addr
    addr=$(ready_addr "$@") || exit 1
    echo "${addr##*:}"
}


# wait_port VAR FILE PREFIX WHAT [TIMEOUT]: a server that bound port 0 reports the port it got
# as a line PREFIX<port> in FILE (its output, usually); wait for it and set VAR to the port.
wait_port() {
    wait_for "${5:-$((10 * SLOW))}" "$4 to report its port" port_line "$2" "$3"
    printf -v "$1" '%s' "$FOUND_PORT"
}

# reserve_port VAR: set VAR to a port held for the rest of the test (see Ports above). The
# holder binds 127.0.0.1 and, where the machine has it, ::1 (a name such as localhost may
# resolve to both): a port ::1 has taken already is given up for another one.
RESERVED=0
reserve_port() {
    RESERVED=$((RESERVED + 1))
    bg "reserved.$RESERVED" python3 -c '
import errno, signal, socket
for attempt in range(100):
    v4 = socket.socket()
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind(("127.0.0.1", 0))
    port = v4.getsockname()[1]
    try:
        v6 = socket.socket(socket.AF_INET6)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v6.bind(("::1", port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            v4.close()  # never handed out: not a port the test uses
            continue
    break
else:
    raise SystemExit("no port free on both 127.0.0.1 and ::1 in 100 attempts")
print("reserved %d" % port, flush=True)
signal.pause()
'
    wait_port "$1" "$TMPD/reserved.$RESERVED.out" "reserved " "the port holder for $1"
}

# stop_mpsd: SIGTERM, wait up to 20 s, require exit status 0 (and, under valgrind, no error).
# Sets STOP_SECONDS to how long the daemon took to exit.
stop_mpsd() {
    [ -n "$MPSD_PID" ] || fail "stop_mpsd: mpsd is not running"
    local start end rc=0
    start=$(date +%s%N)
    kill -TERM "$MPSD_PID" 2>/dev/null || fail "mpsd had died before SIGTERM"
    local limit=$((SECONDS + 20))
    while kill -0 "$MPSD_PID" 2>/dev/null; do
        if [ "$SECONDS" -ge "$limit" ]; then
            kill -KILL "$MPSD_PID" 2>/dev/null || true
            fail "mpsd did not exit within 20 s of SIGTERM"
        fi
        sleep 0.05
    done
    wait "$MPSD_PID" || rc=$?
    end=$(date +%s%N)
    MPSD_PID=""
    STOP_SECONDS=$(((end - start) / 1000000000))
    [ "$rc" = 0 ] || fail "mpsd exited with status $rc after SIGTERM"
    # valgrind -q prints only errors, as ==PID== lines; ASan prints ==PID==ERROR.
    if grep -q '^==[0-9]*==' "$MPSD_LOG"; then
        fail "valgrind or a sanitizer reported errors"
    fi
    log "mpsd stopped with status 0"
}

# bg NAME CMD...: run CMD in the background, stdout in $TMPD/NAME.out, stderr in NAME.err;
# its PID is in BG_PID and it is killed at exit if still running.
bg() {
    local name=$1
    shift
    "$@" >"$TMPD/$name.out" 2>"$TMPD/$name.err" &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# bg_wait PID TIMEOUT_S: wait for a background job, killing it after the timeout; its status.
bg_wait() {
    local pid=$1 end=$((SECONDS + $2)) rc=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$end" ]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            return 124
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    return "$rc"
}

# apf SCENARIO [ARGS]: run apfclient against the daemon; prints its result line.
apf() {
    python3 "$APFCLIENT" --port "$AMT_PORT" --cport "$CONSOLE_PORT" "$@" || true
}

# expect_apf RESULT SCENARIO [ARGS]: the scenario's result line is exactly RESULT.
expect_apf() {
    local want=$1 got
    shift
    got=$(apf "$@")
    [ "$got" = "$want" ] || fail "apfclient $*: got '$got', expected '$want'"
    log "apfclient $1: $got"
}

amtsim() {
    "$AMTSIM" --port "$AMT_PORT" "$@"
}

# require_alive: the daemon is still running (did not crash on what the test did).
require_alive() {
    mpsd_alive || fail "mpsd is no longer running"
}

# hostile SCENARIO [ARGS]: run hostile.py (attack clients, see its docstring); its result line.
hostile() {
    python3 "$HOSTILE" --timeout $((10 * SLOW)) "$@" || true
}

# mpsd_stats: SIGUSR1, wait for the statistics line it writes, set STATS to it.
mpsd_stats() {
    local before
    before=$(grep -c '\] statistics: ' "$MPSD_LOG" || true)
    kill -USR1 "$MPSD_PID"
    wait_for $((5 * SLOW)) "the statistics line" _stats_more "$before"
    STATS=$(grep '\] statistics: ' "$MPSD_LOG" | tail -n 1)
}

_stats_more() { [ "$(grep -c '\] statistics: ' "$MPSD_LOG" || true)" -gt "$1" ]; }

# stats_value WORDS: the number after WORDS in STATS, e.g. stats_value "refused by ACL",
# "by limits", "by MaxStartups", "accepting paused", "names refused".
stats_value() {
    local v
    v=$(sed -n "s/.*$1 \([0-9][0-9]*\).*/\1/p" <<<"$STATS")
    [ -n "$v" ] || fail "no '$1 N' in the statistics line: $STATS"
    echo "$v"
}

# ------------------------------------------------------------------------------ the bystander
# An amtsim device (bystander.example.com, HTTP on 16992, echo on 16994) and hostile.py's
# bystander console: each round an echo through test_console and a GET through an
# http_proxy, on connections it keeps open (BYSTANDER_FRESH=1: and on new ones too). Attack
# tests start it first and check at the end that nothing of it ever failed.
BYSTANDER_FQDN=bystander.example.com
BYSTANDER_MARK=0
bystander_start() { # bystander_start HTTP_PROXY_PORT
    bg bystander_sim "$AMTSIM" --port "$AMT_PORT" --fqdn "$BYSTANDER_FQDN" \
        --uuid-base 99999999-8888-7777-6666-000000000000 --ports 16992,16994 --keepalive 5 \
        --ready-file "$TMPD/bystander_sim.ready"
    BYSTANDER_SIM=$BG_PID
    wait_for $((20 * SLOW)) "the bystander device forwarding" _bystander_sim_ready
    rm -f "$TMPD/bystander.stop" "$TMPD/bystander.status"
    local fresh=()
    [ "${BYSTANDER_FRESH:-0}" = 1 ] && fresh=(--fresh)
    bg bystander python3 "$HOSTILE" bystander --cport "$CONSOLE_PORT" --hport "$1" \
        --device "$BYSTANDER_FQDN" --timeout $((10 * SLOW)) --interval 0.1 "${fresh[@]}" \
        --status-file "$TMPD/bystander.status" --stop-file "$TMPD/bystander.stop"
    BYSTANDER_PID=$BG_PID
    BYSTANDER_MARK=0
    bystander_wait 1
    log "bystander up: $(cat "$TMPD/bystander.status")"
}
_bystander_sim_ready() { [ "$(cat "$TMPD/bystander_sim.ready" 2>/dev/null)" = 1 ]; }
_bystander_field() { # _bystander_field NAME: rounds, echo, http or fail from the status file
    local v
    v=$(sed -n "s/.*$1 \([0-9]*\).*/\1/p" "$TMPD/bystander.status" 2>/dev/null)
    echo "${v:-0}"
}
_bystander_rounds_at_least() {
    kill -0 "$BYSTANDER_PID" 2>/dev/null ||
        fail "the bystander console exited: $(tail -n 5 "$TMPD/bystander.err")"
    [ "$(_bystander_field fail)" = 0 ] ||
        fail "the bystander failed: $(tail -n 5 "$TMPD/bystander.err")"
    [ "$(_bystander_field rounds)" -ge "$1" ]
}
# bystander_mark: remember the rounds done so far (bystander_wait counts from here).
bystander_mark() { BYSTANDER_MARK=$(_bystander_field rounds); }
# bystander_wait N: N more rounds since the mark, every one without a failure (call it while
# an attack runs: it proves the bystander worked through it).
bystander_wait() {
    wait_for $((30 * SLOW)) "$1 bystander rounds" _bystander_rounds_at_least $((BYSTANDER_MARK + $1))
    bystander_mark
}
# bystander_check: stop the bystander console, require that it never failed and that the
# device kept its one tunnel all along.
bystander_check() {
    touch "$TMPD/bystander.stop"
    bg_wait "$BYSTANDER_PID" $((30 * SLOW)) || fail "the bystander console did not stop: \
$(tail -n 5 "$TMPD/bystander.err")"
    local st
    st=$(cat "$TMPD/bystander.out")
    [ "$(_bystander_field fail)" = 0 ] && [[ $st = *" fail 0" ]] ||
        fail "the bystander failed ($st): $(tail -n 5 "$TMPD/bystander.err")"
    [ "$(_bystander_field echo)" -gt 0 ] && [ "$(_bystander_field http)" -gt 0 ] ||
        fail "the bystander did nothing: $st"
    kill -0 "$BYSTANDER_SIM" 2>/dev/null || fail "the bystander device exited: \
$(tail -n 5 "$TMPD/bystander_sim.err")"
    kill -TERM "$BYSTANDER_SIM"
    bg_wait "$BYSTANDER_SIM" $((10 * SLOW)) || fail "the bystander device did not stop"
    grep -q "^connected 1, forwarding 1, disconnected 0$" "$TMPD/bystander_sim.out" ||
        fail "the bystander device lost its tunnel: $(cat "$TMPD/bystander_sim.out")"
    log "bystander never failed: $st, its device kept its tunnel"
}

# ------------------------------------------------------------------------------ TLS helpers

# make_certs: a PKI in $CERTS for the TLS tests. The normal set comes from contrib/mpsd-certs
# (openssl by hand if it is missing): ca.pem/ca.key, server-chain.pem (leaf + CA), server.pem
# (leaf only), server.key, devices/dev-cert.example.com.pem/.key (client certificate). The
# broken and spare sets are made here with openssl:
#   other-ca.pem, other-device.pem/.key  a client certificate from a CA mpsd does not trust
#   server2-chain.pem/server2.key         a second valid server certificate (reload)
#   expired-chain.pem                     an expired leaf (server.key) + CA
#   disorder-chain.pem                    CA first, then the leaf
#   garbage.pem                           no PEM at all
CERTS=""
make_certs() {
    CERTS="$TMPD/certs"
    local mc="$top_srcdir/contrib/mpsd-certs" o="$TMPD/openssl.log"
    if [ -x "$mc" ]; then
        "$mc" --device dev-cert.example.com "$CERTS" >"$o" 2>&1 || fail "mpsd-certs: $(cat "$o")"
    else
        mkdir -p "$CERTS/devices"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" \
            -subj "/CN=mpsd test CA" -days 30 -addext basicConstraints=critical,CA:true \
            -addext keyUsage=critical,keyCertSign,cRLSign >"$o" 2>&1 || fail "CA: $(cat "$o")"
        tls_issue server localhost 30 "$CERTS/server"
        cat "$CERTS/server.pem" "$CERTS/ca.pem" >"$CERTS/server-chain.pem"
        tls_issue client dev-cert.example.com 30 "$CERTS/devices/dev-cert.example.com"
    fi
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CERTS/other-ca.key" \
        -out "$CERTS/other-ca.pem" -subj "/CN=unknown CA" -days 30 \
        -addext basicConstraints=critical,CA:true >"$o" 2>&1 || fail "other CA: $(cat "$o")"
    tls_issue client other-device.example.com 30 "$CERTS/other-device" other-ca
    tls_issue server localhost 30 "$CERTS/server2"
    cat "$CERTS/server2.pem" "$CERTS/ca.pem" >"$CERTS/server2-chain.pem"
    tls_issue server localhost expired "$CERTS/expired" ca "$CERTS/server.key"
    cat "$CERTS/expired.pem" "$CERTS/ca.pem" >"$CERTS/expired-chain.pem"
    cat "$CERTS/ca.pem" "$CERTS/server.pem" >"$CERTS/disorder-chain.pem"
    printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' \
        >"$CERTS/garbage.pem"
}

# tls_issue server|client|node CN DAYS|expired OUT [CA [KEY]]: OUT.pem (and OUT.key unless KEY
# is given) signed by $CERTS/CA.pem (default ca); expired: valid for a day in 2020. node: both
# serverAuth and clientAuth (a cluster node's link certificate).
tls_issue() {
    local kind=$1 cn=$2 days=$3 out=$4 ca=${5:-ca} key=${6:-} o="$TMPD/openssl.log"
    local eku=serverAuth
    [ "$kind" = client ] && eku=clientAuth
    [ "$kind" = node ] && eku=serverAuth,clientAuth
    if [ -z "$key" ]; then
        key="$out.key"
        openssl genrsa -out "$key" 2048 >"$o" 2>&1 || fail "key $key: $(cat "$o")"
    fi
    openssl req -new -key "$key" -subj "/CN=$cn" -out "$out.csr" >"$o" 2>&1 ||
        fail "CSR $out: $(cat "$o")"
    local ext="$out.ext" db="$TMPD/ca-db"
    printf 'basicConstraints=CA:false\nextendedKeyUsage=%s\nsubjectAltName=DNS:%s,IP:127.0.0.1\n' \
        "$eku" "$cn" >"$ext"
    if [ "$days" != expired ]; then
        openssl x509 -req -in "$out.csr" -CA "$CERTS/$ca.pem" -CAkey "$CERTS/$ca.key" \
            -CAcreateserial -days "$days" -sha256 -extfile "$ext" -out "$out.pem" >"$o" 2>&1 ||
            fail "certificate $out: $(cat "$o")"
        return
    fi
    # openssl x509 cannot back-date; openssl ca can, given a minimal database.
    mkdir -p "$db"
    : >"$db/index.txt"
    [ -e "$db/serial" ] || echo 1000 >"$db/serial"
    printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n' \
        "$db" "$db" >"$db/ca.cnf"
    printf 'serial = %s/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' \
        "$db" >>"$db/ca.cnf"
    openssl ca -batch -config "$db/ca.cnf" -cert "$CERTS/$ca.pem" -keyfile "$CERTS/$ca.key" \
        -startdate 20200101000000Z -enddate 20200102000000Z -extfile "$ext" -notext \
        -in "$out.csr" -out "$out.pem" >"$o" 2>&1 || fail "expired certificate: $(cat "$o")"
}

# tls_section [LINE...]: a [module tls] section listening on TLS_LISTEN (default 127.0.0.1:0:
# its port is then ready_port tls N for the Nth such section) serving
# $CERTS/server-chain.pem; the LINEs are added (and override nothing: give only new keys or
# pass CERT=/KEY= through TLS_CERT/TLS_KEY).
tls_section() {
    echo "[module tls]"
    echo "Listen = ${TLS_LISTEN:-127.0.0.1:0}"
    echo "Certificate = ${TLS_CERT:-$CERTS/server-chain.pem}"
    echo "PrivateKey = ${TLS_KEY:-$CERTS/server.key}"
    local l
    for l in "$@"; do
        echo "$l"
    done
    echo
}

# s_client PORT [ARGS...]: openssl s_client to 127.0.0.1:PORT without SNI (as AMT), closing at
# once; its output (both streams) on stdout. Never fails by itself.
s_client() {
    local port=$1
    shift
    echo Q | timeout $((10 * SLOW)) openssl s_client -connect "127.0.0.1:$port" -noservername \
        "$@" 2>&1 | tr -d '\000' || true
}

# tls_fingerprint PORT: the SHA-256 fingerprint of the certificate served on PORT.
tls_fingerprint() {
    s_client "$1" | openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}

# apf_tls SCENARIO [ARGS]: apfclient over TLS to $TLS_PORT (stderr: $TMPD/apf_tls.err).
apf_tls() {
    python3 -W ignore::DeprecationWarning "$APFCLIENT" --port "$TLS_PORT" --cport "$CONSOLE_PORT" \
        --tls "$@" 2>"$TMPD/apf_tls.err" || true
}
