# workers_lib.sh - what workers.sh and workers_tls.sh share: the per-loop lines SIGUSR1 makes
# mpsd log, and reaching a device through both console proxies.
# SPDX-License-Identifier: Apache-2.0
#
# Sourced after lib.sh. The test sets W (its loops), MPSD_PID and MPSD_LOG (start_mpsd), SP
# and HP (the socks5 and http_proxy ports), S5CLIENT, and HAVE_W=0 when it runs without the
# Workers build (one loop and no loop lines; default 1).
# shellcheck disable=SC2034 # PD, PT, STATS and LOOP_OF are for the tests that source this

# One line per loop on SIGUSR1 and at exit: loop K: D devices, T tunnels.
LOOP_RE='\] loop [0-9][0-9]*: [0-9][0-9]* devices, [0-9][0-9]* tunnels'
LOOP_SED='s/.*\] loop \([0-9]*\): \([0-9]*\) devices, \([0-9]*\) tunnels.*/\1 \2 \3/p'

# loop_stats: SIGUSR1; wait for the statistics line and W new loop lines; LD[k] and LT[k]
# are loop k's devices (forwarding) and tunnels (every logged-in connection, also one whose
# names were all refused), LD_SUM and LT_SUM their sums. The previous values go to PD and PT.
declare -a LD LT PD PT
LD_SUM=0
LT_SUM=0
_loops_more() {
    _stats_more "$1" && [ "$(grep -c -e "$LOOP_RE" "$MPSD_LOG" || true)" -ge "$2" ]
}
loop_stats() {
    PD=("${LD[@]}")
    PT=("${LT[@]}")
    local before_s before_l
    before_s=$(grep -c '\] statistics: ' "$MPSD_LOG" || true)
    before_l=$(grep -c -e "$LOOP_RE" "$MPSD_LOG" || true)
    kill -USR1 "$MPSD_PID"
    if [ "${HAVE_W:-1}" = 0 ]; then
        wait_for $((5 * SLOW)) "the statistics line" _stats_more "$before_s"
        STATS=$(grep '\] statistics: ' "$MPSD_LOG" | tail -n 1)
        LD[0]=$(stats_value "now")
        LT[0]=$(stats_value "devices,")
        LD_SUM=${LD[0]}
        LT_SUM=${LT[0]}
        return
    fi
    wait_for $((5 * SLOW)) "the statistics line and $W loop lines" _loops_more "$before_s" \
        $((before_l + W))
    STATS=$(grep '\] statistics: ' "$MPSD_LOG" | tail -n 1)
    read_loop_lines "$(grep -e "$LOOP_RE" "$MPSD_LOG" | tail -n "$W")"
}
# read_loop_lines TEXT: W loop lines, loops 0..W-1 each exactly once, into LD, LT, LD_SUM.
read_loop_lines() {
    local k d t seen=""
    LD_SUM=0
    LT_SUM=0
    while read -r k d t; do
        [ "$k" -lt "$W" ] || fail "a line for loop $k with Workers = $W: $1"
        case " $seen " in *" $k "*) fail "loop $k twice in one report: $1" ;; esac
        seen+=" $k"
        LD[k]=$d
        LT[k]=$t
        LD_SUM=$((LD_SUM + d))
        LT_SUM=$((LT_SUM + t))
    done < <(sed -n "$LOOP_SED" <<<"$1")
    [ "$(wc -w <<<"$seen")" = "$W" ] || fail "not one line per loop: $1"
}
# loops_reset: every loop's counts zero (before the first loop_stats).
loops_reset() {
    local k
    LD=()
    LT=()
    for ((k = 0; k < W; k++)); do
        LD[k]=0
        LT[k]=0
    done
}
loops_text() {
    local k s=""
    for ((k = 0; k < W; k++)); do s+="loop $k: ${LD[k]} devices, ${LT[k]} tunnels; "; done
    echo "${s%; }"
}

# placed WHAT: after a new connection logged in: the loop whose tunnels grew by one, all
# others unchanged (PT before, LT now); sets LOOP_OF. Plumbing: 0.
placed() {
    local k grew=""
    LOOP_OF=0
    [ "${HAVE_W:-1}" = 1 ] || return 0
    for ((k = 0; k < W; k++)); do
        if [ "${LT[k]}" = $((PT[k] + 1)) ]; then
            [ -z "$grew" ] || fail "$1: two loops grew: before ${PT[*]}, now ${LT[*]} tunnels"
            grew=$k
        elif [ "${LT[k]}" != "${PT[k]}" ]; then
            fail "$1: loop $k went from ${PT[k]} to ${LT[k]} tunnels"
        fi
    done
    [ -n "$grew" ] || fail "$1: no loop grew: before ${PT[*]}, now ${LT[*]} tunnels"
    LOOP_OF=$grew
}

# ----------------------------------------------------------------------- devices, consoles
uuid() { printf '8c6a3b2e-5d1f-4e7a-9b0c-%012x' "$1"; }
s5() { python3 "$S5CLIENT" --port "$SP" --timeout "$T" "$@" || true; }
pcurl() { curl -q -sS --max-time "$T" -x "http://127.0.0.1:$HP" "$@"; }

# reach I: devI through the http_proxy (a GET: amtsim names itself; a WS-Man POST echoed
# byte-exact) and through SOCKS5 (curl's GET by name, an echo of 20000 bytes).
wsman_body() { # wsman_body I: a WS-Man Get of AMT_GeneralSettings, padded to about 6 KB
    printf '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:To>/wsman</a:To><w:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings</w:ResourceURI><a:MessageID>uuid:%s</a:MessageID></s:Header><s:Body>' "$(uuid "$1")"
    head -c 4500 /dev/urandom | base64 -w 0
    printf '</s:Body></s:Envelope>'
}
reach() {
    local i=$1 fqdn="dev$1.example.com" want body out
    want="amtsim $fqdn $(uuid "$i") /wsman"
    body=$(pcurl "http://$fqdn:16992/wsman") || fail "GET $fqdn:16992 through the http_proxy"
    [ "$body" = "$want" ] || fail "GET $fqdn through the http_proxy: '$body'"
    wsman_body "$i" >"$TMPD/wsman.$i"
    pcurl -H 'Content-Type: application/soap+xml;charset=UTF-8' --data-binary "@$TMPD/wsman.$i" \
        -o "$TMPD/wsman.$i.got" "http://$fqdn:16992/wsman" || fail "POST to $fqdn:16992"
    cmp -s "$TMPD/wsman.$i" "$TMPD/wsman.$i.got" ||
        fail "the WS-Man POST to $fqdn came back different ($(wc -c <"$TMPD/wsman.$i.got") bytes)"
    body=$(curl -q -sS --max-time "$T" --socks5-hostname "127.0.0.1:$SP" \
        "http://$fqdn:16992/wsman") || fail "GET $fqdn:16992 through SOCKS5"
    [ "$body" = "$want" ] || fail "GET $fqdn through SOCKS5: '$body'"
    out=$(s5 echo --device "$fqdn" --dport 16994 --bytes 20000 --seed "$i")
    [ "$out" = ok ] || fail "SOCKS5 echo of 20000 bytes to $fqdn:16994: $out"
}
