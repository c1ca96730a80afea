#!/bin/bash
# meshcentral_apf.sh - MeshCentral's device-side APF client (amt-apfclient.js from the
# meshcentral npm package, unmodified) against mpsd: with SendProtocolVersion = no on the
# [core] listener (plain TCP) and on a tls listener, CIRA completes and a WS-Management request
# through http_proxy reaches the forwarded 16992 (the client relays it to a local responder);
# on a default listener the client gives up on our PROTOCOLVERSION ("CMD: 192 is not
# implemented"), which is why the directive exists. Runs where the package is installed:
# MESHCENTRAL_DIR=/path/to/node_modules/meshcentral (or the directory npm install ran in).
# SPDX-License-Identifier: Apache-2.0
if [ -z "${MESHCENTRAL_DIR:-}" ]; then
    echo "SKIP: MESHCENTRAL_DIR is not set (npm install meshcentral; MESHCENTRAL_DIR=.../node_modules/meshcentral)"
    exit 77
fi
. "$(dirname "$0")/lib.sh"

MC_DIR=$MESHCENTRAL_DIR
[ -f "$MC_DIR/agents/modules_meshcore/amt-apfclient.js" ] || MC_DIR="$MC_DIR/node_modules/meshcentral"
[ -f "$MC_DIR/agents/modules_meshcore/amt-apfclient.js" ] ||
    fail "MESHCENTRAL_DIR=$MESHCENTRAL_DIR holds no agents/modules_meshcore/amt-apfclient.js"
command -v node >/dev/null 2>&1 || fail "MESHCENTRAL_DIR is set but node is not installed"
command -v curl >/dev/null 2>&1 || fail "curl is needed"
command -v openssl >/dev/null 2>&1 || fail "openssl is needed"
DRIVER="$top_srcdir/tests/integration/meshcentral_apf.js"
T=$((10 * SLOW))
log "client: $MC_DIR/agents/modules_meshcore/amt-apfclient.js" \
    "(meshcentral $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$MC_DIR/package.json" | head -n 1))"

make_certs
CORE_EXTRA="SendProtocolVersion = no" CONF_EXTRA="$(tls_section "SendProtocolVersion = no")
$(tls_section)
[module http_proxy]
Listen = 127.0.0.1:0" write_conf
start_mpsd
P_TLS_NO=$(ready_port tls 1)
P_TLS_YES=$(ready_port tls 2)
HP=$(ready_port http_proxy)

# client NAME URL UUID: the driver in the background, its files in $TMPD/NAME/.
client() {
    mkdir -p "$TMPD/$1"
    bg "mc-$1" node "$DRIVER" "$MC_DIR" "$2" "$3" amtuser 'P@ssw0rd' "$1" "$TMPD/$1"
}
# wsman NAME: a WS-Management POST to NAME:16992 through http_proxy; the reply on stdout.
wsman() {
    curl -sS --max-time "$T" -x "http://127.0.0.1:$HP" -H 'Content-Type: application/soap+xml' \
        --data-binary "<Envelope><Body><Get>AMT_GeneralSettings $1</Get></Body></Envelope>" \
        "http://$1:16992/wsman"
}
# cira_through NAME URL UUID WHAT: the client registers NAME and relays a request.
cira_through() {
    local name=$1 want
    client "$name" "$2" "$3"
    wait_log "started port forwarding to address $name.*16992" "$T"
    # The client asks tcpip-forward with want-reply = 0 (binzerostring(1, 1) is one zero
    # byte): mpsd answers none, as RFC 4254 says, so the client stays at its first port,
    # 16992 (MeshCentral's MPS replies anyway and gets 16993 too).
    grep -q "APF: Send tcpip-forward $name:16992" "$TMPD/$name/client.log" ||
        fail "$4: $(cat "$TMPD/$name/client.log")"
    want=$(printf '%s' "<Envelope><Body><Get>AMT_GeneralSettings $name</Get></Body></Envelope>" | wc -c)
    out=$(wsman "$name") || fail "$4: the WS-Management request failed: $out"
    [ "$out" = "<?xml version=\"1.0\"?><a:Envelope>relayed POST /wsman $want bytes</a:Envelope>" ] ||
        fail "$4: reply '$out'"
    grep -q "^POST /wsman host=$name:16992 body=<Envelope><Body><Get>AMT_GeneralSettings $name<" \
        "$TMPD/$name/requests.log" || fail "$4: the responder saw: $(cat "$TMPD/$name/requests.log")"
    ! grep -q "is not implemented" "$TMPD/$name/client.log" ||
        fail "$4: the client refused a command: $(grep "not implemented" "$TMPD/$name/client.log")"
    grep -q "APF: User Authentication successful" "$TMPD/$name/client.log" ||
        fail "$4: $(cat "$TMPD/$name/client.log")"
    log "$4: CIRA completed (auth, pfwd, 16992), a WS-Management POST relayed to the local AMT"
}

cira_through mc-tcp.example.com "tcp://127.0.0.1:$AMT_PORT" 11111111-2222-3333-4444-555555555555 \
    "plain TCP, [core] SendProtocolVersion = no"
cira_through mc-tls.example.com "tls://127.0.0.1:$P_TLS_NO" 11111111-2222-3333-4444-666666666666 \
    "TLS, [module tls] SendProtocolVersion = no"

# The default listener sends PROTOCOLVERSION first, as AMT expects: this client gives up.
client mc-default.example.com "tls://127.0.0.1:$P_TLS_YES" 11111111-2222-3333-4444-777777777777
wait_for "$T" "the client's refusal of PROTOCOLVERSION" \
    grep -qs "CMD: 192 is not implemented" "$TMPD/mc-default.example.com/client.log"
log_has "started port forwarding to address mc-default.example.com" &&
    fail "the client registered on a listener sending PROTOCOLVERSION"
log "default listener: PROTOCOLVERSION sent first, the client aborts ('CMD: 192 is not implemented')"

# The tunnels are still there and working after all this.
out=$(wsman mc-tcp.example.com) || fail "second request over TCP: $out"
require_alive
log "PASS"
