#!/bin/bash
# tls_config.sh - the tls module's files: start-up checks (key mismatch, expired, chain order,
# missing file, leaf-only chain) and certificate reload on SIGHUP with tunnels up.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed for the TLS tests"
    exit 77
}
make_certs

# ---- 7. start-up checks: the start is refused, naming the file and the problem. mpsd -t
# checks only the syntax today (modules are not initialised): if it refuses, it must say why.
# refused NAME CERT KEY PATTERN: a configuration with these files is refused with PATTERN.
refused() {
    local name=$1 conf="$TMPD/$1.conf" rc=0
    CONF_EXTRA=$(TLS_CERT=$2 TLS_KEY=$3 tls_section)
    write_conf "$conf"
    "$MPSD" -t -c "$conf" >"$TMPD/$name.t.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        grep -q -e "$4" "$TMPD/$name.t.log" || fail "$name: mpsd -t: $(cat "$TMPD/$name.t.log")"
    else
        log "$name: note: mpsd -t does not check the TLS files"
    fi
    rc=0
    timeout $((20 * SLOW)) "$MPSD" -c "$conf" >"$TMPD/$name.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$name: mpsd start exited with $rc"
    grep -q -e "$4" "$TMPD/$name.log" || fail "$name: start said: $(cat "$TMPD/$name.log")"
    log "$name: refused at start: $(grep -o -e "$4.*" "$TMPD/$name.log" | head -n 1)"
}
C=$CERTS
refused key-mismatch "$C/server-chain.pem" "$C/server2.key" \
    "PrivateKey $C/server2.key.*\(key values mismatch\|does not match the certificate\)"
refused expired "$C/expired-chain.pem" "$C/server.key" \
    "Certificate $C/expired-chain.pem: certificate 1 (/CN=localhost) expired on 2020-01-02"
refused disorder "$C/disorder-chain.pem" "$C/server.key" \
    "Certificate $C/disorder-chain.pem: certificate 1 (.*) is not issued by the next one"
refused missing-cert "$C/nosuch.pem" "$C/server.key" \
    "Certificate $C/nosuch.pem: No such file or directory"
refused missing-key "$C/server-chain.pem" "$C/nosuch.key" "PrivateKey $C/nosuch.key"
refused garbage "$C/garbage.pem" "$C/server.key" "Certificate $C/garbage.pem holds no PEM"
# A leaf without its chain works but is warned about: AMT cannot build the chain itself.
CONF_EXTRA=$(TLS_CERT=$C/server.pem tls_section)
write_conf "$TMPD/leaf.conf"
start_mpsd "$TMPD/leaf.conf"
TLS_PORT=$(ready_port tls)
assert_log "WARNING.*Certificate $C/server.pem holds only the server certificate"
[ "$(tls_fingerprint "$TLS_PORT")" = "$(openssl x509 -in "$C/server.pem" -noout \
    -fingerprint -sha256 | sed 's/.*=//')" ] || fail "leaf-only chain: not served"
stop_mpsd
log "leaf-only chain: served, with a warning"

# ---- 6. reload: new files for new handshakes, tunnels kept, bad files keep the old cert.
LIVE_CERT="$TMPD/live-chain.pem" LIVE_KEY="$TMPD/live.key"
cp "$C/server-chain.pem" "$LIVE_CERT"
cp "$C/server.key" "$LIVE_KEY"
CONF_EXTRA=$(TLS_CERT=$LIVE_CERT TLS_KEY=$LIVE_KEY tls_section)
write_conf
start_mpsd
TLS_PORT=$(ready_port tls)
fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
FP1=$(fp_of "$C/server.pem") FP2=$(fp_of "$C/server2.pem")
[ "$(tls_fingerprint "$TLS_PORT")" = "$FP1" ] || fail "the first certificate is not served"
bg dev python3 "$APFCLIENT" --port "$TLS_PORT" serve --tls --tls-ca "$C/ca.pem" \
    --fqdn reload.example.com --ports 16994 --seconds $((60 * SLOW)) \
    --ready-file "$TMPD/dev.ready" --trigger-file "$TMPD/dev.ping"
dev=$BG_PID
wait_for $((10 * SLOW)) "the TLS device forwarding" test -e "$TMPD/dev.ready"
cp "$C/server2-chain.pem" "$LIVE_CERT"
cp "$C/server2.key" "$LIVE_KEY"
kill -HUP "$MPSD_PID"
wait_log "\[tls\] reload: certificate and key re-read from $LIVE_CERT"
got=$(tls_fingerprint "$TLS_PORT")
[ "$got" = "$FP2" ] || fail "after reload: served $got, expected the new $FP2"
out=$(apf console-echo --device reload.example.com --dport 16994 --bytes 10000)
[ "$out" = ok ] || fail "the tunnel opened before the reload: $out"
log "SIGHUP: new handshakes get the new certificate, the old tunnel carries traffic"
printf 'garbage\n' >"$LIVE_CERT"
kill -HUP "$MPSD_PID"
wait_log "Certificate $LIVE_CERT holds no PEM certificate"
wait_log "\[tls\] reload: keeping the certificate in use"
[ "$(tls_fingerprint "$TLS_PORT")" = "$FP2" ] || fail "garbage PEM: the served cert changed"
log "garbage PEM + SIGHUP: error logged, the certificate in use is kept"
cp "$C/server-chain.pem" "$LIVE_CERT" # key is server2.key: a mismatch
kill -HUP "$MPSD_PID"
wait_log "PrivateKey $LIVE_KEY.*\(key values mismatch\|does not match the certificate\)"
[ "$(grep -c "reload: keeping the certificate in use" "$MPSD_LOG")" = 2 ] ||
    fail "key mismatch on reload: not refused"
[ "$(tls_fingerprint "$TLS_PORT")" = "$FP2" ] || fail "key mismatch: the served cert changed"
log "key mismatch + SIGHUP: error logged, the certificate in use is kept"
touch "$TMPD/dev.ping"
bg_wait "$dev" $((20 * SLOW)) || fail "TLS device: $(cat "$TMPD/dev.out" "$TMPD/dev.err")"
[ "$(cat "$TMPD/dev.out")" = ok ] || fail "tunnel after three reloads: $(cat "$TMPD/dev.out")"
log "the tunnel from before the reloads still answers a keepalive"
require_alive
stop_mpsd
log "PASS"
