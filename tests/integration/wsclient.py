#!/usr/bin/env python3
# wsclient.py - a raw WebSocket (RFC 6455) client for tests/integration/ws_relay.sh.
# SPDX-License-Identifier: Apache-2.0
"""Raw WebSocket client for the ws_relay tests.

Written from RFC 6455 alone, standard library only, so that every byte a browser could send,
well-formed or hostile, can be scripted: the opening handshake (4.1, with the
Sec-WebSocket-Accept check of 4.2.2), masking (5.3), framing with 7-, 16- and 64-bit lengths
(5.2), fragmentation (5.4), control frames (5.5).

CLI:  wsclient.py --port PORT [--path PATH] SCENARIO [options]   prints one result line.
Exit status 0 when the scenario ran (its line says how it went), 2 on an exception.
  handshake  the handshake alone: '101' (with ' protocol P' when the server chose one),
             or the refusal's status with what matters of it: '426 version=13',
             '401 challenge=Basic,Bearer', '405 allow=GET'; '101 bad-accept' when the
             server's Sec-WebSocket-Accept is wrong; 'closed' when it answered nothing.
  raw        send --text as the request head (\\r\\n escapes allowed) and print the status
             or 'closed'.
  bulk       --bytes random bytes (--seed) sent as binary frames of --frame bytes while the
             answer is read (one thread, non-blocking), compared by SHA-256, then a close
             handshake:
             'ok BYTES MB/s close 1000'.
  hostile    after the handshake send one bad frame (--kind, see KINDS) and read until the
             server's close frame and the end of the stream: 'close CODE eof'; 'eof' when the
             server closed without a close frame.
  ping       ping with --payload, then a binary echo: 'pong ok echo ok'.
  close      close with --code (0: an empty close frame): 'close CODE eof' ('close none eof'
             for an empty answer).
  fragments  a binary message in three fragments with a ping between them, then a text
             message whose UTF-8 characters are split across fragments: 'ok' when the echo
             matches byte for byte and the pong came back.
  text       a text frame (--payload) echoed back (the relay answers binary): 'ok binary'.
  sol        what a redirection console sends first on 16994 (a StartRedirectionSession for
             SOL) through the relay to an echoing device: 'sol ok' when it comes back.
  idle       wait for the server to close: 'close CODE after SECONDS'.
  stall      send --bytes without reading until the relay's backpressure stops the sender,
             write the bytes sent to --ready-file, wait for --stop-file, read it all back:
             'ok stalled at BYTES'.
  hold       open --conns WebSockets, write --ready-file when all are up, wait for
             --stop-file, close them all: 'held N'.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Optional

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

KINDS = {
    "unmasked": "a binary frame without a mask (1002)",
    "oversized": "a binary frame longer than MaxFrameSize (1009)",
    "opcode": "opcode 3, reserved (1002)",
    "fragctl": "a ping without FIN (1002)",
    "rsv": "RSV1 set, no extension negotiated (1002)",
    "longctl": "a ping of 126 bytes (1002)",
    "cont": "a continuation frame with no message open (1002)",
    "newdata": "a binary frame inside a fragmented message (1002)",
    "badutf8": "a text frame that is not UTF-8 (1007)",
    "badclose": "a close frame with code 1005 (1002)",
    "msb": "a 64-bit length with its top bit set (1002)",
}


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """XOR data with the 4-byte key, repeated: through big integers, fast for megabytes."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes = b"", fin: bool = True, masked: bool = True,
          rsv: int = 0, length: Optional[int] = None) -> bytes:
    """One frame as a client sends it (length: the announced length, if not the real one)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def parse_server_frame(buf: bytearray) -> "tuple[bool, int, bytes] | int":
    """The first frame of buf, removed from it: (fin, opcode, payload); or, while buf holds
    only part of it, how many bytes it needs. Server frames must not be masked."""
    if len(buf) < 2:
        return 2
    b0, b1 = buf[0], buf[1]
    if b1 & 0x80:
        raise ValueError("masked frame from the server")
    if b0 & 0x70:
        raise ValueError("RSV bits from the server")
    n, hl = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return 4
        n, hl = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return 10
        n, hl = struct.unpack_from("!Q", buf, 2)[0], 10
    if len(buf) < hl + n:
        return hl + n
    payload = bytes(buf[hl:hl + n])
    del buf[:hl + n]
    return bool(b0 & 0x80), b0 & 0x0F, payload


class Closed(Exception):
    pass


class Refused(Exception):
    """The handshake did not give a WebSocket: the scenario's line is 'handshake: RESULT'."""


class WS:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if a.tls:
            ctx = ssl.create_default_context(cafile=a.cafile)
            if not a.cafile:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            raw = ctx.wrap_socket(raw, server_hostname=a.host)
        self.sock = raw
        self.buf = bytearray()
        self.status = 0
        self.headers: dict[str, str] = {}

    # ------------------------------------------------------------------ handshake
    def request(self, key: Optional[str]) -> bytes:
        a = self.a
        lines = [f"GET {a.path} HTTP/1.1", f"Host: {a.host}:{a.port}",
                 "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Version: {a.version}"]
        if a.origin:
            lines.append(f"Origin: {a.origin}")
        if key is not None:
            lines.append(f"Sec-WebSocket-Key: {key}")
        for p in a.protocol or []:
            lines.append(f"Sec-WebSocket-Protocol: {p}")
        if a.basic:
            lines.append("Authorization: Basic " + base64.b64encode(a.basic.encode()).decode())
        if a.bearer:
            lines.append(f"Authorization: Bearer {a.bearer}")
        for h in a.header or []:
            lines.append(h)
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def read_head(self) -> bool:
        while b"\r\n\r\n" not in self.buf:
            try:
                b = self.sock.recv(65536)
            except ConnectionResetError:
                b = b""
            if not b:
                return False
            self.buf += b
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        del self.buf[:end + 4]
        self.status = int(lines[0].split(" ")[1])
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            name = name.strip().lower()
            value = value.strip()
            self.headers[name] = (self.headers[name] + "," + value
                                  if name in self.headers else value)
        return True

    def handshake(self) -> str:
        key = None if self.a.no_key else base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(self.request(key))
        return self.answer(key)

    def answer(self, key: Optional[str]) -> str:
        if not self.read_head():
            return "closed"
        h = self.headers
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1((key or "").encode() + GUID).digest()).decode()
            if h.get("sec-websocket-accept") != want or h.get("upgrade", "").lower() != \
                    "websocket" or "upgrade" not in h.get("connection", "").lower():
                return "101 bad-accept"
            if "sec-websocket-protocol" in h:
                return "101 protocol " + h["sec-websocket-protocol"]
            return "101"
        out = str(self.status)
        if "sec-websocket-version" in h:
            out += " version=" + h["sec-websocket-version"]
        if "www-authenticate" in h:
            out += " challenge=" + ",".join(v.split()[0] for v in h["www-authenticate"].split(",")
                                            if v.strip() and "=" not in v.split()[0])
        if "allow" in h:
            out += " allow=" + h["allow"]
        return out

    def open(self) -> None:
        res = self.handshake()
        if res.split(" ")[0] != "101":
            raise Refused(res)

    # ------------------------------------------------------------------ frames
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            b = self.sock.recv(1 << 20)
            if not b:
                raise Closed()
            self.buf += b

    def recv_frame(self) -> tuple[bool, int, bytes]:
        """One server frame: (fin, opcode, payload). Server frames must not be masked."""
        need = 2
        while True:
            self._fill(need)
            got = parse_server_frame(self.buf)
            if isinstance(got, tuple):
                return got
            need = got

    def recv_until_close(self) -> str:
        """Skip data frames up to the close frame; then the end of the stream."""
        try:
            while True:
                _, op, p = self.recv_frame()
                if op == OP_CLOSE:
                    code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                    break
        except Closed:
            return "eof"
        try:
            self._fill(len(self.buf) + 1)
            return f"close {code if code is not None else 'none'} then data"
        except Closed:
            return f"close {code if code is not None else 'none'} eof"
        except socket.timeout:
            return f"close {code if code is not None else 'none'} open"

    def recv_data(self, n: int) -> bytes:
        """n payload bytes of data frames (pongs are kept aside in self.pongs)."""
        out = bytearray()
        while len(out) < n:
            _, op, p = self.recv_frame()
            if op == OP_PONG:
                self.pongs.append(p)
            elif op in (OP_BINARY, OP_CONT, OP_TEXT):
                self.ops.append(op)
                out += p
            elif op == OP_CLOSE:
                raise Closed()
        return bytes(out)

    pongs: list[bytes] = []
    ops: list[int] = []

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------- scenarios

def sc_handshake(a: argparse.Namespace) -> str:
    ws = WS(a)
    res = ws.handshake()
    ws.close()
    return res


def sc_raw(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.send(a.text.encode().decode("unicode_escape").encode("latin-1"))
    res = ws.answer(None)
    ws.close()
    return res


def sc_bulk(a: argparse.Namespace) -> str:
    """Sends and reads at once in one thread: an ssl.SSLSocket must not be used by two
    threads at the same time (OpenSSL's SSL objects are not thread-safe; a reader and a
    writer thread on one TLS connection corrupt its state under load and end it)."""
    ws = WS(a)
    ws.open()
    total, fsize = a.bytes, a.frame
    rnd = random.Random(a.seed)
    h_out, h_in = hashlib.sha256(), hashlib.sha256()
    sock = ws.sock
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    # The frame being sent. After SSLWantWriteError, TLS wants the same bytes again.
    pending = memoryview(b"")
    left, got = total, 0
    t0 = time.monotonic()
    err = ""
    try:
        while got < total:
            if not pending and left:
                n = min(left, fsize)
                b = rnd.randbytes(n)
                h_out.update(b)
                pending = memoryview(frame(OP_BINARY, b))
                left -= n
            sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0))
            if not sel.select(a.timeout) and not (isinstance(sock, ssl.SSLSocket) and
                                                   sock.pending()):
                err = f"no progress for {a.timeout} s with {left} bytes to send"
                break
            if pending:
                try:
                    pending = pending[sock.send(pending):]
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
            while True:  # what TLS decrypted is not seen by select: read until it blocks
                try:
                    b = sock.recv(1 << 20)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    break
                if not b:
                    raise Closed()
                ws.buf += b
            while isinstance(f := parse_server_frame(ws.buf), tuple):
                _, op, p = f
                if op != OP_BINARY:
                    raise ValueError(f"opcode {op}")
                h_in.update(p)
                got += len(p)
    except (OSError, Closed, ValueError) as e:
        err = f"recv after {got} of {total} bytes, {left} to send: {e!r}"
    elapsed = time.monotonic() - t0
    sel.close()
    if err:
        ws.close()
        return err
    if left or pending:
        ws.close()
        return f"the echo was complete with {left + len(pending)} bytes unsent"
    if h_in.digest() != h_out.digest():
        return f"mismatch: sent sha256 {h_out.hexdigest()}, received {h_in.hexdigest()}"
    sock.settimeout(a.timeout)
    ws.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
    end = ws.recv_until_close()
    ws.close()
    return f"ok {total} {total / elapsed / 1e6:.1f}MB/s {end.replace(' eof', '')}"


def bad_frame(kind: str, max_frame: int) -> bytes:
    if kind == "unmasked":
        return frame(OP_BINARY, b"hello", masked=False)
    if kind == "oversized":  # the header alone: the server must not wait for the payload
        return frame(OP_BINARY, b"", length=max_frame + 1)
    if kind == "opcode":
        return frame(3, b"x")
    if kind == "fragctl":
        return frame(OP_PING, b"x", fin=False)
    if kind == "rsv":
        return frame(OP_BINARY, b"x", rsv=4)
    if kind == "longctl":
        return frame(OP_PING, b"p" * 126)
    if kind == "cont":
        return frame(OP_CONT, b"x")
    if kind == "newdata":
        return frame(OP_BINARY, b"a", fin=False) + frame(OP_BINARY, b"b")
    if kind == "badutf8":
        return frame(OP_TEXT, b"ok \xc3\x28 not")
    if kind == "badclose":
        return frame(OP_CLOSE, struct.pack("!H", 1005))
    if kind == "msb":
        return struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + os.urandom(4)
    raise SystemExit(f"unknown kind {kind}")


def sc_hostile(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    ws.send(bad_frame(a.kind, a.max_frame))
    res = ws.recv_until_close()
    ws.close()
    return res


def sc_ping(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    ws.pongs, ws.ops = [], []
    payload = a.payload.encode()
    ws.send(frame(OP_PING, payload))
    ws.send(frame(OP_BINARY, b"hello through the relay"))
    got = ws.recv_data(len(b"hello through the relay"))
    # The pong may come after the echo: wait for it.
    while not ws.pongs:
        _, op, p = ws.recv_frame()
        if op == OP_PONG:
            ws.pongs.append(p)
    ws.close()
    pong = "pong ok" if ws.pongs == [payload] else f"pong {ws.pongs!r}"
    echo = "echo ok" if got == b"hello through the relay" else f"echo {got!r}"
    return f"{pong} {echo}"


def sc_close(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    ws.send(frame(OP_CLOSE, struct.pack("!H", a.code) + b"bye" if a.code else b""))
    res = ws.recv_until_close()
    ws.close()
    return res


def sc_fragments(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    ws.pongs, ws.ops = [], []
    parts = [b"first-", b"second-", b"third"]
    ws.send(frame(OP_BINARY, parts[0], fin=False))
    ws.send(frame(OP_PING, b"between"))
    ws.send(frame(OP_CONT, parts[1], fin=False))
    ws.send(frame(OP_CONT, b"", fin=False))
    ws.send(frame(OP_CONT, parts[2], fin=True))
    text = "h\u00e9llo \u20ac \U0001F600".encode()
    # Split inside the two-, three- and four-byte characters.
    cuts = [2, text.index(b"\xe2") + 1, text.index(b"\xf0") + 2]
    pieces = [text[:cuts[0]], text[cuts[0]:cuts[1]], text[cuts[1]:cuts[2]], text[cuts[2]:]]
    ws.send(frame(OP_TEXT, pieces[0], fin=False))
    for i, p in enumerate(pieces[1:]):
        ws.send(frame(OP_CONT, p, fin=i == len(pieces) - 2))
    want = b"".join(parts) + text
    got = ws.recv_data(len(want))
    while not ws.pongs:
        _, op, p = ws.recv_frame()
        if op == OP_PONG:
            ws.pongs.append(p)
    ws.close()
    if got != want:
        return f"mismatch {got!r}"
    if ws.pongs != [b"between"]:
        return f"pongs {ws.pongs!r}"
    return "ok"


def sc_text(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    ws.pongs, ws.ops = [], []
    payload = a.payload.encode()
    ws.send(frame(OP_TEXT, payload))
    got = ws.recv_data(len(payload))
    ws.close()
    if got != payload:
        return f"mismatch {got!r}"
    return "ok " + ("binary" if set(ws.ops) == {OP_BINARY} else f"opcodes {ws.ops}")


def sc_sol(a: argparse.Namespace) -> str:
    # AMT redirection: StartRedirectionSession (0x10), 3 reserved bytes, "SOL ".
    start = bytes([0x10, 0, 0, 0]) + b"SOL "
    ws = WS(a)
    ws.open()
    ws.pongs, ws.ops = [], []
    ws.send(frame(OP_BINARY, start))
    got = ws.recv_data(len(start))
    ws.close()
    return "sol ok" if got == start else f"sol got {got.hex()}"


def sc_stall(a: argparse.Namespace) -> str:
    """Send --bytes while reading nothing until sending stalls (backpressure through the relay
    and the device), report how far it got in --ready-file, wait for --stop-file, then read
    everything back and compare."""
    ws = WS(a)
    ws.open()
    total, fsize = a.bytes, a.frame
    sent = [0]
    h_out = hashlib.sha256()
    err: list[str] = []

    def sender() -> None:
        rnd = random.Random(a.seed)
        try:
            while sent[0] < total:
                b = rnd.randbytes(min(fsize, total - sent[0]))
                h_out.update(b)
                ws.send(frame(OP_BINARY, b))
                sent[0] += len(b)
        except OSError as e:
            err.append(f"send after {sent[0]}: {e}")

    ws.sock.settimeout(None)
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    last, since = -1, time.monotonic()
    while time.monotonic() - since < 2.0:  # no progress for 2 s: stalled
        time.sleep(0.1)
        if sent[0] != last:
            last, since = sent[0], time.monotonic()
        if sent[0] >= total:
            return f"never stalled: sent all {total} bytes without reading"
    with open(a.ready_file + ".tmp", "w") as f:
        f.write(f"{sent[0]}\n")
    os.rename(a.ready_file + ".tmp", a.ready_file)
    end = time.monotonic() + a.timeout
    while not os.path.exists(a.stop_file):
        if time.monotonic() > end:
            return "timeout waiting for the stop file"
        time.sleep(0.05)
    ws.sock.settimeout(a.timeout)
    h_in = hashlib.sha256()
    got = 0
    while got < total:
        _, op, p = ws.recv_frame()
        h_in.update(p)
        got += len(p)
    th.join(a.timeout)
    if err:
        return "; ".join(err)
    if h_in.digest() != h_out.digest():
        return "mismatch"
    ws.close()
    return f"ok stalled at {last}"


def sc_idle(a: argparse.Namespace) -> str:
    ws = WS(a)
    ws.open()
    t0 = time.monotonic()
    res = ws.recv_until_close()
    ws.close()
    return f"{res.replace(' eof', '')} after {time.monotonic() - t0:.0f}"


def sc_hold(a: argparse.Namespace) -> str:
    conns = []
    for _ in range(a.conns):
        ws = WS(a)
        ws.open()
        conns.append(ws)
    # Each one carries a little data both ways first, so every channel is really open.
    for ws in conns:
        ws.pongs, ws.ops = [], []
        ws.send(frame(OP_BINARY, b"x"))
    for ws in conns:
        if ws.recv_data(1) != b"x":
            return "echo mismatch"
    with open(a.ready_file + ".tmp", "w") as f:
        f.write(f"{len(conns)}\n")
    os.rename(a.ready_file + ".tmp", a.ready_file)
    end = time.monotonic() + a.timeout
    while not os.path.exists(a.stop_file):
        if time.monotonic() > end:
            return "timeout waiting for the stop file"
        time.sleep(0.05)
    for ws in conns:
        ws.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
    for ws in conns:
        ws.recv_until_close()
        ws.close()
    return f"held {len(conns)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["handshake", "raw", "bulk", "hostile", "ping", "close",
                                        "fragments", "text", "sol", "idle", "hold", "stall"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/relay/dev0.example.com/16994")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--tls", action="store_true", help="wss:// (the server is not verified "
                   "unless --cafile)")
    p.add_argument("--cafile")
    p.add_argument("--version", default="13", help="Sec-WebSocket-Version")
    p.add_argument("--no-key", action="store_true", help="send no Sec-WebSocket-Key")
    p.add_argument("--protocol", action="append", help="Sec-WebSocket-Protocol line")
    p.add_argument("--header", action="append", help="another header line")
    p.add_argument("--origin", default="http://console.example",
                   help="the Origin header ('': none, as a program that is not a browser)")
    p.add_argument("--basic", help="USER:PASSWORD for Authorization: Basic")
    p.add_argument("--bearer", help="TOKEN for Authorization: Bearer")
    p.add_argument("--text", default="", help="raw: the request head")
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--frame", type=int, default=1 << 20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kind", choices=sorted(KINDS))
    p.add_argument("--max-frame", type=int, default=1 << 20)
    p.add_argument("--payload", default="are you there")
    p.add_argument("--code", type=int, default=1000)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--ready-file")
    p.add_argument("--stop-file")
    a = p.parse_args()
    try:
        print(globals()["sc_" + a.scenario](a), flush=True)
    except Refused as e:
        print(f"handshake: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - the test wants one line whatever happened
        print(f"error {type(e).__name__}: {e}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
