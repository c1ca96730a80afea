#!/bin/bash
# certs.sh - contrib/mpsd-certs: the dev PKI's certificates, its never-overwrite rules, and real
# TLS handshakes (openssl s_server/s_client, Python's ssl) that must receive the full chain.
# SPDX-License-Identifier: Apache-2.0
#
# mpsd itself is not started: the script only has to produce files OpenSSL accepts the way the
# TLS module and Intel AMT use them.
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl is needed for mpsd-certs"
    exit 77
fi
MPSD_CERTS="$top_srcdir/contrib/mpsd-certs"
[ -x "$MPSD_CERTS" ] || fail "$MPSD_CERTS is missing or not executable"
T=$((20 * SLOW)) # bound of each handshake

# certs NAME ARGS...: run mpsd-certs; stdout in $TMPD/NAME.out, stderr in NAME.err, status in RC.
certs() {
    local name=$1
    shift
    RC=0
    "$MPSD_CERTS" "$@" >"$TMPD/$name.out" 2>"$TMPD/$name.err" || RC=$?
}

# certs_ok NAME ARGS...: mpsd-certs succeeds without complaint.
certs_ok() {
    certs "$@"
    [ "$RC" = 0 ] || fail "mpsd-certs ${*:2}: status $RC: $(cat "$TMPD/$1.err")"
    [ ! -s "$TMPD/$1.err" ] || fail "mpsd-certs ${*:2} wrote to stderr: $(cat "$TMPD/$1.err")"
}

# certs_refused STATUS NAME ARGS...: mpsd-certs exits with STATUS and says why on stderr.
certs_refused() {
    local want=$1
    shift
    certs "$@"
    [ "$RC" = "$want" ] || fail "mpsd-certs ${*:2}: status $RC, expected $want"
    grep -q '^mpsd-certs: ' "$TMPD/$1.err" || fail "mpsd-certs ${*:2}: no error message"
    log "refused with status $want: ${*:2}: $(head -n 1 "$TMPD/$1.err")"
}

# cert FILE: read the certificate's `openssl x509 -text` once; field and ext look into it.
cert() {
    CERT_TEXT=$(openssl x509 -in "$1" -noout -text) || fail "cannot read $1"
}

# field PREFIX: the rest of the first line of the certificate text starting with PREFIX (after
# the indentation), e.g. field 'Subject: '.
field() {
    local line
    while IFS= read -r line; do
        line=${line#"${line%%[! ]*}"}
        if [[ $line == "$1"* ]]; then
            echo "${line#"$1"}"
            return
        fi
    done <<<"$CERT_TEXT"
}

# ext TITLE: the X509v3 extension of that title ("Key Usage"...) as "VALUE" or
# "critical: VALUE"; empty when the certificate does not have it.
ext() {
    local line head=""
    while IFS= read -r line; do
        line=${line#"${line%%[! ]*}"}
        if [ -n "$head" ]; then
            if [[ $head == *critical* ]]; then
                echo "critical: $line"
            else
                echo "$line"
            fi
            return
        fi
        if [[ $line == "X509v3 $1:"* ]]; then
            head=$line
        fi
    done <<<"$CERT_TEXT"
}

expect() { # expect WHAT GOT WANT
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# valid_for FILE DAYS: the certificate expires between DAYS-1 and DAYS+1 days from now.
valid_for() {
    local lo=$((($2 - 1) * 86400)) hi=$((($2 + 1) * 86400))
    openssl x509 -in "$1" -noout -checkend "$lo" >/dev/null ||
        fail "$1 expires within $(($2 - 1)) days, expected $2"
    ! openssl x509 -in "$1" -noout -checkend "$hi" >/dev/null ||
        fail "$1 is still valid in $(($2 + 1)) days, expected $2"
}

key_matches() { # key_matches KEY CERT
    [ "$(openssl pkey -in "$1" -pubout)" = "$(openssl x509 -in "$2" -noout -pubkey)" ] ||
        fail "$1 does not belong to $2"
}

mode_is() { expect "mode of $1" "$(stat -c %a "$1")" "$2"; }

# snapshot DIR: copy of DIR's files, to compare byte for byte later (same_files/changed).
snapshot() { rm -rf "$TMPD/snap" && cp -a "$1" "$TMPD/snap"; }
same_files() { # same_files DIR FILE...
    local d=$1 f
    shift
    for f; do
        cmp -s "$d/$f" "$TMPD/snap/$f" || fail "$d/$f changed"
    done
}
changed() { # changed DIR FILE...
    local d=$1 f
    shift
    for f; do
        ! cmp -s "$d/$f" "$TMPD/snap/$f" || fail "$d/$f did not change"
    done
}

# ---------------------------------------------------------------------- default run
P1="$TMPD/pki" # does not exist yet: the script creates it
certs_ok default "$P1"
for f in ca.key ca.pem server.key server.pem server-chain.pem; do
    [ -f "$P1/$f" ] || fail "$P1/$f was not created"
done
mode_is "$P1" 700
mode_is "$P1/ca.key" 600
mode_is "$P1/server.key" 600
log "default run created the CA, the server key, certificate and chain (keys 0600, dir 0700)"

cert "$P1/ca.pem"
expect "CA subject" "$(field 'Subject: ')" "CN = mpsd dev root CA localhost"
expect "CA issuer" "$(field 'Issuer: ')" "CN = mpsd dev root CA localhost"
expect "CA basicConstraints" "$(ext "Basic Constraints")" "critical: CA:TRUE"
expect "CA keyUsage" "$(ext "Key Usage")" "critical: Certificate Sign, CRL Sign"
expect "CA key size" "$(field 'Public-Key: ')" "(2048 bit)"
expect "CA signature" "$(field 'Signature Algorithm: ')" sha256WithRSAEncryption
valid_for "$P1/ca.pem" 3650
log "CA: CN, critical CA:TRUE, keyCertSign+cRLSign, RSA-2048, SHA-256, 10 years"

S1="$P1/server.pem"
cert "$S1"
expect "server subject" "$(field 'Subject: ')" "CN = localhost"
expect "server issuer" "$(field 'Issuer: ')" "CN = mpsd dev root CA localhost"
expect "server SAN" "$(ext "Subject Alternative Name")" "DNS:localhost, IP Address:127.0.0.1"
expect "server EKU" "$(ext "Extended Key Usage")" \
    "TLS Web Server Authentication, TLS Web Client Authentication"
expect "server keyUsage" "$(ext "Key Usage")" "critical: Digital Signature, Key Encipherment"
expect "server basicConstraints" "$(ext "Basic Constraints")" ""
expect "server key size" "$(field 'Public-Key: ')" "(2048 bit)"
expect "server signature" "$(field 'Signature Algorithm: ')" sha256WithRSAEncryption
valid_for "$S1" 825
key_matches "$P1/server.key" "$S1"
key_matches "$P1/ca.key" "$P1/ca.pem"
log "server: CN and SAN localhost + 127.0.0.1, serverAuth+clientAuth, RSA-2048, SHA-256, 825 days"

cat "$S1" "$P1/ca.pem" >"$TMPD/expected-chain.pem"
cmp -s "$P1/server-chain.pem" "$TMPD/expected-chain.pem" ||
    fail "server-chain.pem is not server.pem + ca.pem"
expect "certificates in server-chain.pem" "$(grep -c -- '-----BEGIN CERTIFICATE-----' \
    "$P1/server-chain.pem")" 2
expect "openssl verify" "$(openssl verify -CAfile "$P1/ca.pem" -purpose sslserver "$S1" 2>&1)" \
    "$S1: OK"
log "server-chain.pem = server.pem + ca.pem; openssl verify -purpose sslserver: OK"

# The fingerprint AMT provisioning needs: SHA-256 of the root, upper-case hex with colons.
fp=$(openssl x509 -in "$P1/ca.pem" -noout -fingerprint -sha256)
fp=${fp#*=}
[[ $fp =~ ^([0-9A-F]{2}:){31}[0-9A-F]{2}$ ]] || fail "openssl's fingerprint '$fp' has an odd form"
grep -q -x "  $fp" "$TMPD/default.out" || fail "the summary lacks the root fingerprint $fp"
grep -q "SANs: *DNS:localhost, IP Address:127.0.0.1" "$TMPD/default.out" ||
    fail "the summary lacks the SANs"
log "summary prints the root SHA-256 fingerprint $fp"

# ----------------------------------------------------------------- never overwrite
snapshot "$P1"
certs_ok again "$P1"
same_files "$P1" ca.key ca.pem server.key server.pem server-chain.pem
grep -q "^root CA (kept)" "$TMPD/again.out" || fail "second run does not report the CA as kept"
grep -q "^server certificate (kept)" "$TMPD/again.out" ||
    fail "second run does not report the server certificate as kept"
log "second run: every file byte-identical, reported as kept"

# Options that would give a different certificate do not replace the existing one either.
certs kept-other "$P1" --fqdn mps.example.com --rsa3072
expect "status with other options" "$RC" 0
same_files "$P1" ca.key ca.pem server.key server.pem server-chain.pem
grep -q "does not name mps.example.com" "$TMPD/kept-other.err" ||
    fail "no warning that the kept certificate lacks the new FQDN"
grep -q "the CA key is RSA 2048 but --rsa3072 was given" "$TMPD/kept-other.err" ||
    fail "no warning that the kept CA is RSA-2048"
grep -q "the kept server key is RSA 2048, not 3072" "$TMPD/kept-other.err" ||
    fail "no warning that the kept server key is RSA-2048"
log "--fqdn/--rsa3072 on an existing dir: files kept, a warning says so"

certs if-missing --if-missing "$P1"
expect "--if-missing status" "$RC" 0
if [ -s "$TMPD/if-missing.out" ] || [ -s "$TMPD/if-missing.err" ]; then
    fail "--if-missing is not silent: $(cat "$TMPD/if-missing.out" "$TMPD/if-missing.err")"
fi
same_files "$P1" ca.key ca.pem server.key server.pem server-chain.pem
log "--if-missing with an existing chain: status 0, no output, files unchanged"

certs_ok force --force-server "$P1"
same_files "$P1" ca.key ca.pem
changed "$P1" server.key server.pem server-chain.pem
cat "$S1" "$P1/ca.pem" >"$TMPD/expected-chain.pem"
cmp -s "$P1/server-chain.pem" "$TMPD/expected-chain.pem" ||
    fail "server-chain.pem after --force-server is not the new server.pem + ca.pem"
key_matches "$P1/server.key" "$S1"
openssl verify -CAfile "$P1/ca.pem" "$S1" >/dev/null 2>&1 ||
    fail "re-issued server.pem does not verify"
grep -q "^server certificate (re-issued)" "$TMPD/force.out" || fail "--force-server not reported"
log "--force-server: new server key, certificate and chain, CA byte-identical"

# The chain is rebuilt when missing, identically.
snapshot "$P1"
rm "$P1/server-chain.pem"
certs_ok rebuild "$P1"
same_files "$P1" ca.key ca.pem server.key server.pem server-chain.pem
log "a deleted server-chain.pem is rebuilt byte-identical"

# ------------------------------------------------------------------------ refusals
certs_refused 2 bad-option --no-such-option "$TMPD/never"
certs_refused 2 no-dir --fqdn mps.example.com
certs_refused 2 two-dirs "$TMPD/never" "$TMPD/never2"
certs_refused 2 bad-days --days soon "$TMPD/never"
certs_refused 2 bad-ip --ip 300.1.2.3 "$TMPD/never"
certs_refused 2 ip-as-fqdn --fqdn 192.0.2.1 "$TMPD/never"
certs_refused 2 bad-device --device ../escape "$TMPD/never"
certs_refused 2 force-if-missing --force-server --if-missing "$TMPD/never"
[ ! -e "$TMPD/never" ] || fail "a refused run created its directory"
"$MPSD_CERTS" --help | grep -q "^Usage: mpsd-certs" || fail "--help has no usage line"

# Half a CA is never completed with a new one, not even by --force-server.
snapshot "$P1"
mv "$P1/ca.pem" "$TMPD/ca.pem.aside"
certs_refused 1 half-ca "$P1"
certs_refused 1 half-ca-force --force-server "$P1"
[ ! -e "$P1/ca.pem" ] || fail "a new ca.pem was written next to the old ca.key"
same_files "$P1" ca.key server.key server.pem server-chain.pem
mv "$TMPD/ca.pem.aside" "$P1/ca.pem"

# A leaf-only (or otherwise stale) chain is refused, not silently served or replaced.
cp "$S1" "$P1/server-chain.pem"
certs_refused 1 leaf-only-chain "$P1"
cmp -s "$P1/server-chain.pem" "$S1" || fail "the refused chain file was modified"
cp "$TMPD/snap/server-chain.pem" "$P1/server-chain.pem"

# A server key that is not the certificate's.
mv "$P1/server.key" "$TMPD/server.key.aside"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$P1/server.key" 2>/dev/null
certs_refused 1 key-mismatch "$P1"
mv "$TMPD/server.key.aside" "$P1/server.key"
certs_ok restored "$P1"
same_files "$P1" ca.key ca.pem server.key server.pem server-chain.pem

# ------------------------------------------------- RSA-3072, other FQDN, devices
P2="$TMPD/pki3072"
certs_ok rsa3072 --rsa3072 --fqdn mps.example.com --ip 192.0.2.10 --ip 2001:db8::10 \
    --days 60 --device dev1 "$P2"
S2="$P2/server.pem"
cert "$P2/ca.pem"
expect "3072 CA subject" "$(field 'Subject: ')" "CN = mpsd dev root CA mps.example.com"
expect "3072 CA key size" "$(field 'Public-Key: ')" "(3072 bit)"
expect "3072 CA signature" "$(field 'Signature Algorithm: ')" sha384WithRSAEncryption
cert "$S2"
expect "3072 server subject" "$(field 'Subject: ')" "CN = mps.example.com"
expect "3072 server SAN" "$(ext "Subject Alternative Name")" \
    "DNS:mps.example.com, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:10"
expect "3072 server key size" "$(field 'Public-Key: ')" "(3072 bit)"
expect "3072 server signature" "$(field 'Signature Algorithm: ')" sha384WithRSAEncryption
valid_for "$S2" 60
key_matches "$P2/server.key" "$S2"
openssl verify -CAfile "$P2/ca.pem" -purpose sslserver -verify_hostname mps.example.com \
    -verify_ip 192.0.2.10 "$S2" >/dev/null 2>&1 || fail "RSA-3072 server.pem does not verify"
log "--rsa3072: CA and server RSA-3072 with sha384WithRSAEncryption; SANs fqdn + --ip, no 127.0.0.1"

D="$P2/devices/dev1.pem"
mode_is "$P2/devices/dev1.key" 600
cert "$D"
expect "dev1 subject" "$(field 'Subject: ')" "CN = dev1"
expect "dev1 issuer" "$(field 'Issuer: ')" "CN = mpsd dev root CA mps.example.com"
expect "dev1 EKU" "$(ext "Extended Key Usage")" "TLS Web Client Authentication"
expect "dev1 key size" "$(field 'Public-Key: ')" "(3072 bit)"
key_matches "$P2/devices/dev1.key" "$D"
expect "dev1 verify sslclient" \
    "$(openssl verify -CAfile "$P2/ca.pem" -purpose sslclient "$D" 2>&1)" "$D: OK"
# The check above can fail: a client certificate is no server's, nor the other CA's.
! openssl verify -CAfile "$P2/ca.pem" -purpose sslserver "$D" >/dev/null 2>&1 ||
    fail "dev1 verifies as a TLS server certificate"
! openssl verify -CAfile "$P1/ca.pem" -purpose sslclient "$D" >/dev/null 2>&1 ||
    fail "dev1 verifies against another CA"
log "device dev1: CN=dev1, clientAuth only, verify -purpose sslclient OK (sslserver not)"

# A device added later (dev1 named again): only the new one is issued.
snapshot "$P2"
certs_ok add-device --device dev1 --device dev2 "$P2"
same_files "$P2" ca.key ca.pem server.key server.pem server-chain.pem devices/dev1.key \
    devices/dev1.pem
cert "$P2/devices/dev2.pem"
expect "dev2 subject" "$(field 'Subject: ')" "CN = dev2"
openssl verify -CAfile "$P2/ca.pem" -purpose sslclient "$P2/devices/dev2.pem" >/dev/null 2>&1 ||
    fail "dev2 does not verify"
grep -q "^device certificate dev1 (kept)" "$TMPD/add-device.out" || fail "dev1 not reported as kept"
log "--device dev2 later: dev2 issued by the same CA, every other file byte-identical"

# ------------------------------------------------------------------- TLS handshakes
# first_cert FILE / rest_certs FILE: a PEM bundle's first certificate and the ones after it.
first_cert() { awk '{ print } /-----END CERTIFICATE-----/ { exit }' "$1"; }
rest_certs() { awk 'done { print } /-----END CERTIFICATE-----/ { done = 1 }' "$1"; }

# s_server NAME ARGS: openssl s_server -www (ARGS added) on a port of its choosing (it prints
# "ACCEPT 127.0.0.1:PORT" once it listens). Sets SERVER_PORT.
s_server() {
    local name=$1
    shift
    bg "$name" openssl s_server -accept 127.0.0.1:0 -www "$@"
    wait_port SERVER_PORT "$TMPD/$name.out" "ACCEPT 127.0.0.1:" "openssl s_server $name"
}

# serve_chain NAME DIR [ARGS]: s_server NAME (ARGS added) serving DIR/server-chain.pem as it
# is: its first certificate as the leaf, the rest as the chain sent after it (-cert_chain with
# the whole file would send the leaf twice). Sets SERVER_PORT.
serve_chain() {
    local name=$1 d=$2
    shift 2
    first_cert "$d/server-chain.pem" >"$TMPD/$name-leaf.pem"
    rest_certs "$d/server-chain.pem" >"$TMPD/$name-rest.pem"
    s_server "$name" -cert "$TMPD/$name-leaf.pem" -cert_chain "$TMPD/$name-rest.pem" \
        -key "$d/server.key" "$@"
}

# handshake NAME ARGS: openssl s_client (ARGS added) to SERVER_PORT without SNI, as AMT: one
# handshake and an HTTP GET; output in $TMPD/NAME.client, status in RC. (lib.sh's s_client
# closes at once; these checks need the server's answer.)
handshake() {
    local name=$1
    shift
    RC=0
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout "$T" openssl s_client \
        -connect "127.0.0.1:$SERVER_PORT" -noservername -verify_return_error -ign_eof "$@" \
        >"$TMPD/$name.client" 2>&1 || RC=$?
}

# chain_sent NAME LEAF_CN CA_CN: the server sent exactly the leaf and the CA (depth 0 and 1).
chain_sent() {
    local f="$TMPD/$1.client"
    grep -q "^ 0 s:CN = $2\$" "$f" && grep -q "^ 1 s:CN = $3\$" "$f" && ! grep -q "^ 2 s:" "$f"
}

handshake_ok() { # handshake_ok NAME: verified, and the -www page came back
    [ "$RC" = 0 ] || fail "$1: s_client status $RC: $(tail -n 5 "$TMPD/$1.client")"
    grep -q "Verify return code: 0 (ok)" "$TMPD/$1.client" || fail "$1: verification failed"
    grep -q "HTTP/1.0 200 ok" "$TMPD/$1.client" || fail "$1: no HTTP answer over TLS"
}

serve_chain srv1 "$P1"
handshake tls-localhost -CAfile "$P1/ca.pem" -verify_hostname localhost -verify_ip 127.0.0.1
handshake_ok tls-localhost
chain_sent tls-localhost localhost "mpsd dev root CA localhost" ||
    fail "s_server did not send leaf + CA: $(grep '^ [0-9] s:' "$TMPD/tls-localhost.client")"
log "TLS to s_server: verified for localhost and 127.0.0.1, chain depth 0 and 1 sent"

handshake tls-wrong-name -CAfile "$P1/ca.pem" -verify_hostname wrong.example.com
[ "$RC" != 0 ] || fail "s_client accepted the certificate for wrong.example.com"
handshake tls-wrong-ca -CAfile "$P2/ca.pem" -verify_hostname localhost
[ "$RC" != 0 ] || fail "s_client accepted the certificate with another CA"
log "TLS negative checks: a wrong host name and a foreign CA are rejected"

# Control: a leaf-only server fails chain_sent, so that check can fail.
s_server leafonly -cert "$S1" -key "$P1/server.key"
handshake tls-leafonly -CAfile "$P1/ca.pem" -verify_hostname localhost
handshake_ok tls-leafonly
! chain_sent tls-leafonly localhost "mpsd dev root CA localhost" ||
    fail "chain_sent cannot tell a leaf-only server"
log "control: a leaf-only server is told apart by the chain check"

# The chain file as a TLS server loads it in one call (SSL_CTX_use_certificate_chain_file):
# Python's ssl.load_cert_chain.
bg pyserver python3 -c '
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.create_server(("127.0.0.1", 0))
print("ready %d" % srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    conn.settimeout(float(sys.argv[3]))
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:  # read it all: closing on unread data resets
                data = tls.recv(4096)
                if not data:
                    break
                request += data
            tls.sendall(b"HTTP/1.0 200 ok\r\n\r\n")
            tls.unwrap()  # close_notify: OpenSSL 3 clients count a bare EOF as an error
    except (ssl.SSLError, OSError):
        pass
' "$P1/server-chain.pem" "$P1/server.key" "$T"
wait_port SERVER_PORT "$TMPD/pyserver.out" "ready " "the Python TLS server"
handshake tls-python -CAfile "$P1/ca.pem" -verify_hostname localhost
handshake_ok tls-python
chain_sent tls-python localhost "mpsd dev root CA localhost" ||
    fail "load_cert_chain(server-chain.pem) did not send leaf + CA"
log "TLS with server-chain.pem loaded as one file: verified, chain depth 0 and 1 sent"

# Mutual TLS with the RSA-3072 PKI: the server requires a device certificate from its CA.
serve_chain srv2 "$P2" -Verify 1 -CAfile "$P2/ca.pem" -verify_return_error
handshake tls-mutual -CAfile "$P2/ca.pem" -verify_hostname mps.example.com \
    -cert "$P2/devices/dev1.pem" -key "$P2/devices/dev1.key"
handshake_ok tls-mutual
chain_sent tls-mutual mps.example.com "mpsd dev root CA mps.example.com" ||
    fail "RSA-3072 s_server did not send leaf + CA"
grep -q "^depth=0 CN = dev1\$" "$TMPD/srv2.err" || fail "s_server did not verify dev1's certificate"
log "mutual TLS (RSA-3072): server verified for mps.example.com, device dev1 accepted"

handshake tls-no-client-cert -CAfile "$P2/ca.pem" -verify_hostname mps.example.com
! grep -q "HTTP/1.0 200 ok" "$TMPD/tls-no-client-cert.client" ||
    fail "s_server answered a client without a certificate"
handshake tls-foreign-client -CAfile "$P2/ca.pem" -verify_hostname mps.example.com \
    -cert "$S1" -key "$P1/server.key"
! grep -q "HTTP/1.0 200 ok" "$TMPD/tls-foreign-client.client" ||
    fail "s_server answered a client certificate from another CA"
log "mutual TLS negative checks: no client certificate and a foreign one are refused"

# The seed's stunnel configuration (ciphers = AES128-SHA): TLS 1.2 with RSA key transport,
# which needs keyEncipherment in the server certificate.
handshake tls12-aes128-sha -CAfile "$P2/ca.pem" -verify_hostname mps.example.com -tls1_2 \
    -cipher AES128-SHA -cert "$P2/devices/dev2.pem" -key "$P2/devices/dev2.key"
handshake_ok tls12-aes128-sha
grep -q "Cipher is AES128-SHA" "$TMPD/tls12-aes128-sha.client" || fail "AES128-SHA not negotiated"
log "TLS 1.2 AES128-SHA (the seed's stunnel cipher) with device dev2: ok"

log "PASS"
