#!/usr/bin/env python3
# hostile.py - hostile clients and the bystander for the hardening tests (issue 17).
# SPDX-License-Identifier: Apache-2.0
"""Clients that misbehave against any mpsd listener, and a well-behaved bystander.

Standard library only (plus apfclient.py from the same directory, for APF messages). Every
client can connect from a chosen local address (--source; Linux routes all of 127.0.0.0/8 to
lo, so 127.0.0.2 is another source than 127.0.0.1) and --host may be ::1.

CLI:  hostile.py SCENARIO [options]   prints one result line. Exit status 0 when the scenario
ran, 2 on an error (usage, exception).

  probe      connect, send --send (maybe nothing), and report the server's verdict within
             --wait: 'closed' (closed or reset before sending anything: refused at accept),
             'open' (nothing happened), or what it sent: with --apf the APF messages
             ('PROTOCOLVERSION', 'DISCONNECT 12', ...), else the first line, followed by
             ' closed' when the server closed the connection after it.
  hold       open --conns connections one after the other (sources rotating through
             --source), each sending --send; with --apf, wait for each one's first APF
             message before opening the next. Then watch them, keeping --status-file at
             'conns N open O closed C data D' (D: those that received anything; C: closed by
             the server), until --trigger-file appears or --seconds pass; close them all and
             print the status line. --ready-file is written once all are opened.
  trickle    --conns connections at once (sources rotating), each sending --send one byte
             every --interval s until the server closes it or --wait passes, at most
             --bytes of it (the data repeats). Prints 'closed=C open=O min=S max=S sent=B
             replies=R', where min/max are the seconds from connect to the server's close,
             sent the fewest bytes a closed connection had sent, and R the distinct answers
             ('-' none; the first line, or with --apf the APF messages) joined by '|'.
  hammer     connect, send --send (maybe nothing), wait up to --wait for the server's first
             bytes or its close, and close; again and again for --seconds (sources rotating):
             'connections N closed C' (C: closed by the server without a byte). --parallel N
             runs N such loops.
  bystander  a console that must never fail: each round echoes 1 KiB through a test_console
             pipe (--cport, to --device port 16994) and GETs /bystander/ROUND through the
             http_proxy (--hport, device port 16992), on connections kept open (re-opened, as
             a failure, if the server drops them); with --fresh each round also does both on
             new connections. Keeps --status-file at 'rounds R echo E http H fail F' and
             prints it when --stop-file appears; failures go to stderr with a timestamp.
"""
from __future__ import annotations

import argparse
import codecs
import os
import random
import select
import socket
import struct
import sys
import threading
import time
from typing import Optional

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apfclient as ac  # noqa: E402


IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2


def unescape(s: str) -> bytes:
    """A command-line string with Python escapes (\\r\\n, \\x05) as raw bytes."""
    return codecs.decode(s, "unicode_escape").encode("latin-1")


def payload(a: argparse.Namespace) -> bytes:
    if a.send == "@clienthello":
        return ac.client_hello()
    if a.send == "@apf":
        return ac.msg_protocolversion() + ac.msg_service_request(ac.SERVICE_AUTH)
    return unescape(a.send)


def connect(host: str, port: int, source: Optional[str], timeout: float) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        if source:
            if fam == socket.AF_INET:  # the port at connect(): a flood does not run out of them
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((source, 0))
        s.settimeout(timeout)
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        s.close()
        raise
    return s


def sources(a: argparse.Namespace) -> list[Optional[str]]:
    return [x for x in a.source.split(",")] if a.source else [None]


def describe(data: bytes, apf: bool) -> str:
    """What the server sent, in one short word or line."""
    if apf:
        names, buf = [], bytearray(data)
        while buf:
            try:
                got = ac.decode(buf, False)
            except ac.ProtocolError:
                names.append("garbage")
                break
            if got is None:
                names.append("partial")
                break
            m, n = got
            del buf[:n]
            names.append(f"DISCONNECT {m.f['reason']}" if m.type == ac.DISCONNECT else m.name)
        return ",".join(names)
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if line and all(32 <= c < 127 for c in line):
        return line.decode("ascii")
    return "hex " + data[:8].hex()


def recv_some(s: socket.socket, timeout: float) -> Optional[bytes]:
    """Bytes, b"" on EOF or reset, None on timeout."""
    r, _, _ = select.select([s], [], [], max(0.0, timeout))
    if not r:
        return None
    try:
        return s.recv(65536)
    except (ConnectionResetError, ConnectionAbortedError):
        return b""
    except BlockingIOError:
        return None


# --------------------------------------------------------------------------- scenarios

def sc_probe(a: argparse.Namespace) -> str:
    s = connect(a.host, a.port, sources(a)[0], a.timeout)
    data = payload(a)
    if data:
        try:
            s.sendall(data)
        except OSError:
            pass  # refused half-way: the verdict is in the receive buffer, or there is none
    got = bytearray()
    deadline = time.monotonic() + a.wait
    closed = False
    while time.monotonic() < deadline:
        b = recv_some(s, deadline - time.monotonic())
        if b is None:
            break
        if not b:
            closed = True
            break
        got += b
        if not a.apf and b"\n" in got and not a.until_close:
            break
        if a.apf and ac.decode(got, False) is not None and not a.until_close:
            # One whole message: a refusal (DISCONNECT) is followed by the close, read it.
            if got[0] != ac.DISCONNECT:
                break
    s.close()
    if not got:
        return "closed" if closed else "open"
    return describe(bytes(got), a.apf) + (" closed" if closed else "")


def write_status(path: Optional[str], text: str) -> None:
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(path + ".tmp", path)


def sc_hold(a: argparse.Namespace) -> str:
    data = payload(a)
    srcs = sources(a)
    socks: list[socket.socket] = []
    state: dict[socket.socket, list] = {}  # sock -> [got data, closed]
    for i in range(a.conns):
        try:
            s = connect(a.host, a.port, srcs[i % len(srcs)], a.timeout)
        except OSError as e:
            print(f"connect {i}: {e}", file=sys.stderr)
            continue
        if data:
            try:
                s.sendall(data)
            except OSError:
                pass
        socks.append(s)
        state[s] = [False, False]
        if a.apf:  # the device listener speaks first: accepted or refused, known now
            b = recv_some(s, a.timeout)
            if b:
                state[s][0] = True
            elif b == b"":
                state[s][1] = True

    def status() -> str:
        closed = sum(1 for v in state.values() if v[1])
        got = sum(1 for v in state.values() if v[0])
        return f"conns {len(socks)} open {len(socks) - closed} closed {closed} data {got}"

    last = status()
    write_status(a.status_file, last)
    ac.touch(a.ready_file, last + "\n")
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        if a.trigger_file and os.path.exists(a.trigger_file):
            break
        live = [s for s in socks if not state[s][1]]
        if not live:
            time.sleep(0.05)
            continue
        r, _, _ = select.select(live, [], [], 0.05)
        for s in r:
            try:
                b = s.recv(65536)
            except OSError:
                b = b""
            if b:
                state[s][0] = True
            else:
                state[s][1] = True
        now = status()
        if now != last:
            last = now
            write_status(a.status_file, last)
    for s in socks:
        s.close()
    return status()


def sc_trickle(a: argparse.Namespace) -> str:
    data = payload(a) or b"x"
    srcs = sources(a)
    results: list[Optional[tuple]] = [None] * a.conns

    def one(i: int) -> None:
        try:
            s = connect(a.host, a.port, srcs[i % len(srcs)], a.timeout)
        except OSError as e:
            results[i] = ("error", 0.0, 0, str(e))
            return
        t0 = time.monotonic()
        sent, got = 0, bytearray()
        end = t0 + a.wait
        next_send = time.monotonic()
        verdict = None
        while verdict is None:
            now = time.monotonic()
            if now >= end:
                verdict = "open"
                break
            if now >= next_send and sent < a.bytes:
                try:
                    s.send(data[sent % len(data):sent % len(data) + 1])
                    sent += 1
                except OSError:
                    pass  # the close is read next
                next_send += a.interval
            b = recv_some(s, min(end, next_send if sent < a.bytes else end) - time.monotonic())
            if b is None:
                continue
            if not b:
                verdict = "closed"
            else:
                got += b
        results[i] = (verdict, time.monotonic() - t0, sent, describe(bytes(got), a.apf)
                      if got else "-")
        s.close()

    ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(a.conns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(a.wait + 2 * a.timeout)
    res = [r or ("timeout", 0.0, 0, "-") for r in results]
    closed = [r for r in res if r[0] == "closed"]
    others = [r for r in res if r[0] not in ("closed", "open")]
    if others:
        return f"error: {len(others)} connections: {others[0]}"
    opened = len(res) - len(closed)
    times = [r[1] for r in closed] or [0.0]
    sent = min([r[2] for r in closed] or [0])
    replies = "|".join(sorted({r[3] for r in res}))
    return (f"closed={len(closed)} open={opened} min={min(times):.2f} max={max(times):.2f} "
            f"sent={sent} replies={replies}")


def sc_hammer(a: argparse.Namespace) -> str:
    srcs = sources(a)
    data = payload(a)
    counts = [0, 0]
    lock = threading.Lock()
    end = time.monotonic() + a.seconds

    def loop(k: int) -> None:
        i = k
        while time.monotonic() < end:
            try:
                s = connect(a.host, a.port, srcs[i % len(srcs)], a.timeout)
            except OSError:
                time.sleep(0.01)
                continue
            i += 1
            if data:
                try:
                    s.sendall(data)
                except OSError:
                    pass
            b = recv_some(s, a.wait)
            # A reset, not a FIN: thousands of connections leave no TIME_WAIT behind.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            with lock:
                counts[0] += 1
                counts[1] += b == b""

    ths = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(a.parallel)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(a.seconds + a.wait + a.timeout)
    return f"connections {counts[0]} closed {counts[1]}"


# ---------------------------------------------------------------------------- bystander

class Failure(Exception):
    pass


def read_exact(s: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            raise Failure(f"closed after {len(got)} of {n} bytes")
        got += b
    return bytes(got)


def console_pipe(a: argparse.Namespace) -> socket.socket:
    s = connect(a.host, a.cport, None, a.timeout)
    s.sendall(f"{a.device} 16994\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise Failure(f"test_console closed after {line!r}")
        line += c
    if line != b"OK\n":
        s.close()
        raise Failure(f"test_console answered {line!r}")
    return s


def echo(s: socket.socket, rnd: random.Random) -> None:
    data = rnd.randbytes(1024)
    s.sendall(data)
    if read_exact(s, len(data)) != data:
        raise Failure("echo mismatch")


class HttpConn:
    def __init__(self, a: argparse.Namespace) -> None:
        self.s = connect(a.host, a.hport, None, a.timeout)
        self.buf = bytearray()

    def get(self, device: str, path: str) -> None:
        self.s.sendall(f"GET http://{device}:16992{path} HTTP/1.1\r\nHost: {device}:16992\r\n"
                       f"\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            b = self.s.recv(65536)
            if not b:
                raise Failure(f"proxy closed before a response ({bytes(self.buf[:80])!r})")
            self.buf += b
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        clen = 0
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            if k.strip().lower() == "content-length":
                clen = int(v.strip())
        while len(rest) < clen:
            b = self.s.recv(65536)
            if not b:
                raise Failure("proxy closed inside a response body")
            rest += b
        body, self.buf = rest[:clen], bytearray(rest[clen:])
        if not lines[0].startswith("HTTP/1.1 200 "):
            raise Failure(f"{lines[0]}: {body[:100]!r}")
        text = body.decode("latin-1").strip()
        if not (text.startswith(f"amtsim {device} ") and text.endswith(f" {path}")):
            raise Failure(f"unexpected body {text!r}")

    def close(self) -> None:
        self.s.close()


def sc_bystander(a: argparse.Namespace) -> str:
    rnd = random.Random(a.seed)
    st = {"rounds": 0, "echo": 0, "http": 0, "fail": 0}
    pipe: Optional[socket.socket] = None
    http: Optional[HttpConn] = None

    def status() -> str:
        return f"rounds {st['rounds']} echo {st['echo']} http {st['http']} fail {st['fail']}"

    def failed(what: str, e: Exception) -> None:
        st["fail"] += 1
        print(f"{time.strftime('%H:%M:%S')} round {st['rounds']}: {what}: "
              f"{type(e).__name__}: {e}", file=sys.stderr, flush=True)

    while not os.path.exists(a.stop_file):
        r = st["rounds"]
        try:
            if pipe is None:
                pipe = console_pipe(a)
            echo(pipe, rnd)
            st["echo"] += 1
        except (OSError, Failure) as e:
            failed("echo on the kept pipe", e)
            if pipe:
                pipe.close()
            pipe = None
        try:
            if http is None:
                http = HttpConn(a)
            http.get(a.device, f"/bystander/{r}")
            st["http"] += 1
        except (OSError, Failure, ValueError) as e:
            failed("GET on the kept connection", e)
            if http:
                http.close()
            http = None
        if a.fresh:
            try:
                s = console_pipe(a)
                echo(s, rnd)
                s.close()
                st["echo"] += 1
            except (OSError, Failure) as e:
                failed("echo on a new pipe", e)
            try:
                h = HttpConn(a)
                h.get(a.device, f"/bystander/{r}/fresh")
                h.close()
                st["http"] += 1
            except (OSError, Failure, ValueError) as e:
                failed("GET on a new connection", e)
        st["rounds"] += 1
        write_status(a.status_file, status())
        time.sleep(a.interval)  # pacing, not synchronisation
    return status()


SCENARIOS = {
    "probe": sc_probe,
    "hold": sc_hold,
    "trickle": sc_trickle,
    "hammer": sc_hammer,
    "bystander": sc_bystander,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--source", default=None, help="local address(es), comma-separated")
    p.add_argument("--send", default="", help="bytes to send (Python escapes), @apf: an APF "
                   "version and auth request, @clienthello: a TLS ClientHello")
    p.add_argument("--apf", action="store_true", help="the server speaks APF: decode it")
    p.add_argument("--until-close", action="store_true", help="probe: read until the close")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--bytes", type=int, default=1 << 30, help="trickle: at most this many")
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--status-file", default=None)
    p.add_argument("--ready-file", default=None)
    p.add_argument("--trigger-file", default=None)
    p.add_argument("--stop-file", default=None)
    p.add_argument("--cport", type=int, default=0, help="bystander: test_console port")
    p.add_argument("--hport", type=int, default=0, help="bystander: http_proxy port")
    p.add_argument("--device", default="bystander.example.com")
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    try:
        res = SCENARIOS[a.scenario](a)
    except (OSError, ac.ProtocolError) as e:
        print(f"error: {type(e).__name__}: {e}")
        return 2
    print(res, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
