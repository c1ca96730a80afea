#!/bin/bash
# compat_config.sh - mpsd started from the Intel reference MPS's own configuration files
# (tests/compat: mps.config, Mps_dynamic.config, NotificationList.config and
# AuthorizedServersList.config as seeds 002/003 give them).
# SPDX-License-Identifier: Apache-2.0
#
# The files are copied into an "installation folder" (conf/ and logs/, as seed 002 §4.3.2 lays
# it out) and mpsd runs there, as the reference's MPS.exe does. Changed in the copies, and only
# there: every ...ListenPort becomes 0 (mpsd binds free ports and lists them in its ReadyFile,
# so parallel tests never collide), and the seed's lab address 10.10.10.100 becomes the host
# name localhost (a name, which also shows that FQDNs are taken where the seed says "IP or
# FQDN"). What an unchanged mps.config cannot say is given with mpsd's -o: ReadyFile,
# ModulePath (the build's modules), AllowRoot (CI runs as root), and for the rotation run the
# log sizes.
#
#  1. mpsd -t on the files exactly as in tests/compat (ports and addresses unchanged).
#  2. --convert-config: a comment per mapped key; the output passes mpsd -t.
#  3. The copy starts: amtsim devices over plain TCP (the reference takes devices from stunnel,
#     and so does this config), curl through the SOCKS5 and the HTTP proxy, admin_soap listens;
#     the log file is logs/MPS.log and starts with the Heading line; SIGHUP re-reads
#     Mps_dynamic.config (TraceLevels with DEBUG: DEBUG lines appear).
#  4. The converted mps.conf gives the same listeners (labels and addresses).
#  5. Unsupported keys and sections: warnings naming mps.config:LINE, mpsd -t still passes.
#  6. The layout without sections: the same conversion, and it serves a device and a console.
#  7. Rotation: MPS.log.1 is the first full file, then MPS.log.2, ...; after LogFileMaxFiles
#     the oldest is overwritten (003 §6.1); every file starts with the Heading.
#  8. DllName naming a vendor library (built here): auth_legacy accepts and refuses; its
#     errorString reaches the log.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed (the console)"
    exit 77
}
for m in socks5 http_proxy admin_soap notify_soap; do
    if [ ! -e "$MODDIR/$m.so" ]; then
        echo "SKIP: module $m is not built (the reference's services need it)"
        exit 77
    fi
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

COMPAT="$top_srcdir/tests/compat"
HEADING="Intel(R) Management Presence Server"
T=$((20 * SLOW))

# install DIR: the reference's installation folder, the seed's files in conf/, ports rewritten.
install_mps() {
    local dir=$1
    mkdir -p "$dir/conf" "$dir/logs"
    cp "$COMPAT/mps.config" "$COMPAT/Mps_dynamic.config" "$COMPAT/NotificationList.config" \
        "$COMPAT/AuthorizedServersList.config" "$dir/conf/"
    sed -i -e 's/^\(AMT\|Socks\|Http\|SOAP\)ListenPort=.*/\1ListenPort=0/' \
        -e 's/10\.10\.10\.100/localhost/g' "$dir/conf/mps.config"
    # DllParameters=file AMTAuthFile.txt: the sample's user:password file, relative to the
    # directory the MPS runs in (amtsim's default account).
    printf 'amtuser:P@ssw0rd\n' >"$dir/AMTAuthFile.txt"
}

# start_ref DIR CONF [MPSD ARGS]: mpsd in DIR (its working directory) with CONF and the -o
# settings; waits for the ReadyFile and the start line in the log file LOGFILE.
LOGFILE=""
start_ref() {
    local dir=$1 conf=$2
    shift 2
    READY_FILES=$((READY_FILES + 1))
    READY_FILE="$TMPD/ready.$READY_FILES"
    MPSD_RUNS=$((MPSD_RUNS + 1))
    MPSD_LOG="$TMPD/mpsd.$MPSD_RUNS.stderr"
    (cd "$dir" && exec "$MPSD" -c "$conf" -o "ReadyFile=$READY_FILE" -o "ModulePath=$MODDIR" \
        -o AllowRoot=true "$@") >"$MPSD_LOG" 2>&1 &
    MPSD_PID=$!
    local end=$((SECONDS + 10 * SLOW))
    until [ -e "$READY_FILE" ] && grep -q "listening for Intel AMT devices" "$LOGFILE" 2>/dev/null; do
        if ! kill -0 "$MPSD_PID" 2>/dev/null; then
            MPSD_PID=""
            cat "$LOGFILE" 2>/dev/null | tail -n 20
            fail "mpsd exited during startup"
        fi
        [ "$SECONDS" -lt "$end" ] || fail "mpsd did not start within $((10 * SLOW)) s"
        sleep 0.05
    done
    AMT_PORT=$(ready_port core)
    log "mpsd started in $dir: $(tr '\n' ',' <"$READY_FILE")"
}

# stop_ref: SIGTERM and exit status 0; no sanitizer report on stderr.
stop_ref() {
    stop_mpsd
}

# console_checks: curl through both proxies reaches dev0's 16992 (amtsim's HTTP responder).
console_checks() {
    local s5 hp body
    s5=$(ready_addr socks5)
    hp=$(ready_addr http_proxy)
    body=$(curl -q -sS --max-time "$T" --socks5-hostname "$s5" http://dev0.example.com:16992/s5) ||
        fail "curl through the SOCKS5 listener $s5 failed"
    [ "$body" = "amtsim dev0.example.com 8c6a3b2e-5d1f-4e7a-9b0c-000000000000 /s5" ] ||
        fail "curl through SOCKS5: body '$body'"
    log "curl --socks5-hostname $s5: $body"
    body=$(curl -q -sS --max-time "$T" -x "http://$hp" http://dev1.example.com:16992/hp) ||
        fail "curl through the HTTP proxy $hp failed"
    [ "$body" = "amtsim dev1.example.com 8c6a3b2e-5d1f-4e7a-9b0c-000000000001 /hp" ] ||
        fail "curl through the HTTP proxy: body '$body'"
    log "curl -x http://$hp: $body"
}

start_devices() {
    bg "sim$MPSD_RUNS" "$AMTSIM" --port "$AMT_PORT" --count "$1" --ports 16992,16994 --quiet \
        --ready-file "$TMPD/sim$MPSD_RUNS.ready"
    wait_for $((20 * SLOW)) "$1 devices forwarding" grep -qxs "$1" "$TMPD/sim$MPSD_RUNS.ready"
}

# ---------------------------------------------------------------- 1. mpsd -t, files unchanged
ORIG="$TMPD/orig"
mkdir -p "$ORIG/conf" "$ORIG/logs"
cp "$COMPAT"/*.config "$ORIG/conf/"
printf 'amtuser:P@ssw0rd\n' >"$ORIG/AMTAuthFile.txt"
(cd "$ORIG" && "$MPSD" -t -c conf/mps.config -o "ModulePath=$MODDIR" -o AllowRoot=true) \
    >"$TMPD/t.out" 2>&1 || { cat "$TMPD/t.out"; fail "mpsd -t on the unchanged mps.config failed"; }
grep -q "the Intel reference MPS's mps.config" "$TMPD/t.out" ||
    fail "mpsd -t did not say it read the reference format: $(cat "$TMPD/t.out")"
log "mpsd -t on tests/compat/mps.config (unchanged): ok"

# ---------------------------------------------------------------- 2. --convert-config
"$MPSD" --convert-config "$ORIG/conf/mps.config" >"$TMPD/orig.conf" 2>"$TMPD/convert.err" ||
    fail "--convert-config failed: $(cat "$TMPD/convert.err")"
for want in '^# from mps.config:4 SocksListenIP = 10.10.10.100 and mps.config:5 SocksListenPort = 8090$' \
    '^Listen = 10.10.10.100:8090$' '^Listen = 127.0.0.1:16982$' '^Listen = 10.10.10.100:7793$' \
    '^# from mps.config:6 HttpListenIP = 10.10.10.100 and mps.config:7 HttpListenPort = 8080$' \
    '^\[module http_proxy\]$' '^\[module socks5\]$' '^\[module admin_soap\]$' \
    '^# from Mps_dynamic.config:1 TraceLevels = INFO|ERROR|WARNING$' \
    '^LogFileNumbering = cyclic$' '^Plugin = auth_file$' \
    "^NotificationList = $ORIG/conf/NotificationList.config\$" \
    "^AuthorizedServersList = $ORIG/conf/AuthorizedServersList.config\$"; do
    grep -q -e "$want" "$TMPD/orig.conf" || fail "--convert-config output has no line /$want/"
done
(cd "$ORIG" && "$MPSD" -t -c "$TMPD/orig.conf" -o "ModulePath=$MODDIR" -o AllowRoot=true) \
    >"$TMPD/t2.out" 2>&1 || { cat "$TMPD/t2.out"; fail "mpsd -t on the converted mps.conf failed"; }
log "--convert-config: $(grep -c '^# from ' "$TMPD/orig.conf") mapped keys, output passes mpsd -t"

# ---------------------------------------------------------------- 3. the copy serves
INST="$TMPD/MPS"
install_mps "$INST"
LOGFILE="$INST/logs/MPS.log"
start_ref "$INST" conf/mps.config
[ "$(head -n 1 "$LOGFILE")" = "$HEADING" ] ||
    fail "the log's first line is '$(head -n 1 "$LOGFILE")', not the Heading"
log "logs/MPS.log starts with the Heading: $HEADING"
ready_addr admin_soap >/dev/null
start_devices 3
console_checks
grep -q "Intel remote client dev2.example.com started port forwarding" "$LOGFILE" ||
    fail "no port forwarding line for dev2 in logs/MPS.log"
LISTENERS_REF=$(sed 's/:[0-9]*$//' "$READY_FILE" | sort)
kill "$BG_PID" 2>/dev/null || true
# Mps_dynamic.config is re-read on SIGHUP, as the reference reads it at run time.
grep -q '\[LM DEBUG\]' "$LOGFILE" && fail "DEBUG lines before TraceLevels asked for them"
printf 'TraceLevels="INFO|ERROR|WARNING|DEBUG"\n' >"$INST/conf/Mps_dynamic.config"
kill -HUP "$MPSD_PID"
wait_for $((10 * SLOW)) "the reload" grep -q "reload: .* authorized servers" "$LOGFILE"
"$AMTSIM" --port "$AMT_PORT" --fqdn "hup%d.example.com" --ports 16992 --quiet --exit-when-ready \
    >/dev/null || fail "a device after SIGHUP did not connect"
wait_for $((10 * SLOW)) "DEBUG lines after SIGHUP" grep -q '\[LM DEBUG\]' "$LOGFILE"
log "SIGHUP re-read Mps_dynamic.config: DEBUG lines now"
cp "$COMPAT/Mps_dynamic.config" "$INST/conf/"
stop_ref

# ---------------------------------------------------------------- 4. converted: same listeners
"$MPSD" --convert-config "$INST/conf/mps.config" >"$INST/conf/mps.conf" 2>/dev/null ||
    fail "--convert-config of the copy failed"
rm -f "$LOGFILE"
start_ref "$INST" conf/mps.conf
LISTENERS_CONV=$(sed 's/:[0-9]*$//' "$READY_FILE" | sort)
[ "$LISTENERS_REF" = "$LISTENERS_CONV" ] ||
    fail "listeners differ: mps.config: $LISTENERS_REF; converted: $LISTENERS_CONV"
log "converted mps.conf: the same listeners ($(tr '\n' ' ' <<<"$LISTENERS_CONV"))"
start_devices 2
console_checks
kill "$BG_PID" 2>/dev/null || true
stop_ref

# ---------------------------------------------------------------- 5. unsupported keys warn
BAD="$TMPD/bad"
mkdir -p "$BAD"
cp "$COMPAT"/*.config "$BAD/"
n=$(wc -l <"$BAD/mps.config")
printf 'AlertForwarding=true\n[Statistics]\nEnabled=1\n' >>"$BAD/mps.config"
(cd "$ORIG" && "$MPSD" -t -c "$BAD/mps.config" -o "ModulePath=$MODDIR" -o AllowRoot=true) \
    >"$TMPD/bad.out" 2>&1 || { cat "$TMPD/bad.out"; fail "unsupported keys made mpsd -t fail"; }
grep -q "WARNING\] mps.config:$((n + 1)): AlertForwarding is not a key mpsd knows" \
    "$TMPD/bad.out" || fail "no warning for mps.config:$((n + 1)): $(cat "$TMPD/bad.out")"
grep -q "WARNING\] mps.config:$((n + 2)): section \[Statistics\] is not a section" \
    "$TMPD/bad.out" || fail "no warning for mps.config:$((n + 2)): $(cat "$TMPD/bad.out")"
"$MPSD" --convert-config "$BAD/mps.config" 2>&1 >/dev/null |
    grep -q "warning: mps.config:$((n + 1)): AlertForwarding" ||
    fail "--convert-config does not warn about mps.config:$((n + 1))"
log "unsupported keys: warnings at mps.config:$((n + 1)) and :$((n + 2)), mpsd -t passes"

# ---------------------------------------------------------------- 6. no sections
FLAT="$TMPD/flat"
install_mps "$FLAT"
sed -i '/^\[/d' "$FLAT/conf/mps.config"
grep -q '^\[' "$FLAT/conf/mps.config" && fail "sed left a section header"
"$MPSD" --convert-config "$FLAT/conf/mps.config" 2>/dev/null | grep -v '^#' |
    sed "s|$FLAT|DIR|" >"$TMPD/flat.conf"
"$MPSD" --convert-config "$INST/conf/mps.config" 2>/dev/null | grep -v '^#' |
    sed "s|$INST|DIR|" >"$TMPD/sectioned.conf"
diff -u "$TMPD/sectioned.conf" "$TMPD/flat.conf" ||
    fail "the layout without sections converts differently"
LOGFILE="$FLAT/logs/MPS.log"
start_ref "$FLAT" conf/mps.config
start_devices 2
console_checks
kill "$BG_PID" 2>/dev/null || true
stop_ref
log "the layout without sections: the same mps.conf, and it serves"

# ---------------------------------------------------------------- 7. rotation and Heading
LOGFILE="$INST/logs/MPS.log"
rm -f "$INST"/logs/MPS.log*
start_ref "$INST" conf/mps.config -o LogFileMaxSize=1 -o LogFileMaxFiles=3
# first_stamp FILE: the time of the file's first log line (line 2, after the Heading) as
# SECONDS.MICROSECONDS since the epoch, which sorts as text.
first_stamp() {
    local stamp
    stamp=$(sed -n '2s/^\[[A-Za-z]* \([A-Za-z]* [0-9]* [0-9]* [0-9:]*\)\.\([0-9]*\)\].*/\1 \2/p' "$1")
    [ -n "$stamp" ] || return 0
    echo "$(date -d "${stamp% *}" +%s).${stamp##* }"
}
seq_device() {
    "$AMTSIM" --port "$AMT_PORT" --fqdn "seq$1-%d.example.com" --ports 16992 --quiet \
        --exit-when-ready >/dev/null || fail "device seq$1 did not connect"
}
i=0
# Until MPS.log.3 exists: before the wrap the numbers grow with age (the first full file is .1).
until [ -e "$LOGFILE.3" ]; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || fail "no MPS.log.3 after $i devices"
    seq_device "$i"
done
s1=$(first_stamp "$LOGFILE.1") s2=$(first_stamp "$LOGFILE.2") s3=$(first_stamp "$LOGFILE.3")
[ -n "$s1" ] && [ -n "$s2" ] && [ -n "$s3" ] && [[ "$s1" < "$s2" ]] && [[ "$s2" < "$s3" ]] ||
    fail "MPS.log.1..3 are not oldest first: they start at '$s1', '$s2', '$s3'"
log "MPS.log.1, .2, .3 start at $s1, $s2, $s3: oldest first"
# The next full file overwrites the oldest, MPS.log.1.
until [[ "$(first_stamp "$LOGFILE.1")" > "$s3" ]]; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || fail "MPS.log.1 was never overwritten"
    seq_device "$i"
done
[ "$(first_stamp "$LOGFILE.2")" = "$s2" ] || fail "MPS.log.2 changed before MPS.log.1 was reused"
[ -e "$LOGFILE.4" ] && fail "MPS.log.4 exists with LogFileMaxFiles = 3"
for f in "$LOGFILE" "$LOGFILE".[123]; do
    [ "$(head -n 1 "$f")" = "$HEADING" ] || fail "$f does not start with the Heading"
done
log "then the oldest, MPS.log.1, was overwritten (now from $(first_stamp "$LOGFILE.1")); every file starts with the Heading"
stop_ref

# ---------------------------------------------------------------- 8. a vendor DllName
# DllName naming a vendor library (built here with gcc, the C interface of 003 §7.2's
# Authenticate) goes to auth_legacy unchanged; DllParameters reach it as written.
LEGACY="$top_builddir/plugins/auth_legacy/.libs/auth_legacy.so"
if [ -e "$LEGACY" ] && command -v gcc >/dev/null 2>&1; then
    ln -sf "$LEGACY" "$MODDIR/auth_legacy.so"
    cat >"$TMPD/vendor.c" <<'C'
#include <stdio.h>
#include <string.h>
int Authenticate(const char *user, const char *password, const char *params, char *error,
                 size_t errorlen)
{
    if (strcmp(params, "-secret P@ssw0rd") != 0) {
        snprintf(error, errorlen, "unexpected parameters '%s'", params);
        return -1;
    }
    if (strcmp(user, "amtuser") == 0 && strcmp(password, params + 8) == 0)
        return 1;
    snprintf(error, errorlen, "wrong password for %s", user);
    return 0;
}
C
    gcc -shared -fPIC -o "$TMPD/libvendorauth.so" "$TMPD/vendor.c" || fail "gcc vendor.c"
    sed -i -e "s|^DllName=AMTFileAuth.dll|DllName=$TMPD/libvendorauth.so|" \
        -e 's|^DllParameters=file AMTAuthFile.txt|DllParameters=-secret P@ssw0rd|' \
        "$INST/conf/mps.config"
    "$MPSD" --convert-config "$INST/conf/mps.config" 2>/dev/null |
        grep -qx "PluginParameters = $TMPD/libvendorauth.so -secret P@ssw0rd" ||
        fail "the vendor DllName is not auth_legacy's PluginParameters"
    rm -f "$INST"/logs/MPS.log*
    start_ref "$INST" conf/mps.config
    out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --exit-when-ready --quiet) ||
        fail "the vendor library refused the right password: $out"
    out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --pass wrong \
        --expect-disconnect 15 --quiet) || fail "the vendor library accepted a wrong password"
    wait_for $((10 * SLOW)) "the vendor's error in the log" \
        grep -q "libvendorauth.so: .* password for amtuser" "$LOGFILE"
    log "DllName=libvendorauth.so: auth_legacy accepts the right password, refuses a wrong one"
    stop_ref
else
    log "no auth_legacy or no gcc: the vendor DllName run is left out"
fi
log "PASS"
