#!/bin/bash
# dev.sh - the README's two commands: `run` builds and starts mpsd, `test` runs the whole suite.
# SPDX-License-Identifier: Apache-2.0
#
# Works on a fresh Debian 12 machine: installs what it needs with apt-get (as root, or through
# sudo), builds out of tree (configure must not run where a `core` directory exists, see
# configure.ac), and never touches the system outside the package installs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

BUILD_DEPS="build-essential autoconf automake libtool pkg-config libuv1-dev libssl-dev libhttp-parser-dev libpam0g-dev gsoap libgsoap-dev libsystemd-dev libcrypt-dev libjansson-dev libcurl4-openssl-dev libhiredis-dev openssl"
# prometheus: promtool checks /metrics. systemd: systemd-analyze verify of the unit; util-linux: setpriv (service.sh). debhelper,
# dpkg-dev, lintian, fakeroot, git (archive) and iproute2 (ss): tests/pkg/deb.sh builds and
# checks the Debian packages.
TEST_DEPS="libcmocka-dev valgrind clang python3 curl prometheus openssl libpam-wrapper libpam-modules systemd util-linux debhelper dpkg-dev lintian fakeroot git iproute2 redis-server"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_deps() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

bootstrap() {
    [ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || \
        autoreconf --install --force >/dev/null
}

# build DIR [configure args...]: a fresh out-of-tree build
build() {
    local dir=$1
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" --enable-werror "$@" >configure.out &&
        make -j"$(nproc)" >make.out) || { tail -40 "$dir"/*.out; return 1; }
}

case "${1:-}" in
run)
    install_deps $BUILD_DEPS
    bootstrap
    build build --prefix="$top/_stage"
    make -C build install >/dev/null
    etc="$top/_stage/etc/mpsd"
    conf="$etc/mps.conf"
    # A self-signed dev PKI on the first run only: devices trust it once provisioned.
    "$top/_stage/bin/mpsd-certs" --if-missing "$etc/tls"
    # No fixed password: a random one on the first run, kept in amtuser.password (make install
    # puts back the sample amt-users.txt, which has no user, so the hash is added each time).
    (
        umask 077
        [ -s "$etc/amtuser.password" ] ||
            openssl rand -base64 18 | tr -d '+/=\n' >"$etc/amtuser.password"
        chmod 600 "$etc/amt-users.txt"
        if ! grep -q '^[^#[:space:]]' "$etc/amt-users.txt"; then
            printf 'amtuser:%s\n' "$(openssl passwd -6 -stdin <"$etc/amtuser.password")" \
                >>"$etc/amt-users.txt"
        fi
    )
    # A development run as root (the fresh machine of the README) keeps root.
    if [ "$(id -u)" = 0 ]; then
        sed -i 's/^# AllowRoot = false$/AllowRoot = true               # contrib\/dev.sh run as root/' \
            "$conf"
    fi
    echo "== mpsd installed in $top/_stage; configuration $conf"
    echo "== AMT devices: TLS on 127.0.0.1:4433 (root CA $etc/tls/ca.pem) or"
    echo "   plain TCP on 127.0.0.1:16982; user amtuser, password $(cat "$etc/amtuser.password")"
    echo "   (in $etc/amtuser.password). Stop with Ctrl-C."
    echo "== admin: $top/_stage/sbin/mpsctl devices (control socket), REST API and /metrics on"
    echo "   http://127.0.0.1:7794, SOAP on 127.0.0.1:7793"
    exec "$top/_stage/sbin/mpsd" -c "$conf"
    ;;
test)
    install_deps $BUILD_DEPS $TEST_DEPS
    bootstrap
    start=$SECONDS
    echo "== 1/4 build and make check"
    build build
    make -C build check -j2 || { cat build/test-suite.log; exit 1; }
    echo "== 2/4 AddressSanitizer + UBSan build and make check"
    build build-asan --enable-sanitizers
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        MPSD_NO_VALGRIND=1 make -C build-asan check -j2 || {
        cat build-asan/test-suite.log
        exit 1
    }
    echo "== 3/4 fuzz targets (libFuzzer, ${FUZZ_SECONDS:=20} s each)"
    make -C build fuzz-run FUZZ_SECONDS="$FUZZ_SECONDS" >build/fuzz.out 2>&1 || {
        tail -40 build/fuzz.out
        exit 1
    }
    echo "== 4/4 make distcheck"
    make -C build distcheck >build/distcheck.out 2>&1 || {
        tail -60 build/distcheck.out
        exit 1
    }
    sum() { grep -h "^# $1:" build/test-suite.log build-asan/test-suite.log | awk '{n += $3} END {print n + 0}'; }
    echo "all checks passed in $((SECONDS - start)) s (plain and ASan+UBSan builds, fuzz, distcheck)"
    echo "$(sum PASS) passed, $(( $(sum FAIL) + $(sum ERROR) )) failed, $(sum SKIP) skipped"
    ;;
*)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
