#!/usr/bin/env python3
# httpclient.py - raw HTTP/1.1 proxy client (and a scripted APF device) for http_proxy.sh.
# SPDX-License-Identifier: Apache-2.0
"""Raw HTTP/1.1 proxy client for the http_proxy tests, for what curl cannot do: pipelining,
malformed input, exact control over when the connection is used again or left idle,
CONNECT with concurrent bulk both ways, and a thousand connections at once. Standard library
only. Also a scripted APF device (using apfclient.py) whose web server answers in the odd ways
a proxy must survive.

CLI:  httpclient.py --port PROXY_PORT SCENARIO [options]; prints one result line ("ok", or what
went wrong; `send` prints a small report). Exit status 0 when the scenario ran, 2 on a usage
error. The shell test compares the output.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import codecs
import hashlib
import os
import random
import socket
import sys
import threading
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apfclient  # noqa: E402  (same directory: the independent APF device)

UUID_BASE = 0x8C6A3B2E5D1F4E7A9B0C000000000000  # amtsim's --uuid-base default


def amtsim_uuid(i: int) -> str:
    h = f"{UUID_BASE + i:032x}"
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def unescape(s: str) -> bytes:
    """A command-line string with Python escapes (\\r\\n, \\x16) as raw bytes."""
    return codecs.decode(s, "unicode_escape").encode("latin-1")


# ---------------------------------------------------------------------- response reading

class Closed(Exception):
    """The connection ended before a complete response."""


class Conn:
    """A blocking client connection with a receive buffer; every wait is bounded."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def fill(self) -> None:
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed(f"connection closed ({len(self.buf)} bytes unread)")
        self.buf += chunk

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self.fill()

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def until_eof(self) -> bytes:
        try:
            while True:
                self.fill()
        except Closed:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_eof(self, timeout: float) -> Optional[float]:
        """Seconds until the peer closes (bytes before it are dropped), None on timeout."""
        t0 = time.monotonic()
        self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, ConnectionAbortedError):
                    chunk = b""
                if not chunk:
                    return time.monotonic() - t0
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(self.timeout)

    def close(self) -> None:
        self.sock.close()


class Response:
    def __init__(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.interim: list[int] = []  # 1xx seen before this response

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def closes(self) -> bool:
        v = self.header("connection")
        return v is not None and "close" in v.lower()


def read_response(c: Conn, head_request: bool = False) -> Response:
    """One response, 1xx interim responses collected on the way."""
    r = Response()
    while True:
        status = c.line().decode("latin-1")
        parts = status.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {status!r}")
        r.status = int(parts[1])
        r.reason = parts[2] if len(parts) > 2 else ""
        r.headers = []
        while True:
            h = c.line().decode("latin-1")
            if not h:
                break
            k, _, v = h.partition(":")
            r.headers.append((k, v.strip()))
        if 100 <= r.status < 200:
            r.interim.append(r.status)
            continue
        break
    if head_request or r.status in (204, 304):
        return r
    te = r.header("transfer-encoding")
    cl = r.header("content-length")
    if te is not None and "chunked" in te.lower():
        body = bytearray()
        while True:
            size = int(c.line().split(b";")[0], 16)
            if size == 0:
                while c.line():
                    pass
                break
            body += c.take(size)
            if c.take(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
        r.body = bytes(body)
    elif cl is not None:
        r.body = c.take(int(cl))
    else:
        r.body = c.until_eof()
    return r


def get_request(url: str, host: str, extra: str = "", method: str = "GET") -> bytes:
    return (f"{method} {url} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").encode()


def basic(userpass: str) -> str:
    return "Proxy-Authorization: Basic " + base64.b64encode(userpass.encode()).decode() + "\r\n"


# ------------------------------------------------------------------------------ scenarios

def sc_send(a: argparse.Namespace) -> str:
    """Send --data (Python escapes), read one response. Report lines: 'STATUS AFTER' where
    AFTER is 'close' (the proxy closed the connection), 'open' (it did not within --timeout),
    or 'then=STATUS' (--then URL was requested on the same connection afterwards, and got that
    status and a body naming --then-expect); then 'body: FIRST LINE' and the response headers
    as 'header: NAME: VALUE'."""
    c = Conn(a.host, a.port, a.timeout)
    c.send(unescape(a.data))
    try:
        r = read_response(c, head_request=a.data.startswith("HEAD "))
    except Closed as e:
        return f"none close ({e})"
    after = ""
    if a.then:
        host = a.then.split("/")[2]
        extra = basic(a.then_auth) if a.then_auth else ""
        try:
            c.send(get_request(a.then, host, extra))
            r2 = read_response(c)
            after = f"then={r2.status}"
            if a.then_expect and a.then_expect.encode() not in r2.body:
                after += f" (body {r2.body[:80]!r})"
        except (Closed, BrokenPipeError, ConnectionResetError) as e:
            after = f"then=closed ({e})"
    else:
        t = c.wait_eof(a.timeout)
        after = "close" if t is not None else "open"
    c.close()
    lines = [f"{r.status} {after}", "body: " + r.body.split(b"\n")[0].decode("latin-1")]
    lines += [f"interim: {s}" for s in r.interim]
    lines += [f"header: {k}: {v}" for k, v in r.headers]
    return "\n".join(lines)


def sc_pipeline(a: argparse.Namespace) -> str:
    """GET, POST with a body, GET, all in one send: three responses, in order, bodies right."""
    dev, port = a.device, a.dport
    base = f"http://{dev}:{port}"
    body = b"pipelined POST body \x00\xff\r\n\r\nGET /not-a-request HTTP/1.1\r\n\r\n"
    data = (get_request(f"{base}/first", f"{dev}:{port}")
            + (f"POST {base}/second HTTP/1.1\r\nHost: {dev}:{port}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            + get_request(f"{base}/third?x=1", f"{dev}:{port}"))
    c = Conn(a.host, a.port, a.timeout)
    c.send(data)
    want = [f"amtsim {dev} {a.uuid} /first\n".encode(), body,
            f"amtsim {dev} {a.uuid} /third?x=1\n".encode()]
    for i, w in enumerate(want):
        try:
            r = read_response(c)
        except Closed as e:
            return f"response {i + 1}: {e}"
        if r.status != 200 or r.body != w:
            return f"response {i + 1}: {r.status} {r.body[:100]!r}, want 200 {w[:100]!r}"
    # Still usable afterwards.
    c.send(get_request(f"{base}/fourth", f"{dev}:{port}"))
    r = read_response(c)
    if r.status != 200 or not r.body.endswith(b" /fourth\n"):
        return f"after the pipeline: {r.status} {r.body[:100]!r}"
    c.close()
    return "ok"


def pattern(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def sc_connect_echo(a: argparse.Namespace) -> str:
    """CONNECT --target, then --bytes through a raw echo port, sent and received at the same
    time, compared by SHA-256. With --pipelined the first data goes in the same send as the
    CONNECT head; --idle S waits S seconds with the tunnel idle first (no IdleTimeout after
    CONNECT). --auth adds Proxy-Authorization."""
    c = Conn(a.host, a.port, a.timeout)
    head = (f"CONNECT {a.target} HTTP/1.1\r\nHost: {a.target}\r\n"
            + (basic(a.auth) if a.auth else "") + "\r\n").encode()
    block = pattern(a.seed, 1 << 20)
    first = block[:1000] if a.pipelined else b""
    c.send(head + first)
    status = c.line().decode("latin-1")
    while c.line():
        pass
    if not status.startswith("HTTP/1.1 200"):
        return f"CONNECT answered {status!r}"
    if a.idle:
        if c.buf:
            return f"{len(c.buf)} unexpected bytes before anything was sent"
        c.sock.settimeout(a.idle)
        try:
            chunk = c.sock.recv(1)
            return f"tunnel closed or spoke while idle: {chunk!r}"
        except socket.timeout:
            pass
        c.sock.settimeout(a.timeout)
    total = a.bytes
    sent_hash = hashlib.sha256(first)
    got_hash = hashlib.sha256()
    errors: list[str] = []

    def sender() -> None:
        view = memoryview(block)
        try:
            left = total - len(first)
            i = 0
            while left > 0:
                off = (i * 65521) % (len(block) // 2)
                piece = view[off:off + min(left, 65536)]
                c.sock.sendall(piece)
                sent_hash.update(piece)
                left -= len(piece)
                i += 1
        except OSError as e:
            errors.append(f"send: {e}")

    t = threading.Thread(target=sender)
    t.start()
    got = 0
    got_hash.update(bytes(c.buf))
    got += len(c.buf)
    c.buf.clear()
    try:
        while got < total:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                errors.append(f"EOF after {got} of {total} bytes")
                break
            got_hash.update(chunk)
            got += len(chunk)
    except OSError as e:
        errors.append(f"recv after {got} bytes: {e}")
    t.join()
    c.close()
    if errors:
        return "; ".join(errors)
    if got != total or got_hash.digest() != sent_hash.digest():
        return f"echo differs: {got} bytes back of {total}"
    return "ok"


def sc_idle(a: argparse.Namespace) -> str:
    """Send --data (may be empty), then wait: 'closed S STATUS' with the seconds until the
    proxy closed and the status it answered ('-' for none), or 'open' after --timeout."""
    c = Conn(a.host, a.port, a.timeout)
    t0 = time.monotonic()
    if a.data:
        c.send(unescape(a.data))
    c.sock.settimeout(a.timeout)
    data = b""
    try:
        while True:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        pass
    status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/1.1 ") else "-"
    return f"closed {time.monotonic() - t0:.1f} {status}"


def sc_hold(a: argparse.Namespace) -> str:
    """Hold --conns CONNECT tunnels to --target open for --seconds (touching --ready-file once
    they are all established), for the channel-limit test. 'ok N' or what failed."""
    conns = []
    for i in range(a.conns):
        c = Conn(a.host, a.port, a.timeout)
        c.send(f"CONNECT {a.target} HTTP/1.1\r\nHost: {a.target}\r\n".encode()
               + (basic(a.auth).encode() if a.auth else b"") + b"\r\n")
        status = c.line().decode("latin-1")
        if not status.startswith("HTTP/1.1 200"):
            return f"tunnel {i}: {status!r}"
        while c.line():
            pass
        c.send(b"ping")
        if c.take(4) != b"ping":
            return f"tunnel {i}: no echo"
        conns.append(c)
    apfclient.touch(a.ready_file)
    time.sleep(a.seconds)
    for c in conns:
        c.close()
    return f"ok {len(conns)}"


async def one_client(i: int, a: argparse.Namespace, barrier: asyncio.Barrier,
                     sem: asyncio.Semaphore) -> str:
    d = i % a.devices
    dev = a.device.replace("%d", str(d))
    async with sem:  # a bounded number of connects in flight: the listen backlog is finite
        reader, writer = await asyncio.wait_for(asyncio.open_connection(a.host, a.port),
                                                a.timeout)
    try:
        await asyncio.wait_for(barrier.wait(), a.timeout)  # all connected at once
        for k in ("a", "b"):
            path = f"/c{i}{k}"
            writer.write(get_request(f"http://{dev}:{a.dport}{path}", f"{dev}:{a.dport}"))
            status = await asyncio.wait_for(reader.readline(), a.timeout)
            length = -1
            while True:
                h = await asyncio.wait_for(reader.readline(), a.timeout)
                if h in (b"\r\n", b""):
                    break
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            if not status.startswith(b"HTTP/1.1 200") or length < 0:
                return f"conn {i} {path}: {status!r}"
            body = await asyncio.wait_for(reader.readexactly(length), a.timeout)
            want = f"amtsim {dev} {amtsim_uuid(d)} {path}\n".encode()
            if body != want:
                return f"conn {i} {path}: body {body!r}"
        await asyncio.wait_for(barrier.wait(), a.timeout)  # all still open here
        return "ok"
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
        return f"conn {i}: {type(e).__name__} {e}"
    finally:
        writer.close()


async def many(a: argparse.Namespace) -> list[str]:
    barrier = asyncio.Barrier(a.conns)
    sem = asyncio.Semaphore(100)
    return await asyncio.gather(*(one_client(i, a, barrier, sem) for i in range(a.conns)))


def sc_many(a: argparse.Namespace) -> str:
    """--conns connections at once over --devices devices (--device with %d): all connect,
    then each sends two keep-alive GETs to its device and checks that the bodies name it;
    none closes before all are done."""
    results = asyncio.run(many(a))
    bad = [r for r in results if r != "ok"]
    bad.sort(key=lambda r: "TimeoutError" in r)  # the cause first, the clients it held up after
    if bad:
        return f"{len(bad)} of {len(results)} failed: " + "; ".join(bad[:5])
    return f"ok {len(results)}"


# ---------------------------------------------------------------------- a scripted device

def device_answer(path: str, head: bytes) -> tuple[bytes, bool]:
    """What the scripted device sends for a request: (bytes, close the channel after)."""
    if path == "/echo-head":  # the head as it reached the device
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(head)).encode() + b"\r\n\r\n" + head, False)
    if path == "/continue":
        body = b"final after 100\n"
        return (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body, False)
    if path == "/hop":  # hop-by-hop response headers the proxy must drop
        return (b"HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: secret\r\n"
                b"Keep-Alive: timeout=5\r\nX-Public: yes\r\nContent-Length: 3\r\n\r\nhop", False)
    if path == "/malformed":
        return b"HTTP/1.1 2x0 What\r\nNonsense\r\n\r\n", False
    if path == "/cut":  # promises 100 bytes, sends 10, closes
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", True
    if path == "/lost":  # the channel goes away before any response
        return b"", True
    if path == "/partial":  # ... or in the middle of the response head
        return b"HTTP/1.1 200 OK\r\nContent-Le", True
    if path == "/eof":  # body delimited by the end of the channel
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the channel ends\n", True
    if path == "/close":
        return (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 6\r\n\r\nclosed",
                True)
    body = b"scripted " + path.encode() + b"\n"
    return (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            + body, False)


def sc_device(a: argparse.Namespace) -> str:
    """An APF device (--fqdn, --ports) whose web server answers by path (see device_answer);
    requests must have no body. Runs --seconds; touches --ready-file once forwarding. Prints
    'ok CHANNELS' (channels it served) or what went wrong."""
    ns = argparse.Namespace(port=a.amt_port, host=a.host, timeout=a.timeout, uuid=a.uuid_hex,
                            user="amtuser", password="P@ssw0rd", fqdn=a.fqdn, ports=a.ports)
    d = apfclient.full(ns)
    apfclient.touch(a.ready_file)
    chans: dict[int, dict] = {}  # our id -> {peer, rx, closed}
    next_id = 100
    served = 0
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        try:
            m = d.recv(0.5)
        except apfclient.Disconnected as e:
            return e.result()
        if m is None:
            continue
        if d.handle_background(m):
            continue
        if m.type == apfclient.CHANNEL_OPEN:
            ours = next_id
            next_id += 1
            chans[ours] = {"peer": m.f["sender"], "rx": bytearray(), "closed": False}
            d.send(apfclient.msg_channel_open_confirmation(m.f["sender"], ours, 1 << 20))
            served += 1
        elif m.type == apfclient.CHANNEL_DATA:
            ch = chans.get(m.f["recipient"])
            if ch is None or ch["closed"]:
                continue
            ch["rx"] += m.f["data"]
            d.send(apfclient.msg_window_adjust(ch["peer"], len(m.f["data"])))
            while b"\r\n\r\n" in ch["rx"] and not ch["closed"]:
                end = ch["rx"].index(b"\r\n\r\n") + 4
                head = bytes(ch["rx"][:end])
                del ch["rx"][:end]
                path = head.split(b" ")[1].decode("latin-1")
                out, close = device_answer(path, head)
                if out:
                    d.send(apfclient.msg_channel_data(ch["peer"], out))
                if close:
                    d.send(apfclient.msg_channel_close(ch["peer"]))
                    ch["closed"] = True
        elif m.type == apfclient.CHANNEL_CLOSE:
            ch = chans.pop(m.f["recipient"], None)
            if ch is not None and not ch["closed"]:
                d.send(apfclient.msg_channel_close(ch["peer"]))
        elif m.type == apfclient.CHANNEL_WINDOW_ADJUST:
            pass
        elif m.type == apfclient.DISCONNECT:
            return f"disconnect {m.f['reason']} after {served} channels"
        else:
            return f"unexpected {m}"
    d.close()
    return f"ok {served}"


SCENARIOS = {
    "send": sc_send,
    "pipeline": sc_pipeline,
    "connect-echo": sc_connect_echo,
    "idle": sc_idle,
    "hold": sc_hold,
    "many": sc_many,
    "device": sc_device,
}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="the proxy's port")
    p.add_argument("--timeout", type=float, default=10.0, help="bound of every network wait")
    p.add_argument("--data", default="", help="send/idle: bytes to send (Python escapes)")
    p.add_argument("--then", default=None, help="send: URL to GET afterwards, same connection")
    p.add_argument("--then-auth", default=None, help="send: user:password for --then")
    p.add_argument("--then-expect", default=None, help="send: text --then's body must hold")
    p.add_argument("--device", default="dev0.example.com", help="device (%%d: index for many)")
    p.add_argument("--uuid", default=amtsim_uuid(0), help="pipeline: the device's UUID text")
    p.add_argument("--dport", type=int, default=16992, help="device port")
    p.add_argument("--devices", type=int, default=1, help="many: devices")
    p.add_argument("--conns", type=int, default=1, help="many/hold: connections")
    p.add_argument("--target", default="dev0.example.com:16994", help="CONNECT target")
    p.add_argument("--auth", default=None, help="connect-echo/hold: user:password")
    p.add_argument("--bytes", type=int, default=1 << 20, help="connect-echo: bytes each way")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pipelined", action="store_true", help="connect-echo: data with the head")
    p.add_argument("--idle", type=float, default=0.0, help="connect-echo: idle seconds first")
    p.add_argument("--seconds", type=float, default=10.0, help="hold/device: how long")
    p.add_argument("--ready-file", default=None)
    p.add_argument("--amt-port", type=int, default=16992, help="device: mpsd's AMT port")
    p.add_argument("--fqdn", default="scripted.example.com", help="device: its FQDN")
    p.add_argument("--uuid-hex", default="5c000000000000000000000000000001",
                   help="device: its UUID, 32 hex digits")
    p.add_argument("--ports", type=lambda s: [int(x) for x in s.split(",")], default=[16992],
                   help="device: ports to forward")
    a = p.parse_args(argv)
    try:
        print(SCENARIOS[a.scenario](a), flush=True)
    except (OSError, ValueError, Closed, apfclient.Unexpected, apfclient.Disconnected,
            TimeoutError) as e:
        print(f"error: {type(e).__name__}: {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
