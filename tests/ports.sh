# ports.sh - shared by tests/integration/lib.sh and tests/bench/common.sh (sourced).
# SPDX-License-Identifier: Apache-2.0

# port_line FILE PREFIX: FOUND_PORT = the number after PREFIX on the first whole line (ended by
# a newline: a line being written does not count) of FILE that starts with PREFIX; false while
# there is none. Servers that bind port 0 report the port they got that way.
port_line() {
    local line
    FOUND_PORT=""
    [ -f "$1" ] || return 1
    while IFS= read -r line; do
        case $line in
        "$2"*)
            FOUND_PORT=${line#"$2"}
            [[ $FOUND_PORT =~ ^[0-9]+$ ]] && return 0
            ;;
        esac
    done <"$1"
    return 1
}
