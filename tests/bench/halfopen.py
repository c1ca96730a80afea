#!/usr/bin/env python3
# halfopen.py - hold many TLS connections that never finish their handshake, for the memory
# measurement (mem.sh): what a server pays for each connection that waits for a ClientHello.
# SPDX-License-Identifier: Apache-2.0
#
#   halfopen.py HOST PORT COUNT MODE
#
# MODE: "none" connects and sends nothing; "partial" sends the first half of a real
# ClientHello (made by Python's ssl module, TLS 1.3 with X25519, about 500 bytes); "hello"
# sends all of it and never answers the server's flight. Prints "ready COUNT" once every
# connection is open and has sent its bytes, then holds them until SIGTERM or SIGINT.
# Stdlib only.
import signal
import socket
import ssl
import sys


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def main():
    host, port, count, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hello = client_hello()
    data = {"none": b"", "partial": hello[: len(hello) // 2], "hello": hello}[mode]
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=30)
        if data:
            s.sendall(data)
        socks.append(s)
    print(f"ready {len(socks)} bytes {len(data)} of {len(hello)}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
