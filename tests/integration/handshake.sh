#!/bin/bash
# handshake.sh - a device connects, authenticates through auth_file and starts port forwarding.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

write_conf
start_mpsd

# The daemon sends its own PROTOCOLVERSION and takes version + SERVICE_REQUEST back to back
# (apfclient's handshake does exactly that and checks the server's version is 1.x).
expect_apf ok handshake --fqdn apf0.example.com --ports 16992,16994
assert_log "Intel remote client [0-9a-f-]* is now connected\."
assert_log "started port forwarding to address apf0.example.com:16994"

# The project's simulator reaches forwarding too.
out=$(timeout 20 "$AMTSIM" --port "$AMT_PORT" --exit-when-ready --quiet) ||
    fail "amtsim did not reach forwarding: $out"
[ "$out" = "ready 1" ] || fail "amtsim printed '$out'"
log "amtsim: $out"
assert_log "is now connected\."
assert_log "started port forwarding to address dev0\.example\.com:16992"

require_alive
stop_mpsd
log "PASS"
