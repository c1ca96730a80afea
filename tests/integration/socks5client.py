#!/usr/bin/env python3
# socks5client.py - a raw SOCKS5 (RFC 1928 / RFC 1929) console client for the socks5 tests.
# SPDX-License-Identifier: Apache-2.0
"""Raw SOCKS5 console client (and one scripted APF device) for tests/integration/socks5.sh.

Written from RFC 1928 and RFC 1929 alone, standard library only, so that the test does not
depend on curl's choices for what it sends: every byte, split and error case is scripted.

CLI:  socks5client.py --port SOCKS_PORT SCENARIO [options]   prints one result line.
Exit status: 0 when the scenario ran (and its result matched --expect, if given), 1 when it
did not match --expect, 2 on an error (exception, timeout). Result lines:
  request      'reply 0xNN closed|open' (the reply, then whether the server closed the
               connection within --timeout), 'method 0xNN closed|open' (server refused every
               method), 'auth 0xNN closed|open' (RFC 1929 status), 'closed' (closed with no
               reply at all), 'got HEX...' (bytes that are no SOCKS5 answer).
               With --bytes N after a 0x00 reply: 'reply 0x00 echo ok'.
  raw          send the --hex bytes, then --fill zero bytes, while reading until the server
               closes: 'closed' when it answered nothing, 'got HEX' (what it answered).
  silent       connect, send --hex (maybe nothing), wait: '[got HEX ]closed SECONDS' or
               'timeout'.
  echo         negotiate, echo --bytes through the device: 'ok'; --pipelined sends greeting,
               request and the data in one send(); --half-close then shuts the write side
               down and requires the end of the stream: 'ok eof'.
  bulk         --bytes of random data sent and received concurrently (two threads), compared
               by SHA-256: 'ok BYTES MB/s'.
  multi        --conns connections spread over --devices devices (--device pattern with %d),
               all established before any sends, each echoing a unique payload, all held
               open (--ready-file / --trigger-file) and then closed: 'ok N (opened in Ts)'.
  send         negotiate, send --bytes (--pipelined: in the first send(); --early-eof: that,
               and the write side shut down before the reply), shut the write side down and
               wait for the end of the stream, which must carry no data:
               'sent N sha256 HEX eof' (for a device that records rather than echoes).
  device       a scripted APF device (tests/integration/apfclient.py's Device) forwarding
               --ports as --fqdn; --mode mute never answers CHANNEL_OPEN, --mode record
               confirms and logs what each channel received: 'opens N ...' when it ends.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import os
import random
import socket
import sys
import threading
import time
from typing import Optional

VERSION = 0x05
AUTH_VERSION = 0x01
METHOD_NONE = 0x00
METHOD_USERPASS = 0x02
METHOD_UNACCEPTABLE = 0xFF
CMD_CONNECT = 0x01
CMD_BIND = 0x02
CMD_UDP_ASSOCIATE = 0x03
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04
REPLY_LEN_IPV4 = 10


# ------------------------------------------------------------------------------- messages

def greeting(methods: list[int]) -> bytes:
    return bytes([VERSION, len(methods)] + methods)


def auth_message(user: bytes, password: bytes) -> bytes:
    return bytes([AUTH_VERSION, len(user)]) + user + bytes([len(password)]) + password


def request(host: bytes | str, port: int, cmd: int = CMD_CONNECT, atyp: str = "domain") -> bytes:
    """atyp: 'domain', 'ipv4', 'ipv6', or a number sent as is with host as raw bytes."""
    hb = host.encode() if isinstance(host, str) else host
    if atyp == "domain":
        addr = bytes([ATYP_DOMAIN, len(hb)]) + hb
    elif atyp == "ipv4":
        addr = bytes([ATYP_IPV4]) + ipaddress.IPv4Address(hb.decode()).packed
    elif atyp == "ipv6":
        addr = bytes([ATYP_IPV6]) + ipaddress.IPv6Address(hb.decode()).packed
    else:
        addr = bytes([int(atyp, 0)]) + hb
    return bytes([VERSION, cmd, 0x00]) + addr + port.to_bytes(2, "big")


# --------------------------------------------------------------------------------- client

class Closed(Exception):
    """The server closed the connection (EOF or reset) before the expected bytes."""

    def __init__(self, got: bytes) -> None:
        super().__init__(f"closed after {len(got)} bytes")
        self.got = got


class Client:
    """One console connection. Every wait is bounded by timeout."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bound = b""  # BND.ADDR and BND.PORT of the last reply, as sent

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """False when the server had already closed (reset or broken pipe)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def recv_exact(self, n: int) -> bytes:
        got = b""
        while len(got) < n:
            try:
                b = self.sock.recv(n - len(got))
            except ConnectionResetError:
                b = b""
            if not b:
                raise Closed(got)
            got += b
        return got

    def wait_closed(self, timeout: Optional[float] = None) -> str:
        """'closed' when the server ends the connection within timeout (any data it still
        sends is an error: 'data HEX'), 'open' otherwise."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            b = self.sock.recv(4096)
        except socket.timeout:
            return "open"
        except ConnectionResetError:
            return "closed"
        finally:
            self.sock.settimeout(self.timeout)
        return "closed" if not b else f"data {b[:32].hex()}"

    def negotiate(self, device: bytes | str, dport: int, methods: list[int],
                  user: Optional[bytes] = None, password: Optional[bytes] = None,
                  cmd: int = CMD_CONNECT, atyp: str = "domain", one_send: bool = False) -> str:
        """Greeting, [auth], request. Returns 'reply 0xNN', 'method 0xNN', 'auth 0xNN',
        'closed' (nothing answered), or 'got HEX' for a malformed answer. With one_send
        everything goes in a single send() before anything is read."""
        req = request(device, dport, cmd, atyp)
        auth = auth_message(user or b"", password or b"") if user is not None else b""
        if one_send:
            if not self.send(greeting(methods) + auth + req):
                return "closed"
            return self.read_answers(expect_auth=bool(auth))
        if not self.send(greeting(methods)):
            return "closed"
        try:
            m = self.recv_exact(2)
        except Closed as e:
            return "closed" if not e.got else f"got {e.got.hex()}"
        if m[0] != VERSION:
            return f"got {m.hex()}"
        if m[1] == METHOD_USERPASS and user is not None:
            if not self.send(auth):
                return "closed"
            try:
                st = self.recv_exact(2)
            except Closed as e:
                return "closed" if not e.got else f"got {e.got.hex()}"
            if st[0] != AUTH_VERSION:
                return f"got {st.hex()}"
            if st[1] != 0:
                return f"auth {st[1]:#04x}"
        elif m[1] != METHOD_NONE:
            return f"method {m[1]:#04x}"
        if not self.send(req):
            return "closed"
        return self._read_reply()

    def read_answers(self, expect_auth: bool) -> str:
        try:
            m = self.recv_exact(2)
        except Closed as e:
            return "closed" if not e.got else f"got {e.got.hex()}"
        if m[0] != VERSION:
            return f"got {m.hex()}"
        if m[1] == METHOD_USERPASS and expect_auth:
            try:
                st = self.recv_exact(2)
            except Closed as e:
                return "closed" if not e.got else f"got {e.got.hex()}"
            if st[0] != AUTH_VERSION:
                return f"got {st.hex()}"
            if st[1] != 0:
                return f"auth {st[1]:#04x}"
        elif m[1] != METHOD_NONE:
            return f"method {m[1]:#04x}"
        return self._read_reply()

    def _read_reply(self) -> str:
        try:
            head = self.recv_exact(4)
            if head[0] != VERSION:
                return f"got {head.hex()}"
            if head[3] == ATYP_IPV4:
                rest = self.recv_exact(4 + 2)
            elif head[3] == ATYP_IPV6:
                rest = self.recv_exact(16 + 2)
            elif head[3] == ATYP_DOMAIN:
                n = self.recv_exact(1)
                rest = n + self.recv_exact(n[0] + 2)
            else:
                return f"got {head.hex()}"
        except Closed as e:
            return "closed" if not e.got else f"got {e.got.hex()}"
        self.bound = rest
        if head[3] != ATYP_IPV4 or rest != bytes(6):
            # mpsd promises 0.0.0.0:0: the device's address is never revealed.
            return f"reply {head[1]:#04x} bound atyp {head[3]} {rest.hex()}"
        return f"reply {head[1]:#04x}"


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def echo_check(s: socket.socket, data: bytes, already_sent: bool, timeout: float) -> str:
    """Receive len(data) bytes (sending data from a thread first unless already_sent) and
    compare."""
    err: list[str] = []
    th = None
    if not already_sent:
        def sender() -> None:
            try:
                s.sendall(data)
            except OSError as e:
                err.append(f"send: {e}")
        th = threading.Thread(target=sender, daemon=True)
        th.start()
    s.settimeout(timeout)
    got = bytearray()
    try:
        while len(got) < len(data):
            b = s.recv(min(262144, len(data) - len(got)))
            if not b:
                err.append(f"eof after {len(got)} of {len(data)} bytes")
                break
            got += b
    except OSError as e:
        err.append(f"recv after {len(got)} bytes: {e}")
    if th:
        th.join(timeout)
    if err:
        return "; ".join(err)
    return "ok" if got == data else "mismatch"


# ------------------------------------------------------------------------------ scenarios

def parse_methods(text: str) -> list[int]:
    return [int(x, 0) for x in text.split(",") if x != ""]


def creds(a: argparse.Namespace) -> tuple[Optional[bytes], Optional[bytes]]:
    if a.user is None:
        return None, None
    return a.user.encode(), (a.password or "").encode()


def device_bytes(a: argparse.Namespace) -> bytes:
    return bytes.fromhex(a.device_hex) if a.device_hex else a.device.encode()


def sc_request(a: argparse.Namespace) -> str:
    c = Client(a.port, a.host, a.timeout)
    user, password = creds(a)
    res = c.negotiate(device_bytes(a), a.dport, parse_methods(a.methods), user, password,
                      a.cmd, a.atyp, one_send=a.one_send)
    if res == "reply 0x00" and a.bytes:
        res += " echo " + echo_check(c.sock, random_bytes(a.bytes, a.seed), False, a.timeout)
    elif res != "closed" and not res.startswith("got "):
        res += " " + c.wait_closed()
    c.close()
    return res


def sc_raw(a: argparse.Namespace) -> str:
    """Send the bytes (from a thread: the server may stop reading and close) while reading
    everything it answers until it closes."""
    c = Client(a.port, a.host, a.timeout)
    data = bytes.fromhex(a.hex) + bytes(a.fill)
    th = threading.Thread(target=c.send, args=(data,), daemon=True)
    th.start()
    c.sock.settimeout(a.timeout)
    got = b""
    try:
        while True:
            b = c.sock.recv(4096)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    except socket.timeout:
        c.close()
        return f"open (got {got.hex() or 'nothing'})"
    th.join(a.timeout)
    c.close()
    return f"got {got[:64].hex()}" if got else "closed"


def sc_silent(a: argparse.Namespace) -> str:
    """Send --hex (maybe nothing), then nothing more: how long until the server closes, and
    what it answered meanwhile."""
    c = Client(a.port, a.host, a.timeout)
    t0 = time.monotonic()
    if a.hex:
        c.send(bytes.fromhex(a.hex))
    got = b""
    c.sock.settimeout(a.timeout)
    try:
        while True:
            b = c.sock.recv(4096)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    except socket.timeout:
        c.close()
        return "timeout" + (f" (got {got.hex()})" if got else "")
    c.close()
    return (f"got {got.hex()} " if got else "") + f"closed {time.monotonic() - t0:.1f}"


def expect_first(s: socket.socket, want: bytes, timeout: float) -> str:
    """What a device that speaks first sends before it reads anything: exactly want."""
    s.settimeout(timeout)
    got = bytearray()
    try:
        while len(got) < len(want):
            b = s.recv(len(want) - len(got))
            if not b:
                return f"eof after {len(got)} bytes of the device's greeting"
            got += b
    except OSError as e:
        return f"recv after {len(got)} bytes of the device's greeting: {e}"
    return "ok" if got == want else f"greeting {bytes(got)!r}, expected {want!r}"


def sc_echo(a: argparse.Namespace) -> str:
    c = Client(a.port, a.host, a.timeout)
    data = random_bytes(a.bytes, a.seed)
    methods = parse_methods(a.methods)
    user, password = creds(a)
    if a.pipelined:
        # Everything in one send(): the module must keep what follows the request and write
        # it into the channel before the splice starts.
        auth = auth_message(user, password or b"") if user is not None else b""
        if not c.send(greeting(methods) + auth + request(device_bytes(a), a.dport) + data):
            return "closed while sending"
        res = c.read_answers(expect_auth=user is not None)
        if res != "reply 0x00":
            return res
        res = echo_check(c.sock, data, True, a.timeout)
    elif a.eof_first:
        # Send everything, half-close, then read: the answer the device sent before it saw the
        # channel's CLOSE must still arrive, then the end of stream.
        res = c.negotiate(device_bytes(a), a.dport, methods, user, password)
        if res != "reply 0x00":
            return res
        c.sock.sendall(data)
        c.sock.shutdown(socket.SHUT_WR)
        res = echo_check(c.sock, data, True, a.timeout)
        if res == "ok":
            res = "ok eof" if c.wait_closed(a.timeout) == "closed" else "ok but no eof"
    else:
        res = c.negotiate(device_bytes(a), a.dport, methods, user, password)
        if res != "reply 0x00":
            return res
        if a.expect_first:
            res = expect_first(c.sock, a.expect_first.encode(), a.timeout)
            if res != "ok":
                return res
        res = echo_check(c.sock, data, False, a.timeout)
    if res == "ok" and a.half_close:
        # Everything was echoed; our EOF must reach the device and end the stream.
        c.sock.shutdown(socket.SHUT_WR)
        res = "ok eof" if c.wait_closed(a.timeout) == "closed" else "ok but no eof"
    c.close()
    return res


def sc_send(a: argparse.Namespace) -> str:
    c = Client(a.port, a.host, a.timeout)
    data = random_bytes(a.bytes, a.seed)
    methods = parse_methods(a.methods)
    user, password = creds(a)
    if a.pipelined or a.early_eof:
        auth = auth_message(user, password or b"") if user is not None else b""
        if not c.send(greeting(methods) + auth + request(device_bytes(a), a.dport) + data):
            return "closed while sending"
        if a.early_eof:
            c.sock.shutdown(socket.SHUT_WR)
        res = c.read_answers(expect_auth=user is not None)
        if res != "reply 0x00":
            return res
    else:
        res = c.negotiate(device_bytes(a), a.dport, methods, user, password)
        if res != "reply 0x00":
            return res
        if not c.send(data):
            return "closed while sending"
    if not a.early_eof:
        c.sock.shutdown(socket.SHUT_WR)
    end = c.wait_closed(a.timeout)
    c.close()
    if end != "closed":
        return f"sent {len(data)}, then {end}"
    return f"sent {len(data)} sha256 {hashlib.sha256(data).hexdigest()} eof"


def sc_bulk(a: argparse.Namespace) -> str:
    c = Client(a.port, a.host, a.timeout)
    res = c.negotiate(device_bytes(a), a.dport, parse_methods(a.methods), *creds(a))
    if res != "reply 0x00":
        return res
    s = c.sock
    s.settimeout(a.timeout)
    total = a.bytes
    h_out = hashlib.sha256()
    err: list[str] = []
    t0 = time.monotonic()

    def sender() -> None:
        rnd = random.Random(a.seed)
        left = total
        try:
            while left:
                n = min(left, 256 * 1024)
                b = rnd.randbytes(n)
                h_out.update(b)
                s.sendall(b)
                left -= n
        except OSError as e:
            err.append(f"send with {left} bytes left: {e}")

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    h_in = hashlib.sha256()
    got = 0
    try:
        while got < total:
            b = s.recv(min(1 << 20, total - got))
            if not b:
                err.append(f"eof after {got} of {total} bytes")
                break
            h_in.update(b)
            got += len(b)
    except OSError as e:
        err.append(f"recv after {got} of {total} bytes: {e}")
    th.join(a.timeout)
    if th.is_alive():
        err.append("sender still blocked")
    elapsed = time.monotonic() - t0
    c.close()
    if err:
        return "; ".join(err)
    if h_in.digest() != h_out.digest():
        return f"mismatch: sent sha256 {h_out.hexdigest()}, received {h_in.hexdigest()}"
    return f"ok {total} {total / elapsed / 1e6:.1f}MB/s"


def touch(path: Optional[str]) -> None:
    if path:
        with open(path + ".tmp", "w") as f:
            f.write("ready\n")
        os.replace(path + ".tmp", path)


async def multi_async(a: argparse.Namespace) -> str:
    """Phase 1 opens every connection (at most --parallel handshakes in flight), phase 2
    echoes a unique payload on all of them at once, phase 3 holds them until the trigger,
    then all are closed."""
    conns: list[Optional[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = [None] * a.conns
    errors: list[str] = []
    gate = asyncio.Semaphore(a.parallel)

    async def open_one(i: int) -> None:
        dev = a.device.replace("%d", str(i % a.devices))
        async with gate:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(a.host, a.port), a.timeout)
                w.write(greeting([METHOD_NONE]))
                m = await asyncio.wait_for(r.readexactly(2), a.timeout)
                if m != bytes([VERSION, METHOD_NONE]):
                    raise RuntimeError(f"method answer {m.hex()}")
                w.write(request(dev, a.dport))
                rep = await asyncio.wait_for(r.readexactly(REPLY_LEN_IPV4), a.timeout)
                if rep[:2] != bytes([VERSION, 0x00]):
                    raise RuntimeError(f"reply {rep.hex()}")
                conns[i] = (r, w)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    RuntimeError) as e:
                errors.append(f"#{i} {dev} open: {type(e).__name__} {e}")

    async def echo_one(i: int) -> None:
        c = conns[i]
        assert c is not None
        r, w = c
        dev = a.device.replace("%d", str(i % a.devices))
        payload = f"conn {i} to {dev}:".encode() + random_bytes(a.bytes, a.seed + i)
        try:
            w.write(payload)
            got = await asyncio.wait_for(r.readexactly(len(payload)), a.timeout)
            if got != payload:
                errors.append(f"#{i} {dev}: echo mismatch")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            errors.append(f"#{i} {dev} echo: {type(e).__name__} {e}")

    t0 = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(a.conns)))
    if errors:
        return f"{len(errors)} failed: " + "; ".join(errors[:5])
    t_open = time.monotonic() - t0
    await asyncio.gather(*(echo_one(i) for i in range(a.conns)))
    if errors:
        return f"{len(errors)} failed: " + "; ".join(errors[:5])
    # Every connection is still open here: let the shell look at the daemon meanwhile.
    touch(a.ready_file)
    if a.trigger_file:
        deadline = time.monotonic() + a.wait
        while not os.path.exists(a.trigger_file):
            if time.monotonic() > deadline:
                return "timeout waiting for the trigger file"
            await asyncio.sleep(0.05)
    # None of them may have been closed by the server while held.
    for i, c in enumerate(conns):
        assert c is not None
        if c[0].at_eof() or c[1].is_closing():
            errors.append(f"#{i} closed while held")
    for c in conns:
        assert c is not None
        c[1].close()
    await asyncio.gather(*(c[1].wait_closed() for c in conns if c is not None),
                         return_exceptions=True)
    if errors:
        return f"{len(errors)} failed: " + "; ".join(errors[:5])
    return f"ok {a.conns} (opened in {t_open:.1f}s)"


def sc_multi(a: argparse.Namespace) -> str:
    return asyncio.run(multi_async(a))


def sc_device(a: argparse.Namespace) -> str:
    """A scripted APF device (tests/integration/apfclient.py's Device, independent of amtsim):
    handshake, one tcpip-forward per --ports as --fqdn, keepalives answered. --mode mute
    leaves every CHANNEL_OPEN unanswered; --mode record confirms them, keeps what arrives
    and, when the server closes a channel, answers CLOSE and appends to --log-file
    'channel ID from ORIG_IP:ORIG_PORT: N bytes sha256 HEX, closed by the server'. Both
    count the CHANNEL_OPENs in --count-file. Runs until --seconds pass or the session ends."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import apfclient  # the independent APF device of the core's tests

    d = apfclient.Device(a.amt_port, a.host, a.timeout, bytes.fromhex(a.uuid.replace("-", "")))
    d.connect()
    d.handshake(a.amt_user, a.amt_password, a.fqdn, tuple(int(p) for p in a.ports.split(",")))
    touch(a.ready_file)
    opens = 0
    chans: dict[int, dict] = {}  # our id -> server id, origin, hash, bytes
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        try:
            m = d.recv(min(1.0, max(0.01, deadline - time.monotonic())))
        except apfclient.Disconnected as e:
            return f"opens {opens} {e.result()}"
        if m is None:
            continue
        if m.type == apfclient.CHANNEL_OPEN:
            opens += 1
            if a.count_file:
                with open(a.count_file + ".tmp", "w") as f:
                    f.write(f"{opens}\n")
                os.replace(a.count_file + ".tmp", a.count_file)
            if a.mode == "record":
                ours = opens
                chans[ours] = {"peer": m.f["sender"], "hash": hashlib.sha256(), "n": 0,
                               "origin": f"{m.f['orig_ip']}:{m.f['orig_port']}"}
                d.send(apfclient.msg_channel_open_confirmation(m.f["sender"], ours, 1 << 20))
        elif m.type == apfclient.CHANNEL_DATA and m.f["recipient"] in chans:
            ch = chans[m.f["recipient"]]
            ch["hash"].update(m.f["data"])
            ch["n"] += len(m.f["data"])
            d.send(apfclient.msg_window_adjust(ch["peer"], len(m.f["data"])))
        elif m.type == apfclient.CHANNEL_CLOSE and m.f["recipient"] in chans:
            ch = chans.pop(m.f["recipient"])
            d.send(apfclient.msg_channel_close(ch["peer"]))
            if a.log_file:
                with open(a.log_file, "a") as f:
                    f.write(f"channel {m.f['recipient']} from {ch['origin']}: {ch['n']} bytes "
                            f"sha256 {ch['hash'].hexdigest()}, closed by the server\n")
        elif m.type == apfclient.DISCONNECT:
            return f"opens {opens} disconnect {m.f['reason']}"
        else:
            d.handle_background(m)  # keepalives; anything else is ignored
    d.close()
    return f"opens {opens} timeout"


SCENARIOS = {
    "request": sc_request,
    "raw": sc_raw,
    "silent": sc_silent,
    "echo": sc_echo,
    "send": sc_send,
    "bulk": sc_bulk,
    "multi": sc_multi,
    "device": sc_device,
}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090, help="SOCKS5 port of mpsd")
    p.add_argument("--timeout", type=float, default=10.0, help="bound of every network wait")
    p.add_argument("--device", default="dev0.example.com", help="DST.ADDR (multi: with %%d)")
    p.add_argument("--device-hex", default=None, help="DST.ADDR as hex bytes (overrides)")
    p.add_argument("--dport", type=int, default=16994, help="DST.PORT")
    p.add_argument("--atyp", default="domain", help="domain, ipv4, ipv6, or a raw number")
    p.add_argument("--cmd", type=lambda s: int(s, 0), default=CMD_CONNECT)
    p.add_argument("--methods", default="0", help="methods offered, e.g. 0 or 0,2")
    p.add_argument("--user", default=None, help="RFC 1929 user name (sent if asked for)")
    p.add_argument("--password", default=None)
    p.add_argument("--one-send", action="store_true",
                   help="request: greeting, auth and request in one send()")
    p.add_argument("--bytes", type=int, default=0, help="payload size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pipelined", action="store_true", help="echo/send: data in the first send()")
    p.add_argument("--half-close", action="store_true", help="echo: SHUT_WR after the echo")
    p.add_argument("--expect-first", default="",
                   help="echo: the device sends this before it reads (amtsim --greeting)")
    p.add_argument("--eof-first", action="store_true",
                   help="echo: send, SHUT_WR, then read the echo and the end of stream")
    p.add_argument("--early-eof", action="store_true",
                   help="send: pipelined, and SHUT_WR before the reply")
    p.add_argument("--hex", default="", help="raw/silent: bytes to send")
    p.add_argument("--fill", type=int, default=0, help="raw: zero bytes appended to --hex")
    p.add_argument("--conns", type=int, default=1, help="multi: connections")
    p.add_argument("--devices", type=int, default=1, help="multi: devices")
    p.add_argument("--parallel", type=int, default=100, help="multi: handshakes in flight")
    p.add_argument("--ready-file", default=None)
    p.add_argument("--trigger-file", default=None, help="multi: hold until it exists")
    p.add_argument("--wait", type=float, default=30.0, help="multi: bound on the trigger")
    # device
    p.add_argument("--mode", choices=["mute", "record"], default="mute")
    p.add_argument("--log-file", default=None)
    p.add_argument("--amt-port", type=int, default=16982)
    p.add_argument("--amt-user", default="amtuser")
    p.add_argument("--amt-password", default="P@ssw0rd")
    p.add_argument("--fqdn", default="mute.example.com")
    p.add_argument("--uuid", default="5a5a5a5a-0000-0000-0000-00000000000f")
    p.add_argument("--ports", default="16994")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--count-file", default=None)
    p.add_argument("--expect", default=None,
                   help="'|'-separated accepted results: exit 1 (printing the result) otherwise")
    a = p.parse_args(argv)

    try:
        res = SCENARIOS[a.scenario](a)
    except Exception as e:  # every failure becomes a result line for the shell
        print(f"error: {type(e).__name__}: {e}")
        return 2
    print(res)
    if a.expect is not None:
        return 0 if res in a.expect.split("|") else 1
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sys.exit(main())
