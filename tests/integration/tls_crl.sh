#!/bin/bash
# tls_crl.sh - device certificate revocation: [module tls] CRLFile and CRLCheck. A revoked
# device is refused at the handshake (logged with subject and serial, counted as a certificate
# failure) while a valid one connects; SIGHUP with a new CRL takes effect for new handshakes,
# a bad new CRL keeps the old one; bad files are errors at mpsd -t naming the path; chain mode.
# The CRLs are made by contrib/mpsd-certs revoke.
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed for the TLS tests"
    exit 77
}
command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed to read /metrics"
    exit 77
}
MC="$top_srcdir/contrib/mpsd-certs"
C="$TMPD/pki"
"$MC" --device dev-ok.example.com --device dev-bad.example.com --device dev-two.example.com \
    "$C" >"$TMPD/certs.out" 2>&1 || fail "mpsd-certs: $(cat "$TMPD/certs.out")"
"$MC" revoke "$C" dev-bad.example.com >"$TMPD/revoke1.out" 2>&1 ||
    fail "mpsd-certs revoke: $(cat "$TMPD/revoke1.out")"
grep -q "^revoked subject=CN = dev-bad.example.com" "$TMPD/revoke1.out" ||
    fail "mpsd-certs revoke said: $(cat "$TMPD/revoke1.out")"
LIVE_CRL="$TMPD/live-crl.pem"
cp "$C/crl.pem" "$LIVE_CRL"
serial_of() { openssl x509 -in "$C/devices/$1.pem" -noout -serial | sed 's/^serial=//'; }
BAD_SERIAL=$(serial_of dev-bad.example.com)
TWO_SERIAL=$(serial_of dev-two.example.com)
dev() { # dev NAME PORT: apfclient.py over TLS with the device's certificate, its FQDN = NAME
    python3 -W ignore::DeprecationWarning "$APFCLIENT" --port "$2" --cport "$CONSOLE_PORT" \
        --tls --tls-ca "$C/ca.pem" --tls-cert "$C/devices/$1.pem" --tls-key "$C/devices/$1.key" \
        pfwd-no-auth --fqdn "$1" 2>"$TMPD/dev.err" || true
}
tls_lines() { # tls_lines LINE...: a [module tls] section with the dev PKI, CAFile = $TLS_CA
    echo "[module tls]"
    echo "Listen = 127.0.0.1:0"
    echo "Certificate = $C/server-chain.pem"
    echo "PrivateKey = $C/server.key"
    echo "CAFile = ${TLS_CA:-$C/ca.pem}"
    printf '%s\n' "$@"
    echo
}

# ---- 1. mpsd -t: a bad CRL file is an error naming it; the good one passes.
check_t() { # check_t NAME LINE...: mpsd -t on a config with that tls section; out in OUT
    CONF_EXTRA=$(tls_lines "${@:2}") write_conf "$TMPD/$1.conf"
    RC=0
    OUT=$("$MPSD" -t -c "$TMPD/$1.conf" 2>&1) || RC=$?
}
printf 'not a CRL\n' >"$TMPD/garbage-crl.pem"
printf -- '-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n' >"$TMPD/broken-crl.pem"
check_t garbage "VerifyClient = require" "CRLFile = $TMPD/garbage-crl.pem"
[ "$RC" != 0 ] || fail "mpsd -t accepted a CRLFile without a CRL: $OUT"
grep -q "CRLFile $TMPD/garbage-crl.pem holds no PEM CRL" <<<"$OUT" || fail "garbage CRL: $OUT"
check_t broken "VerifyClient = require" "CRLFile = $TMPD/broken-crl.pem"
[ "$RC" != 0 ] && grep -q "CRLFile $TMPD/broken-crl.pem: unreadable: " <<<"$OUT" ||
    fail "broken CRL: status $RC: $OUT"
check_t missing "VerifyClient = require" "CRLFile = $TMPD/nonexistent.pem"
[ "$RC" != 0 ] && grep -q "CRLFile $TMPD/nonexistent.pem: No such file" <<<"$OUT" ||
    fail "missing CRL: status $RC: $OUT"
check_t noverify "CRLFile = $LIVE_CRL"
[ "$RC" != 0 ] && grep -q "set VerifyClient = optional or require" <<<"$OUT" ||
    fail "CRLFile without VerifyClient: status $RC: $OUT"
# A CRL of another CA: not signed by anything in CAFile.
"$MC" revoke "$TMPD/other" >/dev/null 2>&1 && fail "revoke without a CA succeeded"
"$MC" --fqdn other.example.com "$TMPD/other" >/dev/null 2>&1 || fail "a second PKI"
"$MC" revoke "$TMPD/other" >/dev/null 2>&1 || fail "an empty CRL of the second PKI"
check_t foreign "VerifyClient = require" "CRLFile = $TMPD/other/crl.pem"
[ "$RC" != 0 ] && grep -q "CRL 1 is issued by .*, which is not a certificate of CAFile" <<<"$OUT" ||
    fail "foreign CRL: status $RC: $OUT"
check_t good "VerifyClient = require" "CRLFile = $LIVE_CRL" "CRLCheck = chain"
[ "$RC" = 0 ] || fail "mpsd -t refused a good CRL: $OUT"
log "mpsd -t: garbage, broken, missing, foreign CRL files and CRLFile without VerifyClient are errors naming the file"

# ---- 2. leaf (VerifyClient = require) and chain (VerifyClient = optional) listeners.
CONF_EXTRA="$(tls_lines "VerifyClient = require" "CRLFile = $LIVE_CRL")
$(tls_lines "VerifyClient = optional" "CRLFile = $LIVE_CRL" "CRLCheck = chain")
[module admin_http]
Listen = 127.0.0.1:0" write_conf
start_mpsd
P_LEAF=$(ready_port tls 1)
P_CHAIN=$(ready_port tls 2)
assert_log "client certificates require, 1 CRL (CRLCheck leaf)"
assert_log "client certificates optional, 1 CRL (CRLCheck chain)"
for p in "$P_LEAF" "$P_CHAIN"; do
    out=$(dev dev-ok.example.com "$p")
    [ "$out" = ok ] || fail "a valid device on port $p: $out $(cat "$TMPD/dev.err")"
    out=$(dev dev-bad.example.com "$p")
    [ "$out" != ok ] || fail "the revoked device connected on port $p"
done
wait_log "started port forwarding to address dev-ok.example.com"
log_has "started port forwarding to address dev-bad.example.com" &&
    fail "the revoked device registered"
want="TLS handshake with 127.0.0.1:[0-9]* failed: client certificate rejected: "
want+="certificate revoked; subject /CN=dev-bad.example.com, serial $BAD_SERIAL"
wait_log "$want"
[ "$(grep -c "$want" "$MPSD_LOG")" = 2 ] || fail "one refusal line per listener expected"
log "revoked device refused on both listeners (leaf, chain), logged with subject and serial; the valid one connects"

AH=$(ready_port admin_http)
# The instances are labelled by their configured address (127.0.0.1:0 for both): the sum.
curl -sS --max-time $((10 * SLOW)) "http://127.0.0.1:$AH/metrics" >"$TMPD/metrics" ||
    fail "GET /metrics"
n=$(awk '/^mpsd_tls_handshake_failures_total[{].*reason="certificate"[}]/ {s += $NF} END {print s + 0}' \
    "$TMPD/metrics")
[ "$n" = 2 ] || fail "certificate failures: $(grep mpsd_tls_handshake_failures "$TMPD/metrics")"
log "tls.stats: both refusals counted as certificate failures"

# ---- 3. SIGHUP: a new CRL revoking a second device; a bad one keeps what is in use.
bg keep python3 -W ignore::DeprecationWarning "$APFCLIENT" --port "$P_LEAF" serve --tls \
    --tls-ca "$C/ca.pem" --tls-cert "$C/devices/dev-two.example.com.pem" \
    --tls-key "$C/devices/dev-two.example.com.key" --fqdn dev-two.example.com --ports 16992 \
    --seconds $((60 * SLOW)) --ready-file "$TMPD/two.ready"
TWO_PID=$BG_PID
wait_for $((10 * SLOW)) "dev-two forwarding before the reload" test -e "$TMPD/two.ready"
"$MC" revoke "$C" dev-two.example.com >"$TMPD/revoke2.out" 2>&1 ||
    fail "revoke dev-two: $(cat "$TMPD/revoke2.out")"
cp "$C/crl.pem" "$LIVE_CRL"
kill -HUP "$MPSD_PID"
wait_log "\[tls\] reload: certificate and key re-read from .*, 1 CRL from $LIVE_CRL"
out=$(dev dev-two.example.com "$P_LEAF")
[ "$out" != ok ] || fail "dev-two connected after the CRL revoking it was loaded"
wait_log "certificate revoked; subject /CN=dev-two.example.com, serial $TWO_SERIAL"
out=$(dev dev-ok.example.com "$P_LEAF")
[ "$out" = ok ] || fail "the valid device after the reload: $out"
# The tunnel dev-two opened before the reload is not touched (revocation applies to handshakes).
kill -0 "$TWO_PID" 2>/dev/null ||
    fail "the tunnel established before the reload was dropped"
log "SIGHUP: the new CRL refuses dev-two's new handshakes; its established tunnel stays"

cp "$TMPD/garbage-crl.pem" "$LIVE_CRL"
kill -HUP "$MPSD_PID"
wait_log "CRLFile $LIVE_CRL holds no PEM CRL"
wait_log "\[tls\] reload: keeping the certificate in use"
out=$(dev dev-two.example.com "$P_LEAF")
[ "$out" != ok ] || fail "a bad CRL on reload dropped the revocations in use"
out=$(dev dev-ok.example.com "$P_LEAF")
[ "$out" = ok ] || fail "the valid device after a bad reload: $out"
require_alive
log "SIGHUP with a bad CRL: logged with the reason, the CRLs in use stay"
stop_mpsd

# ---- 4. CRLCheck = chain needs a CRL for every CA of CAFile; leaf only warns.
cat "$C/ca.pem" "$TMPD/other/ca.pem" >"$TMPD/two-cas.pem"
cp "$C/crl.pem" "$LIVE_CRL"
TLS_CA=$TMPD/two-cas.pem check_t chain-missing "VerifyClient = require" \
    "CRLFile = $LIVE_CRL" "CRLCheck = chain"
want="CRLFile $LIVE_CRL has no CRL of /CN=mpsd dev root CA other.example.com (CAFile "
want+="$TMPD/two-cas.pem): with CRLCheck = chain every device certificate under it would be refused"
[ "$RC" != 0 ] && grep -qF "$want" <<<"$OUT" ||
    fail "chain with a CA lacking a CRL: status $RC: $OUT"
TLS_CA=$TMPD/two-cas.pem check_t leaf-missing "VerifyClient = require" "CRLFile = $LIVE_CRL"
[ "$RC" = 0 ] && grep -q "has no CRL of .*devices it issues directly will be refused" <<<"$OUT" ||
    fail "leaf with a CA lacking a CRL: status $RC: $OUT"
cat "$C/crl.pem" "$TMPD/other/crl.pem" >"$TMPD/two-crls.pem"
TLS_CA=$TMPD/two-cas.pem check_t chain-both "VerifyClient = require" \
    "CRLFile = $TMPD/two-crls.pem" "CRLCheck = chain"
[ "$RC" = 0 ] || fail "chain with both CRLs: $OUT"
log "CRLCheck = chain: a CA without a CRL is an error at mpsd -t (leaf: a warning)"
log "PASS"
