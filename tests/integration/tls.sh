#!/bin/bash
# tls.sh - the tls module's handshakes: protocol profiles, client certificates, timeouts,
# garbage, renegotiation, with openssl s_client and apfclient.py --tls as the devices.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed for the TLS tests"
    exit 77
}
make_certs
DEV_CERT=(--tls-cert "$CERTS/devices/dev-cert.example.com.pem"
    --tls-key "$CERTS/devices/dev-cert.example.com.key")
OTHER_CERT=(--tls-cert "$CERTS/other-device.pem" --tls-key "$CERTS/other-device.key")
CONF_EXTRA=$(
    # VerifyClient none with a CAFile: the certificate must still be ignored.
    tls_section "HandshakeTimeout = 1s" "CAFile = $CERTS/ca.pem"
    tls_section "Profile = modern"
    tls_section "VerifyClient = optional" "CAFile = $CERTS/ca.pem"
    tls_section "VerifyClient = require" "CAFile = $CERTS/ca.pem"
)
write_conf
start_mpsd
# The ready file lists the [module tls] sections in their order.
P_COMPAT=$(ready_port tls 1)
P_MODERN=$(ready_port tls 2)
P_OPT=$(ready_port tls 3)
P_REQ=$(ready_port tls 4)
for p in "$P_COMPAT" "$P_MODERN" "$P_OPT" "$P_REQ"; do
    assert_log "\[tls\] listening on 127.0.0.1:$p"
done

# ---- 1. protocol versions, without SNI, the chain verified against the CA.
out=$(s_client "$P_COMPAT" -tls1_3 -CAfile "$CERTS/ca.pem")
grep -aq "^New, TLSv1.3, Cipher is TLS_" <<<"$out" || fail "TLS 1.3: $out"
grep -aq "Verify return code: 0 (ok)" <<<"$out" || fail "TLS 1.3: chain not verified: $out"
log "TLS 1.3 without SNI, chain verified"
out=$(s_client "$P_COMPAT" -tls1_2 -CAfile "$CERTS/ca.pem")
grep -aq "^New, TLSv1.2, Cipher is ECDHE-" <<<"$out" || fail "TLS 1.2: $out"
log "TLS 1.2: $(grep -a '^New,' <<<"$out")"
out=$(s_client "$P_COMPAT" -tls1 -cipher AES128-SHA@SECLEVEL=0)
grep -aq "Protocol  : TLSv1$" <<<"$out" || fail "TLS 1.0: $out"
grep -aq "Cipher    : AES128-SHA$" <<<"$out" || fail "TLS 1.0 AES128-SHA: $out"
log "TLS 1.0 AES128-SHA (AMT before 12) on the compatible profile"
out=$(s_client "$P_MODERN" -tls1 -cipher AES128-SHA@SECLEVEL=0)
! grep -aq "Cipher    : AES128-SHA" <<<"$out" || fail "modern profile accepted TLS 1.0: $out"
wait_log "TLS handshake with 127.0.0.1:[0-9]* failed: .*unsupported protocol; client offered TLSv1.0, suites AES128-SHA"
log "modern profile refuses TLS 1.0, logged with the peer, the offer and OpenSSL's reason"
out=$(s_client "$P_MODERN" -tls1_2 -cipher AES128-SHA256)
! grep -aq "Cipher is AES128-SHA256" <<<"$out" || fail "modern profile accepted a CBC suite"
log "modern profile refuses a non-AEAD suite on TLS 1.2"

# ---- 2 (in short). CIRA over TLS, password authentication, TLS 1.3 and TLS 1.0.
TLS_PORT=$P_COMPAT
out=$(apf_tls handshake --tls-ca "$CERTS/ca.pem" --fqdn tls13.example.com)
[ "$out" = ok ] || fail "CIRA over TLS 1.3: $out $(cat "$TMPD/apf_tls.err")"
out=$(apf_tls handshake --tls-version 1.0 --fqdn tls10.example.com --uuid 0000000000000000000000000000aa10)
[ "$out" = ok ] || fail "CIRA over TLS 1.0: $out $(cat "$TMPD/apf_tls.err")"
grep -q "^tls TLSv1 AES128-SHA$" "$TMPD/apf_tls.err" || fail "TLS 1.0: $(cat "$TMPD/apf_tls.err")"
wait_log "started port forwarding to address tls10.example.com"
log "CIRA over TLS 1.3 and TLS 1.0 AES128-SHA reaches forwarding"

# ---- 3. client certificates.
# none: a certificate is ignored; without the password the device gets nowhere.
out=$(apf_tls pfwd-no-auth "${DEV_CERT[@]}" --fqdn none-nopw.example.com)
[ "$out" = "disconnect 2" ] || fail "VerifyClient none, cert, no password: '$out'"
out=$(apf_tls handshake "${DEV_CERT[@]}" --fqdn none-pw.example.com)
[ "$out" = ok ] || fail "VerifyClient none, cert + password: $out"
wait_log "started port forwarding to address none-pw.example.com"
! log_has "fqdn none-pw.example.com.*certificate /CN" ||
    fail "VerifyClient none: the certificate was taken into account"
log "VerifyClient none: certificate ignored, password needed"

TLS_PORT=$P_OPT
out=$(apf_tls pfwd-no-auth "${DEV_CERT[@]}" --fqdn opt-cert.example.com)
[ "$out" = ok ] || fail "optional, valid cert, no auth service: $out $(cat "$TMPD/apf_tls.err")"
wait_log "fqdn opt-cert.example.com, peer 127.0.0.1:[0-9]*, certificate /CN=dev-cert.example.com"
out=$(apf_tls pfwd-no-auth --userauth none "${DEV_CERT[@]}" --fqdn opt-none.example.com)
[ "$out" = ok ] || fail "optional, valid cert, USERAUTH none: $out"
out=$(apf_tls handshake "${DEV_CERT[@]}" --password wrong --fqdn opt-wrongpw.example.com)
[ "$out" = ok ] || fail "optional, valid cert, wrong password (the cert authenticates): $out"
log "VerifyClient optional: a valid certificate authenticates (no auth, none, any password)"
out=$(apf_tls handshake --fqdn opt-nocert.example.com)
[ "$out" = ok ] || fail "optional, no cert, password: $out"
out=$(apf_tls pfwd-no-auth --fqdn opt-nocert2.example.com)
[ "$out" = "disconnect 2" ] || fail "optional, no cert, no auth: '$out'"
log "VerifyClient optional: without a certificate the password path works and is needed"
out=$(apf_tls handshake "${OTHER_CERT[@]}" --fqdn opt-other.example.com)
[ "$out" != ok ] || fail "optional: a certificate from an unknown CA was accepted"
wait_log "TLS handshake with 127.0.0.1:[0-9]* failed: client certificate rejected: "
log "VerifyClient optional: unknown CA refused ($out)"

TLS_PORT=$P_REQ
out=$(apf_tls handshake --fqdn req-nocert.example.com)
[ "$out" != ok ] || fail "require: a device without certificate got through"
wait_log "TLS handshake with 127.0.0.1:[0-9]* failed: .*peer did not return a certificate"
log "VerifyClient require: no certificate refused ($out)"
out=$(apf_tls pfwd-no-auth "${DEV_CERT[@]}" --fqdn dev-cert.example.com)
[ "$out" = ok ] || fail "require, valid cert: $out"
log "VerifyClient require: a valid certificate authenticates"
# RequireNameInCertificate (auto: on with require): only the certificate's own names.
out=$(apf_tls pfwd-no-auth "${DEV_CERT[@]}" --fqdn req-cert.example.com)
case $out in
*"expected REQUEST_SUCCESS, got REQUEST_FAILURE"*) ;;
*) fail "require, a name not in the certificate: $out" ;;
esac
wait_log "req-cert\.example\.com"
log "VerifyClient require: a name not in the certificate is refused (REQUEST_FAILURE)"

# ---- 4. handshake timeout (1 s), garbage, a stalled handshake, renegotiation.
TLS_PORT=$P_COMPAT
# closed_in RESULT: "closed S" with S about the 1 s timeout (a loaded machine adds to it).
closed_in_time() {
    local s
    s=$(sed -n 's/^closed \([0-9.]*\).*/\1/p' <<<"$1")
    [ -n "$s" ] && python3 -c "import sys; sys.exit(not 0.8 <= $s <= 1 + 2 * $SLOW)"
}
out=$(apf_tls tls-stall --stall silent --wait $((10 * SLOW)))
closed_in_time "$out" || fail "silent client: '$out', expected closed after ~1 s"
wait_log "\[tls\] 127.0.0.1:[0-9]* closed before sending anything"
log "silent client: $out"
out=$(apf_tls tls-stall --stall half-hello --wait $((10 * SLOW)))
closed_in_time "$out" || fail "half a ClientHello: '$out'"
wait_log "failed: no handshake within 1000 ms; no TLS ClientHello: first bytes 16 03"
log "half a ClientHello: $out"
out=$(apf_tls tls-stall --stall mid-handshake --wait $((10 * SLOW)))
[[ "$out" = *"after an answer" ]] && closed_in_time "$out" || fail "stalled handshake: '$out'"
wait_log "failed: no handshake within 1000 ms; client offered TLSv1.3, suites TLS_"
log "client that stops mid-handshake: $out"
out=$(apf_tls tls-stall --stall http --wait $((10 * SLOW)))
[[ "$out" = closed* ]] || fail "HTTP instead of TLS: '$out'"
wait_log "failed: .*; no TLS ClientHello: first bytes 47 45 54 20 (plain text: not TLS)"
log "HTTP text instead of a ClientHello: $out, logged as not TLS"
out=$( (
    echo R
    sleep $((2 * SLOW))
    echo Q
) | timeout $((15 * SLOW)) openssl s_client -connect "127.0.0.1:$P_COMPAT" -noservername \
    -tls1_2 2>&1 | tr -d '\000' || true)
grep -aq "RENEGOTIATING" <<<"$out" || fail "s_client did not try to renegotiate: $out"
grep -aq "no renegotiation" <<<"$out" || fail "renegotiation was not refused: $out"
log "renegotiation on TLS 1.2 refused"

require_alive
stop_mpsd
assert_log "\[tls\] [0-9]* handshakes completed, [1-9][0-9]* failed"
log "PASS"
