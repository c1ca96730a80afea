#!/usr/bin/env python3
# linkclient.py - an inter-node link peer for tests/cluster/link_protocol.sh: it dials a
# node's cluster_link listener like another node would (the HMAC handshake over the shared
# key), then plays one scenario, well-behaved or not, and prints one result line.
# SPDX-License-Identifier: Apache-2.0
#
# The wire format is modules/cluster_link/link_proto.h: a 9-byte header (type, channel id,
# payload length; big-endian) and the payload.
import argparse
import hashlib
import hmac
import os
import socket
import struct
import sys

HELLO, AUTH, AUTH_OK, PING, PONG = 1, 2, 3, 4, 5
OPEN, OPEN_OK, OPEN_FAIL, DATA, CREDIT, EOF, CLOSE = 10, 11, 12, 13, 14, 15, 16


class Closed(Exception):
    pass


class Link:
    def __init__(self, host, port, timeout):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, t, chan, payload=b""):
        self.s.sendall(struct.pack(">BII", t, chan, len(payload)) + payload)

    def _fill(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise Closed()
            self.buf += d

    def recv(self, skip_pings=True):
        while True:
            self._fill(9)
            t, chan, n = struct.unpack(">BII", self.buf[:9])
            self._fill(9 + n)
            p = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            if t == PING and skip_pings:
                self.send(PONG, 0, p)
                continue
            return t, chan, p

    def closed_by_peer(self):
        """True when the peer closes the connection (whatever it sent before)."""
        try:
            while True:
                self.recv()
        except (Closed, ConnectionResetError):
            return True
        except socket.timeout:
            return False


def mac(key, role, a, b, node):
    return hmac.new(key, b"mpsd-link-1 " + role + a + b + node, hashlib.sha256).digest()


def handshake(link, key, node, expect_node=None, wrong_mac=False):
    t, _, p = link.recv()
    if t != HELLO:
        raise SystemExit(f"expected HELLO, got {t}")
    server_nonce, server_node = p[:32], p[32:]
    if expect_node and server_node.decode() != expect_node:
        raise SystemExit(f"HELLO from {server_node!r}, expected {expect_node}")
    mine = os.urandom(32)
    m = mac(key, b"client", server_nonce, mine, node)
    if wrong_mac:
        m = bytes(x ^ 1 for x in m)
    link.send(AUTH, 0, mine + m + node)
    t, _, p = link.recv()
    if t != AUTH_OK or not hmac.compare_digest(p, mac(key, b"server", mine, server_nonce,
                                                        server_node)):
        raise SystemExit("bad AUTH_OK")


def open_payload(device, port, window=262144, origin=b"192.0.2.7", origin_port=40000):
    return struct.pack(">HHI", port, origin_port, window) + bytes([len(device)]) + device + origin


def echo(link, chan, device, port, data):
    link.send(OPEN, chan, open_payload(device, port))
    t, c, p = link.recv()
    if t == OPEN_FAIL:
        return f"fail {struct.unpack('>I', p[:4])[0]}"
    if t != OPEN_OK or c != chan:
        return f"unexpected {t}"
    for i in range(0, len(data), 32768):  # frames of at most 32 KiB, within the window
        link.send(DATA, chan, data[i:i + 32768])
    got = b""
    while len(got) < len(data):
        t, c, p = link.recv()
        if t == DATA and c == chan:
            got += p
        elif t == CREDIT:
            continue
        else:
            return f"unexpected {t} after {len(got)} bytes"
    link.send(CLOSE, chan)
    while True:  # the node answers CLOSE (after an EOF, maybe)
        t, c, p = link.recv()
        if t == CLOSE and c == chan:
            break
    return "ok" if got == data else "mismatch"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--key", required=True, help="the SharedKeyFile")
    ap.add_argument("--node", default="nodeX", help="the NodeId this peer claims")
    ap.add_argument("--expect-node", help="the NodeId the listener must introduce")
    ap.add_argument("--device", default="")
    ap.add_argument("--dport", type=int, default=16994)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("scenario", choices=["echo", "unknown", "wrong-mac", "overrun", "dup-open",
                                         "bad-frame", "unknown-chan", "many-opens", "ping"])
    a = ap.parse_args()
    key = open(a.key, "rb").read().rstrip(b" \t\r\n")
    node = a.node.encode()
    dev = a.device.encode()
    link = Link(a.host, a.port, a.timeout)
    try:
        if a.scenario == "wrong-mac":
            try:
                handshake(link, key, node, a.expect_node, wrong_mac=True)
                print("accepted")
            except Closed:
                print("closed")
            return
        handshake(link, key, node, a.expect_node)
        if a.scenario == "echo":
            print(echo(link, 1, dev, a.dport, os.urandom(200000)))
        elif a.scenario == "unknown":
            link.send(OPEN, 1, open_payload(b"nowhere.example.com", a.dport))
            t, c, p = link.recv()
            print(f"fail {struct.unpack('>I', p[:4])[0]}" if t == OPEN_FAIL else f"got {t}")
        elif a.scenario == "overrun":  # more DATA than the node's window: the link ends
            link.send(OPEN, 1, open_payload(dev, a.dport))
            t, c, p = link.recv()
            if t != OPEN_OK:
                print(f"got {t}")
                return
            window = struct.unpack(">I", p[:4])[0]
            for _ in range(4 * window // 32768 + 2):  # whatever it credits meanwhile
                link.send(DATA, 1, b"x" * 32768)
            print("closed" if link.closed_by_peer() else "still open")
        elif a.scenario == "dup-open":
            link.send(OPEN, 1, open_payload(dev, a.dport))
            link.send(OPEN, 1, open_payload(dev, a.dport))
            print("closed" if link.closed_by_peer() else "still open")
        elif a.scenario == "bad-frame":
            link.s.sendall(b"\x63" + os.urandom(64))
            print("closed" if link.closed_by_peer() else "still open")
        elif a.scenario == "unknown-chan":
            link.send(DATA, 77, b"who am I")
            print("closed" if link.closed_by_peer() else "still open")
        elif a.scenario == "many-opens":  # every OPEN is answered; nothing piles up
            n = 300
            for i in range(1, n + 1):
                link.send(OPEN, i, open_payload(dev, a.dport))
            ok = fail = 0
            while ok + fail < n:
                t, c, p = link.recv()
                if t == OPEN_OK:
                    ok += 1
                    link.send(CLOSE, c)
                elif t == OPEN_FAIL:
                    fail += 1
            print(f"answered {ok + fail} ok {ok}")
        elif a.scenario == "ping":
            link.send(PING, 0, b"12345678")
            t, c, p = link.recv(skip_pings=False)
            while t == PING:
                t, c, p = link.recv(skip_pings=False)
            print("pong" if t == PONG and p == b"12345678" else f"got {t}")
    except Closed:
        print("closed early")
    except socket.timeout:
        print("timeout")


if __name__ == "__main__":
    sys.exit(main())
