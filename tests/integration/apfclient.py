#!/usr/bin/env python3
# apfclient.py - a minimal, independent APF device client and test_console client for the tests.
# SPDX-License-Identifier: Apache-2.0
"""Minimal Intel AMT APF *device* (CIRA client), written from the wire reference only.

It deliberately shares no code with contrib/amtsim: it is a second, independent reading of the
protocol, so a misunderstanding in one is caught by the other. Standard library only.

CLI:  apfclient.py --port P SCENARIO [options]   prints one result line, e.g. `disconnect 15`,
`eof` or `ok`. Exit status: 0 when the scenario ran (and matched --expect, if given), 1 when
the result did not match --expect, 2 on an error (timeout, unexpected message...).

The console-* scenarios talk to the test_console module (--cport): "DEVICE PORT\\n", then "OK\\n"
and a raw pipe into an APF channel.

--tls speaks TLS to the MPS like AMT does (no SNI; --tls-ca verifies the server chain but not
its name, --tls-cert/--tls-key present a client certificate, --tls-version pins one version;
1.0 and 1.1 offer AES128-SHA only, as AMT before 12 does). The negotiated version and suite are
printed on stderr as "tls VERSION SUITE". --proxy v1|v2 sends a PROXY protocol header naming
--proxy-src first, as an L4 load balancer would. --source ADDR connects from that local address
(Linux routes all of 127.0.0.0/8 to lo, so 127.0.3.1 is a device behind another NAT).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# ------------------------------------------------------------------------------ constants

DISCONNECT = 1
SERVICE_REQUEST = 5
SERVICE_ACCEPT = 6
USERAUTH_REQUEST = 50
USERAUTH_FAILURE = 51
USERAUTH_SUCCESS = 52
GLOBAL_REQUEST = 80
REQUEST_SUCCESS = 81
REQUEST_FAILURE = 82
CHANNEL_OPEN = 90
CHANNEL_OPEN_CONFIRMATION = 91
CHANNEL_OPEN_FAILURE = 92
CHANNEL_WINDOW_ADJUST = 93
CHANNEL_DATA = 94
CHANNEL_CLOSE = 97
PROTOCOLVERSION = 192
KEEPALIVE_REQUEST = 208
KEEPALIVE_REPLY = 209
KEEPALIVE_OPTIONS_REQUEST = 210
KEEPALIVE_OPTIONS_REPLY = 211

TYPE_NAMES = {
    DISCONNECT: "DISCONNECT", SERVICE_REQUEST: "SERVICE_REQUEST",
    SERVICE_ACCEPT: "SERVICE_ACCEPT", USERAUTH_REQUEST: "USERAUTH_REQUEST",
    USERAUTH_FAILURE: "USERAUTH_FAILURE", USERAUTH_SUCCESS: "USERAUTH_SUCCESS",
    GLOBAL_REQUEST: "GLOBAL_REQUEST", REQUEST_SUCCESS: "REQUEST_SUCCESS",
    REQUEST_FAILURE: "REQUEST_FAILURE", CHANNEL_OPEN: "CHANNEL_OPEN",
    CHANNEL_OPEN_CONFIRMATION: "CHANNEL_OPEN_CONFIRMATION",
    CHANNEL_OPEN_FAILURE: "CHANNEL_OPEN_FAILURE", CHANNEL_WINDOW_ADJUST: "CHANNEL_WINDOW_ADJUST",
    CHANNEL_DATA: "CHANNEL_DATA", CHANNEL_CLOSE: "CHANNEL_CLOSE",
    PROTOCOLVERSION: "PROTOCOLVERSION", KEEPALIVE_REQUEST: "KEEPALIVE_REQUEST",
    KEEPALIVE_REPLY: "KEEPALIVE_REPLY", KEEPALIVE_OPTIONS_REQUEST: "KEEPALIVE_OPTIONS_REQUEST",
    KEEPALIVE_OPTIONS_REPLY: "KEEPALIVE_OPTIONS_REPLY",
}

SERVICE_AUTH = "auth@amt.intel.com"
SERVICE_PFWD = "pfwd@amt.intel.com"
RESERVED_WINDOW = 0xFFFFFFFF

# A UUID as AMT sends it: 16 raw bytes (first three groups little-endian on the wire).
DEFAULT_UUID = bytes.fromhex("00112233445566778899aabbccddeeff")


def type_name(t: int) -> str:
    return TYPE_NAMES.get(t, f"type {t}")


# ------------------------------------------------------------------------------- encoding

def u8(v: int) -> bytes:
    return struct.pack(">B", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def sstr(v: bytes | str) -> bytes:
    """APF string: uint32 length, then the bytes (no NUL)."""
    b = v.encode() if isinstance(v, str) else v
    return u32(len(b)) + b


def msg_disconnect(reason: int) -> bytes:
    return u8(DISCONNECT) + u32(reason) + struct.pack(">H", 0)


def msg_protocolversion(major: int = 1, minor: int = 0, reserved: int = 0,
                        uuid: bytes = DEFAULT_UUID) -> bytes:
    assert len(uuid) == 16
    return u8(PROTOCOLVERSION) + u32(major) + u32(minor) + u32(reserved) + uuid + bytes(64)


def msg_service_request(service: str) -> bytes:
    return u8(SERVICE_REQUEST) + sstr(service)


def msg_userauth_password(user: str, password: str, service: str = SERVICE_PFWD) -> bytes:
    return (u8(USERAUTH_REQUEST) + sstr(user) + sstr(service) + sstr("password") + u8(0)
            + sstr(password))


def msg_userauth_none(user: str, service: str = SERVICE_PFWD) -> bytes:
    return u8(USERAUTH_REQUEST) + sstr(user) + sstr(service) + sstr("none")


def msg_global(name: str, want_reply: bool, body: bytes = b"") -> bytes:
    return u8(GLOBAL_REQUEST) + sstr(name) + u8(1 if want_reply else 0) + body


def msg_tcpip_forward(address: str, port: int, want_reply: bool = True) -> bytes:
    return msg_global("tcpip-forward", want_reply, sstr(address) + u32(port))


def msg_cancel_tcpip_forward(address: str, port: int, want_reply: bool = True) -> bytes:
    return msg_global("cancel-tcpip-forward", want_reply, sstr(address) + u32(port))


def msg_udp_send_to(host: str, port: int, orig_ip: str, orig_port: int, data: bytes) -> bytes:
    return msg_global("udp-send-to@amt.intel.com", False,
                      sstr(host) + u32(port) + sstr(orig_ip) + u32(orig_port) + sstr(data))


def msg_channel_open_direct(sender: int, window: int, host: str, port: int, orig_ip: str,
                            orig_port: int) -> bytes:
    return (u8(CHANNEL_OPEN) + sstr("direct-tcpip") + u32(sender) + u32(window)
            + u32(RESERVED_WINDOW) + sstr(host) + u32(port) + sstr(orig_ip) + u32(orig_port))


def msg_channel_open_confirmation(recipient: int, sender: int, window: int) -> bytes:
    return (u8(CHANNEL_OPEN_CONFIRMATION) + u32(recipient) + u32(sender) + u32(window)
            + u32(RESERVED_WINDOW))


def msg_channel_open_failure(recipient: int, reason: int) -> bytes:
    return u8(CHANNEL_OPEN_FAILURE) + u32(recipient) + u32(reason) + u32(0) + u32(0)


def msg_window_adjust(recipient: int, add: int) -> bytes:
    return u8(CHANNEL_WINDOW_ADJUST) + u32(recipient) + u32(add)


def msg_channel_data(recipient: int, data: bytes) -> bytes:
    return u8(CHANNEL_DATA) + u32(recipient) + sstr(data)


def msg_channel_close(recipient: int) -> bytes:
    return u8(CHANNEL_CLOSE) + u32(recipient)


def msg_keepalive_request(cookie: int) -> bytes:
    return u8(KEEPALIVE_REQUEST) + u32(cookie)


def msg_keepalive_reply(cookie: int) -> bytes:
    return u8(KEEPALIVE_REPLY) + u32(cookie)


def msg_keepalive_options_request(interval: int, timeout: int) -> bytes:
    return u8(KEEPALIVE_OPTIONS_REQUEST) + u32(interval) + u32(timeout)


def msg_keepalive_options_reply(interval: int, timeout: int) -> bytes:
    return u8(KEEPALIVE_OPTIONS_REPLY) + u32(interval) + u32(timeout)


# ------------------------------------------------------------------------------- decoding

class ProtocolError(Exception):
    """The server sent something this client cannot parse."""


class NeedMore(Exception):
    pass


@dataclass
class Msg:
    type: int
    raw: bytes
    f: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return type_name(self.type)

    def __str__(self) -> str:
        return f"{self.name} {self.f}" if self.f else self.name


class Reader:
    """Cursor over a buffer; raises NeedMore when the message is not complete yet."""

    def __init__(self, buf: bytes | bytearray, off: int = 0) -> None:
        self.buf = buf
        self.off = off

    def take(self, n: int) -> bytes:
        if self.off + n > len(self.buf):
            raise NeedMore
        b = bytes(self.buf[self.off:self.off + n])
        self.off += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack(">H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self, limit: int = 1 << 24) -> bytes:
        n = self.u32()
        if n > limit:
            raise ProtocolError(f"string length {n} over {limit}")
        return self.take(n)


def decode(buf: bytes | bytearray, forward_pending: bool) -> Optional[tuple[Msg, int]]:
    """Decode one server-sent message from the start of buf: (msg, length), or None if more
    bytes are needed. forward_pending: the oldest unanswered global request is a tcpip-forward,
    whose REQUEST_SUCCESS carries the port (APF has no length field, the client must know)."""
    if not buf:
        return None
    r = Reader(buf)
    try:
        t = r.u8()
        f: dict[str, Any] = {}
        if t == DISCONNECT:
            f["reason"] = r.u32()
            r.u16()
        elif t == PROTOCOLVERSION:
            f["major"], f["minor"], f["reserved"] = r.u32(), r.u32(), r.u32()
            f["uuid"] = r.take(16)
            r.take(64)
        elif t == SERVICE_ACCEPT:
            f["service"] = r.string().decode(errors="replace")
        elif t == USERAUTH_FAILURE:
            f["methods"] = r.string().decode(errors="replace")
            f["partial"] = r.u8()
        elif t == USERAUTH_SUCCESS:
            pass
        elif t == REQUEST_SUCCESS:
            if forward_pending:
                f["port"] = r.u32()
        elif t == REQUEST_FAILURE:
            pass
        elif t == GLOBAL_REQUEST:  # the server has none defined; parse the common header
            f["request"] = r.string().decode(errors="replace")
            f["want_reply"] = r.u8()
        elif t == CHANNEL_OPEN:
            f["kind"] = r.string().decode(errors="replace")
            f["sender"], f["window"], f["reserved"] = r.u32(), r.u32(), r.u32()
            f["address"] = r.string().decode(errors="replace")
            f["port"] = r.u32()
            f["orig_ip"] = r.string().decode(errors="replace")
            f["orig_port"] = r.u32()
        elif t == CHANNEL_OPEN_CONFIRMATION:
            f["recipient"], f["sender"], f["window"], f["reserved"] = (
                r.u32(), r.u32(), r.u32(), r.u32())
        elif t == CHANNEL_OPEN_FAILURE:
            f["recipient"], f["reason"] = r.u32(), r.u32()
            r.u32()
            r.u32()
        elif t == CHANNEL_WINDOW_ADJUST:
            f["recipient"], f["add"] = r.u32(), r.u32()
        elif t == CHANNEL_DATA:
            f["recipient"] = r.u32()
            f["data"] = r.string()
        elif t == CHANNEL_CLOSE:
            f["recipient"] = r.u32()
        elif t in (KEEPALIVE_REQUEST, KEEPALIVE_REPLY):
            f["cookie"] = r.u32()
        elif t in (KEEPALIVE_OPTIONS_REQUEST, KEEPALIVE_OPTIONS_REPLY):
            f["interval"], f["timeout"] = r.u32(), r.u32()
        else:
            raise ProtocolError(f"unknown message type {t} from the server")
    except NeedMore:
        return None
    return Msg(t, bytes(buf[:r.off]), f), r.off


# --------------------------------------------------------------------------------- device

class Disconnected(Exception):
    """The server ended the session: reason is the DISCONNECT reason, or None for EOF."""

    def __init__(self, reason: Optional[int]) -> None:
        super().__init__("EOF" if reason is None else f"DISCONNECT {reason}")
        self.reason = reason

    def result(self) -> str:
        return "eof" if self.reason is None else f"disconnect {self.reason}"


class Unexpected(Exception):
    pass


class Device:
    """One APF device session. Every wait is bounded by a timeout."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                 uuid: bytes = DEFAULT_UUID, tls: Optional[ssl.SSLContext] = None,
                 preamble: bytes = b"", source: Optional[str] = None) -> None:
        self.host, self.port, self.timeout, self.uuid = host, port, timeout, uuid
        self.source = source  # local address to connect from (any of 127.0.0.0/8 on Linux)
        self.tls, self.preamble = tls, preamble  # preamble: sent before TLS (a PROXY header)
        self.sock: Optional[socket.socket] = None
        self.rx = bytearray()
        self.eof = False
        # Kinds of the global requests awaiting a reply, oldest first ("fwd" or "other").
        self.pending_globals: list[str] = []
        self.auto_keepalive = True  # answer server keepalive (options) requests in expect()
        self.server_version: Optional[Msg] = None
        self.seen: list[Msg] = []  # messages handled automatically, for the curious
        self.last: Optional[Msg] = None  # the message an Unexpected was raised for

    # -- transport
    def connect(self) -> "Device":
        self.sock = socket.create_connection(
            (self.host, self.port), timeout=self.timeout,
            source_address=(self.source, 0) if self.source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.preamble:
            self.sock.sendall(self.preamble)
        if self.tls:
            # No SNI: AMT sends none, and the server must not depend on it.
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=None)
            tls_sock: Any = self.sock
            print(f"tls {tls_sock.version()} {tls_sock.cipher()[0]}", file=sys.stderr, flush=True)
        return self

    def close(self) -> None:
        if self.sock:
            self.sock.close()
            self.sock = None

    def send(self, data: bytes) -> None:
        assert self.sock
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_global(self, data: bytes, kind: str, want_reply: bool = True) -> None:
        if want_reply:
            self.pending_globals.append(kind)
        self.send(data)

    def _fill(self, deadline: float) -> bool:
        """Read once; False on timeout. Sets self.eof on EOF or reset."""
        assert self.sock
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.eof = True
            return True
        self.rx += chunk
        return True

    def poll(self) -> Optional[Msg]:
        """A message already buffered or readable right now, without waiting."""
        return self.recv(timeout=0.0)

    def recv(self, timeout: Optional[float] = None) -> Optional[Msg]:
        """The next message, None on timeout; raises Disconnected on EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            got = decode(self.rx, bool(self.pending_globals) and self.pending_globals[0] == "fwd")
            if got:
                m, n = got
                del self.rx[:n]
                if m.type in (REQUEST_SUCCESS, REQUEST_FAILURE) and self.pending_globals:
                    self.pending_globals.pop(0)
                return m
            if self.eof:
                raise Disconnected(None)
            if timeout == 0.0:
                assert self.sock
                r, _, _ = select.select([self.sock], [], [], 0)
                # Decrypted bytes already inside the TLS layer do not wake select().
                pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
                if not r and not pending:
                    return None
                deadline = time.monotonic() + 0.5
            if not self._fill(deadline):
                return None

    def expect(self, mtype: int, timeout: Optional[float] = None) -> Msg:
        """Wait for a message of type mtype. Server keepalive requests are answered on the
        way when auto_keepalive; a DISCONNECT or EOF raises Disconnected; anything else
        raises Unexpected."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = self.recv(max(0.001, deadline - time.monotonic()))
            if m is None:
                raise TimeoutError(f"timeout waiting for {type_name(mtype)}")
            if m.type == mtype:
                return m
            if self.handle_background(m):
                continue
            if m.type == DISCONNECT:
                raise Disconnected(m.f["reason"])
            self.last = m
            raise Unexpected(f"expected {type_name(mtype)}, got {m}")

    def expect_one_of(self, *types: int, timeout: Optional[float] = None) -> Msg:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                return self.expect(types[0], max(0.001, deadline - time.monotonic()))
            except Unexpected:
                m = self.last
                if m is not None and m.type in types:
                    return m
                raise

    def handle_background(self, m: Msg) -> bool:
        """Answer what the server may send at any time; True if m was consumed."""
        if m.type == PROTOCOLVERSION and self.server_version is None:
            self.server_version = m
            return True
        if self.auto_keepalive and m.type == KEEPALIVE_REQUEST:
            self.send(msg_keepalive_reply(m.f["cookie"]))
            self.seen.append(m)
            return True
        if self.auto_keepalive and m.type == KEEPALIVE_OPTIONS_REQUEST:
            self.send(msg_keepalive_options_reply(m.f["interval"], m.f["timeout"]))
            self.seen.append(m)
            return True
        return False

    def read_until_disconnect(self, timeout: float) -> str:
        """Read (answering keepalives if auto_keepalive) until the server ends the session:
        'disconnect N', 'eof', or 'timeout'."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            try:
                m = self.recv(left)
            except Disconnected as e:
                return e.result()
            if m is None:
                return "timeout"
            if m.type == DISCONNECT:
                return f"disconnect {m.f['reason']}"
            if not self.handle_background(m):
                self.seen.append(m)

    # -- session
    def handshake(self, user: str = "amtuser", password: str = "P@ssw0rd",
                  fqdn: str = "apf0.example.com", ports: tuple[int, ...] = (16992,),
                  wrong_first: int = 0) -> None:
        """Version, auth, pfwd and one tcpip-forward per port, as AMT does it: the version and
        the first SERVICE_REQUEST go back to back without waiting for the server."""
        self.send(msg_protocolversion(uuid=self.uuid) + msg_service_request(SERVICE_AUTH))
        v = self.expect(PROTOCOLVERSION) if self.server_version is None else self.server_version
        self.server_version = v
        if v.f["major"] != 1:
            raise Unexpected(f"server speaks APF {v.f['major']}.{v.f['minor']}")
        self.expect(SERVICE_ACCEPT)
        for i in range(wrong_first):
            self.send(msg_userauth_password(user, password + f"-wrong{i}"))
            self.expect(USERAUTH_FAILURE)
        self.send(msg_userauth_password(user, password))
        m = self.expect_one_of(USERAUTH_SUCCESS, USERAUTH_FAILURE)
        if m.type == USERAUTH_FAILURE:
            # Refused: report how the server ends the session (DISCONNECT 15 normally).
            res = self.read_until_disconnect(self.timeout)
            if res.startswith("disconnect "):
                raise Disconnected(int(res.split()[1]))
            if res == "eof":
                raise Disconnected(None)
            raise Unexpected("password refused, session not ended")
        self.send(msg_service_request(SERVICE_PFWD))
        a = self.expect(SERVICE_ACCEPT)
        if a.f["service"] != SERVICE_PFWD:
            raise Unexpected(f"SERVICE_ACCEPT for {a.f['service']}")
        for p in ports:
            self.send_global(msg_tcpip_forward(fqdn, p), "fwd")
            ok = self.expect(REQUEST_SUCCESS)
            if ok.f.get("port") != p:
                raise Unexpected(f"tcpip-forward {p} acknowledged with {ok.f}")

    def ping(self, cookie: int = 0x5A5A1234, timeout: Optional[float] = None) -> None:
        """Prove the tunnel alive with a keepalive round trip."""
        self.send(msg_keepalive_request(cookie))
        r = self.expect(KEEPALIVE_REPLY, timeout)
        if r.f["cookie"] != cookie:
            raise Unexpected(f"keepalive reply cookie {r.f['cookie']:#x}, sent {cookie:#x}")


# ------------------------------------------------------------------------------ scenarios

def tls_context(a: argparse.Namespace) -> Optional[ssl.SSLContext]:
    """The client side of AMT's TLS, from --tls*; None without --tls (or for callers such as
    httpclient.py whose options have no TLS at all)."""
    if not getattr(a, "tls", False):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # AMT checks the name itself; the tests use 127.0.0.1
    if a.tls_ca:
        ctx.load_verify_locations(a.tls_ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if a.tls_cert:
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
    if a.tls_version:
        v = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
             "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[a.tls_version]
        if v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            # What AMT before 12 offers; OpenSSL 3 allows it only at security level 0.
            ctx.set_ciphers("AES128-SHA@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = v
    return ctx


def proxy_header(a: argparse.Namespace) -> bytes:
    """A PROXY protocol header (v1 text or v2 binary) naming a.proxy_src:40000 -> 127.0.0.1."""
    if not getattr(a, "proxy", None):
        return b""
    src, dst, sport, dport = a.proxy_src, "127.0.0.1", 40000, a.port
    if a.proxy == "v1":
        return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack(">H", len(addrs))
            + addrs)


def open_version(a: argparse.Namespace) -> Device:
    d = Device(a.port, a.host, a.timeout, uuid_bytes(a), tls_context(a), proxy_header(a),
               getattr(a, "source", None))
    d.connect()
    return d


def uuid_bytes(a: argparse.Namespace) -> bytes:
    if a.uuid:
        return bytes.fromhex(a.uuid.replace("-", ""))
    return DEFAULT_UUID


def full(a: argparse.Namespace, wrong_first: int = 0) -> Device:
    d = open_version(a)
    d.handshake(a.user, a.password, a.fqdn, tuple(a.ports), wrong_first=wrong_first)
    return d


def touch(path: Optional[str], text: str = "ready\n") -> None:
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


def sc_handshake(a: argparse.Namespace) -> str:
    d = full(a)
    d.ping()
    d.close()
    return "ok"


def sc_retry(a: argparse.Namespace) -> str:
    """a.wrong wrong passwords, then the right one: works only if MaxAuthAttempts allows."""
    try:
        d = full(a, wrong_first=a.wrong)
    except Disconnected as e:
        return e.result()
    d.ping()
    d.close()
    return "ok"


def sc_wrong_password(a: argparse.Namespace) -> str:
    d = open_version(a)
    d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_AUTH))
    d.expect(SERVICE_ACCEPT)
    d.send(msg_userauth_password(a.user, a.password + "-wrong"))
    try:
        f = d.expect(USERAUTH_FAILURE)
    except Disconnected as e:
        return e.result() + " (no USERAUTH_FAILURE first)"
    if f.f["methods"] != "password":
        return f"bad method list {f.f['methods']!r}"
    return d.read_until_disconnect(a.wait)


def sc_nul_password(a: argparse.Namespace) -> str:
    """The right password followed by a NUL byte and junk ("P@ssw0rd\\0junk"), which a C
    string comparison would take for the right one: 'failure ' and how the session ended
    ('failure disconnect 15'); with --wrong 0 the right password follows the refusal on the
    same session: 'failure then ok'. 'accepted' if the server took it."""
    d = open_version(a)
    d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_AUTH))
    d.expect(SERVICE_ACCEPT)
    d.send(msg_userauth_password(a.user, a.password + "\0junk"))
    try:
        m = d.expect_one_of(USERAUTH_SUCCESS, USERAUTH_FAILURE)
    except Disconnected as e:
        return e.result() + " (no USERAUTH_FAILURE first)"
    if m.type == USERAUTH_SUCCESS:
        return "accepted"
    if a.wrong != 0:
        return "failure " + d.read_until_disconnect(a.wait)
    d.send(msg_userauth_password(a.user, a.password))
    d.expect(USERAUTH_SUCCESS)
    d.send(msg_service_request(SERVICE_PFWD))
    d.expect(SERVICE_ACCEPT)
    d.ping()
    d.close()
    return "failure then ok"


def sc_none_auth(a: argparse.Namespace) -> str:
    d = open_version(a)
    d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_AUTH))
    d.expect(SERVICE_ACCEPT)
    d.send(msg_userauth_none(a.user))
    f = d.expect(USERAUTH_FAILURE)
    # 1 type + 4 length + "password" + 1 partial-success byte = 14 bytes.
    if len(f.raw) != 14 or f.f["methods"] != "password" or f.f["partial"] != 0:
        return f"bad USERAUTH_FAILURE ({len(f.raw)} bytes): {f.raw.hex()}"
    # "none" is a question, not an attempt: the password must still be accepted afterwards.
    d.send(msg_userauth_password(a.user, a.password))
    d.expect(USERAUTH_SUCCESS)
    d.close()
    return "ok"


def sc_pfwd_before_auth(a: argparse.Namespace) -> str:
    d = open_version(a)
    d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_AUTH)
           + msg_service_request(SERVICE_PFWD))
    d.expect(SERVICE_ACCEPT)
    return d.read_until_disconnect(a.wait)


def send_tolerant(d: Device, data: bytes) -> None:
    """Send what the server may refuse half-way: a reset is fine, the verdict is read next."""
    try:
        d.send(data)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass


def sc_garbage(a: argparse.Namespace) -> str:
    rnd = random.Random(a.seed)
    data = bytearray(rnd.randbytes(a.bytes))
    # A leading 192 would be a PROTOCOLVERSION with a random major (DISCONNECT 8): keep the
    # garbage garbage.
    if data[0] == PROTOCOLVERSION:
        data[0] = 0x07
    d = open_version(a)
    send_tolerant(d, bytes(data))
    return d.read_until_disconnect(a.wait)


def sc_unknown_type(a: argparse.Namespace) -> str:
    d = full(a)
    send_tolerant(d, u8(a.type) + bytes(16))
    return d.read_until_disconnect(a.wait)


def sc_truncated(a: argparse.Namespace) -> str:
    d = open_version(a)
    m = msg_service_request(SERVICE_AUTH)
    d.send(msg_protocolversion(uuid=d.uuid) + m[:len(m) // 2])
    d.expect(PROTOCOLVERSION)
    assert d.sock
    d.sock.shutdown(socket.SHUT_WR)  # the daemon must see EOF mid-message and just close
    return d.read_until_disconnect(a.wait)


def sc_huge_length(a: argparse.Namespace) -> str:
    d = full(a)
    if a.field == "data":
        msg = u8(CHANNEL_DATA) + u32(0) + u32(0xFFFFFFF0)
    else:  # the request name of a GLOBAL_REQUEST
        msg = u8(GLOBAL_REQUEST) + u32(0xFFFFFFF0)
    t0 = time.monotonic()
    send_tolerant(d, msg + b"x" * 64)
    res = d.read_until_disconnect(a.wait)
    # "quickly": the server must judge the length, not wait for 4 GiB.
    return res if time.monotonic() - t0 < 3.0 else f"{res} (slow)"


def sc_bad_version(a: argparse.Namespace) -> str:
    d = open_version(a)
    d.send(msg_protocolversion(major=2, uuid=d.uuid) + msg_service_request(SERVICE_AUTH))
    return d.read_until_disconnect(a.wait)


def sc_no_version(a: argparse.Namespace) -> str:
    d = open_version(a)
    d.send(msg_service_request(SERVICE_AUTH))
    return d.read_until_disconnect(a.wait)


def sc_unknown_global(a: argparse.Namespace) -> str:
    d = full(a)
    d.send_global(msg_global("mystery@example.com", True), "other")
    d.expect(REQUEST_FAILURE)
    d.ping()  # the tunnel survives
    d.close()
    return "ok"


def sc_keepalive(a: argparse.Namespace) -> str:
    d = full(a)
    cookie = 0xDEADBEEF
    d.send(msg_keepalive_request(cookie))
    r = d.expect(KEEPALIVE_REPLY)
    d.close()
    return "ok" if r.f["cookie"] == cookie else f"cookie {r.f['cookie']:#x}"


def sc_silent(a: argparse.Namespace) -> str:
    """Stay silent after the handshake: expect the server's probe, then DISCONNECT 16.
    Prints 'probe disconnect 16 SECONDS' (seconds from the handshake to the disconnect)."""
    d = full(a)
    d.auto_keepalive = False
    t0 = time.monotonic()
    probe = False
    while True:
        left = a.wait - (time.monotonic() - t0)
        if left <= 0:
            return "timeout" + (" after probe" if probe else "")
        try:
            m = d.recv(left)
        except Disconnected as e:
            return ("probe " if probe else "") + e.result()
        if m is None:
            continue
        if m.type == KEEPALIVE_REQUEST:
            probe = True
        elif m.type == DISCONNECT:
            return (("probe " if probe else "no-probe ") + f"disconnect {m.f['reason']} "
                    f"{time.monotonic() - t0:.1f}")


def sc_window_overrun(a: argparse.Namespace) -> str:
    """Forward the given ports, wait for the server to open a channel (the shell test opens
    one through test_console and never reads from it), confirm it and then send CHANNEL_DATA
    until we are well past everything the server granted (its initial window plus every
    WINDOW_ADJUST) and its tolerance: the server must cut us off with DISCONNECT 2."""
    d = full(a)
    touch(a.ready_file)
    op = d.expect(CHANNEL_OPEN, a.wait)
    if op.f["kind"] != "forwarded-tcpip":
        return f"unexpected channel type {op.f['kind']}"
    ours = 7
    d.send(msg_channel_open_confirmation(op.f["sender"], ours, 32768))
    granted = op.f["window"]
    sent = 0
    chunk = b"\xAA" * 16384
    deadline = time.monotonic() + a.wait
    # Until the console's socket buffers fill up (several MB on loopback) the server
    # legitimately keeps granting credit, and its adjusts trail what we have sent (by more
    # than a second on a loaded sanitizer build), so the credit seen here is no stopping
    # point: keep sending until the verdict, within a bound.
    while sent <= 256 * 1024 * 1024:
        if time.monotonic() > deadline:
            return f"timeout (sent {sent}, granted {granted})"
        try:
            m = d.poll()
            while m is not None:
                if m.type == DISCONNECT:
                    return f"disconnect {m.f['reason']}"
                if m.type == CHANNEL_WINDOW_ADJUST and m.f["recipient"] == ours:
                    granted += m.f["add"]
                elif not d.handle_background(m):
                    return f"unexpected {m}"
                m = d.poll()
        except Disconnected as e:
            return e.result()
        try:
            d.send(msg_channel_data(op.f["sender"], chunk))
        except (BrokenPipeError, ConnectionResetError):
            break  # cut off: the verdict is in the receive buffer
        except socket.timeout:
            return f"server stopped reading (sent {sent}, granted {granted})"
        sent += len(chunk)
    res = d.read_until_disconnect(max(1.0, deadline - time.monotonic()))
    return res if res != "timeout" else f"timeout (sent {sent}, granted {granted})"


def sc_hold(a: argparse.Namespace) -> str:
    """Handshake, then stay connected for a.seconds answering keepalives (channel opens are
    refused). 'ok' if still alive at the end (proved with a ping), or how the server ended
    the session ('disconnect 11' at shutdown)."""
    d = full(a)
    touch(a.ready_file)
    deadline = time.monotonic() + a.seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            m = d.recv(min(left, 1.0))
        except Disconnected as e:
            return e.result()
        if m is None:
            continue
        if m.type == DISCONNECT:
            return f"disconnect {m.f['reason']}"
        if m.type == CHANNEL_OPEN:
            d.send(msg_channel_open_failure(m.f["sender"], 2))
        elif not d.handle_background(m):
            return f"unexpected {m}"
    try:
        d.ping()
    except Disconnected as e:
        return e.result()
    d.close()
    return "ok"


# ------------------------------------------------------- device-initiated traffic (alerts)

def alert_payload(a: argparse.Namespace) -> bytes:
    return random.Random(a.seed).randbytes(a.bytes)


def sc_udp_alert(a: argparse.Namespace) -> str:
    """udp-send-to@amt.intel.com for --target:--tport with --bytes of seeded data (the
    receiver recomputes them); a ping after it proves the request was handled without a
    reply. 'sent'."""
    d = full(a)
    d.send(msg_udp_send_to(a.target, a.tport, "192.0.2.9", 1024, alert_payload(a)))
    d.ping()
    d.close()
    return "sent"


def sc_direct(a: argparse.Namespace) -> str:
    """A device-initiated direct-tcpip channel to --target:--tport: 'open-failure REASON', or
    --bytes of seeded data sent within the server's window and read back from an echo server
    (our window refilled as we consume), then CLOSE answered: 'echo N'."""
    d = full(a)
    window, sender = 65536, 7
    d.send(msg_channel_open_direct(sender, window, a.target, a.tport, "192.0.2.1", 5555))
    m = d.expect_one_of(CHANNEL_OPEN_CONFIRMATION, CHANNEL_OPEN_FAILURE, timeout=a.wait)
    if m.f["recipient"] != sender:
        return f"error: answer for channel {m.f['recipient']}"
    if m.type == CHANNEL_OPEN_FAILURE:
        d.ping()  # the tunnel survives a refusal
        d.close()
        return f"open-failure {m.f['reason']}"
    rid, pwin = m.f["sender"], m.f["window"]
    data = alert_payload(a)
    sent, consumed, got = 0, 0, bytearray()
    while len(got) < len(data):
        while sent < len(data) and pwin > 0:
            n = min(16384, pwin, len(data) - sent)
            d.send(msg_channel_data(rid, data[sent:sent + n]))
            sent += n
            pwin -= n
        m = d.recv()
        if m is None:
            return f"timeout after {len(got)} of {len(data)} bytes"
        if m.type == CHANNEL_WINDOW_ADJUST and m.f["recipient"] == sender:
            pwin += m.f["add"]
        elif m.type == CHANNEL_DATA and m.f["recipient"] == sender:
            got += m.f["data"]
            consumed += len(m.f["data"])
            if consumed >= window // 2:
                d.send(msg_window_adjust(rid, consumed))
                consumed = 0
        elif m.type == CHANNEL_CLOSE:
            return f"closed after {len(got)} of {len(data)} bytes"
        elif not d.handle_background(m):
            return f"unexpected {m}"
    if bytes(got) != data:
        return "mismatch"
    d.send(msg_channel_close(rid))
    while True:
        m = d.expect_one_of(CHANNEL_CLOSE, CHANNEL_WINDOW_ADJUST)
        if m.type == CHANNEL_CLOSE:
            break
    d.ping()
    d.close()
    return f"echo {len(data)}"


def sc_direct_hold(a: argparse.Namespace) -> str:
    """--conns direct-tcpip channels to --target:--tport, opened one after the other: prints
    'held N refused M' once every open has its answer (and creates --ready-file), then keeps
    the tunnel and the confirmed channels for --seconds (keepalives answered)."""
    d = full(a)
    held = refused = 0
    for i in range(a.conns):
        sender = 100 + i
        d.send(msg_channel_open_direct(sender, 65536, a.target, a.tport, "192.0.2.1", 5555))
        while True:
            m = d.recv()
            if m is None:
                return f"timeout after {held} held, {refused} refused"
            if m.type == CHANNEL_OPEN_CONFIRMATION and m.f["recipient"] == sender:
                held += 1
                break
            if m.type == CHANNEL_OPEN_FAILURE and m.f["recipient"] == sender:
                refused += 1
                break
            if not d.handle_background(m):
                return f"unexpected {m}"
    print(f"held {held} refused {refused}", flush=True)
    touch(a.ready_file)
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        m = d.recv(timeout=min(1.0, max(0.05, end - time.monotonic())))
        if m is not None and not d.handle_background(m) and m.type not in (
                CHANNEL_WINDOW_ADJUST, CHANNEL_DATA, CHANNEL_CLOSE):
            return f"unexpected {m}"
    d.close()
    return "done"


# ------------------------------------------------------------------- test_console scenarios

def console_open(a: argparse.Namespace, device: Optional[str] = None,
                 dport: Optional[int] = None) -> tuple[socket.socket, str]:
    """Connect to test_console and ask for DEVICE PORT: (socket, reply line)."""
    s = socket.create_connection((a.host, a.cport), timeout=a.timeout)
    s.sendall(f"{device or a.device} {dport or a.dport}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)  # byte by byte: nothing after "OK\n" may be consumed here
        if not c:
            break
        line += c
    return s, line.decode(errors="replace").strip() or "eof"


def console_echo(s: socket.socket, nbytes: int, seed: int, timeout: float) -> str:
    """Send nbytes of random data while reading the echo concurrently; 'ok' if identical."""
    rnd = random.Random(seed)
    h_out = hashlib.sha256()
    err: list[str] = []

    def sender() -> None:
        try:
            left = nbytes
            while left:
                n = min(left, 65536)
                b = rnd.randbytes(n)
                h_out.update(b)
                s.sendall(b)
                left -= n
        except OSError as e:
            err.append(f"send: {e}")

    s.settimeout(timeout)
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    h_in = hashlib.sha256()
    got = 0
    try:
        while got < nbytes:
            b = s.recv(min(262144, nbytes - got))
            if not b:
                err.append(f"eof after {got} of {nbytes} bytes")
                break
            h_in.update(b)
            got += len(b)
    except OSError as e:
        err.append(f"recv after {got} bytes: {e}")
    th.join(timeout)
    if err:
        return "; ".join(err)
    return "ok" if h_in.digest() == h_out.digest() else "mismatch"


def sc_console_open(a: argparse.Namespace) -> str:
    """Print the module's reply (OK / ERR ...); with --seconds keep the pipe open (unread)
    that long or until it is closed, for the window-overrun test."""
    s, reply = console_open(a)
    if a.seconds > 0 and reply == "OK":
        print(reply, flush=True)  # now, for the test waiting on it; the result line follows
        touch(a.ready_file)
        s.settimeout(a.seconds)
        deadline = time.monotonic() + a.seconds
        # Do not read: the point is a console that leaves data in the pipe. Only notice EOF.
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.2)
            if r:
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        return reply + " eof"
                except OSError:
                    return reply + " eof"
                time.sleep(0.2)
    s.close()
    return reply


def sc_console_echo(a: argparse.Namespace) -> str:
    s, reply = console_open(a)
    if reply != "OK":
        return reply
    res = console_echo(s, a.bytes, a.seed, a.timeout)
    s.close()
    return res


def sc_console_http(a: argparse.Namespace) -> str:
    """GET (prints the status and first body line) or, with --post-bytes, a POST whose echoed body must match."""
    s, reply = console_open(a)
    if reply != "OK":
        return reply
    s.settimeout(a.timeout)
    if a.post_bytes:
        body = random.Random(a.seed).randbytes(a.post_bytes)
        head = (f"POST /echo HTTP/1.1\r\nHost: {a.device}\r\nContent-Length: {len(body)}\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        err: list[str] = []

        def sender() -> None:
            try:
                s.sendall(head + body)
            except OSError as e:
                err.append(str(e))
        th = threading.Thread(target=sender, daemon=True)
        th.start()
    else:
        body = b""
        s.sendall(f"GET /index.htm HTTP/1.1\r\nHost: {a.device}\r\n\r\n".encode())
    buf = bytearray()
    status_body: Optional[tuple[bytes, bytes]] = None
    try:
        while True:
            b = s.recv(262144)
            if not b:
                break
            buf += b
            hdr_end = buf.find(b"\r\n\r\n")
            if hdr_end >= 0:
                headers = bytes(buf[:hdr_end]).decode(errors="replace").lower()
                clen = None
                for ln in headers.split("\r\n")[1:]:
                    k, _, v = ln.partition(":")
                    if k.strip() == "content-length":
                        clen = int(v.strip())
                if clen is not None and len(buf) >= hdr_end + 4 + clen:
                    status_body = (bytes(buf[:hdr_end]), bytes(buf[hdr_end + 4:hdr_end + 4 + clen]))
                    break
    except OSError as e:
        return f"recv: {e}"
    s.close()
    if status_body is None:
        hdr_end = buf.find(b"\r\n\r\n")
        if hdr_end < 0:
            return f"no HTTP response ({len(buf)} bytes)"
        status_body = (bytes(buf[:hdr_end]), bytes(buf[hdr_end + 4:]))
    status = status_body[0].split(b"\r\n", 1)[0].decode(errors="replace")
    if a.post_bytes:
        if hashlib.sha256(status_body[1]).digest() != hashlib.sha256(body).digest():
            return f"{status}: body mismatch ({len(status_body[1])} of {len(body)} bytes)"
        return "ok"
    first = status_body[1].split(b"\n", 1)[0].decode(errors="replace").strip()
    return f"{status} | {first}"


def sc_console_multi(a: argparse.Namespace) -> str:
    """a.conns concurrent pipes spread over a.devices devices (FQDN pattern a.device with %d),
    each echoing a.bytes; 'ok N' when all match."""
    results: list[str] = [""] * a.conns

    def one(i: int) -> None:
        try:
            s, reply = console_open(a, a.device.replace("%d", str(i % a.devices)), a.dport)
            if reply != "OK":
                results[i] = reply
                return
            results[i] = console_echo(s, a.bytes, a.seed + i, a.timeout)
            s.close()
        except OSError as e:
            results[i] = f"error {e}"

    ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(a.conns)]
    for t in ths:
        t.start()
    deadline = time.monotonic() + a.timeout * 2
    for t in ths:
        t.join(max(0.0, deadline - time.monotonic()))
    bad = [f"#{i}: {r or 'timeout'}" for i, r in enumerate(results) if r != "ok"]
    return f"ok {a.conns}" if not bad else f"{len(bad)} failed: " + "; ".join(bad[:5])


def sc_console_hold(a: argparse.Namespace) -> str:
    """Open a pipe to an echo port, check it, touch --ready-file; then, when --trigger-file
    appears, echo one line again and print 'ok'. If the pipe is closed first: 'eof'."""
    s, reply = console_open(a)
    if reply != "OK":
        return reply
    if (r := console_echo(s, 4096, a.seed, a.timeout)) != "ok":
        return f"first echo: {r}"
    touch(a.ready_file)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        if a.trigger_file and os.path.exists(a.trigger_file):
            line = b"still here\n"
            s.settimeout(a.timeout)
            try:
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    b = s.recv(len(line) - len(got))
                    if not b:
                        return "eof"
                    got += b
            except OSError as e:
                return f"error {e}"
            return "ok" if got == line else f"echo mismatch {got!r}"
        r, _, _ = select.select([s], [], [], 0.1)
        if r:
            try:
                if not s.recv(4096):
                    return "eof"
            except OSError:
                return "eof"
    return "timeout"


# ------------------------------------------------------------------------ TLS scenarios

def sc_pfwd_no_auth(a: argparse.Namespace) -> str:
    """A device authenticated by its TLS client certificate (mutual TLS): --userauth skip asks
    for pfwd without the auth service, none sends USERAUTH "none" and expects SUCCESS at
    once. 'ok' once forwarding works (proved with a ping), else how the server refused."""
    d = open_version(a)
    if a.userauth == "skip":
        d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_PFWD))
    else:
        d.send(msg_protocolversion(uuid=d.uuid) + msg_service_request(SERVICE_AUTH))
        d.expect(SERVICE_ACCEPT)
        d.send(msg_userauth_none(a.user))
        m = d.expect_one_of(USERAUTH_SUCCESS, USERAUTH_FAILURE)
        if m.type == USERAUTH_FAILURE:
            return "userauth failure"
        d.send(msg_service_request(SERVICE_PFWD))
    acc = d.expect(SERVICE_ACCEPT)
    if acc.f["service"] != SERVICE_PFWD:
        return f"SERVICE_ACCEPT for {acc.f['service']}"
    for p in a.ports:
        d.send_global(msg_tcpip_forward(a.fqdn, p), "fwd")
        if d.expect(REQUEST_SUCCESS).f.get("port") != p:
            return f"tcpip-forward {p} refused"
    d.ping()
    d.close()
    return "ok"


HTTP_PORTS = (16992, 16993, 623, 664)


def sc_serve(a: argparse.Namespace) -> str:
    """A device that serves its forwarded ports for a.seconds: channels to HTTP_PORTS get an
    HTTP/1.1 200 answer "apfclient FQDN PATH[ TAG]" per request, others echo. When
    --trigger-file appears: a keepalive round trip, then 'ok'. How the server ended the session
    otherwise. --events: a line "open PORT" per channel the server opens, appended."""
    d = full(a)
    touch(a.ready_file)
    return serve_loop(d, a)


def sc_claim(a: argparse.Namespace) -> str:
    """Log in (--user, --password, --uuid), then ask tcpip-forward for --fqdn on each of
    --ports whatever the answers; --ready-file then holds "PORT:ok" or "PORT:refused" for each,
    blank-separated. Then serve as the serve scenario does (for the ports granted) until
    --trigger-file or --seconds: 'ok', or how the server ended the session ('disconnect 11'
    when a reconnect of the same device replaced this tunnel)."""
    d = open_version(a)
    d.handshake(a.user, a.password, a.fqdn, ())
    verdicts = []
    for p in a.ports:
        d.send_global(msg_tcpip_forward(a.fqdn, p), "fwd")
        m = d.expect_one_of(REQUEST_SUCCESS, REQUEST_FAILURE)
        ok = m.type == REQUEST_SUCCESS and m.f.get("port") == p
        verdicts.append(f"{p}:{'ok' if ok else 'refused'}")
    touch(a.ready_file, " ".join(verdicts) + "\n")
    return serve_loop(d, a)


def serve_loop(d: Device, a: argparse.Namespace) -> str:
    """The serving part of sc_serve and sc_claim."""
    chans: dict[int, dict[str, Any]] = {}  # our channel id -> peer id, port, buffered request
    next_id = 100
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        if a.trigger_file and os.path.exists(a.trigger_file):
            try:
                d.ping()
            except Disconnected as e:
                return e.result()
            d.close()
            return "ok"
        try:
            m = d.recv(0.1)
        except Disconnected as e:
            return e.result()
        if m is None or d.handle_background(m):
            continue
        if m.type == DISCONNECT:
            return f"disconnect {m.f['reason']}"
        if m.type == CHANNEL_OPEN:
            next_id += 1
            chans[next_id] = {"peer": m.f["sender"], "port": m.f["port"], "buf": b""}
            if a.events:
                with open(a.events, "a") as f:
                    f.write(f"open {m.f['port']}\n")
            d.send(msg_channel_open_confirmation(m.f["sender"], next_id, 1 << 20))
        elif m.type == CHANNEL_DATA and m.f["recipient"] in chans:
            c = chans[m.f["recipient"]]
            data = m.f["data"]
            d.send(msg_window_adjust(c["peer"], len(data)))
            if c["port"] not in HTTP_PORTS:
                d.send(msg_channel_data(c["peer"], data))  # small pieces: within any window
                continue
            c["buf"] += data
            while b"\r\n\r\n" in c["buf"]:
                head, _, c["buf"] = c["buf"].partition(b"\r\n\r\n")
                path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode(errors="replace")
                tag = f" {a.tag}" if a.tag else ""
                body = f"apfclient {a.fqdn} {path}{tag}\n".encode()
                d.send(msg_channel_data(c["peer"], b"HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                                        + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                                        + body))
        elif m.type == CHANNEL_CLOSE and m.f["recipient"] in chans:
            d.send(msg_channel_close(chans.pop(m.f["recipient"])["peer"]))
        elif m.type not in (CHANNEL_WINDOW_ADJUST, CHANNEL_DATA, CHANNEL_CLOSE):
            return f"unexpected {m}"
    return "timeout"


def client_hello() -> bytes:
    """The first flight of a default TLS client, for the tls-stall scenario."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    into, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(into, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def sc_tls_stall(a: argparse.Namespace) -> str:
    """Connect to a TLS listener and misbehave (--stall): silent (send nothing), half-hello
    (half a ClientHello), mid-handshake (a whole ClientHello, read the answer, send nothing
    more), http (a plain HTTP request). Then wait up to a.wait for the server to close:
    'closed SECONDS' (from the last byte sent) or 'open'."""
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    s.sendall(proxy_header(a))
    hello = client_hello()
    if a.stall == "half-hello":
        s.sendall(hello[:len(hello) // 2])
    elif a.stall == "mid-handshake":
        s.sendall(hello)
    elif a.stall == "http":
        s.sendall(b"GET / HTTP/1.1\r\nHost: mps\r\n\r\n")
    t0 = time.monotonic()
    got = 0
    while time.monotonic() - t0 < a.wait:
        s.settimeout(max(0.01, a.wait - (time.monotonic() - t0)))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            b = b""
        if not b:
            return f"closed {time.monotonic() - t0:.1f}" + (" after an answer" if got else "")
        got += len(b)
    return "open"


SCENARIOS: dict[str, Callable[[argparse.Namespace], str]] = {
    "handshake": sc_handshake,
    "retry": sc_retry,
    "wrong-password": sc_wrong_password,
    "none-auth": sc_none_auth,
    "pfwd-before-auth": sc_pfwd_before_auth,
    "garbage": sc_garbage,
    "unknown-type": sc_unknown_type,
    "truncated": sc_truncated,
    "huge-length": sc_huge_length,
    "bad-version": sc_bad_version,
    "no-version": sc_no_version,
    "unknown-global": sc_unknown_global,
    "keepalive": sc_keepalive,
    "silent": sc_silent,
    "window-overrun": sc_window_overrun,
    "hold": sc_hold,
    "console-open": sc_console_open,
    "console-echo": sc_console_echo,
    "console-http": sc_console_http,
    "console-multi": sc_console_multi,
    "console-hold": sc_console_hold,
    "pfwd-no-auth": sc_pfwd_no_auth,
    "serve": sc_serve,
    "claim": sc_claim,
    "nul-password": sc_nul_password,
    "tls-stall": sc_tls_stall,
    "udp-alert": sc_udp_alert,
    "direct": sc_direct,
    "direct-hold": sc_direct_hold,
}


def run_one(a: argparse.Namespace, i: int = 0) -> str:
    if i:
        a = argparse.Namespace(**vars(a))
        a.seed += i
        if a.uuid is None:
            a.uuid = (DEFAULT_UUID[:12] + struct.pack(">I", i)).hex()
    try:
        return SCENARIOS[a.scenario](a)
    except Disconnected as e:
        return e.result()
    except (Unexpected, ProtocolError, TimeoutError, OSError) as e:
        return f"error: {type(e).__name__}: {e}"


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=16982, help="mpsd AMT port")
    p.add_argument("--cport", type=int, default=0, help="test_console port")
    p.add_argument("--user", default="amtuser")
    p.add_argument("--password", default="P@ssw0rd")
    p.add_argument("--fqdn", default="apf0.example.com")
    p.add_argument("--uuid", default=None, help="device UUID as 32 hex digits (dashes allowed)")
    p.add_argument("--ports", type=lambda s: [int(x) for x in s.split(",")], default=[16992])
    p.add_argument("--timeout", type=float, default=10.0, help="bound of every network wait")
    p.add_argument("--wait", type=float, default=10.0,
                   help="how long to wait for the server's verdict")
    p.add_argument("--seconds", type=float, default=0.0, help="hold/console-open duration")
    p.add_argument("--ready-file", default=None, help="created once the scenario is set up")
    p.add_argument("--trigger-file", default=None, help="console-hold: echo once it exists")
    p.add_argument("--tag", default="", help="serve/claim: appended to the HTTP answers")
    p.add_argument("--events", default=None, help="serve/claim: 'open PORT' per channel here")
    p.add_argument("--wrong", type=int, default=2, help="retry: wrong passwords first")
    p.add_argument("--bytes", type=int, default=4096)
    p.add_argument("--post-bytes", type=int, default=0, help="console-http: POST this much")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--type", type=int, default=7, help="unknown-type: the type byte")
    p.add_argument("--field", choices=["data", "name"], default="data",
                   help="huge-length: CHANNEL_DATA data or a GLOBAL_REQUEST name")
    p.add_argument("--tolerance", type=int, default=65536,
                   help="window-overrun: the server's WindowTolerance")
    p.add_argument("--device", default="dev0.example.com", help="console: device (%%d ok)")
    p.add_argument("--dport", type=int, default=16994, help="console: device port")
    p.add_argument("--devices", type=int, default=1, help="console-multi: devices")
    p.add_argument("--conns", type=int, default=1, help="console-multi: connections")
    p.add_argument("--parallel", type=int, default=1, help="run N copies concurrently")
    p.add_argument("--userauth", choices=["skip", "none"], default="skip",
                   help="pfwd-no-auth: skip the auth service or send USERAUTH none")
    p.add_argument("--stall", choices=["silent", "half-hello", "mid-handshake", "http"],
                   default="silent", help="tls-stall: how the client misbehaves")
    p.add_argument("--target", default="127.0.0.1", help="udp-alert/direct: host asked for")
    p.add_argument("--tport", type=int, default=0, help="udp-alert/direct: port asked for")
    p.add_argument("--tls", action="store_true", help="speak TLS to the MPS")
    p.add_argument("--tls-ca", default=None, help="verify the server chain against this file")
    p.add_argument("--tls-cert", default=None, help="client certificate (PEM)")
    p.add_argument("--tls-key", default=None, help="its private key (PEM)")
    p.add_argument("--tls-version", choices=["1.0", "1.1", "1.2", "1.3"], default=None)
    p.add_argument("--proxy", choices=["v1", "v2"], default=None,
                   help="send a PROXY protocol header first")
    p.add_argument("--proxy-src", default="203.0.113.7", help="the address the header names")
    p.add_argument("--source", default=None,
                   help="connect from this local address (e.g. 127.0.3.1: all of 127/8 is lo)")
    p.add_argument("--expect", default=None,
                   help="'|'-separated accepted results: exit 1 (printing them) otherwise")
    a = p.parse_args(argv)

    if a.parallel > 1:
        results: list[str] = [""] * a.parallel

        def worker(i: int) -> None:
            results[i] = run_one(a, i)
        ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.parallel)]
        for t in ths:
            t.start()
        deadline = time.monotonic() + a.wait + a.timeout + 5
        for t in ths:
            t.join(max(0.0, deadline - time.monotonic()))
        results = [r or "timeout" for r in results]
    else:
        results = [run_one(a)]

    if a.expect is not None:
        accepted = set(a.expect.split("|"))
        bad = [r for r in results if r not in accepted]
        if bad:
            print(f"unexpected: {len(bad)} of {len(results)}: " + "; ".join(sorted(set(bad))))
            return 1
        print("ok" if len(results) == 1 else f"ok {len(results)}")
        return 0
    if len(results) == 1:
        print(results[0])
        return 2 if results[0].startswith("error") else 0
    counts: dict[str, int] = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sys.exit(main())
