#!/usr/bin/env python3
# rest_client.py - an independent client of admin_http's REST API (stdlib http.client and json
# only), for tests/integration/admin_http.sh. Prints one result per line; exits 1 on a protocol
# or consistency error (with the reason on stderr), 0 otherwise.
# SPDX-License-Identifier: Apache-2.0
"""Usage: rest_client.py URL [--basic USER:PASS | --token TOKEN] COMMAND [ARGS]

Commands:
  status METHOD PATH    print the HTTP status (and, for 401, the WWW-Authenticate schemes)
  get PATH              print the status and the JSON body on one line
  list [--page N] [--prefix P] [--port N] [--since T]
                        page through GET /api/v1/devices N at a time (default 100): every
                        device exactly once, total consistent on every page; prints
                        "count=N" and one "fqdn uuid session" line per device
  events OUT STOP       subscribe to /api/v1/events, write "id event fqdn session" lines to OUT
                        until the file STOP exists (checked between events and every 0.2 s)
  hold-events OUT       subscribe and never read (small receive buffer); write "subscribed"
                        to OUT, then "closed" once the server drops the connection
"""
import base64
import http.client
import json
import os
import select
import socket
import sys
import time
import urllib.parse


def die(msg):
    print("rest_client: " + msg, file=sys.stderr)
    sys.exit(1)


class Client:
    def __init__(self, url, auth):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.auth = auth
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def request(self, method, path):
        headers = {}
        if self.auth:
            headers["Authorization"] = self.auth
        for attempt in range(2):  # keep-alive: a connection the server closed is reopened once
            try:
                c = self._conn()
                c.request(method, self.base + path, headers=headers)
                r = c.getresponse()
                body = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    self.conn = None
                return r, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path):
        r, body = self.request(method, path)
        ctype = r.getheader("Content-Type", "")
        if not ctype.startswith("application/json"):
            die("%s %s: Content-Type %r" % (method, path, ctype))
        try:
            return r.status, json.loads(body)
        except ValueError as e:
            die("%s %s: not JSON (%s): %r" % (method, path, e, body[:200]))


def cmd_status(cl, args):
    r, _ = cl.request(args[0], args[1])
    line = str(r.status)
    if r.status == 401:
        schemes = sorted(v.split()[0] for k, v in r.getheaders() if k.lower() == "www-authenticate")
        line += " " + ",".join(schemes)
    if r.status == 405:
        line += " " + r.getheader("Allow", "")
    print(line)


def cmd_get(cl, args):
    status, body = cl.json("GET", args[0])
    print(status, json.dumps(body, sort_keys=True))


def cmd_list(cl, args):
    page, params = 100, {}
    i = 0
    while i < len(args):
        if args[i] == "--page":
            page = int(args[i + 1])
        else:
            params[args[i][2:]] = args[i + 1]
        i += 2
    seen, order, total, offset = set(), [], None, 0
    while True:
        q = dict(params, limit=str(page), offset=str(offset))
        status, body = cl.json("GET", "/api/v1/devices?" + urllib.parse.urlencode(q))
        if status != 200:
            die("list: status %d: %s" % (status, body))
        for key in ("total", "offset", "limit", "devices"):
            if key not in body:
                die("list: no %r in the answer" % key)
        if body["offset"] != offset or body["limit"] != page:
            die("list: offset/limit %s/%s, asked %d/%d" % (body["offset"], body["limit"], offset, page))
        if total is None:
            total = body["total"]
        elif body["total"] != total:
            die("list: total changed from %d to %d while paging" % (total, body["total"]))
        devs = body["devices"]
        if len(devs) > page:
            die("list: %d devices on a page of %d" % (len(devs), page))
        for d in devs:
            for key in ("fqdn", "uuid", "ports", "peer", "identity", "user", "auth_method",
                        "tls_version", "tls_cipher", "session", "connected_at", "last_seen",
                        "last_keepalive", "channels_open", "bytes_from_device", "bytes_to_device"):
                if key not in d:
                    die("list: device without %r: %s" % (key, d))
            if d["session"] in seen:
                die("list: session %d twice" % d["session"])
            seen.add(d["session"])
            order.append(d)
        offset += len(devs)
        if len(devs) < page or offset >= total:
            break
    if len(order) != total:
        die("list: %d devices seen, total says %d" % (len(order), total))
    times = [d["connected_at"] for d in order]
    if times != sorted(times):
        die("list: not oldest first")
    print("count=%d" % total)
    for d in order:
        print(d["fqdn"], d["uuid"], d["session"])


def open_events(cl, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect((cl.host, cl.port))
    req = "GET %s/api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" % cl.base
    if cl.auth:
        req += "Authorization: %s\r\n" % cl.auth
    s.sendall((req + "\r\n").encode())
    return s


def cmd_events(cl, args):
    out_path, stop = args
    s = open_events(cl)
    buf = b""
    head_done = False
    last_id = 0
    with open(out_path, "w") as out:
        while not os.path.exists(stop):
            ready, _, _ = select.select([s], [], [], 0.2)
            if not ready:
                continue
            chunk = s.recv(65536)
            if not chunk:
                die("events: the server closed the stream")
            buf += chunk
            if not head_done:
                if b"\r\n\r\n" not in buf:
                    continue
                head, buf = buf.split(b"\r\n\r\n", 1)
                status = head.split(b"\r\n", 1)[0]
                if not status.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head:
                    die("events: %r" % head)
                head_done = True
                out.write("subscribed\n")
                out.flush()
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                fields = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        continue  # a comment: keepalive or the greeting
                    k, _, v = line.partition(": ")
                    fields[k] = v
                if not fields:
                    continue
                ev_id = int(fields["id"])
                if ev_id <= last_id:
                    die("events: id %d after %d" % (ev_id, last_id))
                last_id = ev_id
                dev = json.loads(fields["data"])
                out.write("%d %s %s %d\n" % (ev_id, fields["event"], dev["fqdn"], dev["session"]))
                out.flush()


def cmd_hold_events(cl, args):
    s = open_events(cl, rcvbuf=4096)
    with open(args[0], "w") as out:
        out.write("subscribed\n")
        out.flush()
        # Never read until told (the file args[0] + ".read" exists): then drain to the end.
        trigger = args[0] + ".read"
        while not os.path.exists(trigger):
            time.sleep(0.1)
        s.settimeout(60)
        n = 0
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            n += len(chunk)
        out.write("closed after %d bytes\n" % n)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, rest = argv[1], argv[2:]
    auth = None
    if rest[0] == "--basic":
        auth = "Basic " + base64.b64encode(rest[1].encode()).decode()
        rest = rest[2:]
    elif rest[0] == "--token":
        auth = "Bearer " + rest[1]
        rest = rest[2:]
    cl = Client(url, auth)
    cmds = {"status": cmd_status, "get": cmd_get, "list": cmd_list, "events": cmd_events,
            "hold-events": cmd_hold_events}
    if rest[0] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    cmds[rest[0]](cl, rest[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
