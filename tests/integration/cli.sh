#!/bin/bash
# cli.sh - command line: -V, -t on good and bad configurations, --list-options, busy port.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

# check_bad NAME WANT_REGEX: `mpsd -t` on $TMPD/NAME.conf exits 1 and prints WANT_REGEX.
check_bad() {
    local name=$1 want=$2 out rc=0
    out=$("$MPSD" -t -c "$TMPD/$name.conf" 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "mpsd -t on $name.conf exited $rc, expected 1; output: $out"
    grep -q -e "$want" <<<"$out" || fail "mpsd -t on $name.conf: no /$want/ in: $out"
    log "-t $name.conf: exit 1, /$want/"
}

# -V: version and module ABI.
out=$("$MPSD" -V) || fail "mpsd -V failed"
grep -q "^mpsd [0-9][0-9.]*" <<<"$out" || fail "mpsd -V printed: $out"
grep -q "module ABI 1\.1" <<<"$out" || fail "mpsd -V lacks the module ABI: $out"
log "-V: $out"

# -t on the test configuration.
write_conf
out=$("$MPSD" -t -c "$CONF" 2>&1) || fail "mpsd -t on a good configuration failed: $out"
log "-t good configuration: exit 0"

# Errors are reported as file:line:, on the line at fault. write_conf's layout is fixed: line
# 1 is a comment, 2 [core], 3 Listen, 4 ReadyFile, 5 ModulePath, 6 TraceLevels, then
# CORE_EXTRA.
CORE_EXTRA="BogusKey = 1" write_conf "$TMPD/unknown-key.conf"
check_bad unknown-key "unknown-key\.conf:7: .*BogusKey"

CONF_EXTRA=$'[NoSuchSection]\nKey = 1' write_conf "$TMPD/unknown-section.conf"
line=$(grep -n -F "[NoSuchSection]" "$TMPD/unknown-section.conf" | cut -d: -f1)
check_bad unknown-section "unknown-section\.conf:$line: .*NoSuchSection"

# The older key in place of Listen (both in one section is an error of its own).
write_conf "$TMPD/bad-port.conf"
sed -i 's/^Listen = .*/AMTListenPort = 70000/' "$TMPD/bad-port.conf"
check_bad bad-port "bad-port\.conf:3: .*AMTListenPort"
write_conf "$TMPD/bad-listen.conf"
sed -i 's/^Listen = .*/Listen = 127.0.0.1:70000/' "$TMPD/bad-listen.conf"
check_bad bad-listen "bad-listen\.conf:3: .*Listen"

write_conf "$TMPD/no-plugin.conf"
sed -i 's/^Plugin = auth_file$/Plugin = no_such_plugin/' "$TMPD/no-plugin.conf"
line=$(grep -n '^Plugin = no_such_plugin' "$TMPD/no-plugin.conf" | cut -d: -f1)
check_bad no-plugin "no-plugin\.conf:$line: .*no_such_plugin"

# A module built for another ABI major is refused by name, with the reason.
CONF_EXTRA="[module test_bad_major]" write_conf "$TMPD/bad-abi.conf"
check_bad bad-abi "test_bad_major.*ABI 2\.0.*1\.1"

# Every error in one run: the admin fixes them all before the restart, not one per try.
CORE_EXTRA=$'BogusKey = 1\nLogFile = '"$TMPD"$'/no/such/dir/mpsd.log' \
    CONF_EXTRA=$'[module socks5]\nListen = 127.0.0.1:0\nAllowedPorts = 16992 abc\nAllowFrom = 10.0.0.0/33\n\n[module sock5]' \
    write_conf "$TMPD/many.conf"
sed -i 's/^Plugin = auth_file$/Plugin = no_such_plugin/' "$TMPD/many.conf"
out=$("$MPSD" -t -c "$TMPD/many.conf" 2>&1) && fail "mpsd -t accepted many.conf: $out"
lines() { grep -n -F "$1" "$TMPD/many.conf" | head -n 1 | cut -d: -f1; }
for want in "many\.conf:7: unknown key 'BogusKey'" \
    "many\.conf:$(lines "Plugin = no_such_plugin"): .*no_such_plugin" \
    "many\.conf:$(lines "AllowedPorts = 16992 abc"): AllowedPorts: \"abc\"" \
    "many\.conf:$(lines "AllowFrom = 10.0.0.0/33"): AllowFrom: \"10.0.0.0/33\"" \
    "many\.conf:$(lines "[module sock5]"): \[module sock5\] .*sock5\.so" \
    "LogFile $TMPD/no/such/dir/mpsd.log cannot be written" \
    "the configuration has errors"; do
    grep -q -e "$want" <<<"$out" || fail "mpsd -t on many.conf: no /$want/ in: $out"
done
log "-t many.conf: all six errors in one run"

# --list-options: the core's keys, and a module's from its option table.
out=$("$MPSD" --list-options core) || fail "--list-options core failed"
grep -q "AMTListenPort" <<<"$out" || fail "--list-options core lacks AMTListenPort: $out"
log "--list-options core lists AMTListenPort"
out=$("$MPSD" --list-options test_good -c "$CONF" 2>&1) || fail "--list-options test_good: $out"
for opt in Greeting Count Enabled Delay Port File; do
    grep -q "^ *$opt " <<<"$out" || fail "--list-options test_good lacks $opt: $out"
done
log "--list-options test_good lists its six options"

# A taken AMT port: the daemon refuses to start (exit 1) instead of running deaf. The holder
# listens on a port of its own choosing (port 0) and says which.
bg holder python3 -c '
import signal, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1)
print("listening %d" % s.getsockname()[1], flush=True)
signal.pause()
'
holder=$BG_PID
wait_port BUSY_PORT "$TMPD/holder.out" "listening " "the port holder"
CORE_LISTEN=127.0.0.1:$BUSY_PORT write_conf
rc=0
out=$(timeout 20 "$MPSD" -c "$CONF" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "mpsd on a taken port exited $rc, expected 1: $out"
grep -qi "address already in use" <<<"$out" || fail "no reason given for the busy port: $out"
log "taken port: exit 1 ($(grep -i 'already in use' <<<"$out" | head -1 | sed 's/^\[[^]]*\] //'))"
kill "$holder" 2>/dev/null || true
log "PASS"
