#!/bin/bash
# auth_soap.sh - device authentication through auth_soap against real SOAP services: the gSOAP
# test server built from the same WSDL (accept, reject, slow, HTTP 500, SOAP fault, malformed
# XML, HTTP basic and digest auth, TLS, a client certificate the service verifies) and an
# independent Python service that checks the wire format; the parameters `mpsd -t` refuses
# (-krb, client certificate mistakes).
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

SERVER="$top_builddir/tests/soap/mps_auth_server"
PLUGIN="$top_builddir/plugins/auth_soap/.libs/auth_soap.so"
for f in "$SERVER" "$PLUGIN"; do
    [ -e "$f" ] || fail "$f is missing (configure --enable-auth-soap; make check builds it)"
done
ln -s "$PLUGIN" "$MODDIR/auth_soap.so"

ACTION="http://schemas.intel.com/platform/client/MPSAuthentication/2006/01/Authenticate"
# The services are stopped and started again behind one daemon whose URL names their port, and
# between them nothing may answer there: a port held for the whole test (the servers set
# SO_REUSEADDR, so they can bind it; nothing else gets it).
reserve_port SOAP_PORT
URL="http://127.0.0.1:$SOAP_PORT/MPSAuthenticationService"
SOAP_PID=""
SOAP_RUNS=0
SOAP_OUT=""

# start_soap MODE [ARG]: the gSOAP test server on $SOAP_PORT (HTTPS when SOAP_TLS names its
# key and certificate PEM; requiring a client certificate of the CA SOAP_CLIENT_CA names), its
# output in $SOAP_OUT.
start_soap() {
    local tls=()
    [ -z "${SOAP_TLS:-}" ] || tls=(--tls "$SOAP_TLS")
    [ -z "${SOAP_CLIENT_CA:-}" ] || tls+=(--client-ca "$SOAP_CLIENT_CA")
    SOAP_RUNS=$((SOAP_RUNS + 1))
    bg "soap.$SOAP_RUNS" "$SERVER" "${tls[@]}" "$SOAP_PORT" "$@"
    SOAP_PID=$BG_PID
    SOAP_OUT="$TMPD/soap.$SOAP_RUNS.out"
    wait_for $((10 * SLOW)) "the SOAP test server ($*)" grep -q "^ready $SOAP_PORT" "$SOAP_OUT"
}

stop_soap() {
    kill "$SOAP_PID" 2>/dev/null ||
        fail "the SOAP test server had died: $(cat "$TMPD/soap.$SOAP_RUNS.err")"
    wait "$SOAP_PID" 2>/dev/null || true
    SOAP_PID=""
}

# soap_conf PARAMS [CORE_LINES]: write_conf with auth_soap as the AMT realm's plugin. The
# realm's Timeout stays well above the plugin's -timeout: what the tests see is the plugin's.
soap_conf() {
    CORE_EXTRA=${2:-} write_conf
    sed -i -e "s|^Plugin = auth_file\$|Plugin = auth_soap|" \
        -e "s|^PluginParameters = file .*|PluginParameters = $1\nTimeout = 30s|" "$CONF"
    grep -q "^Plugin = auth_soap" "$CONF" || fail "soap_conf: no auth_soap line in $CONF"
}

# Devices are amtsim (amtuser:P@ssw0rd; C, so it starts fast on a loaded machine).
# dev_ok: the device gets in; dev_refused [ARGS]: it is refused with DISCONNECT 15.
dev_ok() {
    local out
    out=$(timeout $((40 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --exit-when-ready --quiet 2>&1) ||
        fail "amtsim was refused: $out"
    log "device accepted"
}
dev_refused() {
    local out
    out=$(timeout $((40 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --expect-disconnect 15 --quiet \
        "$@" 2>&1) ||
        fail "amtsim was not refused with DISCONNECT 15: $out"
    log "device refused${1:+ ($*)}"
}

# soap_saw PATTERN: the test server printed a request line matching PATTERN.
soap_saw() { grep -q -e "$1" "$SOAP_OUT"; }
# soap_count PATTERN: how many request lines of the test server match PATTERN.
soap_count() { grep -c -e "$1" "$SOAP_OUT" || true; }

# auth_line KIND MSG: mpsd logged the realm's verdict for amtuser: KIND is denied or failed.
auth_line() {
    wait_log "auth\[.*\]: user \"amtuser\" from .* $1: SOAP service .*$2"
    local pat="auth\[.*\]: user \"amtuser\" from .* $1: SOAP service .*$2"
    log "logged: $(grep -m1 "$pat" "$MPSD_LOG" | sed 's/.*\] auth/auth/')"
}

no_password_logged() {
    local pw
    for pw in P@ssw0rd S3rv1ce-Pw; do
        if grep -q -F -e "$pw" "$MPSD_LOG"; then
            fail "the log shows a password ($pw)"
        fi
    done
}

# log_time PATTERN: the time of day (seconds) of the daemon's first log line matching PATTERN.
log_time() {
    grep -m1 -e "$1" "$MPSD_LOG" |
        sed -n 's/^\[[A-Za-z]* [A-Za-z]* [0-9]* [0-9]* \([0-9:.]*\)\].*/\1/p' |
        awk -F: '{ printf "%.3f\n", $1 * 3600 + $2 * 60 + $3 }'
}

# ------------------------------------------- one daemon, the services swapped behind it
soap_conf "-target $URL -timeout 3"
start_mpsd
assert_log "SOAP service $URL, timeout 3 s\$"

start_soap accept-list 'amtuser:P@ssw0rd,other:x'
dev_ok
soap_saw "^request action=$ACTION id=amtuser http-user=- -> true\$" ||
    fail "the service did not see the WSDL's SOAPAction and user: $(cat "$SOAP_OUT")"
dev_refused --pass wrong
auth_line denied "AuthenticateResult false"
stop_soap

start_soap reject
dev_refused
soap_saw "id=amtuser http-user=- -> false" || fail "the rejecting service saw no request"
stop_soap

# No service at all is an error, and says so.
dev_refused
auth_line failed "Connection refused"

start_soap http500
dev_refused
auth_line failed "HTTP status 500\$"
stop_soap

start_soap fault
dev_refused
auth_line failed "SOAP fault (HTTP 500): test fault: backend unavailable"
stop_soap

start_soap malformed
dev_refused
auth_line failed "bad answer (HTTP 200): incomplete or malformed SOAP/XML"
stop_soap

start_soap basic-auth 'mps:S3rv1ce-Pw'
dev_refused
soap_saw "http-user=- -> 401" || fail "the service did not ask for credentials"
auth_line failed "HTTP status 401 (the service wants -user/-pass"
require_alive
no_password_logged
stop_mpsd

# HTTP basic auth with -user/-pass (and the default -timeout), then with a wrong -pass.
soap_conf "-target $URL -user mps -pass S3rv1ce-Pw"
start_mpsd
assert_log "SOAP service $URL, timeout 5 s, HTTP authentication as mps"
dev_ok
soap_saw "id=amtuser http-user=mps -> true" || fail "no authenticated request: $(cat "$SOAP_OUT")"
no_password_logged
stop_mpsd
soap_conf "-target $URL -user mps -pass wrong -timeout 3"
start_mpsd
dev_refused
auth_line failed "HTTP status 401"
# A Basic challenge is not retried: the wrong password went out once.
[ "$(soap_count "http-user=mps -> 401\$")" = 1 ] ||
    fail "a refused basic login was retried: $(cat "$SOAP_OUT")"
stop_mpsd
stop_soap

# ------------------------------------------------------------------------ HTTP digest auth
# A service that takes only digest (gSOAP's http_da plugin): it refuses the first request's
# Basic credentials with a Digest challenge, and the plugin answers that challenge once.
start_soap digest-auth 'mps:S3rv1ce-Pw'
soap_conf "-target $URL -user mps -pass S3rv1ce-Pw -timeout 3"
start_mpsd
dev_ok
soap_saw "id=amtuser http-user=mps -> 401 (basic refused)\$" ||
    fail "the digest service saw no basic first request: $(cat "$SOAP_OUT")"
soap_saw "id=amtuser http-user=mps -> true (digest)\$" ||
    fail "the digest service accepted no digest answer: $(cat "$SOAP_OUT")"
[ "$(soap_count "^request")" = 2 ] || fail "not 2 requests for one login: $(cat "$SOAP_OUT")"
no_password_logged
stop_mpsd
# A wrong -pass: the digest answer is refused, the second 401 is final (no third request).
soap_conf "-target $URL -user mps -pass wrong -timeout 3"
start_mpsd
dev_refused
auth_line failed "HTTP status 401 (the service wants -user/-pass, or refused them)"
soap_saw "id=amtuser http-user=mps -> 401 (digest refused)\$" ||
    fail "the digest service saw no wrong digest: $(cat "$SOAP_OUT")"
[ "$(soap_count "^request")" = 4 ] || fail "not 2 requests for a refused login: $(cat "$SOAP_OUT")"
stop_mpsd
# No -user/-pass: nothing to answer the challenge with, one request only.
soap_conf "-target $URL -timeout 3"
start_mpsd
dev_refused
auth_line failed "HTTP status 401"
soap_saw "id=amtuser http-user=- -> 401\$" || fail "no anonymous request: $(cat "$SOAP_OUT")"
[ "$(soap_count "^request")" = 5 ] || fail "an anonymous login was retried: $(cat "$SOAP_OUT")"
require_alive
no_password_logged
stop_mpsd
stop_soap

# --------------------------------------------------- slow: one worker, freed by -timeout
# AuthWorkers = 1: had the timed-out call kept the only worker, the next device would wait for
# the realm's 30 s Timeout (the slow service sleeps 60 s).
start_soap slow 60000
soap_conf "-target $URL -timeout 1" "AuthWorkers = 1"
start_mpsd
dev_refused
auth_line failed "Timeout: no answer within 1 s"
soap_saw "id=amtuser http-user=- -> sleeping" || fail "the slow service saw no request"
t_conn=$(log_time "speaks APF")
t_fail=$(log_time "failed: SOAP service .*Timeout")
took=$(awk -v a="$t_conn" -v b="$t_fail" 'BEGIN { printf "%.1f", b - a }')
awk -v t="$took" -v max=$((2 * SLOW)) 'BEGIN { exit !(t >= 0.9 && t <= max) }' ||
    fail "a 1 s -timeout answered after ${took}s"
log "the device was refused ${took}s after its handshake, with -timeout 1"
# The slow server still sleeps in its handler; a fresh one answers the next device.
stop_soap
start_soap accept-list 'amtuser:P@ssw0rd'
dev_ok
require_alive
stop_mpsd
stop_soap

# ------------------------------------------------------------------------------- TLS
make_certs
cat "$CERTS/server.key" "$CERTS/server-chain.pem" >"$TMPD/soap-server.pem"
SOAP_TLS="$TMPD/soap-server.pem" start_soap accept-list 'amtuser:P@ssw0rd'
soap_conf "-target $URL -tls -cafile $CERTS/ca.pem -timeout 3"
start_mpsd
HTTPS_URL="https://127.0.0.1:$SOAP_PORT/MPSAuthenticationService"
assert_log "SOAP service $HTTPS_URL, TLS verified against $CERTS/ca.pem, timeout 3 s\$"
log_has "no private key" && fail "-cafile was taken for something else"
dev_ok
stop_mpsd
# mpsd 0.1's `-cert CAFILE`: a -cert file with certificates and no key, without -key and
# -cafile, is still the CA file, with one warning that names the new spelling.
soap_conf "-target $URL -tls -cert $CERTS/ca.pem -timeout 3"
start_mpsd
OLD_CERT_WARNING="-cert $CERTS/ca.pem holds certificates and no private key: taken as the CA file"
assert_log "WARN.*$OLD_CERT_WARNING .*; write -cafile $CERTS/ca.pem"
assert_log "SOAP service $HTTPS_URL, TLS verified against $CERTS/ca.pem, timeout 3 s\$"
dev_ok
dev_ok
[ "$(grep -c -e "$OLD_CERT_WARNING" "$MPSD_LOG")" = 1 ] || fail "the -cert warning is not once"
stop_mpsd
# A service whose certificate the given CA did not sign is refused before any request.
n_before=$(grep -c "^request" "$SOAP_OUT")
soap_conf "-target $HTTPS_URL -cafile $CERTS/other-ca.pem"
start_mpsd
dev_refused
auth_line failed "TLS"
[ "$(grep -c "^request" "$SOAP_OUT")" = "$n_before" ] ||
    fail "a request reached an unverified service"
stop_mpsd
stop_soap

# ------------------------------------------- -cert: a client certificate the service verifies
# The service requires a client certificate of the test CA and prints its subject.
tls_issue client mps-client.example.com 30 "$CERTS/mpsclient"
cat "$CERTS/mpsclient.pem" "$CERTS/mpsclient.key" >"$TMPD/mpsclient-both.pem"
SOAP_TLS="$TMPD/soap-server.pem" SOAP_CLIENT_CA="$CERTS/ca.pem" \
    start_soap accept-list 'amtuser:P@ssw0rd'
soap_count_is() { [ "$(soap_count "$1")" = "$2" ] || fail "$3: $(cat "$SOAP_OUT")"; }
# Certificate and key in two files.
soap_conf "-target $HTTPS_URL -cafile $CERTS/ca.pem -cert $CERTS/mpsclient.pem -key $CERTS/mpsclient.key -timeout 3"
start_mpsd
assert_log "SOAP service $HTTPS_URL, TLS verified against $CERTS/ca.pem, timeout 3 s, client certificate $CERTS/mpsclient.pem\$"
dev_ok
soap_saw "^client .*CN *= *mps-client.example.com\$" ||
    fail "the service saw no client certificate: $(cat "$SOAP_OUT")"
soap_count_is "^request .*-> true\$" 1 "not one accepted request"
log "the service verified the client certificate: $(grep -m1 "^client" "$SOAP_OUT")"
stop_mpsd
# Both in one PEM file, -cert alone: a key in the file makes it a client certificate.
soap_conf "-target $HTTPS_URL -cafile $CERTS/ca.pem -cert $TMPD/mpsclient-both.pem -timeout 3"
start_mpsd
log_has "no private key" && fail "a -cert file with its key was taken for a CA file"
dev_ok
soap_count_is "^client .*mps-client.example.com\$" 2 "no second verified client"
stop_mpsd
# No client certificate, or one of another CA: the service refuses the handshake.
soap_conf "-target $HTTPS_URL -cafile $CERTS/ca.pem -timeout 3"
start_mpsd
dev_refused
wait_log 'auth\[.*\]: user "amtuser" from .* failed: SOAP service '
wait_for $((5 * SLOW)) "the service's refusal" soap_saw "^tls refused\$"
stop_mpsd
soap_conf "-target $HTTPS_URL -cafile $CERTS/ca.pem -cert $CERTS/other-device.pem -key $CERTS/other-device.key -timeout 3"
start_mpsd
dev_refused
wait_log 'auth\[.*\]: user "amtuser" from .* failed: SOAP service '
soap_count_is "^request .*-> true\$" 2 "a client without a good certificate got an answer"
soap_count_is "^client " 2 "a certificate of another CA was taken"
log "without a client certificate of the service's CA: $(soap_count "^tls refused") refused handshakes"
require_alive
stop_mpsd
stop_soap

# ------------------------------------------------------- parameters `mpsd -t` refuses
# bad_params NAME PARAMS PATTERN: mpsd -t exits 1, prints PATTERN and the Plugin's file:line.
bad_params() {
    local rc=0 out line
    soap_conf "$2"
    line=$(grep -n '^Plugin = auth_soap' "$CONF" | cut -d: -f1)
    out=$("$MPSD" -t -c "$CONF" 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "mpsd -t with $1: exit status $rc, expected 1: $out"
    grep -q -e "$3" <<<"$out" || fail "mpsd -t with $1: no /$3/ in: $out"
    grep -qF "$CONF:$line: [AMT_Authenticate] Plugin auth_soap check failed" <<<"$out" ||
        fail "mpsd -t with $1 does not name $CONF:$line: $out"
    log "mpsd -t refuses $1: $(grep -m 1 -e "$3" <<<"$out" | sed 's/^\[[^]]*\] //')"
}
bad_params krb "-target $URL -krb -user mps -pass S3rv1ce-Pw" "-krb: Kerberos is not supported"
bad_params key-mismatch \
    "-target $HTTPS_URL -cert $CERTS/mpsclient.pem -key $CERTS/other-device.key" \
    "the key in $CERTS/other-device.key is not the one of the client certificate"
bad_params key-without-cert "-target $HTTPS_URL -key $CERTS/mpsclient.key" "-key needs -cert"
bad_params cert-without-tls "-target $URL -cert $TMPD/mpsclient-both.pem" \
    "-cert needs -tls or an https:// target"
bad_params missing-cafile "-target $HTTPS_URL -cafile $TMPD/nothing.pem" \
    "-cafile $TMPD/nothing.pem: No such file"
# A good one passes.
soap_conf "-target $HTTPS_URL -cafile $CERTS/ca.pem -cert $TMPD/mpsclient-both.pem"
out=$("$MPSD" -t -c "$CONF" 2>&1) || fail "mpsd -t on good client certificate parameters: $out"

# ------------------------------------------- an independent service checks the wire format
# Python, no gSOAP: the request must be the WSDL's document/literal Authenticate exactly.
cat >"$TMPD/pysoap.py" <<'EOF'
import http.server, sys, xml.etree.ElementTree as ET
NS = "http://schemas.intel.com/platform/client/MPSAuthentication/2006/01"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        problems = []
        if self.path != "/MPSAuthenticationService":
            problems.append("path " + self.path)
        if self.headers.get("SOAPAction", "").strip('"') != NS + "/Authenticate":
            problems.append("SOAPAction " + repr(self.headers.get("SOAPAction")))
        if not self.headers.get("Content-Type", "").startswith("text/xml"):
            problems.append("Content-Type " + repr(self.headers.get("Content-Type")))
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            env = ET.fromstring(body)
        except ET.ParseError as e:
            env = None
            problems.append("XML: %s" % e)
        ok = False
        if env is not None:
            req = env.find("{%s}Body/{%s}AuthenticateRequest" % (ENV, NS))
            if env.tag != "{%s}Envelope" % ENV or req is None:
                problems.append("no Envelope/Body/AuthenticateRequest in " + repr(body[:300]))
            else:
                kids = [c.tag for c in req]
                if kids != ["{%s}AuthenticateId" % NS, "{%s}AuthenticatePassword" % NS]:
                    problems.append("children %r" % kids)
                user = req.findtext("{%s}AuthenticateId" % NS)
                pw = req.findtext("{%s}AuthenticatePassword" % NS)
                ok = (user, pw) == ("amtuser", "P@ssw0rd")
                print("request id=%s -> %s" % (user, str(ok).lower()), flush=True)
        if problems:
            print("PROBLEM " + "; ".join(problems), flush=True)
            self.send_response(400)
            self.end_headers()
            return
        # Namespace prefixes as another toolkit might choose them, the SOAP-ENV one included.
        out = ('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="%s"><s:Body>'
               '<AuthenticateResponse xmlns="%s"><AuthenticateResult>%s</AuthenticateResult>'
               '</AuthenticateResponse></s:Body></s:Envelope>' % (ENV, NS, str(ok).lower()))
        data = out.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready %s" % sys.argv[1], flush=True)
srv.serve_forever()
EOF
SOAP_RUNS=$((SOAP_RUNS + 1))
bg "soap.$SOAP_RUNS" python3 "$TMPD/pysoap.py" "$SOAP_PORT"
SOAP_PID=$BG_PID
SOAP_OUT="$TMPD/soap.$SOAP_RUNS.out"
wait_for $((10 * SLOW)) "the Python SOAP service" grep -q "^ready $SOAP_PORT" "$SOAP_OUT"
soap_conf "-target $URL -timeout 3"
start_mpsd
dev_ok
dev_refused --pass wrong
if grep -q "^PROBLEM" "$SOAP_OUT"; then
    fail "the request is not the WSDL's: $(grep "^PROBLEM" "$SOAP_OUT")"
fi
soap_saw "^request id=amtuser -> true" || fail "the Python service saw no good request"
soap_saw "^request id=amtuser -> false" || fail "the Python service saw no wrong password"
auth_line denied "AuthenticateResult false"
no_password_logged
stop_mpsd
stop_soap
log "PASS"
