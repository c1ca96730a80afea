#!/bin/bash
# auth_pam.sh - the auth_pam plugin through pam_wrapper: devices and SOCKS5 consoles checked
# by PAM stacks of pam_matrix (users in a file), pam_succeed_if and pam_debug (forced codes).
# SPDX-License-Identifier: Apache-2.0
#
# No system account is touched: mpsd runs with libpam_wrapper.so preloaded, which makes
# Linux-PAM read its service files from $PAMD. Run A: accept (amtsim, apfclient), wrong
# password, unknown user, expired account, password that must change, account refused by
# pam_matrix, backend down (PAM_AUTHINFO_UNAVAIL), unknown=next into auth_file, PAM_RHOST, and
# the console realm through socks5 and curl with its own service. Run B: a service with no
# file. Run C: parameters that stop mpsd at startup.
. "$(dirname "$0")/lib.sh"

PAM_SO="$top_builddir/plugins/auth_pam/.libs/auth_pam.so"
[ -f "$PAM_SO" ] || fail "$PAM_SO is missing (configure found PAM but the plugin is not built)"

# pam_wrapper (Debian: libpam-wrapper) and the Linux-PAM modules (libpam-modules).
PWRAP_LIB=""
for d in "$(pkg-config --variable=libdir pam_wrapper 2>/dev/null || true)" \
    /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
    if [ -n "$d" ] && [ -f "$d/libpam_wrapper.so" ]; then
        PWRAP_LIB="$d/libpam_wrapper.so"
        break
    fi
done
if [ -z "$PWRAP_LIB" ]; then
    echo "SKIP: libpam_wrapper.so is not installed (Debian: apt-get install libpam-wrapper)"
    exit 77
fi
PAM_MATRIX="$(dirname "$PWRAP_LIB")/pam_wrapper/pam_matrix.so"
[ -f "$PAM_MATRIX" ] || {
    echo "SKIP: $PAM_MATRIX is missing (part of libpam-wrapper)"
    exit 77
}
PAM_MODDIR=""
for d in "$(dirname "$PWRAP_LIB")/security" /lib/x86_64-linux-gnu/security /usr/lib64/security \
    /lib/security /usr/lib/security; do
    if [ -f "$d/pam_succeed_if.so" ] && [ -f "$d/pam_debug.so" ]; then
        PAM_MODDIR=$d
        break
    fi
done
if [ -z "$PAM_MODDIR" ]; then
    echo "SKIP: pam_succeed_if.so and pam_debug.so not found (Debian: libpam-modules)"
    exit 77
fi
command -v curl >/dev/null 2>&1 || {
    echo "SKIP: curl is needed (the real console)"
    exit 77
}
[ -e "$MODDIR/socks5.so" ] || fail "$top_builddir/modules/socks5/.libs/socks5.so is missing"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
ln -s "$PAM_SO" "$MODDIR/auth_pam.so"

# ------------------------------------------------------------------- PAM configuration
PAMD="$TMPD/pam.d"
PASSDB="$TMPD/passdb"
mkdir -p "$PAMD"
# pam_matrix: user:password:service; the account step refuses a service other than the named
# one (refused has the right password, for another service).
cat >"$PASSDB" <<'EOF'
amtuser:P@ssw0rd:mpsd
expired:Exp1red-pw:mpsd
mustchange:Ch4nge-me:mpsd
refused:Refu5ed-pw:not-mpsd
consoleuser:C0nsole!:mpsd-console
EOF
SU="$PAM_MODDIR/pam_succeed_if.so"
DBG="$PAM_MODDIR/pam_debug.so"
# slowfail fails after pam_faildelay's delay of FAIL_DELAY seconds.
FAIL_DELAY=$((4 * SLOW))
# The device service, /etc/pam.d/mpsd as far as Linux-PAM knows. Every check of this file
# first requires PAM_RHOST = 127.0.0.1: a plugin that did not set it accepts nobody. The
# `[success=1 default=ignore] ... user notin X` lines run the pam_debug line after them
# only for user X, forcing the PAM code that X stands for.
cat >"$PAMD/mpsd" <<EOF
auth     requisite                  $SU quiet rhost = 127.0.0.1
auth     [success=1 default=ignore] $SU quiet user notin backend-down
auth     requisite                  $DBG auth=authinfo_unavail
auth     [success=1 default=ignore] $SU quiet user notin fileuser
auth     requisite                  $DBG auth=user_unknown
auth     [success=2 default=ignore] $SU quiet user notin slowfail
auth     optional                   $PAM_MODDIR/pam_exec.so quiet /bin/touch $TMPD/slowfail.started
auth     optional                   $PAM_MODDIR/pam_faildelay.so delay=$((FAIL_DELAY * 1000000))
auth     required                   $PAM_MATRIX passdb=$PASSDB
account  [success=1 default=ignore] $SU quiet user notin expired
account  requisite                  $DBG acct=acct_expired
account  [success=1 default=ignore] $SU quiet user notin mustchange
account  requisite                  $DBG acct=new_authtok_reqd
account  required                   $PAM_MATRIX passdb=$PASSDB
EOF
cat >"$PAMD/mpsd-console" <<EOF
auth     requisite $SU quiet rhost = 127.0.0.1
auth     required  $PAM_MATRIX passdb=$PASSDB
account  required  $PAM_MATRIX passdb=$PASSDB
EOF
# A user only auth_file knows: PAM says "user unknown" for it (above) and, with
# unknown=next, the chain goes on to auth_file.
FILE_USERS="$TMPD/file-users.txt"
printf 'fileuser:F1le-Pass\n' >"$FILE_USERS"

# mpsd under pam_wrapper; nothing else of the test gets the preload. exec keeps the PID, so
# start_mpsd and stop_mpsd see the daemon itself.
REAL_MPSD=$MPSD
MPSD="$TMPD/mpsd-pam"
preload=$PWRAP_LIB
deepbind=""
if [ "$SLOW" != 1 ]; then
    # ASan must come first in the preload list, and pam_wrapper's RTLD_DEEPBIND breaks its
    # interceptors (pam_wrapper(1): PAM_WRAPPER_DISABLE_DEEPBIND for sanitizers).
    asan=$(ldd "$REAL_MPSD" | awk '/libasan/ { print $3; exit }')
    [ -z "$asan" ] || preload="$asan $preload"
    deepbind="PAM_WRAPPER_DISABLE_DEEPBIND=1"
    # Linux-PAM 1.5's pam_start leaks what it read when it finds no service file (run B):
    # not mpsd's memory, and nothing mpsd can free.
    printf 'leak:libpam.so\n' >"$TMPD/lsan.supp"
    deepbind="$deepbind LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$TMPD/lsan.supp"
fi
cat >"$MPSD" <<EOF
#!/bin/sh
exec env LD_PRELOAD="$preload" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$PAMD" $deepbind \\
    "$REAL_MPSD" "\$@"
EOF
chmod +x "$MPSD"

T=$((30 * SLOW))

# pam_conf AMT_PARAMS [AMT_CHAIN_MORE]: the test config with auth_pam on both realms (the
# console realm on the mpsd-console service) and a socks5 listener; every listener on port 0
# (start_mpsd reads the ports from the ReadyFile, SOCKS_PORT is ready_port socks5).
pam_conf() {
    READY_FILES=$((READY_FILES + 1))
    {
        echo "# generated by $TEST_NAME"
        echo "[core]"
        echo "Listen = 127.0.0.1:0"
        echo "ReadyFile = $TMPD/ready.$READY_FILES"
        echo "ModulePath = $MODDIR"
        echo "TraceLevels = INFO|ERROR|WARNING|DEBUG"
        echo "AllowRoot = true"
        echo
        echo "[AMT_Authenticate]"
        echo "NeedAuthentication = true"
        echo "Plugin = auth_pam"
        echo "PluginParameters = $1"
        if [ -n "${2:-}" ]; then
            printf '%s\n' "$2"
        fi
        echo
        echo "[Socks_Authenticate]"
        echo "NeedAuthentication = true"
        echo "Plugin = auth_pam"
        echo "PluginParameters = service mpsd-console"
        echo
        echo "[module test_console]"
        echo "Listen = 127.0.0.1:0"
        echo
        echo "[module socks5]"
        echo "Listen = 127.0.0.1:0"
    } >"$CONF"
}

# expect_denied USER PASSWORD PATTERN: the device gets DISCONNECT 15 and a new log line says
# why (counted, so a line left by an earlier case does not count).
log_count() { grep -c -e "$1" "$MPSD_LOG" || true; }
log_count_above() { [ "$(log_count "$1")" -gt "$2" ]; }
expect_denied() {
    local pat="user \"$1\" from 127\\.0\\.0\\.1:[0-9]* $3" n
    n=$(log_count "$pat")
    expect_apf "disconnect 15" handshake --user "$1" --password "$2"
    wait_for $((5 * SLOW)) "a new log line /$pat/" log_count_above "$pat" "$n"
    log "$1: $(grep -o "user \"$1\" from .*" "$MPSD_LOG" | tail -n 1)"
}

# no_passwords: no password of the test ever reaches the log.
no_passwords() {
    local pw
    for pw in 'P@ssw0rd' 'Exp1red-pw' 'Ch4nge-me' 'Refu5ed-pw' 'C0nsole!' 'F1le-Pass' \
        'wr0ng-pass' 'B4ckend'; do
        if grep -qF -e "$pw" "$MPSD_LOG"; then
            fail "the log holds the password '$pw'"
        fi
    done
    log "no password in the log"
}

# ======================================================= run A: one daemon, every verdict
pam_conf "unknown=next" "Plugin = auth_file
PluginParameters = file $FILE_USERS"
start_mpsd
SOCKS_PORT=$(ready_port socks5)
assert_log 'auth_pam\[AMT_Authenticate\]\] PAM service "mpsd", unknown users go to the next'
assert_log 'auth_pam\[Socks_Authenticate\]\] PAM service "mpsd-console"$'

# Accepted: amtsim reaches port forwarding, apfclient completes its handshake. Both pass
# pam_succeed_if's rhost = 127.0.0.1, so PAM_RHOST was set to the address without the port.
out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --user amtuser --pass 'P@ssw0rd' \
    --exit-when-ready --quiet) || fail "amtsim with the right PAM password: $out"
log "amtsim amtuser: $out"
expect_apf ok handshake --user amtuser --password 'P@ssw0rd'

# Refused by authentication: wrong password (amtsim and apfclient), unknown user.
out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --user amtuser --pass 'wr0ng-pass' \
    --expect-disconnect 15 --quiet) || fail "amtsim with a wrong PAM password: $out"
log "amtsim amtuser with a wrong password: $out"
AUTH_FAILURE='denied: PAM service "mpsd": authentication: Authentication failure'
expect_denied amtuser 'wr0ng-pass' "$AUTH_FAILURE"
expect_denied nobody 'wr0ng-pass' "$AUTH_FAILURE"

# Refused by account management although the password is right.
expect_denied expired 'Exp1red-pw' \
    'denied: PAM service "mpsd": account: User account has expired'
expect_denied mustchange 'Ch4nge-me' \
    'denied: PAM service "mpsd": account: Authentication token is no longer valid; new one required'
expect_denied refused 'Refu5ed-pw' 'denied: PAM service "mpsd": account: Permission denied'
# ... and the wrong password of an expired account fails at authentication already.
expect_denied expired 'wr0ng-pass' "$AUTH_FAILURE"

# The backend cannot answer: an error (not a denial), still DISCONNECT 15 for the device.
expect_denied backend-down 'B4ckend' \
    'failed: PAM service "mpsd": authentication: Authentication service cannot retrieve auth'

# PAM does not know fileuser: unknown=next hands it to auth_file, which accepts it.
expect_apf ok handshake --user fileuser --password 'F1le-Pass'
expect_denied fileuser 'wr0ng-pass' 'denied: wrong password'

# A failure delay (pam_faildelay here, pam_unix by default) is slept after the PAM lock is
# released: the failing device waits for it, a device authenticating meanwhile does not.
[ ! -e "$TMPD/slowfail.started" ] || fail "slowfail.started exists before slowfail tried"
bg slowfail python3 "$APFCLIENT" --port "$AMT_PORT" --cport "$CONSOLE_PORT" \
    --timeout $((FAIL_DELAY * 3)) handshake --user slowfail --password 'wr0ng-pass'
slow_pid=$BG_PID
wait_for $((30 * SLOW)) "slowfail's PAM transaction" test -e "$TMPD/slowfail.started"
t0=$(date +%s%N)
out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --user amtuser --pass 'P@ssw0rd' \
    --exit-when-ready --quiet) || fail "amtsim during slowfail's failure delay: $out"
kill -0 "$slow_pid" 2>/dev/null ||
    fail "slowfail ended before amtuser authenticated: no failure delay, or it blocked amtuser"
# Had the delay been slept under the lock, slowfail's verdict would come first.
log_has 'user "slowfail" from' && fail "slowfail was refused before amtuser was let in"
log "amtuser authenticated in $((($(date +%s%N) - t0) / 1000000)) ms during slowfail's delay"
bg_wait "$slow_pid" $((FAIL_DELAY * 4)) || true
t1=$(date +%s%N)
[ "$(cat "$TMPD/slowfail.out")" = "disconnect 15" ] ||
    fail "slowfail: '$(cat "$TMPD/slowfail.out" "$TMPD/slowfail.err")', expected 'disconnect 15'"
# Linux-PAM varies the delay by up to a quarter; half of it is a safe lower bound.
[ $(((t1 - t0) / 1000000)) -ge $((FAIL_DELAY * 500)) ] ||
    fail "slowfail was refused $(((t1 - t0) / 1000000)) ms after its PAM transaction began," \
        "expected about $((FAIL_DELAY * 1000)) ms of failure delay"
log "slowfail refused after its failure delay ($(((t1 - t0) / 1000000)) ms)"

# ---- console realm: socks5 with RFC 1929 credentials checked by the mpsd-console service
bg sim "$AMTSIM" --port "$AMT_PORT" --count 1 --fqdn 'pam%d.example.com' --ports 16992 \
    --uuid-base 8c6a3b2e-5d1f-4e7a-9b0c-0000000a0000 --quiet --ready-file "$TMPD/sim.ready"
wait_for $((20 * SLOW)) "the amtsim device forwarding" grep -qxs 1 "$TMPD/sim.ready"
body=$(curl -q -sS --max-time "$T" --socks5-hostname "127.0.0.1:$SOCKS_PORT" \
    --proxy-user 'consoleuser:C0nsole!' http://pam0.example.com:16992/pam) ||
    fail "curl with the right PAM credentials failed"
[ "$body" = "amtsim pam0.example.com 8c6a3b2e-5d1f-4e7a-9b0c-0000000a0000 /pam" ] ||
    fail "curl through socks5 with PAM credentials: body '$body'"
log "curl --proxy-user consoleuser: $body"
for cred in 'consoleuser:wr0ng-pass' 'amtuser:P@ssw0rd'; do
    if curl -q -sS --max-time "$T" --socks5-hostname "127.0.0.1:$SOCKS_PORT" \
        --proxy-user "$cred" http://pam0.example.com:16992/ >"$TMPD/curl.out" 2>&1; then
        fail "curl as ${cred%%:*} succeeded: $(cat "$TMPD/curl.out")"
    fi
    log "curl as ${cred%%:*} with a password PAM refuses fails: $(tail -n 1 "$TMPD/curl.out")"
done
CONSOLE_DENIED='denied: PAM service "mpsd-console"'
wait_log "auth\\[console\\]: user \"consoleuser\" from .* $CONSOLE_DENIED: authentication: Auth"
# The device user is right for "mpsd" but pam_matrix's account step refuses it here.
wait_log "auth\\[console\\]: user \"amtuser\" from .* $CONSOLE_DENIED: account: Permission denied"
assert_log 'established as "consoleuser"'
require_alive
stop_mpsd
kill "$BG_PID" 2>/dev/null || true
no_passwords

# ====================================================== run B: a service without a file
pam_conf "service no-such-service"
start_mpsd
expect_apf "disconnect 15" handshake --user amtuser --password 'P@ssw0rd'
wait_log 'user "amtuser" from .*failed: PAM service "no-such-service": pam_start (no service file?)'
log "missing service file: $(grep -o 'failed: PAM service "no-such.*' "$MPSD_LOG" | tail -n 1)"
require_alive
stop_mpsd
no_passwords

# ========================================== run C: parameters that stop mpsd at startup
# bad_params PARAMS PATTERN: mpsd exits with status 1 and logs PATTERN.
bad_params() {
    local rc=0
    pam_conf "$1"
    bg badrun "$MPSD" -c "$CONF"
    bg_wait "$BG_PID" $((10 * SLOW)) || rc=$?
    [ "$rc" = 1 ] || fail "mpsd with PluginParameters '$1': exit status $rc, expected 1"
    grep -q -e "$2" "$TMPD/badrun.err" ||
        fail "mpsd with PluginParameters '$1' did not log /$2/: $(cat "$TMPD/badrun.err")"
    log "mpsd refuses PluginParameters '$1': $(grep -m 1 -e "$2" "$TMPD/badrun.err" |
        sed 's/^\[[^]]*\] //')"
}
bad_params "mpsd other" 'PluginParameters: unexpected word "other"'
bad_params "service" 'PluginParameters: service needs a NAME'
bad_params "service ../etc/passwd" '"../etc/passwd" is not a PAM service name'
log "PASS"
