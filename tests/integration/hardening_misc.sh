#!/bin/bash
# hardening_misc.sh - the small ones of issue 17 (item 7): an APF password with a NUL byte
# in it is refused, and an edited Plugin line is not ignored silently on SIGHUP.
# SPDX-License-Identifier: Apache-2.0
#
# 1. "P@ssw0rd\0junk": a C string comparison would take it for the right password. It is
#    refused before any plugin sees it (USERAUTH_FAILURE, then DISCONNECT 15 with the default
#    MaxAuthAttempts, logged; the realm ran no check), and with MaxAuthAttempts = 2 the right
#    password still works on the same session.
# 2. Plugin = auth_file replaced by test_auth and SIGHUP: exactly one WARNING says a restart
#    is needed, and the running chain (auth_file) keeps deciding; SIGHUP again with the file
#    as it was: no warning.
# A bystander device's echo and HTTP exchange keep going throughout.
. "$(dirname "$0")/lib.sh"

[ -e "$MODDIR/http_proxy.so" ] || fail "http_proxy.so is missing from $top_builddir/modules"
[ -e "$MODDIR/test_auth.so" ] || fail "test_auth.so is missing (make check builds it)"
TRACE_LEVELS="INFO|ERROR|WARNING"
T=$((20 * SLOW))
UNUL=8c6a3b2e5d1f4e7a9b0c0000000000a1

CORE_EXTRA="MaxAuthAttempts = 2" CONF_EXTRA="[module http_proxy]
Listen = 127.0.0.1:0" write_conf
cp "$CONF" "$TMPD/mps.conf.orig"
start_mpsd
HP=$(ready_port http_proxy)
bystander_start "$HP"
mpsd_stats
deny_before=$(stats_value "deny")
ok_before=$(stats_value "AMT realm ok")

# ---- 1. a NUL byte in the password
bystander_mark
out=$(apf nul-password --uuid "$UNUL" --wrong 0 --timeout "$T")
[ "$out" = "failure then ok" ] || fail "NUL password, then the right one: '$out'"
log "P@ssw0rd\\0junk refused, the right password accepted next on the same session"
wait_log "authentication FAILED for user 'amtuser': the password holds a NUL byte"
mpsd_stats
deny=$(($(stats_value "deny") - deny_before))
ok=$(($(stats_value "AMT realm ok") - ok_before))
[ "$deny" = 0 ] && [ "$ok" = 1 ] ||
    fail "the realm ran $deny denials and $ok successes: a NUL password reached it ($STATS)"
log "logged, and no plugin ever saw it (AMT realm: $ok ok, $deny deny)"
bystander_wait 1
bystander_check
stop_mpsd

# With the default MaxAuthAttempts (1): USERAUTH_FAILURE, then DISCONNECT 15.
CONF_EXTRA="[module http_proxy]
Listen = 127.0.0.1:0" write_conf
cp "$CONF" "$TMPD/mps.conf.orig"
start_mpsd
HP=$(ready_port http_proxy)
bystander_start "$HP"
out=$(apf nul-password --uuid "$UNUL" --wait $((10 * SLOW)) --timeout "$T")
[ "$out" = "failure disconnect 15" ] || fail "NUL password, MaxAuthAttempts 1: '$out'"
wait_log "disconnected by mpsd: 15 INVALID_CREDENTIALS: too many failed authentications"
log "P@ssw0rd\\0junk with MaxAuthAttempts 1: $out"

# ---- 2. Plugin changed, then SIGHUP
printf 'other:0th3r\n' >"$TMPD/other-users.txt"
sed -e 's/^Plugin = auth_file$/Plugin = test_auth/' \
    -e "s|^PluginParameters = file $USERS\$|PluginParameters = user other pass 0th3r|" \
    "$TMPD/mps.conf.orig" >"$CONF"
grep -q '^Plugin = test_auth$' "$CONF" || fail "the edited configuration: $(cat "$CONF")"
RESTART="reload: .*\[AMT_Authenticate\].* changed in $CONF: a restart is needed"
hup() { # hup N: SIGHUP, wait until the N-th reload has run to its end (auth_file reloaded)
    kill -HUP "$MPSD_PID"
    wait_for $((10 * SLOW)) "reload $1" test_reloaded "$1"
}
test_reloaded() { [ "$(grep -c 'reloaded [0-9]* users from' "$MPSD_LOG" || true)" -ge "$1" ]; }
bystander_mark
hup 1
warned=$(grep -c "$RESTART" "$MPSD_LOG" || true)
[ "$warned" = 1 ] || fail "$warned WARNINGs about the changed [AMT_Authenticate], expected 1"
log "logged once: $(grep -o "reload: .*restart is needed.*" "$MPSD_LOG")"
grep "$RESTART" "$MPSD_LOG" | grep -q '\[LM WARNING\]' || fail "not a WARNING"
# The running chain (auth_file) still decides.
expect_apf ok handshake --uuid 8c6a3b2e5d1f4e7a9b0c0000000000a2 --fqdn still.example.com
expect_apf "disconnect 15" handshake --uuid 8c6a3b2e5d1f4e7a9b0c0000000000a3 --user other \
    --password 0th3r --fqdn new.example.com
log "auth_file still decides: amtuser gets in, test_auth's user does not"
# The file as it was: nothing to report.
cp "$TMPD/mps.conf.orig" "$CONF"
hup 2
warned=$(grep -c "$RESTART" "$MPSD_LOG" || true)
[ "$warned" = 1 ] || fail "SIGHUP with an unchanged file warned again ($warned)"
log "SIGHUP with the file as it runs: no warning"
bystander_wait 1
bystander_check
require_alive
stop_mpsd
log "PASS"
