#!/bin/bash
# deb.sh - the Debian packages end to end: build them from a clean copy of HEAD, lintian (no E:,
# no W:), install them, `mpsd -t` on the installed default, then run /usr/sbin/mpsd exactly as
# mpsd.service would (user mpsd, ambient CAP_NET_BIND_SERVICE, NOTIFY_SOCKET) and check it
# binds 443 unprivileged, serves amtsim devices over TLS with the installed dev PKI and the
# generated password, reloads on SIGHUP with every tunnel kept, and stops with DISCONNECT 11.
# SPDX-License-Identifier: Apache-2.0
#
# Not part of `make check`: it installs packages system-wide and needs root and the fixed
# ports of the default configuration (443, 16982, 8080, 8090, 7793). CI runs it (.ci/run).
#
# Environment:
#   EXPECT_SD_NOTIFY=1|auto|0  READY/RELOADING/STOPPING checks: 1 (default) requires them;
#                              auto skips them with one line when the daemon sends no READY=1
#                              at all (a build without libsystemd); 0 skips them
#   DEB_CHECK=1                run make check inside the package build (default: nocheck, CI
#                              runs the test suite on its own)
#   KEEP=1                     keep the temp directory (build log, packages, daemon log)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
EXPECT_SD_NOTIFY=${EXPECT_SD_NOTIFY:-1}
start=$SECONDS
T=$(mktemp -d "${TMPDIR:-/tmp}/mpsd-deb.XXXXXX")
PIDS=()

log() { echo "deb: $*"; }
fail() {
    echo "FAIL: deb: $*"
    if [ -s "$T/mpsd.log" ]; then
        echo "---- last 30 lines of the daemon's log"
        tail -n 30 "$T/mpsd.log"
    fi
    exit 1
}
cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
[ "$(id -u)" = 0 ] || { echo "SKIP: deb.sh installs packages: run it as root"; exit 77; }
step() { log "== $* ($((SECONDS - start)) s)"; }

# ------------------------------------------------------------------------------ 1. build
step "1/5 build from a clean copy of HEAD"
missing=()
for p in dpkg-dev debhelper lintian fakeroot git python3 util-linux iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p "$T/src"
git -C "$top" archive --format=tar HEAD | tar -x -C "$T/src"
cd "$T/src"
# Build-Depends, as a fresh machine would have to install them.
unmet=$(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
    sed -e 's/([^)]*)//g' -e 's/<[^>]*>//g' -e 's/|[^ ]*//g') || true
if [ -n "$unmet" ]; then
    log "installing build dependencies: $unmet"
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $unmet >/dev/null
fi
opts="parallel=$(nproc)"
[ "${DEB_CHECK:-0}" = 1 ] || opts="nocheck $opts"
DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1 ||
    { tail -n 60 "$T/build.log"; fail "dpkg-buildpackage failed (log above)"; }
cd "$T"
changes=$(ls "$T"/mpsd_*.changes)
debs=("$T"/*.deb)
log "built: $(cd "$T" && echo *.deb)"
for d in "${debs[@]}"; do
    if dpkg-deb -c "$d" | grep '\.la$' >/dev/null; then fail "$d ships a .la file"; fi
done
grep -q "fvisibility\|fPIC" <(dpkg-deb --fsys-tarfile "$T"/libmpsd-dev_*.deb |
    tar -xO --wildcards '*/mpsd-module.pc') && fail "mpsd-module.pc Cflags carry code flags"

# ---------------------------------------------------------------------------- 2. lintian
step "2/5 lintian"
lintian --info --display-info "$changes" >"$T/lintian.log" 2>&1 || true
if grep -q '^[EW]: ' "$T/lintian.log"; then
    grep '^[EW]: ' "$T/lintian.log"
    fail "lintian reports errors or warnings"
fi
grep -q "^internal error\|^error:" "$T/lintian.log" && fail "lintian failed: $(cat "$T/lintian.log")"
log "lintian: no E:, no W: ($(grep -c '^I: ' "$T/lintian.log" || true) I: lines, see the report)"
grep '^I: ' "$T/lintian.log" | sed 's/^/deb:   /' | sort -u || true

# ---------------------------------------------------------------------------- 3. install
step "3/5 install"
# A clean install over whatever a previous run left (/etc/mpsd/tls survives a purge).
dpkg --purge mpsd-soap mpsd libmpsd-dev mpsd-tools >/dev/null 2>&1 || true
if ! dpkg -i "${debs[@]}" >"$T/dpkg.log" 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq >>"$T/dpkg.log" 2>&1 ||
        { cat "$T/dpkg.log"; fail "dpkg -i failed"; }
fi
for p in mpsd mpsd-soap mpsd-tools libmpsd-dev; do
    dpkg-query -W -f='${Status}' "$p" | grep -q "ok installed" || fail "$p is not installed"
done
getent passwd mpsd >/dev/null || fail "no user mpsd"
[ -s /etc/mpsd/amtuser.password ] || fail "no generated password in /etc/mpsd/amtuser.password"
[ "$(stat -c %a:%U:%G /etc/mpsd/amtuser.password)" = 600:root:root ] ||
    fail "amtuser.password: $(stat -c %a:%U:%G /etc/mpsd/amtuser.password)"
[ "$(stat -c %a:%U:%G /etc/mpsd/amt-users.txt)" = 640:root:mpsd ] ||
    fail "amt-users.txt: $(stat -c %a:%U:%G /etc/mpsd/amt-users.txt)"
grep -q '^amtuser:\$6\$' /etc/mpsd/amt-users.txt || fail "no hashed amtuser in amt-users.txt"
[ "$(stat -c %a:%G /etc/mpsd/tls/server.key)" = 640:mpsd ] ||
    fail "server.key: $(stat -c %a:%U:%G /etc/mpsd/tls/server.key)"
[ "$(stat -c %a /etc/mpsd/tls/ca.key)" = 600 ] || fail "ca.key is readable by others than root"
PASSWORD=$(cat /etc/mpsd/amtuser.password)
log "installed; password and PKI made by postinst, modes as expected"
out=$(mpsd -t -c /etc/mpsd/mps.conf 2>&1) || fail "mpsd -t on the installed default: $out"
log "mpsd -t -c /etc/mpsd/mps.conf: $(tail -n 1 <<<"$out")"

# ---------------------------------------------------------------- 4. as the unit runs it
step "4/5 /usr/sbin/mpsd as mpsd.service starts it"
UNIT=$(ls /lib/systemd/system/mpsd.service /usr/lib/systemd/system/mpsd.service 2>/dev/null |
    head -n 1)
[ -n "$UNIT" ] || fail "mpsd.service is not installed"
if command -v systemd-analyze >/dev/null; then
    out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$UNIT" 2>&1) ||
        fail "systemd-analyze verify $UNIT: $out"
fi
read -r -a EXEC <<<"$(sed -n 's/^ExecStart=//p' "$UNIT")"
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
[ "$(unit_value User)" = mpsd ] && [ "$(unit_value AmbientCapabilities)" = CAP_NET_BIND_SERVICE ] ||
    fail "the unit does not say User=mpsd and AmbientCapabilities=CAP_NET_BIND_SERVICE"
for port in 443 16982 8080 8090 7793 7794; do
    ! ss -Hltn "sport = :$port" | grep -q . || fail "port $port is taken: $(ss -Hltnp "sport = :$port")"
done
SOCK="$T/notify.sock"
python3 "$top/tests/integration/notify_listener.py" "$SOCK" "$T/notify.msgs" \
    --probe 127.0.0.1:443 >"$T/listener.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do grep -q ready "$T/listener.out" && break; sleep 0.1; done
chmod 0755 "$T"
# systemd's RuntimeDirectory=mpsd: where the control socket goes.
install -d -o mpsd -g mpsd -m 0750 /run/mpsd
# What the unit's User=, AmbientCapabilities=, NoNewPrivileges= and LimitNOFILE= amount to;
# systemd also creates /var/lib/mpsd and /var/log/mpsd (postinst did).
NOFILE=$(unit_value LimitNOFILE)
LIMIT=(prlimit --nofile="$NOFILE" --)
if ! prlimit --nofile="$NOFILE" -- true 2>/dev/null; then
    log "LimitNOFILE=$NOFILE cannot be set here (a container?): keeping $(ulimit -Hn)"
    LIMIT=()
fi
"${LIMIT[@]}" setpriv --reuid=mpsd --regid=mpsd --init-groups --inh-caps=+net_bind_service \
    --ambient-caps=+net_bind_service --no-new-privs \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="$SOCK" "${EXEC[@]}" \
    >"$T/mpsd.log" 2>&1 &
MPSD_PID=$!
PIDS+=("$MPSD_PID")
listening() { ss -Hltnp "sport = :443" | grep -q "pid=$MPSD_PID,"; }
for _ in $(seq 200); do
    listening && break
    kill -0 "$MPSD_PID" 2>/dev/null || fail "mpsd exited at start"
    sleep 0.05
done
listening || fail "mpsd does not listen on 443: $(ss -Hltnp "sport = :443")"
uid=$(awk '/^Uid:/ {print $3}' "/proc/$MPSD_PID/status")
[ "$uid" = "$(id -u mpsd)" ] || fail "mpsd runs as uid $uid, not mpsd"
log "listening on 443 as user mpsd (uid $uid), pid $MPSD_PID"

# READY=1 only once 443 accepts (the listener connects to it as soon as READY arrives).
notify=$EXPECT_SD_NOTIFY
if [ "$notify" != 0 ]; then
    for _ in $(seq 100); do grep -q "READY=1" "$T/notify.msgs" 2>/dev/null && break; sleep 0.1; done
    if ! grep -q "READY=1" "$T/notify.msgs" 2>/dev/null; then
        [ "$notify" = auto ] || fail "no READY=1 within 10 s of listening"
        log "SKIP sd_notify checks: the daemon sent no READY=1 (built without libsystemd?)"
        notify=0
    else
        grep -q "^probe 127.0.0.1:443 ok" "$T/notify.msgs" ||
            fail "READY=1 came before 443 accepted: $(cat "$T/notify.msgs")"
        log "READY=1 sent once 443 accepts: $(grep -m 1 READY=1 "$T/notify.msgs")"
    fi
fi

AMTSIM=(amtsim --port 443 --tls-ca /etc/mpsd/tls/ca.pem --tls-name localhost --pass "$PASSWORD"
    --quiet)
out=$(timeout 60 "${AMTSIM[@]}" --count 5 --fqdn 'once%d.example.com' --exit-when-ready 2>&1) ||
    fail "amtsim over TLS: $out"
[ "$out" = "ready 5" ] || fail "amtsim over TLS: $out"
log "5 amtsim devices forwarding over TLS on 443 (installed CA, generated password)"
out=$(timeout 30 amtsim --port 443 --tls-ca /etc/mpsd/tls/ca.pem --pass wrong --quiet \
    --expect-disconnect 15 2>&1) || fail "a wrong password was not refused: $out"

# Tunnels that must survive the reload, then end with DISCONNECT 11 at the stop.
"${AMTSIM[@]}" --count 10 --fqdn 'kept%d.example.com' --ready-file "$T/kept.ready" \
    --expect-disconnect 11 --duration 120 >"$T/kept.out" 2>&1 &
KEPT=$!
PIDS+=("$KEPT")
for _ in $(seq 300); do [ "$(cat "$T/kept.ready" 2>/dev/null)" = 10 ] && break; sleep 0.1; done
[ "$(cat "$T/kept.ready" 2>/dev/null)" = 10 ] || fail "10 devices did not forward"
: >"$T/notify.msgs"
kill -HUP "$MPSD_PID"
for _ in $(seq 100); do grep -q "reload" "$T/mpsd.log" && break; sleep 0.1; done
if [ "$notify" != 0 ]; then
    for _ in $(seq 100); do grep -q "^READY=1" "$T/notify.msgs" && break; sleep 0.1; done
    got=$(grep -o "^RELOADING=1\|^READY=1" "$T/notify.msgs" | tr '\n' ' ')
    [ "$got" = "RELOADING=1 READY=1 " ] || fail "SIGHUP: notifications '$got', not RELOADING=1 READY=1"
    log "SIGHUP: RELOADING=1 then READY=1"
fi
sleep 1
kill -0 "$MPSD_PID" || fail "mpsd died on SIGHUP"
[ "$(cat "$T/kept.ready")" = 10 ] || fail "SIGHUP lost tunnels: $(cat "$T/kept.ready") of 10 left"
log "SIGHUP: all 10 tunnels kept"

# The admin at a shell: mpsctl over the control socket, which only mpsd's account and group
# (and root) may open.
CTL=/run/mpsd/control
[ "$(stat -c %a:%U:%G "$CTL" 2>/dev/null)" = 660:mpsd:mpsd ] ||
    fail "control socket: $(stat -c %a:%U:%G "$CTL" 2>&1)"
n=$(mpsctl devices --json | python3 -c 'import json, sys
print(sum(d["fqdn"].startswith("kept") for d in json.load(sys.stdin)))') ||
    fail "mpsctl devices --json failed"
[ "$n" = 10 ] || fail "mpsctl devices lists $n of the 10 kept devices"
mpsctl devices | grep -q "kept0.example.com" || fail "mpsctl devices (table): $(mpsctl devices 2>&1)"
"${AMTSIM[@]}" --count 1 --fqdn 'victim.example.com' --ready-file "$T/victim.ready" \
    --expect-disconnect 11 --duration 60 >"$T/victim.out" 2>&1 &
VICTIM=$!
PIDS+=("$VICTIM")
for _ in $(seq 300); do [ "$(cat "$T/victim.ready" 2>/dev/null)" = 1 ] && break; sleep 0.1; done
out=$(mpsctl disconnect victim.example.com 2>&1) || fail "mpsctl disconnect: $out"
wait "$VICTIM" || fail "the device did not get DISCONNECT 11: $(cat "$T/victim.out")"
rc=0
nobody_out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups mpsctl devices 2>&1) || rc=$?
[ "$rc" = 4 ] || fail "mpsctl as nobody: exit $rc, not 4 (permission refused): $nobody_out"
log "mpsctl as root lists the 10 devices and disconnects one (DISCONNECT 11); nobody is refused"

# ---------------------------------------------------------------------------- 5. stop
step "5/5 stop"
: >"$T/notify.msgs"
kill -TERM "$MPSD_PID"
rc=0
for _ in $(seq 300); do kill -0 "$MPSD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$MPSD_PID" 2>/dev/null && fail "mpsd did not stop within 30 s of SIGTERM"
wait "$MPSD_PID" || rc=$?
[ "$rc" = 0 ] || fail "mpsd exited with status $rc"
wait "$KEPT" || fail "the devices did not all get DISCONNECT 11: $(cat "$T/kept.out")"
grep -q "disconnected 10 11" "$T/kept.out" || fail "devices: $(cat "$T/kept.out")"
log "SIGTERM: exit 0, every device got DISCONNECT 11"
if [ "$notify" != 0 ]; then
    grep -q "^STOPPING=1" "$T/notify.msgs" || fail "no STOPPING=1: $(cat "$T/notify.msgs")"
    log "SIGTERM: STOPPING=1"
fi
if grep -q "refusing to run as root\|\[LM ERROR\]" "$T/mpsd.log"; then
    fail "errors in the daemon's log: $(grep -m 3 "ERROR" "$T/mpsd.log")"
fi
log "PASS in $((SECONDS - start)) s (packages stay installed; dpkg --purge mpsd-soap mpsd" \
    "mpsd-tools libmpsd-dev removes them)"
