#!/bin/bash
# auth.sh - device authentication: auth_file verdicts, "none", retries, no-auth mode, reload.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

write_conf
start_mpsd

# A wrong password gets USERAUTH_FAILURE and then DISCONNECT 15 (MaxAuthAttempts = 1).
expect_apf "disconnect 15" wrong-password
out=$(timeout 20 "$AMTSIM" --port "$AMT_PORT" --pass wrong --expect-disconnect 15 --quiet) ||
    fail "amtsim with a wrong password: $out"
log "amtsim --pass wrong: $out"
assert_log "authentication FAILED for user 'amtuser'"
assert_log "disconnected by mpsd: 15 "

# "none" asks which methods exist: a 14-byte USERAUTH_FAILURE listing "password" (the other
# gateways send 15), after which the password still works.
expect_apf ok none-auth

# Port forwarding before authentication is a protocol error.
expect_apf "disconnect 2" pfwd-before-auth
assert_log "requested port forwarding before authenticating"

# With the default MaxAuthAttempts a retry is impossible.
expect_apf "disconnect 15" retry --wrong 1
stop_mpsd

# MaxAuthAttempts = 3: two failures, then the right password, is fine; three are not.
CORE_EXTRA="MaxAuthAttempts = 3" write_conf
start_mpsd
expect_apf ok retry --wrong 2
expect_apf "disconnect 15" retry --wrong 3
stop_mpsd

# NeedAuthentication = false: any password goes.
NO_AUTH=1 write_conf
start_mpsd
expect_apf ok handshake --password "anything at all"
out=$(timeout 20 "$AMTSIM" --port "$AMT_PORT" --pass nonsense --exit-when-ready --quiet) ||
    fail "amtsim without authentication: $out"
log "amtsim without authentication: $out"
stop_mpsd

# SIGHUP makes auth_file re-read its file: the new password works, the old one no longer.
write_conf
start_mpsd
expect_apf ok handshake
printf '# rotated\namtuser:N3w-Secret\n' >"$USERS.new"
mv "$USERS.new" "$USERS"
kill -HUP "$MPSD_PID"
# Reload is asynchronous to us: wait for the plugin's "N users from FILE" line to appear twice.
reloaded() { [ "$(grep -c "users from $USERS" "$MPSD_LOG")" -ge 2 ]; }
wait_for $((5 * SLOW)) "auth_file reload after SIGHUP" reloaded
expect_apf ok handshake --password N3w-Secret
expect_apf "disconnect 15" wrong-password --password P@ssw0rd-x
expect_apf "disconnect 15" handshake --password P@ssw0rd
require_alive
stop_mpsd
log "PASS"
