#!/bin/bash
# service.sh - core/service.c without the server (tests/service/service_probe): sd_notify
# messages to a Python stand-in for systemd, the watchdog and status timers, the PID file and
# its lock, the privilege drop and the capabilities it clears; systemd-analyze verify on the
# unit file.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

PROBE="$top_builddir/tests/service/service_probe"
LISTENER="$top_srcdir/tests/integration/notify_listener.py"
[ -x "$PROBE" ] || fail "$PROBE is missing (make check builds it)"

# ---------------------------------------------------------------------- 1. notifications
SOCK="$TMPD/notify.sock"
MSGS="$TMPD/notify.msgs"
bg listener python3 "$LISTENER" "$SOCK" "$MSGS"
wait_for $((10 * SLOW)) "the notify listener" grep -q ready "$TMPD/listener.out"
supported=$(NOTIFY_SOCKET="$SOCK" "$PROBE" notify) || fail "service_probe notify failed"
if [ "$supported" = "supported yes" ]; then
    expected="READY=1 STATUS=listening on 127.0.0.1:4433
STATUS=3 devices connected
RELOADING=1 STATUS=reloading MONOTONIC_USEC=N
READY=1
STOPPING=1 STATUS=stopping"
    # The listener writes what it received; counted at every try, not once at the call.
    msgs_at_least() { [ "$(cat "$MSGS" 2>/dev/null | wc -l)" -ge "$1" ]; }
    wait_for $((5 * SLOW)) "5 notifications" msgs_at_least 5
    got=$(sed 's/MONOTONIC_USEC=[0-9][0-9]*/MONOTONIC_USEC=N/' "$MSGS")
    [ "$got" = "$expected" ] || fail "notifications: got
$got
expected
$expected"
    log "READY/STATUS/RELOADING/READY/STOPPING arrive in order"
    # Without NOTIFY_SOCKET every call is a quiet no-op.
    out=$(env -u NOTIFY_SOCKET "$PROBE" notify 2>&1) || fail "without NOTIFY_SOCKET: $out"
    [ "$out" = "supported yes" ] || fail "without NOTIFY_SOCKET: $out"

    # ------------------------------------------------------ 2. watchdog and status timers
    : >"$MSGS"
    out=$(NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=400000 "$PROBE" timers 5600 2>&1) ||
        fail "timers: $out"
    grep -q "^watchdog 1" <<<"$out" || fail "the watchdog did not start: $out"
    grep -q "WATCHDOG=1 every 200 ms" <<<"$out" || fail "watchdog interval: $out"
    sleep 0.2
    n=$(grep -c '^WATCHDOG=1$' "$MSGS" || true)
    # 5.6 s at 200 ms: 28 pings, the first at once; allow for a loaded machine.
    [ "$n" -ge 20 ] && [ "$n" -le 30 ] || fail "$n WATCHDOG=1 pings in 5.6 s, not about 28"
    [ "$(grep -c '^STATUS=7 devices connected$' "$MSGS")" = 1 ] ||
        fail "status timer: $(grep STATUS "$MSGS")"
    log "watchdog: $n pings at half of WATCHDOG_USEC; STATUS sent once for an unchanged count"
    # WATCHDOG_PID naming another process: the watchdog is not ours.
    out=$(NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=400000 WATCHDOG_PID=1 "$PROBE" timers 10 2>&1) ||
        fail "timers with another WATCHDOG_PID: $out"
    grep -q "^watchdog 0" <<<"$out" || fail "WATCHDOG_PID=1 started a watchdog: $out"
    log "no watchdog for another WATCHDOG_PID"
else
    log "built without libsystemd: notifications are no-ops (checked: the probe exits 0)"
fi

# ------------------------------------------------------------------------ 3. PID file
PIDF="$TMPD/mpsd.pid"
bg holder "$PROBE" pidfile "$PIDF" 1500
holder=$BG_PID
wait_for $((10 * SLOW)) "the PID file" grep -q written "$TMPD/holder.out"
[ "$(cat "$PIDF")" = "$holder" ] || fail "PID file holds '$(cat "$PIDF")', not $holder"
out=$("$PROBE" pidfile "$PIDF" 0 2>&1) && fail "a second daemon took the locked PID file: $out"
grep -q "locked by another running mpsd" <<<"$out" || fail "second daemon: $out"
[ "$(cat "$PIDF")" = "$holder" ] || fail "the second daemon changed the PID file"
bg_wait "$holder" 10 || fail "the PID file holder failed"
[ ! -e "$PIDF" ] || fail "the PID file is left after exit"
echo 99999 >"$PIDF" # left by a crash: not locked, so taken over
out=$("$PROBE" pidfile "$PIDF" 0 2>&1) || fail "a stale PID file was refused: $out"
log "PID file: written, locked against a second daemon, removed at exit, stale one replaced"

# ------------------------------------------------------------------- 4. privilege drop
if [ "$(id -u)" = 0 ]; then
    out=$("$PROBE" drop - 2>&1) && fail "running as root without User was allowed: $out"
    grep -q "refusing to run as root" <<<"$out" || fail "root without User: $out"
    out=$("$PROBE" drop - - allow-root 2>&1) || fail "AllowRoot: $out"
    grep -q "running as root (AllowRoot = true)" <<<"$out" || fail "AllowRoot: $out"
    grep -q "^uid 0 euid 0" <<<"$out" || fail "AllowRoot: $out"
    out=$("$PROBE" drop root 2>&1) && fail "User = root was allowed: $out"
    out=$("$PROBE" drop no-such-user-mpsd 2>&1) && fail "an unknown user was accepted: $out"
    grep -q "no such user" <<<"$out" || fail "unknown user: $out"
    nuid=$(id -u nobody)
    ngid=$(id -g nobody)
    out=$("$PROBE" drop nobody 2>&1) || fail "drop to nobody: $out"
    grep -q "^uid $nuid euid $nuid gid $ngid egid $ngid " <<<"$out" || fail "drop: $out"
    grep -q "CapEff:	0000000000000000" <<<"$out" || fail "capabilities left: $out"
    grep -q "dropped privileges: now user nobody" <<<"$out" || fail "drop: $out"
    dgid=$(getent group daemon | cut -d: -f3)
    out=$("$PROBE" drop nobody daemon 2>&1) || fail "drop to nobody:daemon: $out"
    grep -q "^uid $nuid euid $nuid gid $dgid egid $dgid groups 1 " <<<"$out" ||
        fail "drop with Group: $out"
    log "root: refused without User, AllowRoot warns, User/Group switch verified"
    # As systemd starts it: already the user, with CAP_NET_BIND_SERVICE as an ambient
    # capability; the drop keeps the ids and clears the capability.
    if command -v setpriv >/dev/null 2>&1; then
        SP=(setpriv --reuid="$nuid" --regid="$ngid" --clear-groups
            --inh-caps=+net_bind_service --ambient-caps=+net_bind_service)
        before=$("${SP[@]}" grep CapAmb /proc/self/status)
        grep -q "CapAmb:	0000000000000400" <<<"$before" || fail "setpriv: $before"
        out=$("${SP[@]}" "$PROBE" drop nobody 2>&1) || fail "drop as nobody: $out"
        grep -q "^uid $nuid euid $nuid " <<<"$out" || fail "drop as nobody: $out"
        for c in CapInh CapPrm CapEff CapAmb; do
            grep -q "$c:	0000000000000000" <<<"$out" || fail "$c left after the drop: $out"
        done
        grep -q "capabilities cleared" <<<"$out" || fail "no 'capabilities cleared': $out"
        out=$("${SP[@]}" "$PROBE" drop daemon 2>&1) && fail "nobody became daemon: $out"
        grep -q "only root can switch" <<<"$out" || fail "nobody -> daemon: $out"
        log "started as nobody with ambient CAP_NET_BIND_SERVICE: capability cleared"
    fi
else
    out=$("$PROBE" drop - 2>&1) || fail "drop without User as $(id -un): $out"
    out=$("$PROBE" drop root 2>&1) && fail "a non-root process claimed to become root: $out"
    log "not root: the privilege switch itself is not tested"
fi

# ----------------------------------------------------------------------- 5. unit file
UNIT="$top_builddir/contrib/systemd/mpsd.service"
[ -f "$UNIT" ] || fail "$UNIT is missing (make builds it)"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit as installed, pointing at this build's binary (the installed path may not
    # exist yet); verify needs the file to be named like the unit.
    mkdir -p "$TMPD/unit"
    sed -e "s|^ExecStart=[^ ]*|ExecStart=$MPSD|" -e "s|^ExecReload=[^ ]*/mpsd |ExecReload=$MPSD |" \
        "$UNIT" >"$TMPD/unit/mpsd.service"
    out=$(cd "$TMPD/unit" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify \
        --man=no ./mpsd.service 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify said: $out"
    log "systemd-analyze verify: clean"
else
    log "systemd-analyze not installed: unit not verified"
fi
log "PASS"
