#!/bin/bash
# tls_proxy.sh - what sits around the TLS layer: CIRA over TLS up to a console, the PROXY
# protocol on a TLS and on the plain listener, the HTTPS proxy (Serve = http_proxy).
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

for t in openssl curl; do
    command -v "$t" >/dev/null 2>&1 || {
        echo "SKIP: $t is needed for the TLS tests"
        exit 77
    }
done
make_certs
CORE_EXTRA="AMTProxyProtocol = true"
CONF_EXTRA=$(
    tls_section
    tls_section "ProxyProtocol = on"
    tls_section "Serve = http_proxy"
    echo "[module http_proxy]"
    echo "HttpListenIP = none"
)
write_conf
start_mpsd
P_TLS=$(ready_port tls 1)
P_PP=$(ready_port tls 2)
P_HTTPS=$(ready_port tls 3)
assert_log "listening for Intel AMT devices on 127.0.0.1:$AMT_PORT (PROXY protocol)"
assert_log "\[tls\] serving http_proxy with profile compatible"

# ---- 2. a TLS 1.0 AES128-SHA device (AMT before 12) serving HTTP and echo, reached by consoles.
TLS_PORT=$P_TLS
bg dev python3 -W ignore::DeprecationWarning "$APFCLIENT" --port "$P_TLS" serve --tls \
    --tls-version 1.0 --tls-ca "$CERTS/ca.pem" --fqdn tdev.example.com --ports 16992,16994 \
    --seconds $((60 * SLOW)) --ready-file "$TMPD/dev.ready" --trigger-file "$TMPD/dev.stop"
dev=$BG_PID
wait_for $((10 * SLOW)) "the TLS device forwarding" test -e "$TMPD/dev.ready"
grep -q "^tls TLSv1 AES128-SHA$" "$TMPD/dev.err" || fail "device TLS: $(cat "$TMPD/dev.err")"
wait_log "started port forwarding to address tdev.example.com:16994"
out=$(apf console-http --device tdev.example.com --dport 16992)
[ "$out" = "HTTP/1.1 200 OK | apfclient tdev.example.com /index.htm" ] ||
    fail "console HTTP to the TLS device: $out"
out=$(apf console-echo --device tdev.example.com --dport 16994 --bytes 200000)
[ "$out" = ok ] || fail "console echo through the TLS device: $out"
log "test_console reaches a TLS 1.0 device: HTTP and 200 kB echo"

# ---- 9. the HTTPS proxy: curl speaks TLS to mpsd, which serves http_proxy over it.
out=$(curl -sS --max-time $((20 * SLOW)) --proxy "https://127.0.0.1:$P_HTTPS" \
    --proxy-cacert "$CERTS/ca.pem" http://tdev.example.com:16992/via-https-proxy 2>&1) ||
    fail "curl through the HTTPS proxy: $out"
[ "$out" = "apfclient tdev.example.com /via-https-proxy" ] || fail "HTTPS proxy answer: $out"
log "curl --proxy https://: $out"
out=$(curl -sS --max-time $((10 * SLOW)) --proxy "https://127.0.0.1:$P_HTTPS" \
    --proxy-cacert "$CERTS/other-ca.pem" http://tdev.example.com:16992/x 2>&1) &&
    fail "curl trusted a proxy certificate from the wrong CA: $out"
log "the HTTPS proxy's certificate does not verify against another CA"
touch "$TMPD/dev.stop"
bg_wait "$dev" $((20 * SLOW)) || fail "TLS device: $(cat "$TMPD/dev.out" "$TMPD/dev.err")"
[ "$(cat "$TMPD/dev.out")" = ok ] || fail "TLS device after the consoles: $(cat "$TMPD/dev.out")"
log "the TLS device's tunnel is alive after the console traffic"

# ---- 8. PROXY protocol in front of TLS: the device is logged with the address the header names.
TLS_PORT=$P_PP
out=$(apf_tls handshake --proxy v1 --proxy-src 203.0.113.7 --fqdn ppv1.example.com)
[ "$out" = ok ] || fail "PROXY v1 + TLS: $out $(cat "$TMPD/apf_tls.err")"
wait_log "started port forwarding to address ppv1.example.com:16992 .*peer 203\.0\.113\.7:40000"
log "PROXY v1 then TLS: the device is 203.0.113.7"
out=$(apf_tls handshake --proxy v2 --proxy-src 198.51.100.9 --fqdn ppv2.example.com)
[ "$out" = ok ] || fail "PROXY v2 + TLS: $out $(cat "$TMPD/apf_tls.err")"
wait_log "started port forwarding to address ppv2.example.com:16992 .*peer 198\.51\.100\.9:40000"
log "PROXY v2 then TLS: the device is 198.51.100.9"
out=$(apf_tls tls-stall --stall mid-handshake --wait $((15 * SLOW)))
[[ "$out" = closed* ]] || fail "TLS without a PROXY header: '$out'"
wait_log "127.0.0.1:[0-9]*: bad PROXY header (.*): closed"
log "a ClientHello instead of a PROXY header: $out, logged"
# raw_send PORT BYTES: send BYTES, then wait for the server to close: "closed" or "open".
raw_send() {
    python3 - "$1" "$2" "$((10 * SLOW))" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=float(sys.argv[3]))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
try:
    print("closed" if s.recv(100) == b"" else "answered")
except socket.timeout:
    print("open")
except OSError:
    print("closed")
PY
}
out=$(raw_send "$P_PP" 'PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n')
[ "$out" = closed ] || fail "bad PROXY v1 header on the TLS listener: $out"
wait_log "bad PROXY header (.*): closed"
log "bad PROXY v1 header: closed, logged"

# ... and on the plain AMT listener ([core] AMTProxyProtocol).
out=$(apf handshake --proxy v1 --proxy-src 192.0.2.55 --fqdn plainpp.example.com)
[ "$out" = ok ] || fail "PROXY v1 on the plain listener: $out"
wait_log "started port forwarding to address plainpp.example.com:16992 .*peer 192\.0\.2\.55:40000"
out=$(apf handshake --proxy v2 --proxy-src 192.0.2.56 --fqdn plainpp2.example.com)
[ "$out" = ok ] || fail "PROXY v2 on the plain listener: $out"
wait_log "started port forwarding to address plainpp2.example.com:16992 .*peer 192\.0\.2\.56:40000"
log "AMTProxyProtocol: v1 and v2 headers name the device on the plain listener"
n_bad=$(grep -c "bad PROXY header" "$MPSD_LOG")
out=$(apf handshake --fqdn plain-noheader.example.com)
[ "$out" != ok ] || fail "the plain listener accepted a device without PROXY header"
wait_for $((5 * SLOW)) "a log line for the missing header" \
    test "$(grep -c "bad PROXY header" "$MPSD_LOG")" -gt "$n_bad"
log "AMTProxyProtocol: no header -> $out, logged"

require_alive
stop_mpsd

# ---- 9. Serve = a module that does not exist: the start fails with a clear message.
CONF_EXTRA=$(tls_section "Serve = nosuchmodule")
write_conf "$TMPD/bad-serve.conf"
rc=0
"$MPSD" -c "$TMPD/bad-serve.conf" >"$TMPD/bad-serve.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "mpsd started with Serve = nosuchmodule"
grep -q "Serve = nosuchmodule: no such service" "$TMPD/bad-serve.log" ||
    fail "Serve = nosuchmodule: $(cat "$TMPD/bad-serve.log")"
log "Serve = nosuchmodule: start fails (status $rc) naming the service"
log "PASS"
