#!/bin/bash
# sdk.sh - the vendor SDK: contrib/sample-auth-plugin builds out of tree against a staged
# `make install` alone and works in a running mpsd (HMAC passwords, DENY, NEXT to auth_file).
# SPDX-License-Identifier: Apache-2.0
. "$(dirname "$0")/lib.sh"

for tool in cc pkg-config make; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $TEST_NAME needs $tool"
        exit 77
    fi
done
if ! pkg-config --exists libcrypto; then
    echo "SKIP: $TEST_NAME needs libcrypto's pkg-config file (libssl-dev)"
    exit 77
fi

# The make that runs this test (make check) passes its own flags and variables (TESTS=...)
# through the environment: the two makes below must not see them.
sub_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make "$@"; }

# ---------------------------------------------------------------- the SDK, as a vendor gets it
STAGE="$TMPD/stage"
sub_make -s -C "$top_builddir" install DESTDIR="$STAGE" >"$TMPD/install.log" 2>&1 ||
    fail "make install DESTDIR=$STAGE: $(tail -n 20 "$TMPD/install.log")"
mapfile -t pcs < <(find "$STAGE" -name mpsd-module.pc)
[ "${#pcs[@]}" = 1 ] || fail "expected one staged mpsd-module.pc, found ${#pcs[@]}: ${pcs[*]}"
PCDIR=$(dirname "${pcs[0]}")
export PKG_CONFIG_PATH="$PCDIR"
# The .pc names the configured prefix; redirect it into the stage, as a vendor building
# against an unpacked SDK would.
prefix=$(pkg-config --variable=prefix mpsd-module)
[ -n "$prefix" ] || fail "mpsd-module.pc has no prefix variable"
SDK_PKG_CONFIG="pkg-config --define-variable=prefix=$STAGE$prefix"
MODULEDIR=$($SDK_PKG_CONFIG --variable=moduledir mpsd-module)
case "$MODULEDIR" in
"$STAGE"/*) ;;
*) fail "moduledir '$MODULEDIR' does not follow the prefix into the stage" ;;
esac
[ -e "$MODULEDIR/auth_file.so" ] || fail "moduledir $MODULEDIR does not hold auth_file.so"
[ -n "$(find "$STAGE" -path '*/man3/mpsd-auth-plugin.3')" ] ||
    fail "make install did not install the mpsd-auth-plugin(3) man page"
log "staged SDK: $PCDIR/mpsd-module.pc, version $(pkg-config --modversion mpsd-module)"

# The sample's two files, alone in a directory outside the source and build trees.
SAMPLE="$TMPD/vendor"
mkdir -p "$SAMPLE"
cp "$top_srcdir/contrib/sample-auth-plugin/Makefile" \
    "$top_srcdir/contrib/sample-auth-plugin/sample_auth.c" "$SAMPLE/"
# -MD -MF: the compiler lists the headers it used, to show module.h came from the stage.
sub_make -C "$SAMPLE" PKG_CONFIG="$SDK_PKG_CONFIG" \
    CFLAGS="-O2 -Wall -Wextra -Werror -MD -MF $SAMPLE/deps" >"$TMPD/sample-build.log" 2>&1 ||
    fail "the sample plugin does not build out of tree: $(cat "$TMPD/sample-build.log")"
log "built: $(grep -v '^make' "$TMPD/sample-build.log" | tr -s ' \\\n' ' ')"
for tree in "$top_srcdir" "$top_builddir"; do
    tree=$(cd "$tree" && pwd -P)
    if grep -q -e "-I *$tree" "$TMPD/sample-build.log"; then
        fail "the sample's compile line reaches into $tree"
    fi
done
header=$(tr ' \\' '\n\n' <"$SAMPLE/deps" | grep '/mpsd/module\.h$' || true)
case "$header" in
"$STAGE"/*) log "module.h used: $header" ;;
*) fail "module.h did not come from the stage but from '${header:-nowhere}'" ;;
esac
sub_make -C "$SAMPLE" PKG_CONFIG="$SDK_PKG_CONFIG" install >>"$TMPD/sample-build.log" 2>&1 ||
    fail "make install of the sample: $(tail -n 5 "$TMPD/sample-build.log")"
SO="$MODULEDIR/sample_auth.so"
[ -f "$SO" ] || fail "make install did not put sample_auth.so into $MODULEDIR"
# Hidden visibility from the .pc's cflags: one exported function, the descriptor's.
if command -v nm >/dev/null 2>&1; then
    exported=$(nm -D --defined-only "$SO" | awk '$2 == "T" && $3 !~ /^_(init|fini)$/ {print $3}')
    [ "$exported" = mps_module_sample_auth ] ||
        fail "sample_auth.so exports '$(tr '\n' ' ' <<<"$exported")', not just its descriptor"
    log "exports only mps_module_sample_auth"
fi
# mpsd itself loads it: name, version, ABI and role as the descriptor says.
LIST="$TMPD/list.out"
"$MPSD" --list-options "$SO" >"$LIST" 2>&1 || fail "mpsd --list-options: $(cat "$LIST")"
grep -q '^sample_auth 1\.0 (module ABI 1\.[0-9]*)$' "$LIST" && grep -q 'roles: auth$' "$LIST" &&
    grep -q 'flags: none$' "$LIST" || fail "mpsd --list-options: $(cat "$LIST")"
log "mpsd --list-options: $(head -n 1 "$LIST")"

# ---------------------------------------------------------------------- the plugin in mpsd
# password = the first 32 hex digits of HMAC-SHA256(secret, user name), computed by Python for
# every key and user of the test at once (one interpreter start: slow on a loaded machine).
KEYS=('first s3cret key' 'another key' 'rotated key' 'inline-K3y')
declare -A PW
while IFS=$'\t' read -r key user pw; do
    PW["$key/$user"]=$pw
done < <(python3 -c 'import hashlib, hmac, sys
for key in sys.argv[1:]:
    for user in ("hmac-dev0", "hmac-dev1", "stranger", "amtuser"):
        mac = hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()[:32]
        print(key, user, mac, sep="\t")' "${KEYS[@]}")
hmac_pw() { # hmac_pw KEY USER
    [ -n "${PW["$1/$2"]:-}" ] || fail "no HMAC computed for key '$1' and user '$2'"
    echo "${PW["$1/$2"]}"
}

SECRETFILE="$TMPD/sample.secret"
printf 'first s3cret key\n' >"$SECRETFILE"
# hmac-dev9 is also in auth_file's list: the sample's DENY must end the chain there.
printf 'hmac-dev9:Fil3-Pass!\n' >>"$USERS"

# [AMT_Authenticate]: the sample first (users hmac-*), then auth_file for everybody else.
sample_conf() { # sample_conf PARAMS [FILE]
    local file=${2:-$CONF}
    write_conf "$file"
    awk -v so="$SO" -v params="$1" '
        /^\[AMT_Authenticate\]$/ { amt = 1 }
        amt && /^Plugin = auth_file$/ {
            print "Plugin = " so
            print "PluginParameters = " params
            amt = 0
        }
        { print }' "$file" >"$file.new"
    mv "$file.new" "$file"
    grep -q "^Plugin = $SO\$" "$file" || fail "no sample plugin line in $file"
}

# amtsim_ok USER PASS: one device authenticates and reaches forwarding.
amtsim_ok() {
    local out
    out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --user "$1" --pass "$2" \
        --exit-when-ready --quiet 2>&1) || fail "device '$1' did not reach forwarding: $out"
    [ "$out" = "ready 1" ] || fail "device '$1': amtsim said '$out'"
    log "device $1 forwards ($3)"
}

# amtsim_refused USER PASS WHY: the device gets DISCONNECT 15 and mpsd logs the realm's denial.
# A new line each time: the same denial may have been logged before.
amtsim_refused() {
    local out pattern="auth\\[AMT\\]: user \"$1\" from 127\\.0\\.0\\.1:[0-9]* denied: $3\$"
    denials() { grep -c -e "$pattern" "$MPSD_LOG" || true; }
    local before
    before=$(denials)
    out=$(timeout $((20 * SLOW)) "$AMTSIM" --port "$AMT_PORT" --user "$1" --pass "$2" \
        --expect-disconnect 15 --quiet 2>&1) || fail "device '$1' was not refused: $out"
    more_denials() { [ "$(denials)" -gt "$before" ]; }
    wait_for $((5 * SLOW)) "a log line /$pattern/" more_denials
    log "device $1 refused ($3)"
}

sample_conf "secretfile=$SECRETFILE prefix=hmac-"
start_mpsd
SAMPLE_LOG='sample_auth\.so\[AMT_Authenticate\]\]' # its lines' prefix: [PLUGIN[REALM]]
assert_log "$SAMPLE_LOG HMAC-SHA256 passwords, key from $SECRETFILE, users starting with \"hmac-\""

amtsim_ok hmac-dev0 "$(hmac_pw 'first s3cret key' hmac-dev0)" "its HMAC"
amtsim_ok hmac-dev1 "$(hmac_pw 'first s3cret key' hmac-dev1)" "its HMAC"
amtsim_refused hmac-dev0 "$(hmac_pw 'another key' hmac-dev0)" "sample_auth: wrong password"
amtsim_refused hmac-dev0 "$(hmac_pw 'first s3cret key' hmac-dev1)" "sample_auth: wrong password"
amtsim_refused hmac-dev0 "$(hmac_pw 'first s3cret key' hmac-dev0 | tr a-f A-F)" \
    "sample_auth: wrong password"
# The sample knows hmac-dev9 (prefix) and denies: auth_file, which has a password for it too,
# is not asked.
amtsim_refused hmac-dev9 'Fil3-Pass!' "sample_auth: wrong password"

# Not under the prefix: the sample says NEXT (its debug line), auth_file decides.
next_lines() { grep -c 'user without prefix "hmac-": passed on' "$MPSD_LOG" || true; }
before=$(next_lines)
amtsim_ok amtuser 'P@ssw0rd' "sample_auth passed it on, auth_file accepted"
[ "$(next_lines)" -gt "$before" ] || fail "sample_auth did not log that it passed amtuser on"
amtsim_refused amtuser 'wrong-one' "wrong password"
amtsim_refused stranger "$(hmac_pw 'first s3cret key' stranger)" "unknown user"
# The plugin's log lines never carry a password.
if grep -q -e "$(hmac_pw 'first s3cret key' hmac-dev0)" -e 's3cret' "$MPSD_LOG"; then
    fail "a password or the secret appears in the log"
fi

# SIGHUP: the sample reads its secret file again; the old passwords stop working.
printf 'rotated key\n' >"$SECRETFILE.new"
mv "$SECRETFILE.new" "$SECRETFILE"
kill -HUP "$MPSD_PID"
wait_log "$SAMPLE_LOG key read again from $SECRETFILE"
amtsim_ok hmac-dev0 "$(hmac_pw 'rotated key' hmac-dev0)" "HMAC under the rotated key"
amtsim_refused hmac-dev0 "$(hmac_pw 'first s3cret key' hmac-dev0)" "sample_auth: wrong password"
# A secret file that cannot be read on SIGHUP keeps the key in use.
rm -f "$SECRETFILE"
kill -HUP "$MPSD_PID"
wait_log "$SAMPLE_LOG keeping the previous key"
amtsim_ok hmac-dev1 "$(hmac_pw 'rotated key' hmac-dev1)" "after a failed reload"
require_alive
stop_mpsd

# The sample alone, with the secret inline and no prefix: every user is its own, and the
# secret never shows up in the log.
sample_conf "secret=inline-K3y"
sed -i '/^\[AMT_Authenticate\]$/,/^$/{/^Plugin = auth_file$/d;/^PluginParameters = file /d}' "$CONF"
if grep -q '^Plugin = auth_file$' <(sed -n '/^\[AMT_Authenticate\]$/,/^$/p' "$CONF"); then
    fail "auth_file is still in the AMT realm"
fi
start_mpsd
assert_log "$SAMPLE_LOG HMAC-SHA256 passwords, key from PluginParameters, users all"
amtsim_ok amtuser "$(hmac_pw inline-K3y amtuser)" "its HMAC, no prefix"
amtsim_refused amtuser 'P@ssw0rd' "sample_auth: wrong password"
if grep -q 'inline-K3y' "$MPSD_LOG"; then
    fail "the inline secret appears in the log"
fi
stop_mpsd

# Bad parameters stop mpsd at startup with the plugin's reason.
for params in "prefix=hmac-|secret=TEXT or secretfile=PATH needed" \
    "secretfile=$TMPD/missing|cannot read secret file $TMPD/missing" \
    "secret=a secret=b|unexpected or repeated \"secret\""; do
    sample_conf "${params%%|*}" "$TMPD/bad.conf"
    rc=0
    timeout $((20 * SLOW)) "$MPSD" -c "$TMPD/bad.conf" >"$TMPD/bad.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 124 ] ||
        fail "mpsd with PluginParameters '${params%%|*}': exit status $rc"
    grep -q -e "${params#*|}" "$TMPD/bad.log" ||
        fail "no '${params#*|}' in: $(cat "$TMPD/bad.log")"
    if grep -q -e 'secret=b' -e '=a ' "$TMPD/bad.log"; then
        fail "a secret from PluginParameters appears in the log"
    fi
    # The failed init must not leak (LeakSanitizer reports at exit in a sanitizer build).
    if grep -q '^==[0-9]*==' "$TMPD/bad.log"; then
        fail "a sanitizer reported errors: $(cat "$TMPD/bad.log")"
    fi
    log "PluginParameters '${params%%|*}' refused: ${params#*|}"
done
log "PASS"
