#!/bin/bash
# tls_many.sh - 1000 concurrent TLS devices (amtsim --tls) all reach forwarding; mpsd stays up.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

if ! "$AMTSIM" --help 2>&1 | grep -q -e "--tls"; then
    echo "SKIP: $AMTSIM has no --tls: the 1000-device TLS test needs it"
    exit 77
fi
command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed for the TLS tests"
    exit 77
}
make_certs
# The handshakes of 1000 devices arriving at once queue on one loop: under a sanitizer on a
# loaded 2-core machine the last ones wait longer than the default 10 s.
CONF_EXTRA=$(tls_section "HandshakeTimeout = $((60 * SLOW))s")
write_conf
# 1000 devices' DEBUG lines only slow a sanitizer build down.
sed -i 's/^TraceLevels = .*/TraceLevels = INFO|ERROR|WARNING/' "$CONF"
start_mpsd
TLS_PORT=$(ready_port tls)
N=1000
bg sim "$AMTSIM" --port "$TLS_PORT" --tls --count "$N" --fqdn 'tlsdev%d.example.com' \
    --ports 16992,16994 --quiet --ready-file "$TMPD/sim.ready"
sim=$BG_PID
sim_ready() { [ "$(cat "$TMPD/sim.ready" 2>/dev/null)" = "$N" ]; }
wait_for $((120 * SLOW)) "$N TLS devices forwarding" sim_ready
log "$N TLS devices forwarding"
[ "$(grep -o "started port forwarding to address tlsdev[0-9]*.example.com:16994" "$MPSD_LOG" |
    sort -u | wc -l)" = "$N" ] || fail "not every device reached forwarding in the log"
out=$(apf console-http --device tlsdev999.example.com --dport 16992)
grep -q "^HTTP/1\.1 200 .*| amtsim tlsdev999\.example\.com" <<<"$out" || fail "GET: $out"
log "a console reaches the last device: $out"
kill -0 "$sim" 2>/dev/null || fail "amtsim died: $(tail -5 "$TMPD/sim.err")"
require_alive
stop_mpsd
log "PASS"
